//! [`Redlock::using`]: run a routine under a lock that extends itself.

use std::{
    convert::Infallible,
    future::{Future, pending},
    panic::{AssertUnwindSafe, resume_unwind},
    pin::pin,
    sync::Arc,
    time::{Duration, Instant},
};

use futures_util::{
    FutureExt,
    future::{Either, select},
};

use crate::{
    error::{InvalidInput, LockError},
    lock::{Lock, ReleaseReport},
    quorum::Wait,
    redlock::Redlock,
    runtime::Timer,
    settings::Settings,
    signal::Signal,
};

/// What [`Redlock::using_outcome`] reports besides the routine's output.
#[derive(Debug)]
#[non_exhaustive]
pub struct UsingOutcome<T> {
    /// What the routine returned.
    pub output: T,
    /// How the final release went. A failure here does not hide `output`; the keys
    /// then expire with their TTL.
    pub release: Result<ReleaseReport, LockError>,
    /// How many automatic extensions succeeded.
    pub extensions: u32,
    /// Why the signal fired, if it did.
    pub extension_error: Option<LockError>,
}

impl Redlock {
    /// Acquires a lock on `resources`, runs `routine` while extending the lock
    /// automatically, then releases it and returns the routine's output.
    ///
    /// Each extension starts [`automatic_extension_threshold`](Settings::automatic_extension_threshold)
    /// before the current expiration and extends by `ttl`; a failed extension is
    /// retried while validity remains. The routine gets a [`Signal`] that fires, with
    /// the reason, before the validity ends when extending cannot succeed; the routine
    /// decides what to do (usually stop touching the resource). Extension runs in the
    /// same task as the routine and stops the moment the routine ends; the lock is then
    /// released on every backend. A release failure is logged as a warning and never
    /// replaces the routine's output (see [`using_outcome`](Self::using_outcome) to
    /// inspect it). If the routine panics, the lock is released and the panic resumes.
    /// If the returned future is dropped, the lock is released in the background where
    /// the runtime can spawn (otherwise it expires with its TTL).
    ///
    /// The routine's own result comes back nested inside the lock's:
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::time::Duration;
    /// use redlock_core::{MemoryBackend, Redlock};
    ///
    /// let redlock = Redlock::new([MemoryBackend::new(), MemoryBackend::new(), MemoryBackend::new()])?;
    /// let parsed: Result<Result<u32, std::num::ParseIntError>, redlock_core::LockError> = redlock
    ///     .using(&["counter"], Duration::from_secs(5), |signal| async move {
    ///         assert!(!signal.is_aborted());
    ///         "41".parse::<u32>().map(|n| n + 1)
    ///     })
    ///     .await;
    /// assert_eq!(parsed??, 42); // the lock's error first, then the routine's
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "tokio"))]
    /// # fn main() {}
    /// ```
    ///
    /// # Errors
    ///
    /// Only acquisition errors (as [`acquire`](Self::acquire)), and
    /// [`InvalidInput::ThresholdNotBelowTtl`] when the threshold is not shorter than
    /// `ttl` minus the clock-drift allowance (the longest validity a grant can have). A
    /// lost lock during the routine is reported through the signal, not here.
    pub async fn using<R, F, Fut, T>(
        &self,
        resources: impl IntoIterator<Item = R>,
        ttl: Duration,
        routine: F,
    ) -> Result<T, LockError>
    where
        R: AsRef<str>,
        F: FnOnce(Signal) -> Fut,
        Fut: Future<Output = T>,
    {
        let outcome = self.using_outcome(resources, ttl, routine).await?;
        if let Err(error) = &outcome.release {
            tracing::warn!(%error, "release after using() failed; the keys expire with their TTL");
        }
        Ok(outcome.output)
    }

    /// [`using`](Self::using) with other settings for this call only.
    ///
    /// # Errors
    ///
    /// As [`using`](Self::using), and [`LockError::InvalidInput`] for invalid settings.
    pub async fn using_with<R, F, Fut, T>(
        &self,
        resources: impl IntoIterator<Item = R>,
        ttl: Duration,
        settings: Settings,
        routine: F,
    ) -> Result<T, LockError>
    where
        R: AsRef<str>,
        F: FnOnce(Signal) -> Fut,
        Fut: Future<Output = T>,
    {
        self.with_settings(settings)?
            .using(resources, ttl, routine)
            .await
    }

    /// [`using`](Self::using), reporting the release result, the number of extensions
    /// and the signal's reason next to the routine's output.
    ///
    /// # Errors
    ///
    /// As [`using`](Self::using).
    pub async fn using_outcome<R, F, Fut, T>(
        &self,
        resources: impl IntoIterator<Item = R>,
        ttl: Duration,
        routine: F,
    ) -> Result<UsingOutcome<T>, LockError>
    where
        R: AsRef<str>,
        F: FnOnce(Signal) -> Fut,
        Fut: Future<Output = T>,
    {
        let threshold = self.settings.automatic_extension_threshold;
        // Measured against the longest validity a grant can have: a threshold at or
        // above it would make every extension due again at once.
        if threshold >= ttl.saturating_sub(self.settings.drift(ttl)) {
            return Err(InvalidInput::ThresholdNotBelowTtl { threshold, ttl }.into());
        }
        let timer = self.timer()?;
        let lock = self.acquire(resources, ttl).await?;
        let held = Arc::clone(lock.held());
        let stats = lock.stats().clone();
        let signal = Signal::new(lock.expiration());

        // Both run in this task; the block's end drops the extender, so no timer or
        // request of it outlives the routine.
        let output = {
            let extender = pin!(keep_extended(self, timer, lock, ttl, signal.clone()));
            let routine = pin!(AssertUnwindSafe(routine(signal.clone())).catch_unwind());
            match select(routine, extender).await {
                Either::Left((output, _)) => output,
                Either::Right((never, _)) => match never {},
            }
        };

        signal.end();
        let last = Lock::new(held, ttl, signal.expiration(), stats);
        let release = last.release_inner(Wait::All).await;
        match output {
            Ok(output) => Ok(UsingOutcome {
                output,
                release,
                extensions: signal.extensions(),
                extension_error: signal.error(),
            }),
            Err(panic) => resume_unwind(panic),
        }
    }
}

