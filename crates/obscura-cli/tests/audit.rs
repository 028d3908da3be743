//! `obscura audit keygen` and `obscura audit verify`: the exit status is the verdict.

use obscura_audit::{Actor, AuditEvent, AuditLog, EventKind, LogConfig, Outcome, Signer};
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

fn obscura(args: &[&Path]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_obscura"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn verify_exit_codes() {
    let t = tempfile::tempdir().unwrap();
    let (key, public) = (t.path().join("audit.key"), t.path().join("audit.pub"));
    let (code, _) = obscura(&[
        Path::new("audit"),
        Path::new("keygen"),
        Path::new("test.example/audit"),
        &key,
        &public,
    ]);
    assert_eq!(code, 0);
    let (log_dir, witness) = (t.path().join("log"), t.path().join("witness"));
    let mut cfg = LogConfig::new(&log_dir);
    cfg.witness_dir = Some(witness.clone());
    cfg.checkpoint_events = 10;
    let (mut log, _) = AuditLog::open(cfg, Signer::load(&key).unwrap()).unwrap();
    for _ in 0..25 {
        let actor = Actor {
            principal: "p1".into(),
            ..Default::default()
        };
        log.append(AuditEvent::new(
            SystemTime::now(),
            EventKind::WebRequest,
            actor,
            Outcome::Success,
        ))
        .unwrap();
    }
    log.close().unwrap();
    let cp = |n: u64| witness.join(format!("{n:020}.note"));
    let verify = |extra: &[&Path]| {
        let mut a: Vec<&Path> = vec![Path::new("audit"), Path::new("verify"), &log_dir];
        a.extend_from_slice(extra);
        a.extend_from_slice(&[Path::new("--public-key"), &public]);
        obscura(&a)
    };
    let last = cp(25);
    let (code, out) = verify(&[Path::new("--checkpoint"), &last]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("OK: 25 records"), "{out}");
    let first = cp(10);
    let (code, out) = verify(&[Path::new("--checkpoint"), &first]);
    assert_eq!(code, 1);
    assert!(out.contains("UNANCHORED: records 11..25"), "{out}");
    // One record altered.
    let seg = log_dir.join("segments").join(format!("{:020}.jsonl", 0));
    let text = std::fs::read_to_string(&seg).unwrap();
    std::fs::write(&seg, text.replacen("\"p1\"", "\"p2\"", 1)).unwrap();
    let (code, out) = verify(&[Path::new("--checkpoint"), &last]);
    assert_eq!(code, 1);
    assert!(out.contains("TAMPERED"), "{out}");
    // A missing log is an error.
    let (code, _) = obscura(&[
        Path::new("audit"),
        Path::new("verify"),
        &t.path().join("nope"),
        Path::new("--public-key"),
        &public,
    ]);
    assert_eq!(code, 2);
}
