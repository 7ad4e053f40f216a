//! When a server gives up on a peer: one that stopped reading while we have output for it,
//! and one that has gone quiet. Opt-in: [`Conn`](crate::Conn), `AsyncConn` and
//! [`Session`](crate::Session) run no timers, so nothing here applies unless a driver uses it
//! (the shipped servers do, with [`Liveness::SERVER`]).
//!
//! Sans-IO like the rest of the crate. A driver that owns a clock feeds a [`Watchdog`] what
//! happened (bytes heard, write progress) with the time, asks [`Watchdog::check`] at
//! [`Watchdog::next_check`], and pings or drops as it answers. A blocking driver wakes up
//! through socket timeouts instead ([`tcp::set_liveness`](crate::tcp::set_liveness)) and asks
//! the same [`Watchdog`] when a read times out.
//!
//! Why drop them: a stalled peer costs no unbounded memory (TCP backpressure stops it), but it
//! keeps a connection slot, a thread on a blocking server, and megabytes of kernel socket
//! buffers, forever.

use std::time::{Duration, Instant};

/// How long a peer may stall before it is dropped. `None` turns a rule off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Liveness {
    /// Drop the peer when output has been waiting this long without a byte of it written: it
    /// stopped reading (its receive window is shut).
    pub write_stall: Option<Duration>,
    /// Drop the peer when nothing has arrived from it for this long (uWS's `idleTimeout`).
    pub idle: Option<Duration>,
    /// At `idle`, send a ping first and drop the peer only if still nothing (not even the
    /// pong) arrives within another `idle` (uWS's `sendPingsAutomatically`).
    pub ping_when_idle: bool,
}

impl Liveness {
    /// Nothing is ever dropped: the bare connections' behaviour (the `Default`).
    pub const NONE: Self = Self { write_stall: None, idle: None, ping_when_idle: false };

    /// What the shipped servers use: a reader stalled for 30 s is dropped; a peer quiet for
    /// 120 s (uWS's default `idleTimeout`) is pinged, and dropped if it stays quiet another
    /// 120 s. A browser answers pings by itself, so only dead or stuck peers are dropped.
    pub const SERVER: Self =
        Self { write_stall: Some(Duration::from_secs(30)), idle: Some(Duration::from_secs(120)), ping_when_idle: true };
}

/// What a [`Watchdog`] says about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub enum Verdict {
    /// Nothing to do now: look again at [`Watchdog::next_check`].
    Alive,
    /// The peer has been quiet for `idle`: send it a ping (once), and look again later.
    Ping,
    /// Drop the connection, for this reason.
    Drop(Stall),
}

/// Why a peer is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stall {
    /// Output waited [`Liveness::write_stall`] without progress.
    WriteStalled,
    /// Nothing arrived for [`Liveness::idle`] (after the ping, if one was sent).
    Idle,
}

impl Stall {
    /// A short description for logs and error messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Stall::WriteStalled => "the peer stopped reading: no write progress within the write-stall timeout",
            Stall::Idle => "the peer went quiet: nothing received within the idle timeout",
        }
    }
}

/// One connection's [`Liveness`] bookkeeping; see the [module docs](self) for how a driver
/// uses it. Time only moves forward: pass the same clock to every call.
#[derive(Debug, Clone)]
pub struct Watchdog {
    policy: Liveness,
    /// When the peer last sent anything, or when we pinged it.
    heard: Instant,
    pinged: bool,
    /// Since when output has been pending without progress.
    stalled_since: Option<Instant>,
}

impl Watchdog {
    /// Starts watching at `now` (the connection is new: it counts as heard from).
    pub fn new(policy: Liveness, now: Instant) -> Self {
        Self { policy, heard: now, pinged: false, stalled_since: None }
    }

    /// Bytes arrived from the peer at `now`.
    pub fn heard(&mut self, now: Instant) {
        self.heard = now;
        self.pinged = false;
    }

