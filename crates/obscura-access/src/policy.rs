//! The grants in force: static ones from the serve config and the store's,
//! asked on every request (a revocation holds from the next request on).

use crate::decide::{Access, NoAccess};
use crate::grant::{Actions, Grant, GrantError, NewGrant, Scope, StudyQuery, View};
use crate::store::{GrantStore, StoreError};
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The studies of a tenant (its id) that a query scope matches now (the
/// index answers); an error says why it could not be asked.
pub type QueryResolver<'a> = &'a dyn Fn(&str, &StudyQuery) -> Result<BTreeSet<String>, String>;

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
    /// The studies of this label of the tenant (`obscura label`).
    pub label: Option<String>,
    /// The studies whose attributes match these QIDO keys
    /// (ModalitiesInStudy, StudyDate, ReferringPhysicianName,
    /// AccessionNumber, StudyDescription).
    pub query: Option<BTreeMap<String, String>>,
    /// At most this many distinct studies read per UTC day.
    pub quota: Option<u32>,
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
        let scope = match (
            self.whole_tenant,
            self.studies.is_empty(),
            &self.label,
            &self.query,
        ) {
            (true, true, None, None) => Scope::Tenant,
            (false, false, None, None) => Scope::studies(&self.studies)?,
            (false, true, Some(l), None) => Scope::label(l)?,
            (false, true, None, Some(q)) => Scope::Query(StudyQuery::new(q)?),
            _ => {
                return Err(GrantError::Invalid(
                    "a grant names studies, a label or a query, or sets whole_tenant = true (one of them)"
                        .into(),
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
            quota: self.quota,
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
    /// A query scope could not be resolved (refused, fail closed).
    #[error("query scope: {0}")]
    Query(String),
    /// A share link that names no link, or whose secret is wrong.
    #[error("not a share link")]
    BadLink,
}

impl Refusal {
    /// A short machine code for the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::NoAccess(NoAccess::NoGrant) => "no-grant",
            Refusal::NoAccess(NoAccess::SeveralTenants) => "grants-in-several-tenants",
            Refusal::TokenRevoked => "token-revoked",
            Refusal::Store(_) => "grant-store-unavailable",
            Refusal::Query(_) => "query-scope-unresolved",
            Refusal::BadLink => "invalid-share-link",
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
    /// (if any): the union of its live grants, labels and queries resolved
    /// now (queries by `queries`), or a refusal.
    pub fn access(
        &self,
        principal: &str,
        jti: Option<&str>,
        now: i64,
        queries: QueryResolver<'_>,
    ) -> Result<Access, Refusal> {
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
        let mut access = Access::from_grants(grants, now)?;
        let tenant = access.tenant().to_string();
        access.resolve(|scope| match (scope, &self.store) {
            (Scope::Label(l), Some(store)) => Ok(store.label(&tenant, l)?),
            (Scope::Query(q), _) => queries(&tenant, q).map_err(Refusal::Query),
            _ => Ok(BTreeSet::new()),
        })?;
        Ok(access)
    }

    /// The principal a share link's token proves (`share:<grant id>`), if
    /// its secret is right; what it may do is then [`access`](Self::access).
    pub fn link(&self, token: &str) -> Result<String, Refusal> {
        let (id, secret) = crate::link::parse(token).ok_or(Refusal::BadLink)?;
        let store = self.store.as_ref().ok_or(Refusal::BadLink)?;
        let stored = store.link_secret(id)?.ok_or(Refusal::BadLink)?;
        if !crate::link::verify(secret, &stored) {
            return Err(Refusal::BadLink);
        }
        Ok(crate::link::principal(id))
    }

    /// Count a read of `study` against the daily quotas of `access`'s
    /// grants that cover it: true if it may go on (no quota applies, or
    /// one has room), false if every covering quota is used up. Without a
    /// store a quota cannot be counted, and the read is refused.
    pub fn charge(&self, access: &Access, study: &str, now: i64) -> Result<bool, Refusal> {
        let Some(quotas) = access.quotas(study) else {
            return Ok(true);
        };
        let Some(store) = &self.store else {
            return Ok(false);
        };
        for (id, quota) in quotas {
            if store.charge(id, study, quota, now)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}
