//! The DICOM Upper Layer PDUs (PS3.8 section 9.3): encoding, and decoding
//! that checks every declared length against the bytes that exist.
//!
//! A PDU is read in two steps: the 6-byte header, whose declared length is
//! checked against the caller's limit *before* anything is allocated, then
//! the body into a reused buffer. Nothing here panics on hostile input.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::DimseError;

pub(crate) const ASSOCIATE_RQ: u8 = 0x01;
pub(crate) const ASSOCIATE_AC: u8 = 0x02;
pub(crate) const ASSOCIATE_RJ: u8 = 0x03;
pub(crate) const P_DATA_TF: u8 = 0x04;
pub(crate) const RELEASE_RQ: u8 = 0x05;
pub(crate) const RELEASE_RP: u8 = 0x06;
pub(crate) const ABORT: u8 = 0x07;

/// The DICOM application context name (PS3.7 Annex A.2.1).
pub(crate) const APPLICATION_CONTEXT: &str = "1.2.840.10008.3.1.1.1";

/// The largest non-P-DATA PDU accepted (an A-ASSOCIATE-RQ with 128 contexts
/// of 30 transfer syntaxes each stays well below).
pub(crate) const MAX_CONTROL_PDU: u32 = 256 * 1024;

/// Presentation context results (PS3.8 Table 9-18).
pub(crate) mod pc_result {
    pub const ACCEPTANCE: u8 = 0;
    pub const ABSTRACT_SYNTAX_NOT_SUPPORTED: u8 = 3;
    pub const TRANSFER_SYNTAXES_NOT_SUPPORTED: u8 = 4;
}

/// A proposed presentation context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PcRq {
    pub id: u8,
    pub abstract_syntax: String,
    pub transfer_syntaxes: Vec<String>,
}

/// An answered presentation context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PcAc {
    pub id: u8,
    pub result: u8,
    pub transfer_syntax: String,
}

/// A-ASSOCIATE-RQ and -AC share their layout; `contexts_rq` is used for the
/// request, `contexts_ac` for the answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Associate {
    pub protocol_version: u16,
    pub called_ae: String,
    pub calling_ae: String,
    pub application_context: String,
    pub contexts_rq: Vec<PcRq>,
    pub contexts_ac: Vec<PcAc>,
    /// Maximum P-DATA-TF PDU length the sender can receive; 0 = no limit.
    pub max_pdu_length: u32,
    pub implementation_class_uid: String,
    pub implementation_version: String,
    /// User Identity sub-item of a request (PS3.7 D.3.3.7.1).
    pub user_identity: Option<UserIdentity>,
    /// Server response of a User Identity sub-item in an answer (D.3.3.7.2).
    pub user_identity_response: Option<Vec<u8>>,
}

/// A User Identity negotiation request (PS3.7 D.3.3.7.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserIdentity {
    /// 1 username, 2 username and passcode, 3 Kerberos, 4 SAML, 5 JWT.
    pub kind: u8,
    /// Whether the SCP is asked to answer (a server response).
    pub positive_response_requested: bool,
    /// The username, ticket, assertion or token.
    pub primary: Vec<u8>,
    /// The passcode (kind 2), else empty.
    pub secondary: Vec<u8>,
}

/// A decoded PDU. P-DATA keeps its raw body (see [`pdvs`]).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Pdu {
    AssociateRq(Associate),
    AssociateAc(Associate),
    AssociateRj { result: u8, source: u8, reason: u8 },
    PData,
    ReleaseRq,
    ReleaseRp,
    Abort { source: u8, reason: u8 },
}

fn malformed(what: &str) -> DimseError {
    DimseError::Malformed(what.to_string())
}

