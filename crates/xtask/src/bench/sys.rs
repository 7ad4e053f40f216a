//! The servers under test as child processes, CPU accounting from /proc, and what machine
//! this is.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A server under test. The process is killed and reaped when this is dropped, so it goes
/// away on every exit path (errors and panics included).
pub struct Server {
    pub addr: SocketAddr,
    child: Child,
    /// Lines the server wrote to stderr (one per failed connection): counted, first few kept.
    stderr: Arc<Mutex<(usize, Vec<String>)>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `exe --addr 127.0.0.1:0 ARGS`, on CPU `cpu` alone if given (through `taskset`,
    /// which execs the server: the child's pid is the server's), and waits for its
    /// "listening on ADDR" line.
    pub fn start(exe: &Path, args: &[&str], cpu: Option<usize>) -> Result<Self, String> {
        let mut command = match cpu {
            Some(cpu) => {
                let mut taskset = Command::new("taskset");
                taskset.args(["-c", &cpu.to_string()]).arg(exe);
                taskset
            }
            None => Command::new(exe),
        };
        command.args(["--addr", "127.0.0.1:0"]).args(args);
        let name = exe.file_name().map_or_else(|| exe.display().to_string(), |n| n.to_string_lossy().into_owned());
        Self::spawn(&name, command, None)
    }

    /// Starts `command` and waits for the first line on its standard output: the server's
    /// address when `addr` is `None` ("listening on ADDR"), else only the sign that it listens
    /// on `addr` (for servers that take a port and print their own words).
    pub fn spawn(name: &str, mut command: Command, addr: Option<SocketAddr>) -> Result<Self, String> {
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {name}: {e}"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let stderr = child.stderr.take().expect("stderr is piped");
        let mut server = Server { addr: ([127, 0, 0, 1], 0).into(), child, stderr: Arc::default() };

        let lines = Arc::clone(&server.stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut l = lines.lock().unwrap_or_else(|e| e.into_inner());
                l.0 += 1;
                if l.1.len() < 5 {
                    l.1.push(line);
                }
            }
        });
        // On a thread, so a server that never says the line cannot hang us; the pipe stays
        // open (and drained) for the life of the server.
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            lines.for_each(drop);
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(Some(Ok(line))) => line,
            Ok(_) => return Err(format!("{name} exited or closed its output before listening")),
            Err(_) => return Err(format!("{name} did not say it listens within 30 s")),
        };
        server.addr = match addr {
            Some(addr) => addr,
            None => line
                .trim()
                .strip_prefix("listening on ")
                .and_then(|a| a.parse().ok())
                .ok_or_else(|| format!("{name}: expected \"listening on ADDR\", got {:?}", line.trim()))?,
        };
        Ok(server)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// How many lines the server wrote to stderr, and the first few.
    pub fn errors(&self) -> (usize, Vec<String>) {
        self.stderr.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Whether `exe --help` mentions `flag` (waits 10 s at most: a server that does not know
/// `--help` would start listening instead).
pub fn help_mentions(exe: &Path, flag: &str) -> bool {
    let Ok(mut child) =
        Command::new(exe).arg("--help").stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn()
    else {
        return false;
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut out = String::new();
    let _ = std::io::Read::read_to_string(&mut child.stdout.take().expect("stdout is piped"), &mut out);
    out.contains(flag)
}

/// CPU times at one instant: this process (the generator), the server, the whole machine.
pub struct CpuSample {
    pub at: Instant,
    own: Option<u64>,
    server: Option<u64>,
    machine: Option<(u64, u64)>,
}

/// CPU used during a window, in percent of one core (the machine has `cores` × 100 %).
#[derive(Debug, Clone, Copy)]
pub struct CpuUse {
    pub generator: f64,
    pub server: f64,
    /// Everything else that ran meanwhile: other processes on a shared machine, the kernel's
    /// softirq work not charged to either process.
    pub other: f64,
}

impl CpuSample {
    pub fn take(server_pid: u32) -> Self {
        Self {
            at: Instant::now(),
            own: process_ticks("self"),
            server: process_ticks(&server_pid.to_string()),
            machine: machine_ticks(),
        }
    }

    pub fn since(&self, before: &CpuSample) -> Option<CpuUse> {
        let secs = (self.at - before.at).as_secs_f64();
        let tck = clock_ticks() as f64;
        let pct = |ticks: u64| ticks as f64 / tck / secs * 100.0;
        let generator = pct(self.own?.checked_sub(before.own?)?);
        let server = pct(self.server?.checked_sub(before.server?)?);
        let (busy, total) = (self.machine?.0 - before.machine?.0, self.machine?.1 - before.machine?.1);
        let machine = if total == 0 { 0.0 } else { busy as f64 / total as f64 * cores() as f64 * 100.0 };
        Some(CpuUse { generator, server, other: (machine - generator - server).max(0.0) })
    }
}

/// utime + stime of a process, all its threads, in clock ticks (/proc/PID/stat fields 14, 15).
fn process_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses; the fields after it do not.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

/// (busy, total) ticks of all CPUs, from the first line of /proc/stat.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?.strip_prefix("cpu ")?;
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let t: Vec<u64> = line.split_whitespace().take(8).map(|f| f.parse().unwrap_or(0)).collect();
    let total: u64 = t.iter().sum();
    let idle = t.get(3)? + t.get(4)?;
    Some((total - idle, total))
}

fn clock_ticks() -> u64 {
    static TCK: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TCK.get_or_init(|| command_output("getconf", &["CLK_TCK"]).and_then(|s| s.trim().parse().ok()).unwrap_or(100))
}

pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// What the report says about where it was measured.
pub struct Machine {
    pub date: String,
    pub cpu: String,
    pub cores: usize,
    pub rustc: String,
}

impl Machine {
    pub fn describe() -> Self {
        let cpu = command_output("lscpu", &[])
            .and_then(|out| out.lines().find_map(|l| l.strip_prefix("Model name:").map(|m| m.trim().to_owned())))
            .unwrap_or_else(|| "unknown CPU".to_owned());
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_owned());
        Self {
            date: command_output("date", &["-u", "+%Y-%m-%d"])
                .map_or_else(|| "unknown date".into(), |d| d.trim().into()),
            cpu,
            cores: cores(),
            rustc: command_output(&rustc, &["--version"]).map_or_else(|| "unknown rustc".into(), |v| v.trim().into()),
        }
    }
}
