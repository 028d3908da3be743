//! A streaming `multipart/related` parser (RFC 2046 5.1, RFC 2387): fed
//! the body chunk by chunk, it hands each part's headers and bytes to a
//! [`Sink`] as they arrive and holds at most a delimiter's worth of data
//! (plus a part's headers, capped) in memory.

use memchr::memmem::Finder;

/// Largest block of part headers accepted.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// What is wrong with a multipart body (no data quoted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    /// The body does not start with a delimiter line.
    #[error("the body does not begin with the boundary")]
    NoFirstBoundary,
    /// A delimiter is followed by something other than a line end or `--`.
    #[error("malformed boundary line")]
    BadDelimiter,
    /// A part's headers are malformed or too long.
    #[error("malformed part headers")]
    BadHeaders,
    /// The body ended before the closing delimiter.
    #[error("the multipart body is unterminated (no closing boundary)")]
    Unterminated,
    /// The sink refused a part (a limit, or a part of the wrong type).
    #[error("{0}")]
    Refused(String),
}

/// Where the parts go.
pub trait Sink {
    /// A part begins, with its headers (names lower case).
    fn start(&mut self, headers: &[(String, String)]) -> Result<(), String>;
    /// Bytes of the current part.
    fn data(&mut self, bytes: &[u8]) -> Result<(), String>;
    /// The current part is complete.
    fn end(&mut self) -> Result<(), String>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first delimiter (a preamble may precede it).
    Preamble,
    /// Right after a delimiter: `--`, or padding and CRLF.
    AfterDelimiter,
    /// Reading a part's headers.
    Headers,
    /// Reading a part's body.
    Body,
    /// After the close delimiter (the epilogue is ignored).
    Done,
}

/// The longest boundary accepted, bytes.
pub const MAX_BOUNDARY: usize = 200;

/// The parser for one body.
pub struct Parser {
    /// `\r\n--boundary`.
    delimiter: Vec<u8>,
    finder: Finder<'static>,
    state: State,
    buf: Vec<u8>,
}

impl Parser {
    /// A parser for parts separated by `boundary`. RFC 2046 allows 1 to 70
    /// characters, but real clients exceed it (Orthanc's DICOMweb plugin 1.7
    /// sends 73: two UUIDs joined by `-`), so up to [`MAX_BOUNDARY`] are read.
    pub fn new(boundary: &str) -> Option<Parser> {
        if boundary.is_empty() || boundary.len() > MAX_BOUNDARY {
            return None;
        }
        let delimiter = format!("\r\n--{boundary}").into_bytes();
        Some(Parser {
            finder: Finder::new(&delimiter).into_owned(),
            delimiter,
            state: State::Preamble,
            buf: Vec::new(),
        })
    }

    /// Whether the close delimiter has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feed the next chunk of the body.
    pub fn feed(&mut self, chunk: &[u8], sink: &mut dyn Sink) -> Result<(), MultipartError> {
        if self.state == State::Done {
            return Ok(());
        }
        if self.state == State::Body && self.buf.is_empty() {
            // the common case: scan the chunk in place, keep only its tail
            let used = self.body(chunk, sink)?;
            self.buf.extend_from_slice(&chunk[used..]);
        } else {
            self.buf.extend_from_slice(chunk);
        }
        let mut pos = 0;
        loop {
            let before = (pos, self.state);
            let buf = std::mem::take(&mut self.buf);
            let r = self.step(&buf[pos..], sink);
            self.buf = buf;
            pos += r?;
            if (pos, self.state) == before || self.state == State::Done {
                break;
            }
        }
        self.buf.drain(..pos);
        Ok(())
    }

    /// The body has ended: an error unless the close delimiter was read.
    pub fn finish(&self) -> Result<(), MultipartError> {
        if self.state == State::Done {
            Ok(())
        } else {
            Err(MultipartError::Unterminated)
        }
    }

    /// Consume what can be consumed of `d` in the current state; returns bytes used.
    fn step(&mut self, d: &[u8], sink: &mut dyn Sink) -> Result<usize, MultipartError> {
        match self.state {
            State::Preamble => {
                // the first delimiter may open the body without a CRLF before it
                let dash = &self.delimiter[2..];
                if d.len() >= dash.len() && d.starts_with(dash) {
                    self.state = State::AfterDelimiter;
                    return Ok(dash.len());
                }
                if d.len() < dash.len() && dash.starts_with(d) {
                    return Ok(0);
                }
                match self.finder.find(d) {
                    Some(i) => {
                        self.state = State::AfterDelimiter;
                        Ok(i + self.delimiter.len())
                    }
                    None if d.len() > 64 * 1024 => Err(MultipartError::NoFirstBoundary),
                    None => Ok(0),
                }
            }
            State::AfterDelimiter => {
                if d.len() < 2 {
                    return Ok(0);
                }
                if d.starts_with(b"--") {
                    self.state = State::Done;
                    return Ok(d.len());
                }
                let pad = d.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
                match &d[pad..] {
                    [b'\r', b'\n', ..] => {
                        self.state = State::Headers;
                        Ok(pad + 2)
                    }
                    [] | [b'\r'] if pad < 256 => Ok(0),
                    _ => Err(MultipartError::BadDelimiter),
                }
            }
            State::Headers => {
                // no headers at all: the part starts with an empty line
                if d.starts_with(b"\r\n") {
                    sink.start(&[]).map_err(MultipartError::Refused)?;
                    self.state = State::Body;
                    return Ok(2);
                }
                match memchr::memmem::find(d, b"\r\n\r\n") {
                    Some(end) => {
                        let headers = parse_headers(&d[..end])?;
                        sink.start(&headers).map_err(MultipartError::Refused)?;
                        self.state = State::Body;
                        Ok(end + 4)
                    }
                    None if d.len() > MAX_HEADER_BYTES => Err(MultipartError::BadHeaders),
                    None => Ok(0),
                }
            }
            State::Body => self.body(d, sink),
            State::Done => Ok(d.len()),
        }
    }

