//! TLS configurations per PS3.15 Annex B and BCP 195: TLS 1.2 and 1.3 only,
//! rustls's default (safe) cipher suites, the `ring` provider given
//! explicitly (so a process-wide provider choice elsewhere does not matter).

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::DimseError;

/// The crypto provider used for every configuration of this crate.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, DimseError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| DimseError::Config(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(DimseError::Config(format!(
            "{}: no certificate",
            path.display()
        )));
    }
    Ok(certs)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, DimseError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| DimseError::Config(format!("{}: {e}", path.display())))
}

fn roots(path: &Path) -> Result<RootCertStore, DimseError> {
    let mut roots = RootCertStore::empty();
    for c in certs(path)? {
        roots
            .add(c)
            .map_err(|e| DimseError::Config(format!("{}: {e}", path.display())))?;
    }
    Ok(roots)
}

/// A server configuration from PEM files: the certificate chain, its
/// private key (PKCS#8, PKCS#1 or SEC1), and optionally the CA(s) that
/// client certificates must chain to (then a client certificate is
/// required: mutual TLS).
pub fn server_config(
    cert_pem: &Path,
    key_pem: &Path,
    client_ca_pem: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, DimseError> {
    let builder =
        rustls::ServerConfig::builder_with_provider(provider()).with_protocol_versions(VERSIONS)?;
    let builder = match client_ca_pem {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider())
                    .build()
                    .map_err(|e| DimseError::Config(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    Ok(Arc::new(
        builder.with_single_cert(certs(cert_pem)?, key(key_pem)?)?,
    ))
}

/// A client configuration trusting the CA(s) in `ca_pem`, optionally
/// presenting a client certificate chain and key (PEM files).
pub fn client_config(
    ca_pem: &Path,
    client_cert_and_key: Option<(&Path, &Path)>,
) -> Result<Arc<rustls::ClientConfig>, DimseError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)?
        .with_root_certificates(roots(ca_pem)?);
    Ok(Arc::new(match client_cert_and_key {
        None => builder.with_no_client_auth(),
        Some((cert, k)) => builder.with_client_auth_cert(certs(cert)?, key(k)?)?,
    }))
}

/// SHA-256 fingerprint of the first certificate in a PEM file (to put a
/// known client's certificate into a configuration).
pub fn certificate_sha256(cert_pem: &Path) -> Result<[u8; 32], DimseError> {
    use sha2::Digest;
    Ok(sha2::Sha256::digest(certs(cert_pem)?[0].as_ref()).into())
}
