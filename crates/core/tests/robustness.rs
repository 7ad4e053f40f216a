//! Our echo server (in-process: a listener and a thread per connection, as the echo-server
//! example runs it) against clients that send garbage, hang up mid-frame or stall: the bad
//! connections end with the right answer (400/431, close 1002, or nothing for a vanished
//! peer) and good clients keep being served while the bad ones are open.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use lowbit_websockets::tcp::linger;
use lowbit_websockets::{AcceptOptions, Config, Error, OpCode, Role};
use tungstenite::{Message, WebSocket};

mod common;
use common::RawFrame;

/// Hang guard only: the longest any socket read may block.
const GUARD: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// The server

/// How a connection ended, as the server saw it.
#[derive(Debug)]
enum Outcome {
    /// The handshake failed (the response status sent, if any).
    Handshake { status: Option<u16>, error: String },
    /// The client closed normally after this many echoed messages.
    Closed(usize),
    /// The connection failed.
    Failed(Error),
}

/// Outcomes as the connection threads send them, and those received but not asked for yet.
type Outcomes = (Receiver<(u16, Outcome)>, HashMap<u16, Outcome>);

struct Server {
    addr: SocketAddr,
    outcomes: Mutex<Outcomes>,
}

impl Server {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = mpsc::channel();
        let opts = AcceptOptions {
            config: Config::new(Role::Server).max_read_limit(4 << 20).max_chunk_size(64 * 1024),
            ..AcceptOptions::default()
        };
        // Runs until the test binary exits; each connection costs only its own thread.
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (tx, opts) = (tx.clone(), opts.clone());
                thread::spawn(move || {
                    let port = stream.peer_addr().unwrap().port();
                    let linger_on = stream.try_clone().unwrap();
                    let outcome = serve(stream, &opts);
                    let _ = tx.send((port, outcome));
                    linger(&linger_on, GUARD);
                });
            }
        });
        Self { addr, outcomes: Mutex::new((rx, HashMap::new())) }
    }

    /// How the connection from local port `port` ended (waits for it, bounded by GUARD).
    fn outcome(&self, port: u16) -> Outcome {
        let mut g = self.outcomes.lock().unwrap();
        let (rx, seen) = &mut *g;
        let deadline = Instant::now() + GUARD;
        loop {
            if let Some(o) = seen.remove(&port) {
                return o;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let (p, o) = rx.recv_timeout(left).expect("the server reports every connection");
            seen.insert(p, o);
        }
    }

    /// Whether the connection from `port` has ended already (without waiting).
    fn ended(&self, port: u16) -> bool {
        let mut g = self.outcomes.lock().unwrap();
        let (rx, seen) = &mut *g;
        while let Ok((p, o)) = rx.try_recv() {
            seen.insert(p, o);
        }
        seen.contains_key(&port)
    }
}

