//! De-identified views (issue 11): the one module that knows pseudonymous
//! UIDs. A grant with `view = deidentified:PROFILE` sees every study it
//! covers through the engine (`obscura-deid`) run on the fly with that
//! profile and a key of the grant's own; nothing de-identified is stored.
//!
//! **Pseudonyms.** The key of grant `g` in tenant `t` is derived from the
//! tenant's key (`Vault::tenant_secret(t, "web-view/" + g)`): two grants'
//! pseudonyms cannot be linked, a master key rotation keeps them, a
//! tenant's shredding ends them. A UID `u` is seen as the engine's keyed
//! pseudonym `2.25.<UUIDv8 of HMAC(key, u)>` — deterministic, so every
//! route, every process and every restart shows the same one.
//!
//! **The way back.** A request names pseudonyms; [`Lens`] maps them back
//! to the tenant's UIDs before the gate and the handlers see the request,
//! so nothing downstream knows of views. Pseudonyms are not reversible by
//! themselves: each grant keeps, in memory, the pseudonyms it has derived
//! (`pseudonym → original`), filled whenever a response shows one and, on
//! a miss, by deriving them again over what the grant may reach: its listed
//! studies (or the tenant's studies, at most once per [`SWEEP_EVERY`]),
//! then the series and instances of the study at hand (and, for write-back,
//! every UID in one header per series). A pseudonym that maps to nothing,
//! or to a study seen through another grant, is answered as a study that
//! does not exist; an original UID sent under a view maps to nothing.
//! Searching by identifying attributes under a view is refused (the
//! originals would answer).

