//! Decoding stored frames: native samples directly, encapsulated ones through
//! dicom-rs's codecs (RLE, JPEG, JPEG-LS, JPEG 2000), one frame at a time and
//! only the frames asked for.

use crate::bits;
use crate::error::PixelError;
use crate::frame::{Frame, Samples};
use crate::frames::{self, Runs};
use crate::info::{ImageInfo, Photometric};
use crate::jpeg;
use crate::rle;
use dicom_encoding::adapters::{PixelDataObject, RawPixelData};
use dicom_encoding::transfer_syntax::Codec;
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;
use obscura_dicom::{DicomInput, FileSource, SeekSource, Source};
use std::borrow::Cow;
use std::io::{Read, Seek};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

/// Native transfer syntaxes (little endian; deflated ones are read from the
/// inflated stream).
const NATIVE_LE: &[&str] = &[
    "1.2.840.10008.1.2",
    "1.2.840.10008.1.2.1",
    "1.2.840.10008.1.2.1.99",
];
/// Explicit VR Big Endian (retired, still found).
const NATIVE_BE: &str = "1.2.840.10008.1.2.2";
/// JPEG transfer syntaxes (baseline, extended, lossless), decoded by
/// [`jpeg`] rather than dicom-rs's adapter, which converts colour whatever
/// the header says.
const JPEG: &[&str] = &[
    "1.2.840.10008.1.2.4.50",
    "1.2.840.10008.1.2.4.51",
    "1.2.840.10008.1.2.4.57",
    "1.2.840.10008.1.2.4.70",
];
/// RLE Lossless, decoded by [`rle`] for every sample width.
const RLE: &str = "1.2.840.10008.1.2.5";
/// Bytes of a stored object kept in memory while its header is read.
const HEADER_KEEP: u64 = 64 << 20;

/// Bounds on what decoding may allocate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The largest frame decoded, in bytes (decoded, or as stored).
    pub max_frame_bytes: u64,
}

impl Default for DecodeLimits {
    /// 256 MiB: a 8192 × 8192 16-bit colour frame fits.
    fn default() -> Self {
        DecodeLimits {
            max_frame_bytes: 256 << 20,
        }
    }
}

/// How the frames of an object are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Storage {
    /// Native samples, little or big endian; `swapped_bytes`: 8-bit samples
    /// in 16-bit big-endian words (OW), each pair swapped.
    Native {
        big_endian: bool,
        swapped_bytes: bool,
    },
    /// Encapsulated in a codec's bit stream.
    Encapsulated,
}

/// An object opened for decoding: its header in memory, where its frames
/// lie, and the source they are read from when asked.
pub struct Decoder<S: Source> {
    input: DicomInput<S>,
    info: ImageInfo,
    storage: Storage,
    runs: Vec<Runs>,
    limits: DecodeLimits,
}

impl Decoder<FileSource> {
    /// Open a file.
    pub fn open_path(path: &Path, limits: DecodeLimits) -> Result<Self, PixelError> {
        let source = FileSource::new(std::fs::File::open(path)?)?;
        Decoder::new(
            DicomInput::read(source, obscura_dicom::Limits::default())?,
            limits,
        )
    }
}

impl<R: Read + Seek> Decoder<SeekSource<R>> {
    /// Open an object of `len` bytes read through `reader` (a stored
    /// instance: only the header and the frames decoded are read).
    pub fn open_reader(reader: R, len: u64, limits: DecodeLimits) -> Result<Self, PixelError> {
        let source = SeekSource::new(reader, len, HEADER_KEEP);
        Decoder::new(
            DicomInput::read(source, obscura_dicom::Limits::default())?,
            limits,
        )
    }
}

