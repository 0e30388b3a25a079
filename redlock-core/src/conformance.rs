//! A public suite that checks a [`LockBackend`] against the trait contract.
//!
//! Every adapter in this workspace runs it against a real server, and so can any
//! third-party backend:
//!
//! ```no_run
//! # async fn demo() {
//! use redlock_core::{MemoryBackend, conformance};
//!
//! let report = conformance::run(|| async { MemoryBackend::new() }).await;
//! assert!(report.is_ok(), "{}", report.unwrap_err());
//! # }
//! ```
//!
//! The suite uses keys under a random `redlock-conformance:<run>:` prefix, cleans up
//! after itself, and sleeps a few hundred milliseconds to check TTLs (so it needs a
//! runtime feature for its timer). It takes about two seconds.

use std::{future::Future, sync::Mutex, time::Duration};

use futures_util::future::join_all;

use crate::{backend::LockBackend, runtime::Timer};

/// The checks that passed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Report {
    /// Names of the passed checks, in the order run.
    pub passed: Vec<&'static str>,
}

/// One check that failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckFailure {
    /// The check's name.
    pub check: &'static str,
    /// What went wrong.
    pub message: String,
}

/// The checks that failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} conformance check(s) failed: {}", failures.len(), render(failures))]
#[non_exhaustive]
pub struct ConformanceError {
    /// Every failed check.
    pub failures: Vec<CheckFailure>,
    /// The checks that passed.
    pub passed: Vec<&'static str>,
}

fn render(failures: &[CheckFailure]) -> String {
    failures
        .iter()
        .map(|failure| format!("[{}] {}", failure.check, failure.message))
        .collect::<Vec<_>>()
        .join("; ")
}

type CheckResult = Result<(), String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Unwraps a backend answer or fails the check with the error.
macro_rules! answer {
    ($call:expr) => {
        match $call.await {
            Ok(answer) => answer,
            Err(error) => {
                return Err(format!("{} failed: {}", stringify!($call), error.report()));
            }
        }
    };
}

const LONG: Duration = Duration::from_secs(30);

/// Per-run state: a key prefix, the values used, and every key handed out.
struct Ctx {
    prefix: String,
    timer: Option<Timer>,
    keys: Mutex<Vec<String>>,
}

impl Ctx {
    fn key(&self, name: &str) -> String {
        let key = format!("{}{name}", self.prefix);
        self.keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(key.clone());
        key
    }

    fn value(&self, who: &str) -> String {
        format!("{who}-{}", self.prefix)
    }

    async fn sleep(&self, duration: Duration) -> CheckResult {
        match self.timer {
            Some(timer) => {
                timer.sleep(duration).await;
                Ok(())
            }
            None => Err("the suite needs a runtime feature for its timer".into()),
        }
    }
}

/// Runs every check, each against a fresh backend from `factory`.
///
/// # Errors
///
/// [`ConformanceError`] listing every failed check.
pub async fn run<F, Fut, B>(mut factory: F) -> Result<Report, ConformanceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = B>,
    B: LockBackend,
{
    let ctx = Ctx {
        prefix: format!("redlock-conformance:{}:", random_suffix()),
        timer: Timer::detect(),
        keys: Mutex::new(Vec::new()),
    };
    let mut passed = Vec::new();
    let mut failures = Vec::new();
    macro_rules! checks {
        ($($name:ident),+ $(,)?) => {
            $(
                let backend = factory().await;
                match $name(&ctx, &backend).await {
                    Ok(()) => passed.push(stringify!($name)),
                    Err(message) => failures.push(CheckFailure {
                        check: stringify!($name),
                        message,
                    }),
                }
            )+
        };
    }
    checks!(
        has_a_name,
        grants_free_keys,
        refuses_keys_held_elsewhere,
        acquire_is_all_or_none,
        reacquire_with_same_value_is_granted,
        extend_needs_our_value_on_every_key,
        extend_never_recreates_missing_keys,
        extend_never_shortens_a_key,
        release_deletes_only_our_value,
        release_of_missing_keys_answers_zero,
        ttl_is_honored,
        unusual_key_and_value_bytes,
        many_keys_in_one_call,
        concurrent_acquires_have_one_winner,
    );
    cleanup(&ctx, &factory().await).await;
    if failures.is_empty() {
        Ok(Report { passed })
    } else {
        Err(ConformanceError { failures, passed })
    }
}

fn random_suffix() -> String {
    use rand::Rng;
    format!("{:016x}", rand::rng().random::<u64>())
}

