//! The grant model: who (a principal's name), which tenant, which studies,
//! which actions, which view, until when. A grant only ever adds access;
//! nothing is reachable without one (see [`crate::Access`]).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// A grant that cannot be made (names fields and principals, never data).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GrantError {
    /// A field's value is not one this version understands.
    #[error("{0}")]
    Invalid(String),
    /// Something this version does not do yet.
    #[error("{0}")]
    NotYet(String),
}

/// What a grant allows doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Find studies, series, instances (QIDO-RS).
    Search,
    /// Retrieve instances, metadata, frames, bulk data, rendered images (WADO-RS).
    Read,
    /// Store instances (STOW-RS).
    Write,
}

impl Action {
    /// Every action.
    pub const ALL: [Action; 3] = [Action::Search, Action::Read, Action::Write];

    /// Its name in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Action::Search => "search",
            Action::Read => "read",
            Action::Write => "write",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Actions(u8);

impl Actions {
    /// All three.
    pub const ALL: Actions = Actions(0b111);

    /// Whether `a` is in the set.
    pub fn has(self, a: Action) -> bool {
        self.0 & a.bit() != 0
    }

    /// The set with `a` added.
    pub fn with(self, a: Action) -> Actions {
        Actions(self.0 | a.bit())
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Parse names (`search`, `read`, `write`, comma-separated or given apart).
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Actions, GrantError> {
        let mut out = Actions::default();
        for n in names.into_iter().flat_map(|n| n.split(',')).map(str::trim) {
            let a = Action::ALL
                .into_iter()
                .find(|a| a.name() == n)
                .ok_or_else(|| {
                    GrantError::Invalid(format!("unknown action `{n}` (search, read, write)"))
                })?;
            out = out.with(a);
        }
        if out.is_empty() {
            return Err(GrantError::Invalid(
                "a grant needs at least one action".into(),
            ));
        }
        Ok(out)
    }
}

impl fmt::Display for Actions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = Action::ALL
            .into_iter()
            .filter(|a| self.has(*a))
            .map(Action::name)
            .collect();
        f.write_str(&names.join(","))
    }
}

/// What the principal sees of the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    /// The stored originals.
    Original,
    /// The originals de-identified on the fly by the engine with this
    /// profile (`basic`, `basic+OPTION+...`, or a profile file's path) and
    /// a key of the grant's own, with pseudonymous UIDs.
    Deidentified {
        /// The profile, as written in the grant.
        profile: String,
    },
}

impl View {
    /// Parse a view: `original`, `deidentified` (the basic profile), or
    /// `deidentified:PROFILE`.
    pub fn parse(s: &str) -> Result<View, GrantError> {
        match s.split_once(':') {
            None if s == "original" => Ok(View::Original),
            None if s == "deidentified" => Ok(View::Deidentified {
                profile: "basic".into(),
            }),
            Some(("deidentified", p))
                if !p.is_empty() && p.len() <= 1024 && !p.chars().any(char::is_control) =>
            {
                Ok(View::Deidentified {
                    profile: p.to_string(),
                })
            }
            _ => Err(GrantError::Invalid(
                "a view is `original`, `deidentified` or `deidentified:PROFILE`".into(),
            )),
        }
    }

    /// Its name: `original` or `deidentified`.
    pub fn name(&self) -> &'static str {
        match self {
            View::Original => "original",
            View::Deidentified { .. } => "deidentified",
        }
    }

    /// The whole view as [`parse`](Self::parse) reads it (stored this way).
    pub fn spec(&self) -> String {
        match self {
            View::Original => "original".into(),
            View::Deidentified { profile } => format!("deidentified:{profile}"),
        }
    }
}

/// Which studies of the tenant a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every study of the tenant, present and future.
    Tenant,
    /// These Study Instance UIDs only (present or stored later).
    Studies(BTreeSet<String>),
    /// The studies of the tenant's label (a named collection, `obscura
    /// label`), as it is when a request is decided.
    Label(String),
    /// The studies of the tenant whose attributes match, as they are when
    /// a request is decided.
    Query(StudyQuery),
}

