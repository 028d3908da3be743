//! Writing a parsed input back out as a Part 10 file: zero preamble, new file
//! meta, the (changed) data set, and the original pixel bytes copied raw.

use crate::encoding::{header_syntax, Encoding, EXPLICIT_VR_LE};
use crate::error::{redact, WriteError};
use crate::meta::write_part10_header;
use crate::read::{DicomInput, PixelSpan};
use crate::source::Source;
use dicom_core::header::Header as _;
use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use std::fs::File;
use std::io::{Read, Write};

/// An encoded output in three parts: everything before the pixel data
/// value, the pixel data value (still in the source), everything after.
#[derive(Debug, Clone)]
pub struct Parts {
    /// The file meta and the data set up to the pixel data's value.
    pub head: Vec<u8>,
    /// Where the pixel data's value lies in the source file (`None` for
    /// a deflated output: then `head` is the whole file).
    pub pixel: Option<PixelSpan>,
    /// What follows the pixel data (elements after it, rarely any).
    pub tail: Vec<u8>,
}

/// Pixel Data written in place of the source's: native samples.
pub struct NativePixels<'a> {
    /// OB (8-bit samples) or OW.
    pub vr: [u8; 2],
    /// Bytes of `samples`.
    pub len: u64,
    /// Every frame's samples, little endian, pixel-interleaved, read as
    /// they are written (a cine need not be held in memory).
    pub samples: &'a mut dyn Read,
}

/// What an output is encoded as: the source's syntax, or native.
struct Target<'a> {
    transfer_syntax_uid: &'a str,
    encoding: Encoding,
    deflated: bool,
    pixel: Option<PixelSpan>,
}

impl Parts {
    fn len(&self) -> u64 {
        (self.head.len() + self.tail.len()) as u64 + self.pixel.map_or(0, |p| p.value_bytes)
    }
}

impl<S: Source> DicomInput<S> {
    /// Write `dataset` (this input's data set after changes) as a Part 10 file
    /// in this input's transfer syntax, with this input's pixel data. Returns
    /// the bytes written.
    pub fn write_part10(
        &self,
        dataset: &InMemDicomObject,
        out: &mut dyn Write,
    ) -> Result<u64, WriteError> {
        let parts = self.encode_part10(dataset)?;
        out.write_all(&parts.head)?;
        if let Some(p) = parts.pixel {
            self.copy_pixel(p, |stream, offset, len| stream.copy_to(offset, len, out))?;
        }
        out.write_all(&parts.tail)?;
        Ok(parts.len())
    }

    /// [`write_part10`](Self::write_part10) into a file, copying the pixel
    /// data file-to-file in the kernel where the platform allows.
    pub fn write_part10_file(
        &self,
        dataset: &InMemDicomObject,
        out: &File,
    ) -> Result<u64, WriteError> {
        let parts = self.encode_part10(dataset)?;
        let mut w = out;
        w.write_all(&parts.head)?;
        if let Some(p) = parts.pixel {
            self.copy_pixel(p, |stream, offset, len| {
                stream.copy_to_file(offset, len, out)
            })?;
        }
        w.write_all(&parts.tail)?;
        Ok(parts.len())
    }

    /// Write `dataset` as a Part 10 file in Explicit VR Little Endian with
    /// `pixels` as its Pixel Data (native samples, changed by the caller)
    /// in place of the source's. Returns the bytes written.
    pub fn write_part10_native(
        &self,
        dataset: &InMemDicomObject,
        pixels: NativePixels<'_>,
        out: &mut dyn Write,
    ) -> Result<u64, WriteError> {
        let len = u32::try_from(pixels.len + pixels.len % 2)
            .map_err(|_| WriteError::Encode("native pixel data over 4 GiB".into()))?;
        let target = Target {
            transfer_syntax_uid: EXPLICIT_VR_LE,
            encoding: Encoding::EXPLICIT_LE,
            deflated: false,
            pixel: Some(PixelSpan {
                tag: tags::PIXEL_DATA,
                vr: pixels.vr,
                declared_len: Some(len),
                value_offset: 0,
                value_bytes: u64::from(len),
            }),
        };
        let parts = self.encode_as(dataset, &target)?;
        out.write_all(&parts.head)?;
        let copied = std::io::copy(&mut pixels.samples.take(pixels.len), out)?;
        if copied != pixels.len {
            return Err(WriteError::Encode(
                "native pixel data shorter than declared".into(),
            ));
        }
        if pixels.len % 2 == 1 {
            out.write_all(&[0])?;
        }
        out.write_all(&parts.tail)?;
        Ok(parts.len())
    }

