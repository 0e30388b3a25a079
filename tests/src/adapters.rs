//! The backends under test, so a suite is written once and run for each adapter.

use redlock_core::{LockBackend, Runtime};
use redlock_redis_rs::RedisBackend;

/// One adapter crate under test.
#[async_trait::async_trait]
pub trait Adapter: Send + Sync + 'static {
    /// A short name for reports.
    const NAME: &'static str;
    /// The backend type.
    type Backend: LockBackend + Clone + std::fmt::Debug + 'static;

    /// Whether the adapter works on `runtime`.
    fn supports(runtime: Runtime) -> bool;

    /// Connects to one master.
    ///
    /// # Errors
    ///
    /// The adapter's connect error, rendered with its source chain.
    async fn connect(url: &str) -> Result<Self::Backend, String>;

    /// Connects over TLS to `url` (`rediss://`), trusting the PEM `ca_cert`.
    ///
    /// # Errors
    ///
    /// The adapter's connect error, rendered with its source chain.
    async fn connect_tls(url: &str, ca_cert: &str) -> Result<Self::Backend, String>;
}

/// The `redlock-redis-rs` adapter.
#[derive(Debug, Clone, Copy)]
pub struct RedisRs;

#[async_trait::async_trait]
impl Adapter for RedisRs {
    const NAME: &'static str = "redis-rs";
    type Backend = RedisBackend;

    fn supports(_: Runtime) -> bool {
        true
    }

    async fn connect(url: &str) -> Result<Self::Backend, String> {
        RedisBackend::from_url(url)
            .await
            .map_err(|error| report(&error))
    }

    async fn connect_tls(url: &str, ca_cert: &str) -> Result<Self::Backend, String> {
        let certificates = redis::TlsCertificates {
            client_tls: None,
            root_cert: Some(ca_cert.as_bytes().to_vec()),
        };
        let client =
            redis::Client::build_with_tls(url, certificates).map_err(|error| report(&error))?;
        RedisBackend::from_client(client)
            .await
            .map_err(|error| report(&error))
    }
}

/// An error and its source chain, joined with `": "`.
pub fn report(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut next = error.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}
