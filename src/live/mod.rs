//! The live metrics endpoint (`--metrics-addr`, docs/metrics-endpoint.md):
//! what a run shows Prometheus while it lasts. The runner tells a [`Live`]
//! board which run is on (`begin_run`), hands it the collector's progress
//! figures once a second (`publish`: the same `Progress` the progress line
//! prints, with the run's totals) and the last ones when every report is in
//! (`finish_run`); a capacity search adds its current step. The HTTP thread
//! (`http`) renders the newest figures at each scrape (`exposition`, in the
//! text format the scraper asked for: `text`).
//!
//! Counters count on across the runs of one process (`carry`): each run's
//! figures are shown with what the runs before it counted added.
//!
//! Nothing here is on the event path: a scrape reads figures the collector
//! has already aggregated, rendering them on its own thread from a snapshot
//! it takes under a lock held only to clone an `Arc`.

pub mod carry;
pub mod exposition;
pub mod http;
pub mod text;

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::metrics::Progress;
use carry::Carried;

/// What a run is, for the labels of its metrics and its run phase.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunLabels {
    pub run_id: String,
    pub scenario: String,
    /// When the warmup ends and the schedule ends, from the run's start.
    pub warmup_s: f64,
    pub schedule_s: f64,
    /// The drill's planned fault windows.
    pub faults: Vec<FaultSpan>,
}

/// One planned fault window, shown as a gauge while it is open.
#[derive(Debug, Clone, PartialEq)]
pub struct FaultSpan {
    /// The fault's `action`, e.g. "stall_consumer".
    pub kind: String,
    /// What it acts on ("billing/0", "clients"), or "server".
    pub target: String,
    pub start_s: f64,
    /// None: it lasts until the run ends.
    pub end_s: Option<f64>,
}

/// The shortest a fault's gauge stays up: a fault over once applied (a
/// reset, CLIENT KILL) still shows in one second of samples.
pub const FAULT_MIN_SHOWN_S: f64 = 1.0;

impl FaultSpan {
    /// Whether the window is open `elapsed_s` after the run's start.
    pub fn active_at(&self, elapsed_s: f64) -> bool {
        let end = (self.end_s).map_or(f64::INFINITY, |e| e.max(self.start_s + FAULT_MIN_SHOWN_S));
        (self.start_s..end).contains(&elapsed_s)
    }
}

/// Where a run is: by the schedule (docs/measurement.md, "What a run does"),
/// `Drain` covering the reply grace and the drain, `Done` once its last
/// figures are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunPhase {
    Warmup,
    Measured,
    Drain,
    Done,
}

impl RunPhase {
    pub const ALL: [RunPhase; 4] = [
        RunPhase::Warmup,
        RunPhase::Measured,
        RunPhase::Drain,
        RunPhase::Done,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RunPhase::Warmup => "warmup",
            RunPhase::Measured => "measured",
            RunPhase::Drain => "drain",
            RunPhase::Done => "done",
        }
    }
}

/// A capacity search's current step.
#[derive(Debug, Clone, PartialEq)]
pub struct CapacityStep {
    /// From 1, per server searched.
    pub index: u32,
    /// "probe", "bisect", "confirm".
    pub kind: String,
    /// The server searched (its label), for a search over several.
    pub server: String,
    pub offered_rate_per_s: f64,
}

/// One run's figures as a scrape renders them.
#[derive(Debug, Clone, Default)]
pub struct RunView {
    /// Shared by every view of the run: a publish copies a pointer.
    pub labels: Arc<RunLabels>,
    /// None before the collector's first figures. Its totals include what
    /// the process's earlier runs counted (`carry`).
    pub progress: Option<Progress>,
    pub finished: bool,
}

impl RunView {
    pub fn phase(&self) -> RunPhase {
        let elapsed_s = self.progress.as_ref().map_or(0.0, |p| p.elapsed_s);
        match () {
            _ if self.finished => RunPhase::Done,
            _ if elapsed_s < self.labels.warmup_s => RunPhase::Warmup,
            _ if elapsed_s < self.labels.schedule_s => RunPhase::Measured,
            _ => RunPhase::Drain,
        }
    }
}

/// Everything a scrape renders: the newest run, the capacity step.
#[derive(Debug, Clone, Default)]
pub struct View {
    pub run: Option<Arc<RunView>>,
    pub capacity: Option<CapacityStep>,
}

/// The board the runner writes and the HTTP thread reads; cheap to clone.
#[derive(Clone, Default)]
pub struct Live {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    board: Mutex<Board>,
    /// Signalled after each scrape served.
    scraped: Condvar,
}

#[derive(Default)]
struct Board {
    view: View,
    /// Bumped by every change of the view.
    generation: u64,
    /// The generation the last scrape rendered, and when it was served.
    served: Option<(u64, Instant)>,
    /// Between the last two scrapes: the scraper's interval.
    scrape_gap: Option<Duration>,
    /// What the runs before the current one counted.
    carried: Carried,
}

