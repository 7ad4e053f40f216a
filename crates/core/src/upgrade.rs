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

use std::io::{Read, Write};

pub use subprotocol::SubprotocolPolicy;

use crate::conn::Conn;
use crate::deflate::negotiate::{client_offer, client_verify, server_accept};
use crate::deflate::{DeflateConfig, DeflateOptions};
use crate::error::{Error, Result};
use crate::handshake::step::drive;
use crate::handshake::{
    self, Accept, Accepted, ClientHandshake, ClientOptions, Connected, HandshakeError, Request, Step,
};
use crate::role::{Config, Role};

/// How a server accepts connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptOptions {
    /// Limits; the role is forced to [`Role::Server`].
    pub config: Config,
    /// Offer permessage-deflate with these settings, or `None` to decline every offer.
    pub deflate: Option<DeflateOptions>,
    /// How the subprotocol is picked; none by default.
    pub protocols: SubprotocolPolicy,
}

impl Default for AcceptOptions {
    fn default() -> Self {
        Self { config: Config::new(Role::Server), deflate: None, protocols: SubprotocolPolicy::None }
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
/// [`Error::Handshake`].
pub fn accept<S: Read + Write>(stream: S, opts: &AcceptOptions) -> Result<(Conn<S>, Accepted)> {
    accept_with(stream, opts, |_| None)
}

/// [`accept`] with a hook that sees the request first; see [`server_step`] for what it may
/// decide.
pub fn accept_with<S: Read + Write>(
    mut stream: S,
    opts: &AcceptOptions,
    hook: impl FnOnce(&Request<'_>) -> Option<Accept>,
) -> Result<(Conn<S>, Accepted)> {
    // `server_step` calls the hook only on the step that ends the loop, so it is there.
    let mut hook = Some(hook);
    let accepted = drive(
        &mut stream,
        &[],
        || HandshakeError::RequestTooLarge,
        |buf| server_step(buf, opts, |req| hook.take().and_then(|hook| hook(req))),
    )?;
    let config = Config { role: Role::Server, ..opts.config };
    let mut conn = Conn::with_early_data(stream, config, &accepted.leftover);
    conn.set_deflate(accepted.deflate.as_ref(), None);
    Ok((conn, accepted))
}

/// Runs the client handshake on `stream` and returns the connection, with deflate configured
/// as the server answered. An answer that does not match the offer fails with
/// [`Error::Negotiation`].
pub fn connect<S: Read + Write>(mut stream: S, opts: &ConnectOptions) -> Result<(Conn<S>, Connected)> {
    let mut request = Vec::with_capacity(256);
    let client = ClientUpgrade::new(opts, &mut request)?;
    let connected = drive(&mut stream, &request, || HandshakeError::ResponseTooLarge, |buf| client.step(buf))?;
    let config = Config { role: Role::Client, ..opts.config };
    let mut conn = Conn::with_early_data(stream, config, &connected.leftover);
    conn.set_deflate(connected.deflate.as_ref(), None);
    Ok((conn, connected))
}
