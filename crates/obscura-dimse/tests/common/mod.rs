//! Shared helpers: a recording handler, a server on a loopback port, test
//! certificates, sample files.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use obscura_testkit::{dcmtk, spawn_listening};

use obscura_dimse::{
    Admission, Handler, PeerIdentity, ReceivedInstance, RejectReason, ServerConfig,
};

/// What the handler saw of one instance.
#[derive(Debug, Clone)]
pub struct Got {
    pub sop_class: String,
    pub sop_instance: String,
    pub transfer_syntax: String,
    pub bytes: u64,
    pub path: PathBuf,
}

/// Admits the calling AE titles given; keeps every instance in `dir`.
pub struct Recorder {
    pub dir: PathBuf,
    pub allowed: Vec<String>,
    pub got: Mutex<Vec<Got>>,
    pub peers: Mutex<Vec<PeerIdentity>>,
    pub status: u16,
}

impl Handler for Recorder {
    fn admit(&self, peer: &PeerIdentity) -> Admission {
        self.peers.lock().unwrap().push(peer.clone());
        if self.allowed.contains(&peer.calling_ae) {
            Admission::Accept
        } else {
            Admission::Reject {
                reason: RejectReason::CallingAeNotRecognized,
            }
        }
    }
    fn store(&self, _peer: &PeerIdentity, instance: ReceivedInstance) -> u16 {
        // one lock for naming and recording: concurrent stores must not
        // pick the same file name
        let mut got = self.got.lock().unwrap();
        let path = self.dir.join(format!("{}.bin", got.len()));
        assert_eq!(
            instance.dataset.as_file().metadata().unwrap().len(),
            instance.bytes
        );
        instance.dataset.persist(&path).unwrap();
        got.push(Got {
            sop_class: instance.sop_class_uid,
            sop_instance: instance.sop_instance_uid,
            transfer_syntax: instance.transfer_syntax_uid,
            bytes: instance.bytes,
            path,
        });
        self.status
    }
}

/// A running SCP.
pub struct Server {
    pub addr: SocketAddr,
    pub recorder: Arc<Recorder>,
    pub spool: PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<()>>,
    _dirs: tempfile::TempDir,
}

impl Server {
    pub async fn start(configure: impl FnOnce(&mut ServerConfig)) -> Server {
        let dirs = tempfile::tempdir().unwrap();
        let spool = dirs.path().join("spool");
        let kept = dirs.path().join("kept");
        std::fs::create_dir_all(&kept).unwrap();
        let mut config = ServerConfig::new("OBSCURA", &spool);
        configure(&mut config);
        let recorder = Arc::new(Recorder {
            dir: kept,
            allowed: vec!["MODALITY".into(), "OBSCURA-SCU".into()],
            got: Mutex::new(vec![]),
            peers: Mutex::new(vec![]),
            status: 0,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handler = recorder.clone();
        let task = tokio::spawn(async move {
            obscura_dimse::serve(listener, config, handler, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Server {
            addr,
            recorder,
            spool,
            stop: Some(stop),
            task: Some(task),
            _dirs: dirs,
        }
    }

    pub fn got(&self) -> Vec<Got> {
        self.recorder.got.lock().unwrap().clone()
    }

    /// Files left in the spool folder (partial data sets must not stay).
    pub fn spool_files(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.spool)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    }

    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }
}

/// Starts /usr/bin/storescp (AE title STORESCP, files into `out`, then
/// `args`) on a free port once it listens; it and its port, or None if
/// DCMTK is missing.
pub async fn storescp(args: &[&OsStr], out: &Path) -> Option<(tokio::process::Child, u16)> {
    let bin = dcmtk("storescp")?;
    Some(
        spawn_listening(|port| {
            let mut command = tokio::process::Command::new(&bin);
            command
                .args(["-aet", "STORESCP", "-od"])
                .arg(out)
                .args(args)
                .arg(port.to_string());
            command
        })
        .await,
    )
}

/// The repository's sample DICOM files that are Part 10.
pub fn samples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples");
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if obscura_dimse::read_part10_meta(&p).is_ok() {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 3, "samples missing");
    out
}

/// The data set bytes of a Part 10 file.
pub fn dataset_of(path: &Path) -> Vec<u8> {
    let info = obscura_dimse::read_part10_meta(path).unwrap();
    std::fs::read(path).unwrap()[info.dataset_offset as usize..].to_vec()
}

/// PEM files of a test PKI: a CA, a server certificate for localhost and
/// 127.0.0.1, and a client certificate.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub client_der: Vec<u8>,
}

pub fn pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose,
        IsCa, KeyPair, KeyUsagePurpose,
    };
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Obscura test CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let leaf = |names: Vec<String>, cn: &str, eku: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, cn);
        p.extended_key_usages = vec![eku];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let cert = p.signed_by(&key, &ca).unwrap();
        (cert, key)
    };
    let (server, server_key) = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        "localhost",
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client, client_key) = leaf(
        vec!["modality.test".into()],
        "MODALITY",
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let w = |name: &str, pem: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p
    };
    Pki {
        ca: w("ca.pem", ca.pem()),
        server_cert: w("server.pem", server.pem()),
        server_key: w("server.key", server_key.serialize_pem()),
        client_cert: w("client.pem", client.pem()),
        client_key: w("client.key", client_key.serialize_pem()),
        client_der: client.der().to_vec(),
        dir,
    }
}
