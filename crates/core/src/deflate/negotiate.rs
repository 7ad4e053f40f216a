//! permessage-deflate negotiation (RFC 7692 §5, §7.1): parsing `Sec-WebSocket-Extensions`,
//! choosing an offer on the server, building the client's offer and checking the answer.

use std::fmt::Write as _;

use super::{DeflateConfig, DeflateOptions};
use crate::handshake::{is_token, list};
use crate::role::Role;

/// The extension token.
pub const PERMESSAGE_DEFLATE: &str = "permessage-deflate";

/// Why the server's answer to our offer is not acceptable (the client fails the handshake).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NegotiationError {
    /// The header is not a valid extension list (RFC 7692 §5 / RFC 6455 §9.1 grammar).
    Syntax,
    /// The server accepted permessage-deflate more than once.
    Duplicate,
    /// An unknown parameter, a repeated one, or a value out of range.
    BadParameter(String),
    /// The server asked for something we did not offer or cannot do.
    Unsupported(&'static str),
}

impl std::fmt::Display for NegotiationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Syntax => f.write_str("malformed Sec-WebSocket-Extensions header"),
            Self::Duplicate => f.write_str("permessage-deflate accepted twice"),
            Self::BadParameter(p) => write!(f, "bad permessage-deflate parameter: {p}"),
            Self::Unsupported(what) => write!(f, "unacceptable permessage-deflate response: {what}"),
        }
    }
}

impl std::error::Error for NegotiationError {}

/// One `name[=value]` parameter of an extension element.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Param<'a> {
    name: &'a str,
    value: Option<&'a str>,
}

/// Splits a header value into extension elements: `(name, params)` per comma-separated element.
/// Quoted-string values may contain commas and semicolons. Returns `None` on bad syntax,
/// including an unterminated quoted-string (the rule is `handshake::list`'s).
fn parse_elements(header: &str) -> Option<Vec<(&str, Vec<Param<'_>>)>> {
    let mut elements = Vec::new();
    for element in list::split(header, b',')? {
        let element = element.trim();
        if element.is_empty() {
            continue; // RFC 7230 #rule: empty list elements are allowed and ignored
        }
        let mut parts = list::split(element, b';')?;
        let name = parts.next()?.trim();
        if !is_token(name) {
            return None;
        }
        let mut params = Vec::new();
        for p in parts {
            let (name, value) = match p.split_once('=') {
                Some((n, v)) => (n.trim(), Some(unquote(v.trim())?)),
                None => (p.trim(), None),
            };
            if !is_token(name) {
                return None;
            }
            params.push(Param { name, value });
        }
        elements.push((name, params));
    }
    Some(elements)
}

/// A token, or a quoted string whose content is a token (RFC 7692 §7.1 values are tokens).
fn unquote(v: &str) -> Option<&str> {
    let inner = match v.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => v,
    };
    is_token(inner).then_some(inner)
}

/// A window-bits value: 8..=15 in decimal digits only, without leading zeros or a sign
/// (RFC 7692 §7.1.2.1: `%x38-39 / %x31 %x30-35`).
fn window_bits(v: &str) -> Option<u8> {
    if v.len() > 2 || v.starts_with('0') || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// The parameters of one permessage-deflate element, each at most once.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Params {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

impl Params {
    /// Parses the parameters; an error naming an unknown, repeated or out-of-range one.
    fn parse(params: &[Param<'_>], role_of_sender: Role) -> Result<Self, String> {
        let mut out = Params::default();
        let mut seen = [false; 4];
        for p in params {
            let slot = match p.name.to_ascii_lowercase().as_str() {
                "server_no_context_takeover" => 0,
                "client_no_context_takeover" => 1,
                "server_max_window_bits" => 2,
                "client_max_window_bits" => 3,
                _ => return Err(format!("unknown parameter {}", p.name)),
            };
            if std::mem::replace(&mut seen[slot], true) {
                return Err(format!("repeated parameter {}", p.name));
            }
            let bad = || format!("{}={}", p.name, p.value.unwrap_or(""));
            match (slot, p.value) {
                (0, None) => out.server_no_context_takeover = true,
                (1, None) => out.client_no_context_takeover = true,
                (2, Some(v)) => out.server_max_window_bits = Some(window_bits(v).ok_or_else(bad)?),
                // An offer may name client_max_window_bits without a value; an answer may not.
                (3, None) if role_of_sender == Role::Client => out.client_max_window_bits = Some(None),
                (3, Some(v)) => out.client_max_window_bits = Some(Some(window_bits(v).ok_or_else(bad)?)),
                _ => return Err(bad()),
            }
        }
        Ok(out)
    }
}

/// Server side: picks the first acceptable permessage-deflate offer from the request's
/// `Sec-WebSocket-Extensions` values. Returns the response header value and the negotiated
/// configuration, or `None` to decline (no extension in the response): no offer, or every
/// offer has unknown, repeated or out-of-range parameters, or asks for a window the
/// compressor cannot honor.
pub fn server_accept<'h>(
    offers: impl IntoIterator<Item = &'h str>,
    options: &DeflateOptions,
) -> Option<(String, DeflateConfig)> {
    for header in offers {
        let Some(elements) = parse_elements(header) else { continue };
        for (name, params) in elements {
            if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
                continue;
            }
            let Ok(offer) = Params::parse(&params, Role::Client) else { continue };
            if let Some(accepted) = accept_offer(&offer, options) {
                return Some(accepted);
            }
        }
    }
    None
}

