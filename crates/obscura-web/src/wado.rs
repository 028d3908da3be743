//! WADO-RS (PS3.18 10.4): studies, series and instances as
//! `multipart/related; type="application/dicom"` (each part the stored
//! PS3.10 bytes, exactly as received, streamed and decrypted from the
//! vault), metadata as application/dicom+json with BulkDataURIs, bulk data,
//! and frames (native pixel data as application/octet-stream, 1-bit frames
//! each re-packed from bit 0, PS3.18 8.7.3.3.1; encapsulated frames in
//! their transfer syntax's media type). No transcoding: objects
//! are served in their stored transfer syntax. Rendered images and
//! thumbnails are in `rendered`.
//!
//! Every resource is first found in the index under the principal's
//! tenant, with every UID of its path: an instance of another study,
//! series or tenant is 404, like one that does not exist.

use crate::body::{stream, ChannelWriter, WholeBody};
use crate::caller::Caller;
use crate::json::{self, find_bulk, Bulk};
use crate::media::{accepts_json, new_boundary, parse_accept, MediaType};
use crate::rendered::pixel_error;
use crate::view::{GrantView, Lens};
use crate::{check_uid, ApiError, Principal, Web};
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use dicom_core::value::Value;
use dicom_dictionary_std::tags;
use obscura_dicom::source::SeekSource;
use obscura_dicom::{DicomInput, Limits, Parts};
use obscura_pixels::{bits, frames, DecodeLimits, Decoder, ImageInfo, Photometric};
use obscura_vault::{Attr, InstanceReader, Level, Query, TenantId, Vault};
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

/// Bytes of a stored object kept in memory while its header is read.
const HEADER_KEEP: u64 = 64 << 20;
/// Native transfer syntaxes whose frames are plain little-endian samples
/// at their offsets in the stored object (not deflated).
const NATIVE_LE: &[&str] = &["1.2.840.10008.1.2", "1.2.840.10008.1.2.1"];
/// Native transfer syntaxes whose frames are not runs of the stored value
/// (big-endian words, a deflated data set): their frames are decoded and
/// served as Explicit VR Little Endian holds them.
const NATIVE_DECODED: &[&str] = &["1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"];
/// Stored bytes of a bit-packed frame re-packed at a time.
const PACKED_PIECE: usize = 64 << 10;

/// One instance found for a request.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) study: String,
    pub(crate) series: String,
    pub(crate) sop: String,
    pub(crate) ts: String,
    /// Instance Number, when the index has one.
    pub(crate) number: Option<i64>,
    /// Patient ID from the index (for the audit log only).
    pub(crate) patient: String,
}

/// The instances of a study, series or instance path in the principal's
/// tenant (404 if none), recorded as returned for the audit log; on the
/// calling (blocking) thread.
fn found_now(
    web: &Web,
    principal: &Principal,
    study: &str,
    series: Option<&str>,
    sop: Option<&str>,
) -> Result<Vec<Found>, ApiError> {
    let mut q = Query::new(Level::Instance).with(Attr::StudyInstanceUID, study);
    if let Some(s) = series {
        q = q.with(Attr::SeriesInstanceUID, s);
    }
    if let Some(s) = sop {
        q = q.with(Attr::SOPInstanceUID, s);
    }
    let found: Vec<Found> = web
        .vault
        .search(&principal.tenant, &q)?
        .into_iter()
        .map(|a| Found {
            study: a
                .get(Attr::StudyInstanceUID)
                .unwrap_or_default()
                .to_string(),
            series: a
                .get(Attr::SeriesInstanceUID)
                .unwrap_or_default()
                .to_string(),
            sop: a.get(Attr::SOPInstanceUID).unwrap_or_default().to_string(),
            ts: a
                .get(Attr::TransferSyntaxUID)
                .unwrap_or_default()
                .to_string(),
            number: a
                .get(Attr::InstanceNumber)
                .and_then(|n| n.trim().parse().ok()),
            patient: a.get(Attr::PatientID).unwrap_or_default().to_string(),
        })
        .collect();
    if found.is_empty() {
        return Err(ApiError::NotFound);
    }
    // what the response is about to return, for the audit log (BALP)
    for f in &found {
        principal.returned.add(&f.patient, &f.study);
    }
    Ok(found)
}

/// The path's UIDs, checked.
pub(crate) fn uids(parts: &[&str]) -> Result<(), ApiError> {
    for p in parts {
        check_uid(p)?;
    }
    Ok(())
}

/// The instances of a path in the principal's tenant (404 if none),
/// recorded as returned for the audit log.
pub(crate) async fn found(
    web: &Arc<Web>,
    principal: &Principal,
    study: &str,
    series: Option<&str>,
    sop: Option<&str>,
) -> Result<Vec<Found>, ApiError> {
    let (w, p) = (Arc::clone(web), principal.clone());
    let (st, se, so) = (
        study.to_string(),
        series.map(str::to_string),
        sop.map(str::to_string),
    );
    tokio::task::spawn_blocking(move || found_now(&w, &p, &st, se.as_deref(), so.as_deref()))
        .await
        .map_err(|e| ApiError::Internal(format!("index task: {e}")))?
}

/// How instances are sent back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packaging {
    /// `multipart/related; type="application/dicom"`.
    Multipart,
    /// One bare `application/dicom` body (a single instance only).
    Single,
}

