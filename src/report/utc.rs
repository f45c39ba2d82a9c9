//! Wall-clock timestamps in reports: RFC 3339 in UTC, written and read back
//! by hand (Howard Hinnant's civil-date algorithms) rather than with a date
//! crate for two functions.

/// Formats nanoseconds since the Unix epoch as RFC 3339 in UTC with
/// millisecond precision ("2023-11-14T22:13:20.250Z"). Hand-made to avoid a date crate.
pub fn rfc3339(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let ms = unix_ns % 1_000_000_000 / 1_000_000;
    let (days, day_s) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (day_s / 3600, day_s % 3600 / 60, day_s % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// Reads back what `rfc3339` wrote (fraction optional) as seconds since the epoch.
pub fn parse_rfc3339_utc(text: &str) -> Option<f64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let num = |s: &str| s.parse::<u64>().ok();
    let mut d = date.splitn(3, '-').map(num);
    let (year, month, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.splitn(3, ':').map(num);
    let (h, m, s) = (t.next()??, t.next()??, t.next()??);
    let frac_s: f64 = format!("0.{frac}").parse().ok()?;
    let in_range = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && h < 24
        && m < 60
        && s <= 60;
    if !in_range {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some((days * 86_400 + h * 3600 + m * 60 + s) as f64 + frac_s)
}

/// (year, month, day) to days since 1970-01-01: Howard Hinnant's `days_from_civil`.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y % 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe).saturating_sub(719_468)
}
/// Days since 1970-01-01 to (year, month, day): Howard Hinnant's `civil_from_days`.
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates_and_back() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400, "2000-02-29T00:00:00.000Z"),
            (1_709_251_199, "2024-02-29T23:59:59.000Z"),
            (1_709_251_200, "2024-03-01T00:00:00.000Z"),
        ];
        for (secs, text) in cases {
            assert_eq!(rfc3339(secs * 1_000_000_000 + 999), text);
            assert_eq!(parse_rfc3339_utc(text), Some(secs as f64), "{text}");
        }
        assert_eq!(
            parse_rfc3339_utc("2023-11-14T22:13:20Z"),
            Some(1_700_000_000.0)
        );
        let bad = [
            "",
            "2023-11-14 22:13:20Z",
            "2023-13-01T00:00:00Z",
            "2023-11-14T22:13Z",
            "x-1-1T0:0:0Z",
        ];
        for text in bad {
            assert_eq!(parse_rfc3339_utc(text), None, "{text}");
        }
    }
}
