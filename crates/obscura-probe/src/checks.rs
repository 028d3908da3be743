//! The checks against one endpoint, in order, within its time budget.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use obscura_dimse::{
    attempt_association, tls, AssociationAttempt, ProposedContext, ScuConfig, ScuTls,
    STUDY_ROOT_FIND, STUDY_ROOT_MOVE,
};
use tokio::sync::Mutex;

use crate::cert;
use crate::http::{self, Answer, HttpSummary};
use crate::intrusive;
use crate::tlsscan::{self, TlsPolicy};
use crate::{
    findings, fingerprint, Attempt, EndpointReport, ProbeOptions, QuerySummary, Service, Target,
    TlsSummary, COMMON_CALLED_AE_TITLES,
};

/// The services proposed to an unknown caller: (name, SOP class).
pub(crate) const SERVICES: &[(&str, &str)] = &[
    ("ECHO", obscura_dimse::VERIFICATION_SOP_CLASS),
    ("FIND patient root", "1.2.840.10008.5.1.4.1.2.1.1"),
    ("FIND study root", STUDY_ROOT_FIND),
    ("MOVE patient root", "1.2.840.10008.5.1.4.1.2.1.2"),
    ("MOVE study root", "1.2.840.10008.5.1.4.1.2.2.2"),
    ("GET patient root", "1.2.840.10008.5.1.4.1.2.1.3"),
    ("GET study root", "1.2.840.10008.5.1.4.1.2.2.3"),
    ("FIND worklist", "1.2.840.10008.5.1.4.31"),
    ("STORE CT", "1.2.840.10008.5.1.4.1.1.2"),
    ("STORE MR", "1.2.840.10008.5.1.4.1.1.4"),
    ("STORE CR", "1.2.840.10008.5.1.4.1.1.1"),
    ("STORE secondary capture", "1.2.840.10008.5.1.4.1.1.7"),
    ("STORE encapsulated PDF", "1.2.840.10008.5.1.4.1.1.104.1"),
];

/// At most N attempts started per second, over the whole run.
pub(crate) struct Limiter {
    interval: Duration,
    next: Mutex<Instant>,
}

impl Limiter {
    pub(crate) fn new(per_second: u32) -> Limiter {
        Limiter {
            interval: Duration::from_secs(1) / per_second.max(1),
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let mut next = self.next.lock().await;
        let now = Instant::now();
        if *next > now {
            tokio::time::sleep(*next - now).await;
        }
        *next = Instant::now().max(*next) + self.interval;
    }
}

struct Ctx<'a> {
    /// Whether the intrusive checks may run on this target.
    intrusive: bool,
    addr: SocketAddr,
    host: String,
    /// The host as given (name or address), for SNI and the certificate name.
    hostname: String,
    options: &'a ProbeOptions,
    limiter: &'a Limiter,
    deadline: Instant,
    tls: Option<ScuTls>,
    /// The certificates rustls's handshake saw (TLS 1.3 included).
    handshake_chain: Vec<Vec<u8>>,
    report: EndpointReport,
}

impl Ctx<'_> {
    /// The wait limit for the next step, or `None` when the budget is spent.
    fn limit(&mut self, step: &str) -> Option<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_millis(200) {
            self.report
                .notes
                .push(format!("time budget spent before: {step}"));
            return None;
        }
        Some(left.min(self.options.timeout))
    }

    fn config(&self, calling: &str, called: &str, limit: Duration) -> ScuConfig {
        let mut c = ScuConfig::new(calling, called);
        c.timeout = limit;
        c.max_pdu_length = 64 * 1024;
        c.tls = self.tls.clone();
        c
    }

    async fn attempt(
        &mut self,
        calling: &str,
        called: &str,
        proposed: &[ProposedContext],
        limit: Duration,
    ) -> (Attempt, Option<Box<obscura_dimse::Association>>) {
        let config = self.config(calling, called, limit);
        self.attempt_with(config, proposed).await
    }

    /// As [`Ctx::attempt`], with a configuration of the caller's.
    async fn attempt_with(
        &mut self,
        config: ScuConfig,
        proposed: &[ProposedContext],
    ) -> (Attempt, Option<Box<obscura_dimse::Association>>) {
        let (calling, called) = (config.calling_ae.as_str(), config.called_ae.as_str());
        self.limiter.wait().await;
        self.report.connections += 1;
        let a = attempt_association(self.addr, &config, proposed).await;
        let mut summary = Attempt {
            called_ae: called.into(),
            calling_ae: calling.into(),
            outcome: "",
            reject: None,
            detail: String::new(),
        };
        let assoc = match a {
            AssociationAttempt::Accepted(a) => {
                summary.outcome = "accepted";
                Some(a)
            }
            AssociationAttempt::Rejected {
                result,
                source,
                reason,
            } => {
                summary.outcome = "rejected";
                summary.reject = Some([result, source, reason]);
                summary.detail = reject_text(source, reason).into();
                None
            }
            AssociationAttempt::Aborted { source, reason } => {
                summary.outcome = "aborted";
                summary.detail = format!("A-ABORT source {source}, reason {reason}");
                None
            }
            AssociationAttempt::Unreachable(w) => {
                summary.outcome = "unreachable";
                summary.detail = w;
                None
            }
            AssociationAttempt::NoAnswer(w) => {
                summary.outcome = "no-answer";
                summary.detail = w;
                None
            }
            AssociationAttempt::Failed(e) => {
                summary.outcome = "failed";
                summary.detail = failure_text(&e);
                None
            }
        };
        (summary, assoc)
    }
}

