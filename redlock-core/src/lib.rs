#![forbid(unsafe_code)]
#![doc = include_str!("../README.md")]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]
// Without a runtime feature the runtime enums are empty and much code is unreachable.
#![cfg_attr(
    not(any(feature = "tokio", feature = "smol", feature = "async-std")),
    allow(unreachable_code, unused_variables, dead_code)
)]

pub mod backend;
#[cfg(feature = "conformance")]
pub mod conformance;
mod error;
mod lock;
pub mod memory;
mod quorum;
mod redlock;
pub mod runtime;
pub mod scripts;
mod settings;
mod signal;
pub mod stats;
mod using;

pub use async_trait::async_trait;
pub use backend::{BackendError, BackendErrorKind, LockBackend};
pub use error::{InvalidInput, LockError};
pub use lock::{Lock, ReleaseReport};
pub use memory::{Fault, MemoryBackend};
pub use redlock::{Redlock, RedlockBuilder};
pub use runtime::Runtime;
pub use settings::{MAX_TTL, Settings};
pub use signal::{Aborted, Signal};
pub use stats::{AttemptStats, Attempts, Operation, Outcome, Vote};
pub use using::UsingOutcome;
