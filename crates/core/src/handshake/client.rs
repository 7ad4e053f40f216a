//! The client side: write the upgrade request, then check the server's answer against what was
//! asked for (RFC 6455 §4.1).

use std::io::{self, Read, Write};

use base64::Engine as _;

use super::step::{Step, drive};
use super::{
    BASE64, HandshakeError, MAX_HANDSHAKE_SIZE, MAX_HEADERS, accept_key, extensions_were_offered, header_values,
    is_header_value, is_token, list, lists_token, single_header,
};
use crate::deflate::DeflateConfig;

/// The `Sec-WebSocket-Key` a client sends, and the `Sec-WebSocket-Accept` value that proves the
/// server read it (RFC 6455 §4.1, §4.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientKey {
    key: String,
    accept: String,
}

impl ClientKey {
    /// A key from 16 fresh bytes of the operating system's random source, as RFC 6455 §4.1
    /// requires ("randomly selected ... for each connection").
    ///
    /// # Errors
    ///
    /// [`HandshakeError::Random`] when the random source fails.
    pub fn random() -> Result<Self, HandshakeError> {
        let mut nonce = [0u8; 16];
        // Keep getrandom's error type out of the public API.
        getrandom::fill(&mut nonce).map_err(|e| HandshakeError::Random(io::Error::other(e.to_string())))?;
        Ok(Self::from_nonce(nonce))
    }

    /// The key for a given 16-byte nonce, for callers with their own random source, and for
    /// tests. The nonce must be fresh and unpredictable for each connection.
    pub fn from_nonce(nonce: [u8; 16]) -> Self {
        let key = BASE64.encode(nonce);
        let accept = accept_key(&key);
        Self { key, accept }
    }

    /// The `Sec-WebSocket-Key` value: the nonce in base64.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The `Sec-WebSocket-Accept` value the server must answer with.
    pub fn expected_accept(&self) -> &str {
        &self.accept
    }
}

