//! `serve`'s accept loop at the descriptor limit: while `accept` fails with `EMFILE` it backs
//! off and logs once per interval instead of spinning, and as soon as descriptors free up
//! new clients are served again. Its own test binary: it lowers the process's open-file limit.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use host_tests::host;
use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{ConnectOptions, OpCode};
use lowbit_ws_host::serve::{ACCEPT_BACKOFF, ServeOptions, ServeStats, serve};
use lowbit_ws_host::{Limits, accept_options};

fn open_files_limit() -> libc::rlimit {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes one rlimit through a valid pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut limit) }, 0);
    limit
}

fn set_open_files_limit(limit: libc::rlimit) {
    // SAFETY: setrlimit reads one rlimit through a valid pointer.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const limit) }, 0);
}

fn start_server() -> (SocketAddr, Arc<ServeStats>) {
    let host = host().clone();
    let stats = Arc::new(ServeStats::default());
    let counters = Arc::clone(&stats);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send the address");
            serve(host, listener, ServeOptions::new(accept_options(Limits::default(), false)), counters).await;
        });
    });
    (rx.recv().expect("the server's address"), stats)
}

/// Waits (bounded) until `done` holds.
fn wait_for(what: &str, done: impl Fn() -> bool) {
    for _ in 0..1000 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what} never happened");
}

#[test]
fn accept_loop_backs_off_at_the_descriptor_limit_and_serves_again_when_fds_free_up() {
    let (addr, stats) = start_server();
    let original = open_files_limit();
    let open_now = std::fs::read_dir("/proc/self/fd").expect("/proc/self/fd").count() as libc::rlim_t;
    set_open_files_limit(libc::rlimit { rlim_cur: open_now + 40, ..original });

    // Use up every descriptor, then give one back for a client: its connection waits in the
    // server's queue, and the server has no descriptor left to accept it with.
    let mut hogs = Vec::new();
    while let Ok(file) = std::fs::File::open("/dev/null") {
        hogs.push(file);
        assert!(hogs.len() < 10_000, "the limit was never reached");
    }
    hogs.pop();
    let queued = TcpStream::connect(addr).expect("a connection for the server's queue");
    wait_for("a failed accept", || stats.accept_failures.load(Ordering::Relaxed) > 0);

    // Stuck at the limit for a while: each failure costs ACCEPT_BACKOFF, and one log line
    // covers them all (a spinning loop would fail millions of times).
    let before = stats.accept_failures.load(Ordering::Relaxed);
    std::thread::sleep(ACCEPT_BACKOFF * 10);
    let during = stats.accept_failures.load(Ordering::Relaxed) - before;
    assert!(during <= 15, "{during} failed accepts in 10 back-off intervals");
    assert_eq!(stats.accept_logs.load(Ordering::Relaxed), 1, "one log line per interval");

    // Descriptors free up: the queued connection is accepted, and a new client is served.
    let accepted = stats.accepted.load(Ordering::Relaxed);
    drop(hogs);
    wait_for("the queued connection accepted", || stats.accepted.load(Ordering::Relaxed) > accepted);
    drop(queued);
    set_open_files_limit(original);
    let opts = ConnectOptions { request: ClientOptions::new(addr.to_string()), ..ConnectOptions::default() };
    let tcp = TcpStream::connect(addr).expect("connect after the limit");
    let (mut conn, _) = lowbit_websockets::connect(tcp, &opts).expect("handshake after the limit");
    conn.write_message(OpCode::Text, b"still here").expect("write");
    let mut buf = Vec::new();
    let (op, echo) = conn.read_message(&mut buf).expect("echo");
    assert_eq!((op, echo), (OpCode::Text, &b"still here"[..]));
    conn.close().expect("close");
}
