//! The log on disk: append, reopen, checkpoints by count and by time,
//! witness copies, segments, torn tails, proofs from a reader, key files,
//! and no PHI.

mod common;

use common::*;
use obscura_audit::note::NoteError;
use obscura_audit::verify::verify_notes;
use obscura_audit::{
    verify, verify_consistency, verify_inclusion, AuditKey, AuditLog, Error, Finding, LogReader,
    Signer, Verdict,
};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn witness_files(w: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(w)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn append_reopen_checkpoints_and_proofs() {
    let t = tempfile::tempdir().unwrap();
    let (dir, w) = (t.path().join("log"), t.path().join("witness"));
    let mut rng = Rng(1);
    let events: Vec<_> = (0..250).map(|i| event(&mut rng, i)).collect();
    write_log(config(&dir, &w, 100, 64), signer(), &events);
    let names: Vec<String> = witness_files(&w)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "00000000000000000100.note",
            "00000000000000000200.note",
            "00000000000000000250.note"
        ]
    );
    assert_eq!(std::fs::read_dir(dir.join("segments")).unwrap().count(), 4);

    // Reopen and go on.
    let (mut log, report) = AuditLog::open(config(&dir, &w, 100, 64), signer()).unwrap();
    assert_eq!(report.records, 250);
    assert_eq!(report.checkpoint_size, Some(250));
    assert!(report.torn.is_none());
    let more: Vec<_> = (250..300).map(|i| event(&mut rng, i)).collect();
    assert_eq!(log.append_batch(more).unwrap(), 250);
    let cp = log.close().unwrap();
    assert_eq!(cp.size, 300);

    let v = signer().verifier();
    let r = verify(&dir, &witness_files(&w), &v).unwrap();
    assert_eq!(r.verdict, Verdict::Ok, "{:?}", r.findings);
    assert_eq!((r.records, r.signed, r.anchored), (300, 300, 300));

    // Inclusion of every record in the latest checkpoint; consistency of every pair.
    let reader = LogReader::open(&dir).unwrap();
    let latest = reader.latest_checkpoint(&v).unwrap().unwrap();
    assert_eq!(latest, cp);
    for i in 0..300 {
        let proof = reader.inclusion_proof(i, cp.size).unwrap();
        verify_inclusion(&reader.leaf_hash(i).unwrap(), i, cp.size, &proof, &cp.root).unwrap();
    }
    assert_eq!(reader.record(123).unwrap().unwrap().seq, 123);
    for old in [0, 1, 100, 200, 250, 299, 300] {
        let proof = reader.consistency_proof(old, 300).unwrap();
        let old_root = reader.root(old).unwrap();
        verify_consistency(old, 300, &old_root, &cp.root, &proof).unwrap();
    }
}

#[test]
fn times_stay_in_order_when_an_event_waited() {
    // stamped 9 s, 10 s, then 8 s (it waited behind the others); after a
    // reopen, 7 s and 1.2 s: each late one takes the last record's time
    let t = tempfile::tempdir().unwrap();
    let (dir, w) = (t.path().join("log"), t.path().join("witness"));
    let mut rng = Rng(9);
    let at = |i: u64, s: u64| {
        let mut e = event(&mut Rng(i), 0);
        e.time = obscura_audit::event::rfc3339(
            std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_000 + s),
        );
        e
    };
    let (mut log, _) = AuditLog::open(config(&dir, &w, 100, 64), signer()).unwrap();
    for (i, s) in [(1, 9), (2, 10), (3, 8)] {
        log.append(at(i, s)).unwrap();
    }
    drop(log);
    let (mut log, _) = AuditLog::open(config(&dir, &w, 100, 64), signer()).unwrap();
    log.append(at(4, 7)).unwrap();
    log.append(event(&mut rng, 1)).unwrap();
    drop(log);
    let reader = LogReader::open(&dir).unwrap();
    let times: Vec<String> = (0..5)
        .map(|i| reader.record(i).unwrap().unwrap().event.time)
        .collect();
    let ten =
        obscura_audit::event::rfc3339(std::time::UNIX_EPOCH + Duration::from_secs(1_700_000_010));
    assert!(times[0] < ten, "an event in order keeps its time");
    assert!(times[1..].iter().all(|t| *t == ten), "{times:?}");
}

