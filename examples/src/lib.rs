//! Shared setup for the examples: where the Redis masters are.
//!
//! `REDLOCK_URLS` (comma-separated `redis://` URLs) names your masters; when it is
//! unset the examples start three throwaway local `redis-server` processes (stopped
//! again when the example ends) and say so.

use std::env;

use redlock_tests::{Cluster, HarnessError};

/// The masters an example locks on, and the local servers started for it, if any.
#[derive(Debug)]
pub struct Masters {
    urls: Vec<String>,
    _local: Option<Cluster>,
}

impl Masters {
    /// Reads `REDLOCK_URLS`, or starts three local masters.
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when local masters are needed but cannot start (for example
    /// when `redis-server` is not installed; the message says how to install it).
    pub fn from_env() -> Result<Self, HarnessError> {
        if let Some(urls) = env::var("REDLOCK_URLS")
            .ok()
            .filter(|urls| !urls.trim().is_empty())
        {
            let urls: Vec<String> = urls
                .split(',')
                .map(str::trim)
                .filter(|url| !url.is_empty())
                .map(String::from)
                .collect();
            println!("using {} master(s) from REDLOCK_URLS", urls.len());
            return Ok(Self { urls, _local: None });
        }
        let cluster = Cluster::try_start(3)?;
        println!(
            "REDLOCK_URLS is unset: started 3 throwaway local redis-server masters on {}",
            cluster.addrs().join(", ")
        );
        Ok(Self {
            urls: cluster.urls(),
            _local: Some(cluster),
        })
    }

    /// The masters' URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }
}
