//! The files of a run directory: `summary.json` (pretty, the source of truth),
//! `timeseries.csv` (one row per second) and `histograms/<tag>.hlog`
//! (HdrHistogram interval logs that HdrHistogram's own tools read).
//! Also reads `summary.json` back, for re-reporting old runs. `write_run`
//! ends by rendering the views (`html::render_views`: `.hgrm`, plots, `index.html`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::columns::{self, GroupColumn, Quantile};
use super::summary::Summary;
use crate::error::{Error, Result};
use crate::metrics::series::HlogInterval;
use crate::metrics::{Reading, Row, Series};

pub const SUMMARY_FILE: &str = "summary.json";
pub const TIMESERIES_FILE: &str = "timeseries.csv";
pub const HISTOGRAM_DIR: &str = "histograms";

/// Writes every file of a run into `dir` (created if missing); returns their paths.
/// `series` should be finished (`Series::finish`) so every interval is in the logs.
pub fn write_run(dir: &Path, summary: &Summary, series: &Series) -> Result<Vec<PathBuf>> {
    let hist_dir = dir.join(HISTOGRAM_DIR);
    fs::create_dir_all(&hist_dir).map_err(|source| Error::Write {
        path: hist_dir.clone(),
        source,
    })?;
    let mut written = Vec::new();

    let json = serde_json::to_string_pretty(summary).map_err(io::Error::from);
    written.push(write_file(&dir.join(SUMMARY_FILE), json.map(|j| j + "\n"))?);
    written.push(write_file(
        &dir.join(TIMESERIES_FILE),
        Ok(timeseries_csv(series)),
    )?);
    for (tag, intervals) in series.hlogs() {
        let path = hist_dir.join(format!("{tag}.hlog"));
        written.push(write_file(&path, Ok(hlog_text(&tag, summary, &intervals)))?);
    }
    written.extend(super::html::render_views(dir, summary)?);
    Ok(written)
}

/// A segment's raw ledgers, which `merge` settles (docs/segments.md, "One report").
pub const LEDGER_FILE: &str = "ledger.json";

pub fn write_ledger_file(dir: &Path, ledgers: &crate::metrics::LedgerFile) -> Result<PathBuf> {
    let json = serde_json::to_string(ledgers).map_err(io::Error::from);
    write_file(&dir.join(LEDGER_FILE), json)
}

/// Reads a run's `summary.json`, of this schema version or an older one.
pub fn read_summary(path: &Path) -> Result<Summary> {
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let text = fs::read_to_string(path).map_err(read_err)?;
    let invalid = |e| read_err(io::Error::new(io::ErrorKind::InvalidData, e));
    let value: serde_json::Value = serde_json::from_str(&text).map_err(invalid)?;
    serde_json::from_value(super::migrate::to_current(value)).map_err(invalid)
}

fn write_file(path: &Path, contents: io::Result<String>) -> Result<PathBuf> {
    contents
        .and_then(|text| fs::write(path, text))
        .map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(path.to_path_buf())
}

/// The CSV: produce columns, then per group, then per stream, then
/// server-wide, then a cluster's per shard (named in `columns`).
pub fn timeseries_csv(series: &Series) -> String {
    let groups = series.group_names();
    let streams: BTreeSet<&str> = (series.rows())
        .filter_map(|r| r.reading.as_ref())
        .flat_map(|s| s.streams.iter().map(|st| st.key.as_str()))
        .collect();
    let mut out = String::new();
    let mut header: Vec<String> = columns::PRODUCE.map(String::from).to_vec();
    for g in groups {
        header.extend(GroupColumn::ALL.map(|c| columns::group(g, c)));
    }
    header.extend(streams.iter().map(|s| columns::stream_length(s)));
    header.extend(columns::SERVER.map(String::from));
    let shards = (series.rows())
        .filter_map(|r| Some(r.reading.as_ref()?.shards.len()))
        .max()
        .unwrap_or(0);
    header.extend((0..shards).map(columns::shard_cpu_cores));
    push_csv_line(&mut out, &header);
    let mut previous: Option<&Reading> = None;
    for row in series.rows() {
        let mut cells = csv_row(row, groups, &streams);
        let reading = row.reading.as_ref();
        cells.extend((0..shards).map(|i| {
            (previous.zip(reading))
                .and_then(|(a, b)| shard_cores(a, b, i))
                .map_or(String::new(), |c| format!("{c:.4}"))
        }));
        previous = reading.or(previous);
        push_csv_line(&mut out, &cells);
    }
    out
}

