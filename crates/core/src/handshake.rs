//! The HTTP/1.1 upgrade handshake (RFC 6455 §4): the one HTTP exchange that turns a TCP
//! connection into a WebSocket.
//!
//! Like the rest of the crate, it comes in two layers:
//!
//! - **sans-IO functions over byte buffers.** A server calls [`parse_request`] on the bytes it
//!   has read so far, then [`write_response`] to accept or
//!   [`HandshakeError::write_rejection`] to refuse. A client calls [`build_request`], then
//!   [`parse_response`] on the bytes it has read so far. Both parsers return `Ok(None)` while
//!   the head is incomplete, and the number of bytes the head used once it is complete. They do
//!   no I/O and never panic, whatever the input.
//! - **sans-IO steps** over the same buffers: [`server_step`] and [`ClientHandshake::step`]
//!   take every byte received so far and return a [`Step`]: need more, refused (with the bytes
//!   to send), or done (with the bytes to send, the bytes used and the result).
//! - **blocking helpers over any `Read + Write` stream:** [`accept`] (server) and [`connect`]
//!   (client), read loops over the steps.
//!
//! ```text
//!  client                                   server
//!  build_request ── GET, Upgrade, key ──▶  parse_request ─▶ (app picks protocol, extensions)
//!  parse_response ◀── 101, accept hash ──  write_response  (or write_rejection: 4xx/5xx)
//! ```
//!
//! All HTTP syntax is parsed by `httparse`; this module checks the WebSocket rules on top.
//!
//! **Bytes past the head belong to the WebSocket.** A peer may send its first frames in the
//! same packet as its handshake, so a read can return more than the head. The parsers report
//! where the head ends, and [`accept`] and [`connect`] hand the rest back as `leftover`: feed it
//! to the frame decoder before reading the stream again.
//!
//! Not done here: choosing a subprotocol (the application does, in [`accept`]'s `choose` hook)
//! and negotiating extension parameters such as permessage-deflate's (the extension module
//! does; this module only checks that a peer never picks an extension that was not offered).
//! Nor TLS, redirects, authentication or WebSockets over HTTP/2 (RFC 8441).

use std::fmt;
use std::io::{self, Read};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

mod client;
pub(crate) mod list;
mod server;
pub(crate) mod step;

pub use client::{
    ClientHandshake, ClientKey, ClientOptions, Connected, Response, build_request, connect, parse_response,
    write_request,
};
pub use server::{Accept, Accepted, Rejection, Request, accept, parse_request, server_step, write_response};
pub use step::Step;

/// The largest request or response head accepted, in bytes. Real handshakes are well under
/// 1 KiB plus cookies; the cap stops a peer from making the handshake buffer grow without bound.
/// A longer request is refused with 431 Request Header Fields Too Large.
pub const MAX_HANDSHAKE_SIZE: usize = 16 * 1024;

/// The most header lines accepted in one request or response head; more is refused (a request
/// with 431 Request Header Fields Too Large).
pub const MAX_HEADERS: usize = 64;

/// The GUID that RFC 6455 §1.3 appends to the key before hashing.
const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Computes the `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key` (RFC 6455 §4.2.2):
/// base64 of the SHA-1 of the key followed by the WebSocket GUID.
///
/// ```
/// use lowbit_websockets::handshake::accept_key;
/// assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &str) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(sha1.digest().bytes())
}

