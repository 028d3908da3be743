//! The SCU: open an association, C-ECHO, C-STORE (many instances on one
//! association), release.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, ToSocketAddrs};
use tokio::time::timeout;

use crate::command::{self, Command};
use crate::pdu::{self, pc_result, Associate, PcRq, Pdu};
use crate::server::Stream;
use crate::{DimseError, Part10Info};

/// TLS for an SCU: the client configuration and the name the server's
/// certificate must carry (a DNS name or an IP address).
#[derive(Clone)]
pub struct ScuTls {
    /// rustls client configuration (see [`crate::tls::client_config`]).
    pub config: Arc<rustls::ClientConfig>,
    /// Expected server name, e.g. `ServerName::try_from("pacs.example")`.
    pub server_name: rustls_pki_types::ServerName<'static>,
}

/// How to greet a remote SCP.
#[derive(Clone)]
pub struct ScuConfig {
    /// Our AE title.
    pub calling_ae: String,
    /// The remote AE title.
    pub called_ae: String,
    /// Maximum PDU length we receive (advertised in A-ASSOCIATE-RQ).
    pub max_pdu_length: u32,
    /// Limit on connecting and on each wait for the peer.
    pub timeout: Duration,
    /// TLS, or plain TCP.
    pub tls: Option<ScuTls>,
    /// User Identity negotiation (PS3.7 D.3.3.7), if any.
    pub user_identity: Option<crate::UserIdentity>,
}

impl ScuConfig {
    /// Plain TCP, 256 KiB PDUs, 60 s timeout.
    pub fn new(calling_ae: impl Into<String>, called_ae: impl Into<String>) -> ScuConfig {
        ScuConfig {
            calling_ae: calling_ae.into(),
            called_ae: called_ae.into(),
            max_pdu_length: 256 * 1024,
            timeout: Duration::from_secs(60),
            tls: None,
            user_identity: None,
        }
    }
}

/// One presentation context to propose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedContext {
    /// SOP class UID.
    pub abstract_syntax: String,
    /// Transfer syntaxes offered for it (the SCP picks one).
    pub transfer_syntaxes: Vec<String>,
}

/// An open association, as SCU.
pub struct Association {
    s: Box<dyn Stream>,
    /// Accepted contexts: (id, abstract syntax, transfer syntax).
    accepted: Vec<(u8, String, String)>,
    /// Every proposed context with the answer.
    contexts: Vec<ContextResult>,
    peer_class_uid: String,
    peer_version_name: String,
    user_identity_response: Option<Vec<u8>>,
    peer_max_pdu: u32,
    max_pdu_length: u32,
    timeout: Duration,
    next_message_id: u16,
    buf: Vec<u8>,
    scratch: Vec<u8>,
}

fn check_ae(ae: &str) -> Result<(), DimseError> {
    if ae.trim().is_empty()
        || ae.len() > 16
        || !ae.bytes().all(|c| (0x20..0x7F).contains(&c) && c != b'\\')
    {
        return Err(DimseError::Config(format!("invalid AE title {ae:?}")));
    }
    Ok(())
}

/// How the peer answered one proposed presentation context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextResult {
    /// The abstract syntax (SOP class UID) proposed.
    pub abstract_syntax: String,
    /// PS3.8 Table 9-18 result: 0 acceptance, 1 user rejection, 2 no reason,
    /// 3 abstract syntax not supported, 4 transfer syntaxes not supported;
    /// `None` when the A-ASSOCIATE-AC did not mention the context.
    pub result: Option<u8>,
    /// The transfer syntax chosen, when accepted.
    pub transfer_syntax: Option<String>,
}

impl ContextResult {
    /// Whether the context was accepted with one of the proposed transfer syntaxes.
    pub fn accepted(&self) -> bool {
        self.result == Some(pc_result::ACCEPTANCE) && self.transfer_syntax.is_some()
    }
}