async fn cleanup(ctx: &Ctx, backend: &impl LockBackend) {
    let keys = ctx
        .keys
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    for who in [
        "a", "b", "c", "w0", "w1", "w2", "w3", "w4", "w5", "w6", "w7",
    ] {
        // Best effort: a failing backend was already reported by the checks.
        let _ = backend.release(&keys, &ctx.value(who)).await;
    }
}

async fn has_a_name(_: &Ctx, backend: &impl LockBackend) -> CheckResult {
    ensure!(!backend.name().is_empty(), "name() is empty");
    Ok(())
}

async fn grants_free_keys(ctx: &Ctx, backend: &impl LockBackend) -> CheckResult {
    let keys = [ctx.key("free")];
    let a = ctx.value("a");
    ensure!(
        answer!(backend.acquire(&keys, &a, LONG)),
        "a free key was refused"
    );
    let released = answer!(backend.release(&keys, &a));
    ensure!(released == 1, "release answered {released}, expected 1");
    Ok(())
}

async fn refuses_keys_held_elsewhere(ctx: &Ctx, backend: &impl LockBackend) -> CheckResult {
    let keys = [ctx.key("held")];
    let (a, b) = (ctx.value("a"), ctx.value("b"));
    ensure!(
        answer!(backend.acquire(&keys, &a, LONG)),
        "a free key was refused"
    );
    ensure!(
        !answer!(backend.acquire(&keys, &b, LONG)),
        "a key held by another value was granted"
    );
    ensure!(
        !answer!(backend.extend(&keys, &b, LONG)),
        "a key held by another value was extended"
    );
    let released = answer!(backend.release(&keys, &b));
    ensure!(
        released == 0,
        "release with a foreign value deleted {released} key(s)"
    );
    ensure!(
        answer!(backend.release(&keys, &a)) == 1,
        "the holder could not release"
    );
    Ok(())
}

async fn acquire_is_all_or_none(ctx: &Ctx, backend: &impl LockBackend) -> CheckResult {
    let (k1, k2, k3) = (ctx.key("aon-1"), ctx.key("aon-2"), ctx.key("aon-3"));
    let (a, b, c) = (ctx.value("a"), ctx.value("b"), ctx.value("c"));
    ensure!(
        answer!(backend.acquire(std::slice::from_ref(&k2), &a, LONG)),
        "a free key was refused"
    );
    let all = [k1.clone(), k2.clone(), k3.clone()];
    ensure!(
        !answer!(backend.acquire(&all, &b, LONG)),
        "a key set with one held key was granted"
    );
    ensure!(
        answer!(backend.acquire(&[k1.clone(), k3.clone()], &c, LONG)),
        "a refused acquire left some of its keys set"
    );
    ensure!(
        answer!(backend.release(&all, &b)) == 0,
        "a refused acquire left keys holding its value"
    );
    ensure!(
        answer!(backend.release(&[k2], &a)) == 1,
        "the holder could not release"
    );
    ensure!(
        answer!(backend.release(&[k1, k3], &c)) == 2,
        "could not release two keys"
    );
    Ok(())
}

async fn reacquire_with_same_value_is_granted(
    ctx: &Ctx,
    backend: &impl LockBackend,
) -> CheckResult {
    let (k1, k2) = (ctx.key("same-1"), ctx.key("same-2"));
    let a = ctx.value("a");
    ensure!(
        answer!(backend.acquire(std::slice::from_ref(&k1), &a, LONG)),
        "a free key was refused"
    );
    let both = [k1, k2];
    ensure!(
        answer!(backend.acquire(&both, &a, LONG)),
        "keys free or holding our own value were refused"
    );
    let released = answer!(backend.release(&both, &a));
    ensure!(released == 2, "release answered {released}, expected 2");
    Ok(())
}

async fn extend_needs_our_value_on_every_key(ctx: &Ctx, backend: &impl LockBackend) -> CheckResult {
    let keys = [ctx.key("ext-1"), ctx.key("ext-2")];
    let (a, b) = (ctx.value("a"), ctx.value("b"));
    let short = Duration::from_millis(400);
    ensure!(
        answer!(backend.acquire(&keys, &a, short)),
        "free keys were refused"
    );
    ensure!(
        !answer!(backend.extend(&keys, &b, LONG)),
        "extend with a foreign value was granted"
    );
    ensure!(
        answer!(backend.extend(&keys, &a, LONG)),
        "extend of our own keys was refused"
    );
    ctx.sleep(short + Duration::from_millis(300)).await?;
    ensure!(
        !answer!(backend.acquire(&keys[..1], &b, LONG)),
        "an extended key expired with its original TTL"
    );
    let released = answer!(backend.release(&keys, &a));
    ensure!(released == 2, "release answered {released}, expected 2");
    Ok(())
}

