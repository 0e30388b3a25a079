//! [`Lock`], the handle of a granted lock.

use std::{
    fmt,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tracing::Instrument;

use crate::{
    error::LockError,
    quorum::{self, Request, Spec, Target, Verdict, Wait},
    redlock::{Redlock, expiration, failure},
    runtime::until,
    stats::{AttemptStats, Attempts},
};

/// What a lock holds on every backend: the keys, the value, and who holds it.
pub(crate) struct Held {
    pub(crate) redlock: Redlock,
    pub(crate) target: Target,
    released: AtomicBool,
}

impl Held {
    pub(crate) fn new(redlock: Redlock, keys: Vec<String>) -> Arc<Self> {
        Arc::new(Self {
            target: Target::new(keys, new_value()),
            redlock,
            released: AtomicBool::new(false),
        })
    }

    /// Records that no background cleanup is needed any more.
    pub(crate) fn mark_released(&self) {
        self.released.store(true, Ordering::Release);
    }

    /// Whether a release of this lock (through any of its handles) reached a quorum.
    fn is_released(&self) -> bool {
        self.released.load(Ordering::Acquire)
    }
}

impl Drop for Held {
    /// The last handle is gone without a release: release in the background where the
    /// runtime can spawn; otherwise the keys expire with their TTL.
    fn drop(&mut self) {
        if *self.released.get_mut() {
            return;
        }
        let redlock = self.redlock.clone();
        let target = self.target.clone();
        let runtime = redlock.runtime;
        let spawned = runtime.spawn(async move {
            let Ok(timer) = redlock.timer() else {
                return;
            };
            // Nobody waits for this round: allow the longest derived timeout.
            let spec = Spec {
                request: Request::Release,
                timeout: redlock.settings.request_timeout_for(Duration::from_secs(60)),
                drift: Duration::ZERO,
                attempt: 1,
                wait: Wait::All,
                // Its expiry is unknown here: a bounded window for re-sending.
                settle_until: Instant::now().checked_add(Duration::from_secs(2)),
            };
            let round = quorum::round(&redlock, timer, &target, spec).await;
            tracing::debug!(resources = ?target.keys, stats = %round.stats, "released a dropped lock");
        });
        if !spawned {
            tracing::debug!("no runtime to release a dropped lock; its keys expire with their TTL");
        }
    }
}

/// A fresh lock value: 16 bytes from a CSPRNG, hex encoded.
///
/// `rand::rng()` is ChaCha12 seeded and periodically reseeded from the OS.
fn new_value() -> Arc<str> {
    use rand::RngCore;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    let mut text = [0u8; 32];
    for (i, byte) in bytes.into_iter().enumerate() {
        text[2 * i] = HEX[usize::from(byte >> 4)];
        text[2 * i + 1] = HEX[usize::from(byte & 0x0f)];
    }
    Arc::from(std::str::from_utf8(&text).expect("hex is ASCII"))
}

/// A granted lock on one or more resources, valid until [`expiration`](Self::expiration).
///
/// [`extend`](Self::extend) returns a new `Lock` with a later expiration (the old handle
/// keeps its own); [`release`](Self::release) gives the resources back.
///
/// Dropping the last handle of a lock without releasing it (also when an `acquire` or
/// `using` future is dropped mid-flight) releases the keys in the background where the
/// runtime can spawn a task (tokio inside a runtime, async-std, smol); otherwise they
/// expire with their TTL. Prefer an explicit `release().await`, which reports errors.
#[must_use = "a lock is held until it is released or expires"]
pub struct Lock {
    held: Arc<Held>,
    ttl: Duration,
    expiration: Instant,
    stats: AttemptStats,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("resources", &self.held.target.keys)
            .field("remaining", &self.remaining())
            .finish_non_exhaustive()
    }
}

/// What [`Lock::release`] found.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ReleaseReport {
    /// The lock had already passed its expiration before the release.
    pub expired: bool,
    /// How many of the backends that answered before the quorum decided still held at
    /// least one of the lock's keys (and deleted it).
    pub held_on: usize,
    /// The release attempt that reached the quorum.
    pub stats: AttemptStats,
}

