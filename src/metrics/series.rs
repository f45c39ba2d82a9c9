//! The run's time series: one row per second, plus the interval histograms
//! that become HdrHistogram interval logs.
//!
//! The collector feeds it: per-interval snapshots from producers and consumers
//! (`add_produce`, `add_consume`, any number per interval), the sampler's Redis
//! readings (`add_reading`) and the target rate (`set_target`). The report writes
//! `timeseries.csv` and `histograms/*.hlog` from it.
//!
//! Memory stays small because a row never keeps a histogram: while an interval
//! is open its snapshots are merged into a few `Latency`s; when it closes (once
//! data for an interval `OPEN_INTERVALS` later arrives, or at `finish`) each
//! histogram is reduced to its `Percentiles` for the row and to one V2-deflate
//! base64 string (typically well under 2 KB) for the logs, then dropped. Only
//! `OPEN_INTERVALS + 1` intervals' histograms are alive at any time. A snapshot
//! arriving for an already closed interval reopens it by decoding its strings.
//! Strings older than `KEEP_CLOSED` intervals move to a temporary file
//! (`spill`), so memory stays flat however long the run; a snapshot later
//! still (never seen: actors report every second) becomes an entry of its own.

use std::collections::{BTreeMap, BTreeSet};

use super::latency::{Latency, Percentiles};
use super::spill::Spill;
use super::stats::{ConsumeStats, Merge, ProduceStats};
use super::tags;

/// How many intervals behind the newest one stay open for late snapshots.
pub const OPEN_INTERVALS: u32 = 2;
/// How many closed intervals keep their interval-log entries in memory,
/// where a late snapshot can still merge into them.
pub const KEEP_CLOSED: u32 = 30;
/// Length of one interval, in seconds.
pub const INTERVAL_S: f64 = 1.0;

/// What the sampler reads from Redis once per interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Reading {
    /// Seconds since run start when the reading was taken.
    pub at_s: f64,
    pub used_memory_bytes: u64,
    pub ops_per_sec: f64,
    /// INFO used_cpu_user + used_cpu_sys: Redis's CPU seconds since it started.
    pub cpu_s: Option<f64>,
    /// This process's CPU seconds when the reading was asked for.
    pub harness_cpu_s: Option<f64>,
    /// A cluster's primaries, each read on its own, in slot order; empty
    /// for one server.
    pub shards: Vec<super::cluster::ShardReading>,
    pub streams: Vec<StreamReading>,
    pub groups: Vec<GroupReading>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamReading {
    pub key: String,
    pub length: u64,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct GroupReading {
    /// The group's name as in `Series::group_names`.
    pub name: String,
    /// XINFO GROUPS `lag`; `None` when Redis cannot tell (e.g. after trimming).
    pub lag: Option<u64>,
    pub pending: u64,
    /// On a trimmed stream, entries between its cursor and the trimmed head
    /// (`trim::head_distance`, the least over partitions); None otherwise.
    pub head_distance: Option<u64>,
}

/// Producer counters and percentiles (µs) of one interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProduceRow {
    pub sent: u64,
    pub acked: u64,
    pub errors: u64,
    pub latency_us: Percentiles,
    pub service_us: Percentiles,
    pub schedule_lag_us: Percentiles,
}

/// One group's counters and percentiles (µs) of one interval.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ConsumeRow {
    pub delivered: u64,
    pub processed: u64,
    pub acked: u64,
    pub errors: u64,
    pub e2e_us: Percentiles,
    pub delivery_us: Percentiles,
}

/// One second of the run. Percentiles are filled when the interval closes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Row {
    /// Seconds since run start at which this interval begins.
    pub interval: u32,
    pub target_rate_per_s: Option<f64>,
    pub produce: ProduceRow,
    /// Indexed like `Series::group_names`.
    pub groups: Vec<ConsumeRow>,
    pub reading: Option<Reading>,
}

/// One interval histogram of an HdrHistogram interval log.
#[derive(Clone, Debug, PartialEq)]
pub struct HlogInterval {
    pub start_s: f64,
    pub len_s: f64,
    pub max_us: u64,
    /// V2-deflate, base64: see `Latency::encode`.
    pub encoded: String,
}

