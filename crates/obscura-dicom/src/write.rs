//! Writing a parsed input back out as a Part 10 file: zero preamble, new file
//! meta, the (changed) data set, and the original pixel bytes copied raw.

use crate::encoding::{has_long_length, header_syntax, Encoding};
use crate::error::WriteError;
use crate::meta::write_part10_header;
use crate::read::DicomInput;
use crate::source::Source;
use dicom_core::header::Header as _;
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use std::io::Write;

impl<S: Source> DicomInput<S> {
    /// Write `dataset` (this input's data set after changes) as a Part 10 file
    /// in this input's transfer syntax, with this input's pixel data. Returns
    /// the bytes written.
    pub fn write_part10(
        &self,
        dataset: &InMemDicomObject,
        out: &mut dyn Write,
    ) -> Result<u64, WriteError> {
        let sop_class = string_of(dataset, tags::SOP_CLASS_UID)
            .or_else(|| self.meta.media_storage_sop_class_uid.clone())
            .unwrap_or_default();
        let sop_instance = string_of(dataset, tags::SOP_INSTANCE_UID).unwrap_or_default();
        let mut head = Vec::with_capacity(4096);
        write_part10_header(
            &mut head,
            &sop_class,
            &sop_instance,
            &self.transfer_syntax_uid,
        )?;
        let split = self.pixel.map(|p| p.tag).unwrap_or(Tag(0xFFFF, 0xFFFF));
        let before = InMemDicomObject::from_element_iter(
            dataset.iter().filter(|e| e.tag() < split).cloned(),
        );
        let after = InMemDicomObject::from_element_iter(
            dataset.iter().filter(|e| e.tag() > split).cloned(),
        );
        if self.deflated {
            let mut plain = Vec::new();
            self.write_dataset(&before, &after, &mut plain)?;
            let mut enc = flate2::write::DeflateEncoder::new(head, flate2::Compression::default());
            enc.write_all(&plain)?;
            let bytes = enc.finish()?;
            out.write_all(&bytes)?;
            return Ok(bytes.len() as u64);
        }
        let mut counter = CountingWriter {
            inner: out,
            count: 0,
        };
        counter.write_all(&head)?;
        self.write_dataset(&before, &after, &mut counter)?;
        Ok(counter.count)
    }

    fn write_dataset(
        &self,
        before: &InMemDicomObject,
        after: &InMemDicomObject,
        out: &mut dyn Write,
    ) -> Result<(), WriteError> {
        let ts = header_syntax(self.encoding);
        let mut buf = Vec::with_capacity(8192);
        before
            .write_dataset_with_ts(&mut buf, &ts)
            .map_err(|e| WriteError::Encode(e.to_string()))?;
        if let Some(p) = self.pixel {
            put_element_header(
                &mut buf,
                self.encoding,
                p.tag,
                p.vr,
                p.declared_len.unwrap_or(u32::MAX),
            );
            out.write_all(&buf)?;
            buf.clear();
            match &self.inflated {
                Some(stream) => stream
                    .as_slice()
                    .copy_to(p.value_offset, p.value_bytes, out)?,
                None => self.source.copy_to(p.value_offset, p.value_bytes, out)?,
            }
        }
        after
            .write_dataset_with_ts(&mut buf, &ts)
            .map_err(|e| WriteError::Encode(e.to_string()))?;
        out.write_all(&buf)?;
        Ok(())
    }
}

fn put_element_header(out: &mut Vec<u8>, enc: Encoding, tag: Tag, vr: [u8; 2], len: u32) {
    enc.put_u16(out, tag.0);
    enc.put_u16(out, tag.1);
    if enc.explicit_vr {
        out.extend_from_slice(&vr);
        if has_long_length(vr) {
            out.extend_from_slice(&[0, 0]);
            enc.put_u32(out, len);
        } else {
            enc.put_u16(out, len as u16);
        }
    } else {
        enc.put_u32(out, len);
    }
}

fn string_of(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = obj.element_opt(tag).ok()??.to_str().ok()?;
    let s = s.trim_end_matches(['\0', ' ']).trim().to_string();
    (!s.is_empty()).then_some(s)
}

struct CountingWriter<'a> {
    inner: &'a mut dyn Write,
    count: u64,
}

impl Write for CountingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}
