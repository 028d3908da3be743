//! The vault end to end: byte-exact round trips, two tenants, search,
//! shredding, tampering, and a scan of every raw byte under the data folder
//! for the samples' planted identities.

use obscura_vault::{
    Attr, Attributes, Level, MasterKey, Query, Stored, TenantId, Vault, VaultError,
};
use std::io::Read;
use std::path::{Path, PathBuf};

const MASTER: [u8; 32] = [0x42; 32];

fn samples() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples");
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if !matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("md") | Some("txt")
            ) {
                files.push(p);
            }
        }
    }
    files.sort();
    assert_eq!(files.len(), 8, "the samples' DICOM files");
    files
}

/// The values planted in the samples (samples/MANIFEST.md): none may appear
/// anywhere under the data folder.
const PLANTED: &[&str] = &[
    "DOE^JOHN",
    "ROE^JANE",
    "MRN12345",
    "MRN67890",
    "INS-778899",
    "NHS-9990001",
    "19610412",
    "19750923",
    "ACC20230314001",
    "20230314",
    "SMITH^MARY",
    "KHAN^SARA",
    "CT CHEST W CONTRAST",
    "Springfield",
    "Shelbyville",
    "1.2.826.0.1.3680043.10.1234",
];

fn read_all(vault: &Vault, tenant: &TenantId, uid: &str) -> obscura_vault::Result<Vec<u8>> {
    let mut r = vault.open_instance(tenant, uid)?;
    let mut out = Vec::new();
    r.read_to_end(&mut out)?;
    assert_eq!(out.len() as u64, r.len());
    Ok(out)
}

fn uid_of(path: &Path) -> String {
    let input = obscura_dicom::DicomInput::read(
        obscura_dicom::FileSource::new(std::fs::File::open(path).unwrap()).unwrap(),
        obscura_dicom::Limits::default(),
    )
    .unwrap();
    Attributes::from_dicom(&input)
        .get(Attr::SOPInstanceUID)
        .unwrap()
        .to_string()
}

/// Every file under `dir`, with its bytes.
fn raw_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p, bytes));
            }
        }
    }
    out
}

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Needles that must not appear under `dir`, with where they were found.
fn leaks(dir: &Path, needles: &[Vec<u8>]) -> Vec<String> {
    let files = raw_files(dir);
    assert!(
        files.iter().any(|(p, _)| p.ends_with("index.sqlite")),
        "the index is scanned"
    );
    let mut found = Vec::new();
    for (path, bytes) in &files {
        for n in needles {
            if find(bytes, n) {
                found.push(format!(
                    "{} bytes of a planted value in {}",
                    n.len(),
                    path.display()
                ));
            }
        }
    }
    found
}

