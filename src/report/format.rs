//! How figures read as text, one definition for every view (terminal,
//! HTML, SLO checks, comparisons).

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
    fn absent_figures_read_as_a_dash_not_zero() {
        assert_eq!((dash_or(None), dash_or(Some(0))), ("-".into(), "0".into()));
    }
}
