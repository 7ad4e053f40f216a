//! The async host under load and attack: `serve` on a 2-thread runtime holds 1,000 concurrent
//! connections that each exchange messages, while other connections stall mid-frame, send
//! garbage, trap their guest, flood empty continuation frames or stop reading. Every
//! well-behaved connection finishes its exchanges while the stalled and flooding ones are
//! still being held, so none of them delayed the others past the others' own work. This
//! asserts progress and outcomes, never a duration; the outer timeouts only turn a hang into
//! a failure.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use host_tests::{close_code_of, host, parse_server_frames, raw_client_handshake};
use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{Config, ConnectOptions, OpCode, Role, connect_async};
use lowbit_ws_host::serve::{ServeOptions, ServeStats, serve};
use lowbit_ws_host::{Limits, accept_options};

/// Well-behaved connections, all open at once.
const CONNECTIONS: usize = 1000;
/// Round trips per well-behaved connection.
const MESSAGES: usize = 4;
/// The guest's memory cap here: room for the echo loop, not for an 8 MiB message.
const MAX_MEMORY: usize = 4 << 20;
const LIMITS: Limits = Limits { max_read_limit: 16 << 20, max_chunk_size: 64 << 10 };
/// Generous bounds that only turn a hang into a failure.
const HANG: Duration = Duration::from_secs(120);

/// Starts `serve` on a tokio runtime of `threads` worker threads; returns its address and
/// counters. The server lives until the test process ends.
fn start_server(threads: usize, options: ServeOptions) -> (SocketAddr, Arc<ServeStats>) {
    let mut host = host().clone();
    host.max_memory = MAX_MEMORY;
    let stats = Arc::new(ServeStats::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let counters = Arc::clone(&stats);
    std::thread::spawn(move || {
        let runtime = if threads == 1 {
            tokio::runtime::Builder::new_current_thread().enable_all().build()
        } else {
            tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
        }
        .expect("runtime");
        runtime.block_on(async move {
            // tokio's listener has a backlog of 1,024, room for every connection at once.
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send the address");
            serve(host, listener, options, counters).await;
        });
    });
    (rx.recv().expect("the server's address"), stats)
}

/// Two descriptors per connection on each side, in one process.
fn raise_open_files() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read or write one rlimit through a valid pointer.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit), 0);
        let want = (4 * CONNECTIONS as libc::rlim_t + 256).min(limit.rlim_max);
        if limit.rlim_cur < want {
            limit.rlim_cur = want;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit), 0);
        }
    }
}

/// A masked client frame with mask key 0 (so the payload goes as is).
fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![u8::from(fin) << 7 | op];
    match payload.len() {
        n @ 0..=125 => f.push(0x80 | n as u8),
        n @ 126..=0xffff => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(payload);
    f
}

/// An upgraded raw connection.
fn upgraded(addr: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).expect("connect");
    let (head, rest) = raw_client_handshake(&mut tcp, false).expect("handshake");
    assert!(head.starts_with("HTTP/1.1 101") && rest.is_empty(), "{head}");
    tcp
}

/// Reads to the end (the server's FIN or reset) and returns what came.
fn read_all(tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tcp.read(&mut chunk) {
            Ok(0) | Err(_) => return got,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Whether the server still holds `tcp` open: nothing to read, no end of stream.
fn still_open(tcp: &TcpStream) -> bool {
    tcp.set_nonblocking(true).expect("nonblocking");
    let open = matches!((&*tcp).read(&mut [0u8; 1]), Err(e) if e.kind() == ErrorKind::WouldBlock);
    tcp.set_nonblocking(false).expect("blocking");
    open
}

/// Streams zero-length continuation frames after an unfinished text frame until `stop`;
/// counts the bytes the server took.
fn flood(addr: SocketAddr, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut tcp = upgraded(addr);
        tcp.write_all(&frame(false, 1, b"")).expect("the first fragment");
        let burst: Vec<u8> = (0..10_000).flat_map(|_| frame(false, 0, b"")).collect();
        while !stop.load(Ordering::Relaxed) {
            if tcp.write_all(&burst).is_err() {
                return;
            }
            sent.fetch_add(burst.len() as u64, Ordering::Relaxed);
        }
    })
}

/// One well-behaved client: connects, exchanges `MESSAGES` messages of distinct content,
/// checks every echo, closes.
async fn exchange(addr: SocketAddr, id: usize) -> lowbit_websockets::Result<()> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let opts = ConnectOptions {
        request: ClientOptions::new(addr.to_string()),
        config: Config::new(Role::Client),
        ..ConnectOptions::default()
    };
    let (mut conn, _) = connect_async(tcp, &opts).await?;
    let mut buf = Vec::new();
    for i in 0..MESSAGES {
        let msg = format!("connection {id}, message {i}: {}", "x".repeat(id % 300));
        conn.write_message(OpCode::Text, msg.as_bytes()).await?;
        let (op, echo) = conn.read_message(&mut buf).await?;
        assert_eq!((op, echo), (OpCode::Text, msg.as_bytes()), "connection {id}");
    }
    conn.close().await
}

