//! `[alerts]` in `serve`: the live detector fed by the audit log, its
//! alerts to the human log, the syslog receivers and a webhook (see
//! docs/alerts.md).

use anyhow::{bail, Context, Result};
use obscura_alerts::{AlertsSection, Detector, LiveAlerts, Settings, Webhook};
use obscura_audit::Auditor;
use obscura_audit_export::syslog::Severity;
use obscura_audit_export::SyslogExporter;
use obscura_gateway::{log, Config};
use std::sync::Arc;

/// MSGID of an alert sent to syslog (its MSG is the alert's JSON).
const ALERT_MSGID: &str = "obscura-alert";

/// The vendor-class principals: `[alerts] vendors`, and every principal
/// that a grant (`[[web.grant]]` or the archive's grant store) gives a
/// de-identified view only.
fn vendors(
    config: &Config,
    section: &AlertsSection,
    grants: Option<&Arc<dyn obscura_access::GrantStore>>,
) -> Result<Vec<String>> {
    let mut views: Vec<(String, bool)> = Vec::new();
    let static_grants = config
        .web
        .as_ref()
        .and_then(|w| w.get("grant"))
        .and_then(|g| g.as_array());
    for g in static_grants.into_iter().flatten() {
        let field = |k| g.get(k).and_then(|v| v.as_str()).unwrap_or_default();
        views.push((
            field("principal").into(),
            field("view").starts_with("deidentified"),
        ));
    }
    if let Some(store) = grants {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        for g in store.list(None).context("the grant store")? {
            if g.live(now) {
                let deid = matches!(g.grant.view, obscura_access::View::Deidentified { .. });
                views.push((g.grant.principal.clone(), deid));
            }
        }
    }
    let mut out = section.vendors.clone();
    for (p, _) in views.iter().filter(|(_, deid)| *deid) {
        // de-identified only: no grant of the principal gives the original view
        if !views.iter().any(|(q, deid)| q == p && !deid) && !out.contains(p) {
            out.push(p.clone());
        }
    }
    Ok(out)
}

/// Start the live detector of `[alerts]`, if any, on `auditor`.
pub fn start(
    config: &Config,
    auditor: &Auditor,
    exporters: &[Arc<SyslogExporter>],
    grants: Option<&Arc<dyn obscura_access::GrantStore>>,
) -> Result<Option<Arc<LiveAlerts>>> {
    let Some(table) = &config.alerts else {
        return Ok(None);
    };
    let Some(audit) = &config.audit else {
        bail!("[alerts] reads the audit log: set [audit] too");
    };
    let section = AlertsSection::from_toml(table.clone(), &config.base_dir)
        .map_err(|e| anyhow::anyhow!(e))?;
    let webhook = match &section.webhook {
        Some(url) => {
            let tls = match &section.webhook_ca {
                Some(ca) => Some(
                    obscura_dimse::tls::client_config(ca, None).context("[alerts] webhook_ca")?,
                ),
                None => None,
            };
            Some(Webhook::new(url, tls).map_err(|e| anyhow::anyhow!("[alerts] {e}"))?)
        }
        None => None,
    };
    let syslog: Vec<Arc<SyslogExporter>> = if section.syslog {
        exporters.to_vec()
    } else {
        Vec::new()
    };
    let sink = Box::new(move |a: &obscura_alerts::Alert| {
        log(&a.describe());
        let json = serde_json::to_string(a).unwrap_or_default();
        for e in &syslog {
            e.send_text(ALERT_MSGID, Severity::Warning, json.clone());
        }
        if let Some(w) = &webhook {
            if let Err(e) = w.send(a) {
                log(&format!("alerts: webhook: {e}"));
            }
        }
    });
    let settings = Settings {
        vendors: vendors(config, &section, grants)?,
        ..Settings::default()
    };
    let vendor_count = settings.vendors.len();
    let live = LiveAlerts::start(Detector::new(settings), config.path(&audit.dir), sink);
    auditor.add_tap(Arc::clone(&live) as Arc<dyn obscura_audit::Tap>);
    log(&format!(
        "alerts on: baselines learned from the audit log, {vendor_count} vendor-class principals{}{}",
        if section.webhook.is_some() {
            ", to the webhook"
        } else {
            ""
        },
        if section.syslog && !exporters.is_empty() {
            ", to syslog"
        } else {
            ""
        }
    ));
    Ok(Some(live))
}
