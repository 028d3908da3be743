//! Instants as Unix seconds: RFC 3339 UTC in and out, and `72h`-style
//! durations.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix seconds at midnight UTC of a proleptic Gregorian date; `None` if
/// there is no such day.
fn midnight(y: i64, m: i64, d: i64) -> Option<i64> {
    let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?);
    Some(date.ok()?.midnight().assume_utc().unix_timestamp())
}

/// `2026-12-31T23:59:59Z` for Unix seconds.
pub fn format(t: i64) -> String {
    let at =
        time::OffsetDateTime::from_unix_timestamp(t).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// Unix seconds of `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`
/// (or with a `+HH:MM`/`-HH:MM` offset).
pub fn parse(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    if s.get(4..5)? != "-" || s.get(7..8)? != "-" {
        return None;
    }
    let day = midnight(y, mo, d)?;
    if s.len() == 10 {
        return Some(day);
    }
    if !matches!(s.get(10..11)?, "T" | "t" | " ") || s.get(13..14)? != ":" || s.get(16..17)? != ":"
    {
        return None;
    }
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return None;
        }
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match &rest[..1] {
                "+" => 1,
                "-" => -1,
                _ => return None,
            };
            let oh: i64 = rest[1..3].parse().ok()?;
            let om: i64 = rest[4..6].parse().ok()?;
            sign * (oh * 3600 + om * 60)
        }
        _ => return None,
    };
    Some(day + h * 3600 + mi * 60 + se - offset)
}

/// Seconds of `90s`, `15m`, `72h`, `30d`.
pub fn parse_duration(s: &str) -> Option<i64> {
    let (n, unit) = s.split_at(s.len().checked_sub(1)?);
    let n: i64 = n.parse().ok().filter(|n| *n > 0)?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return None,
    };
    n.checked_mul(unit)
}

/// An expiry given as an instant (RFC 3339, or a date) or as a duration from `now`.
pub fn parse_expiry(s: &str, now: i64) -> Option<i64> {
    parse(s).or_else(|| parse_duration(s).map(|d| now + d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_nonsense() {
        for t in [0, 951_782_400, 1_767_225_599, 4_102_444_800, -86_400] {
            assert_eq!(parse(&format(t)), Some(t), "{}", format(t));
        }
        assert_eq!(parse("2000-02-29"), Some(951_782_400));
        assert_eq!(
            parse("2026-01-01T01:00:00+01:00"),
            parse("2026-01-01T00:00:00Z")
        );
        assert_eq!(
            parse("2026-01-01T00:00:00.250Z"),
            parse("2026-01-01T00:00:00Z")
        );
        for bad in [
            "2001-02-29",
            "2026-13-01",
            "2026-1-01",
            "2026-01-01T25:00:00Z",
            "2026-01-01T00:00:00",
            "yesterday",
            "",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
        assert_eq!(parse_duration("72h"), Some(259_200));
        assert_eq!(parse_duration("0h"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_expiry("30d", 10), Some(10 + 30 * 86_400));
    }
}