/// PS3.8 Table 9-21, the reasons worth naming.
fn reject_text(source: u8, reason: u8) -> &'static str {
    match (source, reason) {
        (1, 1) => "service user: no reason given",
        (1, 2) => "service user: application context name not supported",
        (1, 3) => "service user: calling AE title not recognized",
        (1, 7) => "service user: called AE title not recognized",
        (2, 1) => "ACSE provider: no reason given",
        (2, 2) => "ACSE provider: protocol version not supported",
        (3, 1) => "presentation provider: temporary congestion",
        (3, 2) => "presentation provider: local limit exceeded",
        _ => "other reason",
    }
}

/// An error's kind, never text the peer sent.
fn failure_text(e: &obscura_dimse::DimseError) -> String {
    use obscura_dimse::DimseError as E;
    match e {
        E::Io(io) => format!("I/O: {}", io.kind()),
        E::Tls(_) => "TLS error".into(),
        E::Malformed(_) => "malformed answer".into(),
        E::PduTooLong { .. } => "PDU too long".into(),
        E::DataSetTooLarge { .. } => "data set too large".into(),
        E::Rejected { .. } => "rejected".into(),
        E::Aborted { .. } => "aborted".into(),
        E::Timeout => "timed out".into(),
        E::Protocol(_) => "protocol error".into(),
        E::NoContext { .. } => "no accepted presentation context".into(),
        E::NotPart10(_) => "not Part 10".into(),
        E::Config(_) => "configuration".into(),
    }
}

fn random_title(prefix: &str) -> String {
    let mut b = [0u8; 5];
    let _ = getrandom::getrandom(&mut b);
    let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!("{prefix}{hex}")
}

fn proposal(classes: &[&str]) -> Vec<ProposedContext> {
    classes
        .iter()
        .map(|c| ProposedContext {
            abstract_syntax: c.to_string(),
            transfer_syntaxes: vec![
                obscura_dimse::IMPLICIT_VR_LITTLE_ENDIAN.into(),
                obscura_dimse::EXPLICIT_VR_LITTLE_ENDIAN.into(),
            ],
        })
        .collect()
}

fn empty_report(target: &Target) -> EndpointReport {
    EndpointReport {
        target: target.to_string(),
        reachable: false,
        tls: None,
        transport: "plain",
        speaks_dicom: false,
        random_titles: None,
        guesses: Vec::new(),
        accepted_called_ae: None,
        any_called_ae_accepted: false,
        unknown_calling_ae_accepted: false,
        services: Vec::new(),
        echo_status: None,
        query: None,
        fingerprint: None,
        http: None,
        user_identity: None,
        intrusive: None,
        findings: Vec::new(),
        connections: 0,
        elapsed_ms: 0,
        notes: Vec::new(),
    }
}

