//! A property test of least privilege over the router, in process: random
//! grants (listed studies of either tenant, labels holding studies of
//! either tenant, queries on modality, study date range, referring
//! physician and accession prefix, whole tenants, actions, expired ones,
//! grants in two tenants) for a third-party principal, then
//! random requests on every route kind (QIDO at each level with random
//! keys, WADO of studies, series, instances, metadata, frames, rendered,
//! STOW into random studies, unrouted paths). For every response: it names
//! no study, series or instance outside the grant for its action (status,
//! headers and body searched), a study outside the grant is answered byte
//! for byte like one that never existed, QIDO returns exactly the granted
//! studies that exist, and a STOW instance is stored only into a study the
//! grant lets it write.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use http_body_util::BodyExt;
use obscura_access::{
    Action, Actions, GrantStore, NewGrant, Scope, SealKey, SqliteStore, StudyQuery, View,
};
use obscura_vault::{MasterKey, Vault};
use obscura_web::{router, Peer, Web, WebConfig};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use tower::ServiceExt;

const CLASS: &str = "1.2.840.10008.5.1.4.1.1.7";
const TENANTS: usize = 2;
const STUDIES: usize = 4;
const CASES: u32 = 160;

/// UIDs of one length per kind (`1.2.3.<kind>.<6 digits>`), so that no UID
/// is a substring of another and a search for one finds only it.
static NEXT: AtomicU32 = AtomicU32::new(1);
fn uid(kind: u8) -> String {
    format!("1.2.3.{kind}.{:06}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A study's attributes, from its UID: (modality, study date, referring
/// physician, accession number).
fn attrs(study: &str) -> (&'static str, String, &'static str, String) {
    // (a pseudonymous study, 2.25.<128 bits>, written back through a view, too)
    let n = (study.rsplit('.').next().unwrap().parse::<u128>().unwrap() % 1_000_000) as usize;
    (
        MODALITIES[n % 3],
        format!("2020010{}", 1 + n % 5),
        REFERRING[(n / 3) % 3],
        format!("A{}{n:05}", n % 4),
    )
}

const MODALITIES: [&str; 3] = ["CT", "MR", "OT"];
const REFERRING: [&str; 3] = ["WELBY^MARCUS", "KILDARE^JAMES", "CASEY^BEN"];

fn instance(study: &str, series: &str, sop: &str) -> Vec<u8> {
    let e = |tag, vr, v: &str| DataElement::new(tag, vr, PrimitiveValue::from(v));
    let (modality, date, referring, accession) = attrs(study);
    let obj = InMemDicomObject::from_element_iter([
        e(tags::SOP_CLASS_UID, VR::UI, CLASS),
        e(tags::SOP_INSTANCE_UID, VR::UI, sop),
        e(tags::MODALITY, VR::CS, modality),
        e(tags::STUDY_DATE, VR::DA, &date),
        e(tags::REFERRING_PHYSICIAN_NAME, VR::PN, referring),
        e(tags::ACCESSION_NUMBER, VR::SH, &accession),
        e(tags::PATIENT_NAME, VR::PN, "DOE^JANE"),
        e(tags::PATIENT_ID, VR::LO, "PID-1"),
        e(tags::STUDY_INSTANCE_UID, VR::UI, study),
        e(tags::SERIES_INSTANCE_UID, VR::UI, series),
        e(tags::ROWS, VR::US, "2"),
        e(tags::COLUMNS, VR::US, "2"),
        e(tags::BITS_ALLOCATED, VR::US, "8"),
        e(tags::BITS_STORED, VR::US, "8"),
        e(tags::HIGH_BIT, VR::US, "7"),
        e(tags::PIXEL_REPRESENTATION, VR::US, "0"),
        e(tags::SAMPLES_PER_PIXEL, VR::US, "1"),
        e(tags::PHOTOMETRIC_INTERPRETATION, VR::CS, "MONOCHROME2"),
        DataElement::new(
            tags::PIXEL_DATA,
            VR::OB,
            PrimitiveValue::from(vec![1u8, 2, 3, 4]),
        ),
    ]);
    let file = obj
        .with_meta(
            FileMetaTableBuilder::new()
                .transfer_syntax("1.2.840.10008.1.2.1")
                .media_storage_sop_class_uid(CLASS)
                .media_storage_sop_instance_uid(sop),
        )
        .unwrap();
    let mut out = Vec::new();
    file.write_all(&mut out).unwrap();
    out
}

fn multipart(part: &[u8]) -> Vec<u8> {
    let mut body = b"--b0undary\r\nContent-Type: application/dicom\r\n\r\n".to_vec();
    body.extend_from_slice(part);
    body.extend_from_slice(b"\r\n--b0undary--\r\n");
    body
}

/// A study as stored: its tenant, series and instances.
#[derive(Debug, Clone)]
struct Study {
    tenant: usize,
    uid: String,
    series: BTreeMap<String, Vec<String>>,
}

struct World {
    rt: tokio::runtime::Runtime,
    app: axum::Router,
    store: Arc<SqliteStore>,
    tenants: Vec<String>,
    studies: Vec<Study>,
    /// UIDs of instances written back through a view.
    written: Vec<String>,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: StatusCode,
    text: String,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let vault = Arc::new(
            Vault::open(&dir.path().join("archive"), MasterKey::from_bytes([3; 32])).unwrap(),
        );
        let tenants: Vec<String> = (0..TENANTS)
            .map(|t| {
                vault
                    .create_tenant(&format!("T{t}"))
                    .unwrap()
                    .as_str()
                    .to_string()
            })
            .collect();
        let mut tokens = String::new();
        for p in ["owner0", "owner1", "vendor"] {
            tokens += &format!("{} {p}\n", hex(&Sha256::digest(p.as_bytes())));
        }
        let tokens_file = dir.path().join("tokens");
        std::fs::write(&tokens_file, tokens).unwrap();
        std::fs::set_permissions(&tokens_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = format!(
            "listen = \"127.0.0.1:1\"\nplain = true\ntokens_file = \"{}\"\n\
             [[principal]]\nname = \"owner0\"\ntenant = \"T0\"\n\
             [[principal]]\nname = \"owner1\"\ntenant = \"T1\"\n\
             [[principal]]\nname = \"vendor\"\n",
            tokens_file.display()
        );
        let config = WebConfig::from_toml(toml::from_str(&config).unwrap(), dir.path()).unwrap();
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("access.sqlite"), SealKey::derive(&[4; 32]))
                .unwrap(),
        );
        let web =
            Web::with_grants(config, vault, Some(store.clone() as Arc<dyn GrantStore>)).unwrap();
        let app = router(Arc::new(web));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut w = World {
            rt,
            app,
            store,
            tenants,
            studies: Vec::new(),
            written: Vec::new(),
            _dir: dir,
        };
        for t in 0..TENANTS {
            for s in 0..STUDIES {
                let mut study = Study {
                    tenant: t,
                    uid: uid(1),
                    series: BTreeMap::new(),
                };
                for _ in 0..1 + s % 2 {
                    let se = uid(2);
                    let sops: Vec<String> = (0..1 + s % 3).map(|_| uid(3)).collect();
                    for sop in &sops {
                        let r = w.call(
                            &format!("owner{t}"),
                            Method::POST,
                            "/studies",
                            multipart(&instance(&study.uid, &se, sop)),
                        );
                        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
                    }
                    study.series.insert(se, sops);
                }
                w.studies.push(study);
            }
        }
        w
    }

    fn call(&self, token: &str, method: Method, path: &str, body: Vec<u8>) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("Authorization", format!("Bearer {token}"))
            .header(
                "Content-Type",
                "multipart/related; type=\"application/dicom\"; boundary=b0undary",
            )
            .body(Body::from(body))
            .unwrap();
        req.extensions_mut().insert(Peer {
            addr: "127.0.0.1:9".parse().unwrap(),
            tls: false,
            cert_sha256: None,
            cert_subject: None,
        });
        self.rt.block_on(async {
            let r = self.app.clone().oneshot(req).await.unwrap();
            let status = r.status();
            let mut text = format!("{:?}", r.headers());
            let body = r.into_body().collect().await.unwrap().to_bytes();
            text.push_str(&String::from_utf8_lossy(&body));
            Resp { status, text }
        })
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[derive(Debug, Clone)]
struct GrantSpec {
    tenant: usize,
    scope: ScopeSpec,
    actions: u8,
    expired: bool,
}

/// A grant's scope; indices are into all studies (either tenant, or past
/// the end: a UID never stored).
#[derive(Debug, Clone)]
enum ScopeSpec {
    Tenant,
    Studies(Vec<usize>),
    /// A label of the grant's tenant holding these studies.
    Label(Vec<usize>),
    Query(QuerySpec),
}

/// A query scope: modality (index, and a second one), study date range
/// (first day, span), referring physician (index, as a wildcard prefix),
/// accession number prefix (`A<d>*`).
#[derive(Debug, Clone)]
struct QuerySpec {
    modality: Option<(usize, bool)>,
    dates: Option<(usize, usize)>,
    referring: Option<(usize, bool)>,
    accession: Option<usize>,
}

impl QuerySpec {
    fn modalities(&self) -> Option<Vec<&'static str>> {
        self.modality.map(|(i, two)| {
            let mut m = vec![MODALITIES[i]];
            if two {
                m.push(MODALITIES[(i + 1) % 3]);
            }
            m
        })
    }

    fn date_range(&self) -> Option<(usize, usize)> {
        self.dates.map(|(lo, span)| (lo, (lo + span).min(5)))
    }

    fn keys(&self) -> Vec<(&'static str, String)> {
        let mut k = Vec::new();
        if let Some(m) = self.modalities() {
            k.push(("ModalitiesInStudy", m.join("\\")));
        }
        if let Some((lo, hi)) = self.date_range() {
            k.push(("StudyDate", format!("2020010{lo}-2020010{hi}")));
        }
        if let Some((i, wild)) = self.referring {
            let name = REFERRING[i];
            k.push((
                "ReferringPhysicianName",
                if wild {
                    format!("{}*", &name[..3])
                } else {
                    name.to_string()
                },
            ));
        }
        if let Some(d) = self.accession {
            k.push(("AccessionNumber", format!("A{d}*")));
        }
        k
    }

    /// What the index must answer, by the model.
    fn matches(&self, study: &str) -> bool {
        let (modality, date, referring, accession) = attrs(study);
        self.modalities().is_none_or(|m| m.contains(&modality))
            && self.date_range().is_none_or(|(lo, hi)| {
                let day: usize = date[7..].parse().unwrap();
                (lo..=hi).contains(&day)
            })
            && self.referring.is_none_or(|(i, wild)| {
                if wild {
                    referring.starts_with(&REFERRING[i][..3])
                } else {
                    referring == REFERRING[i]
                }
            })
            && self
                .accession
                .is_none_or(|d| accession.starts_with(&format!("A{d}")))
    }
}

