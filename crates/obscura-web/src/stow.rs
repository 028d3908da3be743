//! STOW-RS (PS3.18 10.5): `POST /studies[/{study}]` with a
//! `multipart/related; type="application/dicom"` body. The body is spooled
//! part by part into one unlinked temporary file as it arrives (never held
//! in memory), within per-part, per-request and part-count limits. Only a
//! complete, well-formed multipart body is stored: a malformed or
//! unterminated one is a 400 and nothing of it reaches the vault. Each
//! instance then has its header read with obscura-dicom (on all cores) and
//! is stored under the principal's tenant, in batches with one index
//! transaction each (group commit); the response, sent once every batch is
//! committed, lists each instance in ReferencedSOPSequence or
//! FailedSOPSequence (with a FailureReason). An
//! instance of a study outside the principal's write grants is refused
//! (0124H, not authorized) whether or not that study exists.

use crate::caller::Caller;
use crate::media::{accepts_json, MediaType};
use crate::multipart::{MultipartError, Parser, Sink};
use crate::source::FileRange;
use crate::view::Lens;
use crate::{check_uid, ApiError, Principal, Web};
use axum::body::Body;
use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use obscura_dicom::{DicomInput, Limits};
use obscura_vault::{Attr, Attributes};
use rayon::prelude::*;
use serde_json::{json, Map, Value as Json};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::sync::Arc;

/// FailureReason: Processing failure.
pub const PROCESSING_FAILURE: u16 = 0x0110;
/// FailureReason: Refused, out of resources.
pub const OUT_OF_RESOURCES: u16 = 0xA700;
/// FailureReason: Error, data set does not match (here: not of the study in the request target).
pub const DOES_NOT_MATCH: u16 = 0xA900;
/// FailureReason: Refused, not authorized (the study is outside the principal's write grants).
pub const NOT_AUTHORIZED: u16 = 0x0124;
/// FailureReason: Error, cannot understand (not a PS3.10 file, no UIDs, an unsupported part type).
pub const CANNOT_UNDERSTAND: u16 = 0xC000;

/// `POST /studies`.
pub async fn stow_any(caller: Caller, body: Body) -> Result<Response, ApiError> {
    stow(caller, None, body).await
}

/// `POST /studies/{study}`: every instance must belong to `study`.
pub async fn stow_study(
    caller: Caller,
    Path(study): Path<String>,
    body: Body,
) -> Result<Response, ApiError> {
    check_uid(&study)?;
    stow(caller, Some(study), body).await
}

/// One part as spooled.
#[derive(Debug, Clone)]
struct Part {
    start: u64,
    len: u64,
    /// Its Content-Type is application/dicom (or absent: the `type` parameter's).
    dicom: bool,
}

/// What happened to one instance.
enum Outcome {
    Stored {
        class: String,
        sop: String,
        study: String,
        series: String,
    },
    Failed {
        class: Option<String>,
        sop: Option<String>,
        reason: u16,
    },
}