/// Negotiate instances' media type against `Accept`: the stored transfer
/// syntaxes must be acceptable (`transfer-syntax` absent, `*`, or theirs).
fn negotiate(headers: &HeaderMap, ts: &[&str], single: bool) -> Result<Packaging, ApiError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(Packaging::Multipart);
    };
    let ranges = parse_accept(accept)
        .ok_or_else(|| ApiError::BadRequest("malformed Accept header".into()))?;
    if ranges.is_empty() {
        return Ok(Packaging::Multipart);
    }
    let ts_ok = |m: &MediaType| match m.param("transfer-syntax") {
        None | Some("*") => true,
        Some(want) => ts.iter().all(|t| *t == want),
    };
    for r in &ranges {
        if r.essence == "multipart/related" {
            let ty = r.param("type").unwrap_or("application/dicom");
            if ty.eq_ignore_ascii_case("application/dicom") && ts_ok(r) {
                return Ok(Packaging::Multipart);
            }
        } else if r.essence == "application/dicom" && ts_ok(r) {
            return Ok(if single {
                Packaging::Single
            } else {
                Packaging::Multipart
            });
        } else if r.essence == "*/*" {
            return Ok(Packaging::Multipart);
        }
    }
    Err(ApiError::NotAcceptable(format!(
        "instances are available as multipart/related; type=\"application/dicom\" in their stored transfer syntax ({}); no transcoding",
        ts.join(", ")
    )))
}

/// `GET /studies/{study}`.
pub async fn study(
    State(web): State<Arc<Web>>,
    Extension(principal): Extension<Principal>,
    Path(study): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    uids(&[&study])?;
    retrieve(web, principal, headers, &study, None, None).await
}

