//! Instants as the audit log writes them (RFC 3339, UTC, milliseconds) and
//! the few date sums a deadline needs.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Parse `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM[:SS[.fff]]` with `Z` or a
/// `±HH:MM` offset (none: UTC). `None` if it is not such a date.
pub fn parse(text: &str) -> Option<SystemTime> {
    let t = text.trim();
    let num = |s: &str| -> Option<i64> {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let date = t.get(..t.len().min(10))?;
    let rest = &t[date.len()..];
    let mut d = date.split('-');
    let (y, m, dd) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    if d.next().is_some() {
        return None;
    }
    let mut secs = midnight(y, m, dd)?;
    let mut millis = 0u64;
    if !rest.is_empty() {
        let rest = rest.strip_prefix(['T', 't', ' '])?;
        let (clock, offset) = match rest.find(['Z', 'z', '+', '-']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let mut p = hms.split(':');
        let h = num(p.next()?)?;
        let mi = num(p.next()?)?;
        let s = p.next().map_or(Some(0), num)?;
        if p.next().is_some() || h > 23 || mi > 59 || s > 60 {
            return None;
        }
        secs += h * 3600 + mi * 60 + s;
        if !frac.is_empty() {
            num(frac)?;
            let f = format!("{frac:0<3}");
            millis = f[..3].parse().ok()?;
        }
        match offset {
            "" | "Z" | "z" => {}
            o => {
                let sign = if o.starts_with('-') { 1 } else { -1 };
                let (oh, om) = o[1..].split_once(':')?;
                secs += sign * (num(oh)? * 3600 + num(om)? * 60);
            }
        }
    }
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
}

/// The audit log's form of an instant (sorts as it compares).
pub fn format(t: SystemTime) -> String {
    obscura_audit::event::rfc3339(t)
}

/// `t` plus `days` days.
pub fn plus_days(t: SystemTime, days: u64) -> SystemTime {
    t + Duration::from_secs(days * 86_400)
}

/// `t` plus `hours` hours.
pub fn plus_hours(t: SystemTime, hours: u64) -> SystemTime {
    t + Duration::from_secs(hours * 3600)
}

/// Unix seconds at midnight UTC of a proleptic Gregorian date; `None` if
/// there is no such day.
fn midnight(y: i64, m: i64, d: i64) -> Option<i64> {
    let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?);
    Some(date.ok()?.midnight().assume_utc().unix_timestamp())
}

/// The first instant of the year after `t`'s (UTC): 60 days from then is
/// when HHS must hear of a breach of fewer than 500 individuals.
pub fn end_of_year(t: SystemTime) -> SystemTime {
    let year: i64 = format(t)[..4].parse().expect("four digits");
    let secs = midnight(year + 1, 1, 1).expect("1 January exists");
    UNIX_EPOCH + Duration::from_secs(secs as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_it_formats_and_common_forms() {
        let t = parse("2026-03-01T10:20:30.456Z").unwrap();
        assert_eq!(format(t), "2026-03-01T10:20:30.456Z");
        assert_eq!(
            format(parse("2024-02-29").unwrap()),
            "2024-02-29T00:00:00.000Z"
        );
        assert_eq!(
            format(parse("2026-03-01T10:20+02:00").unwrap()),
            "2026-03-01T08:20:00.000Z"
        );
        assert_eq!(
            format(parse("2026-03-01T10:20:30.4").unwrap()),
            "2026-03-01T10:20:30.400Z"
        );
        for bad in [
            "",
            "2026-13-01",
            "yesterday",
            "2026-03-01T25:00",
            "2026-03-01X",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
        assert_eq!(format(end_of_year(t)), "2027-01-01T00:00:00.000Z");
        assert_eq!(format(plus_days(t, 60)), "2026-04-30T10:20:30.456Z");
    }
}
