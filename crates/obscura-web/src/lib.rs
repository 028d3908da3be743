//! DICOMweb (PS3.18) over the vault: STOW-RS, QIDO-RS and WADO-RS, every
//! route behind authentication (`auth`), each principal confined to its
//! tenant. This crate knows HTTP and the DICOM JSON model, not DIMSE; the
//! vault does the storing, encrypting and searching.
//!
//! Start at [`WebServer`]: built from the `[web]` config section and an
//! open [`Vault`], it binds a listener (TLS with optional client
//! certificates, or plain HTTP on loopback when the config says so) and
//! serves until told to stop. Routes are in [`router`]; `stow`, `qido`,
//! `wado` and `rendered` hold the transactions.

#![warn(missing_docs)]

pub mod audit;
pub mod auth;
pub mod body;
pub mod caller;
pub mod config;
pub mod gate;
pub mod json;
pub mod media;
pub mod multipart;
pub mod qido;
pub mod rendered;
pub mod server;
pub mod source;
pub mod stow;
pub mod view;
pub mod wado;

pub use auth::{Authenticator, Peer, Principal};
pub use config::{ConfigError, WebConfig};
pub use server::WebServer;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use obscura_vault::{Vault, VaultError};
use std::path::PathBuf;
use std::sync::Arc;

/// Bytes of single-instance responses held whole in memory at once.
const WHOLE_BUDGET: usize = 64 << 20;

/// The shared state of the routes.
pub struct Web {
    /// The archive.
    pub vault: Arc<Vault>,
    /// Who may call.
    pub auth: Authenticator,
    /// The `[web]` section.
    pub config: WebConfig,
    /// Where STOW-RS requests are spooled.
    pub temp_dir: PathBuf,
    /// Bounds the blocking threads that stream responses out of the vault.
    pub stream_slots: Arc<tokio::sync::Semaphore>,
    /// Bytes of single-instance responses held whole in memory at once
    /// (all requests together; beyond it they stream).
    pub whole_budget: Arc<tokio::sync::Semaphore>,
    /// Bounds the frames decoded at once for rendered images (one per core).
    pub render_slots: Arc<tokio::sync::Semaphore>,
    /// The audit log, when on (set once, before serving).
    pub audit: std::sync::OnceLock<Arc<obscura_audit::Auditor>>,
    /// The de-identified views of grants, built on first use.
    pub views: view::Views,
}

impl Web {
    /// The state for `config` over `vault` (principals resolved against
    /// its tenants), with the config's grants only.
    pub fn new(config: WebConfig, vault: Arc<Vault>) -> Result<Web, ConfigError> {
        Web::with_grants(config, vault, None)
    }

    /// [`new`](Self::new), with the grants of `store` too.
    pub fn with_grants(
        config: WebConfig,
        vault: Arc<Vault>,
        store: Option<Arc<dyn obscura_access::GrantStore>>,
    ) -> Result<Web, ConfigError> {
        let auth = Authenticator::new(&config, &vault, store)?;
        let temp_dir = config.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
        Ok(Web {
            vault,
            auth,
            config,
            temp_dir,
            stream_slots: Arc::new(tokio::sync::Semaphore::new(32)),
            whole_budget: Arc::new(tokio::sync::Semaphore::new(WHOLE_BUDGET)),
            render_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )),
            audit: std::sync::OnceLock::new(),
            views: view::Views::default(),
        })
    }
}

/// A request that cannot be served, as an HTTP status and a message that
/// names no value from the data.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    /// 400.
    #[error("{0}")]
    BadRequest(String),
    /// 404.
    #[error("not found")]
    NotFound,
    /// 406.
    #[error("{0}")]
    NotAcceptable(String),
    /// 408: the client stopped sending.
    #[error("the request body stalled")]
    Timeout,
    /// 413.
    #[error("{0}")]
    TooLarge(String),
    /// 415.
    #[error("{0}")]
    UnsupportedMedia(String),
    /// 422: the request is understood but its object cannot be served so
    /// (pixel data that cannot be decoded).
    #[error("{0}")]
    Unprocessable(String),
    /// 501.
    #[error("{0}")]
    NotImplemented(String),
    /// 503: the server is busy or stopping.
    #[error("{0}")]
    Unavailable(String),
    /// 500 (details are logged, not sent).
    #[error("internal error")]
    Internal(String),
}

