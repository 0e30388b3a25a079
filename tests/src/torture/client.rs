//! Torture clients: acquire a random resource, read-modify-write its protected value
//! on a separate data server (read, sleep, write), release; record every cycle.

use std::{str::FromStr, time::Duration};

use rand::{Rng, SeedableRng, rngs::StdRng};
use redlock_core::{LockBackend, Redlock};

use super::{
    history::{Cause, Cycle, Outcome, Write},
    instant_ns, now_ns,
};
use crate::{Adapter, Fred, RedisRs};

/// Which adapter the clients use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdapterKind {
    /// `redlock-redis-rs`.
    RedisRs,
    /// `redlock-fred`.
    Fred,
}

impl FromStr for AdapterKind {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "redis-rs" => Ok(Self::RedisRs),
            "fred" => Ok(Self::Fred),
            other => Err(format!("unknown adapter {other:?}; known: redis-rs, fred")),
        }
    }
}

impl AdapterKind {
    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            Self::RedisRs => "redis-rs",
            Self::Fred => "fred",
        }
    }

    async fn connect(self, url: &str) -> Result<Box<dyn LockBackend>, String> {
        Ok(match self {
            Self::RedisRs => Box::new(RedisRs::connect(url).await?),
            Self::Fred => Box::new(Fred::connect(url).await?),
        })
    }
}

/// What the clients do.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// One URL per master (usually the proxies').
    pub urls: Vec<String>,
    /// The data server holding the protected values.
    pub data_url: String,
    /// How many clients.
    pub clients: u32,
    /// The first client's number (several processes number their clients apart).
    pub first_client: u32,
    /// How many resources they share.
    pub resources: u32,
    /// Lock TTL.
    pub ttl: Duration,
    /// Stop starting cycles after this [`now_ns`] instant.
    pub until_ns: u64,
    /// Which adapter.
    pub adapter: AdapterKind,
    /// Seed for the clients' choices.
    pub seed: u64,
    /// TEST ONLY: grant locks with a single vote, to show the checker catches it.
    pub broken_quorum: bool,
}

/// The protected value of a resource on the data server.
pub fn value_key(resource: u32) -> String {
    format!("torture:value:{resource}")
}

/// The lock key of a resource.
pub fn lock_key(resource: u32) -> String {
    format!("torture:lock:{resource}")
}

/// Runs every client to the end and returns all their cycles.
///
/// # Panics
///
/// When a client cannot reach a master or the data server at startup.
pub async fn run_clients(config: ClientConfig) -> Vec<Cycle> {
    let mut tasks = Vec::new();
    for i in 0..config.clients {
        let config = config.clone();
        tasks.push(tokio::spawn(async move { client(config, i).await }));
    }
    let mut cycles = Vec::new();
    for task in tasks {
        cycles.extend(task.await.expect("a torture client panicked"));
    }
    cycles
}

async fn connect_with_retries(adapter: AdapterKind, url: &str) -> Box<dyn LockBackend> {
    let mut last = String::new();
    for _ in 0..50 {
        match adapter.connect(url).await {
            Ok(backend) => return backend,
            Err(error) => last = error,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot connect to {url}: {last}");
}

async fn client(config: ClientConfig, index: u32) -> Vec<Cycle> {
    let id = config.first_client + index;
    let mut rng = StdRng::seed_from_u64(config.seed ^ (u64::from(id) << 32));
    let mut backends = Vec::new();
    for url in &config.urls {
        backends.push(connect_with_retries(config.adapter, url).await);
    }
    let mut builder = Redlock::builder(backends)
        .retry_count(3)
        .retry_delay(Duration::from_millis(40))
        .retry_jitter(Duration::from_millis(40));
    if config.broken_quorum {
        builder = builder.unsafe_quorum_override(1);
    }
    let redlock = builder.build().expect("valid torture settings");
    let data = redis::Client::open(config.data_url.as_str()).expect("data url");
    let mut data = data
        .get_multiplexed_async_connection()
        .await
        .expect("data server");
    // A write needs this much validity left; the rest covers a stalled client.
    let margin = config.ttl / 2;
    let mut cycles = Vec::new();
    while now_ns() < config.until_ns {
        let resource = rng.random_range(0..config.resources);
        let invoke = now_ns();
        let outcome = match redlock.acquire([lock_key(resource)], config.ttl).await {
            Err(error) => Outcome::Failed {
                completed: now_ns(),
                cause: Cause::of(&error),
            },
            Ok(mut lock) => {
                let acquired = now_ns();
                let value: Option<u64> = redis::cmd("GET")
                    .arg(value_key(resource))
                    .query_async(&mut data)
                    .await
                    .expect("GET on the data server");
                tokio::time::sleep(Duration::from_micros(rng.random_range(0..5_000))).await;
                if rng.random_bool(0.25)
                    && let Ok(extended) = lock.extend(config.ttl).await
                {
                    lock = extended;
                }
                let write = if lock.remaining() > margin {
                    let next = value.unwrap_or(0) + 1;
                    let () = redis::cmd("SET")
                        .arg(value_key(resource))
                        .arg(next)
                        .query_async(&mut data)
                        .await
                        .expect("SET on the data server");
                    Write::Done {
                        value: next,
                        done: now_ns(),
                    }
                } else {
                    Write::Abandoned
                };
                let expiration = instant_ns(lock.expiration());
                let release_at = now_ns();
                let released = lock.release().await.is_ok();
                Outcome::Held {
                    acquired,
                    expiration,
                    write,
                    release_at,
                    released,
                }
            }
        };
        cycles.push(Cycle {
            client: id,
            resource,
            invoke,
            outcome,
        });
        tokio::time::sleep(Duration::from_micros(rng.random_range(0..3_000))).await;
    }
    cycles
}
