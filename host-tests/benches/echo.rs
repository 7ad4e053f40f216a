//! Echo through the component vs the native core, over the same loopback TCP, in one run.
//!
//! The client is the native core in both cases; only the server differs: `native` is
//! `lowbit_websockets::accept` + a read/write loop on a `TcpStream`, `component` is the
//! component's handshake + echo loop in wasmtime with the host's TCP streams. Messages are
//! binary, deflate off, one in flight (ping-pong), so the time per message is a round trip
//! and the difference between the two rows is the component's overhead per message.
//!
//! `cargo bench -p host-tests --bench echo` (set `ECHO_BENCH_SCALE=0.1` for a quick run).

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use host_tests::{component_server, native_server};
use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{Config, ConnectOptions, OpCode, Role};
use lowbit_ws_host::{Limits, accept_options};

/// Rounds per size; the best of each is reported.
const ROUNDS: usize = 5;

const LIMITS: Limits = Limits { max_read_limit: 16 << 20, max_chunk_size: 64 << 10 };

fn round_trips(addr: SocketAddr, size: usize, n: usize) -> Duration {
    let opts = ConnectOptions {
        request: ClientOptions::new(addr.to_string()),
        config: Config::new(Role::Client).max_read_limit(16 << 20).max_chunk_size(64 << 10),
        ..ConnectOptions::default()
    };
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_nodelay(true).expect("nodelay");
    let (mut conn, _) = lowbit_websockets::connect(tcp, &opts).expect("handshake");
    let msg = vec![0x5au8; size];
    let mut buf = Vec::new();
    let mut once = |conn: &mut lowbit_websockets::Conn<TcpStream>| {
        conn.write_message(OpCode::Binary, &msg).expect("write");
        let (_, got) = conn.read_message(&mut buf).expect("read");
        assert_eq!(got.len(), size);
    };
    for _ in 0..(n / 10).max(3) {
        once(&mut conn);
    }
    let start = Instant::now();
    for _ in 0..n {
        once(&mut conn);
    }
    let elapsed = start.elapsed();
    conn.close().expect("close");
    elapsed
}

fn main() {
    // `cargo bench` passes `--bench`; a filter or `--test` (from `cargo test --benches`)
    // means a smoke run.
    let smoke = std::env::args().any(|a| a == "--test");
    let scale: f64 =
        std::env::var("ECHO_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(if smoke { 0.01 } else { 1.0 });
    let native = native_server(false, LIMITS);
    println!(
        "| size | native RTT | component RTT | overhead / msg | native MB/s | component MB/s | component / native time |"
    );
    println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (size, n) in [(16usize, 5_000usize), (1024, 5_000), (64 << 10, 500), (1 << 20, 50)] {
        let n = ((n as f64 * scale) as usize).max(5);
        // Alternate the two servers and keep each one's best round: on a shared machine the
        // minimum is the number least disturbed by other load.
        let (mut t_native, mut t_comp) = (Duration::MAX, Duration::MAX);
        for _ in 0..ROUNDS {
            t_native = t_native.min(round_trips(native, size, n));
            let (addr, server) = component_server(accept_options(LIMITS, false));
            t_comp = t_comp.min(round_trips(addr, size, n));
            server.join().expect("server").expect("no trap").result.expect("clean close");
        }
        let per = |t: Duration| t.as_secs_f64() * 1e6 / n as f64;
        // Payload bytes echoed per second, one direction.
        let mbps = |t: Duration| (size * n) as f64 / t.as_secs_f64() / 1e6;
        println!(
            "| {} | {:.1} us | {:.1} us | {:+.1} us | {:.0} | {:.0} | {:.2}x |",
            match size {
                s if s >= 1 << 20 => format!("{} MiB", s >> 20),
                s if s >= 1024 => format!("{} KiB", s >> 10),
                s => format!("{s} B"),
            },
            per(t_native),
            per(t_comp),
            per(t_comp) - per(t_native),
            mbps(t_native),
            mbps(t_comp),
            t_comp.as_secs_f64() / t_native.as_secs_f64(),
        );
    }
}
