//! Connection churn on the async face: 20,000 connect / upgrade / one 1 KiB echo / close
//! cycles over loopback TCP against `accept_async` connections on one tokio thread. Afterwards
//! the process holds the file descriptors and the live heap bytes it held before (within
//! 64 KiB, counted by a global allocator): every connection's memory goes with it. Alone in
//! its binary.
#![cfg(feature = "tokio")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{AcceptOptions, ConnectOptions, OpCode, accept_async, connect_async};
use tokio::net::{TcpListener, TcpStream};

struct Live;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Live {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Live = Live;

const CYCLES: usize = 20_000;
/// Cycles before the baseline, so that what tokio and the test keep for good is counted in it.
const WARM: usize = 500;
const CONCURRENCY: usize = 32;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, Iterator::count)
}

/// One cycle: connect, upgrade, echo one 1 KiB message, close (the client starts the close).
async fn cycle(addr: std::net::SocketAddr) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let opts = ConnectOptions { request: ClientOptions::new(addr.to_string()), ..ConnectOptions::default() };
    let (mut conn, _) = connect_async(stream, &opts).await.unwrap();
    let message = [b'x'; 1024];
    conn.write_message(OpCode::Binary, &message).await.unwrap();
    let mut buf = Vec::new();
    let (op, echoed) = conn.read_message(&mut buf).await.unwrap();
    assert!(op == OpCode::Binary && echoed == message);
    conn.close().await.unwrap();
}

async fn churn(addr: std::net::SocketAddr, n: usize) {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < n {
                    cycle(addr).await;
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn churn_leaves_fds_and_heap_where_they_were() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Connections the server still holds.
    let serving = Arc::new(AtomicUsize::new(0));
    let server = {
        let serving = Arc::clone(&serving);
        tokio::spawn(async move {
            let opts = Arc::new(AcceptOptions::default());
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                serving.fetch_add(1, Ordering::SeqCst);
                let (opts, serving) = (Arc::clone(&opts), Arc::clone(&serving));
                tokio::spawn(async move {
                    let (mut conn, _) = accept_async(stream, &opts).await.unwrap();
                    let mut buf = Vec::new();
                    // Echo until the peer's close (answered inside read_message).
                    while let Ok((op, payload)) = conn.read_message(&mut buf).await {
                        if op == OpCode::Close {
                            break;
                        }
                        let payload = payload.to_vec();
                        conn.write_message(op, &payload).await.unwrap();
                    }
                    drop(conn);
                    serving.fetch_sub(1, Ordering::SeqCst);
                });
            }
        })
    };
    let settled = || async {
        while serving.load(Ordering::SeqCst) > 0 {
            tokio::task::yield_now().await;
        }
        (LIVE.load(Ordering::Relaxed), open_fds())
    };
    churn(addr, WARM).await;
    let (heap_before, fds_before) = settled().await;
    churn(addr, CYCLES).await;
    let (heap_after, fds_after) = settled().await;
    eprintln!("heap {heap_before} -> {heap_after} bytes, fds {fds_before} -> {fds_after} after {CYCLES} cycles");
    assert_eq!(fds_after, fds_before, "file descriptors back to the baseline");
    assert!(heap_after - heap_before < 64 * 1024, "heap grew by {} bytes", heap_after - heap_before);
    server.abort();
}
