//! The gateway's one TOML file: the server, its peers, destinations and
//! routes. Keys are never in it: each destination names a key file.

use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration problem (names config keys and peers, never data).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    /// The TOML is invalid or has unknown keys.
    #[error("{0}")]
    Toml(String),
    /// The content is inconsistent.
    #[error("{0}")]
    Invalid(String),
}

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listener, limits, data folder, metrics.
    pub server: ServerSection,
    /// Who may send (default deny: nobody else).
    #[serde(default, rename = "peer")]
    pub peers: Vec<PeerConfig>,
    /// Where de-identified copies go.
    #[serde(default, rename = "destination")]
    pub destinations: Vec<DestinationConfig>,
    /// Which peer's data goes to which destinations.
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteConfig>,
    /// The encrypted archive (obscura-vault), if this gateway keeps one.
    pub archive: Option<ArchiveSection>,
    /// DICOMweb (`obscura-web`): kept as TOML here, parsed and checked by
    /// that crate, which the gateway does not depend on.
    pub web: Option<toml::Table>,
    /// The tamper-evident audit log (`obscura-audit`); absent = audit off.
    pub audit: Option<AuditSection>,
    /// Alerts on abnormal access (`obscura-alerts`, fed by the audit log),
    /// kept raw: that crate reads it.
    pub alerts: Option<toml::Table>,
    /// The folder relative paths are resolved against (the config's folder).
    #[serde(skip)]
    pub base_dir: PathBuf,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Our AE title (called AE title peers must use unless they name another).
    pub ae_title: String,
    /// Plain DICOM listener (only peers with `plain = true` are admitted on it).
    pub listen: Option<SocketAddr>,
    /// TLS listener.
    pub tls: Option<TlsServerConfig>,
    /// Spool, queue, quarantine.
    pub data_dir: PathBuf,
    /// Prometheus metrics on this address (loopback only).
    pub metrics: Option<SocketAddr>,
    /// Concurrent associations.
    #[serde(default = "default_max_associations")]
    pub max_associations: usize,
    /// Largest PDU we accept.
    #[serde(default = "default_max_pdu")]
    pub max_pdu_length: u32,
    /// Idle association timeout.
    #[serde(default = "default_idle_secs")]
    pub idle_timeout_secs: u64,
    /// Largest data set accepted (bytes).
    #[serde(default = "default_max_dataset")]
    pub max_dataset_bytes: u64,
    /// Forwarding worker threads.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// How long forwarded originals stay in the spool (seconds; 0 = removed at once).
    #[serde(default)]
    pub retention_secs: u64,
    /// Delivery attempts before a job is marked failed (it can be retried by a restart).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// First retry delay (doubles per attempt, capped at 10 minutes).
    #[serde(default = "default_retry_ms")]
    pub retry_initial_ms: u64,
    /// A shared queue: `postgres://user@host:port/database` (no password in
    /// it). Absent: SQLite in `data_dir`, for this process alone.
    pub database_url: Option<String>,
    /// The database password, in a file readable by its owner only (else
    /// the `PGPASSWORD` environment variable, else none).
    pub database_password_file: Option<PathBuf>,
    /// The CA certificate(s) (PEM) that sign the database server's
    /// certificate: the queue then speaks TLS to it (required for a
    /// database on another host).
    pub database_ca_file: Option<PathBuf>,
    /// Where received originals wait to be forwarded. With `database_url`,
    /// a folder every process sharing the database mounts (required);
    /// default `data_dir/spool`.
    pub spool_dir: Option<PathBuf>,
    /// With `database_url`: how long a claimed job stays with a process
    /// that stopped renewing its lease (it died) before another takes it.
    #[serde(default = "default_lease_secs")]
    pub lease_secs: u64,
}