#[test]
fn two_tenants_round_trip_search_shred_and_no_phi_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let vault = Vault::open(&data, MasterKey::from_bytes(MASTER)).unwrap();
    let a = vault.create_tenant("Provider A").unwrap();
    let b = vault.create_tenant("Provider B").unwrap();
    assert!(matches!(
        vault.create_tenant("Provider A"),
        Err(VaultError::TenantExists)
    ));
    let names: Vec<_> = vault
        .list_tenants()
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, ["Provider A", "Provider B"]);

    let files = samples();
    for t in [&a, &b] {
        for f in &files {
            assert!(matches!(
                vault.store_file(t, f).unwrap(),
                Stored::New { .. }
            ));
        }
        // Idempotent by SOP Instance UID: the data is not even read.
        let attrs = {
            let mut x = Attributes::new();
            x.set(Attr::StudyInstanceUID, "1.2");
            x.set(Attr::SeriesInstanceUID, "1.3");
            x.set(Attr::SOPInstanceUID, &uid_of(&files[0]));
            x
        };
        struct Unread;
        impl Read for Unread {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                panic!("a duplicate's data is not read")
            }
        }
        assert_eq!(vault.store(t, &attrs, Unread).unwrap(), Stored::Duplicate);
    }
    for t in [&a, &b] {
        for f in &files {
            assert_eq!(
                read_all(&vault, t, &uid_of(f)).unwrap(),
                std::fs::read(f).unwrap(),
                "byte-exact round trip of {}",
                f.display()
            );
        }
    }

    // Search: keyed-hash keys, decrypted filters, levels, paging.
    let studies = vault.search(&a, &Query::new(Level::Study)).unwrap();
    assert_eq!(studies.len(), 4, "CT, legacy CT, MR and US studies");
    let doe = vault
        .search(
            &a,
            &Query::new(Level::Study)
                .with(Attr::PatientID, "MRN12345")
                .with(Attr::AccessionNumber, "ACC20230314001"),
        )
        .unwrap();
    assert_eq!(doe.len(), 1);
    assert_eq!(doe[0].get(Attr::PatientName), Some("DOE^JOHN"));
    assert_eq!(doe[0].get(Attr::PatientBirthDate), Some("19610412"));
    assert_eq!(doe[0].get(Attr::ModalitiesInStudy), Some("CT"));
    let roe = vault
        .search(
            &a,
            &Query::new(Level::Study).with(Attr::PatientName, "roe*"),
        )
        .unwrap();
    assert_eq!(roe.len(), 2);
    let mr = vault
        .search(
            &a,
            &Query::new(Level::Study).with(Attr::ModalitiesInStudy, "RTSTRUCT"),
        )
        .unwrap();
    assert_eq!(mr.len(), 1);
    assert_eq!(mr[0].get(Attr::ModalitiesInStudy), Some("MR\\RTSTRUCT"));
    let dated = vault
        .search(
            &a,
            &Query::new(Level::Study).with(Attr::StudyDate, "20230301-20230331"),
        )
        .unwrap();
    assert_eq!(dated.len(), 1);
    assert_eq!(dated[0].get(Attr::StudyDate), Some("20230314"));
    let since_2022 = vault
        .search(
            &a,
            &Query::new(Level::Study).with(Attr::StudyDate, "20220101-"),
        )
        .unwrap();
    assert_eq!(since_2022.len(), 3, "all but the 2009 legacy study");
    let john = vault
        .search(
            &a,
            &Query::new(Level::Study).with(Attr::PatientName, "Doe^John"),
        )
        .unwrap();
    assert_eq!(john.len(), 2, "names match case-insensitively");
    let study_uid = doe[0].get(Attr::StudyInstanceUID).unwrap();
    let series = vault
        .search(
            &a,
            &Query::new(Level::Series).with(Attr::StudyInstanceUID, study_uid),
        )
        .unwrap();
    assert_eq!(series.len(), 1);
    let instances = vault
        .search(
            &a,
            &Query::new(Level::Instance).with(
                Attr::SeriesInstanceUID,
                series[0].get(Attr::SeriesInstanceUID).unwrap(),
            ),
        )
        .unwrap();
    assert_eq!(instances.len(), 3);
    assert!(instances
        .iter()
        .all(|i| i.get(Attr::PatientName) == Some("DOE^JOHN")));
    let mut page = Query::new(Level::Instance).with(Attr::PatientName, "*");
    page.limit = Some(2);
    page.offset = 1;
    let paged = vault.search(&a, &page).unwrap();
    let all = vault.search(&a, &Query::new(Level::Instance)).unwrap();
    assert_eq!(all.len(), 8);
    assert_eq!(paged, all[1..3].to_vec());
    let mut named = Query::new(Level::Instance).with(Attr::PatientName, "*e^j*");
    named.offset = 1;
    named.limit = Some(1);
    assert_eq!(vault.search(&a, &named).unwrap(), all[1..2].to_vec());
    assert!(matches!(
        vault.search(
            &a,
            &Query::new(Level::Study).with(Attr::SOPInstanceUID, "1.2")
        ),
        Err(VaultError::InvalidQuery(Attr::SOPInstanceUID, _))
    ));

    // Nothing identifying on disk, WAL included (the vault is still open).
    let needles: Vec<Vec<u8>> = PLANTED.iter().map(|s| s.as_bytes().to_vec()).collect();
    assert!(
        raw_files(&data)
            .iter()
            .any(|(p, _)| p.ends_with("index.sqlite-wal")),
        "the WAL is scanned too"
    );
    assert_eq!(leaks(&data, &needles), Vec::<String>::new());

    // Shred tenant A.
    let conn = rusqlite::Connection::open(data.join("index.sqlite")).unwrap();
    let (a_pk, wrapped_a): (i64, Vec<u8>) = conn
        .query_row(
            "SELECT pk, wrapped_key FROM tenants WHERE id = ?1",
            [a.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let count = |conn: &rusqlite::Connection, table: &str| -> i64 {
        conn.query_row(
            &format!("SELECT COUNT(*) FROM {table} WHERE tenant = ?1"),
            [a_pk],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(
        ["studies", "series", "instances"].map(|t| count(&conn, t)),
        [4, 5, 8]
    );
    let record_a: Vec<u8> = conn
        .query_row(
            "SELECT record FROM instances WHERE tenant = ?1 LIMIT 1",
            [a_pk],
            |r| r.get(0),
        )
        .unwrap();
    drop(conn);
    let a_objects = data.join("objects").join(a.as_str());
    assert!(a_objects.is_dir());
    vault.shred_tenant(&a).unwrap();
    assert!(matches!(
        vault.shred_tenant(&a),
        Err(VaultError::UnknownTenant)
    ));
    assert!(!a_objects.exists());
    for f in &files {
        assert!(matches!(
            read_all(&vault, &a, &uid_of(f)),
            Err(VaultError::UnknownTenant)
        ));
    }
    let conn = rusqlite::Connection::open(data.join("index.sqlite")).unwrap();
    for table in ["studies", "series", "instances"] {
        assert_eq!(
            count(&conn, table),
            0,
            "{table} rows of the shredded tenant"
        );
    }
    drop(conn);
    // The wrapped key and the sealed records are gone from every byte of
    // the data folder (deleted pages are zeroed, the WAL truncated).
    assert_eq!(leaks(&data, &[wrapped_a, record_a]), Vec::<String>::new());

    // Tenant B is untouched, also after reopening the vault.
    drop(vault);
    let vault = Vault::open(&data, MasterKey::from_bytes(MASTER)).unwrap();
    let tenants = vault.list_tenants().unwrap();
    assert_eq!(tenants.len(), 1);
    assert_eq!(tenants[0].id, b);
    for f in &files {
        assert_eq!(
            read_all(&vault, &b, &uid_of(f)).unwrap(),
            std::fs::read(f).unwrap()
        );
    }
    assert_eq!(
        vault
            .search(&b, &Query::new(Level::Instance))
            .unwrap()
            .len(),
        8
    );
    drop(vault);
    assert_eq!(leaks(&data, &needles), Vec::<String>::new());
}

#[test]
fn wrong_master_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), MasterKey::from_bytes(MASTER)).unwrap();
    vault.create_tenant("t").unwrap();
    drop(vault);
    assert!(matches!(
        Vault::open(dir.path(), MasterKey::from_bytes([1; 32])),
        Err(VaultError::WrongMasterKey)
    ));
}

