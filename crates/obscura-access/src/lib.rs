//! Who is calling and what they may do. Principals come from OAuth 2.0 /
//! OIDC bearer JWTs ([`jwt`]) — or, decided by the caller, from client
//! certificates and opaque tokens —; grants ([`grant`]) bind a principal to
//! one tenant, some or all of its studies, some actions and a view, until
//! an expiry; [`store`] keeps them durably; [`Policy`] folds the live ones
//! into an [`Access`], the decision every request asks. Default deny: no
//! grant, nothing reachable.
//!
//! No HTTP server, no DIMSE, no other Obscura crate: the web layer
//! (`obscura-web`) asks, this crate answers.

#![warn(missing_docs)]

pub mod decide;
pub mod grant;
mod jwks;
pub mod jwt;
pub mod link;
pub mod policy;
pub mod store;
pub mod time;

pub use decide::{Access, NoAccess, Studies};
pub use grant::{Action, Actions, Grant, GrantError, NewGrant, Scope, StudyQuery, View};
pub use jwt::{IssuerConfig, JwtValidator, TokenError, Verified};
pub use policy::{GrantConfig, Policy, QueryResolver, Refusal};
pub use store::{GrantStore, PgStore, SealKey, SqliteStore, StoreError};

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
