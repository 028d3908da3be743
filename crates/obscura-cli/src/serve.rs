//! `obscura serve`: the DICOM gateway (see docs/gateway.md).

use crate::keys;
use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use obscura_deid::{Deidentifier, Pseudonymizer};
use obscura_gateway::{log, Config, Destination, Gateway};
use std::path::PathBuf;
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
    let (auditor, exporters, watch) = crate::serve_audit::open(&config, &args.config)?;
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
    let ticker = auditor
        .as_ref()
        .zip(audit_dir)
        .zip(watch)
        .map(|((a, dir), watch)| {
            gw.set_audit(Arc::clone(a));
            crate::serve_audit::timer(Arc::clone(a), dir, watch, Arc::clone(&stop))
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
