//! The gateway on the network, through `obscura-dimse`: the SCP listeners
//! (plain and TLS) with the gateway as their handler, and the C-STORE SCU
//! that delivers to remote destinations.

use crate::config::{Delivery, TlsClientConfig};
use crate::forward::{OutFile, Transport};
use crate::policy::Caller;
use crate::{log, Gateway};
use obscura_dimse::{
    Admission, Handler, PeerIdentity, ReceivedInstance, RejectReason, ScuConfig, ScuTls,
    ServerConfig,
};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Retired storage SOP classes (PS3.6 Annex A) still found in archives:
/// Ultrasound (Multi-frame) Image, Nuclear Medicine Image, X-Ray Angiographic
/// Bi-Plane Image, VL (Multi-frame) Image.
const RETIRED_STORAGE: &[&str] = &[
    "1.2.840.10008.5.1.4.1.1.6",
    "1.2.840.10008.5.1.4.1.1.3",
    "1.2.840.10008.5.1.4.1.1.5",
    "1.2.840.10008.5.1.4.1.1.12.3",
    "1.2.840.10008.5.1.4.1.1.77.1",
    "1.2.840.10008.5.1.4.1.1.77.2",
];

struct Listener {
    gw: Arc<Gateway>,
    tls: bool,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Listener {
    fn caller(&self, p: &PeerIdentity) -> Caller {
        Caller {
            calling_ae: p.calling_ae.clone(),
            called_ae: p.called_ae.clone(),
            address: p.address.ip(),
            client_cert_sha256: p.client_cert_sha256.map(|h| hex(&h)),
            tls: self.tls,
        }
    }
}

impl Handler for Listener {
    fn admit(&self, peer: &PeerIdentity) -> Admission {
        match self.gw.admit(&self.caller(peer)) {
            Ok(_) => Admission::Accept,
            Err(why) => Admission::Reject {
                reason: match why.as_str() {
                    "unknown calling AE title" => RejectReason::CallingAeNotRecognized,
                    "wrong called AE title" => RejectReason::CalledAeNotRecognized,
                    _ => RejectReason::NoReasonGiven,
                },
            },
        }
    }

    fn store(&self, peer: &PeerIdentity, mut instance: ReceivedInstance) -> u16 {
        // admitted already; the policy is asked again for the peer's name
        let Ok(name) = self.gw.policy.admit(&self.caller(peer)) else {
            return crate::STATUS_NOT_AUTHORIZED;
        };
        self.gw.receive(
            &name,
            &instance.sop_class_uid,
            &instance.sop_instance_uid,
            &instance.transfer_syntax_uid,
            instance.dataset.as_file_mut(),
        )
    }
}

struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Info
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            crate::log(&format!(
                "{}: {}",
                r.level().as_str().to_lowercase(),
                r.args()
            ));
        }
    }
    fn flush(&self) {}
}

/// Send the protocol layer's log records (AE titles, addresses, codes; no
/// PHI) to the gateway's log.
pub fn init_logging() {
    if log::set_logger(&StderrLog).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

/// Check that a private key file is readable by its owner only.
pub fn check_private_file(path: &std::path::Path) -> Result<(), String> {
    let exposed = obscura_batch::paths::readable_by_others(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if exposed {
        return Err(format!(
            "{} is readable by others: run chmod 600 on it",
            path.display()
        ));
    }
    Ok(())
}

/// A task to run on the gateway's network runtime beside the DIMSE
/// listeners (the DICOMweb server); it must end once `stop` is set.
pub type Task = std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>;

/// Run the listeners until `stop` is set, then let in-flight associations
/// finish. `ready` is called with the bound addresses once listening.
pub fn serve(
    gw: &Arc<Gateway>,
    stop: Arc<AtomicBool>,
    ready: impl FnOnce(&[(SocketAddr, bool)]),
) -> Result<(), String> {
    serve_with(gw, stop, Vec::new(), ready)
}

/// [`serve`], with `tasks` running on the same runtime (each is spawned
/// once the runtime runs; a task's error is logged).
pub fn serve_with(
    gw: &Arc<Gateway>,
    stop: Arc<AtomicBool>,
    extra: Vec<Task>,
    ready: impl FnOnce(&[(SocketAddr, bool)]),
) -> Result<(), String> {
    let c = gw.config().clone();
    let mut base = ServerConfig::new(c.server.ae_title.clone(), gw.data().incoming());
    // retired storage classes that archives still hold and send
    for uid in RETIRED_STORAGE {
        if !base.abstract_syntaxes.iter().any(|a| a == uid) {
            base.abstract_syntaxes.push(uid.to_string());
        }
    }
    base.max_associations = c.server.max_associations;
    base.max_pdu_length = c.server.max_pdu_length;
    base.idle_timeout = c.idle_timeout();
    base.max_dataset_bytes = c.server.max_dataset_bytes;
    let mut plans: Vec<(SocketAddr, ServerConfig, bool)> = Vec::new();
    if let Some(addr) = c.server.listen {
        plans.push((addr, base.clone(), false));
    }
    if let Some(t) = &c.server.tls {
        let key = c.path(&t.key);
        check_private_file(&key)?;
        let ca = t.client_ca.as_ref().map(|p| c.path(p));
        let tls = obscura_dimse::tls::server_config(&c.path(&t.cert), &key, ca.as_deref())
            .map_err(|e| format!("server TLS: {e}"))?;
        let mut cfg = base.clone();
        cfg.tls = Some(tls);
        plans.push((t.listen, cfg, true));
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .enable_all()
        .thread_name("dicom")
        .build()
        .map_err(|e| format!("cannot start the network runtime: {e}"))?;
    rt.block_on(async {
        let mut bound = Vec::new();
        let mut tasks = tokio::task::JoinSet::new();
        for (addr, cfg, tls) in plans {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
            let local = listener.local_addr().map_err(|e| e.to_string())?;
            bound.push((local, tls));
            let handler: Arc<dyn Handler> = Arc::new(Listener {
                gw: Arc::clone(gw),
                tls,
            });
            let stop = Arc::clone(&stop);
            tasks.spawn(async move {
                let shutdown = async move {
                    while !stop.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                };
                obscura_dimse::serve(listener, cfg, handler, shutdown)
                    .await
                    .map_err(|e| e.to_string())
            });
        }
        ready(&bound);
        for task in extra {
            tasks.spawn(task);
        }
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Ok(())) => {}
                Ok(Err(e)) => log(&format!("listener stopped: {e}")),
                Err(e) => log(&format!("listener failed: {e}")),
            }
        }
        Ok::<(), String>(())
    })
}

