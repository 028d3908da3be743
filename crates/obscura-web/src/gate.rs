//! Default deny on every route: what a request needs (an action, on the
//! study its path names, if any) against the principal's [`Access`]. A
//! study the principal may not reach is 404, exactly like one that does
//! not exist; a search or a store with no grant for it at all is 403.
//! QIDO results are narrowed to the granted studies in `qido`, STOW
//! instances are refused one by one in `stow`. A read of a study past the
//! daily quotas of the grants that cover it is 429 ([`Closed::Quota`]).

use axum::http::Method;
use obscura_access::{Access, Action};

/// Why the gate refused (the code goes to the audit log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// A study outside every grant for the action: answered 404.
    Study,
    /// No grant for the action at all: answered 403.
    Action,
    /// The daily study quotas covering the study are used up: answered 429.
    Quota,
}

impl Closed {
    /// A short machine code for the audit log.
    pub fn code(self) -> &'static str {
        match self {
            Closed::Study => "study-not-granted",
            Closed::Action => "action-not-granted",
            Closed::Quota => "quota-exceeded",
        }
    }
}

/// The action a routed request needs: POST stores, a QIDO route searches,
/// every other GET reads.
pub fn action(method: &Method, pattern: &str) -> Action {
    if method == Method::POST {
        Action::Write
    } else if pattern == "/studies"
        || pattern.ends_with("/series")
        || pattern.ends_with("/instances")
    {
        Action::Search
    } else {
        Action::Read
    }
}

/// The study segment of a request path (`/studies/{study}/...`), as sent.
/// A percent-encoded segment is never a granted UID, so it is refused
/// rather than decoded here differently from the router.
pub fn study(path: &str) -> Option<&str> {
    let mut parts = path.split('/');
    (parts.next() == Some("") && parts.next() == Some("studies"))
        .then(|| parts.next())
        .flatten()
        .filter(|s| !s.is_empty())
}

/// Whether a routed request (its route `pattern`, absent for an unrouted
/// one, which the router answers 404) may go on.
pub fn check(
    method: &Method,
    pattern: Option<&str>,
    path: &str,
    access: &Access,
) -> Result<(), Closed> {
    let Some(pattern) = pattern else {
        return Ok(());
    };
    let action = action(method, pattern);
    if !access.allows_any(action) {
        return Err(Closed::Action);
    }
    match study(path) {
        // a store into a study outside the grant is refused per instance (stow)
        Some(_) if action == Action::Write => Ok(()),
        Some(s) if !access.allows(action, s) => Err(Closed::Study),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use obscura_access::{Actions, Grant, NewGrant, Scope, View};

    #[test]
    fn routes_need_their_action_on_their_study() {
        let g = |scope, actions: &str| Grant {
            id: "g".into(),
            grant: NewGrant {
                principal: "p".into(),
                tenant: "t".into(),
                scope,
                actions: Actions::parse([actions]).unwrap(),
                view: View::Original,
                expires: None,
                quota: None,
            },
            created: 0,
            revoked: None,
        };
        let a = Access::from_grants(
            vec![
                g(Scope::studies(["1.2"]).unwrap(), "read"),
                g(Scope::studies(["1.3"]).unwrap(), "search"),
            ],
            0,
        )
        .unwrap();
        let get = Method::GET;
        let inst = "/studies/{study}/series/{series}/instances/{instance}";
        assert_eq!(
            check(&get, Some(inst), "/studies/1.2/series/3/instances/4", &a),
            Ok(())
        );
        assert_eq!(
            check(&get, Some(inst), "/studies/1.3/series/3/instances/4", &a),
            Err(Closed::Study)
        );
        assert_eq!(
            check(&get, Some(inst), "/studies/1%2E2/series/3/instances/4", &a),
            Err(Closed::Study)
        );
        assert_eq!(
            check(
                &get,
                Some("/studies/{study}/series"),
                "/studies/1.3/series",
                &a
            ),
            Ok(())
        );
        assert_eq!(
            check(
                &get,
                Some("/studies/{study}/series"),
                "/studies/1.2/series",
                &a
            ),
            Err(Closed::Study)
        );
        assert_eq!(check(&get, Some("/studies"), "/studies", &a), Ok(()));
        assert_eq!(
            check(&Method::POST, Some("/studies"), "/studies", &a),
            Err(Closed::Action)
        );
        assert_eq!(check(&get, None, "/anything", &a), Ok(()));
        assert_eq!(action(&get, "/studies/{study}/rendered"), Action::Read);
    }
}
