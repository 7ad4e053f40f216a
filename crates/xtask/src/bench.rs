//! `cargo xtask bench`: the loopback load test ([`run`]), and the criterion benches of the core
//! crate ([`run_benches`], `cargo bench -p lowbit-websockets`).
//!
//! The load test starts echo servers as release-built child processes and drives each with
//! the same event-driven generator ([`load`], over [`swarm`] and [`client`]):
//!
//! - `async`: ours on tokio (`crates/core/examples/async-echo-server.rs --threads 1`, one
//!   current-thread runtime), when that example exists; `async-deflate` is it with `--deflate`;
//! - `fastwebsockets` and `tokio-tungstenite`: the same shape over those libraries
//!   (`crates/bench-peers`);
//! - `lowbit` and `tungstenite`: the blocking thread-per-connection servers
//!   (`echo-server.rs`, `tungstenite-echo-server.rs`); `deflate` is ours with `--deflate`;
//! - `component`: the WebAssembly component in `lowbit-ws-host serve --threads 1`, a guest
//!   instance per connection, all on one thread.
//!
//! Each scenario is N connections (100 and 10,000 by default) in a closed loop, one message in
//! flight each, with binary messages of 20 B, 1 KiB, 16 KiB and 64 KiB. The server is pinned
//! to one core and the generator to another (`taskset`, `sched_setaffinity`). Rounds alternate
//! over the scenarios; the report gives the best round's messages/s and latency (p50, p99),
//! the range over rounds, the CPU the generator, the server and everything else used, and
//! ratios against fastwebsockets (or, without it, tungstenite). Then the memory test ([`rss`]):
//! 10,000 idle upgraded connections on a fresh server, its RSS growth per connection, cold and
//! after one 1 KiB echo each. The tables are printed and written into the "Loopback load test"
//! section of BENCHMARKS.md ([`report`]).
//!
//! ```text
//! cargo xtask bench [--quick] [--duration SECS] [--warmup SECS] [--rounds N]
//!                   [--connections N[,N...]] [--only SERVER[,SERVER...]] [--size BYTES[,BYTES...]]
//!                   [--threads N] [--no-pin] [--rss N] [--write | --no-write]
//! ```
//!
//! To add a server: a [`Target`] in [`TARGETS`] whose executable prints `listening on ADDR`
//! and takes `--addr HOST:PORT`.

mod client;
mod hist;
mod load;
pub mod memory;
mod os;
mod report;
mod rss;
mod swarm;
mod sys;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::util::{Ctx, Result, run as run_command};
use load::Load;
use swarm::Plan;
use sys::{CpuUse, Machine, Server};

/// Runs the core benches; `args` go to the bench harness (e.g. a filter).
pub fn run_benches(ctx: &Ctx, args: &[String]) -> Result {
    let mut cmd = ctx.cargo();
    cmd.args(["bench", "-p", "lowbit-websockets"]);
    if !args.is_empty() {
        cmd.arg("--").args(args);
    }
    run_command(&mut cmd)?;
    println!("see BENCHMARKS.md for what the benches measure and the recorded numbers");
    Ok(())
}

const SIZES: [usize; 4] = [20, 1024, 16 * 1024, 64 * 1024];
/// Deflate is tried from 1 KiB up: smaller messages are under the compression threshold.
const DEFLATE_SIZES: [usize; 3] = [1024, 16 * 1024, 64 * 1024];
const CONNECTIONS: [usize; 2] = [100, 10_000];
/// Idle connections in the memory test.
const RSS_CONNECTIONS: usize = 10_000;

/// Our async echo server: the example, and the crate feature it needs.
const ASYNC_EXAMPLE: &str = "async-echo-server";
const ASYNC_FEATURE: &str = "tokio";
/// The package of the peer servers.
const PEERS: &str = "bench-peers";

