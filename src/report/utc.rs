//! Wall-clock timestamps in reports and run names: an instant (ns since the
//! Unix epoch) written as RFC 3339 in UTC, or compact for a directory name,
//! by hand (Howard Hinnant's civil-date algorithm) rather than with a date
//! crate for two formats, and as seconds since the epoch.

/// Formats nanoseconds since the Unix epoch as RFC 3339 in UTC with
/// millisecond precision ("2023-11-14T22:13:20.250Z").
pub fn rfc3339(unix_ns: u64) -> String {
    let (year, month, day, h, m, s) = civil(unix_ns);
    let ms = unix_ns % 1_000_000_000 / 1_000_000;
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// The second of an instant in ISO 8601's basic format, UTC
/// ("20231114T221320"): sortable, and safe in a file name.
pub fn basic_stamp(unix_ns: u64) -> String {
    let (year, month, day, h, m, s) = civil(unix_ns);
    format!("{year:04}{month:02}{day:02}T{h:02}{m:02}{s:02}")
}

/// (year, month, day, hour, minute, second) of an instant, in UTC.
fn civil(unix_ns: u64) -> (u64, u64, u64, u64, u64, u64) {
    let secs = unix_ns / 1_000_000_000;
    let (days, day_s) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    (
        year,
        month,
        day,
        day_s / 3600,
        day_s % 3600 / 60,
        day_s % 60,
    )
}

/// The instant `rfc3339` writes, as seconds since the epoch: the same
/// millisecond, so `started_at` and `started_at_unix_s` agree to the bit.
pub fn unix_s(unix_ns: u64) -> f64 {
    let ms = unix_ns / 1_000_000;
    (ms / 1_000) as f64 + (ms % 1_000) as f64 / 1e3
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
    fn rfc3339_dates_and_seconds() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (951_782_400, "2000-02-29T00:00:00.000Z"),
            (1_709_251_199, "2024-02-29T23:59:59.000Z"),
            (1_709_251_200, "2024-03-01T00:00:00.000Z"),
        ];
        for (secs, text) in cases {
            assert_eq!(rfc3339(secs * 1_000_000_000 + 999), text);
            assert_eq!(unix_s(secs * 1_000_000_000 + 999), secs as f64, "{text}");
        }
        let ns = 1_700_000_000_250_999_999;
        assert_eq!(rfc3339(ns), "2023-11-14T22:13:20.250Z");
        assert_eq!(basic_stamp(ns), "20231114T221320");
        assert_eq!(
            unix_s(ns),
            1_700_000_000.25,
            "the millisecond rfc3339 writes"
        );
    }
}
