//! The server side: parse and check the client's upgrade request, then answer it with
//! 101 Switching Protocols or a 4xx/5xx rejection (RFC 6455 §4.2).

use std::fmt;
use std::io::{Read, Write};

use base64::Engine as _;

use super::step::{Step, drive};
use super::{
    BASE64, HandshakeError, MAX_HANDSHAKE_SIZE, MAX_HEADERS, accept_key, extensions_were_offered, header_values,
    is_header_value, is_token, list, lists_token, single_header,
};
use crate::deflate::DeflateConfig;

/// A client's upgrade request that passed every check of RFC 6455 §4.2.1, borrowing the
/// buffer it was parsed from.
///
/// The checked fields ([`path`](Request::path), [`host`](Request::host),
/// [`key`](Request::key)) are always present; any other header can be read with
/// [`header`](Request::header).
#[derive(Clone)]
pub struct Request<'a> {
    path: &'a str,
    host: &'a str,
    key: &'a str,
    // A fixed array rather than a `Vec`, so that parsing a request allocates nothing.
    headers: [httparse::Header<'a>; MAX_HEADERS],
    len: usize,
}

impl<'a> Request<'a> {
    /// The request target as sent, e.g. `/chat?room=1`.
    pub fn path(&self) -> &'a str {
        self.path
    }

    /// The `Host` header, trimmed.
    pub fn host(&self) -> &'a str {
        self.host
    }

    /// The `Sec-WebSocket-Key` header, trimmed: base64 of 16 bytes.
    pub fn key(&self) -> &'a str {
        self.key
    }

    /// The `Origin` header, sent by browsers (RFC 6455 §4.1, §10.2). A server that serves
    /// browsers should check it against the origins it trusts.
    pub fn origin(&self) -> Option<&'a str> {
        self.header("Origin")
    }

    /// The value of the first header called `name` (compared case-insensitively), trimmed.
    /// `None` when there is no such header or its value is not UTF-8.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        let value = header_values(self.raw_headers(), name).next()?;
        std::str::from_utf8(value).ok().map(str::trim_ascii)
    }

    /// Every header line in order, as name and raw value bytes (HTTP allows non-UTF-8
    /// values).
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> {
        self.raw_headers().iter().map(|h| (h.name, h.value))
    }

    /// The subprotocols the client offers, most preferred first: the comma-separated elements
    /// of every `Sec-WebSocket-Protocol` header line, trimmed. Each is an HTTP token (checked
    /// by [`parse_request`]).
    pub fn protocols(&self) -> impl Iterator<Item = &'a str> {
        self.utf8_values("Sec-WebSocket-Protocol").filter_map(list::elements).flatten()
    }

    /// The raw value of every `Sec-WebSocket-Extensions` header line, in order. Negotiating
    /// them (which to accept, with which parameters) is the extension's job; see
    /// [`Accept::extensions`].
    pub fn extensions(&self) -> impl Iterator<Item = &'a str> + Clone {
        self.utf8_values("Sec-WebSocket-Extensions")
    }

    fn raw_headers(&self) -> &[httparse::Header<'a>] {
        self.headers.get(..self.len).unwrap_or(&[])
    }

    /// The values of the `name` header lines; [`parse_request`] has checked that those this
    /// is used for are UTF-8, so nothing is skipped in practice.
    fn utf8_values(&self, name: &'static str) -> impl Iterator<Item = &'a str> + Clone {
        header_values(self.raw_headers(), name).filter_map(|v| std::str::from_utf8(v).ok())
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("path", &self.path)
            .field("host", &self.host)
            .field("key", &self.key)
            .field("headers", &self.raw_headers())
            .finish()
    }
}

