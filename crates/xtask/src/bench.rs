//! `cargo xtask bench`: the loopback load test ([`run`]), and the criterion benches of the core
//! crate ([`run_benches`], `cargo bench -p lowbit-websockets`).
//!
//! The load test starts our echo server (`crates/core/examples/echo-server.rs`, as shipped)
//! and a tungstenite echo server of the same shape (`tungstenite-echo-server.rs`: thread per
//! connection, blocking, TCP_NODELAY) as release-built child processes, and drives each with
//! the same generator ([`load`]): 100 connections in a closed loop echoing 20 B and 16 KiB
//! binary messages. It reports messages/s and round-trip latency (p50, p99) per server and
//! size, the ratio ours/tungstenite, and the CPU that the generator, the server and everything
//! else used meanwhile; the table is printed and written into the "Loopback load test" section
//! of BENCHMARKS.md. When the echo server takes `--deflate`, a third scenario runs it with
//! permessage-deflate (ours only: tungstenite has no permessage-deflate).
//!
//! ```text
//! cargo xtask bench [--quick] [--duration SECS] [--warmup SECS] [--rounds N]
//!                   [--connections N] [--only SERVER] [--size BYTES] [--write | --no-write]
//! ```

mod hist;
mod load;
mod sys;

use std::fmt::Write as _;
use std::time::Duration;

use crate::util::{Ctx, Result, run as run_command};
use load::Load;
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

const COMMAND: &str = "cargo xtask bench";
const SECTION: &str = "## Loopback load test";
const SIZES: [usize; 2] = [20, 16 * 1024];

const USAGE: &str = "usage: cargo xtask bench [OPTIONS]
  --quick            1 s per scenario after 0.25 s of warm-up, 1 round; prints only
  --duration SECS    measured time per scenario (default 5)
  --warmup SECS      warm-up before each measurement (default 1)
  --rounds N         run every scenario N times, interleaved, and report the median (default 5)
  --connections N    concurrent connections (default 100)
  --only SERVER      run one server only: lowbit, tungstenite or deflate (to profile it)
  --size BYTES       run one message size only: 20 or 16384
  --write/--no-write update the \"Loopback load test\" section of BENCHMARKS.md
                     (default: yes, except with --quick, --only or --size)";

struct Options {
    duration: Duration,
    warmup: Duration,
    rounds: usize,
    connections: usize,
    quick: bool,
    only: Option<String>,
    size: Option<usize>,
    write: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Self> {
        let mut o = Options {
            duration: Duration::from_secs(5),
            warmup: Duration::from_secs(1),
            rounds: 5,
            connections: 100,
            quick: false,
            only: None,
            size: None,
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
            let count = |v: &String| match v.parse::<usize>() {
                Ok(n) if (1..=10_000).contains(&n) => Ok(n),
                _ => Err(format!("{arg}: expected a count, got {v:?}")),
            };
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
                "--connections" => o.connections = count(value()?)?,
                "--only" => match value()?.as_str() {
                    v @ ("lowbit" | "tungstenite" | "deflate") => o.only = Some(v.to_owned()),
                    v => return Err(format!("--only: expected lowbit, tungstenite or deflate, got {v:?}")),
                },
                "--size" => match value()?.parse::<usize>() {
                    Ok(n) if SIZES.contains(&n) => o.size = Some(n),
                    _ => return Err(format!("--size: expected one of {SIZES:?}")),
                },
                "--write" => write = Some(true),
                "--no-write" => write = Some(false),
                "-h" | "--help" => return Err(USAGE.to_owned()),
                other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
            }
        }
        o.write = write.unwrap_or(!o.quick && o.only.is_none() && o.size.is_none());
        Ok(o)
    }
}

/// A server configuration under test.
struct Target {
    /// The name `--only` takes.
    key: &'static str,
    label: &'static str,
    example: &'static str,
    args: &'static [&'static str],
    deflate: bool,
    sizes: &'static [usize],
}

