//! Smoke: our server and client against tungstenite over loopback TCP.

use std::net::{TcpListener, TcpStream};
use std::thread;

use lowbit_websockets::{AcceptOptions, ConnectOptions, OpCode};
use tungstenite::Message;

#[test]
fn tungstenite_client_echo_through_our_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let (mut conn, _) = lowbit_websockets::accept(stream, &AcceptOptions::default()).unwrap();
        let mut buf = Vec::new();
        loop {
            let (op, payload) = conn.read_message(&mut buf).unwrap();
            if op == OpCode::Close {
                return;
            }
            conn.write_message(op, payload).unwrap();
        }
    });
    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/")).unwrap();
    for size in [0usize, 1, 125, 126, 65535, 65536, 500_000] {
        let text: String = "é".repeat(size / 2);
        ws.send(Message::text(text.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text(text));
        let bin = vec![7u8; size];
        ws.send(Message::binary(bin.clone())).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(bin));
    }
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    server.join().unwrap();
}

#[test]
fn our_client_against_tungstenite_server() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut ws = tungstenite::accept(stream).unwrap();
        loop {
            match ws.read() {
                Ok(m @ (Message::Text(_) | Message::Binary(_))) => ws.send(m).unwrap(),
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    let stream = TcpStream::connect(addr).unwrap();
    let opts = ConnectOptions { host: addr.to_string(), ..ConnectOptions::default() };
    let (mut conn, _) = lowbit_websockets::connect(stream, &opts).unwrap();
    let mut buf = Vec::new();
    for size in [0usize, 1, 125, 126, 65535, 65536, 500_000] {
        let bin = vec![9u8; size];
        conn.write_message(OpCode::Binary, &bin).unwrap();
        let (op, payload) = conn.read_message(&mut buf).unwrap();
        assert_eq!((op, payload), (OpCode::Binary, &bin[..]));
    }
    conn.close().unwrap();
    server.join().unwrap();
}
