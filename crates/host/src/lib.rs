//! Embedding the lowbit websockets component in wasmtime: compile it once, then give each
//! connection its own `Store`, instance and pair of `wasi:io` streams.
//!
//! The host runs on wasmtime's async support: every call into the guest is a fiber, and a
//! guest blocked in a `wasi:io` read or write suspends it, so one tokio thread serves many
//! connections ([`AsyncSession`], [`serve`]). A thread-per-connection host uses the same
//! engine through [`Session`], whose calls block the calling thread.
//!
//! This crate is meant to be copied from: `examples/plugin.rs` (blocking) and
//! `examples/plugin-async.rs` (tokio) are the whole recipe.
//!
//! What is where: [`tcp`] turns a `std` `TcpStream` into two blocking stream resources and
//! [`tokio_tcp`] a tokio one into two that suspend the guest; [`Host`] holds the engine and
//! the pre-linked component; [`AsyncSession`] / [`Session`] are one connection's store with
//! typed calls into the component's exports; [`MemoryLimiter`] caps (and records) the
//! guest's linear memory; [`serve`] is `lowbit-ws-host serve`'s accept loop and connection
//! task. The component does every protocol step; the host only moves bytes and calls exports.
//!
//! Cost per connection: one `Store` (the WASI context and resource table), one instance
//! with its linear memory (capped by [`Host::max_memory`]) and one fiber stack of
//! [`FIBER_STACK`] bytes of address space, of which only the touched pages are resident.
//! `BENCHMARKS.md` gives the measured resident size per idle connection.

pub mod serve;
pub mod tcp;
pub mod tokio_tcp;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::{Config, Engine, ResourceLimiter, Store};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// The typed bindings of the `websockets` world in `wit/` (the guest builds from the same
/// files), with `wasi:io` resources mapped to wasmtime-wasi's. Exports are `async`: a call
/// runs the guest on a fiber that suspends while its streams wait.
pub mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "websockets",
        exports: { default: async },
        with: { "wasi:io": wasmtime_wasi::p2::bindings::io },
    });
}

pub use bindings::exports::lowbit::websockets::handshake::{AcceptOptions, Accepted, ConnectOptions, Connected};
pub use bindings::exports::lowbit::websockets::types::{
    DeflateConfig, DeflateOptions, Error, Limits, Message, Opcode, Role,
};

/// Runs `future` to completion on the calling thread (inside the current tokio runtime's
/// context if there is one, else wasmtime-wasi's): how [`Session`] makes async calls blocking.
/// Not for use on a tokio worker thread.
pub fn block_on<F: Future>(future: F) -> F::Output {
    wasmtime_wasi::runtime::in_tokio(future)
}

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

/// The fiber stack each call into a guest runs on (address space; only touched pages are
/// resident). The guest's own shadow stack lives in its linear memory, so this holds only
/// wasm frames and the host functions the guest calls.
pub const FIBER_STACK: usize = 512 << 10;

/// How often the epoch advances. A guest that computes without doing I/O yields its
/// thread at the next epoch, so it cannot hold the other connections up longer than this.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Something that becomes a guest's pair of `wasi:io` streams: a blocking `std` TCP
/// stream ([`tcp`]) or a tokio one ([`tokio_tcp`]).
pub trait Transport {
    /// The input and output stream; dropping both closes the transport.
    fn into_streams(self) -> std::io::Result<(DynInputStream, DynOutputStream)>;
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
    /// The engine configuration the host needs: epoch interruption, so that a guest that
    /// loops without I/O yields (see [`EPOCH_TICK`]), and a fiber stack of [`FIBER_STACK`].
    /// Pass it to [`Host::new`] with an engine built from it, after adding settings of
    /// your own.
    pub fn config() -> Config {
        let mut config = Config::new();
        config.epoch_interruption(true).async_stack_size(FIBER_STACK).max_wasm_stack(FIBER_STACK / 2);
        config
    }

    /// Compiles the component at `path` (a `.wasm` built for wasm32-wasip2).
    pub fn from_file(path: impl AsRef<Path>) -> wasmtime::Result<Self> {
        let engine = Engine::new(&Self::config())?;
        let component = Component::from_file(&engine, path)?;
        Self::new(engine, &component)
    }

