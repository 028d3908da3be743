//! The SCP: accept loop, association negotiation, C-ECHO and C-STORE.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use log::{debug, info, warn};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::command::{self, Command};
use crate::pdu::{self, pc_result, Associate, PcAc, Pdu};
use crate::{
    Admission, DimseError, Handler, PeerIdentity, ReceivedInstance, RejectReason, ServerConfig,
};

/// Any byte stream an association can run over (TCP or TLS).
pub(crate) trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// Run the SCP on `listener` until `shutdown` resolves; then stop accepting
/// and let in-flight associations finish for up to
/// `config.shutdown_grace`, after which the remaining ones are dropped
/// (their partial data sets deleted). Returns `Err` only if the spool
/// folder cannot be created; per-association failures are logged.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    handler: Arc<dyn Handler>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), DimseError> {
    std::fs::create_dir_all(&config.spool_dir)?;
    if config.max_associations == 0 {
        return Err(DimseError::Config(
            "max_associations must be at least 1".into(),
        ));
    }
    let config = Arc::new(config);
    let slots = Arc::new(Semaphore::new(config.max_associations));
    // Callers beyond the limit get an A-ASSOCIATE-RJ from a short-lived
    // task; those tasks are bounded too (past that, the socket is closed).
    let reject_slots = Arc::new(Semaphore::new(config.max_associations.max(16)));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    info!(
        "DICOM SCP {} listening on {:?} ({})",
        config.ae_title,
        listener.local_addr().ok(),
        if config.tls.is_some() {
            "TLS"
        } else {
            "plain TCP"
        }
    );
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (tcp, address) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let config = config.clone();
                match slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let handler = handler.clone();
                        tasks.spawn(async move {
                            association(tcp, address, &config, handler).await;
                            drop(permit);
                        });
                    }
                    Err(_) => match reject_slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            warn!("association from {address} rejected: {} associations in progress", config.max_associations);
                            tasks.spawn(async move {
                                reject_busy(tcp, &config).await;
                                drop(permit);
                            });
                        }
                        Err(_) => warn!("connection from {address} closed: overloaded"),
                    },
                }
            }
        }
    }
    drop(listener);
    info!(
        "DICOM SCP {}: shutting down, {} association(s) in flight",
        config.ae_title,
        tasks.len()
    );
    let drained = timeout(config.shutdown_grace, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!(
            "DICOM SCP {}: {} association(s) cut at shutdown",
            config.ae_title,
            tasks.len()
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
    Ok(())
}

/// Wraps the TCP stream in TLS if configured; returns the stream and the
/// client certificate's fingerprint.
async fn open(
    tcp: TcpStream,
    config: &ServerConfig,
) -> Result<(Box<dyn Stream>, Option<[u8; 32]>), DimseError> {
    match &config.tls {
        None => Ok((Box::new(tcp), None)),
        Some(tls) => {
            let acceptor = tokio_rustls::TlsAcceptor::from(tls.clone());
            let stream = timeout(config.idle_timeout, acceptor.accept(tcp))
                .await
                .map_err(|_| DimseError::Timeout)??;
            let fingerprint = stream
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| Sha256::digest(c.as_ref()).into());
            Ok((Box::new(stream), fingerprint))
        }
    }
}

async fn reject_busy(tcp: TcpStream, config: &ServerConfig) {
    let wait = config.idle_timeout.min(Duration::from_secs(10));
    let Ok((mut s, _)) = open(tcp, config).await else {
        return;
    };
    let mut buf = Vec::new();
    if let Ok(Ok(Some(Pdu::AssociateRq(_)))) =
        timeout(wait, pdu::read_pdu(&mut s, &mut buf, 0)).await
    {
        // Rejected-transient, service-provider (presentation), local limit exceeded.
        let _ = s.write_all(&pdu::encode_reject(2, 3, 2)).await;
        let _ = s.flush().await;
        let _ = s.shutdown().await;
    }
}

/// Sends A-ABORT (service provider) and closes, ignoring errors.
async fn abort(s: &mut Box<dyn Stream>, reason: u8) {
    let _ = s.write_all(&pdu::encode_abort(2, reason)).await;
    let _ = s.flush().await;
    let _ = s.shutdown().await;
}

