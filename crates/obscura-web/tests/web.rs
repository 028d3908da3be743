//! DICOMweb end to end against a real server on loopback: plain HTTP with
//! bearer tokens, and TLS with client certificates. The client is a few
//! lines of HTTP/1.1 over a socket, so malformed requests can be sent too.

use obscura_vault::{MasterKey, TenantId, Vault};
use obscura_web::{WebConfig, WebServer};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

const TOKEN_A: &str = "token-of-site-a-0123456789";
const TOKEN_B: &str = "token-of-site-b-9876543210";

// ------------------------------------------------------------ DICOM files

fn elem(out: &mut Vec<u8>, g: u16, e: u16, vr: &[u8; 2], value: &[u8]) {
    out.extend_from_slice(&g.to_le_bytes());
    out.extend_from_slice(&e.to_le_bytes());
    out.extend_from_slice(vr);
    if matches!(vr, b"OB" | b"OW" | b"SQ" | b"UN" | b"UT") {
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    } else {
        out.extend_from_slice(&(value.len() as u16).to_le_bytes());
    }
    out.extend_from_slice(value);
}

fn text(s: &str, pad: u8) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    if v.len() % 2 == 1 {
        v.push(pad);
    }
    v
}

/// A PS3.10 file, explicit VR little endian, with native 8-bit pixel data
/// of `frames` frames of `rows` x `cols` (frame i filled with byte i).
fn dicom(
    study: &str,
    series: &str,
    sop: &str,
    name: &str,
    rows: u16,
    cols: u16,
    frames: u16,
) -> Vec<u8> {
    let size = rows as usize * cols as usize;
    let mut pixels = Vec::with_capacity(size * frames as usize);
    for f in 0..frames {
        pixels.extend(std::iter::repeat_n(f as u8, size));
    }
    dicom_pixels(study, series, sop, name, (rows, cols, frames), 8, pixels)
}

/// The same file with pixel data `pixels` (padded to an even length) of
/// Bits Allocated `bits` (1, or 8: Bits Stored the same).
fn dicom_pixels(
    study: &str,
    series: &str,
    sop: &str,
    name: &str,
    (rows, cols, frames): (u16, u16, u16),
    bits: u16,
    mut pixels: Vec<u8>,
) -> Vec<u8> {
    let class = "1.2.840.10008.5.1.4.1.1.7";
    let mut meta = Vec::new();
    elem(&mut meta, 0x0002, 0x0001, b"OB", &[0, 1]);
    elem(&mut meta, 0x0002, 0x0002, b"UI", &text(class, 0));
    elem(&mut meta, 0x0002, 0x0003, b"UI", &text(sop, 0));
    elem(
        &mut meta,
        0x0002,
        0x0010,
        b"UI",
        &text("1.2.840.10008.1.2.1", 0),
    );
    let mut out = vec![0u8; 128];
    out.extend_from_slice(b"DICM");
    elem(
        &mut out,
        0x0002,
        0x0000,
        b"UL",
        &(meta.len() as u32).to_le_bytes(),
    );
    out.extend_from_slice(&meta);
    elem(&mut out, 0x0008, 0x0016, b"UI", &text(class, 0));
    elem(&mut out, 0x0008, 0x0018, b"UI", &text(sop, 0));
    elem(&mut out, 0x0008, 0x0020, b"DA", b"20240131");
    elem(&mut out, 0x0008, 0x0060, b"CS", b"OT");
    elem(&mut out, 0x0010, 0x0010, b"PN", &text(name, b' '));
    elem(&mut out, 0x0010, 0x0020, b"LO", &text("PID-4711", b' '));
    elem(&mut out, 0x0020, 0x000D, b"UI", &text(study, 0));
    elem(&mut out, 0x0020, 0x000E, b"UI", &text(series, 0));
    elem(&mut out, 0x0020, 0x0013, b"IS", &text("1", b' '));
    elem(&mut out, 0x0028, 0x0002, b"US", &1u16.to_le_bytes());
    elem(&mut out, 0x0028, 0x0004, b"CS", b"MONOCHROME2 ");
    elem(
        &mut out,
        0x0028,
        0x0008,
        b"IS",
        &text(&frames.to_string(), b' '),
    );
    elem(&mut out, 0x0028, 0x0010, b"US", &rows.to_le_bytes());
    elem(&mut out, 0x0028, 0x0011, b"US", &cols.to_le_bytes());
    elem(&mut out, 0x0028, 0x0100, b"US", &bits.to_le_bytes());
    elem(&mut out, 0x0028, 0x0101, b"US", &bits.to_le_bytes());
    elem(&mut out, 0x0028, 0x0102, b"US", &(bits - 1).to_le_bytes());
    elem(&mut out, 0x0028, 0x0103, b"US", &0u16.to_le_bytes());
    if pixels.len() % 2 == 1 {
        pixels.push(0);
    }
    elem(&mut out, 0x7FE0, 0x0010, b"OB", &pixels);
    out
}