/// `GET /studies/{study}/series/{series}`.
pub async fn series(
    State(web): State<Arc<Web>>,
    Extension(principal): Extension<Principal>,
    Path((study, series)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    uids(&[&study, &series])?;
    retrieve(web, principal, headers, &study, Some(&series), None).await
}

/// `GET /studies/{study}/series/{series}/instances/{instance}`.
pub async fn instance(
    State(web): State<Arc<Web>>,
    Extension(principal): Extension<Principal>,
    Path((study, series, sop)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    uids(&[&study, &series, &sop])?;
    retrieve(web, principal, headers, &study, Some(&series), Some(&sop)).await
}

async fn retrieve(
    web: Arc<Web>,
    principal: Principal,
    headers: HeaderMap,
    study: &str,
    series: Option<&str>,
    sop: Option<&str>,
) -> Result<Response, ApiError> {
    let permit = acquire_stream(&web).await?;
    // one thread hand-off: the index, the negotiation and (one instance
    // small enough) the object read whole
    let (w, p) = (Arc::clone(&web), principal.clone());
    let (st, se, so) = (
        study.to_string(),
        series.map(str::to_string),
        sop.map(str::to_string),
    );
    let prepared = tokio::task::spawn_blocking(move || {
        prepare(&w, &p, &headers, &st, se.as_deref(), so.as_deref())
    })
    .await
    .map_err(|e| ApiError::Internal(format!("read task: {e}")))??;
    let Prepared {
        list,
        framing,
        content_type,
        view,
        opened,
    } = prepared;
    if let Some(v) = view {
        // a view's response takes its own slot once its first instance is found
        drop(permit);
        return retrieve_view(web, principal, list, framing, content_type, v).await;
    }
    let (vault, tenant) = (Arc::clone(&web.vault), principal.tenant.clone());
    log::info!("web: WADO by {}: {} instances", principal.name, list.len());
    let mut first = match opened {
        Some(Opened::Whole(body)) => return Ok(with_type(Body::new(body), &content_type)),
        Some(Opened::Stream(r)) => Some(r),
        None => None,
    };
    let body = stream(web.config.idle_timeout(), permit, move |w| {
        for f in &list {
            let mut r = match first.take() {
                Some(r) => *r,
                None => vault
                    .open_instance(&tenant, &f.sop)
                    .map_err(|e| e.to_string())?,
            };
            w.write_all(framing.part_head(&f.ts, Some(r.len())).as_bytes())
                .map_err(|e| e.to_string())?;
            copy(&mut r, w)?;
            w.write_all(framing.part_tail())
                .map_err(|e| e.to_string())?;
        }
        w.write_all(framing.close().as_bytes())
            .map_err(|e| e.to_string())
    });
    Ok(with_type(Body::new(body), &content_type))
}

/// A retrieval as found on a blocking thread.
struct Prepared {
    list: Vec<Found>,
    framing: Framing,
    content_type: String,
    /// The view the study is seen through (`None`: the originals).
    view: Option<Arc<GrantView>>,
    /// A single instance of the originals, opened (and read whole if small).
    opened: Option<Opened>,
}

/// Find a retrieval's instances (recorded as returned), negotiate their
/// framing against `headers`, find the principal's view of the study and,
/// for a single instance of the originals, open it (and read it whole
/// when it is small enough).
fn prepare(
    web: &Web,
    principal: &Principal,
    headers: &HeaderMap,
    study: &str,
    series: Option<&str>,
    sop: Option<&str>,
) -> Result<Prepared, ApiError> {
    let list = found_now(web, principal, study, series, sop)?;
    let ts: Vec<&str> = {
        let mut t: Vec<&str> = list.iter().map(|f| f.ts.as_str()).collect();
        t.sort_unstable();
        t.dedup();
        t
    };
    let framing = match negotiate(headers, &ts, sop.is_some())? {
        Packaging::Single => Framing::Single,
        Packaging::Multipart => Framing::Multipart(new_boundary()),
    };
    let content_type = framing.content_type(&list[0].ts);
    let view = lens_view(web, principal, study)?;
    let opened = match (&view, list.as_slice()) {
        (None, [f]) => Some(open_one(web, &principal.tenant, f, &framing)?),
        _ => None,
    };
    Ok(Prepared {
        list,
        framing,
        content_type,
        view,
        opened,
    })
}

/// Instances as view `v` shows them: each its de-identified header
/// (encoded once per view and instance, then kept: [`Views`]) around its
/// stored pixel data, streamed from the vault and never decoded. A
/// withheld instance is left out; when every one is, the answer is 404,
/// as for a study that does not exist. The first instance shown is found
/// before anything is sent; when it is the last one (a single instance,
/// typically) and small, it is read whole on that thread and sent with a
/// Content-Length, like an original.
///
/// [`Views`]: crate::view::Views
async fn retrieve_view(
    web: Arc<Web>,
    principal: Principal,
    list: Vec<Found>,
    framing: Framing,
    content_type: String,
    v: Arc<GrantView>,
) -> Result<Response, ApiError> {
    log::info!(
        "web: WADO by {} through a view: {} instances",
        principal.name,
        list.len()
    );
    let (w, t, l, vw, fr) = (
        Arc::clone(&web),
        principal.tenant.clone(),
        list.clone(),
        Arc::clone(&v),
        framing.clone(),
    );
    let first = tokio::task::spawn_blocking(move || first_seen(&w, &t, &l, &vw, &fr))
        .await
        .map_err(|e| ApiError::Internal(format!("view task: {e}")))??;
    let (skip, mut first) = match first {
        FirstSeen::Whole(body) => return Ok(with_type(Body::new(body), &content_type)),
        FirstSeen::Stream(i, parts) => (i, Some(parts)),
    };
    let permit = acquire_stream(&web).await?;
    let (web2, tenant) = (Arc::clone(&web), principal.tenant.clone());
    let body = stream(web.config.idle_timeout(), permit, move |w| {
        for f in &list[skip..] {
            let parts = match first.take() {
                Some(p) => p,
                None => match seen(&web2, &tenant, &f.sop, &v) {
                    Ok(p) => p,
                    Err(ApiError::NotFound) => continue,
                    Err(e) => return Err(e.to_string()),
                },
            };
            w.write_all(framing.part_head(&f.ts, None).as_bytes())
                .map_err(|e| e.to_string())?;
            w.write_all(&parts.head).map_err(|e| e.to_string())?;
            if let Some(px) = parts.pixel {
                let r = pixels_of(&web2.vault, &tenant, &f.sop, px.value_offset)?;
                copy(&mut r.take(px.value_bytes), w)?;
            }
            w.write_all(&parts.tail).map_err(|e| e.to_string())?;
            w.write_all(framing.part_tail())
                .map_err(|e| e.to_string())?;
        }
        w.write_all(framing.close().as_bytes())
            .map_err(|e| e.to_string())
    });
    Ok(with_type(Body::new(body), &content_type))
}

/// A stored instance's reader, at `offset` (its pixel data's value).
fn pixels_of(
    vault: &Vault,
    tenant: &TenantId,
    sop: &str,
    offset: u64,
) -> Result<InstanceReader, String> {
    let mut r = vault
        .open_instance(tenant, sop)
        .map_err(|e| e.to_string())?;
    r.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
    Ok(r)
}

/// The first instance of a view's response, found before it starts.
enum FirstSeen {
    /// The whole response, read (its only instance shown, small).
    Whole(WholeBody),
    /// The index of the first instance shown, and its parts.
    Stream(usize, Arc<Parts>),
}

/// Find the first instance of `list` that `v` shows (404 if none).
fn first_seen(
    web: &Web,
    tenant: &TenantId,
    list: &[Found],
    v: &GrantView,
    framing: &Framing,
) -> Result<FirstSeen, ApiError> {
    for (i, f) in list.iter().enumerate() {
        let parts = match seen(web, tenant, &f.sop, v) {
            Ok(p) => p,
            Err(ApiError::NotFound) => continue,
            Err(e) => return Err(e),
        };
        let head = framing.part_head(&f.ts, None);
        let close = framing.close();
        let total = (head.len() + parts.head.len() + parts.tail.len() + close.len()) as u64
            + framing.part_tail().len() as u64
            + parts.pixel.map_or(0, |p| p.value_bytes);
        if i + 1 == list.len() {
            if let Some(permit) = whole_permit(web, total) {
                let mut out = Vec::with_capacity(total as usize);
                out.extend_from_slice(head.as_bytes());
                out.extend_from_slice(&parts.head);
                if let Some(px) = parts.pixel {
                    pixels_of(&web.vault, tenant, &f.sop, px.value_offset)
                        .map_err(ApiError::Internal)?
                        .take(px.value_bytes)
                        .read_to_end(&mut out)
                        .map_err(|e| ApiError::Internal(format!("reading a stored object: {e}")))?;
                }
                out.extend_from_slice(&parts.tail);
                out.extend_from_slice(framing.part_tail());
                out.extend_from_slice(close.as_bytes());
                return Ok(FirstSeen::Whole(WholeBody::new(out.into(), permit)));
            }
        }
        return Ok(FirstSeen::Stream(i, parts));
    }
    Err(ApiError::NotFound)
}

/// Single-instance responses up to this size are read whole on the
/// blocking thread that found them and sent with a Content-Length: one
/// thread hand-off instead of one per chunk. Larger ones stream.
const WHOLE_MAX: u64 = 8 << 20;

/// How instances are framed in the response body.
#[derive(Debug, Clone)]
enum Framing {
    /// The instance is the body.
    Single,
    /// Each instance is a part, between this boundary's delimiters.
    Multipart(String),
}

impl Framing {
    /// The response's Content-Type (`ts`: the single instance's transfer syntax).
    fn content_type(&self, ts: &str) -> String {
        match self {
            Framing::Single => format!("application/dicom; transfer-syntax={ts}"),
            Framing::Multipart(b) => {
                format!("multipart/related; type=\"application/dicom\"; boundary=\"{b}\"")
            }
        }
    }

    /// What goes before an instance of `len` bytes.
    fn part_head(&self, ts: &str, len: Option<u64>) -> String {
        match self {
            Framing::Single => String::new(),
            Framing::Multipart(b) => {
                let len = len.map_or(String::new(), |n| format!("Content-Length: {n}\r\n"));
                format!(
                    "--{b}\r\nContent-Type: application/dicom; transfer-syntax={ts}\r\n{len}\r\n"
                )
            }
        }
    }

    /// What goes after each instance.
    fn part_tail(&self) -> &'static [u8] {
        match self {
            Framing::Single => b"",
            Framing::Multipart(_) => b"\r\n",
        }
    }

    /// What ends the body.
    fn close(&self) -> String {
        match self {
            Framing::Single => String::new(),
            Framing::Multipart(b) => format!("--{b}--\r\n"),
        }
    }
}

/// A single instance opened for its response.
enum Opened {
    /// Read whole, within the memory budget.
    Whole(WholeBody),
    /// Too large (or the budget is spent): to be streamed.
    Stream(Box<InstanceReader>),
}

/// Open `f` and, if its framed body fits in [`WHOLE_MAX`] and in what is
/// left of the whole-body budget, read it whole.
fn open_one(
    web: &Web,
    tenant: &TenantId,
    f: &Found,
    framing: &Framing,
) -> Result<Opened, ApiError> {
    let mut r = web
        .vault
        .open_instance(tenant, &f.sop)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let (head, close) = (framing.part_head(&f.ts, Some(r.len())), framing.close());
    let total = head.len() as u64 + r.len() + (framing.part_tail().len() + close.len()) as u64;
    let Some(permit) = whole_permit(web, total) else {
        return Ok(Opened::Stream(Box::new(r)));
    };
    // room for the segments' tags the vault reads before decrypting in
    // place: the buffer is never reallocated (a 0.5 MB copy per response)
    let mut out = Vec::with_capacity((total - r.len() + r.read_to_end_room()) as usize);
    out.extend_from_slice(head.as_bytes());
    r.read_to_end(&mut out)
        .map_err(|e| ApiError::Internal(format!("reading a stored object: {e}")))?;
    out.extend_from_slice(framing.part_tail());
    out.extend_from_slice(close.as_bytes());
    Ok(Opened::Whole(WholeBody::new(out.into(), permit)))
}

/// Leave to read a response of `total` bytes whole: it fits in
/// [`WHOLE_MAX`] and in what is left of the budget all such responses share.
fn whole_permit(web: &Web, total: u64) -> Option<tokio::sync::OwnedSemaphorePermit> {
    (total <= WHOLE_MAX)
        .then(|| {
            Arc::clone(&web.whole_budget)
                .try_acquire_many_owned(total as u32)
                .ok()
        })
        .flatten()
}

/// The view a principal sees `study` through (`None`: the originals).
pub(crate) fn lens_view(
    web: &Web,
    principal: &Principal,
    study: &str,
) -> Result<Option<Arc<GrantView>>, ApiError> {
    Lens::new(web, &principal.access, &principal.tenant).view(study)
}

/// A stored instance as `v` shows it, pixels included: its header read,
/// de-identified and encoded around its pixel data (kept by the views);
/// 404 when the view withholds it.
fn seen(web: &Web, tenant: &TenantId, sop: &str, v: &GrantView) -> Result<Arc<Parts>, ApiError> {
    web.views.instance(v, sop, || {
        let input = read_header(&web.vault, tenant, sop).map_err(ApiError::Internal)?;
        let ds = v.dataset(&input.dataset, input.pixel.is_some(), true)?;
        input
            .encode_part10(&ds)
            .map_err(|e| ApiError::Internal(format!("encoding a view's header: {e}")))
    })
}

/// A stored instance's header, its pixel data left in the vault.
pub(crate) type StoredInput = DicomInput<SeekSource<obscura_vault::InstanceReader>>;

/// A slot for one streamed response (bounds the blocking threads in use).
async fn acquire_stream(web: &Arc<Web>) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    let sem = Arc::clone(&web.stream_slots);
    tokio::time::timeout(std::time::Duration::from_secs(30), sem.acquire_owned())
        .await
        .map_err(|_| ApiError::Unavailable("too many responses in progress".into()))?
        .map_err(|_| ApiError::Unavailable("stopping".into()))
}