fn object_files(data: &Path, tenant: &TenantId) -> Vec<PathBuf> {
    if !data.join("objects").join(tenant.as_str()).exists() {
        return Vec::new();
    }
    let mut files: Vec<_> = raw_files(&data.join("objects").join(tenant.as_str()))
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    files.sort();
    files
}

#[test]
fn altered_or_swapped_objects_do_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), MasterKey::from_bytes(MASTER)).unwrap();
    let t = vault.create_tenant("t").unwrap();
    let mut uids = Vec::new();
    for i in 0..2u8 {
        let mut attrs = Attributes::new();
        attrs.set(Attr::StudyInstanceUID, "1.2.3");
        attrs.set(Attr::SeriesInstanceUID, "1.2.3.4");
        let uid = format!("1.2.3.4.{i}");
        attrs.set(Attr::SOPInstanceUID, &uid);
        let data = vec![i; 200_000];
        vault.store(&t, &attrs, data.as_slice()).unwrap();
        assert_eq!(read_all(&vault, &t, &uid).unwrap(), data);
        uids.push(uid);
    }
    let files = object_files(dir.path(), &t);
    assert_eq!(files.len(), 2);
    let (x, y) = (
        std::fs::read(&files[0]).unwrap(),
        std::fs::read(&files[1]).unwrap(),
    );
    // Swapped: each file now sits under the other's name.
    std::fs::write(&files[0], &y).unwrap();
    std::fs::write(&files[1], &x).unwrap();
    for uid in &uids {
        assert!(read_all(&vault, &t, uid).is_err());
    }
    // One flipped byte in the second segment.
    std::fs::write(&files[0], &x).unwrap();
    std::fs::write(&files[1], &y).unwrap();
    let mut z = x.clone();
    z[100_000] ^= 0x10;
    std::fs::write(&files[0], &z).unwrap();
    let failed = uids
        .iter()
        .filter(|u| read_all(&vault, &t, u).is_err())
        .count();
    assert_eq!(failed, 1);
    // Truncated at a segment boundary.
    let header = obscura_vault::segment::HEADER_LEN;
    std::fs::write(&files[0], &x[..header + 65536 + 16]).unwrap();
    let failed = uids
        .iter()
        .filter(|u| read_all(&vault, &t, u).is_err())
        .count();
    assert_eq!(failed, 1);
}

