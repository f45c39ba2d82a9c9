//! How figures read as text, one definition for every view (terminal,
//! HTML, SLO checks, comparisons).

use super::groups::GroupSummary;
use super::summary::Summary;

/// A microsecond value with a readable unit and 3 significant digits: "850µs", "1.23ms", "12.3s".
pub fn format_us(us: u64) -> String {
    if us < 1_000 {
        return format!("{us}µs");
    }
    let (value, unit) = if us < 1_000_000 {
        (us as f64 / 1e3, "ms")
    } else {
        (us as f64 / 1e6, "s")
    };
    let decimals = if value < 10.0 {
        2
    } else if value < 100.0 {
        1
    } else {
        0
    };
    let text = format!("{value:.decimals$}");
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        &text
    };
    format!("{text}{unit}")
}

/// A rate (events/s, entries/s) with thousands separators and no unit (the
/// column or sentence carries it): "18,400", "-412", "12.5". Whole numbers
/// from 100 up; "-" for a value that is not a number.
pub fn format_rate(rate_per_s: f64) -> String {
    if !rate_per_s.is_finite() {
        return "-".into();
    }
    if rate_per_s.abs() < 100.0 {
        return trim_decimals(format!("{rate_per_s:.1}"));
    }
    let sign = if rate_per_s < 0.0 { "-" } else { "" };
    format!("{sign}{}", thousands(&format!("{:.0}", rate_per_s.abs())))
}

/// A count with thousands separators: "75,600,000".
pub fn format_count(n: u64) -> String {
    thousands(&n.to_string())
}

/// Digits grouped by three with commas.
fn thousands(digits: &str) -> String {
    let mut grouped = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(d);
    }
    grouped
}

/// A size in bytes, binary units, 3 significant digits: "96.4 B", "1.5 KiB", "12.3 GiB".
pub fn format_bytes(bytes: f64) -> String {
    if !bytes.is_finite() {
        return "-".into();
    }
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes;
    let mut unit = 0;
    while value.abs() >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{} {}", significant(value), units[unit])
}

/// A span of seconds in the unit people plan with: "45 s", "12.5 min", "1.5 h", "7 d".
pub fn format_seconds(s: f64) -> String {
    if !s.is_finite() {
        return "-".into();
    }
    let (value, unit) = match s.abs() {
        a if a < 60.0 => (s, "s"),
        a if a < 3_600.0 => (s / 60.0, "min"),
        a if a < 2.0 * 86_400.0 => (s / 3_600.0, "h"),
        _ => (s / 86_400.0, "d"),
    };
    format!("{} {unit}", significant(value))
}

/// 3 significant digits (at most 2 decimals), trailing zeros dropped.
fn significant(value: f64) -> String {
    let decimals = match value.abs() {
        a if a < 10.0 => 2,
        a if a < 100.0 => 1,
        _ => 0,
    };
    trim_decimals(format!("{value:.decimals$}"))
}

fn trim_decimals(text: String) -> String {
    if text.contains('.') {
        let trimmed = text.trim_end_matches('0').trim_end_matches('.');
        // "-0.0" rounds to nothing worth a sign.
        if trimmed == "-0" {
            "0".into()
        } else {
            trimmed.into()
        }
    } else {
        text
    }
}

/// A count, or "-" for a figure the summary's schema did not record
/// (never a silent 0).
pub fn dash_or(n: Option<u64>) -> String {
    n.map_or("-".into(), |n| n.to_string())
}

/// What verify's expected total holds beyond the acknowledged XADDs:
/// " + 3 landed unacked" after a read-back, " (+ up to 3 indeterminate,
/// not read back)" without one, nothing when nothing was in doubt.
pub fn verify_beyond_acked(summary: &Summary) -> String {
    let v = &summary.verify;
    match (v.landed_unacked, &summary.durability) {
        (0, None) if v.indeterminate > 0 => {
            format!(
                " (+ up to {} indeterminate, not read back)",
                v.indeterminate
            )
        }
        (0, _) => String::new(),
        (n, _) => format!(" + {n} landed unacked"),
    }
}

/// The projection's own latency and what Redis spent on it, in words
/// (docs/event-sourcing.md, "What a projection costs").
pub fn projection_cost(g: &GroupSummary) -> String {
    let latency = match &g.measured.projection_latency_us {
        Some(l) if l.count > 0 => format!(
            "writes answered in p50 {} p99 {} max {}",
            format_us(l.p50),
            format_us(l.p99),
            format_us(l.max)
        ),
        _ => "no measured writes".to_string(),
    };
    let p = g.projection.as_ref();
    let redis = match (
        p.and_then(|p| p.redis_cost.as_ref()),
        p.and_then(|p| p.redis_cost_note.as_ref()),
    ) {
        (Some(c), _) => format!(
            "Redis {} per event ({} in {} {} calls)",
            c.usec_per_event
                .map_or("-".to_string(), |u| format!("{u:.1}µs")),
            format_us(c.usec),
            format_count(c.calls),
            c.commands.join("+").to_uppercase(),
        ),
        (None, Some(why)) => format!("Redis time unknown: {why}"),
        (None, None) => "Redis time not measured".to_string(),
    };
    format!("{latency}; {redis}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_readable() {
        let cases = [
            (0, "0µs"),
            (850, "850µs"),
            (1_234, "1.23ms"),
            (10_007, "10ms"),
            (12_345, "12.3ms"),
            (250_000, "250ms"),
            (1_500_000, "1.5s"),
            (3_600_000_000, "3600s"),
        ];
        for (us, text) in cases {
            assert_eq!(format_us(us), text, "{us} µs");
        }
    }

    #[test]
    fn rates_sizes_and_spans_are_readable() {
        let rates = [
            (18_400.0, "18,400"),
            (1_234_567.4, "1,234,567"),
            (100.0, "100"),
            (999.6, "1,000"),
            (12.54, "12.5"),
            (3.0, "3"),
            (-412.0, "-412"),
            (-0.01, "0"),
            (f64::NAN, "-"),
        ];
        for (rate, text) in rates {
            assert_eq!(format_rate(rate), text, "{rate}");
        }
        assert_eq!(format_count(75_600_000), "75,600,000");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_bytes(96.44), "96.4 B");
        assert_eq!(format_bytes(1_536.0), "1.5 KiB");
        assert_eq!(format_bytes(3.0 * 1024.0 * 1024.0 * 1024.0), "3 GiB");
        assert_eq!(format_bytes(f64::INFINITY), "-");
        assert_eq!(format_seconds(45.0), "45 s");
        assert_eq!(format_seconds(750.0), "12.5 min");
        assert_eq!(format_seconds(5_400.0), "1.5 h");
        assert_eq!(format_seconds(7.0 * 86_400.0), "7 d");
    }

    #[test]
    fn absent_figures_read_as_a_dash_not_zero() {
        assert_eq!((dash_or(None), dash_or(Some(0))), ("-".into(), "0".into()));
    }
}
