//! The hyper helper and the axum extractor, on a real hyper 1 server and a real axum router,
//! over loopback TCP: driven by our `connect_async` (with and without permessage-deflate), by
//! tokio-tungstenite and by a hyper client; bad requests get core's status, headers and reason
//! through both.
#![cfg(all(feature = "hyper", feature = "axum"))]

use std::convert::Infallible;

use axum::Router;
use axum::routing::any;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use lowbit_websockets::axum::WebSocketUpgrade;
use lowbit_websockets::handshake::{Accepted, ClientOptions, Connected, HandshakeError, accept_key};
use lowbit_websockets::hyper::{HyperStream, upgrade};
use lowbit_websockets::upgrade::ClientUpgrade;
use lowbit_websockets::{
    AcceptOptions, AsyncConn, Config, ConnectOptions, DeflateOptions, Error, OpCode, Role, SubprotocolPolicy,
    connect_async,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

/// The two helpers under test.
#[derive(Debug, Clone, Copy)]
enum Face {
    Hyper,
    Axum,
}

const FACES: [Face; 2] = [Face::Hyper, Face::Axum];

/// Echoes until the peer closes.
async fn echo(mut conn: AsyncConn<HyperStream>) -> lowbit_websockets::Result<()> {
    let mut buf = Vec::new();
    loop {
        let (op, payload) = conn.read_message(&mut buf).await?;
        if op == OpCode::Close {
            return Ok(());
        }
        conn.write_message(op, payload).await?;
    }
}

/// A server of `face` accepting with `opts` and echoing, on its own port; what each upgrade
/// agreed on comes out of the receiver.
async fn server(face: Face, opts: AcceptOptions) -> (String, mpsc::UnboundedReceiver<Accepted>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = mpsc::unbounded_channel();
    match face {
        Face::Hyper => {
            tokio::spawn(async move {
                loop {
                    let (stream, _) = listener.accept().await.unwrap();
                    let (tx, opts) = (tx.clone(), opts.clone());
                    let service = service_fn(move |mut req: Request<Incoming>| {
                        let (tx, opts) = (tx.clone(), opts.clone());
                        async move {
                            Ok::<_, Infallible>(match upgrade(&mut req, &opts) {
                                Ok((response, upgrading)) => {
                                    tokio::spawn(async move {
                                        let (conn, accepted) = upgrading.await.unwrap();
                                        tx.send(accepted).unwrap();
                                        echo(conn).await
                                    });
                                    response
                                }
                                Err(refused) => refused.into_response(),
                            })
                        }
                    });
                    tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades());
                }
            });
        }
        Face::Axum => {
            let handler = move |ws: WebSocketUpgrade| {
                let (tx, opts) = (tx.clone(), opts.clone());
                async move {
                    ws.options(opts).on_upgrade(move |conn, accepted| async move {
                        tx.send(accepted).unwrap();
                        echo(conn).await
                    })
                }
            };
            // `any`, so that core answers every method; with `get`, axum's router answers the
            // others with its own 405 before the extractor runs.
            tokio::spawn(async move { axum::serve(listener, Router::new().route("/ws", any(handler))).await });
        }
    }
    (addr, rx)
}

fn deflate_opts() -> AcceptOptions {
    AcceptOptions { deflate: Some(DeflateOptions::default()), ..AcceptOptions::default() }
}

/// A compressible message larger than a frame and a read buffer.
fn big() -> Vec<u8> {
    (0..100_000u32).flat_map(|i| format!("{} ", i % 977).into_bytes()).take(100_000).collect()
}

/// Text, a large binary message and a ping through the echo, then the close handshake.
async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(mut conn: AsyncConn<S>) {
    let mut buf = Vec::new();
    for (op, payload) in [(OpCode::Text, b"hello".to_vec()), (OpCode::Binary, big())] {
        conn.write_message(op, &payload).await.unwrap();
        conn.ping(b"p").await.unwrap();
        let (got, echoed) = conn.read_message(&mut buf).await.unwrap();
        assert_eq!((got, echoed.len()), (op, payload.len()));
        assert!(echoed == payload);
    }
    conn.close().await.unwrap();
}

async fn our_client(addr: &str, deflate: bool, protocols: &[&str]) -> (AsyncConn<TcpStream>, Connected) {
    let protocols = protocols.iter().map(|p| (*p).to_owned()).collect();
    let opts = ConnectOptions {
        request: ClientOptions { protocols, ..ClientOptions::new(addr).path("/ws") },
        deflate: deflate.then(DeflateOptions::default),
        ..ConnectOptions::default()
    };
    connect_async(TcpStream::connect(addr).await.unwrap(), &opts).await.unwrap()
}