/// Exactly what an association attempt came to.
pub enum AssociationAttempt {
    /// A-ASSOCIATE-AC: the association is open (see [`Association::contexts`]).
    Accepted(Box<Association>),
    /// A-ASSOCIATE-RJ with its PS3.8 Table 9-21 codes.
    Rejected {
        /// 1 permanent, 2 transient.
        result: u8,
        /// 1 service user, 2 ACSE provider, 3 presentation provider.
        source: u8,
        /// Reason code within the source (e.g. 3 calling AE, 7 called AE not recognized).
        reason: u8,
    },
    /// A-ABORT in answer to the request.
    Aborted {
        /// 0 service user, 2 service provider.
        source: u8,
        /// Reason code.
        reason: u8,
    },
    /// The TCP (or TLS) connection could not be made.
    Unreachable(String),
    /// Connected, but no A-ASSOCIATE answer: closed, reset or timed out.
    NoAnswer(String),
    /// An answer that does not follow PS3.8 (or a bad configuration).
    Failed(DimseError),
}

impl std::fmt::Debug for AssociationAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssociationAttempt::Accepted(a) => write!(f, "Accepted({:?})", a.contexts),
            AssociationAttempt::Rejected {
                result,
                source,
                reason,
            } => write!(f, "Rejected({result}, {source}, {reason})"),
            AssociationAttempt::Aborted { source, reason } => {
                write!(f, "Aborted({source}, {reason})")
            }
            AssociationAttempt::Unreachable(w) => write!(f, "Unreachable({w})"),
            AssociationAttempt::NoAnswer(w) => write!(f, "NoAnswer({w})"),
            AssociationAttempt::Failed(e) => write!(f, "Failed({e})"),
        }
    }
}

/// What a probing C-FIND saw: counts and a keyed hash, never a value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindProbe {
    /// Responses with a match that were read: 0 or 1 (reading stops at the first).
    pub matches_read: u8,
    /// DIMSE status of the one response read (0xFF00/0xFF01 pending = a match).
    pub status: u16,
    /// HMAC-SHA256 (hex) of the first match's identifier bytes, keyed by the caller.
    pub dataset_hmac: Option<String>,
    /// Length in bytes of that identifier.
    pub dataset_bytes: u64,
    /// Whether a C-CANCEL (then A-ABORT) ended the query after the first match.
    pub cancelled: bool,
    /// The first match's Study Instance UID, for a later C-MOVE only (never shown).
    pub study: Option<StudyUid>,
}

/// A Study Instance UID a peer returned: usable in [`Association::move_study`],
/// never printed (its `Debug` hides it) nor serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct StudyUid(String);

impl StudyUid {
    /// A UID of the caller's own (e.g. a random one under 2.25).
    pub fn new(uid: impl Into<String>) -> StudyUid {
        StudyUid(uid.into())
    }
}

impl std::fmt::Debug for StudyUid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StudyUid(hidden)")
    }
}

/// What a C-MOVE to a destination saw: the first response only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveProbe {
    /// DIMSE status of the first response (0xA801: move destination unknown).
    pub status: u16,
    /// Sub-operations remaining + completed + failed + warning in that response.
    pub sub_operations: u32,
    /// Whether a C-CANCEL (then A-ABORT) ended a pending move.
    pub cancelled: bool,
}

/// The Study Root Query/Retrieve Information Model - MOVE SOP class.
pub const STUDY_ROOT_MOVE: &str = "1.2.840.10008.5.1.4.1.2.2.2";

/// The Study Root Query/Retrieve Information Model - FIND SOP class.
pub const STUDY_ROOT_FIND: &str = "1.2.840.10008.5.1.4.1.2.2.1";

/// Largest C-FIND identifier read by [`Association::find_first_study`].
const MAX_IDENTIFIER_BYTES: usize = 1 << 20;

async fn connect_stream(
    addr: impl ToSocketAddrs,
    config: &ScuConfig,
) -> Result<Box<dyn Stream>, DimseError> {
    let tcp = timeout(config.timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| DimseError::Timeout)??;
    let _ = tcp.set_nodelay(true);
    Ok(match &config.tls {
        None => Box::new(tcp),
        Some(tls) => {
            let connector = tokio_rustls::TlsConnector::from(tls.config.clone());
            Box::new(
                timeout(
                    config.timeout,
                    connector.connect(tls.server_name.clone(), tcp),
                )
                .await
                .map_err(|_| DimseError::Timeout)??,
            )
        }
    })
}

