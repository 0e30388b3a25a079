#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]

#[cfg(not(any(feature = "tokio", feature = "async-std", feature = "smol")))]
compile_error!(
    "redlock-redis-rs needs a runtime: enable one of the features tokio, async-std or smol"
);

mod backend;

pub use backend::{ConnectError, RedisBackend};
pub use redis;
/// The core crate, for what is not re-exported above (`memory::Fault`, `scripts`, ...).
pub use redlock_core;
pub use redlock_core::{
    Aborted, AttemptStats, Attempts, BackendError, BackendErrorKind, InvalidInput, Lock,
    LockBackend, LockError, MAX_TTL, MemoryBackend, Operation, Outcome, Redlock, RedlockBuilder,
    ReleaseReport, Runtime, Settings, Signal, UsingOutcome, Vote, async_trait,
};
