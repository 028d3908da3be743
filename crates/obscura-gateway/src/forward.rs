//! The forwarder: worker threads take jobs from the queue, de-identify the
//! spooled original with the destination's own engine (the batch's per-file
//! pipeline: `read_file`, the engine, the Part 10 writer), deliver it, and
//! record the outcome. Failures retry with exponential backoff.

use crate::audit::Delivered;
use crate::config::Delivery;
use crate::queue::{now, Job, Queue};
use crate::spool::{copy_durably, sync_dir};
use crate::Gateway;
use dicom_dictionary_std::tags;
use obscura_batch::{read_file, Outcome};
use obscura_deid::{burned_in_risk, Deidentifier};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// One destination: how it is reached and its own engine (profile + key).
pub struct Destination {
    /// Its name.
    pub name: String,
    /// Folder, remote SCP or the archive.
    pub delivery: Delivery,
    /// Its engine: its profile and its own key (`None` for the archive,
    /// which keeps originals).
    pub engine: Option<Deidentifier>,
    /// Forward objects whose pixels may carry burned-in identity anyway.
    pub allow_burned_in: bool,
    /// The archive and tenant an archive destination stores into.
    pub archive: Option<ArchiveTarget>,
}

/// Where an archive destination stores: the open archive and a tenant.
#[derive(Clone)]
pub struct ArchiveTarget {
    /// The archive.
    pub vault: Arc<obscura_vault::Vault>,
    /// The tenant.
    pub tenant: obscura_vault::TenantId,
}