async fn extend_never_recreates_missing_keys(ctx: &Ctx, backend: &impl LockBackend) -> CheckResult {
    let (present, missing) = (ctx.key("miss-present"), ctx.key("miss-missing"));
    let (a, b) = (ctx.value("a"), ctx.value("b"));
    let short = Duration::from_millis(400);
    ensure!(
        answer!(backend.acquire(std::slice::from_ref(&present), &a, short)),
        "a free key was refused"
    );
    ensure!(
        !answer!(backend.extend(&[present.clone(), missing.clone()], &a, LONG)),
        "extend was granted although one key was missing"
    );
    ensure!(
        !answer!(backend.extend(std::slice::from_ref(&missing), &a, LONG)),
        "extend of a missing key was granted"
    );
    ensure!(
        answer!(backend.acquire(std::slice::from_ref(&missing), &b, LONG)),
        "extend re-created a missing key"
    );
    ctx.sleep(short + Duration::from_millis(300)).await?;
    ensure!(
        answer!(backend.acquire(std::slice::from_ref(&present), &b, LONG)),
        "a refused extend changed the TTL of the keys it did find"
    );
    ensure!(
        answer!(backend.release(&[present, missing], &b)) == 2,
        "could not release"
    );
    Ok(())
}

async fn extend_never_shortens_a_key(ctx: &Ctx, backend: &impl LockBackend) -> CheckResult {
    let keys = [ctx.key("no-shorten")];
    let (a, b) = (ctx.value("a"), ctx.value("b"));
    ensure!(
        answer!(backend.acquire(&keys, &a, LONG)),
        "a free key was refused"
    );
    ensure!(
        answer!(backend.extend(&keys, &a, Duration::from_millis(200))),
        "extend of our own key was refused"
    );
    ensure!(
        answer!(backend.acquire(&keys, &a, Duration::from_millis(200))),
        "acquire of our own key was refused"
    );
    ctx.sleep(Duration::from_millis(500)).await?;
    ensure!(
        !answer!(backend.acquire(&keys, &b, LONG)),
        "a shorter extend or re-acquire shortened the key's TTL"
    );
    ensure!(
        answer!(backend.release(&keys, &a)) == 1,
        "could not release"
    );
    Ok(())
}

async fn release_deletes_only_our_value(ctx: &Ctx, backend: &impl LockBackend) -> CheckResult {
    let (k1, k2) = (ctx.key("rel-1"), ctx.key("rel-2"));
    let (a, b, c) = (ctx.value("a"), ctx.value("b"), ctx.value("c"));
    ensure!(
        answer!(backend.acquire(std::slice::from_ref(&k1), &a, LONG)),
        "a free key was refused"
    );
    ensure!(
        answer!(backend.acquire(std::slice::from_ref(&k2), &b, LONG)),
        "a free key was refused"
    );
    let released = answer!(backend.release(&[k1.clone(), k2.clone()], &a));
    ensure!(released == 1, "release answered {released}, expected 1");
    ensure!(
        !answer!(backend.acquire(std::slice::from_ref(&k2), &c, LONG)),
        "release deleted a key holding another value"
    );
    ensure!(
        answer!(backend.acquire(std::slice::from_ref(&k1), &c, LONG)),
        "release did not delete our key"
    );
    ensure!(
        answer!(backend.release(&[k2], &b)) == 1,
        "could not release"
    );
    ensure!(
        answer!(backend.release(&[k1], &c)) == 1,
        "could not release"
    );
    Ok(())
}

async fn release_of_missing_keys_answers_zero(
    ctx: &Ctx,
    backend: &impl LockBackend,
) -> CheckResult {
    let keys = [ctx.key("never-set-1"), ctx.key("never-set-2")];
    let released = answer!(backend.release(&keys, &ctx.value("a")));
    ensure!(released == 0, "release of missing keys answered {released}");
    Ok(())
}

async fn ttl_is_honored(ctx: &Ctx, backend: &impl LockBackend) -> CheckResult {
    let keys = [ctx.key("ttl")];
    let (a, b) = (ctx.value("a"), ctx.value("b"));
    ensure!(
        answer!(backend.acquire(&keys, &a, Duration::from_millis(600))),
        "a free key was refused"
    );
    ctx.sleep(Duration::from_millis(150)).await?;
    ensure!(
        !answer!(backend.acquire(&keys, &b, LONG)),
        "the key expired long before its TTL"
    );
    ctx.sleep(Duration::from_millis(750)).await?;
    ensure!(
        answer!(backend.acquire(&keys, &b, LONG)),
        "the key outlived its TTL"
    );
    ensure!(
        answer!(backend.release(&keys, &b)) == 1,
        "could not release"
    );
    Ok(())
}