/// Copy a reader into the response in large chunks.
fn copy(r: &mut impl Read, w: &mut ChannelWriter) -> Result<(), String> {
    w.copy_from(r)
}

/// A 200 response with its Content-Type.
pub(crate) fn with_type(body: Body, content_type: &str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

/// Read a stored instance's header (its first 64 MiB are kept while the
/// header is parsed; the pixel data is skipped by seeking, not decrypted).
pub(crate) fn read_header(
    vault: &Vault,
    tenant: &TenantId,
    sop: &str,
) -> Result<StoredInput, String> {
    let r = vault
        .open_instance(tenant, sop)
        .map_err(|e| e.to_string())?;
    let len = r.len();
    DicomInput::read(SeekSource::new(r, len, HEADER_KEEP), Limits::default())
        .map_err(|e| format!("reading a stored header: {e}"))
}

fn instance_url(base: &str, f: &Found) -> String {
    format!(
        "{base}/studies/{}/series/{}/instances/{}",
        f.study, f.series, f.sop
    )
}

/// `GET /studies/{study}/metadata`.
pub async fn study_metadata(
    caller: Caller,
    Path(study): Path<String>,
) -> Result<Response, ApiError> {
    uids(&[&study])?;
    metadata(caller, &study, None, None).await
}

/// `GET /studies/{study}/series/{series}/metadata`.
pub async fn series_metadata(
    caller: Caller,
    Path((study, series)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    uids(&[&study, &series])?;
    metadata(caller, &study, Some(&series), None).await
}

/// `GET /studies/{study}/series/{series}/instances/{instance}/metadata`.
pub async fn instance_metadata(
    caller: Caller,
    Path((study, series, sop)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    uids(&[&study, &series, &sop])?;
    metadata(caller, &study, Some(&series), Some(&sop)).await
}

async fn metadata(
    caller: Caller,
    study: &str,
    series: Option<&str>,
    sop: Option<&str>,
) -> Result<Response, ApiError> {
    accepts_json(
        &caller.headers,
        "metadata is available as application/dicom+json",
    )?;
    let base = caller.base_url();
    let Caller { web, principal, .. } = caller;
    let list = found(&web, &principal, study, series, sop).await?;
    let view = lens_view(&web, &principal, study)?;
    let permit = acquire_stream(&web).await?;
    let vault = Arc::clone(&web.vault);
    let tenant = principal.tenant.clone();
    let body = stream(web.config.idle_timeout(), permit, move |w| {
        w.write_all(b"[").map_err(|e| e.to_string())?;
        for (i, f) in list.iter().enumerate() {
            let mut input = read_header(&vault, &tenant, &f.sop)?;
            let url = match &view {
                Some(v) => {
                    // the header as the view shows it, its URLs in pseudonyms
                    input.dataset = v
                        .dataset(&input.dataset, input.pixel.is_some(), false)
                        .map_err(|_| "the view cannot show this header".to_string())?;
                    format!(
                        "{base}/studies/{}/series/{}/instances/{}",
                        v.uid(&f.study),
                        v.uid(&f.series),
                        v.uid(&f.sop)
                    )
                }
                None => instance_url(&base, f),
            };
            let j = json::dataset(
                &input.dataset,
                input.pixel.as_ref(),
                &Bulk { instance_url: &url },
            );
            if i > 0 {
                w.write_all(b",").map_err(|e| e.to_string())?;
            }
            serde_json::to_writer(&mut *w, &j).map_err(|e| e.to_string())?;
        }
        w.write_all(b"]").map_err(|e| e.to_string())
    });
    Ok(with_type(Body::new(body), "application/dicom+json"))
}

/// `GET .../instances/{instance}/bulkdata/{path}`: a binary value of the
/// header (by tag path, `GGGGEEEE[/item/GGGGEEEE]...`), or the top-level
/// native pixel data (`7FE00010`), as one application/octet-stream part.
pub async fn bulkdata(
    State(web): State<Arc<Web>>,
    Extension(principal): Extension<Principal>,
    Path((study, series, sop, path)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    uids(&[&study, &series, &sop])?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.is_empty()
        || parts.iter().enumerate().any(|(i, p)| {
            if i % 2 == 0 {
                json::parse_tag(p).is_none()
            } else {
                p.parse::<usize>().is_err()
            }
        })
    {
        return Err(ApiError::BadRequest(
            "a bulk data path is GGGGEEEE[/item/GGGGEEEE]...".into(),
        ));
    }
    octet_stream_accepted(&headers, "application/octet-stream")?;
    let list = found(&web, &principal, &study, Some(&series), Some(&sop)).await?;
    let f = list[0].clone();
    let view = lens_view(&web, &principal, &study)?;
    let (vault, tenant) = (Arc::clone(&web.vault), principal.tenant.clone());
    let path: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
    // read the header first: a missing element is a 404, not a broken body
    let (input_pixel, value) = {
        let (v, t, s, p) = (
            Arc::clone(&vault),
            tenant.clone(),
            f.sop.clone(),
            path.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let mut input = read_header(&v, &t, &s).map_err(ApiError::Internal)?;
            let refs: Vec<&str> = p.iter().map(String::as_str).collect();
            let pixel_tag = input.pixel.map(|px| json::tag_key(px.tag));
            let is_pixels = refs.len() == 1 && pixel_tag.as_deref() == Some(refs[0]);
            if let Some(view) = &view {
                // values from the header as the view shows it
                input.dataset = view.dataset(&input.dataset, input.pixel.is_some(), is_pixels)?;
            }
            if is_pixels {
                let px = input.pixel.expect("pixel data");
                if px.declared_len.is_none() {
                    return Err(ApiError::NotImplemented(
                        "encapsulated pixel data is available per frame: use /frames/{n}".into(),
                    ));
                }
                return Ok((Some(px), Vec::new()));
            }
            let bytes = match find_bulk(&input.dataset, &refs) {
                Some(Value::Primitive(p)) => p.to_bytes().into_owned(),
                Some(Value::PixelSequence(s)) => s.fragments().concat(),
                _ => return Err(ApiError::NotFound),
            };
            Ok((None, bytes))
        })
        .await
        .map_err(|e| ApiError::Internal(format!("bulk task: {e}")))??
    };
    let permit = acquire_stream(&web).await?;
    let boundary = new_boundary();
    let b = boundary.clone();
    let body = stream(web.config.idle_timeout(), permit, move |w| {
        write!(w, "--{b}\r\nContent-Type: application/octet-stream\r\n")
            .map_err(|e| e.to_string())?;
        match input_pixel {
            Some(px) => {
                write!(w, "Content-Length: {}\r\n\r\n", px.value_bytes)
                    .map_err(|e| e.to_string())?;
                let mut r = vault
                    .open_instance(&tenant, &f.sop)
                    .map_err(|e| e.to_string())?;
                r.seek(SeekFrom::Start(px.value_offset))
                    .map_err(|e| e.to_string())?;
                copy(&mut r.take(px.value_bytes), w)?;
            }
            None => {
                write!(w, "Content-Length: {}\r\n\r\n", value.len()).map_err(|e| e.to_string())?;
                w.write_all(&value).map_err(|e| e.to_string())?;
            }
        }
        write!(w, "\r\n--{b}--\r\n").map_err(|e| e.to_string())
    });
    Ok(with_type(
        Body::new(body),
        &format!("multipart/related; type=\"application/octet-stream\"; boundary=\"{boundary}\""),
    ))
}

/// 406 unless `Accept` allows `media` in a multipart/related response (or
/// as itself).
fn octet_stream_accepted(headers: &HeaderMap, media: &str) -> Result<(), ApiError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let ranges = parse_accept(accept)
        .ok_or_else(|| ApiError::BadRequest("malformed Accept header".into()))?;
    let ok = ranges.is_empty()
        || ranges.iter().any(|r| {
            r.covers(media)
                || (r.essence == "multipart/related"
                    && r.param("type").is_none_or(|t| {
                        MediaType::parse(t).is_some_and(|inner| inner.covers(media))
                    }))
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::NotAcceptable(format!(
            "available as multipart/related; type=\"{media}\""
        )))
    }
}

/// Negotiate frames' media type: native frames are application/octet-stream;
/// encapsulated ones their transfer syntax's type, or application/octet-stream
/// when `Accept` asks for that with `transfer-syntax=*` (or the stored one).
/// Returns (the multipart `type`, each part's Content-Type).
fn frame_type(headers: &HeaderMap, ts: &str) -> Result<(String, String), ApiError> {
    const OCTETS: &str = "application/octet-stream";
    if NATIVE_LE.contains(&ts) || NATIVE_DECODED.contains(&ts) {
        octet_stream_accepted(headers, OCTETS)?;
        return Ok((OCTETS.into(), OCTETS.into()));
    }
    let media = frame_media(ts);
    let own = (media.to_string(), format!("{media}; transfer-syntax={ts}"));
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(own);
    };
    let ranges = parse_accept(accept)
        .ok_or_else(|| ApiError::BadRequest("malformed Accept header".into()))?;
    if ranges.is_empty() {
        return Ok(own);
    }
    for r in &ranges {
        // the range itself, or the `type` of a multipart/related range
        let (inner, params) = if r.essence == "multipart/related" {
            match r.param("type").and_then(MediaType::parse) {
                Some(t) => (t.essence, r),
                None => ("*/*".to_string(), r),
            }
        } else {
            (r.essence.clone(), r)
        };
        let wanted_ts = params.param("transfer-syntax");
        let inner_range = MediaType {
            essence: inner.clone(),
            params: Vec::new(),
        };
        if inner == OCTETS && wanted_ts.is_some_and(|t| t == "*" || t == ts) {
            return Ok((OCTETS.into(), format!("{OCTETS}; transfer-syntax={ts}")));
        }
        if inner_range.covers(media) && wanted_ts.is_none_or(|t| t == "*" || t == ts) {
            return Ok(own);
        }
    }
    Err(ApiError::NotAcceptable(format!(
        "these frames are available as {media} or application/octet-stream; transfer-syntax=* (no transcoding)"
    )))
}

/// The media type of a frame in transfer syntax `ts` (PS3.18 Table 8.7.3-2).
fn frame_media(ts: &str) -> &'static str {
    match ts {
        "1.2.840.10008.1.2.4.50"
        | "1.2.840.10008.1.2.4.51"
        | "1.2.840.10008.1.2.4.57"
        | "1.2.840.10008.1.2.4.70" => "image/jpeg",
        "1.2.840.10008.1.2.4.80" | "1.2.840.10008.1.2.4.81" => "image/jls",
        "1.2.840.10008.1.2.4.90"
        | "1.2.840.10008.1.2.4.91"
        | "1.2.840.10008.1.2.4.92"
        | "1.2.840.10008.1.2.4.93" => "image/jp2",
        "1.2.840.10008.1.2.4.201" | "1.2.840.10008.1.2.4.202" | "1.2.840.10008.1.2.4.203" => {
            "image/jphc"
        }
        "1.2.840.10008.1.2.5" => "image/dicom-rle",
        _ => "application/octet-stream",
    }
}