const USAGE: &str = "usage: cargo xtask bench [OPTIONS]
  --quick             1 s per scenario after 0.25 s of warm-up, 1 round; prints only
  --duration SECS     measured time per scenario (default 5)
  --warmup SECS       warm-up before each measurement (default 1)
  --rounds N          run every scenario N times, alternating, and report the best (default 3)
  --connections LIST  concurrent connections, e.g. 100 or 100,10000 (default 100,10000)
  --only LIST         servers to run, e.g. async,fastwebsockets: async, async-deflate,
                      fastwebsockets, tokio-tungstenite, lowbit, tungstenite, deflate, component
  --size LIST         message sizes to run, from 20, 1024, 16384, 65536 (default all)
  --threads N         generator threads (default 1; all on the generator's core when pinned)
  --no-pin            do not pin the server and the generator to a core each
  --rss N             idle connections for the memory test (default 10000; 0 skips it)
  --write/--no-write  update the \"Loopback load test\" section of BENCHMARKS.md
                      (default: yes, except with --quick, --only or --size)";

pub struct Options {
    duration: Duration,
    warmup: Duration,
    rounds: usize,
    connections: Vec<usize>,
    quick: bool,
    only: Option<Vec<String>>,
    sizes: Vec<usize>,
    threads: usize,
    pin: bool,
    rss: usize,
    write: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut o = Options {
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            rounds: 3,
            connections: CONNECTIONS.to_vec(),
            quick: false,
            only: None,
            sizes: SIZES.to_vec(),
            threads: 1,
            pin: true,
            rss: RSS_CONNECTIONS,
            write: true,
        };
        let mut write = None;
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
            let secs = |v: &String| match v.parse::<f64>() {
                Ok(s) if s > 0.0 && s < 3600.0 => Ok(Duration::from_secs_f64(s)),
                _ => Err(format!("{arg}: expected seconds, got {v:?}")),
            };
            let count = |v: &str| match v.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => Ok(n),
                _ => Err(format!("{arg}: expected a count from 1 to 10000, got {v:?}")),
            };
            let list = |v: &String| v.split(',').map(str::trim).map(str::to_owned).collect::<Vec<_>>();
            match arg.as_str() {
                "--quick" => {
                    o.quick = true;
                    o.duration = Duration::from_secs(1);
                    o.warmup = Duration::from_millis(250);
                    o.rounds = 1;
                }
                "--duration" => o.duration = secs(value()?)?,
                "--warmup" => o.warmup = secs(value()?)?,
                "--rounds" => o.rounds = count(value()?)?,
                "--connections" => o.connections = list(value()?).iter().map(|v| count(v)).collect::<Result<_>>()?,
                "--only" => {
                    let keys = list(value()?);
                    if let Some(bad) = keys.iter().find(|k| !TARGETS.iter().any(|t| t.key == *k)) {
                        let known: Vec<&str> = TARGETS.iter().map(|t| t.key).collect();
                        return Err(format!("--only: unknown server {bad:?}; expected some of {}", known.join(", ")));
                    }
                    o.only = Some(keys);
                }
                "--size" => {
                    o.sizes = list(value()?)
                        .iter()
                        .map(|v| v.parse().ok().filter(|n| SIZES.contains(n)))
                        .collect::<Option<_>>()
                        .ok_or_else(|| format!("--size: expected some of {SIZES:?}"))?;
                }
                "--threads" => o.threads = count(value()?)?,
                "--no-pin" => o.pin = false,
                "--rss" => {
                    let v = value()?;
                    o.rss = if v == "0" { 0 } else { count(v)? };
                }
                "--write" => write = Some(true),
                "--no-write" => write = Some(false),
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
            }
        }
        let everything = o.only.is_none() && o.sizes.len() == SIZES.len();
        o.write = write.unwrap_or(!o.quick && everything);
        Ok(o)
    }
}

/// How a server is built and found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Exe {
    /// An example of the core crate.
    Example(&'static str),
    /// A binary of `bench-peers`.
    Peer(&'static str),
    /// `lowbit-ws-host`, with the component it loads.
    Host,
}

/// A server configuration under test.
pub struct Target {
    /// The name `--only` takes.
    pub key: &'static str,
    pub label: &'static str,
    exe: Exe,
    args: &'static [&'static str],
    pub deflate: bool,
    pub sizes: &'static [usize],
}

/// Every server, in the order of the report. To plug in another, add it here.
const TARGETS: [Target; 8] = [
    Target {
        key: "async",
        label: "lowbit async",
        exe: Exe::Example(ASYNC_EXAMPLE),
        args: &["--threads", "1"],
        deflate: false,
        sizes: &SIZES,
    },
    Target {
        key: "fastwebsockets",
        label: "fastwebsockets",
        exe: Exe::Peer("fastwebsockets-echo-server"),
        args: &[],
        deflate: false,
        sizes: &SIZES,
    },
    Target {
        key: "tokio-tungstenite",
        label: "tokio-tungstenite",
        exe: Exe::Peer("tokio-tungstenite-echo-server"),
        args: &[],
        deflate: false,
        sizes: &SIZES,
    },
    Target {
        key: "lowbit",
        label: "lowbit",
        exe: Exe::Example("echo-server"),
        args: &[],
        deflate: false,
        sizes: &SIZES,
    },
    Target {
        key: "tungstenite",
        label: "tungstenite",
        exe: Exe::Example("tungstenite-echo-server"),
        args: &[],
        deflate: false,
        sizes: &SIZES,
    },
    Target {
        key: "async-deflate",
        label: "lowbit async + deflate",
        exe: Exe::Example(ASYNC_EXAMPLE),
        args: &["--threads", "1", "--deflate"],
        deflate: true,
        sizes: &DEFLATE_SIZES,
    },
    Target {
        key: "deflate",
        label: "lowbit + deflate",
        exe: Exe::Example("echo-server"),
        args: &["--deflate"],
        deflate: true,
        sizes: &DEFLATE_SIZES,
    },
    Target {
        key: "component",
        label: "lowbit component",
        exe: Exe::Host,
        args: &["serve", "--threads", "1"],
        deflate: false,
        sizes: &SIZES,
    },
];

