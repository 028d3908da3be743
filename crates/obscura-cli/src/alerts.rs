//! `obscura alerts`: alerts on abnormal access, from an audit log, and the
//! access simulator's scores (see docs/alerts.md).

use anyhow::{Context, Result};
use obscura_alerts::{Detector, FixedThresholds, Observe, Settings};
use std::path::PathBuf;
use std::process::ExitCode;

/// The `alerts` subcommands.
#[derive(clap::Subcommand)]
pub enum AlertsCommand {
    /// Read an audit log in order and print the alerts its records raise,
    /// each principal against its own history and its peers'. Exit 0: no
    /// alert; 1: alerts; 2: an error.
    Check {
        /// The audit log folder.
        log_dir: PathBuf,
        /// One JSON object per alert instead of a line of text.
        #[arg(long)]
        json: bool,
        /// Fixed thresholds instead (the classic rules, for comparison).
        #[arg(long)]
        fixed: bool,
        /// A vendor-class principal (`name` or `name@tenant`): identifiable
        /// data reaching it always alerts; repeatable.
        #[arg(long = "vendor", value_name = "PRINCIPAL")]
        vendors: Vec<String>,
    },
    /// Run the access simulator (a seeded month: ~200 principals, 50,000
    /// patients, 8 kinds of injected incident) and print the recall and
    /// precision of the adaptive rules and of fixed thresholds.
    Simulate {
        /// The simulation's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

/// Run a subcommand.
pub fn run(cmd: AlertsCommand) -> Result<ExitCode> {
    match cmd {
        AlertsCommand::Simulate { seed } => {
            let (sim, ours, fixed) = obscura_alerts::sim::compare(seed);
            print!("{}", obscura_alerts::sim::report(seed, &sim, &ours, &fixed));
            Ok(ExitCode::SUCCESS)
        }
        AlertsCommand::Check {
            log_dir,
            json,
            fixed,
            vendors,
        } => {
            let reader = obscura_audit::LogReader::open(&log_dir)
                .with_context(|| format!("cannot read the log at {}", log_dir.display()))?;
            let mut detector: Box<dyn Observe> = if fixed {
                Box::new(FixedThresholds::default())
            } else {
                Box::new(Detector::new(Settings {
                    vendors,
                    ..Settings::default()
                }))
            };
            let mut n = 0u64;
            reader.for_each_record(0, |r| {
                for a in detector.observe(&r) {
                    n += 1;
                    if json {
                        println!("{}", serde_json::to_string(&a).unwrap_or_default());
                    } else {
                        println!("{}", a.describe());
                    }
                }
            })?;
            eprintln!("{} records read, {n} alerts", reader.size());
            Ok(if n == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
