//! The shared conformance list (`conformance/cases.rs`) run three times: against the native
//! `Conn` over an in-memory stream, against the async `AsyncConn` over real loopback TCP, and
//! against the component through the host over real loopback TCP. All must report the same
//! error kind and close code; the component must never trap, and a deflate bomb must leave its
//! memory bounded by the read limit.

use std::io::{self, Cursor, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use host_tests::*;
use lowbit_websockets::{Config, Conn, DeflateConfig, OpCode, Role};
use lowbit_ws_host::{Limits, accept_options};

#[allow(dead_code)]
mod conformance {
    include!("../conformance/cases.rs");
}
use conformance::{Case, Expect, cases};

/// What one face did with a case.
#[derive(Debug, PartialEq)]
struct Seen {
    /// Messages echoed before the end.
    echoed: usize,
    /// `None` for a close handshake, else the core error variant name.
    kind: Option<String>,
    /// The close code the error maps to (`close_code()` / `types.close-code`).
    code: Option<u16>,
}

struct Duplex {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn native(case: &Case) -> (Seen, Option<u16>) {
    let config = Config::new(Role::Server).max_read_limit(case.max_read_limit);
    let mut conn = Conn::with_config(Duplex { input: Cursor::new(case.bytes.clone()), output: Vec::new() }, config);
    if case.deflate {
        conn.set_deflate(Some(&DeflateConfig::default()), None);
    }
    let mut buf = Vec::new();
    let mut echoed = 0;
    let seen = loop {
        match conn.read_message(&mut buf) {
            Ok((OpCode::Close, _)) => break Seen { echoed, kind: None, code: None },
            Ok((op, payload)) => {
                conn.write_message(op, payload).expect("in-memory echo");
                echoed += 1;
            }
            Err(e) => break Seen { echoed, kind: Some(core_kind(&e)), code: e.close_code().map(|c| c.0) },
        }
    };
    let wire = close_code_of(&parse_server_frames(&conn.get_ref().output));
    (seen, wire)
}

fn component(case: &Case) -> (Seen, Option<u16>, usize) {
    let limits = Limits { max_read_limit: case.max_read_limit as u64, max_chunk_size: 0 };
    let (addr, server) = component_server(accept_options(limits, case.deflate));
    let mut tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    let (head, mut got) = raw_client_handshake(&mut tcp, case.deflate).expect("handshake");
    assert!(head.starts_with("HTTP/1.1 101"), "{}: {head}", case.name);
    assert_eq!(head.contains("permessage-deflate"), case.deflate, "{}: {head}", case.name);
    let mut writer = tcp.try_clone().expect("clone");
    let bytes = case.bytes.clone();
    let send = std::thread::spawn(move || {
        // The server may fail and close before taking everything: a write error is expected.
        let _ = writer.write_all(&bytes);
        let _ = writer.shutdown(Shutdown::Write);
    });
    // An RST (the server closed with our bytes unread) may cut the tail; codes are compared
    // on what did arrive.
    let _ = tcp.read_to_end(&mut got);
    send.join().expect("writer");
    let outcome = server.join().expect("server thread").unwrap_or_else(|trap| panic!("{}: {trap}", case.name));
    let seen = match outcome.result {
        Ok(n) => Seen { echoed: n as usize, kind: None, code: None },
        Err(e) => Seen { echoed: 0, kind: Some(wit_kind(&e).to_string()), code: outcome.close_code },
    };
    (seen, close_code_of(&parse_server_frames(&got)), outcome.peak_memory)
}

#[test]
fn native_and_component_answer_every_case_alike() {
    let mut failures = Vec::new();
    for case in cases() {
        let (native, native_wire) = native(&case);
        let (comp, comp_wire, peak) = component(&case);
        // The echo count is not reported on errors by the component; compare the rest.
        let same = native.kind == comp.kind && native.code == comp.code;
        let expected = match case.expect {
            Expect::Echo { messages, close } => {
                native.kind.is_none() && native.echoed == messages && native_wire == Some(close)
            }
            Expect::Fail { kind, code } => native.kind.as_deref() == Some(kind) && native.code == code,
            Expect::FailAnyOf { codes } => native.code.is_some_and(|c| codes.contains(&c)),
        };
        let wire_ok = comp_wire.is_none() || comp_wire == native_wire;
        eprintln!(
            "{:32} native {:?} wire {:?} | component {:?} wire {:?} | guest memory {} KiB",
            case.name,
            native,
            native_wire,
            comp,
            comp_wire,
            peak >> 10
        );
        if !(same && expected && wire_ok) {
            failures.push(case.name);
        }
        if case.name == "deflate_bomb" {
            // 256 MiB of zeros against a 1 MiB limit: the guest stays within a few limits.
            assert!(peak < 8 << 20, "deflate bomb grew guest memory to {peak} bytes");
        }
    }
    assert!(failures.is_empty(), "cases that differ or miss their expectation: {failures:?}");
}

/// The async face on one case: an `AsyncConn` server over loopback TCP, fed the case's bytes by
/// a client that then half-closes; returns what it saw and the close code that reached the wire.
fn async_face(case: &Case) -> (Seen, Option<u16>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let mut client = tokio::net::TcpStream::connect(listener.local_addr().expect("addr")).await.expect("connect");
        let (server, _) = listener.accept().await.expect("accept");
        let config = Config::new(Role::Server).max_read_limit(case.max_read_limit);
        let mut conn = lowbit_websockets::AsyncConn::with_config(server, config);
        if case.deflate {
            conn.set_deflate(Some(&DeflateConfig::default()), None);
        }
        let bytes = case.bytes.clone();
        let peer = tokio::spawn(async move {
            // The server may fail and close before taking everything: a write error is expected.
            let (mut rd, mut wr) = client.split();
            let (_, got) = tokio::join!(
                async {
                    let _ = wr.write_all(&bytes).await;
                    let _ = wr.shutdown().await;
                },
                async {
                    let mut got = Vec::new();
                    let _ = rd.read_to_end(&mut got).await;
                    got
                }
            );
            got
        });
        let mut buf = Vec::new();
        let mut echoed = 0;
        let seen = loop {
            match conn.read_message(&mut buf).await {
                Ok((OpCode::Close, _)) => break Seen { echoed, kind: None, code: None },
                Ok((op, payload)) => {
                    conn.write_message(op, payload).await.expect("echo");
                    echoed += 1;
                }
                Err(e) => break Seen { echoed, kind: Some(core_kind(&e)), code: e.close_code().map(|c| c.0) },
            }
        };
        drop(conn);
        let got = peer.await.expect("peer");
        (seen, close_code_of(&parse_server_frames(&got)))
    })
}

#[test]
fn async_face_answers_every_case_as_the_blocking_one() {
    let mut failures = Vec::new();
    for case in cases() {
        let blocking = native(&case);
        let async_ = async_face(&case);
        eprintln!("{:32} blocking {:?} | async {:?}", case.name, blocking, async_);
        if blocking != async_ {
            failures.push(case.name);
        }
    }
    assert!(failures.is_empty(), "cases where the async face differs: {failures:?}");
}

#[test]
fn host_survives_a_deflate_bomb_and_serves_the_next_connection() {
    let case = cases().into_iter().find(|c| c.name == "deflate_bomb").expect("case");
    let (seen, _, _) = component(&case);
    assert_eq!(seen.code, Some(1009));
    let ok = cases().into_iter().find(|c| c.name == "echo_text_then_close").expect("case");
    let (seen, wire, _) = component(&ok);
    assert_eq!((seen.kind, wire), (None, Some(1000)));
}