impl Lock {
    pub(crate) fn new(
        held: Arc<Held>,
        ttl: Duration,
        expiration: Instant,
        stats: AttemptStats,
    ) -> Self {
        Self {
            held,
            ttl,
            expiration,
            stats,
        }
    }

    /// The locked resources, in the order given, without duplicates.
    pub fn resources(&self) -> &[String] {
        &self.held.target.keys
    }

    /// The random value this lock stored under every key.
    pub fn value(&self) -> &str {
        &self.held.target.value
    }

    /// When the lock stops being valid: the start of the granting attempt plus the TTL
    /// minus the clock-drift allowance.
    pub fn expiration(&self) -> Instant {
        self.expiration
    }

    /// The TTL this lock was acquired (or last extended) with.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The validity left: zero once expired, and zero once the lock was released
    /// through any of its handles (this one is consumed by
    /// [`release`](Self::release); the handle it was extended from, or one extended
    /// from it, may still be around).
    pub fn remaining(&self) -> Duration {
        if self.held.is_released() {
            return Duration::ZERO;
        }
        until(self.expiration)
    }

    /// Whether the lock no longer protects its resources: its validity ran out, or it
    /// was released through another handle (see [`remaining`](Self::remaining)).
    pub fn is_expired(&self) -> bool {
        self.held.is_released() || self.past_expiration()
    }

    /// Whether the validity has run out by the clock (whether or not released).
    fn past_expiration(&self) -> bool {
        Instant::now() >= self.expiration
    }

    /// The attempt that granted (or last extended) this lock.
    pub fn stats(&self) -> &AttemptStats {
        &self.stats
    }

    /// The manager this lock came from.
    pub fn redlock(&self) -> &Redlock {
        &self.held.redlock
    }

    /// Extends the lock to `ttl` from now, returning a new handle.
    ///
    /// Keys are never shortened: extending by less than the time left keeps the longer
    /// expiry on the backends, and the new handle reports the shorter, safe one.
    ///
    /// Succeeds when a quorum of backends still hold our value and reset the TTL, with
    /// validity left. A failed extension changes nothing: the keys stay in place and
    /// this lock stays valid until its current expiration. Failed attempts are retried
    /// while the lock has not expired.
    ///
    /// # Errors
    ///
    /// - [`LockError::Expired`] when the lock expired already (nothing is sent);
    /// - [`LockError::Lost`] when enough backends no longer hold our value, or (with no
    ///   attempts, nothing sent) when the lock was released through another handle;
    /// - [`LockError::Unavailable`] or [`LockError::ValidityExhausted`] otherwise.
    pub async fn extend(&self, ttl: Duration) -> Result<Lock, LockError> {
        self.extend_inner(ttl, self.held.redlock.settings.retry_count)
            .await
    }

    /// Makes one attempt to extend the lock, without retries.
    ///
    /// # Errors
    ///
    /// As [`extend`](Self::extend), after a single attempt.
    pub async fn try_extend(&self, ttl: Duration) -> Result<Lock, LockError> {
        self.extend_inner(ttl, 0).await
    }

