#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]

#[cfg(not(any(feature = "tokio", feature = "async-std", feature = "smol")))]
compile_error!(
    "redlock-redis-rs needs a runtime: enable one of the features tokio, async-std or smol"
);

mod backend;

pub use backend::{ConnectError, RedisBackend};
pub use redis;
pub use redlock_core::{
    AttemptStats, Attempts, BackendError, BackendErrorKind, InvalidInput, Lock, LockBackend,
    LockError, Outcome, Redlock, RedlockBuilder, ReleaseReport, Runtime, Settings, Vote,
};
