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

/// What a TLS ClientHello to a port came to (see [`probe_handshake`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsProbe {
    /// Whether a TLS 1.2 or 1.3 handshake completed (server certificate not verified).
    pub handshake: bool,
    /// Negotiated protocol version, e.g. "TLSv1_3".
    pub version: Option<String>,
    /// Negotiated cipher suite, e.g. "TLS13_AES_256_GCM_SHA384".
    pub cipher_suite: Option<String>,
    /// Whether the server asked for a client certificate (none was sent).
    pub client_certificate_requested: bool,
    /// Certificates in the server's chain.
    pub server_certificates: usize,
    /// SHA-256 (hex) of the server's end-entity certificate (public data).
    pub server_certificate_sha256: Option<String>,
    /// The server's certificates, DER, end-entity first (public data; read
    /// from a TLS 1.3 handshake too, where they travel encrypted).
    pub server_chain: Vec<Vec<u8>>,
    /// Why there was no handshake (error kind, never peer data).
    pub failure: Option<String>,
}

/// Accepts any server certificate: for probing only, where the question is
/// whether TLS is spoken at all, never for sending data.
#[derive(Debug)]
struct AcceptAny(Arc<CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls_pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Records that the server sent a CertificateRequest; presents nothing.
#[derive(Debug, Default)]
struct NoteRequest(std::sync::atomic::AtomicBool);

impl rustls::client::ResolvesClientCert for NoteRequest {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        None
    }

    fn has_certs(&self) -> bool {
        false
    }
}

fn probe_config(note: Arc<NoteRequest>) -> Result<Arc<rustls::ClientConfig>, DimseError> {
    let provider = provider();
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(VERSIONS)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_client_cert_resolver(note);
    config.enable_sni = false;
    Ok(Arc::new(config))
}

/// A client configuration for probing: TLS 1.2/1.3, any server certificate
/// accepted unverified, no client certificate. Never use it to send data.
pub fn probe_client_config() -> Result<Arc<rustls::ClientConfig>, DimseError> {
    probe_config(Arc::new(NoteRequest::default()))
}

/// Sends a TLS ClientHello to `addr` and reports whether a TLS 1.2/1.3
/// handshake completes, with which version and cipher suite, and whether a
/// client certificate was requested. The server certificate is not
/// verified (only counted and fingerprinted); no application data is sent.
pub async fn probe_handshake(
    addr: std::net::SocketAddr,
    limit: std::time::Duration,
) -> Result<TlsProbe, DimseError> {
    use sha2::Digest;
    let note = Arc::new(NoteRequest::default());
    let config = probe_config(note.clone())?;
    let tcp = tokio::time::timeout(limit, tokio::net::TcpStream::connect(addr))
        .await
        .map_err(|_| DimseError::Timeout)??;
    let name = rustls_pki_types::ServerName::IpAddress(addr.ip().into());
    let connector = tokio_rustls::TlsConnector::from(config);
    let mut probe = TlsProbe {
        handshake: false,
        version: None,
        cipher_suite: None,
        client_certificate_requested: false,
        server_certificates: 0,
        server_certificate_sha256: None,
        server_chain: Vec::new(),
        failure: None,
    };
    match tokio::time::timeout(limit, connector.connect(name, tcp)).await {
        Err(_) => probe.failure = Some("no answer to ClientHello (timed out)".into()),
        Ok(Err(e)) => {
            probe.failure = Some(
                match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
                    Some(rustls::Error::InvalidMessage(_)) => "not TLS (invalid record)".into(),
                    Some(other) => format!("TLS error: {other:?}"),
                    None => format!("no TLS handshake ({})", e.kind()),
                },
            )
        }
        Ok(Ok(stream)) => {
            let (_, conn) = stream.get_ref();
            probe.handshake = true;
            probe.version = conn.protocol_version().map(|v| format!("{v:?}"));
            probe.cipher_suite = conn
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()));
            if let Some(chain) = conn.peer_certificates() {
                probe.server_certificates = chain.len();
                probe.server_certificate_sha256 = chain.first().map(|c| {
                    sha2::Sha256::digest(c.as_ref())
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect()
                });
                probe.server_chain = chain.iter().map(|c| c.as_ref().to_vec()).collect();
            }
        }
    }
    probe.client_certificate_requested = note.0.load(std::sync::atomic::Ordering::Relaxed);
    Ok(probe)
}
