//! RFC 3339 UTC times of audit records to Unix seconds.

/// `YYYY-MM-DDTHH:MM:SS[.fff]Z` to Unix seconds; `None` if malformed.
pub fn epoch_seconds(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || !t.ends_with('Z') {
        return None;
    }
    let n = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (hh, mm, ss) = (n(11..13)?, n(14..16)?, n(17..19)?);
    if hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(d).ok()?);
    Some(date.ok()?.midnight().assume_utc().unix_timestamp() + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn round_trips_the_log_format() {
        for s in [0u64, 951_782_400, 1_735_689_599, 1_767_225_600] {
            let t = obscura_audit::event::rfc3339(UNIX_EPOCH + Duration::from_millis(s * 1000 + 5));
            assert_eq!(epoch_seconds(&t), Some(s as i64), "{t}");
        }
        assert_eq!(epoch_seconds("2025-13-01T00:00:00.000Z"), None);
        assert_eq!(epoch_seconds("yesterday"), None);
    }
}
