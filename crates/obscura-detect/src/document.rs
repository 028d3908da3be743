//! The text of an encapsulated document (Encapsulated PDF, CDA), so that the
//! engine can look in it for the identifying values of the header.
//!
//! Deliberately small and conservative: no PDF library, no XML library.
//! Text that cannot be read with certainty is an error (the caller
//! quarantines the file), never an empty string. Bounded in time and memory
//! whatever the input: inflated bytes are capped, every loop advances.

use flate2::read::ZlibDecoder;
use std::io::Read;

/// Total bytes all inflated and decoded streams of one document may take.
const MAX_DECODED: usize = 64 << 20;

/// Why a document's text could not be extracted.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// The PDF is encrypted (`/Encrypt`): its text cannot be read.
    #[error("encrypted PDF")]
    Encrypted,
    /// The document is not well-formed where it matters for its text.
    #[error("malformed document: {0}")]
    Malformed(&'static str),
    /// A stream uses a filter that is not implemented (e.g. LZWDecode).
    #[error("unsupported PDF filter {0}")]
    UnsupportedFilter(String),
    /// Text is in a font encoding whose codes are not characters (e.g. Identity-H).
    #[error("PDF text in a font encoding that is not read: {0}")]
    UnsupportedEncoding(String),
    /// Decoded streams exceed the size cap (a compression bomb, or just too big).
    #[error("decoded document exceeds {MAX_DECODED} bytes")]
    TooLarge,
    /// Neither PDF nor XML.
    #[error("unsupported document type")]
    UnknownType,
}

/// The text of an encapsulated document (PDF or CDA/XML), for detection;
/// `mime` is MIMETypeOfEncapsulatedDocument if present.
pub fn document_text(bytes: &[u8], mime: Option<&str>) -> Result<String, DocumentError> {
    // DICOM pads values to even length with NUL or space.
    let bytes = trim_padding(bytes);
    let mime = mime.map(|m| m.trim().to_ascii_lowercase());
    let start = skip_ws(bytes, 0);
    let body = &bytes[start..];
    let is_pdf = mime.as_deref() == Some("application/pdf")
        || body.starts_with(b"%PDF")
        || bytes
            .get(..1024)
            .is_some_and(|h| find(h, b"%PDF-", 0).is_some());
    if is_pdf {
        return pdf_text(bytes);
    }
    let xml_mime = matches!(
        mime.as_deref(),
        Some("text/xml" | "application/xml" | "application/cda+xml")
    );
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if xml_mime || body.starts_with(b"<") {
        return xml_text(body);
    }
    Err(DocumentError::UnknownType)
}

fn trim_padding(mut b: &[u8]) -> &[u8] {
    while let [rest @ .., 0 | b' '] = b {
        b = rest;
    }
    b
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n' | 0x0C | 0)
}

fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if from >= hay.len() {
        return None;
    }
    hay[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

// ---------------------------------------------------------------- PDF ----

/// A lexical token of PDF syntax (only what text extraction needs).
enum Tok {
    /// A literal or hex string, decoded to bytes.
    Str(Vec<u8>),
    /// A name (without `/`).
    Name(Vec<u8>),
    /// A number.
    Num(f64),
    /// A keyword or operator.
    Word(Vec<u8>),
    /// `<<` `>>` `[` `]`.
    Punct(u8),
}

/// A PDF lexer over `b`, starting at `i`.
struct Lexer<'a> {
    b: &'a [u8],
    i: usize,
}