/// How the frames of native pixel data lie in its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NativeFrames {
    /// Whole bytes: rows × columns × samples × bytes per sample each.
    Bytes(u64),
    /// Bits Allocated 1: this many samples (bits) each, frames one after
    /// another bit by bit (PS3.5 8.1.1), so a frame may start mid-byte.
    Bits(u64),
}

/// The frame layout of native pixel data with header `ds`: whole bytes
/// (Bits Allocated a multiple of 8) or bit-packed (Bits Allocated 1); other
/// Bits Allocated, or no dimensions, have no frames here.
fn native_frames(ds: &dicom_object::InMemDicomObject) -> Result<NativeFrames, ApiError> {
    let int = |t| ds.get(t).and_then(|e| e.to_int::<u64>().ok());
    let rows = int(tags::ROWS).unwrap_or(0);
    let cols = int(tags::COLUMNS).unwrap_or(0);
    let spp = int(tags::SAMPLES_PER_PIXEL).unwrap_or(1);
    let bits = int(tags::BITS_ALLOCATED).unwrap_or(0);
    let unavailable = || {
        ApiError::NotImplemented(
            "frames of this pixel data (Bits Allocated not 1 or a multiple of 8, or no dimensions) are not available"
                .into(),
        )
    };
    if rows == 0 || cols == 0 || spp == 0 || !(bits == 1 || (bits != 0 && bits % 8 == 0)) {
        return Err(unavailable());
    }
    let samples = rows
        .checked_mul(cols)
        .and_then(|n| n.checked_mul(spp))
        .ok_or_else(unavailable)?;
    if bits == 1 {
        return Ok(NativeFrames::Bits(samples));
    }
    samples
        .checked_mul(bits / 8)
        .map(NativeFrames::Bytes)
        .ok_or_else(unavailable)
}

