//! `lowbit-ws-host serve`: an accept loop on tokio and one task per connection, each with
//! its own store and instance, many per thread.
//!
//! The server's defences (issue 20), host side:
//! - the upgrade request must arrive whole within [`ServeOptions::handshake_timeout`],
//!   counted once from the accept, not per read (a client trickling bytes gains nothing);
//! - at the descriptor limit (`EMFILE`, `ENFILE`) the accept loop sleeps
//!   [`ACCEPT_BACKOFF`] per failure and logs once per [`ACCEPT_LOG_INTERVAL`] instead of
//!   spinning ([`AcceptBackoff`]);
//! - a peer that stops reading while we have output pending is dropped after
//!   [`ServeOptions::stall_timeout`] without progress;
//! - a connection whose bytes are always ready, or whose guest computes without I/O,
//!   yields its thread (see [`tokio_tcp`](crate::tokio_tcp) and [`EPOCH_TICK`](crate::EPOCH_TICK)).
//!
//! When core's own pieces for these land (a total handshake deadline in `AcceptOptions`,
//! an accept back-off helper in `lowbit_websockets::tcp`, a stalled-peer policy), this
//! module should use them instead of its own.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

use crate::bindings::exports::lowbit::websockets::types::HandshakeError;
use crate::tokio_tcp::{TokioTcp, linger};
use crate::{AcceptOptions, Error, Host};

/// How long a client may take to send its whole upgrade request, by default (as core's
/// echo-server examples).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long written bytes may make no progress before the peer is dropped, by default.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the accept loop sleeps after a failed accept.
pub const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// At most one log line about failed accepts per this interval.
pub const ACCEPT_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// What `serve` does with each connection.
#[derive(Clone)]
pub struct ServeOptions {
    /// The handshake's options (limits, permessage-deflate, subprotocols).
    pub accept: AcceptOptions,
    /// The whole upgrade request must arrive within this, counted from the accept.
    pub handshake_timeout: Duration,
    /// Drop a peer whose pending output makes no progress for this long; `None` never does.
    pub stall_timeout: Option<Duration>,
    /// After the guest is done: FIN, then wait this long at most for the client to hang up,
    /// so that the last close frame or 4xx is not lost to a reset.
    pub linger: Duration,
    /// One line on stderr per connection.
    pub verbose: bool,
}

impl ServeOptions {
    /// The defaults around `accept`: [`HANDSHAKE_TIMEOUT`], [`STALL_TIMEOUT`], core's linger.
    pub fn new(accept: AcceptOptions) -> Self {
        Self {
            accept,
            handshake_timeout: HANDSHAKE_TIMEOUT,
            stall_timeout: Some(STALL_TIMEOUT),
            linger: lowbit_websockets::tcp::LINGER,
            verbose: false,
        }
    }
}

/// Counters of a running [`serve`], for logs and tests.
#[derive(Debug, Default)]
pub struct ServeStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Accepts that failed (each one followed by a sleep of [`ACCEPT_BACKOFF`]).
    pub accept_failures: AtomicU64,
    /// Log lines written about failed accepts.
    pub accept_logs: AtomicU64,
    /// Connections that have ended, however they ended.
    pub finished: AtomicU64,
    /// Connections whose guest trapped (each ended that connection only).
    pub traps: AtomicU64,
}

/// Serves `listener` forever: each connection gets a task running [`serve_connection`].
/// `stats` counts what happened.
pub async fn serve(host: Host, listener: TcpListener, options: ServeOptions, stats: Arc<ServeStats>) {
    let options = Arc::new(options);
    let mut backoff = AcceptBackoff::default();
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                stats.accept_failures.fetch_add(1, Ordering::Relaxed);
                if backoff.failed(&e).await {
                    stats.accept_logs.fetch_add(1, Ordering::Relaxed);
                }
                continue;
            }
        };
        stats.accepted.fetch_add(1, Ordering::Relaxed);
        let (host, options, stats) = (host.clone(), Arc::clone(&options), Arc::clone(&stats));
        tokio::spawn(async move {
            let r = serve_connection(&host, tcp, &options).await;
            if r.is_err() {
                stats.traps.fetch_add(1, Ordering::Relaxed);
            }
            stats.finished.fetch_add(1, Ordering::Relaxed);
            report(peer, &r, options.verbose);
        });
    }
}

fn report(peer: SocketAddr, r: &wasmtime::Result<Result<u64, Error>>, verbose: bool) {
    match r {
        Err(trap) => eprintln!("{peer}: trap: {trap:#}"),
        Ok(r) if verbose => eprintln!("{peer}: {r:?}"),
        Ok(_) => {}
    }
}

/// One connection the way `lowbit-ws-host serve` runs it: a fresh session, the handshake
/// (bounded by `handshake_timeout` in all), then the component's echo loop until the peer
/// closes, then [`linger`] so that the guest's last bytes reach the client. Returns the
/// messages echoed, the component's error, or a trap (the instance is gone; nothing else is
/// affected).
pub async fn serve_connection(
    host: &Host,
    tcp: TcpStream,
    options: &ServeOptions,
) -> wasmtime::Result<Result<u64, Error>> {
    let stream = Arc::new(tcp);
    let transport = TokioTcp { stream: Arc::clone(&stream), stall_timeout: options.stall_timeout };
    let mut session = host.session_async().await?;
    let handshake = tokio::time::timeout(options.handshake_timeout, session.accept(transport, &options.accept));
    let result = match handshake.await {
        Err(_elapsed) => {
            // A half-sent request: hang up at once (there is nothing to answer yet).
            return Ok(Err(Error::Handshake(HandshakeError {
                status: None,
                message: format!("the upgrade request did not arrive within {:?}", options.handshake_timeout),
            })));
        }
        Ok(Err(trap)) => Err(trap),
        Ok(Ok(Err(refused))) => Ok(Err(refused)),
        Ok(Ok(Ok((conn, _accepted)))) => session.echo(conn).await,
    };
    // The guest's memory goes now, not after the linger.
    drop(session);
    linger(&stream, options.linger).await;
    result
}

/// Keeps an accept loop from spinning when `accept` fails, as it does at the descriptor
/// limit, where the pending connection stays queued and every retry fails at once.
#[derive(Default)]
pub struct AcceptBackoff {
    last_log: Option<Instant>,
    suppressed: u64,
}

impl AcceptBackoff {
    /// Call after a failed accept: logs `e` unless a line was written in the last
    /// [`ACCEPT_LOG_INTERVAL`] (then counts it for the next line), and sleeps
    /// [`ACCEPT_BACKOFF`]. Returns whether it logged.
    pub async fn failed(&mut self, e: &io::Error) -> bool {
        let now = Instant::now();
        let log = self.last_log.is_none_or(|at| now.duration_since(at) >= ACCEPT_LOG_INTERVAL);
        if log {
            if self.suppressed > 0 {
                eprintln!("accept failed: {e} (and {} more times since the last line)", self.suppressed);
            } else {
                eprintln!("accept failed: {e}");
            }
            self.last_log = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        tokio::time::sleep(ACCEPT_BACKOFF).await;
        log
    }
}
