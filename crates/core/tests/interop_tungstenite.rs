//! Interop with tungstenite over loopback TCP, both roles: messages of every length form up to
//! 16 MiB, fragmentation both ways, ping/pong both ways, every sendable close code from each
//! side, read limits on each side, split + keep-alive under load, and deflate declined.

use std::io::{self, Cursor};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::handshake::{Accepted, Connected};
use lowbit_websockets::tcp::linger;
use lowbit_websockets::{
    AcceptOptions, CloseCode, Config, Conn, ConnectOptions, DeflateOptions, Error, OpCode, READ_LIMIT_LARGE, Role,
};
use tungstenite::protocol::frame::Frame as TFrame;
use tungstenite::protocol::frame::coding::{CloseCode as TCode, Data, OpCode as TOp};
use tungstenite::protocol::{CloseFrame as TClose, WebSocketConfig};
use tungstenite::{Message, WebSocket};

mod common;
use common::{Answering, Feed, Rng, Script, parse_frames};

/// A hang guard only: every socket gets this read timeout so a broken test fails instead of
/// hanging. Nothing waits on it for correctness.
const GUARD: Duration = Duration::from_secs(30);
const MIB: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Content

fn binary(len: usize, seed: u64) -> Vec<u8> {
    let mut r = Rng(seed);
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        v.extend_from_slice(&r.next().to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Text of exactly `len` bytes mixing 1-, 2-, 3- and 4-byte characters.
fn text(len: usize, seed: u64) -> String {
    const CHARS: [&str; 8] = ["a", "Z", " ", "é", "ß", "€", "✓", "𝄞"];
    let mut r = Rng(seed);
    let mut s = String::with_capacity(len);
    while s.len() < len {
        let c = CHARS[(r.next() % CHARS.len() as u64) as usize];
        if s.len() + c.len() <= len {
            s.push_str(c);
        } else {
            s.push('x');
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Peers

fn guard(stream: &TcpStream) {
    stream.set_read_timeout(Some(GUARD)).unwrap();
    stream.set_nodelay(true).unwrap();
}

fn tcfg(max_message: Option<usize>, max_frame: Option<usize>) -> WebSocketConfig {
    WebSocketConfig::default().max_message_size(max_message).max_frame_size(max_frame)
}

/// Our server: accepts one connection on a thread and hands it to `f`.
fn our_server<T: Send + 'static>(
    opts: AcceptOptions,
    f: impl FnOnce(Conn<TcpStream>, Accepted) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let h = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        guard(&stream);
        let (conn, accepted) = lowbit_websockets::accept(stream, &opts).unwrap();
        f(conn, accepted)
    });
    (addr, h)
}

fn tung_client(addr: SocketAddr, cfg: WebSocketConfig) -> WebSocket<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    guard(&stream);
    tungstenite::client::client_with_config(format!("ws://{addr}/"), stream, Some(cfg)).unwrap().0
}

/// A tungstenite server: accepts one connection on a thread and hands it to `f`.
fn tung_server<T: Send + 'static>(
    cfg: WebSocketConfig,
    f: impl FnOnce(WebSocket<TcpStream>) -> T + Send + 'static,
) -> (SocketAddr, JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let h = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        guard(&stream);
        f(tungstenite::accept_with_config(stream, Some(cfg)).unwrap())
    });
    (addr, h)
}

fn our_client(addr: SocketAddr, config: Config, deflate: Option<DeflateOptions>) -> (Conn<TcpStream>, Connected) {
    let stream = TcpStream::connect(addr).unwrap();
    guard(&stream);
    let opts = ConnectOptions { request: ClientOptions::new(addr.to_string()), config, deflate };
    lowbit_websockets::connect(stream, &opts).unwrap()
}

fn server_cfg(limit: usize, chunk: usize) -> Config {
    Config::new(Role::Server).max_read_limit(limit).max_chunk_size(chunk)
}

fn client_cfg(limit: usize, chunk: usize) -> Config {
    Config::new(Role::Client).max_read_limit(limit).max_chunk_size(chunk)
}

/// Echoes until the peer's close; returns how many messages were echoed.
fn our_echo(conn: &mut Conn<TcpStream>) -> lowbit_websockets::Result<usize> {
    let mut buf = Vec::new();
    let mut n = 0;
    loop {
        let (op, payload) = conn.read_message(&mut buf)?;
        if op == OpCode::Close {
            return Ok(n);
        }
        conn.write_message(op, payload)?;
        n += 1;
    }
}

/// Echoes data messages until the close handshake ends; returns the messages echoed and the
/// close frame received (if any).
fn tung_echo(ws: &mut WebSocket<TcpStream>) -> (usize, Option<TClose>) {
    let mut n = 0;
    let mut close = None;
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                ws.send(m).unwrap();
                n += 1;
            }
            Ok(Message::Close(f)) => close = f,
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return (n, close),
            Err(e) => panic!("tungstenite echo failed after {n} messages: {e}"),
        }
    }
}

/// Reads the next data message, skipping pings/pongs (tungstenite answers pings itself).
fn tung_next_data(ws: &mut WebSocket<TcpStream>) -> Message {
    loop {
        match ws.read().unwrap() {
            Message::Ping(_) | Message::Pong(_) => {}
            m => return m,
        }
    }
}

