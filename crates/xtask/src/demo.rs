//! `cargo xtask demo`: start the echo server, talk to it with our own client (deflate on, the
//! bytes on the wire counted), send it a deflate bomb, close cleanly; then the conformance
//! record.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{
    CHUNK_SIZE_STREAMING, CloseCode, Config, Conn, ConnectOptions, DeflateOptions, OpCode, READ_LIMIT_LARGE, Role,
};

use crate::json;
use crate::util::{Context, Ctx, Result, run, start_echo_server};

/// The bomb server's message limit, and what the bomb inflates to.
const BOMB_LIMIT: usize = 1 << 20;
const BOMB_SIZE: usize = 16 << 20;

pub fn run_demo(ctx: &Ctx) -> Result {
    println!("building the echo server (release)");
    run(ctx.cargo().args(["build", "--release", "-p", "lowbit-websockets", "--example", "echo-server"]))?;
    let (_server, addr) = start_echo_server(ctx, "echo-server", Stdio::inherit(), &["--deflate"])?;
    println!("echo server listening on {addr}\n");
    talk(addr)?;
    let limit = BOMB_LIMIT.to_string();
    let (_small, small) =
        start_echo_server(ctx, "echo-server", Stdio::null(), &["--deflate", "--max-message", &limit])?;
    bomb(small)?;
    conformance(ctx)?;
    println!("\ndemo done; stopping the echo servers");
    Ok(())
}

/// A stream that counts the bytes it carries, to show what deflate saves on the wire.
struct Metered {
    tcp: TcpStream,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

impl Read for Metered {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.tcp.read(buf)?;
        self.received.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl Write for Metered {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.tcp.write(buf)?;
        self.sent.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.tcp.flush()
    }
}

/// Connects with a permessage-deflate offer over a [`Metered`] stream; returns the byte
/// counters (sent, received).
fn connect(addr: SocketAddr, max_read: usize) -> Result<(Conn<Metered>, Arc<AtomicU64>, Arc<AtomicU64>, String)> {
    let tcp = TcpStream::connect(addr).context(format!("connect to {addr}"))?;
    tcp.set_nodelay(true).context("TCP_NODELAY")?;
    // A demo must not hang: give up if the server goes quiet.
    tcp.set_read_timeout(Some(Duration::from_secs(10))).context("read timeout")?;
    let (sent, received) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stream = Metered { tcp, sent: sent.clone(), received: received.clone() };
    let opts = ConnectOptions {
        request: ClientOptions::new(addr.to_string()).path("/demo".to_owned()),
        config: Config::new(Role::Client).max_read_limit(max_read).max_chunk_size(CHUNK_SIZE_STREAMING),
        deflate: Some(DeflateOptions::default()),
        ..ConnectOptions::default()
    };
    let (conn, connected) = lowbit_websockets::connect(stream, &opts).context("handshake")?;
    Ok((conn, sent, received, connected.extensions.unwrap_or_else(|| "none".to_owned())))
}

fn talk(addr: SocketAddr) -> Result {
    let (mut conn, sent, received, extensions) = connect(addr, READ_LIMIT_LARGE)?;
    println!("handshake  GET /demo -> 101 Switching Protocols (extensions: {extensions})");

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

    // What permessage-deflate is for: text that repeats itself crosses the wire small.
    let log: String = (0..2000)
        .map(|i| format!("{{\"seq\":{i},\"level\":\"info\",\"msg\":\"user logged in\",\"region\":\"eu-west-1\"}}\n"))
        .collect();
    let (sent0, received0) = (sent.load(Ordering::Relaxed), received.load(Ordering::Relaxed));
    echo(&mut conn, &mut buf, OpCode::Text, log.as_bytes())?;
    let (up, down) = (sent.load(Ordering::Relaxed) - sent0, received.load(Ordering::Relaxed) - received0);
    println!(
        "deflate    {} bytes of JSON lines crossed the wire as {up} bytes ({:.1}x smaller), the echo as {down}",
        log.len(),
        log.len() as f64 / up as f64
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

/// A deflate bomb: a message that inflates far past the server's limit. The server stops
/// inflating at the limit (its memory bounded by it) and closes with 1009.
fn bomb(addr: SocketAddr) -> Result {
    let (mut conn, sent, _, _) = connect(addr, READ_LIMIT_LARGE)?;
    let (closes, close) = mpsc::channel();
    conn.set_close_handler(move |code, reason| {
        let _ = closes.send((code, reason.to_owned()));
    });
    let zeros = vec![0u8; BOMB_SIZE];
    let before = sent.load(Ordering::Relaxed);
    conn.write_message(OpCode::Binary, &zeros).context("send the bomb")?;
    let on_wire = sent.load(Ordering::Relaxed) - before;
    let mut buf = Vec::new();
    // The answer is the server's close frame: reading reports the connection closed.
    let read = conn.read_message(&mut buf).map(|(op, payload)| (op, payload.len()));
    let (code, reason) =
        close.try_recv().map_err(|_| format!("the server did not close after the bomb (read: {read:?})"))?;
    if code != CloseCode::MESSAGE_TOO_BIG {
        return Err(format!("bomb: the server closed with {code} ({reason:?}), expected 1009"));
    }
    println!(
        "bomb       {} MiB of zeros sent as {on_wire} bytes of deflate to a server with a {} MiB limit: it \
         stopped inflating at the limit and closed with {code} ({reason})",
        BOMB_SIZE >> 20,
        BOMB_LIMIT >> 20
    );
    Ok(())
}

/// The Autobahn|Testsuite record that `cargo xtask test` checks every run against
/// (autobahn/expected-results.json; `cargo xtask autobahn` runs the whole suite).
fn conformance(ctx: &Ctx) -> Result {
    let path = ctx.root.join("autobahn/expected-results.json");
    let text = std::fs::read_to_string(&path).context(format!("cannot read {}", path.display()))?;
    let record = json::parse(&text).context(path.display())?;
    for (role, cases) in record.entries() {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for (_, result) in cases.entries() {
            let behavior = result.get("behavior").and_then(|b| b.as_str()).unwrap_or("?").to_owned();
            match counts.iter_mut().find(|(b, _)| *b == behavior) {
                Some((_, n)) => *n += 1,
                None => counts.push((behavior, 1)),
            }
        }
        let summary: Vec<String> = counts.iter().map(|(b, n)| format!("{n} {b}")).collect();
        println!(
            "Autobahn   {role} role: {} cases, {} (recorded; cargo xtask test checks every run against it)",
            cases.entries().len(),
            summary.join(", ")
        );
    }
    Ok(())
}

/// Sends one message and checks that the echo is the same message.
fn echo(conn: &mut Conn<Metered>, buf: &mut Vec<u8>, op: OpCode, payload: &[u8]) -> Result {
    conn.write_message(op, payload).context(format!("send {op:?}"))?;
    expect(conn, buf, op, payload)
}

fn expect(conn: &mut Conn<Metered>, buf: &mut Vec<u8>, op: OpCode, payload: &[u8]) -> Result {
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
