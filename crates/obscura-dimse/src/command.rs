//! DIMSE command sets (PS3.7 section 9.3 and Annex E): group 0000 elements
//! in implicit VR little endian, with CommandGroupLength first.

use crate::DimseError;

pub(crate) const AFFECTED_SOP_CLASS_UID: u16 = 0x0002;
pub(crate) const COMMAND_FIELD: u16 = 0x0100;
pub(crate) const MESSAGE_ID: u16 = 0x0110;
pub(crate) const MESSAGE_ID_BEING_RESPONDED_TO: u16 = 0x0120;
pub(crate) const PRIORITY: u16 = 0x0700;
pub(crate) const COMMAND_DATA_SET_TYPE: u16 = 0x0800;
pub(crate) const STATUS: u16 = 0x0900;
pub(crate) const AFFECTED_SOP_INSTANCE_UID: u16 = 0x1000;

pub(crate) const C_STORE_RQ: u16 = 0x0001;
pub(crate) const C_STORE_RSP: u16 = 0x8001;
pub(crate) const C_ECHO_RQ: u16 = 0x0030;
pub(crate) const C_ECHO_RSP: u16 = 0x8030;
pub(crate) const C_FIND_RQ: u16 = 0x0020;
pub(crate) const C_FIND_RSP: u16 = 0x8020;
pub(crate) const C_CANCEL_RQ: u16 = 0x0FFF;
pub(crate) const C_MOVE_RQ: u16 = 0x0021;
pub(crate) const C_MOVE_RSP: u16 = 0x8021;
pub(crate) const MOVE_DESTINATION: u16 = 0x0600;
/// Sub-operation counts of a C-MOVE-RSP: remaining, completed, failed, warning.
pub(crate) const SUB_OPERATIONS: [u16; 4] = [0x1020, 0x1021, 0x1022, 0x1023];

/// CommandDataSetType value meaning "no data set follows".
pub(crate) const NO_DATA_SET: u16 = 0x0101;

/// The largest command set accepted (real ones are a few hundred bytes).
pub(crate) const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// A command set: group 0000 elements by element number, values raw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Command {
    elements: Vec<(u16, Vec<u8>)>,
}

impl Command {
    fn set(&mut self, element: u16, value: Vec<u8>) -> &mut Self {
        match self.elements.binary_search_by_key(&element, |e| e.0) {
            Ok(i) => self.elements[i].1 = value,
            Err(i) => self.elements.insert(i, (element, value)),
        }
        self
    }

    fn set_u16(&mut self, element: u16, v: u16) -> &mut Self {
        self.set(element, v.to_le_bytes().to_vec())
    }

    fn set_uid(&mut self, element: u16, uid: &str) -> &mut Self {
        let mut v = uid.as_bytes().to_vec();
        if v.len() % 2 == 1 {
            v.push(0);
        }
        self.set(element, v)
    }

    fn raw(&self, element: u16) -> Option<&[u8]> {
        self.elements
            .binary_search_by_key(&element, |e| e.0)
            .ok()
            .map(|i| &self.elements[i].1[..])
    }

    /// A US element's value.
    pub(crate) fn u16(&self, element: u16) -> Option<u16> {
        match self.raw(element)? {
            [a, b] => Some(u16::from_le_bytes([*a, *b])),
            _ => None,
        }
    }