/// Write one bit-packed frame as PS3.18 8.7.3.3.1 has uncompressed bulk
/// data carry it: `samples` bits, read from bit `bit` (0..8) of the bytes
/// `r` yields (the bytes the frame touches in the stored value), written
/// from bit 0 of the first byte, eight a byte, the first sample in the
/// least significant bit, the last byte's unused high bits 0 (the next
/// frame's bits are not sent). Packing and unpacking are obscura-pixels'
/// (`bits`); the frame goes through in pieces of `piece` bytes, never
/// whole.
fn write_packed_frame(
    r: &mut impl Read,
    bit: u64,
    samples: u64,
    w: &mut impl Write,
    piece: usize,
) -> Result<(), String> {
    let short = || "bit-packed pixel data shorter than its frames".to_string();
    let mut pending: Vec<u8> = Vec::with_capacity(piece + 1);
    let mut chunk = vec![0u8; piece.max(1)];
    let mut left = samples;
    while left > 0 {
        let got = match r.read(&mut chunk) {
            Ok(0) => return Err(short()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.to_string()),
        };
        pending.extend_from_slice(&chunk[..got]);
        let have = (pending.len() as u64 * 8).saturating_sub(bit).min(left);
        // whole bytes out until the last piece, so the pieces pack as one
        let take = if have == left { left } else { have / 8 * 8 };
        if take == 0 {
            continue;
        }
        let unpacked = bits::unpack(&pending, bit, take as usize).ok_or_else(short)?;
        w.write_all(&bits::pack(&unpacked))
            .map_err(|e| e.to_string())?;
        left -= take;
        // the next sample is at bit `bit` of byte take / 8 when take is a
        // multiple of 8; after the last piece nothing is left to read
        pending.drain(..((take / 8) as usize).min(pending.len()));
    }
    Ok(())
}

