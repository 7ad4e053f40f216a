//! From a fresh stream to a ready [`Conn`] in one call: the handshake, subprotocol choice and
//! permessage-deflate negotiation, with bytes read past the handshake handed to the decoder.

use std::io::{Read, Write};

use crate::conn::Conn;
use crate::deflate::negotiate::{client_offer, client_verify, server_accept};
use crate::deflate::{DeflateConfig, DeflateOptions};
use crate::error::{Error, Result};
use crate::handshake::{self, Accept, Accepted, ClientOptions, Connected, Request};
use crate::role::{Config, Role};

/// How a server accepts connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptOptions {
    /// Limits; the role is forced to [`Role::Server`].
    pub config: Config,
    /// Offer permessage-deflate with these settings, or `None` to decline every offer.
    pub deflate: Option<DeflateOptions>,
    /// Subprotocols we speak; the first one the client offers (in the client's order) is chosen.
    pub protocols: Vec<String>,
}

impl Default for AcceptOptions {
    fn default() -> Self {
        Self { config: Config::new(Role::Server), deflate: None, protocols: Vec::new() }
    }
}

/// How a client connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Limits; the role is forced to [`Role::Client`].
    pub config: Config,
    /// The `Host` header (with the port when not the default).
    pub host: String,
    /// The request target, `/` by default.
    pub path: String,
    /// Subprotocols to offer, most preferred first.
    pub protocols: Vec<String>,
    /// Offer permessage-deflate with these settings, or `None` for no compression.
    pub deflate: Option<DeflateOptions>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            config: Config::new(Role::Client),
            host: String::new(),
            path: "/".into(),
            protocols: Vec::new(),
            deflate: None,
        }
    }
}

/// Runs the server handshake on `stream` and returns the connection, with deflate configured
/// as negotiated. Bad requests are answered with a 4xx response and return
/// [`Error::Handshake`].
pub fn accept<S: Read + Write>(stream: S, opts: &AcceptOptions) -> Result<(Conn<S>, Accepted)> {
    accept_with(stream, opts, |_| None)
}

/// [`accept`] with a hook that sees the request first: return `Some(answer)` to override the
/// default choice: refuse (e.g. by origin, with [`Accept::reject`]) or pick the subprotocol.
/// Its `extensions` are ignored: deflate is always negotiated from `opts.deflate`, so what is
/// advertised is what runs.
pub fn accept_with<S: Read + Write>(
    mut stream: S,
    opts: &AcceptOptions,
    hook: impl FnOnce(&Request<'_>) -> Option<Accept>,
) -> Result<(Conn<S>, Accepted)> {
    let mut negotiated: Option<DeflateConfig> = None;
    let accepted = handshake::accept(&mut stream, |req| {
        let answer = hook(req);
        if let Some(refusal @ Accept { reject: Some(_), .. }) = answer {
            return refusal;
        }
        let protocol = match answer {
            Some(answer) => answer.protocol,
            None => req.protocols().find(|p| opts.protocols.iter().any(|s| s == p)).map(str::to_owned),
        };
        // Extensions always come from `opts.deflate`, so what is advertised is what runs.
        let extensions =
            opts.deflate.as_ref().and_then(|d| server_accept(req.extensions(), d)).map(|(response, config)| {
                negotiated = Some(config);
                response
            });
        Accept { protocol, extensions, reject: None }
    })?;
    if accepted.extensions.is_none() {
        negotiated = None;
    }
    let config = Config { role: Role::Server, ..opts.config };
    let mut conn = Conn::with_early_data(stream, config, &accepted.leftover);
    conn.set_deflate(negotiated.as_ref(), None);
    Ok((conn, accepted))
}

/// Runs the client handshake on `stream` and returns the connection, with deflate configured
/// as the server answered. An answer that does not match the offer fails with
/// [`Error::Negotiation`].
pub fn connect<S: Read + Write>(mut stream: S, opts: &ConnectOptions) -> Result<(Conn<S>, Connected)> {
    let request = ClientOptions {
        host: opts.host.clone(),
        path: opts.path.clone(),
        protocols: opts.protocols.clone(),
        extensions: opts.deflate.as_ref().map(client_offer).transpose().map_err(Error::Negotiation)?,
    };
    let connected = handshake::connect(&mut stream, &request)?;
    let negotiated = match &opts.deflate {
        Some(d) => client_verify(connected.extensions.as_deref(), d).map_err(Error::Negotiation)?,
        None => None,
    };
    let config = Config { role: Role::Client, ..opts.config };
    let mut conn = Conn::with_early_data(stream, config, &connected.leftover);
    conn.set_deflate(negotiated.as_ref(), None);
    Ok((conn, connected))
}
