//! `streamdrill merge`: the run directories of one run's segments joined
//! into one run directory, as if one process had run the scenario
//! (docs/segments.md, "One report"). The per-event ledger is settled again
//! from the segments' raw ledgers (`ledger.json`); latency figures come
//! from their histograms merged; counts add up; each segment's own figures
//! are kept in `segments`.

mod figures;
mod series;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::metrics::LedgerFile;
use crate::metrics::segment::SegmentFigures;
use crate::report::plot::Timeseries;
use crate::report::{self, Summary};

/// One segment's run directory, read.
pub(crate) struct Part {
    pub dir: PathBuf,
    pub summary: Summary,
    pub ledgers: LedgerFile,
}

pub struct Merged {
    pub dir: PathBuf,
    pub summary: Summary,
    /// Segments of the run whose directory was not given: their events are
    /// unaccounted for, and the merged run fails.
    pub missing: Vec<u32>,
}

/// Reads the segments' directories, merges them and writes `<out>/<run id>`.
pub fn merge_dirs(dirs: &[PathBuf], out: &Path) -> Result<Merged> {
    let mut parts = dirs
        .iter()
        .map(|d| read_part(d))
        .collect::<Result<Vec<_>>>()?;
    parts.sort_by_key(|p| p.ledgers.index);
    let first = &parts[0];
    let (run_id, count) = (first.summary.run_id.clone(), first.ledgers.count);
    let scenario = serde_json::to_value(&first.summary.scenario).ok();
    for p in &parts[1..] {
        if serde_json::to_value(&p.summary.scenario).ok() != scenario {
            return Err(refuse(
                &p.dir,
                &format!(
                    "ran another scenario than {} (its resolved scenario in summary.json \
                     differs): merge the segments of one run",
                    first.dir.display()
                ),
            ));
        }
        if p.summary.run_id != run_id || p.ledgers.count != count {
            return Err(refuse(
                &p.dir,
                &format!(
                    "is segment {}/{} of run {}, not of run {run_id} ({count} segments): merge \
                     the directories of one run",
                    p.ledgers.index, p.ledgers.count, p.summary.run_id
                ),
            ));
        }
    }
    for pair in parts.windows(2) {
        if pair[0].ledgers.index == pair[1].ledgers.index {
            return Err(refuse(
                &pair[1].dir,
                &format!(
                    "is segment {} again: give each segment once",
                    pair[1].ledgers.index
                ),
            ));
        }
    }
    let missing: Vec<u32> = (0..count)
        .filter(|i| !parts.iter().any(|p| p.ledgers.index == *i))
        .collect();
    let mut hlogs = series::Hlogs::new();
    for p in &parts {
        series::add_hlogs(&p.dir, &mut hlogs)?;
    }
    let summary = figures::merge(&parts, &missing)?;
    let dir = out.join(&run_id);
    std::fs::create_dir_all(dir.join(report::HISTOGRAM_DIR)).map_err(|source| Error::Write {
        path: dir.clone(),
        source,
    })?;
    let series: Vec<Timeseries> = (parts.iter())
        .map(|p| Timeseries::read(&p.dir.join(report::TIMESERIES_FILE)))
        .collect::<Result<_>>()?;
    let groups: Vec<String> = summary.groups.iter().map(|g| g.name.clone()).collect();
    let csv = series::merge_timeseries(&series, &hlogs, &groups);
    write(&dir.join(report::TIMESERIES_FILE), csv)?;
    let json = serde_json::to_string_pretty(&summary)
        .map_err(|e| Error::Internal(format!("summary.json: {e}")))?;
    write(&dir.join(report::SUMMARY_FILE), json + "\n")?;
    report::render_views(&dir, &summary)?;
    Ok(Merged {
        dir,
        summary,
        missing,
    })
}

fn read_part(dir: &Path) -> Result<Part> {
    let summary = report::read_summary(&dir.join(report::SUMMARY_FILE))?;
    let path = dir.join(report::LEDGER_FILE);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
        path: path.clone(),
        source,
    })?;
    let ledgers: LedgerFile = serde_json::from_str(&text).map_err(|e| {
        refuse(
            dir,
            &format!("has an unreadable {}: {e}", report::LEDGER_FILE),
        )
    })?;
    if summary.segment.is_none() {
        return Err(refuse(
            dir,
            "is not a segment's run (no `segment` in summary.json): merge the directories \
             `run --segment I/N` wrote",
        ));
    }
    Ok(Part {
        dir: dir.to_path_buf(),
        summary,
        ledgers,
    })
}

fn refuse(dir: &Path, why: &str) -> Error {
    Error::Usage(format!("merge: {} {why}", dir.display()))
}

fn write(path: &Path, text: String) -> Result<()> {
    std::fs::write(path, text).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

/// The per-segment table's row of a segment that ran.
pub(crate) fn figures_of(p: &Part) -> SegmentFigures {
    let s = &p.summary;
    SegmentFigures {
        index: p.ledgers.index,
        dir: p.dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        clock: s.segment.as_ref().map(|g| g.clock).unwrap_or_default(),
        clock_end: s.segment.as_ref().and_then(|g| g.clock_end),
        produce_sent: s.produce.sent + s.warmup.produce_sent,
        produce_acked: s.produce.acked + s.warmup.produce_acked,
        produce_errors: s.produce.errors + s.warmup.produce_errors,
        produce_p99_us: s.produce.latency_us.p99,
        processings: (s.groups.iter())
            .map(|g| g.measured.processings + g.warmup.as_ref().map_or(0, |w| w.processings))
            .collect(),
        planned_events: 0,
    }
}