use crate::json::attr_vr;
use crate::{check_uid, ApiError, Web};
use dicom_core::header::Header as _;
use dicom_core::value::{PrimitiveValue, Value};
use dicom_core::{DataElement, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use obscura_access::{Access, Grant, Scope, View};
use obscura_deid::{burned_in_risk, DeidOption, Deidentifier, Profile, Pseudonymizer, SecretKey};
use obscura_dicom::Parts;
use obscura_vault::{Attr, Attributes, Level, Query, TenantId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A whole-tenant grant's studies are derived again at most this often.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Pseudonyms a grant remembers before starting over (each is derived again on demand).
const REMEMBERED: usize = 1 << 20;
/// What an unresolvable UID of a query becomes: a UID no study has.
const NO_MATCH: &str = "2.25.0";
/// Bytes of de-identified headers all views keep in memory, at most
/// (then they are all dropped and encoded again on demand).
const HEADERS_KEPT: usize = 64 << 20;
/// A view unused this long is dropped, with its pseudonyms and headers
/// (a revoked or expired grant's view is never used again).
const IDLE: Duration = Duration::from_secs(10);

/// The profile a view names: `basic`, `basic+OPTION+...`, or a profile
/// file's absolute path. `retain-uids` is refused: a view maps every UID.
pub fn profile(spec: &str) -> Result<Profile, String> {
    let profile = if spec.starts_with('/') {
        let text = std::fs::read_to_string(spec)
            .map_err(|e| format!("cannot read the view's profile file: {e}"))?;
        Profile::from_toml(&text).map_err(|e| format!("the view's profile file: {e}"))?
    } else {
        let mut names = spec.split('+');
        if names.next() != Some("basic") {
            return Err("a view's profile is basic[+OPTION...] or a profile file's path".into());
        }
        let options = names
            .map(|n| n.parse::<DeidOption>().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Profile::basic()
            .add_options(options)
            .map_err(|e| e.to_string())?
    };
    if profile.has(DeidOption::RetainUids) {
        return Err("a de-identified view maps every UID: retain-uids is not allowed".into());
    }
    if profile.has(DeidOption::CleanPixelData) {
        return Err(
            "clean-pixel-data is not done by views yet: pixels that may carry burned-in text are withheld"
                .into(),
        );
    }
    Ok(profile)
}

/// Why an instance is not shown through a view (its pixels may carry
/// burned-in identity, or the engine cannot make it safe).
#[derive(Debug)]
pub struct Withheld;

impl From<Withheld> for ApiError {
    fn from(_: Withheld) -> ApiError {
        ApiError::NotFound
    }
}

/// One grant's view: its engine, and the pseudonyms it has derived.
pub struct GrantView {
    /// Its key in [`Views`].
    id: String,
    engine: Deidentifier,
    uids: Pseudonymizer,
    back: Mutex<HashMap<String, String>>,
    swept: Mutex<Option<Instant>>,
}

impl GrantView {
    fn new(id: String, profile: Profile, key: SecretKey) -> GrantView {
        GrantView {
            id,
            engine: Deidentifier::new(profile, Pseudonymizer::new(key.clone())),
            uids: Pseudonymizer::new(key),
            back: Mutex::new(HashMap::new()),
            swept: Mutex::new(None),
        }
    }

    fn remember(&self, pairs: impl IntoIterator<Item = (String, String)>) {
        let mut back = self.back.lock().unwrap_or_else(|p| p.into_inner());
        if back.len() > REMEMBERED {
            back.clear();
        }
        back.extend(pairs);
    }

    fn original(&self, pseudonym: &str) -> Option<String> {
        self.back
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(pseudonym)
            .cloned()
    }

    /// The pseudonym of `uid` (remembered, to map it back).
    pub fn uid(&self, uid: &str) -> String {
        let p = self.uids.uid(uid);
        self.remember([(p.clone(), uid.to_string())]);
        p
    }

    fn learn<'a>(&self, uids: impl IntoIterator<Item = &'a str>) {
        let pairs: Vec<(String, String)> = uids
            .into_iter()
            .map(|u| (self.uids.uid(u), u.to_string()))
            .collect();
        self.remember(pairs);
    }

    /// A stored header as this view shows it; `pixels`: whether the
    /// instance's pixels are to be shown too (withheld when they may
    /// carry burned-in identity).
    pub fn dataset(
        &self,
        ds: &InMemDicomObject,
        has_pixels: bool,
        pixels: bool,
    ) -> Result<InMemDicomObject, Withheld> {
        if pixels && !self.shows_pixels(ds, has_pixels) {
            return Err(Withheld);
        }
        let d = self.engine.deidentify(ds.clone()).map_err(|_| Withheld)?;
        self.remember(d.uids.into_iter().map(|(o, p)| (p, o)));
        Ok(d.object)
    }

    /// Whether the pixels of an instance with header `ds` are shown: not
    /// when they may carry burned-in identity (the batch's rule).
    pub fn shows_pixels(&self, ds: &InMemDicomObject, has_pixels: bool) -> bool {
        burned_in_risk(ds, has_pixels).is_none()
    }

    /// Index attributes (a QIDO result) as this view shows them: the same
    /// engine over the same values as the instances' headers.
    pub fn attributes(&self, attrs: &Attributes) -> Attributes {
        let mut ds = InMemDicomObject::new_empty();
        ds.put(DataElement::new(
            tags::SPECIFIC_CHARACTER_SET,
            VR::CS,
            PrimitiveValue::from("ISO_IR 192"),
        ));
        for (a, v) in attrs.iter() {
            if matches!(a, Attr::TransferSyntaxUID | Attr::ModalitiesInStudy) {
                continue;
            }
            let (g, e) = a.tag();
            let vr = attr_vr(a).parse::<VR>().unwrap_or(VR::LO);
            ds.put(DataElement::new(Tag(g, e), vr, PrimitiveValue::from(v)));
        }
        let mut out = match self.dataset(&ds, false, false) {
            Ok(d) => Attributes::from_dataset(&d),
            Err(Withheld) => Attributes::new(),
        };
        for a in [Attr::TransferSyntaxUID, Attr::ModalitiesInStudy] {
            if let Some(v) = attrs.get(a) {
                out.set(a, v);
            }
        }
        out
    }
}

/// Every grant's view, built on first use and dropped when unused for
/// [`IDLE`]; and the instances' headers as the views show them, encoded
/// (memory only, at most [`HEADERS_KEPT`] bytes), so a view's instance is
/// read and de-identified once: later its pixel data alone is read.
#[derive(Default)]
pub struct Views {
    built: Mutex<Built>,
}

/// What [`Views`] keeps.
#[derive(Default)]
struct Built {
    views: HashMap<String, (Arc<GrantView>, Instant)>,
    /// (view id, SOP Instance UID) → the instance as that view shows it.
    headers: HashMap<(String, String), Arc<Parts>>,
    /// Bytes in `headers`.
    kept: usize,
    pruned: Option<Instant>,
}

impl Built {
    /// Drop the views unused for [`IDLE`], and their headers.
    fn prune(&mut self, now: Instant) {
        if self.pruned.is_some_and(|t| now - t < IDLE) {
            return;
        }
        self.pruned = Some(now);
        self.views.retain(|_, (_, used)| now - *used < IDLE);
        let views = &self.views;
        self.headers.retain(|(id, _), _| views.contains_key(id));
        self.kept = self.headers.values().map(|p| size_of(p)).sum();
    }
}

fn size_of(p: &Parts) -> usize {
    p.head.len() + p.tail.len() + 128
}

impl Views {
    /// The view of `grant` (in `tenant`), or `None` for an original view.
    pub fn of(
        &self,
        web: &Web,
        tenant: &TenantId,
        grant: &Grant,
    ) -> Result<Option<Arc<GrantView>>, ApiError> {
        let View::Deidentified { profile: spec } = &grant.grant.view else {
            return Ok(None);
        };
        let id = format!("{}\0{}\0{spec}", tenant.as_str(), grant.id);
        let now = Instant::now();
        {
            let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
            built.prune(now);
            if let Some((v, used)) = built.views.get_mut(&id) {
                *used = now;
                return Ok(Some(Arc::clone(v)));
            }
        }
        let p = profile(spec).map_err(|e| {
            ApiError::Internal(format!("grant {}: its view's profile: {e}", grant.id))
        })?;
        let key = web
            .vault
            .tenant_secret(tenant, &format!("web-view/{}", grant.id))?;
        let v = Arc::new(GrantView::new(id.clone(), p, SecretKey::from_bytes(key)));
        self.built
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .views
            .insert(id, (Arc::clone(&v), now));
        Ok(Some(v))
    }

    /// Instance `sop` as view `v` shows it, pixels included (their value
    /// still in the stored object): kept, or read with `read` (its header,
    /// de-identified and encoded) and kept. `Err(NotFound)`: withheld.
    pub fn instance(
        &self,
        v: &GrantView,
        sop: &str,
        read: impl FnOnce() -> Result<Parts, ApiError>,
    ) -> Result<Arc<Parts>, ApiError> {
        let key = (v.id.clone(), sop.to_string());
        if let Some(p) = self
            .built
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .headers
            .get(&key)
        {
            return Ok(Arc::clone(p));
        }
        let parts = Arc::new(read()?);
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        built.kept += size_of(&parts);
        if built.kept > HEADERS_KEPT {
            built.headers.clear();
            built.kept = size_of(&parts);
        }
        // two requests may have read the same instance at once: count it once
        if let Some(old) = built.headers.insert(key, Arc::clone(&parts)) {
            built.kept -= size_of(&old);
        }
        Ok(parts)
    }
}

/// How one principal's request sees its tenant: the views of its grants,
/// and the way back from their pseudonyms.
pub struct Lens<'a> {
    web: &'a Web,
    access: &'a Access,
    tenant: &'a TenantId,
}

/// The UID attributes of QIDO keys, by keyword or tag.
const UID_KEYS: [(&str, &str, Attr); 3] = [
    ("StudyInstanceUID", "0020000D", Attr::StudyInstanceUID),
    ("SeriesInstanceUID", "0020000E", Attr::SeriesInstanceUID),
    ("SOPInstanceUID", "00080018", Attr::SOPInstanceUID),
];

/// Attributes a search may match on under a view (they identify no one).
const SAFE_KEYS: [Attr; 5] = [
    Attr::Modality,
    Attr::ModalitiesInStudy,
    Attr::SOPClassUID,
    Attr::SeriesNumber,
    Attr::InstanceNumber,
];

impl<'a> Lens<'a> {
    /// The lens of a principal's `access` in `tenant`.
    pub fn new(web: &'a Web, access: &'a Access, tenant: &'a TenantId) -> Lens<'a> {
        Lens {
            web,
            access,
            tenant,
        }
    }

    /// Whether any of its grants de-identifies.
    pub fn active(&self) -> bool {
        self.access.deidentified().next().is_some()
    }

    /// The view `study` (a tenant's UID) is seen through; `None`: originals.
    pub fn view(&self, study: &str) -> Result<Option<Arc<GrantView>>, ApiError> {
        match self.access.viewing(study) {
            Some(g) => self.web.views.of(self.web, self.tenant, g),
            None => Ok(None),
        }
    }

    /// The tenant's study a request's `uid` names: a pseudonym mapped back,
    /// or a study seen as itself; `None` when it names nothing visible.
    pub fn study(&self, uid: &str) -> Result<Option<String>, ApiError> {
        if let Some(s) = self.study_from(uid, false)? {
            return Ok(Some(s));
        }
        match self.access.viewing(uid) {
            Some(g) if g.grant.view == View::Original => return Ok(Some(uid.to_string())),
            None if self.access.is_owner() => return Ok(Some(uid.to_string())),
            _ => {}
        }
        self.study_from(uid, true)
    }

    fn study_from(&self, uid: &str, sweep: bool) -> Result<Option<String>, ApiError> {
        for g in self.access.deidentified() {
            let Some(v) = self.web.views.of(self.web, self.tenant, g)? else {
                continue;
            };
            if sweep {
                self.sweep_grant(g, &v)?;
            }
            if let Some(s) = v.original(uid) {
                if self.access.viewing(&s).is_some_and(|h| h.id == g.id) {
                    return Ok(Some(s));
                }
            }
        }
        Ok(None)
    }

    /// Derive the pseudonyms of the studies `g` may reach.
    fn sweep_grant(&self, g: &Grant, v: &GrantView) -> Result<(), ApiError> {
        match &g.grant.scope {
            Scope::Studies(set) => v.learn(set.iter().map(String::as_str)),
            // the whole tenant, a label or a query: the tenant's studies (the
            // grant's own are kept by `study_from`)
            _ => {
                {
                    let mut last = v.swept.lock().unwrap_or_else(|p| p.into_inner());
                    if last.is_some_and(|t| t.elapsed() < SWEEP_EVERY) {
                        return Ok(());
                    }
                    *last = Some(Instant::now());
                }
                let found = self
                    .web
                    .vault
                    .search(self.tenant, &Query::new(Level::Study))?;
                v.learn(found.iter().filter_map(|a| a.get(Attr::StudyInstanceUID)));
            }
        }
        Ok(())
    }

    /// A series or instance UID of `study` (a tenant's UID) as the tenant
    /// has it; `None` when it names nothing of that study's view.
    pub fn within(&self, study: &str, uid: &str) -> Result<Option<String>, ApiError> {
        let Some(v) = self.view(study)? else {
            return Ok(Some(uid.to_string()));
        };
        if let Some(u) = v.original(uid) {
            return Ok(Some(u));
        }
        let q = Query::new(Level::Instance).with(Attr::StudyInstanceUID, study);
        let found = self.web.vault.search(self.tenant, &q)?;
        v.learn(found.iter().flat_map(|a| {
            [Attr::SeriesInstanceUID, Attr::SOPInstanceUID]
                .into_iter()
                .filter_map(|k| a.get(k))
        }));
        Ok(v.original(uid))
    }

    /// Map a request's path and UID query keys back to the tenant's UIDs.
    /// `Err(NotFound)`: a path UID names nothing visible (answered exactly
    /// as a study that does not exist); a query key's unknown UID matches
    /// nothing. Identifying query keys are refused under a view.
    pub fn request_uri(&self, path: &str, query: Option<&str>) -> Result<String, ApiError> {
        let mut segs: Vec<String> = path.split('/').map(str::to_string).collect();
        let mut study = None;
        if segs.len() > 2 && segs[1] == "studies" && check_uid(&segs[2]).is_ok() {
            let s = self.study(&segs[2])?.ok_or(ApiError::NotFound)?;
            segs[2] = s.clone();
            for i in [4, 6] {
                let named = segs
                    .get(i - 1)
                    .is_some_and(|k| k == "series" || k == "instances");
                if named && segs.get(i).is_some_and(|u| check_uid(u).is_ok()) {
                    segs[i] = self.within(&s, &segs[i])?.ok_or(ApiError::NotFound)?;
                }
            }
            study = Some(s);
        }
        let mut uri = segs.join("/");
        if let Some(q) = query {
            uri.push('?');
            uri.push_str(&self.query(q, study.as_deref())?);
        }
        Ok(uri)
    }

    fn query(&self, query: &str, study: Option<&str>) -> Result<String, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| ApiError::BadRequest("malformed query string".into()))?;
        // the study a series or instance key is resolved in
        let mut context = study.map(str::to_string);
        let mut out = Vec::with_capacity(pairs.len());
        for (name, value) in pairs {
            let uid_key = UID_KEYS
                .iter()
                .find(|(k, t, _)| name == *k || name.eq_ignore_ascii_case(t));
            let value = match uid_key {
                Some((_, _, attr)) if !value.is_empty() => {
                    let mut mapped = Vec::new();
                    for u in value.split(['\\', ',']) {
                        let m = match attr {
                            Attr::StudyInstanceUID => self.study(u)?,
                            _ => match &context {
                                Some(s) => self.within(s, u)?,
                                None => self.remembered(u),
                            },
                        };
                        if *attr == Attr::StudyInstanceUID {
                            context = context.or(m.clone());
                        }
                        mapped.push(m.unwrap_or_else(|| NO_MATCH.to_string()));
                    }
                    mapped.join("\\")
                }
                Some(_) => value,
                None => {
                    if let Some(a) = crate::qido::attr_named(&name) {
                        if !SAFE_KEYS.contains(&a) && !value.is_empty() {
                            return Err(ApiError::BadRequest(format!(
                                "{a} cannot be matched under a de-identified view"
                            )));
                        }
                    }
                    value
                }
            };
            out.push((name, value));
        }
        serde_urlencoded::to_string(&out)
            .map_err(|_| ApiError::BadRequest("malformed query string".into()))
    }

    /// A series or instance pseudonym of any of the grants' views, as far
    /// as they remember it (a search without a study names it).
    fn remembered(&self, uid: &str) -> Option<String> {
        self.access.deidentified().find_map(|g| {
            let v = self.web.views.of(self.web, self.tenant, g).ok()??;
            v.original(uid)
        })
    }

    /// Every UID in one header per series of `study`, learned by its view
    /// (write-back maps Frame of Reference and other references with them).
    pub fn learn_headers(&self, study: &str, v: &GrantView) -> Result<(), ApiError> {
        let q = Query::new(Level::Instance).with(Attr::StudyInstanceUID, study);
        let found = self.web.vault.search(self.tenant, &q)?;
        let mut seen = std::collections::BTreeSet::new();
        for a in &found {
            let (Some(series), Some(sop)) =
                (a.get(Attr::SeriesInstanceUID), a.get(Attr::SOPInstanceUID))
            else {
                continue;
            };
            v.learn([series, sop]);
            if seen.insert(series.to_string()) {
                let input = crate::wado::read_header(&self.web.vault, self.tenant, sop)
                    .map_err(ApiError::Internal)?;
                let mut uids = Vec::new();
                collect_uids(&input.dataset, &mut uids);
                v.learn(uids.iter().map(String::as_str));
            }
        }
        Ok(())
    }
}

