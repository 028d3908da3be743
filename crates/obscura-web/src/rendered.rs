//! Rendered resources and thumbnails (PS3.18 9.5, 10.4.1.1.3): one frame
//! decoded by `obscura-pixels`, windowed to 8 bits and sent as a single
//! image/jpeg (the default) or image/png body (or its one part, when
//! `Accept` asks for multipart/related, as OHIF's thumbnails do).
//!
//! - `.../instances/{i}/rendered`: the instance's first frame.
//! - `.../instances/{i}/frames/{list}/rendered`: the first frame of the
//!   list, as one image (what dicomweb-client and OHIF ask for; a list of
//!   several frames is not answered as a multipart of images).
//! - `.../thumbnail` of an instance, a series or a study: a representative
//!   instance, the middle one in (series, Instance Number) order, or the
//!   nearest with pixel data; scaled to fit 128 × 128 unless `viewport` says.
//!
//! Query parameters: `quality` (1–100, JPEG), `viewport=vw,vh` (fit within,
//! aspect kept), `window=center,width[,linear|linear_exact|sigmoid]`
//! (overrides the header's first window; without either, the frame's
//! range). Other PS3.18 parameters (`annotation`, `charset`, `iccprofile`)
//! are accepted and ignored. Decoding runs on the blocking pool, at most one
//! per core at a time; pixel data that cannot be decoded is a 422 (501 for
//! what is valid but unsupported) whose text ends with a reason code.

use crate::media::{new_boundary, parse_accept, MediaType};
use crate::wado::{found, uids, with_type, Found};
use crate::{ApiError, Principal, Web};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::Response;
use axum::Extension;
use obscura_pixels::{render, DecodeLimits, Decoder, PixelError, Window, MAX_VIEWPORT};
use std::sync::Arc;

/// The side a thumbnail fits in when no viewport is asked for.
const THUMBNAIL: u32 = 128;
/// Instances tried around the middle one for a thumbnail.
const CANDIDATES: usize = 8;
/// JPEG quality when none is asked for.
const QUALITY: u8 = 90;

type Params = Query<Vec<(String, String)>>;

/// The image format answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Jpeg,
    Png,
}

impl Format {
    fn media(self) -> &'static str {
        match self {
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
        }
    }
}

/// What a request asks for.
#[derive(Debug, Clone, Copy)]
struct Options {
    format: Format,
    /// Bare, or the one part of a multipart/related body.
    packaging: Packaging,
    quality: u8,
    viewport: Option<(u32, u32)>,
    window: Option<Window>,
}

/// How the image is packaged: a bare body, or the one part of a
/// multipart/related body of this `type`.
type Packaging = Option<&'static str>;

/// Negotiate the format: image/jpeg unless `Accept` prefers image/png, as
/// a bare body; or as the one part of a multipart/related answer when
/// that is what `Accept` asks for: `type` image/jpeg or image/png, or
/// application/octet-stream (the JPEG's bytes), which is what
/// dicomweb-client's JavaScript `retrieveBulkData` asks for when OHIF
/// fetches a thumbnail. Anything else is 406.
fn format(headers: &HeaderMap) -> Result<(Format, Packaging), ApiError> {
    const OCTETS: &str = "application/octet-stream";
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok((Format::Jpeg, None));
    };
    let mut ranges = parse_accept(accept)
        .ok_or_else(|| ApiError::BadRequest("malformed Accept header".into()))?;
    if ranges.is_empty() {
        return Ok((Format::Jpeg, None));
    }
    // highest quality first, the header's order among equals
    ranges.sort_by(|a, b| b.quality().total_cmp(&a.quality()));
    for r in &ranges {
        if r.essence == "multipart/related" {
            let inner = r.param("type").and_then(MediaType::parse);
            match inner.as_ref().map(|t| t.essence.as_str()) {
                Some(OCTETS) => return Ok((Format::Jpeg, Some(OCTETS))),
                Some(t) if MediaType::parse(t).is_some_and(|t| t.covers("image/jpeg")) => {
                    return Ok((Format::Jpeg, Some(Format::Jpeg.media())))
                }
                Some("image/png") => return Ok((Format::Png, Some(Format::Png.media()))),
                _ => continue,
            }
        }
        if r.covers("image/jpeg") {
            return Ok((Format::Jpeg, None));
        }
        if r.covers("image/png") {
            return Ok((Format::Png, None));
        }
    }
    Err(ApiError::NotAcceptable(
        "rendered images are available as image/jpeg or image/png".into(),
    ))
}