impl Scope {
    /// Whether the scope covers `study` without asking anything else:
    /// labels and queries need resolving first (see [`crate::Access`]).
    pub fn covers(&self, study: &str) -> bool {
        match self {
            Scope::Tenant => true,
            Scope::Studies(s) => s.contains(study),
            Scope::Label(_) | Scope::Query(_) => false,
        }
    }

    /// A scope of listed studies, each checked as a UID.
    pub fn studies<I, S>(uids: I) -> Result<Scope, GrantError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Ok(Scope::Studies(study_set(uids)?))
    }

    /// A label's scope, its name checked.
    pub fn label(name: &str) -> Result<Scope, GrantError> {
        check_label(name)?;
        Ok(Scope::Label(name.to_string()))
    }

    /// A short description for listings (no UID, no query value).
    pub fn summary(&self) -> String {
        match self {
            Scope::Tenant => "whole-tenant".into(),
            Scope::Studies(s) => format!("{} studies", s.len()),
            Scope::Label(l) => format!("label {l}"),
            Scope::Query(q) => format!("query {}", q.keywords().join("+")),
        }
    }
}

/// A set of Study Instance UIDs, each checked; at least one.
pub fn study_set<I, S>(uids: I) -> Result<BTreeSet<String>, GrantError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut set = BTreeSet::new();
    for u in uids {
        let u = u.as_ref().trim();
        if !is_uid(u) {
            return Err(GrantError::Invalid(
                "a study is a Study Instance UID: 1 to 64 digits and dots".into(),
            ));
        }
        set.insert(u.to_string());
    }
    if set.is_empty() {
        return Err(GrantError::Invalid(
            "name at least one study, or the whole tenant".into(),
        ));
    }
    Ok(set)
}

/// Check a label's name: 1 to 64 letters, digits, `-`, `_`, `.`.
pub fn check_label(name: &str) -> Result<(), GrantError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    ok.then_some(()).ok_or_else(|| {
        GrantError::Invalid("a label is 1 to 64 letters, digits, `-`, `_` or `.`".into())
    })
}

/// The study attributes a query scope may match, as QIDO keywords.
pub const QUERY_KEYS: [&str; 5] = [
    "ModalitiesInStudy",
    "StudyDate",
    "ReferringPhysicianName",
    "AccessionNumber",
    "StudyDescription",
];

/// A query scope: study-level keys in QIDO's matching syntax (`CT\\MR`,
/// `20240101-20241231`, `SMITH^*`, `ACC12*`), all of which a study must
/// match. The values may identify people (a referring physician): the
/// store seals them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StudyQuery(BTreeMap<String, String>);

impl StudyQuery {
    /// A query of `keys` (keyword, value), each keyword one of
    /// [`QUERY_KEYS`], each value 1 to 64 printable characters; at least one.
    pub fn new<I, K, V>(keys: I) -> Result<StudyQuery, GrantError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut out = BTreeMap::new();
        for (k, v) in keys {
            let (k, v) = (k.as_ref(), v.as_ref().trim());
            if !QUERY_KEYS.contains(&k) {
                return Err(GrantError::Invalid(format!(
                    "a query scope matches {}, not `{k}`",
                    QUERY_KEYS.join(", ")
                )));
            }
            let printable = v.chars().all(|c| !c.is_control());
            if v.is_empty() || v.len() > 64 || !printable || v == "*" {
                return Err(GrantError::Invalid(format!(
                    "query scope {k}: a value of 1 to 64 printable characters, not only `*`"
                )));
            }
            if out.insert(k.to_string(), v.to_string()).is_some() {
                return Err(GrantError::Invalid(format!("query scope {k} given twice")));
            }
        }
        if out.is_empty() {
            return Err(GrantError::Invalid(
                "a query scope needs at least one key".into(),
            ));
        }
        Ok(StudyQuery(out))
    }

    /// Its keys, (keyword, value), in keyword order.
    pub fn keys(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Its keywords.
    pub fn keywords(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Whether `s` is a UID: 1 to 64 digits and dots, no empty component.
pub fn is_uid(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && s.split('.').all(|c| !c.is_empty())
}

/// Whether `s` may name a principal in a grant: printable ASCII without
/// spaces, at most 256 bytes (JWT principals are `<issuer>:<subject>`).
pub fn is_principal_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| b.is_ascii_graphic())
}