/// Closes from the tungstenite side (1000) and waits for the end of the handshake; returns the
/// close frame that answered.
fn tung_close_and_finish(ws: &mut WebSocket<TcpStream>) -> Option<TClose> {
    ws.close(Some(TClose { code: TCode::Normal, reason: "done".into() })).unwrap();
    let mut got = None;
    loop {
        match ws.read() {
            Ok(Message::Close(f)) => got = f,
            Ok(_) => {}
            Err(tungstenite::Error::ConnectionClosed) => return got,
            Err(e) => panic!("closing: {e}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Messages of every length form

/// 0, 1, 125 (largest 7-bit), 126 (smallest 16-bit), 65535, 65536 (smallest 64-bit), 16 MiB.
const SIZES: [usize; 7] = [0, 1, 125, 126, 65535, 65536, 16 * MIB];

fn plan() -> Vec<Message> {
    let mut v = Vec::new();
    for (i, &n) in SIZES.iter().enumerate() {
        v.push(Message::text(text(n, i as u64)));
        v.push(Message::binary(binary(n, 100 + i as u64)));
    }
    v
}

#[test]
fn tungstenite_client_through_our_server_every_length_form() {
    let opts = AcceptOptions { config: server_cfg(READ_LIMIT_LARGE, 0), ..AcceptOptions::default() };
    let (addr, server) = our_server(opts, |mut conn, accepted| {
        assert_eq!(accepted.extensions, None);
        let n = our_echo(&mut conn).unwrap();
        linger(conn.get_ref(), GUARD);
        n
    });
    // Our server writes 4 KiB frames by default: tungstenite's frame limit proves it.
    let mut ws = tung_client(addr, tcfg(Some(16 * MIB), Some(4096)));
    let plan = plan();
    for m in &plan {
        ws.send(m.clone()).unwrap();
        let got = tung_next_data(&mut ws);
        assert!(
            got == *m,
            "echo of a {}-byte {} message differs",
            m.len(),
            if m.is_text() { "text" } else { "binary" }
        );
    }
    assert_eq!(tung_close_and_finish(&mut ws).map(|f| u16::from(f.code)), Some(1000));
    drop(ws);
    assert_eq!(server.join().unwrap(), plan.len());
}

#[test]
fn our_client_through_tungstenite_server_every_length_form() {
    let (addr, server) = tung_server(tcfg(Some(16 * MIB), Some(16 * MIB)), |mut ws| tung_echo(&mut ws));
    let (mut conn, connected) = our_client(addr, client_cfg(READ_LIMIT_LARGE, 0), None);
    assert_eq!(connected.extensions, None);
    let mut buf = Vec::new();
    for (i, &n) in SIZES.iter().enumerate() {
        let t = text(n, i as u64);
        conn.write_message(OpCode::Text, t.as_bytes()).unwrap();
        let (op, payload) = conn.read_message(&mut buf).unwrap();
        assert!(op == OpCode::Text && payload == t.as_bytes(), "text echo of {n} bytes differs");
        let b = binary(n, 100 + i as u64);
        conn.write_message(OpCode::Binary, &b).unwrap();
        let (op, payload) = conn.read_message(&mut buf).unwrap();
        assert!(op == OpCode::Binary && payload == &b[..], "binary echo of {n} bytes differs");
    }
    conn.close().unwrap();
    let (echoed, close) = server.join().unwrap();
    assert_eq!(echoed, 2 * SIZES.len());
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1000));
}

// ---------------------------------------------------------------------------------------------
// Fragmentation

/// Writes fragmented messages the way a peer may: a character split across fragments, an
/// empty middle fragment with a ping between fragments, many small fragments.
fn tung_send_fragments(ws: &mut WebSocket<TcpStream>) -> Vec<Message> {
    let frame = |op: TOp, data: &[u8], fin: bool| Message::Frame(TFrame::message(data.to_vec(), op, fin));
    let (text_op, bin_op, cont) = (TOp::Data(Data::Text), TOp::Data(Data::Binary), TOp::Data(Data::Continue));
    // "héllo": the é (c3 a9) is split across two frames.
    ws.write(frame(text_op, b"h\xc3", false)).unwrap();
    ws.write(frame(cont, b"\xa9llo", true)).unwrap();
    // Binary in three fragments, the middle one empty, a ping between the first two.
    ws.write(frame(bin_op, &[1, 2, 3], false)).unwrap();
    ws.write(Message::Ping(b"mid-message".to_vec().into())).unwrap();
    ws.write(frame(cont, &[], false)).unwrap();
    ws.write(frame(cont, &[4, 5], true)).unwrap();
    // 200 KB of text in 1000-byte fragments (cut at arbitrary byte offsets).
    let big = text(200_000, 7);
    let parts: Vec<&[u8]> = big.as_bytes().chunks(1000).collect();
    for (i, p) in parts.iter().enumerate() {
        let op = if i == 0 { text_op } else { cont };
        ws.write(frame(op, p, i == parts.len() - 1)).unwrap();
    }
    // An empty text message sent as two empty fragments.
    ws.write(frame(text_op, b"", false)).unwrap();
    ws.write(frame(cont, b"", true)).unwrap();
    ws.flush().unwrap();
    vec![Message::text("héllo"), Message::binary(vec![1, 2, 3, 4, 5]), Message::text(big), Message::text("")]
}

/// Reads what the tungstenite side expects back: the pong for its mid-message ping, then the
/// echoed messages, reassembled.
fn tung_expect_echoes(ws: &mut WebSocket<TcpStream>, expected: &[Message]) {
    let mut pongs = Vec::new();
    let mut got = Vec::new();
    while got.len() < expected.len() {
        match ws.read().unwrap() {
            Message::Pong(p) => pongs.push(p.to_vec()),
            Message::Ping(_) => {}
            m => got.push(m),
        }
    }
    assert_eq!(pongs, vec![b"mid-message".to_vec()]);
    for (g, e) in got.iter().zip(expected) {
        assert!(g == e, "reassembled echo differs: got {} bytes, want {}", g.len(), e.len());
    }
}

#[test]
fn tungstenite_fragments_reassembled_by_our_server() {
    let pings = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&pings);
    let (addr, server) = our_server(AcceptOptions::default(), move |mut conn, _| {
        conn.set_ping_handler(move |p| seen.lock().unwrap().push(p.to_vec()));
        let n = our_echo(&mut conn).unwrap();
        linger(conn.get_ref(), GUARD);
        n
    });
    let mut ws = tung_client(addr, tcfg(None, None));
    let expected = tung_send_fragments(&mut ws);
    tung_expect_echoes(&mut ws, &expected);
    tung_close_and_finish(&mut ws);
    drop(ws);
    assert_eq!(server.join().unwrap(), expected.len());
    assert_eq!(*pings.lock().unwrap(), vec![b"mid-message".to_vec()]);
}

#[test]
fn tungstenite_fragments_reassembled_by_our_client() {
    let (addr, server) = tung_server(tcfg(None, None), |mut ws| {
        let expected = tung_send_fragments(&mut ws);
        tung_expect_echoes(&mut ws, &expected);
        tung_close_and_finish(&mut ws)
    });
    let (mut conn, _) = our_client(addr, client_cfg(0, 0), None);
    let n = our_echo(&mut conn).unwrap();
    assert_eq!(n, 4);
    assert_eq!(server.join().unwrap().map(|f| u16::from(f.code)), Some(1000));
}

const CHUNK: usize = 1000;

/// Our side fragments: `write_message` past `max_chunk_size`, `stream_message` with a chunk
/// size that splits characters, a length that is an exact multiple of the chunk, an empty
/// stream, and hand-made fragments with a ping between them. The peer's frame limit is
/// `CHUNK`, so any larger frame fails the test on its side.
fn our_send_fragments_and_check(conn: &mut Conn<TcpStream>) {
    let pongs = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&pongs);
    conn.set_pong_handler(move |p| seen.lock().unwrap().push(p.to_vec()));
    let big_bin = binary(10_000, 1);
    let big_text = text(5_000, 2);
    let streamed = text(5_000, 3);
    let exact = binary(3 * 333, 4);
    let mut expected: Vec<(OpCode, Vec<u8>)> = Vec::new();

    conn.write_message(OpCode::Binary, &big_bin).unwrap();
    expected.push((OpCode::Binary, big_bin.clone()));
    conn.write_message(OpCode::Text, big_text.as_bytes()).unwrap();
    expected.push((OpCode::Text, big_text.clone().into_bytes()));
    conn.stream_message(OpCode::Text, 333, &mut Cursor::new(streamed.as_bytes())).unwrap();
    expected.push((OpCode::Text, streamed.clone().into_bytes()));
    conn.stream_message(OpCode::Binary, 333, &mut Cursor::new(&exact)).unwrap();
    expected.push((OpCode::Binary, exact.clone()));
    conn.stream_message(OpCode::Binary, 0, &mut io::empty()).unwrap();
    expected.push((OpCode::Binary, Vec::new()));
    conn.write_frame(false, 0, OpCode::Text, "frag-é".as_bytes()).unwrap();
    conn.ping(b"between").unwrap();
    conn.write_frame(false, 0, OpCode::Continuation, b"").unwrap();
    conn.write_frame(true, 0, OpCode::Continuation, b"-end").unwrap();
    expected.push((OpCode::Text, "frag-é-end".as_bytes().to_vec()));

    let mut buf = Vec::new();
    for (op, want) in &expected {
        let (got_op, got) = conn.read_message(&mut buf).unwrap();
        assert_eq!(got_op, *op);
        assert!(got == &want[..], "echo of a {}-byte {op:?} message differs", want.len());
    }
    assert_eq!(*pongs.lock().unwrap(), vec![b"between".to_vec()]);
}