impl<S: Source> Decoder<S> {
    /// Prepare to decode an object already read by obscura-dicom.
    pub fn new(input: DicomInput<S>, limits: DecodeLimits) -> Result<Self, PixelError> {
        let px = input.pixel.ok_or(PixelError::NoPixelData)?;
        if px.tag != dicom_dictionary_std::tags::PIXEL_DATA {
            return Err(PixelError::Unsupported("float pixel data".into()));
        }
        let info = ImageInfo::from_dataset(&input.dataset)?;
        let ts = input.transfer_syntax_uid.as_str();
        let storage = if NATIVE_LE.contains(&ts) {
            Storage::Native {
                big_endian: false,
                swapped_bytes: false,
            }
        } else if ts == NATIVE_BE {
            Storage::Native {
                big_endian: true,
                swapped_bytes: info.bits_allocated == 8 && &px.vr == b"OW",
            }
        } else {
            Storage::Encapsulated
        };
        if info.bits_allocated == 1 && storage == Storage::Encapsulated {
            return Err(PixelError::Unsupported(
                "encapsulated 1-bit pixel data".into(),
            ));
        }
        let stream = input.pixel_stream();
        let runs = match (storage, px.declared_len) {
            (Storage::Native { .. }, Some(_)) if info.bits_allocated == 1 => {
                frames::packed(&px, info.samples(), info.frames)?
            }
            (Storage::Native { .. }, Some(_)) => {
                frames::native(&px, info.stored_frame_bytes(), info.frames)?
            }
            (Storage::Encapsulated, None) => frames::encapsulated(stream, &px, info.frames)?,
            _ => {
                return Err(PixelError::Malformed(
                    "pixel data encapsulation does not match the transfer syntax".into(),
                ))
            }
        };
        Ok(Decoder {
            info,
            storage,
            runs,
            limits,
            input,
        })
    }

    /// The Image Pixel attributes.
    pub fn info(&self) -> &ImageInfo {
        &self.info
    }

    /// The object's header (everything but the pixel data).
    pub fn dataset(&self) -> &InMemDicomObject {
        &self.input.dataset
    }

    /// The object read, given back (to write it out again).
    pub fn into_input(self) -> DicomInput<S> {
        self.input
    }

    /// The transfer syntax the frames are stored in.
    pub fn transfer_syntax(&self) -> &str {
        &self.input.transfer_syntax_uid
    }

    /// Whether the frames are encapsulated (decoding them costs a codec's
    /// work, not a read).
    pub fn encapsulated(&self) -> bool {
        self.storage == Storage::Encapsulated
    }

    /// Number of frames.
    pub fn frames(&self) -> u32 {
        self.runs.len() as u32
    }

    /// Where frame `n` (from 0) lies in the pixel stream, as (offset,
    /// length) runs: the stored bytes of a frame, for WADO-RS frames (of
    /// 1-bit data, the bytes its bits touch, shared with the frames beside
    /// it when its size is not a multiple of 8).
    pub fn frame_runs(&self, n: u32) -> Option<&Runs> {
        self.runs.get(n as usize)
    }

    /// The stored bytes of frame `n` (from 0), as they are in the object.
    pub fn stored_frame(&self, n: u32) -> Result<Vec<u8>, PixelError> {
        frames::read(
            self.input.pixel_stream(),
            self.runs(n)?,
            self.limits.max_frame_bytes,
        )
    }

    /// [`frame_runs`](Self::frame_runs), or the error that frame `n` is not there.
    fn runs(&self, n: u32) -> Result<&Runs, PixelError> {
        self.frame_runs(n).ok_or(PixelError::NoSuchFrame {
            number: n,
            frames: self.frames(),
        })
    }

    /// Decode frame `n` (from 0); nothing else is read.
    pub fn frame(&self, n: u32) -> Result<Frame, PixelError> {
        let size = self.info.frame_bytes();
        if size > self.limits.max_frame_bytes {
            return Err(PixelError::TooLarge {
                size,
                limit: self.limits.max_frame_bytes,
            });
        }
        match self.storage {
            // bit-packed bytes are read as they are in either byte order,
            // OB or OW (as pydicom reads them: no 16-bit words swapped)
            Storage::Native { .. } if self.info.bits_allocated == 1 => self.packed_frame(n),
            Storage::Native {
                big_endian,
                swapped_bytes: false,
            } => Ok(native(&self.info, self.stored_samples(n, big_endian)?)),
            Storage::Native {
                swapped_bytes: true,
                ..
            } => {
                let bytes = self.swapped_frame(n)?;
                let samples = Samples::from_bytes(bytes, self.info.bits_allocated, false);
                Ok(native(&self.info, samples))
            }
            Storage::Encapsulated => self.codec(self.stored_frame(n)?),
        }
    }

    /// The stored samples of native frame `n`, read straight into their
    /// buffer.
    fn stored_samples(&self, n: u32, big_endian: bool) -> Result<Samples, PixelError> {
        let runs = self.runs(n)?;
        let size = frames::size(runs, self.limits.max_frame_bytes)?;
        Samples::read(self.info.bits_allocated, big_endian, size, |buf| {
            frames::read_into(self.input.pixel_stream(), runs, buf)
        })
    }

