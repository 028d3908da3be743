//! QIDO-RS (PS3.18 10.6): searches for studies, series and instances of
//! the principal's tenant, answered as application/dicom+json.
//!
//! Matching keys are given by keyword or tag (`PatientName=`, `00100010=`)
//! on the attributes the index keeps (docs/archive.md): single values,
//! UID lists, `*`/`?` wildcards, date and time ranges, as the vault
//! matches them. Keys the index does not keep are ignored with a `Warning`
//! header (PS3.18 8.3.4.4 allows that). `includefield` (repeated or
//! comma-separated, or `all`) adds kept attributes of any level;
//! `limit`/`offset` page (at most [`MAX_LIMIT`] results per request; a
//! `Warning` says when more exist). `fuzzymatching=true` turns a person
//! name key without wildcards into a case-insensitive substring match
//! (`smith` finds `SMITH^JOHN` and `GOLDSMITH^A`); names always match
//! case-insensitively.
//!
//! A principal with grants on listed studies searches those only: the
//! query is narrowed to them before the index is asked (so limits, offsets
//! and counts never see another study), and every result is checked again.

use crate::caller::Caller;
use crate::json::{attr_element, tag_key};
use crate::media::accepts_json;
use crate::view::Lens;
use crate::{check_uid, ApiError, Web};
use axum::extract::{Path, Query as UrlQuery};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use dicom_core::Tag;
use obscura_access::{Action, Studies};
use obscura_vault::{Attr, Attributes, Level, Query};
use serde_json::{json, Map, Value as Json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// Most results one request returns.
pub const MAX_LIMIT: usize = 1000;

type Params = UrlQuery<Vec<(String, String)>>;

/// `GET /studies`.
pub async fn studies(caller: Caller, q: Params) -> Result<Response, ApiError> {
    search(caller, q, Level::Study, vec![]).await
}

/// `GET /series`.
pub async fn all_series(caller: Caller, q: Params) -> Result<Response, ApiError> {
    search(caller, q, Level::Series, vec![]).await
}

/// `GET /instances`.
pub async fn all_instances(caller: Caller, q: Params) -> Result<Response, ApiError> {
    search(caller, q, Level::Instance, vec![]).await
}

/// `GET /studies/{study}/series`.
pub async fn study_series(
    caller: Caller,
    Path(study): Path<String>,
    q: Params,
) -> Result<Response, ApiError> {
    let fixed = vec![(Attr::StudyInstanceUID, check_uid(&study)?.to_string())];
    search(caller, q, Level::Series, fixed).await
}

/// `GET /studies/{study}/instances`.
pub async fn study_instances(
    caller: Caller,
    Path(study): Path<String>,
    q: Params,
) -> Result<Response, ApiError> {
    let fixed = vec![(Attr::StudyInstanceUID, check_uid(&study)?.to_string())];
    search(caller, q, Level::Instance, fixed).await
}

/// `GET /studies/{study}/series/{series}/instances`.
pub async fn series_instances(
    caller: Caller,
    Path((study, series)): Path<(String, String)>,
    q: Params,
) -> Result<Response, ApiError> {
    let fixed = vec![
        (Attr::StudyInstanceUID, check_uid(&study)?.to_string()),
        (Attr::SeriesInstanceUID, check_uid(&series)?.to_string()),
    ];
    search(caller, q, Level::Instance, fixed).await
}

/// A parsed QIDO request.
#[derive(Debug)]
pub struct Request {
    /// The vault query (keys, limit, offset).
    pub query: Query,
    /// `includefield=all`.
    pub all: bool,
    /// Attributes to return beyond the level's defaults.
    pub include: BTreeSet<Attr>,
    /// Query parameters that were ignored (names only).
    pub ignored: Vec<String>,
}

/// The kept attribute a keyword or `GGGGEEEE` tag names.
pub fn attr_named(name: &str) -> Option<Attr> {
    if let Some(a) = Attr::ALL.iter().find(|a| a.keyword() == name) {
        return Some(*a);
    }
    let tag = crate::json::parse_tag(name)?;
    if tag == Tag(0x0008, 0x3002) {
        return Some(Attr::TransferSyntaxUID);
    }
    Attr::ALL
        .iter()
        .find(|a| {
            let (g, e) = a.tag();
            Tag(g, e) == tag && **a != Attr::TransferSyntaxUID
        })
        .copied()
}

/// Parse QIDO query parameters at `level`, with `fixed` keys from the path.
pub fn parse(
    level: Level,
    params: &[(String, String)],
    fixed: Vec<(Attr, String)>,
) -> Result<Request, ApiError> {
    let mut query = Query::new(level);
    query.keys = fixed;
    let mut req = Request {
        query,
        all: false,
        include: BTreeSet::new(),
        ignored: Vec::new(),
    };
    let mut fuzzy = false;
    let mut keys = Vec::new();
    for (name, value) in params {
        match name.as_str() {
            "includefield" => {
                for f in value.split(',').map(str::trim).filter(|f| !f.is_empty()) {
                    if f == "all" {
                        req.all = true;
                    } else if let Some(a) = attr_named(f) {
                        req.include.insert(a);
                    }
                    // an attribute the index does not keep is simply not available
                }
            }
            "limit" => {
                let n: usize = value
                    .parse()
                    .map_err(|_| ApiError::BadRequest("limit is not a number".into()))?;
                req.query.limit = Some(n.min(MAX_LIMIT));
            }
            "offset" => {
                req.query.offset = value
                    .parse()
                    .map_err(|_| ApiError::BadRequest("offset is not a number".into()))?;
            }
            "fuzzymatching" => {
                fuzzy = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(ApiError::BadRequest(
                            "fuzzymatching is true or false".into(),
                        ))
                    }
                }
            }
            _ => match attr_named(name) {
                Some(Attr::TransferSyntaxUID) | None => req.ignored.push(short(name)),
                Some(a) if a.level() > level => {
                    return Err(ApiError::BadRequest(format!(
                        "{a} is not a matching key at this level"
                    )))
                }
                Some(a) => keys.push((a, value.clone())),
            },
        }
    }
    for (a, mut v) in keys {
        let is_name = matches!(a, Attr::PatientName | Attr::ReferringPhysicianName);
        if fuzzy && is_name && !v.is_empty() && !v.contains(['*', '?']) {
            v = format!("*{v}*");
        }
        if a.kind() == obscura_vault::attrs::Kind::Uid
            && !v.is_empty()
            && !v.split('\\').all(|u| check_uid(u).is_ok())
        {
            return Err(ApiError::BadRequest(format!("{a}: not a UID or UID list")));
        }
        req.query.keys.push((a, v));
    }
    if req.query.limit.is_none() {
        req.query.limit = Some(MAX_LIMIT);
    }
    Ok(req)
}

