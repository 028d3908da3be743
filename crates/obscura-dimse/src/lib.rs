//! DICOM networking for Obscura: the Upper Layer protocol (PS3.8) and the
//! DIMSE services C-ECHO and C-STORE (PS3.7), as SCP ([`serve`]) and SCU
//! ([`Association`], [`store_scu`], [`echo_scu`]); for auditing peers, an
//! association attempt that reports what happened
//! ([`attempt_association`]) and a C-FIND SCU that reads one response and
//! keeps only a keyed hash ([`Association::find_first_study`]); over TCP or TLS
//! ([`tls`], PS3.15 Annex B with BCP 195: TLS 1.2 and 1.3 only).
//!
//! This crate knows nothing of de-identification, file layout or queues: a
//! [`Handler`] admits associations and makes each received instance durable.
//!
//! # Design
//!
//! - **Own PDU codec** (`pdu.rs`, `command.rs`) instead of `dicom-ul`: its
//!   server entry points take a concrete `TcpStream`, its access control
//!   does not see the TLS client certificate, and it has no DIMSE layer.
//!   The codec here works over any `AsyncRead + AsyncWrite` stream, checks
//!   every declared length before allocating, and streams P-DATA fragments
//!   of a data set straight into a temporary file, so memory per association
//!   is bounded by the PDU size.
//! - **Async on tokio**: one task per association; the accept loop enforces
//!   `max_associations` with a semaphore (extra callers get A-ASSOCIATE-RJ
//!   transient, "local limit exceeded"). [`Handler::store`] runs on tokio's
//!   blocking pool (`spawn_blocking`), so fsync and database work there never
//!   stall the runtime. Fragment writes to the temporary file are plain
//!   `write`s into the page cache (no fsync) from the association's task.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use obscura_dimse::{Admission, Handler, PeerIdentity, ReceivedInstance, ServerConfig};
//!
//! struct Keep;
//! impl Handler for Keep {
//!     fn admit(&self, peer: &PeerIdentity) -> Admission {
//!         if peer.calling_ae == "MODALITY" { Admission::Accept } else {
//!             Admission::Reject { reason: obscura_dimse::RejectReason::CallingAeNotRecognized }
//!         }
//!     }
//!     fn store(&self, _peer: &PeerIdentity, instance: ReceivedInstance) -> u16 {
//!         let name = format!("/data/in/{}.dcm", instance.sop_instance_uid);
//!         if instance.dataset.as_file().sync_all().is_err() { return 0xA700; }
//!         match instance.dataset.persist(&name) { Ok(_) => 0x0000, Err(_) => 0xA700 }
//!     }
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:11112").await?;
//! let mut config = ServerConfig::new("OBSCURA", "/data/spool");
//! config.tls = Some(obscura_dimse::tls::server_config(
//!     "server.pem".as_ref(), "server.key".as_ref(), Some("clients-ca.pem".as_ref()))?);
//! let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
//! let shutdown = async { let _ = stopped.await; }; // e.g. SIGTERM -> stop.send(())
//! obscura_dimse::serve(listener, config, Arc::new(Keep), shutdown).await?;
//!
//! // Forwarding, as SCU:
//! let scu = obscura_dimse::ScuConfig::new("OBSCURA", "VENDOR");
//! let statuses = obscura_dimse::store_scu("pacs.example:104", &scu, &["a.dcm".into()]).await?;
//! # Ok(()) }
//! ```

mod command;
mod part10;
mod pdu;
mod scu;
mod server;
mod sop_classes;
pub mod tls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use part10::{read_part10_meta, Part10Info};
pub use pdu::UserIdentity;
pub use rustls;
pub use scu::{
    attempt_association, echo_scu, store_scu, Association, AssociationAttempt, ContextResult,
    FindProbe, MoveProbe, ProposedContext, ScuConfig, ScuTls, StudyUid, STUDY_ROOT_FIND,
    STUDY_ROOT_MOVE,
};
pub use server::serve;
pub use sop_classes::STORAGE_SOP_CLASSES;

/// The Verification SOP class (C-ECHO).
pub const VERIFICATION_SOP_CLASS: &str = "1.2.840.10008.1.1";
/// Implicit VR Little Endian, the default transfer syntax.
pub const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2.1";
/// Obscura's implementation class UID (the same as in its Part 10 files).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.191218398414384219530467498935271347329";
/// Obscura's implementation version name.
pub const IMPLEMENTATION_VERSION_NAME: &str = concat!("OBSCURA ", env!("CARGO_PKG_VERSION"));

