//! Zero allocations per message in steady state with permessage-deflate on: reading and
//! writing (`write_message` and `stream_message`), with and without context takeover, counted
//! by a global allocator on the measuring thread. One test, alone in its binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::{self, Cursor, Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};

use lowbit_websockets::{Config, Conn, DeflateConfig, OpCode, Role};

struct Counting;

static EVENTS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MEASURING: Cell<bool> = const { Cell::new(false) };
}

fn note() {
    if MEASURING.try_with(Cell::get).unwrap_or(false) {
        EVENTS.fetch_add(1, Ordering::Relaxed);
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        note();
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Allocator calls (alloc, realloc, dealloc) made by `f` on this thread.
fn count(f: impl FnOnce()) -> usize {
    let before = EVENTS.load(Ordering::Relaxed);
    MEASURING.with(|m| m.set(true));
    f();
    MEASURING.with(|m| m.set(false));
    EVENTS.load(Ordering::Relaxed) - before
}

/// Reads from a fixed buffer, discards writes: no allocation of its own.
struct Pipe<'a> {
    input: Cursor<&'a [u8]>,
}

impl Read for Pipe<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Pipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Collects writes (to build the read side's input).
struct Collect(Vec<u8>);

impl Read for Collect {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Ok(0)
    }
}

impl Write for Collect {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The messages cycled through: text and binary, compressible and not, small and fragmented.
fn messages() -> Vec<(OpCode, Vec<u8>)> {
    let json = |n: usize, k: u32| {
        let mut s = String::new();
        let mut i = k;
        while s.len() < n {
            s.push_str(&format!("{{\"id\":{i},\"name\":\"item-{}\",\"ok\":true}},", i * 7919 % 1000));
            i += 1;
        }
        s.truncate(n);
        s.into_bytes()
    };
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut noise = |n: usize| {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>()
    };
    vec![
        (OpCode::Text, json(2_000, 1)),
        (OpCode::Binary, noise(20_000)),
        (OpCode::Text, json(64 * 1024, 2)),
        (OpCode::Binary, noise(64 * 1024)),
        (OpCode::Text, json(300, 3)), // under the threshold: sent plain
        (OpCode::Text, json(5_000, 4)),
    ]
}

const WARM_ROUNDS: usize = 5;
const ROUNDS: usize = 30;

fn config(no_context_takeover: bool) -> DeflateConfig {
    DeflateConfig {
        compress_no_context_takeover: no_context_takeover,
        decompress_no_context_takeover: no_context_takeover,
        ..DeflateConfig::default()
    }
}

fn writes(no_context_takeover: bool, streamed: bool) -> usize {
    let msgs = messages();
    let mut conn = Conn::with_config(Pipe { input: Cursor::new(&[][..]) }, Config::new(Role::Server));
    conn.set_deflate(Some(&config(no_context_takeover)), None);
    let send = |conn: &mut Conn<Pipe<'_>>| {
        for (op, m) in &msgs {
            if streamed {
                conn.stream_message(*op, 1500, &mut Cursor::new(&m[..])).unwrap();
            } else {
                conn.write_message(*op, m).unwrap();
            }
        }
    };
    for _ in 0..WARM_ROUNDS {
        send(&mut conn);
    }
    count(|| {
        for _ in 0..ROUNDS {
            send(&mut conn);
        }
    })
}

fn reads(no_context_takeover: bool) -> usize {
    let msgs = messages();
    // The peer: a client compressing with the same setting, 4 KiB frames (so large messages
    // arrive fragmented).
    let mut peer = Conn::with_config(Collect(Vec::new()), Config::new(Role::Client).max_chunk_size(4096));
    peer.set_deflate(Some(&config(no_context_takeover)), None);
    for _ in 0..WARM_ROUNDS + ROUNDS {
        for (op, m) in &msgs {
            peer.write_message(*op, m).unwrap();
        }
    }
    let wire = peer.into_inner().0;
    let mut conn = Conn::with_config(Pipe { input: Cursor::new(&wire[..]) }, Config::new(Role::Server));
    conn.set_deflate(Some(&config(no_context_takeover)), None);
    let mut buf = Vec::new();
    let check = |conn: &mut Conn<Pipe<'_>>, buf: &mut Vec<u8>| {
        for (op, m) in &msgs {
            let (got_op, got) = conn.read_message(buf).unwrap();
            assert!(got_op == *op && got == &m[..], "a {}-byte message came back wrong", m.len());
        }
    };
    for _ in 0..WARM_ROUNDS {
        check(&mut conn, &mut buf);
    }
    count(|| {
        for _ in 0..ROUNDS {
            check(&mut conn, &mut buf);
        }
    })
}

#[test]
fn deflate_steady_state_allocates_nothing() {
    // The counter sees this thread's allocations.
    assert_eq!(count(|| drop(std::hint::black_box(Vec::<u8>::with_capacity(64)))), 2);
    let per_round = messages().len();
    let mut results = Vec::new();
    for nct in [false, true] {
        let label = if nct { "no context takeover" } else { "context takeover" };
        results.push((format!("read, {label}"), reads(nct)));
        results.push((format!("write_message, {label}"), writes(nct, false)));
        results.push((format!("stream_message, {label}"), writes(nct, true)));
    }
    for (what, n) in &results {
        eprintln!("{what}: {n} allocator calls in {} messages", ROUNDS * per_round);
    }
    let bad: Vec<_> = results.iter().filter(|(_, n)| *n > 0).collect();
    assert!(bad.is_empty(), "allocations in steady state: {bad:?}");
}
