//! The probe against DCMTK on loopback: storescp (any AE title) and
//! dcmqrscp (called AE `COMMON`, open to any caller, holding samples).
//! Passes with a notice if DCMTK is missing.

use std::path::{Path, PathBuf};

use obscura_probe::{parse_target, probe, ProbeOptions, Severity};
use obscura_testkit::{dcmqrscp_common, dcmtk, free_port, spawn_listening};
use tokio::process::Command;

fn uncompressed_samples() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples")];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(info) = obscura_dimse::read_part10_meta(&p) {
                if info.transfer_syntax_uid.starts_with("1.2.840.10008.1.2")
                    && info.transfer_syntax_uid.len() <= "1.2.840.10008.1.2.1".len()
                {
                    out.push(p);
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_exposures_are_found() {
    let Some(storescp) = dcmtk("storescp") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let (_scp, p1) = spawn_listening(|port| {
        let mut command = Command::new(&storescp);
        command.arg("-od").arg(tmp.path()).arg(port.to_string());
        command
    })
    .await;
    let Some((_qr, p2)) = dcmqrscp_common(tmp.path()).await else {
        return;
    };
    let files = uncompressed_samples();
    let statuses = obscura_dimse::store_scu(
        ("127.0.0.1", p2),
        &obscura_dimse::ScuConfig::new("LOADER", "COMMON"),
        &files,
    )
    .await
    .unwrap();
    assert!(statuses.iter().any(|s| matches!(s, Ok(0))));
    let closed = free_port();
    let mut targets = Vec::new();
    for p in [p1, p2, closed] {
        targets.extend(parse_target(&format!("127.0.0.1:{p}")).unwrap());
    }
    let report = probe(&targets, &ProbeOptions::new()).await;
    let [scp, qr, none] = &report.endpoints[..] else {
        panic!()
    };
    // the CVE match depends on the installed DCMTK's version: checked apart
    let ids = |e: &obscura_probe::EndpointReport| -> Vec<&str> {
        e.findings
            .iter()
            .map(|f| f.id)
            .filter(|id| *id != "cve-possible")
            .collect()
    };
    for e in [scp, qr] {
        let fp = e.fingerprint.as_ref().unwrap();
        let expected =
            !obscura_probe::cve_matches(&fp.product, fp.version.as_deref().unwrap_or(""))
                .is_empty();
        let cve = e.findings.iter().find(|f| f.id == "cve-possible");
        assert_eq!(cve.is_some(), expected, "{fp:?}");
        assert!(cve
            .is_none_or(|f| f.severity == Severity::Medium && f.evidence[0].starts_with("DCMTK")));
    }
    // storescp: any called AE, storage offered, plain, user identity ignored.
    assert!(scp.any_called_ae_accepted);
    assert_eq!(
        ids(scp),
        [
            "dicom-unknown-caller-services",
            "dicom-plain",
            "dicom-user-identity-ignored"
        ]
    );
    assert!(scp.query.is_none());
    let fp = scp.fingerprint.as_ref().unwrap();
    assert!(fp.identified.starts_with("DCMTK 3."), "{fp:?}");
    assert!(fp.note.contains("Orthanc"));
    // dcmqrscp: random title refused (called AE not recognized), COMMON guessed.
    assert!(!qr.any_called_ae_accepted);
    assert_eq!(qr.random_titles.as_ref().unwrap().reject, Some([1, 1, 7]));
    assert_eq!(qr.accepted_called_ae.as_deref(), Some("COMMON"));
    assert_eq!(
        ids(qr),
        [
            "dicom-query-open",
            "dicom-unknown-caller-services",
            "dicom-plain",
            "dicom-user-identity-ignored"
        ]
    );
    let q = qr.query.as_ref().unwrap();
    assert_eq!(q.matches_read, 1);
    assert!(q.identifier_hmac.is_some() && q.cancelled);
    assert!(qr
        .services
        .iter()
        .any(|s| s.name == "MOVE study root" && s.accepted));
    // nothing listening
    assert!(!none.reachable && none.findings.is_empty());
    assert_eq!(report.worst(), Some(Severity::Critical));
    assert!(report.elapsed_ms < 20_000, "{}", report.elapsed_ms);
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains(&files[0].display().to_string()));
}