/// DIMSE status: success.
pub const STATUS_SUCCESS: u16 = 0x0000;
/// DIMSE status: refused, out of resources.
pub const STATUS_OUT_OF_RESOURCES: u16 = 0xA700;
/// DIMSE status: refused, SOP class not supported.
pub const STATUS_SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
/// DIMSE status: error, cannot understand.
pub const STATUS_CANNOT_UNDERSTAND: u16 = 0xC000;
/// DIMSE status: error, data set does not match SOP class.
pub const STATUS_DATA_SET_MISMATCH: u16 = 0xA900;

/// The storage SOP class UIDs of PS3.4 Table B.5-1 (generated table).
pub fn storage_sop_classes() -> Vec<String> {
    STORAGE_SOP_CLASSES
        .iter()
        .map(|(uid, _)| uid.to_string())
        .collect()
}

/// The transfer syntaxes accepted by default, in order of preference: the
/// uncompressed ones, deflate, then the common compressed ones (no
/// transcoding ever happens: the sender's encoding is kept).
pub fn default_transfer_syntaxes() -> Vec<String> {
    [
        EXPLICIT_VR_LITTLE_ENDIAN,
        IMPLICIT_VR_LITTLE_ENDIAN,
        "1.2.840.10008.1.2.1.99",  // Deflated Explicit VR Little Endian
        "1.2.840.10008.1.2.2",     // Explicit VR Big Endian (retired)
        "1.2.840.10008.1.2.4.50",  // JPEG Baseline
        "1.2.840.10008.1.2.4.51",  // JPEG Extended
        "1.2.840.10008.1.2.4.57",  // JPEG Lossless
        "1.2.840.10008.1.2.4.70",  // JPEG Lossless SV1
        "1.2.840.10008.1.2.4.80",  // JPEG-LS Lossless
        "1.2.840.10008.1.2.4.81",  // JPEG-LS Near-Lossless
        "1.2.840.10008.1.2.4.90",  // JPEG 2000 Lossless
        "1.2.840.10008.1.2.4.91",  // JPEG 2000
        "1.2.840.10008.1.2.4.201", // HTJ2K Lossless
        "1.2.840.10008.1.2.4.202", // HTJ2K Lossless RPCL
        "1.2.840.10008.1.2.4.203", // HTJ2K
        "1.2.840.10008.1.2.5",     // RLE Lossless
        "1.2.840.10008.1.2.4.100", // MPEG2 MP@ML
        "1.2.840.10008.1.2.4.102", // MPEG-4 AVC/H.264 HP4.1
        "1.2.840.10008.1.2.4.103", // MPEG-4 AVC/H.264 BD
        "1.2.840.10008.1.2.4.106", // MPEG-4 AVC/H.264 Stereo
        "1.2.840.10008.1.2.4.107", // HEVC/H.265 Main
        "1.2.840.10008.1.2.4.108", // HEVC/H.265 Main 10
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Who is asking, as far as the association and transport tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerIdentity {
    /// Calling AE title from the A-ASSOCIATE-RQ, spaces trimmed.
    pub calling_ae: String,
    /// Called AE title from the A-ASSOCIATE-RQ, spaces trimmed.
    pub called_ae: String,
    /// The peer's TCP address.
    pub address: SocketAddr,
    /// SHA-256 of the DER of the TLS client certificate (mutual TLS only).
    pub client_cert_sha256: Option<[u8; 32]>,
}

/// Why an association is rejected (sent in A-ASSOCIATE-RJ, permanent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectReason {
    /// Service-user reason 3: calling AE title not recognized.
    CallingAeNotRecognized,
    /// Service-user reason 7: called AE title not recognized.
    CalledAeNotRecognized,
    /// Service-user reason 1: no reason given.
    NoReasonGiven,
}

/// What admission decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Go on to presentation context negotiation.
    Accept,
    /// Answer A-ASSOCIATE-RJ (rejected-permanent, service user).
    Reject {
        /// The reason sent to the peer.
        reason: RejectReason,
    },
}

/// One received C-STORE data set, complete, spooled to a temporary file on
/// the server side (never held whole in memory beyond the PDU buffer).
#[derive(Debug)]
pub struct ReceivedInstance {
    /// AffectedSOPClassUID of the C-STORE-RQ (equal to the context's abstract syntax).
    pub sop_class_uid: String,
    /// AffectedSOPInstanceUID of the C-STORE-RQ.
    pub sop_instance_uid: String,
    /// The presentation context's transfer syntax: the encoding of `dataset`.
    pub transfer_syntax_uid: String,
    /// The data set bytes as received (no file meta), in `transfer_syntax_uid`;
    /// created in `ServerConfig::spool_dir`, deleted on drop unless persisted.
    pub dataset: tempfile::NamedTempFile,
    /// Length of `dataset` in bytes.
    pub bytes: u64,
}

