//! [`Redlock`], the lock manager, and [`RedlockBuilder`].

use std::{fmt, pin::pin, sync::Arc, time::Duration, time::Instant};

use futures_util::future::{Either, join, select};
use tracing::Instrument;

use crate::{
    backend::LockBackend,
    error::{InvalidInput, LockError},
    lock::{Held, Lock},
    quorum::{self, Backends, Request, Round, Spec, Verdict, Wait},
    runtime::{Runtime, Timer, until},
    settings::Settings,
    stats::Attempts,
};

/// A distributed lock manager over N independent backends (Redis masters).
///
/// A lock is granted when a quorum (N / 2 + 1) of the backends grant it fast enough
/// that validity remains after the clock-drift allowance. Cloning is cheap and shares
/// the backends.
///
/// ```
/// # #[cfg(feature = "tokio")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), redlock_core::LockError> {
/// use std::time::Duration;
/// use redlock_core::{MemoryBackend, Redlock};
///
/// let redlock = Redlock::new([MemoryBackend::new(), MemoryBackend::new(), MemoryBackend::new()])?;
/// let lock = redlock.acquire(&["account:42"], Duration::from_secs(5)).await?;
/// let lock = lock.extend(Duration::from_secs(5)).await?;
/// lock.release().await?;
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "tokio"))]
/// # fn main() {}
/// ```
#[derive(Clone)]
pub struct Redlock {
    pub(crate) backends: Arc<Backends>,
    pub(crate) settings: Settings,
    pub(crate) runtime: Runtime,
}

impl fmt::Debug for Redlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redlock")
            .field("backends", &self.backends.names())
            .field("quorum", &self.backends.quorum())
            .field("settings", &self.settings)
            .field("runtime", &self.runtime)
            .finish()
    }
}

