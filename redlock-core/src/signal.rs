//! [`Signal`]: tells a `using` routine whether its lock is still held.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use crate::{error::LockError, runtime::until};

/// Whether the lock behind a [`Redlock::using`](crate::Redlock::using) routine is still
/// held.
///
/// The signal fires ([`is_aborted`](Self::is_aborted) turns `true`,
/// [`aborted`](Self::aborted) completes) when an automatic extension cannot succeed,
/// before the lock's validity ends, and [`error`](Self::error) says why. Cheap to
/// clone; clones observe the same lock.
///
/// ```no_run
/// # async fn demo(redlock: redlock_core::Redlock) -> Result<(), redlock_core::LockError> {
/// # use std::time::Duration;
/// # async fn step() {}
/// use futures_util::{FutureExt, select};
///
/// redlock
///     .using(&["report"], Duration::from_secs(5), |signal| async move {
///         for _ in 0..100 {
///             select! {
///                 _ = step().fuse() => {}
///                 error = signal.aborted().fuse() => return Err(error),
///             }
///         }
///         Ok(())
///     })
///     .await?
/// # }
/// ```
#[derive(Clone)]
pub struct Signal {
    shared: Arc<Mutex<State>>,
}

struct State {
    error: Option<LockError>,
    expiration: Instant,
    /// `using` is done with the lock.
    ended: bool,
    extensions: u32,
    wakers: Vec<Option<Waker>>,
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state();
        f.debug_struct("Signal")
            .field("aborted", &state.error.is_some())
            .field("expiration", &state.expiration)
            .field("extensions", &state.extensions)
            .finish()
    }
}

impl Signal {
    pub(crate) fn new(expiration: Instant) -> Self {
        Self {
            shared: Arc::new(Mutex::new(State {
                error: None,
                expiration,
                ended: false,
                extensions: 0,
                wakers: Vec::new(),
            })),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the lock can no longer be relied on.
    pub fn is_aborted(&self) -> bool {
        self.state().error.is_some()
    }

    /// Why the signal fired, once it has.
    pub fn error(&self) -> Option<LockError> {
        self.state().error.clone()
    }

    /// Completes with the reason when the signal fires (at once if it has), for
    /// `select!` next to the routine's own work.
    pub fn aborted(&self) -> Aborted {
        Aborted {
            signal: self.clone(),
            slot: None,
        }
    }

    /// When the lock's current validity ends (moves later with each extension).
    pub fn expiration(&self) -> Instant {
        self.state().expiration
    }

    /// The validity left: zero once expired, and zero once `using` is done with the
    /// lock (the routine returned and the lock is being or was released), so a clone
    /// kept past `using` never vouches for the lock.
    pub fn remaining(&self) -> Duration {
        let state = self.state();
        if state.ended {
            return Duration::ZERO;
        }
        until(state.expiration)
    }

    /// How many automatic extensions succeeded so far.
    pub fn extensions(&self) -> u32 {
        self.state().extensions
    }

    /// `using` is done with the lock: [`remaining`](Self::remaining) is zero from now on.
    pub(crate) fn end(&self) {
        self.state().ended = true;
    }

    pub(crate) fn extended(&self, expiration: Instant) {
        let mut state = self.state();
        state.expiration = expiration;
        state.extensions += 1;
    }

    pub(crate) fn abort(&self, error: LockError) {
        let wakers = {
            let mut state = self.state();
            if state.error.is_some() {
                return;
            }
            tracing::warn!(%error, "lock lost during using(); signalling the routine");
            state.error = Some(error);
            std::mem::take(&mut state.wakers)
        };
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }
}

/// The future from [`Signal::aborted`]: completes with the reason the signal fired.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct Aborted {
    signal: Signal,
    slot: Option<usize>,
}

impl Future for Aborted {
    type Output = LockError;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockError> {
        let this = self.get_mut();
        let mut state = this.signal.state();
        if let Some(error) = &state.error {
            return Poll::Ready(error.clone());
        }
        let waker = Some(cx.waker().clone());
        match this.slot {
            Some(slot) if slot < state.wakers.len() => state.wakers[slot] = waker,
            _ => {
                // Reuse a slot a dropped future freed, so loops of `select!` stay bounded.
                let slot = match state.wakers.iter().position(Option::is_none) {
                    Some(free) => {
                        state.wakers[free] = waker;
                        free
                    }
                    None => {
                        state.wakers.push(waker);
                        state.wakers.len() - 1
                    }
                };
                this.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for Aborted {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            let mut state = self.signal.state();
            if let Some(waker) = state.wakers.get_mut(slot) {
                *waker = None;
            }
        }
    }
}
