//! Buffers are sized by use, not by limits: a connection's heap after a 16 MiB message goes
//! back down once smaller messages follow, and 10,000 idle connections configured for 16 MiB
//! messages and 1 MiB frames hold a few KiB each. Measured as live heap bytes by a global
//! allocator on the measuring thread. Alone in its binary.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use lowbit_websockets::{Config, Event, OpCode, READ_LIMIT_LARGE, Role, Session, Spare};

struct Live;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
}

fn add(n: isize) {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = LIVE.try_with(|l| l.set(l.get() + n));
}

unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        add(layout.size() as isize);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        add(-(layout.size() as isize));
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        add(new_size as isize - layout.size() as isize);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Live = Live;

/// Heap bytes allocated by this thread and not yet freed.
fn live() -> isize {
    LIVE.with(Cell::get)
}

/// A server configured for large messages and frames (the limits that used to size buffers).
fn large_config(role: Role) -> Config {
    Config::new(role).max_read_limit(READ_LIMIT_LARGE + 1024).max_chunk_size(1 << 20)
}

/// The client's frames of one binary message of `len` bytes.
fn client_message(client: &mut Session, len: usize) -> Vec<u8> {
    client.send_message(OpCode::Binary, &vec![b'x'; len]).unwrap();
    client.take_output()
}

/// The server takes `wire` in socket-sized pieces and echoes every message it completes;
/// returns how many it echoed.
fn echo(server: &mut Session, wire: &[u8]) -> usize {
    let mut echoed = 0;
    for piece in wire.chunks(64 * 1024) {
        let mut rest = piece;
        loop {
            let room = server.read_buf();
            let n = room.len().min(rest.len());
            room[..n].copy_from_slice(&rest[..n]);
            server.advance(n);
            rest = &rest[n..];
            let mut got = Vec::new();
            while let Some(event) = server.poll_event().unwrap() {
                if let Event::Message { payload, .. } = event {
                    got.push(payload.len());
                }
            }
            for len in got {
                // An echo of the same size, queued and then "written" in one go.
                server.send_message(OpCode::Binary, &vec![b'y'; len]).unwrap();
                let out = server.output().len();
                server.consume_output(out);
                echoed += 1;
            }
            if rest.is_empty() {
                break;
            }
        }
    }
    echoed
}

#[test]
fn buffers_shrink_back_after_a_16_mib_message() {
    let mut client = Session::new(large_config(Role::Client), None);
    let big = client_message(&mut client, READ_LIMIT_LARGE);
    let small: Vec<Vec<u8>> = (0..200).map(|_| client_message(&mut client, 100)).collect();

    let mut server = Session::new(large_config(Role::Server), None);
    assert_eq!(echo(&mut server, &small[0]), 1);
    let before = live();
    assert_eq!(echo(&mut server, &big), 1);
    let peak = live();
    assert!(peak - before > READ_LIMIT_LARGE as isize, "the large message was never held ({peak} bytes)");
    // The window after the large one ends within two windows of uses (see sizing.rs): 200 small
    // messages and the reads that carry them are more than that.
    for wire in &small[1..] {
        assert_eq!(echo(&mut server, wire), 1);
    }
    let after = live() - before;
    eprintln!("held {peak} bytes with the large message, {after} after the small ones");
    assert!(after < 64 * 1024, "{after} bytes still held after small messages (was {peak})");
}

#[test]
fn idle_connections_do_not_scale_memory_by_the_limits() {
    const N: usize = 10_000;
    let mut client = Session::new(Config::new(Role::Client), None);
    let hello = client_message(&mut client, 1024);
    let before = live();
    let mut servers: Vec<Session> = (0..N).map(|_| Session::new(large_config(Role::Server), None)).collect();
    // Warm: one 1 KiB message echoed on each, so the read, message and output buffers exist.
    for server in &mut servers {
        assert_eq!(echo(server, &hello), 1);
    }
    let per_connection = (live() - before) / N as isize;
    eprintln!("{per_connection} heap bytes per idle connection");
    // The limits allow 16 MiB messages and 1 MiB frames: a buffer sized by them would be 1 MiB.
    assert!(per_connection < 8 * 1024, "{per_connection} bytes per idle connection");
    drop(servers);
}

#[test]
fn parked_idle_sessions_share_one_set_of_buffers() {
    const N: usize = 10_000;
    let mut client = Session::new(Config::new(Role::Client), None);
    let hello = client_message(&mut client, 1024);
    let mut spare = Spare::default();
    let mut servers: Vec<Session> = (0..N).map(|_| Session::new(large_config(Role::Server), None)).collect();
    // One warm-up echo, so the shared buffers exist before the count starts.
    servers[0].unpark(&mut spare);
    assert_eq!(echo(&mut servers[0], &hello), 1);
    servers[0].park(&mut spare);
    let before = live();
    for server in &mut servers {
        server.unpark(&mut spare);
        assert_eq!(echo(server, &hello), 1);
        server.park(&mut spare);
    }
    let grown = live() - before;
    eprintln!("{grown} heap bytes for {N} warm parked sessions");
    // What the sessions hold besides buffers (deflate off) is in their own structs: nothing
    // on the heap grows per connection.
    assert!(grown < 64 * 1024, "{grown} bytes for {N} parked sessions");
    drop(servers);
}