/// The longest `wait_for_final_scrape` waits, whatever the interval.
pub const FINAL_SCRAPE_WAIT_MAX: Duration = Duration::from_secs(30);
/// The least it waits: room for a scraper's jitter at short intervals.
pub const FINAL_SCRAPE_WAIT_MIN: Duration = Duration::from_secs(1);

impl Live {
    pub fn new() -> Live {
        Live::default()
    }

    fn board(&self) -> MutexGuard<'_, Board> {
        // A panic elsewhere while holding it leaves only figures behind: go on.
        self.shared.board.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn change(&self, f: impl FnOnce(&mut View)) {
        let mut board = self.board();
        f(&mut board.view);
        board.generation += 1;
    }

    /// A run starts: its labels, no figures yet. Its counters will start
    /// where the previous run's last figures left them, finished or not.
    pub fn begin_run(&self, labels: RunLabels) {
        let run = Arc::new(RunView {
            labels: Arc::new(labels),
            progress: None,
            finished: false,
        });
        let mut board = self.board();
        let previous = board.view.run.replace(run);
        if let Some(shown) = previous.as_ref().and_then(|r| r.progress.as_ref()) {
            board.carried.keep(&shown.totals, &group_names(shown));
        }
        board.generation += 1;
    }

    /// The collector's figures of the second just past.
    pub fn publish(&self, progress: &Progress) {
        self.set_progress(progress, false);
    }

    /// The run's last figures, once every report is in.
    pub fn finish_run(&self, progress: &Progress) {
        self.set_progress(progress, true);
    }

    fn set_progress(&self, progress: &Progress, finished: bool) {
        // Copied before taking the lock, which the publisher then holds to
        // add the carried counts (a few additions per group) and swap a
        // pointer.
        let mut progress = progress.clone();
        let mut board = self.board();
        let Some(labels) = board.view.run.as_ref().map(|r| r.labels.clone()) else {
            return;
        };
        progress.totals = (board.carried).onto(&progress.totals, &group_names(&progress));
        board.view.run = Some(Arc::new(RunView {
            labels,
            progress: Some(progress),
            finished,
        }));
        board.generation += 1;
    }

    /// A capacity search moves to its next step.
    pub fn capacity_step(&self, step: CapacityStep) {
        self.change(|v| v.capacity = Some(step));
    }

    /// What a scrape renders now, and the generation it is.
    pub fn view(&self) -> (View, u64) {
        let board = self.board();
        (board.view.clone(), board.generation)
    }

    /// A scrape that rendered `generation` was served.
    pub fn served(&self, generation: u64) {
        let now = Instant::now();
        let mut board = self.board();
        if let Some((_, last)) = board.served {
            board.scrape_gap = Some(now - last);
        }
        board.served = Some((generation, now));
        drop(board);
        self.shared.scraped.notify_all();
    }

    /// Scrapes served so far rendered the newest figures: Prometheus has
    /// the run's last values.
    pub fn final_figures_scraped(&self) -> bool {
        let board = self.board();
        board.served.is_some_and(|(g, _)| g == board.generation)
    }

    /// How long `wait_for_final_scrape` would wait: twice the scraper's
    /// interval, within `FINAL_SCRAPE_WAIT_MIN` and `FINAL_SCRAPE_WAIT_MAX`. None when the newest
    /// figures were scraped already, or when no scraper comes back at an
    /// interval (none, or a single look with curl): nobody to wait for.
    pub fn final_scrape_wait(&self) -> Option<Duration> {
        let board = self.board();
        let scraped_newest = board.served.is_some_and(|(g, _)| g == board.generation);
        match (scraped_newest, board.scrape_gap) {
            (false, Some(gap)) => {
                Some((gap * 2).clamp(FINAL_SCRAPE_WAIT_MIN, FINAL_SCRAPE_WAIT_MAX))
            }
            _ => None,
        }
    }