fn default_max_associations() -> usize {
    64
}
fn default_max_pdu() -> u32 {
    65536
}
fn default_idle_secs() -> u64 {
    60
}
fn default_max_dataset() -> u64 {
    4 << 30
}
fn default_workers() -> usize {
    2
}
fn default_max_attempts() -> u32 {
    30
}
fn default_retry_ms() -> u64 {
    500
}
fn default_lease_secs() -> u64 {
    60
}

/// `[archive]`: where the archive lives and its master key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSection {
    /// The archive's data folder (the SQLite index and encrypted objects,
    /// unless `database_url` and `[archive.object_store]` say otherwise).
    pub data_dir: PathBuf,
    /// The master key file (64 hex digits, mode 0600; `obscura keygen`).
    pub master_key_file: PathBuf,
    /// The index in PostgreSQL (`postgres://user@host:port/db`, no
    /// password), shared by several `serve` processes.
    pub database_url: Option<String>,
    /// The database password (mode 0600); else `PGPASSWORD`, if set.
    pub database_password_file: Option<PathBuf>,
    /// The CA certificate(s) of a database on another host (TLS).
    pub database_ca_file: Option<PathBuf>,
    /// Objects in an S3-compatible bucket instead of `data_dir`.
    pub object_store: Option<ObjectStoreSection>,
}

/// `[archive.object_store]`: an S3-compatible bucket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectStoreSection {
    /// The bucket.
    pub bucket: String,
    /// The endpoint URL; AWS's (from the region) if missing.
    pub endpoint: Option<String>,
    /// The region.
    pub region: Option<String>,
    /// A key prefix for the archive's objects.
    #[serde(default)]
    pub prefix: String,
    /// A file (mode 0600) of `AWS_ACCESS_KEY_ID=…`, `AWS_SECRET_ACCESS_KEY=…`
    /// (and `AWS_SESSION_TOKEN=…`) lines; else the environment's credentials.
    pub credentials_file: Option<PathBuf>,
}

/// `[server.tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsServerConfig {
    /// TLS listener address.
    pub listen: SocketAddr,
    /// Our certificate chain (PEM).
    pub cert: PathBuf,
    /// Our private key (PEM; mode 0600).
    pub key: PathBuf,
    /// Require client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// `[[peer]]`: one sender we admit.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Name used in routes, logs and status.
    pub name: String,
    /// The calling AE title it must use.
    pub calling_ae: String,
    /// The called AE title it must use (default: our AE title).
    pub called_ae: Option<String>,
    /// Source addresses or CIDR blocks it may connect from.
    pub addresses: Vec<String>,
    /// SHA-256 of its client certificate (DER), hex; TLS only.
    pub client_cert_sha256: Option<String>,
    /// May send over plain DICOM (no TLS).
    #[serde(default)]
    pub plain: bool,
}

/// `[[destination]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    /// Name used in routes, status and metrics.
    pub name: String,
    /// A folder to write into.
    pub folder: Option<PathBuf>,
    /// A remote SCP (`host:port`).
    pub host: Option<String>,
    /// The remote AE title.
    pub called_ae: Option<String>,
    /// Our AE title towards it (default: the server's).
    pub calling_ae: Option<String>,
    /// TLS towards it (unless `plain`).
    pub tls: Option<TlsClientConfig>,
    /// Send over plain DICOM.
    #[serde(default)]
    pub plain: bool,
    /// A profile file, or an inline profile table (docs/profiles.md).
    pub profile: Option<toml::Value>,
    /// This destination's own key file (64 hex digits, mode 0600); not for
    /// an archive destination, which keeps originals (encrypted).
    pub key_file: Option<PathBuf>,
    /// Deliver into the archive (`[archive]`), under this tenant (name or id).
    pub archive_tenant: Option<String>,
    /// Forward objects whose pixels may carry burned-in identity anyway.
    #[serde(default)]
    pub allow_burned_in: bool,
}

