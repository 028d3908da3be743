//! QIDO study search at scale: builds an index of 1,000,000 instances
//! (20,000 studies × 2 series × 25 instances, objects discarded) and
//! measures p50/p95 of typical study searches, with the study cache off (every
//! search decrypts the tenant's study records) and on (the first search of
//! the tenant builds it; the timings are of later searches).
//!
//! ```sh
//! cargo run -p obscura-vault --release --example qido_scale -- [studies] [series per study] [instances per series] [runs per query]
//! ```
//!
//! Set `VAULT_BENCH_DIR` to put the index on a given disk (default: the
//! system temp folder), or `VAULT_QIDO_DIR` to a folder that keeps it: a
//! second run with the same folder and arguments skips building.
//!
//! Query families are interleaved run by run, so that a busy machine slows
//! them all alike. A last phase searches while another thread keeps storing
//! new studies (the reads use their own connections; each store updates
//! the cache).

mod common;

use common::{peak_rss_mib, Discard};
use obscura_vault::keys::KEY_LEN;
use obscura_vault::{Attr, Attributes, Level, MasterKey, Query, Vault};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let [studies, series, per_series, runs] = common::numbers([20_000usize, 2, 25, 50]);
    let base = common::bench_dir();
    let temp = tempfile::tempdir_in(base)?;
    let dir = std::env::var_os("VAULT_QIDO_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| temp.path().to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let built = dir.join("index.sqlite").exists();
    let vault =
        Vault::open_with_store(&dir, MasterKey::from_bytes([9; KEY_LEN]), Box::new(Discard))?;
    let total = studies * series * per_series;
    let tenant = if built {
        let t = vault.list_tenants()?;
        println!("index: reusing {} ({total} instances)", dir.display());
        t.into_iter()
            .find(|t| t.name == "big")
            .expect("tenant big")
            .id
    } else {
        let tenant = vault.create_tenant("big")?;
        let other = vault.create_tenant("other")?;
        let t = Instant::now();
        for s in 0..studies {
            vault.store_many(&tenant, study(s, series, per_series))?;
            if s % 2000 == 1999 {
                eprintln!(
                    "  {} instances, {:.0} s",
                    (s + 1) * series * per_series,
                    t.elapsed().as_secs_f64()
                );
            }
        }
        let ingest = t.elapsed();
        // A second tenant, so every search filters by tenant for real.
        for s in 0..studies / 10 {
            vault.store_many(&other, study(1_000_000 + s, 1, 5))?;
        }
        let db = std::fs::metadata(dir.join("index.sqlite"))?.len()
            + std::fs::metadata(dir.join("index.sqlite-wal")).map_or(0, |m| m.len());
        println!(
            "index: {total} instances ({studies} studies x {series} series x {per_series}) + {} in another tenant; \
             ingest {:.0} instances/s (store_many per study: one index transaction, synchronous=FULL, objects discarded); \
             {:.0} MiB on disk ({:.0} bytes per instance)",
            studies / 10 * 5,
            total as f64 / ingest.as_secs_f64(),
            db as f64 / 1048576.0,
            db as f64 / (total + studies / 10 * 5) as f64
        );
        tenant
    };
    println!("load average before searching: {}", load_average());

    // The queries: each a family of values, varied run by run.
    let n = studies;
    let families: Vec<(&str, MakeQuery)> = vec![
        (
            "PatientName wildcard (SURNAME*), limit 100",
            Box::new(|i| {
                let mut q = Query::new(Level::Study).with(
                    Attr::PatientName,
                    &format!("{}*", SURNAMES[i % SURNAMES.len()]),
                );
                q.limit = Some(100);
                q
            }),
        ),
        (
            "PatientName wildcard (*^GIVEN12*), all matches",
            Box::new(|i| {
                Query::new(Level::Study)
                    .with(Attr::PatientName, &format!("*^given{}*", 10 + i % 90))
            }),
        ),
        (
            "StudyDate range (one month), all matches",
            Box::new(|i| {
                let (y, m) = (2010 + i % 15, 1 + i % 12);
                Query::new(Level::Study).with(Attr::StudyDate, &format!("{y}{m:02}01-{y}{m:02}31"))
            }),
        ),
        (
            "StudyDate range (one year) + ModalitiesInStudy=MR, limit 100",
            Box::new(|i| {
                let y = 2010 + i % 15;
                let mut q = Query::new(Level::Study)
                    .with(Attr::StudyDate, &format!("{y}0101-{y}1231"))
                    .with(Attr::ModalitiesInStudy, "MR");
                q.limit = Some(100);
                q
            }),
        ),
        (
            "PatientID exact (keyed hash)",
            Box::new(move |i| {
                Query::new(Level::Study)
                    .with(Attr::PatientID, &format!("MRN{:07}", (i * 7919) % n / 2))
            }),
        ),
        (
            "ModalitiesInStudy=MR (keyed hash), limit 100",
            Box::new(|i| {
                let mut q = Query::new(Level::Study).with(Attr::ModalitiesInStudy, "MR");
                q.limit = Some(100);
                q.offset = i * 100;
                q
            }),
        ),
        (
            "no filter, limit 100 (offset varied)",
            Box::new(move |i| {
                let mut q = Query::new(Level::Study);
                q.limit = Some(100);
                q.offset = (i * 7919) % n;
                q
            }),
        ),
    ];

    for (cache_on, label) in [(false, "study cache off"), (true, "study cache on")] {
        vault.set_search_cache_limit(if cache_on { 256 << 20 } else { 0 });
        if cache_on {
            let t = Instant::now();
            vault.search(&tenant, &families[0].1(0))?;
            println!(
                "{label} (the first search builds it: {:.0} ms; peak RSS {:.0} MiB)",
                t.elapsed().as_secs_f64() * 1e3,
                peak_rss_mib()
            );
        } else {
            println!("{label}");
        }
        measure(&vault, &tenant, &families, runs)?;
    }

    // Searching while another thread stores new studies.
    println!("study cache on, while another thread stores studies (one store_many per study)");
    let stop = std::sync::atomic::AtomicBool::new(false);
    let stored = std::thread::scope(|scope| {
        let writer = scope.spawn(|| -> Result<usize, obscura_vault::VaultError> {
            let mut s = 2_000_000;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                vault.store_many(&tenant, study(s, series, per_series))?;
                s += 1;
            }
            Ok(s - 2_000_000)
        });
        let r = measure(&vault, &tenant, &families, runs);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let n = writer.join().expect("writer thread");
        r.and(n.map_err(Into::into))
    })?;
    println!(
        "  ({stored} studies, {} instances, stored meanwhile)",
        stored * series * per_series
    );
    println!("load average after: {}", load_average());
    Ok(())
}