/// Histograms of an interval that is still open (counters go straight to the row).
#[derive(Default)]
struct OpenInterval {
    produce: Option<ProduceStats>,
    groups: BTreeMap<usize, ConsumeStats>,
}

#[derive(Default)]
pub struct Series {
    group_names: Vec<String>,
    rows: BTreeMap<u32, Row>,
    open: BTreeMap<u32, OpenInterval>,
    closed: BTreeSet<u32>,
    hlogs: BTreeMap<String, Vec<HlogInterval>>,
    spilled: Spill,
    /// Intervals before this one have their entries in `spilled`.
    spilled_below: u32,
}

impl Series {
    /// `group_names[i]` names the group that `add_consume(_, i, _)` reports.
    pub fn new(group_names: Vec<String>) -> Self {
        Series {
            group_names,
            ..Default::default()
        }
    }

    pub fn group_names(&self) -> &[String] {
        &self.group_names
    }

    pub fn add_produce(&mut self, interval: u32, stats: &ProduceStats) {
        let row = &mut self.row_mut(interval).produce;
        row.sent += stats.sent;
        row.acked += stats.acked;
        row.errors += stats.errors();
        let open = self.open_mut(interval);
        match &mut open.produce {
            Some(p) => p.merge(stats),
            None => open.produce = Some(histograms_only_produce(stats)),
        }
        self.close_stale(interval);
    }

    pub fn add_consume(&mut self, interval: u32, group: usize, stats: &ConsumeStats) {
        while self.group_names.len() <= group {
            self.group_names
                .push(format!("group{}", self.group_names.len()));
        }
        let row = &mut self.row_mut(interval).groups[group];
        row.delivered += stats.delivered;
        row.processed += stats.processed;
        row.acked += stats.acked;
        row.errors += stats.errors;
        let open = self.open_mut(interval);
        let hists = open.groups.entry(group).or_default();
        hists.e2e.add(&stats.e2e);
        hists.delivery.add(&stats.delivery);
        self.close_stale(interval);
    }

    /// Records the sampler's reading; a second reading for the same interval replaces the first.
    pub fn add_reading(&mut self, interval: u32, reading: Reading) {
        self.row_mut(interval).reading = Some(reading);
    }

    pub fn set_target(&mut self, interval: u32, target_rate_per_s: f64) {
        self.row_mut(interval).target_rate_per_s = Some(target_rate_per_s);
    }

    /// Closes every interval: call once the run's last snapshot is in, before reading rows.
    pub fn finish(&mut self) {
        self.close_before(u32::MAX);
    }

