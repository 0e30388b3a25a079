#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]

mod backend;

pub use backend::{ConnectError, FredBackend};
pub use fred;
pub use redlock_core::{
    AttemptStats, Attempts, BackendError, BackendErrorKind, InvalidInput, Lock, LockBackend,
    LockError, Outcome, Redlock, RedlockBuilder, ReleaseReport, Runtime, Settings, Signal, Vote,
};
