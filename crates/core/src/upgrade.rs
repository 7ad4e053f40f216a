//! From a fresh stream to a ready [`Conn`]: the handshake, the subprotocol policy and
//! permessage-deflate negotiation, decided here once for every face.
//!
//! Two layers, as in [`handshake`]:
//!
//! - **sans-IO steps**, for callers that own their I/O (an event loop, Node, the C ABI): a
//!   server feeds every byte received so far to [`server_step`]; a client builds its request
//!   with [`ClientUpgrade::new`] and feeds the answer to [`ClientUpgrade::step`]. Each returns
//!   a [`Step`]: need more, refused (the bytes to send), or done (the bytes to send, the bytes
//!   the head used, and the result with the subprotocol and the negotiated
//!   [`DeflateConfig`]).
//! - **blocking [`accept`] and [`connect`]**, read loops over those steps that return a
//!   [`Conn`] configured as negotiated, with bytes read past the handshake handed to it.

mod subprotocol;

use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

pub use subprotocol::SubprotocolPolicy;

use crate::conn::Conn;
use crate::deflate::negotiate::{client_offer, client_verify, server_accept};
use crate::deflate::{DeflateConfig, DeflateOptions};
use crate::error::{Error, Result};
use crate::handshake::step::{Deadline, drive};
use crate::handshake::{
    self, Accept, Accepted, ClientHandshake, ClientOptions, Connected, HandshakeError, Request, Step,
};
use crate::role::{Config, Role};

/// The default [`AcceptOptions::handshake_timeout`]: 10 s for the whole upgrade request, as
/// the shipped servers use. A browser sends its request in one packet; a client still
/// sending after 10 s is stalled or an attacker holding a connection open.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a server accepts connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptOptions {
    /// Limits; the role is forced to [`Role::Server`].
    pub config: Config,
    /// Offer permessage-deflate with these settings, or `None` to decline every offer.
    pub deflate: Option<DeflateOptions>,
    /// How the subprotocol is picked; none by default.
    pub protocols: SubprotocolPolicy,
    /// How long the whole upgrade request may take, from the call to the end of its head
    /// (total, not per read: a client trickling a byte a second meets it too); past it the
    /// request is refused with 408 and [`HandshakeError::Timeout`]. `None`: no deadline.
    /// Default [`HANDSHAKE_TIMEOUT`].
    ///
    /// [`accept_async`](crate::accept_async) and [`tcp::accept`](crate::tcp::accept) hold it
    /// exactly. The generic [`accept`] cannot cut a blocking read short, so it meets the
    /// deadline at the first read that returns after it: give its stream a read timeout too,
    /// or a silent client holds it until that read returns.
    pub handshake_timeout: Option<Duration>,
}

impl Default for AcceptOptions {
    fn default() -> Self {
        Self {
            config: Config::new(Role::Server),
            deflate: None,
            protocols: SubprotocolPolicy::None,
            handshake_timeout: Some(HANDSHAKE_TIMEOUT),
        }
    }
}

/// How a client connects: the request ([`ClientOptions`]: host, path, subprotocols) plus the
/// connection's limits and the permessage-deflate offer.
///
/// ```
/// use lowbit_websockets::ConnectOptions;
/// use lowbit_websockets::handshake::ClientOptions;
/// let opts = ConnectOptions { request: ClientOptions::new("example.com"), ..ConnectOptions::default() };
/// assert_eq!(opts.request.path, "/");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Limits; the role is forced to [`Role::Client`].
    pub config: Config,
    /// The request. Its `extensions` must stay `None` when `deflate` is set: the offer is then
    /// built from `deflate`, and only permessage-deflate can be checked in the answer.
    pub request: ClientOptions,
    /// Offer permessage-deflate with these settings, or `None` for no compression.
    pub deflate: Option<DeflateOptions>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self { config: Config::new(Role::Client), request: ClientOptions::default(), deflate: None }
    }
}

