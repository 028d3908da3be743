//! The DICOM JSON model (PS3.18 F.2): index attributes for QIDO-RS, and a
//! whole data set for WADO-RS metadata, its large binary values and pixel
//! data given as BulkDataURIs.

use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use obscura_dicom::charset::{decode_parsed, CharacterSets, Decoded};
use obscura_dicom::PixelSpan;
use obscura_vault::Attr;
use serde_json::{json, Map, Value as Json};

/// Binary values longer than this are BulkDataURIs, shorter ones InlineBinary.
pub const BULK_THRESHOLD: usize = 1024;

/// `GGGGEEEE`, as DICOM JSON keys tags.
pub fn tag_key(tag: Tag) -> String {
    format!("{:04X}{:04X}", tag.0, tag.1)
}

/// The VR of an index attribute.
pub fn attr_vr(attr: Attr) -> &'static str {
    match attr {
        Attr::PatientName | Attr::ReferringPhysicianName => "PN",
        Attr::PatientID
        | Attr::StudyDescription
        | Attr::SeriesDescription
        | Attr::ResidenceState => "LO",
        Attr::PatientBirthDate | Attr::StudyDate => "DA",
        Attr::StudyTime => "TM",
        Attr::PatientSex | Attr::ModalitiesInStudy | Attr::Modality => "CS",
        Attr::AccessionNumber | Attr::StudyID => "SH",
        Attr::SeriesNumber | Attr::InstanceNumber => "IS",
        Attr::StudyInstanceUID
        | Attr::SeriesInstanceUID
        | Attr::SOPInstanceUID
        | Attr::SOPClassUID
        | Attr::TransferSyntaxUID => "UI",
    }
}

/// One attribute of the index as a DICOM JSON element.
pub fn attr_element(attr: Attr, value: &str) -> Json {
    let vr = attr_vr(attr);
    let values: Vec<&str> = if attr == Attr::ModalitiesInStudy {
        value.split('\\').collect()
    } else {
        vec![value]
    };
    element(vr, &values)
}

/// An element of string values in `vr` (PN as person name objects, IS and
/// DS as numbers; empty values are null).
pub fn element(vr: &str, values: &[&str]) -> Json {
    let vals: Vec<Json> = values
        .iter()
        .map(|v| {
            let v = trim(vr, v);
            if v.is_empty() {
                return Json::Null;
            }
            match vr {
                "PN" => person_name(v),
                "IS" => v
                    .parse::<i64>()
                    .map(Json::from)
                    .unwrap_or_else(|_| Json::from(v)),
                "DS" => v
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Json::from)
                    .unwrap_or_else(|| Json::from(v)),
                _ => Json::from(v),
            }
        })
        .collect();
    if vals.iter().all(Json::is_null) {
        json!({ "vr": vr })
    } else {
        json!({ "vr": vr, "Value": vals })
    }
}

fn trim<'a>(vr: &str, v: &'a str) -> &'a str {
    match vr {
        // leading spaces are significant in these
        "UT" | "ST" | "LT" | "UR" => v.trim_end_matches([' ', '\0']),
        _ => v.trim_matches([' ', '\0']),
    }
}

fn person_name(v: &str) -> Json {
    let mut m = Map::new();
    for (i, group) in v.splitn(3, '=').enumerate() {
        if !group.is_empty() {
            let key = ["Alphabetic", "Ideographic", "Phonetic"][i];
            m.insert(key.to_string(), Json::from(group));
        }
    }
    Json::Object(m)
}

/// Where the BulkDataURIs of one instance point.
pub struct Bulk<'a> {
    /// The instance's URL (`.../studies/{s}/series/{s}/instances/{i}`).
    pub instance_url: &'a str,
}

/// A whole data set (header and top-level pixel data) as DICOM JSON.
pub fn dataset(ds: &InMemDicomObject, pixel: Option<&PixelSpan>, bulk: &Bulk<'_>) -> Json {
    let sets = charsets_of(ds, &CharacterSets::default(), true);
    let mut path = Vec::new();
    let (mut map, _) = object(ds, sets, bulk, &mut path);
    if let Some(p) = pixel {
        let vr = if p.declared_len.is_none() {
            "OB".to_string()
        } else {
            String::from_utf8_lossy(&p.vr).into_owned()
        };
        map.insert(
            tag_key(p.tag),
            json!({ "vr": vr, "BulkDataURI": format!("{}/bulkdata/{}", bulk.instance_url, tag_key(p.tag)) }),
        );
    }
    Json::Object(map)
}

