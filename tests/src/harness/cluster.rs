//! N independent masters.

use std::{
    thread,
    time::{Duration, Instant},
};

use super::server::{HarnessError, RedisServer, ServerOptions};

/// Independent `redis-server` masters (not a Redis Cluster), all stopped on drop.
#[derive(Debug)]
pub struct Cluster {
    servers: Vec<RedisServer>,
}

impl Cluster {
    /// Starts `n` plain masters; panics with the reason if it cannot.
    pub fn start(n: usize) -> Self {
        Self::try_start(n).unwrap_or_else(|error| panic!("{error}"))
    }

    /// Starts `n` plain masters.
    ///
    /// # Errors
    ///
    /// [`HarnessError`] from the first server that fails.
    pub fn try_start(n: usize) -> Result<Self, HarnessError> {
        let servers = (0..n)
            .map(|_| RedisServer::try_start_with(ServerOptions::default()))
            .collect::<Result<_, _>>()?;
        Ok(Self { servers })
    }

    /// Wraps servers started elsewhere.
    pub fn from_servers(servers: Vec<RedisServer>) -> Self {
        Self { servers }
    }

    /// How many masters.
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// The masters.
    pub fn servers(&self) -> &[RedisServer] {
        &self.servers
    }

    /// One master.
    pub fn server(&self, index: usize) -> &RedisServer {
        &self.servers[index]
    }

    /// One master, to kill, restart, pause or resume it.
    pub fn server_mut(&mut self, index: usize) -> &mut RedisServer {
        &mut self.servers[index]
    }

    /// Every master's URL.
    pub fn urls(&self) -> Vec<String> {
        self.servers.iter().map(RedisServer::url).collect()
    }

    /// Every master's address (`127.0.0.1:<port>`).
    pub fn addrs(&self) -> Vec<String> {
        self.servers.iter().map(RedisServer::addr).collect()
    }

    /// The keys on each running, unpaused master.
    pub fn keys_everywhere(&self) -> Vec<(String, Vec<String>)> {
        self.servers
            .iter()
            .filter(|server| server.is_running() && !server.is_paused())
            .map(|server| (server.addr(), server.keys()))
            .collect()
    }

    /// Keys summed over running, unpaused masters.
    pub fn total_keys(&self) -> usize {
        self.keys_everywhere()
            .iter()
            .map(|(_, keys)| keys.len())
            .sum()
    }

    /// Panics, listing them, if a running master still holds a key after a short grace.
    ///
    /// A release returns once a quorum confirmed it; the remaining masters apply it
    /// moments later, so keys get up to two seconds to disappear.
    pub fn assert_no_keys(&self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            let left: Vec<_> = self
                .keys_everywhere()
                .into_iter()
                .filter(|(_, keys)| !keys.is_empty())
                .collect();
            if left.is_empty() {
                return;
            }
            assert!(Instant::now() < deadline, "lock keys left behind: {left:?}");
            thread::sleep(Duration::from_millis(10));
        }
    }
}
