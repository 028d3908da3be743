//! The probing client against DCMTK: association attempts that report what
//! happened, the peer's implementation, and a C-FIND that reads one
//! response. Each test prints a notice and passes if DCMTK is missing.

mod common;

use std::time::Duration;

use common::{samples, storescp};
use obscura_dimse::{
    attempt_association, AssociationAttempt, ProposedContext, ScuConfig, STUDY_ROOT_FIND,
};
use obscura_testkit::{dcmqrscp_common, free_port};

const CT_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.2";

fn contexts() -> Vec<ProposedContext> {
    [
        obscura_dimse::VERIFICATION_SOP_CLASS,
        CT_IMAGE,
        STUDY_ROOT_FIND,
    ]
    .iter()
    .map(|a| ProposedContext {
        abstract_syntax: a.to_string(),
        transfer_syntaxes: vec![obscura_dimse::IMPLICIT_VR_LITTLE_ENDIAN.into()],
    })
    .collect()
}

fn config(calling: &str, called: &str) -> ScuConfig {
    let mut c = ScuConfig::new(calling, called);
    c.timeout = Duration::from_secs(5);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storescp_accepts_any_title_and_reports_each_context() {
    let out = tempfile::tempdir().unwrap();
    let Some((_child, port)) = storescp(&[], out.path()).await else {
        return;
    };
    let addr = ("127.0.0.1", port);
    let a = match attempt_association(addr, &config("PRB1", "NOSUCHTITLE9"), &contexts()).await {
        AssociationAttempt::Accepted(a) => a,
        other => panic!("{other:?}"),
    };
    let accepted: Vec<bool> = a.contexts().iter().map(|c| c.accepted()).collect();
    assert_eq!(accepted, vec![true, true, false]);
    assert_eq!(
        a.contexts()[2].result,
        Some(3),
        "FIND: abstract syntax not supported"
    );
    assert!(
        a.peer_implementation_class_uid()
            .starts_with("1.2.276.0.7230010.3"),
        "{}",
        a.peer_implementation_class_uid()
    );
    assert!(a
        .peer_implementation_version_name()
        .starts_with("OFFIS_DCMTK"));
    a.release().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dcmqrscp_rejects_unknown_called_ae_and_answers_one_find_for_common() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let Some((_child, port)) = dcmqrscp_common(dir).await else {
        return;
    };
    let addr = ("127.0.0.1", port);
    match attempt_association(addr, &config("PRB1", "NOSUCHTITLE9"), &contexts()).await {
        AssociationAttempt::Rejected {
            result,
            source,
            reason,
        } => assert_eq!((result, source, reason), (1, 1, 7)),
        other => panic!("{other:?}"),
    }
    // Empty archive: the final response comes first, no match read.
    let key = b"test key";
    let AssociationAttempt::Accepted(a) =
        attempt_association(addr, &config("PRB1", "COMMON"), &contexts()).await
    else {
        panic!("COMMON refused");
    };
    assert!(a.contexts()[2].accepted());
    let empty = a.find_first_study(key).await.unwrap();
    assert_eq!((empty.matches_read, empty.status), (0, 0));
    assert!(empty.dataset_hmac.is_none());
    // Store uncompressed samples, then the first match is hashed and cancelled.
    let files: Vec<_> = samples()
        .into_iter()
        .filter(|f| {
            obscura_dimse::read_part10_meta(f)
                .unwrap()
                .transfer_syntax_uid
                == obscura_dimse::EXPLICIT_VR_LITTLE_ENDIAN
                || obscura_dimse::read_part10_meta(f)
                    .unwrap()
                    .transfer_syntax_uid
                    == obscura_dimse::IMPLICIT_VR_LITTLE_ENDIAN
        })
        .collect();
    assert!(!files.is_empty());
    let statuses = obscura_dimse::store_scu(addr, &config("LOADER", "COMMON"), &files)
        .await
        .unwrap();
    assert!(statuses.iter().any(|s| matches!(s, Ok(0))), "{statuses:?}");
    let mut hashes = Vec::new();
    for _ in 0..2 {
        let AssociationAttempt::Accepted(a) =
            attempt_association(addr, &config("PRB2", "COMMON"), &contexts()).await
        else {
            panic!("COMMON refused");
        };
        let got = a.find_first_study(key).await.unwrap();
        assert_eq!(got.matches_read, 1, "{got:?}");
        assert!(matches!(got.status, 0xFF00 | 0xFF01));
        assert!(got.cancelled && got.dataset_bytes > 0);
        hashes.push(got.dataset_hmac.unwrap());
    }
    assert_eq!(hashes[0].len(), 64);
    // The server is still serving after the cancel and abort.
    assert!(matches!(
        attempt_association(addr, &config("PRB3", "COMMON"), &contexts()).await,
        AssociationAttempt::Accepted(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_listening_is_unreachable_and_plain_port_is_not_tls() {
    let port = free_port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    assert!(matches!(
        attempt_association(addr, &config("PRB1", "ANY"), &contexts()).await,
        AssociationAttempt::Unreachable(_)
    ));
    let out = tempfile::tempdir().unwrap();
    let Some((_child, port)) = storescp(&[], out.path()).await else {
        return;
    };
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let t = obscura_dimse::tls::probe_handshake(addr, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(!t.handshake, "{t:?}");
    assert!(t.failure.is_some());
}