/// The application behind the SCP.
pub trait Handler: Send + Sync + 'static {
    /// Accept or reject an association (called for every association, on
    /// the async runtime: keep it quick, no blocking I/O). The crate logs
    /// the decision with AE titles and address only.
    fn admit(&self, peer: &PeerIdentity) -> Admission;
    /// A complete C-STORE: make it durable and return the DIMSE status to
    /// answer (0x0000 success; 0xA700 out of resources; 0xC000 cannot
    /// understand...). Runs on a blocking-capable thread. Success must only
    /// be returned after the instance is durable — that is the handler's job.
    fn store(&self, peer: &PeerIdentity, instance: ReceivedInstance) -> u16;
}

/// Configuration of the SCP.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Our AE title (for logs; checking the called AE title is admission's job).
    pub ae_title: String,
    /// Concurrent associations served; more are rejected (transient).
    pub max_associations: usize,
    /// Maximum P-DATA-TF PDU length we receive (advertised in A-ASSOCIATE-AC).
    pub max_pdu_length: u32,
    /// Silence after which an association (or a TLS handshake) is aborted.
    pub idle_timeout: Duration,
    /// Largest data set accepted; a larger one aborts the association.
    pub max_dataset_bytes: u64,
    /// Where `ReceivedInstance` temporary files are created.
    pub spool_dir: PathBuf,
    /// TLS (server certificate, optional client verification), or plain TCP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Accepted abstract syntaxes: Verification and the storage SOP classes.
    pub abstract_syntaxes: Vec<String>,
    /// Accepted transfer syntaxes, most preferred first.
    pub transfer_syntaxes: Vec<String>,
    /// After shutdown, how long in-flight associations may take to finish.
    pub shutdown_grace: Duration,
}

impl ServerConfig {
    /// Defaults: 64 associations, 256 KiB PDUs, 60 s idle timeout, 4 GiB
    /// data sets, no TLS, Verification + every storage SOP class, the
    /// [`default_transfer_syntaxes`], 30 s shutdown grace.
    pub fn new(ae_title: impl Into<String>, spool_dir: impl Into<PathBuf>) -> ServerConfig {
        let mut abstract_syntaxes = vec![VERIFICATION_SOP_CLASS.to_string()];
        abstract_syntaxes.extend(storage_sop_classes());
        ServerConfig {
            ae_title: ae_title.into(),
            max_associations: 64,
            max_pdu_length: 256 * 1024,
            idle_timeout: Duration::from_secs(60),
            max_dataset_bytes: 4 << 30,
            spool_dir: spool_dir.into(),
            tls: None,
            abstract_syntaxes,
            transfer_syntaxes: default_transfer_syntaxes(),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum DimseError {
    /// Socket or file I/O failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// TLS failed (handshake, certificate).
    #[error("TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// A PDU, item or command set does not follow the standard.
    #[error("malformed: {0}")]
    Malformed(String),
    /// A PDU declared a length beyond the limit (nothing was allocated).
    #[error("PDU of {length} bytes exceeds the limit of {limit}")]
    PduTooLong {
        /// Declared length.
        length: u32,
        /// The limit in force.
        limit: u32,
    },
    /// A data set exceeded `max_dataset_bytes`.
    #[error("data set exceeds {limit} bytes")]
    DataSetTooLarge {
        /// The limit in force.
        limit: u64,
    },
    /// The remote AE rejected the association (PS3.8 Table 9-21 codes).
    #[error("association rejected: result {result}, source {from}, reason {reason}")]
    Rejected {
        /// 1 permanent, 2 transient.
        result: u8,
        /// 1 service user, 2 ACSE provider, 3 presentation provider.
        from: u8,
        /// Reason code within the source.
        reason: u8,
    },
    /// The peer aborted the association.
    #[error("association aborted by peer: source {from}, reason {reason}")]
    Aborted {
        /// 0 service user, 2 service provider.
        from: u8,
        /// Reason code.
        reason: u8,
    },
    /// The peer did not answer in time.
    #[error("timed out")]
    Timeout,
    /// The peer broke the protocol's sequence (unexpected PDU or message).
    #[error("protocol: {0}")]
    Protocol(String),
    /// No accepted presentation context for this SOP class and transfer syntax.
    #[error("no accepted presentation context for {sop_class} in {transfer_syntax}")]
    NoContext {
        /// SOP class UID.
        sop_class: String,
        /// Transfer syntax UID.
        transfer_syntax: String,
    },
    /// A file is not DICOM Part 10 (or its meta lacks a required element).
    #[error("not a usable DICOM Part 10 file: {0}")]
    NotPart10(String),
    /// Bad configuration (AE title, PEM files, TLS settings).
    #[error("configuration: {0}")]
    Config(String),
}
