//! The seed's manual flow: acquire, work, extend, work, and release in a
//! try/finally shape.
//!
//! Run: `cargo run --example manual` (set `REDLOCK_URLS` to use your own masters).

use std::{error::Error, time::Duration};

use redlock_examples::Masters;
use redlock_redis_rs::{RedisBackend, Redlock};

async fn something(step: &str) {
    println!("  working: {step}");
    tokio::time::sleep(Duration::from_millis(200)).await;
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let masters = Masters::from_env()?;
    let mut backends = Vec::new();
    for url in masters.urls() {
        backends.push(RedisBackend::from_url(url).await?);
    }
    let redlock = Redlock::new(backends)?;
    let ttl = Duration::from_secs(5);

    let mut lock = redlock.acquire(&["a"], ttl).await?;
    println!(
        "acquired {:?} on {} of {} masters, valid for {:?}",
        lock.resources(),
        lock.stats().granted(),
        lock.stats().backends,
        lock.remaining()
    );

    // try { ... }
    let outcome: Result<(), Box<dyn Error>> = async {
        something("first part").await;
        lock = lock.extend(ttl).await?;
        println!("extended: valid for another {:?}", lock.remaining());
        something("second part").await;
        Ok(())
    }
    .await;

    // finally { release }
    let report = lock.release().await?;
    println!(
        "released (keys were still held on {} master(s), expired: {})",
        report.held_on, report.expired
    );
    outcome
}