/// Shard `i`'s Redis CPU between two readings, in cores; None when either
/// lacks it or another node answered (a failover restarts the counter).
fn shard_cores(a: &Reading, b: &Reading, i: usize) -> Option<f64> {
    let (x, y) = (a.shards.get(i)?, b.shards.get(i)?);
    let (c0, c1) = (x.cpu_s?, y.cpu_s?);
    (x.node == y.node && b.at_s > a.at_s && c1 >= c0).then(|| (c1 - c0) / (b.at_s - a.at_s))
}

/// One row's cells, in the header's order (`columns::PRODUCE` first).
fn csv_row(row: &Row, groups: &[String], streams: &BTreeSet<&str>) -> Vec<String> {
    let p = &row.produce;
    let mut cells = vec![
        row.interval.to_string(),
        row.target_rate_per_s
            .map(|r| r.to_string())
            .unwrap_or_default(),
        p.sent.to_string(),
        p.acked.to_string(),
        p.errors.to_string(),
        p.latency_us.p50.to_string(),
        p.latency_us.p99.to_string(),
    ];
    let reading = row.reading.as_ref();
    for (i, name) in groups.iter().enumerate() {
        let g = row.groups.get(i).cloned().unwrap_or_default();
        let gs = reading.and_then(|s| s.groups.iter().find(|gs| &gs.name == name));
        cells.extend(GroupColumn::ALL.map(|column| {
            match column {
                GroupColumn::Processed => g.processed.to_string(),
                GroupColumn::E2eUs(Quantile::P50) => g.e2e_us.p50.to_string(),
                GroupColumn::E2eUs(Quantile::P99) => g.e2e_us.p99.to_string(),
                GroupColumn::Lag => (gs.and_then(|gs| gs.lag))
                    .map(|l| l.to_string())
                    .unwrap_or_default(),
                GroupColumn::Pending => gs.map(|gs| gs.pending.to_string()).unwrap_or_default(),
            }
        }));
    }
    for key in streams {
        let st = reading.and_then(|s| s.streams.iter().find(|st| st.key == *key));
        cells.push(st.map(|st| st.length.to_string()).unwrap_or_default());
    }
    cells.push(
        reading
            .map(|s| s.used_memory_bytes.to_string())
            .unwrap_or_default(),
    );
    cells.push(
        reading
            .map(|s| s.ops_per_sec.to_string())
            .unwrap_or_default(),
    );
    cells
}

fn push_csv_line(out: &mut String, cells: &[String]) {
    let quoted: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
    out.push_str(&quoted.join(","));
    out.push('\n');
}