/// Appends an upgrade request with a fresh random key to `out` and returns the key, which
/// [`parse_response`] needs to check the answer. See [`write_request`] for the arguments.
///
/// ```
/// use lowbit_websockets::handshake::build_request;
/// let mut out = Vec::new();
/// let key = build_request("example.com", "/chat", &["chat"], None, &mut out).unwrap();
/// assert!(out.starts_with(b"GET /chat HTTP/1.1\r\nHost: example.com\r\n"));
/// assert_eq!(key.key().len(), 24);
/// ```
///
/// # Errors
///
/// Those of [`ClientKey::random`] and [`write_request`].
pub fn build_request(
    host: &str,
    path: &str,
    protocols: &[&str],
    extensions: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<ClientKey, HandshakeError> {
    let key = ClientKey::random()?;
    write_request(&key, host, path, protocols, extensions, out)?;
    Ok(key)
}

/// Appends an upgrade request using `key` to `out` (RFC 6455 §4.1):
///
/// - `host`: the `Host` header, with the port when it is not the default
///   (`example.com:8080`);
/// - `path`: the request target, starting with `/`, percent-encoded (`/chat?room=1`);
/// - `protocols`: the subprotocols offered, most preferred first; each an HTTP token, no
///   duplicates; none sends no `Sec-WebSocket-Protocol` header;
/// - `extensions`: the `Sec-WebSocket-Extensions` value offered, as built by the extensions
///   (e.g. `permessage-deflate; client_max_window_bits`); `None` or empty sends none.
///
/// # Errors
///
/// [`HandshakeError::InvalidArgument`] when a value cannot go into the request unchanged (line
/// breaks, spaces or non-ASCII in `host` or `path`, a protocol that is not a token, ...);
/// nothing is appended then.
pub fn write_request(
    key: &ClientKey,
    host: &str,
    path: &str,
    protocols: &[&str],
    extensions: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<(), HandshakeError> {
    // Check everything before writing anything: these values come from URLs and configuration,
    // and a line break in any of them would let its author add headers of their choosing.
    if host.is_empty() || !host.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HandshakeError::InvalidArgument("host must be non-empty, visible ASCII"));
    }
    if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(HandshakeError::InvalidArgument("path must start with '/' and be percent-encoded visible ASCII"));
    }
    if !protocols.iter().all(|p| is_token(p)) {
        return Err(HandshakeError::InvalidArgument("each subprotocol must be an HTTP token"));
    }
    // RFC 6455 §4.1: the offered subprotocols "MUST all be unique strings".
    if protocols.iter().enumerate().any(|(i, p)| protocols.iter().skip(i + 1).any(|q| q == p)) {
        return Err(HandshakeError::InvalidArgument("subprotocols must be unique"));
    }
    let extensions = extensions.map(str::trim_ascii).filter(|e| !e.is_empty());
    if extensions.is_some_and(|e| !is_header_value(e)) {
        return Err(HandshakeError::InvalidArgument("the extensions value holds characters a header cannot"));
    }

    for part in [b"GET ".as_slice(), path.as_bytes(), b" HTTP/1.1\r\nHost: ", host.as_bytes()] {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    out.extend_from_slice(key.key().as_bytes());
    out.extend_from_slice(b"\r\nSec-WebSocket-Version: 13\r\n");
    if let Some((first, rest)) = protocols.split_first() {
        out.extend_from_slice(b"Sec-WebSocket-Protocol: ");
        out.extend_from_slice(first.as_bytes());
        for protocol in rest {
            out.extend_from_slice(b", ");
            out.extend_from_slice(protocol.as_bytes());
        }
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

/// What a server agreed to in its 101 response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Response {
    /// The subprotocol the server chose, one of those offered; `None` when it chose none.
    pub protocol: Option<String>,
    /// The server's `Sec-WebSocket-Extensions` value (several header lines joined with `, `),
    /// or `None`. Only the extension names have been checked against the offer; the extension
    /// must check the parameters before it is used.
    pub extensions: Option<String>,
}

/// Parses the server's answer to an upgrade request from the start of `buf` and checks it
/// against RFC 6455 §4.1 and what the request offered.
///
/// Returns `Ok(None)` while the response is incomplete: read more onto the end of `buf` and
/// call again. Once it is complete, returns what the server agreed to and the number of bytes
/// the response used; any bytes after those are the server's first frames.
///
/// `key`, `offered_protocols` and `offered_extensions` must be those the request was built
/// with.
///
/// # Errors
///
/// - [`Malformed`](HandshakeError::Malformed), [`ResponseTooLarge`](HandshakeError::ResponseTooLarge):
///   not an HTTP/1.x response head within [`MAX_HANDSHAKE_SIZE`] bytes;
/// - [`Status`](HandshakeError::Status): any status but 101, e.g. a refusal;
/// - [`HttpVersion`](HandshakeError::HttpVersion),
///   [`MissingUpgrade`](HandshakeError::MissingUpgrade),
///   [`MissingConnectionUpgrade`](HandshakeError::MissingConnectionUpgrade),
///   [`AcceptMismatch`](HandshakeError::AcceptMismatch): not a valid WebSocket 101 for this key;
/// - [`UnofferedProtocol`](HandshakeError::UnofferedProtocol),
///   [`UnofferedExtension`](HandshakeError::UnofferedExtension): the server picked something
///   not offered;
/// - [`DuplicateHeader`](HandshakeError::DuplicateHeader),
///   [`InvalidHeaderValue`](HandshakeError::InvalidHeaderValue): a repeated
///   `Sec-WebSocket-Accept` or `Sec-WebSocket-Protocol`, a `Sec-WebSocket-Extensions` value
///   that is not a list (an unterminated quoted-string), or a non-UTF-8 value.
pub fn parse_response(
    buf: &[u8],
    key: &ClientKey,
    offered_protocols: &[&str],
    offered_extensions: Option<&str>,
) -> Result<Option<(Response, usize)>, HandshakeError> {
    // Parse no more than the cap, so a head that only ends past it is never complete.
    let head = buf.get(..MAX_HANDSHAKE_SIZE).unwrap_or(buf);
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Response::new(&mut headers);
    let used = match parsed.parse(head).map_err(HandshakeError::Malformed)? {
        httparse::Status::Complete(used) => used,
        httparse::Status::Partial if buf.len() > MAX_HANDSHAKE_SIZE => {
            return Err(HandshakeError::ResponseTooLarge);
        }
        httparse::Status::Partial => return Ok(None),
    };
    let (code, version, headers) = (parsed.code, parsed.version, &*parsed.headers);

    // The status first: a refusal is best reported as such, whatever else it lacks.
    if code != Some(101) {
        return Err(HandshakeError::Status(code.unwrap_or(0)));
    }
    if version != Some(1) {
        return Err(HandshakeError::HttpVersion);
    }
    if !lists_token(headers, "Upgrade", "websocket") {
        return Err(HandshakeError::MissingUpgrade);
    }
    if !lists_token(headers, "Connection", "upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    if single_header(headers, "Sec-WebSocket-Accept")? != Some(key.expected_accept().as_bytes()) {
        return Err(HandshakeError::AcceptMismatch);
    }

    let protocol = match single_header(headers, "Sec-WebSocket-Protocol")? {
        None => None,
        Some(value) => {
            let value = utf8(value, "Sec-WebSocket-Protocol")?;
            // Subprotocol names compare exactly: RFC 6455 §11.3.4 does not make them
            // case-insensitive. This also fails any choice when nothing was offered.
            if !offered_protocols.contains(&value) {
                return Err(HandshakeError::UnofferedProtocol);
            }
            Some(value.to_owned())
        }
    };

    let mut extensions: Option<String> = None;
    for value in header_values(headers, "Sec-WebSocket-Extensions") {
        let value = utf8(value, "Sec-WebSocket-Extensions")?.trim_ascii();
        if value.is_empty() {
            continue;
        }
        if list::elements(value).is_none() {
            return Err(HandshakeError::InvalidHeaderValue("Sec-WebSocket-Extensions"));
        }
        if !extensions_were_offered(value, offered_extensions.into_iter()) {
            return Err(HandshakeError::UnofferedExtension);
        }
        match &mut extensions {
            Some(all) => {
                all.push_str(", ");
                all.push_str(value);
            }
            None => extensions = Some(value.to_owned()),
        }
    }

    Ok(Some((Response { protocol, extensions }, used)))
}

/// A header value as UTF-8, or [`HandshakeError::InvalidHeaderValue`] naming the header.
fn utf8<'b>(value: &'b [u8], name: &'static str) -> Result<&'b str, HandshakeError> {
    std::str::from_utf8(value).map_err(|_| HandshakeError::InvalidHeaderValue(name))
}

/// What a client asks for in its upgrade request; see [`write_request`] for each field's
/// syntax.
///
/// ```
/// use lowbit_websockets::handshake::ClientOptions;
/// let opts = ClientOptions { protocols: vec!["chat".into()], ..ClientOptions::new("example.com") };
/// assert_eq!(opts.path, "/");
/// assert_eq!(ClientOptions::new("example.com").path("/chat").path, "/chat");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// The `Host` header, with the port when it is not the default.
    pub host: String,
    /// The request target; `/` by default.
    pub path: String,
    /// The subprotocols to offer, most preferred first.
    pub protocols: Vec<String>,
    /// The `Sec-WebSocket-Extensions` value to offer, as built by the extensions.
    pub extensions: Option<String>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self { host: String::new(), path: "/".to_owned(), protocols: Vec::new(), extensions: None }
    }
}

