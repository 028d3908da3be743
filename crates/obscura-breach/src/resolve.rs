//! From keyed hashes back to patients, studies and providers: every study
//! record of the tenants (the data owner's archive), hashed with the site
//! audit key and joined. What does not resolve is listed as such.

use crate::law::{self, StateCount};
use crate::touch::{Exposure, Touched};
use crate::{NotifyRow, Provider, Subject};
use obscura_audit::{AuditKey, SubjectRef};
use obscura_vault::{Attr, Attributes, TenantId, Vault};
use std::collections::BTreeMap;

/// The study records of the tenants to resolve against: (tenant, records).
#[derive(Debug, Default)]
pub struct OwnerRecords(pub Vec<(String, Vec<Attributes>)>);

/// The study records of `tenants` (all tenants if empty), owner-only
/// attributes included.
pub fn owner_records(vault: &Vault, tenants: &[TenantId]) -> Result<OwnerRecords, crate::Error> {
    let ids: Vec<TenantId> = if tenants.is_empty() {
        vault.list_tenants()?.into_iter().map(|t| t.id).collect()
    } else {
        tenants.to_vec()
    };
    let mut out = Vec::new();
    for id in ids {
        let records = vault.owner_studies(&id)?;
        out.push((id.as_str().to_string(), records));
    }
    Ok(OwnerRecords(out))
}

/// The resolved sets, the states and the notification list.
pub(crate) struct Resolved {
    pub patients: Vec<Subject>,
    pub studies: Vec<Subject>,
    pub providers: Vec<Provider>,
    pub states: Vec<StateCount>,
    pub rows: Vec<NotifyRow>,
}

struct Found<'a> {
    tenant: &'a str,
    attrs: &'a Attributes,
}

fn get(a: &Attributes, attr: Attr) -> &str {
    a.get(attr).unwrap_or_default()
}

pub(crate) fn resolve(t: &Touched, key: &AuditKey, owner: &OwnerRecords) -> Resolved {
    // keyed hash -> the records that carry it
    let mut by_patient: BTreeMap<String, Vec<Found>> = BTreeMap::new();
    let mut by_study: BTreeMap<String, Found> = BTreeMap::new();
    for (tenant, records) in &owner.0 {
        for attrs in records {
            let f = || Found { tenant, attrs };
            if let Some(id) = attrs.get(Attr::PatientID) {
                let h = SubjectRef::patient(key, id).hash;
                if t.patients.contains_key(&h) {
                    by_patient.entry(h).or_default().push(f());
                }
            }
            if let Some(uid) = attrs.get(Attr::StudyInstanceUID) {
                let h = SubjectRef::study(key, uid).hash;
                if t.studies.contains_key(&h) {
                    by_study.insert(h, f());
                }
            }
        }
    }
    let state_of = |a: &Attributes| a.get(Attr::ResidenceState).unwrap_or("unknown").to_string();

    let mut rows = Vec::new();
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut patients = Vec::new();
    for (h, touch) in &t.patients {
        let found = by_patient.get(h);
        // the patient's latest record speaks for it (its studies below)
        let first = found.and_then(|v| v.last());
        let state = first.map_or("unknown".to_string(), |f| state_of(f.attrs));
        if touch.exposure.identifiable() {
            *counts.entry(state.clone()).or_insert(0) += 1;
        }
        patients.push(Subject {
            hash: h.clone(),
            exposure: touch.exposure,
            resolved: first.is_some(),
            tenant: first.map(|f| f.tenant.to_string()),
            state: first.map(|_| state.clone()),
            events: touch.events.clone(),
        });
        let row = |f: Option<&Found>, study: Option<&Found>| NotifyRow {
            patient_ref: h.clone(),
            patient_id: f.map_or("", |f| get(f.attrs, Attr::PatientID)).to_string(),
            patient_name: f
                .map_or("", |f| get(f.attrs, Attr::PatientName))
                .to_string(),
            birth_date: f
                .map_or("", |f| get(f.attrs, Attr::PatientBirthDate))
                .to_string(),
            state: state.clone(),
            exposure: touch.exposure,
            study_uid: study
                .map_or("", |s| get(s.attrs, Attr::StudyInstanceUID))
                .to_string(),
            study_exposure: study.and_then(|s| {
                let uid = get(s.attrs, Attr::StudyInstanceUID);
                t.studies
                    .get(&SubjectRef::study(key, uid).hash)
                    .map(|x| x.exposure)
            }),
            referring_physician: study
                .map_or("", |s| get(s.attrs, Attr::ReferringPhysicianName))
                .to_string(),
            tenant: f.map_or("", |f| f.tenant).to_string(),
        };
        match found {
            None => rows.push(row(None, None)),
            Some(list) => {
                let seen: Vec<&Found> = list
                    .iter()
                    .filter(|s| {
                        let uid = get(s.attrs, Attr::StudyInstanceUID);
                        t.studies.contains_key(&SubjectRef::study(key, uid).hash)
                    })
                    .collect();
                if seen.is_empty() {
                    rows.push(row(first, None));
                }
                for s in seen {
                    rows.push(row(first, Some(s)));
                }
            }
        }
    }

    let mut providers: BTreeMap<String, (Exposure, u64)> = BTreeMap::new();
    let mut studies = Vec::new();
    for (h, touch) in &t.studies {
        let found = by_study.get(h);
        if let Some(name) = found.and_then(|f| f.attrs.get(Attr::ReferringPhysicianName)) {
            let p = providers
                .entry(SubjectRef::provider(key, name).hash)
                .or_insert((touch.exposure, 0));
            p.0 = p.0.max(touch.exposure);
            p.1 += 1;
        }
        studies.push(Subject {
            hash: h.clone(),
            exposure: touch.exposure,
            resolved: found.is_some(),
            tenant: found.map(|f| f.tenant.to_string()),
            state: None,
            events: touch.events.clone(),
        });
    }
    Resolved {
        patients,
        studies,
        providers: providers
            .into_iter()
            .map(|(hash, (exposure, studies))| Provider {
                hash,
                exposure,
                studies,
            })
            .collect(),
        states: law::states(counts),
        rows,
    }
}