fn check_proposed(config: &ScuConfig, proposed: &[ProposedContext]) -> Result<(), DimseError> {
    check_ae(&config.calling_ae)?;
    check_ae(&config.called_ae)?;
    if proposed.is_empty() || proposed.len() > 128 {
        return Err(DimseError::Config(
            "between 1 and 128 presentation contexts".into(),
        ));
    }
    Ok(())
}

/// Attempts an association and reports exactly what happened: accepted
/// (with every context's result and the peer's implementation), rejected
/// (result, source, reason), aborted, unreachable or no answer. Nothing
/// beyond the A-ASSOCIATE exchange is sent.
pub async fn attempt_association(
    addr: impl ToSocketAddrs,
    config: &ScuConfig,
    proposed: &[ProposedContext],
) -> AssociationAttempt {
    if let Err(e) = check_proposed(config, proposed) {
        return AssociationAttempt::Failed(e);
    }
    let s = match connect_stream(addr, config).await {
        Ok(s) => s,
        Err(DimseError::Io(e)) => return AssociationAttempt::Unreachable(e.kind().to_string()),
        Err(DimseError::Timeout) => return AssociationAttempt::Unreachable("timed out".into()),
        Err(e) => return AssociationAttempt::Failed(e),
    };
    match Association::negotiate(s, config, proposed).await {
        Ok(a) => AssociationAttempt::Accepted(Box::new(a)),
        Err(DimseError::Rejected {
            result,
            from,
            reason,
        }) => AssociationAttempt::Rejected {
            result,
            source: from,
            reason,
        },
        Err(DimseError::Aborted { from, reason }) => AssociationAttempt::Aborted {
            source: from,
            reason,
        },
        Err(DimseError::Timeout) => AssociationAttempt::NoAnswer("timed out".into()),
        Err(DimseError::Io(e)) => AssociationAttempt::NoAnswer(e.kind().to_string()),
        Err(DimseError::Protocol(p)) if p == CLOSED_DURING_NEGOTIATION => {
            AssociationAttempt::NoAnswer("connection closed".into())
        }
        Err(e) => AssociationAttempt::Failed(e),
    }
}

const CLOSED_DURING_NEGOTIATION: &str = "connection closed during negotiation";

impl Association {
    /// Connects (TCP, then TLS if configured) and negotiates the proposed
    /// presentation contexts (at most 128). Fails on A-ASSOCIATE-RJ.
    pub async fn connect(
        addr: impl ToSocketAddrs,
        config: &ScuConfig,
        proposed: &[ProposedContext],
    ) -> Result<Association, DimseError> {
        check_proposed(config, proposed)?;
        let s = connect_stream(addr, config).await?;
        Association::negotiate(s, config, proposed).await
    }

    async fn negotiate(
        mut s: Box<dyn Stream>,
        config: &ScuConfig,
        proposed: &[ProposedContext],
    ) -> Result<Association, DimseError> {
        let rq = Associate {
            protocol_version: 1,
            called_ae: config.called_ae.clone(),
            calling_ae: config.calling_ae.clone(),
            application_context: pdu::APPLICATION_CONTEXT.into(),
            contexts_rq: proposed
                .iter()
                .enumerate()
                .map(|(i, p)| PcRq {
                    id: (2 * i + 1) as u8,
                    abstract_syntax: p.abstract_syntax.clone(),
                    transfer_syntaxes: p.transfer_syntaxes.clone(),
                })
                .collect(),
            contexts_ac: vec![],
            max_pdu_length: config.max_pdu_length,
            implementation_class_uid: crate::IMPLEMENTATION_CLASS_UID.into(),
            implementation_version: crate::IMPLEMENTATION_VERSION_NAME.into(),
            user_identity: config.user_identity.clone(),
            user_identity_response: None,
        };
        s.write_all(&pdu::encode_associate(&rq, true)).await?;
        s.flush().await?;
        let mut buf = Vec::new();
        let answer = timeout(config.timeout, pdu::read_pdu(&mut s, &mut buf, 0))
            .await
            .map_err(|_| DimseError::Timeout)??;
        let ac = match answer {
            Some(Pdu::AssociateAc(ac)) => ac,
            Some(Pdu::AssociateRj {
                result,
                source,
                reason,
            }) => {
                return Err(DimseError::Rejected {
                    result,
                    from: source,
                    reason,
                })
            }
            other => {
                return Err(not_expected(
                    other,
                    CLOSED_DURING_NEGOTIATION,
                    "unexpected answer to A-ASSOCIATE-RQ",
                ))
            }
        };
        let mut accepted = Vec::new();
        let mut contexts = Vec::new();
        for p in &rq.contexts_rq {
            let answer = ac.contexts_ac.iter().find(|pc| pc.id == p.id);
            let ok = answer.filter(|pc| {
                pc.result == pc_result::ACCEPTANCE
                    && p.transfer_syntaxes.contains(&pc.transfer_syntax)
            });
            if let Some(pc) = ok {
                accepted.push((pc.id, p.abstract_syntax.clone(), pc.transfer_syntax.clone()));
            }
            contexts.push(ContextResult {
                abstract_syntax: p.abstract_syntax.clone(),
                result: answer.map(|pc| pc.result),
                transfer_syntax: ok.map(|pc| pc.transfer_syntax.clone()),
            });
        }
        Ok(Association {
            s,
            accepted,
            contexts,
            peer_class_uid: ac.implementation_class_uid,
            peer_version_name: ac.implementation_version,
            user_identity_response: ac.user_identity_response,
            peer_max_pdu: ac.max_pdu_length,
            max_pdu_length: config.max_pdu_length.max(4096),
            timeout: config.timeout,
            next_message_id: 1,
            buf,
            scratch: Vec::new(),
        })
    }