/// Read the query parameters.
fn options(
    headers: &HeaderMap,
    params: &[(String, String)],
    thumbnail: bool,
) -> Result<Options, ApiError> {
    let bad = |what: &str| ApiError::BadRequest(what.to_string());
    let (format, packaging) = format(headers)?;
    let mut o = Options {
        format,
        packaging,
        quality: QUALITY,
        viewport: thumbnail.then_some((THUMBNAIL, THUMBNAIL)),
        window: None,
    };
    for (k, v) in params {
        match k.as_str() {
            "quality" => {
                o.quality = v
                    .trim()
                    .parse()
                    .ok()
                    .filter(|q| (1..=100).contains(q))
                    .ok_or_else(|| bad("quality is a number from 1 to 100"))?;
            }
            "viewport" => {
                let sides: Vec<Option<u32>> = v.split(',').map(|s| s.trim().parse().ok()).collect();
                o.viewport = match sides[..] {
                    [Some(w), Some(h)]
                        if (1..=MAX_VIEWPORT).contains(&w) && (1..=MAX_VIEWPORT).contains(&h) =>
                    {
                        Some((w, h))
                    }
                    _ => {
                        return Err(bad(&format!(
                            "viewport is vw,vh (1 to {MAX_VIEWPORT}); cropping is not supported"
                        )))
                    }
                };
            }
            "window" => {
                o.window =
                    Some(Window::parse_query(v).ok_or_else(|| {
                        bad("window is center,width[,linear|linear_exact|sigmoid]")
                    })?);
            }
            _ => {}
        }
    }
    Ok(o)
}

/// How a pixel data failure is answered: the reason and its code, no values.
pub(crate) fn pixel_error(e: PixelError) -> ApiError {
    let msg = format!("pixel data: {e} ({})", e.code());
    match e {
        PixelError::NoSuchFrame { .. } => ApiError::NotFound,
        PixelError::Unsupported(_) => ApiError::NotImplemented(msg),
        PixelError::Read(_) | PixelError::Io(_) | PixelError::Encode(_) => ApiError::Internal(msg),
        _ => ApiError::Unprocessable(msg),
    }
}

/// Decode frame `frame` (from 0) of a stored instance and encode it.
fn render_one(
    web: &Web,
    principal: &Principal,
    f: &Found,
    frame: u32,
    o: Options,
) -> Result<Vec<u8>, PixelError> {
    let r = web
        .vault
        .open_instance(&principal.tenant, &f.sop)
        .map_err(|e| PixelError::Io(std::io::Error::other(e.to_string())))?;
    let len = r.len();
    let d = Decoder::open_reader(r, len, DecodeLimits::default())?;
    let mut img = render(&d.frame(frame)?, d.info(), o.window);
    if let Some((w, h)) = o.viewport {
        img = img.fit(w, h);
    }
    match o.format {
        Format::Jpeg => img.to_jpeg(o.quality),
        Format::Png => img.to_png(),
    }
}

