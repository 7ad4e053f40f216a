//! An echo server over fastwebsockets 0.10, upgraded through hyper 1 as fastwebsockets
//! documents it (`fastwebsockets::upgrade`). See the crate docs for the shape all the peers
//! share.

use std::process::ExitCode;

use fastwebsockets::{FragmentCollector, OpCode, WebSocketError, upgrade};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

fn main() -> ExitCode {
    bench_peers::serve("fastwebsockets-echo-server", handle)
}

/// The HTTP side: answers the upgrade request, and hands the connection to [`echo`] on a task
/// of its own (the task serving HTTP ends once the upgrade is done, so there is one task per
/// connection while it echoes).
async fn handle(stream: TcpStream) -> Result<(), String> {
    let service = service_fn(|mut request: Request<Incoming>| async move {
        let (response, upgraded) = upgrade::upgrade(&mut request)?;
        tokio::spawn(async move {
            if let Err(e) = echo(upgraded).await {
                eprintln!("echo failed: {e}");
            }
        });
        Ok::<Response<_>, WebSocketError>(response)
    });
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service).with_upgrades();
    connection.await.map_err(|e| format!("upgrade failed: {e}"))
}

/// Echoes whole messages (fragments are collected) until the peer's close, which
/// fastwebsockets answers by itself (`auto_close`), as it answers pings (`auto_pong`).
async fn echo(upgraded: upgrade::UpgradeFut) -> Result<(), WebSocketError> {
    let mut ws = upgraded.await?;
    ws.set_max_message_size(bench_peers::MAX_MESSAGE);
    let mut ws = FragmentCollector::new(ws);
    loop {
        let frame = ws.read_frame().await?;
        match frame.opcode {
            OpCode::Text | OpCode::Binary => ws.write_frame(frame).await?,
            OpCode::Close => return Ok(()),
            _ => {}
        }
    }
}
