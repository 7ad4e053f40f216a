//! Resource attacks against the shipped echo servers (the `echo-server` and
//! `async-echo-server` examples, run as processes with short limits), each with a second
//! client echoing through the same server meanwhile: a trickled upgrade request, running out
//! of file descriptors, a flood of empty continuation frames, a message past the fragment cap,
//! a client that stops reading, and one that goes quiet. The tests assert outcomes (what the
//! attacker got, what the good client got, what the server logged); the waits are hang guards.
//!
//! The servers are the example binaries `cargo test` builds beside the tests (the async one
//! with the `tokio` feature).

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use tungstenite::{Message, WebSocket};

mod common;
use common::RawFrame;

/// Hang guard only: the longest any wait may take.
const GUARD: Duration = Duration::from_secs(30);

/// The upgrade request the raw clients send (the RFC 6455 sample key).
const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

// ---------------------------------------------------------------------------------------------
// The servers

/// A running example server; killed on drop.
struct Server {
    child: Child,
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `example` with `args`; under `ulimit -n fds` when given.
    fn start(example: &str, args: &[&str], fds: Option<u32>) -> Self {
        let exe = example_path(example);
        let mut cmd = match fds {
            // `exec` keeps the pid, so dropping kills the server itself.
            Some(n) => {
                let mut c = Command::new("sh");
                c.args(["-c", &format!("ulimit -n {n} && exec \"$0\" \"$@\"")]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.args(["--addr", "127.0.0.1:0"]).args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", exe.display()));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let addr = line.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("{line:?}")).parse().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (lines, stderr) = (Arc::clone(&log), child.stderr.take().unwrap());
        thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                lines.lock().unwrap().push(line);
            }
        });
        Self { child, addr, log }
    }

    /// The server's log lines that contain `needle`.
    fn logged(&self, needle: &str) -> usize {
        self.log.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
    }

    /// The CPU time the server has used so far, in clock ticks (user + system, from
    /// `/proc/<pid>/stat`).
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which is in parentheses): utime and stime are the
        // 12th and 13th.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = rest.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// Waits (bounded by GUARD) until the log has a line containing `needle`.
    fn wait_for_log(&self, needle: &str) -> bool {
        let deadline = Instant::now() + GUARD;
        while Instant::now() < deadline {
            if self.logged(needle) > 0 {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example binary beside this test binary (`target/<profile>/examples/<name>`).
fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().parent().unwrap().join("examples").join(name);
    assert!(
        path.exists(),
        "{} is not built: `cargo test` builds the examples (`cargo build --examples`)",
        path.display()
    );
    path
}

/// The servers under test.
fn servers() -> Vec<&'static str> {
    let mut v = vec!["echo-server"];
    if cfg!(feature = "tokio") {
        v.push("async-echo-server");
    }
    v
}

// ---------------------------------------------------------------------------------------------
// Clients

fn tcp(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(GUARD)).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Reads a response head byte by byte (so nothing after it is consumed); `Err(timed_out)` if
/// the read times out, or the stream ends, first.
fn response_head(s: &mut TcpStream) -> Result<String, bool> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => return Err(true),
            _ => return Err(false),
        }
    }
    Ok(String::from_utf8(head).unwrap())
}

/// A raw client past the upgrade.
fn upgraded(addr: SocketAddr) -> TcpStream {
    let mut s = tcp(addr);
    s.write_all(REQUEST).unwrap();
    let head = response_head(&mut s).expect("a response");
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    s
}

/// A masked client frame.
fn frame(fin: bool, op: u8, payload: &[u8]) -> Vec<u8> {
    RawFrame::new(op, payload).fin(fin).mask(KEY).build()
}

/// Reads one (short) server frame: (first header byte, payload).
fn read_frame(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    s.read_exact(&mut h).unwrap();
    assert!(h[1] < 126, "a short frame");
    let mut p = vec![0u8; h[1] as usize];
    s.read_exact(&mut p).unwrap();
    (h[0], p)
}

/// A well-behaved client (tungstenite).
struct Good(WebSocket<TcpStream>);

impl Good {
    fn connect(addr: SocketAddr) -> Self {
        let (ws, _) = tungstenite::client(format!("ws://{addr}/"), tcp(addr)).unwrap();
        Self(ws)
    }

