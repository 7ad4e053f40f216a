//! The upgrade on hyper 1 (feature `hyper`): a request that hyper parsed in, core's answer out
//! as an `http::Response`, and a future of the upgraded [`AsyncConn`].
//!
//! hyper has already parsed the head, so nothing is read here: the head is written back as
//! HTTP/1.1 bytes and handed to core's [`server_step`], which checks it, computes the accept
//! key, picks the subprotocol and negotiates permessage-deflate exactly as for
//! [`accept_async`](crate::accept_async); its answer (the 101, or the 4xx/5xx that refuses) is
//! turned back into a `Response`. No WebSocket rule lives in this module.
//!
//! Serve the connection with `.with_upgrades()`, or hyper never hands the stream over.
//!
//! ```no_run
//! use hyper::body::Incoming;
//! use hyper::{Request, Response};
//! use lowbit_websockets::hyper::{Body, upgrade};
//! use lowbit_websockets::{AcceptOptions, OpCode};
//!
//! async fn handle(mut req: Request<Incoming>) -> Result<Response<Body>, std::convert::Infallible> {
//!     let (response, upgrading) = match upgrade(&mut req, &AcceptOptions::default()) {
//!         Ok(upgrade) => upgrade,
//!         Err(refused) => return Ok(refused.into_response()),
//!     };
//!     tokio::spawn(async move {
//!         let (mut conn, _accepted) = upgrading.await?;
//!         conn.write_message(OpCode::Text, b"hello").await?;
//!         conn.close().await
//!     });
//!     Ok(response)
//! }
//! ```

use std::fmt;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use ::bytes::Bytes;
use ::http::header::{HeaderName, HeaderValue};
use ::http::{HeaderMap, Method, Request, Response, StatusCode, Uri, Version};
use ::http_body_util::Full;
use ::hyper::upgrade::{OnUpgrade, Upgraded};
use ::hyper_util::rt::TokioIo;

use super::AsyncConn;
use super::upgrade::server_conn;
use crate::error::{Error, Result};
use crate::handshake::{Accept, Accepted, HandshakeError, MAX_HEADERS, Request as Head, Step};
use crate::role::Config;
use crate::upgrade::{AcceptOptions, server_step};

/// The stream an upgraded hyper connection runs on.
pub type HyperStream = TokioIo<Upgraded>;

/// The body of the responses made here: empty for the 101, core's plain-text reason for a
/// refusal.
pub type Body = Full<Bytes>;

/// Answers a WebSocket upgrade request: the response to return from the service, and the
/// future of the connection, which resolves once hyper has sent the response and handed the
/// stream over. Spawn a task that awaits it; it never resolves if the response is not returned.
///
/// # Errors
///
/// [`Refused`] when core refuses the request (its 4xx/5xx is in
/// [`Refused::into_response`]), or when hyper cannot upgrade it (no `OnUpgrade` in its
/// extensions: not from a hyper HTTP/1.1 server; 500).
pub fn upgrade<B>(req: &mut Request<B>, opts: &AcceptOptions) -> Result<(Response<Body>, Upgrading), Refused> {
    upgrade_with(req, opts, |_| None)
}

/// [`upgrade`] with a hook that sees the checked request first, as in
/// [`accept_async_with`](crate::accept_async_with): return `Some(answer)` to refuse (e.g. by
/// origin, with [`Accept::reject`]) or to pick the subprotocol, `None` to keep `opts`' policy.
pub fn upgrade_with<B>(
    req: &mut Request<B>,
    opts: &AcceptOptions,
    hook: impl FnOnce(&Head<'_>) -> Option<Accept>,
) -> Result<(Response<Body>, Upgrading), Refused> {
    let head = request_head(req.method(), req.uri(), req.version(), req.headers());
    answer(&head, req.extensions_mut().remove::<OnUpgrade>(), opts, hook)
}

/// Writes a parsed request head back as the bytes core parses. http's types cannot hold a
/// line break, so the result is one head, ending where the request's did.
pub(super) fn request_head(method: &Method, uri: &Uri, version: Version, headers: &HeaderMap) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    // `{version:?}` is http's own spelling ("HTTP/1.1"): core decides what it accepts.
    let _ = write!(head, "{method} {uri} {version:?}\r\n");
    // Every value of a repeated header is written, so core sees (and refuses) duplicates.
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// Runs core's step on `head` and turns its answer into a response and, when it accepts, the
/// future of the connection over `on_upgrade`.
pub(super) fn answer(
    head: &[u8],
    on_upgrade: Option<OnUpgrade>,
    opts: &AcceptOptions,
    hook: impl FnOnce(&Head<'_>) -> Option<Accept>,
) -> Result<(Response<Body>, Upgrading), Refused> {
    let (response, accepted) = match server_step(head, opts, hook) {
        Step::Done { response, result, .. } => (response, result),
        Step::Refused { response, error } => {
            return Err(Refused { response: Box::new(to_response(&response)), error });
        }
        // `request_head` always ends the head; should it not, the fault is ours.
        Step::NeedMore => return Err(Refused::new(HandshakeError::InvalidArgument("request head is incomplete"))),
    };
    // Checked after core's answer, so that a bad request gets core's reason, not this one.
    let Some(on_upgrade) = on_upgrade else {
        return Err(Refused::new(HandshakeError::InvalidArgument(
            "request cannot be upgraded: hyper put no OnUpgrade in its extensions (not an HTTP/1.1 request \
             from a hyper server)",
        )));
    };
    let upgrading = Upgrading { on_upgrade, config: opts.config, accepted: Some(accepted) };
    Ok((to_response(&response), upgrading))
}

/// Core's response bytes as an `http::Response`, headers in order and the body after them.
fn to_response(bytes: &[u8]) -> Response<Body> {
    parse_response(bytes).unwrap_or_else(|| {
        // Core writes every response this parses; reaching here is a bug, answered safely.
        let mut response = Response::new(Body::default());
        *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
        response
    })
}

fn parse_response(bytes: &[u8]) -> Option<Response<Body>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let httparse::Status::Complete(used) = parsed.parse(bytes).ok()? else { return None };
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(bytes.get(used..)?)));
    *response.status_mut() = StatusCode::from_u16(parsed.code?).ok()?;
    for header in parsed.headers.iter() {
        let name = HeaderName::from_bytes(header.name.as_bytes()).ok()?;
        response.headers_mut().append(name, HeaderValue::from_bytes(header.value).ok()?);
    }
    Some(response)
}