#[derive(Debug, Clone)]
struct ReqSpec {
    kind: u8,
    /// Index into all studies, or past the end: a UID never stored.
    study: usize,
    series: usize,
    instance: usize,
    param: u8,
}

fn scope_spec() -> impl Strategy<Value = ScopeSpec> {
    let list = || prop::collection::vec(0..TENANTS * STUDIES + 1, 1..4);
    let query = (
        prop::option::of((0usize..3, any::<bool>())),
        prop::option::of((1usize..6, 0usize..5)),
        prop::option::of((0usize..3, any::<bool>())),
        prop::option::of(0usize..4),
    )
        .prop_map(|(modality, dates, referring, accession)| {
            let mut q = QuerySpec {
                modality,
                dates,
                referring,
                accession,
            };
            if q.keys().is_empty() {
                q.modality = Some((0, false));
            }
            ScopeSpec::Query(q)
        });
    prop_oneof![
        3 => Just(ScopeSpec::Tenant),
        5 => list().prop_map(ScopeSpec::Studies),
        3 => list().prop_map(ScopeSpec::Label),
        4 => query,
    ]
}

fn grant_spec(main: usize) -> impl Strategy<Value = GrantSpec> {
    (
        prop_oneof![8 => Just(main), 1 => 0..TENANTS],
        scope_spec(),
        1u8..8,
        prop::bool::weighted(0.15),
    )
        .prop_map(|(tenant, scope, actions, expired)| GrantSpec {
            tenant,
            scope,
            actions,
            expired,
        })
}

