//! [`SyslogExporter`]: a [`Tap`] that sends every audit record (and every
//! checkpoint) to a syslog receiver over TLS, RFC 5425 framing, from a
//! thread of its own. The log never waits for the network: records go
//! through a bounded queue; when it is full (the receiver down for long),
//! records are counted as dropped, never blocking the service. The log
//! itself keeps every record; the receiver is a copy.

use crate::dicom::{self, AuditSource};
use crate::syslog::{self, Header, Severity};
use obscura_audit::{Checkpoint, Outcome, Record, Tap};
use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// DICOM PS3.15 A.5 audit messages (XML), MSGID `IHE+RFC-3881`; one per
    /// patient (IHE BALP).
    Dicom,
    /// The record's canonical JSON line, MSGID `obscura-audit`.
    Json,
}

/// MSGID of a checkpoint message (its MSG is the signed note).
pub const CHECKPOINT_MSGID: &str = "obscura-checkpoint";

/// Where and how to send.
pub struct SyslogConfig {
    /// `host:port` of the receiver.
    pub address: String,
    /// The name the receiver's certificate must carry.
    pub server_name: String,
    /// TLS (the CA to trust, optionally a client certificate).
    pub tls: Arc<rustls::ClientConfig>,
    /// DICOM XML or JSON.
    pub format: Format,
    /// AuditSourceIdentification (DICOM format).
    pub source: AuditSource,
    /// HOSTNAME, APP-NAME, PROCID.
    pub header: Header,
    /// Records held while the receiver is unreachable.
    pub queue: usize,
    /// Also send every signed checkpoint.
    pub checkpoints: bool,
    /// Told of connections and failures (no record content).
    pub log: Box<dyn Fn(&str) + Send>,
}

/// Counters of an exporter.
#[derive(Debug, Default)]
pub struct Stats {
    /// Syslog messages written to the connection.
    pub sent: AtomicU64,
    /// Records not sent: the queue was full, or the receiver unreachable at close.
    pub dropped: AtomicU64,
    /// Connections made (the first included).
    pub connections: AtomicU64,
}

