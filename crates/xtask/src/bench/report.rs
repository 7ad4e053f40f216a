//! The load test's report: the "Loopback load test" section of BENCHMARKS.md, in Markdown.

use std::fmt::Write as _;

use super::rss::Footprint;
use super::sys::Machine;
use super::{Options, SIZES, Sample, Samples, Target};

const COMMAND: &str = "cargo xtask bench";
const SECTION: &str = "## Loopback load test";
/// The servers the ratios are taken against, the first one present.
const BASELINES: [&str; 2] = ["fastwebsockets", "tungstenite"];

/// What was run, and where.
pub struct Run<'a> {
    pub args: &'a [String],
    pub opts: &'a Options,
    pub machine: &'a Machine,
    pub targets: &'a [&'a Target],
    pub pinned: bool,
}

/// One sample as a line of progress output.
pub fn sample_line(x: &Sample) -> String {
    let cpu = x.cpu.map_or_else(String::new, |c| {
        format!("CPU: generator {:.0} %, server {:.0} %, other {:.0} %", c.generator, c.server, c.other)
    });
    let per_echo = x.server_micros().map_or_else(String::new, |us| format!(", {us:.1} µs per echo"));
    format!("{:>10} msgs/s  p50 {:>9}  p99 {:>9}  {cpu}{per_echo}", thousands(x.rate), micros(x.p50), micros(x.p99))
}

/// The round with the most messages/s: noise from other work only ever lowers throughput,
/// so the best round is the nearest to what the server can do.
fn best(v: &[Sample]) -> Option<&Sample> {
    v.iter().max_by(|a, b| a.rate.total_cmp(&b.rate))
}

pub fn render(run: &Run, samples: &Samples, footprints: &[(usize, Footprint)]) -> String {
    let (opts, m) = (run.opts, run.machine);
    let mut s = String::new();
    let command = if run.args.is_empty() { COMMAND.to_owned() } else { format!("{COMMAND} {}", run.args.join(" ")) };
    let _ = writeln!(s, "{SECTION}\n");
    para(
        &mut s,
        &format!(
            "`{command}`, run {} on {} ({} cores, lscpu), {}. Each scenario is N connections, \
             each with one message in flight (send, wait for the echo, check it byte for byte, \
             send the next); {} s measured after {} s of warm-up; the best of {} alternating \
             round(s) (the range is over all rounds). Messages are binary, cut from a 1 MiB \
             text-like corpus. {} The generator is event-driven: {} thread(s), each a \
             current-thread tokio runtime with a task per connection over this crate's sans-IO \
             `Session`; see `crates/xtask/src/bench/load.rs`.",
            m.date,
            m.cpu,
            m.cores,
            m.rustc,
            opts.duration.as_secs_f64(),
            opts.warmup.as_secs_f64(),
            opts.rounds,
            if run.pinned {
                "The server is pinned to one core and the generator to another."
            } else {
                "Server and generator were not pinned: they shared the cores."
            },
            opts.threads,
        ),
    );
    let mut connections: Vec<usize> = samples.keys().map(|k| k.0).collect();
    connections.dedup();
    for n in connections {
        let _ = writeln!(s, "### {} connections\n", thousands(n as f64));
        table(&mut s, run.targets, samples, n);
        ratios(&mut s, run.targets, samples, n);
    }
    memory(&mut s, run.targets, footprints, opts.rss);
    notes(&mut s, run);
    s.truncate(s.trim_end().len());
    s.push('\n');
    s
}

