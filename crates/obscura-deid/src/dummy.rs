//! Non-identifying values that are valid for each VR: what action D writes.

use dicom_core::value::{PrimitiveValue, C};
use dicom_core::VR;

/// The dummy text written in place of identifying text.
pub const DUMMY_TEXT: &str = "ANONYMIZED";

/// A valid, non-identifying value for `vr` (not for SQ or UI, which the
/// engine handles itself).
pub fn dummy_value(vr: VR) -> PrimitiveValue {
    use VR::*;
    match vr {
        DA => "19000101".into(),
        DT => "19000101000000".into(),
        TM => "000000".into(),
        AS => "000D".into(),
        DS | IS => "0".into(),
        AE | CS | LO | LT | PN | SH | ST | UC | UR | UT => DUMMY_TEXT.into(),
        US => PrimitiveValue::U16(C::from_elem(0, 1)),
        SS => PrimitiveValue::I16(C::from_elem(0, 1)),
        UL => PrimitiveValue::U32(C::from_elem(0, 1)),
        SL => PrimitiveValue::I32(C::from_elem(0, 1)),
        UV => PrimitiveValue::U64(C::from_elem(0, 1)),
        SV => PrimitiveValue::I64(C::from_elem(0, 1)),
        FL | OF => PrimitiveValue::F32(C::from_elem(0.0, 1)),
        FD | OD => PrimitiveValue::F64(C::from_elem(0.0, 1)),
        AT => PrimitiveValue::Tags(C::from_elem(dicom_core::Tag(0, 0), 1)),
        OB | OW | OL | OV | UN | UI | SQ => PrimitiveValue::U8(C::from_elem(0, 2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummies_fit_their_vr() {
        assert_eq!(dummy_value(VR::DA).to_str(), "19000101");
        assert!(dummy_value(VR::SH).to_str().len() <= 16);
        assert!(dummy_value(VR::AE).to_str().len() <= 16);
        assert_eq!(dummy_value(VR::US).to_str(), "0");
        assert_eq!(dummy_value(VR::AS).to_str().len(), 4);
    }
}