/// Every check against one endpoint; never fails (failures are reported).
pub(crate) async fn probe_endpoint(
    target: &Target,
    options: &ProbeOptions,
    limiter: &Limiter,
) -> EndpointReport {
    let started = Instant::now();
    let mut report = empty_report(target);
    let addr = match tokio::net::lookup_host((target.host.as_str(), target.port)).await {
        Ok(mut a) => a.next(),
        Err(_) => None,
    };
    let Some(addr) = addr else {
        report.notes.push("host name does not resolve".into());
        return report;
    };
    let intrusive = options.intrusive.as_ref().map(|a| a.allows(target));
    if intrusive == Some(false) {
        report
            .notes
            .push("intrusive checks not run: target not in the --allow list".into());
    }
    let mut cx = Ctx {
        intrusive: intrusive == Some(true),
        addr,
        host: target.to_string(),
        hostname: target.host.clone(),
        options,
        limiter,
        deadline: started + options.endpoint_budget,
        tls: None,
        handshake_chain: Vec::new(),
        report,
    };
    run_checks(&mut cx).await;
    let mut report = cx.report;
    report.findings = findings::assess(&report);
    report.elapsed_ms = started.elapsed().as_millis() as u64;
    report
}

async fn run_checks(cx: &mut Ctx<'_>) {
    // 1. TCP, then TLS: one ClientHello.
    let Some(limit) = cx.limit("TCP connect") else {
        return;
    };
    cx.limiter.wait().await;
    cx.report.connections += 1;
    match tokio::time::timeout(limit, tokio::net::TcpStream::connect(cx.addr)).await {
        Ok(Ok(_)) => cx.report.reachable = true,
        Ok(Err(e)) => {
            cx.report.notes.push(format!("TCP: {}", e.kind()));
            return;
        }
        Err(_) => {
            cx.report.notes.push("TCP: timed out".into());
            return;
        }
    }
    let Some(limit) = cx.limit("TLS ClientHello") else {
        return;
    };
    cx.limiter.wait().await;
    cx.report.connections += 1;
    match tls::probe_handshake(cx.addr, limit).await {
        Ok(mut t) => {
            cx.handshake_chain = std::mem::take(&mut t.server_chain);
            if t.handshake {
                match tls::probe_client_config() {
                    Ok(config) => {
                        cx.tls = Some(ScuTls {
                            config,
                            server_name: obscura_dimse::rustls::pki_types::ServerName::IpAddress(
                                cx.addr.ip().into(),
                            ),
                        });
                        cx.report.transport = "tls";
                    }
                    Err(e) => cx
                        .report
                        .notes
                        .push(format!("TLS client: {}", failure_text(&e))),
                }
            }
            cx.report.tls = Some(TlsSummary {
                handshake: t.handshake,
                version: t.version,
                cipher_suite: t.cipher_suite,
                client_certificate_requested: t.client_certificate_requested,
                server_certificate_sha256: t.server_certificate_sha256,
                failure: t.failure,
                policy: None,
            });
        }
        Err(e) => cx
            .report
            .notes
            .push(format!("TLS probe: {}", failure_text(&e))),
    }

    // TLS versions, suites and certificate, when the port speaks TLS (a
    // server of TLS 1.0 only fails rustls's handshake with a TLS error).
    let speaks_tls = cx.report.tls.as_ref().is_some_and(|t| {
        t.handshake
            || t.failure
                .as_deref()
                .is_some_and(|f| f.starts_with("TLS error"))
    });
    if speaks_tls {
        let policy = tls_policy(cx).await;
        if let Some(t) = cx.report.tls.as_mut() {
            t.policy = Some(policy);
        }
    }

    // 2. HTTP? One `GET /` (a DICOM peer drops a PDU of type 'G' at once).
    if !crate::DEFAULT_DICOM_PORTS.contains(&cx.addr.port()) {
        let Some(limit) = cx.limit("HTTP request") else {
            return;
        };
        let transport = http::Transport {
            addr: cx.addr,
            host: cx.host.clone(),
            tls: cx.tls.as_ref().map(|t| t.config.clone()),
        };
        cx.limiter.wait().await;
        cx.report.connections += 1;
        if let Some(root) = http::sniff(&transport, limit.min(Duration::from_millis(1500))).await {
            run_http(cx, &transport, root).await;
            return;
        }
    }

    // 3. Random called and calling AE titles: is any title accepted?
    let calling = random_title("PRB");
    let echo_only = proposal(&[obscura_dimse::VERIFICATION_SOP_CLASS]);
    let Some(limit) = cx.limit("association with random AE titles") else {
        return;
    };
    let random_called = random_title("X");
    let (first, assoc) = cx
        .attempt(&calling, &random_called, &echo_only, limit)
        .await;
    cx.report.speaks_dicom = matches!(first.outcome, "accepted" | "rejected" | "aborted");
    let first_outcome = first.outcome;
    let mutual = cx
        .report
        .tls
        .as_ref()
        .is_some_and(|t| t.handshake && t.client_certificate_requested);
    if mutual && !cx.report.speaks_dicom {
        cx.report.notes.push(
            "DICOM over TLS not reachable without a client certificate (mutual TLS): \
             AE title and service checks not possible, as intended"
                .into(),
        );
    }
    cx.report.random_titles = Some(first);
    let mut accepted = None;
    if let Some(a) = assoc {
        note_fingerprint(cx, &a);
        let _ = a.release().await;
        cx.report.any_called_ae_accepted = true;
        accepted = Some(random_called);
    } else if first_outcome == "rejected" {
        // 3. Called AE titles products ship with.
        let titles: Vec<String> = cx
            .options
            .called_ae_titles
            .iter()
            .cloned()
            .chain(COMMON_CALLED_AE_TITLES.iter().map(|s| s.to_string()))
            .collect();
        for title in titles {
            let Some(limit) = cx.limit("common called AE titles") else {
                return;
            };
            let (g, assoc) = cx.attempt(&calling, &title, &echo_only, limit).await;
            let stop = match &g.reject {
                // transient: congestion or a limit; do not insist
                Some([2, _, _]) => true,
                None => g.outcome != "accepted",
                _ => false,
            };
            cx.report.guesses.push(g);
            if let Some(a) = assoc {
                note_fingerprint(cx, &a);
                let _ = a.release().await;
                accepted = Some(title);
                break;
            }
            if stop {
                cx.report
                    .notes
                    .push("guessing stopped: the endpoint stopped answering normally".into());
                break;
            }
        }
    }
    let Some(called) = accepted else {
        return;
    };
    cx.report.unknown_calling_ae_accepted = true;
    cx.report.accepted_called_ae = Some(called.clone());

    // 4. Which services an unknown caller is offered.
    let Some(limit) = cx.limit("service negotiation") else {
        return;
    };
    let classes: Vec<&str> = crate::checks::SERVICES.iter().map(|s| s.1).collect();
    let (a, assoc) = cx
        .attempt(&calling, &called, &proposal(&classes), limit)
        .await;
    let Some(mut assoc) = assoc else {
        cx.report
            .notes
            .push(format!("service negotiation: {} {}", a.outcome, a.detail));
        return;
    };
    cx.report.services = SERVICES
        .iter()
        .zip(assoc.contexts())
        .map(|(s, c)| Service {
            name: s.0,
            sop_class: s.1,
            accepted: c.accepted(),
        })
        .collect();
    if cx.report.services[0].accepted {
        match tokio::time::timeout(limit, assoc.echo()).await {
            Ok(Ok(status)) => cx.report.echo_status = Some(format!("0x{status:04X}")),
            Ok(Err(e)) => cx
                .report
                .notes
                .push(format!("C-ECHO: {}", failure_text(&e))),
            Err(_) => cx.report.notes.push("C-ECHO: timed out".into()),
        }
    }
    let find_offered = assoc
        .contexts()
        .iter()
        .any(|c| c.abstract_syntax == STUDY_ROOT_FIND && c.accepted());
    // The study the C-FIND returned: in memory only, for the C-MOVE.
    let mut study = None;
    if find_offered {
        // 5. One study-level C-FIND: the first response only, hashed.
        let key = cx.options.hmac_key.clone();
        let q = match tokio::time::timeout(limit, assoc.find_first_study(&key)).await {
            Ok(Ok(mut p)) => QuerySummary {
                status: {
                    study = p.study.take();
                    format!("0x{:04X}", p.status)
                },
                matches_read: p.matches_read,
                identifier_hmac: p.dataset_hmac,
                identifier_bytes: p.dataset_bytes,
                cancelled: p.cancelled,
                error: None,
            },
            Ok(Err(e)) => failed_query(failure_text(&e)),
            Err(_) => failed_query("timed out".into()),
        };
        cx.report.query = Some(q);
    } else {
        let _ = assoc.release().await;
    }
    let sc_offered = cx
        .report
        .services
        .iter()
        .any(|s| s.accepted && s.sop_class == intrusive::SECONDARY_CAPTURE);
    user_identity(cx, &calling, &called).await;
    if cx.intrusive && sc_offered {
        synthetic_store(cx, &calling, &called).await;
    }
    let move_offered = cx
        .report
        .services
        .iter()
        .any(|s| s.accepted && s.sop_class == STUDY_ROOT_MOVE);
    if cx.intrusive {
        foreign_move(cx, &calling, &called, study, move_offered).await;
    }
}

