// The shared handshake list: upgrade requests and what every face's server (permessage-deflate
// on, default settings) must answer. Loaded like `cases.rs`: by the native and component run
// (host-tests/tests/handshakes.rs) and, as JSON lines from crates/node's
// `lbws-conformance-cases --handshakes`, by the Node and Deno suites. Needs only `std`.

/// One upgrade request and the answer it must get.
pub struct HandshakeCase {
    /// Short, unique, snake_case.
    pub name: &'static str,
    /// The whole request, sent at once.
    pub request: Vec<u8>,
    /// The status the response must carry (any of these).
    pub status: &'static [u16],
    /// A line the response head must contain (compared lowercase), if any.
    pub has: Option<&'static str>,
    /// A header the response must not carry (lowercase name), if any.
    pub lacks: Option<&'static str>,
}

const KEY_LINE: &str = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==";

/// A request from these lines (the request line first), ended by an empty line.
fn request(lines: &[&str]) -> Vec<u8> {
    let mut out = lines.join("\r\n");
    out.push_str("\r\n\r\n");
    out.into_bytes()
}

/// The valid upgrade's header lines, with `replace` swapped in (or, when its value is empty,
/// the line dropped) and `extra` appended.
fn upgrade(replace: &[(&str, &str)], extra: &[&str]) -> Vec<u8> {
    let base = [
        ("GET", "GET / HTTP/1.1"),
        ("Host", "Host: 127.0.0.1"),
        ("Upgrade", "Upgrade: websocket"),
        ("Connection", "Connection: Upgrade"),
        ("Key", KEY_LINE),
        ("Version", "Sec-WebSocket-Version: 13"),
    ];
    let mut lines: Vec<&str> = base
        .iter()
        .filter_map(|(name, line)| match replace.iter().find(|(n, _)| n == name) {
            Some((_, "")) => None,
            Some((_, new)) => Some(*new),
            None => Some(*line),
        })
        .collect();
    lines.extend_from_slice(extra);
    request(&lines)
}

pub fn handshake_cases() -> Vec<HandshakeCase> {
    let ok = &[101u16][..];
    let bad = &[400u16][..];
    let c = |name, request, status, has, lacks| HandshakeCase { name, request, status, has, lacks };
    let accept = Some("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=");
    vec![
        c("valid", upgrade(&[], &[]), ok, accept, Some("sec-websocket-extensions")),
        c(
            "connection_token_list",
            upgrade(&[("Connection", "Connection: keep-alive, Upgrade")], &[]),
            ok,
            accept,
            None,
        ),
        c("upgrade_token_any_case", upgrade(&[("Upgrade", "Upgrade: WebSocket")], &[]), ok, accept, None),
        c(
            "version_12",
            upgrade(&[("Version", "Sec-WebSocket-Version: 12")], &[]),
            &[426],
            Some("sec-websocket-version: 13"),
            None,
        ),
        c("no_version", upgrade(&[("Version", "")], &[]), &[426], Some("sec-websocket-version: 13"), None),
        c("no_host", upgrade(&[("Host", "")], &[]), bad, None, None),
        c("no_key", upgrade(&[("Key", "")], &[]), bad, None, None),
        c("key_of_15_bytes", upgrade(&[("Key", "Sec-WebSocket-Key: eHh4eHh4eHh4eHh4eHh4")], &[]), bad, None, None),
        c("key_not_base64", upgrade(&[("Key", "Sec-WebSocket-Key: !!!!!!!!!!!!!!!!!!!!!!==")], &[]), bad, None, None),
        c("two_keys", upgrade(&[], &[KEY_LINE]), bad, None, None),
        // (Node's http server hands these to its request handler, which asks core too.)
        c("no_upgrade_header", upgrade(&[("Upgrade", "")], &[]), bad, None, None),
        c("no_connection_header", upgrade(&[("Connection", "")], &[]), bad, None, None),
        // The opening handshake has no body (what follows the head is frames).
        c("content_length_5", upgrade(&[], &["Content-Length: 5"]), bad, None, None),
        c("transfer_encoding_chunked", upgrade(&[], &["Transfer-Encoding: chunked"]), bad, None, None),
        c("content_length_0", upgrade(&[], &["Content-Length: 0"]), ok, accept, None),
        c("post", upgrade(&[("GET", "POST / HTTP/1.1")], &[]), &[405], None, None),
        c("http_1_0", upgrade(&[("GET", "GET / HTTP/1.0")], &[]), &[505], None, None),
        c("garbage", b"\x00\x01garbage\r\n\r\n".to_vec(), bad, None, None),
        c("headers_over_64_kib", upgrade(&[], &[&format!("X-Pad: {}", "a".repeat(70_000))]), &[431], None, None),
        c(
            "deflate_unknown_parameter_declined",
            upgrade(&[], &["Sec-WebSocket-Extensions: permessage-deflate; foo=1"]),
            ok,
            None,
            Some("sec-websocket-extensions"),
        ),
        c(
            "deflate_duplicate_parameter_declined",
            upgrade(
                &[],
                &[
                    "Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                ],
            ),
            ok,
            None,
            Some("sec-websocket-extensions"),
        ),
        c(
            "deflate_window_7_declined",
            upgrade(&[], &["Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=7"]),
            ok,
            None,
            Some("sec-websocket-extensions"),
        ),
        c(
            "deflate_first_acceptable_offer",
            upgrade(
                &[],
                &["Sec-WebSocket-Extensions: permessage-deflate; foo, permessage-deflate; client_max_window_bits"],
            ),
            ok,
            Some("sec-websocket-extensions: permessage-deflate"),
            None,
        ),
        c(
            "deflate_quoted_value",
            upgrade(&[], &["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=\"10\""]),
            ok,
            Some("sec-websocket-extensions: permessage-deflate; client_max_window_bits=10"),
            None,
        ),
        // An unterminated quoted-string leaves no valid extension list: refused (RFC 6455
        // §4.2.1), not merely declined; core's `handshake::list` holds the rule.
        c(
            "extensions_unterminated_quote",
            upgrade(&[], &["Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=\"10"]),
            bad,
            None,
            Some("sec-websocket-extensions"),
        ),
    ]
}

/// Checks a response head (status line and headers, without the blank line) against a case;
/// `Err` says what differs.
pub fn check_response(case: &HandshakeCase, head: &str) -> Result<(), String> {
    let lower = head.to_ascii_lowercase();
    let status: Option<u16> = lower.split(' ').nth(1).and_then(|s| s.parse().ok());
    if !status.is_some_and(|s| case.status.contains(&s)) {
        return Err(format!("status {status:?}, want one of {:?}", case.status));
    }
    let lines: Vec<&str> = lower.split("\r\n").skip(1).collect();
    if let Some(want) = case.has
        && !lines.iter().any(|l| l.trim_end() == want)
    {
        return Err(format!("no `{want}` line"));
    }
    if let Some(name) = case.lacks
        && lines.iter().any(|l| l.split(':').next() == Some(name))
    {
        return Err(format!("carries `{name}`"));
    }
    Ok(())
}
