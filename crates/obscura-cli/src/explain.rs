//! `obscura deid --explain FILE`: every element's action and the rule that
//! chose it, for one file. Values are never printed.

use anyhow::{bail, Result};
use obscura_batch::{read_file, Outcome};
use obscura_deid::Deidentifier;
use std::io::Write;
use std::path::Path;

/// Print the explanation of `input` under `engine`'s profile.
pub fn run(engine: &Deidentifier, input: &Path) -> Result<()> {
    let read = match read_file(input, Default::default()) {
        Ok(r) => r,
        Err(Outcome::Skipped { reason }) => {
            bail!("{}: not explained: skipped ({reason:?})", input.display())
        }
        Err(Outcome::Quarantined { detail, .. }) => {
            bail!("{}: cannot be read: {detail}", input.display())
        }
        Err(Outcome::Written { .. }) => unreachable!("reading writes nothing"),
    };
    let has_pixels = read.input.pixel.is_some();
    let (result, explained) = match engine.explain(read.dataset) {
        Ok(r) => r,
        Err(e) => bail!("{}: would be quarantined: {e}", input.display()),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "file: {}", input.display())?;
    writeln!(out, "profile: {}", engine.profile().method_description())?;
    writeln!(
        out,
        "{:<40} {:<40} {:<3} {:<13} RULE",
        "PATH", "ATTRIBUTE", "VR", "ACTION"
    )?;
    for e in &explained {
        writeln!(
            out,
            "{:<40} {:<40} {:<3} {:<13} {}",
            e.path,
            e.name,
            e.vr.to_string(),
            e.action.to_string(),
            e.rule
        )?;
    }
    if has_pixels {
        // the pixel data never enters the engine: the writer copies it
        writeln!(
            out,
            "{:<40} {:<40} {:<3} {:<13} pixel data: copied byte for byte, never decoded",
            "(7FE0,0010)", "PixelData", "", "keep"
        )?;
    }
    writeln!(
        out,
        "{} elements; {} free-text spans cleaned; {} UIDs replaced",
        explained.len(),
        result.cleaned_spans,
        result.uids.len()
    )?;
    Ok(())
}
