//! Media types (RFC 9110): `Content-Type` and `Accept` values with their
//! parameters, quoted or not, and the random boundaries of our multipart
//! responses.

use crate::ApiError;
use axum::http::{header, HeaderMap};

/// Whether the request's `Accept` takes DICOM JSON (`application/dicom+json`
/// or `application/json`); no `Accept`, or an empty one, takes anything.
/// A malformed `Accept` is a 400, one that takes neither a 406 with `refusal`.
pub fn accepts_json(headers: &HeaderMap, refusal: &str) -> Result<(), ApiError> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let ranges = parse_accept(accept)
        .ok_or_else(|| ApiError::BadRequest("malformed Accept header".into()))?;
    if ranges.is_empty()
        || ranges
            .iter()
            .any(|r| r.covers("application/dicom+json") || r.covers("application/json"))
    {
        Ok(())
    } else {
        Err(ApiError::NotAcceptable(refusal.into()))
    }
}

/// A media type with its parameters; type, subtype and parameter names
/// lower case, parameter values unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaType {
    /// `type/subtype`, lower case.
    pub essence: String,
    /// Parameters in order.
    pub params: Vec<(String, String)>,
}

impl MediaType {
    /// Parse one media type (as in `Content-Type`); `None` if malformed.
    pub fn parse(s: &str) -> Option<MediaType> {
        let mut p = Parser {
            s: s.as_bytes(),
            i: 0,
        };
        let m = p.media_type()?;
        p.ws();
        (p.i == p.s.len()).then_some(m)
    }

    /// The value of parameter `name` (case-insensitive name).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this (an Accept range, maybe with `*`) covers `essence`.
    pub fn covers(&self, essence: &str) -> bool {
        if self.essence == "*/*" || self.essence == essence {
            return true;
        }
        match self.essence.strip_suffix("/*") {
            Some(t) => essence.split('/').next() == Some(t),
            None => false,
        }
    }

    /// The quality (`q`), 1.0 when absent.
    pub fn quality(&self) -> f32 {
        self.param("q")
            .and_then(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0)
    }
}

/// Parse an `Accept` header value: media ranges in order, those with q=0
/// dropped; `None` if malformed. An absent header accepts anything.
pub fn parse_accept(s: &str) -> Option<Vec<MediaType>> {
    let mut p = Parser {
        s: s.as_bytes(),
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        p.ws();
        if p.i == p.s.len() {
            break;
        }
        if p.peek() == Some(b',') {
            p.i += 1;
            continue;
        }
        let m = p.media_type()?;
        if m.quality() > 0.0 {
            out.push(m);
        }
        p.ws();
        match p.peek() {
            None => break,
            Some(b',') => p.i += 1,
            Some(_) => return None,
        }
    }
    Some(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.i += 1;
        }
    }

    fn token(&mut self) -> Option<String> {
        let start = self.i;
        while self.peek().is_some_and(is_tchar) {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    /// An unquoted parameter value: a token, leniently also with `/`, `:`
    /// and the like (clients send `type=application/dicom` unquoted).
    fn bare_value(&mut self) -> Option<String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"'))
        {
            self.i += 1;
        }
        (self.i > start).then(|| String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn quoted(&mut self) -> Option<String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return String::from_utf8(out).ok();
                }
                b'\\' => {
                    self.i += 1;
                    out.push(self.peek()?);
                    self.i += 1;
                }
                b => {
                    out.push(b);
                    self.i += 1;
                }
            }
        }
    }

    fn media_type(&mut self) -> Option<MediaType> {
        self.ws();
        let t = self.token()?;
        if self.peek() != Some(b'/') {
            return None;
        }
        self.i += 1;
        let sub = self.token()?;
        let mut params = Vec::new();
        loop {
            self.ws();
            if self.peek() != Some(b';') {
                break;
            }
            self.i += 1;
            self.ws();
            if matches!(self.peek(), None | Some(b',')) {
                break;
            }
            let name = self.token()?.to_ascii_lowercase();
            self.ws();
            if self.peek() != Some(b'=') {
                return None;
            }
            self.i += 1;
            self.ws();
            let value = if self.peek() == Some(b'"') {
                self.quoted()?
            } else {
                self.bare_value()?
            };
            params.push((name, value));
        }
        Some(MediaType {
            essence: format!("{t}/{sub}").to_ascii_lowercase(),
            params,
        })
    }
}

/// A fresh multipart boundary: 32 random hex digits (never found in data
/// by chance), prefixed so it is recognisable.
pub fn new_boundary() -> String {
    let mut raw = [0u8; 16];
    // the OS random source failing leaves zeros: still a valid boundary,
    // and every other use of randomness (keys) would have failed first
    let _ = getrandom::getrandom(&mut raw);
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    format!("obscura-{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_and_unquoted_parameters() {
        let a = MediaType::parse("Multipart/Related; type=\"application/dicom\"; boundary=abc")
            .unwrap();
        let b =
            MediaType::parse("multipart/related;type=application/dicom;boundary=\"abc\"").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.essence, "multipart/related");
        assert_eq!(a.param("TYPE"), Some("application/dicom"));
        assert_eq!(a.param("boundary"), Some("abc"));
        let q = MediaType::parse("multipart/related; boundary=\"a \\\"b\\\" c\"").unwrap();
        assert_eq!(q.param("boundary"), Some("a \"b\" c"));
        assert!(MediaType::parse("multipart").is_none());
        assert!(MediaType::parse("a/b; c").is_none());
        assert!(MediaType::parse("a/b; c=\"unterminated").is_none());
    }

    #[test]
    fn accept_lists() {
        let l = parse_accept(
            "multipart/related; type=\"application/dicom\"; transfer-syntax=*, application/dicom+json;q=0.5, text/html;q=0",
        )
        .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].param("transfer-syntax"), Some("*"));
        assert!(l[1].covers("application/dicom+json"));
        assert!(MediaType::parse("application/*")
            .unwrap()
            .covers("application/json"));
        assert!(!MediaType::parse("image/*")
            .unwrap()
            .covers("application/json"));
        assert!(parse_accept("").unwrap().is_empty());
        assert!(parse_accept("a/b c/d").is_none());
        let b = new_boundary();
        assert_eq!(b.len(), 40);
        assert_ne!(b, new_boundary());
    }
}