/// The measurements at `n` connections, size by size.
fn table(s: &mut String, targets: &[&Target], samples: &Samples, n: usize) {
    let _ = writeln!(
        s,
        "| server | message | msgs/s | msgs/s range | p50 latency | p99 latency | CPU generator | CPU server | CPU other | server CPU per echo |"
    );
    let _ = writeln!(s, "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut noisy = Vec::new();
    for size in SIZES {
        for (ti, t) in targets.iter().enumerate() {
            let Some(v) = samples.get(&(n, ti, size)) else { continue };
            let Some(x) = best(v) else { continue };
            let (lo, hi) = v.iter().fold((f64::MAX, 0f64), |(lo, hi), x| (lo.min(x.rate), hi.max(x.rate)));
            let cpu = |f: fn(&super::CpuUse) -> f64| {
                x.cpu.as_ref().map_or_else(|| "?".to_owned(), |c| format!("{:.0} %", f(c)))
            };
            if let Some(c) = x.cpu.filter(|c| c.other > 25.0) {
                noisy.push(format!("{} {} ({:.0} %)", t.label, size_label(size), c.other));
            }
            let _ = writeln!(
                s,
                "| {} | {} | {} | {}–{} | {} | {} | {} | {} | {} | {} |",
                t.label,
                size_label(size),
                thousands(x.rate),
                thousands(lo),
                thousands(hi),
                micros(x.p50),
                micros(x.p99),
                cpu(|c| c.generator),
                cpu(|c| c.server),
                cpu(|c| c.other),
                x.server_micros().map_or_else(|| "?".to_owned(), |us| format!("{us:.2} µs")),
            );
        }
    }
    s.push('\n');
    if !noisy.is_empty() {
        para(
            s,
            &format!(
                "**Noise:** other work on the machine took more than a quarter of a core during the \
                 best round of {}; those numbers are low by about that share.",
                noisy.join(", ")
            ),
        );
    }
}

/// Every server against the baseline at `n` connections: messages/s and p99, size by size.
fn ratios(s: &mut String, targets: &[&Target], samples: &Samples, n: usize) {
    let Some((bi, base)) = BASELINES.iter().find_map(|b| targets.iter().enumerate().find(|(_, t)| t.key == *b)) else {
        return;
    };
    let best_of = |ti: usize, size: usize| samples.get(&(n, ti, size)).and_then(|v| best(v));
    let sizes: Vec<usize> = SIZES.into_iter().filter(|&size| best_of(bi, size).is_some()).collect();
    let mut rows = String::new();
    // Deflate rows are left out: no peer has permessage-deflate to hold them against.
    for (ti, t) in targets.iter().enumerate().filter(|&(ti, t)| ti != bi && !t.deflate) {
        let cells: Vec<String> = sizes
            .iter()
            .map(|&size| match (best_of(ti, size), best_of(bi, size)) {
                (Some(x), Some(b)) => {
                    let cpu = match (x.server_micros(), b.server_micros()) {
                        (Some(ours), Some(theirs)) if theirs > 0.0 => format!(" / {:.2}×", ours / theirs),
                        _ => " / ?".to_owned(),
                    };
                    format!("{:.2}× / {:.2}×{cpu}", x.rate / b.rate, x.p99 as f64 / b.p99 as f64)
                }
                _ => "–".to_owned(),
            })
            .collect();
        if cells.iter().any(|c| c != "–") {
            let _ = writeln!(rows, "| {} | {} |", t.label, cells.join(" | "));
        }
    }
    if rows.is_empty() {
        return;
    }
    let labels: Vec<String> = sizes.iter().map(|&size| size_label(size)).collect();
    para(
        s,
        &format!(
            "Against {}: msgs/s (higher is better) / p99 latency (lower is better) / server CPU \
             per echo (lower is better).",
            base.label
        ),
    );
    let _ = writeln!(s, "| server | {} |", labels.join(" | "));
    let _ = writeln!(s, "| --- |{}", " ---: |".repeat(sizes.len()));
    let _ = writeln!(s, "{rows}");
}

/// The memory test's table.
fn memory(s: &mut String, targets: &[&Target], footprints: &[(usize, Footprint)], connections: usize) {
    if footprints.is_empty() {
        return;
    }
    let _ = writeln!(s, "### Memory per idle connection\n");
    para(
        s,
        &format!(
            "{} upgraded connections held open on a freshly started server: the growth of its \
             resident set (VmRSS) divided by their number, once after the upgrades and once after \
             one 1 KiB echo on every connection (the buffers a first message brings).",
            thousands(connections as f64)
        ),
    );
    let base = footprints.iter().find(|(ti, _)| targets[*ti].key == BASELINES[0]).map(|(_, f)| f);
    let _ = writeln!(s, "| server | idle, KiB per connection | after one echo, KiB per connection |");
    let _ = writeln!(s, "| --- | ---: | ---: |");
    for (ti, f) in footprints {
        let vs = |ours: f64, theirs: Option<f64>| match theirs {
            Some(b) if b > 0.0 && targets[*ti].key != BASELINES[0] => format!(" ({:.2}×)", ours / b),
            _ => String::new(),
        };
        let _ = writeln!(
            s,
            "| {} | {:.1}{} | {:.1}{} |",
            targets[*ti].label,
            f.cold / 1024.0,
            vs(f.cold, base.map(|b| b.cold)),
            f.warm / 1024.0,
            vs(f.warm, base.map(|b| b.warm)),
        );
    }
    s.push('\n');
    if base.is_some() {
        para(s, "In parentheses: the ratio to fastwebsockets (lower is better).");
    }
}

fn notes(s: &mut String, run: &Run) {
    let _ = writeln!(s, "### How to read this\n");
    para(
        s,
        "Servers: `lowbit async` is `crates/core/examples/async-echo-server.rs --threads 1` (one \
         current-thread tokio runtime, a task per connection); `fastwebsockets` (0.10, upgraded \
         through hyper 1 as its documentation does) and `tokio-tungstenite` (0.30) are \
         `crates/bench-peers`, the same shape: one current-thread runtime, a task per connection, \
         TCP_NODELAY, every message echoed as it came, 64 MiB limit, no deflate. `lowbit` is \
         `echo-server` (blocking, thread per connection, TCP_NODELAY, `max_chunk_size` 64 KiB, \
         16 MiB limit) and `tungstenite` `tungstenite-echo-server`, the same shape over blocking \
         tungstenite 0.30 (64 KiB read buffer, `send` = write + flush per echo). All are release \
         builds, run as child processes on loopback, against the same generator.",
    );
    if run.targets.iter().any(|t| t.deflate) {
        para(
            s,
            "The `+ deflate` rows are our servers with `--deflate`: the generator offers \
             permessage-deflate with the crate's defaults (level 6, 1 KiB threshold, context \
             takeover) and the zlib-rs engine, as the servers' `--deflate` does, and compresses its \
             own messages too, so those rows pay compression and inflation at both ends. No peer \
             has permessage-deflate to compare with.",
        );
    }
    para(
        s,
        &format!(
            "The CPU columns say how the cores were shared during the best round's measured window, in \
             % of one core ({} % is the whole machine); \"other\" is everything else that ran \
             (kernel work charged to neither process and, on a shared machine, other people's \
             builds and tests), hence the alternating rounds and the range. {} Latency runs from \
             just before a message is queued to the decoding of its echo. In a closed loop it is \
             mostly queueing (mean ≈ connections / msgs/s), so p99 follows the throughput; it is \
             not the latency of an idle server.",
            run.machine.cores * 100,
            if run.pinned {
                "When the generator's column nears 100 %, the generator, not the server, limits \
                 that row's throughput: on loopback the generator does the same kernel work per \
                 echo as the server (a `write` and a `read`, and the sender runs the receiver's \
                 TCP input path), which is most of either side's CPU. Then the server CPU per \
                 echo (its CPU time in the window over the echoes) is what still tells servers \
                 apart."
            } else {
                "Unpinned, every cycle the generator spends is one the server does not get."
            }
        ),
    );
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
pub fn write_section(path: &std::path::Path, section: &str) -> std::io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "# Benchmarks\n".to_owned(),
        Err(e) => return Err(e),
    };
    std::fs::write(path, replace_section(&text, section))
}

/// `text` with the section (from its heading, `section`'s first line, to the next `## `
/// heading) replaced by `section`, or with `section` appended; the rest is left as it is
/// (other sections belong to other people).
fn replace_section(text: &str, section: &str) -> String {
    let heading = section.lines().next().unwrap_or_default().trim_end();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let Some(start) = lines.iter().position(|l| l.trim_end() == heading) else {
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

pub fn size_label(size: usize) -> String {
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
        u if u >= 1e6 => format!("{:.2} s", u / 1e6),
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
        assert_eq!(micros(1_048_580_000), "1.05 s");
        assert_eq!(size_label(16384), "16 KiB");
        assert_eq!(size_label(20), "20 B");
    }
}
