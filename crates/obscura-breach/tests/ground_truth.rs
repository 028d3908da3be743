//! The report on a seeded log over a real archive: the devset's files in a
//! vault; a stolen credential searches, retrieves and has instances
//! forwarded to it inside a window, other principals (and the same one
//! outside the window) touch other studies; the report's patient, study
//! and provider sets are exactly the window's (precision = recall = 1).
//! An altered log, or an old checkpoint replayed, is refused.

use obscura_audit::{
    Actor, AuditEvent, AuditKey, AuditLog, EventKind, LogConfig, Outcome, Signer, SubjectRef,
    SyncPolicy,
};
use obscura_breach::{build, owner_records, Exposure, Request};
use obscura_vault::{Attr, Attributes, Level, MasterKey, Query, Vault};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;
use common::{devset, Rng};

const STOLEN: &str = "vendor-x@site";
const T0: u64 = 1_780_000_000;

fn event(
    t: u64,
    kind: EventKind,
    who: &str,
    route: &str,
    study: &Attributes,
    key: &AuditKey,
) -> AuditEvent {
    let mut e = AuditEvent::new(
        UNIX_EPOCH + Duration::from_secs(t),
        kind,
        Actor {
            principal: who.into(),
            ..Default::default()
        },
        Outcome::Success,
    );
    e.route = Some(route.into());
    e.subjects = vec![
        SubjectRef::patient(key, study.get(Attr::PatientID).unwrap()),
        SubjectRef::study(key, study.get(Attr::StudyInstanceUID).unwrap()),
    ];
    e
}

