//! The defences both echo servers share, and their command-line flags: the handshake deadline,
//! the fragment cap, the accept back-off and the stalled-peer policy. Defaults are core's
//! (`HANDSHAKE_TIMEOUT`, `MAX_FRAGMENTS`, `Liveness::SERVER`); tests set short ones.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lowbit_websockets::liveness::{Liveness, Stall, Verdict, Watchdog};
use lowbit_websockets::tcp::{ACCEPT_PAUSE, ACCEPT_REPORT_EVERY, AcceptBackoff};
use lowbit_websockets::{AcceptOptions, HANDSHAKE_TIMEOUT};

pub const USAGE: &str = "  --handshake-timeout MS  total time for the upgrade request (default 10000; 0 = none)
  --max-fragments N       most frames per message (default 131072; 0 = no cap)
  --write-stall MS        drop a peer whose output makes no progress this long (default 30000; 0 = never)
  --idle MS               ping a peer quiet this long, drop it if still quiet after as long again
                          (default 120000; 0 = never)
  --accept-pause MS       pause after a failed accept, e.g. out of file descriptors (default 100)";

/// The parsed flags.
#[derive(Debug, Clone)]
pub struct Hardening {
    pub handshake_timeout: Option<Duration>,
    pub max_fragments: usize,
    pub liveness: Liveness,
    pub accept_pause: Duration,
}

impl Default for Hardening {
    fn default() -> Self {
        Self {
            handshake_timeout: Some(HANDSHAKE_TIMEOUT),
            max_fragments: lowbit_websockets::MAX_FRAGMENTS,
            liveness: Liveness::SERVER,
            accept_pause: ACCEPT_PAUSE,
        }
    }
}

impl Hardening {
    /// Takes `arg` if it is one of ours (reading its value with `value`); `Ok(false)` if not.
    pub fn parse(&mut self, arg: &str, value: &mut dyn FnMut(&str) -> Result<String, String>) -> Result<bool, String> {
        let mut number = |name: &str| -> Result<u64, String> {
            let v = value(name)?;
            v.parse().map_err(|_| format!("{name}: not a number: {v}"))
        };
        let millis = |n: u64| (n > 0).then(|| Duration::from_millis(n));
        match arg {
            "--handshake-timeout" => self.handshake_timeout = millis(number(arg)?),
            "--max-fragments" => {
                self.max_fragments = usize::try_from(number(arg)?).ok().filter(|&n| n > 0).unwrap_or(usize::MAX)
            }
            "--write-stall" => self.liveness.write_stall = millis(number(arg)?),
            "--idle" => self.liveness.idle = millis(number(arg)?),
            "--accept-pause" => self.accept_pause = Duration::from_millis(number(arg)?),
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// `opts` with the handshake deadline and the fragment cap.
    pub fn apply(&self, mut opts: AcceptOptions) -> AcceptOptions {
        opts.handshake_timeout = self.handshake_timeout;
        opts.config.max_fragments = self.max_fragments;
        opts
    }

    /// The accept loop's back-off: a pause per failure, one log line per interval.
    pub fn backoff(&self) -> AcceptBackoff {
        AcceptBackoff::new(self.accept_pause, ACCEPT_REPORT_EVERY)
    }
}

/// Logs a failed accept when the back-off says so (once per interval, with a count) and
/// returns how long to pause.
pub fn accept_failed(backoff: &mut AcceptBackoff, e: &std::io::Error) -> Duration {
    let retry = backoff.failed(e, Instant::now());
    if let Some(n) = retry.report {
        eprintln!("accept failed ({n} since the last report; pausing {:?} after each): {e}", retry.pause);
    }
    retry.pause
}

/// A `Watchdog` fed by a driver that learns about silence from read timeouts (of `idle`):
/// messages count as heard when they arrive, pongs (flagged by the pong handler) when the
/// next timeout sees the flag, which at worst delays the next ping by one `idle`.
pub struct TimeoutWatch {
    pub watchdog: Watchdog,
    pub pong: Arc<AtomicBool>,
}

impl TimeoutWatch {
    pub fn new(liveness: Liveness) -> Self {
        Self { watchdog: Watchdog::new(liveness, Instant::now()), pong: Arc::default() }
    }

    /// A message arrived.
    pub fn heard(&mut self) {
        self.watchdog.heard(Instant::now());
    }

    /// A read timed out: what to do.
    pub fn timed_out(&mut self) -> Verdict {
        let now = Instant::now();
        if self.pong.swap(false, Ordering::Relaxed) {
            self.watchdog.heard(now);
        }
        self.watchdog.check(now)
    }
}

/// The error a connection dropped for a stall ends with (the log says why).
pub fn dropped(why: Stall) -> lowbit_websockets::Error {
    std::io::Error::new(std::io::ErrorKind::TimedOut, format!("dropped: {}", why.as_str())).into()
}

/// Whether `result` ended a connection for a stall: such a peer is not lingered for (it does
/// not read, so our last bytes cannot reach it, and lingering would only keep draining it).
pub fn stalled<T>(result: &lowbit_websockets::Result<T>) -> bool {
    matches!(result, Err(lowbit_websockets::Error::Io(e)) if e.kind() == std::io::ErrorKind::TimedOut)
}
