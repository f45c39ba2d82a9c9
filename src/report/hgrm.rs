//! `.hgrm` percentile distribution files, in the format of HdrHistogram's
//! `outputPercentileDistribution` (what `HistogramLogProcessor` writes and the
//! online HdrHistogram plotter reads). One file per measured-phase histogram
//! in `summary.json`, beside the `.hlog` interval logs. Values are written in
//! milliseconds, the unit HdrHistogram's plotter labels its axis with.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use hdrhistogram::Histogram;

use super::files::HISTOGRAM_DIR;
use super::summary::Summary;
use crate::error::{Error, Result};
use crate::metrics::Latency;

/// Microseconds per written unit (milliseconds).
pub const OUTPUT_UNIT_RATIO: f64 = 1000.0;
/// Percentile steps per halving of the remaining distance (HdrHistogram's default).
const TICKS_PER_HALF: u32 = 5;

/// Writes `histograms/<tag>.hgrm` for every non-empty histogram in the summary.
pub fn write_hgrms(dir: &Path, summary: &Summary) -> Result<Vec<PathBuf>> {
    let hist_dir = dir.join(HISTOGRAM_DIR);
    std::fs::create_dir_all(&hist_dir).map_err(|source| Error::Write {
        path: hist_dir.clone(),
        source,
    })?;
    let mut written = Vec::new();
    for (tag, encoded) in &summary.histograms {
        let Some(latency) = Latency::decode(encoded).filter(|l| !l.is_empty()) else {
            continue;
        };
        let path = hist_dir.join(format!("{tag}.hgrm"));
        let text = hgrm_text(latency.histogram(), OUTPUT_UNIT_RATIO);
        std::fs::write(&path, text).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    Ok(written)
}

/// The percentile distribution of `h`, values divided by `unit_ratio`.
pub fn hgrm_text(h: &Histogram<u64>, unit_ratio: f64) -> String {
    let digits = usize::from(h.sigfig());
    let mut out = String::new();
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(TICKS_PER_HALF) {
        total += v.count_since_last_iteration();
        let value = v.value_iterated_to() as f64 / unit_ratio;
        let q = v.quantile_iterated_to();
        if q < 1.0 {
            let inverse = 1.0 / (1.0 - q);
            let _ = writeln!(
                out,
                "{value:>12.digits$} {q:>2.12} {total:>10} {inverse:>14.2}"
            );
        } else {
            let _ = writeln!(out, "{value:>12.digits$} {q:>2.12} {total:>10}");
        }
    }
    let (mean, stdev) = (h.mean() / unit_ratio, h.stdev() / unit_ratio);
    let max = h.max() as f64 / unit_ratio;
    let _ = writeln!(
        out,
        "#[Mean    = {mean:>12.digits$}, StdDeviation   = {stdev:>12.digits$}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:>12.digits$}, Total count    = {:>12}]",
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        sub_bucket_count(h.sigfig())
    );
    out
}

/// As HdrHistogram computes it: the power of two holding 2 * 10^sigfig.
fn sub_bucket_count(sigfig: u8) -> u64 {
    let largest = 2.0 * 10f64.powi(i32::from(sigfig));
    1 << (largest.log2().ceil() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (value, quantile, total count) rows and the `Total count` footer.
    pub(crate) fn parse(text: &str) -> (Vec<(f64, f64, u64)>, u64) {
        let mut rows = Vec::new();
        let mut total = 0;
        for line in text.lines().skip(2) {
            if let Some(rest) = line.strip_prefix("#[Max") {
                total = rest
                    .rsplit('=')
                    .next()
                    .unwrap()
                    .trim_end_matches(']')
                    .trim()
                    .parse()
                    .unwrap();
            } else if !line.starts_with('#') {
                let cells: Vec<&str> = line.split_whitespace().collect();
                rows.push((
                    cells[0].parse().unwrap(),
                    cells[1].parse().unwrap(),
                    cells[2].parse().unwrap(),
                ));
            }
        }
        (rows, total)
    }

    #[test]
    fn matches_hdrhistograms_layout_and_numbers() {
        let mut l = Latency::new();
        (1..=1000).for_each(|us| l.record_us(us * 10));
        let text = hgrm_text(l.histogram(), OUTPUT_UNIT_RATIO);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("       Value     Percentile TotalCount 1/(1-Percentile)")
        );
        assert_eq!(lines.next(), Some(""));
        assert_eq!(
            lines.next(),
            Some("       0.010 0.000000000000          1           1.00")
        );
        assert!(
            text.contains("#[Max     =       10.007, Total count    =         1000]"),
            "{text}"
        );
        assert!(text.contains("SubBuckets     =         2048]"));
        let (rows, total) = parse(&text);
        assert_eq!(total, 1000);
        let last = rows.last().unwrap();
        assert_eq!((last.1, last.2), (1.0, 1000));
        assert_eq!(last.0, l.percentiles().max as f64 / 1000.0);
        assert!(
            rows.windows(2)
                .all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1 && w[0].2 <= w[1].2)
        );
        let p50 = rows.iter().find(|r| r.1 >= 0.5).unwrap();
        assert_eq!(p50.0, l.percentiles().p50 as f64 / 1000.0);
    }

    #[test]
    fn writes_one_file_per_histogram() {
        let dir = tempfile::tempdir().unwrap();
        let summary = crate::report::summary::tests::test_summary();
        let written = write_hgrms(dir.path(), &summary).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into())
            .collect();
        assert!(
            names.contains(&"produce.latency.hgrm".to_string()),
            "{names:?}"
        );
        assert!(names.contains(&"e2e.billing.hgrm".to_string()), "{names:?}");
        let text = std::fs::read_to_string(dir.path().join("histograms/e2e.billing.hgrm")).unwrap();
        assert_eq!(
            parse(&text).1,
            summary.groups[0].measured.e2e_latency_us.count
        );
    }
}