/// Quotes a field only when it needs it (RFC 4180).
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// An interval log in the format of HdrHistogram's `HistogramLogWriter`:
/// timestamps are seconds since StartTime, values are microseconds.
pub fn hlog_text(tag: &str, summary: &Summary, intervals: &[HlogInterval]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "#[Logged with streamdrill {} run {} tag {tag}]",
        summary.streamdrill_version, summary.run_id
    );
    let _ = writeln!(out, "#[Histogram log format version 1.3]");
    let _ = writeln!(
        out,
        "#[StartTime: {:.3} (seconds since epoch), {}]",
        summary.started_at_unix_s, summary.started_at
    );
    let _ = writeln!(
        out,
        "# values in microseconds (HistogramLogProcessor: -outputValueUnitRatio 1000 for ms)"
    );
    out.push_str("\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n");
    for i in intervals {
        let _ = writeln!(
            out,
            "{:.3},{:.3},{:.3},{}",
            i.start_s, i.len_s, i.max_us as f64, i.encoded
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::tags;
    use crate::metrics::{ConsumeStats, GroupReading, ProduceStats, Reading, StreamReading};
    use crate::report::summary::tests::test_summary;
    use hdrhistogram::Histogram;
    use hdrhistogram::serialization::interval_log::{
        IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
    };
    use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

    fn test_series() -> Series {
        let mut series = Series::new(vec!["billing".into(), "audit,eu".into()]);
        for t in 0..5u32 {
            let mut p = ProduceStats {
                sent: 100,
                acked: 100,
                ..Default::default()
            };
            (1..=100).for_each(|us| p.latency.record_us(us * u64::from(t + 1)));
            series.set_target(t, 100.0);
            series.add_produce(t, &p);
            let mut c = ConsumeStats {
                processed: 100,
                ..Default::default()
            };
            c.e2e.record_us(2_000);
            series.add_consume(t, 0, &c);
            series.add_reading(t, reading(t));
        }
        series.finish();
        series
    }

    fn reading(t: u32) -> Reading {
        Reading {
            at_s: f64::from(t),
            used_memory_bytes: 1_000_000 + u64::from(t),
            ops_per_sec: 250.5,
            cpu_s: Some(0.01 * f64::from(t)),
            harness_cpu_s: Some(0.02 * f64::from(t)),
            shards: Vec::new(),
            streams: vec![StreamReading {
                key: "sd:orders".into(),
                length: 100 * u64::from(t + 1),
            }],
            groups: vec![GroupReading {
                name: "billing".into(),
                lag: Some(3),
                pending: 7,
                head_distance: None,
            }],
        }
    }

    #[test]
    fn a_clusters_csv_has_each_shards_cpu_per_second() {
        use crate::metrics::cluster::ShardReading;
        let mut series = Series::default();
        for (t, a, b_node, b) in [(0, 1.0, "b", 5.0), (1, 1.5, "b", 5.25), (2, 1.7, "c", 0.1)] {
            let shard = |node: &str, cpu_s| ShardReading {
                node: node.into(),
                cpu_s: Some(cpu_s),
            };
            let reading = Reading {
                at_s: f64::from(t) + 0.5,
                shards: vec![shard("a", a), shard(b_node, b)],
                ..Default::default()
            };
            series.add_reading(t, reading);
        }
        let csv = timeseries_csv(&series);
        let lines: Vec<&str> = csv.lines().collect();
        assert!(
            lines[0].ends_with(",ops_per_sec,shard0.redis_cpu_cores,shard1.redis_cpu_cores"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].ends_with(",,"),
            "no rate before two readings: {}",
            lines[1]
        );
        assert!(lines[2].ends_with(",0.5000,0.2500"), "{}", lines[2]);
        // Shard 1's primary changed: a failover, no rate across it.
        assert!(lines[3].ends_with(",0.2000,"), "{}", lines[3]);
        let single = timeseries_csv(&test_series());
        assert!(
            !single.contains("redis_cpu_cores"),
            "one server: no shard columns"
        );
    }

    #[test]
    fn writes_all_files_and_reads_summary_back() {
        let dir = tempfile::tempdir().unwrap();
        let summary = test_summary();
        let written = write_run(dir.path(), &summary, &test_series()).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names[..7],
            [
                "summary.json",
                "timeseries.csv",
                "histograms/delivery.billing.hlog",
                "histograms/e2e.billing.hlog",
                "histograms/produce.latency.hlog",
                "histograms/produce.schedule_lag.hlog",
                "histograms/produce.service.hlog"
            ]
        );
        assert!(names.contains(&"histograms/produce.latency.hgrm".to_string()));
        assert!(names.contains(&"plots/throughput.png".to_string()));
        assert_eq!(names.last().map(String::as_str), Some("index.html"));
        assert_eq!(
            read_summary(&dir.path().join(SUMMARY_FILE)).unwrap(),
            summary
        );
        let missing = read_summary(&dir.path().join("nope.json")).unwrap_err();
        assert!(matches!(missing, Error::Read { .. }));
        fs::write(dir.path().join("bad.json"), "{").unwrap();
        assert!(
            read_summary(&dir.path().join("bad.json"))
                .unwrap_err()
                .to_string()
                .contains("bad.json")
        );
    }

    #[test]
    fn csv_has_a_header_and_one_row_per_second() {
        let csv = timeseries_csv(&test_series());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 6);
        assert_eq!(
            lines[0],
            "t_s,target_rate_per_s,sent,acked,errors,produce_p50_us,produce_p99_us,\
             billing.processed,billing.e2e_p50_us,billing.e2e_p99_us,billing.lag,billing.pending,\
             \"audit,eu.processed\",\"audit,eu.e2e_p50_us\",\"audit,eu.e2e_p99_us\",\"audit,eu.lag\",\"audit,eu.pending\",\
             sd:orders.length,used_memory_bytes,ops_per_sec"
        );
        assert_eq!(
            lines[1],
            "0,100,100,100,0,50,99,100,2000,2000,3,7,0,0,0,,,100,1000000,250.5"
        );
        assert!(
            lines[5].starts_with("4,100,100,100,0,250,495,"),
            "{}",
            lines[5]
        );
    }

    #[test]
    fn hlog_round_trips_through_hdrhistogram() {
        let series = test_series();
        let (tag, intervals) = (series.hlogs().into_iter())
            .find(|(t, _)| t == tags::PRODUCE_LATENCY)
            .unwrap();
        let text = hlog_text(&tag, &test_summary(), &intervals);
        let mut read = Vec::new();
        let mut start_time = None;
        for entry in IntervalLogIterator::new(text.as_bytes()) {
            match entry.unwrap() {
                LogEntry::StartTime(t) => start_time = Some(t.as_secs()),
                LogEntry::Interval(i) => {
                    let bytes =
                        crate::metrics::latency::base64_decode(i.encoded_histogram()).unwrap();
                    let h: Histogram<u64> =
                        Deserializer::new().deserialize(&mut &bytes[..]).unwrap();
                    read.push((i.start_timestamp().as_secs(), i.max(), h.len(), h.max()));
                }
                LogEntry::BaseTime(_) => panic!("no BaseTime written"),
            }
        }
        assert_eq!(start_time, Some(1_700_000_000));
        assert_eq!(read.len(), 5);
        assert_eq!(read[0], (0, 100.0, 100, 100));
        assert_eq!(read[4], (4, 500.0, 100, 500));
    }

    #[test]
    fn encoding_matches_hdrhistograms_own_writer() {
        let series = test_series();
        let (_, intervals) = (series.hlogs().into_iter())
            .find(|(t, _)| t == tags::PRODUCE_LATENCY)
            .unwrap();
        let mut h = Histogram::<u64>::new(3).unwrap();
        (1..=100).for_each(|us| h.record(us).unwrap());
        let mut buf = Vec::new();
        let mut serializer = V2DeflateSerializer::new();
        let mut writer = IntervalLogWriterBuilder::new()
            .begin_log_with(&mut buf, &mut serializer)
            .unwrap();
        let second = std::time::Duration::from_secs(1);
        writer
            .write_histogram(&h, std::time::Duration::ZERO, second, None)
            .unwrap();
        let theirs = String::from_utf8(buf).unwrap();
        assert_eq!(
            theirs.trim_end().rsplit(',').next().unwrap(),
            intervals[0].encoded
        );
    }
}
