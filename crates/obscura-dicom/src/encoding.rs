//! How a data set is encoded on the wire, and which transfer syntaxes Obscura
//! can carry through unchanged.

/// Byte-level encoding of a data set: VR explicit or implicit, byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Encoding {
    /// Whether each element header carries its VR.
    pub explicit_vr: bool,
    /// Whether numbers are little endian.
    pub little_endian: bool,
}

impl Encoding {
    /// Implicit VR Little Endian, the DICOM default.
    pub const IMPLICIT_LE: Encoding = Encoding {
        explicit_vr: false,
        little_endian: true,
    };
    /// Explicit VR Little Endian.
    pub const EXPLICIT_LE: Encoding = Encoding {
        explicit_vr: true,
        little_endian: true,
    };
    /// Explicit VR Big Endian (retired, still found in archives).
    pub const EXPLICIT_BE: Encoding = Encoding {
        explicit_vr: true,
        little_endian: false,
    };

    /// Read a 16-bit number in this byte order.
    pub fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        if self.little_endian {
            u16::from_le_bytes(a)
        } else {
            u16::from_be_bytes(a)
        }
    }

    /// Read a 32-bit number in this byte order.
    pub fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        if self.little_endian {
            u32::from_le_bytes(a)
        } else {
            u32::from_be_bytes(a)
        }
    }

    /// Append a 16-bit number in this byte order.
    pub fn put_u16(self, out: &mut Vec<u8>, v: u16) {
        out.extend_from_slice(&if self.little_endian {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        });
    }

    /// Append an element header: tag, VR (explicit VR only) and length, with
    /// the 32-bit length form for the VRs that have one.
    pub fn put_header(self, out: &mut Vec<u8>, tag: (u16, u16), vr: [u8; 2], len: u32) {
        self.put_u16(out, tag.0);
        self.put_u16(out, tag.1);
        if !self.explicit_vr {
            self.put_u32(out, len);
        } else if has_long_length(vr) {
            out.extend_from_slice(&vr);
            out.extend_from_slice(&[0, 0]);
            self.put_u32(out, len);
        } else {
            out.extend_from_slice(&vr);
            self.put_u16(out, len as u16);
        }
    }

    /// Append a 32-bit number in this byte order.
    pub fn put_u32(self, out: &mut Vec<u8>, v: u32) {
        out.extend_from_slice(&if self.little_endian {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        });
    }
}

/// How a walk reads a data set and how it writes it back: the same, except
/// when a file's bytes disagree with its declared transfer syntax.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Coding {
    /// The encoding the bytes are in.
    pub read: Encoding,
    /// The encoding to write (the declared transfer syntax's).
    pub write: Encoding,
}

/// Implicit VR Little Endian.
pub const IMPLICIT_VR_LE: &str = "1.2.840.10008.1.2";
/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// Deflated Explicit VR Little Endian.
pub const DEFLATED_EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1.99";
/// Explicit VR Big Endian.
pub const EXPLICIT_VR_BE: &str = "1.2.840.10008.1.2.2";
/// JPIP Referenced Deflate: its data set is deflated too.
pub const JPIP_REFERENCED_DEFLATE: &str = "1.2.840.10008.1.2.4.95";
/// JPIP HTJ2K Referenced Deflate: its data set is deflated too.
pub const JPIP_HTJ2K_REFERENCED_DEFLATE: &str = "1.2.840.10008.1.2.4.205";

/// How the data set of a transfer syntax is laid out, as far as reading and
/// writing the header is concerned. Pixel data is never touched, so every
/// encapsulated syntax (JPEG, JPEG-LS, JPEG 2000, RLE, video, ...) is simply
/// explicit VR little endian here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetLayout {
    /// The element encoding.
    pub encoding: Encoding,
    /// Whether the data set stream after the file meta is deflated.
    pub deflated: bool,
}

/// The layout of a transfer syntax's data set. Unknown UIDs in the DICOM
/// root are assumed encapsulated (explicit VR LE); unknown private ones are
/// rejected, since their encoding cannot be known.
pub fn layout_of(ts_uid: &str) -> Option<DatasetLayout> {
    let encoding = match ts_uid {
        IMPLICIT_VR_LE => Encoding::IMPLICIT_LE,
        EXPLICIT_VR_BE => Encoding::EXPLICIT_BE,
        _ if ts_uid.starts_with("1.2.840.10008.1.2.") => Encoding::EXPLICIT_LE,
        _ => return None,
    };
    let deflated = matches!(
        ts_uid,
        DEFLATED_EXPLICIT_VR_LE | JPIP_REFERENCED_DEFLATE | JPIP_HTJ2K_REFERENCED_DEFLATE
    );
    Some(DatasetLayout { encoding, deflated })
}

/// VRs whose explicit header has a reserved field and a 32-bit length.
pub fn has_long_length(vr: [u8; 2]) -> bool {
    matches!(
        &vr,
        b"OB"
            | b"OD"
            | b"OF"
            | b"OL"
            | b"OV"
            | b"OW"
            | b"SQ"
            | b"SV"
            | b"UC"
            | b"UN"
            | b"UR"
            | b"UT"
            | b"UV"
    )
}

/// Whether two bytes name a VR of the standard.
pub fn is_known_vr(vr: [u8; 2]) -> bool {
    const VRS: [&[u8; 2]; 34] = [
        b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FD", b"FL", b"IS", b"LO", b"LT", b"OB",
        b"OD", b"OF", b"OL", b"OV", b"OW", b"PN", b"SH", b"SL", b"SQ", b"SS", b"ST", b"SV", b"TM",
        b"UC", b"UI", b"UL", b"UN", b"UR", b"US", b"UT", b"UV",
    ];
    VRS.iter().any(|v| **v == vr)
}

/// The dicom-rs transfer syntax that reads and writes a data set header with
/// this encoding (pixel data aside, which Obscura copies raw).
pub fn header_syntax(enc: Encoding) -> dicom_encoding::TransferSyntax {
    use dicom_transfer_syntax_registry::entries;
    match (enc.explicit_vr, enc.little_endian) {
        (false, _) => entries::IMPLICIT_VR_LITTLE_ENDIAN.erased(),
        (true, true) => entries::EXPLICIT_VR_LITTLE_ENDIAN.erased(),
        (true, false) => entries::EXPLICIT_VR_BIG_ENDIAN.erased(),
    }
}