impl Redlock {
    /// A manager over `backends` with default [`Settings`] and a detected runtime.
    ///
    /// The backends are of one type; to mix clients (some masters through redis-rs,
    /// some through fred), pass `Box<dyn LockBackend>` or `Arc<dyn LockBackend>` items,
    /// or add them one by one with [`RedlockBuilder::backend`].
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidInput`] when `backends` is empty or no runtime is enabled.
    pub fn new<I, B>(backends: I) -> Result<Self, LockError>
    where
        I: IntoIterator<Item = B>,
        B: LockBackend + 'static,
    {
        Self::builder(backends).build()
    }

    /// A builder over `backends`, for settings other than the defaults.
    pub fn builder<I, B>(backends: I) -> RedlockBuilder
    where
        I: IntoIterator<Item = B>,
        B: LockBackend + 'static,
    {
        RedlockBuilder {
            backends: backends
                .into_iter()
                .map(|backend| Arc::new(backend) as Arc<dyn LockBackend>)
                .collect(),
            settings: Settings::default(),
            runtime: None,
            quorum_override: None,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The runtime providing timers and background tasks.
    pub fn runtime(&self) -> Runtime {
        self.runtime
    }

    /// How many votes a lock needs: N / 2 + 1.
    pub fn quorum(&self) -> usize {
        self.backends.quorum()
    }

    /// How many backends (N) this manager asks.
    pub fn backend_count(&self) -> usize {
        self.backends.names().len()
    }

    /// The backends' names, in order.
    pub fn backend_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.backends.names().iter().map(|name| &**name)
    }

    /// A manager over the same backends with other settings (for one call or a group
    /// of calls).
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidInput`] when a setting cannot work.
    pub fn with_settings(&self, settings: Settings) -> Result<Self, LockError> {
        settings.validate()?;
        Ok(Self {
            backends: Arc::clone(&self.backends),
            settings,
            runtime: self.runtime,
        })
    }

    /// Acquires a lock on every resource for `ttl`, retrying as the settings say.
    ///
    /// Resources are lock keys (`&["a", "b"]`, a `Vec<String>`, ...); duplicates are
    /// ignored. The lock is granted when a quorum of backends set every key within one
    /// round and validity remains; after a failed attempt every backend is cleaned up
    /// before the next one.
    ///
    /// # Errors
    ///
    /// - [`LockError::InvalidInput`] for no resources or a TTL that cannot work;
    /// - [`LockError::Contended`] when the resources stayed held elsewhere;
    /// - [`LockError::Unavailable`] when too many backends failed;
    /// - [`LockError::ValidityExhausted`] when quorums kept coming too late.
    pub async fn acquire<R>(
        &self,
        resources: impl IntoIterator<Item = R>,
        ttl: Duration,
    ) -> Result<Lock, LockError>
    where
        R: AsRef<str>,
    {
        let keys = resource_keys(resources)?;
        self.acquire_keys(keys, ttl, self.settings.retry_count, true)
            .await
    }

    /// Makes one attempt to acquire a lock, without retries.
    ///
    /// # Errors
    ///
    /// As [`acquire`](Self::acquire), after a single attempt.
    pub async fn try_acquire<R>(
        &self,
        resources: impl IntoIterator<Item = R>,
        ttl: Duration,
    ) -> Result<Lock, LockError>
    where
        R: AsRef<str>,
    {
        let keys = resource_keys(resources)?;
        self.acquire_keys(keys, ttl, 0, false).await
    }

    pub(crate) fn timer(&self) -> Result<Timer, LockError> {
        Ok(self.runtime.timer()?)
    }

    async fn acquire_keys(
        &self,
        keys: Vec<String>,
        ttl: Duration,
        retry_count: u32,
        use_deadline: bool,
    ) -> Result<Lock, LockError> {
        self.settings.validate_ttl(ttl)?;
        let timer = self.timer()?;
        let held = Held::new(self.clone(), keys);
        let span = tracing::debug_span!("redlock.acquire", resources = ?held.target.keys, ?ttl);
        async move {
            let deadline = self
                .settings
                .acquire_timeout
                .filter(|_| use_deadline)
                .and_then(|limit| Instant::now().checked_add(limit));
            let timeout = self.settings.request_timeout_for(ttl);
            let drift = self.settings.drift(ttl);
            let mut attempts = Attempts::new();
            let mut attempt = 0;
            loop {
                attempt += 1;
                let spec = Spec {
                    request: Request::Acquire(ttl),
                    // An attempt in flight is cut short at the deadline.
                    timeout: deadline.map_or(timeout, |deadline| timeout.min(until(deadline))),
                    drift,
                    attempt,
                    wait: Wait::Decision,
                    settle_until: None,
                };
                let round = quorum::round(self, timer, &held.target, spec).await;
                let verdict = round.verdict();
                if verdict == Verdict::Success {
                    let expiration = expiration(&round, ttl, drift);
                    tracing::debug!(attempt, "lock acquired");
                    return Ok(Lock::new(held, ttl, expiration, round.stats));
                }
                attempts.push(round.stats);
                let pause = self.settings.retry_pause();
                let mut retry = attempt <= retry_count;
                if retry
                    && deadline.is_some_and(|deadline| {
                        Instant::now()
                            .checked_add(pause)
                            .is_none_or(|next| next >= deadline)
                    })
                {
                    attempts.deadline_reached = true;
                    retry = false;
                }
                let spec = Spec {
                    request: Request::Release,
                    timeout,
                    drift: Duration::ZERO,
                    attempt,
                    wait: Wait::All,
                    // Between attempts the next one reuses the value (and counts a key
                    // left by this cleanup as its own); after the last, failed releases
                    // are sent again until the keys would have expired.
                    settle_until: if retry {
                        None
                    } else {
                        Instant::now().checked_add(ttl)
                    },
                };
                let cleanup = quorum::round(self, timer, &held.target, spec);
                if retry {
                    join(cleanup, timer.sleep(pause)).await;
                    if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                        // The cleanup outlasted the deadline (backends slow to answer).
                        // It ran; dropping `held` releases once more in the background.
                        attempts.deadline_reached = true;
                        return Err(failure(verdict, attempts, false));
                    }
                    continue;
                }
                let cleaned = match deadline {
                    None => {
                        cleanup.await;
                        true
                    }
                    // The caller gets the error at the deadline; a cleanup not finished
                    // by then is dropped, and dropping `held` (not marked released)
                    // runs it again in the background, as for a dropped `acquire`.
                    Some(deadline) => matches!(
                        select(pin!(cleanup), pin!(timer.sleep_until(deadline))).await,
                        Either::Left(_)
                    ),
                };
                if cleaned {
                    held.mark_released();
                }
                tracing::debug!(
                    attempts = attempts.total,
                    ?verdict,
                    cleaned,
                    "acquire failed"
                );
                return Err(failure(verdict, attempts, false));
            }
        }
        .instrument(span)
        .await
    }
}

/// The expiration of a lock granted by `round`: `start + ttl - drift`.
pub(crate) fn expiration(round: &Round, ttl: Duration, drift: Duration) -> Instant {
    round.start + ttl.saturating_sub(drift)
}

/// The error for a failed operation.
pub(crate) fn failure(verdict: Verdict, attempts: Attempts, extending: bool) -> LockError {
    match verdict {
        Verdict::Refused if extending => LockError::Lost { attempts },
        Verdict::Refused => LockError::Contended { attempts },
        Verdict::ValidityExhausted => LockError::ValidityExhausted { attempts },
        Verdict::Unavailable | Verdict::Success => LockError::Unavailable { attempts },
    }
}

/// Collects resources into lock keys, dropping duplicates and keeping order.
fn resource_keys<R: AsRef<str>>(
    resources: impl IntoIterator<Item = R>,
) -> Result<Vec<String>, InvalidInput> {
    let mut keys: Vec<String> = Vec::new();
    for resource in resources {
        let resource = resource.as_ref();
        if !keys.iter().any(|key| key == resource) {
            keys.push(resource.to_owned());
        }
    }
    if keys.is_empty() {
        return Err(InvalidInput::NoResources);
    }
    Ok(keys)
}