async fn stow(caller: Caller, study: Option<String>, mut body: Body) -> Result<Response, ApiError> {
    let base = caller.base_url();
    let Caller {
        web,
        principal,
        peer,
        headers,
    } = caller;
    let unsupported = || {
        ApiError::UnsupportedMedia(
            "the body must be multipart/related; type=\"application/dicom\" (PS3.10 files)".into(),
        )
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(MediaType::parse)
        .ok_or_else(unsupported)?;
    if ct.essence != "multipart/related"
        || ct
            .param("type")
            .is_some_and(|t| !t.eq_ignore_ascii_case("application/dicom"))
    {
        return Err(unsupported());
    }
    let boundary = ct
        .param("boundary")
        .ok_or_else(|| ApiError::BadRequest("multipart/related without a boundary".into()))?;
    let parser = Parser::new(boundary)
        .ok_or_else(|| ApiError::BadRequest("the boundary must be 1 to 200 characters".into()))?;
    accepts_json(&headers, "STOW-RS responses are application/dicom+json")?;
    let max_request = web.config.max_request_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max_request) {
        return Err(ApiError::TooLarge(format!(
            "the request is larger than the limit of {max_request} bytes"
        )));
    }
    let spool = tempfile::tempfile_in(&web.temp_dir)
        .map_err(|e| ApiError::Internal(format!("cannot create a spool file: {e}")))?;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let limits = (web.config.max_part_bytes, max_request, web.config.max_parts);
    let receiver = tokio::task::spawn_blocking(move || {
        let mut sink = SpoolSink {
            out: BufWriter::with_capacity(256 * 1024, spool),
            offset: 0,
            current: None,
            parts: Vec::new(),
            max_part: limits.0,
            max_parts: limits.2,
            too_large: None,
        };
        let mut parser = parser;
        let mut total = 0u64;
        let fail = |e: MultipartError, sink: &SpoolSink| match &sink.too_large {
            Some(m) => ApiError::TooLarge(m.clone()),
            None => ApiError::BadRequest(format!("malformed multipart body: {e}")),
        };
        while let Some(chunk) = rx.blocking_recv() {
            total += chunk.len() as u64;
            if total > limits.1 {
                return Err(ApiError::TooLarge(format!(
                    "the request is larger than the limit of {} bytes",
                    limits.1
                )));
            }
            parser.feed(&chunk, &mut sink).map_err(|e| fail(e, &sink))?;
        }
        parser.finish().map_err(|e| fail(e, &sink))?;
        let file = sink
            .out
            .into_inner()
            .map_err(|e| ApiError::Internal(format!("spool: {}", e.error())))?;
        Ok::<_, ApiError>((Arc::new(file), sink.parts))
    });
    let idle = web.config.idle_timeout();
    let mut broken = None;
    loop {
        match tokio::time::timeout(idle, body.frame()).await {
            Err(_) => {
                broken = Some(ApiError::Timeout);
                break;
            }
            Ok(None) => break,
            Ok(Some(Err(_))) => {
                broken = Some(ApiError::BadRequest(
                    "the request body could not be read".into(),
                ));
                break;
            }
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if tx.send(data).await.is_err() {
                        break; // the parser stopped: its error says why
                    }
                }
            }
        }
    }
    drop(tx);
    let received = receiver
        .await
        .map_err(|e| ApiError::Internal(format!("spool task: {e}")))?;
    if let Some(e) = broken {
        log::warn!("web: STOW from {} abandoned: {e}", peer.addr);
        return Err(e);
    }
    let (file, parts) = received.inspect_err(|e| {
        log::warn!("web: STOW from {} refused, nothing stored: {e}", peer.addr);
    })?;
    if parts.is_empty() {
        return Err(ApiError::BadRequest("the request holds no instance".into()));
    }
    let store_web = Arc::clone(&web);
    let who = principal.clone();
    let expected = study.clone();
    let (outcomes, shown) = tokio::task::spawn_blocking(move || {
        let lens = Lens::new(&store_web, &who.access, &who.tenant);
        let outcomes = store_parts(&store_web, &lens, &who, &file, parts, expected.as_deref());
        // the study of the path as the principal named it
        let shown = expected.map(|s| match lens.view(&s) {
            Ok(Some(v)) => v.uid(&s),
            _ => s,
        });
        (outcomes, shown)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("store task: {e}")))?;
    Ok(response(&base, &principal, shown.as_deref(), outcomes))
}

struct SpoolSink {
    out: BufWriter<File>,
    offset: u64,
    current: Option<Part>,
    parts: Vec<Part>,
    max_part: u64,
    max_parts: usize,
    too_large: Option<String>,
}

impl Sink for SpoolSink {
    fn start(&mut self, headers: &[(String, String)]) -> Result<(), String> {
        if self.parts.len() >= self.max_parts {
            let m = format!("more than {} parts in one request", self.max_parts);
            self.too_large = Some(m.clone());
            return Err(m);
        }
        let dicom = headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .is_none_or(|(_, v)| {
                MediaType::parse(v).is_some_and(|m| m.essence == "application/dicom")
            });
        self.current = Some(Part {
            start: self.offset,
            len: 0,
            dicom,
        });
        Ok(())
    }

    fn data(&mut self, bytes: &[u8]) -> Result<(), String> {
        let Some(part) = self.current.as_mut() else {
            return Err("data outside a part".into());
        };
        if !part.dicom {
            return Ok(());
        }
        part.len += bytes.len() as u64;
        if part.len > self.max_part {
            let m = format!("a part is larger than the limit of {} bytes", self.max_part);
            self.too_large = Some(m.clone());
            return Err(m);
        }
        self.out
            .write_all(bytes)
            .map_err(|e| format!("spool: {e}"))?;
        self.offset += bytes.len() as u64;
        Ok(())
    }

    fn end(&mut self) -> Result<(), String> {
        let part = self.current.take().ok_or("end outside a part")?;
        self.parts.push(part);
        Ok(())
    }
}

/// Whether a value is a UID: 1 to 64 digits and dots, no empty component.
fn is_uid(s: &str) -> bool {
    check_uid(s).is_ok()
}