/// The study-level attributes a written-back instance takes from its
/// tenant's study (what the view showed of them was pseudonymous).
const STUDY_ATTRS: [Attr; 10] = [
    Attr::PatientName,
    Attr::PatientID,
    Attr::PatientBirthDate,
    Attr::PatientSex,
    Attr::AccessionNumber,
    Attr::StudyDate,
    Attr::StudyTime,
    Attr::ReferringPhysicianName,
    Attr::StudyDescription,
    Attr::StudyID,
];

impl Lens<'_> {
    /// Write-back: an instance a principal made on `v`'s pseudonyms, mapped
    /// into the tenant's `study`: every UID the view showed becomes the
    /// tenant's again (study, series, instances, frames of reference and
    /// any reference to them; the instance's own new UIDs stay), the
    /// patient and study attributes are the study's, the de-identification
    /// marks go, and a Contributing Equipment item records `principal`.
    pub fn write_back(
        &self,
        v: &GrantView,
        ds: &InMemDicomObject,
        study: &str,
        principal: &str,
    ) -> Result<InMemDicomObject, ApiError> {
        self.learn_headers(study, v)?;
        let mut out = map_uids(ds, v);
        let q = Query::new(Level::Study).with(Attr::StudyInstanceUID, study);
        let record = self
            .web
            .vault
            .search(self.tenant, &q)?
            .into_iter()
            .next()
            .ok_or(ApiError::NotFound)?;
        let mut utf8 = false;
        for a in STUDY_ATTRS {
            let (g, e) = a.tag();
            match record.get(a) {
                Some(val) => {
                    utf8 |= !val.is_ascii();
                    let vr = attr_vr(a).parse::<VR>().unwrap_or(VR::LO);
                    out.put(DataElement::new(Tag(g, e), vr, PrimitiveValue::from(val)));
                }
                None => {
                    out.remove_element(Tag(g, e));
                }
            }
        }
        if utf8 {
            out.put(DataElement::new(
                tags::SPECIFIC_CHARACTER_SET,
                VR::CS,
                PrimitiveValue::from("ISO_IR 192"),
            ));
        }
        for t in [
            tags::PATIENT_IDENTITY_REMOVED,
            tags::DEIDENTIFICATION_METHOD,
            tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
            tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
        ] {
            out.remove_element(t);
        }
        let mut item = InMemDicomObject::new_empty();
        item.put(DataElement::new(
            tags::MANUFACTURER,
            VR::LO,
            PrimitiveValue::from("Obscura write-back"),
        ));
        let principal: String = principal.chars().take(64).collect();
        item.put(DataElement::new(
            tags::CONTRIBUTION_DESCRIPTION,
            VR::ST,
            PrimitiveValue::from(format!(
                "written back by {principal} through a de-identified view"
            )),
        ));
        let mut items: Vec<InMemDicomObject> = match out.get(tags::CONTRIBUTING_EQUIPMENT_SEQUENCE)
        {
            Some(e) => e.items().map(<[_]>::to_vec).unwrap_or_default(),
            None => Vec::new(),
        };
        items.push(item);
        out.put(DataElement::new(
            tags::CONTRIBUTING_EQUIPMENT_SEQUENCE,
            VR::SQ,
            dicom_core::value::DataSetSequence::from(items),
        ));
        Ok(out)
    }
}

