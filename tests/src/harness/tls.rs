//! Certificates generated at test time for a TLS master.

use std::{fs, path::Path};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

use super::server::HarnessError;

/// A throwaway CA and a server certificate for `127.0.0.1` / `localhost`, as PEM.
#[derive(Debug, Clone)]
pub struct TlsMaterial {
    /// The CA certificate clients must trust.
    pub ca_cert: String,
    /// The server certificate, signed by the CA.
    pub server_cert: String,
    /// The server's private key.
    pub server_key: String,
}

impl TlsMaterial {
    /// Generates a fresh CA and server certificate.
    ///
    /// # Errors
    ///
    /// [`HarnessError::Tls`] when generation fails.
    pub fn generate() -> Result<Self, HarnessError> {
        let tls = |error: rcgen::Error| HarnessError::Tls(error.to_string());
        let ca_key = KeyPair::generate().map_err(tls)?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "redlock test CA");
        let ca_cert = ca_params.self_signed(&ca_key).map_err(tls)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate().map_err(tls)?;
        let mut server_params =
            CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
                .map_err(tls)?;
        server_params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let server_cert = server_params.signed_by(&server_key, &issuer).map_err(tls)?;
        Ok(Self {
            ca_cert: ca_cert.pem(),
            server_cert: server_cert.pem(),
            server_key: server_key.serialize_pem(),
        })
    }

    /// Writes `ca.crt`, `server.crt` and `server.key` into `dir`.
    pub(crate) fn write(&self, dir: &Path) -> Result<(), HarnessError> {
        fs::write(dir.join("ca.crt"), &self.ca_cert)?;
        fs::write(dir.join("server.crt"), &self.server_cert)?;
        fs::write(dir.join("server.key"), &self.server_key)?;
        Ok(())
    }
}