/// Intrusive: one study-level C-MOVE to an AE title nobody configured, of
/// the study the C-FIND returned (held in memory only) or of a random UID.
async fn foreign_move(
    cx: &mut Ctx<'_>,
    calling: &str,
    called: &str,
    study: Option<obscura_dimse::StudyUid>,
    offered: bool,
) {
    let Some(limit) = cx.limit("C-MOVE to a foreign AE title") else {
        return;
    };
    let found = study.is_some();
    let study = study.unwrap_or_else(|| obscura_dimse::StudyUid::new(http::random_uid()));
    let destination = random_title("PROBE");
    let mut m = intrusive::ForeignMove {
        destination: destination.clone(),
        study: if found {
            "the study the C-FIND returned"
        } else {
            "a random UID (no study found)"
        },
        context_refused: false,
        status: String::new(),
        sub_operations: 0,
        error: None,
    };
    // Not offered in the service negotiation: the context is refused, no C-MOVE.
    let (a, assoc) = if offered {
        cx.attempt(calling, called, &proposal(&[STUDY_ROOT_MOVE]), limit)
            .await
    } else {
        m.context_refused = true;
        let none = crate::Attempt {
            called_ae: called.into(),
            calling_ae: calling.into(),
            outcome: "not-attempted",
            reject: None,
            detail: String::new(),
        };
        (none, None)
    };
    match assoc {
        None if m.context_refused => {}
        None => m.error = Some(format!("association {} {}", a.outcome, a.detail)),
        Some(assoc) if !assoc.contexts()[0].accepted() => {
            m.context_refused = true;
            let _ = assoc.release().await;
        }
        Some(assoc) => {
            match tokio::time::timeout(limit, assoc.move_study(&study, &destination)).await {
                Ok(Ok(p)) => {
                    m.status = format!("0x{:04X}", p.status);
                    m.sub_operations = p.sub_operations;
                }
                Ok(Err(e)) => m.error = Some(failure_text(&e)),
                Err(_) => m.error = Some("timed out".into()),
            }
        }
    }
    cx.report
        .intrusive
        .get_or_insert_with(Default::default)
        .foreign_move = Some(m);
}