impl Target {
    fn path(&self, ctx: &Ctx) -> PathBuf {
        match self.exe {
            Exe::Example(name) => ctx.example(name),
            Exe::Peer(name) => ctx.target.join("release").join(name),
            Exe::Host => ctx.target.join("release/lowbit-ws-host"),
        }
    }

    fn start(&self, ctx: &Ctx, cpu: Option<usize>) -> Result<Server> {
        Server::start(&self.path(ctx), self.args, cpu).map_err(|e| format!("{}: {e}", self.label))
    }
}

/// One measurement.
pub struct Sample {
    pub rate: f64,
    pub p50: u64,
    pub p99: u64,
    pub cpu: Option<CpuUse>,
}

impl Sample {
    /// The server's CPU time per echo, in µs: its efficiency, which the throughput does not
    /// show when the generator is the one at 100 %.
    pub fn server_micros(&self) -> Option<f64> {
        self.cpu.filter(|_| self.rate > 0.0).map(|c| c.server / 100.0 / self.rate * 1e6)
    }
}

/// Samples by (connections, index in the targets run, message size).
pub type Samples = BTreeMap<(usize, usize, usize), Vec<Sample>>;

/// Set in the environment of the release build that [`run`] hands over to.
const RELEASE_ENV: &str = "LOWBIT_BENCH_RELEASE";

/// The load test. `args` as in the usage above.
pub fn run(args: &[String]) -> Result {
    let opts = Options::parse(args)?;
    let ctx = Ctx::new();
    if let Some(handed_over) = hand_over_to_release(&ctx) {
        return handed_over;
    }
    let targets = build(&ctx, &opts)?;
    let most = opts.connections.iter().copied().chain([opts.rss]).max().unwrap_or(0);
    os::raise_open_files(most)?;
    let pins = if opts.pin { os::pinning() } else { None };
    match pins {
        Some((server, generator)) => println!("(server on CPU {server}, generator on CPU {generator})"),
        None if opts.pin => println!("(not pinned: fewer than 2 CPUs, or no taskset)"),
        None => {}
    }
    let machine = Machine::describe();
    let bench = Bench { ctx: &ctx, opts: &opts, targets: &targets, pins, corpus: load::corpus() };
    let samples = bench.load()?;
    let footprints = if opts.rss > 0 { bench.rss()? } else { Vec::new() };

    let run = report::Run { args, opts: &opts, machine: &machine, targets: &targets, pinned: pins.is_some() };
    let section = report::render(&run, &samples, &footprints);
    println!("\n{section}");
    if opts.write {
        let path = ctx.root.join("BENCHMARKS.md");
        report::write_section(&path, &section).map_err(|e| format!("cannot update {}: {e}", path.display()))?;
        println!("updated the \"Loopback load test\" section of {}", path.display());
    }
    Ok(())
}

/// `cargo xtask` is a debug build, and an unoptimized generator would eat the CPU the servers
/// need (the codec at opt-level 0 is several times slower): runs a release build of this same
/// command line instead, and returns its outcome (`None`: this is that build).
fn hand_over_to_release(ctx: &Ctx) -> Option<Result> {
    if !cfg!(debug_assertions) || std::env::var_os(RELEASE_ENV).is_some() {
        return None;
    }
    let mut cmd = ctx.cargo();
    cmd.args(["run", "--quiet", "--release", "-p", "xtask", "--"]).args(std::env::args_os().skip(1));
    cmd.env(RELEASE_ENV, "1");
    Some(run_command(&mut cmd))
}