    /// A write attempt ended at `now`: `progressed` if it wrote any bytes, `pending` if output
    /// is still waiting. Call it after every flush (and when output is queued, with
    /// `progressed` false), so the stall is timed from the last progress.
    pub fn wrote(&mut self, now: Instant, progressed: bool, pending: bool) {
        self.stalled_since = match (pending, self.stalled_since) {
            (false, _) => None,
            (true, Some(since)) if !progressed => Some(since),
            (true, _) => Some(now),
        };
    }

    /// What to do at `now`. Answers [`Verdict::Ping`] once per quiet spell; the driver
    /// sends the ping.
    pub fn check(&mut self, now: Instant) -> Verdict {
        if let (Some(since), Some(limit)) = (self.stalled_since, self.policy.write_stall)
            && now.saturating_duration_since(since) >= limit
        {
            return Verdict::Drop(Stall::WriteStalled);
        }
        if let Some(idle) = self.policy.idle
            && now.saturating_duration_since(self.heard) >= idle
        {
            if self.policy.ping_when_idle && !self.pinged {
                self.pinged = true;
                self.heard = now;
                return Verdict::Ping;
            }
            return Verdict::Drop(Stall::Idle);
        }
        Verdict::Alive
    }

    /// When [`check`](Self::check) may next answer something other than `Alive`; `None` if
    /// never, until something changes. Changes after [`heard`](Self::heard),
    /// [`wrote`](Self::wrote) and a `check` that answered `Ping`.
    pub fn next_check(&self) -> Option<Instant> {
        let stall = self.stalled_since.zip(self.policy.write_stall).map(|(since, limit)| since + limit);
        let idle = self.policy.idle.map(|idle| self.heard + idle);
        match (stall, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_stalled_writer_is_dropped_only_after_a_whole_stall_without_progress() {
        let t0 = Instant::now();
        let mut w = Watchdog::new(Liveness { write_stall: Some(10 * S), ..Liveness::NONE }, t0);
        assert_eq!(w.next_check(), None, "nothing pending, nothing to time");
        w.wrote(t0, false, true);
        assert_eq!(w.next_check(), Some(t0 + 10 * S));
        // Slow but moving: every bit of progress restarts the clock.
        for i in 1..=5 {
            w.wrote(t0 + i * 8 * S, true, true);
            assert_eq!(w.check(t0 + i * 8 * S + 9 * S), Verdict::Alive);
        }
        let last = t0 + 40 * S;
        w.wrote(last + 3 * S, false, true);
        assert_eq!(w.check(last + 9 * S), Verdict::Alive);
        assert_eq!(w.check(last + 10 * S), Verdict::Drop(Stall::WriteStalled));
        // Everything written: nothing is stalled any more.
        w.wrote(last + 11 * S, true, false);
        assert_eq!(w.check(last + 100 * S), Verdict::Alive);
    }

    #[test]
    fn a_quiet_peer_is_pinged_once_then_dropped_unless_it_answers() {
        let t0 = Instant::now();
        let policy = Liveness { idle: Some(10 * S), ping_when_idle: true, ..Liveness::NONE };
        let mut w = Watchdog::new(policy, t0);
        assert_eq!(w.check(t0 + 9 * S), Verdict::Alive);
        assert_eq!(w.check(t0 + 10 * S), Verdict::Ping);
        assert_eq!(w.next_check(), Some(t0 + 20 * S));
        assert_eq!(w.check(t0 + 15 * S), Verdict::Alive);
        // The pong arrives: a new quiet spell starts, with a new ping.
        w.heard(t0 + 15 * S);
        assert_eq!(w.check(t0 + 25 * S), Verdict::Ping);
        assert_eq!(w.check(t0 + 35 * S), Verdict::Drop(Stall::Idle));

        let mut no_ping = Watchdog::new(Liveness { ping_when_idle: false, ..policy }, t0);
        assert_eq!(no_ping.check(t0 + 10 * S), Verdict::Drop(Stall::Idle));
        let mut off = Watchdog::new(Liveness::NONE, t0);
        off.wrote(t0, false, true);
        assert_eq!((off.check(t0 + 1000 * S), off.next_check()), (Verdict::Alive, None));
    }
}
