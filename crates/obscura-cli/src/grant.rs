//! `obscura grant add|list|show|revoke`: the archive's grants (see
//! docs/access.md), in its grant store. A revocation holds from the next
//! request of every `obscura serve` sharing the store.

use crate::admin_audit::{self, Change, Refusal};
use crate::archive::{find_tenant, grant_store, ArchiveArgs};
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use obscura_access::time;
use obscura_access::{Actions, Grant, NewGrant, Scope, StudyQuery, View};
use obscura_audit::EventKind;
use std::collections::BTreeMap;

/// Which studies a grant covers: exactly one of listed studies, the whole
/// tenant, a label, or a query (its keys combined).
#[derive(Args)]
pub struct ScopeArgs {
    /// A Study Instance UID it may reach (repeat for more).
    #[arg(long = "study")]
    studies: Vec<String>,
    /// Every study of the tenant, present and future.
    #[arg(long)]
    whole_tenant: bool,
    /// The studies of this label of the tenant (`obscura label`), as it is
    /// at each request.
    #[arg(long)]
    label: Option<String>,
    /// Query scope: studies with a series of this modality (repeat for any of several).
    #[arg(long = "modality")]
    modalities: Vec<String>,
    /// Query scope: Study Date, a date or range (`20240101-20241231`, `20240101-`).
    #[arg(long)]
    study_date: Option<String>,
    /// Query scope: Referring Physician's Name (`SMITH^JOHN`, or a wildcard `SMITH*`).
    #[arg(long)]
    referring: Option<String>,
    /// Query scope: Accession Numbers starting with this.
    #[arg(long)]
    accession_prefix: Option<String>,
}

impl ScopeArgs {
    /// The scope these arguments name.
    fn scope(&self) -> Result<Scope> {
        let mut keys = Vec::new();
        if !self.modalities.is_empty() {
            keys.push(("ModalitiesInStudy", self.modalities.join("\\")));
        }
        if let Some(d) = &self.study_date {
            keys.push(("StudyDate", d.clone()));
        }
        if let Some(r) = &self.referring {
            keys.push(("ReferringPhysicianName", r.clone()));
        }
        if let Some(a) = &self.accession_prefix {
            if a.contains(['*', '?', '\\']) {
                bail!("--accession-prefix is a plain prefix (no wildcards)");
            }
            keys.push(("AccessionNumber", format!("{a}*")));
        }
        let given = [
            !self.studies.is_empty(),
            self.whole_tenant,
            self.label.is_some(),
            !keys.is_empty(),
        ];
        if given.iter().filter(|g| **g).count() != 1 {
            bail!(
                "name the scope: --study, --whole-tenant, --label, or query keys \
                 (--modality, --study-date, --referring, --accession-prefix), one of them"
            );
        }
        Ok(if self.whole_tenant {
            Scope::Tenant
        } else if let Some(l) = &self.label {
            Scope::label(l)?
        } else if !keys.is_empty() {
            Scope::Query(StudyQuery::new(keys)?)
        } else {
            Scope::studies(&self.studies)?
        })
    }
}

