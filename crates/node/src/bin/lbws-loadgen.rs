//! The echo load generator of `npm run bench`: N blocking client connections (one thread
//! each, lowbit core's `Conn`), each sending one message and waiting for its echo, for a fixed
//! time. Prints one JSON line: messages/s and latency percentiles. The same binary measures
//! every server, so the comparison is fair.
//!
//! `lbws-loadgen --addr 127.0.0.1:9001 --conns 100 --size 1024 --secs 5 [--warmup 1] [--deflate]
//! [--depth N]`: with `--depth`, each connection keeps N messages in flight (latency is then
//! measured per message from the start of its batch).

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::upgrade::{ConnectOptions, connect};
use lowbit_websockets::{Config, DeflateOptions, OpCode, Role};

struct Args {
    addr: String,
    conns: usize,
    size: usize,
    secs: f64,
    warmup: f64,
    deflate: bool,
    depth: usize,
}

fn args() -> Args {
    let mut a = Args {
        addr: "127.0.0.1:9001".into(),
        conns: 100,
        size: 1024,
        secs: 5.0,
        warmup: 1.0,
        deflate: false,
        depth: 1,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < argv.len() {
        let v = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--addr" => a.addr = v,
            "--conns" => a.conns = v.parse().expect("--conns"),
            "--size" => a.size = v.parse().expect("--size"),
            "--secs" => a.secs = v.parse().expect("--secs"),
            "--warmup" => a.warmup = v.parse().expect("--warmup"),
            "--depth" => a.depth = v.parse::<usize>().expect("--depth").max(1),
            "--deflate" => {
                a.deflate = true;
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

/// JSON-ish text with some variety, so deflate has realistic work.
fn payload(size: usize) -> Vec<u8> {
    let mut s = String::with_capacity(size + 64);
    let mut n: u32 = 12345;
    while s.len() < size {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12345);
        s.push_str(&format!("{{\"id\":{},\"name\":\"user{}\",\"score\":{}}},", n % 100_000, n % 977, n % 1000));
    }
    s.truncate(size);
    s.into_bytes()
}

fn main() {
    let a = args();
    let msg = Arc::new(payload(a.size));
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let ready = Arc::new(Barrier::new(a.conns + 1));
    let mut handles = Vec::new();
    for _ in 0..a.conns {
        let (addr, msg, stop, measuring, ready) =
            (a.addr.clone(), msg.clone(), stop.clone(), measuring.clone(), ready.clone());
        let (deflate, depth) = (a.deflate, a.depth);
        handles.push(std::thread::spawn(move || {
            let stream = TcpStream::connect(&addr).expect("connect");
            stream.set_nodelay(true).ok();
            let opts = ConnectOptions {
                request: ClientOptions::new(addr.clone()),
                config: Config::new(Role::Client).max_read_limit(64 << 20).max_chunk_size(64 << 10),
                deflate: deflate.then(DeflateOptions::default),
            };
            let (mut conn, connected) = connect(stream, &opts).expect("handshake");
            assert_eq!(connected.extensions.is_some(), deflate, "deflate negotiated as asked");
            ready.wait();
            let mut buf = Vec::new();
            let mut lat: Vec<u32> = Vec::with_capacity(1 << 16);
            let mut failed = false;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                for _ in 0..depth {
                    if conn.write_message(OpCode::Text, &msg).is_err() {
                        failed = true;
                    }
                }
                for _ in 0..depth {
                    match conn.read_message(&mut buf) {
                        Ok((_, echo)) if echo.len() == msg.len() => {}
                        _ => failed = true,
                    }
                    if failed {
                        break;
                    }
                    if measuring.load(Ordering::Relaxed) {
                        lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    }
                }
                if failed {
                    break;
                }
            }
            if !failed {
                let _ = conn.close();
            }
            (lat, failed)
        }));
    }
    ready.wait();
    std::thread::sleep(Duration::from_secs_f64(a.warmup));
    measuring.store(true, Ordering::Relaxed);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(a.secs));
    measuring.store(false, Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<u32> = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (lat, failed) = h.join().expect("client thread");
        all.extend(lat);
        errors += usize::from(failed);
    }
    all.sort_unstable();
    let pct =
        |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    println!(
        "{{\"messages\":{},\"errors\":{errors},\"secs\":{:.3},\"msgs_per_sec\":{:.0},\"p50_us\":{},\"p99_us\":{}}}",
        all.len(),
        elapsed,
        all.len() as f64 / elapsed,
        pct(0.50),
        pct(0.99)
    );
}
