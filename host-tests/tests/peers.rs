//! The component against peers we did not write, over real loopback TCP: tungstenite and
//! Python `websockets` in both roles (with and without permessage-deflate where the peer
//! has it), and the native core in both roles.

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use host_tests::*;
use lowbit_websockets::{ConnectOptions as CoreConnect, DeflateOptions as CoreDeflate, OpCode};
use lowbit_ws_host::{ConnectOptions, Limits, Opcode, accept_options, default_deflate};
use tungstenite::Message as T;

const LIMITS: Limits = Limits { max_read_limit: 16 << 20, max_chunk_size: 64 << 10 };

/// The messages every round trip sends: small and large, text and binary, compressible
/// and not.
fn payloads() -> Vec<(bool, Vec<u8>)> {
    let mut noise = vec![0u8; 256 << 10];
    let mut x = 0x1234_5678u32;
    for b in &mut noise {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    vec![
        (true, b"hello".to_vec()),
        (true, "ünïcødé ✓".repeat(200).into_bytes()),
        (false, vec![]),
        (false, vec![7u8; 1024]),
        (false, noise),
        (false, b"lowbit ".repeat(150_000)),
    ]
}

/// Drives a component *client* through `payloads` against a server at `addr`.
fn component_client_round_trip(addr: std::net::SocketAddr, deflate: bool) -> Option<String> {
    let mut session = host().session().expect("session");
    let options = ConnectOptions {
        limits: LIMITS,
        host: addr.to_string(),
        path: "/".into(),
        protocols: vec![],
        deflate: deflate.then(default_deflate),
    };
    let (conn, connected) =
        session.connect(TcpStream::connect(addr).expect("connect"), &options).expect("no trap").expect("handshake");
    for (text, p) in payloads() {
        let op = if text { Opcode::Text } else { Opcode::Binary };
        session.write_message(conn, op, &p).expect("no trap").expect("write");
        let m = session.read_message(conn).expect("no trap").expect("read");
        assert_eq!((m.op, m.payload.len()), (op, p.len()));
        assert!(m.payload == p, "echo differs");
    }
    session.close_with_code(conn, 1000, "done").expect("no trap").expect("close handshake");
    session.drop_connection(conn).expect("drop");
    connected.extensions
}

#[test]
fn tungstenite_client_against_component_server() {
    let (addr, server) = component_server(accept_options(LIMITS, false));
    let (mut ws, _) =
        tungstenite::client(format!("ws://{addr}/"), TcpStream::connect(addr).unwrap()).expect("handshake");
    for (text, p) in payloads() {
        let msg = if text { T::text(String::from_utf8(p.clone()).unwrap()) } else { T::binary(p.clone()) };
        ws.send(msg).unwrap();
        let back = ws.read().unwrap();
        assert_eq!(back.into_data().as_ref(), &p[..]);
    }
    ws.send(T::Ping(b"x".to_vec().into())).unwrap();
    assert!(matches!(ws.read().unwrap(), T::Pong(p) if p.as_ref() == b"x"));
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    let outcome = server.join().unwrap().expect("no trap");
    assert_eq!(outcome.result.expect("clean close"), payloads().len() as u64);
}

#[test]
fn component_client_against_tungstenite_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(tcp).unwrap();
        loop {
            match ws.read() {
                Ok(m @ (T::Text(_) | T::Binary(_))) => ws.send(m).unwrap(),
                Ok(T::Close(_)) | Err(_) => break,
                Ok(_) => {}
            }
        }
        let _ = ws.flush();
    });
    assert_eq!(component_client_round_trip(addr, true), None, "tungstenite has no deflate");
    server.join().unwrap();
}