/// How many instances of a request are stored with one index transaction.
const STORE_BATCH: usize = 256;

/// Store the parts, in batches of [`STORE_BATCH`]: headers read on all
/// cores, then one [`Vault::store_many`](obscura_vault::Vault::store_many)
/// per batch (objects written concurrently, one index transaction). An
/// instance is acknowledged only once its batch is committed.
fn store_parts(
    web: &Web,
    lens: &Lens,
    principal: &Principal,
    file: &Arc<File>,
    parts: Vec<Part>,
    expected_study: Option<&str>,
) -> Vec<Outcome> {
    let mut outcomes = Vec::with_capacity(parts.len());
    for batch in parts.chunks(STORE_BATCH) {
        let checked: Vec<Result<Checked, Outcome>> = batch
            .par_iter()
            .map(|p| check_part(lens, principal, file, p, expected_study))
            .collect();
        let ok: Vec<&Checked> = checked.iter().filter_map(|c| c.as_ref().ok()).collect();
        let stored = web.vault.store_many(
            &principal.tenant,
            ok.iter().map(|c| (c.attrs.clone(), c.body.reader())),
        );
        if let Err(e) = &stored {
            log::warn!("web: storing a batch of {} instances failed: {e}", ok.len());
        }
        let failure = |e: &obscura_vault::VaultError| match e {
            obscura_vault::VaultError::Io(_) => OUT_OF_RESOURCES,
            _ => PROCESSING_FAILURE,
        };
        for c in checked {
            outcomes.push(match c {
                Err(o) => o,
                Ok(c) => match &stored {
                    Ok(_) => {
                        crate::audit::stored(web.audit.get(), principal, &c.attrs);
                        c.stored()
                    }
                    Err(e) => failed(Some(&c.class), Some(&c.sop), failure(e)),
                },
            });
        }
    }
    outcomes
}

/// What is stored of a part: its bytes as sent, or an instance written
/// back through a view (re-encoded, in memory).
enum Stored {
    Sent(FileRange),
    WrittenBack(Arc<Vec<u8>>),
}

impl Stored {
    fn reader(&self) -> Box<dyn Read + Send> {
        match self {
            Stored::Sent(r) => Box::new(r.reader()),
            Stored::WrittenBack(b) => Box::new(std::io::Cursor::new(ArcBytes(Arc::clone(b)))),
        }
    }
}