fn charsets_of(ds: &InMemDicomObject, outer: &CharacterSets, top: bool) -> CharacterSets {
    let own = ds
        .element(tags::SPECIFIC_CHARACTER_SET)
        .ok()
        .and_then(|e| e.to_str().ok().map(|s| s.into_owned()));
    if top {
        CharacterSets::from_value(own.as_deref().unwrap_or(""))
    } else {
        outer.item(own.as_deref())
    }
}

/// One data set's elements (in tag order), and the character sets in force after it.
fn object(
    ds: &InMemDicomObject,
    mut sets: CharacterSets,
    bulk: &Bulk<'_>,
    path: &mut Vec<String>,
) -> (Map<String, Json>, CharacterSets) {
    let mut map = Map::new();
    for elem in ds {
        let tag = elem.header().tag;
        let vr = elem.header().vr();
        let vr_s = vr.to_string();
        path.push(tag_key(tag));
        let j = match elem.value() {
            Value::Sequence(seq) => {
                let mut items = Vec::new();
                for (i, item) in seq.items().iter().enumerate() {
                    path.push(i.to_string());
                    let inner = charsets_of(item, &sets, false);
                    let (m, end) = object(item, inner, bulk, path);
                    sets = sets.after_item(&end);
                    items.push(Json::Object(m));
                    path.pop();
                }
                if items.is_empty() {
                    json!({ "vr": "SQ" })
                } else {
                    json!({ "vr": "SQ", "Value": items })
                }
            }
            Value::PixelSequence(_) => json!({ "vr": vr_s, "BulkDataURI": bulk_uri(bulk, path) }),
            Value::Primitive(p) => primitive(vr, p, &sets, bulk, path),
        };
        path.pop();
        map.insert(tag_key(tag), j);
    }
    (map, sets)
}

fn bulk_uri(bulk: &Bulk<'_>, path: &[String]) -> String {
    format!("{}/bulkdata/{}", bulk.instance_url, path.join("/"))
}

fn primitive(
    vr: VR,
    p: &PrimitiveValue,
    sets: &CharacterSets,
    bulk: &Bulk<'_>,
    path: &[String],
) -> Json {
    let vr_s = vr.to_string();
    let nums = |v: Vec<Json>| {
        if v.is_empty() {
            json!({ "vr": vr_s })
        } else {
            json!({ "vr": vr_s, "Value": v })
        }
    };
    match vr {
        VR::OB | VR::OD | VR::OF | VR::OL | VR::OV | VR::OW | VR::UN => {
            let bytes = p.to_bytes();
            if bytes.is_empty() {
                json!({ "vr": vr_s })
            } else if bytes.len() > BULK_THRESHOLD {
                json!({ "vr": vr_s, "BulkDataURI": bulk_uri(bulk, path) })
            } else {
                json!({ "vr": vr_s, "InlineBinary": base64(&bytes) })
            }
        }
        VR::AT => match p {
            PrimitiveValue::Tags(t) => nums(t.iter().map(|t| Json::from(tag_key(*t))).collect()),
            _ => json!({ "vr": vr_s }),
        },
        VR::US | VR::SS | VR::UL | VR::SL | VR::UV | VR::SV | VR::FL | VR::FD => match p {
            PrimitiveValue::U16(v) => nums(v.iter().map(|x| Json::from(*x)).collect()),
            PrimitiveValue::I16(v) => nums(v.iter().map(|x| Json::from(*x)).collect()),
            PrimitiveValue::U32(v) => nums(v.iter().map(|x| Json::from(*x)).collect()),
            PrimitiveValue::I32(v) => nums(v.iter().map(|x| Json::from(*x)).collect()),
            PrimitiveValue::U64(v) => nums(v.iter().map(|x| Json::from(*x)).collect()),
            PrimitiveValue::I64(v) => nums(v.iter().map(|x| Json::from(*x)).collect()),
            PrimitiveValue::F32(v) => nums(v.iter().map(|x| Json::from(*x as f64)).collect()),
            PrimitiveValue::F64(v) => nums(v.iter().map(|x| Json::from(*x)).collect()),
            _ => json!({ "vr": vr_s }),
        },
        _ => {
            let raw = p.to_str();
            let text = match vr {
                VR::PN | VR::LO | VR::SH | VR::ST | VR::LT | VR::UT | VR::UC => {
                    match decode_parsed(&raw, sets) {
                        Decoded::Text(t) => t,
                        Decoded::Undecodable => raw.into_owned(),
                    }
                }
                _ => raw.into_owned(),
            };
            if matches!(vr, VR::ST | VR::LT | VR::UT | VR::UR) {
                element(vr_s, &[&text])
            } else {
                let values: Vec<&str> = text.split('\\').collect();
                element(vr_s, &values)
            }
        }
    }
}

