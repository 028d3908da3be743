//! What the vault costs, measured in one run:
//!
//! 1. One large object: plain copy (read, write, fsync) against `Vault::store`
//!    (encrypt, write, fsync), plain read against `open_instance` (decrypt),
//!    and the cipher alone, memory to memory; peak RSS while streaming.
//! 2. The index: ingest rate (synthetic instances, real SQLite with
//!    synchronous=FULL, objects discarded) and search latencies, for keys
//!    matched by keyed hash and keys matched by decrypting.
//!
//! ```sh
//! cargo run -p obscura-vault --release --example vault_bench -- [object MiB] [studies] [instances per study]
//! ```
//!
//! Set `VAULT_BENCH_DIR` to put the files on a given disk (default: the
//! system temp folder).

mod common;

use common::{peak_rss_mib, Discard};
use obscura_vault::keys::KEY_LEN;
use obscura_vault::{Attr, Attributes, Level, MasterKey, Query, Vault};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let [mib, studies, per_study] = common::numbers([512u64, 5_000, 4]);
    let base = common::bench_dir();
    let dir = tempfile::tempdir_in(base)?;
    objects(dir.path(), mib)?;
    index(dir.path(), studies, per_study)?;
    Ok(())
}

fn mb_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn objects(dir: &std::path::Path, mib: u64) -> Result<(), Box<dyn std::error::Error>> {
    let size = mib << 20;
    let src = dir.join("source.bin");
    {
        let mut f = io::BufWriter::new(std::fs::File::create(&src)?);
        let mut block = vec![0u8; 1 << 20];
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        for _ in 0..mib {
            for chunk in block.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes());
            }
            f.write_all(&block)?;
        }
        f.into_inner()?.sync_all()?;
    }
    println!("object of {mib} MiB ({size} bytes)");

    // Plain copy, as durable as a vault store.
    let t = Instant::now();
    let mut from = std::fs::File::open(&src)?;
    let mut to = std::fs::File::create(dir.join("plain.bin"))?;
    copy(&mut from, &mut to)?;
    to.sync_all()?;
    let plain_write = t.elapsed();

    let vault = Vault::open(&dir.join("vault"), MasterKey::from_bytes([7; KEY_LEN]))?;
    let tenant = vault.create_tenant("bench")?;
    let mut attrs = Attributes::new();
    attrs.set(Attr::StudyInstanceUID, "1.2.3");
    attrs.set(Attr::SeriesInstanceUID, "1.2.3.4");
    attrs.set(Attr::SOPInstanceUID, "1.2.3.4.5");
    let t = Instant::now();
    vault.store(&tenant, &attrs, std::fs::File::open(&src)?)?;
    let vault_write = t.elapsed();

    let t = Instant::now();
    let n = copy(
        &mut std::fs::File::open(dir.join("plain.bin"))?,
        &mut io::sink(),
    )?;
    let plain_read = t.elapsed();
    assert_eq!(n, size);
    let t = Instant::now();
    let n = copy(
        &mut vault.open_instance(&tenant, "1.2.3.4.5")?,
        &mut io::sink(),
    )?;
    let vault_read = t.elapsed();
    assert_eq!(n, size);

    println!(
        "  write: plain copy + fsync {:.0} MB/s, vault store (encrypt + fsync) {:.0} MB/s ({:.2}x)",
        mb_s(size, plain_write),
        mb_s(size, vault_write),
        plain_write.as_secs_f64() / vault_write.as_secs_f64()
    );
    println!(
        "  read:  plain {:.0} MB/s, vault open_instance (decrypt) {:.0} MB/s ({:.2}x)",
        mb_s(size, plain_read),
        mb_s(size, vault_read),
        plain_read.as_secs_f64() / vault_read.as_secs_f64()
    );
    println!(
        "  peak RSS after streaming the object both ways: {:.1} MiB",
        peak_rss_mib()
    );
    // The cipher alone, memory to memory.
    let keys = obscura_vault::keys::TenantKeys::from_key_bytes([3; KEY_LEN]);
    let chunk = vec![0x5Au8; 64 << 20];
    // Touched first (a zeroed allocation is mapped lazily): no page faults
    // are timed.
    let mut sealed = vec![1u8; chunk.len() + (chunk.len() >> 12) + 128];
    sealed.clear();
    let t = Instant::now();
    let mut w = obscura_vault::segment::encrypt(
        &mut sealed,
        &keys,
        b"bench",
        obscura_vault::segment::DEFAULT_SEGMENT_LOG2,
    )?;
    w.write_all(&chunk)?;
    w.finish()?;
    let enc = t.elapsed();
    let t = Instant::now();
    let n = copy(
        &mut obscura_vault::segment::decrypt(sealed.as_slice(), &keys, b"bench")?,
        &mut io::sink(),
    )?;
    let dec = t.elapsed();
    assert_eq!(n, chunk.len() as u64);
    println!(
        "  cipher alone (ring AES-256-GCM, 64 KiB segments, in memory): encrypt {:.0} MB/s, decrypt {:.0} MB/s",
        mb_s(n, enc),
        mb_s(n, dec)
    );
    // The same segments with RustCrypto's AES-256-GCM (the cipher before ring).
    let (enc, dec) = rustcrypto_segments(&chunk);
    println!(
        "  cipher alone (RustCrypto aes-gcm, same segments): encrypt {:.0} MB/s, decrypt {:.0} MB/s",
        mb_s(n, enc),
        mb_s(n, dec)
    );
    std::fs::remove_file(dir.join("plain.bin"))?;
    std::fs::remove_file(&src)?;
    Ok(())
}