#[test]
fn checkpoint_by_time_and_unanchored_tail() {
    let t = tempfile::tempdir().unwrap();
    let (dir, w) = (t.path().join("log"), t.path().join("witness"));
    let mut cfg = config(&dir, &w, 1000, 64);
    cfg.checkpoint_interval = Duration::from_millis(50);
    let (mut log, _) = AuditLog::open(cfg, signer()).unwrap();
    let mut rng = Rng(2);
    log.append(event(&mut rng, 0)).unwrap();
    log.tick().unwrap();
    assert!(witness_files(&w).is_empty(), "not due yet");
    std::thread::sleep(Duration::from_millis(80));
    log.tick().unwrap();
    assert_eq!(witness_files(&w).len(), 1, "due by time");
    log.append(event(&mut rng, 1)).unwrap();
    log.sync().unwrap();
    drop(log);

    let v = signer().verifier();
    let r = verify(&dir, &witness_files(&w), &v).unwrap();
    assert_eq!(
        r.verdict,
        Verdict::Unanchored {
            anchored: 1,
            records: 2
        }
    );
    let r = verify(&dir, &[], &v).unwrap();
    assert_eq!(
        r.verdict,
        Verdict::Unanchored {
            anchored: 0,
            records: 2
        },
        "stored checkpoints alone never make OK"
    );
}

#[test]
fn torn_tail_is_reported_then_set_aside_and_recorded() {
    let t = tempfile::tempdir().unwrap();
    let (dir, w) = (t.path().join("log"), t.path().join("witness"));
    let mut rng = Rng(3);
    let events: Vec<_> = (0..10).map(|i| event(&mut rng, i)).collect();
    write_log(config(&dir, &w, 100, 64), signer(), &events);
    let seg = dir.join("segments").join("00000000000000000000.jsonl");
    let before = std::fs::metadata(&seg).unwrap().len();
    let mut f = std::fs::OpenOptions::new().append(true).open(&seg).unwrap();
    std::io::Write::write_all(&mut f, b"{\"actor\":{\"princ").unwrap();
    drop(f);

    let v = signer().verifier();
    let r = verify(&dir, &witness_files(&w), &v).unwrap();
    assert!(matches!(
        r.findings[..],
        [Finding::TornTail { last: true, .. }]
    ));
    assert_eq!(
        r.verdict,
        Verdict::Unanchored {
            anchored: 10,
            records: 10
        }
    );

    match AuditLog::open(config(&dir, &w, 100, 64), signer()) {
        Err(Error::TornTail(tt)) => assert_eq!((tt.offset, tt.len), (before, 16)),
        other => panic!("expected a torn tail, got {other:?}"),
    }
    let (log, report) = AuditLog::open_recover(config(&dir, &w, 100, 64), signer()).unwrap();
    assert_eq!(report.torn.as_ref().unwrap().len, 16);
    assert_eq!(report.records, 11, "the recovery is itself recorded");
    drop(log);
    let kept = std::fs::read(
        dir.join("torn")
            .join(format!("00000000000000000000.jsonl.{before}.torn")),
    )
    .unwrap();
    assert_eq!(kept, b"{\"actor\":{\"princ");
    let reader = LogReader::open(&dir).unwrap();
    let rec = reader.record(10).unwrap().unwrap();
    assert_eq!(rec.event.kind, obscura_audit::EventKind::LogRecovered);
    assert_eq!(rec.event.count, Some(16));
    let r = verify(&dir, &witness_files(&w), &v).unwrap();
    assert_eq!(r.verdict, Verdict::Ok, "{:?}", r.findings);
}

