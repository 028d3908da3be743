//! What a handler knows of a request beyond its path and query: the
//! server, who asks (authenticated by the gate), over which connection,
//! and the request's headers. One extractor for the handlers that need
//! all four (searches, metadata, STOW), and the base URL their answers'
//! links start with.

use crate::{Peer, Principal, Web};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use std::sync::Arc;

/// The server, the principal, its connection and its request's headers.
pub struct Caller {
    /// The server.
    pub web: Arc<Web>,
    /// Who asks.
    pub principal: Principal,
    /// The connection it asks over.
    pub peer: Peer,
    /// The request's headers.
    pub headers: HeaderMap,
}

impl Caller {
    /// The base URL the client used (scheme from the connection, authority
    /// from `Host` when it is a plain host[:port]) and the path prefix it
    /// came under (a share link's `/share/<token>`).
    pub fn base_url(&self) -> String {
        let scheme = if self.peer.tls { "https" } else { "http" };
        let host = self
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                !h.is_empty()
                    && h.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            })
            .map(str::to_string)
            .unwrap_or_else(|| self.web.config.listen.to_string());
        format!("{scheme}://{host}{}", self.principal.base_path)
    }
}

impl FromRequestParts<Arc<Web>> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, web: &Arc<Web>) -> Result<Self, Response> {
        let Extension(principal) = Extension::<Principal>::from_request_parts(parts, web)
            .await
            .map_err(IntoResponse::into_response)?;
        let Extension(peer) = Extension::<Peer>::from_request_parts(parts, web)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Caller {
            web: Arc::clone(web),
            principal,
            peer,
            headers: parts.headers.clone(),
        })
    }
}