/// Encrypt and decrypt `data` in 64 KiB segments with RustCrypto's
/// AES-256-GCM, in memory; the two durations.
fn rustcrypto_segments(data: &[u8]) -> (Duration, Duration) {
    use aes_gcm::aead::{AeadInPlace, KeyInit};
    let cipher = aes_gcm::Aes256Gcm::new_from_slice(&[3; KEY_LEN]).expect("32 bytes");
    let seg = 1 << obscura_vault::segment::DEFAULT_SEGMENT_LOG2;
    let mut sealed = vec![1u8; data.len() + (data.len() >> 12) + 128];
    sealed.clear();
    let nonce = |i: usize| {
        let mut n = [0u8; 12];
        n[7..11].copy_from_slice(&(i as u32).to_be_bytes());
        n
    };
    let t = Instant::now();
    for (i, part) in data.chunks(seg).enumerate() {
        let start = sealed.len();
        sealed.extend_from_slice(part);
        let tag = cipher
            .encrypt_in_place_detached((&nonce(i)).into(), b"", &mut sealed[start..])
            .expect("encrypt");
        sealed.extend_from_slice(&tag);
    }
    let enc = t.elapsed();
    let mut buf = vec![0u8; seg + 16];
    let t = Instant::now();
    for (i, part) in sealed.chunks(seg + 16).enumerate() {
        let body = part.len() - 16;
        buf[..body].copy_from_slice(&part[..body]);
        cipher
            .decrypt_in_place_detached(
                (&nonce(i)).into(),
                b"",
                &mut buf[..body],
                part[body..].into(),
            )
            .expect("decrypt");
        std::hint::black_box(&buf);
    }
    (enc, t.elapsed())
}

fn copy(from: &mut impl Read, to: &mut impl Write) -> io::Result<u64> {
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0;
    loop {
        let n = from.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        to.write_all(&buf[..n])?;
        total += n as u64;
    }
}

const SURNAMES: &[&str] = &[
    "SMITH", "JONES", "GARCIA", "MILLER", "DAVIS", "LOPEZ", "WILSON", "TAYLOR", "MOORE", "DOE",
];