/// User Identity negotiation (PS3.7 D.3.3.7): one association carrying a
/// random username and passcode, a server response requested.
async fn user_identity(cx: &mut Ctx<'_>, calling: &str, called: &str) {
    let Some(limit) = cx.limit("user identity negotiation") else {
        return;
    };
    let mut config = cx.config(calling, called, limit);
    config.user_identity = Some(obscura_dimse::UserIdentity {
        kind: 2,
        positive_response_requested: true,
        primary: random_title("user").into_bytes(),
        secondary: random_title("pass").into_bytes(),
    });
    let echo_only = proposal(&[obscura_dimse::VERIFICATION_SOP_CLASS]);
    let (a, assoc) = cx.attempt_with(config, &echo_only).await;
    let server_response = assoc
        .as_ref()
        .is_some_and(|a| a.user_identity_response().is_some());
    if let Some(assoc) = assoc {
        let _ = assoc.release().await;
    }
    cx.report.user_identity = Some(crate::UserIdentityCheck {
        outcome: a.outcome,
        server_response,
    });
}

/// Intrusive: one synthetic, marked Secondary Capture object, C-STORE'd
/// as the unknown caller in an association of its own.
async fn synthetic_store(cx: &mut Ctx<'_>, calling: &str, called: &str) {
    let Some(limit) = cx.limit("synthetic C-STORE") else {
        return;
    };
    let proposed = [ProposedContext {
        abstract_syntax: intrusive::SECONDARY_CAPTURE.into(),
        transfer_syntaxes: vec![obscura_dimse::IMPLICIT_VR_LITTLE_ENDIAN.into()],
    }];
    let (a, assoc) = cx.attempt(calling, called, &proposed, limit).await;
    let (study, series, instance) = (http::random_uid(), http::random_uid(), http::random_uid());
    let mut store = intrusive::SyntheticStore {
        sop_instance_uid: instance.clone(),
        study_instance_uid: study.clone(),
        status: String::new(),
        error: None,
    };
    match assoc {
        None => store.error = Some(format!("association {} {}", a.outcome, a.detail)),
        Some(mut assoc) => {
            let data = intrusive::synthetic_dataset(&study, &series, &instance);
            let sent = assoc.store(
                intrusive::SECONDARY_CAPTURE,
                &instance,
                obscura_dimse::IMPLICIT_VR_LITTLE_ENDIAN,
                data.as_slice(),
            );
            match tokio::time::timeout(limit, sent).await {
                Ok(Ok(status)) => {
                    store.status = format!("0x{status:04X}");
                    let _ = assoc.release().await;
                }
                Ok(Err(e)) => store.error = Some(failure_text(&e)),
                Err(_) => store.error = Some("timed out".into()),
            }
        }
    }
    cx.report
        .intrusive
        .get_or_insert_with(Default::default)
        .store = Some(store);
}