/// 1,000 connections on a 2-thread host exchange messages while five others misbehave; all
/// 1,000 finish while the mid-frame staller and the flood are still held, the garbage gets a
/// clean 1002, the trap ends only its own connection, and the stalled reader is dropped.
#[test]
fn a_thousand_connections_progress_past_stalls_garbage_traps_and_floods() {
    raise_open_files();
    let options = ServeOptions {
        stall_timeout: Some(Duration::from_secs(1)),
        ..ServeOptions::new(accept_options(LIMITS, false))
    };
    let (addr, stats) = start_server(2, options);

    // Stalls mid-frame: two bytes of a header, then nothing.
    let mut staller = upgraded(addr);
    staller.write_all(&frame(true, 2, &[1; 300])[..2]).expect("half a header");

    // Floods empty continuation frames for as long as the others run.
    let (stop, flooded) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let flooder = flood(addr, Arc::clone(&stop), Arc::clone(&flooded));

    // Sends garbage: reserved bits set, which the guest must refuse with 1002.
    let garbage = std::thread::spawn(move || {
        let mut tcp = upgraded(addr);
        tcp.write_all(&[0xff; 64]).expect("garbage");
        read_all(&mut tcp)
    });

    // Traps its guest: an 8 MiB message (under the 16 MiB limit) needs more than the 4 MiB
    // of linear memory the guest may have.
    let trapper = std::thread::spawn(move || {
        let mut tcp = upgraded(addr);
        let big = frame(true, 2, &vec![7; 8 << 20]);
        let _ = tcp.write_all(&big); // the server may hang up part-way
        read_all(&mut tcp)
    });

    // Stops reading: sends 64 messages of 1 MiB and reads none of the echoes until it has
    // sent them all. The server's echoes fill the socket buffers (a few MiB), its writes
    // stop making progress, and it drops the connection (then drains what is still sent).
    let stalled_reader = std::thread::spawn(move || {
        let mut tcp = upgraded(addr);
        let big = frame(true, 2, &vec![5; 1 << 20]);
        for _ in 0..64 {
            if tcp.write_all(&big).is_err() {
                break;
            }
        }
        read_all(&mut tcp).len()
    });

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let results = runtime.block_on(async {
        let clients: Vec<_> = (0..CONNECTIONS).map(|id| tokio::spawn(exchange(addr, id))).collect();
        let mut results = Vec::new();
        for client in clients {
            results.push(tokio::time::timeout(HANG, client).await);
        }
        results
    });
    let failed: Vec<String> = results
        .iter()
        .enumerate()
        .filter_map(|(id, r)| match r {
            Ok(Ok(Ok(()))) => None,
            other => Some(format!("connection {id}: {other:?}")),
        })
        .collect();
    assert!(failed.is_empty(), "{} of {CONNECTIONS} failed, first: {:?}", failed.len(), failed.first());

    // The others are done, and the staller and the flood were held all along.
    assert!(still_open(&staller), "the mid-frame staller was dropped");
    let before = flooded.load(Ordering::Relaxed);
    assert!(before > 0 && !flooder.is_finished(), "the flood was not being served");
    stop.store(true, Ordering::Relaxed);
    flooder.join().expect("flood thread");

    let frames = parse_server_frames(&garbage.join().expect("garbage thread"));
    assert_eq!(close_code_of(&frames), Some(1002), "garbage: {frames:?}");
    let frames = parse_server_frames(&trapper.join().expect("trap thread"));
    assert!(close_code_of(&frames).is_none(), "a trapped guest sends nothing: {frames:?}");
    let echoed = stalled_reader.join().expect("stalled reader thread");
    assert!(echoed < 64 << 20, "the stalled reader was never dropped ({echoed} bytes echoed)");
    assert!(stats.traps.load(Ordering::Relaxed) >= 1, "no trap was counted");
    assert!(stats.accepted.load(Ordering::Relaxed) >= CONNECTIONS as u64 + 5);
}

/// A zero-length-continuation flood on one connection does not stop echoes on another,
/// even with one thread for both (the flood's reads always find bytes waiting).
#[test]
fn a_flood_of_empty_frames_does_not_starve_another_connection_on_one_thread() {
    let (addr, _stats) = start_server(1, ServeOptions::new(accept_options(LIMITS, false)));
    let (stop, flooded) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
    let flooder = flood(addr, Arc::clone(&stop), Arc::clone(&flooded));
    // Wait until the flood is being taken in, so the echoes below compete with it.
    while flooded.load(Ordering::Relaxed) < 1 << 20 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    for id in 0..20 {
        runtime.block_on(async { tokio::time::timeout(HANG, exchange(addr, id)).await }).expect("no hang").expect("echoes");
    }
    assert!(!flooder.is_finished(), "the flood stopped before the echoes were done");
    stop.store(true, Ordering::Relaxed);
    flooder.join().expect("flood thread");
}
