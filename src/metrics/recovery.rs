//! Each fault's recovery figures, computed from what the run measured: the
//! time series (acks per second, the sampler's lag readings), the producers'
//! write stalls and the groups' in-flight events at each planned fault start.
//! Pure; the coordinator calls [`recovery`] once the collector has finished.

use super::{FaultWindow, Reading, RunMetrics, Series};

/// Seconds before a fault whose lag readings set its pre-fault level.
const LAG_BASELINE_S: f64 = 3.0;
/// Lag within this many events of its pre-fault level (or 10 % of it, if
/// more) counts as recovered: a reading catches entries in flight, so lag jitters.
const LAG_SLACK_EVENTS: u64 = 10;

/// How far a window's start may lie from its planned `at` and still be
/// that fault (the chaos actor opens a window as it applies the fault).
const PLANNED_START_SLACK_NS: u64 = 1_000_000_000;

/// Fills each window's recovery figures from what the run measured.
///
/// From the time series: `first_ack_after_s`: acknowledged XADDs are counted
/// per one-second interval (by reply time), so the figure is the start of the
/// first interval ending after the fault with an ack in it, less the fault's
/// end, at least 0: a lower bound within 1 s ("0" means within the same second).
/// `lag_recovered_after_s`: the first sampler reading at or after the end
/// with every group's lag back at its level in the `LAG_BASELINE_S` before
/// the fault, less the end (the sampler reads once a second).
///
/// From the producers' stalls (`metrics::stalls`), counted from the start:
/// `first_write_after_s` and `all_writes_after_s`. From the groups' in-flight
/// events (`metrics::inflight`) at the fault's planned start:
/// `in_flight_at_start` and `recovered_after_s` (from `start_s`, at least 0).
pub fn recovery(windows: &mut [FaultWindow], metrics: &RunMetrics) {
    let series = &metrics.series;
    for w in windows {
        w.first_ack_after_s = (series.rows())
            .find(|r| f64::from(r.interval) + 1.0 > w.end_s && r.produce.acked > 0)
            .map(|r| (f64::from(r.interval) - w.end_s).max(0.0));
        w.lag_recovered_after_s = lag_recovered(w, series);
        let start_ns = (w.start_s.max(0.0) * 1e9) as u64;
        (w.first_write_after_s, w.all_writes_after_s) =
            metrics.write_stalls.resumed_after_s(start_ns);
        let planned = (metrics.in_flight_at_faults.iter())
            .filter(|f| f.start_ns.abs_diff(start_ns) <= PLANNED_START_SLACK_NS)
            .min_by_key(|f| f.start_ns.abs_diff(start_ns));
        w.in_flight_at_start = planned.map(|f| f.events);
        w.recovered_after_s = planned
            .filter(|f| f.never_done == 0)
            .map(|f| (f.last_done_ns as f64 / 1e9 - w.start_s).max(0.0));
    }
}