/// Byte ranges (WADO frames, HTTP ranges) through `Seek`: every range equals
/// the plaintext slice; a flipped byte fails the ranges that cover its
/// segment only; a size altered in the index fails the read instead of
/// truncating or extending the instance.
#[test]
fn ranges_are_exact_and_authenticated() {
    use std::io::{Seek, SeekFrom};
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), MasterKey::from_bytes(MASTER)).unwrap();
    let t = vault.create_tenant("t").unwrap();
    let mut attrs = Attributes::new();
    attrs.set(Attr::StudyInstanceUID, "1.2.3");
    attrs.set(Attr::SeriesInstanceUID, "1.2.3.4");
    attrs.set(Attr::SOPInstanceUID, "1.2.3.4.5");
    let len = 5 * 65536 + 1234;
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    vault.store(&t, &attrs, data.as_slice()).unwrap();
    let range = |r: &mut obscura_vault::InstanceReader, start: usize, n: usize| {
        r.seek(SeekFrom::Start(start as u64))?;
        let mut out = Vec::new();
        r.take(n as u64).read_to_end(&mut out)?;
        Ok::<_, std::io::Error>(out)
    };
    let mut r = vault.open_instance(&t, "1.2.3.4.5").unwrap();
    // Pseudo-random ranges, including ones across segment boundaries, the
    // very end and past it, in no particular order on one reader.
    let mut ranges = vec![
        (0, 10),
        (65530, 20),
        (len - 5, 10),
        (len, 1),
        (len + 100, 1),
        (3 * 65536, 65536),
        (1, 4 * 65536),
    ];
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ranges.push(((x % len as u64) as usize, ((x >> 32) % 200_000) as usize));
    }
    for (start, n) in ranges {
        let got = range(&mut r, start, n).unwrap();
        let want = &data[start.min(len)..(start + n).min(len)];
        assert!(got == want, "range {start}+{n}");
    }

    // A flipped byte in segment 2: ranges inside segments 0-1 and 3-5 still
    // read; any range touching segment 2 fails.
    let file = object_files(dir.path(), &t).pop().unwrap();
    let original = std::fs::read(&file).unwrap();
    let header = obscura_vault::segment::HEADER_LEN;
    let mut bad = original.clone();
    bad[header + 2 * (65536 + 16) + 777] ^= 1;
    std::fs::write(&file, &bad).unwrap();
    let mut r = vault.open_instance(&t, "1.2.3.4.5").unwrap();
    assert_eq!(range(&mut r, 100, 65536).unwrap(), &data[100..65636]);
    assert_eq!(
        range(&mut r, 3 * 65536, 1000).unwrap(),
        &data[3 * 65536..3 * 65536 + 1000]
    );
    assert!(range(&mut r, 2 * 65536 + 5, 1).is_err());
    let mut r = vault.open_instance(&t, "1.2.3.4.5").unwrap();
    assert!(range(&mut r, 65536, 65537).is_err());
    assert!(read_all(&vault, &t, "1.2.3.4.5").is_err());
    std::fs::write(&file, &original).unwrap();
    assert_eq!(read_all(&vault, &t, "1.2.3.4.5").unwrap(), data);

    // A size altered in the index (shorter, longer, zero) is an error.
    drop(vault);
    for wrong in [len - 1, len + 1, 65536, 0] {
        let db = rusqlite::Connection::open(dir.path().join("index.sqlite")).unwrap();
        db.execute("UPDATE instances SET bytes = ?1", [wrong as i64])
            .unwrap();
        drop(db);
        let vault = Vault::open(dir.path(), MasterKey::from_bytes(MASTER)).unwrap();
        let mut r = vault.open_instance(&t, "1.2.3.4.5").unwrap();
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err(), "size {wrong}");
    }
}