    /// Part data up to the next delimiter, or all but a possible delimiter
    /// prefix at the end; returns bytes used.
    fn body(&mut self, d: &[u8], sink: &mut dyn Sink) -> Result<usize, MultipartError> {
        if let Some(i) = self.finder.find(d) {
            sink.data(&d[..i]).map_err(MultipartError::Refused)?;
            sink.end().map_err(MultipartError::Refused)?;
            self.state = State::AfterDelimiter;
            return Ok(i + self.delimiter.len());
        }
        // keep the longest tail that could begin a delimiter
        let keep = (1..self.delimiter.len().min(d.len() + 1))
            .rev()
            .find(|&k| self.delimiter.starts_with(&d[d.len() - k..]))
            .unwrap_or(0);
        let emit = d.len() - keep;
        if emit > 0 {
            sink.data(&d[..emit]).map_err(MultipartError::Refused)?;
        }
        Ok(emit)
    }
}

/// `Name: value` lines (names lower case; folded lines refused).
fn parse_headers(block: &[u8]) -> Result<Vec<(String, String)>, MultipartError> {
    let text = std::str::from_utf8(block).map_err(|_| MultipartError::BadHeaders)?;
    text.split("\r\n")
        .map(|line| {
            let (name, value) = line.split_once(':').ok_or(MultipartError::BadHeaders)?;
            if name.is_empty() || name.contains([' ', '\t']) {
                return Err(MultipartError::BadHeaders);
            }
            Ok((name.to_ascii_lowercase(), value.trim().to_string()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    type Headers = Vec<(String, String)>;

    #[derive(Default)]
    struct Collect {
        parts: Vec<(Headers, Vec<u8>)>,
        open: bool,
    }

    impl Sink for Collect {
        fn start(&mut self, h: &[(String, String)]) -> Result<(), String> {
            assert!(!self.open);
            self.open = true;
            self.parts.push((h.to_vec(), Vec::new()));
            Ok(())
        }
        fn data(&mut self, b: &[u8]) -> Result<(), String> {
            assert!(self.open);
            self.parts.last_mut().unwrap().1.extend_from_slice(b);
            Ok(())
        }
        fn end(&mut self) -> Result<(), String> {
            self.open = false;
            Ok(())
        }
    }

    fn parse_in_chunks(body: &[u8], chunk: usize) -> Result<Collect, MultipartError> {
        let mut p = Parser::new("XyZ").unwrap();
        let mut c = Collect::default();
        for piece in body.chunks(chunk) {
            p.feed(piece, &mut c)?;
        }
        p.finish()?;
        Ok(c)
    }

    #[test]
    fn parts_whatever_the_chunking() {
        let body = b"preamble\r\n--XyZ\r\nContent-Type: application/dicom\r\n\r\nfirst\r\n--X part\r\n\r\n--XyZ  \r\ncontent-type:application/dicom\r\n\r\n\r\n--XyZ\r\n\r\nthird\r\n--XyZ--\r\nepilogue";
        for chunk in [1, 2, 3, 5, 7, 16, 1000] {
            let c = parse_in_chunks(body, chunk).unwrap();
            assert_eq!(c.parts.len(), 3, "chunk {chunk}");
            assert_eq!(c.parts[0].1, b"first\r\n--X part\r\n");
            assert_eq!(
                c.parts[0].0,
                vec![("content-type".to_string(), "application/dicom".to_string())]
            );
            assert_eq!(c.parts[1].1, b"");
            assert!(c.parts[2].0.is_empty());
            assert_eq!(c.parts[2].1, b"third");
        }
        // no preamble, no CRLF before the first delimiter
        let c = parse_in_chunks(b"--XyZ\r\n\r\nx\r\n--XyZ--", 4).unwrap();
        assert_eq!(c.parts[0].1, b"x");
    }

    #[test]
    fn malformed_and_unterminated() {
        for body in [
            &b"--XyZ\r\n\r\nx\r\n--XyZ\r\n\r\ny"[..],
            b"--XyZ\r\n\r\nx",
            b"--XyZ\r\nno headers end",
            b"",
            b"--XyZ",
        ] {
            assert_eq!(
                parse_in_chunks(body, 3).err(),
                Some(MultipartError::Unterminated)
            );
        }
        assert_eq!(
            parse_in_chunks(b"--XyZ junk\r\n\r\n--XyZ--", 100).err(),
            Some(MultipartError::BadDelimiter)
        );
        assert_eq!(
            parse_in_chunks(b"--XyZ\r\nno colon\r\n\r\nx\r\n--XyZ--", 100).err(),
            Some(MultipartError::BadHeaders)
        );
        let big = vec![b'a'; 70 * 1024];
        assert_eq!(
            parse_in_chunks(&big, 4096).err(),
            Some(MultipartError::NoFirstBoundary)
        );
        assert!(Parser::new("").is_none());
        // Orthanc's: longer than RFC 2046's 70, accepted
        let orthanc = "7c209ca2-c5a5-405a-a320-3f45f487057f-7c209ca2-c5a5-405a-a320-3f45f487057f";
        assert!(Parser::new(orthanc).is_some());
        assert!(Parser::new(&"b".repeat(MAX_BOUNDARY + 1)).is_none());
    }
}
