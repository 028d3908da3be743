//! Alerts while `serve` runs: [`LiveAlerts`], an [`obscura_audit::Tap`]
//! that hands records to a thread owning a [`Detector`]. The thread first
//! learns from the log already on disk (its alerts are history, not
//! raised again), then reads records as they are appended and hands every
//! alert to the sink. The log never waits: a full queue drops records
//! from the detector's view (counted), never from the log.

use crate::{Alert, Detector, Rule};
use obscura_audit::{Checkpoint, LogReader, Record, Tap};
use std::collections::BTreeMap;
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
    /// Alerts raised, per rule.
    counts: Arc<Mutex<BTreeMap<Rule, u64>>>,
}

impl LiveAlerts {
    /// Start: learn from the records already in `log_dir`, then follow.
    pub fn start(mut detector: Detector, log_dir: PathBuf, sink: Sink) -> Arc<Self> {
        let (tx, rx) = sync_channel::<Record>(100_000);
        let counts = Arc::new(Mutex::new(BTreeMap::new()));
        let count = Arc::clone(&counts);
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
                        *count
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .entry(a.rule)
                            .or_insert(0) += 1;
                        sink(&a);
                    }
                }
            })
            .ok();
        Arc::new(LiveAlerts {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(thread),
            skipped: AtomicU64::new(0),
            counts,
        })
    }

    /// Alerts raised so far.
    pub fn raised(&self) -> u64 {
        self.counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .sum()
    }

    /// The Prometheus family `obscura_alerts_total{rule}`.
    pub fn exposition(&self, out: &mut String) {
        out.push_str("# HELP obscura_alerts_total Alerts raised on abnormal access, by rule.\n");
        out.push_str("# TYPE obscura_alerts_total counter\n");
        for (rule, n) in self.counts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            out.push_str(&format!(
                "obscura_alerts_total{{rule=\"{}\"}} {n}\n",
                rule.name()
            ));
        }
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