fn req_spec() -> impl Strategy<Value = ReqSpec> {
    (
        0u8..16,
        0..TENANTS * STUDIES + 1,
        0usize..3,
        0usize..3,
        0u8..4,
    )
        .prop_map(|(kind, study, series, instance, param)| ReqSpec {
            kind,
            study,
            series,
            instance,
            param,
        })
}

/// What one live grant reaches, by the model.
enum Reach {
    Whole,
    Uids(BTreeSet<String>),
    Query(QuerySpec),
}

/// What the grants allow, by the model: the tenant, and per action what
/// each grant giving it reaches.
struct Model {
    tenant: Option<usize>,
    reach: BTreeMap<Action, Vec<Reach>>,
    /// The studies stored in the tenant (a query matches only those).
    stored: std::cell::RefCell<BTreeSet<String>>,
}

impl Model {
    fn new(w: &World, grants: &[GrantSpec], unknown: &str) -> Model {
        let live: Vec<&GrantSpec> = grants.iter().filter(|g| !g.expired).collect();
        let tenants: BTreeSet<usize> = live.iter().map(|g| g.tenant).collect();
        let tenant = (tenants.len() == 1).then(|| *tenants.first().unwrap());
        let mut m = Model {
            tenant,
            reach: BTreeMap::new(),
            stored: w
                .studies
                .iter()
                .filter(|s| Some(s.tenant) == tenant)
                .map(|s| s.uid.clone())
                .collect::<BTreeSet<_>>()
                .into(),
        };
        if m.tenant.is_none() {
            return m;
        }
        let uids = |list: &[usize]| -> BTreeSet<String> {
            list.iter()
                .map(|i| {
                    w.studies
                        .get(*i)
                        .map_or(unknown.to_string(), |s| s.uid.clone())
                })
                .collect()
        };
        for g in &live {
            for (bit, a) in [(1, Action::Search), (2, Action::Read), (4, Action::Write)] {
                if g.actions & bit == 0 {
                    continue;
                }
                m.reach.entry(a).or_default().push(match &g.scope {
                    ScopeSpec::Tenant => Reach::Whole,
                    ScopeSpec::Studies(l) | ScopeSpec::Label(l) => Reach::Uids(uids(l)),
                    ScopeSpec::Query(q) => Reach::Query(q.clone()),
                });
            }
        }
        m
    }