fn multipart(boundary: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for p in parts {
        write!(
            body,
            "--{boundary}\r\nContent-Type: application/dicom\r\n\r\n"
        )
        .unwrap();
        body.extend_from_slice(p);
        body.extend_from_slice(b"\r\n");
    }
    write!(body, "--{boundary}--\r\n").unwrap();
    body
}

// ------------------------------------------------------------ the client

struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Json {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The parts of a multipart/related body.
    fn parts(&self) -> Vec<Vec<u8>> {
        let ct = self.header("content-type").unwrap();
        let b = ct
            .split("boundary=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let delim = format!("--{b}");
        let mut out = Vec::new();
        let body = &self.body;
        let mut starts = Vec::new();
        let mut i = 0;
        while let Some(p) = find(&body[i..], delim.as_bytes()) {
            starts.push(i + p);
            i += p + delim.len();
        }
        for w in starts.windows(2) {
            let part = &body[w[0] + delim.len() + 2..w[1] - 2];
            let head_end = find(part, b"\r\n\r\n").unwrap();
            out.push(part[head_end + 4..].to_vec());
        }
        assert_eq!(
            &body[*starts.last().unwrap()..],
            format!("{delim}--\r\n").as_bytes()
        );
        out
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

async fn send<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let _ = s.write_all(body).await;
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw).await;
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> Resp {
    let head_end = find(raw, b"\r\n\r\n").expect("a response");
    let head = std::str::from_utf8(&raw[..head_end]).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect();
    let mut body = raw[head_end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let line_end = find(rest, b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                    .unwrap();
            rest = &rest[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[..size]);
            rest = &rest[size + 2..];
        }
        body = out;
    }
    Resp {
        status,
        headers,
        body,
    }
}

// ------------------------------------------------------------ the server

struct Server {
    addr: SocketAddr,
    vault: Arc<Vault>,
    tenants: (TenantId, TenantId),
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    async fn start(tls: Option<&Tls>) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let vault = Arc::new(
            Vault::open(&dir.path().join("data"), MasterKey::from_bytes([7; 32])).unwrap(),
        );
        let a = vault.create_tenant("Site A").unwrap();
        let b = vault.create_tenant("Site B").unwrap();
        let tokens = dir.path().join("tokens");
        std::fs::write(
            &tokens,
            format!(
                "# sha256 principal\n{} site-a\n{} site-b\n",
                hex(&Sha256::digest(TOKEN_A)),
                hex(&Sha256::digest(TOKEN_B))
            ),
        )
        .unwrap();
        std::fs::set_permissions(&tokens, std::fs::Permissions::from_mode(0o600)).unwrap();
        let spool = dir.path().join("spool");
        std::fs::create_dir(&spool).unwrap();
        let mut text = "listen = \"127.0.0.1:0\"\ntokens_file = \"tokens\"\ntemp_dir = \"spool\"\nmax_part_bytes = 2000000\nidle_timeout_secs = 2\n".to_string();
        match tls {
            None => text.push_str("plain = true\n"),
            Some(t) => {
                t.write(dir.path());
                text.push_str(
                    "[tls]\ncert = \"server.pem\"\nkey = \"server.key\"\nclient_ca = \"ca.pem\"\n",
                );
            }
        }
        text.push_str("[[principal]]\nname = \"site-a\"\ntenant = \"Site A\"\n");
        if let Some(t) = tls {
            text.push_str(&format!(
                "client_cert_sha256 = [\"{}\"]\n",
                hex(&Sha256::digest(t.client_der.as_slice()))
            ));
        }
        text.push_str(&format!(
            "[[principal]]\nname = \"site-b\"\ntenant = \"{b}\"\n"
        ));
        let config = WebConfig::from_toml(toml::from_str(&text).unwrap(), dir.path()).unwrap();
        let server = WebServer::new(config, Arc::clone(&vault)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Server {
            addr,
            vault,
            tenants: (a, b),
            _dir: dir,
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn req(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let s = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut h: Vec<(&str, &str)> = headers.to_vec();
        if let Some(a) = &auth {
            h.push(("Authorization", a));
        }
        send(s, method, path, &h, body).await
    }

    async fn get(&self, path: &str, token: &str) -> Resp {
        self.req("GET", path, Some(token), &[], b"").await
    }

    async fn stow(&self, token: &str, path: &str, body: &[u8], boundary: &str) -> Resp {
        let ct = format!("multipart/related; type=\"application/dicom\"; boundary={boundary}");
        self.req("POST", path, Some(token), &[("Content-Type", &ct)], body)
            .await
    }

    fn spool_is_empty(&self) -> bool {
        std::fs::read_dir(self._dir.path().join("spool"))
            .unwrap()
            .next()
            .is_none()
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap();
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const ST: &str = "1.2.826.0.1.3680043.8.498.1";
const SE: &str = "1.2.826.0.1.3680043.8.498.1.1";

fn count_studies(s: &Server, tenant: &TenantId) -> usize {
    s.vault
        .search(
            tenant,
            &obscura_vault::Query::new(obscura_vault::Level::Instance),
        )
        .unwrap()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_search_retrieve_over_plain_http_with_tokens() {
    let s = Server::start(None).await;
    let one = dicom(
        ST,
        SE,
        "1.2.826.0.1.3680043.8.498.1.1.1",
        "Doe^Jane",
        16,
        16,
        1,
    );
    let multi = dicom(
        ST,
        SE,
        "1.2.826.0.1.3680043.8.498.1.1.2",
        "Doe^Jane",
        8,
        4,
        3,
    );

    // refused without credentials, with a wrong token, on any path
    for path in ["/studies", "/no/such/route", "/studies/1.2/series"] {
        let r = s.req("GET", path, None, &[], b"").await;
        assert_eq!(r.status, 401, "{path}");
        assert!(r.header("www-authenticate").unwrap().starts_with("Bearer"));
    }
    let r = s.req("GET", "/studies", Some("wrong"), &[], b"").await;
    assert_eq!(r.status, 401);
    assert!(r
        .header("www-authenticate")
        .unwrap()
        .contains("invalid_token"));
    let r = s
        .req(
            "GET",
            "/studies",
            None,
            &[("Authorization", "Basic YTpi")],
            b"",
        )
        .await;
    assert_eq!(r.status, 401);

    // STOW (unquoted type and boundary)
    let body = multipart("b0undary", &[&one, &multi]);
    let r = s.stow(TOKEN_A, "/studies", &body, "b0undary").await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type"), Some("application/dicom+json"));
    let j = r.json();
    assert_eq!(j["00081199"]["Value"].as_array().unwrap().len(), 2);
    assert!(j["00081190"]["Value"][0]
        .as_str()
        .unwrap()
        .ends_with(&format!("/studies/{ST}")));
    // again: idempotent
    let r = s
        .req(
            "POST",
            &format!("/studies/{ST}"),
            Some(TOKEN_A),
            &[(
                "Content-Type",
                "multipart/related; type=application/dicom; boundary=\"b0undary\"",
            )],
            &body,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(count_studies(&s, &s.tenants.0), 2);
    assert!(s.spool_is_empty(), "the spool file is unlinked");

    // QIDO
    let r = s
        .get("/studies?PatientName=doe*&includefield=all", TOKEN_A)
        .await;
    assert_eq!(r.status, 200);
    let studies = r.json();
    assert_eq!(studies.as_array().unwrap().len(), 1);
    let st = &studies[0];
    assert_eq!(st["00100010"]["Value"][0]["Alphabetic"], "Doe^Jane");
    assert_eq!(st["0020000D"]["Value"][0], ST);
    assert_eq!(st["00201208"]["Value"][0], 2);
    assert_eq!(st["00201206"]["Value"][0], 1);
    assert_eq!(st["00080061"]["Value"][0], "OT");
    for q in [
        "/studies?00100010=DOE%5EJANE",
        "/studies?PatientName=jan&fuzzymatching=true",
        "/studies?StudyDate=20240101-20240201",
        "/studies?StudyDate=20240131",
        "/studies?PatientID=PID-4711",
        &format!("/studies?StudyInstanceUID={ST}"),
    ] {
        let r = s.get(q, TOKEN_A).await;
        assert_eq!(r.json().as_array().unwrap().len(), 1, "{q}");
    }
    for q in [
        "/studies?PatientName=smith",
        "/studies?StudyDate=-20231231",
        "/studies?PatientName=jan",
    ] {
        let r = s.get(q, TOKEN_A).await;
        assert_eq!(r.json().as_array().unwrap().len(), 0, "{q}");
    }
    let r = s.get(&format!("/studies/{ST}/series"), TOKEN_A).await;
    assert_eq!(r.json()[0]["00201209"]["Value"][0], 2);
    let r = s
        .get(
            &format!("/studies/{ST}/series/{SE}/instances?limit=1&offset=1"),
            TOKEN_A,
        )
        .await;
    let inst = r.json();
    assert_eq!(inst.as_array().unwrap().len(), 1);
    assert_eq!(
        inst[0]["00080018"]["Value"][0],
        "1.2.826.0.1.3680043.8.498.1.1.2"
    );
    let r = s.get("/instances?OperatorsName=x", TOKEN_A).await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    assert!(r.header("warning").unwrap().contains("OperatorsName"));
    // another tenant sees nothing
    let r = s.get("/studies", TOKEN_B).await;
    assert_eq!(r.json().as_array().unwrap().len(), 0);
    let r = s.get(&format!("/studies/{ST}"), TOKEN_B).await;
    assert_eq!(r.status, 404);

    // WADO: byte-exact, quoted random boundary
    let r = s.get(&format!("/studies/{ST}"), TOKEN_A).await;
    assert_eq!(r.status, 200);
    let ct = r.header("content-type").unwrap().to_string();
    assert!(
        ct.starts_with("multipart/related; type=\"application/dicom\"; boundary=\""),
        "{ct}"
    );
    let parts = r.parts();
    assert_eq!(parts, vec![one.clone(), multi.clone()]);
    let inst_path = format!("/studies/{ST}/series/{SE}/instances/1.2.826.0.1.3680043.8.498.1.1.2");
    let r = s
        .req(
            "GET",
            &inst_path,
            Some(TOKEN_A),
            &[(
                "Accept",
                "multipart/related; type=\"application/dicom\"; transfer-syntax=*",
            )],
            b"",
        )
        .await;
    assert_eq!(r.parts(), vec![multi.clone()]);
    let r = s
        .req(
            "GET",
            &inst_path,
            Some(TOKEN_A),
            &[("Accept", "application/dicom")],
            b"",
        )
        .await;
    assert_eq!(r.body, multi);
    let r = s.req("GET", &inst_path, Some(TOKEN_A), &[("Accept", "multipart/related; type=\"application/dicom\"; transfer-syntax=1.2.840.10008.1.2.4.50")], b"").await;
    assert_eq!(r.status, 406);
    let r = s
        .get(
            &format!("/studies/{ST}/series/1.2.3/instances/1.2.826.0.1.3680043.8.498.1.1.2"),
            TOKEN_A,
        )
        .await;
    assert_eq!(r.status, 404, "an instance under another series' path");

    // metadata, bulk data, frames
    let r = s.get(&format!("{inst_path}/metadata"), TOKEN_A).await;
    assert_eq!(r.status, 200);
    let m = r.json();
    assert_eq!(m[0]["00100010"]["Value"][0]["Alphabetic"], "Doe^Jane");
    assert_eq!(m[0]["00280010"]["Value"][0], 8);
    let uri = m[0]["7FE00010"]["BulkDataURI"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(uri.ends_with("/bulkdata/7FE00010"), "{uri}");
    let r = s
        .get(&format!("{inst_path}/bulkdata/7FE00010"), TOKEN_A)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.parts()[0], multi[multi.len() - 96..].to_vec());
    let r = s.get(&format!("{inst_path}/frames/3,1"), TOKEN_A).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.parts(), vec![vec![2u8; 32], vec![0u8; 32]]);
    let r = s.get(&format!("{inst_path}/frames/4"), TOKEN_A).await;
    assert_eq!(r.status, 404);
    // rendered: the instance's frame as JPEG; a study's rendered resource is not offered
    let r = s.get(&format!("{inst_path}/rendered"), TOKEN_A).await;
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with(&[0xFF, 0xD8]));
    let r = s.get(&format!("/studies/{ST}/rendered"), TOKEN_A).await;
    assert_eq!(r.status, 501);
    let r = s.get(&format!("/studies/{ST}/metadata"), TOKEN_A).await;
    assert_eq!(r.json().as_array().unwrap().len(), 2);

    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let s = Server::start(None).await;
    let a = dicom(ST, SE, "1.2.3.4.1", "Roe^Richard", 4, 4, 1);
    let b = dicom(ST, SE, "1.2.3.4.2", "Roe^Richard", 4, 4, 1);
    let tenant = s.tenants.0.clone();

    // unterminated: the first part is complete, yet nothing is stored
    let mut body = multipart("xx", &[&a, &b]);
    body.truncate(body.len() - 8);
    let r = s.stow(TOKEN_A, "/studies", &body, "xx").await;
    assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
    assert!(String::from_utf8_lossy(&r.body).contains("unterminated"));
    // malformed: wrong boundary, junk after a delimiter
    let r = s
        .stow(TOKEN_A, "/studies", &multipart("xx", &[&a]), "yy")
        .await;
    assert_eq!(r.status, 400);
    let mut junk = multipart("xx", &[&a, &b]);
    let at = find(&junk, b"--xx\r\nContent-Type").unwrap();
    junk[at + 4] = b'!';
    let r = s.stow(TOKEN_A, "/studies", &junk, "xx").await;
    assert_eq!(r.status, 400);
    // wrong content types
    for ct in [
        "application/dicom",
        "multipart/related; type=\"application/dicom+json\"; boundary=xx",
        "text/plain",
    ] {
        let r = s
            .req(
                "POST",
                "/studies",
                Some(TOKEN_A),
                &[("Content-Type", ct)],
                &multipart("xx", &[&a]),
            )
            .await;
        assert_eq!(r.status, 415, "{ct}");
    }
    let r = s
        .req(
            "POST",
            "/studies",
            Some(TOKEN_A),
            &[("Content-Type", "multipart/related; type=application/dicom")],
            &multipart("xx", &[&a]),
        )
        .await;
    assert_eq!(r.status, 400, "no boundary");
    // a part over the limit (2,000,000 bytes in this config)
    let big = dicom(ST, SE, "1.2.3.4.3", "Roe^Richard", 1000, 1000, 3);
    let r = s
        .stow(TOKEN_A, "/studies", &multipart("xx", &[&a, &big]), "xx")
        .await;
    assert_eq!(r.status, 413);
    assert_eq!(count_studies(&s, &tenant), 0);

    // per-instance failures: not DICOM, a UID with path characters, another study
    let evil = dicom(ST, SE, "../../etc/passwd", "Roe^Richard", 4, 4, 1);
    let other = dicom("1.2.3.999", SE, "1.2.3.4.4", "Roe^Richard", 4, 4, 1);
    let r = s
        .stow(
            TOKEN_A,
            &format!("/studies/{ST}"),
            &multipart("xx", &[b"not dicom at all", &evil, &other]),
            "xx",
        )
        .await;
    assert_eq!(r.status, 409, "{}", String::from_utf8_lossy(&r.body));
    let failed = r.json()["00081198"]["Value"].as_array().unwrap().clone();
    assert_eq!(failed.len(), 3);
    assert_eq!(failed[0]["00081197"]["Value"][0], 0xC000);
    assert!(
        failed[1].get("00081155").is_none(),
        "a UID that is no UID is not echoed"
    );
    assert_eq!(failed[2]["00081197"]["Value"][0], 0xA900);
    assert_eq!(count_studies(&s, &tenant), 0);
    // some stored, some not: 202
    let r = s
        .stow(TOKEN_A, "/studies", &multipart("xx", &[&a, b"junk"]), "xx")
        .await;
    assert_eq!(r.status, 202);
    assert_eq!(count_studies(&s, &tenant), 1);

    // path characters in request paths
    for p in [
        "/studies/..%2F..%2Fetc",
        "/studies/1.2.3/series/..",
        "/studies/1.2.x/metadata",
    ] {
        let r = s.get(p, TOKEN_A).await;
        assert!(matches!(r.status, 400 | 404), "{p}: {}", r.status);
    }
    let r = s.get("/studies?StudyInstanceUID=../x", TOKEN_A).await;
    assert_eq!(r.status, 400);

    // a client that stops sending is dropped (idle timeout 2 s)
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let head = format!("POST /studies HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {TOKEN_A}\r\nContent-Type: multipart/related; type=application/dicom; boundary=xx\r\nContent-Length: 100000\r\n\r\n--xx\r\n\r\n");
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        slow.read_to_end(&mut raw),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(parse_response(&raw).status, 408);
    assert_eq!(count_studies(&s, &tenant), 1);
    assert!(s.spool_is_empty());
    s.stop().await;
}

// ------------------------------------------------------------ TLS

struct Tls {
    ca_pem: String,
    server_pem: String,
    server_key: String,
    client_der: Vec<u8>,
    client_pem: String,
    client_key: String,
    other_der: Vec<u8>,
    other_key: String,
}

impl Tls {
    fn new() -> Tls {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(vec![]).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "test CA");
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let leaf = |name: &str, client: bool| {
            let key = rcgen::KeyPair::generate().unwrap();
            let mut p = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
            p.distinguished_name.push(rcgen::DnType::CommonName, name);
            p.extended_key_usages = vec![if client {
                rcgen::ExtendedKeyUsagePurpose::ClientAuth
            } else {
                rcgen::ExtendedKeyUsagePurpose::ServerAuth
            }];
            let c = p.signed_by(&key, &issuer).unwrap();
            (c, key)
        };
        let (server, server_key) = leaf("localhost", false);
        let (client, client_key) = leaf("reader-1", true);
        let (other, other_key) = leaf("intruder", true);
        Tls {
            ca_pem: ca.pem(),
            server_pem: server.pem(),
            server_key: server_key.serialize_pem(),
            client_der: client.der().to_vec(),
            client_pem: client.pem(),
            client_key: client_key.serialize_pem(),
            other_der: other.der().to_vec(),
            other_key: other_key.serialize_pem(),
        }
    }

    fn write(&self, dir: &Path) {
        std::fs::write(dir.join("ca.pem"), &self.ca_pem).unwrap();
        std::fs::write(dir.join("server.pem"), &self.server_pem).unwrap();
        std::fs::write(dir.join("server.key"), &self.server_key).unwrap();
        std::fs::set_permissions(
            dir.join("server.key"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
    }

    fn connector(&self, cert: Option<(Vec<u8>, &str)>) -> tokio_rustls::TlsConnector {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
            .unwrap();
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
        let config = match cert {
            None => builder.with_no_client_auth(),
            Some((der, key)) => builder
                .with_client_auth_cert(
                    vec![rustls_pki_types::CertificateDer::from(der)],
                    rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
                )
                .unwrap(),
        };
        tokio_rustls::TlsConnector::from(Arc::new(config))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_and_tokens_over_tls() {
    let tls = Tls::new();
    let s = Server::start(Some(&tls)).await;
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let get = |connector: tokio_rustls::TlsConnector, token: Option<&'static str>| {
        let name = name.clone();
        let addr = s.addr;
        async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let stream = connector.connect(name, tcp).await.unwrap();
            let auth = token.map(|t| format!("Bearer {t}"));
            let h: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
            send(stream, "GET", "/studies", &h, b"").await
        }
    };
    // the principal's certificate
    let r = get(
        tls.connector(Some((tls.client_der.clone(), &tls.client_key))),
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    // a certificate of the CA that no principal names, no certificate
    let r = get(
        tls.connector(Some((tls.other_der.clone(), &tls.other_key))),
        None,
    )
    .await;
    assert_eq!(r.status, 401);
    let r = get(tls.connector(None), None).await;
    assert_eq!(r.status, 401);
    // a token over TLS without a certificate
    let r = get(tls.connector(None), Some(TOKEN_B)).await;
    assert_eq!(r.status, 200);
    let _ = &tls.client_pem;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_anywhere_in_a_large_multi_frame_instance() {
    let s = Server::start(None).await;
    // 30 frames of 62,500 bytes: frames straddle the vault's 64 KiB segments
    let (rows, cols, n) = (250u16, 250u16, 30u16);
    let size = rows as usize * cols as usize;
    let sop = "1.2.826.0.1.3680043.8.498.1.1.9";
    let mut plain = dicom(ST, SE, sop, "Doe^Jane", rows, cols, n);
    // every byte of the pixel data distinct from its neighbours
    let px = plain.len() - size * n as usize;
    for (i, b) in plain[px..].iter_mut().enumerate() {
        *b = (i * 7 % 251) as u8;
    }
    let path = s._dir.path().join("large.dcm");
    std::fs::write(&path, &plain).unwrap();
    s.vault.store_file(&s.tenants.0, &path).unwrap();
    let frame = |k: usize| plain[px + (k - 1) * size..px + k * size].to_vec();
    let inst = format!("/studies/{ST}/series/{SE}/instances/{sop}");

    // the last frame, then the one before, one near the start and the last again
    let r = s.get(&format!("{inst}/frames/30,29,2,30"), TOKEN_A).await;
    assert_eq!(r.status, 200);
    let parts = r.parts();
    assert_eq!(parts.len(), 4);
    assert!(parts[0] == frame(30), "frame 30");
    assert!(parts[1] == frame(29), "frame 29");
    assert!(parts[2] == frame(2), "frame 2");
    assert!(parts[3] == frame(30), "frame 30 again");
    // the whole pixel data as bulk data, and the metadata, are unchanged
    let r = s.get(&format!("{inst}/bulkdata/7FE00010"), TOKEN_A).await;
    assert_eq!(r.status, 200);
    assert!(r.parts()[0] == plain[px..], "bulk data");
    let r = s.get(&format!("{inst}/metadata"), TOKEN_A).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()[0]["00280008"]["Value"][0], 30);
    let r = s.get(&format!("{inst}/frames/31"), TOKEN_A).await;
    assert_eq!(r.status, 404);
    s.stop().await;
}

/// Frame `k` (from 0) of `samples` bits each in bit-packed `all`, on its
/// own: from bit 0 of its first byte, padded with 0 bits to a byte
/// (pydicom's `pack_bits(pixel_array[k], pad=False)`), computed here bit by bit.
fn packed_frame(all: &[u8], k: usize, samples: usize) -> Vec<u8> {
    let mut out = vec![0u8; samples.div_ceil(8)];
    for i in 0..samples {
        let b = k * samples + i;
        out[i / 8] |= ((all[b / 8] >> (b % 8)) & 1) << (i % 8);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bit_frames_each_from_bit_0_padded_to_a_byte() {
    let s = Server::start(None).await;
    // 61 x 67 (4,087 bits: frames 2 and 3 start mid-byte), 64 x 64 (byte
    // aligned), 725 x 727 (65,885 bytes a frame: past the vault's 64 KiB
    // segments and the server's pieces, frame 2 mid-byte)
    for (i, (rows, cols, n)) in [(61u16, 67u16, 3u16), (64, 64, 2), (725, 727, 3)]
        .into_iter()
        .enumerate()
    {
        let samples = rows as usize * cols as usize;
        let bytes = (samples * n as usize).div_ceil(8);
        // every stored bit pseudo-random, the unused high bits of the last
        // byte set too (a frame's padding must not carry them)
        let all: Vec<u8> = (0..bytes)
            .map(|j| ((j as u32).wrapping_mul(2_654_435_761) >> 11) as u8)
            .collect();
        let sop = format!("1.2.826.0.1.3680043.8.498.1.1.2{i}");
        let file = dicom_pixels(ST, SE, &sop, "Doe^Jane", (rows, cols, n), 1, all.clone());
        let path = s._dir.path().join(format!("one-bit-{i}.dcm"));
        std::fs::write(&path, &file).unwrap();
        s.vault.store_file(&s.tenants.0, &path).unwrap();
        let inst = format!("/studies/{ST}/series/{SE}/instances/{sop}");
        let list: Vec<String> = (1..=n).rev().map(|k| k.to_string()).collect();
        let r = s
            .req(
                "GET",
                &format!("{inst}/frames/{},1", list.join(",")),
                Some(TOKEN_A),
                &[],
                b"",
            )
            .await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("multipart/related; type=\"application/octet-stream\""));
        let parts = r.parts();
        assert_eq!(parts.len(), n as usize + 1);
        for (part, k) in parts.iter().zip((1..=n as usize).rev().chain([1])) {
            assert!(
                *part == packed_frame(&all, k - 1, samples),
                "{rows} x {cols}, frame {k}"
            );
        }
        // the Content-Length of each part is the frame's bytes
        let want = format!("Content-Length: {}\r\n", samples.div_ceil(8));
        assert_eq!(
            r.body
                .windows(want.len())
                .filter(|w| *w == want.as_bytes())
                .count(),
            n as usize + 1
        );
        // the pixel data as bulk data stays the stored value
        let r = s.get(&format!("{inst}/bulkdata/7FE00010"), TOKEN_A).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.parts()[0][..bytes], all[..]);
        let r = s.get(&format!("{inst}/frames/{}", n + 1), TOKEN_A).await;
        assert_eq!(r.status, 404);
    }
    // pixel data shorter than its 1-bit frames: an error with no value in it
    let sop = "1.2.826.0.1.3680043.8.498.1.1.29";
    let file = dicom_pixels(ST, SE, sop, "Doe^Jane", (61, 67, 3), 1, vec![0xAA; 1000]);
    let path = s._dir.path().join("one-bit-short.dcm");
    std::fs::write(&path, &file).unwrap();
    s.vault.store_file(&s.tenants.0, &path).unwrap();
    let r = s
        .get(
            &format!("/studies/{ST}/series/{SE}/instances/{sop}/frames/1"),
            TOKEN_A,
        )
        .await;
    assert_eq!(r.status, 422, "{}", String::from_utf8_lossy(&r.body));
    assert!(!String::from_utf8_lossy(&r.body).contains("Doe"));
    s.stop().await;
}

/// The time to serve the last frame of a 200 MiB native multi-frame
/// instance (`cargo test --release -p obscura-web --test web -- --ignored
/// --nocapture last_frame_timing`), for docs/archive.md.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn last_frame_timing() {
    let s = Server::start(None).await;
    let (rows, cols, n) = (1024u16, 1024u16, 200u16);
    let size = rows as usize * cols as usize;
    let sop = "1.2.826.0.1.3680043.8.498.1.1.10";
    let plain = dicom(ST, SE, sop, "Doe^Jane", rows, cols, n);
    let path = s._dir.path().join("big.dcm");
    std::fs::write(&path, &plain).unwrap();
    s.vault.store_file(&s.tenants.0, &path).unwrap();
    let inst = format!("/studies/{ST}/series/{SE}/instances/{sop}");
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let r = s.get(&format!("{inst}/frames/{n}"), TOKEN_A).await;
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(r.status, 200);
        assert!(r.parts()[0] == plain[plain.len() - size..], "last frame");
    }
    println!(
        "last frame of a 200 MiB instance: {:.3} s (best of 3)",
        best
    );
    s.stop().await;
}