/// Reads one PDU. `Ok(None)` on a clean end of stream before any byte of a
/// PDU; a P-DATA body is left in `buf`. Refuses a PDU longer than `max_len`
/// without reading or allocating it.
pub(crate) async fn read_pdu<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max_pdata_len: u32,
) -> Result<Option<Pdu>, DimseError> {
    let mut header = [0u8; 6];
    let mut got = 0;
    while got < header.len() {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            if got == 0 {
                return Ok(None);
            }
            return Err(DimseError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        got += n;
    }
    let ty = header[0];
    let len = u32::from_be_bytes([header[2], header[3], header[4], header[5]]);
    let limit = match ty {
        P_DATA_TF => max_pdata_len,
        ASSOCIATE_RQ | ASSOCIATE_AC => MAX_CONTROL_PDU,
        ASSOCIATE_RJ | RELEASE_RQ | RELEASE_RP | ABORT => 4,
        _ => {
            return Err(DimseError::Malformed(format!(
                "unknown PDU type 0x{ty:02X}"
            )))
        }
    };
    if len > limit {
        return Err(DimseError::PduTooLong { length: len, limit });
    }
    buf.clear();
    buf.resize(len as usize, 0);
    r.read_exact(buf).await?;
    let body = &buf[..];
    Ok(Some(match ty {
        ASSOCIATE_RQ => Pdu::AssociateRq(decode_associate(body, true)?),
        ASSOCIATE_AC => Pdu::AssociateAc(decode_associate(body, false)?),
        ASSOCIATE_RJ => {
            if body.len() != 4 {
                return Err(malformed("A-ASSOCIATE-RJ length"));
            }
            Pdu::AssociateRj {
                result: body[1],
                source: body[2],
                reason: body[3],
            }
        }
        P_DATA_TF => {
            // Validate the PDV framing now, so that users can iterate freely.
            for pdv in pdvs(body) {
                pdv?;
            }
            Pdu::PData
        }
        RELEASE_RQ | RELEASE_RP => {
            if body.len() != 4 {
                return Err(malformed("A-RELEASE length"));
            }
            if ty == RELEASE_RQ {
                Pdu::ReleaseRq
            } else {
                Pdu::ReleaseRp
            }
        }
        _ => {
            if body.len() != 4 {
                return Err(malformed("A-ABORT length"));
            }
            Pdu::Abort {
                source: body[2],
                reason: body[3],
            }
        }
    }))
}

/// One presentation data value of a P-DATA-TF body.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Pdv<'a> {
    pub context_id: u8,
    pub is_command: bool,
    pub is_last: bool,
    pub data: &'a [u8],
}

/// The PDVs of a P-DATA-TF body, each checked against the bytes present.
pub(crate) fn pdvs(body: &[u8]) -> impl Iterator<Item = Result<Pdv<'_>, DimseError>> {
    let mut rest = body;
    let mut failed = false;
    std::iter::from_fn(move || {
        if rest.is_empty() || failed {
            return None;
        }
        if rest.len() < 6 {
            failed = true;
            return Some(Err(malformed("truncated PDV item")));
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < 2 || len > rest.len() - 4 {
            failed = true;
            return Some(Err(malformed("PDV item length")));
        }
        let item = &rest[4..4 + len];
        rest = &rest[4 + len..];
        let control = item[1];
        if control & 0xFC != 0 {
            failed = true;
            return Some(Err(malformed("PDV message control header")));
        }
        Some(Ok(Pdv {
            context_id: item[0],
            is_command: control & 1 != 0,
            is_last: control & 2 != 0,
            data: &item[2..],
        }))
    })
}

