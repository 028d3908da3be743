//! `store_many`: a batch's objects are written concurrently and indexed in
//! one transaction; a batch that fails leaves no object and no row.

use obscura_vault::{Attr, Attributes, Level, MasterKey, Query, Stored, Vault, WRITERS};
use std::io::Read;

fn attrs(study: &str, series: &str, sop: &str) -> Attributes {
    let mut a = Attributes::new();
    a.set(Attr::StudyInstanceUID, study);
    a.set(Attr::SeriesInstanceUID, series);
    a.set(Attr::SOPInstanceUID, sop);
    a.set(Attr::PatientName, "BATCH^TEST");
    a
}

/// Bytes that differ per instance, over several segments for some.
fn payload(i: usize) -> Vec<u8> {
    (0..(i * 40_000 + 7)).map(|k| (k * 31 + i) as u8).collect()
}

/// Every regular file under `dir` (objects and leftovers alike).
fn files_under(dir: &std::path::Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .map(|e| e.unwrap())
        .map(|e| {
            if e.file_type().unwrap().is_dir() {
                files_under(&e.path())
            } else {
                1
            }
        })
        .sum()
}

#[test]
fn a_batch_round_trips_with_duplicates_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), MasterKey::from_bytes([7; 32])).unwrap();
    let t = vault.create_tenant("t").unwrap();
    let n = WRITERS * 3 + 1;
    let mut items: Vec<(Attributes, std::io::Cursor<Vec<u8>>)> = (0..n)
        .map(|i| {
            (
                attrs(
                    "1.2.3",
                    &format!("1.2.3.{}", i % 3),
                    &format!("1.2.3.4.{i}"),
                ),
                std::io::Cursor::new(payload(i)),
            )
        })
        .collect();
    // the same UID twice in one batch: stored once
    items.insert(
        5,
        (
            attrs("1.2.3", "1.2.3.0", "1.2.3.4.2"),
            std::io::Cursor::new(vec![1]),
        ),
    );
    let stored = vault.store_many(&t, items).unwrap();
    assert_eq!(stored.len(), n + 1);
    assert_eq!(stored[5], Stored::Duplicate);
    let sizes: Vec<u64> = stored
        .iter()
        .filter_map(|s| match s {
            Stored::New { bytes } => Some(*bytes),
            Stored::Duplicate => None,
        })
        .collect();
    assert_eq!(
        sizes,
        (0..n).map(|i| payload(i).len() as u64).collect::<Vec<_>>()
    );
    for i in 0..n {
        let mut back = Vec::new();
        vault
            .open_instance(&t, &format!("1.2.3.4.{i}"))
            .unwrap()
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, payload(i), "instance {i}");
    }
    let series = vault.search(&t, &Query::new(Level::Series)).unwrap();
    assert_eq!(series.len(), 3);
    // a second batch of the same UIDs changes nothing and reads no data
    struct Unread;
    impl Read for Unread {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            panic!("a duplicate's data is not read")
        }
    }
    let again = vault
        .store_many(
            &t,
            (0..n).map(|i| (attrs("1.2.3", "1.2.3.0", &format!("1.2.3.4.{i}")), Unread)),
        )
        .unwrap();
    assert!(again.iter().all(|s| *s == Stored::Duplicate));
}

/// A reader that fails after some bytes (a client gone, a disk error).
struct Failing(usize);

impl Read for Failing {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 == 0 {
            return Err(std::io::Error::other("the source failed"));
        }
        let n = buf.len().min(self.0);
        buf[..n].fill(9);
        self.0 -= n;
        Ok(n)
    }
}

#[test]
fn a_failing_batch_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let vault = Vault::open(dir.path(), MasterKey::from_bytes([7; 32])).unwrap();
    let t = vault.create_tenant("t").unwrap();
    let n = WRITERS * 2;
    let items = (0..n).map(|i| {
        let a = attrs("1.2.3", "1.2.3.1", &format!("1.2.3.9.{i}"));
        // one source in the middle fails after two segments
        let r: Box<dyn Read + Send> = if i == n / 2 {
            Box::new(Failing(150_000))
        } else {
            Box::new(std::io::Cursor::new(payload(i)))
        };
        (a, r)
    });
    assert!(vault.store_many(&t, items).is_err());
    assert!(vault
        .search(&t, &Query::new(Level::Instance))
        .unwrap()
        .is_empty());
    assert_eq!(
        files_under(&dir.path().join("objects")),
        0,
        "no object, no temporary file"
    );
    // a batch missing a UID is refused before anything is written
    let items = vec![
        (
            attrs("1.2.3", "1.2.3.1", "1.2.3.9.98"),
            std::io::Cursor::new(payload(1)),
        ),
        (Attributes::new(), std::io::Cursor::new(payload(2))),
    ];
    assert!(vault.store_many(&t, items).is_err());
    assert_eq!(files_under(&dir.path().join("objects")), 0);
}