/// Intrusive: the documented default passwords on `/system`, until one is accepted.
async fn default_credentials(cx: &mut Ctx<'_>, t: &http::Transport) {
    for (_, user, password, _) in intrusive::DEFAULT_CREDENTIALS {
        let Some(limit) = cx.limit("default credentials") else {
            return;
        };
        let auth = intrusive::basic(user, password);
        let status = match cx
            .http(t, "GET", "/system", &[("Authorization", &auth)], &[], limit)
            .await
        {
            Ok(r) => r.status,
            Err(_) => 0,
        };
        cx.report
            .intrusive
            .get_or_insert_with(Default::default)
            .default_credentials
            .push((user.to_string(), status));
        if (200..300).contains(&status) {
            return;
        }
    }
}

/// One ClientHello per legacy version with every known suite, then, at the
/// highest version accepted, one per class of weak suites offered alone.
async fn tls_policy(cx: &mut Ctx<'_>) -> TlsPolicy {
    use tlsscan::{HelloAnswer, SuiteClass::*};
    let mut p = TlsPolicy::default();
    let all = tlsscan::suites_of(&[Recommended, NoAead, NoForwardSecrecy, Broken]);
    let mut best = None;
    for (version, name) in [tlsscan::TLS12, tlsscan::TLS11, tlsscan::TLS10] {
        let Some(limit) = cx.limit("TLS version check") else {
            return p;
        };
        match cx.hello(version, &all, limit).await {
            HelloAnswer::Accepted {
                version: v,
                suite,
                chain,
            } if v == version => {
                p.accepted_versions.push(name);
                if best.is_none() {
                    best = Some(version);
                    p.preferred_suite = Some(tlsscan::suite(suite).0);
                }
                if p.certificate.is_none() {
                    p.certificate = cert::facts(&chain, &cx.hostname, &cx.options.trust);
                }
            }
            HelloAnswer::Failed(why) => p.failures.push(format!("{name}: {why}")),
            _ => {}
        }
    }
    if p.certificate.is_none() {
        // TLS 1.3 only: the certificate travelled encrypted, rustls read it
        p.certificate = cert::facts(&cx.handshake_chain, &cx.hostname, &cx.options.trust);
    }
    let Some(best) = best else { return p };
    let classes: &[_] = if best == tlsscan::TLS12.0 {
        &[Broken, NoForwardSecrecy, NoAead]
    } else {
        // below TLS 1.2 every suite is CBC: the version is the finding
        &[Broken, NoForwardSecrecy]
    };
    for class in classes {
        let Some(limit) = cx.limit("TLS cipher suite check") else {
            return p;
        };
        if let HelloAnswer::Accepted { suite, .. } =
            cx.hello(best, &tlsscan::suites_of(&[*class]), limit).await
        {
            p.weak_suites_accepted
                .push((*class, tlsscan::suite(suite).0));
        }
    }
    p
}

fn failed_query(error: String) -> QuerySummary {
    QuerySummary {
        matches_read: 0,
        status: String::new(),
        identifier_hmac: None,
        identifier_bytes: 0,
        cancelled: false,
        error: Some(error),
    }
}

fn note_fingerprint(cx: &mut Ctx<'_>, a: &obscura_dimse::Association) {
    if cx.report.fingerprint.is_none() {
        cx.report.fingerprint = Some(fingerprint::fingerprint(
            a.peer_implementation_class_uid(),
            a.peer_implementation_version_name(),
        ));
    }
}

