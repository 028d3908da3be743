//! The append-only log on disk.
//!
//! ```text
//! LOG_DIR/segments/<first seq, 20 digits>.jsonl   records, one canonical JSON line each
//! LOG_DIR/checkpoints/<size, 20 digits>.note      every signed checkpoint
//! LOG_DIR/checkpoint                              the latest one
//! LOG_DIR/torn/<segment>.<offset>.torn            torn tails set aside by recovery
//! WITNESS_DIR/<size, 20 digits>.note              copies of every checkpoint
//! ```
//!
//! A checkpoint is written only after the records it covers are fsync'd.

use crate::event::{AuditEvent, EventKind, Outcome, Record};
use crate::merkle::{leaf_hash, Frontier, Hash, Tree};
use crate::note::{Checkpoint, Signer, Verifier};
use crate::Error;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// When appended records reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// fsync after every record: `append` returns once the record is durable.
    Always,
    /// fsync once this many records are pending, at every checkpoint, at the
    /// end of `append_batch` and on `sync`.
    Batched(u64),
}

/// How a log is written.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// The log folder.
    pub dir: PathBuf,
    /// A folder that receives a copy of every checkpoint (ideally another
    /// disk, host or owner).
    pub witness_dir: Option<PathBuf>,
    /// A checkpoint at the latest after this many new records.
    pub checkpoint_events: u64,
    /// A checkpoint at the latest this long after the first unsigned record
    /// (checked on every append and on `tick`).
    pub checkpoint_interval: Duration,
    /// When records are fsync'd.
    pub sync: SyncPolicy,
    /// Records per segment file.
    pub segment_records: u64,
}

impl LogConfig {
    /// The defaults of the issue: a checkpoint every 1,000 events or 10 s,
    /// fsync every record, 65,536 records per segment.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LogConfig {
            dir: dir.into(),
            witness_dir: None,
            checkpoint_events: 1000,
            checkpoint_interval: Duration::from_secs(10),
            sync: SyncPolicy::Always,
            segment_records: 65_536,
        }
    }
}

/// An incomplete last line, left by a crash during a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// The segment file.
    pub segment: PathBuf,
    /// Where the incomplete line starts.
    pub offset: u64,
    /// Its length in bytes.
    pub len: u64,
}

/// What opening found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OpenReport {
    /// Records in the log (after recovery, including its own record).
    pub records: u64,
    /// The size of the latest stored checkpoint, checked against the records.
    pub checkpoint_size: Option<u64>,
    /// A torn tail that recovery set aside (kept under `torn/`, and recorded
    /// in the log as a `log-recovered` event).
    pub torn: Option<TornTail>,
}

pub(crate) fn segments_dir(dir: &Path) -> PathBuf {
    dir.join("segments")
}

pub(crate) fn checkpoints_dir(dir: &Path) -> PathBuf {
    dir.join("checkpoints")
}

fn segment_name(first: u64) -> String {
    format!("{first:020}.jsonl")
}

fn checkpoint_name(size: u64) -> String {
    format!("{size:020}.note")
}

/// The segment files of a log folder in order, with the first record index
/// their name declares (`u64::MAX` for a stray name).
pub fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    list_numbered(&segments_dir(dir), ".jsonl")
}

/// The stored checkpoint files of a log folder in order, with the size
/// their name declares (`u64::MAX` for a stray name).
pub fn list_checkpoints(dir: &Path) -> Result<Vec<(u64, PathBuf)>, Error> {
    list_numbered(&checkpoints_dir(dir), ".note")
}

/// Files `<number><suffix>` in `dir`, sorted by number; other names are
/// returned with `u64::MAX` so that callers can report them.
pub(crate) fn list_numbered(dir: &Path, suffix: &str) -> Result<Vec<(u64, PathBuf)>, Error> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::Io(dir.to_path_buf(), e)),
    };
    let mut out = Vec::new();
    for entry in rd {
        let entry = entry.map_err(|e| Error::Io(dir.to_path_buf(), e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue; // temporary files
        }
        let n = name
            .strip_suffix(suffix)
            .filter(|s| s.len() == 20 && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX);
        out.push((n, entry.path()));
    }
    out.sort();
    Ok(out)
}

