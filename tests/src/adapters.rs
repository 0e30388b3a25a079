//! The backends under test, so a suite is written once and run for each adapter.

use std::sync::Arc;

use redlock_core::{LockBackend, Runtime};
use redlock_fred::FredBackend;
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

/// The `redlock-fred` adapter (tokio only).
#[derive(Debug, Clone, Copy)]
pub struct Fred;

#[async_trait::async_trait]
impl Adapter for Fred {
    const NAME: &'static str = "fred";
    type Backend = FredBackend;

    fn supports(runtime: Runtime) -> bool {
        runtime == Runtime::Tokio
    }

    async fn connect(url: &str) -> Result<Self::Backend, String> {
        FredBackend::from_url(url)
            .await
            .map_err(|error| report(&error))
    }

    async fn connect_tls(url: &str, ca_cert: &str) -> Result<Self::Backend, String> {
        use rustls::pki_types::{CertificateDer, pem::PemObject};
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(ca_cert.as_bytes()) {
            roots
                .add(cert.map_err(|error| error.to_string())?)
                .map_err(|error| error.to_string())?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut config =
            fred::types::config::Config::from_url(url).map_err(|error| report(&error))?;
        config.tls = Some(fred::types::config::TlsConnector::from(tls).into());
        FredBackend::from_config(config)
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
