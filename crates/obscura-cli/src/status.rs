//! `obscura status`: queue depth and per-destination state of a gateway.

use anyhow::{anyhow, Result};
use clap::Args;
use std::path::PathBuf;

/// Arguments of `obscura status`.
#[derive(Args)]
pub struct StatusArgs {
    /// The gateway's config file (the one `obscura serve` runs).
    #[arg(long)]
    config: PathBuf,
}

/// Print the status.
pub fn run(args: &StatusArgs) -> Result<()> {
    let config = obscura_gateway::Config::load(&args.config)?;
    let text = obscura_gateway::status::render(&config).map_err(|e| anyhow!(e))?;
    print!("{text}");
    Ok(())
}