#[test]
fn our_server_fragments_reassembled_by_tungstenite() {
    let (addr, server) =
        our_server(AcceptOptions { config: server_cfg(0, CHUNK), ..AcceptOptions::default() }, |mut conn, _| {
            our_send_fragments_and_check(&mut conn);
            conn.close().unwrap();
        });
    let mut ws = tung_client(addr, tcfg(None, Some(CHUNK)));
    let (n, close) = tung_echo(&mut ws);
    server.join().unwrap();
    assert_eq!(n, 6);
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1000));
}

#[test]
fn our_client_fragments_reassembled_by_tungstenite() {
    let (addr, server) = tung_server(tcfg(None, Some(CHUNK)), |mut ws| tung_echo(&mut ws));
    let (mut conn, _) = our_client(addr, client_cfg(0, CHUNK), None);
    our_send_fragments_and_check(&mut conn);
    conn.close().unwrap();
    let (n, close) = server.join().unwrap();
    assert_eq!(n, 6);
    assert_eq!(close.map(|f| u16::from(f.code)), Some(1000));
}

// ---------------------------------------------------------------------------------------------
// Ping / pong

/// The tungstenite side pings first and expects our pong before the echo, then echoes while
/// our side pings.
fn tung_ping_then_echo(ws: &mut WebSocket<TcpStream>) -> usize {
    ws.send(Message::Ping(b"from-tungstenite".to_vec().into())).unwrap();
    ws.send(Message::text("hello")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::Pong(b"from-tungstenite".to_vec().into()));
    assert_eq!(ws.read().unwrap(), Message::text("hello"));
    tung_echo(ws).0
}

