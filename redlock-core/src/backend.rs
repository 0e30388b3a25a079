//! The [`LockBackend`] trait: the I/O one lock store (one Redis master) performs.

use std::{error::Error as StdError, fmt, future::Future, pin::Pin, sync::Arc, time::Duration};

use async_trait::async_trait;

/// One independent lock store, usually one Redis master.
///
/// A backend only performs I/O: it atomically acquires, extends or releases a set of
/// keys for a value on its store. Quorum, timing, retries and jitter live in
/// [`Redlock`](crate::Redlock), which fans every operation out to all its backends.
///
/// The trait is object safe, so one `Redlock` can mix backends of different clients
/// (`Box<dyn LockBackend>`, `Arc<dyn LockBackend>`).
///
/// # Contract
///
/// Every implementation must hold the following; [`conformance`](crate::conformance)
/// (feature `conformance`) checks it against a live backend.
///
/// - [`acquire`](Self::acquire) is all or none: when every key is missing or already
///   holds `value`, it sets every key to `value` with `ttl` (a key already holding
///   `value` is never shortened) and answers `true`; otherwise it changes nothing and
///   answers `false`.
/// - [`extend`](Self::extend) sets the TTL of every key to `ttl` (never shortening
///   one) and answers `true` only when every key still holds `value`; otherwise it
///   changes nothing and answers `false`. A missing key is never re-created.
/// - [`release`](Self::release) deletes exactly the keys that hold `value` and answers
///   how many it deleted (0 is not an error).
/// - TTLs are honored by the store: a key disappears once its TTL passes.
/// - Ordering: an operation started after an earlier operation on the same backend
///   completed *or was dropped* must not be applied before that earlier one, if the
///   earlier one is applied at all. Redlock relies on this when it cleans up after a
///   timed-out acquire: the cleanup must not overtake the acquire. A client that
///   writes commands to one connection in call order (redis-rs multiplexed
///   connections, fred clients) satisfies it; a pool must route a key set to the same
///   connection every time.
/// - Futures are `Send` and must not block the thread.
///
/// `ttl` is at least one millisecond; [`scripts::ttl_millis`](crate::scripts::ttl_millis)
/// converts it the way the Lua scripts expect.
#[async_trait]
pub trait LockBackend: Send + Sync {
    /// A label for reports and errors, such as the master's address.
    fn name(&self) -> &str;

    /// Sets every key to `value` for `ttl` when each key is free or already holds `value`.
    ///
    /// # Errors
    ///
    /// A [`BackendError`] when the store could not be asked or answered unexpectedly.
    async fn acquire(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError>;

    /// Resets the TTL of every key to `ttl` when every key still holds `value`.
    ///
    /// # Errors
    ///
    /// A [`BackendError`] when the store could not be asked or answered unexpectedly.
    async fn extend(
        &self,
        keys: &[String],
        value: &str,
        ttl: Duration,
    ) -> Result<bool, BackendError>;

    /// Deletes the keys that hold `value`; answers how many were deleted.
    ///
    /// # Errors
    ///
    /// A [`BackendError`] when the store could not be asked or answered unexpectedly.
    async fn release(&self, keys: &[String], value: &str) -> Result<usize, BackendError>;
}

/// The boxed future every backend method returns (what `#[async_trait]` generates).
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BackendError>> + Send + 'a>>;

/// Forwards to the pointee, returning its future as is (no second allocation per call).
macro_rules! forward_backend {
    ($($pointer:ident),+) => {$(
        impl<T: LockBackend + ?Sized> LockBackend for $pointer<T> {
            fn name(&self) -> &str {
                (**self).name()
            }

            fn acquire<'s, 'k, 'v, 'f>(
                &'s self,
                keys: &'k [String],
                value: &'v str,
                ttl: Duration,
            ) -> BoxFuture<'f, bool>
            where
                's: 'f,
                'k: 'f,
                'v: 'f,
                Self: 'f,
            {
                (**self).acquire(keys, value, ttl)
            }

            fn extend<'s, 'k, 'v, 'f>(
                &'s self,
                keys: &'k [String],
                value: &'v str,
                ttl: Duration,
            ) -> BoxFuture<'f, bool>
            where
                's: 'f,
                'k: 'f,
                'v: 'f,
                Self: 'f,
            {
                (**self).extend(keys, value, ttl)
            }

            fn release<'s, 'k, 'v, 'f>(
                &'s self,
                keys: &'k [String],
                value: &'v str,
            ) -> BoxFuture<'f, usize>
            where
                's: 'f,
                'k: 'f,
                'v: 'f,
                Self: 'f,
            {
                (**self).release(keys, value)
            }
        }
    )+};
}

forward_backend!(Arc, Box);

/// What kind of failure a [`BackendError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The connection could not be made or broke.
    Connection,
    /// The server refused our credentials or permissions.
    Auth,
    /// The client's own response timeout fired.
    Timeout,
    /// The server rejected or failed the script.
    Script,
    /// The server answered something the contract does not allow.
    Protocol,
    /// Anything else.
    Other,
}

impl BackendErrorKind {
    fn describe(self) -> &'static str {
        match self {
            Self::Connection => "connection failed",
            Self::Auth => "authentication failed",
            Self::Timeout => "client timed out",
            Self::Script => "script failed",
            Self::Protocol => "unexpected reply",
            Self::Other => "backend error",
        }
    }
}

impl fmt::Display for BackendErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// A failure of one backend operation, keeping the client's error as its source.
///
/// The message names the [`kind`](Self::kind); the client's own error is the
/// [`source`](std::error::Error::source). [`BackendError::report`] renders both.
#[derive(Debug, thiserror::Error)]
#[error("{kind}")]
pub struct BackendError {
    kind: BackendErrorKind,
    #[source]
    source: Option<Box<dyn StdError + Send + Sync + 'static>>,
}

impl BackendError {
    /// Wraps a client error.
    pub fn new(kind: BackendErrorKind, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self {
            kind,
            source: Some(source.into()),
        }
    }

    /// An error with a detail message and no underlying client error.
    pub fn msg(kind: BackendErrorKind, detail: impl Into<String>) -> Self {
        Self::new(kind, detail.into())
    }

    /// An error of this kind with no further detail.
    pub fn from_kind(kind: BackendErrorKind) -> Self {
        Self { kind, source: None }
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> BackendErrorKind {
        self.kind
    }

    /// The message and every source in the chain, joined with `": "`.
    pub fn report(&self) -> String {
        let mut text = self.to_string();
        let mut next = StdError::source(self);
        while let Some(cause) = next {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            next = cause.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_joins_the_source_chain() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = BackendError::new(BackendErrorKind::Connection, io);
        assert_eq!(err.to_string(), "connection failed");
        assert_eq!(err.report(), "connection failed: refused");
        assert!(StdError::source(&err).is_some());
        assert_eq!(
            BackendError::from_kind(BackendErrorKind::Timeout).report(),
            "client timed out"
        );
    }

    #[test]
    fn trait_is_object_safe_for_arc_and_box() {
        fn takes(_: &[Box<dyn LockBackend>]) {}
        let backends: Vec<Box<dyn LockBackend>> = vec![
            Box::new(crate::MemoryBackend::new()),
            Box::new(Arc::new(crate::MemoryBackend::new())),
            Box::new(Box::new(crate::MemoryBackend::new()) as Box<dyn LockBackend>),
        ];
        takes(&backends);
    }
}