    /// Every proposed context, in proposal order, with the peer's answer.
    pub fn contexts(&self) -> &[ContextResult] {
        &self.contexts
    }

    /// The peer's Implementation Class UID (A-ASSOCIATE-AC user information).
    pub fn peer_implementation_class_uid(&self) -> &str {
        &self.peer_class_uid
    }

    /// The peer's Implementation Version Name (empty when not sent).
    pub fn peer_implementation_version_name(&self) -> &str {
        &self.peer_version_name
    }

    /// The server response to a User Identity request (A-ASSOCIATE-AC
    /// sub-item 0x59), when the peer sent one.
    pub fn user_identity_response(&self) -> Option<&[u8]> {
        self.user_identity_response.as_deref()
    }

    /// One Study Root C-FIND at STUDY level (return key: Study Instance UID
    /// only) on an accepted context. Reads at most the first response: a
    /// match is hashed with HMAC-SHA256 under `hmac_key`, then C-CANCEL and
    /// A-ABORT end the association; a final response ends it with A-RELEASE.
    /// No value of the response is kept or returned.
    pub async fn find_first_study(mut self, hmac_key: &[u8]) -> Result<FindProbe, DimseError> {
        use hmac::Mac;
        let (cid, ts) = self.context_of(STUDY_ROOT_FIND)?;
        let identifier = study_identifier(STUDY_ROOT_FIND, &ts, "")?;
        let id = self.message_id();
        self.send_request(cid, &Command::find_rq(id, STUDY_ROOT_FIND), &identifier)
            .await?;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(hmac_key)
            .map_err(|_| DimseError::Config("HMAC key".into()))?;
        let mut command_bytes = Vec::new();
        let mut rsp: Option<Command> = None;
        let mut data_bytes: u64 = 0;
        let mut data = Vec::new();
        let mut data_done = false;
        let mut too_large = false;
        while !data_done {
            let p = self.read_pdu().await?;
            match p {
                Some(Pdu::PData) => {}
                other => {
                    return Err(not_expected(
                        other,
                        "connection closed before the response",
                        "unexpected PDU",
                    ))
                }
            }
            for pdv in pdu::pdvs(&self.buf) {
                let pdv = pdv?;
                if pdv.is_command {
                    if rsp.is_some() {
                        return Err(DimseError::Protocol("command before the data set".into()));
                    }
                    push_response_command(&mut command_bytes, pdv.data)?;
                    if pdv.is_last {
                        let c = Command::decode(&command_bytes)?;
                        if c.field() != Some(command::C_FIND_RSP)
                            || c.u16(command::MESSAGE_ID_BEING_RESPONDED_TO) != Some(id)
                        {
                            return Err(DimseError::Protocol(
                                "not a C-FIND-RSP to our query".into(),
                            ));
                        }
                        if !c.has_data_set() {
                            data_done = true;
                        }
                        rsp = Some(c);
                    }
                } else {
                    if rsp.is_none() || data_done {
                        return Err(DimseError::Protocol("data set out of sequence".into()));
                    }
                    data_bytes += pdv.data.len() as u64;
                    if data_bytes > MAX_IDENTIFIER_BYTES as u64 {
                        too_large = true;
                        break;
                    }
                    mac.update(pdv.data);
                    data.extend_from_slice(pdv.data);
                    if pdv.is_last {
                        data_done = true;
                    }
                }
            }
            if too_large {
                self.abort().await;
                return Err(DimseError::DataSetTooLarge {
                    limit: MAX_IDENTIFIER_BYTES as u64,
                });
            }
        }
        let rsp = rsp.expect("loop ends after a command");
        let status = rsp
            .u16(command::STATUS)
            .ok_or_else(|| DimseError::Malformed("response without Status".into()))?;
        let pending = matches!(status, 0xFF00 | 0xFF01);
        let has_data = rsp.has_data_set();
        let probe = FindProbe {
            matches_read: u8::from(pending && has_data),
            status,
            dataset_hmac: has_data.then(|| hex(&mac.finalize().into_bytes())),
            dataset_bytes: data_bytes,
            cancelled: pending,
            study: (pending && has_data)
                .then(|| study_uid_of(&data, ts == crate::EXPLICIT_VR_LITTLE_ENDIAN))
                .flatten()
                .map(StudyUid),
        };
        if pending {
            let cancel = Command::cancel_rq(id).encode();
            let _ = self.send_command(cid, &cancel).await;
            self.abort().await;
        } else {
            // Final answer: nothing more is coming; a failed release is no news.
            let _ = self.release().await;
        }
        Ok(probe)
    }

