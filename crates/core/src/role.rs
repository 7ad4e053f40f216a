//! Which end of the connection this is, and the limits every face shares.

/// The end of the connection this endpoint plays. It decides masking: a client masks every
/// frame it sends and rejects masked frames; a server does the reverse (RFC 6455 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Accepted the upgrade: receives masked frames, sends unmasked ones.
    Server,
    /// Sent the upgrade: sends masked frames with fresh keys, receives unmasked ones.
    Client,
}

/// 64 KiB: light updates, single events, command signals.
pub const READ_LIMIT_SMALL: usize = 64 * 1024;
/// 1 MiB: typical JSON payloads, state syncs, documents. The default `max_read_limit`.
pub const READ_LIMIT_STANDARD: usize = 1024 * 1024;
/// 16 MiB: uploads, attachments, dense arrays.
pub const READ_LIMIT_LARGE: usize = 16 * 1024 * 1024;

/// 4 KiB: the smallest per-connection footprint. The default `max_chunk_size`.
pub const CHUNK_SIZE_LOW_MEMORY: usize = 4096;
/// 8 KiB: a middle ground for typical web traffic.
pub const CHUNK_SIZE_BALANCED: usize = 8192;
/// 32 KiB: throughput for large transfers; matches DEFLATE's window.
pub const CHUNK_SIZE_STREAMING: usize = 32768;

/// 131,072: the default `max_fragments`, as `ws` 8.21's servers have it. Autobahn's
/// fragmentation cases send up to 65,536 frames per message (4 MiB in 64-byte fragments), and
/// an honest sender splits at its chunk size, so a message past this many frames is a flood.
pub const MAX_FRAGMENTS: usize = 128 * 1024;

/// A connection's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Which end this is.
    pub role: Role,
    /// The largest message accepted, in bytes, after any inflation. Larger messages fail with
    /// 1009 before their memory is spent. Default [`READ_LIMIT_STANDARD`].
    pub max_read_limit: usize,
    /// The largest frame payload written; longer messages are fragmented. Also the largest the
    /// read buffer grows (at least 4 KiB); it starts at 1 KiB and grows only while reads fill
    /// it. Default [`CHUNK_SIZE_LOW_MEMORY`].
    pub max_chunk_size: usize,
    /// The most frames one message may arrive in (its first frame and its continuations,
    /// empty ones included). One more fails with [`Error::TooManyFragments`] and closes with
    /// 1009: a message the peer cuts into ever more, ever smaller (or empty) frames costs work
    /// per frame and can stay unfinished forever within `max_read_limit`. `usize::MAX` turns
    /// the cap off. Default [`MAX_FRAGMENTS`].
    ///
    /// [`Error::TooManyFragments`]: crate::Error::TooManyFragments
    pub max_fragments: usize,
}

impl Config {
    /// The defaults for `role`.
    pub const fn new(role: Role) -> Self {
        Self {
            role,
            max_read_limit: READ_LIMIT_STANDARD,
            max_chunk_size: CHUNK_SIZE_LOW_MEMORY,
            max_fragments: MAX_FRAGMENTS,
        }
    }

    /// A configuration for `role` with the Go API's two limits (0 = the default for each), as
    /// `Conn::new(stream, max_read_limit, max_chunk_size)` takes them.
    pub const fn with_limits(role: Role, max_read_limit: usize, max_chunk_size: usize) -> Self {
        Self::new(role).max_read_limit(max_read_limit).max_chunk_size(max_chunk_size)
    }

    /// Sets `max_read_limit`; 0 keeps the default, as in the seed API.
    pub const fn max_read_limit(mut self, limit: usize) -> Self {
        if limit != 0 {
            self.max_read_limit = limit;
        }
        self
    }

    /// Sets `max_chunk_size`; 0 keeps the default, as in the seed API.
    pub const fn max_chunk_size(mut self, size: usize) -> Self {
        if size != 0 {
            self.max_chunk_size = size;
        }
        self
    }

    /// Sets `max_fragments`; 0 keeps the default, as the other setters do (`usize::MAX` turns
    /// the cap off).
    pub const fn max_fragments(mut self, frames: usize) -> Self {
        if frames != 0 {
            self.max_fragments = frames;
        }
        self
    }

    /// The largest read buffer this config implies: a frame of `max_chunk_size` bytes with its
    /// longest header fits whole, so a peer writing frames of our size has each one decoded in
    /// place (without the header, a 64 KiB frame would always go through the message buffer).
    pub(crate) fn read_buffer_size(&self) -> usize {
        self.max_chunk_size.clamp(4096, 1 << 20) + crate::frame::MAX_HEADER_LEN
    }
}