/// `[destination.tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsClientConfig {
    /// CA bundle the remote's certificate must chain to (PEM).
    pub ca: PathBuf,
    /// Our client certificate (PEM), for mutual TLS.
    pub cert: Option<PathBuf>,
    /// Its key (PEM).
    pub key: Option<PathBuf>,
    /// The name to verify (default: the host part of `host`).
    pub server_name: Option<String>,
}

/// `[audit]`: the tamper-evident audit log (see docs/audit.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// The log folder (segments, checkpoints).
    pub dir: PathBuf,
    /// The Ed25519 signing key (`obscura audit keygen`), mode 0600.
    pub signing_key: PathBuf,
    /// The site audit key (64 hex digits, `obscura keygen`), mode 0600: the
    /// HMAC key of patient, study and instance references.
    pub key_file: PathBuf,
    /// A folder that receives a copy of every checkpoint (another disk,
    /// host or owner).
    pub witness: Option<PathBuf>,
    /// A checkpoint at the latest after this many events.
    #[serde(default = "default_checkpoint_events")]
    pub checkpoint_events: u64,
    /// A checkpoint at the latest this many seconds after the first
    /// unsigned event (a timer checks every second).
    #[serde(default = "default_checkpoint_secs")]
    pub checkpoint_secs: u64,
    /// fsync every this many events (1 = every event). Events that
    /// acknowledge a C-STORE are fsync'd before the answer whatever this says.
    #[serde(default = "default_sync_every")]
    pub sync_every: u64,
    /// `[[audit.syslog]]`: receivers of every record, kept raw (the
    /// exporter, `obscura-audit-export`, reads them).
    #[serde(default)]
    pub syslog: Vec<toml::Table>,
}

fn default_checkpoint_events() -> u64 {
    1000
}
fn default_checkpoint_secs() -> u64 {
    10
}
fn default_sync_every() -> u64 {
    1
}

/// `[[route]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Peer names.
    pub from: Vec<String>,
    /// Destination names.
    pub to: Vec<String>,
}

/// Parse `database_url`: PostgreSQL, no password in it, and without `tls`
/// a local socket or a loopback address.
fn parse_database_url(url: &str, tls: bool) -> Result<tokio_postgres::Config, ConfigError> {
    let bad = |m: &str| Err(ConfigError::Invalid(format!("server.database_url: {m}")));
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return bad("not a postgres:// URL");
    }
    let Ok(db) = url.parse::<tokio_postgres::Config>() else {
        return bad("cannot parse it (postgres://user@host:port/database)");
    };
    if db.get_password().is_some() {
        return bad("holds a password: put it in database_password_file (mode 0600) or PGPASSWORD");
    }
    if db.get_dbname().is_none() || db.get_user().is_none() {
        return bad("name the user and the database (postgres://user@host:port/database)");
    }
    let local = |h: &tokio_postgres::config::Host| match h {
        tokio_postgres::config::Host::Tcp(name) => {
            name == "localhost"
                || name
                    .trim_matches(['[', ']'])
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        tokio_postgres::config::Host::Unix(_) => true,
    };
    let remote =
        !db.get_hosts().iter().all(local) || db.get_hostaddrs().iter().any(|a| !a.is_loopback());
    if remote && !tls {
        return bad("a database on another host is reached over TLS: set database_ca_file");
    }
    Ok(db)
}

/// How a destination is reached.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// Files in a folder.
    Folder(PathBuf),
    /// The archive (originals, encrypted under the tenant's keys).
    Archive {
        /// The tenant's name or id.
        tenant: String,
    },
    /// C-STORE to a remote SCP.
    Scu {
        /// `host:port`.
        host: String,
        /// Remote AE title.
        called_ae: String,
        /// Our AE title.
        calling_ae: String,
        /// TLS settings, `None` for plain.
        tls: Option<TlsClientConfig>,
    },
}

/// Where a profile comes from.
#[derive(Debug, Clone)]
pub enum ProfileSource {
    /// The basic profile.
    Basic,
    /// A profile file.
    File(PathBuf),
    /// Inline TOML (the same format as a profile file).
    Inline(String),
}