    /// One Study Root C-MOVE at STUDY level of `study` to `destination` on
    /// an accepted context. Reads the first response only: a pending one
    /// (sub-operations under way) is cancelled and the association aborted;
    /// a final one ends it with A-RELEASE.
    pub async fn move_study(
        mut self,
        study: &StudyUid,
        destination: &str,
    ) -> Result<MoveProbe, DimseError> {
        check_ae(destination)?;
        let (cid, ts) = self.context_of(STUDY_ROOT_MOVE)?;
        let identifier = study_identifier(STUDY_ROOT_MOVE, &ts, &study.0)?;
        let id = self.message_id();
        let command = Command::move_rq(id, STUDY_ROOT_MOVE, destination);
        self.send_request(cid, &command, &identifier).await?;
        let rsp = self.response_command(id, true).await?;
        if rsp.field() != Some(command::C_MOVE_RSP) {
            return Err(DimseError::Protocol(
                "not a C-MOVE-RSP to our request".into(),
            ));
        }
        let status = rsp
            .u16(command::STATUS)
            .ok_or_else(|| DimseError::Malformed("response without Status".into()))?;
        let pending = status == 0xFF00;
        let probe = MoveProbe {
            status,
            sub_operations: command::SUB_OPERATIONS
                .iter()
                .map(|e| u32::from(rsp.u16(*e).unwrap_or(0)))
                .sum(),
            cancelled: pending,
        };
        if pending {
            let _ = self
                .send_command(cid, &Command::cancel_rq(id).encode())
                .await;
            self.abort().await;
        } else {
            let _ = self.release().await;
        }
        Ok(probe)
    }

    /// The accepted contexts: (abstract syntax, transfer syntax).
    pub fn accepted(&self) -> impl Iterator<Item = (&str, &str)> {
        self.accepted
            .iter()
            .map(|(_, a, t)| (a.as_str(), t.as_str()))
    }

    fn context(&self, sop_class: &str, transfer_syntax: &str) -> Result<u8, DimseError> {
        self.accepted
            .iter()
            .find(|(_, a, t)| a == sop_class && t == transfer_syntax)
            .map(|c| c.0)
            .ok_or_else(|| DimseError::NoContext {
                sop_class: sop_class.into(),
                transfer_syntax: transfer_syntax.into(),
            })
    }

    fn message_id(&mut self) -> u16 {
        let id = self.next_message_id;
        self.next_message_id = self.next_message_id.checked_add(1).unwrap_or(1);
        id
    }