    /// Whether a grant for `a` covers the UID (whatever tenant stores it).
    fn covers(&self, a: Action, uid: &str) -> bool {
        self.reach.get(&a).is_some_and(|r| {
            r.iter().any(|r| match r {
                Reach::Whole => true,
                Reach::Uids(s) => s.contains(uid),
                Reach::Query(q) => self.stored.borrow().contains(uid) && q.matches(uid),
            })
        })
    }

    /// Whether some grant gives `a` on the whole tenant.
    fn whole(&self, a: Action) -> bool {
        self.reach
            .get(&a)
            .is_some_and(|r| r.iter().any(|r| matches!(r, Reach::Whole)))
    }

    /// Whether no grant gives `a` at all.
    fn none(&self, a: Action) -> bool {
        self.reach.get(&a).is_none_or(Vec::is_empty)
    }

    /// Whether a stored study may be reached with `a`.
    fn visible(&self, a: Action, s: &Study) -> bool {
        Some(s.tenant) == self.tenant && self.covers(a, &s.uid)
    }
}

fn actions(bits: u8) -> Actions {
    let mut a = Actions::default();
    for (bit, act) in [(1, Action::Search), (2, Action::Read), (4, Action::Write)] {
        if bits & bit != 0 {
            a = a.with(act);
        }
    }
    a
}

