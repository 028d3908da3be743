//! `obscura probe`: audits a site's own DICOM endpoints for the doors
//! attackers use, without reading patient data.
//!
//! Per endpoint: a TLS ClientHello (does a TLS 1.2/1.3 handshake complete?),
//! an A-ASSOCIATE-RQ with a random called and calling AE title (strict
//! PS3.8 handshake: is any called AE title accepted, from an unknown
//! caller?), then, if refused, a short list of called AE titles products
//! ship with; on an accepted title, one association that proposes the
//! services an attacker wants (ECHO, FIND, MOVE, GET, STORE, worklist) and
//! records which are offered, and one study-level C-FIND that stops at the
//! first response and keeps a count and a keyed hash, never a value.
//!
//! Uses `obscura-dimse` as a client only. Associations are rate-limited
//! (default 10 per second) and each endpoint has a time budget (10 s).

mod cert;
mod checks;
mod cve;
mod findings;
mod fingerprint;
mod html;
mod http;
mod intrusive;
mod render;
mod target;
mod tls_findings;
mod tlsscan;

use std::time::Duration;

use serde::Serialize;

pub use cert::{CertFacts, TrustStore};
pub use cve::{compiled as cve_table_compiled, matches as cve_matches, CveMatch};
pub use findings::{Finding, Severity};
pub use fingerprint::{fingerprint, http_fingerprint, Fingerprint};
pub use html::html;
pub use http::{
    Answer, DicomWebCheck, HttpSummary, OrthancSystem, DEFAULT_HTTP_PORTS, DICOMWEB_PREFIXES,
};
pub use intrusive::{
    AllowList, IntrusiveReport, SyntheticStore, SYNTHETIC_PATIENT_ID, SYNTHETIC_PATIENT_NAME,
};
pub use render::table;
pub use target::{
    parse_target, parse_targets_file, target_addresses, Target, CONFIRM_ABOVE_ADDRESSES,
    DEFAULT_DICOM_PORTS, MAX_RANGE_ADDRESSES,
};
pub use tlsscan::{SuiteClass, TlsPolicy};

/// The called AE titles tried when a random one is refused: titles products
/// and tutorials ship with.
pub const COMMON_CALLED_AE_TITLES: &[&str] = &[
    "ANY-SCP", "COMMON", "ORTHANC", "STORESCP", "DCM4CHEE", "PACS", "ANY", "DCMQRSCP", "SERVER",
    "ARCHIVE",
];

/// Errors of the probe.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A target that cannot be parsed or is out of scope.
    #[error("bad target {0}")]
    BadTarget(String),
    /// The protocol layer failed in a way that is not a finding.
    #[error(transparent)]
    Dimse(#[from] obscura_dimse::DimseError),
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Most association (and TLS) attempts started per second, over all endpoints.
    pub max_associations_per_second: u32,
    /// Time budget per endpoint; checks left when it runs out are skipped.
    pub endpoint_budget: Duration,
    /// Limit on each wait for the peer.
    pub timeout: Duration,
    /// Key of the HMAC-SHA256 applied to what a query returns (random per run by default).
    pub hmac_key: Vec<u8>,
    /// Called AE titles to try before the common ones (e.g. the site's own).
    pub called_ae_titles: Vec<String>,
    /// What server certificate chains are verified against.
    pub trust: TrustStore,
    /// `--intrusive`: the targets the intrusive checks may touch (none by default).
    pub intrusive: Option<AllowList>,
}

impl ProbeOptions {
    /// 10 associations/s, 10 s per endpoint, 3 s per wait, a fresh random
    /// key, the system's roots as trust store.
    pub fn new() -> ProbeOptions {
        let mut key = vec![0u8; 32];
        // A failing system RNG leaves a zero key: the hashes are then
        // linkable across runs, still not reversible to values.
        let _ = getrandom::getrandom(&mut key);
        ProbeOptions {
            max_associations_per_second: 10,
            endpoint_budget: Duration::from_secs(10),
            timeout: Duration::from_secs(3),
            hmac_key: key,
            called_ae_titles: Vec::new(),
            trust: TrustStore::system(),
            intrusive: None,
        }
    }
}