/// Why an upgrade handshake failed.
///
/// Variants name the rule the peer (or the local caller) broke. Those a server can meet map to
/// the HTTP response that refuses the request ([`HandshakeError::status`],
/// [`HandshakeError::write_rejection`]); those only a client meets have no status.
#[derive(Debug)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The request method is not `GET` (RFC 6455 §4.1; 405 Method Not Allowed).
    MethodNotGet,
    /// The request or response is not HTTP/1.1 (RFC 6455 §4.1, §4.2.2; a server answers
    /// 505 HTTP Version Not Supported).
    HttpVersion,
    /// The request has no `Host` header, or an empty one (RFC 6455 §4.1; 400).
    MissingHost,
    /// The `Upgrade` header is absent or does not list `websocket` (RFC 6455 §4.1, §4.2.2;
    /// 400).
    MissingUpgrade,
    /// The `Connection` header is absent or does not list `upgrade` (RFC 6455 §4.1, §4.2.2;
    /// 400).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Version` is absent or not `13`, the only version this crate speaks
    /// (RFC 6455 §4.2.2, §4.4; 426 Upgrade Required, naming version 13).
    UnsupportedVersion,
    /// The request has no `Sec-WebSocket-Key` header (RFC 6455 §4.1; 400).
    MissingKey,
    /// `Sec-WebSocket-Key` is not the base64 encoding of exactly 16 bytes (RFC 6455 §4.1; 400).
    InvalidKey,
    /// A header that must appear at most once appears more than once (RFC 6455 §4.1,
    /// RFC 9110 §7.2 for `Host`; 400).
    DuplicateHeader(&'static str),
    /// A header's value is not valid for it: not UTF-8, a `Sec-WebSocket-Protocol` element
    /// that is not an HTTP token (RFC 6455 §4.1), or a request body announced by a
    /// `Content-Length` other than 0 or any `Transfer-Encoding` (an opening handshake has no
    /// content; RFC 9110 §9.3.1) (400).
    InvalidHeaderValue(&'static str),
    /// The request head exceeds [`MAX_HANDSHAKE_SIZE`] (431 Request Header Fields Too Large).
    RequestTooLarge,
    /// The response head exceeds [`MAX_HANDSHAKE_SIZE`].
    ResponseTooLarge,
    /// The head is not valid HTTP/1.x, or has more than [`MAX_HEADERS`] header lines (400, or
    /// 431 for too many headers).
    Malformed(httparse::Error),
    /// The server application refused the request through [`Accept::reject`]; the status it
    /// chose was sent.
    Rejected {
        /// The HTTP status sent (a status outside 400–599 is sent as 500).
        status: u16,
        /// The reason, sent as the response body.
        reason: String,
    },
    /// A value passed by the local caller cannot go into a handshake: a subprotocol or
    /// extension the client did not offer, a header value with line breaks, ... The text says
    /// which. A server answers 500 Internal Server Error.
    InvalidArgument(&'static str),
    /// The server answered with a status other than 101 Switching Protocols (RFC 6455 §4.1).
    Status(u16),
    /// `Sec-WebSocket-Accept` is absent or does not match the key the client sent
    /// (RFC 6455 §4.1).
    AcceptMismatch,
    /// The server picked a subprotocol the client did not offer, or any subprotocol when none
    /// was offered (RFC 6455 §4.1).
    UnofferedProtocol,
    /// The server's `Sec-WebSocket-Extensions` names an extension the client did not offer
    /// (RFC 6455 §4.1, §9.1).
    UnofferedExtension,
    /// The stream ended before the request or response head was complete.
    Eof,
    /// The request head was not complete within the handshake deadline
    /// ([`AcceptOptions::handshake_timeout`](crate::AcceptOptions::handshake_timeout); 408
    /// Request Timeout). The deadline is total, so a peer trickling its request a byte at a
    /// time meets it as surely as a silent one.
    Timeout,
    /// Reading or writing the stream failed.
    Io(io::Error),
    /// The operating system's random source failed while making a client key.
    Random(io::Error),
}

impl HandshakeError {
    /// The variant's name (`"AcceptMismatch"`, `"Status"`, ...), for faces that map errors to
    /// their own messages or codes.
    pub fn kind(&self) -> &'static str {
        use HandshakeError::*;
        match self {
            MethodNotGet => "MethodNotGet",
            HttpVersion => "HttpVersion",
            MissingHost => "MissingHost",
            MissingUpgrade => "MissingUpgrade",
            MissingConnectionUpgrade => "MissingConnectionUpgrade",
            UnsupportedVersion => "UnsupportedVersion",
            MissingKey => "MissingKey",
            InvalidKey => "InvalidKey",
            DuplicateHeader(_) => "DuplicateHeader",
            InvalidHeaderValue(_) => "InvalidHeaderValue",
            RequestTooLarge => "RequestTooLarge",
            ResponseTooLarge => "ResponseTooLarge",
            Malformed(_) => "Malformed",
            Rejected { .. } => "Rejected",
            InvalidArgument(_) => "InvalidArgument",
            Status(_) => "Status",
            AcceptMismatch => "AcceptMismatch",
            UnofferedProtocol => "UnofferedProtocol",
            UnofferedExtension => "UnofferedExtension",
            Eof => "Eof",
            Timeout => "Timeout",
            Io(_) => "Io",
            Random(_) => "Random",
        }
    }

    /// The HTTP status a server answers this error with, or `None` when it sends nothing (the
    /// stream failed or ended, or the error is one only a client meets).
    pub fn status(&self) -> Option<u16> {
        use HandshakeError::*;
        Some(match self {
            MethodNotGet => 405,
            Timeout => 408,
            HttpVersion => 505,
            UnsupportedVersion => 426,
            MissingHost
            | MissingUpgrade
            | MissingConnectionUpgrade
            | MissingKey
            | InvalidKey
            | DuplicateHeader(_)
            | InvalidHeaderValue(_) => 400,
            RequestTooLarge | Malformed(httparse::Error::TooManyHeaders) => 431,
            Malformed(_) => 400,
            Rejected { status, .. } if (400..=599).contains(status) => *status,
            Rejected { .. } | InvalidArgument(_) => 500,
            ResponseTooLarge | Status(_) | AcceptMismatch | UnofferedProtocol | UnofferedExtension | Eof | Io(_)
            | Random(_) => return None,
        })
    }

    /// Appends the HTTP response that refuses the request to `out`: the status line,
    /// `Connection: close`, a plain-text body naming the problem, and the headers the status
    /// calls for (`Allow: GET` with 405; `Upgrade: websocket` and `Sec-WebSocket-Version: 13`
    /// with 426). Appends nothing when [`HandshakeError::status`] is `None`.
    ///
    /// The server should close the connection once the response is written.
    pub fn write_rejection(&self, out: &mut Vec<u8>) {
        let Some(status) = self.status() else { return };
        let mut body = match self {
            HandshakeError::Rejected { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        body.push('\n');
        let mut head = format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status));
        match self {
            HandshakeError::MethodNotGet => head.push_str("Allow: GET\r\nConnection: close\r\n"),
            // RFC 9110 §15.5.22: a 426 must name the protocol to upgrade to, and whoever
            // sends `Upgrade` must also list it in `Connection` (§7.8).
            HandshakeError::UnsupportedVersion => {
                head.push_str("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nConnection: Upgrade, close\r\n");
            }
            _ => head.push_str("Connection: close\r\n"),
        }
        head.push_str("Content-Type: text/plain; charset=utf-8\r\n");
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body.as_bytes());
    }
}

