//! The times of `since` and `until`: an RFC 3339 timestamp, `now`, or a time before now
//! such as `-15min` or `-1h30min`.

/// µs since the epoch.
pub type Micros = u64;

/// The units of a relative time, in µs.
const UNITS: [(&str, u64); 6] = [
    ("s", 1_000_000),
    ("sec", 1_000_000),
    ("min", 60_000_000),
    ("h", 3_600_000_000),
    ("d", 86_400_000_000),
    ("w", 604_800_000_000),
];

/// What [`parse_time`] accepts, as a regular expression (for the OpenAPI document).
pub const TIME_PATTERN: &str = "^(now|-([0-9]{1,9}(s|sec|min|h|d|w))+|\
    [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,9})?(Z|[+-][0-9]{2}:[0-9]{2}))$";

/// The time `text` names, `now` being the current time; times before 1970 are 1970.
/// `None`: not a time (`TIME_PATTERN`), or a date that does not exist.
pub fn parse_time(text: &str, now: Micros) -> Option<Micros> {
    if text == "now" {
        return Some(now);
    }
    if let Some(relative) = text.strip_prefix('-') {
        return parse_relative(relative).map(|ago| now.saturating_sub(ago));
    }
    if !is_rfc3339_shape(text.as_bytes()) {
        return None;
    }
    let at = chrono::DateTime::parse_from_rfc3339(text).ok()?;
    Some(u64::try_from(at.timestamp_micros()).unwrap_or(0))
}

/// `1h30min` → µs; each number 1-9 digits.
fn parse_relative(text: &str) -> Option<Micros> {
    let mut total: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let letters = rest[digits..]
            .bytes()
            .take_while(u8::is_ascii_lowercase)
            .count();
        if !(1..=9).contains(&digits) || letters == 0 {
            return None;
        }
        let number: u64 = rest[..digits].parse().ok()?;
        let unit = &rest[digits..digits + letters];
        let (_, scale) = UNITS.iter().find(|(name, _)| *name == unit)?;
        total = total.saturating_add(number.saturating_mul(*scale));
        rest = &rest[digits + letters..];
    }
    Some(total)
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, the part of RFC 3339 this API takes
/// (chrono also reads a lower-case `t`, a space, ...).
fn is_rfc3339_shape(b: &[u8]) -> bool {
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
    };
    if !(b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19))
    {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(fraction) = rest.strip_prefix(b".") {
        let n = fraction.iter().take_while(|c| c.is_ascii_digit()).count();
        if !(1..=9).contains(&n) {
            return false;
        }
        rest = &fraction[n..];
    }
    match rest {
        b"Z" => true,
        [sign, h1, h2, b':', m1, m2] => {
            matches!(sign, b'+' | b'-') && [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
        }
        _ => false,
    }
}

/// The current time.
pub fn now() -> Micros {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Micros = 1_796_519_097_000_000;

    #[test]
    fn relative_and_absolute_times() {
        assert_eq!(parse_time("now", NOW), Some(NOW));
        assert_eq!(parse_time("-1h", NOW), Some(NOW - 3_600_000_000));
        assert_eq!(parse_time("-15min", NOW), Some(NOW - 900_000_000));
        assert_eq!(parse_time("-1h30min", NOW), Some(NOW - 5_400_000_000));
        assert_eq!(parse_time("-2sec", NOW), Some(NOW - 2_000_000));
        assert_eq!(
            parse_time("-999999999w", NOW),
            Some(0),
            "before 1970 is 1970"
        );
        assert_eq!(
            parse_time("2026-12-06T14:10:00Z", NOW),
            Some(1_796_566_200_000_000)
        );
        assert_eq!(
            parse_time("2026-12-06T15:10:00.000001+01:00", NOW),
            Some(1_796_566_200_000_001)
        );
        assert_eq!(parse_time("1960-01-01T00:00:00Z", NOW), Some(0));
        for bad in [
            "",
            "-",
            "-1",
            "-h",
            "-1m",
            "-1hour",
            "-01234567890s",
            "+1h",
            "1h",
            "yesterday",
            "2026-12-06",
            "2026-12-06t14:10:00Z",
            "2026-12-06 14:10:00Z",
            "2026-12-06T14:10Z",
            "2026-13-06T14:10:00Z",
            "2026-02-30T14:10:00Z",
            "2026-12-06T14:10:00.Z",
            "2026-12-06T14:10:00.1234567890Z",
            "2026-12-06T14:10:00+0100",
            "NOW",
        ] {
            assert_eq!(parse_time(bad, NOW), None, "{bad:?}");
        }
    }

    /// The documented pattern and the parser agree on the shape of every sample.
    #[test]
    fn the_pattern_describes_what_is_read() {
        let pattern = regex::Regex::new(TIME_PATTERN).unwrap();
        for sample in [
            "now",
            "-1h",
            "-15min",
            "-1h30min",
            "-2sec",
            "-0s",
            "-1m",
            "-1hour",
            "1h",
            "-",
            "2026-12-06T14:10:00Z",
            "2026-12-06T14:10:00.5-03:30",
            "2026-12-06 14:10:00Z",
            "2026-12-06T14:10:00.1234567890Z",
            "2026-12-06T14:10:00+0100",
            "x",
        ] {
            // Shape only: a date that does not exist (2026-02-30) matches and is refused.
            assert_eq!(
                pattern.is_match(sample),
                parse_time(sample, NOW).is_some(),
                "{sample:?}"
            );
        }
    }
}
