//! `[[audit.syslog]]` in `serve`: start one exporter per receiver, fed by
//! the audit log (see docs/audit.md).

use anyhow::{bail, Context, Result};
use obscura_audit::Auditor;
use obscura_audit_export::{AuditSource, SyslogConfig, SyslogExporter, SyslogSection};
use obscura_gateway::{log, Config};
use std::sync::Arc;
use std::time::Duration;

/// Start the exporters of `[[audit.syslog]]` and attach them to `auditor`.
pub fn start(config: &Config, auditor: &Auditor, origin: &str) -> Result<Vec<Arc<SyslogExporter>>> {
    let Some(section) = &config.audit else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for table in &section.syslog {
        let s = SyslogSection::from_toml(table.clone(), &config.base_dir)?;
        if let Some(key) = &s.key {
            if obscura_batch::paths::readable_by_others(key)
                .with_context(|| format!("[[audit.syslog]] key {}", key.display()))?
            {
                bail!(
                    "key file {} is readable by others: run chmod 600 on it",
                    key.display()
                );
            }
        }
        let tls = obscura_dimse::tls::client_config(&s.ca, s.cert.as_deref().zip(s.key.as_deref()))
            .with_context(|| format!("[[audit.syslog]] {}: TLS", s.address))?;
        let exporter = SyslogExporter::start(SyslogConfig {
            address: s.address.clone(),
            server_name: s.server_name.clone().unwrap_or_default(),
            tls,
            format: s.format()?,
            source: AuditSource {
                id: s.source_id.clone().unwrap_or_else(|| origin.to_string()),
                site: s.site_id.clone(),
            },
            header: obscura_audit_export::syslog::Header::this_process(),
            queue: s.queue,
            checkpoints: s.checkpoints,
            log: Box::new(log),
        })?;
        auditor.add_tap(Arc::clone(&exporter) as Arc<dyn obscura_audit::Tap>);
        log(&format!(
            "audit records to syslog over TLS at {} ({})",
            s.address, s.format
        ));
        out.push(exporter);
    }
    Ok(out)
}

/// Send what is queued (5 s at most if a receiver is down) and report.
pub fn close(exporters: &[Arc<SyslogExporter>]) {
    for e in exporters {
        e.close(Duration::from_secs(5));
        let s = e.stats();
        let get = |a: &std::sync::atomic::AtomicU64| a.load(std::sync::atomic::Ordering::Relaxed);
        log(&format!(
            "audit syslog: {} messages sent, {} records dropped, {} connections",
            get(&s.sent),
            get(&s.dropped),
            get(&s.connections)
        ));
    }
}