impl Default for ProbeOptions {
    fn default() -> Self {
        ProbeOptions::new()
    }
}

/// The outcome of one association attempt, without any peer data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// Called AE title used.
    pub called_ae: String,
    /// Calling AE title used.
    pub calling_ae: String,
    /// "accepted", "rejected", "aborted", "unreachable", "no-answer" or "failed".
    pub outcome: &'static str,
    /// For "rejected": result, source, reason (PS3.8 Table 9-21).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reject: Option<[u8; 3]>,
    /// A short reason for the other outcomes.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// TLS as seen by a ClientHello to the port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsSummary {
    /// Whether a TLS 1.2/1.3 handshake completed.
    pub handshake: bool,
    /// Negotiated version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Negotiated cipher suite.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<String>,
    /// Whether the server asked for a client certificate.
    pub client_certificate_requested: bool,
    /// SHA-256 of the server certificate (public; for pinning and comparison).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_certificate_sha256: Option<String>,
    /// Why no handshake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// Versions, suites and certificate against BCP 195, when the port speaks TLS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<TlsPolicy>,
}

/// A service proposed to the endpoint and whether it was offered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Service {
    /// Short name, e.g. "FIND study root".
    pub name: &'static str,
    /// SOP class UID proposed.
    pub sop_class: &'static str,
    /// Whether the presentation context was accepted.
    pub accepted: bool,
}

/// How the endpoint met a random username and passcode (PS3.7 D.3.3.7).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserIdentityCheck {
    /// "accepted", "rejected", "aborted", ... (as [`Attempt::outcome`]).
    pub outcome: &'static str,
    /// Whether the A-ASSOCIATE-AC carried a User Identity server response.
    pub server_response: bool,
}

/// What the one C-FIND saw: a count, a status and a keyed hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QuerySummary {
    /// Responses with a match read: 0 or 1.
    pub matches_read: u8,
    /// DIMSE status of that response, hex.
    pub status: String,
    /// HMAC-SHA256 (run key) of the first match's identifier bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier_hmac: Option<String>,
    /// Length of that identifier in bytes.
    pub identifier_bytes: u64,
    /// Whether the query was cancelled after the first match.
    pub cancelled: bool,
    /// Why there is no answer, when the query failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Everything learnt about one endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointReport {
    /// HOST:PORT as given.
    pub target: String,
    /// Whether a TCP connection could be made.
    pub reachable: bool,
    /// TLS, when reachable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSummary>,
    /// "tls" or "plain": how the DICOM checks were made.
    pub transport: &'static str,
    /// Whether the endpoint answered an A-ASSOCIATE-RQ per PS3.8 (AC, RJ or A-ABORT).
    pub speaks_dicom: bool,
    /// The attempt with a random called and calling AE title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub random_titles: Option<Attempt>,
    /// Guessed called AE titles tried, in order (stops at the first accepted).
    pub guesses: Vec<Attempt>,
    /// The called AE title accepted from an unknown caller, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_called_ae: Option<String>,
    /// Whether any called AE title is accepted.
    pub any_called_ae_accepted: bool,
    /// Whether an unknown (random) calling AE title is accepted.
    pub unknown_calling_ae_accepted: bool,
    /// Services proposed to the unknown caller and which were offered.
    pub services: Vec<Service>,
    /// C-ECHO status, when Verification was offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub echo_status: Option<String>,
    /// The one study-level C-FIND, when FIND was offered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<QuerySummary>,
    /// Implementation, from the A-ASSOCIATE-AC or the HTTP answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
    /// The HTTP/DICOMweb checks, when the port answered HTTP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpSummary>,
    /// User Identity negotiation with a random username and passcode, on
    /// an accepted called AE title.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_identity: Option<UserIdentityCheck>,
    /// What the intrusive checks did (`--intrusive`, allow-listed targets only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub intrusive: Option<IntrusiveReport>,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Associations (and TLS handshakes) attempted on this endpoint.
    pub connections: u32,
    /// Time spent, milliseconds.
    pub elapsed_ms: u64,
    /// Checks skipped and why.
    pub notes: Vec<String>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// "obscura probe" and its version.
    pub tool: String,
    /// Every endpoint probed.
    pub endpoints: Vec<EndpointReport>,
    /// What the hashes are: key per run, never stored.
    pub hash_note: &'static str,
    /// The date the CVE table was compiled.
    pub cve_table_compiled: String,
    /// What server certificate chains were verified against.
    pub trust_store: String,
    /// Total time, milliseconds.
    pub elapsed_ms: u64,
}

