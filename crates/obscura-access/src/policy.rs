//! The grants in force: static ones from the serve config and the store's,
//! asked on every request (a revocation holds from the next request on).

use crate::decide::{Access, NoAccess};
use crate::grant::{Actions, Grant, GrantError, NewGrant, Scope, View};
use crate::store::{GrantStore, StoreError};
use serde::Deserialize;
use std::sync::Arc;

/// `[[web.grant]]`: a grant fixed in the config (changed by editing the
/// config and restarting; its tokens can still be revoked by `jti`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantConfig {
    /// The principal (`[[web.principal]]` name, or `<issuer>:<subject>`).
    pub principal: String,
    /// The tenant's name or id.
    pub tenant: String,
    /// Study Instance UIDs; leave out and set `whole_tenant = true` for every study.
    #[serde(default)]
    pub studies: Vec<String>,
    /// Every study of the tenant.
    #[serde(default)]
    pub whole_tenant: bool,
    /// `search`, `read`, `write`.
    pub actions: Vec<String>,
    /// `original`, `deidentified` or `deidentified:PROFILE`.
    #[serde(default = "original")]
    pub view: String,
    /// RFC 3339 instant or date after which it no longer holds.
    pub expires: Option<String>,
}

fn original() -> String {
    "original".into()
}

impl GrantConfig {
    /// The grant, with the tenant resolved to its id by `tenant_id`.
    pub fn compile(&self, tenant_id: &str) -> Result<NewGrant, GrantError> {
        let scope = match (self.whole_tenant, self.studies.is_empty()) {
            (true, true) => Scope::Tenant,
            (false, false) => Scope::studies(&self.studies)?,
            _ => {
                return Err(GrantError::Invalid(
                    "a grant names studies or sets whole_tenant = true (one of the two)".into(),
                ))
            }
        };
        let expires = match &self.expires {
            Some(e) => Some(crate::time::parse(e).ok_or_else(|| {
                GrantError::Invalid("expires is an RFC 3339 instant or a date".into())
            })?),
            None => None,
        };
        let g = NewGrant {
            principal: self.principal.clone(),
            tenant: tenant_id.to_string(),
            scope,
            actions: Actions::parse(self.actions.iter().map(String::as_str))?,
            view: View::parse(&self.view)?,
            expires,
        };
        g.check()?;
        Ok(g)
    }
}

/// Why a request has no access (the code goes to the audit log).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// No live grant, or grants in several tenants.
    #[error("{0}")]
    NoAccess(#[from] NoAccess),
    /// The token's `jti` was revoked.
    #[error("token revoked")]
    TokenRevoked,
    /// The store could not be asked (refused, fail closed).
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl Refusal {
    /// A short machine code for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoAccess(NoAccess::NoGrant) => "no-grant",
            Refusal::NoAccess(NoAccess::SeveralTenants) => "grants-in-several-tenants",
            Refusal::TokenRevoked => "token-revoked",
            Refusal::Store(_) => "grant-store-unavailable",
        }
    }
}

/// Static grants and the store.
pub struct Policy {
    fixed: Vec<Grant>,
    store: Option<Arc<dyn GrantStore>>,
}

impl Policy {
    /// Static grants (ids `static:1`, `static:2`... in config order) and
    /// the store, if there is one.
    pub fn new(fixed: Vec<NewGrant>, store: Option<Arc<dyn GrantStore>>) -> Policy {
        let fixed = fixed
            .into_iter()
            .enumerate()
            .map(|(i, grant)| Grant {
                id: format!("static:{}", i + 1),
                grant,
                created: 0,
                revoked: None,
            })
            .collect();
        Policy { fixed, store }
    }

    /// What `principal` may do at `now`, having shown a token with `jti`
    /// (if any): the union of its live grants, or a refusal.
    pub fn access(&self, principal: &str, jti: Option<&str>, now: i64) -> Result<Access, Refusal> {
        let mut grants: Vec<Grant> = self
            .fixed
            .iter()
            .filter(|g| g.grant.principal == principal)
            .cloned()
            .collect();
        if let Some(store) = &self.store {
            if let Some(jti) = jti {
                if store.token_revoked(jti)? {
                    return Err(Refusal::TokenRevoked);
                }
            }
            grants.extend(store.live(principal, now)?);
        }
        Ok(Access::from_grants(grants, now)?)
    }
}
