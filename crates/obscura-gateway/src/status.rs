//! `obscura status`: the queue as the data folder (SQLite, WAL: a reader
//! gets in while the gateway runs) or the shared database holds it.

use crate::config::Config;
use crate::queue::{now, QueueBackend};
use std::fmt::Write as _;

/// The status text: queue depth, per-destination state, quarantine reasons
/// and recent errors (no PHI: codes, counts, destination names).
pub fn render(config: &Config) -> Result<String, String> {
    let data = crate::spool::DataDir::open(&config.data_dir(), &config.spool_dir())
        .map_err(|e| format!("data folder {}: {e}", config.data_dir().display()))?;
    let mut q = QueueBackend::from_config(config, &data)?.open_read_only()?;
    let names: Vec<String> = config.destinations.iter().map(|d| d.name.clone()).collect();
    let states = q.states(&names)?;
    let (received, spooled) = q.instance_counts()?;
    let depth: u64 = states.iter().map(|s| s.pending).sum();
    let mut out = String::new();
    let _ = writeln!(out, "queue depth: {depth}");
    let _ = writeln!(
        out,
        "instances received: {received} (spool holds {spooled})"
    );
    let _ = writeln!(
        out,
        "{:<20} {:>8} {:>8} {:>8} {:>8} {:>11}  last error",
        "destination", "pending", "retrying", "done", "failed", "quarantined"
    );
    for s in &states {
        let _ = writeln!(
            out,
            "{:<20} {:>8} {:>8} {:>8} {:>8} {:>11}  {}",
            s.destination,
            s.pending,
            s.retrying,
            s.done,
            s.failed,
            s.quarantined,
            s.last_error.as_deref().unwrap_or("-")
        );
    }
    let reasons = q.quarantine_reasons()?;
    if !reasons.is_empty() {
        let _ = writeln!(
            out,
            "quarantined (kept in {}):",
            data.quarantine().display()
        );
        for (d, r, n) in reasons {
            let _ = writeln!(out, "  {d}: {n} {r}");
        }
    }
    let errors = q.recent_errors(5)?;
    if !errors.is_empty() {
        let _ = writeln!(out, "recent errors:");
        for (at, d, m) in errors {
            let _ = writeln!(out, "  {:.0} s ago  {d}: {m}", (now() - at).max(0.0));
        }
    }
    Ok(out)
}
