//! The shared handshake list (`conformance/handshakes.rs`) against the native server and the
//! component through the host, both over loopback TCP with permessage-deflate on: every
//! request must get the listed status and headers from both.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use host_tests::*;
use lowbit_ws_host::{Limits, accept_options};

#[allow(dead_code)]
mod handshakes {
    include!("../conformance/handshakes.rs");
}
use handshakes::{HandshakeCase, check_response, handshake_cases};

/// Sends the case's request and returns the response head (up to the blank line, or all the
/// server sent before it closed).
fn answer(addr: SocketAddr, case: &HandshakeCase) -> String {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    // The server may answer and close before reading a long request: a write error is fine.
    let _ = tcp.write_all(&case.request);
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        match tcp.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    text.split("\r\n\r\n").next().unwrap_or_default().to_owned()
}

#[test]
fn native_and_component_answer_every_upgrade_request_alike() {
    let limits = Limits { max_read_limit: 0, max_chunk_size: 0 };
    let native = native_server(true, limits);
    let mut failures = Vec::new();
    for case in handshake_cases() {
        let (component, server) = component_server(accept_options(limits, true));
        for (face, addr) in [("native", native), ("component", component)] {
            let head = answer(addr, &case);
            if let Err(e) = check_response(&case, &head) {
                failures.push(format!("{face} {}: {e}\n{head}", case.name));
            }
        }
        // A refused handshake is an error for the guest, never a trap.
        let _ = server.join().expect("server thread").unwrap_or_else(|trap| panic!("{}: {trap}", case.name));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The component's subprotocol default comes from core's named policy: none unless the host
/// lists the subprotocols it speaks (then the client's first offer among them).
#[test]
fn component_speaks_no_subprotocol_unless_configured() {
    let offer = "Sec-WebSocket-Protocol: v2, chat\r\n";
    let limits = Limits { max_read_limit: 0, max_chunk_size: 0 };
    for (protocols, want) in [(vec![], None), (vec!["x".to_owned(), "chat".to_owned()], Some("chat"))] {
        let options = lowbit_ws_host::AcceptOptions { protocols, ..accept_options(limits, false) };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (tcp, _) = listener.accept().expect("accept");
            let mut session = host().session().expect("session");
            let (conn, accepted) = session.accept(tcp, &options).expect("no trap").expect("handshake");
            session.drop_connection(conn).expect("drop");
            accepted.protocol
        });
        let request = format!(
            "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n"
        );
        let head = answer(
            addr,
            &handshakes::HandshakeCase {
                name: "subprotocol",
                request: request.into_bytes(),
                status: &[101],
                has: None,
                lacks: None,
            },
        );
        assert_eq!(server.join().expect("server thread").as_deref(), want);
        let chosen = head.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Protocol: "));
        assert_eq!(chosen, want, "{head}");
    }
}
