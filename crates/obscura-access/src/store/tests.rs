use super::*;
use crate::grant::Action;

fn new(principal: &str, scope: Scope) -> NewGrant {
    NewGrant {
        principal: principal.into(),
        tenant: "t1".into(),
        scope,
        actions: Actions::default().with(Action::Read),
        view: View::Original,
        expires: Some(1000),
        quota: None,
    }
}

#[test]
fn grants_persist_sealed_and_revoke() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.sqlite");
    let s = SqliteStore::open(&path, SealKey::derive(&[1; 32])).unwrap();
    let g = s
        .add(new("kc:ai", Scope::studies(["1.2.840.99.1"]).unwrap()), 10)
        .unwrap();
    s.add(new("other", Scope::Tenant), 11).unwrap();
    assert_eq!(s.live("kc:ai", 500).unwrap(), vec![g.clone()]);
    assert!(s.live("kc:ai", 1000).unwrap().is_empty(), "expired");
    let q = StudyQuery::new([("ReferringPhysicianName", "WELBY^MARCUS")]).unwrap();
    let mut limited = new("kc:q", Scope::Query(q));
    limited.quota = Some(2);
    let gq = s.add(limited, 12).unwrap();
    let gl = s
        .add(new("kc:l", Scope::label("trial-7").unwrap()), 13)
        .unwrap();
    s.set_label("t1", "trial-7", &["1.2.840.99.2".to_string()].into())
        .unwrap();
    drop(s);
    let bytes = std::fs::read(&path).unwrap();
    let wal = std::fs::read(dir.path().join("access.sqlite-wal")).unwrap_or_default();
    for b in [&bytes, &wal] {
        for clear in [&b"1.2.840.99."[..], b"WELBY"] {
            assert!(!b.windows(clear.len()).any(|w| w == clear), "in clear");
        }
    }
    let s = SqliteStore::open(&path, SealKey::derive(&[1; 32])).unwrap();
    assert_eq!(s.get(&g.id).unwrap(), Some(g.clone()));
    assert_eq!(s.get(&gq.id).unwrap(), Some(gq.clone()));
    assert_eq!(s.get(&gl.id).unwrap(), Some(gl.clone()));
    assert_eq!(s.label("t1", "trial-7").unwrap().len(), 1);
    assert_eq!(s.labels("t1").unwrap(), vec![("trial-7".to_string(), 1)]);
    assert!(s.label("t2", "trial-7").unwrap().is_empty(), "per tenant");
    s.set_label("t1", "trial-7", &BTreeSet::new()).unwrap();
    assert!(s.labels("t1").unwrap().is_empty());
    assert_eq!(s.list(None).unwrap().len(), 4);
    assert!(s.revoke(&g.id, 20).unwrap());
    assert!(!s.revoke(&g.id, 21).unwrap());
    assert!(s.live("kc:ai", 30).unwrap().is_empty());
    assert!(!s.token_revoked("jti-1").unwrap());
    assert!(s.revoke_token("jti-1", 5).unwrap());
    assert!(!s.revoke_token("jti-1", 6).unwrap());
    assert!(s.token_revoked("jti-1").unwrap());
    drop(s);
    let wrong = SqliteStore::open(&path, SealKey::derive(&[2; 32])).unwrap();
    assert!(matches!(wrong.get(&g.id), Err(StoreError::Sealed(_))));
}

#[test]
fn quotas_count_distinct_studies_per_utc_day() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("a.sqlite"), SealKey::derive(&[1; 32])).unwrap();
    let day = 20_000 * 86_400;
    assert!(s.charge("g-1", "1.1", 2, day).unwrap());
    assert!(
        s.charge("g-1", "1.1", 2, day + 5).unwrap(),
        "the same study again"
    );
    assert!(s.charge("g-1", "1.2", 2, day + 6).unwrap());
    assert!(
        !s.charge("g-1", "1.3", 2, day + 7).unwrap(),
        "a third study"
    );
    assert!(s.charge("g-2", "1.3", 2, day + 7).unwrap(), "per grant");
    assert!(
        s.charge("g-1", "1.3", 2, day + 86_400).unwrap(),
        "the next day"
    );
}

#[test]
fn share_links_keep_a_hash_and_name_their_principal() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("a.sqlite"), SealKey::derive(&[1; 32])).unwrap();
    let g = s
        .add_link(new("ignored", Scope::studies(["1.9"]).unwrap()), [7; 32], 1)
        .unwrap();
    assert_eq!(g.grant.principal, format!("share:{}", g.id));
    assert_eq!(s.link_secret(&g.id).unwrap(), Some([7; 32]));
    assert_eq!(s.live(&g.grant.principal, 2).unwrap(), vec![g.clone()]);
    let plain = s.add(new("p", Scope::Tenant), 1).unwrap();
    assert_eq!(s.link_secret(&plain.id).unwrap(), None);
}

#[test]
fn a_first_version_store_gains_the_new_columns() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("access.sqlite");
    let c = rusqlite::Connection::open(&path).unwrap();
    c.execute_batch(
        "CREATE TABLE grants (id TEXT PRIMARY KEY, principal TEXT NOT NULL, tenant TEXT NOT NULL,
         studies BLOB, actions TEXT NOT NULL, view TEXT NOT NULL, expires INTEGER,
         created INTEGER NOT NULL, revoked INTEGER);
         INSERT INTO grants VALUES ('g-1', 'p', 't1', NULL, 'read', 'original', NULL, 5, NULL);",
    )
    .unwrap();
    drop(c);
    let s = SqliteStore::open(&path, SealKey::derive(&[1; 32])).unwrap();
    let g = s.get("g-1").unwrap().unwrap();
    assert_eq!((g.grant.scope, g.grant.quota), (Scope::Tenant, None));
}
