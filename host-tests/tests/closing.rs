//! How `lowbit_ws_host::serve::serve_connection` (what `lowbit-ws-host serve` runs per
//! connection) ends a connection: the close frame it sends must reach a client that is still
//! sending, as it does from a browser that is halfway through a message the component
//! refused; a client that does not finish its upgrade request in time is dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use host_tests::*;
use lowbit_ws_host::serve::ServeOptions;
use lowbit_ws_host::{Limits, accept_options};

/// A client writes a frame far larger than the limit; the component refuses it from its
/// header (1009) while most of it is still on the way. Without a graceful close the host's
/// socket is closed with unread input, the kernel resets the connection, and the client's
/// write fails before it reads the close frame: a browser then reports 1006.
#[test]
fn refused_message_close_frame_reaches_a_client_still_sending() {
    let limits = Limits { max_read_limit: 1 << 20, max_chunk_size: 64 << 10 };
    let (addr, server) = serve_one(ServeOptions::new(accept_options(limits, false)));

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
    let result = server.join().expect("server thread").expect("no trap");
    assert!(matches!(result, Err(lowbit_ws_host::Error::MessageTooBig(_))), "{result:?}");
}

/// A client that trickles its upgrade request, a byte at a time, is dropped at the handshake
/// deadline, which counts from the accept and not per read: it fails the handshake with
/// no status sent and the server hangs up, instead of holding the connection for as long as
/// the client keeps sending. The trickle is bounded: it stops when the server hangs up, and
/// the whole request (which would complete the handshake) is never sent.
#[test]
fn trickled_upgrade_request_is_dropped_at_the_handshake_deadline() {
    let options = ServeOptions {
        handshake_timeout: Duration::from_millis(300),
        ..ServeOptions::new(accept_options(Limits::default(), false))
    };
    host(); // compiled before the clock starts
    let (addr, server) = serve_one(options);
    let mut tcp = TcpStream::connect(addr).expect("connect");
    // A request head that never ends (one long header, far below the 16 KiB head limit),
    // each byte well within the deadline of the one before.
    let mut request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nX-Pad: ".to_vec();
    request.resize(2000, b'a');
    let mut sent = 0;
    for byte in &request {
        if tcp.write_all(&[*byte]).is_err() {
            break;
        }
        sent += 1;
        std::thread::sleep(Duration::from_millis(20));
        if server.is_finished() {
            break;
        }
    }
    assert!(sent < request.len(), "the server was still waiting after the whole trickle");
    // The server hangs up: end of stream, nothing written.
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    let result = server.join().expect("server thread").expect("no trap");
    assert!(
        matches!(&result, Err(lowbit_ws_host::Error::Handshake(h)) if h.status.is_none() && h.message.contains("did not arrive")),
        "{result:?}"
    );
}

/// A client that stops reading while the server has output pending is dropped once its
/// writes make no progress for the stall timeout: the guest's write fails with a timed-out
/// I/O error and the connection ends. (The default in `serve` is 30 s; 0 s would be off.)
#[test]
fn a_peer_that_stops_reading_is_dropped_after_the_stall_timeout() {
    let options = ServeOptions {
        stall_timeout: Some(Duration::from_millis(500)),
        ..ServeOptions::new(accept_options(Limits { max_read_limit: 16 << 20, max_chunk_size: 64 << 10 }, false))
    };
    let (addr, server) = serve_one(options);
    let mut tcp = TcpStream::connect(addr).expect("connect");
    let (head, _) = raw_client_handshake(&mut tcp, false).expect("handshake");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // Binary messages of 1 MiB (mask key 0), their echoes never read: the socket buffers
    // fill, the server's writes stop making progress, and it hangs up.
    let len: u64 = 1 << 20;
    let mut message = vec![0x82, 0x80 | 127];
    message.extend_from_slice(&len.to_be_bytes());
    message.extend_from_slice(&[0; 4]);
    message.resize(message.len() + len as usize, 0);
    for _ in 0..64 {
        if tcp.write_all(&message).is_err() {
            break;
        }
    }
    let result = server.join().expect("server thread").expect("no trap");
    assert!(matches!(&result, Err(lowbit_ws_host::Error::Io(why)) if why.contains("timed out")), "{result:?}");
}