/// A grant before it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGrant {
    /// The principal's name (`[[web.principal]]` name, or `<issuer>:<subject>` for JWTs).
    pub principal: String,
    /// The tenant's id.
    pub tenant: String,
    /// Which studies.
    pub scope: Scope,
    /// Which actions.
    pub actions: Actions,
    /// What is seen.
    pub view: View,
    /// Unix seconds after which it no longer holds, if ever.
    pub expires: Option<i64>,
    /// At most this many distinct studies read per UTC day, if limited.
    pub quota: Option<u32>,
}

impl NewGrant {
    /// Check the principal's name.
    pub fn check(&self) -> Result<(), GrantError> {
        if !is_principal_name(&self.principal) {
            return Err(GrantError::Invalid(
                "a principal is 1 to 256 printable characters without spaces".into(),
            ));
        }
        if self.actions.is_empty() {
            return Err(GrantError::Invalid(
                "a grant needs at least one action".into(),
            ));
        }
        if self.quota == Some(0) {
            return Err(GrantError::Invalid(
                "a daily quota is at least one study".into(),
            ));
        }
        Ok(())
    }
}

/// A stored grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Its id (`g-` and 16 hex digits; `static:<n>` for the config's).
    pub id: String,
    /// What it grants.
    pub grant: NewGrant,
    /// Unix seconds when it was made.
    pub created: i64,
    /// Unix seconds when it was revoked, if it was.
    pub revoked: Option<i64>,
}

impl Grant {
    /// Whether it holds at `now` (not revoked, not expired).
    pub fn live(&self, now: i64) -> bool {
        self.revoked.is_none() && self.grant.expires.is_none_or(|e| now < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_actions_views_scopes() {
        let a = Actions::parse(["search,read"]).unwrap();
        assert!(a.has(Action::Search) && a.has(Action::Read) && !a.has(Action::Write));
        assert_eq!(a.to_string(), "search,read");
        assert!(Actions::parse(["delete"]).is_err());
        assert!(Actions::parse(Vec::<&str>::new()).is_err());
        assert_eq!(View::parse("original"), Ok(View::Original));
        let basic = View::Deidentified {
            profile: "basic".into(),
        };
        assert_eq!(View::parse("deidentified"), Ok(basic.clone()));
        assert_eq!(View::parse(&basic.spec()), Ok(basic));
        assert!(View::parse("deidentified:").is_err() && View::parse("copy").is_err());
        assert!(Scope::studies(["1.2.3", "../x"]).is_err());
        assert!(Scope::studies(Vec::<String>::new()).is_err());
        let s = Scope::studies(["1.2.3"]).unwrap();
        assert!(s.covers("1.2.3") && !s.covers("1.2.4"));
        assert!(Scope::Tenant.covers("9"));
        assert!(Scope::label("trial-42").is_ok() && Scope::label("a b").is_err());
        let q =
            StudyQuery::new([("ModalitiesInStudy", "CT"), ("AccessionNumber", "ACC*")]).unwrap();
        assert_eq!(q.keywords(), ["AccessionNumber", "ModalitiesInStudy"]);
        assert!(!Scope::Query(q).covers("1.2.3"), "a query needs resolving");
        assert!(StudyQuery::new([("PatientName", "X")]).is_err());
        assert!(StudyQuery::new([("StudyDate", "*")]).is_err());
        assert!(StudyQuery::new(Vec::<(&str, &str)>::new()).is_err());
    }
}