    fn copy_pixel(
        &self,
        p: PixelSpan,
        copy: impl FnOnce(&dyn Source, u64, u64) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        copy(self.pixel_stream(), p.value_offset, p.value_bytes)
    }

    /// [`write_part10`](Self::write_part10) without writing: the file meta
    /// and the data set around the pixel data, whose value the caller
    /// copies from the source file (it lies in the file unless the output
    /// is deflated). A deflated output is encoded whole (pixel data
    /// included) and deflated in one buffer: dicom-rs's own deflate writer
    /// is ~60x slower.
    pub fn encode_part10(&self, dataset: &InMemDicomObject) -> Result<Parts, WriteError> {
        let target = Target {
            transfer_syntax_uid: &self.transfer_syntax_uid,
            encoding: self.encoding,
            deflated: self.deflated,
            pixel: self.pixel,
        };
        self.encode_as(dataset, &target)
    }

    /// [`encode_part10`](Self::encode_part10) into `target`'s transfer syntax, around its pixel data.
    fn encode_as(&self, dataset: &InMemDicomObject, target: &Target) -> Result<Parts, WriteError> {
        let sop_class = string_of(dataset, tags::SOP_CLASS_UID)
            .or_else(|| self.meta.media_storage_sop_class_uid.clone())
            .unwrap_or_default();
        let sop_instance = string_of(dataset, tags::SOP_INSTANCE_UID).unwrap_or_default();
        let mut head = Vec::with_capacity(16 * 1024);
        write_part10_header(
            &mut head,
            &sop_class,
            &sop_instance,
            target.transfer_syntax_uid,
        )?;
        let ts = header_syntax(target.encoding);
        let encode = |part: &InMemDicomObject, out: &mut Vec<u8>| {
            part.write_dataset_with_ts(out, &ts)
                .map_err(|e| WriteError::Encode(redact(&e.to_string())))
        };
        let mut body = Vec::with_capacity(16 * 1024);
        let mut tail = Vec::new();
        let split = target.pixel.map(|p| p.tag).unwrap_or(Tag(0xFFFF, 0xFFFF));
        if dataset.iter().last().is_some_and(|e| e.tag() > split) {
            // Rare (elements after the pixel data): encode the two sides apart.
            let side = |after: bool| {
                InMemDicomObject::from_element_iter(
                    dataset
                        .iter()
                        .filter(|e| (e.tag() > split) == after)
                        .cloned(),
                )
            };
            encode(&side(false), &mut body)?;
            encode(&side(true), &mut tail)?;
        } else {
            encode(dataset, &mut body)?;
        }
        if let Some(p) = target.pixel {
            target.encoding.put_header(
                &mut body,
                (p.tag.0, p.tag.1),
                p.vr,
                p.declared_len.unwrap_or(u32::MAX),
            );
        }
        if !target.deflated {
            head.extend_from_slice(&body);
            return Ok(Parts {
                head,
                pixel: target.pixel,
                tail,
            });
        }
        if let Some(p) = self.pixel {
            self.copy_pixel(p, |stream, offset, len| {
                stream.copy_to(offset, len, &mut body)
            })?;
        }
        body.extend_from_slice(&tail);
        let mut deflate = flate2::write::DeflateEncoder::new(head, flate2::Compression::default());
        deflate.write_all(&body)?;
        Ok(Parts {
            head: deflate.finish()?,
            pixel: None,
            tail: Vec::new(),
        })
    }
}

fn string_of(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let s = obj.get(tag)?.to_str().ok()?;
    let s = s.trim_end_matches(['\0', ' ']).trim().to_string();
    (!s.is_empty()).then_some(s)
}