fn our_ping_side(conn: &mut Conn<TcpStream>) {
    let pings = Arc::new(Mutex::new(Vec::new()));
    let pongs = Arc::new(Mutex::new(Vec::new()));
    let (pi, po) = (Arc::clone(&pings), Arc::clone(&pongs));
    conn.set_ping_handler(move |p| pi.lock().unwrap().push(p.to_vec()));
    conn.set_pong_handler(move |p| po.lock().unwrap().push(p.to_vec()));
    let mut buf = Vec::new();
    // Their ping: answered on the way to the message.
    let (op, payload) = conn.read_message(&mut buf).unwrap();
    assert_eq!((op, payload), (OpCode::Text, &b"hello"[..]));
    conn.write_message(op, b"hello").unwrap();
    assert_eq!(*pings.lock().unwrap(), vec![b"from-tungstenite".to_vec()]);
    // Our pings: empty and the largest allowed; the pongs arrive before the echo that follows.
    let max = vec![b'p'; 125];
    conn.ping(b"").unwrap();
    conn.ping(&max).unwrap();
    conn.write_message(OpCode::Text, b"after").unwrap();
    let (op, payload) = conn.read_message(&mut buf).unwrap();
    assert_eq!((op, payload), (OpCode::Text, &b"after"[..]));
    assert_eq!(*pongs.lock().unwrap(), vec![Vec::new(), max]);
    // A 126-byte ping is refused locally, nothing sent.
    assert!(matches!(conn.ping(&[0; 126]), Err(Error::Misuse(lowbit_websockets::Misuse::ControlPayloadTooLong(126)))));
    conn.close().unwrap();
}

#[test]
fn ping_pong_both_ways_our_server() {
    let (addr, server) = our_server(AcceptOptions::default(), |mut conn, _| our_ping_side(&mut conn));
    let mut ws = tung_client(addr, tcfg(None, None));
    assert_eq!(tung_ping_then_echo(&mut ws), 1);
    server.join().unwrap();
}

#[test]
fn ping_pong_both_ways_our_client() {
    let (addr, server) = tung_server(tcfg(None, None), |mut ws| tung_ping_then_echo(&mut ws));
    let (mut conn, _) = our_client(addr, client_cfg(0, 0), None);
    our_ping_side(&mut conn);
    assert_eq!(server.join().unwrap(), 1);
}

// ---------------------------------------------------------------------------------------------
// Close codes

const CODES: [u16; 16] =
    [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999];

fn reasons() -> [String; 3] {
    ["".to_owned(), "bye ✓".to_owned(), "r".repeat(123)]
}

type Observed = Arc<Mutex<Vec<(u16, String)>>>;

fn watch_close(conn: &mut Conn<TcpStream>) -> Observed {
    let seen: Observed = Arc::default();
    let s = Arc::clone(&seen);
    conn.set_close_handler(move |code, reason| s.lock().unwrap().push((code.0, reason.to_owned())));
    seen
}

/// What tungstenite 0.30 reports for a close `code` it receives: 1014 (IANA "Bad Gateway") is
/// missing from its table, so it reports and echoes 1002 "Protocol violation" instead.
fn as_tungstenite_sees(code: u16, reason: &str) -> (u16, String) {
    if code == 1014 { (1002, "Protocol violation".to_owned()) } else { (code, reason.to_owned()) }
}

/// Our side closes with `code`: tungstenite must see exactly that code and reason, and its
/// echo (code and reason) completes our close handshake.
fn we_close(conn: &mut Conn<TcpStream>, code: u16, reason: &str) {
    let seen = watch_close(conn);
    conn.close_with_code(CloseCode(code), reason).unwrap();
    assert_eq!(*seen.lock().unwrap(), vec![as_tungstenite_sees(code, reason)], "tungstenite's echo of {code}");
    let mut buf = Vec::new();
    assert!(matches!(conn.read_message(&mut buf), Err(Error::WebSocketClosed)));
}