/// Call `f` with every complete line of a segment (without its newline)
/// and its byte offset; return the incomplete tail, if any.
pub(crate) fn read_segment(
    path: &Path,
    mut f: impl FnMut(u64, &[u8]),
) -> Result<Option<TornTail>, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let mut start = 0usize;
    while let Some(nl) = bytes[start..].iter().position(|&b| b == b'\n') {
        f(start as u64, &bytes[start..start + nl]);
        start += nl + 1;
    }
    Ok((start < bytes.len()).then(|| TornTail {
        segment: path.to_path_buf(),
        offset: start as u64,
        len: (bytes.len() - start) as u64,
    }))
}

/// Write `bytes` to `path` atomically: temp file, fsync, rename, fsync folder.
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    write_atomic_mode(path, bytes, 0o666)
}

/// [`write_atomic`], the file created with `mode` (less the umask).
pub fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().expect("a file in a folder");
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().expect("a file name").to_string_lossy()
    ));
    let io = |e| Error::Io(path.to_path_buf(), e);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::Io(dir.to_path_buf(), e))
}

/// The append-only audit log, open for writing. One writer per folder.
#[derive(Debug)]
pub struct AuditLog {
    cfg: LogConfig,
    signer: Signer,
    frontier: Frontier,
    out: BufWriter<File>,
    segment_path: PathBuf,
    segment_count: u64,
    /// Records known to be on disk (fsync'd).
    synced: u64,
    signed_size: u64,
    first_unsigned_at: Option<Instant>,
    last_checkpoint: Option<(Checkpoint, String)>,
    /// The time of the last record (RFC 3339 with milliseconds, which
    /// compare as text): none is appended before it.
    last_time: Option<String>,
}

impl AuditLog {
    /// Open (or create) a log. A torn last record is an error
    /// ([`Error::TornTail`]): see [`AuditLog::open_recover`].
    pub fn open(cfg: LogConfig, signer: Signer) -> Result<(Self, OpenReport), Error> {
        Self::open_inner(cfg, signer, false)
    }

    /// Open (or create) a log, setting a torn last record aside: its bytes
    /// are moved to `torn/`, the segment is cut back to its last complete
    /// line, and a `log-recovered` event records the cut. Nothing is dropped
    /// silently.
    pub fn open_recover(cfg: LogConfig, signer: Signer) -> Result<(Self, OpenReport), Error> {
        Self::open_inner(cfg, signer, true)
    }