async fn association(
    tcp: TcpStream,
    address: SocketAddr,
    config: &ServerConfig,
    handler: Arc<dyn Handler>,
) {
    let (mut s, fingerprint) = match open(tcp, config).await {
        Ok(x) => x,
        Err(e) => {
            warn!("connection from {address}: TLS handshake failed: {e}");
            return;
        }
    };
    let mut buf = Vec::new();
    let rq = match timeout(config.idle_timeout, pdu::read_pdu(&mut s, &mut buf, 0)).await {
        Ok(Ok(Some(Pdu::AssociateRq(rq)))) => rq,
        Ok(Ok(None)) => return,
        Ok(Ok(Some(_))) => {
            warn!("connection from {address}: expected A-ASSOCIATE-RQ");
            abort(&mut s, 2).await;
            return;
        }
        Ok(Err(e)) => {
            warn!("connection from {address}: bad A-ASSOCIATE-RQ: {e}");
            abort(&mut s, 0).await;
            return;
        }
        Err(_) => {
            warn!("connection from {address}: no A-ASSOCIATE-RQ in time");
            abort(&mut s, 0).await;
            return;
        }
    };
    let peer = PeerIdentity {
        calling_ae: rq.calling_ae.clone(),
        called_ae: rq.called_ae.clone(),
        address,
        client_cert_sha256: fingerprint,
    };
    let who = format!("{} -> {} from {}", peer.calling_ae, peer.called_ae, address);
    if rq.protocol_version & 1 == 0 {
        warn!(
            "association {who} rejected: protocol version {}",
            rq.protocol_version
        );
        let _ = s.write_all(&pdu::encode_reject(1, 2, 2)).await;
        let _ = s.shutdown().await;
        return;
    }
    if rq.application_context != pdu::APPLICATION_CONTEXT {
        warn!("association {who} rejected: application context not supported");
        let _ = s.write_all(&pdu::encode_reject(1, 1, 2)).await;
        let _ = s.shutdown().await;
        return;
    }
    if let Admission::Reject { reason } = handler.admit(&peer) {
        let code = match reason {
            RejectReason::NoReasonGiven => 1,
            RejectReason::CallingAeNotRecognized => 3,
            RejectReason::CalledAeNotRecognized => 7,
        };
        warn!("association {who} rejected by admission: {reason:?}");
        let _ = s.write_all(&pdu::encode_reject(1, 1, code)).await;
        let _ = s.flush().await;
        let _ = s.shutdown().await;
        return;
    }

    // Presentation contexts: each proposed abstract syntax we accept gets
    // the proposed transfer syntax that comes first in our preference order.
    let mut contexts = HashMap::new();
    let mut answers = Vec::new();
    for pc in &rq.contexts_rq {
        let (result, ts) = if !config.abstract_syntaxes.contains(&pc.abstract_syntax) {
            (pc_result::ABSTRACT_SYNTAX_NOT_SUPPORTED, String::new())
        } else if let Some(ts) = config
            .transfer_syntaxes
            .iter()
            .find(|t| pc.transfer_syntaxes.contains(t))
        {
            (pc_result::ACCEPTANCE, ts.clone())
        } else {
            (pc_result::TRANSFER_SYNTAXES_NOT_SUPPORTED, String::new())
        };
        if result == pc_result::ACCEPTANCE && pc.id % 2 == 1 {
            contexts.insert(pc.id, (pc.abstract_syntax.clone(), ts.clone()));
        }
        // An AC context carries a transfer syntax sub-item even if rejected.
        let ts = if ts.is_empty() {
            pc.transfer_syntaxes[0].clone()
        } else {
            ts
        };
        answers.push(PcAc {
            id: pc.id,
            result,
            transfer_syntax: ts,
        });
    }
    let ac = Associate {
        protocol_version: 1,
        called_ae: rq.called_ae.clone(),
        calling_ae: rq.calling_ae.clone(),
        application_context: pdu::APPLICATION_CONTEXT.into(),
        contexts_rq: vec![],
        contexts_ac: answers,
        max_pdu_length: config.max_pdu_length,
        implementation_class_uid: crate::IMPLEMENTATION_CLASS_UID.into(),
        implementation_version: crate::IMPLEMENTATION_VERSION_NAME.into(),
        user_identity: None,
        user_identity_response: None,
    };
    if s.write_all(&pdu::encode_associate(&ac, false))
        .await
        .is_err()
        || s.flush().await.is_err()
    {
        return;
    }
    info!(
        "association {who} accepted ({} of {} presentation contexts)",
        contexts.len(),
        rq.contexts_rq.len()
    );
    let mut a = Assoc {
        s,
        peer: Arc::new(peer),
        contexts,
        peer_max_pdu: rq.max_pdu_length,
        config,
        handler,
        scratch: Vec::new(),
        stored: 0,
    };
    match a.run(&mut buf).await {
        Ok(()) => info!(
            "association {who} released ({} instance(s) stored)",
            a.stored
        ),
        Err((e, reason)) => {
            warn!(
                "association {who} aborted ({} instance(s) stored): {e}",
                a.stored
            );
            if let Some(reason) = reason {
                abort(&mut a.s, reason).await;
            }
        }
    }
}