#[test]
fn instances_need_their_uids() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), MasterKey::from_bytes(MASTER)).unwrap();
    let t = vault.create_tenant("t").unwrap();
    let mut attrs = Attributes::new();
    attrs.set(Attr::StudyInstanceUID, "1.2");
    attrs.set(Attr::SeriesInstanceUID, "1.2.3");
    assert!(matches!(
        vault.store(&t, &attrs, &b"x"[..]),
        Err(VaultError::MissingAttribute(Attr::SOPInstanceUID))
    ));
    let unknown = TenantId::parse(&"0".repeat(32)).unwrap();
    assert!(matches!(
        vault.store(&unknown, &attrs, &b"x"[..]),
        Err(VaultError::UnknownTenant)
    ));
    // Nothing was left behind by the refused store.
    assert!(object_files(dir.path(), &t).is_empty());
}

/// pydicom's test files, if pydicom is installed: round trip byte-exact, and
/// their names, IDs and UIDs nowhere under the data folder.
#[test]
fn pydicom_test_files_if_present() {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import pydicom.data,os;print(os.path.dirname(pydicom.data.__file__))",
        ])
        .output();
    let dir = match out {
        Ok(o) if o.status.success() => {
            PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()).join("test_files")
        }
        _ => {
            eprintln!("skipped: pydicom is not installed (python3 -m pip install pydicom)");
            return;
        }
    };
    let data = tempfile::tempdir().unwrap();
    let vault = Vault::open(data.path(), MasterKey::from_bytes(MASTER)).unwrap();
    let t = vault.create_tenant("pydicom").unwrap();
    let mut stored = Vec::new();
    let mut needles = std::collections::BTreeSet::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let Ok(file) = std::fs::File::open(&path) else {
            continue;
        };
        let Ok(source) = obscura_dicom::FileSource::new(file) else {
            continue;
        };
        let Ok(input) = obscura_dicom::DicomInput::read(source, obscura_dicom::Limits::default())
        else {
            continue;
        };
        let attrs = Attributes::from_dicom(&input);
        let Some(uid) = attrs.get(Attr::SOPInstanceUID).map(str::to_string) else {
            continue;
        };
        if attrs.get(Attr::StudyInstanceUID).is_none()
            || attrs.get(Attr::SeriesInstanceUID).is_none()
        {
            continue;
        }
        if let Stored::New { .. } = vault
            .store(&t, &attrs, std::fs::File::open(&path).unwrap())
            .unwrap()
        {
            stored.push((path.clone(), uid));
        }
        for a in [
            Attr::PatientName,
            Attr::PatientID,
            Attr::StudyInstanceUID,
            Attr::SeriesInstanceUID,
            Attr::SOPInstanceUID,
            Attr::AccessionNumber,
        ] {
            if let Some(v) = attrs.get(a).filter(|v| v.len() >= 8) {
                needles.insert(v.as_bytes().to_vec());
            }
        }
    }
    assert!(
        stored.len() >= 20,
        "stored {} of pydicom's files",
        stored.len()
    );
    for (path, uid) in &stored {
        assert_eq!(
            read_all(&vault, &t, uid).unwrap(),
            std::fs::read(path).unwrap(),
            "{}",
            path.display()
        );
    }
    let needles: Vec<Vec<u8>> = needles.into_iter().collect();
    assert_eq!(leaks(data.path(), &needles), Vec::<String>::new());
    eprintln!(
        "pydicom: {} files round-tripped, {} values not found on disk",
        stored.len(),
        needles.len()
    );
}