const OURS: Target =
    Target { key: "lowbit", label: "lowbit", example: "echo-server", args: &[], deflate: false, sizes: &SIZES };
const TUNGSTENITE: Target = Target {
    key: "tungstenite",
    label: "tungstenite",
    example: "tungstenite-echo-server",
    args: &[],
    deflate: false,
    sizes: &SIZES,
};
/// Only the large message: the small one is under the compression threshold (1 KiB).
const OURS_DEFLATE: Target = Target {
    key: "deflate",
    label: "lowbit + deflate",
    example: "echo-server",
    args: &["--deflate"],
    deflate: true,
    sizes: &[16 * 1024],
};

/// One measurement.
struct Sample {
    rate: f64,
    p50: u64,
    p99: u64,
    cpu: Option<CpuUse>,
}

/// Set in the environment of the release build that [`run`] hands over to.
const RELEASE_ENV: &str = "LOWBIT_BENCH_RELEASE";

/// The load test. `args` as in the usage above.
pub fn run(args: &[String]) -> Result {
    let opts = Options::parse(args)?;
    let ctx = Ctx::new();
    // `cargo xtask` is a debug build, and an unoptimized generator would eat the CPU the
    // servers need (the codec at opt-level 0 is several times slower): hand over to a release
    // build of this same command line.
    if cfg!(debug_assertions) && std::env::var_os(RELEASE_ENV).is_none() {
        let mut cmd = ctx.cargo();
        cmd.args(["run", "--quiet", "--release", "-p", "xtask", "--"]).args(std::env::args_os().skip(1));
        cmd.env(RELEASE_ENV, "1");
        return run_command(&mut cmd);
    }
    run_command(ctx.cargo().args([
        "build",
        "--release",
        "-p",
        "lowbit-websockets",
        "--example",
        OURS.example,
        "--example",
        TUNGSTENITE.example,
    ]))?;
    let mut targets = vec![OURS, TUNGSTENITE];
    // The deflate scenario needs an echo server that can negotiate it.
    if sys::help_mentions(&ctx.example(OURS.example), "--deflate") {
        targets.push(OURS_DEFLATE);
    } else {
        println!("(echo-server has no --deflate option yet: the deflate scenario is skipped)");
    }
    if let Some(only) = &opts.only {
        targets.retain(|t| t.key == only);
        if targets.is_empty() {
            return Err(format!("--only {only}: that server is not available"));
        }
    }
    let servers: Vec<Server> =
        targets.iter().map(|t| Server::start(&ctx.example(t.example), t.args)).collect::<Result<_>>()?;

    let corpus = load::corpus();
    let machine = Machine::describe();
    println!(
        "\n==> {} connections, {} s per scenario after {} s of warm-up, {} round(s)",
        opts.connections,
        opts.duration.as_secs_f64(),
        opts.warmup.as_secs_f64(),
        opts.rounds
    );
    let mut samples: Vec<Vec<Vec<Sample>>> =
        targets.iter().map(|t| t.sizes.iter().map(|_| Vec::new()).collect()).collect();
    for round in 1..=opts.rounds {
        // Interleaved (size by size, server by server) so that a burst of noise from other
        // work on the machine is spread over both servers rather than landing on one.
        for size in SIZES.into_iter().filter(|s| opts.size.is_none_or(|only| only == *s)) {
            for (ti, (target, server)) in targets.iter().zip(&servers).enumerate() {
                let Some(si) = target.sizes.iter().position(|&s| s == size) else { continue };
                let scenario = Load {
                    addr: server.addr,
                    server_pid: server.pid(),
                    size,
                    deflate: target.deflate,
                    connections: opts.connections,
                    warmup: opts.warmup,
                    duration: opts.duration,
                };
                let outcome =
                    load::run(&scenario, &corpus).map_err(|e| format!("{} {}: {e}", target.label, size_label(size)))?;
                let sample = Sample {
                    rate: outcome.rate(),
                    p50: outcome.latency.quantile(0.50),
                    p99: outcome.latency.quantile(0.99),
                    cpu: outcome.cpu,
                };
                println!(
                    "round {round}: {:<17} {:>6}  {:>10} msgs/s  p50 {:>9}  p99 {:>9}  {}",
                    target.label,
                    size_label(size),
                    thousands(sample.rate),
                    micros(sample.p50),
                    micros(sample.p99),
                    sample.cpu.map_or_else(String::new, |c| format!(
                        "CPU: generator {:.0} %, server {:.0} %, other {:.0} %",
                        c.generator, c.server, c.other
                    )),
                );
                samples[ti][si].push(sample);
            }
        }
    }
    for (target, server) in targets.iter().zip(&servers) {
        let (count, first) = server.errors();
        if count > 0 {
            println!("{} wrote {count} line(s) to stderr, first: {first:?}", target.label);
        }
    }
    drop(servers);

    let section = render(args, &opts, &machine, &targets, &samples);
    println!("\n{section}");
    if opts.write {
        let path = ctx.root.join("BENCHMARKS.md");
        write_section(&path, &section).map_err(|e| format!("cannot update {}: {e}", path.display()))?;
        println!("updated the \"Loopback load test\" section of {}", path.display());
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

fn render(args: &[String], opts: &Options, m: &Machine, targets: &[Target], samples: &[Vec<Vec<Sample>>]) -> String {
    let mut s = String::new();
    let command = if args.is_empty() { COMMAND.to_owned() } else { format!("{COMMAND} {}", args.join(" ")) };
    let _ = writeln!(s, "{SECTION}\n");
    para(
        &mut s,
        &format!(
            "`{command}`, run {} on {} ({} cores, lscpu), {}. {} connections per scenario, each with \
             one message in flight (send, wait for the echo, check it byte for byte, send the \
             next); {} s measured after {} s of warm-up; the median of {} interleaved round(s). \
             Messages are binary, cut from a 1 MiB text-like corpus. The generator is one blocking \
             thread per connection over this crate's client (`lowbit_websockets::connect`, \
             `Conn::write_message` / `read_message`); why that design, and what was measured \
             against it: `crates/xtask/src/bench/load.rs`.",
            m.date,
            m.cpu,
            m.cores,
            m.rustc,
            opts.connections,
            opts.duration.as_secs_f64(),
            opts.warmup.as_secs_f64(),
            opts.rounds,
        ),
    );
    let _ = writeln!(
        s,
        "| server | message | msgs/s | msgs/s range | p50 latency | p99 latency | CPU generator | CPU server | CPU other |"
    );
    let _ = writeln!(s, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let med = |v: &[Sample], f: &dyn Fn(&Sample) -> f64| median(v.iter().map(f).collect());
    let cpu = |v: &[Sample], f: &dyn Fn(&CpuUse) -> f64| {
        let all: Vec<f64> = v.iter().filter_map(|x| x.cpu.as_ref().map(f)).collect();
        if all.is_empty() { "?".to_owned() } else { format!("{:.0} %", median(all)) }
    };
    let mut noisy = Vec::new();
    for size in SIZES {
        for (t, per_size) in targets.iter().zip(samples) {
            let Some(si) = t.sizes.iter().position(|&x| x == size) else { continue };
            let v = &per_size[si];
            if v.is_empty() {
                continue;
            }
            let (lo, hi) = v.iter().fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(x.rate), hi.max(x.rate)));
            let other: Vec<f64> = v.iter().filter_map(|x| x.cpu.map(|c| c.other)).collect();
            if !other.is_empty() && median(other.clone()) > 25.0 {
                noisy.push(format!("{} {} ({:.0} %)", t.label, size_label(size), median(other)));
            }
            let _ = writeln!(
                s,
                "| {} | {} | {} | {}–{} | {} | {} | {} | {} | {} |",
                t.label,
                size_label(size),
                thousands(med(v, &|x| x.rate)),
                thousands(lo),
                thousands(hi),
                micros(med(v, &|x| x.p50 as f64) as u64),
                micros(med(v, &|x| x.p99 as f64) as u64),
                cpu(v, &|c| c.generator),
                cpu(v, &|c| c.server),
                cpu(v, &|c| c.other),
            );
        }
    }
    let mut ratios = String::new();
    for (si, size) in SIZES.into_iter().enumerate() {
        let pick = |key: &str| targets.iter().position(|t| t.key == key).map(|ti| &samples[ti][si]);
        let (Some(ours), Some(theirs)) = (pick("lowbit"), pick("tungstenite")) else { continue };
        if ours.is_empty() || theirs.is_empty() {
            continue;
        }
        let rate = med(ours, &|x| x.rate) / med(theirs, &|x| x.rate);
        let p99 = med(ours, &|x| x.p99 as f64) / med(theirs, &|x| x.p99 as f64);
        let _ = writeln!(ratios, "| {} | {rate:.2}× | {p99:.2}× |", size_label(size));
    }
    if !ratios.is_empty() {
        let _ = writeln!(
            s,
            "\n| message | msgs/s, lowbit / tungstenite (higher is better) | p99, lowbit / tungstenite (lower is better) |"
        );
        let _ = writeln!(s, "| --- | ---: | ---: |\n{}", ratios.trim_end());
    }
    s.push('\n');
    if !noisy.is_empty() {
        para(
            &mut s,
            &format!(
                "**Noise:** other work on the machine took more than a quarter of a core (median) \
                 during {}; those numbers are low by about that share.",
                noisy.join(", ")
            ),
        );
    }
    para(
        &mut s,
        &format!(
            "Servers: `echo-server` is the example as shipped (thread per connection, TCP_NODELAY, \
             `max_chunk_size` 64 KiB, 16 MiB message limit); `tungstenite-echo-server` has the same \
             shape with blocking tungstenite 0.30 (thread per connection, TCP_NODELAY, 64 KiB read \
             buffer, the same limit, `send` = write + flush per echo). Both are release builds, run \
             as child processes on loopback in the same run, against the same generator.{}",
            if targets.iter().any(|t| t.deflate) {
                " `lowbit + deflate` is our server with `--deflate`: the generator offers \
                 permessage-deflate with the crate's defaults (level 1, 1 KiB threshold, context \
                 takeover) and the zlib-rs engine, as the server's `--deflate` does, and compresses \
                 its own messages too, so that row pays compression and inflation at both ends; \
                 tungstenite has no permessage-deflate to compare with."
            } else {
                ""
            }
        ),
    );
    para(
        &mut s,
        &format!(
            "Read with care: the generator runs on the same {} cores as the server, so every cycle \
             it spends is one the server does not get; the numbers are the capacity of generator and \
             server together, not of the server alone. The CPU columns say how the cores were shared \
             during the measured window, in % of one core ({} % is the whole machine); \"other\" is \
             everything else that ran (kernel work charged to neither process and, on a shared \
             machine, other people's builds and tests), hence the interleaved rounds, the median \
             and the range. Latency runs from just before `write_message` to the return of the \
             `read_message` that got the echo. In a closed loop it is mostly queueing (mean ≈ \
             connections / msgs/s), so p99 follows the throughput; it is not the latency of an idle \
             server.",
            m.cores,
            m.cores * 100
        ),
    );
    para(
        &mut s,
        "Where the time goes (perf, `--only SERVER --size BYTES` runs, when this test was \
         written): about 85–90 % of either server's CPU is the kernel's (loopback TCP, thread \
         wake-ups), with exactly one `recvfrom` and one `sendto` per echo in both. The WebSocket \
         work in user space, the library's code and the copies it makes, is about 2 % (20 B) and \
         9 % (16 KiB) of our server's CPU, 6 % and 13 % of tungstenite's. So on loopback with \
         blocking threads the ratios stay near 1: the test shows that the library costs the server \
         little, not that a library can double such a server's throughput. With `--deflate`, \
         zlib-rs takes about 85 % of the server's CPU (compression 66 %, inflation 20 %): that row \
         measures the compressor, not the framing.",
    );
    s.truncate(s.trim_end().len());
    s.push('\n');
    s
}

/// Appends `text` as a paragraph wrapped at 95 columns, and a blank line. A word that would
/// read as Markdown at the start of a line (`+`, `-`, `#`, ...) stays on the line before.
fn para(s: &mut String, text: &str) {
    let mut width = 0;
    for word in text.split_whitespace() {
        let len = word.chars().count();
        let marker = word.starts_with(['+', '-', '*', '#', '>', '|', '='])
            || word.trim_end_matches(['.', ')']).chars().all(|c| c.is_ascii_digit()) && word.ends_with(['.', ')']);
        if width > 0 && width + 1 + len > 95 && !marker {
            s.push('\n');
            width = 0;
        } else if width > 0 {
            s.push(' ');
            width += 1;
        }
        s.push_str(word);
        width += len;
    }
    s.push_str("\n\n");
}

/// Replaces the section in BENCHMARKS.md, or appends it; creates the file if need be.
fn write_section(path: &std::path::Path, section: &str) -> std::io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_owned(),
        Err(e) => return Err(e),
    };
    std::fs::write(path, replace_section(&text, section))
}