/// Extends `lock` before each expiration until extending fails or a cap is reached,
/// then fires `signal` (before the validity ends) and parks.
async fn keep_extended(
    redlock: &Redlock,
    timer: Timer,
    mut lock: Lock,
    ttl: Duration,
    signal: Signal,
) -> Infallible {
    let settings = &redlock.settings;
    let threshold = settings.automatic_extension_threshold;
    let margin = signal_margin(threshold);
    let started = Instant::now();
    let mut extensions = 0u32;
    // With `max_hold`, the routine hears of the cap by then at the latest.
    let hold_end = settings
        .max_hold
        .map(|max| started.checked_add(max).unwrap_or(started));
    // Whether an extension made at `at` would be one too many or hold past the cap.
    let capped_at = |at: Instant, extensions: u32| {
        settings.max_extensions.is_some_and(|max| extensions >= max)
            || hold_end.is_some_and(|cap| at.checked_add(ttl).is_none_or(|end| end > cap))
    };
    loop {
        let expiration = lock.expiration();
        let abort_at = expiration.checked_sub(margin).unwrap_or(expiration);
        let extend_at = expiration.checked_sub(threshold).unwrap_or(started);
        // A capped extension is known in advance: no need to wait for its time.
        if !capped_at(extend_at, extensions) {
            timer.sleep_until(extend_at).await;
        }
        if capped_at(Instant::now().max(extend_at), extensions) {
            let signal_at = hold_end.map_or(abort_at, |cap| cap.min(abort_at));
            timer.sleep_until(signal_at).await;
            signal.abort(LockError::HoldLimit {
                extensions,
                held: started.elapsed(),
            });
            break;
        }

        let mut last_error = None;
        let outcome = {
            let attempts = async {
                loop {
                    match lock.try_extend(ttl).await {
                        Ok(extended) => return Ok(extended),
                        Err(
                            error @ (LockError::Lost { .. }
                            | LockError::Expired
                            | LockError::InvalidInput(_)),
                        ) => return Err(error),
                        Err(error) => last_error = Some(error),
                    }
                    let pause = settings
                        .retry_pause()
                        .min(margin.max(Duration::from_millis(1)));
                    timer.sleep(pause).await;
                }
            };
            match select(pin!(attempts), pin!(timer.sleep_until(abort_at))).await {
                Either::Left((result, _)) => Some(result),
                Either::Right(((), _)) => None,
            }
        };
        match outcome {
            Some(Ok(extended)) => {
                extensions += 1;
                signal.extended(extended.expiration());
                lock = extended;
            }
            Some(Err(error)) => {
                signal.abort(error);
                break;
            }
            None => {
                signal.abort(last_error.unwrap_or(LockError::Expired));
                break;
            }
        }
    }
    // Keep the lock handle alive (no background release) until `using` releases it.
    let _lock = lock;
    pending().await
}

/// How long before the validity ends the routine hears of a failed extension: a fifth
/// of the threshold, but at least a few timer ticks (tokio's timer has millisecond
/// steps), and at most half of it, so an extension always has time before the signal
/// fires.
fn signal_margin(threshold: Duration) -> Duration {
    (threshold / 5)
        .max(Duration::from_millis(5))
        .min(threshold / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_extension_always_gets_time_before_the_signal() {
        for millis in [1, 2, 5, 10, 24, 25, 26, 100, 500, 10_000] {
            let threshold = Duration::from_millis(millis);
            let margin = signal_margin(threshold);
            assert!(margin <= threshold / 2, "{threshold:?}: {margin:?}");
            assert!(!margin.is_zero());
        }
        assert_eq!(
            signal_margin(Duration::from_millis(500)),
            Duration::from_millis(100)
        );
        assert_eq!(
            signal_margin(Duration::from_millis(20)),
            Duration::from_millis(5)
        );
    }
}
