//! A large audit log over a real archive, for `bench/breach.sh`: the
//! devset's files stored in a vault (tenant `Site A`), then N events over
//! 30 days by 200 web principals, the gateway's forwards to 5 destinations
//! and one stolen credential (`vendor-x@<tenant>`, 1 event in 1,000),
//! subjects drawn from the archive's studies and from 100,000 patients it
//! does not hold. Writes OUT/serve.toml for `obscura breach-report`.
//!
//! `cargo run --release -p obscura-breach --example gen_log -- OUT [N]`

use obscura_audit::{
    Actor, AuditEvent, AuditKey, AuditLog, EventKind, LogConfig, Outcome, Signer, SubjectRef,
    SyncPolicy,
};
use obscura_vault::{Attr, Level, MasterKey, Query, Vault};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant, UNIX_EPOCH};

#[path = "../tests/common/mod.rs"]
mod common;
use common::{devset, Rng};

fn private(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    writeln!(f, "{text}").unwrap();
}

/// The first day of the log (2026-11-01T00:00:00Z).
const DAY0: u64 = 1_793_491_200;

fn main() {
    let mut args = std::env::args().skip(1);
    let out = std::path::PathBuf::from(args.next().expect("OUT folder"));
    let n: u64 = args.next().map_or(10_000_000, |a| a.parse().expect("N"));
    std::fs::create_dir_all(&out).unwrap();

    let master = [7u8; 32];
    private(&out.join("master.key"), &obscura_audit::event::hex(&master));
    let vault = Vault::open(&out.join("archive"), MasterKey::from_bytes(master)).unwrap();
    let tenant = vault.create_tenant("Site A").unwrap();
    for f in devset() {
        let _ = vault.store_file(&tenant, &f);
    }
    let studies: Vec<(String, String)> = vault
        .search(&tenant, &Query::new(Level::Study))
        .unwrap()
        .into_iter()
        .filter_map(|a| {
            Some((
                a.get(Attr::PatientID)?.to_string(),
                a.get(Attr::StudyInstanceUID)?.to_string(),
            ))
        })
        .collect();

    let site = [11u8; 32];
    private(
        &out.join("audit-site.key"),
        &obscura_audit::event::hex(&site),
    );
    let key = AuditKey::from_bytes(site);
    let signer = Signer::from_seed("bench.example/audit", [12; 32]).unwrap();
    signer
        .save(&out.join("audit-signing.key"), &out.join("audit.pub"))
        .unwrap();
    let mut cfg = LogConfig::new(out.join("audit"));
    cfg.sync = SyncPolicy::Batched(100_000);
    cfg.checkpoint_events = 100_000;
    cfg.checkpoint_interval = Duration::from_secs(86_400);
    let (mut log, _) = AuditLog::open(cfg, signer).unwrap();

    let t = Instant::now();
    let mut rng = Rng(2026);
    let stolen = format!("vendor-x@{tenant}");
    let routes = [
        "web:GET /studies",
        "web:GET /studies/{study}",
        "web:GET /studies/{study}/series/{series}/instances/{instance}",
    ];
    let batch = 100_000;
    for start in (0..n).step_by(batch) {
        let events = (start..(start + batch as u64).min(n)).map(|i| {
            let time = UNIX_EPOCH + Duration::from_millis(DAY0 * 1000 + i * 30 * 86_400_000 / n);
            let real = rng.below(50) == 0;
            let (pid, uid) = if real {
                studies[rng.below(studies.len() as u64) as usize].clone()
            } else {
                let p = rng.below(100_000);
                (format!("P{p:06}"), format!("2.25.{p}{}", rng.below(4)))
            };
            let (kind, principal, route) = match rng.below(1000) {
                0 => (
                    EventKind::WebRequest,
                    stolen.clone(),
                    routes[rng.below(3) as usize].to_string(),
                ),
                1..=300 => (
                    EventKind::InstanceForwarded,
                    "obscura-serve".to_string(),
                    format!("dest:dest-{}", rng.below(5)),
                ),
                _ => (
                    EventKind::WebRequest,
                    format!("user-{}@{tenant}", rng.below(200)),
                    routes[rng.below(3) as usize].to_string(),
                ),
            };
            let mut e = AuditEvent::new(
                time,
                kind,
                Actor {
                    principal,
                    address: Some(format!("10.0.{}.{}", rng.below(4), rng.below(250))),
                    ae_title: None,
                },
                Outcome::Success,
            );
            e.route = Some(route);
            e.reason = Some("http-200".into());
            e.count = Some(1);
            e.subjects = vec![
                SubjectRef::patient(&key, &pid),
                SubjectRef::study(&key, &uid),
            ];
            e
        });
        log.append_batch(events.collect::<Vec<_>>()).unwrap();
    }
    log.close().unwrap();
    std::fs::write(
        out.join("serve.toml"),
        "[server]\nae_title = \"OBSCURA\"\nlisten = \"127.0.0.1:0\"\ndata_dir = \"data\"\n\n\
         [audit]\ndir = \"audit\"\nsigning_key = \"audit-signing.key\"\nkey_file = \"audit-site.key\"\n\n\
         [archive]\ndata_dir = \"archive\"\nmaster_key_file = \"master.key\"\n",
    )
    .unwrap();
    println!(
        "{n} events written in {:.1} s ({} studies in the archive); principal {stolen}",
        t.elapsed().as_secs_f64(),
        studies.len()
    );
}