    async fn extend_inner(&self, ttl: Duration, retry_count: u32) -> Result<Lock, LockError> {
        let redlock = &self.held.redlock;
        redlock.settings.validate_ttl(ttl)?;
        let timer = redlock.timer()?;
        if self.held.is_released() {
            // Released through another handle: the keys are gone, nothing is sent.
            return Err(LockError::Lost {
                attempts: Attempts::new(),
            });
        }
        if self.past_expiration() {
            return Err(LockError::Expired);
        }
        let span = tracing::debug_span!("redlock.extend", resources = ?self.held.target.keys, ?ttl);
        async {
            let settings = &redlock.settings;
            let timeout = settings.request_timeout_for(ttl);
            let drift = settings.drift(ttl);
            let mut attempts = Attempts::new();
            let mut attempt = 0;
            loop {
                attempt += 1;
                let spec = Spec {
                    request: Request::Extend(ttl),
                    timeout,
                    drift,
                    attempt,
                    wait: Wait::Decision,
                    settle_until: None,
                };
                let round = quorum::round(redlock, timer, &self.held.target, spec).await;
                let verdict = round.verdict();
                if verdict == Verdict::Success {
                    let expiration = expiration(&round, ttl, drift);
                    return Ok(Lock::new(
                        Arc::clone(&self.held),
                        ttl,
                        expiration,
                        round.stats,
                    ));
                }
                attempts.push(round.stats);
                let pause = settings.retry_pause();
                if verdict == Verdict::Refused
                    || attempt > retry_count
                    || Instant::now()
                        .checked_add(pause)
                        .is_none_or(|next| next >= self.expiration)
                {
                    tracing::debug!(attempts = attempts.total, ?verdict, "extend failed");
                    return Err(failure(verdict, attempts, true));
                }
                timer.sleep(pause).await;
            }
        }
        .instrument(span)
        .await
    }

    /// Releases the lock on every backend.
    ///
    /// Returns once a quorum of backends confirmed that our keys are gone. Requests to
    /// the other backends were already sent; a background task on the runtime keeps
    /// driving them (not cancelled) until they are answered or the request timeout
    /// passes, and sends a release that failed or timed out on a backend (a dropped
    /// connection, a client still reconnecting) again, up to three times within about a
    /// second and never past the lock's expiration. If the runtime shuts down first
    /// (e.g. `main` returns right after the release), a master that had not answered
    /// yet may keep the keys until their TTL.
    /// Releasing a lock that already expired makes one round and reports
    /// [`expired`](ReleaseReport::expired); it is not retried.
    ///
    /// # Errors
    ///
    /// [`LockError::Unavailable`] when no quorum of backends could confirm the release;
    /// one more release is then tried in the background where the runtime can spawn,
    /// and otherwise the keys expire with their TTL. The same happens when the returned
    /// future is dropped before it finished.
    pub async fn release(self) -> Result<ReleaseReport, LockError> {
        self.release_inner(Wait::Decision).await
    }

    pub(crate) fn held(&self) -> &Arc<Held> {
        &self.held
    }

    /// Releases; `Wait::All` waits for every backend (bounded by the request timeout)
    /// instead of finishing stragglers in the background.
    pub(crate) async fn release_inner(self, wait: Wait) -> Result<ReleaseReport, LockError> {
        let redlock = &self.held.redlock;
        let timer = redlock.timer()?;
        let expired = self.past_expiration();
        let span =
            tracing::debug_span!("redlock.release", resources = ?self.held.target.keys, expired);
        async {
            let settings = &redlock.settings;
            let timeout = settings.request_timeout_for(self.ttl);
            let mut attempts = Attempts::new();
            let mut attempt = 0;
            loop {
                attempt += 1;
                let spec = Spec {
                    request: Request::Release,
                    timeout,
                    drift: Duration::ZERO,
                    attempt,
                    wait,
                    // Past the expiration the keys are gone anyway.
                    settle_until: Some(self.expiration),
                };
                let round = quorum::round(redlock, timer, &self.held.target, spec).await;
                if round.verdict() == Verdict::Success {
                    // Only now: a release cancelled or failed before this point leaves
                    // the cleanup to `Held::drop`.
                    self.held.mark_released();
                    return Ok(ReleaseReport {
                        expired,
                        held_on: round.held_on,
                        stats: round.stats,
                    });
                }
                attempts.push(round.stats);
                let pause = settings.retry_pause();
                if expired
                    || attempt > settings.retry_count
                    || Instant::now()
                        .checked_add(pause)
                        .is_none_or(|next| next >= self.expiration)
                {
                    return Err(LockError::Unavailable { attempts });
                }
                timer.sleep(pause).await;
            }
        }
        .instrument(span)
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_32_hex_chars_and_distinct() {
        let a = new_value();
        let b = new_value();
        assert_eq!(a.len(), 32);
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert_ne!(a, b);
    }
}
