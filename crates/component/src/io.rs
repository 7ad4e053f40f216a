//! `std::io::Read`/`Write` over `wasi:io` streams, so core's blocking `Conn` runs unchanged.
//!
//! Reads ask for as many bytes as the caller's buffer holds (`blocking-read`), and the bytes
//! land directly in that buffer: while a read is in flight, the component's `cabi_realloc`
//! hands the host the caller's buffer instead of allocating (see [`landing`]). So a read is
//! one host call, no copy and no allocation.
//!
//! Writes of up to 4096 bytes (every control frame and small message) are one
//! `blocking-write-and-flush`; longer ones, and every piece of a vectored write (a large
//! frame's header and payload), go out in `check-write`-sized pieces, waiting on the
//! stream's pollable when it is full, and are flushed once by `flush`.

use std::io::{self, Read, Write};

use crate::bindings::wasi::io::streams::{InputStream, OutputStream, StreamError};

/// The most `blocking-write-and-flush` may take in one call (wasi:io 0.2).
const SMALL_WRITE: usize = 4096;

/// The read half: borrowed, so `stream-message` can read from a stream it does not own.
pub struct Reader<'a>(pub &'a InputStream);

impl Read for Reader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let want = buf.len();
        let got = landing::with(buf, || self.0.blocking_read(want as u64));
        match got {
            Ok(bytes) => Ok(landing::settle(bytes, buf)),
            Err(StreamError::Closed) => Ok(0),
            Err(StreamError::LastOperationFailed(e)) => Err(io::Error::other(e.to_debug_string())),
        }
    }
}

/// A connection's transport: both stream resources, owned.
pub struct Streams {
    /// Where frames come from.
    pub input: InputStream,
    /// Where frames go.
    pub output: OutputStream,
    /// Bytes were written since the last flush.
    dirty: bool,
}

impl Streams {
    /// Takes ownership of the two halves.
    pub fn new(input: InputStream, output: OutputStream) -> Self {
        Self { input, output, dirty: false }
    }
}

fn write_error(e: StreamError) -> io::Error {
    match e {
        StreamError::Closed => io::ErrorKind::BrokenPipe.into(),
        StreamError::LastOperationFailed(e) => io::Error::other(e.to_debug_string()),
    }
}

impl Read for Streams {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Reader(&self.input).read(buf)
    }
}

impl Streams {
    /// Hands the output stream as much of `buf` as `check-write` permits (waiting for a
    /// permit when there is none), to be sent by the next `flush`.
    fn write_permitted(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            let permit = self.output.check_write().map_err(write_error)?;
            if permit == 0 {
                self.output.subscribe().block();
                continue;
            }
            let n = buf.len().min(usize::try_from(permit).unwrap_or(usize::MAX));
            self.output.write(&buf[..n]).map_err(write_error)?;
            self.dirty = true;
            return Ok(n);
        }
    }
}

impl Write for Streams {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() <= SMALL_WRITE && !self.dirty {
            // One host call: the common case of a small frame written and flushed at once.
            self.output.blocking_write_and_flush(buf).map_err(write_error)?;
            return Ok(buf.len());
        }
        self.write_permitted(buf)
    }

    /// Core writes a large frame as its header and its payload, then flushes: both go
    /// through `write` and leave together at the `flush` (one `writev` on a host that sends
    /// at flush), not as a small write and flush for the header and another for the payload.
    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        let mut written = 0;
        for buf in bufs.iter().filter(|b| !b.is_empty()) {
            let n = self.write_permitted(buf)?;
            written += n;
            if n < buf.len() {
                break;
            }
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        if std::mem::take(&mut self.dirty) {
            self.output.blocking_flush().map_err(write_error)?;
        }
        Ok(())
    }
}

/// Zero-copy reads: lend the caller's buffer to the canonical ABI for one import call.
///
/// When the host returns a `list<u8>` it asks the component's `cabi_realloc` for memory.
/// While a buffer is armed, a fresh one-byte-aligned request that fits gets that buffer, so
/// the bytes arrive in place; anything else (argument lists of exported functions, strings)
/// goes to the global allocator as usual. The component is single-threaded, so a
/// `static` cell is enough, and it is disarmed before the import returns.
pub mod landing {
    use std::alloc::{self, Layout};
    use std::cell::Cell;

    struct Armed(Cell<(*mut u8, usize)>);
    // SAFETY: wasm32-wasip2 components run on one thread; nothing else can touch the cell.
    unsafe impl Sync for Armed {}

    static ARMED: Armed = Armed(Cell::new((std::ptr::null_mut(), 0)));

    /// Runs `f` (one import call returning a `list<u8>`) with `buf` lent to `cabi_realloc`.
    pub fn with<R>(buf: &mut [u8], f: impl FnOnce() -> R) -> R {
        ARMED.0.set((buf.as_mut_ptr(), buf.len()));
        let r = f();
        ARMED.0.set((std::ptr::null_mut(), 0));
        r
    }

    /// Turns the list the import returned into a byte count in `buf`: when it landed in
    /// `buf`, forgets the `Vec` (it does not own that memory); otherwise copies (a host that
    /// returned more than asked for is cut to `buf`'s length) and frees it.
    pub fn settle(bytes: Vec<u8>, buf: &mut [u8]) -> usize {
        if bytes.as_ptr() == buf.as_ptr() {
            let n = bytes.len();
            std::mem::forget(bytes);
            n
        } else {
            let n = bytes.len().min(buf.len());
            buf[..n].copy_from_slice(&bytes[..n]);
            n
        }
    }

    /// The canonical ABI allocator (wit-bindgen's `realloc` feature is off so this one is
    /// the component's `cabi_realloc`).
    ///
    /// # Safety
    ///
    /// Called by the host per the component model's `realloc` contract: `old_ptr`/`old_len`
    /// describe an allocation it got from here (or null/0), `align` is a power of two.
    #[unsafe(no_mangle)]
    pub unsafe extern "C" fn cabi_realloc(old_ptr: *mut u8, old_len: usize, align: usize, new_len: usize) -> *mut u8 {
        let (lent, cap) = ARMED.0.get();
        if old_ptr.is_null() && align == 1 && !lent.is_null() && new_len <= cap {
            ARMED.0.set((std::ptr::null_mut(), 0));
            return lent;
        }
        let layout;
        let ptr = if old_len == 0 {
            if new_len == 0 {
                return align as *mut u8;
            }
            layout = Layout::from_size_align(new_len, align).unwrap_or_else(|_| std::process::abort());
            // SAFETY: `layout` has a non-zero size.
            unsafe { alloc::alloc(layout) }
        } else {
            // SAFETY: per the contract above, `old_ptr` came from here with this layout.
            layout = unsafe { Layout::from_size_align_unchecked(old_len, align) };
            unsafe { alloc::realloc(old_ptr, layout, new_len) }
        };
        if ptr.is_null() {
            alloc::handle_alloc_error(layout);
        }
        ptr
    }
}
