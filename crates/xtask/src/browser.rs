//! A real browser against every face: headless Chromium (Debian's `chromium` package,
//! installed here when missing) is the client of the native, component, Node and Deno FFI
//! echo servers, each with and without permessage-deflate. `npm/test/browser/run.mjs` drives
//! it (through playwright-core) and checks echoes, close codes and the deflate answer.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::autobahn::Driver;
use crate::component;
use crate::node::{self, Target};
use crate::util::{Ctx, Result, free_port, run, start_echo_server};

/// Every server's largest message; the browser sends one of exactly this size and one byte
/// more (which must close with 1009).
const LIMIT: &str = "16777216";

pub fn test(ctx: &Ctx) -> Result {
    let chromium = chromium()?;
    // Kept alive until the browser is done; each kills its server when dropped.
    let mut servers = Vec::new();
    let mut targets = Vec::new();
    for (mode, deflate) in [("deflate", &["--deflate"][..]), ("plain", &[][..])] {
        let target = |name: &str, url: String| format!("{name}-{mode},{url},{mode},{LIMIT}");

        for (name, driver) in [("native", Driver::Blocking), ("async", Driver::Async)] {
            let args = [deflate, &["--max-message", LIMIT]].concat();
            let (guard, addr) = start_echo_server(ctx, driver.server(), Stdio::null(), &args)?;
            servers.push(guard);
            targets.push(target(name, format!("ws://{addr}/")));
        }

        let (guard, addr) = component::serve(ctx, Stdio::null(), &[deflate, &["--max-read-limit", LIMIT]].concat())?;
        servers.push(guard);
        targets.push(target("component", format!("ws://{addr}/")));

        for (name, face) in [("node", Target::NodeServer), ("deno-ffi", Target::DenoFfiServer)] {
            let port = free_port()?;
            servers.push(node::spawn_server(ctx, face, port, &[deflate, &["--max-payload", LIMIT]].concat())?);
            targets.push(target(name, format!("ws://127.0.0.1:{port}/")));
        }
    }
    run(Command::new("node").arg(ctx.root.join("npm/test/browser/run.mjs")).args(&targets).env("CHROMIUM", chromium))
}

/// `$CHROMIUM`, or Debian's Chromium, installed with apt-get if it is not there yet.
fn chromium() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return Ok(path.into());
    }
    let path = PathBuf::from("/usr/bin/chromium");
    if !path.exists() {
        println!("installing Debian's chromium package (the browser interop test's client)");
        run(Command::new("apt-get").args(["update", "-q"]))?;
        run(Command::new("apt-get")
            .args(["install", "-y", "-q", "--no-install-recommends", "chromium"])
            .env("DEBIAN_FRONTEND", "noninteractive"))?;
    }
    Ok(path)
}
