//! TCP helpers that go with [`accept`](crate::accept) and [`connect`](crate::connect): the
//! upgrade with an exact deadline ([`accept`]), an accept loop that survives running out of
//! file descriptors ([`AcceptBackoff`]), and closing without losing the last bytes
//! ([`linger`]).

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::error::{Error, Result};
use crate::handshake::Accepted;
use crate::liveness::Liveness;
use crate::upgrade::{AcceptOptions, accept_bounded};

/// A socket whose blocking reads can be bounded in time: a `TcpStream`, or a reference to one
/// (so the caller keeps the stream, e.g. to [`linger`] on it after a refusal).
pub trait ReadTimeout {
    /// `TcpStream::set_read_timeout`.
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl ReadTimeout for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

impl ReadTimeout for &TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

/// [`crate::accept`] on a TCP stream, holding [`AcceptOptions::handshake_timeout`] exactly:
/// every read of the request is bounded by the socket's read timeout, set to the time left,
/// so a silent client and one trickling a byte a second are both refused (408,
/// [`HandshakeError::Timeout`](crate::handshake::HandshakeError::Timeout)) at the deadline.
/// The returned connection's stream has no read timeout. `stream` is a `TcpStream` or a
/// `&TcpStream`.
///
/// ```no_run
/// use lowbit_websockets::{AcceptOptions, tcp};
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let (stream, _) = listener.accept()?;
/// let (mut conn, _accepted) = tcp::accept(stream, &AcceptOptions::default())?;
/// # Ok::<(), lowbit_websockets::Error>(())
/// ```
pub fn accept<S: Read + io::Write + ReadTimeout>(stream: S, opts: &AcceptOptions) -> Result<(Conn<S>, Accepted)> {
    let (conn, accepted) = accept_bounded(stream, opts, |_| None, &mut |s, left| s.set_read_timeout(Some(left)))?;
    conn.get_ref().set_read_timeout(None)?;
    Ok((conn, accepted))
}

/// Sets up a blocking TCP connection for `policy`: a write that makes no progress for
/// `write_stall` fails (the socket's write timeout), and a read waits at most `idle` (its read
/// timeout). A read that times out ([`timed_out`]) leaves the connection usable: ask a
/// [`Watchdog`](crate::liveness::Watchdog) whether to ping or drop, and read again.
///
/// ```no_run
/// use std::time::Instant;
/// use lowbit_websockets::liveness::{Liveness, Verdict, Watchdog};
/// use lowbit_websockets::{AcceptOptions, tcp};
/// # let (stream, _) = std::net::TcpListener::bind("127.0.0.1:0")?.accept()?;
/// let (mut conn, _) = tcp::accept(stream, &AcceptOptions::default())?;
/// tcp::set_liveness(conn.get_ref(), &Liveness::SERVER)?;
/// let mut watchdog = Watchdog::new(Liveness::SERVER, Instant::now());
/// let mut buf = Vec::new();
/// loop {
///     match conn.read_message(&mut buf) {
///         Ok(_) => watchdog.heard(Instant::now()), // ... and serve the message
///         Err(e) if tcp::timed_out(&e) => match watchdog.check(Instant::now()) {
///             Verdict::Ping => conn.ping(b"")?,
///             Verdict::Drop(_) => break,
///             Verdict::Alive => {}
///         },
///         Err(e) => return Err(e),
///     }
/// }
/// # Ok::<(), lowbit_websockets::Error>(())
/// ```
pub fn set_liveness(stream: &TcpStream, policy: &Liveness) -> io::Result<()> {
    stream.set_write_timeout(policy.write_stall)?;
    stream.set_read_timeout(policy.idle)
}

/// Whether `error` is a socket timeout ([`set_liveness`]'s, or any read or write timeout):
/// the connection is still usable after a read timeout, not after a write timeout (the
/// frame being written was cut).
pub fn timed_out(error: &Error) -> bool {
    matches!(error, Error::Io(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut))
}

/// The default pause of an [`AcceptBackoff`] after a failed accept.
pub const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
/// The default interval between two reports of an [`AcceptBackoff`].
pub const ACCEPT_REPORT_EVERY: Duration = Duration::from_secs(10);

/// What an accept loop does after `accept` failed, as [`AcceptBackoff::failed`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub struct AcceptRetry {
    /// How long to wait before accepting again; zero for a failure that concerned only the
    /// connection it was about (the next accept can succeed at once).
    pub pause: Duration,
    /// `Some(n)` when this failure should be reported: `n` failures (this one included)
    /// happened since the last report. `None`: stay quiet, it was reported recently.
    pub report: Option<u64>,
}

/// Keeps an accept loop from spinning when `accept` fails, and its log from flooding.
///
/// At the file descriptor limit (`EMFILE`, `ENFILE`) the pending connection stays queued, so
/// `accept` fails again at once: a loop that only logs and continues burns a core and writes
/// millions of lines. Each such failure gets a pause instead, and the error is reported once
/// per interval with a count. Connections a client gave up on before we took them
/// (`ECONNABORTED`) and interrupted calls concern only themselves: no pause, no report.
///
/// Sans-IO, like the rest of the crate: the caller passes the time and does the waiting, with
/// `thread::sleep` or `tokio::time::sleep`.
///
/// ```no_run
/// use std::time::Instant;
/// use lowbit_websockets::tcp::AcceptBackoff;
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let mut backoff = AcceptBackoff::default();
/// loop {
///     match listener.accept() {
///         Ok((stream, _)) => { /* serve it */ }
///         Err(e) => {
///             let retry = backoff.failed(&e, Instant::now());
///             if let Some(n) = retry.report {
///                 eprintln!("accept failed ({n} times since the last report): {e}");
///             }
///             std::thread::sleep(retry.pause);
///         }
///     }
/// }
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct AcceptBackoff {
    pause: Duration,
    report_every: Duration,
    last_report: Option<Instant>,
    unreported: u64,
}