impl ClientOptions {
    /// A request to `host` (with the port when it is not the default) for `/`, offering no
    /// subprotocol and no extension.
    pub fn new(host: impl Into<String>) -> Self {
        Self { host: host.into(), ..Self::default() }
    }

    /// The same request for the target `path` instead.
    #[must_use]
    pub fn path(self, path: impl Into<String>) -> Self {
        Self { path: path.into(), ..self }
    }
}

/// The outcome of a successful [`connect`] or [`ClientHandshake::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Connected {
    /// The subprotocol the server chose, if any.
    pub protocol: Option<String>,
    /// The server's `Sec-WebSocket-Extensions` value, if any; see [`Response::extensions`].
    pub extensions: Option<String>,
    /// The permessage-deflate configuration agreed on, when the upgrade negotiated it
    /// ([`upgrade::connect`](crate::upgrade::connect), [`ClientUpgrade`](crate::upgrade::ClientUpgrade)).
    /// This module negotiates no extension itself, so its own functions leave it `None`.
    pub deflate: Option<DeflateConfig>,
    /// Bytes the server sent after its response: the start of its first frames. The frame
    /// decoder must consume them before anything read from the stream afterwards.
    pub leftover: Vec<u8>,
}

/// The client's sans-IO handshake: builds the request, then checks the server's answer
/// with [`step`](ClientHandshake::step) against what the request offered.
///
/// ```
/// use lowbit_websockets::handshake::{ClientHandshake, ClientOptions, Step};
/// let opts = ClientOptions { host: "example.com".into(), ..ClientOptions::default() };
/// let mut request = Vec::new();
/// let client = ClientHandshake::new(&opts, &mut request).unwrap();
/// assert!(request.starts_with(b"GET / HTTP/1.1\r\nHost: example.com\r\n"));
/// assert!(matches!(client.step(b"HTTP/1.1 101 Switching"), Step::NeedMore));
/// ```
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    key: ClientKey,
    protocols: Vec<String>,
    extensions: Option<String>,
}

