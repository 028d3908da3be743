//! `obscura profile show`: the effective table of a profile.

use crate::profile_args::ProfileArgs;
use anyhow::Result;
use obscura_deid::rule::effective_table;
use std::io::Write;

/// Print the profile's codes, overrides, keep-list and, for every row of
/// Table E.1-1, the action applied and the rule that chose it.
pub fn run(args: &ProfileArgs) -> Result<()> {
    let profile = args.load()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "profile: {}", profile.name)?;
    let codes: Vec<String> = profile
        .codes()
        .iter()
        .map(|c| format!("{} {}", c.value, c.meaning))
        .collect();
    writeln!(out, "codes (CID 7050): {}", codes.join("; "))?;
    for (i, o) in profile.overrides().iter().enumerate() {
        writeln!(out, "override #{}: {} {}", i + 1, o.selector, o.action)?;
    }
    if let Some(keep) = profile.keep_only() {
        let list: Vec<String> = keep.iter().map(|s| s.to_string()).collect();
        writeln!(out, "keep only: {}", list.join(", "))?;
    }
    let elsewhere = if profile.finds_identity_elsewhere() {
        "on: every value kept outside the table (codes, comments, labels, safe private, UN) \
         is checked for the identifying values this profile removes, and cleaned where it holds one"
    } else {
        "off (find_identity_elsewhere = false): values outside the table are kept unread"
    };
    writeln!(out, "identity elsewhere: {elsewhere}")?;
    writeln!(out)?;
    writeln!(
        out,
        "{:<13} {:<48} {:<14} RULE",
        "TAG", "ATTRIBUTE", "ACTION"
    )?;
    for row in effective_table(&profile) {
        writeln!(
            out,
            "{:<13} {:<48} {:<14} {}",
            row.tag,
            truncate(row.name, 48),
            row.decision.action.to_string(),
            row.decision.rule.describe(&profile)
        )?;
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> &str {
    s.char_indices().nth(n).map_or(s, |(i, _)| &s[..i])
}