/// A bounds-checked reader over a byte slice.
struct Cursor<'a> {
    b: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DimseError> {
        if n > self.b.len() {
            return Err(malformed("A-ASSOCIATE item length"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u8(&mut self) -> Result<u8, DimseError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, DimseError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    /// An item: type, reserved, 2-byte length, value.
    fn item(&mut self) -> Result<(u8, &'a [u8]), DimseError> {
        let ty = self.u8()?;
        self.u8()?;
        let len = self.u16()? as usize;
        Ok((ty, self.take(len)?))
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b)
        .trim_matches(|c: char| c == ' ' || c == '\0')
        .to_string()
}

fn uid(b: &[u8]) -> Result<String, DimseError> {
    let s = text(b);
    if s.len() > 64 || !s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        return Err(malformed("UID"));
    }
    Ok(s)
}

fn decode_associate(body: &[u8], is_rq: bool) -> Result<Associate, DimseError> {
    let mut c = Cursor { b: body };
    let mut a = Associate {
        protocol_version: c.u16()?,
        ..Default::default()
    };
    c.take(2)?;
    a.called_ae = text(c.take(16)?);
    a.calling_ae = text(c.take(16)?);
    c.take(32)?;
    while !c.b.is_empty() {
        let (ty, value) = c.item()?;
        match ty {
            0x10 => a.application_context = uid(value)?,
            0x20 if is_rq => {
                let mut v = Cursor { b: value };
                let id = v.u8()?;
                v.take(3)?;
                let mut pc = PcRq {
                    id,
                    abstract_syntax: String::new(),
                    transfer_syntaxes: vec![],
                };
                while !v.b.is_empty() {
                    let (sty, sv) = v.item()?;
                    match sty {
                        0x30 => pc.abstract_syntax = uid(sv)?,
                        0x40 => pc.transfer_syntaxes.push(uid(sv)?),
                        _ => return Err(malformed("presentation context sub-item")),
                    }
                }
                if pc.abstract_syntax.is_empty() || pc.transfer_syntaxes.is_empty() {
                    return Err(malformed("presentation context without syntaxes"));
                }
                a.contexts_rq.push(pc);
            }
            0x21 if !is_rq => {
                let mut v = Cursor { b: value };
                let id = v.u8()?;
                v.u8()?;
                let result = v.u8()?;
                v.u8()?;
                let mut transfer_syntax = String::new();
                while !v.b.is_empty() {
                    let (sty, sv) = v.item()?;
                    if sty == 0x40 {
                        transfer_syntax = uid(sv)?;
                    }
                }
                a.contexts_ac.push(PcAc {
                    id,
                    result,
                    transfer_syntax,
                });
            }
            0x50 => {
                let mut v = Cursor { b: value };
                while !v.b.is_empty() {
                    let (sty, sv) = v.item()?;
                    match sty {
                        0x51 => {
                            if sv.len() != 4 {
                                return Err(malformed("maximum length sub-item"));
                            }
                            a.max_pdu_length = u32::from_be_bytes([sv[0], sv[1], sv[2], sv[3]]);
                        }
                        0x52 => a.implementation_class_uid = text(sv),
                        0x55 => a.implementation_version = text(sv),
                        0x58 if is_rq => a.user_identity = user_identity(sv),
                        0x59 if !is_rq => {
                            let len = sv.get(..2).map(|l| u16::from_be_bytes([l[0], l[1]]));
                            a.user_identity_response = len
                                .and_then(|l| sv.get(2..2 + l as usize))
                                .map(<[u8]>::to_vec);
                        }
                        // Asynchronous operations window, role selection,
                        // extended negotiation, user identity: not negotiated
                        // (absent from the answer = defaults, PS3.7 D.3.3).
                        _ => {}
                    }
                }
            }
            _ => return Err(malformed("A-ASSOCIATE variable item")),
        }
    }
    Ok(a)
}

/// A User Identity sub-item's value, `None` when malformed (then ignored).
fn user_identity(v: &[u8]) -> Option<UserIdentity> {
    let (&kind, rest) = v.split_first()?;
    let (&positive, rest) = rest.split_first()?;
    let field = |b: &[u8]| -> Option<(Vec<u8>, usize)> {
        let len = u16::from_be_bytes([*b.first()?, *b.get(1)?]) as usize;
        Some((b.get(2..2 + len)?.to_vec(), 2 + len))
    };
    let (primary, used) = field(rest)?;
    let (secondary, _) = field(&rest[used..])?;
    Some(UserIdentity {
        kind,
        positive_response_requested: positive == 1,
        primary,
        secondary,
    })
}

fn put_item(out: &mut Vec<u8>, ty: u8, value: &[u8]) {
    out.push(ty);
    out.push(0);
    out.extend_from_slice(&(value.len() as u16).to_be_bytes());
    out.extend_from_slice(value);
}

fn ae_field(ae: &str) -> [u8; 16] {
    let mut f = [b' '; 16];
    for (d, s) in f.iter_mut().zip(ae.bytes()) {
        *d = s;
    }
    f
}

fn pdu(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(6 + body.len());
    out.push(ty);
    out.push(0);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Encodes an A-ASSOCIATE-RQ (`is_rq`) or -AC.
pub(crate) fn encode_associate(a: &Associate, is_rq: bool) -> Vec<u8> {
    let mut b = Vec::with_capacity(512);
    b.extend_from_slice(&a.protocol_version.to_be_bytes());
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&ae_field(&a.called_ae));
    b.extend_from_slice(&ae_field(&a.calling_ae));
    b.extend_from_slice(&[0; 32]);
    put_item(&mut b, 0x10, a.application_context.as_bytes());
    if is_rq {
        for pc in &a.contexts_rq {
            let mut v = vec![pc.id, 0, 0, 0];
            put_item(&mut v, 0x30, pc.abstract_syntax.as_bytes());
            for ts in &pc.transfer_syntaxes {
                put_item(&mut v, 0x40, ts.as_bytes());
            }
            put_item(&mut b, 0x20, &v);
        }
    } else {
        for pc in &a.contexts_ac {
            let mut v = vec![pc.id, 0, pc.result, 0];
            put_item(&mut v, 0x40, pc.transfer_syntax.as_bytes());
            put_item(&mut b, 0x21, &v);
        }
    }
    let mut ui = Vec::new();
    put_item(&mut ui, 0x51, &a.max_pdu_length.to_be_bytes());
    put_item(&mut ui, 0x52, a.implementation_class_uid.as_bytes());
    if !a.implementation_version.is_empty() {
        put_item(&mut ui, 0x55, a.implementation_version.as_bytes());
    }
    if let Some(u) = a.user_identity.as_ref().filter(|_| is_rq) {
        let mut v = vec![u.kind, u8::from(u.positive_response_requested)];
        for field in [&u.primary, &u.secondary] {
            v.extend_from_slice(&(field.len() as u16).to_be_bytes());
            v.extend_from_slice(field);
        }
        put_item(&mut ui, 0x58, &v);
    }
    if let Some(r) = a.user_identity_response.as_ref().filter(|_| !is_rq) {
        let mut v = (r.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(r);
        put_item(&mut ui, 0x59, &v);
    }
    put_item(&mut b, 0x50, &ui);
    pdu(if is_rq { ASSOCIATE_RQ } else { ASSOCIATE_AC }, &b)
}

/// A-ASSOCIATE-RJ.
pub(crate) fn encode_reject(result: u8, source: u8, reason: u8) -> Vec<u8> {
    pdu(ASSOCIATE_RJ, &[0, result, source, reason])
}

/// A-ABORT (source 0: service user, 2: service provider).
pub(crate) fn encode_abort(source: u8, reason: u8) -> Vec<u8> {
    pdu(ABORT, &[0, 0, source, reason])
}

/// A-RELEASE-RQ / -RP.
pub(crate) fn encode_release(rq: bool) -> Vec<u8> {
    pdu(if rq { RELEASE_RQ } else { RELEASE_RP }, &[0; 4])
}

/// Largest PDV payload to send given the receiver's maximum PDU length.
pub(crate) fn max_fragment(peer_max_pdu: u32) -> usize {
    // 0 = no limit: still cut into 1 MiB PDUs to bound memory.
    let max = if peer_max_pdu == 0 {
        1 << 20
    } else {
        peer_max_pdu.min(1 << 20)
    };
    (max as usize).saturating_sub(6).max(1)
}

/// Writes one message part (command or data set) as P-DATA-TF PDUs, each
/// holding a single PDV of at most `max_fragment(peer_max_pdu)` bytes.
/// `last` marks whether the final fragment of `data` ends the part.
pub(crate) async fn write_pdata<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    context_id: u8,
    is_command: bool,
    data: &[u8],
    last: bool,
    peer_max_pdu: u32,
    scratch: &mut Vec<u8>,
) -> Result<(), DimseError> {
    let frag = max_fragment(peer_max_pdu);
    if data.is_empty() {
        // An empty part still needs its (last) fragment.
        write_one(w, context_id, is_command, &[], last, scratch).await?;
    }
    let n = data.len().div_ceil(frag);
    for (i, chunk) in data.chunks(frag).enumerate() {
        write_one(
            w,
            context_id,
            is_command,
            chunk,
            last && i + 1 == n,
            scratch,
        )
        .await?;
    }
    w.flush().await?;
    Ok(())
}

async fn write_one<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    context_id: u8,
    is_command: bool,
    chunk: &[u8],
    last: bool,
    scratch: &mut Vec<u8>,
) -> Result<(), DimseError> {
    let item_len = chunk.len() as u32 + 2;
    scratch.clear();
    scratch.push(P_DATA_TF);
    scratch.push(0);
    scratch.extend_from_slice(&(item_len + 4).to_be_bytes());
    scratch.extend_from_slice(&item_len.to_be_bytes());
    scratch.push(context_id);
    scratch.push(u8::from(is_command) | if last { 2 } else { 0 });
    scratch.extend_from_slice(chunk);
    w.write_all(scratch).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Associate {
        Associate {
            protocol_version: 1,
            called_ae: "OBSCURA".into(),
            calling_ae: "MODALITY".into(),
            application_context: APPLICATION_CONTEXT.into(),
            contexts_rq: vec![PcRq {
                id: 1,
                abstract_syntax: "1.2.840.10008.1.1".into(),
                transfer_syntaxes: vec!["1.2.840.10008.1.2".into(), "1.2.840.10008.1.2.1".into()],
            }],
            contexts_ac: vec![],
            max_pdu_length: 16384,
            implementation_class_uid: "1.2.3".into(),
            implementation_version: "X".into(),
            user_identity: None,
            user_identity_response: None,
        }
    }

    /// User Identity: the request's sub-item (0x58) and the answer's (0x59)
    /// survive a round trip; each only where PS3.8 puts it.
    #[tokio::test]
    async fn user_identity_round_trip() {
        let mut rq = sample();
        rq.user_identity = Some(UserIdentity {
            kind: 2,
            positive_response_requested: true,
            primary: b"user".to_vec(),
            secondary: b"pass".to_vec(),
        });
        match decode(&encode_associate(&rq, true)).await.unwrap() {
            Some(Pdu::AssociateRq(a)) => assert_eq!(a, rq),
            other => panic!("{other:?}"),
        }
        let mut ac = sample();
        ac.contexts_rq.clear();
        ac.user_identity_response = Some(b"ok".to_vec());
        match decode(&encode_associate(&ac, false)).await.unwrap() {
            Some(Pdu::AssociateAc(a)) => {
                assert_eq!(a.user_identity_response, ac.user_identity_response)
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(user_identity(&[2, 1, 0, 9, b'x']), None);
    }

    async fn decode(bytes: &[u8]) -> Result<Option<Pdu>, DimseError> {
        let mut r = bytes;
        let mut buf = Vec::new();
        read_pdu(&mut r, &mut buf, 16384).await
    }

    #[tokio::test]
    async fn associate_round_trip() {
        let a = sample();
        let bytes = encode_associate(&a, true);
        assert_eq!(
            decode(&bytes).await.unwrap(),
            Some(Pdu::AssociateRq(a.clone()))
        );
        let mut ac = a;
        ac.contexts_rq.clear();
        ac.contexts_ac = vec![PcAc {
            id: 1,
            result: 0,
            transfer_syntax: "1.2.840.10008.1.2".into(),
        }];
        let bytes = encode_associate(&ac, false);
        assert_eq!(decode(&bytes).await.unwrap(), Some(Pdu::AssociateAc(ac)));
    }

    #[tokio::test]
    async fn truncations_and_garbage_are_errors_not_panics() {
        let bytes = encode_associate(&sample(), true);
        for cut in 0..bytes.len() {
            let mut b = bytes[..cut].to_vec();
            let _ = decode(&b).await;
            // Also fix up the length of the truncated body: cuts at an
            // item boundary are valid, the others must fail cleanly.
            if b.len() >= 6 {
                let n = (b.len() - 6) as u32;
                b[2..6].copy_from_slice(&n.to_be_bytes());
                let _ = decode(&b).await;
            }
        }
        let mut x: u32 = 12345;
        for _ in 0..2000 {
            let mut b = bytes.clone();
            for _ in 0..4 {
                x = x.wrapping_mul(1103515245).wrapping_add(12345);
                let i = (x as usize >> 8) % b.len();
                b[i] = (x >> 16) as u8;
            }
            let _ = decode(&b).await;
        }
    }

    #[tokio::test]
    async fn huge_declared_length_is_refused_before_allocation() {
        let b = [P_DATA_TF, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(matches!(
            decode(&b).await,
            Err(DimseError::PduTooLong { .. })
        ));
        let b = [ASSOCIATE_RQ, 0, 0xFF, 0xFF, 0xFF, 0xFF];
        assert!(matches!(
            decode(&b).await,
            Err(DimseError::PduTooLong { .. })
        ));
    }

    #[tokio::test]
    async fn pdata_fragments() {
        let mut out = Vec::new();
        let data: Vec<u8> = (0..100u8).collect();
        let mut scratch = Vec::new();
        write_pdata(&mut out, 3, false, &data, true, 46, &mut scratch)
            .await
            .unwrap();
        let mut r = &out[..];
        let mut buf = Vec::new();
        let mut got = Vec::new();
        let mut lasts = Vec::new();
        while let Some(p) = read_pdu(&mut r, &mut buf, 46).await.unwrap() {
            assert_eq!(p, Pdu::PData);
            for pdv in pdvs(&buf) {
                let pdv = pdv.unwrap();
                assert_eq!(pdv.context_id, 3);
                assert!(!pdv.is_command);
                got.extend_from_slice(pdv.data);
                lasts.push(pdv.is_last);
            }
        }
        assert_eq!(got, data);
        assert_eq!(lasts, vec![false, false, true]);
        // bad PDV length
        let bad = [P_DATA_TF, 0, 0, 0, 0, 6, 0, 0, 0, 9, 1, 3];
        assert!(decode(&bad).await.is_err());
    }
}