impl From<VaultError> for ApiError {
    fn from(e: VaultError) -> Self {
        match e {
            VaultError::NotFound => ApiError::NotFound,
            VaultError::InvalidQuery(a, why) => ApiError::BadRequest(format!("{a}: {why}")),
            e => ApiError::Internal(format!("vault: {e}")),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::Timeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMedia(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(detail) => {
                log::warn!("web: internal error: {detail}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut r = (status, format!("{self}\n")).into_response();
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        r
    }
}

/// A share link's token, taken from the request path (`/share/<token>/...`)
/// before routing.
#[derive(Debug, Clone)]
pub struct ShareLink(pub String);

/// `/share/<token>/rest` routed as `/rest`, the token kept as a
/// [`ShareLink`] for [`authenticate`]: a share link's URL is the DICOMweb
/// root of what it shares.
fn share_prefix(mut req: Request) -> Request {
    req.extensions_mut().remove::<ShareLink>();
    let Some(rest) = req.uri().path().strip_prefix("/share/") else {
        return req;
    };
    let (token, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let (token, tail) = (token.to_string(), tail.to_string());
    let path = match req.uri().query() {
        Some(q) => format!("/{tail}?{q}"),
        None => format!("/{tail}"),
    };
    let mut parts = req.uri().clone().into_parts();
    match path.parse() {
        Ok(p) => parts.path_and_query = Some(p),
        Err(_) => return req,
    }
    if let Ok(uri) = axum::http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
        req.extensions_mut().insert(ShareLink(token));
    }
    req
}

/// All routes, behind [`authenticate`]; share links' paths too.
pub fn router(web: Arc<Web>) -> Router {
    use tower::ServiceExt;
    // share links' prefix first, then the principal and its UIDs mapped back, then the routes
    let mapped = Router::new()
        .fallback_service(routes(Arc::clone(&web)))
        .layer(axum::middleware::from_fn_with_state(web, authenticate));
    Router::new().fallback_service(mapped.map_request(share_prefix))
}

/// The routes.
fn routes(web: Arc<Web>) -> Router {
    let not_offered = || get(rendered::not_offered);
    Router::new()
        .route("/studies", post(stow::stow_any).get(qido::studies))
        .route("/series", get(qido::all_series))
        .route("/instances", get(qido::all_instances))
        .route("/studies/{study}", post(stow::stow_study).get(wado::study))
        .route("/studies/{study}/metadata", get(wado::study_metadata))
        .route("/studies/{study}/rendered", not_offered())
        .route("/studies/{study}/thumbnail", get(rendered::study_thumbnail))
        .route("/studies/{study}/series", get(qido::study_series))
        .route("/studies/{study}/instances", get(qido::study_instances))
        .route("/studies/{study}/series/{series}", get(wado::series))
        .route(
            "/studies/{study}/series/{series}/metadata",
            get(wado::series_metadata),
        )
        .route("/studies/{study}/series/{series}/rendered", not_offered())
        .route(
            "/studies/{study}/series/{series}/thumbnail",
            get(rendered::series_thumbnail),
        )
        .route(
            "/studies/{study}/series/{series}/instances",
            get(qido::series_instances),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}",
            get(wado::instance),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/metadata",
            get(wado::instance_metadata),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/rendered",
            get(rendered::instance),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/thumbnail",
            get(rendered::instance_thumbnail),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}",
            get(wado::frames),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/frames/{frames}/rendered",
            get(rendered::frames),
        )
        .route(
            "/studies/{study}/series/{series}/instances/{instance}/bulkdata/{*path}",
            get(wado::bulkdata),
        )
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&web),
            gate_layer,
        ))
        .with_state(web)
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

/// Who a request is, decided by [`authenticate`] before routing and read
/// by [`gate_layer`] after it.
#[derive(Clone)]
enum Authn {
    /// A principal, and why its request's UIDs could not be mapped back, if so.
    Principal(Principal, Option<ApiError>),
    /// Refused credentials.
    Refused(auth::Refused),
}

