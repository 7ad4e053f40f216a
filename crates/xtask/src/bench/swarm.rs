//! Many generator connections on a few threads: each thread runs a current-thread tokio
//! runtime with one task per connection, and the controller (the calling thread) steers them
//! all through phases. The load test ([`super::load`]) and the memory test ([`super::rss`])
//! differ only in what each connection does between its upgrade and its close.

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::Relaxed};
use std::thread;
use std::time::{Duration, Instant};

use lowbit_websockets::DeflateOptions;
use lowbit_websockets::deflate::Engine;
use tokio::sync::{Semaphore, watch};
use tokio::task::{LocalSet, spawn_local};

use super::client::Client;
use super::hist::Histogram;
use super::os;

/// A server that stops answering fails the run after this long instead of hanging it.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a closing connection waits for the server to hang up first.
const LINGER: Duration = Duration::from_secs(2);
/// Upgrades in flight per thread: under the listen backlog of the servers (128 for std's
/// `TcpListener`), so that no SYN is dropped and retried a second later.
const HANDSHAKES_IN_FLIGHT: usize = 64;
/// Source addresses the connections are spread over (127.0.0.1 to 127.0.0.4): the local
/// ports are then unique per source rather than overall, and 10,000 connections plus the
/// TIME_WAITs of the previous scenario stay far from the 28,000 or so ephemeral ports.
const SOURCES: usize = 4;

/// The phase every connection starts in.
pub const START: u8 = 0;
/// The phase that ends every connection (with a close handshake).
pub const STOP: u8 = u8::MAX;

/// How to open the connections.
pub struct Plan {
    pub addr: SocketAddr,
    pub connections: usize,
    /// Generator threads (each with its own runtime), at most one per connection.
    pub threads: usize,
    /// The CPU the generator threads are pinned to.
    pub cpu: Option<usize>,
    pub deflate: bool,
}

/// What the controller and the connections share.
#[derive(Default)]
pub struct Shared {
    phase: AtomicU8,
    failed: AtomicBool,
    first_error: Mutex<Option<String>>,
    /// Checkpoints passed, over all connections: each passes one when its upgrade is done,
    /// and then any it marks itself ([`Peer::checkpoint`]).
    checkpoints: AtomicUsize,
}

impl Shared {
    #[inline]
    pub fn phase(&self) -> u8 {
        if self.failed.load(Relaxed) { STOP } else { self.phase.load(Relaxed) }
    }

    fn fail(&self, error: String) {
        self.failed.store(true, Relaxed);
        self.first_error.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert(error);
    }
}

/// Echoes completed and their latencies, per generator thread, then summed.
#[derive(Clone)]
pub struct Tally {
    pub messages: u64,
    pub latency: Histogram,
}

impl Tally {
    fn new() -> Self {
        Self { messages: 0, latency: Histogram::new() }
    }

    #[inline]
    pub fn record(&mut self, nanos: u64) {
        self.messages += 1;
        self.latency.record(nanos);
    }
}

/// What a connection's task gets besides its [`Client`].
pub struct Peer {
    /// The connection's number, 0 to connections − 1.
    pub index: usize,
    pub shared: Arc<Shared>,
    /// Its thread's tally.
    pub tally: Rc<RefCell<Tally>>,
    phases: watch::Receiver<u8>,
}

impl Peer {
    /// Tells the controller this connection got somewhere (see [`Swarm::wait_for`]).
    pub fn checkpoint(&self) {
        self.shared.checkpoints.fetch_add(1, Relaxed);
    }

    /// Waits, idle, until the phase is no longer `phase`; returns the new one.
    pub async fn leave(&mut self, phase: u8) -> u8 {
        let _ = self.phases.wait_for(|&p| p != phase).await;
        self.shared.phase()
    }
}

pub struct Swarm {
    shared: Arc<Shared>,
    threads: Vec<thread::JoinHandle<Tally>>,
}

impl Swarm {
    /// Starts the threads; each connects its share of the connections and runs `body` on
    /// each connection once it is upgraded, then closes it. The upgrades go on in the
    /// background: [`Swarm::wait_for`] the first checkpoint of every connection.
    pub fn start<F>(plan: &Plan, body: F) -> Result<Swarm, String>
    where
        F: AsyncFn(&mut Client, &mut Peer) -> Result<(), String> + Clone + Send + 'static,
    {
        let shared = Arc::new(Shared::default());
        let mut swarm = Swarm { shared, threads: Vec::new() };
        let threads = plan.threads.clamp(1, plan.connections);
        for first in 0..threads {
            let indexes = (first..plan.connections).step_by(threads);
            let (shared, body, addr, cpu, deflate) =
                (Arc::clone(&swarm.shared), body.clone(), plan.addr, plan.cpu, plan.deflate);
            let spawned = thread::Builder::new()
                .name("loadgen".into())
                .spawn(move || generator_thread(indexes, addr, deflate, cpu, &shared, body));
            match spawned {
                Ok(handle) => swarm.threads.push(handle),
                Err(e) => {
                    swarm.shared.fail(String::new());
                    let _ = swarm.finish();
                    return Err(format!("cannot start a generator thread: {e}"));
                }
            }
        }
        Ok(swarm)
    }

