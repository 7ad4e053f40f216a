//! permessage-deflate costs, side by side in one run:
//! - compress throughput of both engines (miniz_oxide, zlib-rs) at level 1, through our framing
//!   (`Encoder` + compression via `Conn::write_message`'s path: the `Session` write side);
//! - inflate throughput through our decoder vs a bare miniz_oxide inflate of the same bytes
//!   (miniz_oxide is flate2's default backend);
//! - the per-message cost of 100 B messages with and without context takeover, and what one
//!   engine reset costs alone.
//!
//! Inputs are JSON-like text (compresses well) and random bytes (does not), 1 KiB to 1 MiB.
//! Compression benches rotate through distinct messages that span more than the 32 KiB window,
//! so context takeover never finds the same message in its history (that would flatter it).

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use lowbit_websockets::deflate::{Compressor, DeflateConfig, Engine, ZlibRsCompressor};
use lowbit_websockets::{Config, OpCode, Role, Session};
use std::hint::black_box;
use std::time::Duration;

/// JSON-like records from record number `start` on, cut to `len` bytes.
fn json_like(start: u64, len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + 128);
    let mut i = start;
    while out.len() < len {
        out.extend_from_slice(
            format!(
                r#"{{"id":{i},"name":"user{}","active":{},"score":{}.{}}},"#,
                i % 97,
                i.is_multiple_of(3),
                i * 37 % 1000,
                i % 10
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(len);
    out
}

/// Xorshift bytes; each `seed` gives a different stream.
fn random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = 0x2545_f491_4f6c_dd1du64 ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

const SIZES: [(usize, &str); 3] = [(1024, "1KiB"), (64 * 1024, "64KiB"), (1024 * 1024, "1MiB")];

/// Distinct messages of `size` bytes, enough of them to span twice the 32 KiB window.
fn messages(data: fn(u64, usize) -> Vec<u8>, size: usize) -> Vec<Vec<u8>> {
    let count = (64 * 1024 / size).max(2);
    (0..count as u64).map(|i| data(i * size as u64, size)).collect()
}

fn config(engine: Engine, no_context: bool) -> DeflateConfig {
    DeflateConfig {
        engine,
        threshold: 0,
        compress_no_context_takeover: no_context,
        decompress_no_context_takeover: no_context,
        ..DeflateConfig::default()
    }
}

/// Compress throughput of each engine through our write path (framing included).
fn compress(c: &mut Criterion) {
    for (data, kind) in [(json_like as fn(u64, usize) -> Vec<u8>, "json"), (random, "random")] {
        let mut g = c.benchmark_group(format!("deflate_compress_{kind}"));
        for (size, label) in SIZES {
            let msgs = messages(data, size);
            g.throughput(Throughput::Bytes(size as u64));
            for (engine, name) in [(Engine::Miniz, "miniz_oxide"), (Engine::ZlibRs, "zlib-rs")] {
                let mut s = Session::new(Config::new(Role::Server), Some(&config(engine, false)));
                let mut next = msgs.iter().cycle();
                g.bench_function(BenchmarkId::new(name, label), |b| {
                    b.iter(|| {
                        s.send_message(OpCode::Text, next.next().unwrap()).unwrap();
                        let n = s.output().len();
                        s.consume_output(n);
                        black_box(n)
                    })
                });
            }
        }
        g.finish();
    }
}

/// Inflate throughput: our whole read path vs a bare miniz_oxide inflate of the same bytes.
fn inflate(c: &mut Criterion) {
    for (data, kind) in [(json_like as fn(u64, usize) -> Vec<u8>, "json"), (random, "random")] {
        let mut g = c.benchmark_group(format!("deflate_inflate_{kind}"));
        for (size, label) in SIZES {
            let msg = data(0, size);
            // One message, compressed without context takeover so every iteration can replay it.
            let mut client = Session::new(Config::new(Role::Client), Some(&config(Engine::ZlibRs, true)));
            client.send_message(OpCode::Binary, &msg).unwrap();
            let wire = client.take_output();
            let mut z = Vec::new();
            ZlibRsCompressor::new(1, 15).compress(&msg, &mut z).unwrap();
            g.throughput(Throughput::Bytes(size as u64));
            let cfg = Config::new(Role::Server).max_read_limit(4 << 20);
            let mut server = Session::new(cfg, Some(&config(Engine::ZlibRs, true)));
            g.bench_function(BenchmarkId::new("lowbit", label), |b| {
                b.iter(|| {
                    let mut n = 0;
                    server.receive(&wire, |_| n += 1).unwrap();
                    black_box(n)
                })
            });
            let mut out = vec![0u8; size + 1024];
            let mut state = miniz_oxide::inflate::stream::InflateState::new_boxed(miniz_oxide::DataFormat::Raw);
            g.bench_function(BenchmarkId::new("miniz_oxide (flate2 default)", label), |b| {
                b.iter(|| {
                    state.reset_as(miniz_oxide::inflate::stream::MinReset);
                    let r = miniz_oxide::inflate::stream::inflate(&mut state, &z, &mut out, miniz_oxide::MZFlush::Sync);
                    black_box(r.bytes_written)
                })
            });
        }
        g.finish();
    }
}

/// The per-message cost of 100 B messages (1,024 distinct records, like a chat or a feed), with
/// and without context takeover: a no-context engine is reset per message, never rebuilt.
/// `reset only` is one engine reset alone, the floor of the no-context column.
fn small_messages(c: &mut Criterion) {
    let msgs: Vec<Vec<u8>> = (0..1024).map(|i| json_like(i * 7, 100)).collect();
    let mut g = c.benchmark_group("deflate_100B_per_message");
    g.throughput(Throughput::Elements(1));
    for (engine, name) in [(Engine::Miniz, "miniz_oxide"), (Engine::ZlibRs, "zlib-rs")] {
        for (no_context, mode) in [(false, "takeover"), (true, "no_context_takeover")] {
            let mut s = Session::new(Config::new(Role::Server), Some(&config(engine, no_context)));
            let mut next = msgs.iter().cycle();
            g.bench_function(BenchmarkId::new(name, mode), |b| {
                b.iter(|| {
                    s.send_message(OpCode::Text, next.next().unwrap()).unwrap();
                    let n = s.output().len();
                    s.consume_output(n);
                    black_box(n)
                })
            });
        }
        let mut engine = engine.compressor(&config(engine, true));
        g.bench_function(BenchmarkId::new(name, "reset only"), |b| b.iter(|| engine.reset()));
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(2)).warm_up_time(Duration::from_millis(500)).sample_size(20);
    targets = compress, inflate, small_messages
}
criterion_main!(benches);