fn index(
    dir: &std::path::Path,
    studies: u64,
    per_study: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let data = dir.join("index-bench");
    std::fs::create_dir_all(&data)?;
    let vault = Vault::open_with_store(
        &data,
        MasterKey::from_bytes([9; KEY_LEN]),
        Box::new(Discard),
    )?;
    let tenant = vault.create_tenant("bench")?;
    let other = vault.create_tenant("other")?;
    let total = studies * per_study;
    let t = Instant::now();
    for s in 0..studies {
        let mut attrs = Attributes::new();
        let name = format!(
            "{}^PATIENT{}",
            SURNAMES[(s % SURNAMES.len() as u64) as usize],
            s
        );
        attrs.set(Attr::PatientName, &name);
        attrs.set(Attr::PatientID, &format!("MRN{:07}", s / 2));
        attrs.set(
            Attr::PatientBirthDate,
            &format!("19{:02}0{}1{}", s % 100, s % 9 + 1, s % 10),
        );
        attrs.set(Attr::AccessionNumber, &format!("ACC{s:09}"));
        attrs.set(
            Attr::StudyDate,
            &format!("20{:02}{:02}{:02}", 10 + s % 15, s % 12 + 1, s % 28 + 1),
        );
        attrs.set(Attr::StudyTime, "101500");
        attrs.set(Attr::StudyDescription, "CT CHEST W CONTRAST");
        attrs.set(Attr::ReferringPhysicianName, "WHO^REFERRED");
        attrs.set(Attr::StudyInstanceUID, &format!("1.2.826.0.1.1.{s}"));
        attrs.set(Attr::SeriesInstanceUID, &format!("1.2.826.0.1.1.{s}.1"));
        attrs.set(Attr::Modality, if s % 3 == 0 { "MR" } else { "CT" });
        attrs.set(Attr::SOPClassUID, "1.2.840.10008.5.1.4.1.1.2");
        for i in 0..per_study {
            attrs.set(Attr::SOPInstanceUID, &format!("1.2.826.0.1.1.{s}.1.{i}"));
            attrs.set(Attr::InstanceNumber, &(i + 1).to_string());
            vault.store(&tenant, &attrs, &b"DICM"[..])?;
        }
    }
    let ingest = t.elapsed();
    // A second tenant, so searches filter by tenant for real.
    for s in 0..studies / 10 {
        let mut attrs = Attributes::new();
        attrs.set(Attr::PatientName, "DOE^OTHER");
        attrs.set(Attr::StudyInstanceUID, &format!("9.{s}"));
        attrs.set(Attr::SeriesInstanceUID, &format!("9.{s}.1"));
        attrs.set(Attr::SOPInstanceUID, &format!("9.{s}.1.1"));
        vault.store(&other, &attrs, &b"DICM"[..])?;
    }
    println!(
        "index: {total} instances in {studies} studies, ingest {:.0} instances/s (one SQLite transaction each, synchronous=FULL, objects discarded)",
        total as f64 / ingest.as_secs_f64()
    );

    let mid = studies / 2;
    let queries: Vec<(&str, Query)> = vec![
        (
            "study by PatientID (keyed hash)",
            Query::new(Level::Study).with(Attr::PatientID, &format!("MRN{:07}", mid / 2)),
        ),
        (
            "study by StudyInstanceUID (keyed hash)",
            Query::new(Level::Study).with(Attr::StudyInstanceUID, &format!("1.2.826.0.1.1.{mid}")),
        ),
        ("first 100 studies (SQL paging)", {
            let mut q = Query::new(Level::Study);
            q.limit = Some(100);
            q
        }),
        (
            "instances of a series (keyed hash)",
            Query::new(Level::Instance)
                .with(Attr::SeriesInstanceUID, &format!("1.2.826.0.1.1.{mid}.1")),
        ),
        (
            "study by PatientName doe* (decrypt + filter)",
            Query::new(Level::Study).with(Attr::PatientName, "doe*"),
        ),
        ("study by StudyDate range, limit 100 (decrypt + filter)", {
            let mut q = Query::new(Level::Study).with(Attr::StudyDate, "20200101-20201231");
            q.limit = Some(100);
            q
        }),
        (
            "study by StudyDate range, all (decrypt + filter)",
            Query::new(Level::Study).with(Attr::StudyDate, "20200101-20201231"),
        ),
        (
            "study by ModalitiesInStudy=MR + PatientName wildcard",
            Query::new(Level::Study)
                .with(Attr::ModalitiesInStudy, "MR")
                .with(Attr::PatientName, "*^patient1*"),
        ),
    ];
    for (label, q) in queries {
        let mut times = Vec::new();
        let mut n = 0;
        for _ in 0..15 {
            let t = Instant::now();
            n = vault.search(&tenant, &q)?.len();
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "  {label}: {n} results, median {:.2} ms, max {:.2} ms",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3
        );
    }
    let db = std::fs::metadata(data.join("index.sqlite"))?.len();
    println!(
        "  index size {:.1} MiB ({:.0} bytes per instance)",
        db as f64 / 1048576.0,
        db as f64 / (total + studies / 10) as f64
    );
    Ok(())
}