/// A parameter name for a warning: a name is not data, but keep it short
/// and plain.
fn short(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect()
}

/// The attributes a level returns by default (PS3.18 Table 10.6.3-3..5, as
/// far as the index keeps them).
fn defaults(level: Level, attr: Attr) -> bool {
    match level {
        Level::Study => attr.level() == Level::Study,
        Level::Series => attr.level() == Level::Series || attr == Attr::StudyInstanceUID,
        Level::Instance => {
            attr.level() == Level::Instance
                || matches!(attr, Attr::StudyInstanceUID | Attr::SeriesInstanceUID)
        }
    }
}

async fn search(
    caller: Caller,
    UrlQuery(params): Params,
    level: Level,
    fixed: Vec<(Attr, String)>,
) -> Result<Response, ApiError> {
    accepts_json(&caller.headers, "QIDO-RS answers application/dicom+json")?;
    let base = caller.base_url();
    let Caller { web, principal, .. } = caller;
    let mut req = parse(level, &params, fixed)?;
    let granted = principal.access.studies(Action::Search);
    let nothing = match &granted {
        Studies::Only(set) => !narrow(&mut req.query, set),
        Studies::All => false,
    };
    let wanted = req.query.limit.unwrap_or(MAX_LIMIT);
    // one more than asked, to know whether there are more
    req.query.limit = Some(wanted + 1);
    let tenant = principal.tenant.clone();
    let w = Arc::clone(&web);
    let returned = principal.returned.clone();
    let access = Arc::clone(&principal.access);
    let (results, more, ignored) = tokio::task::spawn_blocking(move || {
        let mut found = if nothing {
            Vec::new()
        } else {
            w.vault.search(&tenant, &req.query)?
        };
        found.retain(|a| granted.contains(a.get(Attr::StudyInstanceUID).unwrap_or_default()));
        let more = found.len() > wanted;
        found.truncate(wanted);
        // the patients whose data the response returns, for the audit log (BALP)
        for attrs in &found {
            returned.add(
                attrs.get(Attr::PatientID).unwrap_or_default(),
                attrs.get(Attr::StudyInstanceUID).unwrap_or_default(),
            );
        }
        let keys: BTreeSet<Attr> = req.query.keys.iter().map(|(a, _)| *a).collect();
        let lens = Lens::new(&w, &access, &tenant);
        let mut out = Vec::with_capacity(found.len());
        for attrs in &found {
            let counts = counts(&w, &tenant, level, attrs).unwrap_or_default();
            let study = attrs.get(Attr::StudyInstanceUID).unwrap_or_default();
            out.push(match lens.view(study)? {
                // the result as the study's view shows it
                Some(v) => result(level, &v.attributes(attrs), &req, &keys, &base, counts),
                None => result(level, attrs, &req, &keys, &base, counts),
            });
        }
        Ok::<_, ApiError>((out, more, req.ignored))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("search task: {e}")))??;
    let mut r = (StatusCode::OK, Json::Array(results).to_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom+json"),
    );
    let mut warnings = Vec::new();
    if !ignored.is_empty() {
        warnings.push(format!(
            "299 obscura: \"The following query parameters are not supported and were ignored: {}\"",
            ignored.join(", ")
        ));
    }
    if more {
        warnings.push("299 obscura: \"There are additional results that can be requested\"".into());
    }
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&w) {
            h.append(header::WARNING, v);
        }
    }
    Ok(r)
}

