//! `obscura share` and `obscura label`: share links (capability URLs for
//! people outside the identity provider) and labels (named collections of
//! a tenant's studies that grants can name); see docs/access.md.

use crate::admin_audit::{self, AdminAudit, Change, Refusal};
use crate::archive::{find_tenant, grant_store, ArchiveArgs};
use crate::grant::expiry;
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use obscura_access::{link, time, Action, Actions, NewGrant, Scope, View};
use obscura_audit::EventKind;
use obscura_vault::{Attr, Level, Query, Vault};

/// `obscura share STUDY ...`.
#[derive(Args)]
pub struct ShareArgs {
    /// The Study Instance UID to share (one study).
    study: String,
    /// The tenant's name or id.
    #[arg(long)]
    tenant: String,
    /// Until when: a duration (72h, 7d), an RFC 3339 instant or a date.
    #[arg(long)]
    expires: String,
    /// What the link shows: original, deidentified (the basic profile) or
    /// deidentified:PROFILE.
    #[arg(long, default_value = "original")]
    view: String,
    /// The URL this archive's DICOMweb is reached at from outside (default:
    /// `[web] public_url`, else the scheme and `[web] listen`).
    #[arg(long)]
    base_url: Option<String>,
    #[command(flatten)]
    archive: ArchiveArgs,
}

/// Make a share link: a read-only grant (search, read) on one study,
/// expiring, with a secret of its own; print its URL.
pub fn share(args: &ShareArgs) -> Result<()> {
    let audit = args.archive.audit()?;
    admin_audit::record(
        audit.as_ref(),
        EventKind::GrantChange,
        "admin:share-add",
        &[("tenant", args.tenant.clone())],
        || make_link(args, audit.as_ref()).map(Some),
    )
}

/// Make the link; its change, with the keyed study.
fn make_link(args: &ShareArgs, audit: Option<&AdminAudit>) -> Result<Change> {
    let now = time::now();
    let vault = args.archive.open()?;
    let tenant = find_tenant(&vault, &args.tenant)?;
    let scope = Scope::studies([&args.study])?;
    if !study_exists(&vault, &tenant.id, &args.study)? {
        return Err(Refusal::UnknownStudy.error(format!("no such study in tenant {}", tenant.name)));
    }
    let grant = NewGrant {
        principal: "share".into(),
        tenant: tenant.id.as_str().to_string(),
        scope,
        actions: Actions::default().with(Action::Search).with(Action::Read),
        view: View::parse(&args.view)?,
        expires: expiry(Some(&args.expires), now)?,
        quota: None,
    };
    grant.check()?;
    let base = match &args.base_url {
        Some(b) => b.clone(),
        None => default_base(&args.archive)?,
    };
    let (secret, hash) =
        link::new_secret().map_err(|e| anyhow!("no randomness for the link's secret: {e}"))?;
    let store = grant_store(&args.archive.section()?)?;
    let study = match audit {
        Some(a) => a.studies([args.study.as_str()])?,
        None => Vec::new(),
    };
    let g = store.add_link(grant, hash, now)?;
    println!(
        "{}/share/{}",
        base.trim_end_matches('/'),
        link::token(&g.id, &secret)
    );
    eprintln!(
        "share link {} ({} view) until {}; revoke it with: obscura grant revoke {}",
        g.id,
        g.grant.view.name(),
        g.grant.expires.map(time::format).unwrap_or_default(),
        g.id
    );
    Ok(Change {
        subjects: study,
        ..Change::new(crate::grant::grant_detail(&g))
    })
}

fn study_exists(vault: &Vault, tenant: &obscura_vault::TenantId, study: &str) -> Result<bool> {
    let q = Query::new(Level::Study).with(Attr::StudyInstanceUID, study);
    Ok(!vault.search(tenant, &q)?.is_empty())
}

/// `[web] public_url`, or `https://` (`http://` when plain) and `[web] listen`.
fn default_base(archive: &ArchiveArgs) -> Result<String> {
    let Some(web) = archive.web_section()? else {
        bail!("give --base-url (no serve config with a [web] section to take it from)");
    };
    Ok(match web.public_url {
        Some(u) => u,
        None => format!(
            "{}://{}",
            if web.plain { "http" } else { "https" },
            web.listen
        ),
    })
}

/// `obscura label ...`.
#[derive(Subcommand)]
pub enum LabelCommand {
    /// Put studies into a label (created if new).
    Add {
        /// The label's name.
        name: String,
        /// The tenant's name or id.
        #[arg(long)]
        tenant: String,
        /// A Study Instance UID (repeat for more).
        #[arg(long = "study", required = true)]
        studies: Vec<String>,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// Take studies out of a label (the label goes when it is empty).
    Remove {
        /// The label's name.
        name: String,
        /// The tenant's name or id.
        #[arg(long)]
        tenant: String,
        /// A Study Instance UID (repeat for more).
        #[arg(long = "study", required = true)]
        studies: Vec<String>,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// A tenant's labels and how many studies each holds.
    List {
        /// The tenant's name or id.
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
    /// The studies of a label.
    Show {
        /// The label's name.
        name: String,
        /// The tenant's name or id.
        #[arg(long)]
        tenant: String,
        #[command(flatten)]
        archive: ArchiveArgs,
    },
}

/// Run a label command.
pub fn label(cmd: &LabelCommand) -> Result<()> {
    let (archive, tenant) = match cmd {
        LabelCommand::Add {
            tenant, archive, ..
        }
        | LabelCommand::Remove {
            tenant, archive, ..
        }
        | LabelCommand::List { tenant, archive }
        | LabelCommand::Show {
            tenant, archive, ..
        } => (archive, tenant),
    };
    match cmd {
        LabelCommand::Add { name, studies, .. } | LabelCommand::Remove { name, studies, .. } => {
            let (audit, adding) = (archive.audit()?, matches!(cmd, LabelCommand::Add { .. }));
            let route = if adding {
                "admin:label-add"
            } else {
                "admin:label-remove"
            };
            admin_audit::record(
                audit.as_ref(),
                EventKind::GrantChange,
                route,
                &[("label", name.clone()), ("tenant", tenant.clone())],
                || {
                    let changes = obscura_access::grant::study_set(studies)?;
                    Scope::label(name)?;
                    let tenant = find_tenant(&archive.open()?, tenant)?.id;
                    let store = grant_store(&archive.section()?)?;
                    // keyed before the change, so a key that cannot be read changes nothing
                    let subjects = match &audit {
                        Some(a) => a.studies(changes.iter().map(String::as_str))?,
                        None => Vec::new(),
                    };
                    let mut set = store.label(tenant.as_str(), name)?;
                    if adding {
                        set.extend(changes);
                    } else {
                        set.retain(|s| !changes.contains(s));
                    }
                    store.set_label(tenant.as_str(), name, &set)?;
                    eprintln!("label {name}: {} studies", set.len());
                    let detail = vec![
                        ("label", name.clone()),
                        ("tenant", tenant.to_string()),
                        ("studies", set.len().to_string()),
                    ];
                    Ok(Some(Change {
                        subjects,
                        ..Change::new(detail)
                    }))
                },
            )?;
        }
        LabelCommand::List { .. } | LabelCommand::Show { .. } => {
            let tenant = find_tenant(&archive.open()?, tenant)?.id;
            let store = grant_store(&archive.section()?)?;
            if let LabelCommand::Show { name, .. } = cmd {
                for s in store.label(tenant.as_str(), name)? {
                    println!("{s}");
                }
            } else {
                for (name, n) in store.labels(tenant.as_str())? {
                    println!("{name}\t{n}");
                }
            }
        }
    }
    Ok(())
}
