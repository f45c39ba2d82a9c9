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
use crate::metrics::{Latency, tags};
use crate::report::columns::{
    ACKED, ERRORS, GroupColumn, Quantile, SENT, TARGET_RATE_PER_S, group, produce_latency_us,
};
use crate::report::plot::Timeseries;

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

/// How a column of the merged CSV is made.
enum Rule {
    /// What the harness counted: the segments' sum.
    Sum,
    /// A percentile (50 or 99) of this tag's merged per-second histogram.
    Latency(String, Quantile),
}

/// The harness's columns (`report::columns`), by name; every other is Redis's.
fn rules(groups: &[String]) -> Vec<(String, Rule)> {
    let mut rules: Vec<(String, Rule)> = [TARGET_RATE_PER_S, SENT, ACKED, ERRORS]
        .into_iter()
        .map(|c| (c.to_string(), Rule::Sum))
        .collect();
    for q in [Quantile::P50, Quantile::P99] {
        let tag = tags::PRODUCE_LATENCY.to_string();
        rules.push((produce_latency_us(q).to_string(), Rule::Latency(tag, q)));
        for g in groups {
            let rule = Rule::Latency(tags::e2e(g), q);
            rules.push((group(g, GroupColumn::E2eUs(q)), rule));
        }
    }
    rules.extend(
        groups
            .iter()
            .map(|g| (group(g, GroupColumn::Processed), Rule::Sum)),
    );
    rules
}

/// The merged CSV: `first`'s rows and Redis columns, the harness's counts
/// summed over `all`, latency percentiles from `hlogs`.
pub fn merge_timeseries(all: &[Timeseries], hlogs: &Hlogs, groups: &[String]) -> String {
    let Some(first) = all.first() else {
        return String::new();
    };
    let col = |ts: &Timeseries, name: &str| ts.headers.iter().position(|h| h == name);
    let rules = rules(groups);
    let mut rows = first.rows.clone();
    for (c, name) in first.headers.iter().enumerate() {
        match rules.iter().find(|(n, _)| n == name).map(|(_, r)| r) {
            Some(Rule::Sum) => {
                for (r, row) in rows.iter_mut().enumerate() {
                    row[c] = (all.iter())
                        .filter_map(|ts| ts.rows.get(r).and_then(|row| row[col(ts, name)?]))
                        .reduce(|a, b| a + b);
                }
            }
            Some(Rule::Latency(tag, q)) => {
                for row in rows.iter_mut() {
                    let second = row.first().copied().flatten().unwrap_or(0.0) as u64;
                    row[c] = (hlogs.get(tag))
                        .and_then(|s| s.get(&second))
                        .filter(|h| h.count() > 0)
                        .map(|h| {
                            let p = h.percentiles();
                            match q {
                                Quantile::P50 => p.p50 as f64,
                                Quantile::P99 => p.p99 as f64,
                            }
                        });
                }
            }
            None => {}
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
        let merged = merge_timeseries(&[a, b], &hlogs, &["g".to_string()]);
        assert_eq!(
            merged,
            "t_s,sent,produce_p99_us,used_memory_bytes,g.processed\n0,11,,100,10\n1,22,40,200,21\n"
        );
    }
}