/// The reason phrase for the statuses a rejection is likely to use; any phrase is valid HTTP,
/// so the rest get a generic one.
fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ if status < 500 => "Client Error",
        _ => "Server Error",
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use HandshakeError::*;
        match self {
            MethodNotGet => f.write_str("request method is not GET"),
            HttpVersion => f.write_str("HTTP version is not 1.1"),
            MissingHost => f.write_str("request has no Host header"),
            MissingUpgrade => f.write_str("Upgrade header does not list \"websocket\""),
            MissingConnectionUpgrade => f.write_str("Connection header does not list \"upgrade\""),
            UnsupportedVersion => f.write_str("Sec-WebSocket-Version is missing or not 13"),
            MissingKey => f.write_str("request has no Sec-WebSocket-Key header"),
            InvalidKey => f.write_str("Sec-WebSocket-Key is not the base64 encoding of 16 bytes"),
            DuplicateHeader(name) => write!(f, "header {name} appears more than once"),
            InvalidHeaderValue(name) => write!(f, "header {name} has an invalid value"),
            RequestTooLarge => write!(f, "request head exceeds {MAX_HANDSHAKE_SIZE} bytes"),
            ResponseTooLarge => write!(f, "response head exceeds {MAX_HANDSHAKE_SIZE} bytes"),
            Malformed(httparse::Error::TooManyHeaders) => write!(f, "more than {MAX_HEADERS} header lines"),
            Malformed(e) => write!(f, "malformed HTTP head: {e}"),
            Rejected { status, reason } => write!(f, "rejected by the application with status {status}: {reason}"),
            InvalidArgument(what) => write!(f, "invalid argument: {what}"),
            Status(code) => write!(f, "server answered with status {code}, not 101 Switching Protocols"),
            AcceptMismatch => f.write_str("Sec-WebSocket-Accept is missing or does not match the key sent"),
            UnofferedProtocol => f.write_str("server chose a subprotocol the client did not offer"),
            UnofferedExtension => f.write_str("server chose an extension the client did not offer"),
            Eof => f.write_str("stream ended before the handshake was complete"),
            Timeout => f.write_str("request head not complete within the handshake deadline"),
            Io(e) => write!(f, "i/o error: {e}"),
            Random(e) => write!(f, "random source failed: {e}"),
        }
    }
}