impl ProfileSource {
    /// Load it as an engine profile.
    pub fn load(&self) -> Result<obscura_deid::Profile, ConfigError> {
        let text = match self {
            ProfileSource::Basic => return Ok(obscura_deid::Profile::basic()),
            ProfileSource::File(p) => {
                std::fs::read_to_string(p).map_err(|e| ConfigError::Read(p.clone(), e))?
            }
            ProfileSource::Inline(t) => t.clone(),
        };
        obscura_deid::Profile::from_toml(&text).map_err(|e| ConfigError::Invalid(e.to_string()))
    }
}

impl Config {
    /// Read and check a config file; relative paths resolve against its folder.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_path_buf(), e))?;
        let base = path
            .parent()
            .map(|p| p.to_path_buf())
            .unwrap_or_else(|| PathBuf::from("."));
        Config::parse(&text, &base)
    }

    /// Parse and check config text.
    pub fn parse(text: &str, base_dir: &Path) -> Result<Config, ConfigError> {
        let mut c: Config = toml::from_str(text).map_err(|e| ConfigError::Toml(e.to_string()))?;
        c.base_dir = base_dir.to_path_buf();
        c.check()?;
        Ok(c)
    }

    /// A path from the config, resolved against its folder.
    pub fn path(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }

    /// The data folder.
    pub fn data_dir(&self) -> PathBuf {
        self.path(&self.server.data_dir)
    }

    /// Where received originals wait to be forwarded.
    pub fn spool_dir(&self) -> PathBuf {
        match &self.server.spool_dir {
            Some(p) => self.path(p),
            None => self.data_dir().join("spool"),
        }
    }

    /// The shared queue's connection settings (`database_url`, the password
    /// from `database_password_file` or `PGPASSWORD`; TLS when
    /// `database_ca_file` is set), or `None` for the embedded SQLite queue.
    pub fn database(&self) -> Result<Option<tokio_postgres::Config>, ConfigError> {
        let Some(url) = &self.server.database_url else {
            return Ok(None);
        };
        let mut db = parse_database_url(url, self.server.database_ca_file.is_some())?;
        let password = match &self.server.database_password_file {
            Some(p) => {
                let p = self.path(p);
                crate::net::check_private_file(&p).map_err(ConfigError::Invalid)?;
                let text = std::fs::read_to_string(&p).map_err(|e| ConfigError::Read(p, e))?;
                Some(text.trim_end_matches(['\r', '\n']).to_string())
            }
            None => std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()),
        };
        if let Some(p) = password {
            db.password(p);
        }
        db.application_name("obscura serve");
        db.connect_timeout(Duration::from_secs(10));
        db.ssl_mode(match self.server.database_ca_file {
            Some(_) => tokio_postgres::config::SslMode::Require,
            None => tokio_postgres::config::SslMode::Disable,
        });
        Ok(Some(db))
    }

    /// The `[archive]` section, its paths resolved.
    pub fn archive(&self) -> Option<ArchiveSection> {
        let a = self.archive.as_ref()?;
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| self.path(p));
        Some(ArchiveSection {
            data_dir: self.path(&a.data_dir),
            master_key_file: self.path(&a.master_key_file),
            database_url: a.database_url.clone(),
            database_password_file: path(&a.database_password_file),
            database_ca_file: path(&a.database_ca_file),
            object_store: a.object_store.as_ref().map(|o| ObjectStoreSection {
                credentials_file: path(&o.credentials_file),
                ..o.clone()
            }),
        })
    }

    /// The idle timeout.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.server.idle_timeout_secs.max(1))
    }

    fn check(&self) -> Result<(), ConfigError> {
        let bad = |m: String| Err(ConfigError::Invalid(m));
        check_ae(&self.server.ae_title, "server.ae_title")?;
        if let Some(a) = &self.audit {
            if a.checkpoint_events == 0 || a.checkpoint_secs == 0 || a.sync_every == 0 {
                return bad(
                    "audit: checkpoint_events, checkpoint_secs and sync_every must be at least 1"
                        .into(),
                );
            }
        }
        if let Some(url) = &self.server.database_url {
            parse_database_url(url, self.server.database_ca_file.is_some())?;
            if self.server.spool_dir.is_none() {
                return bad("server: with database_url, set spool_dir to a folder every process sharing the database mounts (docs/gateway.md, scale-out)".into());
            }
            if self.server.lease_secs < 2 {
                return bad("server.lease_secs must be at least 2".into());
            }
        }
        if self.server.listen.is_none() && self.server.tls.is_none() {
            return bad("server: set `listen` (plain) or [server.tls] (or both)".into());
        }
        if let Some(m) = self.server.metrics {
            if !m.ip().is_loopback() {
                return bad("server.metrics must be a loopback address".into());
            }
        }
        if self.web.is_some() && self.archive.is_none() {
            return bad("[web] serves the archive: set [archive] too".into());
        }
        if let Some(a) = &self.archive {
            if self.path(&a.data_dir) == self.data_dir() {
                return bad(
                    "archive.data_dir must be a folder of its own, not server.data_dir".into(),
                );
            }
        }
        let mut names = BTreeSet::new();
        for p in &self.peers {
            if !names.insert(p.name.clone()) {
                return bad(format!("peer `{}` is defined twice", p.name));
            }
            check_ae(&p.calling_ae, &format!("peer `{}` calling_ae", p.name))?;
            if let Some(c) = &p.called_ae {
                check_ae(c, &format!("peer `{}` called_ae", p.name))?;
            }
            if p.addresses.is_empty() {
                return bad(format!("peer `{}`: list its source `addresses`", p.name));
            }
            for a in &p.addresses {
                Cidr::parse(a).ok_or_else(|| {
                    ConfigError::Invalid(format!("peer `{}`: bad address `{a}`", p.name))
                })?;
            }
            if let Some(h) = &p.client_cert_sha256 {
                if normalize_fingerprint(h).is_none() {
                    return bad(format!(
                        "peer `{}`: client_cert_sha256 is not 64 hex digits",
                        p.name
                    ));
                }
            }
            if p.plain && self.server.listen.is_none() {
                return bad(format!(
                    "peer `{}` is plain but the server has no plain `listen`",
                    p.name
                ));
            }
        }
        let mut dests = BTreeSet::new();
        for d in &self.destinations {
            if !dests.insert(d.name.clone()) {
                return bad(format!("destination `{}` is defined twice", d.name));
            }
            if !d
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                return bad(format!(
                    "destination `{}`: names are letters, digits, - and _",
                    d.name
                ));
            }
            match self.delivery(d)? {
                Delivery::Archive { .. } => {
                    if self.archive.is_none() {
                        return bad(format!(
                            "destination `{}` delivers into the archive: set [archive]",
                            d.name
                        ));
                    }
                    if d.key_file.is_some() || d.profile.is_some() || d.allow_burned_in {
                        return bad(format!(
                            "destination `{}`: the archive keeps originals: no key_file, profile or allow_burned_in",
                            d.name
                        ));
                    }
                }
                _ if d.key_file.is_none() => {
                    return bad(format!("destination `{}`: set its key_file", d.name));
                }
                _ => {}
            }
            self.profile_source(d)?;
        }
        for r in &self.routes {
            for f in &r.from {
                if !names.contains(f) {
                    return bad(format!("route from unknown peer `{f}`"));
                }
            }
            for t in &r.to {
                if !dests.contains(t) {
                    return bad(format!("route to unknown destination `{t}`"));
                }
            }
        }
        Ok(())
    }

    /// How a destination is reached.
    pub fn delivery(&self, d: &DestinationConfig) -> Result<Delivery, ConfigError> {
        let bad = |m: &str| {
            Err(ConfigError::Invalid(format!(
                "destination `{}`: {m}",
                d.name
            )))
        };
        if let Some(tenant) = &d.archive_tenant {
            if d.folder.is_some() || d.host.is_some() || d.tls.is_some() || d.plain {
                return bad("an archive destination takes no folder/host/tls/plain");
            }
            return Ok(Delivery::Archive {
                tenant: tenant.clone(),
            });
        }
        match (&d.folder, &d.host) {
            (Some(f), None) => {
                if d.tls.is_some() || d.plain || d.called_ae.is_some() {
                    return bad("a folder destination takes no tls/plain/called_ae");
                }
                Ok(Delivery::Folder(self.path(f)))
            }
            (None, Some(h)) => {
                let Some(called) = &d.called_ae else {
                    return bad("set called_ae");
                };
                check_ae(called, &format!("destination `{}` called_ae", d.name))?;
                if h.rsplit_once(':')
                    .and_then(|(_, p)| p.parse::<u16>().ok())
                    .is_none()
                {
                    return bad("host must be host:port");
                }
                let tls = match (&d.tls, d.plain) {
                    (Some(_), true) => return bad("set either tls or plain = true, not both"),
                    (None, false) => {
                        return bad(
                            "set [destination.tls] or plain = true (plain is never implied)",
                        )
                    }
                    (Some(t), false) => {
                        let mut t = t.clone();
                        t.ca = self.path(&t.ca);
                        t.cert = t.cert.as_deref().map(|p| self.path(p));
                        t.key = t.key.as_deref().map(|p| self.path(p));
                        Some(t)
                    }
                    (None, true) => None,
                };
                Ok(Delivery::Scu {
                    host: h.clone(),
                    called_ae: called.clone(),
                    calling_ae: d
                        .calling_ae
                        .clone()
                        .unwrap_or_else(|| self.server.ae_title.clone()),
                    tls,
                })
            }
            _ => bad("set exactly one of `folder`, `host` or `archive_tenant`"),
        }
    }

    /// Where a destination's profile comes from.
    pub fn profile_source(&self, d: &DestinationConfig) -> Result<ProfileSource, ConfigError> {
        match &d.profile {
            None => Ok(ProfileSource::Basic),
            Some(toml::Value::String(p)) => Ok(ProfileSource::File(self.path(Path::new(p)))),
            Some(toml::Value::Table(t)) => Ok(ProfileSource::Inline(
                toml::to_string(t).map_err(|e| ConfigError::Toml(e.to_string()))?,
            )),
            Some(_) => Err(ConfigError::Invalid(format!(
                "destination `{}`: profile is a file path or a table",
                d.name
            ))),
        }
    }

    /// Destinations a peer's data goes to, in config order, deduplicated.
    pub fn routes_for(&self, peer: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.routes {
            if r.from.iter().any(|f| f == peer) {
                for t in &r.to {
                    if !out.contains(t) {
                        out.push(t.clone());
                    }
                }
            }
        }
        out
    }

    /// Peers admitted without TLS (each gets a start-up warning).
    pub fn plain_peers(&self) -> Vec<&PeerConfig> {
        self.peers.iter().filter(|p| p.plain).collect()
    }

    /// Destination name → config.
    pub fn destinations_by_name(&self) -> BTreeMap<&str, &DestinationConfig> {
        self.destinations
            .iter()
            .map(|d| (d.name.as_str(), d))
            .collect()
    }
}