impl Lexer<'_> {
    fn next(&mut self) -> Option<Result<(usize, Tok), DocumentError>> {
        let b = self.b;
        loop {
            self.i = skip_ws(b, self.i);
            if self.i >= b.len() {
                return None;
            }
            if b[self.i] == b'%' {
                while self.i < b.len() && b[self.i] != b'\n' && b[self.i] != b'\r' {
                    self.i += 1;
                }
                continue;
            }
            break;
        }
        let at = self.i;
        let c = b[at];
        let tok = match c {
            b'(' => match literal(b, at) {
                Ok((s, end)) => {
                    self.i = end;
                    Tok::Str(s)
                }
                Err(e) => return Some(Err(e)),
            },
            b'<' if b.get(at + 1) == Some(&b'<') => {
                self.i += 2;
                Tok::Punct(b'{')
            }
            b'>' if b.get(at + 1) == Some(&b'>') => {
                self.i += 2;
                Tok::Punct(b'}')
            }
            b'<' => match hex_string(b, at) {
                Ok((s, end)) => {
                    self.i = end;
                    Tok::Str(s)
                }
                Err(e) => return Some(Err(e)),
            },
            b'[' | b']' | b'{' | b'}' | b')' | b'>' => {
                self.i += 1;
                Tok::Punct(c)
            }
            b'/' => {
                let mut j = at + 1;
                while j < b.len() && !is_ws(b[j]) && !is_delim(b[j]) {
                    j += 1;
                }
                self.i = j;
                Tok::Name(b[at + 1..j].to_vec())
            }
            _ => {
                let mut j = at + 1;
                while j < b.len() && !is_ws(b[j]) && !is_delim(b[j]) {
                    j += 1;
                }
                self.i = j;
                let w = &b[at..j];
                match std::str::from_utf8(w)
                    .ok()
                    .and_then(|s| s.parse::<f64>().ok())
                {
                    Some(n) if w[0].is_ascii_digit() || matches!(w[0], b'-' | b'+' | b'.') => {
                        Tok::Num(n)
                    }
                    _ => Tok::Word(w.to_vec()),
                }
            }
        };
        Some(Ok((at, tok)))
    }
}

/// A literal string `( ... )` at `at`: its bytes and the index after it.
fn literal(b: &[u8], at: usize) -> Result<(Vec<u8>, usize), DocumentError> {
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut i = at + 1;
    while i < b.len() {
        let c = b[i];
        i += 1;
        match c {
            b'(' => {
                depth += 1;
                out.push(c);
            }
            b')' => {
                if depth == 0 {
                    return Ok((out, i));
                }
                depth -= 1;
                out.push(c);
            }
            b'\\' => {
                let Some(&e) = b.get(i) else { break };
                i += 1;
                match e {
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'b' => out.push(8),
                    b'f' => out.push(12),
                    b'0'..=b'7' => {
                        let mut v = u32::from(e - b'0');
                        for _ in 0..2 {
                            match b.get(i) {
                                Some(&d @ b'0'..=b'7') => {
                                    v = v * 8 + u32::from(d - b'0');
                                    i += 1;
                                }
                                _ => break,
                            }
                        }
                        out.push((v & 0xFF) as u8);
                    }
                    b'\r' => {
                        if b.get(i) == Some(&b'\n') {
                            i += 1;
                        }
                    }
                    b'\n' => {}
                    other => out.push(other),
                }
            }
            _ => out.push(c),
        }
    }
    Err(DocumentError::Malformed("unterminated string"))
}

/// A hex string `< ... >` at `at`: its bytes and the index after it.
fn hex_string(b: &[u8], at: usize) -> Result<(Vec<u8>, usize), DocumentError> {
    let mut out = Vec::new();
    let mut high: Option<u8> = None;
    let mut i = at + 1;
    while i < b.len() {
        let c = b[i];
        i += 1;
        if c == b'>' {
            if let Some(h) = high {
                out.push(h << 4);
            }
            return Ok((out, i));
        }
        if is_ws(c) {
            continue;
        }
        let v = (c as char)
            .to_digit(16)
            .ok_or(DocumentError::Malformed("bad hex string"))? as u8;
        match high.take() {
            Some(h) => out.push(h << 4 | v),
            None => high = Some(v),
        }
    }
    Err(DocumentError::Malformed("unterminated hex string"))
}

/// A PDF text string (outside content streams): UTF-16BE with a BOM, or
/// PDFDocEncoding (read as Latin-1).
fn text_string(s: &[u8]) -> String {
    if let Some(u) = s.strip_prefix(b"\xFE\xFF") {
        let units: Vec<u16> = u
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(u) = s.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(u).into_owned();
    }
    s.iter().map(|&b| char::from(b)).collect()
}