impl std::error::Error for HandshakeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HandshakeError::Io(e) | HandshakeError::Random(e) => Some(e),
            HandshakeError::Malformed(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for HandshakeError {
    fn from(e: io::Error) -> Self {
        HandshakeError::Io(e)
    }
}

// ---- helpers shared by the server and client sides ----

/// The values of every header line called `name` (header names are case-insensitive,
/// RFC 9110 §5.1).
fn header_values<'b>(headers: &[httparse::Header<'b>], name: &str) -> impl Iterator<Item = &'b [u8]> + Clone {
    headers.iter().filter(move |h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value)
}

/// The value of a header that may appear at most once, trimmed of surrounding whitespace.
fn single_header<'b>(headers: &[httparse::Header<'b>], name: &'static str) -> Result<Option<&'b [u8]>, HandshakeError> {
    let mut values = header_values(headers, name);
    let first = values.next();
    if values.next().is_some() {
        return Err(HandshakeError::DuplicateHeader(name));
    }
    Ok(first.map(<[u8]>::trim_ascii))
}

/// Whether any `name` header lists `token` (case-insensitively). A list may be split over
/// several header lines (RFC 9110 §5.3), e.g. `Connection: keep-alive` then
/// `Connection: Upgrade`. A line that is not a valid list lists nothing.
fn lists_token(headers: &[httparse::Header<'_>], name: &str, token: &str) -> bool {
    header_values(headers, name)
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter_map(list::elements)
        .flatten()
        .any(|element| element.eq_ignore_ascii_case(token))
}

/// The extension names in a `Sec-WebSocket-Extensions` value: the token before the first `;`
/// of each element (RFC 6455 §9.1). `None` when the value is not a valid list.
fn extension_names(value: &str) -> Option<impl Iterator<Item = &str>> {
    Some(list::elements(value)?.map(|element| element.split(';').next().unwrap_or("").trim_ascii()))
}

/// Whether every extension named in `chosen` is a token also named in one of the `offered`
/// values (extension names are compared case-insensitively, like other HTTP tokens). With
/// nothing offered, any named extension fails; so does a `chosen` that is not a valid list.
fn extensions_were_offered<'a>(chosen: &str, offered: impl Iterator<Item = &'a str> + Clone) -> bool {
    let offered_names = move || offered.clone().filter_map(extension_names).flatten();
    extension_names(chosen).is_some_and(|mut names| {
        names.all(|name| is_token(name) && offered_names().any(|o| o.eq_ignore_ascii_case(name)))
    })
}

/// Whether `s` is an HTTP token (RFC 9110 §5.6.2), the syntax of subprotocol names
/// (RFC 6455 §4.1) and extension names.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `s` can be written as a header value: visible ASCII, spaces and tabs only. Anything
/// else (above all CR and LF) could end the header early and inject others.
fn is_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic())
}