    /// Links `component` against wasmtime-wasi and checks it has the `websockets` world's
    /// exports. `engine` must come from [`Host::config`] (epoch interruption on); a thread
    /// advances its epoch every [`EPOCH_TICK`] while the engine lives.
    pub fn new(engine: Engine, component: &Component) -> wasmtime::Result<Self> {
        let mut linker = Linker::<State>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let pre = bindings::WebsocketsPre::new(linker.instantiate_pre(component)?)?;
        tick_epochs(&engine);
        Ok(Self { engine, pre, max_memory: 256 << 20 })
    }

    /// The engine, e.g. to compile more components.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// A fresh store and instance for one connection, to drive from async code.
    pub async fn session_async(&self) -> wasmtime::Result<AsyncSession> {
        let state = State {
            wasi: WasiCtx::builder().inherit_stderr().build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter { max_bytes: self.max_memory, peak_bytes: 0 },
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // At each epoch tick, a running guest yields to the executor and carries on later.
        store.epoch_deadline_async_yield_and_update(1);
        let ws = self.pre.instantiate_async(&mut store).await?;
        Ok(AsyncSession { store, ws })
    }

    /// A fresh store and instance for one connection, whose calls block the calling thread.
    pub fn session(&self) -> wasmtime::Result<Session> {
        block_on(self.session_async()).map(Session)
    }
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] on a thread of its own, until the engine
/// is dropped.
fn tick_epochs(engine: &Engine) {
    let weak = engine.weak();
    std::thread::spawn(move || {
        while let Some(engine) = weak.upgrade() {
            engine.increment_epoch();
            drop(engine);
            std::thread::sleep(EPOCH_TICK);
        }
    });
}

/// The `wasi:io` stream resources handed to a guest.
type Streams = (
    wasmtime::component::Resource<DynInputStream>,
    wasmtime::component::Resource<DynOutputStream>,
);

/// One connection's store and instance, with typed async calls into the exports.
///
/// Every call returns `wasmtime::Result<Result<T, Error>>`: the outer error is a trap (the
/// instance is dead; drop the session), the inner one the component's WebSocket `error`.
/// A `conn` is the `connection` resource the handshake returned; drop it with
/// [`AsyncSession::drop_connection`] (or drop the session) to close the transport.
/// Dropping a call's future part-way (a timeout) leaves the instance unusable: drop the
/// session too.
pub struct AsyncSession {
    store: Store<State>,
    ws: bindings::Websockets,
}

impl AsyncSession {
    /// Hands `transport` to the component, which reads the upgrade request, answers it and
    /// returns the server-role connection.
    pub async fn accept(
        &mut self,
        transport: impl Transport,
        options: &AcceptOptions,
    ) -> wasmtime::Result<Result<(ResourceAny, Accepted), Error>> {
        let (input, output) = self.streams(transport)?;
        self.ws.lowbit_websockets_handshake().call_accept(&mut self.store, input, output, options).await
    }

    /// Hands `transport` to the component, which sends the upgrade request and checks the
    /// answer.
    pub async fn connect(
        &mut self,
        transport: impl Transport,
        options: &ConnectOptions,
    ) -> wasmtime::Result<Result<(ResourceAny, Connected), Error>> {
        let (input, output) = self.streams(transport)?;
        self.ws.lowbit_websockets_handshake().call_connect(&mut self.store, input, output, options).await
    }

    /// Wraps an already upgraded `transport` as a connection (the `connection` constructor).
    pub async fn wrap(&mut self, transport: impl Transport, role: Role, limits: Limits) -> wasmtime::Result<ResourceAny> {
        let (input, output) = self.streams(transport)?;
        let framing = self.ws.lowbit_websockets_framing();
        framing.connection().call_constructor(&mut self.store, input, output, role, limits).await
    }

    /// Runs the component's echo loop on `conn` until the peer closes; then drops `conn`
    /// (unless the guest trapped: then the instance is dead and the trap is returned).
    pub async fn echo(&mut self, conn: ResourceAny) -> wasmtime::Result<Result<u64, Error>> {
        let r = self.ws.lowbit_websockets_echo().call_run(&mut self.store, conn).await?;
        self.drop_connection(conn).await?;
        Ok(r)
    }

    /// `connection.read-message`.
    pub async fn read_message(&mut self, conn: ResourceAny) -> wasmtime::Result<Result<Message, Error>> {
        self.ws.lowbit_websockets_framing().connection().call_read_message(&mut self.store, conn).await
    }

