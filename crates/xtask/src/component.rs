//! The WebAssembly component's steps: build it, run its integration tests, and run
//! Autobahn|Testsuite against it in both roles (`lowbit-ws-host serve --deflate` as the
//! server, `lowbit-ws-host autobahn-client` as the client).
//!
//! Wire-in (main.rs / test.rs): `mod component;`, then steps such as
//! `("component: build + host-tests", component::test)`,
//! `("component: Autobahn server role", |ctx| component::autobahn(ctx, Side::Server, &quick()))`.

use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::autobahn::{Selection, Side};
use crate::util::{ChildGuard, Context, Ctx, Result, free_port, run, start_listening};

const AGENT: &str = "lowbit-component";

/// `cargo build --release --target wasm32-wasip2 -p lowbit-websockets-component`, and the
/// host binary. Needs `rustup target add wasm32-wasip2`.
pub fn build(ctx: &Ctx) -> Result {
    // Every command that builds the component installs its target first (a no-op when it is
    // there), so `demo` works on a fresh machine as well as `test`.
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip2"]))?;
    run(ctx.cargo().args(["build", "--release", "--target", "wasm32-wasip2", "-p", "lowbit-websockets-component"]))?;
    // The host binary is built with the workspace's full feature set (examples pull in the
    // dev-dependencies), the same as `cargo test --workspace --release`: wasmtime then builds
    // once, not once per feature set.
    ctx.build_examples()?;
    let wasm = component(ctx);
    let size = std::fs::metadata(&wasm).context(format!("cannot stat {}", wasm.display()))?.len();
    println!("component: {} ({} KiB)", wasm.display(), size / 1024);
    Ok(())
}

/// `cargo bench -p host-tests --bench echo`: component vs native echo over loopback TCP.
pub fn bench(ctx: &Ctx) -> Result {
    build(ctx)?;
    run(ctx.cargo().args(["bench", "-p", "host-tests", "--bench", "echo"]))
}

pub fn component(ctx: &Ctx) -> PathBuf {
    ctx.target.join("wasm32-wasip2/release/lowbit_websockets_component.wasm")
}

pub fn host_binary(ctx: &Ctx) -> PathBuf {
    ctx.target.join("release/lowbit-ws-host")
}

fn suite(ctx: &Ctx, side: Side) -> Result<PathBuf> {
    let name = match side {
        Side::Server => "server-test.sh",
        Side::Client => "client-test.sh",
    };
    [ctx.root.join("../shared/autobahn"), PathBuf::from("/work/shared/autobahn")]
        .into_iter()
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| "Autobahn|Testsuite scripts not found".to_owned())
}

/// Runs Autobahn against the component in one role. Passes iff the suite reports 0 failed
/// (the script's exit status); UNIMPLEMENTED cases (13.3–13.7: windows under 15 bits,
/// which the miniz engine declines) are listed and not counted.
pub fn autobahn(ctx: &Ctx, side: Side, sel: &Selection) -> Result {
    build(ctx)?;
    let role = match side {
        Side::Server => "server",
        Side::Client => "client",
    };
    let out = ctx.target.join("autobahn").join(format!("component-{role}"));
    std::fs::create_dir_all(&out).context(format!("cannot create {}", out.display()))?;
    let mut cmd = Command::new(suite(ctx, side)?);
    cmd.env("AUTOBAHN_VENV", ctx.target.join("autobahn-venv")).args(["--agent", AGENT]).arg("--out").arg(&out);
    if !sel.cases.is_empty() {
        cmd.args(["--cases", &sel.cases]);
    }
    if !sel.exclude.is_empty() {
        cmd.args(["--exclude", &sel.exclude]);
    }
    match side {
        Side::Server => {
            let log = File::create(out.join("host.log")).context("cannot create host.log")?;
            let (_guard, addr) = serve(ctx, Stdio::from(log), &["--deflate"])?;
            run(cmd.args(["--port", &addr.port().to_string()]))
        }
        Side::Client => {
            cmd.args(["--port", &free_port()?.to_string(), "--"]).arg(host_binary(ctx)).arg("autobahn-client");
            run(&mut cmd)
        }
    }
}

/// Starts `lowbit-ws-host serve` with `args` (`--deflate`, `--max-read-limit N`) on a free
/// port and waits for "listening on ADDR".
pub fn serve(ctx: &Ctx, stderr: Stdio, args: &[&str]) -> Result<(ChildGuard, SocketAddr)> {
    let mut cmd = Command::new(host_binary(ctx));
    cmd.args(["serve", "--addr", "127.0.0.1:0", "--component"]).arg(component(ctx)).args(args);
    start_listening("lowbit-ws-host", cmd, stderr, Duration::from_secs(60))
}

/// `cargo xtask demo` for the component: serve, exchange a few messages with the native
/// client (deflate on), close.
pub fn demo(ctx: &Ctx) -> Result {
    use lowbit_websockets::handshake::ClientOptions;
    use lowbit_websockets::{ConnectOptions, DeflateOptions, OpCode};
    build(ctx)?;
    let (_guard, addr) = serve(ctx, Stdio::inherit(), &["--deflate"])?;
    let opts = ConnectOptions {
        request: ClientOptions::new(addr.to_string()),
        deflate: Some(DeflateOptions::default()),
        ..ConnectOptions::default()
    };
    let tcp = std::net::TcpStream::connect(addr).context("connect")?;
    let (mut conn, connected) = lowbit_websockets::connect(tcp, &opts).map_err(|e| e.to_string())?;
    println!("connected to the component on {addr}, extensions: {:?}", connected.extensions);
    let mut buf = Vec::new();
    for text in ["hello from the host", "permessage-deflate makes this repeated text small, small, small"] {
        conn.write_message(OpCode::Text, text.as_bytes()).map_err(|e| e.to_string())?;
        let (_, echo) = conn.read_message(&mut buf).map_err(|e| e.to_string())?;
        println!("echo: {}", String::from_utf8_lossy(echo));
    }
    conn.close().map_err(|e| e.to_string())?;
    println!("closed cleanly");
    Ok(())
}
