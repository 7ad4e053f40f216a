//! `cargo xtask demo`: start the echo server, talk to it with our own client, close cleanly.

use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{
    CHUNK_SIZE_STREAMING, CloseCode, Config, Conn, ConnectOptions, OpCode, READ_LIMIT_LARGE, Role,
};

use crate::util::{Context, Ctx, Result, run, start_echo_server};

pub fn run_demo(ctx: &Ctx) -> Result {
    println!("building the echo server (release)");
    run(ctx.cargo().args(["build", "--release", "-p", "lowbit-websockets", "--example", "echo-server"]))?;
    let (_server, addr) = start_echo_server(ctx, "echo-server", Stdio::inherit(), &["--deflate"])?;
    println!("echo server listening on {addr}\n");
    talk(addr)?;
    println!("\ndemo done; stopping the echo server");
    Ok(())
}

fn talk(addr: SocketAddr) -> Result {
    let stream = TcpStream::connect(addr).context(format!("connect to {addr}"))?;
    stream.set_nodelay(true).context("TCP_NODELAY")?;
    // A demo must not hang: give up if the server goes quiet.
    stream.set_read_timeout(Some(Duration::from_secs(10))).context("read timeout")?;
    let opts = ConnectOptions {
        request: ClientOptions::new(addr.to_string()).path("/demo".to_owned()),
        config: Config::new(Role::Client).max_read_limit(READ_LIMIT_LARGE).max_chunk_size(CHUNK_SIZE_STREAMING),
        ..ConnectOptions::default()
    };
    let (mut conn, connected) = lowbit_websockets::connect(stream, &opts).context("handshake")?;
    println!(
        "handshake  GET /demo -> 101 Switching Protocols (subprotocol: {}, extensions: {})",
        connected.protocol.as_deref().unwrap_or("none"),
        connected.extensions.as_deref().unwrap_or("none")
    );

    let (pongs, pong) = mpsc::channel();
    conn.set_pong_handler(move |payload| {
        let _ = pongs.send(payload.to_vec());
    });
    let (closes, close) = mpsc::channel();
    conn.set_close_handler(move |code, reason| {
        let _ = closes.send((code, reason.to_owned()));
    });
    let mut buf = Vec::new();

    let text = "hello from lowbit";
    echo(&mut conn, &mut buf, OpCode::Text, text.as_bytes())?;
    println!("text       sent {text:?}, echoed back as text");

    let binary = [0x00, 0x01, 0x7f, 0x80, 0xff];
    echo(&mut conn, &mut buf, OpCode::Binary, &binary)?;
    println!("binary     sent {binary:02x?}, echoed back as binary");

    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i % 251) as u8).collect();
    echo(&mut conn, &mut buf, OpCode::Binary, &big)?;
    println!(
        "1 MiB      sent {} bytes (frames of up to {} KiB), echoed back identical",
        big.len(),
        CHUNK_SIZE_STREAMING / 1024
    );

    let story = "All work and no play makes Jack a dull boy. ".repeat(2000);
    let chunk = 16 * 1024;
    conn.stream_message(OpCode::Text, chunk, &mut story.as_bytes()).context("stream_message")?;
    expect(&mut conn, &mut buf, OpCode::Text, story.as_bytes())?;
    println!(
        "streamed   {} bytes of text in {} fragments of up to {} KiB, echoed back as one message",
        story.len(),
        story.len().div_ceil(chunk),
        chunk / 1024
    );

    conn.ping(b"are you there?").context("ping")?;
    // The pong is handled inside the next read.
    echo(&mut conn, &mut buf, OpCode::Text, b"after the ping")?;
    let got = pong.try_recv().map_err(|_| "no pong came back before the next message".to_owned())?;
    println!("ping       sent {:?}, pong came back with {:?}", "are you there?", String::from_utf8_lossy(&got));

    conn.close().context("close")?;
    let (code, reason) = close.try_recv().map_err(|_| "the server's close frame was not reported".to_owned())?;
    if code != CloseCode::NORMAL_CLOSURE {
        return Err(format!("close: the server answered {code} ({reason:?}), expected 1000"));
    }
    println!("close      sent 1000, the server answered {code}: close handshake complete");
    Ok(())
}

/// Sends one message and checks that the echo is the same message.
fn echo(conn: &mut Conn<TcpStream>, buf: &mut Vec<u8>, op: OpCode, payload: &[u8]) -> Result {
    conn.write_message(op, payload).context(format!("send {op:?}"))?;
    expect(conn, buf, op, payload)
}

fn expect(conn: &mut Conn<TcpStream>, buf: &mut Vec<u8>, op: OpCode, payload: &[u8]) -> Result {
    let (got_op, got) = conn.read_message(buf).context("read the echo")?;
    if got_op != op || got != payload {
        return Err(format!(
            "echo differs: sent {op:?} of {} bytes, got {got_op:?} of {} bytes",
            payload.len(),
            got.len()
        ));
    }
    Ok(())
}
