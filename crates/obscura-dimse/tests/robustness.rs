//! Protocol-level behaviour of the SCP against hand-made byte streams and
//! our own SCU: negotiation, malformed PDUs, oversized lengths, partial data
//! sets, idle timeout, association limit, concurrency, shutdown.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use obscura_dimse::{Association, DimseError, ProposedContext, ScuConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CT: &str = "1.2.840.10008.5.1.4.1.1.2";
const ILE: &str = "1.2.840.10008.1.2";
const ELE: &str = "1.2.840.10008.1.2.1";

fn item(ty: u8, v: &[u8]) -> Vec<u8> {
    let mut o = vec![ty, 0];
    o.extend_from_slice(&(v.len() as u16).to_be_bytes());
    o.extend_from_slice(v);
    o
}

fn ae(s: &str) -> Vec<u8> {
    format!("{s:<16}").into_bytes()
}

/// A-ASSOCIATE-RQ bytes.
fn associate_rq(calling: &str, contexts: &[(u8, &str, &[&str])]) -> Vec<u8> {
    let mut b = vec![0, 1, 0, 0];
    b.extend(ae("OBSCURA"));
    b.extend(ae(calling));
    b.extend([0; 32]);
    b.extend(item(0x10, b"1.2.840.10008.3.1.1.1"));
    for (id, abs, tss) in contexts {
        let mut v = vec![*id, 0, 0, 0];
        v.extend(item(0x30, abs.as_bytes()));
        for ts in *tss {
            v.extend(item(0x40, ts.as_bytes()));
        }
        b.extend(item(0x20, &v));
    }
    b.extend(item(0x50, &item(0x51, &16384u32.to_be_bytes())));
    let mut pdu = vec![1, 0];
    pdu.extend((b.len() as u32).to_be_bytes());
    pdu.extend(b);
    pdu
}

/// Reads one whole PDU: (type, body).
async fn read_pdu(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 6];
    s.read_exact(&mut h).await.ok()?;
    let len = u32::from_be_bytes([h[2], h[3], h[4], h[5]]) as usize;
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.ok()?;
    Some((h[0], body))
}

/// Presentation context results of an A-ASSOCIATE-AC body: (id, result, ts).
fn ac_contexts(body: &[u8]) -> Vec<(u8, u8, String)> {
    let mut out = vec![];
    let mut p = 68;
    while p + 4 <= body.len() {
        let ty = body[p];
        let len = u16::from_be_bytes([body[p + 2], body[p + 3]]) as usize;
        let v = &body[p + 4..p + 4 + len];
        if ty == 0x21 {
            let ts_len = u16::from_be_bytes([v[6], v[7]]) as usize;
            out.push((
                v[0],
                v[2],
                String::from_utf8_lossy(&v[8..8 + ts_len]).into_owned(),
            ));
        }
        p += 4 + len;
    }
    out
}

fn pdata(context: u8, control: u8, data: &[u8]) -> Vec<u8> {
    let mut o = vec![4, 0];
    o.extend((data.len() as u32 + 6).to_be_bytes());
    o.extend((data.len() as u32 + 2).to_be_bytes());
    o.push(context);
    o.push(control);
    o.extend_from_slice(data);
    o
}

/// An implicit VR LE C-STORE-RQ command set.
fn store_rq(instance: &str) -> Vec<u8> {
    let mut els: Vec<(u16, Vec<u8>)> = vec![
        (0x0002, pad(CT)),
        (0x0100, 1u16.to_le_bytes().to_vec()),
        (0x0110, 1u16.to_le_bytes().to_vec()),
        (0x0700, 0u16.to_le_bytes().to_vec()),
        (0x0800, 0u16.to_le_bytes().to_vec()),
        (0x1000, pad(instance)),
    ];
    let mut body = vec![];
    for (e, v) in els.drain(..) {
        body.extend(0u16.to_le_bytes());
        body.extend(e.to_le_bytes());
        body.extend((v.len() as u32).to_le_bytes());
        body.extend(v);
    }
    let mut o = vec![0, 0, 0, 0, 4, 0, 0, 0];
    o.extend((body.len() as u32).to_le_bytes());
    o.extend(body);
    o
}

fn pad(uid: &str) -> Vec<u8> {
    let mut v = uid.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(0);
    }
    v
}

/// Connects and negotiates CT in ELE on context 1.
async fn associated(server: &Server) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&associate_rq("MODALITY", &[(1, CT, &[ELE])]))
        .await
        .unwrap();
    let (ty, _) = read_pdu(&mut s).await.unwrap();
    assert_eq!(ty, 2);
    s
}

/// The server answers A-ABORT and/or closes.
async fn expect_abort_and_close(s: &mut TcpStream) {
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match read_pdu(s).await {
                None => return,
                Some((7, _)) => {}
                Some((ty, _)) => panic!("unexpected PDU type {ty}"),
            }
        }
    })
    .await;
    assert!(r.is_ok(), "connection not closed");
}

fn scu() -> ScuConfig {
    ScuConfig::new("OBSCURA-SCU", "OBSCURA")
}