impl Default for AcceptBackoff {
    /// [`ACCEPT_PAUSE`] and [`ACCEPT_REPORT_EVERY`].
    fn default() -> Self {
        Self::new(ACCEPT_PAUSE, ACCEPT_REPORT_EVERY)
    }
}

impl AcceptBackoff {
    /// Pauses `pause` after each failure that can repeat, and reports at most once per
    /// `report_every`.
    pub const fn new(pause: Duration, report_every: Duration) -> Self {
        Self { pause, report_every, last_report: None, unreported: 0 }
    }

    /// What to do after `accept` failed with `error` at `now`.
    pub fn failed(&mut self, error: &io::Error, now: Instant) -> AcceptRetry {
        if matches!(
            error.kind(),
            io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset | io::ErrorKind::Interrupted
        ) {
            return AcceptRetry { pause: Duration::ZERO, report: None };
        }
        self.unreported += 1;
        let due = self.last_report.is_none_or(|at| now.saturating_duration_since(at) >= self.report_every);
        let report = due.then(|| {
            self.last_report = Some(now);
            std::mem::take(&mut self.unreported)
        });
        AcceptRetry { pause: self.pause, report }
    }
}

/// How long [`linger`] waits by default for the peer to hang up: long enough for a peer to read
/// our close frame (or HTTP refusal) and answer it, short enough that a silent one costs little.
pub const LINGER: Duration = Duration::from_secs(2);

/// Closes our side of a TCP connection without losing what we wrote last: sends FIN
/// (`shutdown(Write)`), then reads and drops whatever the peer still sends until it hangs up
/// or `within` has passed. Drop the stream afterwards.
///
/// Why: the server closes TCP first (RFC 6455 §7.1.1), but closing a socket that still has
/// unread input sends a reset, and a reset can destroy the close frame or HTTP refusal just
/// written before the peer reads it (a client still sending a message the server refused
/// with 1009 would see 1006 instead).
///
/// Changes the stream's read timeout. Errors end the wait: there is nothing left to save.
///
/// ```no_run
/// # fn serve(_: &std::net::TcpStream) {}
/// let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
/// let (stream, _) = listener.accept()?;
/// serve(&stream);
/// lowbit_websockets::tcp::linger(&stream, lowbit_websockets::tcp::LINGER);
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn linger(mut stream: &TcpStream, within: Duration) {
    let _ = stream.shutdown(Shutdown::Write);
    let deadline = Instant::now() + within;
    let mut sink = [0u8; 16 * 1024];
    while let Some(left) = deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
        if stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::TcpListener;

    use super::*;
    use crate::error::Error;
    use crate::handshake::HandshakeError;

    /// A request trickled a byte every 20 ms, and one never finished, both meet a deadline of
    /// 300 ms (total, not per read) with a 408; a request sent at once is accepted.
    #[test]
    fn the_handshake_deadline_is_total() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let opts = AcceptOptions { handshake_timeout: Some(Duration::from_millis(300)), ..AcceptOptions::default() };
        let request = b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
            Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        for trickle in [true, false] {
            let client = std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                if trickle {
                    // Stops at the first failed write: the server has hung up.
                    for b in request.iter() {
                        if s.write_all(&[*b]).is_err() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                } else {
                    s.write_all(&request[..request.len() - 2]).unwrap();
                }
                let mut answer = Vec::new();
                let _ = s.read_to_end(&mut answer);
                answer
            });
            let (stream, _) = listener.accept().unwrap();
            let Err(err) = accept(&stream, &opts) else { panic!("accepted before the deadline") };
            // As a server does: the client may still be sending, and a reset would lose the 408.
            linger(&stream, LINGER);
            assert!(matches!(err, Error::Handshake(HandshakeError::Timeout)), "{err:?}");
            let answer = client.join().unwrap();
            assert!(answer.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"), "{}", String::from_utf8_lossy(&answer));
        }
        let client = std::thread::spawn(move || TcpStream::connect(addr).unwrap().write_all(request).unwrap());
        let (stream, _) = listener.accept().unwrap();
        let (conn, _) = accept(stream, &opts).unwrap();
        assert_eq!(conn.get_ref().read_timeout().unwrap(), None, "the deadline's read timeout is cleared");
        client.join().unwrap();
    }

    #[test]
    fn fd_exhaustion_pauses_and_is_reported_once_per_interval() {
        let mut backoff = AcceptBackoff::new(Duration::from_millis(50), Duration::from_secs(10));
        let emfile = io::Error::other("Too many open files");
        let start = Instant::now();
        let mut reports = Vec::new();
        // 1,000 failures over 30 simulated seconds: three reports, every failure counted once.
        for i in 0..1000u32 {
            let retry = backoff.failed(&emfile, start + Duration::from_millis(u64::from(i) * 30));
            assert_eq!(retry.pause, Duration::from_millis(50));
            reports.extend(retry.report);
        }
        assert_eq!(reports.len(), 3, "{reports:?}");
        assert_eq!(reports[0], 1, "the first failure is reported at once");
        assert!(reports.iter().sum::<u64>() <= 1000);

        let aborted = io::Error::from(io::ErrorKind::ConnectionAborted);
        let retry = backoff.failed(&aborted, start + Duration::from_secs(60));
        assert_eq!(retry, AcceptRetry { pause: Duration::ZERO, report: None }, "a client that gave up");
    }
}