/// Parses a client's upgrade request from the start of `buf` and checks it against
/// RFC 6455 §4.2.1.
///
/// Returns `Ok(None)` while the request is incomplete: read more onto the end of `buf` and call
/// again. Once it is complete, returns the request and the number of bytes it used; any bytes
/// after those are the client's first frames.
///
/// # Errors
///
/// Each error has the status to refuse the request with ([`HandshakeError::status`],
/// [`HandshakeError::write_rejection`]):
/// - [`Malformed`](HandshakeError::Malformed): not HTTP/1.x, or more than [`MAX_HEADERS`]
///   header lines;
/// - [`RequestTooLarge`](HandshakeError::RequestTooLarge): no end of head within
///   [`MAX_HANDSHAKE_SIZE`] bytes;
/// - [`MethodNotGet`](HandshakeError::MethodNotGet), [`HttpVersion`](HandshakeError::HttpVersion);
/// - [`MissingHost`](HandshakeError::MissingHost),
///   [`MissingUpgrade`](HandshakeError::MissingUpgrade),
///   [`MissingConnectionUpgrade`](HandshakeError::MissingConnectionUpgrade),
///   [`UnsupportedVersion`](HandshakeError::UnsupportedVersion),
///   [`MissingKey`](HandshakeError::MissingKey), [`InvalidKey`](HandshakeError::InvalidKey):
///   a required header is absent or wrong;
/// - [`DuplicateHeader`](HandshakeError::DuplicateHeader): `Host`, `Sec-WebSocket-Key` or
///   `Sec-WebSocket-Version` appears twice;
/// - [`InvalidHeaderValue`](HandshakeError::InvalidHeaderValue): a `Sec-WebSocket-Protocol`
///   element is not a token, a `Sec-WebSocket-Extensions` value is not a list (an
///   unterminated quoted-string), or a WebSocket header is not UTF-8.
///
/// ```
/// use lowbit_websockets::handshake::parse_request;
/// let buf = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\n\r\n";
/// assert!(parse_request(&buf[..20]).unwrap().is_none());
/// let (req, used) = parse_request(buf).unwrap().unwrap();
/// assert_eq!((req.path(), used), ("/chat", buf.len()));
/// ```
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request<'_>, usize)>, HandshakeError> {
    // Parse no more than the cap, so a head that only ends past it is never complete.
    let head = buf.get(..MAX_HANDSHAKE_SIZE).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let used = match parsed.parse(head).map_err(HandshakeError::Malformed)? {
        httparse::Status::Complete(used) => used,
        httparse::Status::Partial if buf.len() > MAX_HANDSHAKE_SIZE => return Err(HandshakeError::RequestTooLarge),
        httparse::Status::Partial => return Ok(None),
    };
    let (method, path, version, len) = (parsed.method, parsed.path, parsed.version, parsed.headers.len());
    let parsed_headers = headers.get(..len).unwrap_or(&[]);

    if method != Some("GET") {
        return Err(HandshakeError::MethodNotGet);
    }
    // RFC 6455 §4.1 asks for "HTTP/1.1 or higher"; httparse only knows 1.0 and 1.1.
    if version != Some(1) {
        return Err(HandshakeError::HttpVersion);
    }
    // A complete parse always has a path; an empty one cannot be a valid target anyway.
    let path = path.filter(|p| !p.is_empty()).ok_or(HandshakeError::Malformed(httparse::Error::Token))?;

    let host = match single_header(parsed_headers, "Host")? {
        Some(host) if !host.is_empty() => utf8(host, "Host")?,
        _ => return Err(HandshakeError::MissingHost),
    };
    if !lists_token(parsed_headers, "Upgrade", "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !lists_token(parsed_headers, "Connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    // The key before the version, as `ws` checks them: a request that lacks both is refused
    // for the key (400), which every client that sends a version does too.
    let key = single_header(parsed_headers, "Sec-WebSocket-Key")?.ok_or(HandshakeError::MissingKey)?;
    let key = std::str::from_utf8(key).map_err(|_| HandshakeError::InvalidKey)?;
    if !is_valid_key(key) {
        return Err(HandshakeError::InvalidKey);
    }
    if single_header(parsed_headers, "Sec-WebSocket-Version")? != Some(b"13".as_slice()) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    for value in header_values(parsed_headers, "Sec-WebSocket-Protocol") {
        if !utf8(value, "Sec-WebSocket-Protocol")?.split(',').map(str::trim_ascii).all(|p| p.is_empty() || is_token(p))
        {
            return Err(HandshakeError::InvalidHeaderValue("Sec-WebSocket-Protocol"));
        }
    }
    for value in header_values(parsed_headers, "Sec-WebSocket-Extensions") {
        // Not a list (an unterminated quoted-string): refused, not declined; see `list`.
        if list::elements(utf8(value, "Sec-WebSocket-Extensions")?).is_none() {
            return Err(HandshakeError::InvalidHeaderValue("Sec-WebSocket-Extensions"));
        }
    }
    // The opening handshake has no content: what follows the head is frames. A body would be
    // read as frames, or smuggle a request past a proxy (RFC 9110 §9.3.1).
    if header_values(parsed_headers, "Transfer-Encoding").next().is_some() {
        return Err(HandshakeError::InvalidHeaderValue("Transfer-Encoding"));
    }
    if header_values(parsed_headers, "Content-Length").any(|v| v.trim_ascii() != b"0") {
        return Err(HandshakeError::InvalidHeaderValue("Content-Length"));
    }

    Ok(Some((Request { path, host, key, headers, len }, used)))
}

