//! The listener: TCP, then TLS (rustls, TLS 1.2/1.3, the `ring` provider;
//! client certificates verified against the configured CA when one is
//! set), then HTTP/1.1 (hyper) into the [`router`](crate::router). Each
//! connection's [`Peer`] (address, verified certificate) is attached to its
//! requests for [`authenticate`](crate::authenticate). Limits: connections,
//! TLS handshake and header read time (slow clients are dropped).

use crate::auth::{certificate_subject, Peer};
use crate::config::{ConfigError, WebConfig};
use crate::{router, Web};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use obscura_vault::Vault;
use rustls::server::WebPkiClientVerifier;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// The DICOMweb server: state, routes and (if configured) TLS.
pub struct WebServer {
    web: Arc<Web>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl WebServer {
    /// Compile the config (principals, tokens file, TLS files) over `vault`,
    /// with the config's grants only.
    pub fn new(config: WebConfig, vault: Arc<Vault>) -> Result<WebServer, ConfigError> {
        WebServer::with_grants(config, vault, None)
    }

    /// [`new`](Self::new), with the grants of `store` too.
    pub fn with_grants(
        config: WebConfig,
        vault: Arc<Vault>,
        store: Option<Arc<dyn obscura_access::GrantStore>>,
    ) -> Result<WebServer, ConfigError> {
        let tls = match &config.tls {
            Some(t) => {
                if crate::auth::readable_by_others(&t.key)
                    .map_err(|e| ConfigError::File(t.key.clone(), e.to_string()))?
                {
                    return Err(ConfigError::File(
                        t.key.clone(),
                        "readable by others: run chmod 600 on it".into(),
                    ));
                }
                Some(tokio_rustls::TlsAcceptor::from(server_config(
                    &t.cert,
                    &t.key,
                    t.client_ca.as_deref(),
                )?))
            }
            None => None,
        };
        Ok(WebServer {
            web: Arc::new(Web::with_grants(config, vault, store)?),
            tls,
        })
    }

    /// Record every request in `auditor` (see `audit`); once, before serving.
    pub fn set_audit(&self, auditor: Arc<obscura_audit::Auditor>) {
        let _ = self.web.audit.set(auditor);
    }

    /// The shared state (for tests and wiring).
    pub fn web(&self) -> &Arc<Web> {
        &self.web
    }

    /// Bind the configured address.
    pub async fn bind(&self) -> std::io::Result<TcpListener> {
        TcpListener::bind(self.web.config.listen).await
    }

    /// Serve connections from `listener` until `shutdown` resolves; then
    /// stop accepting and give open connections up to 30 s to finish.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let local = listener.local_addr()?;
        let app = router(Arc::clone(&self.web));
        let idle = self.web.config.idle_timeout();
        let slots = Arc::new(tokio::sync::Semaphore::new(self.web.config.max_connections));
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut conns = tokio::task::JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let (stream, addr) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        log::warn!("web: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = &mut shutdown => break,
            };
            while conns.try_join_next().is_some() {}
            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                log::warn!("web: connection from {addr} refused: too many connections");
                continue;
            };
            let _ = stream.set_nodelay(true);
            let app = app.clone();
            let tls = self.tls.clone();
            let stop = stop_rx.clone();
            conns.spawn(async move {
                let _permit = permit;
                match tls {
                    None => {
                        let peer = Peer {
                            addr,
                            tls: false,
                            cert_sha256: None,
                            cert_subject: None,
                        };
                        connection(stream, peer, app, idle, stop).await;
                    }
                    Some(acceptor) => {
                        let tls = match tokio::time::timeout(idle, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                log::warn!("audit: web TLS handshake from {addr} failed: {e}");
                                return;
                            }
                            Err(_) => {
                                log::warn!("web: TLS handshake from {addr} timed out");
                                return;
                            }
                        };
                        let cert = tls
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| c.as_ref().to_vec());
                        let peer = Peer {
                            addr,
                            tls: true,
                            cert_sha256: cert.as_ref().map(|c| Sha256::digest(c).into()),
                            cert_subject: cert.as_deref().and_then(certificate_subject),
                        };
                        connection(tls, peer, app, idle, stop).await;
                    }
                }
            });
        }
        let _ = stop_tx.send(true);
        log::info!("web: stopping on {local}: open connections finish");
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            while conns.join_next().await.is_some() {}
        })
        .await;
        conns.abort_all();
        Ok(())
    }
}

/// One HTTP/1.1 connection.
async fn connection<S>(
    io: S,
    peer: Peer,
    app: axum::Router,
    idle: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(peer.clone());
        app.clone().oneshot(req)
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(idle)
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                log::debug!("web: connection ended: {e}");
            }
        }
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Resolves once the stop flag is set (or its sender is gone).
async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let err = |m: String| ConfigError::File(path.to_path_buf(), m);
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| err(e.to_string()))?;
    if certs.is_empty() {
        return Err(err("no certificate".into()));
    }
    Ok(certs)
}

/// A rustls server configuration: TLS 1.2/1.3, HTTP/1.1 by ALPN, client
/// certificates verified against `client_ca` when given but not required
/// (a client without one may authenticate with a bearer token).
pub fn server_config(
    cert: &Path,
    key: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<rustls::ServerConfig>, ConfigError> {
    let tls_err = |e: rustls::Error| ConfigError::Invalid(format!("TLS: {e}"));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(tls_err)?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = RootCertStore::empty();
            for c in certs(ca)? {
                roots
                    .add(c)
                    .map_err(|e| ConfigError::File(ca.to_path_buf(), e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| ConfigError::Invalid(format!("client verifier: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let key_der = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| ConfigError::File(key.to_path_buf(), e.to_string()))?;
    let mut config = builder
        .with_single_cert(certs(cert)?, key_der)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The address a server bound (for logs).
pub fn describe(addr: SocketAddr, tls: bool) -> String {
    format!("{}://{addr}", if tls { "https" } else { "http" })
}