/// Narrow `query` to the `granted` studies: its Study Instance UID keys
/// give way to one key, their intersection with the grant. False when
/// nothing is left to search.
fn narrow(query: &mut Query, granted: &BTreeSet<String>) -> bool {
    let mut allowed: BTreeSet<&str> = granted.iter().map(String::as_str).collect();
    query.keys.retain(|(a, v)| {
        if *a != Attr::StudyInstanceUID {
            return true;
        }
        if !v.is_empty() {
            let asked: BTreeSet<&str> = v.split('\\').collect();
            allowed.retain(|s| asked.contains(s));
        }
        false
    });
    if allowed.is_empty() {
        return false;
    }
    let list: Vec<&str> = allowed.into_iter().collect();
    query.keys.push((Attr::StudyInstanceUID, list.join("\\")));
    true
}

/// (related series, related instances) of a study or series result.
fn counts(
    web: &Web,
    tenant: &obscura_vault::TenantId,
    level: Level,
    attrs: &Attributes,
) -> Option<(usize, usize)> {
    let mut q = Query::new(Level::Instance);
    match level {
        Level::Study => q.keys.push((
            Attr::StudyInstanceUID,
            attrs.get(Attr::StudyInstanceUID)?.to_string(),
        )),
        Level::Series => q.keys.push((
            Attr::SeriesInstanceUID,
            attrs.get(Attr::SeriesInstanceUID)?.to_string(),
        )),
        Level::Instance => return None,
    }
    let found = web.vault.search(tenant, &q).ok()?;
    let series: BTreeSet<&str> = found
        .iter()
        .filter_map(|a| a.get(Attr::SeriesInstanceUID))
        .collect();
    Some((series.len(), found.len()))
}

