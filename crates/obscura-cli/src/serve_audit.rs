//! `obscura serve`'s audit log: opening it with its exporters, the facts
//! recorded at start (signing key, config), the watch on the config file
//! and the timer that drains the inbox and signs checkpoints.

use anyhow::{Context, Result};
use obscura_gateway::{log, Config};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The open audit log, if any, its syslog exporters, and the watch on
/// the config file.
pub type Audit = (
    Option<Arc<obscura_audit::Auditor>>,
    Vec<Arc<obscura_audit_export::SyslogExporter>>,
    Option<ConfigWatch>,
);

/// Open the audit log of `[audit]` and start its exporters, or say that
/// audit is off.
pub fn open(config: &Config, config_file: &Path) -> Result<Audit> {
    let Some(a) = &config.audit else {
        log("audit log off (no [audit] section): no audit records are written");
        return Ok((None, Vec::new(), None));
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
    let verifier = signer.verifier();
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
    let hash = record_start_facts(&auditor, &verifier, config_file, &dir)?;
    if let Some(archive) = config.archive() {
        crate::admin_audit::write_pointer(&archive.data_dir, &dir, &config.path(&a.key_file))?;
    }
    let watch = ConfigWatch::new(config_file.to_path_buf(), hash);
    Ok((Some(Arc::new(auditor)), exporters, Some(watch)))
}

/// The file in the log folder that keeps the SHA-256 of the config in
/// effect: the one the last start's `config-change` record named.
const CONFIG_HASH: &str = "config.sha256";

/// The file in the log folder that keeps the id of the key signing the
/// log: the one the last `key-change` record of a start named.
const SIGNING_KEY_ID: &str = "signing-key.id";

/// The SHA-256 of the config file's bytes (hex).
fn config_hash(config_file: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let bytes = std::fs::read(config_file)
        .with_context(|| format!("cannot read {}", config_file.display()))?;
    Ok(obscura_audit::event::hex(&Sha256::digest(&bytes)))
}

/// A record by `serve` itself, of `kind` on `route`, with `detail`.
fn own_event(
    kind: obscura_audit::EventKind,
    route: &str,
    detail: &[(&str, &str)],
) -> obscura_audit::AuditEvent {
    let mut e = obscura_gateway::audit::own(kind, obscura_audit::Outcome::Success, route.into());
    for (k, v) in detail {
        e.detail.insert(k.to_string(), v.to_string());
    }
    e
}

/// At start: record a `kind` event (route `serve:start`) naming `value`
/// as `name` and the value kept in the log folder's file `kept` as
/// `previous` (`none` if there was none), with `detail`, when the two
/// differ; durable before `serve` takes any request, then kept. Whether
/// it was recorded.
fn record_start(
    a: &obscura_audit::Auditor,
    kept: &Path,
    kind: obscura_audit::EventKind,
    (name, previous): (&str, &str),
    value: &str,
    detail: &[(&str, &str)],
) -> Result<bool> {
    let was = std::fs::read_to_string(kept).unwrap_or_default();
    let was = match was.trim() {
        "" => "none",
        w if w == value => return Ok(false),
        w => w,
    };
    let mut all = vec![(name, value), (previous, was)];
    all.extend_from_slice(detail);
    a.record_durable(own_event(kind, "serve:start", &all))
        .with_context(|| format!("audit log: cannot record the {name}"))?;
    obscura_audit::log::write_atomic_mode(kept, format!("{value}\n").as_bytes(), 0o600)
        .with_context(|| format!("cannot write {}", kept.display()))?;
    Ok(true)
}

/// Record at start what `serve` runs with, when it changed since the last
/// start: the key signing the log (its id and the SHA-256 of its public
/// key text; at a new log's first start, its genesis), then the config
/// file (its SHA-256). The config's hash, for the watch.
fn record_start_facts(
    a: &obscura_audit::Auditor,
    signer: &obscura_audit::Verifier,
    config_file: &Path,
    log_dir: &Path,
) -> Result<String> {
    use obscura_audit::EventKind;
    let key_id = format!("{:08x}", signer.key_id());
    let public = crate::audit::public_key_sha256(signer);
    record_start(
        a,
        &log_dir.join(SIGNING_KEY_ID),
        EventKind::KeyChange,
        ("key_id", "previous_key_id"),
        &key_id,
        &[("key_name", signer.name()), ("public_key_sha256", &public)],
    )?;
    let hash = config_hash(config_file)?;
    if record_start(
        a,
        &log_dir.join(CONFIG_HASH),
        EventKind::ConfigChange,
        ("config_sha256", "previous_sha256"),
        &hash,
        &[("in_effect", "true")],
    )? {
        log(&format!(
            "audit log: config {} recorded (sha256 {})",
            config_file.display(),
            &hash[..16]
        ));
    }
    Ok(hash)
}

/// The config file as `serve` watches it while running: a `config-change`
/// record (route `serve:watch`, `in_effect: false`: it takes effect at
/// the next start) once per distinct new content on disk.
pub struct ConfigWatch {
    file: PathBuf,
    /// The hash of the config in effect.
    running: String,
    /// The hash last read from disk.
    on_disk: String,
    /// The hashes recorded while running.
    recorded: std::collections::HashSet<String>,
}

impl ConfigWatch {
    fn new(file: PathBuf, running: String) -> Self {
        ConfigWatch {
            file,
            on_disk: running.clone(),
            running,
            recorded: Default::default(),
        }
    }

    /// Read the file's hash; record it if it is new (not the one in
    /// effect, not recorded before in this run). A changed file is read
    /// once more after `SETTLE`, and taken only when both reads agree: an
    /// editor that truncates and then writes would otherwise be recorded
    /// as an empty config. An unreadable or unsettled file is read again
    /// at the next look.
    fn look(&mut self, a: &obscura_audit::Auditor) {
        let Ok(hash) = config_hash(&self.file) else {
            return;
        };
        if hash == self.on_disk {
            return;
        }
        std::thread::sleep(SETTLE);
        if config_hash(&self.file).ok().as_ref() != Some(&hash) {
            return;
        }
        self.on_disk = hash.clone();
        if hash == self.running || self.recorded.contains(&hash) {
            return;
        }
        let detail = [
            ("config_sha256", hash.as_str()),
            ("previous_sha256", self.running.as_str()),
            ("in_effect", "false"),
        ];
        match a.record_durable(own_event(
            obscura_audit::EventKind::ConfigChange,
            "serve:watch",
            &detail,
        )) {
            Ok(_) => {
                log(&format!(
                    "audit log: config {} changed on disk (sha256 {}): in effect at the next start",
                    self.file.display(),
                    &hash[..16]
                ));
                self.recorded.insert(hash);
            }
            // looked at again once the file changes again
            Err(e) => log(&format!("audit log: cannot record the config change: {e}")),
        }
    }
}

/// How long a changed config file must read the same before it is taken.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(200);

/// How many ticks of the audit timer between two looks at the config file.
const WATCH_TICKS: u32 = 8;

/// Four times a second until `stop`: append the inbox's events (the
/// command line's changes and runs; at once at start, for what came while
/// `serve` was down, and once more at the end) and call the log's `tick()`,
/// so a checkpoint is written at most `checkpoint_secs` after the first
/// unsigned record; every 2 s, look at the config file (`watch`).
pub fn timer(
    auditor: Arc<obscura_audit::Auditor>,
    dir: PathBuf,
    mut watch: ConfigWatch,
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
        let mut ticks = 0u32;
        while !stop.load(Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(250));
            drain(&mut inbox_failing);
            ticks += 1;
            if ticks.is_multiple_of(WATCH_TICKS) {
                watch.look(&auditor);
            }
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