#[test]
fn exact_sets_on_a_seeded_log_over_a_real_archive() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(&dir.path().join("archive"), MasterKey::from_bytes([3; 32])).unwrap();
    let tenant = vault.create_tenant("site").unwrap();
    for f in devset() {
        // a file the index refuses (no UIDs) is not in the archive: fine
        let _ = vault.store_file(&tenant, &f);
    }
    let studies: Vec<Attributes> = vault
        .search(&tenant, &Query::new(Level::Study))
        .unwrap()
        .into_iter()
        .filter(|a| a.get(Attr::PatientID).is_some())
        .collect();
    assert!(studies.len() >= 10, "{} studies", studies.len());

    let key = AuditKey::from_bytes([9; 32]);
    let signer = Signer::from_seed("test.example/audit", [4; 32]).unwrap();
    let verifier = signer.verifier();
    let log_dir = dir.path().join("audit");
    let mut cfg = LogConfig::new(&log_dir);
    cfg.sync = SyncPolicy::Batched(10_000);
    cfg.segment_records = 97;
    let (mut log, _) = AuditLog::open(cfg, signer).unwrap();

    let mut rng = Rng(12);
    let (from, to) = (T0 + 1000, T0 + 1600);
    // ground truth: study uid -> worst exposure, for the stolen principal in the window
    let mut truth: BTreeMap<String, Exposure> = BTreeMap::new();
    let mut events = Vec::new();
    for i in 0..3000u64 {
        let t = T0 + i * 2;
        let s = &studies[rng.below(studies.len() as u64) as usize];
        let (who, kind, route, x) = match rng.below(100) {
            0 => (
                STOLEN,
                EventKind::WebRequest,
                "web:GET /studies",
                Exposure::Demographics,
            ),
            1 => (
                STOLEN,
                EventKind::WebRequest,
                "web:GET /studies/{study}",
                Exposure::Instances,
            ),
            2 => (
                "obscura-serve",
                EventKind::InstanceForwarded,
                "dest:vendor-x",
                Exposure::DeidentifiedOnly,
            ),
            3 => (
                STOLEN,
                EventKind::WebRequest,
                "web:POST /studies",
                Exposure::Instances,
            ),
            4 => (
                "obscura-serve",
                EventKind::InstanceForwarded,
                "dest:pacs",
                Exposure::Instances,
            ),
            _ => (
                "reader@site",
                EventKind::WebRequest,
                "web:GET /studies",
                Exposure::Demographics,
            ),
        };
        let mut e = event(t, kind, who, route, s, &key);
        if route == "web:POST /studies" {
            // a store exposes nothing; neither does a denied retrieve
        } else if rng.below(20) == 0 && who == STOLEN {
            e.outcome = Outcome::Denied;
        } else if (from..=to).contains(&t) && (who == STOLEN || route == "dest:vendor-x") {
            let uid = s.get(Attr::StudyInstanceUID).unwrap().to_string();
            let w = truth.entry(uid).or_insert(x);
            *w = (*w).max(x);
        }
        events.push(e);
    }
    assert!(
        !truth.is_empty() && truth.len() < studies.len(),
        "{} of {} studies touched",
        truth.len(),
        studies.len()
    );
    log.append_batch(events).unwrap();
    log.close().unwrap();

    let owner = owner_records(&vault, &[tenant]).unwrap();
    let req = |principal: &str| Request {
        log_dir: log_dir.clone(),
        verifier: verifier.clone(),
        outside: Vec::new(),
        principal: principal.into(),
        from: UNIX_EPOCH + Duration::from_secs(from),
        to: UNIX_EPOCH + Duration::from_secs(to),
        discovered: SystemTime::now(),
        identified_destinations: BTreeSet::new(),
    };
    // the web principal and the destination it controls, one report each
    let mut got: BTreeMap<String, Exposure> = BTreeMap::new();
    let mut providers = BTreeSet::new();
    for p in ["vendor-x", "vendor-x@site"] {
        let (report, rows) = build(&req(p), &key, &owner).unwrap();
        assert!(report.patients.iter().all(|p| p.resolved));
        assert_eq!(report.log.unsigned_events, 0);
        for r in rows {
            let w = got.entry(r.study_uid).or_insert(r.study_exposure.unwrap());
            *w = (*w).max(r.study_exposure.unwrap());
            providers.insert(r.referring_physician);
        }
        if p == "vendor-x@site" {
            assert!(report.patients.iter().all(|s| s.exposure.identifiable()));
        }
    }
    // "vendor-x" alone matches the web principal in every tenant and the destination
    let both: BTreeSet<String> = got.keys().cloned().collect();
    let want: BTreeSet<String> = truth.keys().cloned().collect();
    assert_eq!(both, want, "exact studies");
    let by_uid: BTreeMap<&str, &Attributes> = studies
        .iter()
        .map(|a| (a.get(Attr::StudyInstanceUID).unwrap(), a))
        .collect();
    let want_providers: BTreeSet<String> = want
        .iter()
        .map(|u| {
            by_uid[u.as_str()]
                .get(Attr::ReferringPhysicianName)
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(providers, want_providers, "exact providers");
    let (all, rows) = build(&req("vendor-x"), &key, &owner).unwrap();
    let want_patients: BTreeSet<&str> = want
        .iter()
        .map(|u| by_uid[u.as_str()].get(Attr::PatientID).unwrap())
        .collect();
    let got_patients: BTreeSet<&str> = rows.iter().map(|r| r.patient_id.as_str()).collect();
    assert_eq!(got_patients, want_patients, "exact patients");
    assert_eq!(all.patients.len(), want_patients.len());
    for r in &rows {
        assert_eq!(
            r.study_exposure,
            Some(truth[&r.study_uid]),
            "exposure of a study"
        );
    }

    // a flipped byte in one record: refused
    let seg = obscura_audit::log::list_segments(&log_dir).unwrap()[3]
        .1
        .clone();
    let mut bytes = std::fs::read(&seg).unwrap();
    let at = bytes.iter().position(|&b| b == b'"').unwrap() + 3;
    bytes[at] ^= 1;
    std::fs::write(&seg, &bytes).unwrap();
    let err = build(&req("vendor-x"), &key, &owner).unwrap_err();
    assert!(err.to_string().contains("altered"), "{err}");
    bytes[at] ^= 1;
    std::fs::write(&seg, &bytes).unwrap();
    build(&req("vendor-x"), &key, &owner).unwrap();
    // an old checkpoint replayed as the latest: refused
    let cps = obscura_audit::log::list_checkpoints(&log_dir).unwrap();
    std::fs::copy(&cps[0].1, log_dir.join("checkpoint")).unwrap();
    let err = build(&req("vendor-x"), &key, &owner).unwrap_err();
    assert!(err.to_string().contains("replayed"), "{err}");
}