/// The future of the upgraded connection, from [`upgrade`]: resolves to the [`AsyncConn`],
/// configured with `opts`' limits and the negotiated deflate, and what was agreed.
///
/// hyper hands bytes it read past the request through [`Upgraded`] itself, so a client's
/// first frames sent with its request are not lost.
#[must_use = "the connection is only made when this future is awaited"]
pub struct Upgrading {
    on_upgrade: OnUpgrade,
    config: Config,
    accepted: Option<Accepted>,
}

impl Future for Upgrading {
    type Output = Result<(AsyncConn<HyperStream>, Accepted)>;

    /// # Errors
    ///
    /// [`Error::Handshake`] with [`HandshakeError::Io`] wrapping hyper's error when the
    /// upgrade fails (the client left before the 101 was sent, or the connection is served
    /// without `.with_upgrades()`).
    ///
    /// # Panics
    ///
    /// When polled again after it resolved.
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let upgraded = ready!(Pin::new(&mut self.on_upgrade).poll(cx))
            .map_err(|e| Error::Handshake(HandshakeError::Io(std::io::Error::other(e))))?;
        let accepted = self.accepted.take().expect("Upgrading polled after it resolved");
        Poll::Ready(Ok((server_conn(TokioIo::new(upgraded), self.config, &accepted), accepted)))
    }
}

impl fmt::Debug for Upgrading {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgrading").field("accepted", &self.accepted).finish_non_exhaustive()
    }
}

/// A refused upgrade: why, and core's response saying so (its status, headers such as
/// `Sec-WebSocket-Version: 13` with a 426, and a plain-text reason).
#[derive(Debug)]
pub struct Refused {
    // Boxed: a refusal is the rare path, and it keeps `upgrade`'s `Result` small.
    response: Box<Response<Body>>,
    error: HandshakeError,
}

impl Refused {
    fn new(error: HandshakeError) -> Self {
        let mut response = Vec::new();
        error.write_rejection(&mut response);
        Self { response: Box::new(to_response(&response)), error }
    }

    /// Why the request was refused.
    pub fn error(&self) -> &HandshakeError {
        &self.error
    }

    /// The response to return from the service.
    pub fn into_response(self) -> Response<Body> {
        *self.response
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebSocket upgrade refused with {}: {}", self.response.status(), self.error)
    }
}

impl std::error::Error for Refused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl From<Refused> for Error {
    fn from(refused: Refused) -> Self {
        Error::Handshake(refused.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    fn request(version: &str) -> Request<()> {
        Request::get("/chat?room=1")
            .header("host", "example.com")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-version", version)
            .header("sec-websocket-key", KEY)
            .body(())
            .unwrap()
    }

    #[test]
    fn the_head_written_back_is_what_core_parses() {
        let req = request("13");
        let head = request_head(req.method(), req.uri(), req.version(), req.headers());
        let (parsed, used) = crate::handshake::parse_request(&head).unwrap().unwrap();
        assert_eq!(
            (parsed.path(), parsed.host(), parsed.key(), used),
            ("/chat?room=1", "example.com", KEY, head.len())
        );
    }

    #[test]
    fn core_refuses_before_the_missing_upgrade_is_noticed() {
        let e = upgrade(&mut request("8"), &AcceptOptions::default()).unwrap_err();
        assert!(matches!(e.error(), HandshakeError::UnsupportedVersion), "{e}");
        let response = e.into_response();
        assert_eq!(response.status(), 426);
        assert_eq!(response.headers()["sec-websocket-version"], "13");
    }

    /// A valid request that did not come through a hyper server cannot switch protocols: 500,
    /// not a 101 that nothing would honour.
    #[test]
    fn a_valid_request_without_on_upgrade_is_a_500() {
        let e = upgrade(&mut request("13"), &AcceptOptions::default()).unwrap_err();
        assert!(matches!(e.error(), HandshakeError::InvalidArgument(_)), "{e}");
        assert_eq!(e.into_response().status(), 500);
    }

    /// hyper also parses HTTP/2 and HTTP/1.0 requests; core refuses both (RFC 6455 needs
    /// HTTP/1.1), whatever version string http spells.
    #[test]
    fn other_http_versions_are_refused_by_core() {
        for (version, status) in [(Version::HTTP_2, 400), (Version::HTTP_10, 505), (Version::HTTP_3, 400)] {
            let mut req = request("13");
            *req.version_mut() = version;
            let e = upgrade(&mut req, &AcceptOptions::default()).unwrap_err();
            assert_eq!(e.into_response().status(), status, "{version:?}");
        }
    }

    #[test]
    fn core_responses_become_http_responses() {
        let mut bytes = Vec::new();
        HandshakeError::MethodNotGet.write_rejection(&mut bytes);
        let response = to_response(&bytes);
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "GET");
        assert_eq!(to_response(b"not http").status(), 500, "never a panic");
    }
}
