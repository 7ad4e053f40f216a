//! Embedding the lowbit websockets component in wasmtime: compile it once, then give each
//! TCP connection its own `Store`, instance and pair of `wasi:io` streams.
//!
//! This crate is meant to be copied from. The whole recipe is:
//!
//! ```no_run
//! use lowbit_ws_host::{Host, Limits, accept_options};
//! # fn main() -> wasmtime::Result<()> {
//! let host = Host::from_file("target/wasm32-wasip2/release/lowbit_websockets_component.wasm")?;
//! let listener = std::net::TcpListener::bind("127.0.0.1:9001")?;
//! for tcp in listener.incoming() {
//!     let mut session = host.session()?; // a Store + instance for this connection
//!     let (conn, _accepted) = session.accept(tcp?, &accept_options(Limits::default(), true))??;
//!     let echoed = session.echo(conn)?;  // or session.read_message(conn) / write_message(...)
//!     println!("echoed {echoed:?} messages");
//! }
//! # Ok(()) }
//! ```
//!
//! What is where: [`tcp`] turns a `TcpStream` into the two stream resources; [`Host`] holds
//! the engine and the pre-linked component; [`Session`] is one connection's store with
//! typed calls into the component's exports; [`MemoryLimiter`] caps (and records) the
//! guest's linear memory. The component does every protocol step; the host only moves
//! bytes and calls exports.

pub mod tcp;

use std::net::TcpStream;
use std::path::Path;

use lowbit_websockets::tcp::{LINGER, linger};

use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Engine, ResourceLimiter, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The typed bindings of the `websockets` world in `wit/` (the guest builds from the same
/// files), with `wasi:io` resources mapped to wasmtime-wasi's.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "websockets",
        with: { "wasi:io": wasmtime_wasi::p2::bindings::sync::io },
    });
}

pub use bindings::exports::lowbit::websockets::handshake::{AcceptOptions, Accepted, ConnectOptions, Connected};
pub use bindings::exports::lowbit::websockets::types::{DeflateConfig, DeflateOptions, Error, Limits, Message, Opcode};

impl Default for Limits {
    /// Zeros: the component's defaults (1 MiB messages, 4 KiB frames).
    fn default() -> Self {
        Limits { max_read_limit: 0, max_chunk_size: 0 }
    }
}

/// The permessage-deflate defaults (level 6, threshold 1024, context takeover both ways);
/// the same values as the component's `deflate.default-options`.
pub fn default_deflate() -> DeflateOptions {
    DeflateOptions {
        server_no_context_takeover: false,
        client_no_context_takeover: false,
        server_max_window_bits: None,
        level: 6,
        threshold: 1024,
    }
}

/// Server options: `limits`, and permessage-deflate with the defaults when `deflate`.
pub fn accept_options(limits: Limits, deflate: bool) -> AcceptOptions {
    AcceptOptions { limits, deflate: deflate.then(default_deflate), protocols: Vec::new() }
}

/// Caps the guest's linear memory and remembers the largest size it reached.
#[derive(Debug, Clone, Copy)]
pub struct MemoryLimiter {
    /// Growth past this many bytes is refused (the guest's allocation then fails, which
    /// traps the instance; the host and other connections are unaffected).
    pub max_bytes: usize,
    /// The largest linear memory size granted so far, in bytes.
    pub peak_bytes: usize,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            return Ok(false);
        }
        self.peak_bytes = self.peak_bytes.max(desired);
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// A store's data: WASI state (only streams are used) and the memory limiter.
pub struct State {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: MemoryLimiter,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

/// The engine and the compiled, pre-linked component: build once, share across threads.
#[derive(Clone)]
pub struct Host {
    engine: Engine,
    pre: bindings::WebsocketsPre<State>,
    /// The memory cap each new session gets.
    pub max_memory: usize,
}

impl Host {
    /// Compiles the component at `path` (a `.wasm` built for wasm32-wasip2).
    pub fn from_file(path: impl AsRef<Path>) -> wasmtime::Result<Self> {
        let engine = Engine::default();
        let component = Component::from_file(&engine, path)?;
        Self::new(engine, &component)
    }

    /// Links `component` against wasmtime-wasi (sync) and checks it has the `websockets`
    /// world's exports.
    pub fn new(engine: Engine, component: &Component) -> wasmtime::Result<Self> {
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        let pre = bindings::WebsocketsPre::new(linker.instantiate_pre(component)?)?;
        Ok(Self { engine, pre, max_memory: 256 << 20 })
    }

    /// The engine, e.g. to compile more components.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A fresh store and instance: one per connection.
    pub fn session(&self) -> wasmtime::Result<Session> {
        let state = State {
            wasi: WasiCtx::builder().inherit_stderr().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter { max_bytes: self.max_memory, peak_bytes: 0 },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let ws = self.pre.instantiate(&mut store)?;
        Ok(Session { store, ws })
    }
}

/// One connection's store and instance, with typed calls into the exports.
///
/// Every call returns `wasmtime::Result<Result<T, Error>>`: the outer error is a trap (the
/// instance is dead; drop the session), the inner one the component's WebSocket `error`.
/// A `conn` is the `connection` resource the handshake returned; drop it with
/// [`Session::drop_connection`] (or drop the session) to close the transport.
pub struct Session {
    store: Store<State>,
    ws: bindings::Websockets,
}

impl Session {
    /// Hands `tcp` to the component, which reads the upgrade request, answers it and
    /// returns the server-role connection.
    pub fn accept(
        &mut self,
        tcp: TcpStream,
        options: &AcceptOptions,
    ) -> wasmtime::Result<Result<(ResourceAny, Accepted), Error>> {
        let (input, output) = self.streams(tcp)?;
        self.ws.lowbit_websockets_handshake().call_accept(&mut self.store, input, output, options)
    }