#[test]
fn nothing_outside_a_grant_is_named_counted_or_returned() {
    let mut w = World::new();
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..TENANTS).prop_flat_map(|main| {
        (
            prop::collection::vec(grant_spec(main), 0..4),
            prop::collection::vec(req_spec(), 1..10),
        )
    });
    let requests = std::cell::Cell::new(0usize);
    let world = std::cell::RefCell::new(&mut w);
    runner
        .run(&strategy, |(grants, reqs)| {
            let mut w = world.borrow_mut();
            requests.set(requests.get() + reqs.len());
            check_case(&mut w, &grants, &reqs);
            Ok(())
        })
        .unwrap();
    eprintln!(
        "{CASES} cases, {} requests, {} studies at the end",
        requests.get(),
        w.studies.len()
    );
}

fn check_case(w: &mut World, grants: &[GrantSpec], reqs: &[ReqSpec]) {
    let now = obscura_access::time::now();
    for g in w.store.live("vendor", now).unwrap() {
        w.store.revoke(&g.id, now).unwrap();
    }
    // a UID listed in grants but never stored anywhere
    let granted_unknown = uid(1);
    for (i, g) in grants.iter().enumerate() {
        let scope = grant_scope(w, g, i, &granted_unknown);
        let grant = NewGrant {
            principal: "vendor".into(),
            tenant: w.tenants[g.tenant].clone(),
            scope,
            actions: actions(g.actions),
            view: View::Original,
            expires: Some(if g.expired { now - 1 } else { now + 3600 }),
            quota: None,
        };
        w.store.add(grant, now - 10).unwrap();
    }
    let m = Model::new(w, grants, &granted_unknown);
    for r in reqs {
        check_request(w, &m, r, &granted_unknown);
    }
}