fn tung_sees_close(ws: &mut WebSocket<TcpStream>, code: u16, reason: &str) {
    match ws.read() {
        Ok(Message::Close(Some(f))) => {
            assert_eq!((u16::from(f.code), f.reason.to_string()), as_tungstenite_sees(code, reason));
        }
        other => panic!("tungstenite expected close {code}, got {other:?}"),
    }
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed) => {}
        Ok(m) => panic!("after close {code}: {m:?}"),
        Err(e) => panic!("after close {code}: {e}"),
    }
}

/// Tungstenite closes with `code`: we must see exactly that code and reason, and echo the code.
fn tung_closes(ws: &mut WebSocket<TcpStream>, code: u16, reason: &str) {
    ws.close(Some(TClose { code: TCode::from(code), reason: reason.into() })).unwrap();
    match ws.read() {
        Ok(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), code, "our echo of {code}"),
        other => panic!("tungstenite expected our echo of {code}, got {other:?}"),
    }
    match ws.read() {
        Err(tungstenite::Error::ConnectionClosed) => {}
        Ok(m) => panic!("after close {code}: {m:?}"),
        Err(e) => panic!("after close {code}: {e}"),
    }
}

fn we_see_close(conn: &mut Conn<TcpStream>, code: u16, reason: &str) {
    let seen = watch_close(conn);
    let mut buf = Vec::new();
    let (op, body) = conn.read_message(&mut buf).unwrap();
    assert_eq!(op, OpCode::Close);
    let mut want = code.to_be_bytes().to_vec();
    want.extend_from_slice(reason.as_bytes());
    assert_eq!(body, &want[..]);
    assert_eq!(*seen.lock().unwrap(), vec![(code, reason.to_owned())]);
    assert!(matches!(conn.read_message(&mut buf), Err(Error::WebSocketClosed)));
}

#[test]
fn every_close_code_initiated_by_our_server() {
    for code in CODES {
        for reason in reasons() {
            let r = reason.clone();
            let (addr, server) = our_server(AcceptOptions::default(), move |mut conn, _| {
                we_close(&mut conn, code, &r);
                linger(conn.get_ref(), GUARD);
            });
            let mut ws = tung_client(addr, tcfg(None, None));
            tung_sees_close(&mut ws, code, &reason);
            drop(ws);
            server.join().unwrap();
        }
    }
}

#[test]
fn every_close_code_initiated_by_our_client() {
    for code in CODES {
        for reason in reasons() {
            let r = reason.clone();
            let (addr, server) = tung_server(tcfg(None, None), move |mut ws| tung_sees_close(&mut ws, code, &r));
            let (mut conn, _) = our_client(addr, client_cfg(0, 0), None);
            we_close(&mut conn, code, &reason);
            server.join().unwrap();
        }
    }
}

#[test]
fn every_close_code_initiated_by_tungstenite_client() {
    for code in CODES {
        for reason in reasons() {
            let r = reason.clone();
            let (addr, server) = our_server(AcceptOptions::default(), move |mut conn, _| {
                we_see_close(&mut conn, code, &r);
                linger(conn.get_ref(), GUARD);
            });
            let mut ws = tung_client(addr, tcfg(None, None));
            tung_closes(&mut ws, code, &reason);
            drop(ws);
            server.join().unwrap();
        }
    }
}

#[test]
fn every_close_code_initiated_by_tungstenite_server() {
    for code in CODES {
        for reason in reasons() {
            let r = reason.clone();
            let (addr, server) = tung_server(tcfg(None, None), move |mut ws| tung_closes(&mut ws, code, &r));
            let (mut conn, _) = our_client(addr, client_cfg(0, 0), None);
            we_see_close(&mut conn, code, &reason);
            server.join().unwrap();
        }
    }
}

/// Tungstenite closes with an empty body: we report 1005 and answer with an empty close.
fn tung_closes_empty(ws: &mut WebSocket<TcpStream>) {
    ws.close(None).unwrap();
    match ws.read() {
        Ok(Message::Close(None)) => {}
        other => panic!("expected an empty close back, got {other:?}"),
    }
}

fn we_see_empty_close(conn: &mut Conn<TcpStream>) {
    let seen = watch_close(conn);
    let mut buf = Vec::new();
    let (op, body) = conn.read_message(&mut buf).unwrap();
    assert_eq!((op, body), (OpCode::Close, &b""[..]));
    assert_eq!(*seen.lock().unwrap(), vec![(1005, String::new())]);
}

#[test]
fn empty_close_from_tungstenite_is_1005_and_answered_empty() {
    let (addr, server) = our_server(AcceptOptions::default(), |mut conn, _| {
        we_see_empty_close(&mut conn);
        linger(conn.get_ref(), GUARD);
    });
    let mut ws = tung_client(addr, tcfg(None, None));
    tung_closes_empty(&mut ws);
    drop(ws);
    server.join().unwrap();
    let (addr, server) = tung_server(tcfg(None, None), |mut ws| tung_closes_empty(&mut ws));
    let (mut conn, _) = our_client(addr, client_cfg(0, 0), None);
    we_see_empty_close(&mut conn);
    server.join().unwrap();
}

