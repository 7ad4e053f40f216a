//! The nonblocking pump every event-driven driver shares: move what a nonblocking transport
//! has into a [`Session`] and hand out its events, then write the session's output until the
//! transport would block. A driver calls [`read_ready`] when its socket is readable and
//! [`flush`] after that and after every command, and closes the transport when
//! [`Session::should_close_transport`] says so.
//!
//! Reads stop after `budget` bytes even if more are waiting, so one busy peer cannot keep an
//! event loop from its other connections: the driver serves the others and comes back.

use std::io::{self, Read, Write};

use crate::decode::Event;
use crate::engine::Session;
use crate::error::{Error, Result};

/// Why [`read_ready`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Readable {
    /// The transport has nothing more now: wait until it is readable again.
    WouldBlock,
    /// `budget` bytes were taken: serve other connections, then call again without waiting.
    Budget,
    /// The peer's close arrived (or the peer ended the stream after it): nothing more is read.
    Closed,
}

/// Reads what `transport` has (up to about `budget` bytes) into `session`, calling `on_event`
/// for each event. The answers the engine owes are queued: [`flush`] afterwards. Errors are
/// [`Session::poll_event`]'s (a violation's close frame is queued), an I/O error, or
/// [`Error::AbnormalClosure`] when the stream ends before the peer's close.
pub fn read_ready<R: Read>(
    session: &mut Session,
    transport: &mut R,
    budget: usize,
    mut on_event: impl FnMut(Event<'_>),
) -> Result<Readable> {
    let mut taken = 0;
    loop {
        while let Some(event) = session.poll_event()? {
            on_event(event);
            if session.is_closed() {
                return Ok(Readable::Closed);
            }
        }
        if taken >= budget {
            return Ok(Readable::Budget);
        }
        match transport.read(session.read_buf()) {
            Ok(0) => {
                session.receive_eof()?;
                return Ok(Readable::Closed);
            }
            Ok(n) => {
                session.advance(n);
                taken += n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Readable::WouldBlock),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
}

/// Writes the session's output until it is all sent (`Ok(true)`) or the transport would
/// block (`Ok(false)`: call again when it is writable).
pub fn flush<W: Write>(session: &mut Session, transport: &mut W) -> io::Result<bool> {
    while session.has_output() {
        match transport.write(session.output()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => session.consume_output(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::net::UnixStream;

    use super::*;
    use crate::close::CloseCode;
    use crate::frame::OpCode;
    use crate::role::{Config, Role};

    #[test]
    fn pumps_a_nonblocking_socket_within_its_budget() {
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        let mut server = Session::new(Config::new(Role::Server), None);
        let mut client = Session::new(Config::new(Role::Client), None);
        assert_eq!(read_ready(&mut server, &mut ours, 1 << 20, |_| panic!("no event")).unwrap(), Readable::WouldBlock);

        for i in 0..100u8 {
            client.send_message(OpCode::Binary, &[i; 1000]).unwrap();
        }
        client.ping(b"p").unwrap();
        theirs.write_all(&client.take_output()).unwrap();
        let mut seen = Vec::new();
        let mut record = |e: Event<'_>| {
            seen.push(match e {
                Event::Message { payload, .. } => payload[0],
                _ => 255,
            })
        };
        // A small budget stops early and leaves the rest for the next call.
        assert_eq!(read_ready(&mut server, &mut ours, 10_000, &mut record).unwrap(), Readable::Budget);
        while read_ready(&mut server, &mut ours, 10_000, &mut record).unwrap() == Readable::Budget {}
        let mut want: Vec<u8> = (0..100).collect();
        want.push(255);
        assert_eq!(seen, want);

        // The pong the engine queued goes out through the flush.
        assert!(flush(&mut server, &mut ours).unwrap());
        let mut pong = [0u8; 3];
        theirs.read_exact(&mut pong).unwrap();
        assert_eq!(pong, [0x8a, 1, b'p']);

        client.close(CloseCode::NORMAL_CLOSURE, "").unwrap();
        theirs.write_all(&client.take_output()).unwrap();
        assert_eq!(read_ready(&mut server, &mut ours, 1 << 20, |_| {}).unwrap(), Readable::Closed);
        assert!(!server.should_close_transport());
        assert!(flush(&mut server, &mut ours).unwrap());
        assert!(server.should_close_transport());
    }

    #[test]
    fn a_stream_ending_before_the_close_is_abnormal() {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        ours.set_nonblocking(true).unwrap();
        drop(theirs);
        let mut server = Session::new(Config::new(Role::Server), None);
        let err = read_ready(&mut server, &mut ours, 1 << 20, |_| {}).unwrap_err();
        assert!(matches!(err, Error::AbnormalClosure), "{err:?}");
    }
}