#[test]
fn open_refuses_altered_or_foreign_logs() {
    let t = tempfile::tempdir().unwrap();
    let (dir, w) = (t.path().join("log"), t.path().join("witness"));
    let mut rng = Rng(4);
    let events: Vec<_> = (0..20).map(|i| event(&mut rng, i)).collect();
    write_log(config(&dir, &w, 100, 64), signer(), &events);
    let other = Signer::from_seed(ORIGIN, [1; 32]).unwrap();
    assert!(matches!(
        AuditLog::open(config(&dir, &w, 100, 64), other),
        Err(Error::Foreign(_))
    ));
    // A valid record replaced by another valid record: the latest checkpoint no longer matches.
    let seg = dir.join("segments").join("00000000000000000000.jsonl");
    let text = std::fs::read_to_string(&seg).unwrap();
    let altered = text.replacen("principal-", "principal-9", 1);
    std::fs::write(&seg, altered).unwrap();
    assert!(matches!(
        AuditLog::open(config(&dir, &w, 100, 64), signer()),
        Err(Error::Damaged(_))
    ));
}

#[test]
fn key_files_must_be_private() {
    let t = tempfile::tempdir().unwrap();
    let (sk, pk) = (t.path().join("audit.key"), t.path().join("audit.pub"));
    let s = Signer::generate(ORIGIN).unwrap();
    s.save(&sk, &pk).unwrap();
    assert!(s.save(&sk, &pk).is_err(), "never overwritten");
    let loaded = Signer::load(&sk).unwrap();
    assert_eq!(loaded.verifier(), s.verifier());
    assert_eq!(obscura_audit::Verifier::load(&pk).unwrap(), s.verifier());
    std::fs::set_permissions(&sk, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert!(matches!(Signer::load(&sk), Err(Error::KeyExposed(_))));

    let hk = t.path().join("site.key");
    std::fs::write(&hk, "cd".repeat(32)).unwrap();
    std::fs::set_permissions(&hk, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(matches!(AuditKey::load(&hk), Err(Error::KeyExposed(_))));
    std::fs::set_permissions(&hk, std::fs::Permissions::from_mode(0o600)).unwrap();
    AuditKey::load(&hk).unwrap();
}

#[test]
fn no_identifier_in_clear_anywhere() {
    let t = tempfile::tempdir().unwrap();
    let (dir, w) = (t.path().join("log"), t.path().join("witness"));
    let mut rng = Rng(5);
    let events: Vec<_> = (0..200).map(|i| event(&mut rng, i)).collect();
    write_log(config(&dir, &w, 50, 64), signer(), &events);
    let mut all = Vec::new();
    for d in [dir.join("segments"), dir.join("checkpoints"), w.clone()] {
        for p in witness_files(&d) {
            all.extend(std::fs::read(p).unwrap());
        }
    }
    let text = String::from_utf8(all).unwrap();
    assert!(text.contains("\"kind\":\"patient\""));
    assert!(
        !text.contains("PATIENT-ID"),
        "patient IDs only as keyed hashes"
    );
    assert!(!text.contains("1.2.3."), "study UIDs only as keyed hashes");
}

#[test]
fn outside_checkpoint_of_another_log_is_refused() {
    let t = tempfile::tempdir().unwrap();
    let (dir, w) = (t.path().join("log"), t.path().join("witness"));
    let mut rng = Rng(6);
    let events: Vec<_> = (0..5).map(|i| event(&mut rng, i)).collect();
    write_log(config(&dir, &w, 100, 64), signer(), &events);
    let other = Signer::from_seed("obscura.test/other", [42; 32]).unwrap();
    let cp = obscura_audit::Checkpoint {
        origin: "obscura.test/other".into(),
        size: 5,
        root: [0; 32],
    };
    let r = verify_notes(&dir, &[("x".into(), cp.sign(&other))], &signer().verifier()).unwrap();
    assert_eq!(r.verdict, Verdict::Tampered);
    assert!(matches!(
        r.findings[..],
        [Finding::InvalidCheckpoint {
            why: NoteError::UnknownKey,
            ..
        }]
    ));
}
