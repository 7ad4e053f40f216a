//! TCP helpers that go with [`accept`](crate::accept) and [`connect`](crate::connect).

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

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
