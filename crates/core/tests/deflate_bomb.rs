//! A deflate bomb against an in-process server over loopback: ~1 MiB of DEFLATE data that
//! inflates to more than 1 GiB, sent as one compressed message to a server whose
//! `max_read_limit` is 16 MiB, must end in close 1009 with the process's peak heap a small
//! multiple of the limit (measured with a counting global allocator), and the server must go
//! on serving. Alone in its binary so the allocator sees nothing else.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Read;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use lowbit_websockets::handshake::ClientOptions;
use lowbit_websockets::{AcceptOptions, Config, ConnectOptions, DeflateOptions, Error, OpCode, READ_LIMIT_LARGE, Role};
use miniz_oxide::deflate::core::{CompressorOxide, create_comp_flags_from_zip_params};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZFlush};

/// Tracks the bytes currently allocated and the high-water mark since the last reset.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            // Counted as if old and new lived side by side for a moment, as a moving realloc does.
            grew(new_size);
            CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const MIB: usize = 1 << 20;
const GUARD: Duration = Duration::from_secs(60);

/// Raw DEFLATE of `chunks` MiB of zeros: the first MiB, then one block sequence repeated. Each
/// repetition is byte-aligned (it ends with a sync flush) and refers only to the zeros just
/// before it, so any number of copies is a valid stream. Returns the data, sync tail stripped.
fn bomb(chunks: usize) -> Vec<u8> {
    let mut c = Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(9, -15, 0)));
    let zeros = vec![0u8; MIB];
    let flush = |c: &mut CompressorOxide| {
        let mut out = vec![0u8; 64 * 1024];
        let r = miniz_oxide::deflate::stream::deflate(c, &zeros, &mut out, MZFlush::Sync);
        assert!(r.status.is_ok() && r.bytes_consumed == MIB && r.bytes_written < out.len());
        out.truncate(r.bytes_written);
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out
    };
    let first = flush(&mut c);
    let _ = flush(&mut c); // the matcher settles after the first copy
    let repeat = flush(&mut c);
    let mut data = first;
    for _ in 1..chunks {
        data.extend_from_slice(&repeat);
    }
    data.truncate(data.len() - 4);
    data
}

/// Inflates `data` (sync tail restored) through a small buffer and counts the output.
fn inflated_size(data: &[u8]) -> u64 {
    let mut state = InflateState::new_boxed(DataFormat::Raw);
    let mut out = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    for mut input in [data, &[0, 0, 0xff, 0xff][..]] {
        loop {
            let r = miniz_oxide::inflate::stream::inflate(&mut state, input, &mut out, MZFlush::None);
            assert!(out[..r.bytes_written].iter().all(|&b| b == 0));
            total += r.bytes_written as u64;
            input = &input[r.bytes_consumed..];
            if input.is_empty() && r.bytes_written < out.len() {
                break;
            }
            assert!(r.status.is_ok(), "{:?}", r.status);
        }
    }
    total
}

/// The server: one thread per connection, each reporting how its connection ended.
fn serve(listener: TcpListener, connections: usize, report: mpsc::Sender<Result<usize, Error>>) {
    let opts = AcceptOptions {
        config: Config::new(Role::Server).max_read_limit(READ_LIMIT_LARGE),
        deflate: Some(DeflateOptions::default()),
        ..AcceptOptions::default()
    };
    for stream in listener.incoming().take(connections) {
        let (stream, opts, report) = (stream.unwrap(), opts.clone(), report.clone());
        thread::spawn(move || {
            stream.set_read_timeout(Some(GUARD)).unwrap();
            let (mut conn, accepted) = lowbit_websockets::accept(stream, &opts).unwrap();
            assert!(accepted.extensions.is_some());
            let mut buf = Vec::new();
            let mut echoed = 0;
            let result = loop {
                match conn.read_message(&mut buf) {
                    Ok((OpCode::Close, _)) => break Ok(echoed),
                    Ok((op, payload)) => {
                        conn.write_message(op, payload).unwrap();
                        echoed += 1;
                    }
                    Err(e) => break Err(e),
                }
            };
            drop(buf);
            // Let the close frame reach the client before the socket goes: FIN, then drain.
            let stream = conn.into_inner();
            let _ = stream.shutdown(Shutdown::Write);
            let mut sink = [0u8; 4096];
            while matches!((&stream).read(&mut sink), Ok(n) if n > 0) {}
            report.send(result).unwrap();
        });
    }
}

