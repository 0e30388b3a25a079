//! Which async runtime provides timers and background tasks.
//!
//! Core needs a timer (per-request timeouts, retry back-off, extension scheduling) and,
//! for cleanup after dropped futures and locks, a way to spawn a task. Both come from
//! the runtime chosen by Cargo features: `tokio` (default), `async-std`, `smol`.
//! Several may be enabled at once; [`Runtime::detect`] then picks the one the caller
//! runs on, and [`RedlockBuilder::runtime`](crate::RedlockBuilder::runtime) picks one
//! explicitly.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use crate::error::InvalidInput;

/// An async runtime core can use, as enabled by Cargo features.
///
/// With no runtime feature enabled this enum has no variants and building a
/// [`Redlock`](crate::Redlock) fails with [`InvalidInput::NoRuntime`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Runtime {
    /// tokio (feature `tokio`). Operations must run inside a tokio runtime with the
    /// time driver enabled, unless `smol` or `async-std` is also enabled as a fallback.
    #[cfg(feature = "tokio")]
    Tokio,
    /// async-std (feature `async-std`).
    #[cfg(feature = "async-std")]
    AsyncStd,
    /// smol (feature `smol`).
    #[cfg(feature = "smol")]
    Smol,
}

impl Runtime {
    /// Picks a runtime for the calling context.
    ///
    /// tokio when the caller runs inside a tokio runtime, otherwise smol, otherwise
    /// async-std, otherwise tokio (if enabled); `None` when no runtime feature is on.
    pub fn detect() -> Option<Self> {
        #[cfg(feature = "tokio")]
        if tokio::runtime::Handle::try_current().is_ok() {
            return Some(Self::Tokio);
        }
        let candidates = [
            #[cfg(feature = "smol")]
            Self::Smol,
            #[cfg(feature = "async-std")]
            Self::AsyncStd,
            #[cfg(feature = "tokio")]
            Self::Tokio,
        ];
        candidates.into_iter().next()
    }

    /// The timer this runtime provides in the calling context.
    pub(crate) fn timer(self) -> Result<Timer, InvalidInput> {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio => {
                if tokio::runtime::Handle::try_current().is_ok() {
                    return Ok(Timer::Tokio);
                }
                #[cfg(any(feature = "smol", feature = "async-std"))]
                return Ok(Timer::AsyncIo);
                #[cfg(not(any(feature = "smol", feature = "async-std")))]
                Err(InvalidInput::NoRuntime(
                    "the tokio runtime was selected but the call does not run inside one",
                ))
            }
            #[cfg(feature = "async-std")]
            Self::AsyncStd => Ok(Timer::AsyncIo),
            #[cfg(feature = "smol")]
            Self::Smol => Ok(Timer::AsyncIo),
        }
    }

    /// Runs `task` in the background; `false` when there is nowhere to run it.
    ///
    /// There is somewhere exactly when [`timer`](Self::timer) succeeds: tokio spawns
    /// inside a tokio runtime and otherwise falls back to smol or async-std like the
    /// timer does.
    pub(crate) fn spawn<F>(self, task: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio => {
                if let Ok(handle) = tokio::runtime::Handle::try_current() {
                    drop(handle.spawn(task));
                    return true;
                }
                #[cfg(feature = "smol")]
                return Self::Smol.spawn(task);
                #[cfg(all(feature = "async-std", not(feature = "smol")))]
                return Self::AsyncStd.spawn(task);
                #[cfg(not(any(feature = "smol", feature = "async-std")))]
                {
                    drop(task);
                    false
                }
            }
            #[cfg(feature = "async-std")]
            Self::AsyncStd => {
                drop(async_std::task::spawn(task));
                true
            }
            #[cfg(feature = "smol")]
            Self::Smol => {
                smol::spawn(task).detach();
                true
            }
        }
    }
}

/// A timer resolved for the calling context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    #[cfg(feature = "tokio")]
    Tokio,
    #[cfg(any(feature = "smol", feature = "async-std"))]
    AsyncIo,
}

impl Timer {
    /// The timer of whatever runtime the caller runs on, if any.
    pub(crate) fn detect() -> Option<Self> {
        Runtime::detect().and_then(|runtime| runtime.timer().ok())
    }

    /// Completes at `instant` (at once if it passed).
    pub(crate) async fn sleep_until(self, instant: Instant) {
        self.sleep(until(instant)).await;
    }

    /// Completes after `duration`.
    pub(crate) async fn sleep(self, duration: Duration) {
        match self {
            #[cfg(feature = "tokio")]
            Self::Tokio => tokio::time::sleep(duration).await,
            #[cfg(any(feature = "smol", feature = "async-std"))]
            Self::AsyncIo => {
                async_io::Timer::after(duration).await;
            }
        }
    }
}

/// The time left until `instant` (zero once it passed).
pub(crate) fn until(instant: Instant) -> Duration {
    instant.saturating_duration_since(Instant::now())
}
