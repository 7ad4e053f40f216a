//! The load test: `connections` WebSocket clients in a closed loop (each has one message in
//! flight: send, wait for the echo, check it byte for byte, send the next), for a fixed time.
//!
//! Design: event-driven ([`super::swarm`]): one generator thread by default, pinned to its own
//! core, drives every connection as a task on a current-thread tokio runtime, through this
//! crate's sans-IO `Session` ([`super::client`]). The generator this replaced was one blocking
//! thread per connection: it could not drive 10,000 connections, and its 100 threads competed
//! for the cores with a server of the same shape.
//!
//! Its limit: on loopback the generator does per echo the kernel work a server does (a
//! `write`, a `read`, and the receiver's TCP input path, which runs on the sender's core), so it
//! costs about what an efficient server costs. Measured on the 2-core VM, quiet, 100
//! connections of 1 KiB against fastwebsockets: 137,000 echoes/s with the generator at 99 % of
//! its core (7.2 µs per echo) and the server at 98 % (7.2 µs). A perf profile of the generator
//! at 10,000 connections: 75 % kernel, about 11 % tokio (readiness, wake-ups, the LocalSet),
//! 5 % the Session, 3 % copying and comparing. Hence the server CPU per echo in the report, which
//! still ranks servers when the generator is the one at 100 %. Two generator threads on the
//! generator's core gave steadier rounds on a busy machine (they take a larger share of that
//! core from other work), not more capacity.
//!
//! What is measured: messages/s is echoes completed during the measured window divided by its
//! length; the latency of a message runs from just before it is queued to the decoding of its
//! echo (so it includes the client's masking, and with deflate its compression and inflation:
//! the same for every server).

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::hist::Histogram;
use super::swarm::{Plan, START, STOP, Swarm};
use super::sys::{CpuSample, CpuUse};

/// Echoing, uncounted. Connections wait for it idle (in [`START`]) until all are upgraded:
/// echoes during the upgrades would starve a thread-per-connection server's accept loop.
const WARMUP: u8 = 1;
const MEASURE: u8 = 2;
/// For all upgrades, and for the first echo of every connection. Generous: on one core a
/// blocking server spawns 10,000 threads to take the upgrades.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);

/// One scenario.
pub struct Load {
    pub plan: Plan,
    /// The server process, for its CPU time.
    pub server_pid: u32,
    pub size: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

pub struct Outcome {
    pub messages: u64,
    pub elapsed: Duration,
    pub latency: Histogram,
    pub cpu: Option<CpuUse>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        self.messages as f64 / self.elapsed.as_secs_f64()
    }
}

/// The bytes messages are cut from: pseudo-random words, so that deflate sees text-like data
/// (compressible, but not one message repeated verbatim, which context takeover would shrink
/// to a few bytes). Each connection walks through it, one message after the other.
pub fn corpus() -> Arc<Vec<u8>> {
    const WORDS: &str = "the websocket frame message server client \"id\": \"name\": \"value\": true, false, \
                         null, { } [ ], lowbit echo payload mask deflate window status update event price \
                         quantity timestamp user session ok error";
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let mut out = Vec::with_capacity(1 << 20);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while out.len() < 1 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if x.is_multiple_of(5) {
            out.extend_from_slice((x >> 20).to_string().as_bytes());
        } else {
            out.extend_from_slice(words[(x >> 40) as usize % words.len()].as_bytes());
        }
        out.push(if x.is_multiple_of(11) { b'\n' } else { b' ' });
    }
    out.truncate(1 << 20);
    Arc::new(out)
}

/// Runs one scenario: connects, warms up, measures, closes every connection cleanly.
pub fn run(load: &Load, corpus: &Arc<Vec<u8>>) -> Result<Outcome, String> {
    let (corpus, size) = (Arc::clone(corpus), load.size);
    let swarm = Swarm::start(&load.plan, async move |client, peer| {
        // Connections start at different places in the corpus.
        let mut offset = (peer.index * 4099) % (corpus.len() - size);
        peer.leave(START).await;
        let mut first = true;
        while peer.shared.phase() != STOP {
            let payload = &corpus[offset..offset + size];
            let sent_at = Instant::now();
            client.echo(payload).await?;
            if std::mem::take(&mut first) {
                peer.checkpoint();
            }
            // Counted if it completed inside the window (the phase is read after the echo).
            if peer.shared.phase() == MEASURE {
                peer.tally.borrow_mut().record(nanos(sent_at.elapsed()));
            }
            offset += size;
            if offset + size > corpus.len() {
                offset = 0;
            }
        }
        Ok(())
    })?;
    swarm.wait_for(load.plan.connections, CONNECT_TIMEOUT)?;
    swarm.set_phase(WARMUP);
    // The warm-up starts once every connection has had an echo: all start at once, and with
    // 10,000 connections of large messages that first wave alone can outlast a short warm-up.
    swarm.wait_for(2 * load.plan.connections, CONNECT_TIMEOUT)?;
    let window = swarm.sleep(load.warmup).then(|| {
        let before = CpuSample::take(load.server_pid);
        swarm.set_phase(MEASURE);
        let ok = swarm.sleep(load.duration);
        swarm.set_phase(STOP);
        let after = CpuSample::take(load.server_pid);
        ok.then(|| (after.at - before.at, after.since(&before)))
    });
    let tally = swarm.finish()?;
    let (elapsed, cpu) = window.flatten().ok_or("a connection failed")?;
    Ok(Outcome { messages: tally.messages, elapsed, latency: tally.latency, cpu })
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

#[cfg(test)]
pub mod tests {
    use std::net::{SocketAddr, TcpListener};

    use lowbit_websockets::deflate::Engine;
    use lowbit_websockets::{AcceptOptions, DeflateOptions, OpCode};

    use super::*;

    /// A blocking echo server (thread per connection) on a free loopback port.
    pub fn echo_server(deflate: bool) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                std::thread::spawn(move || {
                    let deflate =
                        deflate.then(|| DeflateOptions { engine: Engine::ZlibRs, ..DeflateOptions::default() });
                    let opts = AcceptOptions { deflate, ..AcceptOptions::default() };
                    let Ok((mut conn, _)) = lowbit_websockets::accept(stream, &opts) else { return };
                    let mut buf = Vec::new();
                    while let Ok((op, payload)) = conn.read_message(&mut buf) {
                        if op == OpCode::Close || conn.write_message(op, payload).is_err() {
                            break;
                        }
                    }
                });
            }
        });
        addr
    }

    #[test]
    fn every_connection_echoes_then_closes_cleanly() {
        for deflate in [false, true] {
            let plan = Plan { addr: echo_server(deflate), connections: 20, threads: 2, cpu: None, deflate };
            let load = Load {
                plan,
                server_pid: std::process::id(),
                size: 16 * 1024,
                warmup: Duration::from_millis(50),
                duration: Duration::from_millis(200),
            };
            let outcome = run(&load, &corpus()).unwrap();
            assert!(outcome.messages > 0 && outcome.latency.quantile(0.5) > 0, "deflate: {deflate}");
        }
    }
}