impl Report {
    /// The most severe finding of the run, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.endpoints
            .iter()
            .flat_map(|e| e.findings.iter().map(|f| f.severity))
            .max()
    }

    /// Findings at `severity` or above, over all endpoints.
    pub fn count_at_least(&self, severity: Severity) -> usize {
        self.endpoints
            .iter()
            .flat_map(|e| &e.findings)
            .filter(|f| f.severity >= severity)
            .count()
    }
}

/// Endpoints probed at the same time. Small on purpose: all of them share
/// the one rate limit, and each has its own time budget.
pub const CONCURRENT_ENDPOINTS: usize = 4;

/// Probes the targets, [`CONCURRENT_ENDPOINTS`] at a time, sharing one rate
/// limit; the report lists them in the order given.
pub async fn probe(targets: &[Target], options: &ProbeOptions) -> Report {
    let started = std::time::Instant::now();
    let limiter = checks::Limiter::new(options.max_associations_per_second);
    let slots = tokio::sync::Semaphore::new(CONCURRENT_ENDPOINTS);
    let futures = targets.iter().map(|t| {
        let (limiter, slots) = (&limiter, &slots);
        async move {
            // The semaphore is never closed: acquire cannot fail.
            let _slot = slots.acquire().await.ok();
            checks::probe_endpoint(t, options, limiter).await
        }
    });
    let endpoints = join_all(futures.collect()).await;
    Report {
        tool: format!("obscura probe {}", env!("CARGO_PKG_VERSION")),
        endpoints,
        hash_note: "identifier_hmac, qido_hmac: HMAC-SHA256 under a key drawn for this run and never stored",
        cve_table_compiled: cve::compiled(),
        trust_store: options.trust.description.clone(),
        elapsed_ms: started.elapsed().as_millis() as u64,
    }
}

/// Polls every future on the current task until all are done (no spawn, so
/// neither `Send` nor `'static` is needed); results in input order.
async fn join_all<F: std::future::Future>(futures: Vec<F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut results: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, r) in futures.iter_mut().zip(results.iter_mut()) {
            if r.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *r = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod concurrency_tests {
    use super::*;

    /// Endpoints run side by side: four silent listeners (accept, never
    /// answer) take about one wait each, not four in a row.
    #[tokio::test]
    async fn endpoints_concurrent() {
        let mut targets = Vec::new();
        let mut keep = Vec::new();
        for _ in 0..4 {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            targets.push(Target {
                host: "127.0.0.1".into(),
                port: l.local_addr().unwrap().port(),
            });
            keep.push(l);
        }
        let mut options = ProbeOptions::new();
        options.timeout = Duration::from_millis(600);
        options.endpoint_budget = Duration::from_millis(1500);
        let started = std::time::Instant::now();
        let report = probe(&targets, &options).await;
        let elapsed = started.elapsed();
        assert_eq!(report.endpoints.len(), 4);
        for (e, t) in report.endpoints.iter().zip(&targets) {
            assert_eq!(e.target, t.to_string());
        }
        assert!(elapsed < Duration::from_millis(3 * 1500), "{elapsed:?}");
    }
}