/// The HTTP checks, once `GET /` was answered.
async fn run_http(cx: &mut Ctx<'_>, t: &http::Transport, root: http::Response) {
    let key = cx.options.hmac_key.clone();
    let note_headers =
        |r: &http::Response, realm: &mut Option<String>, server: &mut Option<String>| {
            if server.is_none() {
                *server = r.header("server").map(http::clean);
            }
            if realm.is_none() && r.status == 401 {
                *realm = r.header("www-authenticate").and_then(http::realm);
            }
        };
    let (mut realm, mut server) = (None, None);
    // the answer to `GET /` is kept only for its status and headers
    note_headers(&root, &mut realm, &mut server);
    let mut h = HttpSummary {
        scheme: if t.tls.is_some() { "https" } else { "http" },
        root: Answer::of(&Ok::<_, String>(root)),
        server_header: None,
        auth_realm: None,
        system: Answer {
            status: 0,
            error: Some("not tried".into()),
        },
        orthanc: None,
        dicomweb: Vec::new(),
    };
    // Orthanc's REST API
    if let Some(limit) = cx.limit("HTTP GET /system") {
        let r = cx.http(t, "GET", "/system", &[], &[], limit).await;
        h.system = Answer::of(&r);
        if let Ok(r) = &r {
            note_headers(r, &mut realm, &mut server);
            if r.status == 200 {
                h.orthanc = http::orthanc_system(&r.body);
            }
        }
    }
    if cx.intrusive && h.system.refused() {
        default_credentials(cx, t).await;
    }
    if h.orthanc.is_some() {
        if let Some(limit) = cx.limit("HTTP GET /statistics") {
            if let Ok(r) = cx.http(t, "GET", "/statistics", &[], &[], limit).await {
                if r.status == 200 {
                    if let Some(o) = h.orthanc.as_mut() {
                        o.count_studies = http::statistics_count(&r.body);
                    }
                }
            }
        }
    }
    // DICOMweb: QIDO under each prefix; WADO and STOW where QIDO's route exists
    for prefix in http::DICOMWEB_PREFIXES {
        let Some(limit) = cx.limit("QIDO") else { break };
        let path = format!("{prefix}/studies?limit=1");
        let r = cx.get_dicom_json(t, &path, limit).await;
        if let Ok(r) = &r {
            note_headers(r, &mut realm, &mut server);
        }
        let mut c = http::qido_check(prefix, &r, &key);
        drop(r);
        if c.qido.looks_dicomweb() {
            if let Some(limit) = cx.limit("WADO") {
                let path = format!("{prefix}/studies/{}/metadata", http::random_uid());
                let r = cx.get_dicom_json(t, &path, limit).await;
                c.wado = Some(Answer::of(&r));
            }
            if let Some(limit) = cx.limit("STOW") {
                let ctype = format!(
                    "multipart/related; type=\"application/dicom\"; boundary={}",
                    http::STOW_BOUNDARY
                );
                let body = format!("--{}--\r\n", http::STOW_BOUNDARY);
                let r = cx
                    .http(
                        t,
                        "POST",
                        &format!("{prefix}/studies"),
                        &[
                            ("Content-Type", &ctype),
                            ("Accept", "application/dicom+json"),
                        ],
                        body.as_bytes(),
                        limit,
                    )
                    .await;
                c.stow = Some(Answer::of(&r));
            }
        }
        h.dicomweb.push(c);
    }
    h.server_header = server;
    h.auth_realm = realm;
    cx.report.fingerprint = fingerprint::http_fingerprint(&h);
    cx.report.http = Some(h);
}

impl Ctx<'_> {
    /// One hand-built ClientHello, counted in the rate limit.
    async fn hello(
        &mut self,
        version: u16,
        suites: &[u16],
        limit: Duration,
    ) -> tlsscan::HelloAnswer {
        self.limiter.wait().await;
        self.report.connections += 1;
        tlsscan::hello(self.addr, version, suites, Some(&self.hostname), limit).await
    }

    /// `GET path` asking for DICOM JSON.
    async fn get_dicom_json(
        &mut self,
        t: &http::Transport,
        path: &str,
        limit: Duration,
    ) -> Result<http::Response, String> {
        self.http(
            t,
            "GET",
            path,
            &[("Accept", "application/dicom+json")],
            &[],
            limit,
        )
        .await
    }

    async fn http(
        &mut self,
        t: &http::Transport,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        limit: Duration,
    ) -> Result<http::Response, String> {
        self.limiter.wait().await;
        self.report.connections += 1;
        http::request(t, method, path, headers, body, limit).await
    }
}
