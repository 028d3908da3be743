//! Micro-benchmark: events/s appended (fsync per record, and batched), and
//! the time to verify a log of N events (default 1,000,000) with a
//! checkpoint every 1,000.
//!
//! `cargo run --release -p obscura-audit --example audit_bench -- [N]`

use obscura_audit::{
    verify, Actor, AuditEvent, AuditKey, AuditLog, EventKind, LogConfig, Outcome, Signer,
    SubjectRef, SyncPolicy,
};
use std::time::{Duration, Instant, SystemTime};

fn events(n: u64) -> impl Iterator<Item = AuditEvent> {
    let key = AuditKey::from_bytes([5; 32]);
    let now = SystemTime::now();
    (0..n).map(move |i| {
        let mut e = AuditEvent::new(
            now,
            EventKind::InstanceStored,
            Actor {
                principal: format!("modality-{}", i % 17),
                address: Some("10.1.2.3".into()),
                ae_title: Some("CT1".into()),
            },
            Outcome::Success,
        );
        e.route = Some("dest:research".into());
        e.subjects = vec![
            SubjectRef::patient(&key, &format!("P{}", i / 300)),
            SubjectRef::study(&key, &format!("1.2.3.{}", i / 100)),
        ];
        e
    })
}

fn config(dir: &std::path::Path, sync: SyncPolicy) -> LogConfig {
    let mut c = LogConfig::new(dir.join("log"));
    c.witness_dir = Some(dir.join("witness"));
    c.sync = sync;
    c.checkpoint_interval = Duration::from_secs(3600);
    c
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let signer = || Signer::from_seed("bench.example/audit", [1; 32]).unwrap();

    for (label, sync, count) in [
        ("fsync every record", SyncPolicy::Always, 2_000u64),
        ("fsync every 100 records", SyncPolicy::Batched(100), 50_000),
        (
            "fsync every 1000 records",
            SyncPolicy::Batched(1000),
            200_000,
        ),
    ] {
        let t = tempfile::tempdir().unwrap();
        let (mut log, _) = AuditLog::open(config(t.path(), sync), signer()).unwrap();
        let start = Instant::now();
        for e in events(count) {
            log.append(e).unwrap();
        }
        log.close().unwrap();
        let s = start.elapsed().as_secs_f64();
        println!(
            "append, {label}: {count} events in {s:.2} s = {:.0} events/s (checkpoint every 1000)",
            count as f64 / s
        );
    }

    let t = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let (mut log, _) =
        AuditLog::open(config(t.path(), SyncPolicy::Batched(1000)), signer()).unwrap();
    log.append_batch(events(n)).unwrap();
    let verifier = log.verifier();
    log.close().unwrap();
    println!("wrote {n} events in {:.1} s", start.elapsed().as_secs_f64());
    let bytes: u64 = std::fs::read_dir(t.path().join("log/segments"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    let mut witness: Vec<_> = std::fs::read_dir(t.path().join("witness"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    witness.sort();
    let latest = witness.last().cloned().into_iter().collect::<Vec<_>>();
    let start = Instant::now();
    let r = verify(&t.path().join("log"), &latest, &verifier).unwrap();
    let s = start.elapsed().as_secs_f64();
    println!(
        "verify {} events ({:.0} MiB, {} stored checkpoints, 1 outside): {s:.2} s = {:.0} events/s, verdict {:?}",
        r.records,
        bytes as f64 / (1 << 20) as f64,
        r.stored_checkpoints,
        r.records as f64 / s,
        r.verdict
    );
}
