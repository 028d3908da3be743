//! What a handler knows of a request beyond its path and query: the
//! server, who asks (authenticated by the gate), over which connection,
//! and the request's headers. One extractor for the handlers that need
//! all four.

use crate::{Peer, Principal, Web};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::HeaderMap;
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