    /// Moves every connection to `phase`.
    pub fn set_phase(&self, phase: u8) {
        self.shared.phase.store(phase, Relaxed);
    }

    /// Waits until `count` checkpoints have been passed; fails if a connection failed, or
    /// after `limit`.
    pub fn wait_for(&self, count: usize, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while self.shared.checkpoints.load(Relaxed) < count {
            if self.shared.failed.load(Relaxed) {
                return Err(self.error());
            }
            if Instant::now() > deadline {
                let reached = self.shared.checkpoints.load(Relaxed);
                return Err(format!("stalled: {reached} of {count} checkpoints passed after {} s", limit.as_secs()));
            }
            thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Sleeps for `d`, or less if a connection fails; whether none did.
    pub fn sleep(&self, d: Duration) -> bool {
        let end = Instant::now() + d;
        while let Some(left) = end.checked_duration_since(Instant::now()).filter(|l| !l.is_zero()) {
            if self.shared.failed.load(Relaxed) {
                return false;
            }
            thread::sleep(left.min(Duration::from_millis(20)));
        }
        !self.shared.failed.load(Relaxed)
    }

    /// Stops every connection (close handshakes) and sums the threads' tallies; the first
    /// error of any connection, if one failed.
    pub fn finish(mut self) -> Result<Tally, String> {
        self.set_phase(STOP);
        let mut total = Tally::new();
        for handle in std::mem::take(&mut self.threads) {
            match handle.join() {
                Ok(tally) => {
                    total.messages += tally.messages;
                    total.latency.merge(&tally.latency);
                }
                Err(_) => self.shared.fail("a generator thread panicked".to_owned()),
            }
        }
        if self.shared.failed.load(Relaxed) { Err(self.error()) } else { Ok(total) }
    }

    fn error(&self) -> String {
        let first = self.shared.first_error.lock().unwrap_or_else(|e| e.into_inner()).clone();
        first.unwrap_or_else(|| "a connection failed".to_owned())
    }
}

impl Drop for Swarm {
    /// On an early return the threads still end (and close their connections).
    fn drop(&mut self) {
        self.set_phase(STOP);
        for handle in self.threads.drain(..) {
            let _ = handle.join();
        }
    }
}

/// One generator thread: its connections, each a task on this thread's runtime.
fn generator_thread<F>(
    indexes: impl Iterator<Item = usize>,
    addr: SocketAddr,
    deflate: bool,
    cpu: Option<usize>,
    shared: &Arc<Shared>,
    body: F,
) -> Tally
where
    F: AsyncFn(&mut Client, &mut Peer) -> Result<(), String> + Clone + 'static,
{
    let tally = Rc::new(RefCell::new(Tally::new()));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_io().enable_time().build();
    let pinned = cpu.map_or(Ok(()), os::pin_this_thread);
    let runtime = match (runtime, pinned) {
        (Ok(rt), Ok(())) => rt,
        (Err(e), _) => {
            shared.fail(format!("cannot start a runtime: {e}"));
            return Tally::new();
        }
        (_, Err(e)) => {
            shared.fail(e);
            return Tally::new();
        }
    };
    let (phases, watching) = watch::channel(shared.phase());
    let upgrades = Rc::new(Semaphore::new(HANDSHAKES_IN_FLIGHT));
    // The engine the echo servers' `--deflate` uses: the faster one, so the generator takes
    // less of the CPU that the server needs.
    let deflate = deflate.then(|| DeflateOptions { engine: Engine::ZlibRs, ..DeflateOptions::default() });
    LocalSet::new().block_on(&runtime, async {
        let mut tasks = Vec::new();
        for index in indexes {
            let mut peer =
                Peer { index, shared: Arc::clone(shared), tally: Rc::clone(&tally), phases: watching.clone() };
            let (upgrades, deflate, body) = (Rc::clone(&upgrades), deflate, body.clone());
            tasks.push(spawn_local(async move {
                let result = async {
                    let upgrading = upgrades.acquire().await.map_err(|e| e.to_string())?;
                    let source = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (index % SOURCES) as u8));
                    let connect = Client::connect(addr, source, deflate.as_ref());
                    let mut client = tokio::time::timeout(IO_TIMEOUT, connect)
                        .await
                        .map_err(|_| format!("no upgrade within {} s", IO_TIMEOUT.as_secs()))??;
                    drop(upgrading);
                    peer.checkpoint();
                    body(&mut client, &mut peer).await?;
                    client.close(LINGER).await
                };
                if let Err(e) = result.await {
                    peer.shared.fail(e);
                }
            }));
        }
        // The controller only stores the phase; waiting connections learn of it from here.
        loop {
            let phase = shared.phase();
            phases.send_if_modified(|p| std::mem::replace(p, phase) != phase);
            if phase == STOP {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // Every connection finishes its echo in flight and closes, or the run fails.
        let deadline = tokio::time::Instant::now() + IO_TIMEOUT + LINGER;
        let mut stuck = 0;
        for task in tasks {
            match tokio::time::timeout_at(deadline, task).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => shared.fail("a generator task panicked".to_owned()),
                Err(_) => stuck += 1,
            }
        }
        if stuck > 0 {
            shared.fail(format!("{stuck} connection(s) did not close within {} s", (IO_TIMEOUT + LINGER).as_secs()));
        }
    });
    tally.borrow().clone()
}
