//! A patient's state of residence (US postal code), from Region of
//! Residence (0010,2152) or else Patient's Address (0010,1040): what a
//! breach notice is counted by (HIPAA's 500 residents of a state). Only
//! the state is kept, never the address.

/// USPS codes and names of the states, DC and the territories.
const STATES: &[(&str, &str)] = &[
    ("AL", "alabama"),
    ("AK", "alaska"),
    ("AZ", "arizona"),
    ("AR", "arkansas"),
    ("CA", "california"),
    ("CO", "colorado"),
    ("CT", "connecticut"),
    ("DE", "delaware"),
    ("DC", "district of columbia"),
    ("FL", "florida"),
    ("GA", "georgia"),
    ("HI", "hawaii"),
    ("ID", "idaho"),
    ("IL", "illinois"),
    ("IN", "indiana"),
    ("IA", "iowa"),
    ("KS", "kansas"),
    ("KY", "kentucky"),
    ("LA", "louisiana"),
    ("ME", "maine"),
    ("MD", "maryland"),
    ("MA", "massachusetts"),
    ("MI", "michigan"),
    ("MN", "minnesota"),
    ("MS", "mississippi"),
    ("MO", "missouri"),
    ("MT", "montana"),
    ("NE", "nebraska"),
    ("NV", "nevada"),
    ("NH", "new hampshire"),
    ("NJ", "new jersey"),
    ("NM", "new mexico"),
    ("NY", "new york"),
    ("NC", "north carolina"),
    ("ND", "north dakota"),
    ("OH", "ohio"),
    ("OK", "oklahoma"),
    ("OR", "oregon"),
    ("PA", "pennsylvania"),
    ("RI", "rhode island"),
    ("SC", "south carolina"),
    ("SD", "south dakota"),
    ("TN", "tennessee"),
    ("TX", "texas"),
    ("UT", "utah"),
    ("VT", "vermont"),
    ("VA", "virginia"),
    ("WA", "washington"),
    ("WV", "west virginia"),
    ("WI", "wisconsin"),
    ("WY", "wyoming"),
    ("PR", "puerto rico"),
    ("GU", "guam"),
    ("VI", "virgin islands"),
    ("AS", "american samoa"),
    ("MP", "northern mariana islands"),
];

/// The state a Region of Residence value names (a code or a name, any case).
pub fn from_region(region: &str) -> Option<&'static str> {
    let r = words(region).join(" ");
    STATES
        .iter()
        .find(|(code, name)| r.eq_ignore_ascii_case(code) || r == *name)
        .map(|(code, _)| *code)
}

/// The state in a postal address: the last state code written in capitals
/// (`…, Springfield, IL 62704`) or the last state name, whichever comes later.
pub fn from_address(address: &str) -> Option<&'static str> {
    let raw: Vec<&str> = address
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let lower = words(address);
    let mut best: Option<(usize, &'static str)> = None;
    for (i, w) in raw.iter().enumerate() {
        if let Some((code, _)) = STATES.iter().find(|(c, _)| c == w) {
            best = Some((i, code));
        }
    }
    for (code, name) in STATES {
        let n: Vec<String> = name.split(' ').map(str::to_string).collect();
        for i in (0..lower.len()).rev() {
            if lower[i..].starts_with(&n) {
                let end = i + n.len() - 1;
                if best.is_none_or(|(b, _)| end > b) {
                    best = Some((end, code));
                }
                break;
            }
        }
    }
    best.map(|(_, c)| c)
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_from_addresses_and_regions() {
        assert_eq!(from_address("12 Elm St^^Springfield^IL^62704"), Some("IL"));
        assert_eq!(
            from_address("1 Main St, Albany, New York 12207"),
            Some("NY")
        );
        assert_eq!(from_address("3 Ocean Dr, Portland, OR 97201"), Some("OR"));
        assert_eq!(from_address("5 Washington Ave, Austin, TX"), Some("TX"));
        assert_eq!(from_address("in the city"), None);
        assert_eq!(from_address("10 Rue de Rivoli, Paris"), None);
        assert_eq!(from_region("ca"), Some("CA"));
        assert_eq!(from_region("North  Carolina"), Some("NC"));
        assert_eq!(from_region("Bavaria"), None);
    }
}