/// Study searches answered from the study cache equal those answered by SQL
/// and decryption, after stores through this vault (cache updated in place)
/// and through another connection (cache rebuilt), and after a shred.
#[test]
fn search_cache_answers_as_sql_does() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), MasterKey::from_bytes(MASTER)).unwrap();
    let t = vault.create_tenant("t").unwrap();
    let u = vault.create_tenant("u").unwrap();
    let names = [
        "Doe^John",
        "DOE^JANE",
        "Müller^Jürgen",
        "van der Berg^Anna",
        "O'Neil^Sean",
    ];
    let modalities = ["CT", "MR", "US", "SR"];
    let store = |vault: &Vault, tenant: &TenantId, s: usize, series: usize| {
        let mut a = Attributes::new();
        a.set(Attr::PatientName, names[s % names.len()]);
        a.set(Attr::PatientID, &format!("P{}", s % 7));
        a.set(Attr::PatientBirthDate, &format!("19{:02}0101", 40 + s % 50));
        a.set(
            Attr::StudyDate,
            &format!("20{:02}{:02}15", 10 + s % 14, 1 + s % 12),
        );
        a.set(Attr::StudyTime, &format!("{:02}3000", s % 24));
        a.set(Attr::AccessionNumber, &format!("A{s}"));
        a.set(Attr::StudyDescription, ["CT CHEST", "MR HEAD"][s % 2]);
        a.set(Attr::StudyInstanceUID, &format!("1.9.{s}"));
        a.set(Attr::SeriesInstanceUID, &format!("1.9.{s}.{series}"));
        a.set(Attr::Modality, modalities[(s + series) % modalities.len()]);
        a.set(Attr::SOPInstanceUID, &format!("1.9.{s}.{series}.1"));
        vault.store(tenant, &a, &b"x"[..]).unwrap();
    };
    for s in 0..60 {
        store(&vault, &t, s, 0);
        if matches!(s % 3, 0) {
            store(&vault, &t, s, 1);
        }
        store(&vault, &u, s, 0);
    }
    let study = |keys: &[(Attr, &str)], offset: usize, limit: Option<usize>| {
        let mut q = Query::new(Level::Study);
        for (a, v) in keys {
            q = q.with(*a, v);
        }
        q.offset = offset;
        q.limit = limit;
        q
    };
    let queries = vec![
        study(&[(Attr::PatientName, "doe*")], 0, None),
        study(&[(Attr::PatientName, "DOE^JOHN")], 0, None),
        study(&[(Attr::PatientName, "müller*")], 0, None),
        study(&[(Attr::PatientName, "*^?nna")], 0, None),
        study(&[(Attr::PatientName, "*o*")], 3, Some(5)),
        study(&[(Attr::StudyDate, "20150101-20191231")], 0, None),
        study(&[(Attr::StudyDate, "20200101-")], 2, Some(4)),
        study(
            &[(Attr::StudyDate, "-20120630"), (Attr::PatientID, "P3")],
            0,
            None,
        ),
        study(&[(Attr::StudyTime, "1000-1400")], 0, None),
        study(
            &[
                (Attr::PatientBirthDate, "19500101-19601231"),
                (Attr::ModalitiesInStudy, "MR"),
            ],
            0,
            None,
        ),
        study(
            &[
                (Attr::StudyDescription, "CT*"),
                (Attr::ModalitiesInStudy, "US\\SR"),
            ],
            0,
            None,
        ),
        study(
            &[
                (Attr::StudyDescription, "MR HEAD"),
                (Attr::AccessionNumber, "A7"),
            ],
            0,
            None,
        ),
        study(&[(Attr::AccessionNumber, "A*")], 0, Some(10)),
        study(
            &[
                (Attr::PatientName, "*"),
                (Attr::StudyInstanceUID, "1.9.4\\1.9.5\\1.9.6"),
            ],
            0,
            None,
        ),
        study(&[(Attr::PatientName, "nobody*")], 0, None),
    ];
    // All queries from the cache first (so that stores before a compare are
    // applied to a warm cache), then all without it.
    let compare = |vault: &Vault, when: &str| {
        let cached: Vec<_> = queries
            .iter()
            .map(|q| vault.search(&t, q).unwrap())
            .collect();
        vault.set_search_cache_limit(0);
        let plain: Vec<_> = queries
            .iter()
            .map(|q| vault.search(&t, q).unwrap())
            .collect();
        vault.set_search_cache_limit(64 << 20);
        for (i, (c, p)) in cached.iter().zip(&plain).enumerate() {
            assert!(c == p, "query {i} {when}");
        }
        let total: usize = plain.iter().map(Vec::len).sum();
        assert!(total > 50, "the queries match something ({total})");
    };
    compare(&vault, "at first");
    // Warm the cache, then change studies through this vault: new studies,
    // and new series that change ModalitiesInStudy of existing ones.
    vault.search(&t, &queries[0]).unwrap();
    vault.search(&t, &queries[0]).unwrap();
    for s in 55..70 {
        store(&vault, &t, s, 2);
    }
    compare(&vault, "after stores here");
    // Another connection (as another process would) changes the tenant.
    vault.search(&t, &queries[0]).unwrap();
    let other = Vault::open(dir.path(), MasterKey::from_bytes(MASTER)).unwrap();
    for s in 65..80 {
        store(&other, &t, s, 3);
    }
    compare(&vault, "after stores elsewhere");
    // A search of a tenant never returns another's studies, cached or not.
    let doe_u = vault.search(&u, &queries[0]).unwrap();
    assert!(doe_u
        .iter()
        .all(|a| a.get(Attr::StudyInstanceUID).unwrap().starts_with("1.9.")));
    assert_eq!(doe_u.len(), 24);
    vault.shred_tenant(&u).unwrap();
    assert!(matches!(
        vault.search(&u, &queries[0]),
        Err(VaultError::UnknownTenant)
    ));
    compare(&vault, "after another tenant's shred");
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    raw_files(dir)
        .into_iter()
        .filter(|(_, bytes)| find(bytes, needle))
        .map(|(p, _)| p)
        .collect()
}

