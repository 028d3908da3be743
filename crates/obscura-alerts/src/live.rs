//! Alerts while `serve` runs: [`LiveAlerts`], an [`obscura_audit::Tap`]
//! that hands records to a thread owning a [`Detector`]. The thread first
//! learns from the log already on disk (its alerts are history, not
//! raised again), then reads records as they are appended and hands every
//! alert to the sink. The log never waits: a full queue drops records
//! from the detector's view (counted), never from the log.

use crate::{Alert, Detector};
use obscura_audit::{Checkpoint, LogReader, Record, Tap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What is done with an alert (log it, send it on).
pub type Sink = Box<dyn Fn(&Alert) + Send>;

/// The live detector.
pub struct LiveAlerts {
    tx: Mutex<Option<SyncSender<Record>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// Records the detector did not see (queue full).
    pub skipped: AtomicU64,
    /// Alerts raised.
    pub raised: Arc<AtomicU64>,
}

impl LiveAlerts {
    /// Start: learn from the records already in `log_dir`, then follow.
    pub fn start(mut detector: Detector, log_dir: PathBuf, sink: Sink) -> Arc<Self> {
        let (tx, rx) = sync_channel::<Record>(100_000);
        let raised = Arc::new(AtomicU64::new(0));
        let count = Arc::clone(&raised);
        let thread = std::thread::Builder::new()
            .name("alerts".into())
            .spawn(move || {
                let mut learned = 0;
                if let Ok(reader) = LogReader::open(&log_dir) {
                    let _ = reader.for_each_record(0, |r| {
                        detector.observe(&r);
                    });
                    learned = reader.size();
                }
                for r in rx {
                    if r.seq < learned {
                        continue;
                    }
                    for a in detector.observe(&r) {
                        count.fetch_add(1, Ordering::Relaxed);
                        sink(&a);
                    }
                }
            })
            .ok();
        Arc::new(LiveAlerts {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(thread),
            skipped: AtomicU64::new(0),
            raised,
        })
    }

    /// Handle what is queued and stop.
    pub fn close(&self) {
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Tap for LiveAlerts {
    fn record(&self, record: &Record) {
        let g = self.tx.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(tx) = g.as_ref() {
            if tx.try_send(record.clone()).is_err() {
                self.skipped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn checkpoint(&self, _: &Checkpoint, _: &str) {}
}