    /// Closes intervals before `interval` (percentiles computed, histograms encoded).
    pub fn close_before(&mut self, interval: u32) {
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() >= interval {
                break;
            }
            let (at, open) = entry.remove_entry();
            self.close(at, open);
        }
    }

    /// Rows in time order. Percentiles of intervals not yet closed are zero.
    pub fn rows(&self) -> impl Iterator<Item = &Row> {
        self.rows.values()
    }

    /// The newest closed row: its percentiles are final (what
    /// `timeseries.csv` gets), unless a snapshot arrives later still.
    pub fn latest_closed(&self) -> Option<&Row> {
        self.rows.get(self.closed.last()?)
    }

    /// The newest row before `interval`, for a progress line: while its
    /// interval is still open, percentiles come from the histograms so far.
    pub fn latest_before(&self, interval: u32) -> Option<Row> {
        let (at, row) = self.rows.range(..interval).next_back()?;
        let mut row = row.clone();
        if let Some(open) = self.open.get(at) {
            set_percentiles(&mut row, open);
        }
        Some(row)
    }

    /// Interval logs by tag ("produce.latency", "e2e.<group>", …), each in
    /// time order, the spilled entries read back.
    pub fn hlogs(&self) -> Vec<(String, Vec<HlogInterval>)> {
        let tags: BTreeSet<&str> = (self.hlogs.keys().map(String::as_str))
            .chain(self.spilled.tags())
            .collect();
        (tags.into_iter())
            .map(|tag| {
                let mut log = self.spilled.read(tag);
                log.extend(self.hlogs.get(tag).into_iter().flatten().cloned());
                // Stable: a late snapshot's entry stays after the one it missed.
                log.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
                (tag.to_string(), log)
            })
            .collect()
    }

    /// Entries held in memory, over all tags.
    #[cfg(test)]
    fn hlog_entries_in_memory(&self) -> usize {
        self.hlogs.values().map(Vec::len).sum()
    }

    pub fn open_intervals(&self) -> usize {
        self.open.len()
    }

    fn row_mut(&mut self, interval: u32) -> &mut Row {
        let groups = self.group_names.len();
        let row = self.rows.entry(interval).or_insert_with(|| Row {
            interval,
            ..Default::default()
        });
        row.groups
            .resize_with(groups.max(row.groups.len()), Default::default);
        row
    }

    fn open_mut(&mut self, interval: u32) -> &mut OpenInterval {
        if self.closed.remove(&interval) {
            let reopened = self.reopen(interval);
            self.open.insert(interval, reopened);
        }
        self.open.entry(interval).or_default()
    }

    fn close_stale(&mut self, newest: u32) {
        self.close_before(newest.saturating_sub(OPEN_INTERVALS));
    }

    fn close(&mut self, interval: u32, open: OpenInterval) {
        self.closed.insert(interval);
        if let Some(p) = &open.produce {
            for (tag, latency) in produce_tags(p) {
                self.push_hlog(tag.to_string(), interval, latency);
            }
        }
        for (group, c) in &open.groups {
            let name = &self.group_names[*group];
            let (e2e, delivery) = (tags::e2e(name), tags::delivery(name));
            self.push_hlog(e2e, interval, &c.e2e);
            self.push_hlog(delivery, interval, &c.delivery);
        }
        // A snapshot for an interval already spilled holds only itself: its
        // row keeps the percentiles of everything else.
        if interval >= self.spilled_below {
            set_percentiles(self.row_mut(interval), &open);
        }
        self.spill_before(interval.saturating_sub(KEEP_CLOSED));
    }

    /// Moves the entries of intervals before `interval` to the spill file;
    /// those it cannot write stay in memory.
    fn spill_before(&mut self, interval: u32) {
        self.spilled_below = self.spilled_below.max(interval);
        let limit_s = f64::from(interval) * INTERVAL_S;
        for (tag, log) in &mut self.hlogs {
            let old = log.partition_point(|e| e.start_s < limit_s);
            if old > 0 && self.spilled.write(tag, &log[..old]).is_ok() {
                log.drain(..old);
            }
        }
    }

    fn push_hlog(&mut self, tag: String, interval: u32, latency: &Latency) {
        let entry = HlogInterval {
            start_s: f64::from(interval) * INTERVAL_S,
            len_s: INTERVAL_S,
            max_us: latency.percentiles().max,
            encoded: latency.encode(),
        };
        let log = self.hlogs.entry(tag).or_default();
        let at = log.partition_point(|e| e.start_s < entry.start_s);
        log.insert(at, entry);
    }

    /// Decodes a closed interval's histograms so a late snapshot can merge into them.
    fn reopen(&mut self, interval: u32) -> OpenInterval {
        let mut open = OpenInterval::default();
        let mut produce = ProduceStats::default();
        let mut had_produce = false;
        for (tag, slot) in [
            (tags::PRODUCE_LATENCY, &mut produce.latency),
            (tags::PRODUCE_SERVICE, &mut produce.service),
            (tags::PRODUCE_SCHEDULE_LAG, &mut produce.schedule_lag),
        ] {
            had_produce |= self.take_hlog(tag, interval, slot);
        }
        open.produce = had_produce.then_some(produce);
        for group in 0..self.group_names.len() {
            let name = &self.group_names[group];
            let (e2e_tag, delivery_tag) = (tags::e2e(name), tags::delivery(name));
            let mut c = ConsumeStats::default();
            let e2e = self.take_hlog(&e2e_tag, interval, &mut c.e2e);
            let delivery = self.take_hlog(&delivery_tag, interval, &mut c.delivery);
            if e2e || delivery {
                open.groups.insert(group, c);
            }
        }
        open
    }

    fn take_hlog(&mut self, tag: &str, interval: u32, into: &mut Latency) -> bool {
        let Some(log) = self.hlogs.get_mut(tag) else {
            return false;
        };
        let start_s = f64::from(interval) * INTERVAL_S;
        let Some(at) = log.iter().position(|e| e.start_s == start_s) else {
            return false;
        };
        if let Some(decoded) = Latency::decode(&log.remove(at).encoded) {
            into.add(&decoded);
        }
        true
    }
}

