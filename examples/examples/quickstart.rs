//! The seed's `using` flow: lock two resources, work while the lock extends itself,
//! and check the signal between steps.
//!
//! Run: `cargo run --example quickstart` (redis-rs) or
//! `cargo run --example quickstart -- --fred` (fred); set `REDLOCK_URLS` to use your
//! own masters.

use std::{error::Error, time::Duration};

use redlock_examples::Masters;
use redlock_fred::FredBackend;
use redlock_redis_rs::{LockBackend, RedisBackend, Redlock};

type BoxError = Box<dyn Error + Send + Sync>;

async fn something(step: &str) {
    println!("  working: {step}");
    tokio::time::sleep(Duration::from_millis(800)).await;
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let masters = Masters::from_env()?;
    let fred = std::env::args().any(|arg| arg == "--fred");
    let mut backends: Vec<Box<dyn LockBackend>> = Vec::new();
    for url in masters.urls() {
        if fred {
            backends.push(Box::new(FredBackend::from_url(url).await?));
        } else {
            backends.push(Box::new(RedisBackend::from_url(url).await?));
        }
    }
    println!("client: {}", if fred { "fred" } else { "redis-rs" });
    let redlock = Redlock::new(backends)?;
    let (sender, recipient) = ("account:sender", "account:recipient");

    // The routine runs for longer than the TTL: the lock is extended automatically
    // 500 ms (automatic_extension_threshold) before each expiration.
    let ttl = Duration::from_secs(1);
    let extensions = redlock
        .using(&[sender, recipient], ttl, |signal| async move {
            println!("locked {sender} and {recipient} for {ttl:?} at a time");
            something("debit the sender").await;

            // Make sure no attempted extension has failed before going on.
            if let Some(error) = signal.error() {
                return Err(BoxError::from(error));
            }

            something("credit the recipient").await;
            println!(
                "  still held: {:?} of validity left after {} automatic extension(s)",
                signal.remaining(),
                signal.extensions()
            );
            Ok(signal.extensions())
        })
        .await??;
    println!("released after {extensions} automatic extension(s)");
    Ok(())
}