/// Codes that must never be on the wire (RFC 6455 §7.4.1): tungstenite sends them when told
/// to; we fail the connection with 1002.
#[test]
fn unsendable_close_codes_from_tungstenite_get_1002() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        let (addr, server) = our_server(AcceptOptions::default(), move |mut conn, _| {
            let mut buf = Vec::new();
            match conn.read_message(&mut buf) {
                Err(Error::InvalidCloseCode(c)) => assert_eq!(c, code),
                other => panic!("close {code}: expected InvalidCloseCode, got {other:?}"),
            }
            linger(conn.get_ref(), GUARD);
        });
        let mut ws = tung_client(addr, tcfg(None, None));
        ws.close(Some(TClose { code: TCode::from(code), reason: "".into() })).unwrap();
        match ws.read() {
            Ok(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1002, "answer to close {code}"),
            other => panic!("close {code}: {other:?}"),
        }
        drop(ws);
        server.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Limits

const LIMIT: usize = 1000;

/// Tungstenite sends LIMIT bytes (echoed), then LIMIT + 1 (whole or as two fragments): our
/// side fails with MessageTooBig and tungstenite reads close 1009.
fn tung_overflows(ws: &mut WebSocket<TcpStream>, fragmented: bool) {
    let ok = binary(LIMIT, 1);
    ws.send(Message::binary(ok.clone())).unwrap();
    assert_eq!(tung_next_data(ws), Message::binary(ok));
    let over = binary(LIMIT + 1, 2);
    if fragmented {
        let (a, b) = over.split_at(600);
        ws.write(Message::Frame(TFrame::message(a.to_vec(), TOp::Data(Data::Binary), false))).unwrap();
        ws.write(Message::Frame(TFrame::message(b.to_vec(), TOp::Data(Data::Continue), true))).unwrap();
        ws.flush().unwrap();
    } else {
        ws.send(Message::binary(over)).unwrap();
    }
    match ws.read() {
        Ok(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1009, "reason: {}", f.reason),
        other => panic!("expected close 1009, got {other:?}"),
    }
}

fn our_limited_echo(conn: &mut Conn<TcpStream>) {
    match our_echo(conn) {
        Err(Error::MessageTooBig { limit }) => assert_eq!(limit, LIMIT as u64),
        other => panic!("expected MessageTooBig, got {other:?}"),
    }
    linger(conn.get_ref(), GUARD);
}

#[test]
fn our_server_read_limit_sends_1009_to_tungstenite() {
    for fragmented in [false, true] {
        let opts = AcceptOptions { config: server_cfg(LIMIT, 0), ..AcceptOptions::default() };
        let (addr, server) = our_server(opts, |mut conn, _| our_limited_echo(&mut conn));
        let mut ws = tung_client(addr, tcfg(None, None));
        tung_overflows(&mut ws, fragmented);
        drop(ws);
        server.join().unwrap();
    }
}

#[test]
fn our_client_read_limit_sends_1009_to_tungstenite() {
    for fragmented in [false, true] {
        let (addr, server) = tung_server(tcfg(None, None), move |mut ws| tung_overflows(&mut ws, fragmented));
        let (mut conn, _) = our_client(addr, client_cfg(LIMIT, 0), None);
        our_limited_echo(&mut conn);
        server.join().unwrap();
    }
}