    /// Frame `n` of 1-bit samples: its bits, from where they start in the
    /// bytes they touch, unpacked one a byte.
    fn packed_frame(&self, n: u32) -> Result<Frame, PixelError> {
        let bytes = self.stored_frame(n)?;
        let samples = self.info.samples();
        let offset = u64::from(n) * samples % 8;
        let unpacked = bits::unpack(&bytes, offset, samples as usize).ok_or_else(|| {
            PixelError::Malformed("1-bit pixel data shorter than its frames".into())
        })?;
        Ok(Frame {
            width: self.info.cols,
            height: self.info.rows,
            samples_per_pixel: 1,
            bits_stored: 1,
            signed: false,
            photometric: self.info.photometric,
            samples: Samples::U1(unpacked),
        })
    }

    /// Frame `n` of 8-bit samples in big-endian 16-bit words: the words
    /// around it read whole, each swapped.
    fn swapped_frame(&self, n: u32) -> Result<Vec<u8>, PixelError> {
        let no_frame = PixelError::NoSuchFrame {
            number: n,
            frames: self.frames(),
        };
        let &(off, len) = self.frame_runs(n).and_then(|r| r.first()).ok_or(no_frame)?;
        let px = self.input.pixel.ok_or(PixelError::NoPixelData)?;
        let rel = off - px.value_offset;
        let start = rel & !1;
        let end = (rel + len + 1).min(px.value_bytes) & !1;
        let run = vec![(px.value_offset + start, end - start)];
        let mut words = frames::read(self.input.pixel_stream(), &run, self.limits.max_frame_bytes)?;
        for pair in words.chunks_exact_mut(2) {
            pair.swap(0, 1);
        }
        let skip = (rel - start) as usize;
        words
            .get(skip..skip + len as usize)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| PixelError::Malformed("pixel data shorter than its frames".into()))
    }

    /// Decode every frame, one at a time, as they are iterated.
    pub fn all_frames(&self) -> impl Iterator<Item = Result<Frame, PixelError>> + '_ {
        (0..self.frames()).map(|n| self.frame(n))
    }

    /// Decode one encapsulated frame with the transfer syntax's codec.
    fn codec(&self, data: Vec<u8>) -> Result<Frame, PixelError> {
        let uid = self.transfer_syntax();
        let ts = TransferSyntaxRegistry
            .get(uid)
            .ok_or_else(|| PixelError::Unsupported(format!("transfer syntax {uid}")))?;
        let name = ts.name();
        let guarded = |f: &mut dyn FnMut() -> Result<(Vec<u8>, bool), PixelError>| {
            catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(PixelError::CodecPanic(name)))
        };
        let (mut out, to_rgb) = if JPEG.contains(&uid) {
            let rgb = self.info.photometric == Photometric::Rgb;
            guarded(&mut || Ok((jpeg::decode(&data, rgb)?, self.info.samples_per_pixel == 3)))?
        } else if uid == RLE {
            let info = &self.info;
            let pixels = info.rows as usize * info.cols as usize;
            let (spp, bytes) = (
                info.samples_per_pixel.into(),
                (info.bits_allocated / 8).into(),
            );
            guarded(&mut || Ok((rle::decode(&data, pixels, spp, bytes)?, false)))?
        } else {
            let Codec::EncapsulatedPixelData(Some(reader), _) = ts.codec() else {
                return Err(PixelError::Unsupported(format!("decoding {name}")));
            };
            let one = OneFrame {
                info: &self.info,
                ts: uid,
                data: &data,
            };
            guarded(&mut || {
                let mut out = Vec::new();
                reader
                    .decode_frame(&one, 0, &mut out)
                    .map_err(|e| PixelError::Codec {
                        codec: name,
                        reason: e.to_string(),
                    })?;
                // JPEG 2000 decoders undo their own colour transforms
                Ok((out, self.info.photometric == Photometric::YbrCodec))
            })?
        };
        let want = self.info.frame_bytes() as usize;
        if out.len() < want {
            return Err(PixelError::Codec {
                codec: name,
                reason: format!("{} bytes decoded, {want} expected", out.len()),
            });
        }
        out.truncate(want);
        let photometric = match self.info.photometric {
            _ if to_rgb => Photometric::Rgb,
            // the codec gives full-resolution components
            Photometric::YbrFull422 | Photometric::YbrCodec => Photometric::YbrFull,
            p => p,
        };
        Ok(Frame {
            width: self.info.cols,
            height: self.info.rows,
            samples_per_pixel: self.info.samples_per_pixel,
            bits_stored: self.info.bits_stored,
            signed: self.info.signed,
            photometric,
            samples: Samples::from_bytes(out, self.info.bits_allocated, false),
        })
    }
}