/// `GET .../instances/{instance}/frames/{list}`: frames by 1-based number,
/// as multipart/related parts in the order asked.
pub async fn frames(
    State(web): State<Arc<Web>>,
    Extension(principal): Extension<Principal>,
    Path((study, series, sop, list)): Path<(String, String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    uids(&[&study, &series, &sop])?;
    let wanted: Vec<u64> = list
        .split(',')
        .map(|n| n.trim().parse::<u64>().ok().filter(|n| *n >= 1))
        .collect::<Option<_>>()
        .ok_or_else(|| ApiError::BadRequest("frames are a list of numbers from 1".into()))?;
    if wanted.len() > 10_000 {
        return Err(ApiError::BadRequest(
            "too many frames in one request".into(),
        ));
    }
    let f = found(&web, &principal, &study, Some(&series), Some(&sop))
        .await?
        .remove(0);
    let (media, part_type) = frame_type(&headers, &f.ts)?;
    let view = lens_view(&web, &principal, &study)?;
    let (vault, tenant) = (Arc::clone(&web.vault), principal.tenant.clone());
    let sop_uid = f.sop.clone();
    let ts = f.ts.clone();
    let source = tokio::task::spawn_blocking(move || {
        let input = read_header(&vault, &tenant, &sop_uid).map_err(ApiError::Internal)?;
        let Some(px) = input.pixel else {
            return Err(ApiError::NotFound);
        };
        if view.is_some_and(|v| !v.shows_pixels(&input.dataset, true)) {
            return Err(ApiError::NotFound);
        }
        let n = input
            .dataset
            .get(tags::NUMBER_OF_FRAMES)
            .and_then(|e| e.to_int::<u32>().ok())
            .unwrap_or(1)
            .max(1);
        if px.declared_len.is_some() && NATIVE_DECODED.contains(&ts.as_str()) {
            // what the decoder will be asked for, checked before the answer
            // starts
            let info = ImageInfo::from_dataset(&input.dataset).map_err(pixel_error)?;
            if info.photometric == Photometric::YbrFull422 {
                return Err(ApiError::NotImplemented(
                    "frames of YBR_FULL_422 big-endian or deflated pixel data are not available"
                        .into(),
                ));
            }
            return Ok(FrameSource::Decoded(u64::from(n)));
        }
        let (runs, packed) = if px.declared_len.is_some() {
            match native_frames(&input.dataset)? {
                NativeFrames::Bytes(size) => (frames::native(&px, size, n), None),
                NativeFrames::Bits(samples) => (frames::packed(&px, samples, n), Some(samples)),
            }
        } else {
            // encapsulated frames (1-bit ones too) go out as stored, in
            // their transfer syntax's media type
            (frames::encapsulated(input.pixel_stream(), &px, n), None)
        };
        Ok(FrameSource::Stored(runs.map_err(pixel_error)?, packed))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("frames task: {e}")))??;
    if wanted.iter().any(|n| *n > source.frames()) {
        return Err(ApiError::NotFound);
    }
    let permit = acquire_stream(&web).await?;
    let (vault, tenant) = (Arc::clone(&web.vault), principal.tenant.clone());
    let boundary = new_boundary();
    let b = boundary.clone();
    let pt = part_type.clone();
    let body = stream(web.config.idle_timeout(), permit, move |w| {
        let mut r = vault
            .open_instance(&tenant, &f.sop)
            .map_err(|e| e.to_string())?;
        let (runs, packed) = match source {
            FrameSource::Stored(runs, packed) => (runs, packed),
            FrameSource::Decoded(_) => return write_decoded_frames(r, &wanted, &b, &pt, w),
        };
        for n in wanted {
            let run = &runs[n as usize - 1];
            let total: u64 = match packed {
                Some(samples) => samples.div_ceil(8),
                None => run.iter().map(|(_, l)| l).sum(),
            };
            frame_part_head(w, &b, &pt, total)?;
            for &(off, len) in run {
                // straight to the frame: only its segments are decrypted
                r.seek(SeekFrom::Start(off)).map_err(|e| e.to_string())?;
                let mut bytes = r.by_ref().take(len);
                match packed {
                    // PS3.18 8.7.3.3.1: a 1-bit frame on its own, from bit
                    // 0 of its first byte, padded to a byte (in the stored
                    // value, PS3.5 8.1.1, frames after the first may start
                    // and end mid-byte)
                    Some(samples) => {
                        let bit = (n - 1) * samples % 8;
                        write_packed_frame(&mut bytes, bit, samples, w, PACKED_PIECE)?;
                    }
                    None => copy(&mut bytes, w)?,
                }
            }
            w.write_all(b"\r\n").map_err(|e| e.to_string())?;
        }
        write!(w, "--{b}--\r\n").map_err(|e| e.to_string())
    });
    Ok(with_type(
        Body::new(body),
        &format!("multipart/related; type=\"{media}\"; boundary=\"{boundary}\""),
    ))
}

/// The boundary `b` and head of a frame's part, of content type `pt` and
/// `len` bytes.
fn frame_part_head(w: &mut ChannelWriter, b: &str, pt: &str, len: u64) -> Result<(), String> {
    write!(
        w,
        "--{b}\r\nContent-Type: {pt}\r\nContent-Length: {len}\r\n\r\n"
    )
    .map_err(|e| e.to_string())
}

/// Where the frames of an instance asked for come from.
enum FrameSource {
    /// Runs of the stored value, frame by frame (native little endian, or
    /// encapsulated), and the samples of a frame when bit-packed.
    Stored(Vec<frames::Runs>, Option<u64>),
    /// Decoded one at a time (native big endian or deflated: NATIVE_DECODED):
    /// how many frames there are.
    Decoded(u64),
}

impl FrameSource {
    /// How many frames there are.
    fn frames(&self) -> u64 {
        match self {
            FrameSource::Stored(runs, _) => runs.len() as u64,
            FrameSource::Decoded(n) => *n,
        }
    }
}

/// Frames `wanted` (from 1) of the instance `r`, decoded and written to `w`
/// as Explicit VR Little Endian holds them, each a part of content type `pt`
/// after boundary `b`, and the closing boundary.
fn write_decoded_frames(
    r: InstanceReader,
    wanted: &[u64],
    b: &str,
    pt: &str,
    w: &mut ChannelWriter,
) -> Result<(), String> {
    let len = r.len();
    let d = Decoder::open_reader(r, len, DecodeLimits::default()).map_err(|e| e.to_string())?;
    for &n in wanted {
        let frame = d.frame(n as u32 - 1).map_err(|e| e.to_string())?;
        let bytes = frame
            .to_stored_le_bytes(d.info())
            .ok_or("native YBR_FULL_422 frames are not served decoded")?;
        frame_part_head(w, b, pt, bytes.len() as u64)?;
        w.write_all(&bytes).map_err(|e| e.to_string())?;
        w.write_all(b"\r\n").map_err(|e| e.to_string())?;
    }
    write!(w, "--{b}--\r\n").map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bit `i` of `packed`, the first sample in the least significant bit,
    /// written out here independently of obscura-pixels.
    fn bit_at(packed: &[u8], i: u64) -> u8 {
        (packed[(i / 8) as usize] >> (i % 8)) & 1
    }

    /// Frame `k` of `samples` bits from `all`, on its own from bit 0 and
    /// padded with 0 bits to a byte.
    fn expected(all: &[u8], k: u64, samples: u64) -> Vec<u8> {
        let mut out = vec![0u8; samples.div_ceil(8) as usize];
        for i in 0..samples {
            out[(i / 8) as usize] |= bit_at(all, k * samples + i) << (i % 8);
        }
        out
    }

    #[test]
    fn bit_packed_frames_start_at_bit_0_and_are_padded_to_a_byte() {
        // three frames of 61 × 67 (frames 1 and 2 start mid-byte), and
        // three of 725 × 727 (65,885 bytes: more than one piece of 4 KiB,
        // and of the server's 64 KiB), every stored bit pseudo-random
        for samples in [61u64 * 67, 725 * 727, 64, 7] {
            let bytes = (3 * samples).div_ceil(8) as usize;
            let all: Vec<u8> = (0..bytes)
                .map(|i| (i as u32).wrapping_mul(2_654_435_761).rotate_left(13) as u8)
                .collect();
            for piece in [1usize, 3, 4096, PACKED_PIECE] {
                for k in 0..3u64 {
                    let (start, end) = (k * samples / 8, ((k + 1) * samples).div_ceil(8));
                    let run = &all[start as usize..end as usize];
                    let mut out = Vec::new();
                    let bit = k * samples % 8;
                    write_packed_frame(&mut &run[..], bit, samples, &mut out, piece).unwrap();
                    assert_eq!(out, expected(&all, k, samples), "{samples} {piece} {k}");
                }
            }
        }
    }

    #[test]
    fn a_short_bit_packed_frame_is_an_error_not_a_panic() {
        let mut out = Vec::new();
        let r = write_packed_frame(&mut &[0xFFu8; 3][..], 5, 24, &mut out, 2);
        assert!(r.is_err());
        assert!(write_packed_frame(&mut &[][..], 0, 1, &mut out, 4).is_err());
    }

    #[test]
    fn frame_layouts() {
        use dicom_core::{value::PrimitiveValue, DataElement, VR};
        let ds = |rows: u16, cols: u16, spp: u16, bits: u16| {
            dicom_object::InMemDicomObject::from_element_iter([
                DataElement::new(tags::ROWS, VR::US, PrimitiveValue::from(rows)),
                DataElement::new(tags::COLUMNS, VR::US, PrimitiveValue::from(cols)),
                DataElement::new(tags::SAMPLES_PER_PIXEL, VR::US, PrimitiveValue::from(spp)),
                DataElement::new(tags::BITS_ALLOCATED, VR::US, PrimitiveValue::from(bits)),
            ])
        };
        assert_eq!(
            native_frames(&ds(61, 67, 1, 1)).unwrap(),
            NativeFrames::Bits(4087)
        );
        assert_eq!(
            native_frames(&ds(4, 5, 3, 16)).unwrap(),
            NativeFrames::Bytes(120)
        );
        for bad in [
            ds(4, 5, 1, 12),
            ds(0, 5, 1, 8),
            ds(4, 5, 1, 0),
            ds(4, 5, 0, 8),
        ] {
            assert!(matches!(
                native_frames(&bad),
                Err(ApiError::NotImplemented(_))
            ));
        }
    }
}