/// Before routing: every request needs a principal (see [`auth`]); under
/// a de-identified view its pseudonymous UIDs are mapped back to the
/// tenant's (`view`), so the router, the gate and the handlers see the
/// tenant's UIDs only. The outcome goes on to [`gate_layer`].
pub async fn authenticate(State(web): State<Arc<Web>>, mut req: Request, next: Next) -> Response {
    let Some(peer) = req.extensions().get::<Peer>().cloned() else {
        return ApiError::Internal("a request without its connection".into()).into_response();
    };
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes().to_vec());
    let link = req.extensions().get::<ShareLink>().map(|l| l.0.clone());
    let decided = match web
        .auth
        .owner(&peer, authorization.as_deref(), link.as_deref())
    {
        // a tenant's owner by static credentials: decided here, no hand-off
        Some(principal) => Ok(principal),
        None => {
            let w = Arc::clone(&web);
            let p = peer.clone();
            // the grant store and the index may be a network away: not on the runtime's threads
            let decided = tokio::task::spawn_blocking(move || {
                let vault = Arc::clone(&w.vault);
                w.auth.authenticate(
                    &p,
                    authorization.as_deref(),
                    link.as_deref(),
                    &|tenant, q| resolve_query(&vault, tenant, q),
                )
            })
            .await;
            match decided {
                Ok(d) => d,
                Err(e) => return ApiError::Internal(format!("access task: {e}")).into_response(),
            }
        }
    };
    let outcome = match decided {
        Err(refused) => Authn::Refused(refused),
        Ok(principal) => {
            let unmapped = if view::Lens::new(&web, &principal.access, &principal.tenant).active() {
                let (w, p) = (Arc::clone(&web), principal.clone());
                let (path, query) = (
                    req.uri().path().to_string(),
                    req.uri().query().map(str::to_string),
                );
                let mapped = tokio::task::spawn_blocking(move || {
                    view::Lens::new(&w, &p.access, &p.tenant).request_uri(&path, query.as_deref())
                })
                .await
                .unwrap_or_else(|e| Err(ApiError::Internal(format!("view task: {e}"))));
                match mapped.and_then(|u| {
                    u.parse::<axum::http::Uri>()
                        .map_err(|_| ApiError::BadRequest("malformed request path".into()))
                }) {
                    Ok(uri) => {
                        *req.uri_mut() = uri;
                        None
                    }
                    Err(e) => Some(e),
                }
            } else {
                None
            };
            Authn::Principal(principal, unmapped)
        }
    };
    req.extensions_mut().insert(outcome);
    next.run(req).await
}

/// After routing, the one gate: a principal whose access allows the route
/// on its study ([`gate`]), within its quotas. The principal goes into the
/// request's extensions for the handlers; a refusal is a 401 with
/// `WWW-Authenticate` (403 for a principal without any grant), audited in
/// the log; a study outside the grants (or a pseudonym that maps to none)
/// is 404, as if absent. With the audit log on, every request is recorded
/// (`audit`).
pub async fn gate_layer(State(web): State<Arc<Web>>, mut req: Request, next: Next) -> Response {
    let (Some(peer), Some(outcome)) = (
        req.extensions().get::<Peer>().cloned(),
        req.extensions_mut().remove::<Authn>(),
    ) else {
        return ApiError::Internal("a request without its connection".into()).into_response();
    };
    let route = audit::route_kind(&req);
    match outcome {
        Authn::Principal(principal, unmapped) => {
            let pattern = req
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|m| m.as_str().to_string());
            let gated = match unmapped {
                None => gate::check(
                    req.method(),
                    pattern.as_deref(),
                    req.uri().path(),
                    &principal.access,
                ),
                Some(ApiError::NotFound) => Err(gate::Closed::Study),
                Some(e) => {
                    let r = e.into_response();
                    if let Some(a) = web.audit.get() {
                        audit::request(a, &peer, &principal, &route, r.status());
                    }
                    return r;
                }
            };
            let checked = match gated {
                Ok(()) => {
                    charge(
                        &web,
                        &principal,
                        req.method(),
                        pattern.as_deref(),
                        req.uri().path(),
                    )
                    .await
                }
                closed => closed,
            };
            if let Err(closed) = checked {
                if let Some(a) = web.audit.get() {
                    audit::not_granted(a, &peer, &principal, &route, closed);
                }
                log::warn!(
                    "audit: web request {} by {} from {} denied: {} ({route})",
                    req.method(),
                    principal.name,
                    peer.addr,
                    closed.code()
                );
                return match closed {
                    gate::Closed::Study => ApiError::NotFound.into_response(),
                    gate::Closed::Action => {
                        (StatusCode::FORBIDDEN, "not granted\n").into_response()
                    }
                    gate::Closed::Quota => {
                        (StatusCode::TOO_MANY_REQUESTS, "daily study quota used up\n")
                            .into_response()
                    }
                };
            }
            req.extensions_mut().insert(principal.clone());
            let r = next.run(req).await;
            if let Some(a) = web.audit.get() {
                audit::request(a, &peer, &principal, &route, r.status());
            }
            r
        }
        Authn::Refused(refused) => {
            let denied = refused.denied;
            if let Some(a) = web.audit.get() {
                audit::auth_failure(a, &peer, &route, &refused);
            }
            log::warn!(
                "audit: rejected web request {} from {} ({}{}{}): {}",
                req.method(),
                peer.addr,
                if peer.tls { "tls" } else { "plain" },
                peer.cert_sha256
                    .map(|h| format!(", client certificate sha256 {}", hex(&h[..8])))
                    .unwrap_or_default(),
                refused
                    .principal
                    .as_ref()
                    .map(|p| format!(", principal {p}"))
                    .unwrap_or_default(),
                denied.reason()
            );
            match denied.status() {
                403 => (StatusCode::FORBIDDEN, "not granted\n").into_response(),
                503 => ApiError::Unavailable("access cannot be decided now".into()).into_response(),
                _ => {
                    let challenge = match denied {
                        auth::Denied::BadToken
                        | auth::Denied::Jwt(_)
                        | auth::Denied::TokenRevoked
                        | auth::Denied::BadLink => {
                            "Bearer realm=\"obscura\", error=\"invalid_token\""
                        }
                        _ => "Bearer realm=\"obscura\"",
                    };
                    let mut r =
                        (StatusCode::UNAUTHORIZED, "authentication required\n").into_response();
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static(challenge),
                    );
                    r
                }
            }
        }
    }
}