/// One connection: handshake, then echo until the close or an error.
fn serve(stream: TcpStream, opts: &AcceptOptions) -> Outcome {
    stream.set_read_timeout(Some(GUARD)).unwrap();
    match lowbit_websockets::accept(stream, opts) {
        Err(Error::Handshake(e)) => Outcome::Handshake { status: e.status(), error: e.to_string() },
        Err(e) => Outcome::Handshake { status: None, error: e.to_string() },
        Ok((mut conn, _)) => {
            let mut buf = Vec::new();
            let mut n = 0;
            loop {
                match conn.read_message(&mut buf) {
                    Ok((OpCode::Close, _)) => break Outcome::Closed(n),
                    Ok((op, payload)) => match conn.write_message(op, payload) {
                        Ok(()) => n += 1,
                        Err(e) => break Outcome::Failed(e),
                    },
                    Err(e) => break Outcome::Failed(e),
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Raw clients

fn tcp(addr: SocketAddr) -> (TcpStream, u16) {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    s.set_nodelay(true).unwrap();
    let port = s.local_addr().unwrap().port();
    (s, port)
}

const REQUEST: &str = "GET /raw HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

/// A raw connection past a valid handshake; the response is read byte by byte so nothing
/// after it is consumed.
fn upgraded(addr: SocketAddr) -> (TcpStream, u16) {
    let (mut s, port) = tcp(addr);
    s.write_all(REQUEST.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "response head cut short");
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    (s, port)
}

const KEY: [u8; 4] = [0xa1, 0x5e, 0x07, 0x3c];

/// A masked client frame.
fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    RawFrame::new(op, payload).fin(fin).mask(KEY).build()
}

/// Reads one server frame: (first header byte, payload).
fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    assert_eq!(h[1] & 0x80, 0, "server frames are not masked");
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut p = vec![0u8; len];
    s.read_exact(&mut p).unwrap();
    (h[0], p)
}

/// Reads to the end of the stream.
fn read_rest(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    s.read_to_end(&mut v).unwrap();
    v
}

fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A good client: tungstenite, echoing `rounds` messages of several sizes through the server.
fn good_client(addr: SocketAddr, rounds: usize) -> u16 {
    let (s, port) = tcp(addr);
    let (mut ws, _): (WebSocket<TcpStream>, _) = tungstenite::client(format!("ws://{addr}/good"), s).unwrap();
    for i in 0..rounds {
        let m = if i % 2 == 0 {
            Message::text("ok ✓ ".repeat(i % 50 + 1))
        } else {
            Message::binary(noise([10, 1000, 70_000, 1 << 20][i % 4], i as u64))
        };
        ws.send(m.clone()).unwrap();
        assert_eq!(ws.read().unwrap(), m, "echo {i}");
    }
    ws.close(None).unwrap();
    loop {
        match ws.read() {
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("good client closing: {e}"),
        }
    }
    port
}

// ---------------------------------------------------------------------------------------------
// Tests

#[test]
fn garbage_instead_of_a_handshake_is_answered_400() {
    let server = Server::start();
    for seed in 0..8 {
        let (mut s, port) = tcp(server.addr);
        let mut garbage = noise(300, seed);
        garbage.extend_from_slice(b"\r\n\r\n");
        s.write_all(&garbage).unwrap();
        let answer = String::from_utf8_lossy(&read_rest(&mut s)).into_owned();
        assert!(answer.starts_with("HTTP/1.1 400 Bad Request\r\n"), "seed {seed}: {answer:?}");
        assert!(answer.contains("\r\nConnection: close\r\n"), "{answer}");
        match server.outcome(port) {
            Outcome::Handshake { status: Some(400), .. } => {}
            o => panic!("seed {seed}: {o:?}"),
        }
    }
    // Plausible HTTP that is not a WebSocket upgrade.
    for (request, status) in [
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n", 405),
        (&REQUEST.replace("Version: 13", "Version: 8"), 426),
        (&REQUEST.replace("HTTP/1.1", "HTTP/1.0"), 505),
    ] {
        let (mut s, port) = tcp(server.addr);
        s.write_all(request.as_bytes()).unwrap();
        let answer = String::from_utf8_lossy(&read_rest(&mut s)).into_owned();
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{request:?}: {answer:?}");
        match server.outcome(port) {
            // The response body names the problem, as the error does.
            Outcome::Handshake { status: Some(s), error } if s == status => {
                assert!(answer.ends_with(&format!("\r\n\r\n{error}\n")), "{answer:?} vs {error:?}")
            }
            o => panic!("{request:?}: {o:?}"),
        }
    }
    // An endless head (no line break) stops at the handshake size cap with 431.
    let (mut s, port) = tcp(server.addr);
    let flood = vec![b'A'; 64 * 1024];
    let _ = s.write_all(&flood); // the server may stop reading early
    let answer = String::from_utf8_lossy(&read_rest(&mut s)).into_owned();
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer:?}");
    assert!(matches!(server.outcome(port), Outcome::Handshake { status: Some(431), .. }));
}

/// Frames that must fail the connection with 1002, whatever follows them.
fn protocol_garbage(seed: u64) -> Vec<u8> {
    let mut g = noise(2000, seed);
    g[0] = match seed % 4 {
        0 => 0x80 | 0x40 | (g[0] & 0x03), // RSV1 without an extension
        1 => 0x80 | 0x03,                 // reserved opcode 3
        2 => 0x80 | 0x0b,                 // reserved control opcode 11
        _ => 0x09,                        // a fragmented ping
    };
    g
}

#[test]
fn garbage_after_the_handshake_gets_close_1002() {
    let server = Server::start();
    for seed in 0..12 {
        let (mut s, port) = upgraded(server.addr);
        s.write_all(&protocol_garbage(seed)).unwrap();
        let (b0, body) = read_frame(&mut s);
        assert_eq!(b0, 0x88, "seed {seed}: a close frame");
        assert_eq!(
            u16::from_be_bytes([body[0], body[1]]),
            1002,
            "seed {seed}: {:?}",
            String::from_utf8_lossy(&body[2..])
        );
        assert!(std::str::from_utf8(&body[2..]).is_ok());
        assert_eq!(read_rest(&mut s), b"", "nothing after the close");
        match server.outcome(port) {
            Outcome::Failed(e) => assert_eq!(e.close_code().map(|c| c.0), Some(1002), "seed {seed}: {e}"),
            o => panic!("seed {seed}: {o:?}"),
        }
    }
    // An unmasked frame from a client, after a good message.
    let (mut s, port) = upgraded(server.addr);
    s.write_all(&frame(true, 1, b"fine")).unwrap();
    assert_eq!(read_frame(&mut s), (0x81, b"fine".to_vec()));
    s.write_all(&[0x81, 0x03, b'b', b'a', b'd']).unwrap();
    let (b0, body) = read_frame(&mut s);
    assert_eq!((b0, u16::from_be_bytes([body[0], body[1]])), (0x88, 1002));
    assert!(matches!(server.outcome(port), Outcome::Failed(Error::UnmaskedFrame)));
    // Invalid UTF-8 in a text message is 1007, not 1002.
    let (mut s, port) = upgraded(server.addr);
    s.write_all(&frame(true, 1, b"\xff\xfe")).unwrap();
    let (b0, body) = read_frame(&mut s);
    assert_eq!((b0, u16::from_be_bytes([body[0], body[1]])), (0x88, 1007));
    assert!(matches!(server.outcome(port), Outcome::Failed(Error::InvalidUtf8)));
}

#[test]
fn a_client_vanishing_mid_frame_ends_only_its_connection() {
    let server = Server::start();
    let big = frame(true, 2, &noise(1000, 1));
    let mut fragmented = frame(false, 1, b"first half, ");
    fragmented.extend_from_slice(&frame(true, 0, b"second half")[..5]);
    let cuts: Vec<(&str, Vec<u8>)> = vec![
        ("one header byte", vec![0x82]),
        ("header without mask key", big[..4].to_vec()),
        ("300 of 1000 payload bytes", big[..4 + 4 + 300].to_vec()),
        ("inside the second fragment", fragmented),
    ];
    for (what, bytes) in cuts {
        let (mut s, port) = upgraded(server.addr);
        s.write_all(&bytes).unwrap();
        // Hang up our sending side only: the server reads end of stream mid-frame.
        s.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_rest(&mut s), b"", "{what}: a vanished peer gets no close frame");
        assert!(matches!(server.outcome(port), Outcome::Failed(Error::AbnormalClosure)), "{what}");
    }
    // Hanging up the whole socket mid-frame, and mid-handshake.
    let (mut s, port) = upgraded(server.addr);
    s.write_all(&big[..100]).unwrap();
    drop(s);
    assert!(matches!(server.outcome(port), Outcome::Failed(Error::AbnormalClosure | Error::Io(_))));
    let (mut s, port) = tcp(server.addr);
    s.write_all(&REQUEST.as_bytes()[..40]).unwrap();
    drop(s);
    assert!(matches!(server.outcome(port), Outcome::Handshake { status: None, .. }));
    // The server still serves.
    let port = good_client(server.addr, 8);
    assert!(matches!(server.outcome(port), Outcome::Closed(8)));
}

#[test]
fn bad_clients_do_not_disturb_good_ones() {
    let server = Server::start();
    // Stalled in the handshake: half a request, then silence.
    let (mut stalled_handshake, sh_port) = tcp(server.addr);
    stalled_handshake.write_all(&REQUEST.as_bytes()[..60]).unwrap();
    // Stalled mid-frame: a header announcing 60 000 bytes (one echo frame), 10 000 sent.
    let payload = noise(60_000, 7);
    let whole = frame(true, 2, &payload);
    let (mut stalled_frame, sf_port) = upgraded(server.addr);
    stalled_frame.write_all(&whole[..10_000]).unwrap();
    // Stalled mid-message: one fragment of three.
    let (mut stalled_msg, sm_port) = upgraded(server.addr);
    stalled_msg.write_all(&frame(false, 1, b"one, ")).unwrap();
    // A garbage sender running alongside.
    let addr = server.addr;
    let garbage = thread::spawn(move || {
        let mut ports = Vec::new();
        for seed in 100..110 {
            let (mut s, port) = upgraded(addr);
            s.write_all(&protocol_garbage(seed)).unwrap();
            let (b0, body) = read_frame(&mut s);
            assert_eq!((b0, u16::from_be_bytes([body[0], body[1]])), (0x88, 1002));
            ports.push(port);
        }
        ports
    });

    // Good clients, two at once, while all of the above are open.
    let goods: Vec<_> = (0..2).map(|_| thread::spawn(move || good_client(addr, 40))).collect();
    for g in goods {
        let port = g.join().unwrap();
        assert!(matches!(server.outcome(port), Outcome::Closed(40)));
    }
    for port in garbage.join().unwrap() {
        assert!(matches!(server.outcome(port), Outcome::Failed(e) if e.close_code().map(|c| c.0) == Some(1002)));
    }

    // The stalled connections are still waiting, not dropped.
    for port in [sh_port, sf_port, sm_port] {
        assert!(!server.ended(port), "connection {port} was ended while it stalled");
    }
    // The stalled frame resumes: the rest arrives and the whole message is echoed.
    stalled_frame.write_all(&whole[10_000..]).unwrap();
    let (b0, echo) = read_frame(&mut stalled_frame);
    assert!(b0 == 0x82 && echo == payload, "the resumed message is echoed intact");
    stalled_frame.write_all(&frame(true, 8, &1000u16.to_be_bytes())).unwrap();
    assert_eq!(read_frame(&mut stalled_frame), (0x88, 1000u16.to_be_bytes().to_vec()));
    drop(stalled_frame);
    assert!(matches!(server.outcome(sf_port), Outcome::Closed(1)));
    // The stalled message finishes too, then the client closes with a code of its own.
    stalled_msg.write_all(&frame(true, 0, b"two")).unwrap();
    assert_eq!(read_frame(&mut stalled_msg), (0x81, b"one, two".to_vec()));
    stalled_msg.write_all(&frame(true, 8, &[0x0f, 0xa0, b'b', b'y', b'e'])).unwrap();
    assert_eq!(read_frame(&mut stalled_msg), (0x88, vec![0x0f, 0xa0]));
    drop(stalled_msg);
    assert!(matches!(server.outcome(sm_port), Outcome::Closed(1)));
    // The stalled handshake gives up.
    drop(stalled_handshake);
    assert!(matches!(server.outcome(sh_port), Outcome::Handshake { status: None, .. }));
}
