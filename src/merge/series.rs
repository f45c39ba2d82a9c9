//! The merged run's time series (docs/segments.md, "One report"): per
//! second, what the producers and consumers counted is summed over the
//! segments; latency percentiles come from the segments' per-second
//! histograms (`histograms/*.hlog`) merged, never from their percentiles; what
//! the sampler read off Redis is the first segment's (every segment sampled
//! the same server).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::error::{Error, Result};
use crate::metrics::Latency;
use crate::report::plot::Timeseries;

/// Columns the harness counts, summed over segments (a group's `processed` too).
const SUMMED: &[&str] = &["target_rate_per_s", "sent", "acked", "errors"];

/// Per hlog tag (`produce.latency`, `e2e.<group>`), per second, the merged histogram.
pub type Hlogs = BTreeMap<String, BTreeMap<u64, Latency>>;

/// Reads every `.hlog` of a run directory into `into`, merging by second.
pub fn add_hlogs(dir: &Path, into: &mut Hlogs) -> Result<()> {
    let hist = dir.join(crate::report::HISTOGRAM_DIR);
    let Ok(entries) = std::fs::read_dir(&hist) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(tag) = path
            .file_name()
            .and_then(|n| n.to_str()?.strip_suffix(".hlog"))
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let seconds = into.entry(tag.to_string()).or_default();
        for line in text.lines().filter(|l| !l.starts_with(['#', '"'])) {
            let mut fields = line.split(',');
            let start = fields.next().and_then(|s| s.parse::<f64>().ok());
            let encoded = fields.nth(2);
            if let (Some(start), Some(encoded)) = (start, encoded) {
                let second = start.round() as u64;
                if let Some(h) = Latency::decode(encoded) {
                    seconds.entry(second).or_default().add(&h);
                }
            }
        }
    }
    Ok(())
}

/// The merged CSV: `first`'s rows and Redis columns, the harness's counts
/// summed over `all`, latency percentiles from `hlogs`.
pub fn merge_timeseries(all: &[Timeseries], hlogs: &Hlogs) -> String {
    let Some(first) = all.first() else {
        return String::new();
    };
    let col = |ts: &Timeseries, name: &str| ts.headers.iter().position(|h| h == name);
    let mut rows = first.rows.clone();
    for (c, name) in first.headers.iter().enumerate() {
        if SUMMED.contains(&name.as_str()) || name.ends_with(".processed") {
            for (r, row) in rows.iter_mut().enumerate() {
                row[c] = (all.iter())
                    .filter_map(|ts| ts.rows.get(r).and_then(|row| row[col(ts, name)?]))
                    .reduce(|a, b| a + b);
            }
        } else if let Some((tag, q)) = latency_column(name) {
            for row in rows.iter_mut() {
                let second = row.first().copied().flatten().unwrap_or(0.0) as u64;
                row[c] = (hlogs.get(&tag))
                    .and_then(|s| s.get(&second))
                    .filter(|h| h.count() > 0)
                    .map(|h| {
                        let p = h.percentiles();
                        if q == 50 { p.p50 as f64 } else { p.p99 as f64 }
                    });
            }
        }
    }
    let mut out = first.headers.join(",");
    out.push('\n');
    for row in rows {
        let cells: Vec<String> = (row.iter())
            .map(|v| v.map(fmt_cell).unwrap_or_default())
            .collect();
        let _ = writeln!(out, "{}", cells.join(","));
    }
    out
}

fn fmt_cell(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// `produce_p99_us` → (`produce.latency`, 99); `<g>.e2e_p50_us` → (`e2e.<g>`, 50).
fn latency_column(name: &str) -> Option<(String, u32)> {
    let q = |s: &str| match s {
        "p50" => Some(50),
        "p99" => Some(99),
        _ => None,
    };
    if let Some(p) = name
        .strip_prefix("produce_")
        .and_then(|s| s.strip_suffix("_us"))
    {
        return Some(("produce.latency".into(), q(p)?));
    }
    let (group, rest) = name.rsplit_once('.')?;
    let p = rest.strip_prefix("e2e_")?.strip_suffix("_us")?;
    Some((format!("e2e.{group}"), q(p)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_and_latency_columns_come_from_histograms() {
        let a = Timeseries::parse(
            "t_s,sent,produce_p99_us,used_memory_bytes,g.processed\n0,10,5,100,9\n1,20,6,200,19\n",
        );
        let b = Timeseries::parse(
            "t_s,sent,produce_p99_us,used_memory_bytes,g.processed\n0,1,50,101,1\n1,2,60,201,2\n",
        );
        let mut hlogs = Hlogs::new();
        let mut h = Latency::new();
        h.record_us(40);
        hlogs
            .entry("produce.latency".into())
            .or_default()
            .insert(1, h);
        let merged = merge_timeseries(&[a, b], &hlogs);
        assert_eq!(
            merged,
            "t_s,sent,produce_p99_us,used_memory_bytes,g.processed\n0,11,,100,10\n1,22,40,200,21\n"
        );
    }
}
