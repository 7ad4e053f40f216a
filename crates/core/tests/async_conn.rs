//! The async face: cancel safety, split halves, and framing interop with tokio-tungstenite and
//! fastwebsockets over loopback TCP (each role against each peer).
#![cfg(feature = "tokio")]

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use lowbit_websockets::{AsyncConn, CloseCode, Config, Error, OpCode, Role};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::Role as TungRole;

mod common;
use common::Rng;

/// A connected loopback pair: (the accepting side, the connecting side).
async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, server) = tokio::join!(TcpStream::connect(addr), listener.accept());
    let (client, server) = (client.unwrap(), server.unwrap().0);
    client.set_nodelay(true).unwrap();
    server.set_nodelay(true).unwrap();
    (server, client)
}

/// The messages the interop tests send: empty, small, text with multi-byte characters,
/// lengths around the 7/16/64-bit header boundaries, and one larger than a read buffer.
fn messages() -> Vec<(OpCode, Vec<u8>)> {
    let mut rng = Rng(7);
    let mut out = vec![(OpCode::Text, Vec::new()), (OpCode::Text, "héllo wörld ✓".as_bytes().to_vec())];
    for len in [1, 125, 126, 65535, 65536, 300_000] {
        out.push((OpCode::Binary, (0..len).map(|_| rng.next() as u8).collect()));
    }
    out
}

#[tokio::test(flavor = "current_thread")]
async fn read_message_loses_nothing_when_cancelled_mid_frame_and_mid_message() {
    let (server, mut client) = tcp_pair().await;
    let mut conn = AsyncConn::new(server, 0, 0);
    // The client's frames, fragmented (so messages span frames), written in tiny random
    // pieces so that reads keep ending mid-header, mid-payload and mid-message.
    let mut encoder = lowbit_websockets::Encoder::new(Role::Client);
    let mut wire = Vec::new();
    let mut want = Vec::new();
    let mut rng = Rng(1);
    for i in 0..300u32 {
        let payload: Vec<u8> = (0..(i * 37 % 3000)).map(|_| rng.next() as u8).collect();
        encoder.encode_fragments(true, 0, OpCode::Binary, &payload, 700, &mut wire).unwrap();
        if i % 50 == 0 {
            encoder.encode_frame(true, 0, OpCode::Ping, b"mid-stream", &mut wire).unwrap();
        }
        want.push(payload);
    }
    encoder.encode_close(CloseCode::NORMAL_CLOSURE, "done", &mut wire).unwrap();
    let writer = tokio::spawn(async move {
        let mut rng = Rng(2);
        let mut rest = &wire[..];
        while !rest.is_empty() {
            let n = (rng.next() as usize % 61 + 1).min(rest.len());
            client.write_all(&rest[..n]).await.unwrap();
            rest = &rest[n..];
            tokio::task::yield_now().await;
        }
        client
    });

    let mut buf = Vec::new();
    let (mut got, mut cancelled) = (Vec::new(), 0u32);
    loop {
        tokio::select! {
            biased;
            read = conn.read_message(&mut buf) => {
                let (op, payload) = read.unwrap();
                if op == OpCode::Close {
                    assert_eq!(&payload[2..], b"done");
                    break;
                }
                got.push(payload.to_vec());
            }
            // Ready at once on every other poll: the read is dropped whenever it waits.
            () = tokio::task::yield_now() => cancelled += 1,
        }
    }
    assert!(cancelled > 1000, "only {cancelled} cancellations");
    assert_eq!(got.len(), want.len());
    assert!(got == want, "a message was lost or changed");
    drop(writer.await.unwrap());
}