/// Run every family `runs` times, interleaved; print p50/p95/max of each.
fn measure(
    vault: &Vault,
    tenant: &obscura_vault::TenantId,
    families: &[(&str, MakeQuery)],
    runs: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut times = vec![Vec::with_capacity(runs); families.len()];
    let mut results = vec![0usize; families.len()];
    for i in 0..runs {
        for (f, (_, make)) in families.iter().enumerate() {
            let q = make(i);
            let t = Instant::now();
            results[f] += vault.search(tenant, &q)?.len();
            times[f].push(t.elapsed());
        }
    }
    for (f, (name, _)) in families.iter().enumerate() {
        let t = &mut times[f];
        t.sort();
        println!(
            "  {name}: p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms ({:.0} results on average)",
            ms(t[t.len() / 2]),
            ms(t[(t.len() * 95).div_ceil(100) - 1]),
            ms(t[t.len() - 1]),
            results[f] as f64 / runs as f64
        );
    }
    Ok(())
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// A family of queries: the query of run `i`.
type MakeQuery = Box<dyn Fn(usize) -> Query + Sync>;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

const SURNAMES: &[&str] = &[
    "SMITH", "JONES", "GARCIA", "MILLER", "DAVIS", "LOPEZ", "WILSON", "TAYLOR", "MOORE", "DOE",
    "NGUYEN", "KHAN", "MÜLLER", "ROSSI", "SILVA", "KIM", "PATEL", "COHEN", "BROWN", "MARTIN",
];

/// The instances of study `s`: realistic attribute sizes, patients with two
/// studies each, dates spread over 15 years, a third of the studies MR.
fn study(s: usize, series: usize, per_series: usize) -> Vec<(Attributes, &'static [u8])> {
    let mut a = Attributes::new();
    a.set(
        Attr::PatientName,
        &format!(
            "{}^GIVEN{}^M",
            SURNAMES[s / 2 % SURNAMES.len()],
            s / 2 % 1000
        ),
    );
    a.set(Attr::PatientID, &format!("MRN{:07}", s / 2));
    a.set(
        Attr::PatientBirthDate,
        &format!(
            "19{:02}{:02}{:02}",
            30 + s / 2 % 70,
            1 + s / 2 % 12,
            1 + s / 2 % 28
        ),
    );
    a.set(Attr::PatientSex, ["F", "M"][s % 2]);
    a.set(Attr::AccessionNumber, &format!("ACC{s:09}"));
    a.set(
        Attr::StudyDate,
        &format!("{}{:02}{:02}", 2010 + s % 15, 1 + s / 15 % 12, 1 + s % 28),
    );
    a.set(
        Attr::StudyTime,
        &format!("{:02}{:02}00", 7 + s % 12, s % 60),
    );
    a.set(Attr::ReferringPhysicianName, "REFERRER^DOCTOR");
    let mr = matches!(s % 3, 0);
    a.set(
        Attr::StudyDescription,
        if mr {
            "MR BRAIN W/O CONTRAST"
        } else {
            "CT CHEST W CONTRAST"
        },
    );
    a.set(Attr::StudyID, &format!("{}", s % 100_000));
    a.set(
        Attr::StudyInstanceUID,
        &format!("1.2.826.0.1.3680043.99.{s}"),
    );
    a.set(Attr::SOPClassUID, "1.2.840.10008.5.1.4.1.1.2");
    a.set(Attr::TransferSyntaxUID, "1.2.840.10008.1.2.1");
    let mut out = Vec::with_capacity(series * per_series);
    for se in 0..series {
        let mut b = a.clone();
        b.set(
            Attr::SeriesInstanceUID,
            &format!("1.2.826.0.1.3680043.99.{s}.{se}"),
        );
        b.set(Attr::Modality, if mr { "MR" } else { "CT" });
        b.set(Attr::SeriesNumber, &(se + 1).to_string());
        b.set(
            Attr::SeriesDescription,
            if se == 0 { "AXIAL" } else { "CORONAL" },
        );
        for i in 0..per_series {
            let mut c = b.clone();
            c.set(
                Attr::SOPInstanceUID,
                &format!("1.2.826.0.1.3680043.99.{s}.{se}.{i}"),
            );
            c.set(Attr::InstanceNumber, &(i + 1).to_string());
            out.push((c, &b"DICM"[..]));
        }
    }
    out
}