    /// C-ECHO on an accepted Verification context; returns the status.
    pub async fn echo(&mut self) -> Result<u16, DimseError> {
        let (cid, _) = self.context_of(crate::VERIFICATION_SOP_CLASS)?;
        let id = self.message_id();
        self.send_command(cid, &Command::echo_rq(id).encode())
            .await?;
        self.response(id).await
    }

    /// The accepted presentation context of `sop_class`: its id and
    /// transfer syntax.
    fn context_of(&self, sop_class: &str) -> Result<(u8, String), DimseError> {
        self.accepted
            .iter()
            .find(|c| c.1 == sop_class)
            .map(|c| (c.0, c.2.clone()))
            .ok_or_else(|| DimseError::NoContext {
                sop_class: sop_class.into(),
                transfer_syntax: "any".into(),
            })
    }

    /// Send a request's command set and then its identifier (one data set)
    /// on presentation context `cid`.
    async fn send_request(
        &mut self,
        cid: u8,
        command: &Command,
        identifier: &[u8],
    ) -> Result<(), DimseError> {
        self.send_command(cid, &command.encode()).await?;
        pdu::write_pdata(
            &mut self.s,
            cid,
            false,
            identifier,
            true,
            self.peer_max_pdu,
            &mut self.scratch,
        )
        .await
    }

    /// Send an encoded command set on presentation context `cid`.
    async fn send_command(&mut self, cid: u8, cmd: &[u8]) -> Result<(), DimseError> {
        pdu::write_pdata(
            &mut self.s,
            cid,
            true,
            cmd,
            true,
            self.peer_max_pdu,
            &mut self.scratch,
        )
        .await
    }

    /// C-STORE of a Part 10 file: its data set is sent as stored, in the
    /// file's transfer syntax (an accepted context must match it).
    pub async fn store_file(&mut self, path: &Path) -> Result<u16, DimseError> {
        let info = crate::read_part10_meta(path)?;
        let f = open_at(path, info.dataset_offset)?;
        self.store(
            &info.sop_class_uid,
            &info.sop_instance_uid,
            &info.transfer_syntax_uid,
            f,
        )
        .await
    }

    /// C-STORE of a data set (no file meta) encoded in `transfer_syntax`,
    /// read from `dataset` in PDU-sized pieces (a file or memory: the reads
    /// block the task briefly). Returns the status the SCP answered. After
    /// an error other than `NoContext` the association is unusable (a data
    /// set may be half sent): drop or abort it.
    pub async fn store(
        &mut self,
        sop_class: &str,
        sop_instance: &str,
        transfer_syntax: &str,
        mut dataset: impl Read + Send,
    ) -> Result<u16, DimseError> {
        let cid = self.context(sop_class, transfer_syntax)?;
        let id = self.message_id();
        self.send_command(
            cid,
            &Command::store_rq(id, sop_class, sop_instance).encode(),
        )
        .await?;
        let frag = pdu::max_fragment(self.peer_max_pdu);
        let mut cur = vec![0u8; frag];
        let mut next = vec![0u8; frag];
        let mut n = fill(&mut dataset, &mut cur)?;
        loop {
            let m = if n == frag {
                fill(&mut dataset, &mut next)?
            } else {
                0
            };
            let last = m == 0;
            pdu::write_pdata(
                &mut self.s,
                cid,
                false,
                &cur[..n],
                last,
                self.peer_max_pdu,
                &mut self.scratch,
            )
            .await?;
            if last {
                break;
            }
            std::mem::swap(&mut cur, &mut next);
            n = m;
        }
        self.response(id).await
    }

    /// Waits for the response to message `id`; returns its status.
    async fn response(&mut self, id: u16) -> Result<u16, DimseError> {
        let rsp = self.response_command(id, false).await?;
        rsp.u16(command::STATUS)
            .ok_or_else(|| DimseError::Malformed("response without Status".into()))
    }