async fn still_serving(server: &Server) {
    assert_eq!(
        obscura_dimse::echo_scu(server.addr, &scu()).await.unwrap(),
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn negotiation_result_codes_and_preference() {
    let server = Server::start(|_| {}).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let rq = associate_rq(
        "MODALITY",
        &[
            (1, CT, &[ILE, ELE]),
            (3, "1.2.3.4.5", &[ILE]),
            (5, CT, &["1.2.3.999"]),
            (7, "1.2.840.10008.1.1", &[ILE]),
        ],
    );
    s.write_all(&rq).await.unwrap();
    let (ty, body) = read_pdu(&mut s).await.unwrap();
    assert_eq!(ty, 2);
    let got = ac_contexts(&body);
    assert_eq!(
        got[0],
        (1, 0, ELE.to_string()),
        "our preference: explicit first"
    );
    assert_eq!(
        (got[1].0, got[1].1),
        (3, 3),
        "abstract syntax not supported"
    );
    assert_eq!(
        (got[2].0, got[2].1),
        (5, 4),
        "transfer syntaxes not supported"
    );
    assert_eq!(got[3], (7, 0, ILE.to_string()));
    drop(s);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_association_codes() {
    let server = Server::start(|_| {}).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&associate_rq("STRANGER", &[(1, CT, &[ELE])]))
        .await
        .unwrap();
    let (ty, body) = read_pdu(&mut s).await.unwrap();
    assert_eq!(
        (ty, body[1], body[2], body[3]),
        (3, 1, 1, 3),
        "permanent, user, calling AE"
    );
    let err = obscura_dimse::echo_scu(server.addr, &ScuConfig::new("NOBODY", "OBSCURA"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            DimseError::Rejected {
                result: 1,
                from: 1,
                reason: 3
            }
        ),
        "{err}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_aborted_and_others_are_served() {
    let server = Server::start(|_| {}).await;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    expect_abort_and_close(&mut s).await;
    // Malformed A-ASSOCIATE-RQ: an item running past the PDU.
    let mut rq = associate_rq("MODALITY", &[(1, CT, &[ELE])]);
    let n = rq.len();
    rq[n - 6] = 0xFF;
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&rq).await.unwrap();
    expect_abort_and_close(&mut s).await;
    // A P-DATA with a broken PDV length inside an association.
    let mut s = associated(&server).await;
    s.write_all(&[4, 0, 0, 0, 0, 6, 0, 0, 0, 99, 1, 3])
        .await
        .unwrap();
    expect_abort_and_close(&mut s).await;
    // A command on a context never negotiated.
    let mut s = associated(&server).await;
    s.write_all(&pdata(9, 3, &store_rq("1.2.3"))).await.unwrap();
    expect_abort_and_close(&mut s).await;
    still_serving(&server).await;
    assert!(server.got().is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_gigabyte_pdu_is_refused_without_allocation() {
    let server = Server::start(|_| {}).await;
    let mut s = associated(&server).await;
    let t = Instant::now();
    s.write_all(&[4, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0])
        .await
        .unwrap();
    expect_abort_and_close(&mut s).await;
    assert!(t.elapsed() < Duration::from_secs(2));
    // Also before association, and as an A-ASSOCIATE-RQ.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    s.write_all(&[1, 0, 0xFF, 0xFF, 0xFF, 0xFF]).await.unwrap();
    expect_abort_and_close(&mut s).await;
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_data_set_is_aborted_and_deleted() {
    let server = Server::start(|c| c.max_dataset_bytes = 10_000).await;
    let mut s = associated(&server).await;
    s.write_all(&pdata(1, 3, &store_rq("1.2.3.4")))
        .await
        .unwrap();
    for _ in 0..3 {
        if s.write_all(&pdata(1, 0, &[0u8; 8000])).await.is_err() {
            break;
        }
    }
    expect_abort_and_close(&mut s).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(server.got().is_empty());
    assert!(
        server.spool_files().is_empty(),
        "{:?}",
        server.spool_files()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_data_set_then_disconnect_leaves_nothing() {
    let server = Server::start(|_| {}).await;
    let mut s = associated(&server).await;
    s.write_all(&pdata(1, 3, &store_rq("1.2.3.4")))
        .await
        .unwrap();
    s.write_all(&pdata(1, 0, &[0x08u8; 5000])).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        server.spool_files().len(),
        1,
        "the partial data set is spooled"
    );
    drop(s);
    for _ in 0..50 {
        if server.spool_files().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.spool_files().is_empty(), "partial temp file left");
    assert!(
        server.got().is_empty(),
        "the handler saw a partial data set"
    );
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_association_is_aborted() {
    let server = Server::start(|c| c.idle_timeout = Duration::from_millis(500)).await;
    let t = Instant::now();
    let mut s = associated(&server).await;
    expect_abort_and_close(&mut s).await;
    assert!(t.elapsed() >= Duration::from_millis(400) && t.elapsed() < Duration::from_secs(4));
    // A silent TCP connection that never associates is closed too.
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    expect_abort_and_close(&mut s).await;
    server.stop().await;
}

fn ct_contexts() -> Vec<ProposedContext> {
    vec![
        ProposedContext {
            abstract_syntax: CT.into(),
            transfer_syntaxes: vec![ELE.into()],
        },
        ProposedContext {
            abstract_syntax: obscura_dimse::VERIFICATION_SOP_CLASS.into(),
            transfer_syntaxes: vec![ILE.into()],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn association_limit_rejects_transiently() {
    let server = Server::start(|c| c.max_associations = 2).await;
    let a = Association::connect(server.addr, &scu(), &ct_contexts())
        .await
        .unwrap();
    let b = Association::connect(server.addr, &scu(), &ct_contexts())
        .await
        .unwrap();
    let err = Association::connect(server.addr, &scu(), &ct_contexts())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            DimseError::Rejected {
                result: 2,
                from: 3,
                reason: 2
            }
        ),
        "{err}"
    );
    a.release().await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut c = Association::connect(server.addr, &scu(), &ct_contexts())
        .await
        .unwrap();
    assert_eq!(c.echo().await.unwrap(), 0);
    c.release().await.unwrap();
    b.release().await.unwrap();
    server.stop().await;
}

/// A small explicit VR LE data set with an SOP Instance UID.
fn dataset(instance: &str, filler: usize) -> Vec<u8> {
    let mut d = vec![];
    let mut el = |g: u16, e: u16, vr: &[u8; 2], v: &[u8]| {
        d.extend(g.to_le_bytes());
        d.extend(e.to_le_bytes());
        d.extend(vr);
        if vr == b"OB" {
            d.extend([0, 0]);
            d.extend((v.len() as u32).to_le_bytes());
        } else {
            d.extend((v.len() as u16).to_le_bytes());
        }
        d.extend(v);
    };
    el(0x0008, 0x0016, b"UI", &pad(CT));
    el(0x0008, 0x0018, b"UI", &pad(instance));
    let blob: Vec<u8> = (0..filler).map(|i| (i * 7) as u8).collect();
    el(0x7FE0, 0x0010, b"OB", &blob);
    d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_associations_and_exact_bytes() {
    let server = Server::start(|c| c.max_pdu_length = 16384).await;
    let mut tasks = vec![];
    for i in 0..24 {
        let addr = server.addr;
        tasks.push(tokio::spawn(async move {
            let mut a = Association::connect(addr, &scu(), &ct_contexts())
                .await
                .unwrap();
            for j in 0..3 {
                let uid = format!("1.2.3.{i}.{j}");
                let d = dataset(&uid, 40_000 + 1000 * i + j);
                assert_eq!(a.store(CT, &uid, ELE, &d[..]).await.unwrap(), 0);
            }
            a.release().await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let got = server.got();
    assert_eq!(got.len(), 72);
    for g in got {
        let (i, j) = {
            let p: Vec<usize> = g
                .sop_instance
                .split('.')
                .skip(3)
                .map(|x| x.parse().unwrap())
                .collect();
            (p[0], p[1])
        };
        assert_eq!(
            std::fs::read(&g.path).unwrap(),
            dataset(&g.sop_instance, 40_000 + 1000 * i + j)
        );
        assert_eq!(g.transfer_syntax, ELE);
    }
    // A data set in a transfer syntax not negotiated is refused locally.
    let mut a = Association::connect(server.addr, &scu(), &ct_contexts())
        .await
        .unwrap();
    let err = a.store(CT, "1.2.3", ILE, &b""[..]).await.unwrap_err();
    assert!(matches!(err, DimseError::NoContext { .. }));
    a.release().await.unwrap();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_in_flight_then_cuts() {
    let server = Server::start(|c| c.shutdown_grace = Duration::from_millis(700)).await;
    let mut a = Association::connect(server.addr, &scu(), &ct_contexts())
        .await
        .unwrap();
    assert_eq!(a.echo().await.unwrap(), 0);
    let addr = server.addr;
    let t = Instant::now();
    server.stop().await;
    assert!(t.elapsed() >= Duration::from_millis(600) && t.elapsed() < Duration::from_secs(5));
    // The in-flight association was cut; the listener is gone.
    assert!(a.echo().await.is_err());
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_associations() {
    let server = Server::start(|c| c.max_associations = 200).await;
    // Hold 200 associations open at once, then echo on each.
    let mut held = vec![];
    for _ in 0..200 {
        held.push(
            Association::connect(server.addr, &scu(), &ct_contexts())
                .await
                .unwrap(),
        );
    }
    // The 201st is turned away, the others are unaffected.
    let err = Association::connect(server.addr, &scu(), &ct_contexts())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(err, DimseError::Rejected { result: 2, .. }),
        "{err}"
    );
    let tasks: Vec<_> = held
        .into_iter()
        .map(|mut a| {
            tokio::spawn(async move {
                assert_eq!(a.echo().await.unwrap(), 0);
                a.release().await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    server.stop().await;
}