fn check_ae(ae: &str, what: &str) -> Result<(), ConfigError> {
    let ok = !ae.trim().is_empty()
        && ae.len() <= 16
        && ae
            .chars()
            .all(|c| c.is_ascii() && !c.is_ascii_control() && c != '\\');
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Invalid(format!(
            "{what}: an AE title is 1-16 ASCII characters"
        )))
    }
}

/// A hex SHA-256 fingerprint, lower case, separators (`:`) dropped.
pub fn normalize_fingerprint(s: &str) -> Option<String> {
    let h: String = s
        .chars()
        .filter(|c| *c != ':')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit())).then_some(h)
}

/// An address or CIDR block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `127.0.0.1`, `::1`, `fd00::/8`.
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p.parse::<u8>().ok()?)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = p.unwrap_or(max);
        (prefix <= max).then_some(Cidr { addr, prefix })
    }

    /// Whether `ip` is inside the block (IPv4-mapped IPv6 counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(IpAddr::V4)
                .unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(n) & mask == u32::from(i) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(i)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(n) & mask == u128::from(i) & mask
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[server]
ae_title = "OBSCURA"
listen = "127.0.0.1:11112"
data_dir = "data"

[[peer]]
name = "pacs"
calling_ae = "PACS"
addresses = ["127.0.0.0/8"]
plain = true

