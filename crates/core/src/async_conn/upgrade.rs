//! The upgrade in async form: [`accept_async`] and [`connect_async`], one call each from a
//! fresh stream to a ready [`AsyncConn`], as read loops over core's sans-IO steps
//! ([`server_step`], [`ClientUpgrade`]). [`accept_async`] holds
//! [`AcceptOptions::handshake_timeout`] itself; bound [`connect_async`] with
//! `tokio::time::timeout` if a server may stall.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::AsyncConn;
use crate::error::{Error, Result};
use crate::handshake::{Accept, Accepted, Connected, HandshakeError, MAX_HANDSHAKE_SIZE, Request, Step};
use crate::role::{Config, Role};
use crate::upgrade::{AcceptOptions, ClientUpgrade, ConnectOptions, server_step};

/// Runs the server handshake on `stream` and returns the connection, with deflate configured
/// as negotiated; the async [`accept`](crate::accept). A bad request is answered with its 4xx
/// response and fails with [`Error::Handshake`]; a request not complete within
/// [`AcceptOptions::handshake_timeout`] (total, from the call) is answered with 408 and fails
/// with [`HandshakeError::Timeout`]. The deadline is a tokio timer: with it set, the runtime
/// needs its time driver (`enable_time`, or `enable_all`).
pub async fn accept_async<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    opts: &AcceptOptions,
) -> Result<(AsyncConn<S>, Accepted)> {
    accept_async_with(stream, opts, |_| None).await
}

/// [`accept_async`] with a hook that sees the request first: see
/// [`server_step`](crate::upgrade::server_step) for what it may decide.
pub async fn accept_async_with<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    opts: &AcceptOptions,
    hook: impl FnOnce(&Request<'_>) -> Option<Accept>,
) -> Result<(AsyncConn<S>, Accepted)> {
    // `server_step` calls the hook only on the step that ends the loop, so it is there.
    let mut hook = Some(hook);
    let handshake = drive(&mut stream, &[], HandshakeError::RequestTooLarge, |buf| {
        server_step(buf, opts, |req| hook.take().and_then(|hook| hook(req)))
    });
    let accepted = match opts.handshake_timeout {
        None => handshake.await?,
        Some(timeout) => match tokio::time::timeout(timeout, handshake).await {
            Ok(accepted) => accepted?,
            Err(_) => {
                let mut response = Vec::new();
                HandshakeError::Timeout.write_rejection(&mut response);
                // Best effort, like every refusal: the client sent only a partial request, so
                // our side of the stream has room for these few bytes.
                let _ = send(&mut stream, &response).await;
                return Err(HandshakeError::Timeout.into());
            }
        },
    };
    Ok((server_conn(stream, opts.config, &accepted), accepted))
}

/// The server connection an accepted upgrade calls for: `config`'s limits in the server role,
/// deflate as negotiated, and the bytes read past the request first. Every server-side
/// driver (this one, the hyper and axum helpers) makes its connection here.
pub(super) fn server_conn<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    config: Config,
    accepted: &Accepted,
) -> AsyncConn<S> {
    let mut conn = AsyncConn::with_early_data(stream, Config { role: Role::Server, ..config }, &accepted.leftover);
    conn.set_deflate(accepted.deflate.as_ref(), None);
    conn
}

/// Runs the client handshake on `stream` and returns the connection, with deflate configured
/// as the server answered; the async [`connect`](crate::connect).
pub async fn connect_async<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    opts: &ConnectOptions,
) -> Result<(AsyncConn<S>, Connected)> {
    let mut request = Vec::with_capacity(256);
    let client = ClientUpgrade::new(opts, &mut request)?;
    let connected = drive(&mut stream, &request, HandshakeError::ResponseTooLarge, |buf| client.step(buf)).await?;
    let mut conn =
        AsyncConn::with_early_data(stream, Config { role: Role::Client, ..opts.config }, &connected.leftover);
    conn.set_deflate(connected.deflate.as_ref(), None);
    Ok((conn, connected))
}

/// Sends `request`, then reads until `step` decides, sending what it answers.
async fn drive<S: AsyncRead + AsyncWrite + Unpin, T, E: Into<Error>>(
    stream: &mut S,
    request: &[u8],
    too_large: HandshakeError,
    mut step: impl FnMut(&[u8]) -> Step<T, E>,
) -> Result<T> {
    send(stream, request).await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        match step(&buf) {
            Step::NeedMore => {}
            Step::Refused { response, error } => {
                let _ = send(stream, &response).await;
                return Err(error.into());
            }
            Step::Done { response, result, .. } => {
                send(stream, &response).await?;
                return Ok(result);
            }
        }
        // Read until a line ends before stepping again: a head trickled a byte at a time
        // is parsed once per line, not once per byte.
        loop {
            if buf.len() > MAX_HANDSHAKE_SIZE {
                let mut response = Vec::new();
                too_large.write_rejection(&mut response);
                let _ = send(stream, &response).await;
                return Err(too_large.into());
            }
            let n = match stream.read(&mut chunk).await {
                Ok(0) => return Err(HandshakeError::Eof.into()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(HandshakeError::Io(e).into()),
            };
            buf.extend_from_slice(&chunk[..n]);
            if chunk[..n].contains(&b'\n') {
                break;
            }
        }
    }
}

async fn send<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Result<()> {
    if !bytes.is_empty() {
        stream.write_all(bytes).await.map_err(HandshakeError::Io)?;
        stream.flush().await.map_err(HandshakeError::Io)?;
    }
    Ok(())
}