async fn unusual_key_and_value_bytes(ctx: &Ctx, backend: &impl LockBackend) -> CheckResult {
    let keys = [
        ctx.key("with space"),
        ctx.key("ünïcødé-🔒"),
        ctx.key("{hash}tag"),
        ctx.key("new\nline\r\n"),
        ctx.key("quote\"'`\\"),
        ctx.key("nul\0byte"),
        ctx.key(""),
        ctx.key(&"long".repeat(256)),
    ];
    let value = format!("välue with spaces\n\"{{}}\0 {}", ctx.value("a"));
    let other = ctx.value("b");
    ensure!(
        answer!(backend.acquire(&keys, &value, LONG)),
        "unusual keys were refused"
    );
    for key in &keys {
        ensure!(
            !answer!(backend.acquire(std::slice::from_ref(key), &other, LONG)),
            "key {key:?} was not actually set"
        );
    }
    ensure!(
        answer!(backend.extend(&keys, &value, LONG)),
        "extend was refused"
    );
    let released = answer!(backend.release(&keys, &value));
    ensure!(
        released == keys.len(),
        "release answered {released}, expected {}",
        keys.len()
    );
    Ok(())
}

async fn many_keys_in_one_call(ctx: &Ctx, backend: &impl LockBackend) -> CheckResult {
    let keys: Vec<String> = (0..64).map(|i| ctx.key(&format!("many-{i}"))).collect();
    let (a, b) = (ctx.value("a"), ctx.value("b"));
    ensure!(
        answer!(backend.acquire(&keys, &a, LONG)),
        "64 free keys were refused"
    );
    ensure!(
        !answer!(backend.acquire(&keys[63..], &b, LONG)),
        "the last of 64 keys was not set"
    );
    let released = answer!(backend.release(&keys, &a));
    ensure!(released == 64, "release answered {released}, expected 64");
    Ok(())
}

async fn concurrent_acquires_have_one_winner(ctx: &Ctx, backend: &impl LockBackend) -> CheckResult {
    let keys = [ctx.key("race-1"), ctx.key("race-2")];
    let values: Vec<String> = (0..8).map(|i| ctx.value(&format!("w{i}"))).collect();
    let answers = join_all(
        values
            .iter()
            .map(|value| backend.acquire(&keys, value, LONG)),
    )
    .await;
    let mut winners = Vec::new();
    for (value, answer) in values.iter().zip(answers) {
        match answer {
            Ok(true) => winners.push(value),
            Ok(false) => {}
            Err(error) => return Err(format!("a concurrent acquire failed: {}", error.report())),
        }
    }
    ensure!(
        winners.len() == 1,
        "{} concurrent acquires won, expected 1",
        winners.len()
    );
    let released = answer!(backend.release(&keys, winners[0]));
    ensure!(released == 2, "release answered {released}, expected 2");
    Ok(())
}

#[cfg(all(test, feature = "tokio"))]
mod tests {
    use super::*;
    use crate::MemoryBackend;

    #[tokio::test]
    async fn memory_backend_conforms() {
        let report = run(|| async { MemoryBackend::new() }).await;
        let report = report.unwrap_or_else(|error| panic!("{error}"));
        assert_eq!(report.passed.len(), 14);
    }

    /// A backend that breaks the contract: extend re-creates missing keys.
    struct Recreates(MemoryBackend);

    #[async_trait::async_trait]
    impl LockBackend for Recreates {
        fn name(&self) -> &str {
            "recreates"
        }
        async fn acquire(
            &self,
            keys: &[String],
            value: &str,
            ttl: Duration,
        ) -> Result<bool, crate::BackendError> {
            self.0.acquire(keys, value, ttl).await
        }
        async fn extend(
            &self,
            keys: &[String],
            value: &str,
            ttl: Duration,
        ) -> Result<bool, crate::BackendError> {
            for key in keys {
                if self.0.value(key).is_none() {
                    self.0.insert(key.clone(), value, ttl);
                }
            }
            self.0.extend(keys, value, ttl).await
        }
        async fn release(
            &self,
            keys: &[String],
            value: &str,
        ) -> Result<usize, crate::BackendError> {
            self.0.release(keys, value).await
        }
    }

    #[tokio::test]
    async fn a_broken_backend_fails_the_suite() {
        let error = run(|| async { Recreates(MemoryBackend::new()) })
            .await
            .expect_err("a backend that re-creates keys on extend must fail");
        assert!(
            error
                .failures
                .iter()
                .any(|failure| failure.check == "extend_never_recreates_missing_keys"),
            "{error}"
        );
    }
}