fn accept_offer(offer: &Params, options: &DeflateOptions) -> Option<(String, DeflateConfig)> {
    // server_max_window_bits limits the window we compress with: only if the engine can. Our
    // own limit applies too, and is declared even unasked (RFC 7692 §7.1.2.1 allows it).
    let asked = match offer.server_max_window_bits {
        Some(bits) if !options.supports_window_bits(bits) => return None,
        asked => asked,
    };
    let ours = options.server_max_window_bits.map(|b| b.clamp(options.engine.min_window_bits(), 15));
    let compress_bits = asked.into_iter().chain(ours).min();
    let server_no_context = offer.server_no_context_takeover || options.no_context_takeover(Role::Server);
    let client_no_context = offer.client_no_context_takeover || options.client_no_context_takeover;
    let mut response = String::from(PERMESSAGE_DEFLATE);
    if server_no_context {
        response.push_str("; server_no_context_takeover");
    }
    if client_no_context {
        response.push_str("; client_no_context_takeover");
    }
    if let Some(bits) = compress_bits {
        let _ = write!(response, "; server_max_window_bits={bits}");
    }
    // A client that offered client_max_window_bits can limit its window: to the value it named
    // and to ours, whichever is smaller (§7.1.2.2). Our inflater then keeps only that window.
    let inflate_bits = match offer.client_max_window_bits {
        Some(named) => named.into_iter().chain(options.client_max_window_bits).min(),
        None => None,
    };
    if let Some(bits) = inflate_bits {
        let _ = write!(response, "; client_max_window_bits={bits}");
    }
    let base = DeflateConfig::from_options(options);
    let config = DeflateConfig {
        compress_no_context_takeover: server_no_context,
        decompress_no_context_takeover: client_no_context,
        transient_compressor: base.transient_compressor && server_no_context,
        compress_window_bits: compress_bits.unwrap_or(15),
        decompress_window_bits: inflate_bits.unwrap_or(15),
        ..base
    };
    Some((response, config))
}

/// Client side: the `Sec-WebSocket-Extensions` value to offer. Fails with
/// [`NegotiationError::BadParameter`], before anything is sent, when
/// `options.server_max_window_bits` is outside 8..=15 (RFC 7692 §7.1.2.1).
pub fn client_offer(options: &DeflateOptions) -> Result<String, NegotiationError> {
    if let Some(bits) = options.server_max_window_bits.filter(|b| !(8..=15).contains(b)) {
        return Err(NegotiationError::BadParameter(format!("server_max_window_bits={bits} (must be 8 to 15)")));
    }
    let mut offer = String::from(PERMESSAGE_DEFLATE);
    if options.server_no_context_takeover {
        offer.push_str("; server_no_context_takeover");
    }
    if options.no_context_takeover(Role::Client) {
        offer.push_str("; client_no_context_takeover");
    }
    if let Some(bits) = options.server_max_window_bits {
        let _ = write!(offer, "; server_max_window_bits={bits}");
    }
    // We may only let the server limit our window if the engine can compress with a smaller one;
    // a limit of our own is named (the server may answer a smaller one).
    if options.supports_window_bits(9) {
        match options.client_max_window_bits {
            Some(bits) => {
                let _ = write!(offer, "; client_max_window_bits={}", bits.clamp(options.engine.min_window_bits(), 15));
            }
            None => offer.push_str("; client_max_window_bits"),
        }
    }
    Ok(offer)
}

