//! [`LockError`] and [`InvalidInput`].

use std::time::Duration;

use crate::stats::Attempts;

/// Why a lock operation failed.
///
/// The cases a caller acts on are distinct: the resources are held by someone else
/// ([`Contended`](Self::Contended)), too many backends failed
/// ([`Unavailable`](Self::Unavailable)), the quorum came too late
/// ([`ValidityExhausted`](Self::ValidityExhausted)), the lock had already expired
/// ([`Expired`](Self::Expired)) or is no longer held ([`Lost`](Self::Lost)). Each
/// carries the [`Attempts`] that led to it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// A setting or argument is invalid; nothing was sent to any backend.
    #[error("invalid input: {0}")]
    InvalidInput(InvalidInput),
    /// The resources are held by another client: enough backends refused that no
    /// quorum was possible.
    #[error("resources are locked by another client ({attempts})")]
    Contended {
        /// The attempts made.
        attempts: Attempts,
    },
    /// Too many backends failed or timed out for a quorum.
    #[error("not enough backends available for a quorum ({attempts})")]
    Unavailable {
        /// The attempts made, with each failing backend's reason.
        attempts: Attempts,
    },
    /// A quorum granted the lock, but too late: no validity was left after the
    /// elapsed time and the clock-drift allowance.
    #[error("quorum reached too late, no validity left ({attempts})")]
    ValidityExhausted {
        /// The attempts made.
        attempts: Attempts,
    },
    /// The lock had already expired locally; nothing was sent.
    #[error("the lock has already expired")]
    Expired,
    /// The lock is no longer held: enough backends answered that the keys no longer
    /// hold our value that no quorum is possible, or (with no attempts) the lock was
    /// released through another of its handles.
    #[error("the lock is no longer held ({attempts})")]
    Lost {
        /// The attempts made.
        attempts: Attempts,
    },
    /// `using` stopped extending because the configured cap on hold time or number of
    /// extensions was reached; the lock expires at its current expiration.
    #[error("hold limit reached after {extensions} extension(s) and {held:?}")]
    HoldLimit {
        /// How many extensions were made.
        extensions: u32,
        /// How long the lock had been held when the limit stopped it.
        held: std::time::Duration,
    },
}

impl LockError {
    /// The attempts behind this error, when it came from talking to backends.
    pub fn attempts(&self) -> Option<&Attempts> {
        match self {
            Self::Contended { attempts }
            | Self::Unavailable { attempts }
            | Self::ValidityExhausted { attempts }
            | Self::Lost { attempts } => Some(attempts),
            Self::InvalidInput(_) | Self::Expired | Self::HoldLimit { .. } => None,
        }
    }
}

impl From<InvalidInput> for LockError {
    fn from(invalid: InvalidInput) -> Self {
        Self::InvalidInput(invalid)
    }
}

/// A setting or argument that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidInput {
    /// `Redlock` needs at least one backend.
    #[error("no backends given")]
    NoBackends,
    /// A lock needs at least one resource.
    #[error("no resources given")]
    NoResources,
    /// The TTL must be at least one millisecond.
    #[error("ttl {0:?} is shorter than one millisecond")]
    TtlTooShort(Duration),
    /// The TTL leaves no validity once the clock-drift allowance is subtracted.
    #[error("ttl {ttl:?} does not exceed the clock-drift allowance {drift:?}")]
    TtlWithinDrift {
        /// The TTL asked for.
        ttl: Duration,
        /// The drift allowance for that TTL.
        drift: Duration,
    },
    /// The TTL is longer than [`MAX_TTL`](crate::MAX_TTL).
    #[error("ttl {0:?} is longer than the maximum")]
    TtlTooLong(Duration),
    /// The drift factor must be a finite number in `0.0..1.0`.
    #[error("drift factor {0} is outside 0.0..1.0")]
    DriftFactor(f64),
    /// A duration setting that must be positive is zero.
    #[error("{0} must be greater than zero")]
    ZeroDuration(&'static str),
    /// A duration setting is longer than [`MAX_TTL`](crate::MAX_TTL).
    #[error("{0} is longer than the maximum")]
    DurationTooLong(&'static str),
    /// The automatic extension threshold must be shorter than the longest validity of
    /// the TTL (the TTL minus the clock-drift allowance).
    #[error(
        "automatic extension threshold {threshold:?} is not shorter than the validity of ttl {ttl:?} (ttl minus the clock-drift allowance)"
    )]
    ThresholdNotBelowTtl {
        /// The configured threshold.
        threshold: Duration,
        /// The TTL asked for.
        ttl: Duration,
    },
    /// A quorum override outside `1..=backends` (test-only feature).
    #[error("quorum {quorum} is outside 1..={backends}")]
    Quorum {
        /// The quorum asked for.
        quorum: usize,
        /// How many backends there are.
        backends: usize,
    },
    /// No runtime is available for timers.
    #[error("no async runtime available: {0}")]
    NoRuntime(&'static str),
}