fn histograms_only_produce(stats: &ProduceStats) -> ProduceStats {
    ProduceStats {
        latency: stats.latency.clone(),
        service: stats.service.clone(),
        schedule_lag: stats.schedule_lag.clone(),
        ..Default::default()
    }
}

/// A row's percentiles, from its interval's histograms.
fn set_percentiles(row: &mut Row, open: &OpenInterval) {
    if let Some(p) = &open.produce {
        row.produce.latency_us = p.latency.percentiles();
        row.produce.service_us = p.service.percentiles();
        row.produce.schedule_lag_us = p.schedule_lag.percentiles();
    }
    for (group, c) in &open.groups {
        if let Some(g) = row.groups.get_mut(*group) {
            g.e2e_us = c.e2e.percentiles();
            g.delivery_us = c.delivery.percentiles();
        }
    }
}

fn produce_tags(p: &ProduceStats) -> [(&'static str, &Latency); 3] {
    [
        (tags::PRODUCE_LATENCY, &p.latency),
        (tags::PRODUCE_SERVICE, &p.service),
        (tags::PRODUCE_SCHEDULE_LAG, &p.schedule_lag),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn produce(sent: u64, latencies_us: &[u64]) -> ProduceStats {
        let mut s = ProduceStats {
            sent,
            acked: sent,
            ..Default::default()
        };
        for &us in latencies_us {
            s.latency.record_us(us);
            s.service.record_us(us / 10);
            s.schedule_lag.record_us(5);
        }
        s
    }

    fn consume(processed: u64, e2e_us: u64) -> ConsumeStats {
        let mut c = ConsumeStats {
            delivered: processed,
            processed,
            acked: processed,
            ..Default::default()
        };
        for _ in 0..processed {
            c.e2e.record_us(e2e_us);
            c.delivery.record_us(e2e_us / 2);
        }
        c
    }

    fn hlog(series: &Series, tag: &str) -> Vec<HlogInterval> {
        (series.hlogs().into_iter())
            .find(|(t, _)| t == tag)
            .map(|(_, v)| v)
            .unwrap()
    }

    #[test]
    fn snapshots_of_one_interval_merge_into_one_row() {
        let mut s = Series::new(vec!["billing".into()]);
        s.set_target(0, 100.0);
        s.add_produce(0, &produce(2, &[100, 200]));
        s.add_produce(0, &produce(1, &[3_000]));
        s.add_consume(0, 0, &consume(3, 1_000));
        s.add_produce(1, &produce(1, &[50]));
        s.finish();
        let rows: Vec<&Row> = s.rows().collect();
        assert_eq!(rows.len(), 2);
        let r0 = rows[0];
        assert_eq!((r0.interval, r0.target_rate_per_s), (0, Some(100.0)));
        assert_eq!((r0.produce.sent, r0.produce.acked), (3, 3));
        assert_eq!(r0.produce.latency_us.count, 3);
        // The top of 3000's bucket (width 2 at 3 significant digits).
        assert_eq!(r0.produce.latency_us.max, 3_001);
        assert_eq!(r0.produce.latency_us.p50, 200);
        assert_eq!(r0.groups[0].processed, 3);
        assert_eq!(r0.groups[0].e2e_us.p99, 1_000);
        assert_eq!(rows[1].groups[0], ConsumeRow::default());

        let log = hlog(&s, tags::PRODUCE_LATENCY);
        assert_eq!(log.len(), 2);
        assert_eq!(
            (log[0].start_s, log[0].len_s, log[0].max_us),
            (0.0, 1.0, 3_001)
        );
        assert_eq!(Latency::decode(&log[0].encoded).unwrap().count(), 3);
        assert_eq!(hlog(&s, &tags::e2e("billing")).len(), 1);
        assert_eq!(hlog(&s, &tags::delivery("billing"))[0].max_us, 500);
    }

    #[test]
    fn old_intervals_close_automatically() {
        let mut s = Series::default();
        for interval in 0..10 {
            s.add_produce(interval, &produce(1, &[10]));
            assert!(s.open_intervals() <= OPEN_INTERVALS as usize + 1);
        }
        assert_eq!(s.rows().next().unwrap().produce.latency_us.count, 1);
        assert_eq!(hlog(&s, tags::PRODUCE_SERVICE).len(), 7);
        s.finish();
        assert_eq!(s.open_intervals(), 0);
        assert_eq!(hlog(&s, tags::PRODUCE_SERVICE).len(), 10);
    }

    #[test]
    fn a_long_run_keeps_only_recent_log_entries_in_memory() {
        let mut s = Series::new(vec!["g".into()]);
        for interval in 0..100 {
            s.add_produce(interval, &produce(1, &[10 + u64::from(interval)]));
            s.add_consume(interval, 0, &consume(1, 700));
        }
        // Five tags, each with at most the closed intervals kept.
        assert!(s.hlog_entries_in_memory() <= 5 * (KEEP_CLOSED as usize + 1));
        // Later than anything kept: an entry of its own, counted all the same.
        s.add_produce(3, &produce(1, &[900]));
        s.finish();
        assert_eq!(s.hlogs().len(), 5);
        let log = hlog(&s, tags::PRODUCE_LATENCY);
        assert_eq!(log.len(), 101);
        let starts: Vec<f64> = log.iter().map(|e| e.start_s).collect();
        assert!(starts.is_sorted(), "{starts:?}");
        assert_eq!((log[3].max_us, log[4].max_us), (13, 900));
        let row3 = s.rows().nth(3).unwrap();
        assert_eq!(row3.produce.sent, 2);
        assert_eq!(
            row3.produce.latency_us.max, 13,
            "the row keeps the interval's own percentiles"
        );
        assert_eq!(log[99].max_us, 10 + 98);
        assert_eq!(hlog(&s, &tags::e2e("g")).len(), 100);
    }

    #[test]
    fn late_snapshot_reopens_a_closed_interval() {
        let mut s = Series::default();
        s.add_produce(0, &produce(1, &[100]));
        s.add_consume(0, 1, &consume(2, 700));
        s.add_produce(5, &produce(1, &[100]));
        assert_eq!(s.open_intervals(), 1);
        s.add_produce(0, &produce(1, &[900]));
        s.finish();
        let r0 = s.rows().next().unwrap();
        assert_eq!(r0.produce.sent, 2);
        assert_eq!(r0.produce.latency_us.count, 2);
        assert_eq!(r0.produce.latency_us.max, 900);
        assert_eq!(r0.groups[1].e2e_us.count, 2);
        assert_eq!(s.group_names(), ["group0", "group1"]);
        let log = hlog(&s, tags::PRODUCE_LATENCY);
        assert_eq!(
            log.iter().map(|e| e.start_s).collect::<Vec<_>>(),
            [0.0, 5.0]
        );
        assert_eq!(hlog(&s, &tags::e2e("group1")).len(), 1);
    }

    #[test]
    fn the_latest_row_has_percentiles_while_still_open() {
        let mut s = Series::new(vec!["g".into()]);
        assert!(s.latest_before(5).is_none());
        s.add_produce(0, &produce(3, &[100, 200, 300]));
        s.add_consume(0, 0, &consume(2, 700));
        s.add_produce(1, &produce(1, &[50]));
        let row = s.latest_before(1).unwrap();
        assert_eq!((row.interval, row.produce.acked), (0, 3));
        assert_eq!(
            row.produce.latency_us.max, 300,
            "open, read from its histogram"
        );
        assert_eq!(row.groups[0].e2e_us.p99, 700);
        s.finish();
        assert_eq!(
            s.latest_before(1).unwrap().produce.latency_us.max,
            300,
            "closed"
        );
        assert_eq!(s.latest_before(9).unwrap().interval, 1);
    }

    #[test]
    fn samples_attach_to_rows_and_names_are_sanitized() {
        let mut s = Series::default();
        let reading = Reading {
            at_s: 3.01,
            used_memory_bytes: 1 << 20,
            ..Default::default()
        };
        s.add_reading(3, reading.clone());
        assert_eq!(s.rows().next().unwrap().reading.as_ref(), Some(&reading));
    }
}