    /// One echo of a message that names `i`.
    fn echo(&mut self, i: u64) {
        let msg = format!("echo {i}");
        self.0.send(Message::text(msg.clone())).unwrap();
        loop {
            match self.0.read().unwrap() {
                Message::Text(t) => {
                    assert_eq!(t.as_str(), msg);
                    return;
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("{other:?}"),
            }
        }
    }

    /// Echoes while `busy` says so (at least once); returns how many went through.
    fn echo_while(&mut self, busy: impl Fn() -> bool) -> u64 {
        let deadline = Instant::now() + GUARD;
        let mut n = 0;
        loop {
            self.echo(n);
            n += 1;
            if !busy() || Instant::now() > deadline {
                return n;
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The attacks

/// Clients that trickle their upgrade request a byte every 50 ms are answered 408 and cut off
/// at the deadline (500 ms here), long before the request is whole, while a good client gets
/// its echoes.
#[test]
fn trickled_handshakes_are_dropped_at_the_deadline() {
    for example in servers() {
        let server = Server::start(example, &["--handshake-timeout", "500"], None);
        let mut good = Good::connect(server.addr);
        let addr = server.addr;
        let tricklers: Vec<_> = (0..5)
            .map(|_| {
                thread::spawn(move || {
                    let mut s = tcp(addr);
                    let mut sent = 0;
                    for b in REQUEST {
                        if s.write_all(&[*b]).is_err() {
                            break;
                        }
                        sent += 1;
                        thread::sleep(Duration::from_millis(50));
                        // The server's answer ends the trickle.
                        s.set_nonblocking(true).unwrap();
                        let mut peek = [0u8; 1];
                        let answered = !matches!(s.peek(&mut peek), Err(e) if e.kind() == ErrorKind::WouldBlock);
                        s.set_nonblocking(false).unwrap();
                        if answered {
                            break;
                        }
                    }
                    let mut answer = Vec::new();
                    let _ = s.read_to_end(&mut answer);
                    (sent, String::from_utf8_lossy(&answer).into_owned())
                })
            })
            .collect();
        let echoes = good.echo_while(|| tricklers.iter().any(|t| !t.is_finished()));
        for t in tricklers {
            let (sent, answer) = t.join().unwrap();
            assert!(sent < REQUEST.len(), "{example}: the whole request went through");
            assert!(answer.starts_with("HTTP/1.1 408 Request Timeout\r\n"), "{example}: {answer:?}");
        }
        assert!(echoes > 1, "{example}");
        good.echo(u64::MAX);
    }
}

/// Under `ulimit -n 64` the server runs out of descriptors: a new client is not accepted while
/// every descriptor is taken, and is served as soon as some are freed. The accept loop pauses
/// instead of spinning: its log has at most a few lines, not one per attempt.
#[test]
fn the_accept_loop_survives_running_out_of_descriptors() {
    for example in servers() {
        let server = Server::start(example, &[], Some(64));
        let mut held = Vec::new();
        // Fill the table: clients that get their 101 are kept open; the first one left
        // waiting (its connection queued, not accepted) is the one to serve later.
        let waiting = (0..200)
            .find_map(|_| {
                let mut s = tcp(server.addr);
                s.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
                s.write_all(REQUEST).unwrap();
                match response_head(&mut s) {
                    Ok(head) if head.starts_with("HTTP/1.1 101 ") => held.push(s),
                    // Not accepted (yet): the one to serve later.
                    Err(true) => {
                        assert!(server.wait_for_log("accept failed"), "{example}: not accepted, and no accept failed");
                        return Some(s);
                    }
                    other => panic!("{example}: {other:?}"),
                }
                None
            })
            .unwrap_or_else(|| panic!("{example}: never ran out of descriptors"));
        // Let the accept loop meet the limit for a second: a loop without a pause would spend
        // it all on the CPU, and one that logs every failure would write hundreds of thousands
        // of lines.
        let cpu_before = server.cpu_ticks();
        thread::sleep(Duration::from_millis(1000));
        let cpu_while_full = server.cpu_ticks() - cpu_before;
        assert!(cpu_while_full < 25, "{example}: {cpu_while_full} ticks of CPU in a second out of descriptors");
        let lines_while_full = server.logged("accept failed");
        assert!((1..=3).contains(&lines_while_full), "{example}: {lines_while_full} lines while out of descriptors");

        drop(held);
        let mut waiting = waiting;
        waiting.set_read_timeout(Some(GUARD)).unwrap();
        let head = response_head(&mut waiting).expect("served once descriptors are free");
        assert!(head.starts_with("HTTP/1.1 101 "), "{example}: {head}");
        waiting.write_all(&frame(true, 0x1, b"back")).unwrap();
        assert_eq!(read_frame(&mut waiting), (0x81, b"back".to_vec()), "{example}");
        let mut good = Good::connect(server.addr);
        good.echo(1);
        assert!(server.logged("accept failed") <= 3, "{example}");
    }
}

/// One client floods empty continuation frames after an unfinished first fragment (with the
/// fragment cap off, so the flood never ends by itself) while another echoes 300 messages.
#[test]
fn a_continuation_flood_does_not_starve_another_client() {
    for example in servers() {
        let server = Server::start(example, &["--max-fragments", "0"], None);
        let mut flood = upgraded(server.addr);
        let (stop, batches) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let flooder = {
            let (stop, batches) = (Arc::clone(&stop), Arc::clone(&batches));
            thread::spawn(move || {
                flood.write_all(&frame(false, 0x1, b"x")).unwrap();
                let batch: Vec<u8> = (0..4096).flat_map(|_| frame(false, 0x0, b"")).collect();
                while !stop.load(Ordering::Relaxed) {
                    flood.write_all(&batch).expect("the flood is read, not refused");
                    batches.fetch_add(1, Ordering::Relaxed);
                }
                flood
            })
        };
        while batches.load(Ordering::Relaxed) < 4 {
            thread::sleep(Duration::from_millis(5));
        }
        let mut good = Good::connect(server.addr);
        for i in 0..300 {
            good.echo(i);
        }
        // Still flooding (a refused flood would have ended the thread with a failed write).
        assert!(!flooder.is_finished(), "{example}: the flood ended early");
        stop.store(true, Ordering::Relaxed);
        let _flood = flooder.join().unwrap();
    }
}

/// A message of exactly the cap's frames is echoed; one more frame closes with 1009; a good
/// client is unaffected.
#[test]
fn a_message_past_the_fragment_cap_closes_with_1009() {
    for example in servers() {
        let server = Server::start(example, &["--max-fragments", "1000"], None);
        let mut s = upgraded(server.addr);
        let message = |frames: usize| {
            let mut wire = frame(false, 0x1, b"a");
            for i in 1..frames {
                wire.extend(frame(i + 1 == frames, 0x0, b"a"));
            }
            wire
        };
        s.write_all(&message(1000)).unwrap();
        let (head, payload) = {
            let mut h = [0u8; 4];
            s.read_exact(&mut h).unwrap();
            assert_eq!(&h[..2], &[0x81, 126], "{example}: a 1000-byte text echo");
            let mut p = vec![0u8; u16::from_be_bytes([h[2], h[3]]) as usize];
            s.read_exact(&mut p).unwrap();
            (h[0], p)
        };
        assert_eq!((head, payload), (0x81, vec![b'a'; 1000]), "{example}");

        s.write_all(&message(1001)).unwrap();
        let (op, body) = read_frame(&mut s);
        assert_eq!(op, 0x88, "{example}: a close frame");
        assert_eq!(u16::from_be_bytes([body[0], body[1]]), 1009, "{example}: {}", String::from_utf8_lossy(&body[2..]));
        Good::connect(server.addr).echo(7);
    }
}

/// A client that sends 1 MiB messages and never reads their echoes is dropped once the
/// server's writes have made no progress for the write-stall time (500 ms here); a good
/// client keeps its echoes meanwhile.
#[test]
fn a_reader_that_stops_reading_is_dropped() {
    for example in servers() {
        let server = Server::start(example, &["--write-stall", "500"], None);
        let mut slow = upgraded(server.addr);
        let sender = thread::spawn(move || {
            let big = frame(true, 0x2, &vec![7u8; 1 << 20]);
            for _ in 0..256 {
                if slow.write_all(&big).is_err() {
                    return true; // the server hung up on us
                }
            }
            false
        });
        let mut good = Good::connect(server.addr);
        good.echo_while(|| !sender.is_finished());
        assert!(
            sender.join().unwrap(),
            "{example}: 256 MiB went out without the server hanging up: {:?}",
            server.log.lock().unwrap()
        );
        assert!(server.wait_for_log("the peer stopped reading"), "{example}: {:?}", server.log.lock().unwrap());
        good.echo(1);
    }
}

/// A client that never answers is pinged after the idle time (300 ms here), then dropped; a
/// client whose library answers pings stays.
#[test]
fn a_quiet_peer_is_pinged_then_dropped() {
    for example in servers() {
        let server = Server::start(example, &["--idle", "300"], None);
        let mut quiet = upgraded(server.addr);
        let mut answering = Good::connect(server.addr);
        answering.0.get_ref().set_read_timeout(Some(Duration::from_millis(50))).unwrap();

        let (op, _) = read_frame(&mut quiet);
        assert_eq!(op, 0x89, "{example}: a ping first");
        // Reading (which answers pings) until the quiet client is dropped.
        let quiet_reader = thread::spawn(move || {
            let mut rest = Vec::new();
            // The end of the stream or a reset: dropped. A timeout: the guard ran out.
            match quiet.read_to_end(&mut rest) {
                Ok(_) => true,
                Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            }
        });
        let deadline = Instant::now() + GUARD;
        while !quiet_reader.is_finished() && Instant::now() < deadline {
            match answering.0.read() {
                Ok(Message::Ping(_)) => {}
                Ok(other) => panic!("{other:?}"),
                Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
                Err(e) => panic!("{example}: the answering client was dropped: {e}"),
            }
        }
        assert!(quiet_reader.join().unwrap(), "{example}");
        assert!(server.wait_for_log("the peer went quiet"), "{example}");
        answering.0.get_ref().set_read_timeout(Some(GUARD)).unwrap();
        answering.echo(2);
    }
}
