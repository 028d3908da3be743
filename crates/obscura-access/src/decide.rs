//! The decision: a principal's live grants folded into what one request
//! may do. Default deny: no grant, no access; a study outside every grant
//! is as absent as one that does not exist.

use crate::grant::{Action, Grant, Scope, View};

use std::collections::BTreeSet;

/// Why a principal has no access at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoAccess {
    /// No live grant names it.
    #[error("no live grant")]
    NoGrant,
    /// Its live grants name more than one tenant (a principal acts for one).
    #[error("live grants in more than one tenant")]
    SeveralTenants,
}

/// The studies an action may reach.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Studies {
    /// Every study of the tenant.
    All,
    /// These only (possibly none).
    Only(BTreeSet<String>),
}

impl Studies {
    /// Whether `study` is among them.
    pub fn contains(&self, study: &str) -> bool {
        match self {
            Studies::All => true,
            Studies::Only(s) => s.contains(study),
        }
    }
}

/// What one principal may do, for one request: its tenant and its live
/// grants (or the whole tenant, for an owner principal of the config).
/// Label and query scopes reach nothing until [`resolve`](Self::resolve)d.
#[derive(Debug, Clone)]
pub struct Access {
    tenant: String,
    grants: Vec<Grant>,
    owner: bool,
    /// Per grant, the studies its label or query scope resolved to.
    resolved: Vec<Option<BTreeSet<String>>>,
}

impl Access {
    /// Everything in `tenant`: a `[[web.principal]]` bound to a tenant in
    /// the config (the tenant's own systems; not for third parties).
    pub fn owner(tenant: &str) -> Access {
        Access {
            tenant: tenant.to_string(),
            grants: Vec::new(),
            owner: true,
            resolved: Vec::new(),
        }
    }

    /// Fold the grants that hold at `now`; none is [`NoAccess::NoGrant`].
    pub fn from_grants(grants: Vec<Grant>, now: i64) -> Result<Access, NoAccess> {
        let live: Vec<Grant> = grants.into_iter().filter(|g| g.live(now)).collect();
        let first = live.first().ok_or(NoAccess::NoGrant)?;
        let tenant = first.grant.tenant.clone();
        if live.iter().any(|g| g.grant.tenant != tenant) {
            return Err(NoAccess::SeveralTenants);
        }
        Ok(Access {
            tenant,
            resolved: vec![None; live.len()],
            grants: live,
            owner: false,
        })
    }

    /// Resolve every label and query scope to the studies it reaches now,
    /// with `f` (which asks the grant store or the index).
    pub fn resolve<E>(
        &mut self,
        mut f: impl FnMut(&Scope) -> Result<BTreeSet<String>, E>,
    ) -> Result<(), E> {
        for (g, slot) in self.grants.iter().zip(self.resolved.iter_mut()) {
            if matches!(g.grant.scope, Scope::Label(_) | Scope::Query(_)) {
                *slot = Some(f(&g.grant.scope)?);
            }
        }
        Ok(())
    }

    /// The tenant's id.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// Whether this is an owner principal's whole-tenant access.
    pub fn is_owner(&self) -> bool {
        self.owner
    }