/// What storing one spooled instance into the archive gave.
enum Archived {
    Stored,
    Quarantine(&'static str),
    Retry(String),
}

/// Store one spooled original into the archive: its header read with
/// obscura-dicom (the UIDs must be UIDs), then its bytes, idempotent by SOP
/// Instance UID per tenant.
fn archive_one(target: &ArchiveTarget, spool: &Path) -> Archived {
    use obscura_vault::{Attr, Attributes, VaultError};
    let file = match std::fs::File::open(spool).and_then(obscura_dicom::FileSource::new) {
        Ok(f) => f,
        Err(e) => {
            return Archived::Retry(format!("cannot open the spooled instance: {}", e.kind()))
        }
    };
    let attrs = match obscura_dicom::DicomInput::read(file, Default::default()) {
        Ok(input) => Attributes::from_dicom(&input),
        Err(_) => return Archived::Quarantine("unparseable"),
    };
    let is_uid = |v: Option<&str>| {
        v.is_some_and(|v| {
            v.len() <= 64
                && v.split('.')
                    .all(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    if ![
        Attr::StudyInstanceUID,
        Attr::SeriesInstanceUID,
        Attr::SOPInstanceUID,
        Attr::SOPClassUID,
    ]
    .iter()
    .all(|a| is_uid(attrs.get(*a)))
    {
        return Archived::Quarantine("invalid_uid");
    }
    let data = match std::fs::File::open(spool) {
        Ok(f) => f,
        Err(e) => {
            return Archived::Retry(format!("cannot open the spooled instance: {}", e.kind()))
        }
    };
    match target.vault.store(&target.tenant, &attrs, data) {
        Ok(_) => Archived::Stored,
        Err(VaultError::MissingAttribute(_)) => Archived::Quarantine("invalid_uid"),
        Err(e) => Archived::Retry(format!("archive: {e}")),
    }
}

/// A de-identified file ready to send.
#[derive(Debug, Clone)]
pub struct OutFile {
    /// The Part 10 file.
    pub path: PathBuf,
    /// SOP Class UID.
    pub sop_class_uid: String,
    /// The new SOP Instance UID.
    pub sop_instance_uid: String,
    /// Transfer syntax (unchanged from the received one).
    pub transfer_syntax_uid: String,
    /// Its size.
    pub bytes: u64,
}

/// Sends files to a remote SCP (the protocol layer, or a test double).
pub trait Transport: Send + Sync {
    /// Send `files` over one association; one result per file, in order.
    fn store(&self, delivery: &Delivery, files: &[OutFile]) -> Vec<Result<(), String>>;
}

/// A transport that cannot send (no protocol layer built in).
pub struct NoTransport;

impl Transport for NoTransport {
    fn store(&self, _: &Delivery, files: &[OutFile]) -> Vec<Result<(), String>> {
        files
            .iter()
            .map(|_| Err("C-STORE SCU is not available in this build".to_string()))
            .collect()
    }
}

/// What making the de-identified copy gave.
enum Made {
    Out(OutFile, tempfile::NamedTempFile),
    Quarantine(String, String),
}

fn reason_code(outcome: &Outcome) -> (String, String) {
    match outcome {
        Outcome::Quarantined { reason, detail } => (reason.code().into(), detail.clone()),
        Outcome::Skipped { .. } => ("not_dicom".into(), "not a DICOM data set".into()),
        Outcome::Written { .. } => ("internal_error".into(), String::new()),
    }
}

/// De-identify a spooled original into a temporary file in `dir`, fsync'd
/// when `durable` (a folder destination's copy is renamed into place; an
/// outbox copy for an SCU is transient, re-made from the spool after a crash).
fn make(
    engine: &Deidentifier,
    allow_burned_in: bool,
    spool: &Path,
    dir: &Path,
    durable: bool,
    audit: Option<(&obscura_audit::Auditor, &mut Vec<obscura_audit::SubjectRef>)>,
) -> Result<Made, String> {
    let read = match read_file(spool, Default::default()) {
        Ok(r) => r,
        Err(o) => {
            let (r, d) = reason_code(&o);
            return Ok(Made::Quarantine(r, d));
        }
    };
    if let Some((a, subjects)) = audit {
        *subjects = crate::audit::subjects_of(a, &read.dataset);
    }
    if !allow_burned_in {
        if let Some(risk) = burned_in_risk(&read.dataset, read.input.pixel.is_some()) {
            return Ok(Made::Quarantine(
                "burned_in".into(),
                risk.reason().to_string(),
            ));
        }
    }
    let result = match engine.deidentify(read.dataset) {
        Ok(r) => r,
        Err(e) => return Ok(Made::Quarantine("identity_remains".into(), e.to_string())),
    };
    let text = |tag| {
        result
            .object
            .element(tag)
            .ok()
            .and_then(|e| e.to_str().ok())
            .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
            .filter(|s| !s.is_empty())
    };
    let (Some(sop_class_uid), Some(sop_instance_uid)) =
        (text(tags::SOP_CLASS_UID), text(tags::SOP_INSTANCE_UID))
    else {
        return Ok(Made::Quarantine(
            "unparseable".into(),
            "no SOP Class or Instance UID".into(),
        ));
    };
    let tmp = tempfile::Builder::new()
        .prefix(".obscura-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| format!("cannot create a file in the output folder: {e}"))?;
    let bytes = match read.input.write_part10_file(&result.object, tmp.as_file()) {
        Ok(n) => n,
        Err(e) => return Err(format!("cannot write the de-identified copy: {e}")),
    };
    if durable {
        tmp.as_file()
            .sync_all()
            .map_err(|e| format!("cannot sync the de-identified copy: {e}"))?;
    }
    Ok(Made::Out(
        OutFile {
            path: tmp.path().to_path_buf(),
            sop_class_uid,
            sop_instance_uid,
            transfer_syntax_uid: read.input.transfer_syntax_uid.clone(),
            bytes,
        },
        tmp,
    ))
}

fn backoff(initial_ms: u64, attempts: u32) -> Duration {
    let ms = initial_ms.saturating_mul(1u64 << attempts.min(20));
    Duration::from_millis(ms.min(600_000))
}

impl Gateway {
    /// Start the forwarding workers (and, on a shared queue, the thread
    /// that renews this process's leases; with the audit log on, the one
    /// that moves pending records into it); they run until [`Gateway::stop`].
    pub fn start_workers(self: &Arc<Self>) -> Vec<std::thread::JoinHandle<()>> {
        let mut threads: Vec<_> = (0..self.config.server.workers.max(1))
            .map(|i| {
                let gw = Arc::clone(self);
                std::thread::Builder::new()
                    .name(format!("forward-{i}"))
                    .spawn(move || gw.worker(i))
                    .expect("cannot start a forwarding thread")
            })
            .collect();
        if let Some(lease) = self.backend.lease() {
            let gw = Arc::clone(self);
            threads.push(
                std::thread::Builder::new()
                    .name("lease".into())
                    .spawn(move || gw.keep_leases(lease))
                    .expect("cannot start the lease thread"),
            );
        }
        if self.auditor().is_some() {
            let gw = Arc::clone(self);
            threads.push(
                std::thread::Builder::new()
                    .name("audit".into())
                    .spawn(move || gw.append_audit_until_stopped())
                    .expect("cannot start the audit thread"),
            );
        }
        threads
    }

    /// Renew this process's leases every third of the lease until stopped:
    /// jobs it is delivering stay its own however long a batch takes; if it
    /// dies, they are free again one lease later.
    fn keep_leases(&self, lease: Duration) {
        let mut queue: Option<Box<dyn Queue>> = None;
        while !self.stopping() {
            let renewed = match &mut queue {
                Some(q) => q.renew_leases().map(|_| ()),
                None => self.backend.open().map(|q| queue = Some(q)),
            };
            if let Err(e) = renewed {
                crate::log(&format!("leases: {e}"));
            }
            self.wait_for_stop(lease / 3);
        }
    }

    fn worker(&self, index: usize) {
        let mut queue = match self.backend.open() {
            Ok(q) => q,
            Err(e) => {
                crate::log(&format!("forwarder {index}: {e}"));
                return;
            }
        };
        let mut last_janitor = 0.0;
        while !self.stopping() {
            if index == 0 && now() - last_janitor > 2.0 {
                last_janitor = now();
                self.janitor(queue.as_mut());
                if let Ok(d) = queue.depth() {
                    self.metrics.queue_depth.store(d, Ordering::Relaxed);
                }
            }
            let jobs = match queue.claim(self.batch_size()) {
                Ok(j) => j,
                Err(e) => {
                    crate::log(&format!("forwarder {index}: {e}"));
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if jobs.is_empty() {
                self.wait_for_work(Duration::from_millis(500));
                continue;
            }
            if let Err(e) = self.deliver(queue.as_mut(), jobs) {
                crate::log(&format!("forwarder {index}: {e}"));
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }

    fn batch_size(&self) -> usize {
        64
    }

    /// Deliver a batch of one destination's jobs and record each outcome.
    fn deliver(&self, queue: &mut dyn Queue, jobs: Vec<Job>) -> Result<(), String> {
        let dest_name = jobs[0].destination.clone();
        let Some(dest) = self.destinations.get(&dest_name) else {
            for j in &jobs {
                queue.failed(
                    j,
                    "destination no longer configured",
                    Duration::from_secs(3600),
                    1,
                )?;
            }
            return Ok(());
        };
        let dm = self.metrics.destinations.get(&dest_name);
        let engine = match (&dest.archive, &dest.engine) {
            (Some(target), _) => return self.deliver_to_archive(queue, jobs, dest, target),
            (None, Some(engine)) => engine,
            (None, None) => {
                for j in &jobs {
                    self.retry(queue, j, "destination has no engine")?;
                }
                return Ok(());
            }
        };
        let (out_dir, durable) = match &dest.delivery {
            Delivery::Folder(f) => (f.clone(), true),
            Delivery::Scu { .. } | Delivery::Archive { .. } => (self.data.outbox(), false),
        };
        if let Err(e) = std::fs::create_dir_all(&out_dir) {
            let msg = format!("cannot create the output folder: {}", e.kind());
            for j in &jobs {
                self.retry(queue, j, &msg)?;
            }
            return Ok(());
        }
        let auditor = self.auditor().map(Arc::clone);
        let mut ready: Vec<(
            Job,
            OutFile,
            tempfile::NamedTempFile,
            Vec<obscura_audit::SubjectRef>,
        )> = Vec::new();
        for job in jobs {
            let spool = self.data.spool().join(&job.spool);
            let mut subjects = Vec::new();
            let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let audit = auditor.as_deref().map(|a| (a, &mut subjects));
                make(
                    engine,
                    dest.allow_burned_in,
                    &spool,
                    &out_dir,
                    durable,
                    audit,
                )
            }))
            .unwrap_or_else(|_| Ok(Made::Quarantine("internal_error".into(), String::new())));
            match made {
                Ok(Made::Out(out, tmp)) => ready.push((job, out, tmp, subjects)),
                Ok(Made::Quarantine(reason, _detail)) => {
                    self.quarantine(queue, &job, dest, dm, &spool, &reason, subjects)?
                }
                Err(e) => self.retry(queue, &job, &e)?,
            }
        }
        if ready.is_empty() {
            return Ok(());
        }
        let results: Vec<Result<(), String>> = match &dest.delivery {
            Delivery::Folder(dir) => ready
                .iter_mut()
                .map(|(_, out, tmp, _)| place_in_folder(dir, out, tmp))
                .collect(),
            d @ (Delivery::Scu { .. } | Delivery::Archive { .. }) => {
                let files: Vec<OutFile> = ready.iter().map(|(_, o, _, _)| o.clone()).collect();
                let mut r = self.transport.store(d, &files);
                r.resize(files.len(), Err("no answer from the transport".into()));
                r
            }
        };
        let mut done = Vec::new();
        let mut records = Vec::new();
        let t = now();
        for ((job, out, _tmp, subjects), result) in ready.iter().zip(results) {
            match result {
                Ok(()) => {
                    done.push(job.id);
                    records.push(crate::audit::forwarded(
                        &dest.name,
                        Delivered::Forwarded,
                        subjects.clone(),
                    ));
                    if let Some(m) = dm {
                        m.forwarded.fetch_add(1, Ordering::Relaxed);
                        m.forwarded_bytes.fetch_add(out.bytes, Ordering::Relaxed);
                        m.latency.observe(t - job.received_at);
                    }
                }
                Err(e) => self.retry(queue, job, &e)?,
            }
        }
        self.audit_all(records);
        queue.done(&done)?;
        Ok(())
    }

    /// Store a batch into the archive (originals; idempotent by SOP
    /// Instance UID per tenant) and record each outcome.
    fn deliver_to_archive(
        &self,
        queue: &mut dyn Queue,
        jobs: Vec<Job>,
        dest: &Destination,
        target: &ArchiveTarget,
    ) -> Result<(), String> {
        let dm = self.metrics.destinations.get(&dest.name);
        let mut done = Vec::new();
        let t = now();
        for job in jobs {
            let spool = self.data.spool().join(&job.spool);
            let bytes = std::fs::metadata(&spool).map_or(0, |m| m.len());
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                archive_one(target, &spool)
            }))
            .unwrap_or(Archived::Quarantine("internal_error"));
            let subjects = match self.auditor() {
                Some(a) => crate::audit::subjects(a, "", &spool),
                None => Vec::new(),
            };
            match outcome {
                Archived::Stored => {
                    done.push(job.id);
                    self.audit_forward(&dest.name, Delivered::Stored, subjects);
                    if let Some(m) = dm {
                        m.forwarded.fetch_add(1, Ordering::Relaxed);
                        m.forwarded_bytes.fetch_add(bytes, Ordering::Relaxed);
                        m.latency.observe(t - job.received_at);
                    }
                }
                Archived::Quarantine(reason) => {
                    self.quarantine(queue, &job, dest, dm, &spool, reason, subjects)?
                }
                Archived::Retry(e) => self.retry(queue, &job, &e)?,
            }
        }
        queue.done(&done)?;
        Ok(())
    }

    /// Quarantine one instance for `dest`: keep a copy of its spool file
    /// under the destination's quarantine folder, commit the job as
    /// quarantined, audit, count and log it; a failed copy is a retry.
    #[allow(clippy::too_many_arguments)]
    fn quarantine(
        &self,
        queue: &mut dyn Queue,
        job: &Job,
        dest: &Destination,
        dm: Option<&crate::metrics::DestinationMetrics>,
        spool: &Path,
        reason: &str,
        subjects: Vec<obscura_audit::SubjectRef>,
    ) -> Result<(), String> {
        let qdir = self.data.quarantine().join(&dest.name);
        let name = format!("{}.dcm", &job.uid_hash[..32]);
        if let Err(e) = copy_durably(spool, &qdir, &name) {
            return self.retry(queue, job, &format!("quarantine: {e}"));
        }
        queue.quarantined(job.id, reason)?;
        self.audit_forward(&dest.name, Delivered::Quarantined(reason), subjects);
        if let Some(m) = dm {
            m.quarantined.fetch_add(1, Ordering::Relaxed);
        }
        crate::log(&format!(
            "quarantined instance {} for {}: {reason}",
            &job.uid_hash[..12],
            dest.name
        ));
        Ok(())
    }

    /// An `instance-forwarded`, `instance-stored` (the archive) or
    /// `instance-quarantined` record (the job is committed in the queue
    /// either way; a failed append is logged).
    fn audit_forward(
        &self,
        destination: &str,
        how: Delivered<'_>,
        subjects: Vec<obscura_audit::SubjectRef>,
    ) {
        self.audit_all(vec![crate::audit::forwarded(destination, how, subjects)]);
    }

    /// Append a batch's delivery records (one group commit for the lot
    /// under `sync_every = 1`; a failed append is logged).
    fn audit_all(&self, records: Vec<obscura_audit::AuditEvent>) {
        if let Some(a) = self.auditor().filter(|_| !records.is_empty()) {
            if let Err(e) = a.record_all(records) {
                crate::log(&format!("audit log: cannot record a delivery: {e}"));
            }
        }
    }

    fn retry(&self, queue: &mut dyn Queue, job: &Job, msg: &str) -> Result<(), String> {
        if let Some(m) = self.metrics.destinations.get(&job.destination) {
            m.errors.fetch_add(1, Ordering::Relaxed);
        }
        let wait = backoff(self.config.server.retry_initial_ms, job.attempts);
        let gave_up = queue.failed(job, msg, wait, self.config.server.max_attempts)?;
        crate::log(&format!(
            "delivery of instance {} to {} failed (attempt {}): {msg}{}",
            &job.uid_hash[..12],
            job.destination,
            job.attempts + 1,
            if gave_up { "; giving up" } else { "" }
        ));
        Ok(())
    }

    /// Remove spool files whose jobs all finished longer ago than the retention.
    fn janitor(&self, queue: &mut dyn Queue) {
        let cutoff = now() - self.config.server.retention_secs as f64;
        loop {
            let Ok(expired) = queue.expired(cutoff, 500) else {
                return;
            };
            if expired.is_empty() {
                return;
            }
            for (_, name) in &expired {
                let _ = std::fs::remove_file(self.data.spool().join(name));
            }
            let ids: Vec<i64> = expired.iter().map(|(id, _)| *id).collect();
            if queue.removed(&ids).is_err() || expired.len() < 500 {
                return;
            }
        }
    }
}

/// Move a finished temporary file into the folder as `<new SOP Instance UID>.dcm`
/// (a re-delivery replaces it with identical bytes: no second copy).
fn place_in_folder(
    dir: &Path,
    out: &mut OutFile,
    tmp: &mut tempfile::NamedTempFile,
) -> Result<(), String> {
    let name = format!("{}.dcm", out.sop_instance_uid);
    if name.contains('/') {
        return Err("invalid SOP Instance UID".into());
    }
    let path = dir.join(name);
    std::fs::rename(tmp.path(), &path)
        .map_err(|e| format!("cannot move into the output folder: {}", e.kind()))?;
    // the temporary file is gone; keep NamedTempFile from removing the new name
    out.path = path;
    sync_dir(dir).map_err(|e| format!("cannot sync the output folder: {}", e.kind()))
}