/// A native frame: planes interleaved, YBR_FULL_422 chroma repeated per pixel.
fn native(info: &ImageInfo, stored: Samples) -> Frame {
    let pixels = info.rows as usize * info.cols as usize;
    let (photometric, samples) = match info.photometric {
        Photometric::YbrFull422 => (Photometric::YbrFull, map(stored, Expand422)),
        p if info.planar => (p, map(stored, Interleave(pixels))),
        p => (p, stored),
    };
    Frame {
        width: info.cols,
        height: info.rows,
        samples_per_pixel: info.samples_per_pixel,
        bits_stored: info.bits_stored,
        signed: info.signed,
        photometric,
        samples,
    }
}

/// Apply a rearrangement to samples of any width.
fn map(s: Samples, f: impl Rearrange) -> Samples {
    match s {
        Samples::U1(v) => Samples::U1(f.apply(&v)),
        Samples::U8(v) => Samples::U8(f.apply(&v)),
        Samples::U16(v) => Samples::U16(f.apply(&v)),
        Samples::U32(v) => Samples::U32(f.apply(&v)),
    }
}

/// A rearrangement of samples, whatever their width.
trait Rearrange {
    fn apply<T: Copy>(&self, v: &[T]) -> Vec<T>;
}

/// Planar (RRR..GGG..BBB..) to interleaved (RGBRGB..), for frames of
/// this many pixels.
struct Interleave(usize);

impl Rearrange for Interleave {
    fn apply<T: Copy>(&self, v: &[T]) -> Vec<T> {
        let pixels = self.0;
        let mut out = Vec::with_capacity(pixels * 3);
        for i in 0..pixels {
            out.extend([v[i], v[pixels + i], v[2 * pixels + i]]);
        }
        out
    }
}

/// YBR_FULL_422 (Y1 Y2 Cb Cr per pair of pixels) to full YBR.
struct Expand422;

impl Rearrange for Expand422 {
    fn apply<T: Copy>(&self, v: &[T]) -> Vec<T> {
        let mut out = Vec::with_capacity(v.len() / 2 * 3);
        for q in v.chunks_exact(4) {
            out.extend([q[0], q[2], q[3], q[1], q[2], q[3]]);
        }
        out
    }
}

/// One frame's bit stream, as dicom-rs's codecs read it.
struct OneFrame<'a> {
    info: &'a ImageInfo,
    ts: &'a str,
    data: &'a [u8],
}

impl PixelDataObject for OneFrame<'_> {
    fn transfer_syntax_uid(&self) -> &str {
        self.ts
    }

    fn rows(&self) -> Option<u16> {
        Some(self.info.rows as u16)
    }

    fn cols(&self) -> Option<u16> {
        Some(self.info.cols as u16)
    }

    fn samples_per_pixel(&self) -> Option<u16> {
        Some(self.info.samples_per_pixel)
    }

    fn bits_allocated(&self) -> Option<u16> {
        Some(self.info.bits_allocated)
    }

    fn bits_stored(&self) -> Option<u16> {
        Some(self.info.bits_stored)
    }

    fn photometric_interpretation(&self) -> Option<&str> {
        Some(self.info.photometric.as_str())
    }

    fn number_of_frames(&self) -> Option<u32> {
        Some(1)
    }

    fn number_of_fragments(&self) -> Option<u32> {
        Some(1)
    }

    fn fragment(&self, fragment: usize) -> Option<Cow<'_, [u8]>> {
        (fragment == 0).then_some(Cow::Borrowed(self.data))
    }

    fn offset_table(&self) -> Option<Cow<'_, [u32]>> {
        None
    }

    fn raw_pixel_data(&self) -> Option<RawPixelData> {
        let mut fragments = dicom_core::value::C::new();
        fragments.push(self.data.to_vec());
        Some(RawPixelData {
            fragments,
            offset_table: dicom_core::value::C::new(),
        })
    }
}