    fn open_inner(
        cfg: LogConfig,
        signer: Signer,
        recover: bool,
    ) -> Result<(Self, OpenReport), Error> {
        let dir = cfg.dir.clone();
        for d in [segments_dir(&dir), checkpoints_dir(&dir)] {
            std::fs::create_dir_all(&d).map_err(|e| Error::Io(d.clone(), e))?;
        }
        if let Some(w) = &cfg.witness_dir {
            std::fs::create_dir_all(w).map_err(|e| Error::Io(w.clone(), e))?;
        }
        let verifier = signer.verifier();
        // The latest checkpoint: ours, and matched by the records below.
        let latest = match std::fs::read_to_string(dir.join("checkpoint")) {
            Ok(text) => Some(
                verifier
                    .open_checkpoint(&text)
                    .map_err(|_| Error::Foreign(dir.clone()))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(Error::Io(dir.join("checkpoint"), e)),
        };

        let segments = list_segments(&dir)?;
        let mut frontier = Frontier::new();
        let mut root_at_checkpoint = None;
        let mut torn = None;
        let mut damage: Option<String> = None;
        let mut last_time = None;
        for (i, (first, path)) in segments.iter().enumerate() {
            if *first != frontier.size() {
                return Err(Error::Damaged(format!(
                    "segment {} does not start at record {}",
                    path.display(),
                    frontier.size()
                )));
            }
            let t = read_segment(path, |_, line| {
                if damage.is_some() {
                    return;
                }
                match Record::from_line(line) {
                    Ok(r) if r.seq == frontier.size() => {
                        last_time = Some(r.event.time);
                        frontier.push(leaf_hash(line));
                        if latest.as_ref().is_some_and(|c| c.size == frontier.size()) {
                            root_at_checkpoint = Some(frontier.root());
                        }
                    }
                    _ => damage = Some(format!("record {} is not valid", frontier.size())),
                }
            })?;
            if let Some(d) = damage {
                return Err(Error::Damaged(d));
            }
            if let Some(t) = t {
                if i + 1 != segments.len() {
                    return Err(Error::Damaged(format!(
                        "incomplete line inside {}",
                        path.display()
                    )));
                }
                torn = Some(t);
            }
        }
        if let Some(c) = &latest {
            if c.size == 0 {
                root_at_checkpoint = Some(crate::merkle::empty_root());
            }
            if root_at_checkpoint != Some(c.root) {
                return Err(Error::Damaged(format!(
                    "the latest checkpoint (size {}) does not match the {} records",
                    c.size,
                    frontier.size()
                )));
            }
        }
        if let Some(t) = &torn {
            if !recover {
                return Err(Error::TornTail(t.clone()));
            }
            set_aside(&dir, t)?;
        }

        let (segment_path, segment_count) = match segments.last() {
            Some((first, path)) => (path.clone(), frontier.size() - first),
            None => (segments_dir(&dir).join(segment_name(0)), 0),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&segment_path)
            .map_err(|e| Error::Io(segment_path.clone(), e))?;
        if segments.is_empty() {
            sync_dir(&segments_dir(&dir))?;
        }
        let signed_size = latest.as_ref().map_or(0, |c| c.size);
        let mut log = AuditLog {
            cfg,
            signer,
            out: BufWriter::new(file),
            segment_path,
            segment_count,
            synced: frontier.size(),
            signed_size,
            first_unsigned_at: (frontier.size() > signed_size).then(Instant::now),
            last_checkpoint: None,
            last_time,
            frontier,
        };
        if let Some(t) = &torn {
            let mut e = AuditEvent::new(
                SystemTime::now(),
                EventKind::LogRecovered,
                crate::Actor {
                    principal: "obscura-audit".into(),
                    ..Default::default()
                },
                Outcome::Failure,
            );
            e.reason = Some("torn-tail".into());
            e.count = Some(t.len);
            log.append(e)?;
            log.checkpoint()?;
        }
        let report = OpenReport {
            records: log.frontier.size(),
            checkpoint_size: latest.map(|c| c.size),
            torn,
        };
        Ok((log, report))
    }

    /// The number of records.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The current root hash.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The checkpoint verifier of this log.
    pub fn verifier(&self) -> Verifier {
        self.signer.verifier()
    }

    /// Append one event; returns its index. Durable on return under
    /// [`SyncPolicy::Always`], else after the next sync.
    pub fn append(&mut self, event: AuditEvent) -> Result<u64, Error> {
        let seq = self.write_record(event)?;
        match self.cfg.sync {
            SyncPolicy::Always => self.sync()?,
            SyncPolicy::Batched(n) if self.size() - self.synced >= n.max(1) => self.sync()?,
            SyncPolicy::Batched(_) => {}
        }
        self.tick()?;
        Ok(seq)
    }

    /// Append one event without syncing it, whatever the policy (checkpoints
    /// as due); returns its index. Durable once [`AuditLog::synced`] passes
    /// it: after [`AuditLog::sync`], or a [`PendingSync`] run outside the
    /// writer's lock ([`AuditLog::begin_sync`]).
    pub fn append_unsynced(&mut self, event: AuditEvent) -> Result<u64, Error> {
        let seq = self.write_record(event)?;
        self.tick()?;
        Ok(seq)
    }

    /// Append events with one fsync at the end (checkpoints as due); returns
    /// the index of the first. Durable on return.
    pub fn append_batch(
        &mut self,
        events: impl IntoIterator<Item = AuditEvent>,
    ) -> Result<u64, Error> {
        let first = self.size();
        for e in events {
            self.write_record(e)?;
            if self.size() - self.signed_size >= self.cfg.checkpoint_events {
                self.checkpoint()?;
            }
        }
        self.sync()?;
        self.tick()?;
        Ok(first)
    }

    fn write_record(&mut self, mut event: AuditEvent) -> Result<u64, Error> {
        if self.segment_count >= self.cfg.segment_records.max(1) {
            self.roll()?;
        }
        // the log's times stay in order: an event stamped before the last
        // record but appended after it (it waited for the writer, or the
        // clock stepped back) takes the last record's time
        if let Some(last) = self.last_time.as_ref().filter(|last| event.time < **last) {
            event.time = last.clone();
        }
        self.last_time = Some(event.time.clone());
        let seq = self.frontier.size();
        let line = Record { seq, event }.to_line();
        let io = |e| Error::Io(self.segment_path.clone(), e);
        self.out.write_all(line.as_bytes()).map_err(io)?;
        self.out.write_all(b"\n").map_err(io)?;
        self.frontier.push(leaf_hash(line.as_bytes()));
        self.segment_count += 1;
        self.first_unsigned_at.get_or_insert_with(Instant::now);
        Ok(seq)
    }

    fn roll(&mut self) -> Result<(), Error> {
        self.sync()?;
        let path = segments_dir(&self.cfg.dir).join(segment_name(self.size()));
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::Io(path.clone(), e))?;
        sync_dir(&segments_dir(&self.cfg.dir))?;
        self.out = BufWriter::new(file);
        self.segment_path = path;
        self.segment_count = 0;
        Ok(())
    }