/// Standard base64 with padding (RFC 4648).
pub fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (c[0] as u32) << 16
            | (*c.get(1).unwrap_or(&0) as u32) << 8
            | *c.get(2).unwrap_or(&0) as u32;
        out.push(A[(n >> 18) as usize & 63] as char);
        out.push(A[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            A[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            A[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// The element a bulk data path (`GGGGEEEE[/item/GGGGEEEE]...`) names.
pub fn find_bulk<'a>(
    ds: &'a InMemDicomObject,
    path: &[&str],
) -> Option<&'a Value<InMemDicomObject, Vec<u8>>> {
    let (first, rest) = path.split_first()?;
    let tag = parse_tag(first)?;
    let elem = ds.element(tag).ok()?;
    match rest {
        [] => Some(elem.value()),
        [item, more @ ..] => {
            let i: usize = item.parse().ok()?;
            let items = elem.value().items()?;
            find_bulk(items.get(i)?, more)
        }
    }
}

/// `GGGGEEEE` into a tag.
pub fn parse_tag(s: &str) -> Option<Tag> {
    if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let g = u16::from_str_radix(&s[..4], 16).ok()?;
    let e = u16::from_str_radix(&s[4..], 16).ok()?;
    Some(Tag(g, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue};

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn elements_by_vr() {
        assert_eq!(
            element("PN", &["Doe^John=ド^ジ"]),
            json!({"vr": "PN", "Value": [{"Alphabetic": "Doe^John", "Ideographic": "ド^ジ"}]})
        );
        assert_eq!(element("IS", &[" 12 "]), json!({"vr": "IS", "Value": [12]}));
        assert_eq!(
            element("DS", &["1.5", ""]),
            json!({"vr": "DS", "Value": [1.5, null]})
        );
        assert_eq!(element("LO", &[""]), json!({"vr": "LO"}));
        assert_eq!(
            attr_element(Attr::ModalitiesInStudy, "CT\\MR"),
            json!({"vr": "CS", "Value": ["CT", "MR"]})
        );
    }

    #[test]
    fn a_data_set_with_bulk_data() {
        let mut ds = InMemDicomObject::new_empty();
        ds.put(DataElement::new(
            tags::PATIENT_NAME,
            VR::PN,
            PrimitiveValue::from("Doe^Jane"),
        ));
        ds.put(DataElement::new(
            tags::ROWS,
            VR::US,
            PrimitiveValue::from(512u16),
        ));
        ds.put(DataElement::new(
            Tag(0x0009, 0x1001),
            VR::OB,
            PrimitiveValue::from(vec![1u8; 2000]),
        ));
        ds.put(DataElement::new(
            Tag(0x0009, 0x1002),
            VR::OB,
            PrimitiveValue::from(vec![1u8, 2, 3]),
        ));
        let j = dataset(
            &ds,
            None,
            &Bulk {
                instance_url: "http://x/i",
            },
        );
        assert_eq!(j["00100010"]["Value"][0]["Alphabetic"], "Doe^Jane");
        assert_eq!(j["00280010"]["Value"][0], 512);
        assert_eq!(j["00091001"]["BulkDataURI"], "http://x/i/bulkdata/00091001");
        assert_eq!(j["00091002"]["InlineBinary"], "AQID");
        assert!(find_bulk(&ds, &["00091001"]).is_some());
        assert!(find_bulk(&ds, &["00091003"]).is_none());
        assert!(find_bulk(&ds, &["../"]).is_none());
    }
}