fn wrapped_key_of(db: &Path, tenant: &TenantId) -> Vec<u8> {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row(
            "SELECT wrapped_key FROM tenants WHERE id = ?1",
            [tenant.as_str()],
            |r| r.get(0),
        )
        .unwrap()
}

fn simple(uid: &str) -> Attributes {
    let mut a = Attributes::new();
    a.set(Attr::PatientName, "DOE^JOHN");
    a.set(Attr::StudyInstanceUID, &format!("{uid}.1"));
    a.set(Attr::SeriesInstanceUID, &format!("{uid}.2"));
    a.set(Attr::SOPInstanceUID, uid);
    a
}

/// Rotation re-wraps every tenant key under the new master key, at once and
/// durably; the old key no longer opens the vault; the old wrapped keys are
/// gone from the database files; and a copy of the index taken before a
/// shred no longer yields the shredded tenant's key under the new master key.
#[test]
fn master_key_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let vault = Vault::open(&data, MasterKey::from_bytes(MASTER)).unwrap();
    let a = vault.create_tenant("a").unwrap();
    let b = vault.create_tenant("b").unwrap();
    vault.store(&a, &simple("1.1"), &b"aaaa"[..]).unwrap();
    vault.store(&b, &simple("2.1"), &b"bbbb"[..]).unwrap();
    // A backup taken before the shred (a consistent copy of the index).
    let backup = dir.path().join("backup");
    std::fs::create_dir(&backup).unwrap();
    rusqlite::Connection::open(data.join("index.sqlite"))
        .unwrap()
        .execute(
            "VACUUM INTO ?1",
            [backup.join("index.sqlite").to_str().unwrap()],
        )
        .unwrap();
    let old_a = wrapped_key_of(&data.join("index.sqlite"), &a);
    let old_b = wrapped_key_of(&data.join("index.sqlite"), &b);
    vault.shred_tenant(&b).unwrap();

    const NEW: [u8; 32] = [0x43; 32];
    assert_eq!(
        vault.rotate_master_key(MasterKey::from_bytes(NEW)).unwrap(),
        1
    );
    // This process goes on: reads, stores, new tenants.
    assert_eq!(read_all(&vault, &a, "1.1").unwrap(), b"aaaa");
    vault.store(&a, &simple("1.2"), &b"aaa2"[..]).unwrap();
    let c = vault.create_tenant("c").unwrap();
    vault.store(&c, &simple("3.1"), &b"cccc"[..]).unwrap();
    drop(vault);
    // The old wrapped keys are nowhere in the data folder.
    assert!(files_containing(&data, &old_a).is_empty());
    assert!(files_containing(&data, &old_b).is_empty());
    assert!(matches!(
        Vault::open(&data, MasterKey::from_bytes(MASTER)),
        Err(VaultError::WrongMasterKey)
    ));
    let vault = Vault::open(&data, MasterKey::from_bytes(NEW)).unwrap();
    assert_eq!(read_all(&vault, &a, "1.2").unwrap(), b"aaa2");
    assert_eq!(read_all(&vault, &c, "3.1").unwrap(), b"cccc");
    assert_eq!(
        vault
            .search(
                &a,
                &Query::new(Level::Study).with(Attr::PatientName, "doe*")
            )
            .unwrap()
            .len(),
        2
    );

    // The backup still opens with the old master key (hence: destroy it)...
    let old = Vault::open(&backup, MasterKey::from_bytes(MASTER)).unwrap();
    assert!(old.search(&b, &Query::new(Level::Study)).is_ok());
    drop(old);
    // ...but with the new one, even past the check value, b's key does not open.
    let check: Vec<u8> = rusqlite::Connection::open(data.join("index.sqlite"))
        .unwrap()
        .query_row(
            "SELECT value FROM meta WHERE key = 'master_check'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    rusqlite::Connection::open(backup.join("index.sqlite"))
        .unwrap()
        .execute(
            "UPDATE meta SET value = ?1 WHERE key = 'master_check'",
            [&check],
        )
        .unwrap();
    let stale = Vault::open(&backup, MasterKey::from_bytes(NEW)).unwrap();
    assert!(matches!(
        stale.search(&b, &Query::new(Level::Study)),
        Err(VaultError::Tampered("tenant key"))
    ));
    assert!(matches!(
        stale.open_instance(&b, "2.1"),
        Err(VaultError::Tampered("tenant key"))
    ));
}

