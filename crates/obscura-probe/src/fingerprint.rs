//! What the peer's A-ASSOCIATE-AC says about its implementation: the
//! Implementation Class UID and Version Name, matched against known toolkits
//! with an honest confidence.

use serde::Serialize;

/// The implementation behind an endpoint, as far as its A-ASSOCIATE-AC tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fingerprint {
    /// Where the identity comes from: "A-ASSOCIATE-AC", "/system", "401 realm", "Server header".
    pub source: &'static str,
    /// Implementation Class UID announced by the peer (DICOM only).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub implementation_class_uid: String,
    /// Implementation Version Name announced by the peer (may be empty).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub implementation_version_name: String,
    /// The product (or toolkit) name alone, for the CVE table, e.g. "DCMTK", "Orthanc".
    #[serde(skip_serializing_if = "String::is_empty")]
    pub product: String,
    /// Its version, when announced, e.g. "3.6.7".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The toolkit or product identified, with its version when announced.
    pub identified: String,
    /// "high" (class UID and version name agree), "medium" (one of them), "none".
    pub confidence: &'static str,
    /// What the identification cannot tell.
    pub note: String,
}

/// (class UID root, version name prefix, name, note)
const KNOWN: &[(&str, &str, &str, &str)] = &[
    (
        "1.2.276.0.7230010.3",
        "OFFIS_DCMTK_",
        "DCMTK",
        "DCMTK's tools (storescp, dcmqrscp) and products built on DCMTK, Orthanc among them, \
         announce the same class UID and version name: the toolkit is identified, not the product",
    ),
    (
        "1.2.826.0.1.3680043.9.3811.",
        "PYNETDICOM_",
        "pynetdicom",
        "applications built on pynetdicom announce its class UID",
    ),
    (
        "1.2.40.0.13.1.",
        "dcm4che",
        "dcm4che",
        "dcm4chee archives and dcm4che tools share these values",
    ),
    (
        "1.3.6.1.4.1.30071.8",
        "fo-dicom",
        "fo-dicom",
        "applications built on fo-dicom announce its class UID",
    ),
];

/// Identifies the implementation from the two A-ASSOCIATE-AC values.
pub fn fingerprint(class_uid: &str, version_name: &str) -> Fingerprint {
    let mut f = Fingerprint {
        source: "A-ASSOCIATE-AC",
        product: String::new(),
        version: None,
        implementation_class_uid: class_uid.to_string(),
        implementation_version_name: version_name.to_string(),
        identified: "unknown".into(),
        confidence: "none",
        note: "class UID not in the table".into(),
    };
    if class_uid == obscura_dimse::IMPLEMENTATION_CLASS_UID {
        f.identified = if version_name.is_empty() {
            "Obscura".into()
        } else {
            version_name.to_string()
        };
        f.confidence = if version_name.starts_with("OBSCURA") {
            "high"
        } else {
            "medium"
        };
        f.note = "Obscura's own class UID".into();
        return f;
    }
    for (root, prefix, name, note) in KNOWN {
        let uid = class_uid.starts_with(root);
        let ver = version_name.starts_with(prefix);
        if !uid && !ver {
            continue;
        }
        let version = version_name
            .strip_prefix(prefix)
            .map(|v| v.trim_start_matches(['-', '_', ' ']))
            .filter(|v| !v.is_empty());
        f.product = name.to_string();
        f.version = match (version, *name) {
            (Some(v), "DCMTK") if v.len() == 3 && v.bytes().all(|b| b.is_ascii_digit()) => {
                Some(format!("{}.{}.{}", &v[0..1], &v[1..2], &v[2..3]))
            }
            (v, _) => v.map(str::to_string),
        };
        f.identified = match &f.version {
            Some(v) => format!("{name} {v}"),
            None => name.to_string(),
        };
        f.confidence = if uid && ver { "high" } else { "medium" };
        f.note = note.to_string();
        if uid != ver {
            f.note.push_str("; class UID and version name disagree");
        }
        return f;
    }
    f
}

/// Identifies an HTTP server: Orthanc's `/system` (high), its 401 realm
/// (medium), the `Server` header (low).
pub fn http_fingerprint(h: &crate::HttpSummary) -> Option<Fingerprint> {
    let base = |source, identified: String, product: &str, confidence, note: &str| Fingerprint {
        source,
        implementation_class_uid: String::new(),
        implementation_version_name: String::new(),
        identified,
        product: product.to_string(),
        version: None,
        confidence,
        note: note.to_string(),
    };
    if let Some(o) = &h.orthanc {
        let mut f = base(
            "/system",
            format!("Orthanc {}", o.version),
            "Orthanc",
            "high",
            "Orthanc's REST API answered /system with its version",
        );
        f.version = Some(o.version.clone());
        return Some(f);
    }
    if let Some(realm) = &h.auth_realm {
        if realm == "Orthanc Secure Area" {
            return Some(base(
                "401 realm",
                "Orthanc".into(),
                "Orthanc",
                "medium",
                "the HTTP Basic realm Orthanc uses; the version is not disclosed",
            ));
        }
        if realm == "obscura" {
            return Some(base(
                "401 realm",
                "Obscura".into(),
                "Obscura",
                "medium",
                "the bearer-token realm of obscura serve's DICOMweb; the version is not disclosed",
            ));
        }
    }
    let server = h.server_header.as_deref()?;
    let lower = server.to_ascii_lowercase();
    let product = [
        "orthanc",
        "dcm4chee",
        "nginx",
        "apache",
        "microsoft-iis",
        "jetty",
    ]
    .into_iter()
    .find(|p| lower.contains(p));
    let mut f = base(
        "Server header",
        server.to_string(),
        product.unwrap_or(""),
        if product.is_some() { "low" } else { "none" },
        "the Server header is set by the site and often by a reverse proxy in front of the product",
    );
    if let Some(p) = product {
        let name = match p {
            "orthanc" => "Orthanc",
            "dcm4chee" => "dcm4chee",
            "nginx" => "nginx",
            "apache" => "Apache",
            "microsoft-iis" => "Microsoft-IIS",
            _ => "Jetty",
        };
        f.product = name.to_string();
        f.version = server
            .split_once('/')
            .map(|(_, v)| v.split_whitespace().next().unwrap_or("").to_string())
            .filter(|v| v.starts_with(|c: char| c.is_ascii_digit()));
    }
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dcmtk_and_unknown() {
        let f = fingerprint("1.2.276.0.7230010.3.0.3.6.7", "OFFIS_DCMTK_367");
        assert_eq!(f.identified, "DCMTK 3.6.7");
        assert_eq!(f.confidence, "high");
        assert!(f.note.contains("Orthanc"));
        let f = fingerprint("1.2.276.0.7230010.3.0.3.6.7", "MYPACS");
        assert_eq!(f.confidence, "medium");
        let f = fingerprint("1.2.3.4", "");
        assert_eq!((f.identified.as_str(), f.confidence), ("unknown", "none"));
        let f = fingerprint(
            obscura_dimse::IMPLEMENTATION_CLASS_UID,
            obscura_dimse::IMPLEMENTATION_VERSION_NAME,
        );
        assert_eq!(f.confidence, "high");
    }
}
