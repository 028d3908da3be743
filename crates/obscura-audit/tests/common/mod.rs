//! Seeded events and logs for the tests.
#![allow(dead_code)]

use obscura_audit::{
    Actor, AuditEvent, AuditKey, AuditLog, EventKind, LogConfig, Outcome, Signer, SubjectRef,
    SyncPolicy,
};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// splitmix64: a small seeded generator, no dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo)
    }
}

pub const ORIGIN: &str = "obscura.test/audit";

pub fn signer() -> Signer {
    Signer::from_seed(ORIGIN, [42; 32]).unwrap()
}

pub fn audit_key() -> AuditKey {
    AuditKey::from_bytes([5; 32])
}

/// Event `i` of a seeded stream: every kind, subjects as keyed hashes of
/// invented patient IDs and study UIDs.
pub fn event(rng: &mut Rng, i: u64) -> AuditEvent {
    let kind = EventKind::ALL[rng.below(14) as usize];
    let mut e = AuditEvent::new(
        UNIX_EPOCH + Duration::from_millis(1_700_000_000_000 + i * 1234),
        kind,
        Actor {
            principal: format!("principal-{}", rng.below(20)),
            address: Some(format!("10.0.{}.{}", rng.below(4), rng.below(250))),
            ae_title: (rng.below(2) == 0).then(|| "MODALITY1".to_string()),
        },
        [Outcome::Success, Outcome::Denied, Outcome::Failure][rng.below(3) as usize],
    );
    e.route = Some(format!("route-{}", rng.below(5)));
    let key = audit_key();
    for _ in 0..rng.below(3) {
        let p = rng.below(1000);
        e.subjects
            .push(SubjectRef::patient(&key, &format!("PATIENT-ID-{p}")));
        e.subjects.push(SubjectRef::study(
            &key,
            &format!("1.2.3.{p}.{}", rng.below(9)),
        ));
    }
    e
}

/// A scratch folder on tmpfs when there is one (`/dev/shm`: fsync costs
/// nothing there, so seeded runs of thousands of logs stay fast), else
/// the default temporary folder.
pub fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(t) = tempfile::tempdir_in(shm) {
            return t;
        }
    }
    tempfile::tempdir().unwrap()
}

/// A small-log configuration: checkpoints every `every` events, segments of `seg` records.
pub fn config(dir: &Path, witness: &Path, every: u64, seg: u64) -> LogConfig {
    let mut cfg = LogConfig::new(dir);
    cfg.witness_dir = Some(witness.to_path_buf());
    cfg.checkpoint_events = every;
    cfg.checkpoint_interval = Duration::from_secs(3600);
    cfg.sync = SyncPolicy::Batched(16);
    cfg.segment_records = seg;
    cfg
}

/// Write `events` to a new log with `signer`, closing with a checkpoint.
pub fn write_log(cfg: LogConfig, signer: Signer, events: &[AuditEvent]) {
    let (mut log, _) = AuditLog::open(cfg, signer).unwrap();
    for e in events {
        log.append(e.clone()).unwrap();
    }
    log.close().unwrap();
}