impl ClientHandshake {
    /// Appends the upgrade request for `opts`, with a fresh random key, to `out`.
    ///
    /// # Errors
    ///
    /// Those of [`build_request`]; nothing is appended then.
    pub fn new(opts: &ClientOptions, out: &mut Vec<u8>) -> Result<Self, HandshakeError> {
        Self::with_key(opts, ClientKey::random()?, out)
    }

    /// [`new`](ClientHandshake::new) with a given key, for callers with their own random
    /// source, and for tests.
    ///
    /// # Errors
    ///
    /// Those of [`write_request`]; nothing is appended then.
    pub fn with_key(opts: &ClientOptions, key: ClientKey, out: &mut Vec<u8>) -> Result<Self, HandshakeError> {
        let protocols: Vec<&str> = opts.protocols.iter().map(String::as_str).collect();
        write_request(&key, &opts.host, &opts.path, &protocols, opts.extensions.as_deref(), out)?;
        Ok(Self { key, protocols: opts.protocols.clone(), extensions: opts.extensions.clone() })
    }

    /// Checks the server's answer in `buf` (every byte received so far): [`Step::NeedMore`]
    /// while it is incomplete, [`Step::Refused`] (with nothing to send) for any
    /// [`parse_response`] error, [`Step::Done`] (with nothing to send) when the server agreed.
    pub fn step(&self, buf: &[u8]) -> Step<Connected> {
        let protocols: Vec<&str> = self.protocols.iter().map(String::as_str).collect();
        match parse_response(buf, &self.key, &protocols, self.extensions.as_deref()) {
            Ok(None) => Step::NeedMore,
            Err(error) => Step::Refused { response: Vec::new(), error },
            Ok(Some((response, used))) => Step::Done {
                response: Vec::new(),
                used,
                result: Connected {
                    protocol: response.protocol,
                    extensions: response.extensions,
                    deflate: None,
                    leftover: buf.get(used..).unwrap_or_default().to_vec(),
                },
            },
        }
    }
}

/// Runs the client side of the handshake on a blocking stream: writes the request with a fresh
/// key, then reads and checks the response. A read loop over [`ClientHandshake::step`].
///
/// Reads in chunks, so it may read past the response; those bytes are returned in
/// [`Connected::leftover`]. Nothing here times out: give the stream a read timeout first if the
/// server may stall; the timeout then surfaces as [`HandshakeError::Io`].
///
/// # Errors
///
/// Those of [`build_request`] and [`parse_response`], [`HandshakeError::Eof`] when the server
/// hangs up early, and [`HandshakeError::Io`]. The caller should close the stream on any error.
pub fn connect<S: Read + Write>(stream: &mut S, opts: &ClientOptions) -> Result<Connected, HandshakeError> {
    let mut request = Vec::with_capacity(256);
    let client = ClientHandshake::new(opts, &mut request)?;
    drive(stream, &request, || HandshakeError::ResponseTooLarge, None, |buf| client.step(buf))
}

#[cfg(test)]
mod tests {
    use super::super::tests::MemStream;
    use super::super::{Accept, accept, parse_request, write_response};
    use super::*;

    const NONCE: [u8; 16] = *b"the sample nonce";

