//! The Node-API / Deno face's steps (`npm/`, `crates/node`), for `cargo xtask test`, `demo`,
//! `autobahn` and `bench`. Everything goes through npm scripts, so `npm ci` installs every
//! tool they need (napi-rs CLI, ws, bufferutil, utf-8-validate, Deno); Python `websockets` is
//! installed by the tests into target/py-venv.

use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::util::{ChildGuard, Context, Ctx, Result, free_port, run};

/// Which of our ends Autobahn tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `node npm/examples/echo-server.mjs --deflate` (server role).
    NodeServer,
    /// `deno run … npm/examples/echo-server-deno.ts --deflate` (server role, Deno FFI).
    DenoFfiServer,
    /// `node npm/examples/autobahn-client.mjs` (client role, the npm WebSocket client).
    NodeClient,
}

impl Target {
    fn agent(self) -> &'static str {
        match self {
            Target::NodeServer => "lowbit-node",
            Target::DenoFfiServer => "lowbit-deno-ffi",
            Target::NodeClient => "lowbit-node-client",
        }
    }
}

pub fn npm_dir(ctx: &Ctx) -> PathBuf {
    ctx.root.join("npm")
}

fn npm(ctx: &Ctx, args: &[&str]) -> Command {
    let mut cmd = Command::new("npm");
    cmd.args(args).current_dir(npm_dir(ctx));
    cmd
}

pub fn deno(ctx: &Ctx) -> PathBuf {
    npm_dir(ctx).join("node_modules/.bin/deno")
}

/// `npm ci` (devDependencies: @napi-rs/cli, ws, bufferutil, utf-8-validate, deno), then the
/// addon: `napi build --platform --release` puts the .node next to index.js. Also builds the
/// two helper binaries the tests and the benchmark use.
pub fn setup(ctx: &Ctx) -> Result {
    run(&mut npm(ctx, &["ci", "--no-audit", "--no-fund"]))?;
    run(&mut npm(ctx, &["run", "build"]))?;
    run(ctx.cargo().args(["build", "--release", "-p", "lowbit-ws-node", "--bins"]))
}

/// `npm test`: the node:test suites (ws interop both ways with and without deflate, the
/// shared conformance list, Python websockets, the slow reader, the Codec).
pub fn test(ctx: &Ctx) -> Result {
    run(&mut npm(ctx, &["test"]))
}

/// `deno test` of the Deno FFI module and of the npm package under Deno.
pub fn test_deno(ctx: &Ctx) -> Result {
    run(&mut npm(ctx, &["run", "test:deno"]))
}

/// `npm run bench`: our Node server vs ws 8, our Deno FFI server vs Deno's built-in one.
pub fn bench(ctx: &Ctx) -> Result {
    run(&mut npm(ctx, &["run", "bench"]))
}

/// Installs and builds the package (as `test` does, so a fresh machine gets there too), starts
/// the Node echo server, runs the example client against it, stops the server.
pub fn demo(ctx: &Ctx) -> Result {
    setup(ctx)?;
    let port = free_port()?;
    let _server = spawn_server(ctx, Target::NodeServer, port, &["--deflate"])?;
    run(Command::new("node").arg(npm_dir(ctx).join("examples/client.mjs")).arg(format!("ws://127.0.0.1:{port}/")))
}

/// The full Autobahn|Testsuite (or `exclude` left out) against one of our ends; passes iff the
/// suite reports 0 failed.
pub fn autobahn(ctx: &Ctx, target: Target, exclude: &str) -> Result {
    let suite = [ctx.root.join("../shared/autobahn"), PathBuf::from("/work/shared/autobahn")]
        .into_iter()
        .find(|dir| dir.join("server-test.sh").is_file())
        .ok_or("Autobahn|Testsuite scripts not found (../shared/autobahn)")?;
    let out = ctx.target.join("autobahn").join(target.agent());
    std::fs::create_dir_all(&out).context(format!("cannot create {}", out.display()))?;
    let port = free_port()?;
    let mut cmd;
    let _server;
    if target == Target::NodeClient {
        cmd = Command::new(suite.join("client-test.sh"));
        cmd.args(["--port", &port.to_string()]);
        _server = None;
    } else {
        _server = Some(spawn_server(ctx, target, port, &["--deflate"])?);
        cmd = Command::new(suite.join("server-test.sh"));
        cmd.args(["--port", &port.to_string()]);
    }
    cmd.env("AUTOBAHN_VENV", ctx.target.join("autobahn-venv")).args(["--agent", target.agent()]).arg("--out").arg(&out);
    if !exclude.is_empty() {
        cmd.args(["--exclude", exclude]);
    }
    if target == Target::NodeClient {
        cmd.args(["--", "node"]).arg(npm_dir(ctx).join("examples/autobahn-client.mjs"));
    }
    run(&mut cmd)
}

/// Starts one of our JavaScript echo servers on `port` with `args` (`--deflate`,
/// `--max-payload N`) and waits until it accepts connections.
pub fn spawn_server(ctx: &Ctx, target: Target, port: u16, args: &[&str]) -> Result<ChildGuard> {
    let dir = npm_dir(ctx);
    let port_arg = port.to_string();
    let mut cmd = match target {
        Target::DenoFfiServer => {
            let mut c = Command::new(deno(ctx));
            c.args(["run", "--allow-ffi", "--allow-net", "--allow-read", "--allow-env"])
                .arg(dir.join("examples/echo-server-deno.ts"));
            c
        }
        _ => {
            let mut c = Command::new("node");
            c.arg(dir.join("examples/echo-server.mjs"));
            c
        }
    };
    cmd.args(["--port", &port_arg]).args(args).stdin(Stdio::null()).stdout(Stdio::null());
    let server = ChildGuard::from(cmd.spawn().context(format!("cannot start the {target:?} echo server"))?);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!("the {target:?} echo server did not listen on {addr} within 30 s"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}
