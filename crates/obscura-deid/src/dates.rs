//! Modified dates (Retain Longitudinal Temporal Information with Modified
//! Dates): every date of a patient moves by the same number of days, so
//! intervals between studies survive while the calendar dates do not.

use crate::key::SecretKey;

/// How far dates may move: up to this many weeks back.
const MAX_WEEKS_BACK: u64 = 520;

/// A patient's date offset in days: negative, a whole number of weeks (so the
/// day of the week, which clinical schedules depend on, is kept), between 1
/// and [`MAX_WEEKS_BACK`] weeks, derived from the key and the patient's
/// original identity.
pub fn patient_offset_days(key: &SecretKey, identity: &str) -> i64 {
    let h = key.derive("date-offset", identity.as_bytes());
    let n = u64::from_be_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
    -7 * (1 + (n % MAX_WEEKS_BACK) as i64)
}

/// Shift a DA value (`YYYYMMDD`, also `YYYY` or `YYYYMM` partial dates,
/// multi-valued, or a `FROM-TO` range) by `days`; `None` if any part is not a
/// valid date, so the caller removes it rather than keeping it unshifted.
pub fn shift_da(value: &str, days: i64) -> Option<String> {
    map_values(value, |v| map_range(v, |d| shift_date_part(d, days)))
}

/// Shift a DT value (`YYYYMMDDHHMMSS.FFFFFF&ZZXX`) by `days`: the date part
/// moves, the time and its UTC offset are kept as they are.
pub fn shift_dt(value: &str, days: i64) -> Option<String> {
    map_values(value, |v| {
        map_range(v, |dt| {
            let split = dt.len().min(8);
            let (date, rest) = dt.split_at(split);
            if !rest
                .bytes()
                .all(|b| b.is_ascii_digit() || b"+-.".contains(&b))
            {
                return None;
            }
            Some(format!("{}{rest}", shift_date_part(date, days)?))
        })
    })
}

fn map_values(value: &str, f: impl Fn(&str) -> Option<String>) -> Option<String> {
    if !value.is_ascii() {
        // dates are digits; anything else is not one (and byte offsets
        // below must fall on character boundaries)
        return None;
    }
    let parts: Option<Vec<String>> = value
        .trim_end_matches(['\0', ' '])
        .split('\\')
        .map(|v| f(v.trim()))
        .collect();
    Some(parts?.join("\\"))
}

/// A range `A-B` (either side may be empty) or a single value. A DT's UTC
/// offset also uses `-`, so only a dash at a date position splits.
fn map_range(v: &str, f: impl Fn(&str) -> Option<String>) -> Option<String> {
    if v.is_empty() {
        return Some(String::new());
    }
    match v
        .find('-')
        .filter(|&i| i == 0 || i >= 4 && !is_utc_offset(v, i))
    {
        Some(i) => {
            let (a, b) = (&v[..i], &v[i + 1..]);
            let a = if a.is_empty() { String::new() } else { f(a)? };
            let b = if b.is_empty() { String::new() } else { f(b)? };
            Some(format!("{a}-{b}"))
        }
        None => f(v),
    }
}

/// Whether the `-` at `i` starts a DT's `&ZZXX` offset (four digits to the end).
fn is_utc_offset(v: &str, i: usize) -> bool {
    i >= 10 && v.len() == i + 5 && v[i + 1..].bytes().all(|b| b.is_ascii_digit())
}

/// Shift `YYYY`, `YYYYMM` or `YYYYMMDD`. Partial dates keep their precision:
/// the shift is applied to the first day of the period.
fn shift_date_part(d: &str, days: i64) -> Option<String> {
    if !d.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| d.get(r)?.parse::<i64>().ok();
    let (y, m, day) = match d.len() {
        4 => (num(0..4)?, 1, 1),
        6 => (num(0..4)?, num(4..6)?, 1),
        8 => (num(0..4)?, num(4..6)?, num(6..8)?),
        _ => return None,
    };
    let month = time::Month::try_from(u8::try_from(m).ok()?).ok()?;
    let date =
        time::Date::from_calendar_date(i32::try_from(y).ok()?, month, u8::try_from(day).ok()?)
            .ok()?
            .checked_add(time::Duration::days(days))?;
    let (y, m, day) = (date.year(), u8::from(date.month()), date.day());
    if !(1..=9999).contains(&y) {
        return None;
    }
    Some(match d.len() {
        4 => format!("{y:04}"),
        6 => format!("{y:04}{m:02}"),
        _ => format!("{y:04}{m:02}{day:02}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_move_by_whole_days_across_months_years_and_leap_days() {
        assert_eq!(shift_da("20160321", -21).unwrap(), "20160229");
        assert_eq!(shift_da("20160101", -1).unwrap(), "20151231");
        assert_eq!(shift_da("20000301", -1).unwrap(), "20000229");
        assert_eq!(shift_da("19000301", -1).unwrap(), "19000228");
        assert_eq!(
            shift_da("20160321\\20170101", -7).unwrap(),
            "20160314\\20161225"
        );
        assert_eq!(shift_da("201603", -70).unwrap(), "201512");
        assert_eq!(
            shift_da("20160101-20160131", -7).unwrap(),
            "20151225-20160124"
        );
        assert_eq!(shift_da("20160321 ", -7).unwrap(), "20160314");
    }

    #[test]
    fn invalid_dates_are_refused_not_kept() {
        for bad in ["20161341", "20160230", "2016-03-21", "ABC", "201"] {
            assert!(shift_da(bad, -7).is_none(), "{bad}");
        }
        assert!(shift_da("00010101", -7).is_none(), "before year 1");
    }

    #[test]
    fn date_times_keep_time_and_utc_offset() {
        assert_eq!(
            shift_dt("20160321073635.123456-0500", -7).unwrap(),
            "20160314073635.123456-0500"
        );
        assert_eq!(shift_dt("20160321+0100", -7).unwrap(), "20160314+0100");
        assert_eq!(shift_dt("2016", -7).unwrap(), "2015");
        assert!(shift_dt("20160321T0736", -7).is_none());
        assert!(
            shift_dt("202ÍÏÎÏÎÏÎÏ721.621000", -7).is_none(),
            "fuzz: not ASCII"
        );
    }

    #[test]
    fn offsets_are_per_patient_weeks_back() {
        let key = SecretKey::from_bytes([7; 32]);
        let a = patient_offset_days(&key, "PAT-1");
        assert_eq!(a, patient_offset_days(&key, "PAT-1"));
        assert!(a < 0 && a % 7 == 0 && a >= -7 * MAX_WEEKS_BACK as i64);
        let distinct: std::collections::BTreeSet<i64> = (0..50)
            .map(|i| patient_offset_days(&key, &format!("PAT-{i}")))
            .collect();
        assert!(distinct.len() > 40);
    }
}