    fn response(accept: &str, extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    fn parse_err(buf: &[u8], protocols: &[&str], extensions: Option<&str>) -> HandshakeError {
        match parse_response(buf, &ClientKey::from_nonce(NONCE), protocols, extensions) {
            Err(e) => e,
            Ok(ok) => panic!("expected an error, got {ok:?}"),
        }
    }

    #[test]
    fn client_key_matches_rfc_example() {
        let key = ClientKey::from_nonce(NONCE);
        assert_eq!(key.key(), "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(key.expected_accept(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let (a, b) = (ClientKey::random().unwrap(), ClientKey::random().unwrap());
        assert_ne!(a.key(), b.key(), "each key is fresh");
    }

    #[test]
    fn client_writes_the_request() {
        let mut out = Vec::new();
        let key = ClientKey::from_nonce(NONCE);
        write_request(&key, "server.example.com", "/chat", &["chat", "superchat"], Some("x-foo"), &mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Extensions: x-foo\r\n\r\n"
        );

        let mut out = Vec::new();
        write_request(&key, "h:80", "/", &[], Some(" "), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("Protocol") && !text.contains("Extensions"), "{text}");
    }

    #[test]
    fn client_refuses_values_that_would_break_the_request() {
        let key = ClientKey::from_nonce(NONCE);
        let mut out = Vec::new();
        for (host, path, protocols, extensions) in [
            ("", "/", &[][..], None),
            ("h\r\nX: y", "/", &[], None),
            ("h", "", &[], None),
            ("h", "chat", &[], None),
            ("h", "/a b", &[], None),
            ("h", "/é", &[], None),
            ("h", "/", &["a b"], None),
            ("h", "/", &[""], None),
            ("h", "/", &["chat", "chat"], None),
            ("h", "/", &[], Some("x\r\nSet-Cookie: a")),
        ] {
            let e = write_request(&key, host, path, protocols, extensions, &mut out).unwrap_err();
            assert!(matches!(e, HandshakeError::InvalidArgument(_)), "{host:?} {path:?}: {e:?}");
        }
        assert!(out.is_empty(), "nothing is written on error");
    }

    #[test]
    fn client_round_trip_through_server() {
        let mut request = Vec::new();
        let offered = ["superchat", "chat"];
        let offer = "permessage-deflate; client_max_window_bits, x-other";
        let key = build_request("example.com:8080", "/ws?x=1", &offered, Some(offer), &mut request).unwrap();

        let (req, used) = parse_request(&request).unwrap().unwrap();
        assert_eq!(used, request.len());
        assert_eq!((req.host(), req.path(), req.key()), ("example.com:8080", "/ws?x=1", key.key()));
        assert_eq!(req.protocols().collect::<Vec<_>>(), offered);
        assert_eq!(req.extensions().collect::<Vec<_>>(), [offer]);

        let mut answer = Vec::new();
        write_response(&req, Some("chat"), Some("permessage-deflate"), &mut answer).unwrap();
        answer.extend_from_slice(b"\x81\x02hi");
        let (response, used) = parse_response(&answer, &key, &offered, Some(offer)).unwrap().unwrap();
        assert_eq!(answer.get(used..), Some(&b"\x81\x02hi"[..]));
        assert_eq!(response.protocol.as_deref(), Some("chat"));
        assert_eq!(response.extensions.as_deref(), Some("permessage-deflate"));
        for end in 0..used {
            assert!(parse_response(&answer[..end], &key, &offered, Some(offer)).unwrap().is_none(), "{end}");
        }
    }

    #[test]
    fn client_checks_each_rule() {
        let good = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
        // (response, protocols offered, extensions offered, expected error)
        type Case<'a> = (Vec<u8>, &'a [&'a str], Option<&'a str>, &'a str);
        let cases: Vec<Case> = vec![
            (b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_vec(), &[], None, "Status(403)"),
            (b"HTTP/1.1 200 OK\r\n\r\n".to_vec(), &[], None, "Status(200)"),
            (b"HTTP/1.0 101 Switching Protocols\r\n\r\n".to_vec(), &[], None, "HttpVersion"),
            (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n".to_vec(), &[], None, "MissingUpgrade"),
            (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n".to_vec(),
                &[],
                None,
                "MissingConnectionUpgrade",
            ),
            (response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo", ""), &[], None, "AcceptMismatch"),
            (response("dGhlIHNhbXBsZSBub25jZQ==", ""), &[], None, "AcceptMismatch"),
            (
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n".to_vec(),
                &[],
                None,
                "AcceptMismatch",
            ),
            (
                response(good, &format!("Sec-WebSocket-Accept: {good}\r\n")),
                &[],
                None,
                "DuplicateHeader(\"Sec-WebSocket-Accept\")",
            ),
            (response(good, "Sec-WebSocket-Protocol: chat\r\n"), &[], None, "UnofferedProtocol"),
            (response(good, "Sec-WebSocket-Protocol: chat\r\n"), &["superchat"], None, "UnofferedProtocol"),
            (response(good, "Sec-WebSocket-Protocol: Chat\r\n"), &["chat"], None, "UnofferedProtocol"),
            (
                response(good, "Sec-WebSocket-Protocol: chat, superchat\r\n"),
                &["chat", "superchat"],
                None,
                "UnofferedProtocol",
            ),
            (
                response(good, "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n"),
                &["chat"],
                None,
                "DuplicateHeader(\"Sec-WebSocket-Protocol\")",
            ),
            (response(good, "Sec-WebSocket-Extensions: permessage-deflate\r\n"), &[], None, "UnofferedExtension"),
            (
                response(good, "Sec-WebSocket-Extensions: permessage-deflate, x-foo\r\n"),
                &[],
                Some("permessage-deflate"),
                "UnofferedExtension",
            ),
            (response(good, "Sec-WebSocket-Extensions: ; a=1\r\n"), &[], Some("x-foo"), "UnofferedExtension"),
            (
                response(good, "Sec-WebSocket-Extensions: permessage-deflate\r\nSec-WebSocket-Extensions: x-foo\r\n"),
                &[],
                Some("permessage-deflate"),
                "UnofferedExtension",
            ),
            (b"HTTP/1.1 101\r\nUpgrade websocket\r\n\r\n".to_vec(), &[], None, "Malformed(HeaderName)"),
            (
                response(good, "Sec-WebSocket-Extensions: permessage-deflate; x=\"1\r\n"),
                &[],
                Some("permessage-deflate"),
                "InvalidHeaderValue(\"Sec-WebSocket-Extensions\")",
            ),
        ];
        for (buf, protocols, extensions, want) in cases {
            let e = parse_err(&buf, protocols, extensions);
            assert_eq!(format!("{e:?}"), want, "{}", String::from_utf8_lossy(&buf));
        }
    }

    #[test]
    fn client_accepts_lenient_but_valid_responses() {
        let key = ClientKey::from_nonce(NONCE);
        let buf = b"HTTP/1.1 101 Whatever\r\nupgrade: WebSocket\r\nconnection: keep-alive, upgrade\r\n\
            sec-websocket-accept:  s3pPLMBiTxaQ9kYGzzhZRbK+xOo=  \r\n\
            Sec-WebSocket-Extensions: PERMESSAGE-DEFLATE; server_max_window_bits=10\r\n\
            Sec-WebSocket-Extensions: x-q; v=\"a,b\"\r\n\r\n";
        let (response, used) = parse_response(buf, &key, &[], Some("permessage-deflate, x-q")).unwrap().unwrap();
        assert_eq!(used, buf.len());
        assert_eq!(response.protocol, None);
        assert_eq!(
            response.extensions.as_deref(),
            Some("PERMESSAGE-DEFLATE; server_max_window_bits=10, x-q; v=\"a,b\"")
        );
    }

    #[test]
    fn client_caps_response_size() {
        let key = ClientKey::from_nonce(NONCE);
        let buf = response("x", &format!("X-Big: {}\r\n", "a".repeat(MAX_HANDSHAKE_SIZE)));
        assert!(matches!(parse_response(&buf[..MAX_HANDSHAKE_SIZE], &key, &[], None), Ok(None)));
        assert!(matches!(parse_response(&buf, &key, &[], None), Err(HandshakeError::ResponseTooLarge)));
    }

    #[test]
    fn connect_keeps_bytes_past_the_response() {
        let opts = ClientOptions {
            host: "example.com".into(),
            path: "/chat".into(),
            protocols: vec!["v2.chat".into(), "chat".into()],
            extensions: Some("x-foo".into()),
        };
        for chunk in [1, 3, 4096] {
            let mut stream =
                ScriptedServer { request: Vec::new(), reply_extra: b"\x81\x05early".to_vec(), reply: None, chunk };
            let connected = connect(&mut stream, &opts).unwrap();
            assert_eq!(connected.protocol.as_deref(), Some("v2.chat"));
            assert_eq!(connected.extensions.as_deref(), Some("x-foo"));
            let rest = stream.reply.as_mut().map(MemStream::remaining).unwrap_or_default();
            assert_eq!([connected.leftover, rest].concat(), b"\x81\x05early", "chunk {chunk}");
        }
    }

    /// `connect` and `accept` talk to each other over a real socket pair, each on its thread.
    #[cfg(unix)]
    #[test]
    fn connect_and_accept_over_a_socket_pair() {
        use std::os::unix::net::UnixStream;
        let (mut client, mut server) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let accepted = accept(&mut server, |req| Accept {
                protocol: req.protocols().find(|p| *p == "chat").map(str::to_owned),
                ..Accept::default()
            });
            server.write_all(b"\x81\x02hi").unwrap();
            accepted
        });
        let opts = ClientOptions {
            host: "localhost".into(),
            protocols: vec!["superchat".into(), "chat".into()],
            ..ClientOptions::default()
        };
        let connected = connect(&mut client, &opts).unwrap();
        let accepted = server.join().unwrap().unwrap();
        assert_eq!((accepted.path.as_str(), accepted.protocol.as_deref()), ("/", Some("chat")));
        assert!(accepted.leftover.is_empty());
        assert_eq!(connected.protocol.as_deref(), Some("chat"));
        let mut first_frame = connected.leftover;
        while first_frame.len() < 4 {
            let mut byte = [0u8; 1];
            client.read_exact(&mut byte).unwrap();
            first_frame.push(byte[0]);
        }
        assert_eq!(first_frame, b"\x81\x02hi");
    }

    #[test]
    fn connect_reports_refusals_and_early_eof() {
        let opts = ClientOptions { host: "h".into(), ..ClientOptions::default() };
        let mut stream = MemStream::new(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", 10);
        assert!(matches!(connect(&mut stream, &opts), Err(HandshakeError::Status(404))));
        assert!(stream.output.starts_with(b"GET / HTTP/1.1\r\nHost: h\r\n"));
        let mut stream = MemStream::new(b"HTTP/1.1 101 Switching", 10);
        assert!(matches!(connect(&mut stream, &opts), Err(HandshakeError::Eof)));
        let mut stream = MemStream::new(b"", 10);
        let bad = ClientOptions { host: "h".into(), path: "no-slash".into(), ..ClientOptions::default() };
        assert!(matches!(connect(&mut stream, &bad), Err(HandshakeError::InvalidArgument(_))));
        assert!(stream.output.is_empty());
    }

    /// A stream that plays a server: once the client's request is complete, it answers with the
    /// real server code (`parse_request` + `write_response`, choosing the first protocol and
    /// echoing the extensions) followed by `reply_extra`, served `chunk` bytes per read.
    struct ScriptedServer {
        request: Vec<u8>,
        reply_extra: Vec<u8>,
        reply: Option<MemStream>,
        chunk: usize,
    }

    impl Write for ScriptedServer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.request.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Read for ScriptedServer {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.reply.is_none() {
                let (req, _) = parse_request(&self.request)
                    .map_err(io::Error::other)?
                    .ok_or_else(|| io::Error::other("read before the request was complete"))?;
                let mut answer = Vec::new();
                let extensions: Vec<&str> = req.extensions().collect();
                write_response(&req, req.protocols().next(), extensions.first().copied(), &mut answer)
                    .map_err(io::Error::other)?;
                answer.extend_from_slice(&self.reply_extra);
                self.reply = Some(MemStream::new(&answer, self.chunk));
            }
            self.reply.as_mut().map_or(Ok(0), |r| r.read(buf))
        }
    }
}