    /// A UI element's value, padding removed.
    pub(crate) fn uid(&self, element: u16) -> Option<String> {
        let s = std::str::from_utf8(self.raw(element)?).ok()?;
        let s = s.trim_end_matches(['\0', ' ']).trim_start();
        if s.is_empty() || s.len() > 64 || !s.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
            return None;
        }
        Some(s.to_string())
    }

    /// The CommandField.
    pub(crate) fn field(&self) -> Option<u16> {
        self.u16(COMMAND_FIELD)
    }

    /// Whether a data set follows.
    pub(crate) fn has_data_set(&self) -> bool {
        self.u16(COMMAND_DATA_SET_TYPE) != Some(NO_DATA_SET)
    }

    /// Encodes with a leading CommandGroupLength.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let body_len: usize = self
            .elements
            .iter()
            .filter(|e| e.0 != 0)
            .map(|e| 8 + e.1.len())
            .sum();
        let mut out = Vec::with_capacity(12 + body_len);
        out.extend_from_slice(&[0, 0, 0, 0, 4, 0, 0, 0]);
        out.extend_from_slice(&(body_len as u32).to_le_bytes());
        for (el, v) in self.elements.iter().filter(|e| e.0 != 0) {
            out.extend_from_slice(&0u16.to_le_bytes());
            out.extend_from_slice(&el.to_le_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
        out
    }

    /// Decodes a command set; every element must be of group 0000 and lie
    /// within the bytes given.
    pub(crate) fn decode(mut b: &[u8]) -> Result<Command, DimseError> {
        let mut c = Command::default();
        while !b.is_empty() {
            if b.len() < 8 {
                return Err(DimseError::Malformed("truncated command element".into()));
            }
            let group = u16::from_le_bytes([b[0], b[1]]);
            let element = u16::from_le_bytes([b[2], b[3]]);
            let len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]) as usize;
            if group != 0 {
                return Err(DimseError::Malformed(
                    "command element outside group 0000".into(),
                ));
            }
            if len > b.len() - 8 {
                return Err(DimseError::Malformed("command element length".into()));
            }
            c.set(element, b[8..8 + len].to_vec());
            b = &b[8 + len..];
        }
        if c.field().is_none() {
            return Err(DimseError::Malformed("command without CommandField".into()));
        }
        Ok(c)
    }

    /// C-ECHO-RQ.
    pub(crate) fn echo_rq(message_id: u16) -> Command {
        let mut c = Command::default();
        c.set_uid(AFFECTED_SOP_CLASS_UID, crate::VERIFICATION_SOP_CLASS)
            .set_u16(COMMAND_FIELD, C_ECHO_RQ)
            .set_u16(MESSAGE_ID, message_id)
            .set_u16(COMMAND_DATA_SET_TYPE, NO_DATA_SET);
        c
    }

    /// C-ECHO-RSP.
    pub(crate) fn echo_rsp(responding_to: u16, status: u16) -> Command {
        let mut c = Command::default();
        c.set_uid(AFFECTED_SOP_CLASS_UID, crate::VERIFICATION_SOP_CLASS)
            .set_u16(COMMAND_FIELD, C_ECHO_RSP)
            .set_u16(MESSAGE_ID_BEING_RESPONDED_TO, responding_to)
            .set_u16(COMMAND_DATA_SET_TYPE, NO_DATA_SET)
            .set_u16(STATUS, status);
        c
    }

    /// C-STORE-RQ (priority medium).
    pub(crate) fn store_rq(message_id: u16, sop_class: &str, sop_instance: &str) -> Command {
        let mut c = Command::default();
        c.set_uid(AFFECTED_SOP_CLASS_UID, sop_class)
            .set_u16(COMMAND_FIELD, C_STORE_RQ)
            .set_u16(MESSAGE_ID, message_id)
            .set_u16(PRIORITY, 0)
            .set_u16(COMMAND_DATA_SET_TYPE, 0x0000)
            .set_uid(AFFECTED_SOP_INSTANCE_UID, sop_instance);
        c
    }

    /// C-FIND-RQ (priority medium; an identifier follows).
    pub(crate) fn find_rq(message_id: u16, sop_class: &str) -> Command {
        let mut c = Command::default();
        c.set_uid(AFFECTED_SOP_CLASS_UID, sop_class)
            .set_u16(COMMAND_FIELD, C_FIND_RQ)
            .set_u16(MESSAGE_ID, message_id)
            .set_u16(PRIORITY, 0)
            .set_u16(COMMAND_DATA_SET_TYPE, 0x0000);
        c
    }

    /// C-MOVE-RQ (priority medium; an identifier follows) to `destination`.
    pub(crate) fn move_rq(message_id: u16, sop_class: &str, destination: &str) -> Command {
        let mut c = Command::find_rq(message_id, sop_class);
        let mut ae = destination.as_bytes().to_vec();
        if ae.len() % 2 == 1 {
            ae.push(b' ');
        }
        c.set_u16(COMMAND_FIELD, C_MOVE_RQ)
            .set(MOVE_DESTINATION, ae);
        c
    }

    /// C-CANCEL-RQ for the operation `responding_to` (PS3.7 9.3.2.3).
    pub(crate) fn cancel_rq(responding_to: u16) -> Command {
        let mut c = Command::default();
        c.set_u16(COMMAND_FIELD, C_CANCEL_RQ)
            .set_u16(MESSAGE_ID_BEING_RESPONDED_TO, responding_to)
            .set_u16(COMMAND_DATA_SET_TYPE, NO_DATA_SET);
        c
    }

    /// C-STORE-RSP.
    pub(crate) fn store_rsp(
        responding_to: u16,
        status: u16,
        sop_class: &str,
        sop_instance: &str,
    ) -> Command {
        let mut c = Command::default();
        c.set_uid(AFFECTED_SOP_CLASS_UID, sop_class)
            .set_u16(COMMAND_FIELD, C_STORE_RSP)
            .set_u16(MESSAGE_ID_BEING_RESPONDED_TO, responding_to)
            .set_u16(COMMAND_DATA_SET_TYPE, NO_DATA_SET)
            .set_u16(STATUS, status)
            .set_uid(AFFECTED_SOP_INSTANCE_UID, sop_instance);
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_rq_bytes_match_the_standard_layout() {
        let b = Command::echo_rq(7).encode();
        // (0000,0000) UL 4 = remaining length
        assert_eq!(&b[..8], &[0, 0, 0, 0, 4, 0, 0, 0]);
        let len = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) as usize;
        assert_eq!(len, b.len() - 12);
        // (0000,0002) UI "1.2.840.10008.1.1" padded to 18 bytes
        assert_eq!(&b[12..20], &[0, 0, 2, 0, 18, 0, 0, 0]);
        assert_eq!(&b[20..38], b"1.2.840.10008.1.1\0");
        let c = Command::decode(&b).unwrap();
        assert_eq!(c.field(), Some(C_ECHO_RQ));
        assert_eq!(c.u16(MESSAGE_ID), Some(7));
        assert!(!c.has_data_set());
        assert_eq!(
            c.uid(AFFECTED_SOP_CLASS_UID).as_deref(),
            Some("1.2.840.10008.1.1")
        );
    }

    #[test]
    fn store_round_trip() {
        let c = Command::store_rq(3, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4");
        let d = Command::decode(&c.encode()).unwrap();
        assert_eq!(d.encode(), c.encode());
        assert!(d.has_data_set());
        assert_eq!(d.uid(AFFECTED_SOP_INSTANCE_UID).as_deref(), Some("1.2.3.4"));
        let r = Command::store_rsp(3, 0xA700, "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4");
        let d = Command::decode(&r.encode()).unwrap();
        assert_eq!(d.u16(STATUS), Some(0xA700));
        assert_eq!(d.u16(MESSAGE_ID_BEING_RESPONDED_TO), Some(3));
    }

    #[test]
    fn find_and_cancel() {
        let c =
            Command::decode(&Command::find_rq(5, "1.2.840.10008.5.1.4.1.2.2.1").encode()).unwrap();
        assert_eq!(c.field(), Some(C_FIND_RQ));
        assert!(c.has_data_set());
        let c = Command::decode(&Command::cancel_rq(5).encode()).unwrap();
        assert_eq!(c.field(), Some(C_CANCEL_RQ));
        assert_eq!(c.u16(MESSAGE_ID_BEING_RESPONDED_TO), Some(5));
        assert!(!c.has_data_set());
    }

    #[test]
    fn malformed_commands() {
        assert!(Command::decode(&[0, 0, 0, 1]).is_err());
        assert!(Command::decode(&[0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF]).is_err());
        assert!(Command::decode(&[8, 0, 0, 1, 0, 0, 0, 0]).is_err());
        assert!(Command::decode(&[]).is_err());
    }
}