/// A header value as UTF-8, or [`HandshakeError::InvalidHeaderValue`] naming the header.
fn utf8<'b>(value: &'b [u8], name: &'static str) -> Result<&'b str, HandshakeError> {
    std::str::from_utf8(value).map_err(|_| HandshakeError::InvalidHeaderValue(name))
}

/// Whether `key` is the base64 encoding of exactly 16 bytes (RFC 6455 §4.1).
fn is_valid_key(key: &str) -> bool {
    // 16 bytes always encode to 24 characters; an 18-byte buffer is what the decoder asks
    // for a 24-character input, and anything longer is rejected before decoding.
    let mut decoded = [0u8; 18];
    key.len() == 24 && matches!(BASE64.decode_slice(key, &mut decoded), Ok(16))
}

/// Appends the 101 Switching Protocols response that accepts `req` to `out`, naming the chosen
/// subprotocol and extensions when given (RFC 6455 §4.2.2).
///
/// `protocol` must be one of [`Request::protocols`]. `extensions` is the value of the response's
/// `Sec-WebSocket-Extensions` header, as negotiated by the extensions (an empty value sends no
/// header); every extension it names must be among those the client offered.
///
/// # Errors
///
/// [`HandshakeError::InvalidArgument`] when the protocol or an extension was not offered, or
/// `extensions` holds characters a header value cannot; nothing is appended then.
pub fn write_response(
    req: &Request<'_>,
    protocol: Option<&str>,
    extensions: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<(), HandshakeError> {
    if let Some(protocol) = protocol
        && !req.protocols().any(|offered| offered == protocol)
    {
        return Err(HandshakeError::InvalidArgument("the chosen subprotocol was not offered by the client"));
    }
    let extensions = extensions.map(str::trim_ascii).filter(|e| !e.is_empty());
    if let Some(extensions) = extensions {
        if !is_header_value(extensions) {
            return Err(HandshakeError::InvalidArgument("the extensions value holds characters a header cannot"));
        }
        if !extensions_were_offered(extensions, req.extensions()) {
            return Err(HandshakeError::InvalidArgument("a chosen extension was not offered by the client"));
        }
    }

    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n");
    out.extend_from_slice(b"Sec-WebSocket-Accept: ");
    out.extend_from_slice(accept_key(req.key()).as_bytes());
    out.extend_from_slice(b"\r\n");
    if let Some(protocol) = protocol {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(protocol.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if let Some(extensions) = extensions {
        out.extend_from_slice(b"Sec-WebSocket-Extensions: ");
        out.extend_from_slice(extensions.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    Ok(())
}

/// The application's answer to a valid upgrade request, returned by [`accept`]'s `choose`
/// hook. The default accepts with no subprotocol and no extensions.
///
/// ```
/// use lowbit_websockets::handshake::Accept;
/// let chat = Accept { protocol: Some("chat".into()), ..Accept::default() };
/// let refuse = Accept::reject(403, "origin not allowed");
/// # let _ = (chat, refuse);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accept {
    /// The subprotocol to speak: one of [`Request::protocols`], or `None` for none.
    pub protocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` response value, as negotiated by the extensions (e.g.
    /// permessage-deflate's parameters), or `None` for no extensions.
    pub extensions: Option<String>,
    /// Refuse the request instead of accepting it.
    pub reject: Option<Rejection>,
}

impl Accept {
    /// An answer that refuses the request with `status` (400–599; anything else is sent as 500)
    /// and `reason` as the plain-text body.
    pub fn reject(status: u16, reason: impl Into<String>) -> Self {
        Self { reject: Some(Rejection { status, reason: reason.into() }), ..Self::default() }
    }
}

/// How the application refuses a request: see [`Accept::reject`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The HTTP status to answer with (400–599; anything else is sent as 500).
    pub status: u16,
    /// The plain-text response body.
    pub reason: String,
}

/// The outcome of a successful [`accept`] or [`server_step`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Accepted {
    /// The request target, e.g. `/chat?room=1`.
    pub path: String,
    /// The subprotocol agreed on, if any.
    pub protocol: Option<String>,
    /// The `Sec-WebSocket-Extensions` value sent, if any.
    pub extensions: Option<String>,
    /// The permessage-deflate configuration agreed on, when the upgrade negotiated it
    /// ([`upgrade::accept`](crate::upgrade::accept), [`upgrade::server_step`](crate::upgrade::server_step)).
    /// This module negotiates no extension itself, so its own functions leave it `None`.
    pub deflate: Option<DeflateConfig>,
    /// Bytes the client sent after its request: the start of its first frames. The frame
    /// decoder must consume them before anything read from the stream afterwards.
    pub leftover: Vec<u8>,
}

/// The server's sans-IO handshake step: parses the request in `buf` (every byte received so
/// far), asks `choose` how to answer once it is complete, and returns the answer to send.
///
/// `choose` is called at most once, with the checked request; see [`accept`] for what it
/// decides. It is not called while the request is incomplete or when it is invalid.
///
/// Returns [`Step::NeedMore`] while the request is incomplete, [`Step::Refused`] with the 4xx/5xx
/// response for a bad request (any [`parse_request`] error, [`HandshakeError::Rejected`] when
/// `choose` refuses, [`HandshakeError::InvalidArgument`] when it picks something the client
/// did not offer), or [`Step::Done`] with the 101 response.
///
/// ```
/// use lowbit_websockets::handshake::{Accept, Step, server_step};
/// let buf = b"GET /chat HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\n\
///     Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
///     Sec-WebSocket-Version: 13\r\n\r\n\x81";
/// assert!(matches!(server_step(&buf[..30], |_| Accept::default()), Step::NeedMore));
/// let Step::Done { response, used, result } = server_step(buf, |_| Accept::default()) else { panic!() };
/// assert!(response.starts_with(b"HTTP/1.1 101 "));
/// assert_eq!((used, result.path.as_str(), &result.leftover[..]), (buf.len() - 1, "/chat", &b"\x81"[..]));
/// ```
pub fn server_step(buf: &[u8], choose: impl FnOnce(&Request<'_>) -> Accept) -> Step<Accepted> {
    let refused = |error: HandshakeError| {
        let mut response = Vec::new();
        error.write_rejection(&mut response);
        Step::Refused { response, error }
    };
    let (req, used) = match parse_request(buf) {
        Ok(Some(done)) => done,
        Ok(None) => return Step::NeedMore,
        Err(e) => return refused(e),
    };
    let chosen = choose(&req);
    if let Some(Rejection { status, reason }) = chosen.reject {
        return refused(HandshakeError::Rejected { status, reason });
    }
    let mut response = Vec::with_capacity(256);
    if let Err(e) = write_response(&req, chosen.protocol.as_deref(), chosen.extensions.as_deref(), &mut response) {
        return refused(e);
    }
    let result = Accepted {
        path: req.path().to_owned(),
        protocol: chosen.protocol,
        // Report what was sent: write_response sends nothing for an empty value.
        extensions: chosen.extensions.filter(|e| !e.trim_ascii().is_empty()),
        deflate: None,
        leftover: buf.get(used..).unwrap_or_default().to_vec(),
    };
    Step::Done { response, used, result }
}

/// Runs the server side of the handshake on a blocking stream: reads the request, checks it,
/// asks `choose` how to answer, and writes the answer. A read loop over [`server_step`].
///
/// `choose` sees the checked request, and is where the application picks a subprotocol from
/// [`Request::protocols`], negotiates extensions from [`Request::extensions`], checks
/// [`Request::origin`] or refuses with [`Accept::reject`].
///
/// Reads in chunks, so it may read past the request; those bytes are returned in
/// [`Accepted::leftover`]. Nothing here times out: give the stream a read timeout first
/// (`TcpStream::set_read_timeout`), or a client that never finishes its request holds the call
/// forever; the timeout then surfaces as [`HandshakeError::Io`].
///
/// # Errors
///
/// Any [`parse_request`] error, [`HandshakeError::Rejected`] when `choose` refuses,
/// [`HandshakeError::InvalidArgument`] when `choose` picks something the client did not offer,
/// [`HandshakeError::Eof`] when the client hangs up early, and [`HandshakeError::Io`]. All but
/// the last two first write the refusing response to the stream (best effort); the caller
/// should then close the connection.
pub fn accept<S: Read + Write>(
    stream: &mut S,
    choose: impl FnOnce(&Request<'_>) -> Accept,
) -> Result<Accepted, HandshakeError> {
    // `server_step` calls `choose` only on the step that ends the loop, so it is there.
    let mut choose = Some(choose);
    drive(
        stream,
        &[],
        || HandshakeError::RequestTooLarge,
        None,
        |buf| server_step(buf, |req| choose.take().map_or_else(Accept::default, |choose| choose(req))),
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::MemStream;
    use super::*;

    const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

    /// A valid request with the RFC 6455 §1.3 key, plus `extra` header lines.
    fn request_with(extra: &str) -> Vec<u8> {
        format!(
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    /// A request built from the given header lines after the request line `GET / HTTP/1.1`.
    fn request_lines(lines: &[&str]) -> Vec<u8> {
        let mut s = String::from("GET / HTTP/1.1\r\n");
        for line in lines {
            s.push_str(line);
            s.push_str("\r\n");
        }
        s.push_str("\r\n");
        s.into_bytes()
    }

    const HOST: &str = "Host: h";
    const UPGRADE: &str = "Upgrade: websocket";
    const CONNECTION: &str = "Connection: Upgrade";
    const VERSION: &str = "Sec-WebSocket-Version: 13";
    const KEY_LINE: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";

    fn parse_err(buf: &[u8]) -> HandshakeError {
        match parse_request(buf) {
            Err(e) => e,
            Ok(ok) => panic!("expected an error, got {ok:?}"),
        }
    }

    fn status_line(e: &HandshakeError) -> String {
        let mut out = Vec::new();
        e.write_rejection(&mut out);
        let text = String::from_utf8(out).unwrap();
        text.lines().next().unwrap_or_default().to_owned()
    }

    #[test]
    fn server_accepts_rfc_example_request() {
        let buf = request_with("Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n");
        let (req, used) = parse_request(&buf).unwrap().unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(req.path(), "/chat");
        assert_eq!(req.host(), "server.example.com");
        assert_eq!(req.key(), KEY);
        assert_eq!(req.origin(), Some("http://example.com"));
        assert_eq!(req.header("sec-websocket-version"), Some("13"));
        assert_eq!(req.protocols().collect::<Vec<_>>(), ["chat", "superchat"]);
        assert_eq!(req.extensions().count(), 0);

        let mut out = Vec::new();
        write_response(&req, Some("chat"), None, &mut out).unwrap();
        assert_eq!(
            out,
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
        );
    }

    #[test]
    fn server_response_names_extensions() {
        let buf = request_with("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
        let (req, _) = parse_request(&buf).unwrap().unwrap();
        assert_eq!(req.extensions().collect::<Vec<_>>(), ["permessage-deflate; client_max_window_bits"]);
        let mut out = Vec::new();
        write_response(&req, None, Some("permessage-deflate; server_no_context_takeover"), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.ends_with("\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover\r\n\r\n"));
        assert!(!text.contains("Sec-WebSocket-Protocol"));
    }

    #[test]
    fn server_refuses_to_choose_unoffered_protocol_or_extension() {
        let buf = request_with("Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Extensions: x-foo\r\n");
        let (req, _) = parse_request(&buf).unwrap().unwrap();
        let mut out = Vec::new();
        for (protocol, extensions) in [
            (Some("superchat"), None),
            (Some("Chat"), None),
            (None, Some("permessage-deflate")),
            (None, Some("x-foo, x-bar")),
            (None, Some("x-foo\r\nSet-Cookie: a=b")),
        ] {
            let e = write_response(&req, protocol, extensions, &mut out).unwrap_err();
            assert!(matches!(e, HandshakeError::InvalidArgument(_)), "{protocol:?} {extensions:?}: {e:?}");
            assert_eq!(status_line(&e), "HTTP/1.1 500 Internal Server Error");
        }
        assert!(out.is_empty(), "nothing is written on error");
        write_response(&req, Some("chat"), Some("X-Foo; a=\"1,2\""), &mut out).unwrap();
    }

    #[test]
    fn server_checks_each_rule_with_its_status() {
        use HandshakeError::*;
        let cases: Vec<(Vec<u8>, &str, &str)> = vec![
            (b"POST / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), "MethodNotGet", "405 Method Not Allowed"),
            (b"get / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec(), "MethodNotGet", "405 Method Not Allowed"),
            (b"GET / HTTP/1.0\r\nHost: h\r\n\r\n".to_vec(), "HttpVersion", "505 HTTP Version Not Supported"),
            (b"GET / HTTP/2.0\r\n\r\n".to_vec(), "Malformed(Version)", "400 Bad Request"),
            (request_lines(&[UPGRADE, CONNECTION, VERSION, KEY_LINE]), "MissingHost", "400 Bad Request"),
            (request_lines(&["Host:", UPGRADE, CONNECTION, VERSION, KEY_LINE]), "MissingHost", "400 Bad Request"),
            (
                request_lines(&[HOST, HOST, UPGRADE, CONNECTION, VERSION, KEY_LINE]),
                "DuplicateHeader(\"Host\")",
                "400 Bad Request",
            ),
            (request_lines(&[HOST, CONNECTION, VERSION, KEY_LINE]), "MissingUpgrade", "400 Bad Request"),
            (
                request_lines(&[HOST, "Upgrade: h2c", CONNECTION, VERSION, KEY_LINE]),
                "MissingUpgrade",
                "400 Bad Request",
            ),
            (request_lines(&[HOST, UPGRADE, VERSION, KEY_LINE]), "MissingConnectionUpgrade", "400 Bad Request"),
            (
                request_lines(&[HOST, UPGRADE, "Connection: keep-alive", VERSION, KEY_LINE]),
                "MissingConnectionUpgrade",
                "400 Bad Request",
            ),
            (
                request_lines(&[HOST, UPGRADE, "Connection: upgraded", VERSION, KEY_LINE]),
                "MissingConnectionUpgrade",
                "400 Bad Request",
            ),
            (request_lines(&[HOST, UPGRADE, CONNECTION, KEY_LINE]), "UnsupportedVersion", "426 Upgrade Required"),
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, VERSION, KEY_LINE, "Content-Length: 5"]),
                "InvalidHeaderValue(\"Content-Length\")",
                "400 Bad Request",
            ),
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, VERSION, KEY_LINE, "Transfer-Encoding: chunked"]),
                "InvalidHeaderValue(\"Transfer-Encoding\")",
                "400 Bad Request",
            ),
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, "Sec-WebSocket-Version: 8", KEY_LINE]),
                "UnsupportedVersion",
                "426 Upgrade Required",
            ),
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, "Sec-WebSocket-Version: 13, 8", KEY_LINE]),
                "UnsupportedVersion",
                "426 Upgrade Required",
            ),
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, VERSION, VERSION, KEY_LINE]),
                "DuplicateHeader(\"Sec-WebSocket-Version\")",
                "400 Bad Request",
            ),
            (request_lines(&[HOST, UPGRADE, CONNECTION, VERSION]), "MissingKey", "400 Bad Request"),
            // Neither key nor version: refused for the key, as `ws` does.
            (request_lines(&[HOST, UPGRADE, CONNECTION]), "MissingKey", "400 Bad Request"),
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, VERSION, KEY_LINE, KEY_LINE]),
                "DuplicateHeader(\"Sec-WebSocket-Key\")",
                "400 Bad Request",
            ),
            // 15 bytes, 17 bytes, not base64, non-canonical padding bits, no padding.
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, VERSION, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAA"]),
                "InvalidKey",
                "400 Bad Request",
            ),
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, VERSION, "Sec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAAA="]),
                "InvalidKey",
                "400 Bad Request",
            ),
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, VERSION, "Sec-WebSocket-Key: not a key"]),
                "InvalidKey",
                "400 Bad Request",
            ),
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, VERSION, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZR=="]),
                "InvalidKey",
                "400 Bad Request",
            ),
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, VERSION, "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ"]),
                "InvalidKey",
                "400 Bad Request",
            ),
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, VERSION, KEY_LINE, "Sec-WebSocket-Protocol: chat, a b"]),
                "InvalidHeaderValue(\"Sec-WebSocket-Protocol\")",
                "400 Bad Request",
            ),
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, VERSION, KEY_LINE, "Sec-WebSocket-Protocol: \"chat\""]),
                "InvalidHeaderValue(\"Sec-WebSocket-Protocol\")",
                "400 Bad Request",
            ),
            (b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n".to_vec(), "Malformed(HeaderName)", "400 Bad Request"),
            // An unterminated quoted-string: not a list at all, so refused rather than declined.
            (
                request_lines(&[
                    HOST,
                    UPGRADE,
                    CONNECTION,
                    VERSION,
                    KEY_LINE,
                    "Sec-WebSocket-Extensions: permessage-deflate; x=\"1, y",
                ]),
                "InvalidHeaderValue(\"Sec-WebSocket-Extensions\")",
                "400 Bad Request",
            ),
        ];
        for (buf, want, line) in cases {
            let e = parse_err(&buf);
            assert_eq!(format!("{e:?}"), want, "{}", String::from_utf8_lossy(&buf));
            assert!(want.starts_with(e.kind()) && !want[e.kind().len()..].starts_with(char::is_alphanumeric), "{want}");
            assert_eq!(status_line(&e), format!("HTTP/1.1 {line}"), "{want}");
        }
        // A non-UTF-8 Host value (httparse allows obs-text bytes in values).
        let mut buf = request_lines(&[UPGRADE, CONNECTION, VERSION, KEY_LINE]);
        buf.splice(16..16, b"Host: h\xff\r\n".iter().copied());
        assert!(matches!(parse_err(&buf), InvalidHeaderValue("Host")));
    }

    #[test]
    fn server_rejections_carry_the_headers_their_status_needs() {
        let mut out = Vec::new();
        HandshakeError::UnsupportedVersion.write_rejection(&mut out);
        let text = String::from_utf8(out).unwrap();
        let body = "Sec-WebSocket-Version is missing or not 13\n";
        assert_eq!(
            text,
            format!(
                "HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
                 Connection: Upgrade, close\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
        );

        let mut out = Vec::new();
        HandshakeError::MethodNotGet.write_rejection(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with("HTTP/1.1 405 Method Not Allowed\r\nAllow: GET\r\nConnection: close\r\n"));
        assert!(text.ends_with("\r\n\r\nrequest method is not GET\n"));

        // Client-side errors and I/O failures have nothing to send.
        let mut out = Vec::new();
        HandshakeError::AcceptMismatch.write_rejection(&mut out);
        HandshakeError::Eof.write_rejection(&mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn server_finds_tokens_split_across_lines_and_in_any_case() {
        let buf = request_lines(&[
            "hOST: h",
            "upgrade: foo/2, WebSocket",
            "CONNECTION: keep-alive",
            "connection: , UPGRADE ,",
            "SEC-WEBSOCKET-VERSION: 13",
            "sec-websocket-key:   dGhlIHNhbXBsZSBub25jZQ==  ",
            "Sec-WebSocket-Protocol: a,, b",
            "sec-websocket-protocol: c",
            "Sec-WebSocket-Extensions: x-one",
            "Sec-WebSocket-Extensions: x-two; p=1",
        ]);
        let (req, _) = parse_request(&buf).unwrap().unwrap();
        assert_eq!(req.key(), KEY);
        assert_eq!(req.protocols().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(req.extensions().collect::<Vec<_>>(), ["x-one", "x-two; p=1"]);
        let mut out = Vec::new();
        write_response(&req, Some("c"), Some("x-two; p=1, X-ONE"), &mut out).unwrap();
    }

    #[test]
    fn server_needs_the_whole_request_byte_by_byte() {
        let mut buf = request_with("");
        buf.extend_from_slice(b"\x81\x85frame");
        let head_len = buf.len() - 7;
        for end in 0..head_len {
            assert!(parse_request(&buf[..end]).unwrap().is_none(), "complete after {end} bytes");
        }
        for end in head_len..=buf.len() {
            let (_, used) = parse_request(&buf[..end]).unwrap().unwrap();
            assert_eq!(used, head_len);
        }
    }

    #[test]
    fn server_caps_request_size_and_header_count() {
        let big = format!("X-Big: {}", "a".repeat(MAX_HANDSHAKE_SIZE));
        let buf = request_lines(&[HOST, &big]);
        assert!(matches!(parse_request(&buf[..MAX_HANDSHAKE_SIZE]), Ok(None)));
        let e = parse_err(&buf);
        assert!(matches!(e, HandshakeError::RequestTooLarge));
        assert_eq!(status_line(&e), "HTTP/1.1 431 Request Header Fields Too Large");

        let lines: Vec<String> = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v")).collect();
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let e = parse_err(&request_lines(&lines));
        assert!(matches!(e, HandshakeError::Malformed(httparse::Error::TooManyHeaders)));
        assert_eq!(status_line(&e), "HTTP/1.1 431 Request Header Fields Too Large");
    }

    #[test]
    fn accept_answers_and_keeps_bytes_past_the_request() {
        let mut input = request_with("Sec-WebSocket-Protocol: superchat, chat\r\n");
        input.extend_from_slice(b"\x81\x85early frame bytes");
        for chunk in [1, 7, 4096] {
            let mut stream = MemStream::new(&input, chunk);
            let accepted = accept(&mut stream, |req| Accept {
                protocol: req.protocols().find(|p| *p == "chat").map(str::to_owned),
                ..Accept::default()
            })
            .unwrap();
            assert_eq!(accepted.path, "/chat");
            assert_eq!(accepted.protocol.as_deref(), Some("chat"));
            assert_eq!(accepted.extensions, None);
            let rest: Vec<u8> = stream.remaining();
            assert_eq!([accepted.leftover, rest].concat(), b"\x81\x85early frame bytes", "chunk {chunk}");
            assert_eq!(
                stream.output,
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                  Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
            );
        }
    }

    #[test]
    fn accept_writes_rejections() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                request_lines(&[HOST, UPGRADE, CONNECTION, "Sec-WebSocket-Version: 7", KEY_LINE]),
                "HTTP/1.1 426 Upgrade Required",
            ),
            (b"PUT / HTTP/1.1\r\n\r\n".to_vec(), "HTTP/1.1 405 Method Not Allowed"),
            // Never a line ending: stopped by the cap, not by parsing.
            (vec![b'a'; MAX_HANDSHAKE_SIZE + 10], "HTTP/1.1 431 Request Header Fields Too Large"),
            (
                request_lines(&[HOST, &format!("X: {}", "b".repeat(MAX_HANDSHAKE_SIZE))]),
                "HTTP/1.1 431 Request Header Fields Too Large",
            ),
        ];
        for (input, line) in cases {
            let mut stream = MemStream::new(&input, 1000);
            let e = accept(&mut stream, |_| Accept::default()).unwrap_err();
            let text = String::from_utf8(stream.output).unwrap();
            assert!(text.starts_with(&format!("{line}\r\n")), "{e:?}: {text}");
        }

        let mut stream = MemStream::new(&request_with(""), 1000);
        let e = accept(&mut stream, |_| Accept::reject(403, "origin not allowed")).unwrap_err();
        assert!(matches!(e, HandshakeError::Rejected { status: 403, .. }));
        let text = String::from_utf8(stream.output).unwrap();
        assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\nConnection: close\r\n"));
        assert!(text.ends_with("Content-Length: 19\r\n\r\norigin not allowed\n"));

        let mut stream = MemStream::new(&request_with(""), 1000);
        let e = accept(&mut stream, |_| Accept::reject(200, "not an error status")).unwrap_err();
        assert_eq!(e.status(), Some(500));
        assert!(stream.output.starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));

        let mut stream = MemStream::new(&request_with(""), 1000);
        let e = accept(&mut stream, |_| Accept { protocol: Some("chat".into()), ..Accept::default() }).unwrap_err();
        assert!(matches!(e, HandshakeError::InvalidArgument(_)));
        assert!(stream.output.starts_with(b"HTTP/1.1 500 Internal Server Error\r\n"));
    }

    #[test]
    fn accept_reports_early_eof_and_sends_nothing() {
        let input = request_with("");
        let mut stream = MemStream::new(&input[..input.len() - 2], 5);
        assert!(matches!(accept(&mut stream, |_| Accept::default()), Err(HandshakeError::Eof)));
        assert!(stream.output.is_empty());
    }
}