/// A message being received.
enum State {
    Idle,
    Command { context_id: u8, bytes: Vec<u8> },
    Data(Incoming),
}

/// A C-STORE data set being received.
struct Incoming {
    context_id: u8,
    message_id: u16,
    sop_class: String,
    sop_instance: String,
    transfer_syntax: String,
    /// None: the data set is being drained, to be answered with this status.
    file: Result<tempfile::NamedTempFile, u16>,
    bytes: u64,
}

struct Assoc<'a> {
    s: Box<dyn Stream>,
    peer: Arc<PeerIdentity>,
    contexts: HashMap<u8, (String, String)>,
    peer_max_pdu: u32,
    config: &'a ServerConfig,
    handler: Arc<dyn Handler>,
    scratch: Vec<u8>,
    stored: u64,
}

/// An error and the A-ABORT reason to send (None: the peer is gone).
type Abort = (DimseError, Option<u8>);

fn unexpected(what: &str) -> Abort {
    (DimseError::Protocol(what.into()), Some(2))
}

impl Assoc<'_> {
    async fn run(&mut self, buf: &mut Vec<u8>) -> Result<(), Abort> {
        let mut state = State::Idle;
        let limit = self.config.max_pdu_length.max(4096);
        loop {
            let pdu = match timeout(
                self.config.idle_timeout,
                pdu::read_pdu(&mut self.s, buf, limit),
            )
            .await
            {
                Err(_) => return Err((DimseError::Timeout, Some(0))),
                Ok(Err(e @ DimseError::Io(_))) => return Err((e, None)),
                Ok(Err(e)) => return Err((e, Some(6))),
                Ok(Ok(None)) => {
                    return Err((
                        DimseError::Protocol("connection closed without release".into()),
                        None,
                    ))
                }
                Ok(Ok(Some(p))) => p,
            };
            match pdu {
                Pdu::PData => {
                    let body = std::mem::take(buf);
                    let r = self.pdata(&body, &mut state).await;
                    *buf = body;
                    r?;
                }
                Pdu::ReleaseRq => {
                    if !matches!(state, State::Idle) {
                        return Err(unexpected("A-RELEASE-RQ in the middle of a message"));
                    }
                    let _ = self.s.write_all(&pdu::encode_release(false)).await;
                    let _ = self.s.flush().await;
                    let _ = self.s.shutdown().await;
                    return Ok(());
                }
                Pdu::Abort { source, reason } => {
                    return Err((
                        DimseError::Aborted {
                            from: source,
                            reason,
                        },
                        None,
                    ));
                }
                _ => return Err(unexpected("unexpected PDU")),
            }
        }
    }

    async fn pdata(&mut self, body: &[u8], state: &mut State) -> Result<(), Abort> {
        for pdv in pdu::pdvs(body) {
            let pdv = pdv.map_err(|e| (e, Some(6)))?;
            if !self.contexts.contains_key(&pdv.context_id) {
                return Err((
                    DimseError::Protocol("PDV on a context not accepted".into()),
                    Some(6),
                ));
            }
            match state {
                State::Idle if pdv.is_command => {
                    *state = State::Command {
                        context_id: pdv.context_id,
                        bytes: Vec::new(),
                    };
                }
                State::Idle => return Err(unexpected("data set without a command")),
                _ => {}
            }
            match state {
                State::Command { context_id, bytes } => {
                    if !pdv.is_command || *context_id != pdv.context_id {
                        return Err(unexpected("command fragments interleaved"));
                    }
                    if bytes.len() + pdv.data.len() > command::MAX_COMMAND_BYTES {
                        return Err((
                            DimseError::Malformed("command set too large".into()),
                            Some(6),
                        ));
                    }
                    bytes.extend_from_slice(pdv.data);
                    if pdv.is_last {
                        let (cid, cmd) = (
                            *context_id,
                            Command::decode(bytes).map_err(|e| (e, Some(6)))?,
                        );
                        *state = self.command(cid, cmd).await?;
                    }
                }
                State::Data(inc) => {
                    if pdv.is_command || inc.context_id != pdv.context_id {
                        return Err(unexpected("data set fragments interleaved"));
                    }
                    inc.bytes += pdv.data.len() as u64;
                    if inc.bytes > self.config.max_dataset_bytes {
                        return Err((
                            DimseError::DataSetTooLarge {
                                limit: self.config.max_dataset_bytes,
                            },
                            Some(0),
                        ));
                    }
                    if let Ok(f) = &mut inc.file {
                        if let Err(e) = f.as_file_mut().write_all(pdv.data) {
                            warn!("spool write failed: {e}");
                            inc.file = Err(crate::STATUS_OUT_OF_RESOURCES);
                        }
                    }
                    if pdv.is_last {
                        let State::Data(inc) = std::mem::replace(state, State::Idle) else {
                            unreachable!()
                        };
                        self.finish_store(inc).await?;
                    }
                }
                State::Idle => unreachable!(),
            }
        }
        Ok(())
    }

    async fn send(&mut self, context_id: u8, cmd: Command) -> Result<(), Abort> {
        pdu::write_pdata(
            &mut self.s,
            context_id,
            true,
            &cmd.encode(),
            true,
            self.peer_max_pdu,
            &mut self.scratch,
        )
        .await
        .map_err(|e| (e, None))
    }

    async fn command(&mut self, context_id: u8, cmd: Command) -> Result<State, Abort> {
        let (abstract_syntax, transfer_syntax) = self.contexts[&context_id].clone();
        let message_id = cmd.u16(command::MESSAGE_ID).unwrap_or(0);
        match cmd.field() {
            Some(command::C_ECHO_RQ) => {
                if cmd.has_data_set() {
                    return Err(unexpected("C-ECHO-RQ with a data set"));
                }
                debug!("C-ECHO from {}", self.peer.calling_ae);
                self.send(
                    context_id,
                    Command::echo_rsp(message_id, crate::STATUS_SUCCESS),
                )
                .await?;
                Ok(State::Idle)
            }
            Some(command::C_STORE_RQ) => {
                if !cmd.has_data_set() {
                    return Err(unexpected("C-STORE-RQ without a data set"));
                }
                let sop_class = cmd.uid(command::AFFECTED_SOP_CLASS_UID).unwrap_or_default();
                let sop_instance = cmd
                    .uid(command::AFFECTED_SOP_INSTANCE_UID)
                    .unwrap_or_default();
                let file = if sop_instance.is_empty() || sop_class.is_empty() {
                    Err(crate::STATUS_CANNOT_UNDERSTAND)
                } else if sop_class != abstract_syntax {
                    Err(crate::STATUS_SOP_CLASS_NOT_SUPPORTED)
                } else {
                    tempfile::Builder::new()
                        .prefix(".dimse-")
                        .suffix(".part")
                        .tempfile_in(&self.config.spool_dir)
                        .map_err(|e| {
                            warn!("cannot create spool file: {e}");
                            crate::STATUS_OUT_OF_RESOURCES
                        })
                };
                Ok(State::Data(Incoming {
                    context_id,
                    message_id,
                    sop_class,
                    sop_instance,
                    transfer_syntax,
                    file,
                    bytes: 0,
                }))
            }
            Some(f) => Err(unexpected(&format!("unsupported DIMSE command 0x{f:04X}"))),
            None => Err(unexpected("command without CommandField")),
        }
    }

    async fn finish_store(&mut self, inc: Incoming) -> Result<(), Abort> {
        let status = match inc.file {
            Err(status) => status,
            Ok(file) => {
                let instance = ReceivedInstance {
                    sop_class_uid: inc.sop_class.clone(),
                    sop_instance_uid: inc.sop_instance.clone(),
                    transfer_syntax_uid: inc.transfer_syntax,
                    dataset: file,
                    bytes: inc.bytes,
                };
                let handler = self.handler.clone();
                let peer = self.peer.clone();
                match tokio::task::spawn_blocking(move || handler.store(&peer, instance)).await {
                    Ok(status) => status,
                    Err(e) => {
                        warn!("store handler failed: {e}");
                        crate::STATUS_OUT_OF_RESOURCES
                    }
                }
            }
        };
        if status == crate::STATUS_SUCCESS {
            self.stored += 1;
        }
        let rsp = Command::store_rsp(inc.message_id, status, &inc.sop_class, &inc.sop_instance);
        self.send(inc.context_id, rsp).await
    }
}