/// Tungstenite with `max_message_size` LIMIT receives LIMIT (fine) then LIMIT + 1 from us: it
/// reports MessageTooLong, and its close 1009 reaches us with that exact code.
fn tung_small_limit(ws: &mut WebSocket<TcpStream>) {
    match ws.read().unwrap() {
        Message::Binary(b) => assert_eq!(b.len(), LIMIT),
        m => panic!("{m:?}"),
    }
    match ws.read() {
        Err(tungstenite::Error::Capacity(tungstenite::error::CapacityError::MessageTooLong { size, max_size })) => {
            assert_eq!(max_size, LIMIT);
            assert!(size > LIMIT);
        }
        other => panic!("expected MessageTooLong, got {other:?}"),
    }
    ws.close(Some(TClose { code: TCode::Size, reason: "too big".into() })).unwrap();
    // Our close echo; the connection then ends.
    loop {
        match ws.read() {
            Ok(Message::Close(Some(f))) => assert_eq!(u16::from(f.code), 1009),
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

fn our_big_sender(conn: &mut Conn<TcpStream>) {
    conn.write_message(OpCode::Binary, &binary(LIMIT, 3)).unwrap();
    conn.write_message(OpCode::Binary, &binary(LIMIT + 1, 4)).unwrap();
    let seen = watch_close(conn);
    let mut buf = Vec::new();
    let (op, body) = conn.read_message(&mut buf).unwrap();
    assert_eq!(op, OpCode::Close);
    assert_eq!(&body[..2], &1009u16.to_be_bytes());
    assert_eq!(*seen.lock().unwrap(), vec![(1009, "too big".to_owned())]);
}

#[test]
fn tungstenite_client_max_message_size_against_our_server() {
    // Our chunk size 400: the too-big message arrives as three fragments.
    for chunk in [0, 400] {
        let opts = AcceptOptions { config: server_cfg(0, chunk), ..AcceptOptions::default() };
        let (addr, server) = our_server(opts, |mut conn, _| {
            our_big_sender(&mut conn);
            linger(conn.get_ref(), GUARD);
        });
        let mut ws = tung_client(addr, tcfg(Some(LIMIT), None));
        tung_small_limit(&mut ws);
        drop(ws);
        server.join().unwrap();
    }
}

#[test]
fn tungstenite_server_max_message_size_against_our_client() {
    for chunk in [0, 400] {
        let (addr, server) = tung_server(tcfg(Some(LIMIT), None), |mut ws| tung_small_limit(&mut ws));
        let (mut conn, _) = our_client(addr, client_cfg(0, chunk), None);
        our_big_sender(&mut conn);
        server.join().unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Split + keep-alive

/// Content of message `i` from writer `w`: self-describing, so the reader can check it alone.
fn tagged(w: u8, i: u32, len: usize) -> Vec<u8> {
    let mut v = binary(len, u64::from(w) << 32 | u64::from(i));
    v[0] = w;
    v[1..5].copy_from_slice(&i.to_be_bytes());
    v
}

#[test]
fn split_keep_alive_pings_land_between_whole_messages() {
    const WRITERS: u8 = 2;
    const LEN: usize = 512 * 1024;
    /// Pings the client must see between two data messages before the writers stop.
    const WANT_PINGS: usize = 10;
    /// A hang guard on the writers (about 1 GiB in all); reaching it fails the test.
    const MAX_PER_WRITER: u32 = 1000;
    let enough = Arc::new(AtomicBool::new(false));
    let stop_writing = Arc::clone(&enough);
    let opts = AcceptOptions { config: server_cfg(0, 4096), ..AcceptOptions::default() };
    let (addr, server) = our_server(opts, move |conn, _| {
        let tcp = conn.get_ref().try_clone().unwrap();
        let (mut reader, writer) = conn.split().unwrap();
        let pongs = Arc::new(AtomicUsize::new(0));
        let p = Arc::clone(&pongs);
        reader.handlers().set_pong_handler(move |_| {
            p.fetch_add(1, Ordering::Relaxed);
        });
        // The reader runs alongside the writers, answering through the shared writer.
        let reading = thread::spawn(move || {
            let mut buf = Vec::new();
            let (op, _) = reader.read_message(&mut buf)?;
            assert_eq!(op, OpCode::Close, "the client sends no data");
            Ok::<_, Error>(())
        });
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let ka = writer.clone();
        let pinger = thread::spawn(move || ka.keep_alive(Duration::from_millis(10), &stop_rx));
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let wr = writer.clone();
                let stop = Arc::clone(&stop_writing);
                thread::spawn(move || {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) && i < MAX_PER_WRITER {
                        wr.write_message(OpCode::Binary, &tagged(w, i, LEN)).unwrap();
                        i += 1;
                    }
                    // The end marker: a short message from this writer.
                    wr.write_message(OpCode::Binary, &[w]).unwrap();
                    i
                })
            })
            .collect();
        let written: u32 = writers.into_iter().map(|h| h.join().unwrap()).sum();
        reading.join().unwrap().unwrap();
        drop(stop_tx);
        // The pinger stops when told to, or when a ping finds the close already sent.
        match pinger.join().unwrap() {
            Ok(()) | Err(Error::WebSocketClosed) => {}
            Err(e) => panic!("keep-alive failed: {e}"),
        }
        linger(&tcp, GUARD);
        (written, pongs.load(Ordering::Relaxed))
    });
    let mut ws = tung_client(addr, tcfg(Some(MIB), Some(4096)));
    let mut next = [0u32; WRITERS as usize];
    let mut ended = 0;
    let (mut pings, mut pings_between) = (0usize, 0usize);
    let mut received = 0u32;
    // Any frame landing inside another message's frames would make tungstenite fail here.
    while ended < WRITERS {
        match ws.read().unwrap() {
            Message::Binary(b) if b.len() == 1 => {
                assert!(b[0] < WRITERS);
                ended += 1;
            }
            Message::Binary(b) => {
                let w = b[0];
                let i = u32::from_be_bytes(b[1..5].try_into().unwrap());
                assert!(w < WRITERS, "unknown writer {w}");
                assert_eq!(i, next[w as usize], "writer {w}'s messages out of order");
                assert!(b[..] == tagged(w, i, LEN)[..], "message {i} of writer {w} corrupted");
                next[w as usize] += 1;
                received += 1;
            }
            Message::Ping(p) => {
                assert!(p.is_empty());
                pings += 1;
                if received > 0 && ended == 0 {
                    pings_between += 1;
                    if pings_between >= WANT_PINGS {
                        enough.store(true, Ordering::Relaxed);
                    }
                }
            }
            m => panic!("unexpected {m:?}"),
        }
    }
    tung_close_and_finish(&mut ws);
    drop(ws);
    let (written, pongs) = server.join().unwrap();
    assert_eq!(received, written, "every message arrived");
    assert!(pings_between >= WANT_PINGS, "only {pings_between} pings between messages in {received} messages");
    assert!(pongs >= 1, "tungstenite's pongs reach our reader");
    eprintln!("keep-alive: {received} messages, {pings} pings ({pings_between} between messages), {pongs} pongs read");
}

// ---------------------------------------------------------------------------------------------
// Deflate offered but not negotiated (tungstenite has no permessage-deflate)

/// Compressible and above the default 1 KiB threshold: would be compressed if deflate were on.
fn compressible(n: usize) -> String {
    "{\"id\":1,\"name\":\"lowbit\",\"tags\":[\"a\",\"b\"]},".repeat(n / 40 + 1)[..n].to_owned()
}

#[test]
fn deflate_offer_declined_by_tungstenite_client_changes_nothing() {
    let opts = AcceptOptions { deflate: Some(DeflateOptions::default()), ..AcceptOptions::default() };
    let (addr, server) = our_server(opts, |mut conn, accepted| {
        let n = our_echo(&mut conn).unwrap();
        linger(conn.get_ref(), GUARD);
        (n, accepted.extensions)
    });
    // tungstenite fails on any RSV bit: each echo proves our frames went out uncompressed.
    let mut ws = tung_client(addr, tcfg(None, None));
    for n in [0, 1023, 1024, 100_000] {
        let m = Message::text(compressible(n));
        ws.send(m.clone()).unwrap();
        assert_eq!(tung_next_data(&mut ws), m);
    }
    tung_close_and_finish(&mut ws);
    drop(ws);
    assert_eq!(server.join().unwrap(), (4, None));
}

#[test]
fn deflate_offer_ignored_by_tungstenite_server_changes_nothing() {
    let (addr, server) = tung_server(tcfg(None, None), |mut ws| tung_echo(&mut ws));
    let (mut conn, connected) = our_client(addr, client_cfg(0, 0), Some(DeflateOptions::default()));
    assert_eq!(connected.extensions, None);
    let mut buf = Vec::new();
    for n in [0, 1023, 1024, 100_000] {
        let m = compressible(n);
        conn.write_message(OpCode::Text, m.as_bytes()).unwrap();
        let (op, rsv, payload) = conn.read_message_ext(&mut buf).unwrap();
        assert_eq!((op, rsv), (OpCode::Text, 0));
        assert!(payload == m.as_bytes());
    }
    conn.close().unwrap();
    assert_eq!(server.join().unwrap().0, 4);
}

/// The frames in `bytes` as (first header byte, unmasked payload).
fn frames(bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    parse_frames(bytes).into_iter().map(|f| ((f.fin as u8) << 7 | f.rsv | f.opcode, f.payload)).collect()
}

#[test]
fn deflate_declined_writes_the_same_bytes_as_deflate_off() {
    // A request without Sec-WebSocket-Extensions, as tungstenite sends it.
    let request = "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    let msgs: Vec<(OpCode, Vec<u8>)> = vec![
        (OpCode::Text, compressible(100_000).into_bytes()),
        (OpCode::Binary, vec![0; 50_000]),
        (OpCode::Text, Vec::new()),
        (OpCode::Binary, binary(5000, 9)),
    ];
    let send = |conn: &mut Conn<Script>| {
        for (op, m) in &msgs {
            conn.write_message(*op, m).unwrap();
        }
        conn.stream_message(OpCode::Text, 1000, &mut Cursor::new(compressible(5000))).unwrap();
        conn.ping(b"p").unwrap();
        conn.close_with_code(CloseCode(4000), "done").unwrap_err();
    };
    let opts = AcceptOptions { deflate: Some(DeflateOptions::default()), ..AcceptOptions::default() };
    let (mut declined, accepted) =
        lowbit_websockets::accept(Script::new(request.as_bytes(), Feed::Whole), &opts).unwrap();
    assert_eq!(accepted.extensions, None);
    let head_len = declined.get_ref().written.len();
    let head = String::from_utf8(declined.get_ref().written.clone()).unwrap();
    assert!(head.starts_with("HTTP/1.1 101") && !head.to_ascii_lowercase().contains("sec-websocket-extensions"));
    send(&mut declined);
    let mut plain = Conn::new(Script::new([], Feed::Whole), 0, 0);
    send(&mut plain);
    let declined_bytes = &declined.get_ref().written[head_len..];
    assert!(
        declined_bytes == &plain.get_ref().written[..],
        "deflate declined must write exactly what deflate off writes"
    );
    let fs = frames(declined_bytes);
    assert!(fs.len() > msgs.len());
    assert!(fs.iter().all(|(b0, _)| b0 & 0x70 == 0), "no RSV bit on any frame");
    // The client role masks with random keys: compare the unmasked frames instead.
    let copts = ConnectOptions {
        request: ClientOptions::new("x"),
        deflate: Some(DeflateOptions::default()),
        ..ConnectOptions::default()
    };
    // Answers the client's request (whatever its fresh key) as a server without deflate.
    let stream = Answering::new("");
    let (mut declined, connected) = lowbit_websockets::connect(stream, &copts).unwrap();
    assert!(declined.get_ref().request.contains("permessage-deflate"), "the client offered deflate");
    assert_eq!(connected.extensions, None);
    for (op, m) in &msgs {
        declined.write_message(*op, m).unwrap();
    }
    let mut plain = Conn::new_client(Script::new([], Feed::Whole), 0, 0);
    for (op, m) in &msgs {
        plain.write_message(*op, m).unwrap();
    }
    let (a, b) = (frames(&declined.get_ref().written), frames(&plain.get_ref().written));
    assert_eq!(a.len(), b.len());
    assert!(a == b, "client frames (unmasked) must match deflate off");
    assert!(a.iter().all(|(b0, _)| b0 & 0x70 == 0));
}
