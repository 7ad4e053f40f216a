//! The project's task runner: `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//! Its dependencies beyond the crate itself are tokio and libc, for the load generator of
//! `bench`: it builds wherever the crate builds on Linux.

mod autobahn;
mod bench;
mod browser;
mod component;
mod demo;
mod installed;
mod json;
mod node;
mod outside;
mod package;
mod test;
mod util;

use std::process::ExitCode;

use autobahn::{Selection, Side};
use util::{Ctx, Result};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo       build and start the echo server, exchange a few messages with it, close
  test       run every test: cargo test, then Autobahn in both roles (12.*/13.* up to 1 KiB)
             [--bless]  record the Autobahn results as autobahn/expected-results.json
  autobahn   the full Autobahn|Testsuite in both roles for every face (native, async, component,
             Node, Deno FFI); the native face is checked against the expected results
             [--face native|component|node] [--role server|client] [--cases PATTERNS]
             [--exclude PATTERNS] [--bless]
  package    the npm packages for every platform this machine builds (linux-x64-gnu,
             linux-x64-musl, linux-arm64-gnu, the wasm32-wasi fallback), packed into
             target/npm-dist with their sizes
  installed  test's npm step alone: pack, install into an empty project without cargo, use it
  outside    test's crate step alone: cargo package, then README.md's server and client built
             against the unpacked .crate in a new crate outside the workspace
  browser    headless Chromium against every face's echo server (after `test` built them)
  bench      loopback load test: our echo servers (async, blocking, + deflate) vs
             fastwebsockets, tokio-tungstenite and tungstenite, 100 and 10,000 connections,
             then RSS per idle connection (writes BENCHMARKS.md)
             [--quick] [--duration S] [--warmup S] [--rounds N] [--connections N[,N]]
             [--only SERVER[,SERVER]] [--size BYTES[,BYTES]] [--threads N] [--no-pin]
             [--rss N] [--write|--no-write]   (--help for the details)
  bench-memory     RSS per idle connection on every face, plain and deflate, cold and warm, vs
                   ws and Python websockets; deflate's bytes on the wire (writes BENCHMARKS.md)
                   [--connections N] [--only LIST] [--no-deflate] [--write|--no-write]
  bench-component  echo through the WebAssembly component vs native (cargo bench -p host-tests)
  bench-node       npm run bench: our Node/Deno servers vs ws and Deno's built-in server
  criterion  the codec benches (cargo bench -p lowbit-websockets) [-- ARGS for the harness]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let mut ctx = Ctx::new();
    let result = match command.as_str() {
        "demo" => no_args(rest)
            .and_then(|()| demo::run_demo(&ctx))
            .and_then(|()| component::demo(&ctx))
            .and_then(|()| node::demo(&ctx)),
        "test" => match rest {
            [] => test::run_all(&ctx),
            [flag] if flag == "--bless" => {
                ctx.bless = true;
                test::run_all(&ctx)
            }
            [arg, ..] => Err(format!("unexpected argument {arg:?}")),
        },
        "autobahn" => autobahn_command(&mut ctx, rest),
        "package" => no_args(rest).and_then(|()| package::package_all(&ctx)),
        "installed" => no_args(rest).and_then(|()| installed::check(&ctx)),
        "outside" => no_args(rest).and_then(|()| outside::check(&ctx)),
        "browser" => no_args(rest).and_then(|()| browser::test(&ctx)),
        "bench" => bench::run(rest),
        "bench-memory" => bench::memory::run(rest),
        "bench-component" => no_args(rest).and_then(|()| component::bench(&ctx)),
        "bench-node" => no_args(rest).and_then(|()| node::bench(&ctx)),
        "criterion" => bench::run_benches(&ctx, rest.strip_prefix(&["--".to_owned()][..]).unwrap_or(rest)),
        "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}\n\n{USAGE}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {command}: {e}");
            ExitCode::FAILURE
        }
    }
}

fn no_args(rest: &[String]) -> Result {
    match rest.first() {
        None => Ok(()),
        Some(arg) => Err(format!("unexpected argument {arg:?}")),
    }
}

fn autobahn_command(ctx: &mut Ctx, rest: &[String]) -> Result {
    let mut sides = Side::BOTH.to_vec();
    let mut faces = vec!["native", "async", "component", "node"];
    let mut sel = Selection::default();
    let mut it = rest.iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().cloned().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--role" => {
                sides = match value()?.as_str() {
                    "server" => vec![Side::Server],
                    "client" => vec![Side::Client],
                    other => return Err(format!("--role: expected server or client, not {other:?}")),
                }
            }
            "--face" => {
                let face = value()?;
                faces.retain(|f| *f == face);
                if faces.is_empty() {
                    return Err(format!("--face: expected native, async, component or node, not {face:?}"));
                }
            }
            "--cases" => sel.cases = value()?,
            "--exclude" => sel.exclude = value()?,
            "--bless" => ctx.bless = true,
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    let mut failed = Vec::new();
    let mut report = |name: String, result: Result| {
        if let Err(e) = result {
            println!("{e}");
            failed.push(format!("{name}: {e}"));
        }
    };
    for face in faces {
        for &side in &sides {
            println!("\n==> Autobahn {face} {side:?} role");
            let result = match face {
                "native" => autobahn::run_side(ctx, autobahn::Driver::Blocking, side, &sel),
                "async" => autobahn::run_side(ctx, autobahn::Driver::Async, side, &sel),
                "component" => component::build(ctx).and_then(|()| component::autobahn(ctx, side, &sel)),
                _ => {
                    let targets: &[node::Target] = match side {
                        Side::Server => &[node::Target::NodeServer, node::Target::DenoFfiServer],
                        Side::Client => &[node::Target::NodeClient],
                    };
                    targets.iter().try_for_each(|&t| node::autobahn(ctx, t, &sel.exclude))
                }
            };
            report(format!("{face} {side:?} role"), result);
        }
    }
    if failed.is_empty() { Ok(()) } else { Err(failed.join("; ")) }
}