/// `obscura grant ...`.
#[derive(Subcommand)]
pub enum GrantCommand {
    /// Give a principal access to studies of one tenant; prints the grant's id.
    Add {
        /// The principal: a `[[web.principal]]` name without a tenant, or
        /// `<issuer>:<subject>` for a JWT (e.g. `keycloak:ai-vendor`).
        #[arg(long)]
        principal: String,
        /// The tenant's name or id.
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        scope: Box<ScopeArgs>,
        /// What it may do: search, read, write (comma-separated).
        #[arg(long, required = true, value_delimiter = ',')]
        actions: Vec<String>,
        /// What it sees: original, deidentified (the basic profile) or
        /// deidentified:PROFILE (`basic+OPTION+...`, or a profile file's path).
        #[arg(long, default_value = "original")]
        view: String,
        /// Until when: an RFC 3339 instant, a date, or a duration (72h, 30d).
        #[arg(long)]
        expires: Option<String>,
        /// At most this many distinct studies read per UTC day (then 429).
        #[arg(long)]
        quota: Option<u32>,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// List grants: id, principal, tenant, scope, actions, view, expiry, state.
    List {
        /// Only this principal's.
        #[arg(long)]
        principal: Option<String>,
        /// Revoked and expired grants too.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// Show one grant, with its studies.
    Show {
        /// The grant's id.
        id: String,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// Revoke a grant by id, or a token by its `jti` (--token).
    Revoke {
        /// The grant's id.
        #[arg(required_unless_present = "token", conflicts_with = "token")]
        id: Option<String>,
        /// A token's `jti`: that token is refused from the next request on.
        #[arg(long)]
        token: Option<String>,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
}

/// Run a grant command.
pub fn run(cmd: &GrantCommand) -> Result<()> {
    let now = time::now();
    match cmd {
        GrantCommand::Add {
            principal,
            tenant,
            scope,
            actions,
            view,
            expires,
            quota,
            archive,
        } => {
            let audit = archive.audit()?;
            let asked = [("principal", principal.clone()), ("tenant", tenant.clone())];
            admin_audit::record(
                audit.as_ref(),
                EventKind::GrantChange,
                "admin:grant-add",
                &asked,
                || {
                    let vault = archive.open()?;
                    let tenant = find_tenant(&vault, tenant)?;
                    let grant = NewGrant {
                        principal: principal.clone(),
                        tenant: tenant.id.as_str().to_string(),
                        scope: scope.scope()?,
                        actions: Actions::parse(actions.iter().map(String::as_str))?,
                        view: View::parse(view)?,
                        expires: expiry(expires.as_deref(), now)?,
                        quota: *quota,
                    };
                    add(grant, archive, audit.as_ref(), now).map(Some)
                },
            )
        }
        GrantCommand::List {
            principal,
            all,
            archive,
        } => {
            let names = tenant_names(archive)?;
            for g in grant_store(&archive.section()?)?.list(principal.as_deref())? {
                if *all || g.live(now) {
                    println!("{}", line(&g, &names, now));
                }
            }
            Ok(())
        }
        GrantCommand::Show { id, archive } => {
            let names = tenant_names(archive)?;
            let g = grant_store(&archive.section()?)?
                .get(id)?
                .ok_or_else(|| Refusal::UnknownGrant.error(format!("no grant `{id}`")))?;
            println!("{}", line(&g, &names, now));
            println!("created\t{}", time::format(g.created));
            if let Some(r) = g.revoked {
                println!("revoked\t{}", time::format(r));
            }
            if let Some(q) = g.grant.quota {
                println!("quota\t{q} studies a day");
            }
            match &g.grant.scope {
                Scope::Studies(s) => {
                    for study in s {
                        println!("study\t{study}");
                    }
                }
                Scope::Query(q) => {
                    for (k, v) in q.keys() {
                        println!("query\t{k}={v}");
                    }
                }
                Scope::Tenant | Scope::Label(_) => {}
            }
            Ok(())
        }
        GrantCommand::Revoke { id, token, archive } => {
            let audit = archive.audit()?;
            let (route, asked) = match (id, token) {
                (Some(id), _) => ("admin:grant-revoke", ("grant", id.clone())),
                (None, Some(jti)) => ("admin:token-revoke", ("token", jti.clone())),
                (None, None) => bail!("name a grant id, or --token JTI"),
            };
            admin_audit::record(
                audit.as_ref(),
                EventKind::GrantChange,
                route,
                &[asked],
                || {
                    let store = grant_store(&archive.section()?)?;
                    revoke(&*store, id.as_deref(), token.as_deref(), now)
                },
            )
        }
    }
}

/// Check and add `grant`; its change, with the keyed studies it lists.
fn add(
    grant: NewGrant,
    archive: &ArchiveArgs,
    audit: Option<&admin_audit::AdminAudit>,
    now: i64,
) -> Result<Change> {
    grant.check()?;
    let principal = &grant.principal;
    if principal.starts_with("share:") {
        bail!("principals named share:... are share links' (obscura share)");
    }
    if let View::Deidentified { profile } = &grant.view {
        obscura_web::view::profile(profile).map_err(|e| anyhow::anyhow!("--view: {e}"))?;
    }
    let store = grant_store(&archive.section()?)?;
    let other = store
        .live(principal, now)?
        .into_iter()
        .find(|g| g.grant.tenant != grant.tenant);
    if let Some(g) = other {
        return Err(Refusal::OtherTenant.error(format!(
            "principal `{principal}` has live grant {} in another tenant: a principal acts for one tenant (revoke that grant first)",
            g.id
        )));
    }
    // keyed before the change, so a key that cannot be read changes nothing
    let studies = match (audit, &grant.scope) {
        (Some(a), Scope::Studies(s)) => a.studies(s.iter().map(String::as_str))?,
        _ => Vec::new(),
    };
    let g = store.add(grant, now)?;
    if g.grant.expires.is_none() {
        eprintln!(
            "note: grant {} never expires (--expires sets a limit)",
            g.id
        );
    }
    println!("{}", g.id);
    let mut detail = grant_detail(&g);
    detail.push(("scope", g.grant.scope.summary()));
    Ok(Change {
        subjects: studies,
        ..Change::new(detail)
    })
}

/// Revoke grant `id` or token `jti`; the change (`None`: already revoked).
fn revoke(
    store: &dyn obscura_access::GrantStore,
    id: Option<&str>,
    jti: Option<&str>,
    now: i64,
) -> Result<Option<Change>> {
    if let Some(id) = id {
        let Some(g) = store.get(id)? else {
            return Err(Refusal::UnknownGrant.error(format!("no grant `{id}`")));
        };
        if !store.revoke(id, now)? {
            eprintln!("grant {id} was already revoked");
            return Ok(None);
        }
        eprintln!("revoked grant {id}");
        let detail = grant_detail(&g);
        return Ok(Some(Change::new(detail)));
    }
    let jti = jti.context("name a grant id, or --token JTI")?;
    store.revoke_token(jti, now)?;
    eprintln!("revoked token {jti}");
    Ok(Some(Change::new(vec![("token", jti.to_string())])))
}

/// A grant's audit detail: its id, principal, tenant id, actions, view
/// and expiry (never its studies: those are keyed subjects).
pub fn grant_detail(g: &Grant) -> Vec<(&'static str, String)> {
    vec![
        ("grant", g.id.clone()),
        ("principal", g.grant.principal.clone()),
        ("tenant", g.grant.tenant.clone()),
        ("actions", g.grant.actions.to_string()),
        ("view", g.grant.view.spec()),
        (
            "expires",
            g.grant
                .expires
                .map(time::format)
                .unwrap_or_else(|| "never".into()),
        ),
    ]
}

/// `--expires` as Unix seconds: an instant, a date, or a duration from `now`; not past.
pub fn expiry(expires: Option<&str>, now: i64) -> Result<Option<i64>> {
    let Some(e) = expires else {
        return Ok(None);
    };
    let t = time::parse_expiry(e, now)
        .context("--expires is an RFC 3339 instant, a date, or a duration (72h, 30d)")?;
    if t <= now {
        bail!("--expires is in the past");
    }
    Ok(Some(t))
}

fn tenant_names(archive: &ArchiveArgs) -> Result<BTreeMap<String, String>> {
    Ok(archive
        .open()?
        .list_tenants()?
        .into_iter()
        .map(|t| (t.id.as_str().to_string(), t.name))
        .collect())
}

/// One grant as a tab-separated line (studies counted, not listed).
fn line(g: &Grant, names: &BTreeMap<String, String>, now: i64) -> String {
    let scope = g.grant.scope.summary();
    let state = match (g.revoked, g.live(now)) {
        (Some(_), _) => "revoked",
        (None, true) => "live",
        (None, false) => "expired",
    };
    format!(
        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
        g.id,
        g.grant.principal,
        names
            .get(&g.grant.tenant)
            .map(String::as_str)
            .unwrap_or(&g.grant.tenant),
        scope,
        g.grant.actions,
        g.grant.view.spec(),
        g.grant
            .expires
            .map(time::format)
            .unwrap_or_else(|| "never".into()),
        state
    )
}