/// Reads from `stream` onto `buf` until a read brings a `\n`, or fails with `too_large` once
/// `buf` holds more than [`MAX_HANDSHAKE_SIZE`] bytes, or with [`HandshakeError::Timeout`]
/// once `deadline` has passed (checked before every read, each read bounded by the time left).
///
/// A head can only become complete on a line ending, so parsing after reads without one would
/// be wasted work, and quadratic for a peer that trickles its head a byte at a time.
fn read_to_line_end<S: Read>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    too_large: HandshakeError,
    deadline: &mut Option<step::Deadline<'_, S>>,
) -> Result<(), HandshakeError> {
    let mut chunk = [0u8; 4096];
    loop {
        if buf.len() > MAX_HANDSHAKE_SIZE {
            return Err(too_large);
        }
        if let Some(deadline) = deadline {
            deadline.before_read(stream)?;
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Err(HandshakeError::Eof),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(match deadline {
                    Some(deadline) => deadline.explain(e),
                    None => HandshakeError::Io(e),
                });
            }
        };
        // `get`: a faulty `Read` could claim more bytes than the chunk holds.
        let fresh = chunk.get(..n).unwrap_or(&chunk);
        buf.extend_from_slice(fresh);
        if fresh.contains(&b'\n') {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{self, Cursor, Read, Write};

    use proptest::prelude::any;

    use super::*;

    /// An in-memory stream: reads come from `input`, at most `chunk` bytes at a time (to mimic
    /// a socket's partial reads); writes collect in `output`.
    pub(super) struct MemStream {
        input: Cursor<Vec<u8>>,
        chunk: usize,
        pub(super) output: Vec<u8>,
    }

    impl MemStream {
        pub(super) fn new(input: &[u8], chunk: usize) -> Self {
            Self { input: Cursor::new(input.to_vec()), chunk, output: Vec::new() }
        }

        /// The input not read yet.
        pub(super) fn remaining(&mut self) -> Vec<u8> {
            let mut rest = Vec::new();
            self.input.read_to_end(&mut rest).unwrap();
            rest
        }
    }

    impl Read for MemStream {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.chunk);
            self.input.read(&mut buf[..n])
        }
    }

    impl Write for MemStream {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.output.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn accept_key_matches_rfc_example() {
        // RFC 6455 §1.3; also computed independently with Python's hashlib and base64.
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn extension_names_are_the_tokens_before_parameters() {
        let names: Vec<&str> =
            extension_names("permessage-deflate; client_max_window_bits, x-foo;a=\"b,c\"").unwrap().collect();
        assert_eq!(names, ["permessage-deflate", "x-foo"]);
        assert!(extension_names("x-foo; a=\"b").is_none(), "an unterminated quote is not a list");
        assert!(!extensions_were_offered("x-foo; a=\"b", ["x-foo"].into_iter()));
    }

    #[test]
    fn every_error_displays_and_server_errors_have_statuses() {
        use HandshakeError::*;
        let errors = [
            MethodNotGet,
            HttpVersion,
            MissingHost,
            MissingUpgrade,
            MissingConnectionUpgrade,
            UnsupportedVersion,
            MissingKey,
            InvalidKey,
            DuplicateHeader("Host"),
            InvalidHeaderValue("Host"),
            RequestTooLarge,
            Malformed(httparse::Error::Token),
            Rejected { status: 404, reason: "no".into() },
            InvalidArgument("x"),
        ];
        for e in &errors {
            assert!(!e.to_string().is_empty());
            let status = e.status().unwrap();
            let mut out = Vec::new();
            e.write_rejection(&mut out);
            // Every rejection is itself a well-formed HTTP response with the body it announces.
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut parsed = httparse::Response::new(&mut headers);
            let httparse::Status::Complete(head) = parsed.parse(&out).unwrap() else { panic!("partial") };
            assert_eq!(parsed.code, Some(status));
            let length = parsed.headers.iter().find(|h| h.name == "Content-Length").unwrap().value;
            assert_eq!(std::str::from_utf8(length).unwrap().parse::<usize>().unwrap(), out.len() - head);
        }
        for e in [ResponseTooLarge, Status(500), AcceptMismatch, UnofferedProtocol, UnofferedExtension, Eof] {
            assert_eq!(e.status(), None, "{e}");
            assert!(!e.to_string().is_empty());
        }
        assert_eq!(Io(io::Error::other("x")).status(), None);
        assert_eq!(Random(io::Error::other("x")).status(), None);
    }

    /// A tiny xorshift generator: tests stay reproducible without a dependency.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n.max(1) as u64) as usize
        }
    }

    /// Feeds every truncation of valid heads, and many random mutations of them, to both
    /// parsers. Nothing may panic; whatever parses must report a length within the input.
    #[test]
    fn parsers_survive_truncated_and_mutated_input() {
        let key = ClientKey::from_nonce(*b"the sample nonce");
        let mut request = Vec::new();
        write_request(&key, "h:1", "/p?q", &["a", "b"], Some("permessage-deflate; x=\"1,2\""), &mut request).unwrap();
        let (req, _) = parse_request(&request).unwrap().unwrap();
        let mut response = Vec::new();
        write_response(&req, Some("b"), Some("permessage-deflate"), &mut response).unwrap();
        let seeds = [request.clone(), response.clone()];

        let check = |input: &[u8]| {
            if let Ok(Some((_, used))) = parse_request(input) {
                assert!(used <= input.len());
            }
            if let Ok(Some((_, used))) = parse_response(input, &key, &["a", "b"], Some("permessage-deflate")) {
                assert!(used <= input.len());
            }
        };
        for seed in &seeds {
            for end in 0..=seed.len() {
                check(&seed[..end]);
            }
        }
        let alphabet = b"\r\n :,;\"\\\x00\xff=aGET/HTTP1.";
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let mut input = seeds[rng.below(2)].clone();
            for _ in 0..=rng.below(4) {
                let at = rng.below(input.len() + 1);
                match rng.below(4) {
                    0 if at < input.len() => input[at] = alphabet[rng.below(alphabet.len())],
                    1 if at < input.len() => {
                        input.remove(at);
                    }
                    2 => input.insert(at, rng.next() as u8),
                    _ => input.truncate(at),
                }
            }
            check(&input);
        }
        for _ in 0..5_000 {
            let input: Vec<u8> = (0..rng.below(300)).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            check(&input);
        }
    }

    proptest::proptest! {
        #[test]
        fn parsers_never_panic_on_arbitrary_bytes(input in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let key = ClientKey::from_nonce([7; 16]);
            let _ = parse_request(&input);
            let _ = parse_response(&input, &key, &["chat"], Some("permessage-deflate"));
        }
    }

    /// Interop: a tungstenite client against `accept`, and `connect` against a tungstenite
    /// server, over socket pairs.
    #[cfg(unix)]
    #[test]
    fn interoperates_with_tungstenite() {
        use std::os::unix::net::UnixStream;
        use tungstenite::client::IntoClientRequest as _;

        let (client, mut server) = UnixStream::pair().unwrap();
        let peer = std::thread::spawn(move || {
            let mut request = "ws://localhost/chat".into_client_request().unwrap();
            request.headers_mut().insert("Sec-WebSocket-Protocol", "superchat, chat".parse().unwrap());
            let (mut ws, response) = tungstenite::client(request, client).unwrap();
            ws.send(tungstenite::Message::text("hello")).unwrap();
            response.headers().get("Sec-WebSocket-Protocol").map(|v| v.to_str().unwrap().to_owned())
        });
        let accepted = accept(&mut server, |req| Accept {
            protocol: req.protocols().find(|p| *p == "chat").map(str::to_owned),
            ..Accept::default()
        })
        .unwrap();
        assert_eq!(peer.join().unwrap().as_deref(), Some("chat"));
        assert_eq!(accepted.path, "/chat");

        let (mut client, server) = UnixStream::pair().unwrap();
        let peer = std::thread::spawn(move || {
            #[expect(clippy::result_large_err, reason = "the closure's type is tungstenite's callback signature")]
            let mut ws =
                tungstenite::accept_hdr(server, |_req: &_, mut response: tungstenite::handshake::server::Response| {
                    response.headers_mut().insert("Sec-WebSocket-Protocol", "chat".parse().unwrap());
                    Ok(response)
                })
                .unwrap();
            ws.send(tungstenite::Message::text("hi")).unwrap();
        });
        let opts =
            ClientOptions { host: "localhost".into(), protocols: vec!["chat".into()], ..ClientOptions::default() };
        let connected = connect(&mut client, &opts).unwrap();
        peer.join().unwrap();
        assert_eq!(connected.protocol.as_deref(), Some("chat"));
        let mut frame = connected.leftover;
        client.read_to_end(&mut frame).unwrap_or_default();
        assert!(frame.starts_with(b"\x81\x02hi"), "{frame:?}");
    }
}