/// What a stream dictionary says about its stream.
#[derive(Default)]
struct StreamDict {
    filters: Vec<Vec<u8>>,
    length: Option<usize>,
    skip: bool,
    xml: bool,
    object_stream: bool,
    predictor: bool,
}

fn stream_dict(dict: &[Tok]) -> StreamDict {
    let mut d = StreamDict::default();
    let mut i = 0;
    while i < dict.len() {
        if let Tok::Name(key) = &dict[i] {
            let next = dict.get(i + 1);
            match (key.as_slice(), next) {
                (b"Filter", Some(Tok::Name(f))) => d.filters.push(f.clone()),
                (b"Filter", Some(Tok::Punct(b'['))) => {
                    let mut j = i + 2;
                    while let Some(Tok::Name(f)) = dict.get(j) {
                        d.filters.push(f.clone());
                        j += 1;
                    }
                }
                // An indirect length (`n 0 R`) is not followed here.
                (b"Length", Some(Tok::Num(n))) if !matches!(dict.get(i + 3), Some(Tok::Word(w)) if w == b"R") =>
                {
                    d.length = Some(*n as usize);
                }
                (b"Subtype" | b"Type", Some(Tok::Name(v))) => match v.as_slice() {
                    b"Image" | b"XRef" | b"Type1C" | b"CIDFontType0C" | b"OpenType" => {
                        d.skip = true
                    }
                    b"XML" | b"Metadata" => d.xml = true,
                    b"ObjStm" => d.object_stream = true,
                    _ => {}
                },
                (b"Length1" | b"Length2" | b"Length3", _) => d.skip = true,
                (b"Predictor", Some(Tok::Num(n))) if *n > 1.0 => d.predictor = true,
                _ => {}
            }
        }
        i += 1;
    }
    d
}

/// Decodes a stream's data through its filters within `budget`.
fn decode_stream(
    data: &[u8],
    d: &StreamDict,
    budget: &mut usize,
) -> Result<Option<Vec<u8>>, DocumentError> {
    let mut cur = data.to_vec();
    for f in &d.filters {
        cur = match f.as_slice() {
            b"FlateDecode" | b"Fl" => {
                if d.predictor {
                    return Err(DocumentError::UnsupportedFilter(
                        "FlateDecode with predictor".into(),
                    ));
                }
                let mut out = Vec::new();
                let mut z = ZlibDecoder::new(&cur[..]).take(*budget as u64 + 1);
                z.read_to_end(&mut out)
                    .map_err(|_| DocumentError::Malformed("bad Flate data"))?;
                out
            }
            b"ASCIIHexDecode" | b"AHx" => {
                let mut v = b"<".to_vec();
                v.extend_from_slice(&cur);
                if !cur.contains(&b'>') {
                    v.push(b'>');
                }
                hex_string(&v, 0)?.0
            }
            b"ASCII85Decode" | b"A85" => ascii85(&cur)?,
            // Images: no text to read.
            b"DCTDecode" | b"DCT" | b"JPXDecode" | b"CCITTFaxDecode" | b"CCF" | b"JBIG2Decode" => {
                return Ok(None)
            }
            other => {
                return Err(DocumentError::UnsupportedFilter(
                    String::from_utf8_lossy(other).into_owned(),
                ))
            }
        };
        if cur.len() > *budget {
            return Err(DocumentError::TooLarge);
        }
    }
    *budget = budget.saturating_sub(cur.len());
    Ok(Some(cur))
}

