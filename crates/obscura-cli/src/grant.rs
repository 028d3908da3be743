//! `obscura grant add|list|show|revoke`: the archive's grants (see
//! docs/access.md), in its grant store. A revocation holds from the next
//! request of every `obscura serve` sharing the store.

use crate::archive::{find_tenant, grant_store, ArchiveArgs};
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use obscura_access::time;
use obscura_access::{Actions, Grant, GrantStore, NewGrant, Scope, View};
use std::collections::BTreeMap;

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
        /// A Study Instance UID it may reach (repeat for more).
        #[arg(long = "study", required_unless_present = "whole_tenant")]
        studies: Vec<String>,
        /// Every study of the tenant, present and future.
        #[arg(long, conflicts_with = "studies")]
        whole_tenant: bool,
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
            studies,
            whole_tenant,
            actions,
            view,
            expires,
            archive,
        } => {
            let vault = archive.open()?;
            let tenant = find_tenant(&vault, tenant)?;
            let scope = if *whole_tenant {
                Scope::Tenant
            } else {
                Scope::studies(studies)?
            };
            let expires = match expires {
                Some(e) => Some(time::parse_expiry(e, now).with_context(|| {
                    "--expires is an RFC 3339 instant, a date, or a duration (72h, 30d)"
                })?),
                None => None,
            };
            if expires.is_some_and(|e| e <= now) {
                bail!("--expires is in the past");
            }
            let grant = NewGrant {
                principal: principal.clone(),
                tenant: tenant.id.as_str().to_string(),
                scope,
                actions: Actions::parse(actions.iter().map(String::as_str))?,
                view: View::parse(view)?,
                expires,
            };
            grant.check()?;
            let (dir, key) = archive.paths()?;
            let store = grant_store(&dir, &key)?;
            let other = store
                .live(principal, now)?
                .into_iter()
                .find(|g| g.grant.tenant != grant.tenant);
            if let Some(g) = other {
                bail!(
                    "principal `{principal}` has live grant {} in another tenant: a principal acts for one tenant (revoke that grant first)",
                    g.id
                );
            }
            let g = store.add(grant, now)?;
            if g.grant.expires.is_none() {
                eprintln!(
                    "note: grant {} never expires (--expires sets a limit)",
                    g.id
                );
            }
            println!("{}", g.id);
            Ok(())
        }
        GrantCommand::List {
            principal,
            all,
            archive,
        } => {
            let names = tenant_names(archive)?;
            let (dir, key) = archive.paths()?;
            for g in grant_store(&dir, &key)?.list(principal.as_deref())? {
                if *all || g.live(now) {
                    println!("{}", line(&g, &names, now));
                }
            }
            Ok(())
        }
        GrantCommand::Show { id, archive } => {
            let names = tenant_names(archive)?;
            let (dir, key) = archive.paths()?;
            let g = grant_store(&dir, &key)?
                .get(id)?
                .with_context(|| format!("no grant `{id}`"))?;
            println!("{}", line(&g, &names, now));
            println!("created\t{}", time::format(g.created));
            if let Some(r) = g.revoked {
                println!("revoked\t{}", time::format(r));
            }
            if let Scope::Studies(s) = &g.grant.scope {
                for study in s {
                    println!("study\t{study}");
                }
            }
            Ok(())
        }
        GrantCommand::Revoke { id, token, archive } => {
            let (dir, key) = archive.paths()?;
            let store = grant_store(&dir, &key)?;
            match (id, token) {
                (Some(id), _) => {
                    if store.get(id)?.is_none() {
                        bail!("no grant `{id}`");
                    }
                    if store.revoke(id, now)? {
                        eprintln!("revoked grant {id}");
                    } else {
                        eprintln!("grant {id} was already revoked");
                    }
                }
                (None, Some(jti)) => {
                    store.revoke_token(jti, now)?;
                    eprintln!("revoked token {jti}");
                }
                (None, None) => bail!("name a grant id, or --token JTI"),
            }
            Ok(())
        }
    }
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
    let scope = match &g.grant.scope {
        Scope::Tenant => "whole-tenant".to_string(),
        Scope::Studies(s) => format!("{} studies", s.len()),
    };
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
