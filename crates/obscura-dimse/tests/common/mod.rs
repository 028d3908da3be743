//! Shared helpers: a recording handler, a server on a loopback port, test
//! certificates, sample files.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

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

/// A DCMTK binary, or None with a notice (tests then skip).
pub fn dcmtk(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin").join(name);
    if p.exists() {
        Some(p)
    } else {
        eprintln!(
            "SKIPPED: {} not installed (apt-get install dcmtk)",
            p.display()
        );
        None
    }
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Starts the server `command` builds for a free port, once that process
/// itself listens there; it and its port. The port `free_port` released may
/// be taken by another test's server before this one binds it: this one then
/// exits (another port is tried), or, if it is still starting, a probe
/// connection would reach the other test's server. So readiness is the
/// child's own listening socket, not an answer on the port.
pub async fn spawn_listening(
    mut command: impl FnMut(u16) -> tokio::process::Command,
) -> (tokio::process::Child, u16) {
    for _ in 0..5 {
        let port = free_port();
        let mut child = spawn(&mut command(port));
        if owns_listener(&mut child, port).await {
            return (child, port);
        }
    }
    panic!("the server exited on 5 free ports");
}

/// Whether `child` comes to listen on TCP `port` (at most 10 s); false when
/// it exits first.
async fn owns_listener(child: &mut tokio::process::Child, port: u16) -> bool {
    for _ in 0..200 {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let Some(pid) = child.id() else {
            return false;
        };
        let sockets = socket_inodes(pid);
        if listening_inodes(port).iter().any(|i| sockets.contains(i)) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the server does not listen on {port}");
}

/// The inodes of the sockets listening on TCP `port` (IPv4 and IPv6), from
/// Linux's /proc/net/tcp and tcp6.
fn listening_inodes(port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port = fields
                .get(1)
                .and_then(|a| a.rsplit(':').next())
                .and_then(|p| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) && fields.get(3) == Some(&LISTEN) {
                inodes.extend(fields.get(9).and_then(|i| i.parse::<u64>().ok()));
            }
        }
    }
    inodes
}

/// The inodes of the sockets process `pid` holds open.
fn socket_inodes(pid: u32) -> Vec<u64> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_str()?;
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect()
}

/// Spawns `cmd` with no input or output, killed when dropped.
pub fn spawn(cmd: &mut tokio::process::Command) -> tokio::process::Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
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