fn ascii85(data: &[u8]) -> Result<Vec<u8>, DocumentError> {
    let mut out = Vec::new();
    let mut group = [0u32; 5];
    let mut n = 0;
    let data = data.strip_prefix(b"<~").unwrap_or(data);
    for &c in data {
        match c {
            b'~' => break,
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[n] = u32::from(c - b'!');
                n += 1;
                if n == 5 {
                    let v = group.iter().try_fold(0u32, |a, &d| {
                        a.checked_mul(85).and_then(|a| a.checked_add(d))
                    });
                    let v = v.ok_or(DocumentError::Malformed("bad ASCII85"))?;
                    out.extend_from_slice(&v.to_be_bytes());
                    n = 0;
                }
            }
            c if is_ws(c) => {}
            _ => return Err(DocumentError::Malformed("bad ASCII85")),
        }
    }
    if n == 1 {
        return Err(DocumentError::Malformed("bad ASCII85"));
    }
    if n > 1 {
        for g in group.iter_mut().skip(n) {
            *g = 84;
        }
        let v = group.iter().try_fold(0u32, |a, &d| {
            a.checked_mul(85).and_then(|a| a.checked_add(d))
        });
        let v = v.ok_or(DocumentError::Malformed("bad ASCII85"))?;
        out.extend_from_slice(&v.to_be_bytes()[..n - 1]);
    }
    Ok(out)
}

fn pdf_text(b: &[u8]) -> Result<String, DocumentError> {
    let mut out = String::new();
    let mut budget = MAX_DECODED;
    objects_text(b, &mut out, &mut budget, 0)?;
    Ok(out.trim().to_string())
}

/// Text of the objects in `b` (a file, or an object stream): strings outside
/// streams, and the text of each stream.
fn objects_text(
    b: &[u8],
    out: &mut String,
    budget: &mut usize,
    depth: u8,
) -> Result<(), DocumentError> {
    if depth > 2 {
        return Err(DocumentError::Malformed("nested object streams"));
    }
    let mut lx = Lexer { b, i: 0 };
    // Tokens of the current (outermost) dictionary, for the stream that may follow.
    let mut dict: Vec<Tok> = Vec::new();
    let mut last_dict: Vec<Tok> = Vec::new();
    let mut depth_dict = 0usize;
    while let Some(t) = lx.next() {
        let (_, tok) = t?;
        match &tok {
            Tok::Name(n) if n == b"Encrypt" => return Err(DocumentError::Encrypted),
            Tok::Name(n) if n == b"Identity-H" || n == b"Identity-V" => {
                return Err(DocumentError::UnsupportedEncoding(
                    String::from_utf8_lossy(n).into_owned(),
                ))
            }
            Tok::Str(s) => {
                let t = text_string(s);
                if !t.trim().is_empty() && t.chars().all(|c| !c.is_control() || c.is_whitespace()) {
                    out.push_str(&t);
                    out.push('\n');
                }
            }
            Tok::Word(w) if w == b"stream" => {
                // Data starts after the EOL that follows the keyword.
                let mut s = lx.i;
                if b.get(s) == Some(&b'\r') {
                    s += 1;
                }
                if b.get(s) == Some(&b'\n') {
                    s += 1;
                }
                let d = stream_dict(&last_dict);
                let end = match d.length {
                    Some(len)
                        if s.checked_add(len).is_some_and(|e| {
                            e <= b.len()
                                && find(&b[e..b.len().min(e + 64)], b"endstream", 0).is_some()
                        }) =>
                    {
                        s + len
                    }
                    _ => find(b, b"endstream", s)
                        .ok_or(DocumentError::Malformed("stream without endstream"))?,
                };
                let data = &b[s..end];
                lx.i = end + b"endstream".len();
                last_dict.clear();
                if d.skip {
                    continue;
                }
                let Some(decoded) = decode_stream(data, &d, budget)? else {
                    continue;
                };
                if d.xml {
                    out.push_str(&xml_text(&decoded)?);
                    out.push('\n');
                } else if d.object_stream {
                    objects_text(&decoded, out, budget, depth + 1)?;
                } else {
                    content_text(&decoded, out)?;
                }
                continue;
            }
            _ => {}
        }
        match tok {
            Tok::Punct(b'{') => {
                depth_dict += 1;
                if depth_dict == 1 {
                    dict.clear();
                }
                dict.push(tok);
            }
            Tok::Punct(b'}') => {
                dict.push(tok);
                depth_dict = depth_dict.saturating_sub(1);
                if depth_dict == 0 {
                    last_dict = std::mem::take(&mut dict);
                }
            }
            tok if depth_dict > 0 => dict.push(tok),
            Tok::Word(w) if w == b"obj" || w == b"endobj" => last_dict.clear(),
            _ => {}
        }
    }
    Ok(())
}

