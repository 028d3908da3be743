//! `obscura serve`: the DICOM gateway (see docs/gateway.md).

use crate::keys;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use obscura_deid::{Deidentifier, Pseudonymizer};
use obscura_gateway::{log, Config, Destination, Gateway};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Arguments of `obscura serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// The gateway's config file (TOML; see docs/gateway.md).
    #[arg(long)]
    config: PathBuf,
}

/// Run the gateway until SIGTERM or SIGINT.
pub fn run(args: &ServeArgs) -> Result<()> {
    let config = Config::load(&args.config)?;
    obscura_gateway::net::init_logging();
    let stop = Arc::new(AtomicBool::new(false));
    for p in config.plain_peers() {
        log(&format!(
            "warning: peer {} ({}) may send over plain DICOM, unencrypted",
            p.name, p.calling_ae
        ));
    }
    for d in &config.destinations {
        if let Ok(obscura_gateway::Delivery::Scu { tls: None, .. }) = config.delivery(d) {
            log(&format!(
                "warning: destination {} receives over plain DICOM, unencrypted",
                d.name
            ));
        }
    }
    let (vault, grants) = match config.archive() {
        Some(section) => {
            let vault = Arc::new(crate::archive::open_section(&section)?);
            log(&format!(
                "{}: {} tenants",
                crate::archive::describe(&section),
                vault.list_tenants()?.len()
            ));
            let grants = crate::archive::grant_store(&section)?;
            (Some(vault), Some(grants))
        }
        None => (None, None),
    };
    let mut destinations = Vec::new();
    let mut seen_keys: Vec<(String, String)> = Vec::new();
    for d in &config.destinations {
        let delivery = config.delivery(d)?;
        if let obscura_gateway::Delivery::Archive { tenant } = &delivery {
            let vault = vault
                .clone()
                .context("an archive destination needs [archive]")?;
            let id = vault
                .list_tenants()?
                .into_iter()
                .find(|t| t.name == *tenant || t.id.as_str() == tenant)
                .map(|t| t.id)
                .with_context(|| {
                    format!(
                        "destination {}: no tenant `{tenant}` in the archive (obscura tenant create)",
                        d.name
                    )
                })?;
            destinations.push(Destination {
                name: d.name.clone(),
                delivery,
                engine: None,
                allow_burned_in: false,
                archive: Some(obscura_gateway::ArchiveTarget { vault, tenant: id }),
            });
            continue;
        }
        let key_file = d
            .key_file
            .as_ref()
            .with_context(|| format!("destination {}: no key_file", d.name))?;
        let key_path = config.path(key_file);
        let key = keys::load(&key_path).with_context(|| format!("destination {}", d.name))?;
        if let Some((other, _)) = seen_keys.iter().find(|(_, k)| *k == key.to_hex()) {
            bail!(
                "destinations {other} and {} share a key: give each its own (obscura keygen), so their pseudonyms cannot be linked",
                d.name
            );
        }
        seen_keys.push((d.name.clone(), key.to_hex()));
        let profile = config
            .profile_source(d)?
            .load()
            .with_context(|| format!("destination {} profile", d.name))?;
        destinations.push(Destination {
            name: d.name.clone(),
            delivery,
            engine: Some(Deidentifier::new(profile, Pseudonymizer::new(key))),
            allow_burned_in: d.allow_burned_in,
            archive: None,
        });
    }
    let (auditor, exporters) = open_audit(&config, &args.config)?;
    let alerts = match &auditor {
        Some(a) => crate::serve_alerts::start(&config, a, &exporters, grants.as_ref())?,
        None if config.alerts.is_some() => bail!("[alerts] reads the audit log: set [audit] too"),
        None => None,
    };
    let mut tasks: Vec<obscura_gateway::net::Task> = Vec::new();
    if let (Some(vault), Some(section)) = (&vault, &config.web) {
        let web = obscura_web::WebConfig::from_toml(section.clone(), &config.base_dir)?;
        if web.plain {
            log(&format!(
                "warning: DICOMweb on {} is plain HTTP (loopback only)",
                web.listen
            ));
        }
        let tls = web.tls.is_some();
        let server = obscura_web::WebServer::with_grants(web, Arc::clone(vault), grants.clone())?;
        if let Some(a) = &auditor {
            server.set_audit(Arc::clone(a));
        }
        tasks.push(web_task(server, tls, Arc::clone(&stop)));
    }
    let transport = obscura_gateway::net::DimseTransport::new(config.server.max_pdu_length)
        .map_err(|e| anyhow!(e))?;
    let metrics_addr = config.server.metrics;
    let audit_dir = config.audit.as_ref().map(|a| config.path(&a.dir));
    let gw = Gateway::open(config, destinations, Box::new(transport))?;
    if let Some(live) = &alerts {
        let live = Arc::clone(live);
        gw.metrics
            .add_exposition(Box::new(move |out| live.exposition(out)));
    }
    let ticker = auditor.as_ref().zip(audit_dir).map(|(a, dir)| {
        gw.set_audit(Arc::clone(a));
        audit_timer(Arc::clone(a), dir, Arc::clone(&stop))
    });
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("cannot handle signals")?;
    }
    if let Some(addr) = metrics_addr {
        let bound = obscura_gateway::metrics::serve_metrics(
            addr,
            Arc::clone(&gw.metrics),
            Arc::clone(&stop),
        )
        .with_context(|| format!("cannot serve metrics on {addr}"))?;
        log(&format!("metrics on http://{bound}/metrics"));
    }
    let workers = gw.start_workers();
    log(&format!(
        "{} destinations, {} forwarding workers",
        gw.config().destinations.len(),
        workers.len()
    ));
    let served = obscura_gateway::net::serve_with(&gw, Arc::clone(&stop), tasks, |bound| {
        for (addr, tls) in bound {
            log(&format!(
                "listening on {addr} ({})",
                if *tls { "tls" } else { "plain" }
            ));
        }
    });
    log("stopping: in-flight associations finished; waiting for forwarders");
    stop.store(true, Ordering::SeqCst);
    gw.stop();
    for w in workers {
        let _ = w.join();
    }
    if let Some(t) = ticker {
        let _ = t.join();
    }
    if let Some(a) = &auditor {
        let (_, fsyncs) = a.durable();
        match a.close() {
            Ok(cp) => log(&format!(
                "audit log closed: {} records, checkpoint signed; {fsyncs} group-commit fsyncs",
                cp.size
            )),
            Err(e) => log(&format!("audit log: cannot close: {e}")),
        }
    }
    if let Some(live) = &alerts {
        live.close();
        log(&format!("alerts: {} raised", live.raised()));
    }
    crate::audit_syslog::close(&exporters);
    served.map_err(|e| anyhow!(e))?;
    log("stopped");
    Ok(())
}

/// The open audit log, if any, and its syslog exporters.
type Audit = (
    Option<Arc<obscura_audit::Auditor>>,
    Vec<Arc<obscura_audit_export::SyslogExporter>>,
);

/// Open the audit log of `[audit]` and start its exporters, or say that
/// audit is off.
fn open_audit(config: &Config, config_file: &Path) -> Result<Audit> {
    let Some(a) = &config.audit else {
        log("audit log off (no [audit] section): no audit records are written");
        return Ok((None, Vec::new()));
    };
    let signer =
        obscura_audit::Signer::load(&config.path(&a.signing_key)).context("[audit] signing_key")?;
    let key =
        obscura_audit::AuditKey::load(&config.path(&a.key_file)).context("[audit] key_file")?;
    let mut cfg = obscura_audit::LogConfig::new(config.path(&a.dir));
    cfg.witness_dir = a.witness.as_ref().map(|w| config.path(w));
    cfg.checkpoint_events = a.checkpoint_events;
    cfg.checkpoint_interval = std::time::Duration::from_secs(a.checkpoint_secs);
    cfg.sync = if a.sync_every <= 1 {
        obscura_audit::SyncPolicy::Always
    } else {
        obscura_audit::SyncPolicy::Batched(a.sync_every)
    };
    let dir = cfg.dir.clone();
    let origin = signer.name().to_string();
    let (auditor, report) =
        obscura_audit::Auditor::open(cfg, signer, key).context("[audit] cannot open the log")?;
    if let Some(t) = &report.torn {
        log(&format!(
            "audit log: a torn last record ({} bytes) was set aside and recorded",
            t.len
        ));
    }
    log(&format!(
        "audit log on: {} ({} records), checkpoint every {} events or {} s{}",
        dir.display(),
        report.records,
        a.checkpoint_events,
        a.checkpoint_secs,
        if a.witness.is_some() {
            ", copied to the witness folder"
        } else {
            ""
        }
    ));
    let exporters = crate::audit_syslog::start(config, &auditor, &origin)?;
    record_config(&auditor, config_file, &dir)?;
    if let Some(archive) = config.archive() {
        crate::admin_audit::write_pointer(&archive.data_dir, &dir, &config.path(&a.key_file))?;
    }
    Ok((Some(Arc::new(auditor)), exporters))
}

/// The file in the log folder that keeps the SHA-256 of the config the
/// last `config-change` record named.
const CONFIG_HASH: &str = "config.sha256";

/// Record a `config-change` (its SHA-256 and the previous one's) when the
/// config file differs from the one recorded last, or none was: durable
/// before `serve` takes any request.
fn record_config(a: &obscura_audit::Auditor, config_file: &Path, log_dir: &Path) -> Result<()> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(config_file)
        .with_context(|| format!("cannot read {}", config_file.display()))?;
    let hash = obscura_audit::event::hex(&Sha256::digest(&bytes));
    let kept = log_dir.join(CONFIG_HASH);
    let previous = std::fs::read_to_string(&kept).unwrap_or_default();
    let previous = previous.trim();
    if previous == hash {
        return Ok(());
    }
    let mut e = obscura_audit::AuditEvent::new(
        std::time::SystemTime::now(),
        obscura_audit::EventKind::ConfigChange,
        obscura_audit::Actor {
            principal: obscura_gateway::audit::SELF_PRINCIPAL.into(),
            ..Default::default()
        },
        obscura_audit::Outcome::Success,
    );
    e.route = Some("serve:start".into());
    e.detail.insert("config_sha256".into(), hash.clone());
    let previous = if previous.is_empty() {
        "none"
    } else {
        previous
    };
    e.detail.insert("previous_sha256".into(), previous.into());
    a.record_durable(e)
        .context("audit log: cannot record the config")?;
    obscura_audit::log::write_atomic_mode(&kept, format!("{hash}\n").as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", kept.display()))?;
    log(&format!(
        "audit log: config {} recorded (sha256 {})",
        config_file.display(),
        &hash[..16]
    ));
    Ok(())
}

/// Four times a second until `stop`: append the inbox's events (the
/// command line's changes and runs; at once at start, for what came while
/// `serve` was down, and once more at the end) and call the log's `tick()`,
/// so a checkpoint is written at most `checkpoint_secs` after the first
/// unsigned record.
fn audit_timer(
    auditor: Arc<obscura_audit::Auditor>,
    dir: PathBuf,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let (mut failing, mut inbox_failing) = (false, false);
        let drain = |failing: &mut bool| match obscura_audit::inbox::drain(&auditor, &dir) {
            Ok(d) => {
                *failing = false;
                if d.rejected > 0 {
                    log(&format!(
                        "audit inbox: {} files set aside in inbox/rejected (not a postable event)",
                        d.rejected
                    ));
                }
            }
            Err(e) if !*failing => {
                *failing = true;
                log(&format!("audit inbox: cannot append: {e}"));
            }
            Err(_) => {}
        };
        drain(&mut inbox_failing);
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(250));
            drain(&mut inbox_failing);
            match auditor.tick() {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    log(&format!("audit log: cannot write a checkpoint: {e}"));
                }
                Err(_) => {}
            }
        }
        drain(&mut inbox_failing);
    })
}

/// The DICOMweb server as a task of the gateway's runtime, until `stop`.
fn web_task(
    server: obscura_web::WebServer,
    tls: bool,
    stop: Arc<AtomicBool>,
) -> obscura_gateway::net::Task {
    Box::pin(async move {
        let listener = server
            .bind()
            .await
            .map_err(|e| format!("DICOMweb: cannot listen: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        log(&format!(
            "DICOMweb on {}",
            obscura_web::server::describe(addr, tls)
        ));
        let shutdown = async move {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        };
        server
            .serve(listener, shutdown)
            .await
            .map_err(|e| format!("DICOMweb: {e}"))
    })
}
