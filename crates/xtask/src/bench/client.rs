//! One generator connection: this crate's sans-IO [`Session`] over a nonblocking socket that
//! tokio watches ([`AsyncFd`]). The generator sends a message, waits for its echo and checks
//! it; nothing here allocates per message once the buffers have grown to the message size.
//!
//! Why `AsyncFd` rather than tokio's `TcpStream`: the stream clears its read readiness only
//! when a read says `WouldBlock`, so every echo would cost a third system call (the `read`
//! after the echo, which finds nothing). Here a short read clears the readiness at once: the
//! socket's receive queue was drained, and new bytes will bring a new edge-triggered event.
//! The generator pays per echo what a server pays: one `write`, one `read`, a share of
//! `epoll_wait`.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::os::fd::AsRawFd as _;

use lowbit_websockets::handshake::{ClientOptions, Step};
use lowbit_websockets::upgrade::ClientUpgrade;
use lowbit_websockets::{CloseCode, Config, ConnectOptions, DeflateOptions, Event, OpCode, Role, Session};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpSocket;

/// The client's `max_chunk_size`, hence its read buffer: a 64 KiB echo fits one frame.
pub const CHUNK: usize = 64 * 1024;

type Result<T = ()> = std::result::Result<T, String>;

pub struct Client {
    io: AsyncFd<TcpStream>,
    session: Session,
}

impl Client {
    /// Connects from `source` (any port) to `server`, with TCP_NODELAY, and runs the upgrade;
    /// with `deflate`, offers permessage-deflate and fails if the server declines.
    pub async fn connect(server: SocketAddr, source: IpAddr, deflate: Option<&DeflateOptions>) -> Result<Self> {
        let socket = TcpSocket::new_v4().map_err(|e| format!("cannot open a socket: {e}"))?;
        bind_late(&socket);
        socket.bind(SocketAddr::new(source, 0)).map_err(|e| format!("cannot bind to {source}: {e}"))?;
        let mut stream = socket.connect(server).await.map_err(|e| format!("cannot connect to {server}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| format!("cannot set TCP_NODELAY: {e}"))?;

        // Core's sans-IO client upgrade: the request, and every check of the answer.
        let opts = ConnectOptions {
            config: Config::new(Role::Client).max_chunk_size(CHUNK),
            request: ClientOptions::new(server.to_string()),
            deflate: deflate.copied(),
        };
        let mut request = Vec::with_capacity(256);
        let upgrade = ClientUpgrade::new(&opts, &mut request).map_err(|e| format!("cannot build the request: {e}"))?;
        stream.write_all(&request).await.map_err(|e| format!("cannot send the upgrade request: {e}"))?;
        let mut head = Vec::with_capacity(1024);
        let connected = loop {
            match upgrade.step(&head) {
                Step::NeedMore => {}
                Step::Refused { error, .. } => return Err(format!("upgrade refused: {error}")),
                Step::Done { result, .. } => break result,
            }
            match stream.read_buf(&mut head).await {
                Ok(0) => return Err("the server hung up during the upgrade".to_owned()),
                Ok(_) => {}
                Err(e) => return Err(format!("cannot read the upgrade response: {e}")),
            }
        };
        if deflate.is_some() && connected.deflate.is_none() {
            return Err("the server declined permessage-deflate".to_owned());
        }
        let mut session = Session::new(opts.config, connected.deflate.as_ref());
        // Frames the server sent right behind its response (none, from an echo server).
        let mut early = &connected.leftover[..];
        while !early.is_empty() {
            let buf = session.read_buf();
            let n = buf.len().min(early.len());
            buf[..n].copy_from_slice(&early[..n]);
            session.advance(n);
            early = &early[n..];
        }
        let stream = stream.into_std().map_err(|e| e.to_string())?;
        // SAFETY: the stream owns its descriptor, and nothing else closes or replaces it while
        // the AsyncFd holds it (tokio's condition for `register`).
        let io = unsafe { AsyncFd::register(stream) }.map_err(|e| format!("cannot watch the socket: {e}"))?;
        Ok(Self { io, session })
    }

    /// Sends `payload` as one binary message and waits for the echo, which must be the same
    /// bytes. Answers pings on the way.
    pub async fn echo(&mut self, payload: &[u8]) -> Result {
        self.session.send_message(OpCode::Binary, payload).map_err(|e| format!("cannot send: {e}"))?;
        self.flush().await?;
        loop {
            match self.session.poll_event().map_err(|e| format!("bad frame from the server: {e}"))? {
                Some(Event::Message { op: OpCode::Binary, payload: echo, .. }) if echo == payload => return Ok(()),
                Some(Event::Message { op, payload: echo, .. }) => {
                    return Err(format!("the echo differs: {op:?}, {} bytes for {}", echo.len(), payload.len()));
                }
                Some(Event::Close { frame, .. }) => return Err(format!("the server closed the connection: {frame:?}")),
                Some(Event::Ping(_) | Event::Pong(_)) => {}
                None => {
                    self.flush().await?;
                    self.read().await?;
                }
            }
        }
    }

    /// The close handshake, then waits (at most `linger`) for the server to hang up first,
    /// as RFC 6455 §7.1.1 has it: the TIME_WAIT is then the server's, and this side's port
    /// is free again at once.
    pub async fn close(mut self, linger: std::time::Duration) -> Result {
        self.session.close(CloseCode::NORMAL_CLOSURE, "").map_err(|e| format!("cannot close: {e}"))?;
        self.flush().await?;
        while !self.session.is_closed() {
            match self.session.poll_event().map_err(|e| format!("bad frame from the server: {e}"))? {
                Some(_) => {}
                None => self.read().await.map_err(|e| format!("close handshake: {e}"))?,
            }
        }
        self.flush().await?;
        let hung_up = async {
            loop {
                let mut guard = self.io.readable().await?;
                match guard.try_io(|io| io.get_ref().read(&mut [0; 64])) {
                    Ok(Ok(0)) => return Ok::<_, io::Error>(()),
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(e),
                    Err(_would_block) => {}
                }
            }
        };
        let _ = tokio::time::timeout(linger, hung_up).await;
        Ok(())
    }

    /// Writes all pending output.
    async fn flush(&mut self) -> Result {
        let Self { io, session } = self;
        while session.has_output() {
            let mut guard = io.writable().await.map_err(|e| e.to_string())?;
            match guard.try_io(|io| io.get_ref().write(session.output())) {
                Ok(Ok(n)) => session.consume_output(n),
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(format!("write failed: {e}")),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    /// Reads once into the session (waiting for bytes if need be).
    async fn read(&mut self) -> Result {
        let Self { io, session } = self;
        loop {
            let mut guard = io.readable().await.map_err(|e| e.to_string())?;
            let buf = session.read_buf();
            match guard.get_inner().read(buf) {
                Ok(0) => return Err("the server hung up".to_owned()),
                Ok(n) => {
                    // A short read drained the socket (see the module docs).
                    if n < buf.len() {
                        guard.clear_ready();
                    }
                    session.advance(n);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => guard.clear_ready(),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read failed: {e}")),
            }
        }
    }
}

/// Asks the kernel to choose the local port at `connect` rather than at `bind`
/// (IP_BIND_ADDRESS_NO_PORT), so ports are only unique per (source, destination) pair and
/// 10,000 connections from a handful of loopback addresses do not run out of them. Best
/// effort: without it, binding still works, only with fewer ports to go round.
fn bind_late(socket: &TcpSocket) {
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor, and an option value of the size given.
    unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const on).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}