/// The text shown by a content stream: the string operands of `Tj`, `TJ`,
/// `'` and `"`, a line break at each text positioning.
fn content_text(b: &[u8], out: &mut String) -> Result<(), DocumentError> {
    let mut lx = Lexer { b, i: 0 };
    let mut operands: Vec<Tok> = Vec::new();
    let mut line = String::new();
    while let Some(t) = lx.next() {
        let (at, tok) = t?;
        match tok {
            Tok::Word(w) => {
                match w.as_slice() {
                    b"Tj" | b"'" | b"\"" | b"TJ" => {
                        if w != b"Tj" && w != b"TJ" && !line.is_empty() {
                            out.push_str(line.trim_end());
                            out.push('\n');
                            line.clear();
                        }
                        for o in &operands {
                            match o {
                                Tok::Str(s) => line.extend(s.iter().map(|&c| char::from(c))),
                                Tok::Num(n) if *n < -200.0 => line.push(' '),
                                _ => {}
                            }
                        }
                    }
                    b"Td" | b"TD" | b"T*" | b"Tm" | b"ET" if !line.is_empty() => {
                        out.push_str(line.trim_end());
                        out.push('\n');
                        line.clear();
                    }
                    b"BI" => {
                        // Inline image: skip to EI.
                        let end = find(b, b"EI", at)
                            .ok_or(DocumentError::Malformed("inline image without EI"))?;
                        lx.i = end + 2;
                    }
                    _ => {}
                }
                operands.clear();
            }
            other => {
                if operands.len() < 4096 {
                    operands.push(other);
                }
            }
        }
    }
    if !line.is_empty() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    Ok(())
}

// ---------------------------------------------------------------- XML ----

/// The text nodes and attribute values of an XML document, entities decoded,
/// one per line.
fn xml_text(b: &[u8]) -> Result<String, DocumentError> {
    let b = b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b);
    let s = std::str::from_utf8(b).map_err(|_| DocumentError::Malformed("XML not UTF-8"))?;
    let mut out = String::new();
    let push = |t: &str, out: &mut String| {
        let t = t.trim();
        if !t.is_empty() {
            out.push_str(t);
            out.push('\n');
        }
    };
    let mut rest = s;
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            push(&entities(rest)?, &mut out);
            break;
        };
        push(&entities(&rest[..lt])?, &mut out);
        rest = &rest[lt..];
        let (skip, text) = if let Some(r) = rest.strip_prefix("<!--") {
            (
                4 + r.find("-->").ok_or(DocumentError::Malformed("comment"))? + 3,
                None,
            )
        } else if let Some(r) = rest.strip_prefix("<![CDATA[") {
            let e = r.find("]]>").ok_or(DocumentError::Malformed("CDATA"))?;
            (9 + e + 3, Some(r[..e].to_string()))
        } else if let Some(r) = rest.strip_prefix("<?") {
            (
                2 + r.find("?>").ok_or(DocumentError::Malformed("PI"))? + 2,
                None,
            )
        } else if rest.starts_with("<!") {
            // DOCTYPE, possibly with an internal subset in brackets.
            let mut depth = 0i32;
            let mut end = None;
            for (i, c) in rest.char_indices() {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    '>' if depth <= 0 => {
                        end = Some(i + 1);
                        break;
                    }
                    _ => {}
                }
            }
            (end.ok_or(DocumentError::Malformed("DOCTYPE"))?, None)
        } else {
            // A tag: attribute values are text too.
            let mut i = 1;
            let bytes = rest.as_bytes();
            let mut quote: Option<u8> = None;
            let mut value_start = 0;
            loop {
                let Some(&c) = bytes.get(i) else {
                    return Err(DocumentError::Malformed("unterminated tag"));
                };
                match (quote, c) {
                    (None, b'"' | b'\'') => {
                        quote = Some(c);
                        value_start = i + 1;
                    }
                    (Some(q), c) if c == q => {
                        push(&entities(&rest[value_start..i])?, &mut out);
                        quote = None;
                    }
                    (None, b'>') => break,
                    _ => {}
                }
                i += 1;
            }
            (i + 1, None)
        };
        if let Some(t) = text {
            push(&t, &mut out);
        }
        rest = &rest[skip..];
    }
    Ok(out.trim_end().to_string())
}