/// Shared bytes as a slice (for a `Cursor`).
struct ArcBytes(Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// A part whose header was read and whose UIDs are UIDs.
struct Checked {
    body: Stored,
    attrs: Attributes,
    class: String,
    sop: String,
    study: String,
    series: String,
}

impl Checked {
    fn stored(self) -> Outcome {
        Outcome::Stored {
            class: self.class,
            sop: self.sop,
            study: self.study,
            series: self.series,
        }
    }
}

/// A failure, with the UIDs that are UIDs (never echo anything else).
fn failed(class: Option<&str>, sop: Option<&str>, reason: u16) -> Outcome {
    Outcome::Failed {
        class: class.filter(|u| is_uid(u)).map(str::to_string),
        sop: sop.filter(|u| is_uid(u)).map(str::to_string),
        reason,
    }
}

/// Read a part's header and check its UIDs (and its study, if one is expected).
fn check_part(
    lens: &Lens,
    principal: &Principal,
    file: &Arc<File>,
    part: &Part,
    expected_study: Option<&str>,
) -> Result<Checked, Outcome> {
    let access = &principal.access;
    if !part.dicom {
        return Err(failed(None, None, CANNOT_UNDERSTAND));
    }
    let range = FileRange {
        file: Arc::clone(file),
        start: part.start,
        len: part.len,
    };
    let input = match DicomInput::read(range.clone(), Limits::default()) {
        Ok(input) if input.meta.part10 => input,
        Ok(_) => return Err(failed(None, None, CANNOT_UNDERSTAND)),
        Err(e) => {
            log::info!("web: a STOW part is not readable DICOM: {e}");
            return Err(failed(None, None, CANNOT_UNDERSTAND));
        }
    };
    let attrs = Attributes::from_dicom(&input);
    let class = attrs.get(Attr::SOPClassUID);
    let sop = attrs.get(Attr::SOPInstanceUID);
    let uids = [
        class,
        sop,
        attrs.get(Attr::StudyInstanceUID),
        attrs.get(Attr::SeriesInstanceUID),
    ];
    let [Some(class), Some(sop), Some(study), Some(series)] = uids else {
        return Err(failed(class, sop, CANNOT_UNDERSTAND));
    };
    if !uids.iter().all(|u| u.is_some_and(is_uid)) {
        return Err(failed(Some(class), Some(sop), CANNOT_UNDERSTAND));
    }
    let (class, sop, study, series) = (
        class.to_string(),
        sop.to_string(),
        study.to_string(),
        series.to_string(),
    );
    // under a view, the study is named by its pseudonym: the tenant's study it maps to
    let refused = || {
        log::warn!("audit: a STOW instance refused: its study is outside the write grants");
        failed(Some(&class), Some(&sop), NOT_AUTHORIZED)
    };
    let internal = |e: ApiError| {
        log::warn!("web: a STOW instance could not be mapped back: {e}");
        failed(Some(&class), Some(&sop), PROCESSING_FAILURE)
    };
    let tenant_study = if lens.active() {
        lens.study(&study).map_err(internal)?.ok_or_else(refused)?
    } else {
        study.clone()
    };
    if expected_study.is_some_and(|s| s != tenant_study) {
        return Err(failed(Some(&class), Some(&sop), DOES_NOT_MATCH));
    }
    if !access.allows(obscura_access::Action::Write, &tenant_study) {
        return Err(refused());
    }
    let (body, attrs) = match lens.view(&tenant_study).map_err(internal)? {
        None => (Stored::Sent(range), attrs),
        Some(v) => {
            let ds = lens
                .write_back(&v, &input.dataset, &tenant_study, &principal.name)
                .map_err(internal)?;
            let mut bytes = Vec::with_capacity(part.len as usize + 1024);
            input
                .write_part10(&ds, &mut bytes)
                .map_err(|e| internal(ApiError::Internal(e.to_string())))?;
            let mut attrs = Attributes::from_dataset(&ds);
            attrs.set(Attr::TransferSyntaxUID, &input.transfer_syntax_uid);
            log::info!(
                "web: an instance written back by {} into its tenant's study",
                principal.name
            );
            (Stored::WrittenBack(Arc::new(bytes)), attrs)
        }
    };
    Ok(Checked {
        body,
        attrs,
        class,
        sop,
        study,
        series,
    })
}

fn uid_element(v: &str) -> Json {
    json!({ "vr": "UI", "Value": [v] })
}

fn response(
    base: &str,
    principal: &Principal,
    study: Option<&str>,
    outcomes: Vec<Outcome>,
) -> Response {
    let mut referenced = Vec::new();
    let mut failed = Vec::new();
    let mut studies = std::collections::BTreeSet::new();
    for o in &outcomes {
        match o {
            Outcome::Stored {
                class,
                sop,
                study,
                series,
            } => {
                studies.insert(study.as_str());
                referenced.push(json!({
                    "00081150": uid_element(class),
                    "00081155": uid_element(sop),
                    "00081190": { "vr": "UR", "Value": [format!("{base}/studies/{study}/series/{series}/instances/{sop}")] },
                }));
            }
            Outcome::Failed { class, sop, reason } => {
                let mut item = Map::new();
                if let Some(c) = class {
                    item.insert("00081150".into(), uid_element(c));
                }
                if let Some(s) = sop {
                    item.insert("00081155".into(), uid_element(s));
                }
                item.insert("00081197".into(), json!({ "vr": "US", "Value": [reason] }));
                failed.push(Json::Object(item));
            }
        }
    }
    let mut body = Map::new();
    // the study's URL only when something was stored in it: a request into a
    // study outside the grants gets its path back from nowhere
    let study_url = match studies.len() {
        0 => None,
        1 => studies.first().copied(),
        _ => study,
    };
    if let Some(s) = study_url {
        body.insert(
            "00081190".into(),
            json!({ "vr": "UR", "Value": [format!("{base}/studies/{s}")] }),
        );
    }
    if !failed.is_empty() {
        body.insert("00081198".into(), json!({ "vr": "SQ", "Value": failed }));
    }
    if !referenced.is_empty() {
        body.insert(
            "00081199".into(),
            json!({ "vr": "SQ", "Value": referenced }),
        );
    }
    let status = match (referenced.len(), failed.len()) {
        (_, 0) => StatusCode::OK,
        (0, _) => StatusCode::CONFLICT,
        _ => StatusCode::ACCEPTED,
    };
    log::info!(
        "web: STOW by {}: {} stored, {} failed",
        principal.name,
        referenced.len(),
        failed.len()
    );
    let mut r = (status, Json::Object(body).to_string()).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/dicom+json"),
    );
    r
}
