//! Memory per idle connection: opens `connections` upgraded connections to a freshly started
//! server, holds them idle, and divides the growth of the server's resident set by their
//! number: once right after the upgrades ("cold"), once more after one 1 KiB echo on every
//! connection ("warm": the read and write buffers a first message brings).

use std::sync::Arc;
use std::time::Duration;

use super::os;
use super::swarm::{Plan, START, Swarm};

/// The message each connection echoes once before the warm measurement.
const WARM_SIZE: usize = 1024;
/// Time for the server to take the last connections (and the allocator to settle).
const SETTLE: Duration = Duration::from_secs(1);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// After the cold measurement: every connection echoes once.
const ECHO_ONCE: u8 = 1;

/// Bytes per connection: cold, then warm.
pub struct Footprint {
    pub cold: f64,
    pub warm: f64,
}

/// Measures the server `pid`, which must not have served anything yet.
pub fn run(plan: &Plan, pid: u32, corpus: &Arc<Vec<u8>>) -> Result<Footprint, String> {
    let rss = || os::rss(pid).ok_or_else(|| format!("cannot read the RSS of process {pid}"));
    let before = rss()?;
    let corpus = Arc::clone(corpus);
    let swarm = Swarm::start(plan, async move |client, peer| {
        if peer.leave(START).await != ECHO_ONCE {
            return Ok(());
        }
        let offset = (peer.index * 4099) % (corpus.len() - WARM_SIZE);
        client.echo(&corpus[offset..offset + WARM_SIZE]).await?;
        peer.checkpoint();
        peer.leave(ECHO_ONCE).await;
        Ok(())
    })?;
    let n = plan.connections;
    swarm.wait_for(n, CONNECT_TIMEOUT)?;
    swarm.sleep(SETTLE);
    let cold = rss()?;
    swarm.set_phase(ECHO_ONCE);
    swarm.wait_for(2 * n, CONNECT_TIMEOUT)?;
    swarm.sleep(SETTLE);
    let warm = rss()?;
    swarm.finish()?;
    let per_connection = |after: u64| (after as f64 - before as f64) / n as f64;
    Ok(Footprint { cold: per_connection(cold), warm: per_connection(warm) })
}

#[cfg(test)]
mod tests {
    use super::super::load::{corpus, tests::echo_server};
    use super::*;

    /// The phases (upgrade, hold, one echo each, close) on this process's own RSS.
    #[test]
    fn connections_are_held_then_echo_once_then_close() {
        let plan = Plan { addr: echo_server(false), connections: 30, threads: 1, cpu: None, deflate: false };
        let footprint = run(&plan, std::process::id(), &corpus()).unwrap();
        assert!(footprint.cold.is_finite() && footprint.warm.is_finite());
    }
}