    /// `connection.write-message`.
    pub async fn write_message(
        &mut self,
        conn: ResourceAny,
        op: Opcode,
        payload: &[u8],
    ) -> wasmtime::Result<Result<(), Error>> {
        let framing = self.ws.lowbit_websockets_framing();
        framing.connection().call_write_message(&mut self.store, conn, op, payload).await
    }

    /// `connection.close-with-code`.
    pub async fn close_with_code(
        &mut self,
        conn: ResourceAny,
        code: u16,
        reason: &str,
    ) -> wasmtime::Result<Result<(), Error>> {
        let framing = self.ws.lowbit_websockets_framing();
        framing.connection().call_close_with_code(&mut self.store, conn, code, reason).await
    }

    /// `types.close-code`: the close code an error sent, asked of the component.
    pub async fn close_code(&mut self, e: &Error) -> wasmtime::Result<Option<u16>> {
        self.ws.lowbit_websockets_types().call_close_code(&mut self.store, e).await
    }

    /// Drops the `connection` resource, which drops its streams and closes the transport.
    pub async fn drop_connection(&mut self, conn: ResourceAny) -> wasmtime::Result<()> {
        conn.resource_drop_async(&mut self.store).await
    }

    /// The exports, for calls this type has no shortcut for.
    pub fn exports(&mut self) -> (&bindings::Websockets, &mut Store<State>) {
        (&self.ws, &mut self.store)
    }

    /// The largest linear memory the guest has had, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.store.data().limiter.peak_bytes
    }

    fn streams(&mut self, transport: impl Transport) -> wasmtime::Result<Streams> {
        let (input, output) = transport.into_streams()?;
        let table = &mut self.store.data_mut().table;
        Ok((table.push(input)?, table.push(output)?))
    }
}

/// [`AsyncSession`] for a thread-per-connection host: each call blocks until the guest
/// returns. Give it `std::net::TcpStream`s ([`tcp`]), whose reads and writes block the
/// thread too.
pub struct Session(pub AsyncSession);

impl Session {
    /// See [`AsyncSession::accept`].
    pub fn accept(
        &mut self,
        transport: impl Transport,
        options: &AcceptOptions,
    ) -> wasmtime::Result<Result<(ResourceAny, Accepted), Error>> {
        block_on(self.0.accept(transport, options))
    }

    /// See [`AsyncSession::connect`].
    pub fn connect(
        &mut self,
        transport: impl Transport,
        options: &ConnectOptions,
    ) -> wasmtime::Result<Result<(ResourceAny, Connected), Error>> {
        block_on(self.0.connect(transport, options))
    }

    /// See [`AsyncSession::wrap`].
    pub fn wrap(&mut self, transport: impl Transport, role: Role, limits: Limits) -> wasmtime::Result<ResourceAny> {
        block_on(self.0.wrap(transport, role, limits))
    }

    /// See [`AsyncSession::echo`].
    pub fn echo(&mut self, conn: ResourceAny) -> wasmtime::Result<Result<u64, Error>> {
        block_on(self.0.echo(conn))
    }

    /// See [`AsyncSession::read_message`].
    pub fn read_message(&mut self, conn: ResourceAny) -> wasmtime::Result<Result<Message, Error>> {
        block_on(self.0.read_message(conn))
    }

    /// See [`AsyncSession::write_message`].
    pub fn write_message(
        &mut self,
        conn: ResourceAny,
        op: Opcode,
        payload: &[u8],
    ) -> wasmtime::Result<Result<(), Error>> {
        block_on(self.0.write_message(conn, op, payload))
    }

    /// See [`AsyncSession::close_with_code`].
    pub fn close_with_code(
        &mut self,
        conn: ResourceAny,
        code: u16,
        reason: &str,
    ) -> wasmtime::Result<Result<(), Error>> {
        block_on(self.0.close_with_code(conn, code, reason))
    }

    /// See [`AsyncSession::close_code`].
    pub fn close_code(&mut self, e: &Error) -> wasmtime::Result<Option<u16>> {
        block_on(self.0.close_code(e))
    }

    /// See [`AsyncSession::drop_connection`].
    pub fn drop_connection(&mut self, conn: ResourceAny) -> wasmtime::Result<()> {
        block_on(self.0.drop_connection(conn))
    }

    /// The largest linear memory the guest has had, in bytes.
    pub fn peak_memory(&self) -> usize {
        self.0.peak_memory()
    }
}
