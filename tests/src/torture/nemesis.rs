//! Fault injection on a minority of masters: kills, pauses, connection kills, and a
//! proxy that adds latency, blackholes or resets connections.

use std::{
    fmt,
    str::FromStr,
    sync::atomic::{AtomicBool, Ordering},
    thread,
    time::{Duration, Instant},
};

use rand::{Rng, SeedableRng, rngs::StdRng, seq::index::sample};

use super::now_ns;
use crate::harness::{Proxy, RedisServer};

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Nemesis {
    /// `kill -9`, then restart at once (the masters persist with `appendfsync always`,
    /// as Redlock requires for immediate restarts).
    Kill,
    /// `kill -9`, then restart after longer than the maximum TTL.
    KillDelayed,
    /// SIGSTOP for a while, then SIGCONT.
    Pause,
    /// `CLIENT KILL TYPE normal`: every client connection drops.
    ClientKill,
    /// The proxy adds latency for a while.
    Latency,
    /// The proxy forwards nothing for a while.
    Blackhole,
    /// The proxy closes every connection.
    Reset,
}

impl Nemesis {
    /// Every nemesis.
    pub const ALL: [Self; 7] = [
        Self::Kill,
        Self::KillDelayed,
        Self::Pause,
        Self::ClientKill,
        Self::Latency,
        Self::Blackhole,
        Self::Reset,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kill => "kill",
            Self::KillDelayed => "kill-delayed",
            Self::Pause => "pause",
            Self::ClientKill => "client-kill",
            Self::Latency => "latency",
            Self::Blackhole => "blackhole",
            Self::Reset => "reset",
        }
    }

    /// Parses `all`, `none` or a comma-separated list of names.
    ///
    /// # Errors
    ///
    /// The unknown name.
    pub fn parse_set(text: &str) -> Result<Vec<Self>, String> {
        match text {
            "all" => Ok(Self::ALL.to_vec()),
            "none" | "" => Ok(Vec::new()),
            list => list.split(',').map(str::parse).collect(),
        }
    }
}

impl fmt::Display for Nemesis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Nemesis {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|nemesis| nemesis.name() == text.trim())
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|n| n.name()).collect();
                format!(
                    "unknown nemesis {text:?}; known: all, none, {}",
                    names.join(", ")
                )
            })
    }
}

/// One fault, applied and healed.
#[derive(Debug, Clone)]
pub struct Episode {
    /// What.
    pub kind: Nemesis,
    /// Which masters (indexes).
    pub targets: Vec<usize>,
    /// When it started and ended (on the `now_ns` clock).
    pub span: (u64, u64),
}

/// Masters and the proxies in front of them.
#[derive(Debug)]
pub struct Masters {
    /// The servers.
    pub servers: Vec<RedisServer>,
    /// One proxy per server; clients connect through these.
    pub proxies: Vec<Proxy>,
}

impl Masters {
    /// Puts everything back: servers running and resumed, proxies passing traffic.
    pub fn heal(&mut self) {
        for server in &mut self.servers {
            if server.is_paused() {
                server.resume();
            }
            if !server.is_running() {
                restart(server);
            }
        }
        for proxy in &self.proxies {
            proxy.heal();
        }
    }
}

fn restart(server: &mut RedisServer) {
    if let Err(error) = server.try_restart() {
        eprintln!(
            "nemesis: restart of {} failed: {error}; retrying",
            server.addr()
        );
        thread::sleep(Duration::from_millis(200));
        server.restart();
    }
}

/// Applies faults from `kinds` to at most `max_faulty` masters at a time until `until`
/// (or `stop`), one episode after another, and heals everything at the end.
pub fn run(
    masters: &mut Masters,
    kinds: &[Nemesis],
    max_faulty: usize,
    ttl: Duration,
    seed: u64,
    until: Instant,
    stop: &AtomicBool,
) -> Vec<Episode> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut episodes = Vec::new();
    let n = masters.servers.len();
    if kinds.is_empty() || max_faulty == 0 {
        return episodes;
    }
    while Instant::now() < until && !stop.load(Ordering::Relaxed) {
        let kind = kinds[rng.random_range(0..kinds.len())];
        let count = rng.random_range(1..=max_faulty.min(n));
        let targets = sample(&mut rng, n, count).into_vec();
        let hold = Duration::from_millis(rng.random_range(200..1500));
        let start = now_ns();
        match kind {
            Nemesis::Kill => {
                for &t in &targets {
                    masters.servers[t].kill();
                }
                thread::sleep(Duration::from_millis(rng.random_range(0..100)));
                for &t in &targets {
                    restart(&mut masters.servers[t]);
                }
            }
            Nemesis::KillDelayed => {
                for &t in &targets {
                    masters.servers[t].kill();
                }
                thread::sleep(ttl + ttl / 2);
                for &t in &targets {
                    restart(&mut masters.servers[t]);
                }
            }
            Nemesis::Pause => {
                for &t in &targets {
                    masters.servers[t].pause();
                }
                thread::sleep(hold);
                for &t in &targets {
                    masters.servers[t].resume();
                }
            }
            Nemesis::ClientKill => {
                for &t in &targets {
                    masters.servers[t].kill_clients();
                }
            }
            Nemesis::Latency => {
                let latency = Duration::from_millis(rng.random_range(5..80));
                for &t in &targets {
                    masters.proxies[t].set_latency(latency);
                }
                thread::sleep(hold);
                for &t in &targets {
                    masters.proxies[t].heal();
                }
            }
            Nemesis::Blackhole => {
                for &t in &targets {
                    masters.proxies[t].blackhole();
                }
                thread::sleep(hold);
                for &t in &targets {
                    masters.proxies[t].heal();
                }
            }
            Nemesis::Reset => {
                for &t in &targets {
                    masters.proxies[t].reset();
                }
            }
        }
        episodes.push(Episode {
            kind,
            targets,
            span: (start, now_ns()),
        });
        thread::sleep(Duration::from_millis(rng.random_range(100..600)));
    }
    masters.heal();
    episodes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nemesis_sets_parse() {
        assert_eq!(Nemesis::parse_set("all").unwrap().len(), 7);
        assert!(Nemesis::parse_set("none").unwrap().is_empty());
        assert_eq!(
            Nemesis::parse_set("pause,blackhole").unwrap(),
            [Nemesis::Pause, Nemesis::Blackhole]
        );
        assert!(
            Nemesis::parse_set("pause,flood")
                .unwrap_err()
                .contains("flood")
        );
    }
}