#[tokio::test]
async fn our_client_with_and_without_deflate() {
    for face in FACES {
        let (addr, mut accepted) = server(face, deflate_opts()).await;
        for deflate in [true, false] {
            let (conn, connected) = our_client(&addr, deflate, &[]).await;
            let server_side = accepted.recv().await.unwrap();
            assert_eq!(connected.deflate.is_some(), deflate, "{face:?}");
            assert_eq!(server_side.deflate.is_some(), deflate, "{face:?}: the server runs what it answered");
            assert_eq!(server_side.path, "/ws");
            exchange(conn).await;
        }
        // A server that declines deflate: the offer is answered without it.
        let (addr, mut accepted) = server(face, AcceptOptions::default()).await;
        let (conn, connected) = our_client(&addr, true, &[]).await;
        assert!(connected.deflate.is_none() && accepted.recv().await.unwrap().deflate.is_none(), "{face:?}");
        exchange(conn).await;
    }
}

#[tokio::test]
async fn tokio_tungstenite_client() {
    for face in FACES {
        // tungstenite offers no deflate: the server's deflate option is simply not used.
        let (addr, mut accepted) = server(face, deflate_opts()).await;
        let stream = TcpStream::connect(&addr).await.unwrap();
        let (mut ws, response) = tokio_tungstenite::client_async(format!("ws://{addr}/ws"), stream).await.unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert!(accepted.recv().await.unwrap().deflate.is_none());
        for message in [Message::text("hello"), Message::binary(big())] {
            ws.send(message.clone()).await.unwrap();
            assert_eq!(ws.next().await.unwrap().unwrap(), message, "{face:?}");
        }
        ws.close(None).await.unwrap();
        while let Some(message) = ws.next().await {
            assert!(matches!(message.unwrap(), Message::Close(_)), "{face:?}");
        }
    }
}

#[tokio::test]
async fn subprotocol_policy_is_cores() {
    for face in FACES {
        let opts = AcceptOptions {
            protocols: SubprotocolPolicy::FirstSupported(vec!["chat".into()]),
            ..AcceptOptions::default()
        };
        let (addr, mut accepted) = server(face, opts).await;
        let (conn, connected) = our_client(&addr, false, &["v2", "chat"]).await;
        assert_eq!(connected.protocol.as_deref(), Some("chat"), "{face:?}");
        assert_eq!(accepted.recv().await.unwrap().protocol.as_deref(), Some("chat"));
        exchange(conn).await;
        let (conn, connected) = our_client(&addr, false, &["v2"]).await;
        assert_eq!(connected.protocol, None, "{face:?}: none agreed, none named");
        exchange(conn).await;
    }
}

/// A valid upgrade request, as a hyper client sends it.
fn request(addr: &str) -> Request<Full<Bytes>> {
    Request::get("/ws")
        .header("host", addr)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", KEY)
        .body(Full::default())
        .unwrap()
}

async fn hyper_client(addr: &str) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn.with_upgrades());
    sender
}

#[tokio::test]
async fn a_hyper_client_upgrades() {
    for face in FACES {
        let (addr, _accepted) = server(face, AcceptOptions::default()).await;
        let mut response = hyper_client(&addr).await.send_request(request(&addr)).await.unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS, "{face:?}");
        assert_eq!(response.headers()["sec-websocket-accept"], accept_key(KEY).as_str());
        assert_eq!(response.headers()["upgrade"], "websocket");
        let upgraded = hyper::upgrade::on(&mut response).await.unwrap();
        exchange(AsyncConn::new_client(TokioIo::new(upgraded), 0, 0)).await;
    }
}