/// The server's sans-IO upgrade step: [`handshake::server_step`] with the subprotocol picked
/// by `opts.protocols` and permessage-deflate negotiated from `opts.deflate`.
///
/// `hook` sees the checked request first, once: return `Some(answer)` to override the policy
/// (refuse, e.g. by origin, with [`Accept::reject`], or pick the subprotocol), `None` to keep
/// it. The answer's `extensions` are ignored: deflate is always negotiated from `opts.deflate`,
/// so what is advertised is what runs. The result's [`Accepted::deflate`] is the configuration
/// to run the connection with.
pub fn server_step(
    buf: &[u8],
    opts: &AcceptOptions,
    hook: impl FnOnce(&Request<'_>) -> Option<Accept>,
) -> Step<Accepted> {
    let mut negotiated: Option<DeflateConfig> = None;
    let step = handshake::server_step(buf, |req| {
        let answer = hook(req);
        if let Some(refusal @ Accept { reject: Some(_), .. }) = answer {
            return refusal;
        }
        let protocol = match answer {
            Some(answer) => answer.protocol,
            None => opts.protocols.choose_for(req),
        };
        let extensions =
            opts.deflate.as_ref().and_then(|d| server_accept(req.extensions(), d)).map(|(response, config)| {
                negotiated = Some(config);
                response
            });
        Accept { protocol, extensions, reject: None }
    });
    match step {
        Step::Done { response, used, mut result } => {
            result.deflate = negotiated.filter(|_| result.extensions.is_some());
            Step::Done { response, used, result }
        }
        other => other,
    }
}

/// The subprotocols the request in `buf` offers, in the client's order, for a chooser that
/// lives outside Rust (`ws`'s `handleProtocols`); `Ok(None)` while the request is incomplete.
///
/// # Errors
///
/// Any [`handshake::parse_request`] error; [`server_step`] refuses the same request.
pub fn offered_protocols(buf: &[u8]) -> Result<Option<Vec<String>>, HandshakeError> {
    Ok(handshake::parse_request(buf)?.map(|(req, _)| req.protocols().map(str::to_owned).collect()))
}

/// The client's sans-IO upgrade: the request with a fresh key and the permessage-deflate
/// offer, then [`step`](ClientUpgrade::step) to check the answer.
#[derive(Debug, Clone)]
pub struct ClientUpgrade {
    handshake: ClientHandshake,
    deflate: Option<DeflateOptions>,
}

impl ClientUpgrade {
    /// Appends the upgrade request for `opts` to `out`.
    ///
    /// # Errors
    ///
    /// [`Error::Negotiation`] when `opts.deflate` cannot be offered, [`Error::Handshake`] with
    /// [`HandshakeError::InvalidArgument`] when the request cannot be written (see
    /// [`handshake::write_request`]) or both `opts.deflate` and `opts.request.extensions` are
    /// set, or with [`HandshakeError::Random`]. Nothing is appended then.
    pub fn new(opts: &ConnectOptions, out: &mut Vec<u8>) -> Result<Self> {
        let handshake = match &opts.deflate {
            None => ClientHandshake::new(&opts.request, out)?,
            Some(_) if opts.request.extensions.is_some() => {
                return Err(HandshakeError::InvalidArgument(
                    "request.extensions must be None when deflate is set: the offer is built from deflate",
                )
                .into());
            }
            Some(deflate) => {
                let extensions = Some(client_offer(deflate).map_err(Error::Negotiation)?);
                ClientHandshake::new(&ClientOptions { extensions, ..opts.request.clone() }, out)?
            }
        };
        Ok(Self { handshake, deflate: opts.deflate })
    }

    /// Checks the server's answer in `buf` (every byte received so far), permessage-deflate
    /// parameters included: [`Step::NeedMore`] while it is incomplete, [`Step::Refused`] (with
    /// nothing to send) with [`Error::Handshake`] or [`Error::Negotiation`], or [`Step::Done`]
    /// with [`Connected::deflate`] set as agreed.
    pub fn step(&self, buf: &[u8]) -> Step<Connected, Error> {
        let (used, mut result) = match self.handshake.step(buf) {
            Step::NeedMore => return Step::NeedMore,
            Step::Refused { response, error } => return Step::Refused { response, error: error.into() },
            Step::Done { used, result, .. } => (used, result),
        };
        if let Some(deflate) = &self.deflate {
            match client_verify(result.extensions.as_deref(), deflate) {
                Ok(config) => result.deflate = config,
                Err(e) => return Step::Refused { response: Vec::new(), error: Error::Negotiation(e) },
            }
        }
        Step::Done { response: Vec::new(), used, result }
    }
}

/// Runs the server handshake on `stream` and returns the connection, with deflate configured
/// as negotiated. Bad requests are answered with a 4xx response and return
/// [`Error::Handshake`]; a request not complete within [`AcceptOptions::handshake_timeout`]
/// gets 408 and [`HandshakeError::Timeout`] (see there for blocking reads; on a `TcpStream`,
/// [`tcp::accept`](crate::tcp::accept) holds the deadline exactly).
///
/// A server and a client over loopback, permessage-deflate on for both:
/// ```
/// use std::net::{TcpListener, TcpStream};
/// use lowbit_websockets::{AcceptOptions, ConnectOptions, DeflateOptions, OpCode};
/// use lowbit_websockets::handshake::ClientOptions;
///
/// let listener = TcpListener::bind("127.0.0.1:0")?;
/// let addr = listener.local_addr()?;
/// let server = std::thread::spawn(move || -> lowbit_websockets::Result<()> {
///     let opts = AcceptOptions { deflate: Some(DeflateOptions::default()), ..AcceptOptions::default() };
///     let (mut conn, accepted) = lowbit_websockets::accept(listener.accept()?.0, &opts)?;
///     assert!(accepted.deflate.is_some());
///     let mut buf = Vec::new();
///     let (op, message) = conn.read_message(&mut buf)?;
///     conn.write_message(op, message)?;
///     // The client's close comes next: reading it answers it.
///     assert_eq!(conn.read_message(&mut buf)?.0, OpCode::Close);
///     Ok(())
/// });
///
/// let opts = ConnectOptions {
///     request: ClientOptions::new(addr.to_string()),
///     deflate: Some(DeflateOptions::default()),
///     ..ConnectOptions::default()
/// };
/// let (mut conn, _connected) = lowbit_websockets::connect(TcpStream::connect(addr)?, &opts)?;
/// conn.write_message(OpCode::Text, b"hello")?;
/// let mut buf = Vec::new();
/// assert_eq!(conn.read_message(&mut buf)?, (OpCode::Text, &b"hello"[..]));
/// conn.close()?; // sends 1000, then waits for the server's answer
/// server.join().unwrap()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn accept<S: Read + Write>(stream: S, opts: &AcceptOptions) -> Result<(Conn<S>, Accepted)> {
    accept_with(stream, opts, |_| None)
}

