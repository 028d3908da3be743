//! Counters and latency histograms, served in Prometheus' text format by a
//! tiny HTTP responder on a loopback address.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0,
];

/// A latency histogram (seconds).
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; 12],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Record one observation.
    pub fn observe(&self, secs: f64) {
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                self.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((secs.max(0.0) * 1e6) as u64, Ordering::Relaxed);
    }

    /// The family's `# HELP` and `# TYPE` lines (once per family).
    fn header(name: &str, help: &str, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    }

    /// The samples: buckets, sum and count, with `labels` (may be empty).
    fn samples(&self, name: &str, labels: &str, out: &mut String) {
        use std::fmt::Write as _;
        let sep = if labels.is_empty() { "" } else { "," };
        for (i, b) in BUCKETS.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{b}\"}} {}",
                self.counts[i].load(Ordering::Relaxed)
            );
        }
        let n = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {n}");
        let braced = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(
            out,
            "{name}_sum{braced} {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{braced} {n}");
    }
}

/// Per-destination counters.
#[derive(Default)]
pub struct DestinationMetrics {
    /// Instances delivered.
    pub forwarded: AtomicU64,
    /// Bytes delivered.
    pub forwarded_bytes: AtomicU64,
    /// Instances quarantined.
    pub quarantined: AtomicU64,
    /// Failed delivery attempts.
    pub errors: AtomicU64,
    /// Receipt to delivery, seconds.
    pub latency: Histogram,
}

/// Everything the gateway counts.
#[derive(Default)]
pub struct Metrics {
    /// Instances received and acknowledged (Success).
    pub received: AtomicU64,
    /// Bytes received.
    pub received_bytes: AtomicU64,
    /// Re-sent instances that created no job.
    pub duplicates: AtomicU64,
    /// Associations rejected.
    pub rejected: AtomicU64,
    /// Associations admitted.
    pub associations: AtomicU64,
    /// C-STOREs answered with a failure status.
    pub store_failures: AtomicU64,
    /// Time to make a received instance durable and queued.
    pub store_latency: Histogram,
    /// Per destination.
    pub destinations: BTreeMap<String, DestinationMetrics>,
    /// Queue depth, refreshed by the forwarder.
    pub queue_depth: AtomicU64,
    /// Families other parts of `serve` append to the exposition (alerts).
    extra: Mutex<Vec<Exposition>>,
}

/// Appends metric families (Prometheus text) to the exposition.
pub type Exposition = Box<dyn Fn(&mut String) + Send + Sync>;

impl Metrics {
    /// Metrics with a slot per destination.
    pub fn new(destinations: impl IntoIterator<Item = String>) -> Metrics {
        Metrics {
            destinations: destinations
                .into_iter()
                .map(|d| (d, DestinationMetrics::default()))
                .collect(),
            ..Default::default()
        }
    }

    /// Append `f`'s families to every exposition from now on.
    pub fn add_exposition(&self, f: Exposition) {
        self.extra.lock().unwrap_or_else(|p| p.into_inner()).push(f);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        counter(
            &mut out,
            "obscura_received_total",
            "Instances received and acknowledged.",
            g(&self.received),
        );
        counter(
            &mut out,
            "obscura_received_bytes_total",
            "Bytes received.",
            g(&self.received_bytes),
        );
        counter(
            &mut out,
            "obscura_duplicates_total",
            "Re-sent instances already queued.",
            g(&self.duplicates),
        );
        counter(
            &mut out,
            "obscura_rejected_total",
            "Associations rejected.",
            g(&self.rejected),
        );
        counter(
            &mut out,
            "obscura_associations_total",
            "Associations admitted.",
            g(&self.associations),
        );
        counter(
            &mut out,
            "obscura_store_failures_total",
            "C-STOREs answered with a failure.",
            g(&self.store_failures),
        );
        let _ = writeln!(
            out,
            "# HELP obscura_queue_depth Jobs waiting.\n# TYPE obscura_queue_depth gauge\nobscura_queue_depth {}",
            g(&self.queue_depth)
        );
        Histogram::header(
            "obscura_store_seconds",
            "Receipt to durable and queued.",
            &mut out,
        );
        self.store_latency
            .samples("obscura_store_seconds", "", &mut out);
        type Field = fn(&DestinationMetrics) -> &AtomicU64;
        let families: [(&str, &str, Field); 4] = [
            ("obscura_forwarded_total", "Instances delivered.", |m| {
                &m.forwarded
            }),
            ("obscura_forwarded_bytes_total", "Bytes delivered.", |m| {
                &m.forwarded_bytes
            }),
            ("obscura_quarantined_total", "Instances quarantined.", |m| {
                &m.quarantined
            }),
            (
                "obscura_forward_errors_total",
                "Failed delivery attempts.",
                |m| &m.errors,
            ),
        ];
        for (title, help, field) in families {
            let _ = writeln!(out, "# HELP {title} {help}\n# TYPE {title} counter");
            for (d, m) in &self.destinations {
                let _ = writeln!(out, "{title}{{destination=\"{d}\"}} {}", g(field(m)));
            }
        }
        if !self.destinations.is_empty() {
            Histogram::header(
                "obscura_forward_latency_seconds",
                "Receipt to delivery.",
                &mut out,
            );
        }
        for (d, m) in &self.destinations {
            m.latency.samples(
                "obscura_forward_latency_seconds",
                &format!("destination=\"{d}\""),
                &mut out,
            );
        }
        for f in self.extra.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            f(&mut out);
        }
        out
    }
}

/// Serve `GET /metrics` on `addr` until `stop` is set. Returns the bound address.
pub fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<Metrics>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let busy = Arc::new(Mutex::new(()));
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _guard = busy.lock();
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let _ = s.set_write_timeout(Some(Duration::from_secs(2)));
                        let mut req = [0u8; 2048];
                        let n = s.read(&mut req).unwrap_or(0);
                        let head = String::from_utf8_lossy(&req[..n]);
                        let (status, body) = if head.starts_with("GET /metrics") {
                            ("200 OK", metrics.render())
                        } else {
                            ("404 Not Found", "not found\n".to_string())
                        };
                        let _ = write!(
                            s,
                            "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        })?;
    Ok(bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::new(["a".to_string(), "b".to_string()]);
        m.received.fetch_add(3, Ordering::Relaxed);
        m.destinations["a"].latency.observe(0.2);
        let t = m.render();
        assert!(t.contains("obscura_received_total 3"));
        assert!(t.contains("obscura_forwarded_total{destination=\"b\"} 0"));
        assert!(
            t.contains("obscura_forward_latency_seconds_bucket{destination=\"a\",le=\"0.25\"} 1")
        );
        assert_eq!(
            t.matches("# TYPE obscura_forward_latency_seconds").count(),
            1
        );
    }
}