/// Builds the servers and returns those to run: all, or `--only`'s, less our async server
/// while its example does not exist.
fn build(ctx: &Ctx, opts: &Options) -> Result<Vec<&'static Target>> {
    let has_async = ctx.root.join("crates/core/examples").join(format!("{ASYNC_EXAMPLE}.rs")).is_file();
    let mut targets: Vec<&Target> = TARGETS
        .iter()
        .filter(|t| opts.only.as_ref().is_none_or(|only| only.iter().any(|k| k == t.key)))
        .filter(|t| has_async || t.exe != Exe::Example(ASYNC_EXAMPLE))
        .collect();
    if !has_async && opts.only.as_ref().is_none_or(|only| only.iter().any(|k| k.starts_with("async"))) {
        println!("({ASYNC_EXAMPLE}.rs does not exist yet: our async server is skipped)");
    }
    let mut examples = Vec::new();
    for t in &targets {
        if let Exe::Example(name) = t.exe
            && !examples.contains(&name)
        {
            examples.push(name);
        }
    }
    if !examples.is_empty() {
        let mut cmd = ctx.cargo();
        cmd.args(["build", "--release", "-p", "lowbit-websockets"]);
        if has_async {
            cmd.args(["--features", ASYNC_FEATURE]);
        }
        for name in examples {
            cmd.args(["--example", name]);
        }
        run_command(&mut cmd)?;
    }
    if targets.iter().any(|t| t.exe == Exe::Host) {
        crate::component::build(ctx)?;
    }
    if targets.iter().any(|t| matches!(t.exe, Exe::Peer(_))) {
        run_command(ctx.cargo().args(["build", "--release", "-p", PEERS, "--bins"]))?;
    }
    // The deflate scenarios need an echo server that can negotiate it.
    targets.retain(|t| !t.deflate || sys::help_mentions(&t.path(ctx), "--deflate"));
    if targets.is_empty() {
        return Err("no server to run".to_owned());
    }
    Ok(targets)
}

/// What every measurement needs.
struct Bench<'a> {
    ctx: &'a Ctx,
    opts: &'a Options,
    targets: &'a [&'static Target],
    /// The server's CPU and the generator's.
    pins: Option<(usize, usize)>,
    corpus: Arc<Vec<u8>>,
}

impl Bench<'_> {
    fn start(&self, target: &Target) -> Result<Server> {
        target.start(self.ctx, self.pins.map(|p| p.0))
    }

    fn plan(&self, server: &Server, connections: usize, deflate: bool) -> Plan {
        Plan { addr: server.addr, connections, threads: self.opts.threads, cpu: self.pins.map(|p| p.1), deflate }
    }

    /// The load scenarios, in alternating rounds.
    fn load(&self) -> Result<Samples> {
        let (opts, targets, corpus) = (self.opts, self.targets, &self.corpus);
        let servers: Vec<Server> = targets.iter().map(|t| self.start(t)).collect::<Result<_>>()?;
        println!(
            "\n==> {} s per scenario after {} s of warm-up, {} round(s), {} generator thread(s)",
            opts.duration.as_secs_f64(),
            opts.warmup.as_secs_f64(),
            opts.rounds,
            opts.threads
        );
        let mut samples = Samples::new();
        for round in 1..=opts.rounds {
            // Alternating (connections by connections, size by size, server by server) so that a
            // burst of noise from other work on the machine is spread over the servers rather
            // than landing on one.
            for &connections in &opts.connections {
                for size in SIZES.into_iter().filter(|s| opts.sizes.contains(s)) {
                    for (ti, (target, server)) in targets.iter().zip(&servers).enumerate() {
                        if !target.sizes.contains(&size) {
                            continue;
                        }
                        let scenario = Load {
                            plan: self.plan(server, connections, target.deflate),
                            server_pid: server.pid(),
                            size,
                            warmup: opts.warmup,
                            duration: opts.duration,
                        };
                        let what = format!("{} {} × {connections}", target.label, report::size_label(size));
                        let outcome = load::run(&scenario, corpus).map_err(|e| format!("{what}: {e}"))?;
                        let sample = Sample {
                            rate: outcome.rate(),
                            p50: outcome.latency.quantile(0.50),
                            p99: outcome.latency.quantile(0.99),
                            cpu: outcome.cpu,
                        };
                        println!("round {round}: {what:<34} {}", report::sample_line(&sample));
                        samples.entry((connections, ti, size)).or_default().push(sample);
                    }
                }
            }
        }
        for (target, server) in targets.iter().zip(&servers) {
            let (count, first) = server.errors();
            if count > 0 {
                println!("{} wrote {count} line(s) to stderr, first: {first:?}", target.label);
            }
        }
        Ok(samples)
    }

    /// The memory test, on a fresh server per target (without deflate: its compressors are the
    /// size of the window whichever server holds them).
    fn rss(&self) -> Result<Vec<(usize, rss::Footprint)>> {
        let opts = self.opts;
        println!("\n==> memory: {} idle connections per server", opts.rss);
        let mut footprints = Vec::new();
        for (ti, target) in self.targets.iter().enumerate().filter(|(_, t)| !t.deflate) {
            let server = self.start(target)?;
            let plan = self.plan(&server, opts.rss, false);
            let footprint =
                rss::run(&plan, server.pid(), &self.corpus).map_err(|e| format!("{} memory: {e}", target.label))?;
            println!(
                "{:<24} {:>8.1} KiB per connection, {:>8.1} KiB after one 1 KiB echo each",
                target.label,
                footprint.cold / 1024.0,
                footprint.warm / 1024.0
            );
            footprints.push((ti, footprint));
        }
        Ok(footprints)
    }
}
