//! Interoperability with DCMTK (/usr/bin/echoscu, storescu, storescp), plain
//! and TLS. Each test prints a notice and passes if DCMTK is missing.

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::{dataset_of, pki, samples, storescp, Server};
use obscura_dimse::{tls, ScuConfig, ScuTls};
use obscura_testkit::dcmtk;
use tokio::process::Command;

async fn run(cmd: &mut Command) -> (bool, String) {
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.stdin(Stdio::null()).output())
        .await
        .expect("DCMTK tool hung")
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echoscu_known_ae_succeeds_unknown_is_rejected() {
    let Some(echoscu) = dcmtk("echoscu") else {
        return;
    };
    let server = Server::start(|_| {}).await;
    let port = server.addr.port().to_string();
    let (ok, out) = run(Command::new(&echoscu).args([
        "-aet",
        "MODALITY",
        "-aec",
        "OBSCURA",
        "127.0.0.1",
        &port,
    ]))
    .await;
    assert!(ok, "{out}");
    let (ok, out) = run(Command::new(&echoscu).args([
        "-aet",
        "STRANGER",
        "-aec",
        "OBSCURA",
        "127.0.0.1",
        &port,
    ]))
    .await;
    assert!(!ok, "unknown AE accepted: {out}");
    assert!(
        out.contains("Rejected") || out.contains("rejected"),
        "{out}"
    );
    let peers = server.recorder.peers.lock().unwrap().clone();
    assert_eq!(peers.len(), 2);
    assert_eq!(peers[1].calling_ae, "STRANGER");
    assert_eq!(peers[1].called_ae, "OBSCURA");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_plain_delivers_every_instance() {
    let Some(storescu) = dcmtk("storescu") else {
        return;
    };
    let server = Server::start(|c| c.max_pdu_length = 16384).await;
    let files = samples();
    let port = server.addr.port().to_string();
    let (ok, out) = run(Command::new(&storescu)
        .args(["-aet", "MODALITY", "-aec", "OBSCURA", "127.0.0.1", &port])
        .args(&files))
    .await;
    assert!(ok, "{out}");
    check_received(&server, &files);
    assert!(server.spool_files().is_empty());
    server.stop().await;
}

/// Every file arrived once, as a data set that DCMTK reads back (storescu
/// re-encodes, e.g. sequence lengths, so bytes need not be the file's).
fn check_received(server: &Server, files: &[PathBuf]) {
    let got = server.got();
    assert_eq!(got.len(), files.len());
    for f in files {
        let info = obscura_dimse::read_part10_meta(f).unwrap();
        let g = got
            .iter()
            .find(|g| g.sop_instance == info.sop_instance_uid)
            .expect("instance missing");
        assert_eq!(g.sop_class, info.sop_class_uid);
        assert_eq!(std::fs::metadata(&g.path).unwrap().len(), g.bytes);
        let xfer = match g.transfer_syntax.as_str() {
            obscura_dimse::IMPLICIT_VR_LITTLE_ENDIAN => "--read-xfer-implicit",
            obscura_dimse::EXPLICIT_VR_LITTLE_ENDIAN => "--read-xfer-little",
            _ => continue,
        };
        let out = std::process::Command::new("/usr/bin/dcmdump")
            .args(["--read-dataset", xfer])
            .arg(&g.path)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains(&info.sop_instance_uid),
            "{}: {text}",
            f.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescu_mutual_tls_and_fingerprint() {
    let Some(storescu) = dcmtk("storescu") else {
        return;
    };
    let pki = pki();
    let cfg = tls::server_config(&pki.server_cert, &pki.server_key, Some(&pki.ca)).unwrap();
    let server = Server::start(|c| c.tls = Some(cfg)).await;
    let files = samples();
    let port = server.addr.port().to_string();
    let (ok, out) = run(Command::new(&storescu)
        .args(["-aet", "MODALITY", "-aec", "OBSCURA", "+tls"])
        .arg(&pki.client_key)
        .arg(&pki.client_cert)
        .args(["-pw", "+cf"])
        .arg(&pki.ca)
        .args(["127.0.0.1", &port])
        .args(&files))
    .await;
    assert!(ok, "{out}");
    check_received(&server, &files);
    use sha2::Digest;
    let want: [u8; 32] = sha2::Sha256::digest(&pki.client_der).into();
    let peers = server.recorder.peers.lock().unwrap().clone();
    assert_eq!(peers[0].client_cert_sha256, Some(want));
    assert_eq!(tls::certificate_sha256(&pki.client_cert).unwrap(), want);

    // Without a client certificate: the handshake fails, nothing admitted.
    let echoscu = dcmtk("echoscu").unwrap();
    let (ok, out) = run(Command::new(&echoscu)
        .args(["-aet", "MODALITY", "-aec", "OBSCURA", "+tla", "+cf"])
        .arg(&pki.ca)
        .args(["127.0.0.1", &port]))
    .await;
    assert!(!ok, "anonymous TLS client accepted: {out}");
    assert_eq!(server.recorder.peers.lock().unwrap().len(), 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_without_client_auth_and_plain_client_refused() {
    let Some(echoscu) = dcmtk("echoscu") else {
        return;
    };
    let pki = pki();
    let cfg = tls::server_config(&pki.server_cert, &pki.server_key, None).unwrap();
    let server = Server::start(|c| c.tls = Some(cfg)).await;
    let port = server.addr.port().to_string();
    let (ok, out) = run(Command::new(&echoscu)
        .args(["-aet", "MODALITY", "-aec", "OBSCURA", "+tla", "+cf"])
        .arg(&pki.ca)
        .args(["127.0.0.1", &port]))
    .await;
    assert!(ok, "{out}");
    assert_eq!(
        server.recorder.peers.lock().unwrap()[0].client_cert_sha256,
        None
    );
    // A plain DICOM client on the TLS port gets nowhere.
    let (ok, _) = run(Command::new(&echoscu).args([
        "-to",
        "5",
        "-aet",
        "MODALITY",
        "-aec",
        "OBSCURA",
        "127.0.0.1",
        &port,
    ]))
    .await;
    assert!(!ok);
    server.stop().await;
}

fn received_instances(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            obscura_dimse::read_part10_meta(&e.unwrap().path())
                .unwrap()
                .sop_instance_uid
        })
        .collect();
    v.sort();
    v
}

fn instances_of(files: &[PathBuf]) -> Vec<String> {
    let mut v: Vec<String> = files
        .iter()
        .map(|f| obscura_dimse::read_part10_meta(f).unwrap().sop_instance_uid)
        .collect();
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scu_to_storescp_plain() {
    let out = tempfile::tempdir().unwrap();
    let Some((mut child, port)) = storescp(&["+xd".as_ref(), "+B".as_ref()], out.path()).await
    else {
        return;
    };
    let files = samples();
    let mut scu = ScuConfig::new("OBSCURA-SCU", "STORESCP");
    scu.max_pdu_length = 16384;
    assert_eq!(
        obscura_dimse::echo_scu(("127.0.0.1", port), &scu)
            .await
            .unwrap(),
        0
    );
    let statuses = obscura_dimse::store_scu(("127.0.0.1", port), &scu, &files)
        .await
        .unwrap();
    assert!(statuses.iter().all(|s| matches!(s, Ok(0))), "{statuses:?}");
    assert_eq!(received_instances(out.path()), instances_of(&files));
    // storescp +B writes the data set as received: the same bytes as ours.
    for e in std::fs::read_dir(out.path()).unwrap() {
        let p = e.unwrap().path();
        let uid = obscura_dimse::read_part10_meta(&p)
            .unwrap()
            .sop_instance_uid;
        let f = files
            .iter()
            .find(|f| obscura_dimse::read_part10_meta(f).unwrap().sop_instance_uid == uid)
            .unwrap();
        assert!(
            dataset_of(&p) == dataset_of(f),
            "{} changed in transit",
            f.display()
        );
    }
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scu_to_storescp_mutual_tls() {
    let pki = pki();
    let out = tempfile::tempdir().unwrap();
    let args = [
        "+tls".as_ref(),
        pki.server_key.as_os_str(),
        pki.server_cert.as_os_str(),
        "-pw".as_ref(),
        "+cf".as_ref(),
        pki.ca.as_os_str(),
        "-rc".as_ref(),
        "+xd".as_ref(),
    ];
    let Some((mut child, port)) = storescp(&args, out.path()).await else {
        return;
    };
    let files = samples();
    let mut scu = ScuConfig::new("OBSCURA-SCU", "STORESCP");
    scu.tls = Some(ScuTls {
        config: tls::client_config(&pki.ca, Some((&pki.client_cert, &pki.client_key))).unwrap(),
        server_name: "localhost".try_into().unwrap(),
    });
    let statuses = obscura_dimse::store_scu(("127.0.0.1", port), &scu, &files)
        .await
        .unwrap();
    assert!(statuses.iter().all(|s| matches!(s, Ok(0))), "{statuses:?}");
    assert_eq!(received_instances(out.path()), instances_of(&files));

    // Without a client certificate, storescp (-rc) refuses the handshake.
    let mut anon = scu.clone();
    anon.tls = Some(ScuTls {
        config: tls::client_config(&pki.ca, None).unwrap(),
        server_name: "127.0.0.1".try_into().unwrap(),
    });
    assert!(obscura_dimse::echo_scu(("127.0.0.1", port), &anon)
        .await
        .is_err());
    child.kill().await.unwrap();
}
