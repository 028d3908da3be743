//! Runs the de-identification engine over whole archives: discovers files,
//! works in parallel, quarantines what cannot be made safe, writes outputs
//! atomically and reports every file's fate without PHI.

pub mod outcome;
pub mod paths;
pub mod pixels;
pub mod process;
pub mod run;

pub use outcome::{FileReport, Outcome, QuarantineReason, RunReport, SkipReason};
pub use process::{read_file, FileSettings, Mappings, ReadFile};
pub use run::{run, write_mappings, RunConfig, RunResult};

use std::path::PathBuf;
use thiserror::Error;

/// A failure of the run as a whole (per-file problems are outcomes instead).
#[derive(Debug, Error)]
pub enum BatchError {
    /// The input cannot be read.
    #[error("cannot read input {0}: {1}")]
    Input(PathBuf, std::io::Error),
    /// An output cannot be written.
    #[error("cannot write {0}: {1}")]
    Output(PathBuf, std::io::Error),
    /// The output folder lies inside the input.
    #[error("the output folder may not be inside the input")]
    OutputInsideInput,
    /// The input lies inside the output folder.
    #[error("the input may not be inside the output folder (outputs could overwrite inputs)")]
    InputInsideOutput,
    /// The worker pool could not start.
    #[error("cannot start worker threads: {0}")]
    Threads(String),
}