/// `text` with the section (from its heading to the next `## ` heading) replaced by
/// `section`, or with `section` appended; the rest is left as it is (other sections belong to
/// other people).
fn replace_section(text: &str, section: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(start) = lines.iter().position(|l| l.trim_end() == SECTION) else {
        return format!("{}\n\n{section}", text.trim_end());
    };
    let end = lines[start + 1..].iter().position(|l| l.starts_with("## ")).map_or(lines.len(), |i| start + 1 + i);
    let mut out: String = lines[..start].concat();
    out.push_str(section);
    if end < lines.len() {
        out.push('\n');
        out.push_str(&lines[end..].concat());
    }
    out
}

fn size_label(size: usize) -> String {
    if size >= 1024 && size.is_multiple_of(1024) { format!("{} KiB", size / 1024) } else { format!("{size} B") }
}

fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn micros(nanos: u64) -> String {
    let us = nanos as f64 / 1000.0;
    match us {
        u if u >= 1000.0 => format!("{:.2} ms", u / 1000.0),
        u if u >= 100.0 => format!("{u:.0} µs"),
        u => format!("{u:.1} µs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_is_replaced_in_place_or_appended() {
        let new = format!("{SECTION}\n\nnew table\n");
        let doc = format!("# Benchmarks\n\n## Codec\n\nx\n\n{SECTION}\n\nold\n\n## Node\n\ny\n");
        assert_eq!(
            replace_section(&doc, &new),
            format!("# Benchmarks\n\n## Codec\n\nx\n\n{SECTION}\n\nnew table\n\n## Node\n\ny\n")
        );
        let last = format!("# Benchmarks\n\n{SECTION}\n\nold\n");
        assert_eq!(replace_section(&last, &new), format!("# Benchmarks\n\n{new}"));
        assert_eq!(replace_section("# Benchmarks\n\n## Codec\n", &new), format!("# Benchmarks\n\n## Codec\n\n{new}"));
    }

    #[test]
    fn paragraphs_wrap_without_starting_a_list() {
        let mut s = String::new();
        let text = format!("{} + deflate {} 2. x", "a".repeat(94), "b".repeat(85));
        para(&mut s, &text);
        assert!(s.lines().all(|l| l.chars().count() <= 97), "{s}");
        assert!(s.lines().all(|l| !l.starts_with("+ ") && !l.starts_with("1. ")), "{s}");
        assert!(s.ends_with("x\n\n"));
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1234567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(micros(85_300), "85.3 µs");
        assert_eq!(micros(412_000), "412 µs");
        assert_eq!(micros(2_425_000), "2.42 ms");
        assert_eq!(size_label(16384), "16 KiB");
        assert_eq!(size_label(20), "20 B");
    }
}