    /// Waits for the response to message `id`; a data set before it (when
    /// `skip_data`, e.g. a C-MOVE-RSP's failed UIDs of a previous response) is
    /// read and dropped, and one announced by it is not awaited.
    async fn response_command(&mut self, id: u16, skip_data: bool) -> Result<Command, DimseError> {
        let mut bytes = Vec::new();
        loop {
            let p = self.read_pdu().await?;
            match p {
                Some(Pdu::PData) => {
                    for pdv in pdu::pdvs(&self.buf) {
                        let pdv = pdv?;
                        if !pdv.is_command {
                            if skip_data {
                                continue;
                            }
                            return Err(DimseError::Protocol("data set in a response".into()));
                        }
                        push_response_command(&mut bytes, pdv.data)?;
                        if pdv.is_last {
                            let rsp = Command::decode(&bytes)?;
                            bytes.clear();
                            if rsp.u16(command::MESSAGE_ID_BEING_RESPONDED_TO) != Some(id) {
                                return Err(DimseError::Protocol(
                                    "response to another message".into(),
                                ));
                            }
                            return Ok(rsp);
                        }
                    }
                }
                other => {
                    return Err(not_expected(
                        other,
                        "connection closed before the response",
                        "unexpected PDU",
                    ))
                }
            }
        }
    }

    /// The next PDU from the peer (`None` at the end of the stream; a
    /// P-DATA-TF's content in `self.buf`), within the association's timeout.
    async fn read_pdu(&mut self) -> Result<Option<Pdu>, DimseError> {
        timeout(
            self.timeout,
            pdu::read_pdu(&mut self.s, &mut self.buf, self.max_pdu_length),
        )
        .await
        .map_err(|_| DimseError::Timeout)?
    }

    /// A-RELEASE-RQ, waits for A-RELEASE-RP, closes.
    pub async fn release(mut self) -> Result<(), DimseError> {
        self.s.write_all(&pdu::encode_release(true)).await?;
        self.s.flush().await?;
        let p = self.read_pdu().await?;
        let _ = self.s.shutdown().await;
        match p {
            Some(Pdu::ReleaseRp) => Ok(()),
            other => Err(not_expected(other, "no A-RELEASE-RP", "no A-RELEASE-RP")),
        }
    }

    /// A-ABORT (service user) and close.
    pub async fn abort(mut self) {
        let _ = self.s.write_all(&pdu::encode_abort(0, 0)).await;
        let _ = self.s.flush().await;
        let _ = self.s.shutdown().await;
    }
}

/// Appends a fragment of a response's command set to `bytes`; a command set
/// over `MAX_COMMAND_BYTES` is refused.
fn push_response_command(bytes: &mut Vec<u8>, fragment: &[u8]) -> Result<(), DimseError> {
    if bytes.len() + fragment.len() > command::MAX_COMMAND_BYTES {
        return Err(DimseError::Malformed("response command too large".into()));
    }
    bytes.extend_from_slice(fragment);
    Ok(())
}

