//! Paths, commands and child processes shared by the tasks.

use std::ffi::OsString;
use std::fmt::Display;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub type Result<T = (), E = String> = std::result::Result<T, E>;

/// Adds what was being done to an error, as text.
pub trait Context<T> {
    fn context(self, what: impl Display) -> Result<T>;
}

impl<T, E: Display> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl Display) -> Result<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// Where things are.
pub struct Ctx {
    /// The workspace root.
    pub root: PathBuf,
    /// Cargo's target directory.
    pub target: PathBuf,
    /// Record the Autobahn results as the expected ones instead of checking them.
    pub bless: bool,
}

impl Ctx {
    pub fn new() -> Self {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).ancestors().nth(2).expect("crates/xtask has a grandparent");
        let root = root.to_path_buf();
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .or_else(|| std::env::var_os("CARGO_BUILD_TARGET_DIR"))
            .map_or_else(|| root.join("target"), |dir| root.join(dir));
        Self { root, target, bless: false }
    }

    /// `cargo` (the one running us, if any), run from the workspace root.
    pub fn cargo(&self) -> Command {
        let mut cmd = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo")));
        cmd.current_dir(&self.root);
        cmd
    }

    /// A release-built example of the core crate.
    pub fn example(&self, name: &str) -> PathBuf {
        self.target.join("release").join("examples").join(name)
    }

    /// Builds the examples in release mode. `--workspace` resolves features as
    /// `cargo test --workspace` does, so after the tests this reuses their build instead of
    /// recompiling dependencies with another feature set.
    pub fn build_examples(&self) -> Result {
        run(self.cargo().args(["build", "--release", "--workspace", "--bins", "--examples"]).args(ALL_FEATURES))
    }
}

/// The features every build and test of the workspace turns on, so that tests and examples
/// share one build: the core crate's async face with its hyper and axum upgrade helpers.
pub const ALL_FEATURES: [&str; 2] =
    ["--features", "lowbit-websockets/tokio,lowbit-websockets/hyper,lowbit-websockets/axum"];

/// Runs `cmd` with inherited stdio, echoing it first; fails unless it exits with 0.
pub fn run(cmd: &mut Command) -> Result {
    println!("$ {}", show(cmd));
    let status = cmd.status().context(format!("cannot run {}", cmd.get_program().display()))?;
    if status.success() { Ok(()) } else { Err(format!("`{}` failed ({status})", show(cmd))) }
}

fn show(cmd: &Command) -> String {
    let program = Path::new(cmd.get_program());
    // `cargo` rather than the full path of the toolchain's cargo.
    let short = program.file_name().filter(|name| *name == "cargo");
    let mut s = short.unwrap_or(program.as_os_str()).to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        let arg = arg.to_string_lossy();
        if arg.is_empty() || arg.contains([' ', '*', '\'', '?']) {
            s.push_str(&format!(" '{arg}'"));
        } else {
            s.push(' ');
            s.push_str(&arg);
        }
    }
    s
}

/// A port on 127.0.0.1 that nothing listened on a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener.local_addr().context("cannot find a free port")?.port())
}

/// A child process that is killed (and reaped) when this is dropped, on every exit path.
pub struct ChildGuard {
    child: Child,
}

impl From<Child> for ChildGuard {
    fn from(child: Child) -> Self {
        Self { child }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the release-built echo server on a free port with `args` (`--deflate`,
/// `--max-message N`) and waits until it listens.
/// Its stderr (one line per failed connection) goes to `stderr`.
/// Starts the echo server example `name` (`echo-server`, `async-echo-server`) on a free port.
pub fn start_echo_server(ctx: &Ctx, name: &str, stderr: Stdio, args: &[&str]) -> Result<(ChildGuard, SocketAddr)> {
    let mut cmd = Command::new(ctx.example(name));
    cmd.args(["--addr", "127.0.0.1:0"]).args(args);
    start_listening("echo server", cmd, stderr, Duration::from_secs(30))
}

/// Starts a server that prints "listening on ADDR" once it listens (its stdout's first line)
/// and waits up to `wait` for that line; `name` is for errors.
pub fn start_listening(
    name: &str,
    mut cmd: Command,
    stderr: Stdio,
    wait: Duration,
) -> Result<(ChildGuard, SocketAddr)> {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .context(format!("cannot start {}", cmd.get_program().display()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let guard = ChildGuard { child };

    // Read the "listening on ADDR" line on a thread, so a server that hangs cannot hang us.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = tx.send(BufReader::new(stdout).read_line(&mut line).map(|_| line));
    });
    let line = match rx.recv_timeout(wait) {
        Ok(Ok(line)) => line,
        Ok(Err(e)) => return Err(format!("{name}: cannot read its output: {e}")),
        Err(_) => return Err(format!("{name} did not say \"listening on ADDR\" within {} s", wait.as_secs())),
    };
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("{name}: expected \"listening on ADDR\", got {:?}", line.trim()))?;
    Ok((guard, addr))
}