    /// Blocks until a scrape has served the newest figures, so Prometheus
    /// holds the run's last values, for at most `final_scrape_wait`. True
    /// when the newest figures were scraped.
    pub fn wait_for_final_scrape(&self) -> bool {
        let deadline = Instant::now() + self.final_scrape_wait().unwrap_or_default();
        let mut board = self.board();
        loop {
            if board.served.is_some_and(|(g, _)| g == board.generation) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            board = (self.shared.scraped.wait_timeout(board, left))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

fn group_names(progress: &Progress) -> Vec<&str> {
    progress.groups.iter().map(|g| g.name.as_str()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fault_window_is_open_from_its_start_for_at_least_a_second() {
        let stall = FaultSpan {
            kind: "stall_consumer".into(),
            target: "a/0".into(),
            start_s: 2.0,
            end_s: Some(4.0),
        };
        assert!(!stall.active_at(1.9) && stall.active_at(2.0) && stall.active_at(3.9));
        assert!(!stall.active_at(4.0));
        let reset = FaultSpan {
            end_s: Some(2.0),
            ..stall.clone()
        };
        assert!(reset.active_at(2.5) && !reset.active_at(3.0));
        let down = FaultSpan {
            end_s: None,
            ..stall
        };
        assert!(down.active_at(1e6));
    }

    #[test]
    fn the_run_phase_follows_the_schedule_then_the_end() {
        let mut run = RunView {
            labels: Arc::new(RunLabels {
                warmup_s: 1.0,
                schedule_s: 5.0,
                ..Default::default()
            }),
            ..Default::default()
        };
        let at = |run: &mut RunView, elapsed_s: f64| {
            run.progress = Some(Progress {
                elapsed_s,
                ..Default::default()
            });
            run.phase()
        };
        assert_eq!(at(&mut run, 0.5), RunPhase::Warmup);
        assert_eq!(at(&mut run, 1.0), RunPhase::Measured);
        assert_eq!(at(&mut run, 5.5), RunPhase::Drain);
        run.finished = true;
        assert_eq!(run.phase(), RunPhase::Done);
    }

    #[test]
    fn the_final_scrape_is_the_one_that_rendered_the_last_figures() {
        let live = Live::new();
        assert!(!live.wait_for_final_scrape(), "never scraped: no wait");
        live.begin_run(RunLabels::default());
        let scrape = |live: &Live| {
            let (_, generation) = live.view();
            live.served(generation);
        };
        scrape(&live);
        assert!(live.final_figures_scraped());
        live.finish_run(&Progress::default());
        assert!(!live.final_figures_scraped());
        assert_eq!(live.final_scrape_wait(), None, "one look is no scraper");
        scrape(&live);
        live.finish_run(&Progress::default());
        assert!(live.final_scrape_wait().is_some(), "a scraper came back");
        let scraper = {
            let live = live.clone();
            std::thread::spawn(move || scrape(&live))
        };
        assert!(live.wait_for_final_scrape());
        scraper.join().unwrap();
    }
}

#[cfg(test)]
mod carry_tests {
    use super::exposition::render;
    use super::text::Format;
    use super::*;
    use crate::metrics::progress::{GroupProgress, GroupTotals, LatencyTotal, Totals};
    use std::collections::BTreeMap;

    /// A run's own figures so far: `n` of everything, in group "g".
    fn figures(n: u64) -> Progress {
        let mut totals = Totals::default();
        totals.produce.measured.acked = n;
        totals.produce.warmup.sent = n;
        totals.produce_latency = LatencyTotal {
            count: n,
            sum_us: n as f64 * 100.0,
        };
        let mut group = GroupTotals {
            redeliveries: n,
            dead_letter_moves: n,
            e2e: totals.produce_latency,
            ..Default::default()
        };
        group.processed.measured = n;
        totals.groups.push(group);
        Progress {
            groups: vec![GroupProgress {
                name: "g".into(),
                ..Default::default()
            }],
            totals,
            ..Default::default()
        }
    }

    /// Every counter, `_count` and `_sum` sample of a scrape now.
    fn counters(live: &Live) -> BTreeMap<String, f64> {
        let text = render(&live.view().0, Format::Prometheus, 0.0);
        (text.lines())
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(series, _)| {
                let name = series.split('{').next().unwrap_or("");
                ["_total", "_count", "_sum"]
                    .iter()
                    .any(|s| name.ends_with(s))
            })
            .map(|(series, v)| (series.to_string(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn counters_never_go_down_across_runs_and_steps() {
        let live = Live::new();
        let mut last: BTreeMap<String, f64> = BTreeMap::new();
        let mut scrape = |live: &Live| {
            let now = counters(live);
            for (series, before) in &last {
                // A series may be absent between a run's start and its
                // first figures: a gap, not a reset.
                if let Some(after) = now.get(series) {
                    assert!(after >= before, "{series} went from {before} to {after}");
                }
            }
            last.extend(now);
        };
        // A finished run, a step that failed before its last figures, and
        // a third: each starts its own counts from 0.
        for (own, finish) in [(&[10, 30][..], true), (&[5, 7], false), (&[2, 4], true)] {
            live.begin_run(RunLabels::default());
            scrape(&live);
            for (i, &n) in own.iter().enumerate() {
                match finish && i + 1 == own.len() {
                    true => live.finish_run(&figures(n)),
                    false => live.publish(&figures(n)),
                }
                scrape(&live);
            }
        }
        let total = 30.0 + 7.0 + 4.0;
        for series in [
            "streamdrill_produce_acked_total{phase=\"measured\"}",
            "streamdrill_produce_sent_total{phase=\"warmup\"}",
            "streamdrill_produce_latency_seconds_count",
            "streamdrill_group_processed_total{group=\"g\",phase=\"measured\"}",
            "streamdrill_group_redeliveries_total{group=\"g\"}",
            "streamdrill_group_dead_letter_moves_total{group=\"g\"}",
            "streamdrill_e2e_latency_seconds_count{group=\"g\"}",
        ] {
            assert_eq!(last.get(series), Some(&total), "{series}: {last:?}");
        }
        let sum = last["streamdrill_produce_latency_seconds_sum"];
        assert!((sum - total * 100e-6).abs() < 1e-9, "{sum}");
    }
}