/// Bad requests, each with the error core refuses it with; the response must be core's.
fn bad_requests(addr: &str) -> Vec<(Request<Full<Bytes>>, HandshakeError)> {
    let with = |edit: &dyn Fn(&mut Request<Full<Bytes>>)| {
        let mut req = request(addr);
        edit(&mut req);
        req
    };
    vec![
        (with(&|r| drop(r.headers_mut().remove("sec-websocket-key"))), HandshakeError::MissingKey),
        (
            with(&|r| drop(r.headers_mut().insert("sec-websocket-key", "c2hvcnQ=".parse().unwrap()))),
            HandshakeError::InvalidKey,
        ),
        (
            with(&|r| {
                r.headers_mut().append("sec-websocket-key", KEY.parse().unwrap());
            }),
            HandshakeError::DuplicateHeader("Sec-WebSocket-Key"),
        ),
        (
            with(&|r| drop(r.headers_mut().insert("sec-websocket-version", "8".parse().unwrap()))),
            HandshakeError::UnsupportedVersion,
        ),
        (with(&|r| drop(r.headers_mut().remove("upgrade"))), HandshakeError::MissingUpgrade),
        (with(&|r| *r.method_mut() = hyper::Method::POST), HandshakeError::MethodNotGet),
        (with(&|r| *r.version_mut() = Version::HTTP_10), HandshakeError::HttpVersion),
        (
            with(&|r| *r.body_mut() = Full::new(Bytes::from_static(b"hello"))),
            HandshakeError::InvalidHeaderValue("Content-Length"),
        ),
    ]
}

#[tokio::test]
async fn refusals_are_cores() {
    for face in FACES {
        let (addr, _accepted) = server(face, deflate_opts()).await;
        for (req, error) in bad_requests(&addr) {
            let response = hyper_client(&addr).await.send_request(req).await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(Some(status.as_u16()), error.status(), "{face:?}, {error:?}");
            assert_eq!(body, format!("{error}\n"), "{face:?}: core's reason");
            assert!(headers["connection"].to_str().unwrap().contains("close"), "{face:?}, {error:?}");
            match error {
                HandshakeError::UnsupportedVersion => {
                    assert_eq!(
                        (&headers["sec-websocket-version"], &headers["upgrade"]),
                        (&"13".parse().unwrap(), &"websocket".parse().unwrap())
                    );
                }
                HandshakeError::MethodNotGet => assert_eq!(headers["allow"], "GET"),
                _ => {}
            }
        }
    }
}

/// A client's first frame sent in the same packet as its request: hyper reads it with the
/// head and must hand it over through the upgraded stream.
#[tokio::test]
async fn a_frame_sent_with_the_request_is_not_lost() {
    for face in FACES {
        let (addr, _accepted) = server(face, AcceptOptions::default()).await;
        let mut stream = TcpStream::connect(&addr).await.unwrap();
        let mut packet = Vec::new();
        let client = ClientUpgrade::new(
            &ConnectOptions { request: ClientOptions::new(&addr).path("/ws"), ..ConnectOptions::default() },
            &mut packet,
        )
        .unwrap();
        packet.extend_from_slice(b"\x81\x82abcd\x09\x0b"); // "hi", masked with "abcd"
        stream.write_all(&packet).await.unwrap();
        let mut answer = Vec::new();
        let connected = loop {
            let mut chunk = [0u8; 1024];
            let n = stream.read(&mut chunk).await.unwrap();
            assert_ne!(n, 0, "{face:?}: the server hung up");
            answer.extend_from_slice(&chunk[..n]);
            match client.step(&answer) {
                lowbit_websockets::handshake::Step::NeedMore => {}
                lowbit_websockets::handshake::Step::Done { result, .. } => break result,
                other => panic!("{face:?}: {other:?}"),
            }
        };
        let mut conn = AsyncConn::with_early_data(stream, Config::new(Role::Client), &connected.leftover);
        let mut buf = Vec::new();
        assert_eq!(conn.read_message(&mut buf).await.unwrap(), (OpCode::Text, &b"hi"[..]), "{face:?}");
        conn.close().await.unwrap();
    }
}

/// hyper serving a connection without `.with_upgrades()` sends the 101 but keeps the stream:
/// the future of the connection fails with a typed error instead of hanging.
#[tokio::test]
async fn without_upgrades_the_future_fails() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, mut rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let service = service_fn(move |mut req: Request<Incoming>| {
            let tx = tx.clone();
            async move {
                let (response, upgrading) = upgrade(&mut req, &AcceptOptions::default()).unwrap();
                tokio::spawn(async move { tx.send(upgrading.await.map(|_| ())).unwrap() });
                Ok::<Response<_>, Infallible>(response)
            }
        });
        http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
    });
    let response = hyper_client(&addr).await.send_request(request(&addr)).await.unwrap();
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let e = rx.recv().await.unwrap().unwrap_err();
    assert!(matches!(e, Error::Handshake(HandshakeError::Io(_))), "{e:?}");
}