/// A read of a study (a GET naming one, not a search) counted against the
/// daily quotas that cover it; [`gate::Closed::Quota`] when they are used up.
async fn charge(
    web: &Arc<Web>,
    principal: &Principal,
    method: &axum::http::Method,
    pattern: Option<&str>,
    path: &str,
) -> Result<(), gate::Closed> {
    let (Some(pattern), Some(study)) = (pattern, gate::study(path)) else {
        return Ok(());
    };
    if gate::action(method, pattern) != obscura_access::Action::Read
        || principal.access.quotas(study).is_none()
    {
        return Ok(());
    }
    let (w, p, s) = (Arc::clone(web), principal.clone(), study.to_string());
    match tokio::task::spawn_blocking(move || w.auth.charge(&p, &s)).await {
        Ok(Ok(true)) => Ok(()),
        Ok(Ok(false)) => Err(gate::Closed::Quota),
        Ok(Err(e)) => {
            log::warn!("web: {e}");
            Err(gate::Closed::Quota)
        }
        Err(e) => {
            log::warn!("web: quota task: {e}");
            Err(gate::Closed::Quota)
        }
    }
}

/// The studies of `tenant` a query scope matches now, asked of the index
/// (study level; values in QIDO syntax).
fn resolve_query(
    vault: &Vault,
    tenant: &str,
    q: &obscura_access::StudyQuery,
) -> Result<std::collections::BTreeSet<String>, String> {
    use obscura_vault::{Attr, Level, Query};
    let tenant = obscura_vault::TenantId::parse(tenant).ok_or("not a tenant id")?;
    let mut query = Query::new(Level::Study);
    for (keyword, value) in q.keys() {
        let attr = Attr::ALL
            .iter()
            .find(|a| a.keyword() == keyword && a.level() == Level::Study)
            .ok_or_else(|| format!("{keyword} is not a study attribute"))?;
        query = query.with(*attr, value);
    }
    let found = vault.search(&tenant, &query).map_err(|e| e.to_string())?;
    Ok(found
        .iter()
        .filter_map(|a| a.get(Attr::StudyInstanceUID))
        .map(str::to_string)
        .collect())
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A UID from a request path: 1 to 64 digits and dots, no empty component.
pub(crate) fn check_uid(s: &str) -> Result<&str, ApiError> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.split('.').all(|c| !c.is_empty());
    if ok {
        Ok(s)
    } else {
        Err(ApiError::BadRequest(
            "invalid UID in the request path".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_in_paths() {
        assert!(check_uid("1.2.840.10008.1.2").is_ok());
        for bad in [
            "",
            "..",
            "../etc",
            "1..2",
            "1.2.",
            ".1",
            "1/2",
            "1.2a",
            &"1".repeat(65),
        ] {
            assert!(check_uid(bad).is_err(), "{bad}");
        }
    }
}
