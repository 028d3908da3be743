//! DICOMweb requests in the audit log (`obscura-audit`): one `web-request`
//! record per authenticated request (principal, tenant, route kind — the
//! route's pattern, never the path with its UIDs —, outcome, HTTP status)
//! with, per the IHE BALP rule, one subject per patient whose data the
//! response returned (keyed hash of the Patient ID from the index), and one
//! per study (keyed hash of its Study Instance UID: the breach-impact
//! report names the exact studies a principal saw); one
//! `auth-failure` record per refused request. Nothing in clear from a
//! request or the data. A request the gate closes (outside the
//! principal's grants) is a `web-request` with outcome denied and the
//! gate's reason code. Each `web-request` names the grants the principal
//! acted under (`detail.grants`).

use crate::auth::{Peer, Principal, Refused};
use axum::extract::{MatchedPath, Request};
use axum::http::StatusCode;
use obscura_audit::{Actor, AuditEvent, Auditor, EventKind, Outcome, SubjectKind};
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What a response returned: the Patient IDs and Study Instance UIDs (held
/// in memory only, hashed when recorded) and the number of results.
#[derive(Debug, Clone, Default)]
pub struct Returned(Arc<Mutex<Seen>>);

/// The patients, studies and results a response returned.
#[derive(Debug, Default)]
struct Seen {
    patients: BTreeSet<String>,
    studies: BTreeSet<String>,
    results: u64,
}

impl Returned {
    /// A result (instance, series, study) of patient `patient_id` in study
    /// `study_uid` (either empty if the index has none).
    pub fn add(&self, patient_id: &str, study_uid: &str) {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let seen = &mut *g;
        seen.results += 1;
        for (value, set) in [
            (patient_id, &mut seen.patients),
            (study_uid, &mut seen.studies),
        ] {
            let v = value.trim_end_matches(['\0', ' ']);
            if !v.is_empty() {
                set.insert(v.to_string());
            }
        }
    }

    fn take(&self) -> Seen {
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut *g)
    }
}

/// `web:<METHOD> <route pattern>` (`web:GET /studies/{study}/series`), or
/// `web:<METHOD> unrouted`: never the request's path.
pub fn route_kind(req: &Request) -> String {
    let pattern = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_else(|| "unrouted".into());
    format!("web:{} {pattern}", req.method())
}

fn actor(peer: &Peer, principal: &str) -> Actor {
    Actor {
        principal: principal.to_string(),
        address: Some(peer.addr.ip().to_string()),
        ae_title: None,
    }
}

/// The grants a principal acted under, in `detail.grants`: their ids
/// (comma-separated), or `owner` for a principal bound to its tenant in
/// the config.
fn name_grants(e: &mut AuditEvent, principal: &Principal) {
    let grants = if principal.access.is_owner() {
        "owner".to_string()
    } else {
        let ids: Vec<&str> = principal
            .access
            .grants()
            .iter()
            .map(|g| g.id.as_str())
            .collect();
        ids.join(",")
    };
    e.detail.insert("grants".into(), grants);
}

fn log_failure(e: obscura_audit::Error) {
    log::warn!("audit log: cannot record a web request: {e}");
}

/// How records name a principal: `name@tenant id`.
fn who(principal: &Principal) -> String {
    format!("{}@{}", principal.name, principal.tenant.as_str())
}

/// The `web-request` record of an authenticated request.
pub fn request(a: &Auditor, peer: &Peer, principal: &Principal, route: &str, status: StatusCode) {
    let outcome = match status.as_u16() {
        s if s < 400 => Outcome::Success,
        401 | 403 => Outcome::Denied,
        _ => Outcome::Failure,
    };
    let who = who(principal);
    let mut e = AuditEvent::new(
        SystemTime::now(),
        EventKind::WebRequest,
        actor(peer, &who),
        outcome,
    );
    e.route = Some(route.to_string());
    e.reason = Some(format!("http-{}", status.as_u16()));
    name_grants(&mut e, principal);
    if principal.access.only_deidentified() {
        e.view = Some(obscura_audit::VIEW_DEIDENTIFIED.to_string());
    }
    let seen = principal.returned.take();
    if seen.results > 0 {
        e.count = Some(seen.results);
    }
    e.subjects = (seen.patients.iter().map(|p| (SubjectKind::Patient, p)))
        .chain(seen.studies.iter().map(|s| (SubjectKind::Study, s)))
        .map(|(kind, v)| a.subject(kind, v))
        .collect();
    if let Err(err) = a.record(e) {
        log_failure(err);
    }
}

/// An instance a STOW stored for `principal` (its index attributes: the
/// tenant's own patient and study): the request's record names its
/// patient and study (BALP: one subject per patient), and, with the audit
/// log on, an `instance-stored` record names the instance too.
pub fn stored(a: Option<&Arc<Auditor>>, principal: &Principal, attrs: &obscura_vault::Attributes) {
    use obscura_vault::Attr;
    let get = |attr| attrs.get(attr).unwrap_or_default();
    let (patient, study) = (get(Attr::PatientID), get(Attr::StudyInstanceUID));
    principal.returned.add(patient, study);
    let Some(a) = a else { return };
    let actor = Actor {
        principal: who(principal),
        ..Actor::default()
    };
    let mut e = AuditEvent::new(
        SystemTime::now(),
        EventKind::InstanceStored,
        actor,
        Outcome::Success,
    );
    e.route = Some("web:stow".into());
    e.subjects = [
        (SubjectKind::Patient, patient),
        (SubjectKind::Study, study),
        (SubjectKind::Instance, get(Attr::SOPInstanceUID)),
    ]
    .into_iter()
    .filter_map(|(kind, v)| {
        let v = v.trim_end_matches(['\0', ' ']);
        (!v.is_empty()).then(|| a.subject(kind, v))
    })
    .collect();
    if let Err(err) = a.record(e) {
        log_failure(err);
    }
}

/// The `web-request` record of a request the gate closed (a study or an
/// action outside the principal's grants): outcome denied, the reason code.
pub fn not_granted(
    a: &Auditor,
    peer: &Peer,
    principal: &Principal,
    route: &str,
    closed: crate::gate::Closed,
) {
    let who = who(principal);
    let mut e = AuditEvent::new(
        SystemTime::now(),
        EventKind::WebRequest,
        actor(peer, &who),
        Outcome::Denied,
    );
    e.route = Some(route.to_string());
    e.reason = Some(closed.code().to_string());
    name_grants(&mut e, principal);
    if let Err(err) = a.record(e) {
        log_failure(err);
    }
}

/// The `auth-failure` record of a refused request.
/// The actor is the principal its credentials proved, when they did (a
/// token without a live grant, or revoked).
pub fn auth_failure(a: &Auditor, peer: &Peer, route: &str, refused: &Refused) {
    let principal = match (&refused.principal, peer.cert_sha256) {
        (Some(p), _) => p.to_string(),
        (None, Some(h)) => format!("cert-sha256:{}", crate::hex(&h[..8])),
        (None, None) => "anonymous".to_string(),
    };
    let mut e = AuditEvent::new(
        SystemTime::now(),
        EventKind::AuthFailure,
        actor(peer, &principal),
        Outcome::Denied,
    );
    e.route = Some(route.to_string());
    e.reason = Some(refused.denied.code().to_string());
    if let Err(err) = a.record(e) {
        log_failure(err);
    }
}