/// Render on the blocking pool, one decode per core at a time: the first
/// of `candidates` (in order) that has pixel data to render.
async fn respond(
    web: Arc<Web>,
    principal: Principal,
    candidates: Vec<Found>,
    frame: u32,
    o: Options,
) -> Result<Response, ApiError> {
    let view = match candidates.first() {
        Some(f) => crate::wado::lens_view(&web, &principal, &f.study)?,
        None => None,
    };
    let sem = Arc::clone(&web.render_slots);
    let permit = tokio::time::timeout(std::time::Duration::from_secs(30), sem.acquire_owned())
        .await
        .map_err(|_| ApiError::Unavailable("too many images being rendered".into()))?
        .map_err(|_| ApiError::Unavailable("stopping".into()))?;
    let bytes = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut last = PixelError::NoPixelData;
        for f in &candidates {
            if let Some(v) = &view {
                // pixels a view withholds are not rendered either
                let input = crate::wado::read_header(&web.vault, &principal.tenant, &f.sop)
                    .map_err(|e| PixelError::Io(std::io::Error::other(e)))?;
                if !v.shows_pixels(&input.dataset, input.pixel.is_some()) {
                    continue;
                }
            }
            match render_one(&web, &principal, f, frame, o) {
                Ok(b) => return Ok(b),
                Err(e @ PixelError::NoPixelData) => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("render task: {e}")))?
    .map_err(pixel_error)?;
    let media = o.format.media();
    let Some(part_type) = o.packaging else {
        return Ok(with_type(Body::from(bytes), media));
    };
    let boundary = new_boundary();
    let mut body = format!(
        "--{boundary}\r\nContent-Type: {media}\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    )
    .into_bytes();
    body.extend_from_slice(&bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    Ok(with_type(
        Body::from(body),
        &format!("multipart/related; type=\"{part_type}\"; boundary=\"{boundary}\""),
    ))
}

/// The instances to try for a thumbnail: the middle one of the path in
/// (series, Instance Number) order, then its neighbours outwards.
fn representative(mut list: Vec<Found>) -> Vec<Found> {
    list.sort_by(|a, b| (&a.series, a.number, &a.sop).cmp(&(&b.series, b.number, &b.sop)));
    let mid = list.len() / 2;
    let mut order: Vec<usize> = (0..list.len()).collect();
    order.sort_by_key(|i| (i.abs_diff(mid), *i < mid));
    order
        .into_iter()
        .take(CANDIDATES)
        .map(|i| list[i].clone())
        .collect()
}

/// `GET .../instances/{instance}/rendered`.
pub async fn instance(
    State(web): State<Arc<Web>>,
    Extension(principal): Extension<Principal>,
    Path((study, series, sop)): Path<(String, String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    uids(&[&study, &series, &sop])?;
    let o = options(&headers, &params, false)?;
    let list = found(&web, &principal, &study, Some(&series), Some(&sop)).await?;
    respond(web, principal, list, 0, o).await
}

/// `GET .../instances/{instance}/frames/{list}/rendered`: the first frame
/// of the list.
pub async fn frames(
    State(web): State<Arc<Web>>,
    Extension(principal): Extension<Principal>,
    Path((study, series, sop, frames)): Path<(String, String, String, String)>,
    Query(params): Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    uids(&[&study, &series, &sop])?;
    let numbers: Vec<u32> = frames
        .split(',')
        .map(|n| n.trim().parse::<u32>().ok().filter(|n| *n >= 1))
        .collect::<Option<_>>()
        .ok_or_else(|| ApiError::BadRequest("frames are a list of numbers from 1".into()))?;
    let o = options(&headers, &params, false)?;
    let list = found(&web, &principal, &study, Some(&series), Some(&sop)).await?;
    respond(web, principal, list, numbers[0] - 1, o).await
}

/// `GET .../instances/{instance}/thumbnail`.
pub async fn instance_thumbnail(
    s: State<Arc<Web>>,
    p: Extension<Principal>,
    Path((study, series, sop)): Path<(String, String, String)>,
    q: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    uids(&[&study, &series, &sop])?;
    thumbnail(s, p, q, headers, &study, Some(&series), Some(&sop)).await
}

/// `GET /studies/{study}/series/{series}/thumbnail`.
pub async fn series_thumbnail(
    s: State<Arc<Web>>,
    p: Extension<Principal>,
    Path((study, series)): Path<(String, String)>,
    q: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    uids(&[&study, &series])?;
    thumbnail(s, p, q, headers, &study, Some(&series), None).await
}

/// `GET /studies/{study}/thumbnail`.
pub async fn study_thumbnail(
    s: State<Arc<Web>>,
    p: Extension<Principal>,
    Path(study): Path<String>,
    q: Params,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    uids(&[&study])?;
    thumbnail(s, p, q, headers, &study, None, None).await
}

async fn thumbnail(
    State(web): State<Arc<Web>>,
    Extension(principal): Extension<Principal>,
    Query(params): Params,
    headers: HeaderMap,
    study: &str,
    series: Option<&str>,
    sop: Option<&str>,
) -> Result<Response, ApiError> {
    let o = options(&headers, &params, true)?;
    let list = found(&web, &principal, study, series, sop).await?;
    respond(web, principal, representative(list), 0, o).await
}

/// Study and series rendered resources (every instance as a multipart of
/// images) are not offered.
pub async fn not_offered() -> ApiError {
    ApiError::NotImplemented(
        "rendered studies and series are not offered: ask for an instance's rendered resource or a thumbnail".into(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn formats_by_accept() {
        let f = |h: &HeaderMap| format(h).map_err(|_| ());
        assert_eq!(f(&HeaderMap::new()), Ok((Format::Jpeg, None)));
        assert_eq!(f(&accept("*/*")), Ok((Format::Jpeg, None)));
        assert_eq!(f(&accept("image/png")), Ok((Format::Png, None)));
        assert_eq!(
            f(&accept("image/png, image/jpeg;q=0.5")),
            Ok((Format::Png, None))
        );
        assert_eq!(
            f(&accept("image/png;q=0.4, image/jpeg")),
            Ok((Format::Jpeg, None))
        );
        assert_eq!(f(&accept("image/*")), Ok((Format::Jpeg, None)));
        assert_eq!(
            f(&accept("multipart/related; type=\"image/jpeg\"")),
            Ok((Format::Jpeg, Some("image/jpeg")))
        );
        assert_eq!(
            f(&accept(
                "multipart/related; type=\"application/octet-stream\""
            )),
            Ok((Format::Jpeg, Some("application/octet-stream")))
        );
        for refused in [
            "image/gif",
            "application/dicom",
            "application/octet-stream",
            "multipart/related; type=\"application/dicom\"",
        ] {
            assert!(
                matches!(format(&accept(refused)), Err(ApiError::NotAcceptable(_))),
                "{refused}"
            );
        }
    }

    #[test]
    fn query_parameters() {
        let h = HeaderMap::new();
        let p = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        let o = options(&h, &p("viewport", "64,32"), false).unwrap();
        assert_eq!(o.viewport, Some((64, 32)));
        assert_eq!(options(&h, &[], true).unwrap().viewport, Some((128, 128)));
        assert_eq!(options(&h, &[], false).unwrap().viewport, None);
        assert_eq!(options(&h, &p("quality", "55"), false).unwrap().quality, 55);
        assert!(options(&h, &p("window", "40,400,sigmoid"), false)
            .unwrap()
            .window
            .is_some());
        assert!(options(&h, &p("annotation", "patient"), false).is_ok());
        for (k, v) in [
            ("quality", "0"),
            ("quality", "101"),
            ("viewport", "0,10"),
            ("viewport", "10,10,0,0,5,5"),
            ("viewport", "99999,10"),
            ("window", "40"),
        ] {
            assert!(
                matches!(options(&h, &p(k, v), false), Err(ApiError::BadRequest(_))),
                "{k}={v}"
            );
        }
    }

    #[test]
    fn the_middle_instance_first() {
        let f = |series: &str, n: i64| Found {
            study: "1".into(),
            series: series.into(),
            sop: format!("{series}.{n}"),
            ts: String::new(),
            number: Some(n),
            patient: String::new(),
        };
        let list = vec![f("2", 1), f("1", 3), f("1", 1), f("1", 2), f("2", 2)];
        let order: Vec<String> = representative(list).into_iter().map(|f| f.sop).collect();
        assert_eq!(order, ["1.3", "2.1", "1.2", "2.2", "1.1"]);
    }
}