enum Item {
    Record(Box<Record>),
    Checkpoint(String),
    Text(&'static str, Severity, String),
}

/// The exporter: a queue and a sending thread.
pub struct SyslogExporter {
    tx: Mutex<Option<SyncSender<Item>>>,
    checkpoints: bool,
    stats: Arc<Stats>,
    stopping: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl SyslogExporter {
    /// Start the sending thread (it connects, and reconnects, by itself).
    pub fn start(cfg: SyslogConfig) -> Result<Arc<Self>, crate::Error> {
        let server_name = ServerName::try_from(cfg.server_name.clone())
            .map_err(|_| crate::Error::Config(format!("not a server name: {}", cfg.server_name)))?;
        let (tx, rx) = sync_channel(cfg.queue.max(1));
        let stats = Arc::new(Stats::default());
        let stopping = Arc::new(AtomicBool::new(false));
        let checkpoints = cfg.checkpoints;
        let mut worker = Worker {
            cfg,
            server_name,
            stats: Arc::clone(&stats),
            stopping: Arc::clone(&stopping),
            conn: None,
            failing: false,
        };
        let thread = std::thread::Builder::new()
            .name("audit-syslog".into())
            .spawn(move || worker.run(rx))
            .map_err(|e| crate::Error::Config(format!("cannot start the syslog thread: {e}")))?;
        Ok(Arc::new(SyslogExporter {
            tx: Mutex::new(Some(tx)),
            checkpoints,
            stats,
            stopping,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    fn send(&self, item: Item) {
        let g = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        let Some(tx) = g.as_ref() else { return };
        if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) = tx.try_send(item) {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queue a message of its own (an alert): `msgid`, `text` as MSG.
    pub fn send_text(&self, msgid: &'static str, severity: Severity, text: String) {
        self.send(Item::Text(msgid, severity, text));
    }

    /// Send what is queued (for at most `grace` if the receiver is
    /// unreachable), close the connection cleanly and stop the thread.
    pub fn close(&self, grace: Duration) {
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        let deadline = Instant::now() + grace;
        let handle = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            while !h.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            self.stopping.store(true, Ordering::SeqCst);
            let _ = h.join();
        }
    }
}

impl Tap for SyslogExporter {
    fn record(&self, record: &Record) {
        self.send(Item::Record(Box::new(record.clone())));
    }

    fn checkpoint(&self, _checkpoint: &Checkpoint, note: &str) {
        if self.checkpoints {
            self.send(Item::Checkpoint(note.to_string()));
        }
    }
}

type Conn = StreamOwned<ClientConnection, TcpStream>;

struct Worker {
    cfg: SyslogConfig,
    server_name: ServerName<'static>,
    stats: Arc<Stats>,
    stopping: Arc<AtomicBool>,
    conn: Option<Conn>,
    failing: bool,
}

impl Worker {
    fn run(&mut self, rx: Receiver<Item>) {
        loop {
            let item = match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(item) => item,
                Err(RecvTimeoutError::Timeout) => {
                    self.flush();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let frames = self.render(&item);
            for f in frames {
                if !self.deliver(&f) {
                    // Stopping with the receiver unreachable: the rest is dropped.
                    let left = 1 + rx.try_iter().count() as u64;
                    self.stats.dropped.fetch_add(left, Ordering::Relaxed);
                    return;
                }
            }
        }
        self.flush();
        if let Some(mut c) = self.conn.take() {
            c.conn.send_close_notify();
            let _ = c.flush();
            let _ = c.sock.shutdown(std::net::Shutdown::Write);
        }
    }

    fn render(&self, item: &Item) -> Vec<Vec<u8>> {
        let h = &self.cfg.header;
        let now = || obscura_audit::event::rfc3339(std::time::SystemTime::now());
        match item {
            Item::Checkpoint(note) => {
                vec![syslog::message(
                    h,
                    Severity::Notice,
                    &now(),
                    CHECKPOINT_MSGID,
                    note,
                )]
            }
            Item::Text(msgid, sev, text) => vec![syslog::message(h, *sev, &now(), msgid, text)],
            Item::Record(r) => {
                let sev = match r.event.outcome {
                    Outcome::Success => Severity::Notice,
                    Outcome::Denied | Outcome::Failure => Severity::Warning,
                };
                let t = &r.event.time;
                match self.cfg.format {
                    Format::Json => vec![syslog::message(h, sev, t, "obscura-audit", &r.to_line())],
                    Format::Dicom => dicom::messages(r, &self.cfg.source)
                        .iter()
                        .map(|m| syslog::message(h, sev, t, "IHE+RFC-3881", m))
                        .collect(),
                }
            }
        }
    }

    /// Write one framed message, reconnecting as needed; false if stopping
    /// while the receiver cannot be reached.
    fn deliver(&mut self, msg: &[u8]) -> bool {
        let framed = syslog::frame(msg);
        let mut backoff = Duration::from_millis(100);
        loop {
            if self.conn.is_none() {
                match self.connect() {
                    Ok(c) => {
                        self.stats.connections.fetch_add(1, Ordering::Relaxed);
                        (self.cfg.log)(&format!("audit syslog: connected to {}", self.cfg.address));
                        self.failing = false;
                        self.conn = Some(c);
                    }
                    Err(e) => {
                        if !self.failing {
                            (self.cfg.log)(&format!(
                                "audit syslog: cannot reach {}: {e} (retrying; records queue)",
                                self.cfg.address
                            ));
                            self.failing = true;
                        }
                        if self.stopping.load(Ordering::SeqCst) {
                            return false;
                        }
                        std::thread::sleep(backoff);
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                        continue;
                    }
                }
            }
            let c = self.conn.as_mut().expect("connected above");
            match c.write_all(&framed) {
                Ok(()) => {
                    self.stats.sent.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Err(e) => {
                    (self.cfg.log)(&format!("audit syslog: connection lost: {e}"));
                    self.conn = None;
                }
            }
        }
    }

    fn flush(&mut self) {
        if let Some(c) = self.conn.as_mut() {
            if c.flush().is_err() {
                self.conn = None;
            }
        }
    }

    fn connect(&self) -> Result<Conn, String> {
        let addrs: Vec<_> = self
            .cfg
            .address
            .to_socket_addrs()
            .map_err(|e| e.to_string())?
            .collect();
        let mut last = "no address".to_string();
        for a in addrs {
            match TcpStream::connect_timeout(&a, Duration::from_secs(5)) {
                Ok(sock) => {
                    let _ = sock.set_nodelay(true);
                    sock.set_write_timeout(Some(Duration::from_secs(10)))
                        .map_err(|e| e.to_string())?;
                    sock.set_read_timeout(Some(Duration::from_secs(10)))
                        .map_err(|e| e.to_string())?;
                    let conn =
                        ClientConnection::new(Arc::clone(&self.cfg.tls), self.server_name.clone())
                            .map_err(|e| e.to_string())?;
                    let mut s = StreamOwned::new(conn, sock);
                    while s.conn.is_handshaking() {
                        s.conn
                            .complete_io(&mut s.sock)
                            .map_err(|e| format!("TLS: {e}"))?;
                    }
                    return Ok(s);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(last)
    }
}