/// `s` with its character and predefined entity references decoded.
fn entities(s: &str) -> Result<String, DocumentError> {
    if !s.contains('&') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let r = &rest[amp + 1..];
        let semi = r
            .find(';')
            .filter(|&i| i <= 12)
            .ok_or(DocumentError::Malformed("bad entity"))?;
        let name = &r[..semi];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            n if n.starts_with("#x") || n.starts_with("#X") => u32::from_str_radix(&n[2..], 16)
                .ok()
                .and_then(char::from_u32)
                .ok_or(DocumentError::Malformed("bad character reference"))?,
            n if n.starts_with('#') => n[1..]
                .parse::<u32>()
                .ok()
                .and_then(char::from_u32)
                .ok_or(DocumentError::Malformed("bad character reference"))?,
            // An entity of a DTD: its text is unknown here.
            _ => return Err(DocumentError::Malformed("unknown entity")),
        };
        out.push(c);
        rest = &r[semi + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::ZlibEncoder;
    use flate2::Compression;
    use std::io::Write;

    fn pdf(objects: &[Vec<u8>]) -> Vec<u8> {
        let mut v = b"%PDF-1.4\n".to_vec();
        for (i, o) in objects.iter().enumerate() {
            v.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
            v.extend_from_slice(o);
            v.extend_from_slice(b"\nendobj\n");
        }
        v.extend_from_slice(b"trailer\n<< /Root 1 0 R >>\n%%EOF\n");
        v
    }

    fn stream(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut v = format!("<< {dict} /Length {} >>\nstream\n", data.len()).into_bytes();
        v.extend_from_slice(data);
        v.extend_from_slice(b"\nendstream");
        v
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    const CONTENT: &[u8] = b"BT /F1 12 Tf 72 700 Td (Patient: DOE\\, JOHN) Tj 0 -14 Td \
        [(MR) 20 (N ) -300 (123\\0614)] TJ T* <4A616E65> Tj (Line \\(2\\)) ' ET";

    #[test]
    fn uncompressed_pdf_text_and_metadata() {
        let doc = pdf(&[
            b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
            b"<< /Title (Report of Smith) /Author <FEFF004A006F0065> >>".to_vec(),
            stream("", CONTENT),
        ]);
        let t = document_text(&doc, Some("application/pdf")).unwrap();
        assert!(t.contains("Patient: DOE, JOHN"), "{t}");
        assert!(t.contains("MRN  1231"), "{t}");
        assert!(t.contains("Jane"), "{t}");
        assert!(t.contains("Line (2)"), "{t}");
        assert!(t.contains("Report of Smith"), "{t}");
        assert!(t.contains("Joe"), "{t}");
    }

    #[test]
    fn flate_and_ascii_filters() {
        let doc = pdf(&[
            stream("/Filter /FlateDecode", &zlib(CONTENT)),
            stream(
                "/Filter /ASCIIHexDecode",
                b"42542028446F6529 20546A20 4554>",
            ),
            stream("/Filter [/ASCII85Decode /FlateDecode]", &{
                // ASCII85 of zlib(BT (Roe) Tj ET).
                let z = zlib(b"BT (Roe) Tj ET");
                let mut a = Vec::new();
                for c in z.chunks(4) {
                    let mut g = [0u8; 4];
                    g[..c.len()].copy_from_slice(c);
                    let mut v = u32::from_be_bytes(g);
                    let mut d = [0u8; 5];
                    for x in d.iter_mut().rev() {
                        *x = (v % 85) as u8 + b'!';
                        v /= 85;
                    }
                    a.extend_from_slice(&d[..c.len() + 1]);
                }
                a.extend_from_slice(b"~>");
                a
            }),
        ]);
        let t = document_text(&doc, None).unwrap();
        assert!(t.contains("DOE, JOHN"), "{t}");
        assert!(t.contains("Doe"), "{t}");
        assert!(t.contains("Roe"), "{t}");
    }

    #[test]
    fn what_cannot_be_read_is_an_error() {
        let enc = pdf(&[b"<< /Encrypt 5 0 R >>".to_vec()]);
        assert!(matches!(
            document_text(&enc, None),
            Err(DocumentError::Encrypted)
        ));
        let lzw = pdf(&[stream("/Filter /LZWDecode", b"xx")]);
        assert!(matches!(
            document_text(&lzw, None),
            Err(DocumentError::UnsupportedFilter(_))
        ));
        let cid = pdf(&[b"<< /Type /Font /Subtype /Type0 /Encoding /Identity-H >>".to_vec()]);
        assert!(document_text(&cid, None).is_err());
        let bad = pdf(&[stream("/Filter /FlateDecode", b"not zlib")]);
        assert!(document_text(&bad, None).is_err());
        let cut = b"%PDF-1.4\n1 0 obj << /Length 99 >>\nstream\nBT (Doe) Tj".to_vec();
        assert!(document_text(&cut, None).is_err());
        assert!(matches!(
            document_text(b"\x89PNG....", Some("image/png")),
            Err(DocumentError::UnknownType)
        ));
    }

    #[test]
    fn images_are_ignored() {
        let doc = pdf(&[stream(
            "/Subtype /Image /Filter /DCTDecode",
            b"\xff\xd8junk",
        )]);
        assert_eq!(document_text(&doc, None).unwrap(), "");
    }

    #[test]
    fn a_zip_bomb_is_too_large_not_oom() {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::best());
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..70 {
            e.write_all(&zeros).unwrap();
        }
        let bomb = e.finish().unwrap();
        let doc = pdf(&[stream("/Filter /FlateDecode", &bomb)]);
        assert!(matches!(
            document_text(&doc, None),
            Err(DocumentError::TooLarge)
        ));
    }

    #[test]
    fn the_blank_pdf_has_no_text() {
        let blank = include_bytes!("../../obscura-deid/src/blank.pdf");
        assert_eq!(document_text(blank, Some("application/pdf")).unwrap(), "");
    }

    #[test]
    fn cda_text_and_attributes() {
        let cda = br#"<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment with Doe -->
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <recordTarget><patientRole><id root="2.16.840" extension="MRN&#49;23"/>
    <patient><name><given>John</given><family>O&apos;Doe &amp; Sons</family></name></patient>
  </patientRole></recordTarget>
  <text><![CDATA[Seen by Dr. <Roe>]]></text>
</ClinicalDocument>
"#;
        let t = document_text(cda, Some("text/XML")).unwrap();
        for want in [
            "MRN123",
            "John",
            "O'Doe & Sons",
            "Seen by Dr. <Roe>",
            "2.16.840",
        ] {
            assert!(t.lines().any(|l| l == want), "{want} in {t}");
        }
        assert!(!t.contains("comment"));
        assert!(document_text(b"<a>&custom;</a>", None).is_err());
        assert!(document_text(b"<a attr='x", None).is_err());
    }

    #[test]
    fn never_panics_on_garbage() {
        let mut seed = 0x1234_5678u32;
        let base = pdf(&[
            stream("/Filter /FlateDecode", &zlib(CONTENT)),
            stream("", CONTENT),
        ]);
        for n in 0..3000 {
            let mut v = base.clone();
            for _ in 0..(n % 7 + 1) {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                let at = (seed >> 8) as usize % v.len();
                v[at] = (seed >> 3) as u8;
            }
            v.truncate((seed as usize >> 4) % (v.len() + 1));
            let _ = document_text(&v, None);
            let _ = document_text(&v[v.len() / 2..], Some("text/xml"));
        }
    }
}