/// The error for a PDU (or the end of the stream) other than the one
/// awaited: the peer's A-ABORT, `closed` at the end, `unexpected` otherwise.
fn not_expected(p: Option<Pdu>, closed: &str, unexpected: &str) -> DimseError {
    match p {
        Some(Pdu::Abort { source, reason }) => DimseError::Aborted {
            from: source,
            reason,
        },
        None => DimseError::Protocol(closed.into()),
        Some(_) => DimseError::Protocol(unexpected.into()),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The C-FIND identifier: QueryRetrieveLevel STUDY and an empty Study
/// Instance UID, in the context's (uncompressed little endian) syntax.
fn study_identifier(
    sop_class: &str,
    transfer_syntax: &str,
    study: &str,
) -> Result<Vec<u8>, DimseError> {
    let explicit = match transfer_syntax {
        crate::IMPLICIT_VR_LITTLE_ENDIAN => false,
        crate::EXPLICIT_VR_LITTLE_ENDIAN => true,
        other => {
            return Err(DimseError::NoContext {
                sop_class: sop_class.into(),
                transfer_syntax: other.into(),
            })
        }
    };
    let mut uid = study.as_bytes().to_vec();
    if uid.len() % 2 == 1 {
        uid.push(0);
    }
    let mut out = Vec::new();
    for (group, element, vr, value) in [
        (0x0008u16, 0x0052u16, b"CS", &b"STUDY "[..]),
        (0x0020, 0x000D, b"UI", &uid[..]),
    ] {
        out.extend_from_slice(&group.to_le_bytes());
        out.extend_from_slice(&element.to_le_bytes());
        if explicit {
            out.extend_from_slice(vr);
            out.extend_from_slice(&(value.len() as u16).to_le_bytes());
        } else {
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
        }
        out.extend_from_slice(value);
    }
    Ok(out)
}

/// The Study Instance UID (0020,000D) of a little endian identifier (top
/// level only; a malformed element ends the walk).
fn study_uid_of(mut b: &[u8], explicit: bool) -> Option<String> {
    while b.len() >= 8 {
        let tag = (
            u16::from_le_bytes([b[0], b[1]]),
            u16::from_le_bytes([b[2], b[3]]),
        );
        let long_vr = explicit && crate::part10::has_long_length(&b[4..6]);
        let (len, head): (usize, usize) = if !explicit {
            (u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize, 8)
        } else if long_vr {
            if b.len() < 12 {
                return None;
            }
            (u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize, 12)
        } else {
            (usize::from(u16::from_le_bytes([b[6], b[7]])), 8)
        };
        let value = b.get(head..head.checked_add(len)?)?;
        if tag == (0x0020, 0x000D) {
            let s = std::str::from_utf8(value)
                .ok()?
                .trim_end_matches(['\0', ' ']);
            let ok = !s.is_empty()
                && s.len() <= 64
                && s.bytes().all(|c| c.is_ascii_digit() || c == b'.');
            return ok.then(|| s.to_string());
        }
        b = &b[head + len..];
    }
    None
}

fn open_at(path: &Path, offset: u64) -> Result<std::fs::File, DimseError> {
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(offset))?;
    Ok(f)
}

/// Reads until `buf` is full or the end; returns the count.
fn fill(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, DimseError> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(n)
}

/// C-ECHO: one association, one echo, release. Returns the status.
pub async fn echo_scu(addr: impl ToSocketAddrs, config: &ScuConfig) -> Result<u16, DimseError> {
    let proposed = [ProposedContext {
        abstract_syntax: crate::VERIFICATION_SOP_CLASS.into(),
        transfer_syntaxes: vec![crate::IMPLICIT_VR_LITTLE_ENDIAN.into()],
    }];
    let mut a = Association::connect(addr, config, &proposed).await?;
    let status = a.echo().await?;
    a.release().await?;
    Ok(status)
}

/// Sends Part 10 files on one association (each in its own transfer syntax,
/// one presentation context per SOP class and transfer syntax; at most 128
/// distinct pairs) and releases it. Returns each file's C-STORE status, or
/// its own error (unreadable file, no accepted context); an association
/// failure fails the whole call.
pub async fn store_scu(
    addr: impl ToSocketAddrs,
    config: &ScuConfig,
    files: &[PathBuf],
) -> Result<Vec<Result<u16, DimseError>>, DimseError> {
    let infos: Vec<Result<Part10Info, DimseError>> =
        files.iter().map(|f| crate::read_part10_meta(f)).collect();
    let mut proposed: Vec<ProposedContext> = Vec::new();
    for info in infos.iter().flatten() {
        let p = ProposedContext {
            abstract_syntax: info.sop_class_uid.clone(),
            transfer_syntaxes: vec![info.transfer_syntax_uid.clone()],
        };
        if !proposed.contains(&p) {
            proposed.push(p);
        }
    }
    if proposed.len() > 128 {
        return Err(DimseError::Config(format!(
            "{} distinct SOP class / transfer syntax pairs: more than 128 presentation contexts",
            proposed.len()
        )));
    }
    if proposed.is_empty() {
        return Ok(infos.into_iter().map(|i| i.map(|_| 0)).collect());
    }
    let mut a = Association::connect(addr, config, &proposed).await?;
    let mut out = Vec::with_capacity(files.len());
    for (path, info) in files.iter().zip(infos) {
        let r = match info {
            Err(e) => Err(e),
            Ok(info) => match open_at(path, info.dataset_offset) {
                // A file that cannot be opened costs only itself.
                Err(e) => Err(e),
                Ok(f) => match a
                    .store(
                        &info.sop_class_uid,
                        &info.sop_instance_uid,
                        &info.transfer_syntax_uid,
                        f,
                    )
                    .await
                {
                    Err(e @ DimseError::NoContext { .. }) => Err(e),
                    Err(e) => return Err(e),
                    Ok(s) => Ok(s),
                },
            },
        };
        out.push(r);
    }
    a.release().await?;
    Ok(out)
}