/// `ds` with every UI value `v` knows as a pseudonym replaced by its original.
fn map_uids(ds: &InMemDicomObject, v: &GrantView) -> InMemDicomObject {
    let mut out = InMemDicomObject::new_empty();
    for e in ds.iter() {
        let mapped = match e.value() {
            Value::Sequence(s) => {
                let items: Vec<InMemDicomObject> =
                    s.items().iter().map(|i| map_uids(i, v)).collect();
                DataElement::new(
                    e.tag(),
                    VR::SQ,
                    dicom_core::value::DataSetSequence::from(items),
                )
            }
            Value::Primitive(p) if e.vr() == VR::UI => {
                let uids: Vec<String> = p
                    .to_multi_str()
                    .iter()
                    .map(|u| {
                        let u = u.trim_end_matches(['\0', ' ']);
                        v.original(u).unwrap_or_else(|| u.to_string())
                    })
                    .collect();
                DataElement::new(e.tag(), VR::UI, PrimitiveValue::Strs(uids.into()))
            }
            _ => e.clone(),
        };
        out.put(mapped);
    }
    out
}

/// Every UI value of a data set, at any depth (the standard's own aside).
pub fn collect_uids(ds: &InMemDicomObject, out: &mut Vec<String>) {
    for e in ds.iter() {
        match e.value() {
            Value::Sequence(s) => s.items().iter().for_each(|i| collect_uids(i, out)),
            Value::Primitive(p) if e.vr() == VR::UI => {
                for u in p.to_multi_str().iter() {
                    let u = u.trim_end_matches(['\0', ' ']);
                    if !u.is_empty() && !obscura_deid::pseudonym::is_standard_uid(u) {
                        out.push(u.to_string());
                    }
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_profiles() {
        assert!(profile("basic").is_ok());
        assert!(profile("basic+retain-device-identity").is_ok());
        assert!(profile("basic+retain-uids").is_err());
        assert!(profile("basic+clean-pixel-data").is_err());
        assert!(profile("basic+nonsense").is_err());
        assert!(profile("strict").is_err());
        assert!(profile("/nonexistent/profile.toml").is_err());
    }

    #[test]
    fn headers_are_kept_per_view_bounded_and_dropped_with_an_idle_view() {
        let views = Views::default();
        let key = || SecretKey::from_bytes([7; 32]);
        let (a, b) = (
            GrantView::new("a".into(), Profile::basic(), key()),
            GrantView::new("b".into(), Profile::basic(), key()),
        );
        let now = Instant::now();
        for v in [&a, &b] {
            let g = Arc::new(GrantView::new(v.id.clone(), Profile::basic(), key()));
            views
                .built
                .lock()
                .unwrap()
                .views
                .insert(v.id.clone(), (g, now));
        }
        let reads = std::cell::Cell::new(0);
        let read = |n: usize| {
            reads.set(reads.get() + 1);
            Ok(Parts {
                head: vec![1; n],
                pixel: None,
                tail: Vec::new(),
            })
        };
        views.instance(&a, "1.2.3", || read(10)).unwrap();
        views.instance(&a, "1.2.3", || read(10)).unwrap();
        assert_eq!(reads.get(), 1, "kept");
        views.instance(&b, "1.2.3", || read(10)).unwrap();
        assert_eq!(reads.get(), 2, "each view its own");
        let withheld = views.instance(&a, "1.2.4", || Err(ApiError::NotFound));
        assert!(matches!(withheld, Err(ApiError::NotFound)));
        assert_eq!(
            views.built.lock().unwrap().headers.len(),
            2,
            "withheld is not kept"
        );
        // over the bound: everything is dropped but the newest
        views.instance(&a, "1.2.5", || read(HEADERS_KEPT)).unwrap();
        assert_eq!(views.built.lock().unwrap().headers.len(), 1);
        // a view unused for IDLE goes, with its headers
        let mut built = views.built.lock().unwrap();
        built.views.get_mut("b").unwrap().1 = now + IDLE;
        built.prune(now + IDLE + Duration::from_secs(1));
        assert!(built.views.contains_key("b") && !built.views.contains_key("a"));
        assert!(built.headers.is_empty() && built.kept == 0);
    }

    #[test]
    fn attributes_are_seen_through_the_engine() {
        let v = GrantView::new("a".into(), Profile::basic(), SecretKey::from_bytes([7; 32]));
        let mut a = Attributes::new();
        a.set(Attr::PatientName, "DOE^JANE");
        a.set(Attr::PatientID, "MRN-12345");
        a.set(Attr::StudyInstanceUID, "1.2.3.4");
        a.set(Attr::ModalitiesInStudy, "CT\\PT");
        let out = v.attributes(&a);
        let st = out.get(Attr::StudyInstanceUID).unwrap();
        assert!(st.starts_with("2.25.") && st != "1.2.3.4");
        assert_eq!(v.original(st).as_deref(), Some("1.2.3.4"));
        assert_eq!(out.get(Attr::ModalitiesInStudy), Some("CT\\PT"));
        let shown: Vec<&str> = out.iter().map(|(_, v)| v).collect();
        let shown = shown.join("|");
        assert!(
            !shown.contains("DOE") && !shown.contains("12345"),
            "{shown}"
        );
        let other = GrantView::new("b".into(), Profile::basic(), SecretKey::from_bytes([8; 32]));
        assert_ne!(other.uid("1.2.3.4"), v.uid("1.2.3.4"), "grants unlinkable");
    }
}