fn client(addr: std::net::SocketAddr, max_chunk: usize) -> lowbit_websockets::Conn<TcpStream> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(GUARD)).unwrap();
    let opts = ConnectOptions {
        request: ClientOptions::new(addr.to_string()),
        config: Config::new(Role::Client).max_chunk_size(max_chunk),
        deflate: Some(DeflateOptions::default()),
    };
    let (conn, connected) = lowbit_websockets::connect(stream, &opts).unwrap();
    assert_eq!(connected.extensions.as_deref(), Some("permessage-deflate"));
    conn
}

#[test]
fn deflate_bomb_stops_at_the_limit_in_bounded_memory_and_the_server_keeps_serving() {
    const CHUNKS: usize = 1100; // 1100 MiB > 1 GiB
    let data = bomb(CHUNKS);
    assert!(data.len() < 2 * MIB, "the bomb is {} bytes", data.len());
    assert_eq!(inflated_size(&data), (CHUNKS * MIB) as u64, "the bomb inflates to more than 1 GiB");
    eprintln!("bomb: {} bytes of DEFLATE -> {} MiB", data.len(), CHUNKS);

    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (report, reports) = mpsc::channel();
    let server = thread::spawn(move || serve(listener, 3, report));

    // As one frame, then as 4 KiB fragments: either way one compressed message.
    for max_chunk in [4 * MIB, 4096] {
        let mut conn = client(addr, max_chunk);
        let base = CURRENT.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        conn.write_frame(true, 0x40, OpCode::Binary, &data).unwrap();
        let mut buf = Vec::new();
        let (op, body) = conn.read_message(&mut buf).unwrap();
        assert_eq!(op, OpCode::Close);
        assert_eq!(
            u16::from_be_bytes([body[0], body[1]]),
            1009,
            "close on the wire: {:?}",
            String::from_utf8_lossy(body)
        );
        drop(conn);
        match reports.recv_timeout(GUARD).unwrap() {
            Err(Error::MessageTooBig { limit }) => assert_eq!(limit, READ_LIMIT_LARGE as u64),
            other => panic!("the server should fail with MessageTooBig, got {other:?}"),
        }
        let peak = PEAK.load(Ordering::Relaxed) - base;
        eprintln!(
            "max_chunk {max_chunk}: peak heap growth {:.1} MiB for a {} MiB limit",
            peak as f64 / MIB as f64,
            READ_LIMIT_LARGE / MIB
        );
        assert!(
            peak <= 3 * READ_LIMIT_LARGE,
            "peak heap grew by {peak} bytes, more than 3 x max_read_limit ({READ_LIMIT_LARGE})"
        );
    }

    // The same server still serves: a compressed echo on a fresh connection.
    let mut conn = client(addr, 4096);
    let msg: Vec<u8> = "{\"after\":\"the bomb\"},".repeat(5000).into_bytes();
    conn.write_message(OpCode::Text, &msg).unwrap();
    let mut buf = Vec::new();
    let (op, rsv, payload) = conn.read_message_ext(&mut buf).unwrap();
    assert_eq!((op, rsv), (OpCode::Text, 0x40), "the echo comes back compressed");
    assert!(payload == &msg[..]);
    conn.close().unwrap();
    drop(conn);
    assert_eq!(reports.recv_timeout(GUARD).unwrap().unwrap(), 1);
    server.join().unwrap();
}