/// Builds a [`Redlock`] with settings other than the defaults.
///
/// Every setter stores its value; [`build`](Self::build) checks them all.
#[must_use = "a builder does nothing until build() is called"]
pub struct RedlockBuilder {
    backends: Vec<Arc<dyn LockBackend>>,
    settings: Settings,
    runtime: Option<Runtime>,
    quorum_override: Option<usize>,
}

impl fmt::Debug for RedlockBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.backends.iter().map(|backend| backend.name()).collect();
        f.debug_struct("RedlockBuilder")
            .field("backends", &names)
            .field("settings", &self.settings)
            .field("runtime", &self.runtime)
            .finish()
    }
}

impl RedlockBuilder {
    /// Adds one more backend.
    pub fn backend(mut self, backend: impl LockBackend + 'static) -> Self {
        self.backends.push(Arc::new(backend));
        self
    }

    /// Replaces all settings at once.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// Fraction of the TTL allowed for clock drift (default 0.01).
    pub fn drift_factor(mut self, drift_factor: f64) -> Self {
        self.settings.drift_factor = drift_factor;
        self
    }

    /// How many times a failed attempt is retried (default 10).
    pub fn retry_count(mut self, retry_count: u32) -> Self {
        self.settings.retry_count = retry_count;
        self
    }

    /// The pause between attempts (default 200 ms).
    pub fn retry_delay(mut self, retry_delay: Duration) -> Self {
        self.settings.retry_delay = retry_delay;
        self
    }

    /// Uniform random jitter around each pause (default 100 ms).
    pub fn retry_jitter(mut self, retry_jitter: Duration) -> Self {
        self.settings.retry_jitter = retry_jitter;
        self
    }

    /// How long before expiration `using` extends the lock (default 500 ms).
    pub fn automatic_extension_threshold(mut self, threshold: Duration) -> Self {
        self.settings.automatic_extension_threshold = threshold;
        self
    }

    /// A fixed per-request timeout instead of one derived from the TTL.
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.settings.request_timeout = Some(timeout);
        self
    }

    /// A deadline for a whole `acquire`, retries included: `acquire` returns by then.
    ///
    /// An attempt still in flight at the deadline counts the backends that have not
    /// answered as timed out, no retry starts whose pause would end after it, and a
    /// cleanup of the last attempt still running then is finished in the background
    /// (as for a dropped `acquire`). `try_acquire` ignores it.
    pub fn acquire_timeout(mut self, timeout: Duration) -> Self {
        self.settings.acquire_timeout = Some(timeout);
        self
    }

    /// A cap on how long `using` keeps a lock: no extension moves its expiration past
    /// `max_hold` after the acquisition, and the signal fires
    /// ([`LockError::HoldLimit`]) by then at the latest (before the current expiration,
    /// if that comes first). The first TTL is never shortened on the backends, so with
    /// a `max_hold` below the TTL the routine is signalled at `max_hold` while the keys
    /// stay until `using` releases them.
    pub fn max_hold(mut self, max_hold: Duration) -> Self {
        self.settings.max_hold = Some(max_hold);
        self
    }

    /// A cap on how many extensions `using` performs.
    pub fn max_extensions(mut self, max_extensions: u32) -> Self {
        self.settings.max_extensions = Some(max_extensions);
        self
    }

    /// The runtime for timers and background tasks (default: [`Runtime::detect`]).
    pub fn runtime(mut self, runtime: Runtime) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// TEST ONLY: grant locks with `quorum` votes instead of N / 2 + 1.
    ///
    /// A quorum below a majority breaks mutual exclusion. This exists (behind the
    /// `unsafe-quorum-override` feature) so a safety checker can prove it notices.
    #[cfg(feature = "unsafe-quorum-override")]
    pub fn unsafe_quorum_override(mut self, quorum: usize) -> Self {
        self.quorum_override = Some(quorum);
        self
    }

    /// Checks the settings and builds the manager.
    ///
    /// # Errors
    ///
    /// [`LockError::InvalidInput`] when there are no backends, a setting cannot work,
    /// or no runtime feature is enabled.
    pub fn build(self) -> Result<Redlock, LockError> {
        if self.backends.is_empty() {
            return Err(InvalidInput::NoBackends.into());
        }
        self.settings.validate()?;
        let runtime = self
            .runtime
            .or_else(Runtime::detect)
            .ok_or(InvalidInput::NoRuntime(
                "enable one of the features tokio, async-std or smol",
            ))?;
        if let Some(quorum) = self.quorum_override
            && !(1..=self.backends.len()).contains(&quorum)
        {
            let backends = self.backends.len();
            return Err(InvalidInput::Quorum { quorum, backends }.into());
        }
        Ok(Redlock {
            backends: Arc::new(Backends::new(self.backends, self.quorum_override)),
            settings: self.settings,
            runtime,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_keys_dedupe_and_keep_order() {
        let keys = resource_keys(["b", "a", "b", "c"]).unwrap();
        assert_eq!(keys, ["b", "a", "c"]);
        let owned = resource_keys(vec![String::from("x")]).unwrap();
        assert_eq!(owned, ["x"]);
        assert_eq!(
            resource_keys(Vec::<String>::new()),
            Err(InvalidInput::NoResources)
        );
    }
}