fn result(
    level: Level,
    attrs: &Attributes,
    req: &Request,
    keys: &BTreeSet<Attr>,
    base: &str,
    counts: (usize, usize),
) -> Json {
    let mut m = Map::new();
    for (a, v) in attrs.iter() {
        if req.all || defaults(level, a) || req.include.contains(&a) || keys.contains(&a) {
            let key = if a == Attr::TransferSyntaxUID {
                "00083002".to_string()
            } else {
                let (g, e) = a.tag();
                tag_key(Tag(g, e))
            };
            m.insert(key, attr_element(a, v));
        }
    }
    m.insert(
        "00080056".into(),
        json!({ "vr": "CS", "Value": ["ONLINE"] }),
    );
    let st = attrs.get(Attr::StudyInstanceUID).unwrap_or_default();
    let se = attrs.get(Attr::SeriesInstanceUID).unwrap_or_default();
    let url = match level {
        Level::Study => {
            m.insert(
                "00201206".into(),
                json!({ "vr": "IS", "Value": [counts.0] }),
            );
            m.insert(
                "00201208".into(),
                json!({ "vr": "IS", "Value": [counts.1] }),
            );
            format!("{base}/studies/{st}")
        }
        Level::Series => {
            m.insert(
                "00201209".into(),
                json!({ "vr": "IS", "Value": [counts.1] }),
            );
            format!("{base}/studies/{st}/series/{se}")
        }
        Level::Instance => format!(
            "{base}/studies/{st}/series/{se}/instances/{}",
            attrs.get(Attr::SOPInstanceUID).unwrap_or_default()
        ),
    };
    m.insert("00081190".into(), json!({ "vr": "UR", "Value": [url] }));
    Json::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn keys_by_keyword_or_tag_and_parameters() {
        let r = parse(
            Level::Study,
            &p(&[
                ("PatientName", "doe"),
                ("00100020", "123"),
                ("StudyDate", "20200101-20201231"),
                ("includefield", "StudyDescription,00080061"),
                ("includefield", "all"),
                ("limit", "5000"),
                ("offset", "3"),
                ("fuzzymatching", "true"),
                ("OperatorsName", "x"),
            ]),
            vec![],
        )
        .unwrap();
        assert!(r.all);
        assert!(r.include.contains(&Attr::StudyDescription));
        assert!(r.include.contains(&Attr::ModalitiesInStudy));
        assert_eq!(r.query.limit, Some(MAX_LIMIT));
        assert_eq!(r.query.offset, 3);
        assert_eq!(r.ignored, vec!["OperatorsName".to_string()]);
        assert_eq!(r.query.keys[0], (Attr::PatientName, "*doe*".to_string()));
        assert_eq!(r.query.keys[1], (Attr::PatientID, "123".to_string()));
        assert!(parse(Level::Study, &p(&[("SOPInstanceUID", "1.2")]), vec![]).is_err());
        assert!(parse(Level::Study, &p(&[("StudyInstanceUID", "../x")]), vec![]).is_err());
        assert!(parse(Level::Study, &p(&[("limit", "x")]), vec![]).is_err());
        assert!(parse(
            Level::Instance,
            &p(&[("SOPInstanceUID", "1.2\\1.3")]),
            vec![]
        )
        .is_ok());
    }

    #[test]
    fn narrows_to_granted_studies() {
        let granted: BTreeSet<String> = ["1.1", "1.2"].map(String::from).into();
        let mut q = Query::new(Level::Series);
        assert!(narrow(&mut q, &granted));
        assert_eq!(
            q.keys,
            vec![(Attr::StudyInstanceUID, "1.1\\1.2".to_string())]
        );
        let mut q = Query::new(Level::Series).with(Attr::StudyInstanceUID, "1.2\\1.3");
        q = q.with(Attr::Modality, "CT");
        assert!(narrow(&mut q, &granted));
        assert_eq!(
            q.keys,
            vec![
                (Attr::Modality, "CT".to_string()),
                (Attr::StudyInstanceUID, "1.2".to_string())
            ]
        );
        let mut q = Query::new(Level::Study).with(Attr::StudyInstanceUID, "1.3");
        assert!(
            !narrow(&mut q, &granted),
            "only a study outside the grant was asked for"
        );
    }
}