#[test]
fn native_client_against_component_server_with_deflate() {
    let (addr, server) = component_server(accept_options(LIMITS, true));
    let opts = CoreConnect {
        config: lowbit_websockets::Config::new(lowbit_websockets::Role::Client).max_read_limit(16 << 20),
        request: lowbit_websockets::handshake::ClientOptions::new(addr.to_string()),
        deflate: Some(CoreDeflate::default()),
    };
    let (mut conn, connected) = lowbit_websockets::connect(TcpStream::connect(addr).unwrap(), &opts).unwrap();
    assert!(connected.extensions.is_some_and(|e| e.contains("permessage-deflate")));
    let mut buf = Vec::new();
    for (text, p) in payloads() {
        let op = if text { OpCode::Text } else { OpCode::Binary };
        conn.write_message(op, &p).unwrap();
        let (got_op, got) = conn.read_message(&mut buf).unwrap();
        assert_eq!(got_op, op);
        assert!(got == &p[..]);
    }
    conn.close().unwrap();
    assert_eq!(server.join().unwrap().expect("no trap").result.expect("clean"), payloads().len() as u64);
}

#[test]
fn component_client_against_native_server_with_deflate() {
    let addr = native_server(true, LIMITS);
    let ext = component_client_round_trip(addr, true);
    assert!(ext.is_some_and(|e| e.contains("permessage-deflate")));
}

fn python_or_skip() -> Option<std::path::PathBuf> {
    let py = python();
    if py.is_none() {
        host_tests::skip("python3 with `websockets` unavailable");
    }
    py
}

const PY_CLIENT: &str = r#"
import sys, random
from websockets.sync.client import connect
url, comp = sys.argv[1], (None if sys.argv[2] == "off" else "deflate")
random.seed(7)
with connect(url, compression=comp, max_size=None) as ws:
    ext = ws.response.headers.get("Sec-WebSocket-Extensions")
    assert (ext is not None) == (comp is not None), ext
    for n in [0, 1, 125, 126, 4096, 65535, 65536, 1 << 20]:
        msg = bytes(random.getrandbits(8) for _ in range(min(n, 4096))) * max(1, n // 4096)
        msg = msg[:n]
        ws.send(msg); assert ws.recv() == msg
        txt = ("héllo wörld " * (n // 12 + 1))[:n]
        ws.send(txt); assert ws.recv() == txt
print("ok")
"#;

fn python_client(deflate: bool) {
    let Some(py) = python_or_skip() else { return };
    let (addr, server) = component_server(accept_options(LIMITS, deflate));
    let out = Command::new(py)
        .args(["-c", PY_CLIENT, &format!("ws://{addr}/"), if deflate { "on" } else { "off" }])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(server.join().unwrap().expect("no trap").result.expect("clean close"), 16);
}

#[test]
fn python_client_against_component_server_with_deflate() {
    python_client(true);
}

#[test]
fn python_client_against_component_server_without_deflate() {
    python_client(false);
}

const PY_SERVER: &str = r#"
import sys
from websockets.sync.server import serve
comp = None if sys.argv[1] == "off" else "deflate"
def echo(ws):
    for m in ws:
        ws.send(m)
with serve(echo, "127.0.0.1", 0, compression=comp, max_size=None) as server:
    print(server.socket.getsockname()[1], flush=True)
    server.serve_forever()
"#;

fn python_server(deflate: bool) {
    let Some(py) = python_or_skip() else { return };
    let mut child = Command::new(py)
        .args(["-c", PY_SERVER, if deflate { "on" } else { "off" }])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", line.trim()).parse().unwrap();
    let ext = component_client_round_trip(addr, true);
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(ext.is_some(), deflate, "{ext:?}");
}

#[test]
fn component_client_against_python_server_with_deflate() {
    python_server(true);
}

#[test]
fn component_client_against_python_server_without_deflate() {
    python_server(false);
}

#[test]
fn garbage_and_bad_handshakes_never_trap() {
    for bytes in
        [&b"\r\n\r\n"[..], b"GET / HTTP/1.0\r\n\r\n", b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", &[0xffu8; 20000][..], b""]
    {
        let (addr, server) = component_server(accept_options(LIMITS, true));
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = tcp.write_all(bytes);
        let _ = tcp.shutdown(std::net::Shutdown::Write);
        let mut sink = Vec::new();
        let _ = std::io::Read::read_to_end(&mut tcp, &mut sink);
        let outcome = server.join().unwrap().expect("a trap is a failure");
        assert!(outcome.result.is_err(), "{bytes:?} was accepted");
    }
}