fn check_request(w: &mut World, m: &Model, r: &ReqSpec, granted_unknown: &str) {
    let never = uid(1);
    let (study_uid, study) = match w.studies.get(r.study) {
        Some(s) => (s.uid.clone(), Some(s.clone())),
        None => (never.clone(), None),
    };
    let (series_uid, sop_uid) = study
        .as_ref()
        .and_then(|s| s.series.iter().nth(r.series % s.series.len()))
        .map(|(se, sops)| (se.clone(), sops[r.instance % sops.len()].clone()))
        .unwrap_or_else(|| (uid(2), uid(3)));
    let path_for = |st: &str| route(r, st, &series_uid, &sop_uid);
    let (method, path) = path_for(&study_uid);
    let posting = method == Method::POST;
    let action = if posting {
        Action::Write
    } else if r.kind <= 2 || matches!(r.kind, 5 | 6 | 8) {
        Action::Search
    } else {
        Action::Read
    };
    if posting && study.as_ref().is_some_and(|s| Some(s.tenant) != m.tenant) {
        // a study UID of another tenant stored again in the vendor's would be
        // two studies of one UID: the substring oracle could not tell them apart
        return;
    }
    // STOW: a new instance into the chosen study, or a new one
    let new_sop = uid(3);
    let new_series = uid(2);
    let body = if posting {
        multipart(&instance(&study_uid, &new_series, &new_sop))
    } else {
        Vec::new()
    };
    let resp = w.call("vendor", method.clone(), &path, body);
    // 1. nothing outside the grant for this action is named
    for s in &w.studies {
        if m.visible(action, s) {
            continue;
        }
        let mut uids = vec![&s.uid];
        for (se, sops) in &s.series {
            uids.push(se);
            uids.extend(sops);
        }
        for u in uids {
            assert!(
                !resp.text.contains(u.as_str()),
                "{method} {path} names {u} outside the grant: {}",
                resp.text
            );
        }
    }
    // 2. no access at all: refused without a word
    if m.tenant.is_none() {
        assert_eq!(resp.status, StatusCode::FORBIDDEN, "{method} {path}");
        return;
    }
    if m.none(action) {
        let expect = if unrouted(r) {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(resp.status, expect, "{method} {path}: {}", resp.text);
        return;
    }
    let visible = study.as_ref().is_some_and(|s| m.visible(action, s));
    // 3. a study outside the grant is answered like one that never existed
    // (with the same standing: not granted, or granted and absent)
    let names_study = (3..=14).contains(&r.kind) && !posting;
    if names_study && !visible {
        let twin = if !m.covers(action, &study_uid) || m.whole(action) {
            Some(never.clone())
        } else {
            m.covers(action, granted_unknown)
                .then(|| granted_unknown.to_string())
        };
        if let Some(twin) = twin {
            let (_, other) = path_for(&twin);
            let t = w.call("vendor", method.clone(), &other, Vec::new());
            assert_eq!(
                (resp.status, resp.text.replace(&study_uid, "X")),
                (t.status, t.text.replace(&twin, "X")),
                "{path} vs {other}"
            );
        }
    }
    // 4. searches return exactly the granted studies that exist
    if r.kind == 0 && matches!(r.param, 0 | 3) {
        let want: BTreeSet<&str> = w
            .studies
            .iter()
            .filter(|s| m.visible(action, s))
            .map(|s| s.uid.as_str())
            .collect();
        let got: BTreeSet<&str> = want
            .iter()
            .copied()
            .filter(|u| resp.text.contains(u))
            .collect();
        assert_eq!(resp.status, StatusCode::OK);
        assert_eq!(got, want, "{path}: {}", resp.text);
        assert_eq!(
            resp.text.matches("\"0020000D\"").count(),
            want.len(),
            "{path}: {}",
            resp.text
        );
    }
    if visible && matches!(r.kind, 4..=6) {
        assert_eq!(resp.status, StatusCode::OK, "{path}: {}", resp.text);
    }
    // 5. a store lands only in a study it may write
    if posting {
        let stored = resp.text.contains(&format!("instances/{new_sop}"));
        assert_eq!(
            stored,
            m.covers(Action::Write, &study_uid),
            "{path}: {}",
            resp.text
        );
        if stored {
            let t = m.tenant.unwrap();
            match w.studies.iter_mut().find(|s| s.uid == study_uid) {
                Some(s) => {
                    s.series.insert(new_series, vec![new_sop]);
                }
                None => {
                    m.stored.borrow_mut().insert(study_uid.clone());
                    w.studies.push(Study {
                        tenant: t,
                        uid: study_uid.clone(),
                        series: [(new_series, vec![new_sop])].into(),
                    })
                }
            }
        }
    }
}

/// The request a spec makes, on study `st` (and the series and instance given).
fn route(r: &ReqSpec, st: &str, series_uid: &str, sop_uid: &str) -> (Method, String) {
    let inst = format!("/studies/{st}/series/{series_uid}/instances/{sop_uid}");
    let get = |p: String| (Method::GET, p);
    match r.kind {
        0 => get(match r.param {
            0 => "/studies".into(),
            1 => format!("/studies?StudyInstanceUID={st}"),
            2 => format!("/studies?limit=1&offset={}", r.series),
            _ => "/studies?includefield=all".into(),
        }),
        1 => get(if r.param < 2 {
            "/series?includefield=all".into()
        } else {
            format!("/series?StudyInstanceUID={st}")
        }),
        2 => get(if r.param < 2 {
            "/instances".into()
        } else {
            format!("/instances?SeriesInstanceUID={series_uid}")
        }),
        3 => get(format!("/studies/{st}")),
        4 => get(format!("/studies/{st}/metadata")),
        5 => get(format!("/studies/{st}/series")),
        6 => get(format!("/studies/{st}/instances?includefield=all")),
        7 => get(format!("/studies/{st}/series/{series_uid}/metadata")),
        8 => get(format!("/studies/{st}/series/{series_uid}/instances")),
        9 => get(inst),
        10 => get(format!("{inst}/frames/1")),
        11 => get(format!("/studies/{st}/rendered")),
        12 => (Method::POST, "/studies".into()),
        13 => (Method::POST, format!("/studies/{st}")),
        14 => get(format!("{inst}/metadata")),
        _ => get(format!("/nowhere/{st}")),
    }
}

/// The scope a grant spec names (a label is made in the store).
fn grant_scope(w: &World, g: &GrantSpec, i: usize, granted_unknown: &str) -> Scope {
    let uids = |list: &[usize]| -> Vec<String> {
        list.iter()
            .map(|i| {
                w.studies
                    .get(*i)
                    .map_or(granted_unknown.to_string(), |s| s.uid.clone())
            })
            .collect()
    };
    match &g.scope {
        ScopeSpec::Tenant => Scope::Tenant,
        ScopeSpec::Studies(list) => Scope::studies(uids(list)).unwrap(),
        ScopeSpec::Label(list) => {
            let name = format!("label-{i}");
            let set = uids(list).into_iter().collect();
            w.store
                .set_label(&w.tenants[g.tenant], &name, &set)
                .unwrap();
            Scope::label(&name).unwrap()
        }
        ScopeSpec::Query(q) => Scope::Query(StudyQuery::new(q.keys()).unwrap()),
    }
}

fn unrouted(r: &ReqSpec) -> bool {
    r.kind == 15
}

/// The cases of the view property test.
const VIEW_CASES: u32 = 96;

/// De-identified views: random de-identified grants (listed studies of
/// either tenant, whole tenants, actions, expired ones, two tenants) and
/// random requests on every route kind, naming original UIDs, never
/// stored ones, or pseudonyms the vendor was shown by an earlier answer
/// (study, series and instance triples from QIDO). No response (status,
/// headers, body) names an original UID of any stored study, series or
/// instance, or the planted patient (`DOE^JANE`, `PID-1`); a request
/// naming an original study is answered exactly like one naming a study
/// that never existed; pseudonyms are mapped back (reads and stores
/// through them succeed).
#[test]
fn views_show_no_original_uid_or_identity() {
    let mut w = World::new();
    let mut runner = TestRunner::new(Config {
        cases: VIEW_CASES,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (0..TENANTS).prop_flat_map(|main| {
        (
            prop::collection::vec(grant_spec(main), 1..4),
            prop::collection::vec(req_spec(), 1..10),
        )
    });
    let stats = std::cell::Cell::new((0usize, 0usize));
    let world = std::cell::RefCell::new(&mut w);
    runner
        .run(&strategy, |(grants, reqs)| {
            let mut w = world.borrow_mut();
            let (n, ok) = check_view_case(&mut w, &grants, &reqs);
            let (a, b) = stats.get();
            stats.set((a + n, b + ok));
            Ok(())
        })
        .unwrap();
    let (requests, through) = stats.get();
    eprintln!("{VIEW_CASES} cases, {requests} requests, {through} served through pseudonyms");
    // the cases are drawn afresh on every run: 21-65 of 96 served through
    // pseudonyms over 21 runs, so a floor of a quarter failed now and then;
    // an eighth still shows the pseudonym routes were taken
    assert!(
        through > VIEW_CASES as usize / 8,
        "pseudonyms are mapped back"
    );
}

/// One case: (requests made, requests through pseudonyms answered 200).
fn check_view_case(w: &mut World, grants: &[GrantSpec], reqs: &[ReqSpec]) -> (usize, usize) {
    let now = obscura_access::time::now();
    for g in w.store.live("vendor", now).unwrap() {
        w.store.revoke(&g.id, now).unwrap();
    }
    for (i, g) in grants.iter().enumerate() {
        let scope = grant_scope(w, g, i, &uid(1));
        let grant = NewGrant {
            principal: "vendor".into(),
            tenant: w.tenants[g.tenant].clone(),
            scope,
            actions: actions(g.actions),
            view: View::Deidentified {
                profile: "basic".into(),
            },
            expires: Some(if g.expired { now - 1 } else { now + 3600 }),
            quota: None,
        };
        w.store.add(grant, now - 10).unwrap();
    }
    // what the vendor was shown: pseudonymous (study, series, instance) triples
    let shown = w.call(
        "vendor",
        Method::GET,
        "/instances?includefield=all",
        Vec::new(),
    );
    let mut made = 1;
    check_shows_nothing_original(w, "/instances", &shown);
    let pool = triples(&shown.text);
    let mut through = 0;
    for r in reqs {
        let never = uid(1);
        let pseudo = r.param % 2 == 0 && !pool.is_empty();
        let (st, se, sop) = if pseudo {
            pool[r.study % pool.len()].clone()
        } else {
            match w.studies.get(r.study) {
                Some(s) => {
                    let (se, sops) = s.series.iter().nth(r.series % s.series.len()).unwrap();
                    (
                        s.uid.clone(),
                        se.clone(),
                        sops[r.instance % sops.len()].clone(),
                    )
                }
                None => (never.clone(), uid(2), uid(3)),
            }
        };
        let (method, path) = route(r, &st, &se, &sop);
        let posting = method == Method::POST;
        let (new_series, new_sop) = (uid(2), uid(3));
        let body = if posting {
            multipart(&instance(&st, &new_series, &new_sop))
        } else {
            Vec::new()
        };
        let resp = w.call("vendor", method.clone(), &path, body);
        made += 1;
        check_shows_nothing_original(w, &path, &resp);
        if posting && resp.status == StatusCode::OK {
            // written back: the tenant's UIDs from now on, never to be shown again
            w.written.extend([new_series, new_sop]);
        }
        let names_study = (3..=14).contains(&r.kind) && !posting;
        if names_study && !pseudo {
            // an original UID under a view: as if it never existed
            let (_, other) = route(r, &uid(1), &se, &sop);
            let t = w.call("vendor", method.clone(), &other, Vec::new());
            made += 1;
            assert_eq!(
                (resp.status, &resp.text),
                (t.status, &t.text),
                "{path} vs {other}"
            );
        }
        if pseudo && resp.status == StatusCode::OK && (posting || names_study) {
            through += 1;
        }
    }
    (made, through)
}

/// Every (study, series, instance) triple of a QIDO instance answer.
fn triples(text: &str) -> Vec<(String, String, String)> {
    let Some(start) = text.find('[') else {
        return Vec::new();
    };
    let Ok(serde_json::Value::Array(items)) = serde_json::from_str(&text[start..]) else {
        return Vec::new();
    };
    let get = |i: &serde_json::Value, t: &str| i[t]["Value"][0].as_str().map(str::to_string);
    items
        .iter()
        .filter_map(|i| {
            Some((
                get(i, "0020000D")?,
                get(i, "0020000E")?,
                get(i, "00080018")?,
            ))
        })
        .collect()
}

/// No original UID of any stored study, and not the planted patient.
fn check_shows_nothing_original(w: &World, path: &str, resp: &Resp) {
    for needle in ["DOE^JANE", "PID-1"] {
        assert!(
            !resp.text.contains(needle),
            "{path} shows {needle}: {}",
            resp.text
        );
    }
    for s in &w.studies {
        let mut uids = vec![&s.uid];
        for (se, sops) in &s.series {
            uids.push(se);
            uids.extend(sops);
        }
        for u in uids.into_iter().chain(&w.written) {
            assert!(
                !resp.text.contains(u.as_str()),
                "{path} names the original {u}: {}",
                resp.text
            );
        }
    }
}