    /// The grants it holds (empty for an owner).
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }

    /// The grants giving `action`, each with what its label or query
    /// resolved to.
    fn granting(
        &self,
        action: Action,
    ) -> impl Iterator<Item = (&Grant, Option<&BTreeSet<String>>)> {
        self.grants
            .iter()
            .zip(&self.resolved)
            .filter(move |(g, _)| g.grant.actions.has(action))
            .map(|(g, r)| (g, r.as_ref()))
    }

    /// The grant whose view a study is seen through: the first live grant
    /// covering it (grants come oldest first; labels and queries as
    /// resolved), whatever its actions, so every route shows a study the
    /// same way. `None`: the originals (an owner, or no grant covers it).
    pub fn viewing(&self, study: &str) -> Option<&Grant> {
        self.grants
            .iter()
            .zip(&self.resolved)
            .find(|(g, r)| {
                g.grant.scope.covers(study) || r.as_ref().is_some_and(|r| r.contains(study))
            })
            .map(|(g, _)| g)
    }

    /// Whether everything this principal may see is through de-identified
    /// views (not the owner, and every grant's view de-identified).
    pub fn only_deidentified(&self) -> bool {
        !self.owner && !self.grants.is_empty() && self.deidentified().count() == self.grants.len()
    }

    /// The grants with a de-identified view.
    pub fn deidentified(&self) -> impl Iterator<Item = &Grant> {
        self.grants
            .iter()
            .filter(|g| matches!(g.grant.view, View::Deidentified { .. }))
    }

    /// Whether `action` is allowed on `study`.
    pub fn allows(&self, action: Action, study: &str) -> bool {
        self.owner || self.covering(action, study).next().is_some()
    }

    /// The grants giving `action` on `study`.
    fn covering<'a>(&'a self, action: Action, study: &'a str) -> impl Iterator<Item = &'a Grant> {
        self.granting(action)
            .filter(move |(g, r)| {
                g.grant.scope.covers(study) || r.is_some_and(|r| r.contains(study))
            })
            .map(|(g, _)| g)
    }

    /// Whether `action` is allowed on some study.
    pub fn allows_any(&self, action: Action) -> bool {
        self.owner || self.granting(action).next().is_some()
    }

    /// The daily quotas that reading `study` counts against: `None` when a
    /// grant without a quota covers it (or for an owner), else each
    /// covering grant's id and quota (the read needs room in one of them).
    pub fn quotas<'a>(&'a self, study: &'a str) -> Option<Vec<(&'a str, u32)>> {
        if self.owner {
            return None;
        }
        let mut out = Vec::new();
        for g in self.covering(Action::Read, study) {
            out.push((g.id.as_str(), g.grant.quota?));
        }
        Some(out)
    }

    /// The studies `action` may reach.
    pub fn studies(&self, action: Action) -> Studies {
        if self.owner {
            return Studies::All;
        }
        let mut only = BTreeSet::new();
        for (g, resolved) in self.granting(action) {
            match &g.grant.scope {
                Scope::Tenant => return Studies::All,
                Scope::Studies(s) => only.extend(s.iter().cloned()),
                Scope::Label(_) | Scope::Query(_) => {
                    only.extend(resolved.into_iter().flatten().cloned())
                }
            }
        }
        Studies::Only(only)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grant::{Actions, NewGrant};

    fn grant(tenant: &str, scope: Scope, actions: &str, expires: Option<i64>) -> Grant {
        Grant {
            id: "g".into(),
            grant: NewGrant {
                principal: "p".into(),
                tenant: tenant.into(),
                scope,
                actions: Actions::parse([actions]).unwrap(),
                view: View::Original,
                expires,
                quota: None,
            },
            created: 0,
            revoked: None,
        }
    }

    #[test]
    fn default_deny_and_union_of_grants() {
        assert_eq!(
            Access::from_grants(vec![], 0).unwrap_err(),
            NoAccess::NoGrant
        );
        let a = Access::from_grants(
            vec![
                grant("t", Scope::studies(["1.1"]).unwrap(), "read", None),
                grant(
                    "t",
                    Scope::studies(["1.2"]).unwrap(),
                    "search,read",
                    Some(100),
                ),
                grant("t", Scope::Tenant, "write", Some(10)),
            ],
            50,
        )
        .unwrap();
        assert!(a.allows(Action::Read, "1.1") && a.allows(Action::Read, "1.2"));
        assert!(!a.allows(Action::Search, "1.1") && !a.allows(Action::Read, "1.3"));
        assert!(
            !a.allows_any(Action::Write),
            "the write grant expired at 10"
        );
        assert_eq!(
            a.studies(Action::Search),
            Studies::Only(["1.2".to_string()].into())
        );
        let mut revoked = grant("t", Scope::Tenant, "read", None);
        revoked.revoked = Some(1);
        assert_eq!(
            Access::from_grants(vec![revoked], 2).unwrap_err(),
            NoAccess::NoGrant
        );
        assert_eq!(
            Access::from_grants(
                vec![
                    grant("t", Scope::Tenant, "read", None),
                    grant("u", Scope::Tenant, "read", None)
                ],
                0
            )
            .unwrap_err(),
            NoAccess::SeveralTenants
        );
        assert_eq!(Access::owner("t").studies(Action::Write), Studies::All);
        assert!(Access::owner("t").viewing("1.1").is_none());
    }

    #[test]
    fn a_study_is_seen_through_its_first_grant() {
        let mut deid = grant("t", Scope::studies(["1.1"]).unwrap(), "read", None);
        deid.id = "g-deid".into();
        deid.grant.view = View::Deidentified {
            profile: "basic".into(),
        };
        let a = Access::from_grants(
            vec![deid, grant("t", Scope::Tenant, "search,read", None)],
            0,
        )
        .unwrap();
        assert_eq!(a.viewing("1.1").map(|g| g.id.as_str()), Some("g-deid"));
        assert_eq!(a.viewing("1.2").map(|g| g.id.as_str()), Some("g"));
        assert!(
            a.allows(Action::Read, "1.1"),
            "a de-identified grant grants"
        );
        assert_eq!(a.deidentified().count(), 1);
        // the audit marks responses de-identified only when nothing else is granted
        assert!(!a.only_deidentified(), "an original grant too");
        assert!(!Access::owner("t").only_deidentified());
        let mut only = grant("t", Scope::Tenant, "search,read", None);
        only.grant.view = View::Deidentified {
            profile: "basic".into(),
        };
        assert!(Access::from_grants(vec![only], 0)
            .unwrap()
            .only_deidentified());
    }

    #[test]
    fn labels_and_queries_reach_what_they_resolve_to() {
        let q = crate::grant::StudyQuery::new([("ModalitiesInStudy", "CT")]).unwrap();
        let mut limited = grant("t", Scope::studies(["1.1"]).unwrap(), "read", None);
        limited.grant.quota = Some(2);
        let mut a = Access::from_grants(
            vec![
                grant("t", Scope::label("x").unwrap(), "search,read", None),
                grant("t", Scope::Query(q), "read", None),
                limited,
            ],
            0,
        )
        .unwrap();
        assert!(!a.allows(Action::Read, "1.5"), "unresolved reaches nothing");
        assert_eq!(a.quotas("1.1"), Some(vec![("g", 2)]));
        a.resolve(|s| {
            Ok::<_, ()>(match s {
                Scope::Label(_) => ["1.5".to_string()].into(),
                _ => ["1.6".to_string(), "1.1".to_string()].into(),
            })
        })
        .unwrap();
        assert!(a.allows(Action::Search, "1.5") && a.allows(Action::Read, "1.6"));
        assert!(!a.allows(Action::Search, "1.6"));
        assert_eq!(a.quotas("1.1"), None, "the query grant has no quota");
        assert_eq!(
            a.studies(Action::Read),
            Studies::Only(["1.1", "1.5", "1.6"].map(String::from).into())
        );
    }
}