/// [`accept`] with a hook that sees the request first; see [`server_step`] for what it may
/// decide.
pub fn accept_with<S: Read + Write>(
    stream: S,
    opts: &AcceptOptions,
    hook: impl FnOnce(&Request<'_>) -> Option<Accept>,
) -> Result<(Conn<S>, Accepted)> {
    accept_bounded(stream, opts, hook, &mut |_, _| Ok(()))
}

/// [`accept_with`], with every read bounded by `bound` (given the time left before the
/// handshake deadline), so the deadline holds against a silent client too.
pub(crate) fn accept_bounded<S: Read + Write>(
    mut stream: S,
    opts: &AcceptOptions,
    hook: impl FnOnce(&Request<'_>) -> Option<Accept>,
    bound: &mut dyn FnMut(&mut S, Duration) -> io::Result<()>,
) -> Result<(Conn<S>, Accepted)> {
    let deadline = opts.handshake_timeout.map(|timeout| Deadline { at: Instant::now() + timeout, bound });
    // `server_step` calls the hook only on the step that ends the loop, so it is there.
    let mut hook = Some(hook);
    let accepted = drive(
        &mut stream,
        &[],
        || HandshakeError::RequestTooLarge,
        deadline,
        |buf| server_step(buf, opts, |req| hook.take().and_then(|hook| hook(req))),
    )?;
    let config = Config { role: Role::Server, ..opts.config };
    let mut conn = Conn::with_early_data(stream, config, &accepted.leftover);
    conn.set_deflate(accepted.deflate.as_ref(), None);
    Ok((conn, accepted))
}

/// Runs the client handshake on `stream` and returns the connection, with deflate configured
/// as the server answered. An answer that does not match the offer fails with
/// [`Error::Negotiation`]. [`accept`] has an example with both ends.
pub fn connect<S: Read + Write>(mut stream: S, opts: &ConnectOptions) -> Result<(Conn<S>, Connected)> {
    let mut request = Vec::with_capacity(256);
    let client = ClientUpgrade::new(opts, &mut request)?;
    let connected = drive(&mut stream, &request, || HandshakeError::ResponseTooLarge, None, |buf| client.step(buf))?;
    let config = Config { role: Role::Client, ..opts.config };
    let mut conn = Conn::with_early_data(stream, config, &connected.leftover);
    conn.set_deflate(connected.deflate.as_ref(), None);
    Ok((conn, connected))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::ClientKey;

    /// Early frames: a masked "hi" from the client, an unmasked "hi" from the server.
    const CLIENT_FRAME: &[u8] = b"\x81\x82abcd\x09\x0b";
    const SERVER_FRAME: &[u8] = b"\x81\x02hi";

    fn server_opts(protocols: SubprotocolPolicy) -> AcceptOptions {
        AcceptOptions { deflate: Some(DeflateOptions::default()), protocols, ..AcceptOptions::default() }
    }

    fn client_opts(protocols: &[&str]) -> ConnectOptions {
        let protocols = protocols.iter().map(|p| (*p).to_owned()).collect();
        ConnectOptions {
            request: ClientOptions { protocols, ..ClientOptions::new("example.com").path("/chat") },
            deflate: Some(DeflateOptions::default()),
            ..ConnectOptions::default()
        }
    }

    /// Feeds every prefix of `input` (a byte at a time, as a trickling peer would) to `step`:
    /// it must ask for more until the head (`head_len` bytes) is complete, then be done with
    /// `used == head_len` and every byte past the head in the result's leftover.
    fn feed_byte_by_byte<T: std::fmt::Debug, E: std::fmt::Debug>(
        input: &[u8],
        head_len: usize,
        step: impl Fn(&[u8]) -> Step<T, E>,
        leftover: impl Fn(&T) -> &[u8],
    ) -> Vec<u8> {
        let mut last_response = Vec::new();
        for end in 0..=input.len() {
            match step(&input[..end]) {
                Step::NeedMore => assert!(end < head_len, "still incomplete after the head, at {end}"),
                Step::Done { response, used, result } => {
                    assert!(end >= head_len, "done before the head was complete, at {end}");
                    assert_eq!(used, head_len, "at {end}");
                    assert_eq!(leftover(&result), &input[head_len..end], "bytes past the head are reported");
                    last_response = response;
                }
                Step::Refused { error, .. } => panic!("refused at {end}: {error:?}"),
            }
        }
        last_response
    }

    #[test]
    fn both_steps_fed_a_byte_at_a_time_with_early_frames() {
        let mut request = Vec::new();
        let client = ClientUpgrade::new(&client_opts(&["v2", "chat"]), &mut request).unwrap();
        let head_len = request.len();
        request.extend_from_slice(CLIENT_FRAME);
        let opts = server_opts(SubprotocolPolicy::FirstSupported(vec!["chat".into()]));
        let response = feed_byte_by_byte(&request, head_len, |b| server_step(b, &opts, |_| None), |a| &a.leftover);
        let Step::Done { result: accepted, .. } = server_step(&request, &opts, |_| None) else { panic!() };
        assert_eq!((accepted.path.as_str(), accepted.protocol.as_deref()), ("/chat", Some("chat")));
        assert_eq!(accepted.extensions.as_deref(), Some("permessage-deflate"));
        assert!(accepted.deflate.is_some(), "the negotiated configuration comes with the result");

        let head_len = response.len();
        let mut answer = response;
        answer.extend_from_slice(SERVER_FRAME);
        feed_byte_by_byte(&answer, head_len, |b| client.step(b), |c| &c.leftover);
        let Step::Done { response, result: connected, .. } = client.step(&answer) else { panic!() };
        assert!(response.is_empty(), "a client has nothing to send after its request");
        assert_eq!(connected.protocol.as_deref(), Some("chat"));
        let (ours, theirs) = (connected.deflate.unwrap(), accepted.deflate.unwrap());
        assert_eq!(ours.compress_window_bits, theirs.decompress_window_bits, "both ends agree");
    }

    #[test]
    fn the_server_step_refuses_with_the_bytes_to_send() {
        let request = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        let opts = AcceptOptions::default();
        for end in 0..request.len() {
            assert!(matches!(server_step(&request[..end], &opts, |_| None), Step::NeedMore), "{end}");
        }
        let Step::Refused { response, error } = server_step(request, &opts, |_| None) else { panic!() };
        assert!(matches!(error, HandshakeError::UnsupportedVersion));
        assert!(response.starts_with(b"HTTP/1.1 426 Upgrade Required\r\n"));

        let mut valid = Vec::new();
        ClientUpgrade::new(&client_opts(&[]), &mut valid).unwrap();
        let refuse = |_: &Request<'_>| Some(Accept::reject(403, "no"));
        let Step::Refused { response, .. } = server_step(&valid, &opts, refuse) else { panic!() };
        assert!(response.starts_with(b"HTTP/1.1 403 Forbidden\r\n"));
    }

    #[test]
    fn the_client_step_refuses_a_bad_deflate_answer_with_nothing_to_send() {
        let opts = client_opts(&[]);
        let mut request = Vec::new();
        let key = ClientKey::from_nonce(*b"the sample nonce");
        // What `ClientUpgrade::new` builds, with a known key so the answer can carry its hash.
        let offer = client_offer(&DeflateOptions::default()).unwrap();
        let request_opts = ClientOptions { extensions: Some(offer), ..opts.request.clone() };
        let upgrade = ClientUpgrade {
            handshake: ClientHandshake::with_key(&request_opts, key.clone(), &mut request).unwrap(),
            deflate: opts.deflate,
        };
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\nSec-WebSocket-Extensions: permessage-deflate; bogus\r\n\r\n",
            key.expected_accept()
        );
        let Step::Refused { response, error } = upgrade.step(answer.as_bytes()) else { panic!() };
        assert!(response.is_empty());
        assert!(matches!(error, Error::Negotiation(_)), "{error:?}");
    }

    #[test]
    fn a_deflate_offer_and_raw_extensions_are_not_both_sent() {
        let mut opts = client_opts(&[]);
        opts.request.extensions = Some("x-foo".into());
        let mut out = Vec::new();
        let e = ClientUpgrade::new(&opts, &mut out).unwrap_err();
        assert!(matches!(e, Error::Handshake(HandshakeError::InvalidArgument(_))), "{e:?}");
        assert!(out.is_empty());
    }

    /// The Rust face's default comes from core's named policy: none unless configured.
    #[test]
    fn subprotocol_defaults_come_from_the_named_policies() {
        assert_eq!(AcceptOptions::default().protocols, SubprotocolPolicy::None);
        assert_eq!(SubprotocolPolicy::default(), SubprotocolPolicy::None);
        let mut request = Vec::new();
        ClientUpgrade::new(&client_opts(&["v2", "chat"]), &mut request).unwrap();
        let chosen = |protocols| match server_step(&request, &server_opts(protocols), |_| None) {
            Step::Done { result, .. } => result.protocol,
            other => panic!("{other:?}"),
        };
        assert_eq!(chosen(SubprotocolPolicy::None), None);
        assert_eq!(chosen(SubprotocolPolicy::ClientFirst).as_deref(), Some("v2"));
        assert_eq!(chosen(SubprotocolPolicy::FirstSupported(vec!["chat".into(), "v2".into()])).as_deref(), Some("v2"));
        assert_eq!(chosen(SubprotocolPolicy::FirstSupported(Vec::new())), None);
        assert_eq!(chosen(SubprotocolPolicy::Chosen(Some("chat".into()))).as_deref(), Some("chat"));
        let Step::Refused { response, .. } =
            server_step(&request, &server_opts(SubprotocolPolicy::Chosen(Some("x".into()))), |_| None)
        else {
            panic!()
        };
        assert!(response.starts_with(b"HTTP/1.1 500 "), "a choice the client did not offer");
    }
}