    /// Hands `tcp` to the component, which sends the upgrade request and checks the answer.
    pub fn connect(
        &mut self,
        tcp: TcpStream,
        options: &ConnectOptions,
    ) -> wasmtime::Result<Result<(ResourceAny, Connected), Error>> {
        let (input, output) = self.streams(tcp)?;
        self.ws.lowbit_websockets_handshake().call_connect(&mut self.store, input, output, options)
    }

    /// Wraps an already upgraded `tcp` as a connection (the `connection` constructor).
    pub fn wrap(
        &mut self,
        tcp: TcpStream,
        role: bindings::exports::lowbit::websockets::types::Role,
        limits: Limits,
    ) -> wasmtime::Result<ResourceAny> {
        let (input, output) = self.streams(tcp)?;
        self.ws.lowbit_websockets_framing().connection().call_constructor(&mut self.store, input, output, role, limits)
    }

    /// Runs the component's echo loop on `conn` until the peer closes; then drops `conn`.
    pub fn echo(&mut self, conn: ResourceAny) -> wasmtime::Result<Result<u64, Error>> {
        let r = self.ws.lowbit_websockets_echo().call_run(&mut self.store, conn);
        self.drop_connection(conn)?;
        r
    }

    /// `connection.read-message`.
    pub fn read_message(&mut self, conn: ResourceAny) -> wasmtime::Result<Result<Message, Error>> {
        self.ws.lowbit_websockets_framing().connection().call_read_message(&mut self.store, conn)
    }

    /// `connection.write-message`.
    pub fn write_message(
        &mut self,
        conn: ResourceAny,
        op: Opcode,
        payload: &[u8],
    ) -> wasmtime::Result<Result<(), Error>> {
        self.ws.lowbit_websockets_framing().connection().call_write_message(&mut self.store, conn, op, payload)
    }

    /// `connection.close-with-code`.
    pub fn close_with_code(
        &mut self,
        conn: ResourceAny,
        code: u16,
        reason: &str,
    ) -> wasmtime::Result<Result<(), Error>> {
        self.ws.lowbit_websockets_framing().connection().call_close_with_code(&mut self.store, conn, code, reason)
    }

    /// `types.close-code`: the close code an error sent, asked of the component.
    pub fn close_code(&mut self, e: &Error) -> wasmtime::Result<Option<u16>> {
        self.ws.lowbit_websockets_types().call_close_code(&mut self.store, e)
    }

    /// Drops the `connection` resource, which drops its streams and closes the transport.
    pub fn drop_connection(&mut self, conn: ResourceAny) -> wasmtime::Result<()> {
        conn.resource_drop(&mut self.store)
    }

    /// The exports, for calls this type has no shortcut for.
    pub fn exports(&mut self) -> (&bindings::Websockets, &mut Store<State>) {
        (&self.ws, &mut self.store)
    }

    /// The largest linear memory the guest has had, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.store.data().limiter.peak_bytes
    }

    fn streams(
        &mut self,
        tcp: TcpStream,
    ) -> wasmtime::Result<(
        wasmtime::component::Resource<wasmtime_wasi::p2::DynInputStream>,
        wasmtime::component::Resource<wasmtime_wasi::p2::DynOutputStream>,
    )> {
        let (input, output) = tcp::tcp_streams(tcp)?;
        let table = &mut self.store.data_mut().table;
        Ok((table.push(input)?, table.push(output)?))
    }
}

/// Serves one TCP connection the way `lowbit-ws-host serve` does: handshake, then echo until
/// the peer closes, all inside the component, then core's [`linger`] so that the last bytes
/// the guest wrote (a close frame, a 4xx answer) reach the client. A client that has not sent
/// its whole upgrade request within `handshake_timeout` fails the handshake (an I/O error)
/// rather than holding the thread forever. Returns the messages echoed.
pub fn serve_echo(
    host: &Host,
    tcp: TcpStream,
    options: &AcceptOptions,
    handshake_timeout: std::time::Duration,
) -> wasmtime::Result<Result<u64, Error>> {
    let after = tcp.try_clone()?;
    // The timeout is the socket's, so it holds for the guest's input stream too.
    after.set_read_timeout(Some(handshake_timeout))?;
    let result = host.session().and_then(|mut session| match session.accept(tcp, options)? {
        Ok((conn, _)) => {
            after.set_read_timeout(None)?;
            session.echo(conn)
        }
        Err(e) => Ok(Err(e)),
    });
    // The session (and the guest's streams with it) is gone: the write half is shut down.
    linger(&after, LINGER);
    result
}