fn lag_recovered(w: &FaultWindow, series: &Series) -> Option<f64> {
    let groups = series.group_names().len();
    if groups == 0 {
        return None;
    }
    let readings = || series.rows().filter_map(|r| r.reading.as_ref());
    let mut baseline = vec![0u64; groups];
    for s in readings().filter(|s| s.at_s < w.start_s && s.at_s >= w.start_s - LAG_BASELINE_S) {
        for (b, g) in baseline.iter_mut().zip(&s.groups) {
            *b = (*b).max(g.lag.unwrap_or(0));
        }
    }
    let back = |s: &Reading| {
        s.groups.len() >= groups
            && (s.groups.iter().zip(&baseline)).all(|(g, &b)| {
                g.lag
                    .is_some_and(|lag| lag <= b + LAG_SLACK_EVENTS.max(b / 10))
            })
    };
    readings()
        .find(|s| s.at_s >= w.end_s && back(s))
        .map(|s| s.at_s - w.end_s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{GroupReading, InFlightAtFault, ProduceStats, WriteStalls};

    fn series(acked: &[u64], lag: &[u64]) -> RunMetrics {
        let mut series = Series::new(vec!["g".into()]);
        for (i, &a) in acked.iter().enumerate() {
            let stats = ProduceStats {
                acked: a,
                ..Default::default()
            };
            series.add_produce(i as u32, &stats);
            let groups = vec![GroupReading {
                name: "g".into(),
                lag: Some(lag[i]),
                pending: 0,
                head_distance: None,
            }];
            let at_s = i as f64 + 0.5;
            series.add_reading(
                i as u32,
                Reading {
                    at_s,
                    groups,
                    ..Default::default()
                },
            );
        }
        series.finish();
        RunMetrics {
            series,
            ..Default::default()
        }
    }

    #[test]
    fn recovery_is_read_from_acks_and_lag_after_the_end() {
        // A 2 s outage from 2.2 s to 4.2 s: no acks in 3 and 4, lag builds up.
        let s = series(&[5, 5, 3, 0, 0, 9, 5, 5], &[2, 4, 3, 50, 100, 60, 5, 3]);
        let mut w = [FaultWindow {
            name: "freeze_redis 2s".into(),
            start_s: 2.2,
            end_s: 4.2,
            ..Default::default()
        }];
        recovery(&mut w, &s);
        assert!((w[0].first_ack_after_s.unwrap() - 0.8).abs() < 1e-9);
        assert_eq!(w[0].first_write_after_s, None, "no producers: no stalls");
        // Baseline 4 (+10 slack): back at the reading of 6.5 s.
        assert!((w[0].lag_recovered_after_s.unwrap() - 2.3).abs() < 1e-9);
        // Acks in the interval holding the end count from the end itself.
        let mut kill = [FaultWindow {
            start_s: 2.2,
            end_s: 2.2,
            ..w[0].clone()
        }];
        recovery(&mut kill, &s);
        assert_eq!(kill[0].first_ack_after_s, Some(0.0));
        // Lag that never returns, and no acks after the end, are None.
        let stuck = series(&[5, 5, 0, 0], &[1, 1, 80, 90]);
        let mut w = [FaultWindow {
            start_s: 2.0,
            end_s: 2.5,
            ..w[0].clone()
        }];
        recovery(&mut w, &stuck);
        assert_eq!(
            (w[0].first_ack_after_s, w[0].lag_recovered_after_s),
            (None, None)
        );
    }

    #[test]
    fn writes_and_in_flight_events_are_timed_from_the_start() {
        const MS: u64 = 1_000_000;
        let mut m = series(&[5; 8], &[0; 8]);
        m.write_stalls = WriteStalls::new(2);
        let stall = |since_ms, resumed_ms: Option<u64>| crate::metrics::stalls::AckStall {
            after_ack_ns: Some(since_ms * MS),
            since_ns: since_ms * MS,
            resumed_ns: resumed_ms.map(|r| r * MS),
        };
        m.write_stalls.add(crate::metrics::StallReport {
            producer: 0,
            closed: vec![stall(1_999, Some(2_300))],
            open_since_ns: None,
            last_ack_ns: Some(2_300 * MS),
        });
        m.write_stalls.add(crate::metrics::StallReport {
            producer: 1,
            closed: vec![stall(2_001, Some(3_000))],
            open_since_ns: None,
            last_ack_ns: Some(3_000 * MS),
        });
        // Planned at 2 s: three events were in flight, the last done at 2.75 s.
        m.in_flight_at_faults = vec![InFlightAtFault {
            start_ns: 2_000 * MS,
            events: 3,
            last_done_ns: 2_750 * MS,
            never_done: 0,
        }];
        let mut w = [FaultWindow {
            name: "crash_consumer g/0".into(),
            start_s: 2.0005,
            end_s: 6.0,
            ..Default::default()
        }];
        recovery(&mut w, &m);
        let near = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-6);
        assert!(near(w[0].first_write_after_s, 0.2995), "{w:?}");
        assert!(near(w[0].all_writes_after_s, 0.9995), "{w:?}");
        assert_eq!(w[0].in_flight_at_start, Some(3));
        assert!(near(w[0].recovered_after_s, 0.7495), "{w:?}");
        // Something never done: no recovery; a window far from any planned start: unknown.
        m.in_flight_at_faults[0].never_done = 1;
        let mut late = [
            w[0].clone(),
            FaultWindow {
                start_s: 4.0,
                ..w[0].clone()
            },
        ];
        recovery(&mut late, &m);
        assert_eq!(late[0].recovered_after_s, None);
        assert_eq!(
            (late[1].in_flight_at_start, late[1].recovered_after_s),
            (None, None)
        );
    }
}