#[tokio::test]
async fn split_halves_answer_pings_through_the_shared_writer() {
    let (server, client) = tcp_pair().await;
    let (mut reader, writer) = AsyncConn::new(server, 0, 0).split();
    let mut peer = WebSocketStream::from_raw_socket(client, TungRole::Client, None).await;
    let echo = tokio::spawn(async move {
        let mut buf = Vec::new();
        let mut n = 0;
        loop {
            match reader.read_message(&mut buf).await {
                Ok((OpCode::Close, _)) => return n,
                Ok((op, payload)) => {
                    reader.writer().write_message(op, payload).await.unwrap();
                    n += 1;
                }
                Err(e) => panic!("{e}"),
            }
        }
    });
    let pinger = tokio::spawn({
        let writer = writer.clone();
        async move { writer.keep_alive(Duration::from_millis(5)).await }
    });
    let mut pongs = 0;
    let mut pings = 0;
    for i in 0..50u32 {
        peer.send(Message::Ping(i.to_be_bytes().to_vec().into())).await.unwrap();
        peer.send(Message::Binary(vec![i as u8; 1000].into())).await.unwrap();
        loop {
            match peer.next().await.unwrap().unwrap() {
                Message::Pong(p) => {
                    assert_eq!(&p[..], &i.to_be_bytes());
                    pongs += 1;
                }
                Message::Ping(_) => pings += 1,
                Message::Binary(b) => {
                    assert_eq!(&b[..], &[i as u8; 1000][..]);
                    break;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(pongs, 50);
    assert!(pings > 0, "keep_alive sent no ping");
    drop(writer); // the socket closes when the last half is gone
    peer.close(None).await.unwrap();
    while let Some(Ok(_)) = peer.next().await {}
    assert_eq!(echo.await.unwrap(), 50);
    // After the close handshake the keep-alive ends on its own.
    let ended = tokio::time::timeout(Duration::from_secs(5), pinger).await.unwrap().unwrap();
    assert!(matches!(ended, Err(Error::WebSocketClosed)), "{ended:?}");
}

/// Our side sends every message, reads each echo back, then closes.
async fn ours_echoes_through(conn: &mut AsyncConn<TcpStream>) {
    let mut buf = Vec::new();
    for (op, payload) in messages() {
        conn.write_message(op, &payload).await.unwrap();
        let (got_op, got) = conn.read_message(&mut buf).await.unwrap();
        assert_eq!((got_op, got.len()), (op, payload.len()));
        assert!(got == payload);
    }
    conn.close_with_code(CloseCode(4001), "bye").await.unwrap();
}

#[tokio::test]
async fn interop_with_tokio_tungstenite_in_both_roles() {
    for our_role in [Role::Server, Role::Client] {
        let (a, b) = tcp_pair().await;
        let their_role = if our_role == Role::Server { TungRole::Client } else { TungRole::Server };
        let peer = tokio::spawn(async move {
            let mut ws = WebSocketStream::from_raw_socket(b, their_role, None).await;
            let mut closed = None;
            // Read on after the close: tungstenite sends its answer while it is polled.
            while let Some(Ok(msg)) = ws.next().await {
                match msg {
                    m @ (Message::Text(_) | Message::Binary(_)) => ws.send(m).await.unwrap(),
                    Message::Close(frame) => closed = frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                    _ => {}
                }
            }
            closed
        });
        let mut conn = AsyncConn::with_config(a, Config::new(our_role));
        ours_echoes_through(&mut conn).await;
        drop(conn); // a tungstenite client waits for the server to close the connection
        assert_eq!(peer.await.unwrap(), Some((4001, "bye".to_owned())), "{our_role:?}");
    }
}

#[tokio::test]
async fn interop_with_fastwebsockets_in_both_roles() {
    use fastwebsockets::{FragmentCollector, Frame as FwsFrame, OpCode as FwsOp, Role as FwsRole, WebSocket};
    for our_role in [Role::Server, Role::Client] {
        let (a, b) = tcp_pair().await;
        let their_role = if our_role == Role::Server { FwsRole::Client } else { FwsRole::Server };
        let peer = tokio::spawn(async move {
            let mut ws = FragmentCollector::new(WebSocket::after_handshake(b, their_role));
            loop {
                let frame = ws.read_frame().await.unwrap();
                match frame.opcode {
                    FwsOp::Text | FwsOp::Binary => {
                        let echo = FwsFrame::new(true, frame.opcode, None, frame.payload.to_vec().into());
                        ws.write_frame(echo).await.unwrap();
                    }
                    FwsOp::Close => return frame.payload.to_vec(),
                    _ => {}
                }
            }
        });
        let mut conn = AsyncConn::with_config(a, Config::new(our_role));
        ours_echoes_through(&mut conn).await;
        assert_eq!(peer.await.unwrap(), b"\x0f\xa1bye", "{our_role:?}");
    }
}

/// An echo server on the current runtime: accept_async, then echo until the close or an error.
async fn spawn_echo_server() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let opts = lowbit_websockets::AcceptOptions::default();
                let Ok((mut conn, _)) = lowbit_websockets::accept_async(stream, &opts).await else { return };
                let mut buf = Vec::new();
                while let Ok((op, payload)) = conn.read_message(&mut buf).await {
                    if op == OpCode::Close || conn.write_message(op, payload).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

/// A client of the echo server at `addr`.
async fn client(addr: std::net::SocketAddr) -> AsyncConn<TcpStream> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let opts = lowbit_websockets::ConnectOptions {
        request: lowbit_websockets::handshake::ClientOptions::new(addr.to_string()),
        ..Default::default()
    };
    lowbit_websockets::connect_async(stream, &opts).await.unwrap().0
}

/// Everything on one thread: misbehaving peers (a reader that never reads while it is sent
/// megabytes, a stall mid-frame, garbage, a hang-up mid-frame, a flood of empty fragments)
/// must not keep a well-behaved client on the same thread from its echoes.
#[tokio::test(flavor = "current_thread")]
async fn bad_peers_never_stall_the_others_on_the_same_thread() {
    let addr = spawn_echo_server().await;
    let mut encoder = lowbit_websockets::Encoder::new(Role::Client);

    // A slow reader: sends 64 MiB of echoes it never reads (more than the socket buffers of both
    // directions hold), so the server's writes block.
    let mut slow = client(addr).await;
    let slow_sender = tokio::spawn(async move {
        let big = vec![7u8; 1 << 20];
        for _ in 0..64 {
            if slow.write_message(OpCode::Binary, &big).await.is_err() {
                break;
            }
        }
        slow // kept open, never read
    });
    // A stall mid-frame: a header announcing 1000 bytes, then 10 of them, then nothing.
    let mut stalled = client(addr).await.into_inner();
    let mut half = Vec::new();
    encoder.encode_frame(true, 0, OpCode::Binary, &[1; 1000], &mut half).unwrap();
    stalled.write_all(&half[..20]).await.unwrap();
    // Garbage after the upgrade, and a hang-up mid-frame.
    let mut garbage = client(addr).await.into_inner();
    garbage.write_all(&[0xff; 4096]).await.unwrap();
    let mut vanishing = client(addr).await.into_inner();
    vanishing.write_all(&half[..500]).await.unwrap();
    drop(vanishing);
    // A flood of empty continuation frames after a first fragment, sent as fast as it goes.
    let mut flood = client(addr).await.into_inner();
    let flooder = tokio::spawn(async move {
        let mut encoder = lowbit_websockets::Encoder::new(Role::Client);
        let mut wire = Vec::new();
        encoder.encode_frame(false, 0, OpCode::Binary, b"x", &mut wire).unwrap();
        flood.write_all(&wire).await.unwrap();
        wire.clear();
        for _ in 0..4096 {
            encoder.encode_frame(false, 0, OpCode::Continuation, b"", &mut wire).unwrap();
        }
        for _ in 0..200 {
            if flood.write_all(&wire).await.is_err() {
                break;
            }
        }
        flood
    });

    // Meanwhile a good client gets every echo. The timeout only turns a stall into a failure
    // instead of a hang; it is far above what the echoes take.
    let mut good = client(addr).await;
    let echoes = async {
        let mut buf = Vec::new();
        for i in 0..500u32 {
            let msg = i.to_be_bytes().repeat(64);
            good.write_message(OpCode::Binary, &msg).await.unwrap();
            let (_, got) = good.read_message(&mut buf).await.unwrap();
            assert_eq!(got, &msg[..]);
        }
    };
    tokio::time::timeout(Duration::from_secs(60), echoes).await.expect("the good client was stalled");
    drop((stalled, garbage));
    drop(flooder.await.unwrap());
    // The slow reader's own writes are blocked for good (the server's echoes fill the socket
    // it never reads): that it is still stuck is the point.
    assert!(!slow_sender.is_finished());
    slow_sender.abort();
}