    /// Flush and fsync the records written so far.
    pub fn sync(&mut self) -> Result<(), Error> {
        if let Some(pending) = self.begin_sync()? {
            let upto = pending.run()?;
            self.end_sync(upto);
        }
        Ok(())
    }

    /// The number of records known to be on disk: every record below this
    /// index was fsync'd.
    pub fn synced(&self) -> u64 {
        self.synced
    }

    /// Flush the records written so far to the current segment and hand
    /// back their fsync, to run without holding the writer (group commit:
    /// appends go on meanwhile); `None` if every record is already on disk.
    /// Report the result with [`AuditLog::end_sync`].
    pub fn begin_sync(&mut self) -> Result<Option<PendingSync>, Error> {
        if self.synced == self.size() {
            return Ok(None);
        }
        let io = |e| Error::Io(self.segment_path.clone(), e);
        self.out.flush().map_err(io)?;
        let file = self.out.get_ref().try_clone().map_err(io)?;
        Ok(Some(PendingSync {
            file,
            path: self.segment_path.clone(),
            upto: self.size(),
        }))
    }

    /// A [`PendingSync`] ran: the records below `upto` are on disk.
    pub fn end_sync(&mut self, upto: u64) {
        self.synced = self.synced.max(upto);
    }

    /// Write a checkpoint if one is due (N records or T seconds since the
    /// first unsigned record). Call it from a timer too.
    pub fn tick(&mut self) -> Result<(), Error> {
        let unsigned = self.size() - self.signed_size;
        let late = self
            .first_unsigned_at
            .is_some_and(|t| t.elapsed() >= self.cfg.checkpoint_interval);
        if unsigned > 0 && (unsigned >= self.cfg.checkpoint_events || late) {
            self.checkpoint()?;
        }
        Ok(())
    }

    /// Sync the records, then sign and store a checkpoint of the whole log
    /// (and its witness copy); returns it.
    pub fn checkpoint(&mut self) -> Result<Checkpoint, Error> {
        self.sync()?;
        let cp = Checkpoint {
            origin: self.signer.name().to_string(),
            size: self.size(),
            root: self.root(),
        };
        let note = cp.sign(&self.signer);
        let name = checkpoint_name(cp.size);
        write_atomic(&checkpoints_dir(&self.cfg.dir).join(&name), note.as_bytes())?;
        write_atomic(&self.cfg.dir.join("checkpoint"), note.as_bytes())?;
        self.signed_size = cp.size;
        self.first_unsigned_at = None;
        if let Some(w) = &self.cfg.witness_dir {
            write_atomic(&w.join(&name), note.as_bytes())?;
        }
        self.last_checkpoint = Some((cp.clone(), note));
        Ok(cp)
    }

    /// The size the latest checkpoint signed.
    pub fn signed_size(&self) -> u64 {
        self.signed_size
    }

    /// The latest checkpoint this writer signed, and its note's text.
    pub fn last_checkpoint(&self) -> Option<(&Checkpoint, &str)> {
        self.last_checkpoint
            .as_ref()
            .map(|(cp, note)| (cp, note.as_str()))
    }

    /// Sync, checkpoint what is unsigned, and close.
    pub fn close(mut self) -> Result<Checkpoint, Error> {
        self.checkpoint()
    }
}

/// The fsync of records already written and flushed ([`AuditLog::begin_sync`]).
/// Records in earlier segments are on disk already: a segment is fsync'd
/// before the next one is started.
#[derive(Debug)]
pub struct PendingSync {
    file: File,
    path: PathBuf,
    upto: u64,
}

impl PendingSync {
    /// fsync the segment; returns the number of records now on disk.
    pub fn run(&self) -> Result<u64, Error> {
        self.file
            .sync_data()
            .map_err(|e| Error::Io(self.path.clone(), e))?;
        Ok(self.upto)
    }
}

