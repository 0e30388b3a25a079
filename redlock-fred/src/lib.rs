#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]

mod backend;

pub use backend::{ConnectError, FredBackend};
pub use fred;
/// The core crate, for what is not re-exported above (`memory::Fault`, `scripts`, ...).
pub use redlock_core;
pub use redlock_core::{
    Aborted, AttemptStats, Attempts, BackendError, BackendErrorKind, InvalidInput, Lock,
    LockBackend, LockError, MAX_TTL, MemoryBackend, Operation, Outcome, Redlock, RedlockBuilder,
    ReleaseReport, Runtime, Settings, Signal, UsingOutcome, Vote, async_trait,
};