[[destination]]
name = "vendor-a"
folder = "out"
key_file = "a.key"
profile = { options = ["clean-descriptors"] }

[[destination]]
name = "reader"
host = "127.0.0.1:104"
called_ae = "READER"
plain = true
profile = "research.toml"
key_file = "b.key"

[[route]]
from = ["pacs"]
to = ["vendor-a", "reader"]
"#;

    #[test]
    fn parses_and_routes() {
        let c = Config::parse(CONFIG, Path::new("/etc/obscura")).unwrap();
        assert_eq!(c.routes_for("pacs"), vec!["vendor-a", "reader"]);
        assert!(c.routes_for("other").is_empty());
        assert_eq!(c.data_dir(), PathBuf::from("/etc/obscura/data"));
        let d = &c.destinations[0];
        assert!(matches!(c.delivery(d).unwrap(), Delivery::Folder(_)));
        match c.profile_source(d).unwrap() {
            ProfileSource::Inline(t) => {
                let p = ProfileSource::Inline(t).load().unwrap();
                assert!(p.has(obscura_deid::DeidOption::CleanDescriptors));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            c.profile_source(&c.destinations[1]).unwrap(),
            ProfileSource::File(_)
        ));
    }

    #[test]
    fn refuses_inconsistent_configs() {
        let unknown_dest = CONFIG.replace("to = [\"vendor-a\", \"reader\"]", "to = [\"x\"]");
        assert!(Config::parse(&unknown_dest, Path::new(".")).is_err());
        let implied_plain = CONFIG.replace("plain = true\nprofile", "profile");
        assert!(Config::parse(&implied_plain, Path::new(".")).is_err());
        let unknown_key = CONFIG.replace("data_dir", "dta_dir");
        assert!(Config::parse(&unknown_key, Path::new(".")).is_err());
        let no_addresses = CONFIG.replace("addresses = [\"127.0.0.0/8\"]", "addresses = []");
        assert!(Config::parse(&no_addresses, Path::new(".")).is_err());
    }

    #[test]
    fn shared_queue_settings() {
        let with = |lines: &str| {
            let text = CONFIG.replace(
                "data_dir = \"data\"",
                &format!("data_dir = \"data\"\n{lines}"),
            );
            Config::parse(&text, Path::new("/etc/obscura"))
        };
        let err = |lines: &str| with(lines).unwrap_err().to_string();
        let c = with(
            "database_url = \"postgres://obscura@127.0.0.1:5432/q\"\nspool_dir = \"/mnt/spool\"",
        )
        .unwrap();
        assert_eq!(c.spool_dir(), PathBuf::from("/mnt/spool"));
        let db = c.database().unwrap().unwrap();
        assert_eq!(db.get_dbname(), Some("q"));
        assert_eq!(c.server.lease_secs, 60);
        let embedded = Config::parse(CONFIG, Path::new("/etc/obscura")).unwrap();
        assert!(embedded.database().unwrap().is_none());
        assert_eq!(
            embedded.spool_dir(),
            PathBuf::from("/etc/obscura/data/spool")
        );
        assert!(err("database_url = \"postgres://obscura@127.0.0.1/q\"").contains("spool_dir"));
        assert!(err(
            "database_url = \"postgres://obscura:hunter2@127.0.0.1/q\"\nspool_dir = \"s\""
        )
        .contains("password"));
        assert!(!err(
            "database_url = \"postgres://obscura:hunter2@127.0.0.1/q\"\nspool_dir = \"s\""
        )
        .contains("hunter2"));
        assert!(
            err("database_url = \"postgres://obscura@db.example.org/q\"\nspool_dir = \"s\"")
                .contains("TLS")
        );
        assert!(
            with("database_url = \"postgres://obscura@db.example.org/q\"\nspool_dir = \"s\"\ndatabase_ca_file = \"ca.pem\"")
                .is_ok(),
            "across a network with TLS"
        );
        assert!(
            err("database_url = \"mysql://obscura@127.0.0.1/q\"\nspool_dir = \"s\"")
                .contains("postgres://")
        );
        // the password comes from a file readable by its owner only
        let dir = tempfile::tempdir().unwrap();
        let pass = dir.path().join("pg.pass");
        std::fs::write(&pass, "s3cret\n").unwrap();
        let text = CONFIG.replace(
            "data_dir = \"data\"",
            "data_dir = \"data\"\ndatabase_url = \"postgres://obscura@localhost/q\"\nspool_dir = \"s\"\ndatabase_password_file = \"pg.pass\"",
        );
        let c = Config::parse(&text, dir.path()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(c
            .database()
            .unwrap_err()
            .to_string()
            .contains("readable by others"));
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            c.database().unwrap().unwrap().get_password(),
            Some(&b"s3cret"[..])
        );
    }

    #[test]
    fn archive_destinations() {
        let with_archive = format!(
            "{CONFIG}\n[archive]\ndata_dir = \"archive\"\nmaster_key_file = \"m.key\"\n\n[[destination]]\nname = \"vault\"\narchive_tenant = \"Site A\"\n"
        );
        let c = Config::parse(&with_archive, Path::new("/srv")).unwrap();
        let d = c.destinations.iter().find(|d| d.name == "vault").unwrap();
        assert!(
            matches!(c.delivery(d).unwrap(), Delivery::Archive { tenant } if tenant == "Site A")
        );
        let a = c.archive().unwrap();
        assert_eq!(
            (a.data_dir, a.master_key_file),
            (PathBuf::from("/srv/archive"), PathBuf::from("/srv/m.key"))
        );
        let no_section = with_archive.replace(
            "[archive]\ndata_dir = \"archive\"\nmaster_key_file = \"m.key\"\n",
            "",
        );
        assert!(Config::parse(&no_section, Path::new(".")).is_err());
        let with_key = with_archive.replace(
            "archive_tenant = \"Site A\"",
            "archive_tenant = \"Site A\"\nkey_file = \"k\"",
        );
        assert!(Config::parse(&with_key, Path::new(".")).is_err());
        let same_dir = with_archive.replace("data_dir = \"archive\"", "data_dir = \"data\"");
        assert!(Config::parse(&same_dir, Path::new(".")).is_err());
        let web_without_archive = format!("{CONFIG}\n[web]\nlisten = \"127.0.0.1:1\"\n");
        assert!(Config::parse(&web_without_archive, Path::new(".")).is_err());
        let no_key = CONFIG.replace("key_file = \"a.key\"\n", "");
        assert!(Config::parse(&no_key, Path::new(".")).is_err());
    }

    #[test]
    fn cidr() {
        let c = Cidr::parse("10.1.0.0/16").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("10.2.0.1".parse().unwrap()));
        assert!(c.contains("::ffff:10.1.9.9".parse().unwrap()));
        let one = Cidr::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert!(Cidr::parse("::1").unwrap().contains("::1".parse().unwrap()));
        assert!(Cidr::parse("1.2.3.4/33").is_none());
        assert!(Cidr::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
    }
}