/// Move a torn tail to `torn/` and cut the segment back to its last complete line.
fn set_aside(dir: &Path, t: &TornTail) -> Result<(), Error> {
    let io = |e| Error::Io(t.segment.clone(), e);
    let bytes = std::fs::read(&t.segment).map_err(io)?;
    let torn_dir = dir.join("torn");
    std::fs::create_dir_all(&torn_dir).map_err(|e| Error::Io(torn_dir.clone(), e))?;
    let name = format!(
        "{}.{}.torn",
        t.segment
            .file_name()
            .expect("a segment name")
            .to_string_lossy(),
        t.offset
    );
    write_atomic(&torn_dir.join(name), &bytes[t.offset as usize..])?;
    let f = OpenOptions::new()
        .write(true)
        .open(&t.segment)
        .map_err(io)?;
    f.set_len(t.offset).map_err(io)?;
    f.sync_all().map_err(io)
}

/// A healthy log, read for proofs: every leaf hash in memory.
#[derive(Debug)]
pub struct LogReader {
    dir: PathBuf,
    tree: Tree,
    /// (first seq, path) per segment.
    segments: Vec<(u64, PathBuf)>,
}

impl LogReader {
    /// Read a log folder; refuses one that is damaged or torn (run
    /// [`crate::verify()`] to learn why).
    pub fn open(dir: &Path) -> Result<Self, Error> {
        let segments = list_segments(dir)?;
        let mut tree = Tree::new();
        let mut damage = None;
        for (first, path) in &segments {
            if *first != tree.size() {
                return Err(Error::Damaged(format!(
                    "segment {} out of place",
                    path.display()
                )));
            }
            let torn = read_segment(path, |_, line| match Record::from_line(line) {
                Ok(r) if r.seq == tree.size() && damage.is_none() => tree.push(leaf_hash(line)),
                _ => {
                    damage.get_or_insert(tree.size());
                }
            })?;
            if let Some(at) = damage {
                return Err(Error::Damaged(format!("record {at} is not valid")));
            }
            if let Some(t) = torn {
                return Err(Error::TornTail(t));
            }
        }
        Ok(LogReader {
            dir: dir.to_path_buf(),
            tree,
            segments,
        })
    }

    /// The number of records.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The root at `size` records.
    pub fn root(&self, size: u64) -> Option<Hash> {
        self.tree.root(size)
    }

    /// The leaf hash of record `index`.
    pub fn leaf_hash(&self, index: u64) -> Option<Hash> {
        self.tree.leaf(index)
    }

    /// Record `index`, read from its segment.
    pub fn record(&self, index: u64) -> Result<Option<Record>, Error> {
        let Some(pos) = self.segments.iter().rposition(|(first, _)| *first <= index) else {
            return Ok(None);
        };
        let (first, path) = &self.segments[pos];
        let mut found = None;
        let mut i = *first;
        read_segment(path, |_, line| {
            if i == index {
                found = Record::from_line(line).ok();
            }
            i += 1;
        })?;
        Ok(found)
    }

    /// Every record from index `from` on, in order.
    pub fn for_each_record(&self, from: u64, mut f: impl FnMut(Record)) -> Result<(), Error> {
        let start = self
            .segments
            .iter()
            .rposition(|(first, _)| *first <= from)
            .unwrap_or(0);
        for (first, path) in &self.segments[start..] {
            let mut i = *first;
            read_segment(path, |_, line| {
                if i >= from {
                    if let Ok(r) = Record::from_line(line) {
                        f(r);
                    }
                }
                i += 1;
            })?;
        }
        Ok(())
    }

    /// The inclusion proof of record `index` in the tree of `size` records.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Option<Vec<Hash>> {
        self.tree.inclusion_proof(index, size)
    }

    /// The consistency proof from `old` to `new` records.
    pub fn consistency_proof(&self, old: u64, new: u64) -> Option<Vec<Hash>> {
        self.tree.consistency_proof(old, new)
    }

    /// The latest stored checkpoint, checked against `verifier`.
    pub fn latest_checkpoint(&self, verifier: &Verifier) -> Result<Option<Checkpoint>, Error> {
        let path = self.dir.join("checkpoint");
        match std::fs::read_to_string(&path) {
            Ok(text) => verifier
                .open_checkpoint(&text)
                .map(Some)
                .map_err(|e| Error::Damaged(format!("latest checkpoint: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Io(path, e)),
        }
    }
}