/// Client side: checks the server's `Sec-WebSocket-Extensions` answer against what
/// [`client_offer`] sent. `Ok(None)`: the server declined (no permessage-deflate).
pub fn client_verify(
    response: Option<&str>,
    options: &DeflateOptions,
) -> Result<Option<DeflateConfig>, NegotiationError> {
    let Some(response) = response else { return Ok(None) };
    let elements = parse_elements(response).ok_or(NegotiationError::Syntax)?;
    let mut found = None;
    for (name, params) in elements {
        if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
            return Err(NegotiationError::Unsupported("an extension we did not offer"));
        }
        if found.is_some() {
            return Err(NegotiationError::Duplicate);
        }
        found = Some(Params::parse(&params, Role::Server).map_err(NegotiationError::BadParameter)?);
    }
    let Some(answer) = found else { return Ok(None) };
    if options.server_no_context_takeover && !answer.server_no_context_takeover {
        return Err(NegotiationError::Unsupported("server_no_context_takeover was requested but not confirmed"));
    }
    if let (Some(asked), Some(got)) = (options.server_max_window_bits, answer.server_max_window_bits)
        && got > asked
    {
        return Err(NegotiationError::Unsupported("server_max_window_bits above the requested value"));
    }
    if options.server_max_window_bits.is_some() && answer.server_max_window_bits.is_none() {
        return Err(NegotiationError::Unsupported("server_max_window_bits was requested but not confirmed"));
    }
    // Our own limit, if we named one, holds whatever the answer says.
    let ours = options.client_max_window_bits.map(|b| b.clamp(options.engine.min_window_bits(), 15)).unwrap_or(15);
    let compress_bits = match answer.client_max_window_bits {
        Some(Some(bits)) if options.supports_window_bits(9) && options.supports_window_bits(bits) => bits.min(ours),
        Some(_) => {
            return Err(NegotiationError::Unsupported("client_max_window_bits was not offered or cannot be honored"));
        }
        None => ours,
    };
    let compress_no_context = answer.client_no_context_takeover || options.no_context_takeover(Role::Client);
    let base = DeflateConfig::from_options(options);
    Ok(Some(DeflateConfig {
        compress_no_context_takeover: compress_no_context,
        transient_compressor: base.transient_compressor && compress_no_context,
        decompress_no_context_takeover: answer.server_no_context_takeover,
        compress_window_bits: compress_bits,
        decompress_window_bits: answer.server_max_window_bits.unwrap_or(15),
        ..base
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These tests pin the miniz_oxide engine: several answers rest on it declining windows
    /// below 15 (it writes a 32 KiB window only).
    fn opts() -> DeflateOptions {
        DeflateOptions { engine: crate::deflate::Engine::Miniz, ..DeflateOptions::default() }
    }

    #[test]
    fn parses_several_offers_with_quoted_values() {
        let els =
            parse_elements(r#"permessage-deflate; client_max_window_bits="10", x-foo;a="b", ,permessage-deflate"#)
                .unwrap();
        assert_eq!(els.len(), 3);
        assert_eq!(els[0].1, vec![Param { name: "client_max_window_bits", value: Some("10") }]);
        assert_eq!((els[1].0, &els[1].1[..]), ("x-foo", &[Param { name: "a", value: Some("b") }][..]));
        // RFC 6455 §9.1: an unquoted value must be a token, so a comma inside quotes is malformed.
        assert!(parse_elements(r#"x-foo; a="b,c""#).is_none());
        assert!(parse_elements("permessage-deflate; a=\"unterminated").is_none());
    }

    #[test]
    fn server_picks_first_acceptable_offer() {
        let (resp, cfg) = server_accept(
            ["permessage-deflate; server_max_window_bits=10, permessage-deflate; client_max_window_bits"],
            &opts(),
        )
        .unwrap();
        // miniz_oxide compresses with a 32 KiB window only: the first offer is declined.
        assert_eq!(resp, "permessage-deflate");
        assert_eq!(cfg.compress_window_bits, 15);
    }

    #[test]
    fn server_declines_bad_offers() {
        for offer in [
            "permessage-deflate; foo",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=010",
            "permessage-deflate; client_max_window_bits=20",
            "permessage-deflate; server_no_context_takeover=1",
            "x-webkit-deflate-frame",
        ] {
            assert_eq!(server_accept([offer], &opts()), None, "{offer}");
        }
    }

    #[test]
    fn server_answers_every_parameter() {
        let (resp, cfg) = server_accept(
            ["PerMessage-Deflate; Server_No_Context_Takeover; client_no_context_takeover; server_max_window_bits=15; client_max_window_bits=9"],
            &opts(),
        )
        .unwrap();
        assert_eq!(
            resp,
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=15; client_max_window_bits=9"
        );
        assert!(cfg.compress_no_context_takeover && cfg.decompress_no_context_takeover);
        assert_eq!(cfg.decompress_window_bits, 9);
    }

    #[test]
    fn server_declares_its_own_window_and_limits_the_clients() {
        let o =
            DeflateOptions { server_max_window_bits: Some(12), client_max_window_bits: Some(11), ..Default::default() };
        // Unasked: our window is declared; the client did not offer to limit its own.
        let (resp, cfg) = server_accept(["permessage-deflate"], &o).unwrap();
        assert_eq!(resp, "permessage-deflate; server_max_window_bits=12");
        assert_eq!((cfg.compress_window_bits, cfg.decompress_window_bits), (12, 15));
        // The smaller of the two limits wins, each way.
        let (resp, cfg) =
            server_accept(["permessage-deflate; server_max_window_bits=10; client_max_window_bits"], &o).unwrap();
        assert_eq!(resp, "permessage-deflate; server_max_window_bits=10; client_max_window_bits=11");
        assert_eq!((cfg.compress_window_bits, cfg.decompress_window_bits), (10, 11));
        let (resp, _) =
            server_accept(["permessage-deflate; server_max_window_bits=14; client_max_window_bits=9"], &o).unwrap();
        assert_eq!(resp, "permessage-deflate; server_max_window_bits=12; client_max_window_bits=9");
        // zlib-rs cannot write with a 256-byte window: such an offer is declined (RFC 7692 §7.1.2.1).
        assert_eq!(server_accept(["permessage-deflate; server_max_window_bits=8"], &o), None);
    }

    #[test]
    fn lean_memory_takes_no_context_over_and_frees_the_compressor() {
        let lean = DeflateOptions { memory: crate::deflate::Memory::Lean, ..Default::default() };
        let (resp, cfg) = server_accept(["permessage-deflate; client_max_window_bits"], &lean).unwrap();
        assert_eq!(resp, "permessage-deflate; server_no_context_takeover");
        assert!(cfg.compress_no_context_takeover && cfg.transient_compressor && !cfg.decompress_no_context_takeover);
        let offer = client_offer(&lean).unwrap();
        assert_eq!(offer, "permessage-deflate; client_no_context_takeover; client_max_window_bits");
        let cfg = client_verify(Some("permessage-deflate; client_no_context_takeover"), &lean).unwrap().unwrap();
        assert!(cfg.compress_no_context_takeover && cfg.transient_compressor);
        // Full memory (the default) keeps the compressor even without context takeover.
        let full = DeflateOptions { server_no_context_takeover: true, ..Default::default() };
        let (_, cfg) = server_accept(["permessage-deflate"], &full).unwrap();
        assert!(cfg.compress_no_context_takeover && !cfg.transient_compressor);
    }

    #[test]
    fn client_names_its_own_window() {
        let o = DeflateOptions { client_max_window_bits: Some(10), ..Default::default() };
        assert_eq!(client_offer(&o).unwrap(), "permessage-deflate; client_max_window_bits=10");
        assert_eq!(client_verify(Some("permessage-deflate"), &o).unwrap().unwrap().compress_window_bits, 10);
        let cfg = client_verify(Some("permessage-deflate; client_max_window_bits=9"), &o).unwrap().unwrap();
        assert_eq!(cfg.compress_window_bits, 9);
    }

    #[test]
    fn client_verifies_answers() {
        let o = opts();
        assert_eq!(client_verify(None, &o), Ok(None));
        let cfg = client_verify(Some("permessage-deflate; server_no_context_takeover"), &o).unwrap().unwrap();
        assert!(cfg.decompress_no_context_takeover && !cfg.compress_no_context_takeover);
        for bad in [
            "permessage-deflate, permessage-deflate",
            "permessage-deflate; client_max_window_bits=10",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; bogus",
            "x-other",
            "permessage-deflate; server_max_window_bits=99",
        ] {
            assert!(client_verify(Some(bad), &o).is_err(), "{bad}");
        }
        let strict = DeflateOptions { server_no_context_takeover: true, server_max_window_bits: Some(10), ..opts() };
        assert!(client_verify(Some("permessage-deflate"), &strict).is_err());
        assert!(
            client_verify(Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=11"), &strict)
                .is_err()
        );
        assert!(
            client_verify(Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=9"), &strict)
                .is_ok()
        );
    }
}