/// Set a file's modification time to two hours ago.
fn age(path: &Path) {
    let then = std::time::SystemTime::now() - std::time::Duration::from_secs(7200);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(then)
        .unwrap();
}

/// The sweep deletes unreferenced objects and abandoned temporary files
/// once they are older than the grace period, dead tenants' objects at
/// once, and nothing else.
#[test]
fn sweep_orphans_deletes_only_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), MasterKey::from_bytes(MASTER)).unwrap();
    let t = vault.create_tenant("t").unwrap();
    for i in 0..3 {
        vault
            .store(&t, &simple(&format!("1.{i}")), &b"data"[..])
            .unwrap();
    }
    let objects = dir.path().join("objects");
    // A committed object whose index transaction never happened.
    let store = obscura_vault::FolderStore::open(&objects).unwrap();
    let orphan = obscura_vault::ObjectKey::new(t.as_str(), &"ab".repeat(16)).unwrap();
    let mut w = obscura_vault::ObjectStore::put(&store, &orphan).unwrap();
    std::io::Write::write_all(&mut w, b"ciphertext").unwrap();
    w.commit().unwrap();
    // A write never committed nor cleaned up.
    let tmp = objects.join(t.as_str()).join("ab").join(".tmp-00112233");
    std::fs::write(&tmp, b"partial").unwrap();
    // The objects of a tenant whose rows are gone (a shred interrupted).
    let dead = "cd".repeat(16);
    let dead_shard = objects.join(&dead).join("ef");
    std::fs::create_dir_all(&dead_shard).unwrap();
    std::fs::write(dead_shard.join("ef".repeat(16)), b"old").unwrap();

    // Young: only the dead tenant's objects go (its key is gone whatever
    // their age).
    assert_eq!(
        vault.sweep_orphans().unwrap(),
        obscura_vault::Swept {
            objects: 1,
            tenants: 1,
            incomplete: 0
        }
    );
    assert!(!objects.join(&dead).exists());
    // Three objects, the orphan, the temporary file.
    assert_eq!(object_files(dir.path(), &t).len(), 5);
    // Old (every file, referenced or not): only the orphans go.
    for (p, _) in raw_files(&objects) {
        age(&p);
    }
    let swept = vault.sweep_orphans().unwrap();
    assert_eq!(
        swept,
        obscura_vault::Swept {
            objects: 1,
            tenants: 0,
            incomplete: 1
        }
    );
    assert_eq!(object_files(dir.path(), &t).len(), 3);
    assert!(!tmp.exists() && !objects.join(&dead).exists());
    for i in 0..3 {
        assert_eq!(read_all(&vault, &t, &format!("1.{i}")).unwrap(), b"data");
    }
    assert_eq!(
        vault.sweep_orphans().unwrap(),
        obscura_vault::Swept::default()
    );
}
