//! `cargo xtask test`: every test, as a list of named steps. Each step runs even when an
//! earlier one failed, so one run shows every failure; the exit status is non-zero if any
//! step failed.

use std::time::Instant;

use crate::autobahn::{self, Driver, Selection, Side};
use crate::browser;
use crate::component;
use crate::installed;
use crate::node::{self, Target};
use crate::outside;
use crate::util::{ALL_FEATURES, Ctx, Result, run};

/// Autobahn cases left out of `test`: the larger messages of permessage-deflate (12.*, 13.*),
/// where the suite's time goes. What remains still runs every 13.* parameter combination,
/// with 1000 messages of 16, 64, 256 and 1024 bytes each.
const QUICK_EXCLUDE: &str = "12.*.[5-9],12.*.1[0-9],13.*.[5-9],13.*.1[0-9]";

/// A named step. To add one, add a line here.
type Step = (&'static str, fn(&Ctx) -> Result);

const STEPS: &[Step] = &[
    ("build the WebAssembly component (installs wasm32-wasip2) and lowbit-ws-host", component::build),
    ("npm ci + napi build (npm/, crates/node)", node::setup),
    ("cargo test --workspace --release (core with its async face, host-tests, node C ABI)", |ctx| {
        run(ctx.cargo().args(["test", "--workspace", "--release"]).args(ALL_FEATURES))
    }),
    (
        "lowbit-websockets as published: cargo package, README's server and client in a new crate outside the workspace",
        outside::check,
    ),
    ("npm test (node:test)", node::test),
    ("deno test (npm/deno)", node::test_deno),
    (
        "npm packages as users get them: packed, installed without cargo; CJS, ESM, Deno, FFI, tsc, wasm fallback, README",
        installed::check,
    ),
    ("Chromium against every face's echo server (installs Debian's chromium)", browser::test),
    ("install Autobahn|Testsuite (python venv in target/)", autobahn::setup),
    ("Autobahn: native server (12.*/13.* up to 1 KiB)", |ctx| {
        autobahn::run_side(ctx, Driver::Blocking, Side::Server, &quick())
    }),
    ("Autobahn: native client (12.*/13.* up to 1 KiB)", |ctx| {
        autobahn::run_side(ctx, Driver::Blocking, Side::Client, &quick())
    }),
    ("Autobahn: async server (12.*/13.* up to 1 KiB)", |ctx| {
        autobahn::run_side(ctx, Driver::Async, Side::Server, &quick())
    }),
    ("Autobahn: async client (12.*/13.* up to 1 KiB)", |ctx| {
        autobahn::run_side(ctx, Driver::Async, Side::Client, &quick())
    }),
    ("Autobahn: component server (12.*/13.* up to 1 KiB)", |ctx| component::autobahn(ctx, Side::Server, &quick())),
    ("Autobahn: component client (12.*/13.* up to 1 KiB)", |ctx| component::autobahn(ctx, Side::Client, &quick())),
    ("Autobahn: Node server (12.*/13.* up to 1 KiB)", |ctx| node::autobahn(ctx, Target::NodeServer, QUICK_EXCLUDE)),
    ("Autobahn: Deno FFI server (12.*/13.* up to 1 KiB)", |ctx| {
        node::autobahn(ctx, Target::DenoFfiServer, QUICK_EXCLUDE)
    }),
    ("Autobahn: npm client (12.*/13.* up to 1 KiB)", |ctx| node::autobahn(ctx, Target::NodeClient, QUICK_EXCLUDE)),
];

pub fn quick() -> Selection {
    Selection { cases: String::new(), exclude: QUICK_EXCLUDE.to_owned() }
}

pub fn run_all(ctx: &Ctx) -> Result {
    let start = Instant::now();
    let mut outcomes = Vec::new();
    for (i, (name, step)) in STEPS.iter().enumerate() {
        println!("\n==> [{}/{}] {name}", i + 1, STEPS.len());
        let t = Instant::now();
        let result = step(ctx);
        if let Err(e) = &result {
            println!("step failed: {e}");
        }
        outcomes.push((*name, result.is_ok(), t.elapsed()));
    }

    println!("\n==> summary ({:.0?} in all)", start.elapsed());
    for (name, ok, took) in &outcomes {
        println!("  {}  {name} ({took:.1?})", if *ok { "ok    " } else { "FAILED" });
    }
    let failed = outcomes.iter().filter(|(_, ok, _)| !ok).count();
    println!("{} passed, {failed} failed", outcomes.len() - failed);
    if failed == 0 { Ok(()) } else { Err(format!("{failed} step(s) failed")) }
}

#[cfg(test)]
mod tests {
    use super::STEPS;
    use crate::util::Ctx;

    /// The README's Rust blocks are the readme examples' files, in order, so they compile
    /// and run: the blocking server and client, the hyper and axum servers, then the
    /// component's blocking and async plugin hosts.
    #[test]
    fn readme_code_is_the_example() {
        let root = Ctx::new().root;
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let blocks: Vec<&str> =
            readme.split("```rust\n").skip(1).map(|rest| rest.split("```").next().unwrap()).collect();
        let files = [
            "crates/core/examples/readme/server.rs",
            "crates/core/examples/readme/client.rs",
            "crates/core/examples/readme-async/with_hyper.rs",
            "crates/core/examples/readme-async/with_axum.rs",
            "crates/host/examples/plugin/sync_host.rs",
            "crates/host/examples/plugin/async_host.rs",
        ];
        let files: Vec<String> = files.iter().map(|file| std::fs::read_to_string(root.join(file)).unwrap()).collect();
        assert_eq!(blocks, files, "README.md's Rust blocks differ from the examples they show");
    }

    #[test]
    fn step_names_are_unique() {
        for (i, (name, _)) in STEPS.iter().enumerate() {
            assert!(STEPS[..i].iter().all(|(other, _)| other != name), "{name}");
        }
    }
}
