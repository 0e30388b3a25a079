//! Writing your own `LockBackend`: an in-process store that honors the trait contract,
//! checked by the public conformance suite, then used by a `Redlock` over three of them.
//!
//! Run: `cargo run --example custom_backend` (no Redis needed).

use std::{
    collections::HashMap,
    error::Error,
    sync::Mutex,
    time::{Duration, Instant},
};

use redlock_core::{BackendError, LockBackend, Redlock, async_trait, conformance};

/// Keys with values and deadlines behind one mutex. Every method below is one atomic
/// step, as the contract asks (a Redis adapter gets this from its Lua scripts).
#[derive(Debug, Default)]
struct InProcessStore {
    name: String,
    keys: Mutex<HashMap<String, (String, Instant)>>,
}

impl InProcessStore {
    fn named(name: &str) -> Self {
        Self {
            name: name.to_string(),
            ..Self::default()
        }
    }

    fn holds(map: &HashMap<String, (String, Instant)>, key: &str, value: &str) -> bool {
        map.get(key)
            .is_some_and(|(held, until)| held == value && *until > Instant::now())
    }

    fn free_or_ours(map: &HashMap<String, (String, Instant)>, key: &str, value: &str) -> bool {
        map.get(key)
            .is_none_or(|(held, until)| held == value || *until <= Instant::now())
    }
}

#[async_trait]
impl LockBackend for InProcessStore {
    fn name(&self) -> &str {
        &self.name
    }

    async fn acquire(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        let mut map = self.keys.lock().expect("not poisoned");
        if !keys.iter().all(|key| Self::free_or_ours(&map, key, value)) {
            return Ok(false);
        }
        let until = Instant::now() + ttl;
        for key in keys {
            // A key already ours keeps the later of its deadlines: never shortened.
            let entry = map
                .entry(key.clone())
                .or_insert_with(|| (value.to_string(), until));
            if entry.0 != value || entry.1 <= Instant::now() {
                *entry = (value.to_string(), until);
            }
            entry.1 = entry.1.max(until);
        }
        Ok(true)
    }

    async fn extend(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        let mut map = self.keys.lock().expect("not poisoned");
        if !keys.iter().all(|key| Self::holds(&map, key, value)) {
            return Ok(false);
        }
        let until = Instant::now() + ttl;
        for key in keys {
            if let Some(entry) = map.get_mut(key) {
                entry.1 = entry.1.max(until);
            }
        }
        Ok(true)
    }

    async fn release(&self, keys: &[String], value: &str) -> Result<usize, BackendError> {
        let mut map = self.keys.lock().expect("not poisoned");
        let ours: Vec<&String> = keys
            .iter()
            .filter(|key| Self::holds(&map, key, value))
            .collect();
        for key in &ours {
            map.remove(*key);
        }
        Ok(ours.len())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let report = conformance::run(|| async { InProcessStore::named("conformance") }).await?;
    println!("conformance: {} checks passed", report.passed.len());

    let redlock = Redlock::new(["a", "b", "c"].map(InProcessStore::named))?;
    let lock = redlock
        .acquire(&["printer"], Duration::from_secs(2))
        .await?;
    println!(
        "acquired {:?} on a quorum of {} custom backends",
        lock.resources(),
        redlock.quorum()
    );
    let busy = redlock
        .try_acquire(&["printer"], Duration::from_secs(2))
        .await;
    println!(
        "a second attempt while held: {}",
        busy.map(|_| "granted?!".to_string())
            .unwrap_or_else(|e| e.to_string())
    );
    lock.release().await?;
    println!("released");
    Ok(())
}
