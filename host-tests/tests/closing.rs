//! How `lowbit_ws_host::serve_echo` (what `lowbit-ws-host serve` runs per connection) ends a
//! connection: the close frame it sends must reach a client that is still sending, as it
//! does from a browser that is halfway through a message the component refused.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use host_tests::*;
use lowbit_ws_host::{Limits, accept_options, serve_echo};

/// A client writes a frame far larger than the limit; the component refuses it from its
/// header (1009) while most of it is still on the way. Without a graceful close the host's
/// socket is closed with unread input, the kernel resets the connection, and the client's
/// write fails before it reads the close frame: a browser then reports 1006.
#[test]
fn refused_message_close_frame_reaches_a_client_still_sending() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let limits = Limits { max_read_limit: 1 << 20, max_chunk_size: 64 << 10 };
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        serve_echo(host(), tcp, &accept_options(limits, false), Duration::from_secs(10)).expect("no trap")
    });

    let mut tcp = TcpStream::connect(addr).expect("connect");
    let (head, mut got) = raw_client_handshake(&mut tcp, false).expect("handshake");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");

    // A masked binary frame of 32 MiB (mask key 0, so the payload is zeros on the wire too),
    // far more than the kernel buffers between the two ends.
    let len: u64 = 32 << 20;
    let mut header = vec![0x82, 0x80 | 127];
    header.extend_from_slice(&len.to_be_bytes());
    header.extend_from_slice(&[0; 4]);
    tcp.write_all(&header).expect("header");
    let chunk = vec![0u8; 1 << 20];
    for i in 0..len / chunk.len() as u64 {
        if let Err(e) = tcp.write_all(&chunk) {
            panic!("the server reset the connection after {i} MiB of the refused frame: {e}");
        }
    }

    tcp.read_to_end(&mut got).expect("the server's close frame, then its FIN");
    let frames = parse_server_frames(&got);
    assert_eq!(close_code_of(&frames), Some(1009), "frames: {frames:?}");
    drop(tcp); // hanging up ends the server's wait for us
    let result = server.join().expect("server thread");
    assert!(matches!(result, Err(lowbit_ws_host::Error::MessageTooBig(_))), "{result:?}");
}

/// A client that sends half an upgrade request and stalls is dropped after the handshake
/// timeout: the handshake fails on the read (no status is sent) and the server hangs up, instead of holding
/// the connection's thread forever.
#[test]
fn stalled_upgrade_request_is_dropped_after_the_handshake_timeout() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = std::thread::spawn(move || {
        let (tcp, _) = listener.accept().expect("accept");
        serve_echo(host(), tcp, &accept_options(Limits::default(), false), Duration::from_millis(300)).expect("no trap")
    });
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n").expect("half a request");
    // The server hangs up: end of stream, nothing written.
    let mut got = Vec::new();
    tcp.read_to_end(&mut got).expect("the server's FIN");
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    let result = server.join().expect("server thread");
    assert!(
        matches!(&result, Err(lowbit_ws_host::Error::Handshake(h)) if h.status.is_none() && h.message.contains("i/o")),
        "{result:?}"
    );
}