/// C-STORE SCU delivery with `obscura-dimse`.
pub struct DimseTransport {
    rt: tokio::runtime::Runtime,
    tls: Mutex<HashMap<String, ScuTls>>,
    max_pdu_length: u32,
}

impl DimseTransport {
    /// A transport with its own small runtime.
    pub fn new(max_pdu_length: u32) -> Result<DimseTransport, String> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("scu")
            .build()
            .map_err(|e| format!("cannot start the SCU runtime: {e}"))?;
        Ok(DimseTransport {
            rt,
            tls: Mutex::new(HashMap::new()),
            max_pdu_length,
        })
    }

    fn scu_tls(&self, host: &str, t: &TlsClientConfig) -> Result<ScuTls, String> {
        let key = format!("{host}|{}", t.ca.display());
        if let Some(s) = self.tls.lock().ok().and_then(|m| m.get(&key).cloned()) {
            return Ok(s);
        }
        let pair = match (&t.cert, &t.key) {
            (Some(c), Some(k)) => {
                check_private_file(k)?;
                Some((c.as_path(), k.as_path()))
            }
            (None, None) => None,
            _ => return Err("set both cert and key for a client certificate".into()),
        };
        let config = obscura_dimse::tls::client_config(&t.ca, pair)
            .map_err(|e| format!("client TLS: {e}"))?;
        let name = t.server_name.clone().unwrap_or_else(|| {
            host.rsplit_once(':')
                .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
                .unwrap_or_else(|| host.to_string())
        });
        let server_name = obscura_dimse::rustls::pki_types::ServerName::try_from(name)
            .map_err(|_| "invalid TLS server name".to_string())?;
        let s = ScuTls {
            config,
            server_name,
        };
        if let Ok(mut m) = self.tls.lock() {
            m.insert(key, s.clone());
        }
        Ok(s)
    }
}

/// Statuses that mean the remote stored the instance (success and warnings).
fn stored(status: u16) -> bool {
    matches!(status, 0x0000 | 0x0001 | 0xB000 | 0xB006 | 0xB007)
}

impl Transport for DimseTransport {
    fn store(&self, delivery: &Delivery, files: &[OutFile]) -> Vec<Result<(), String>> {
        let Delivery::Scu {
            host,
            called_ae,
            calling_ae,
            tls,
        } = delivery
        else {
            return files
                .iter()
                .map(|_| Err("not a DICOM destination".to_string()))
                .collect();
        };
        let all = |e: String| files.iter().map(|_| Err(e.clone())).collect::<Vec<_>>();
        let mut config = ScuConfig::new(calling_ae.clone(), called_ae.clone());
        config.max_pdu_length = self.max_pdu_length;
        config.timeout = Duration::from_secs(30);
        if let Some(t) = tls {
            match self.scu_tls(host, t) {
                Ok(s) => config.tls = Some(s),
                Err(e) => return all(e),
            }
        }
        let paths: Vec<PathBuf> = files.iter().map(|f| f.path.clone()).collect();
        match self
            .rt
            .block_on(obscura_dimse::store_scu(host.as_str(), &config, &paths))
        {
            Ok(results) => {
                let mut out: Vec<Result<(), String>> = results
                    .into_iter()
                    .map(|r| match r {
                        Ok(s) if stored(s) => Ok(()),
                        Ok(s) => Err(format!("remote answered status 0x{s:04X}")),
                        Err(e) => Err(format!("C-STORE: {e}")),
                    })
                    .collect();
                out.resize(files.len(), Err("no answer".into()));
                out
            }
            Err(e) => all(format!("association: {e}")),
        }
    }
}
