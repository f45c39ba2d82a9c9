//! What the measured window cost, from the sampler's once-a-second
//! readings: Redis's CPU and memory, the harness's own CPU, whether each
//! group's backlog grew; and what the streams hold after the drain. A
//! capacity search judges "keeps up" from the trends here
//! (docs/capacity.md, "When a step passes"); a run reports them beside the
//! harness's own counters.

use serde::{Deserialize, Serialize};

use super::series::{Reading, Series};

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct WindowLoad {
    /// Sampler readings inside the measured window.
    pub readings: u32,
    /// Redis's own CPU (INFO used_cpu_user + used_cpu_sys) over the window,
    /// in cores: 1.0 is one core busy all the time. None with fewer than two
    /// readings that carry it.
    pub cpu_cores: Option<f64>,
    /// This process's CPU over the window, in cores (every thread).
    #[serde(default)]
    pub harness_cpu_cores: Option<f64>,
    /// INFO used_memory at the window's first and last reading.
    pub used_memory_start_bytes: Option<u64>,
    pub used_memory_end_bytes: Option<u64>,
    /// Least-squares slope of used_memory over the window, bytes/s.
    #[serde(default)]
    pub used_memory_slope_per_s: Option<f64>,
    /// Per group (scenario order): how its backlog moved over the window.
    pub groups: Vec<BacklogTrend>,
    /// Per stream (scenario order), after the drain; empty when Redis could
    /// not be read back.
    #[serde(default)]
    pub streams: Vec<StreamUsage>,
}

/// Least-squares slopes over the window's readings, in entries per second:
/// above 0 the group falls behind, around 0 it keeps up.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct BacklogTrend {
    pub name: String,
    /// Of XINFO GROUPS `lag`; None when Redis could not tell for at least
    /// three readings (lag is unknown after some trims and deletions).
    pub lag_slope_per_s: Option<f64>,
    /// Of the pending count (XINFO GROUPS `pending`).
    pub pending_slope_per_s: Option<f64>,
    /// The largest lag read in the window.
    pub lag_max: Option<u64>,
}

/// One stream after the drain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct StreamUsage {
    /// The stream as the scenario names it (its Redis key without the run's prefix).
    pub key: String,
    /// XLEN.
    pub length: u64,
    /// MEMORY USAGE key SAMPLES 0 (every node counted): the stream, its
    /// groups and their pending lists. None when the server refused it.
    pub memory_bytes: Option<u64>,
}

impl WindowLoad {
    /// From the readings taken in `[from_s, to_s]` (seconds since run start).
    pub fn over(series: &Series, from_s: f64, to_s: f64, streams: Vec<StreamUsage>) -> WindowLoad {
        let window: Vec<&Reading> = (series.rows())
            .filter_map(|r| r.reading.as_ref())
            .filter(|r| r.at_s >= from_s && r.at_s <= to_s)
            .collect();
        let cores = |cpu_s: fn(&Reading) -> Option<f64>| {
            let cpu: Vec<(f64, f64)> = (window.iter())
                .filter_map(|r| Some((r.at_s, cpu_s(r)?)))
                .collect();
            match (cpu.first(), cpu.last()) {
                (Some(a), Some(b)) if b.0 > a.0 => Some(((b.1 - a.1) / (b.0 - a.0)).max(0.0)),
                _ => None,
            }
        };
        let groups = (series.group_names().iter().enumerate())
            .map(|(i, name)| {
                let of = |r: &Reading| r.groups.get(i).filter(|g| &g.name == name).cloned();
                let lag: Vec<(f64, f64)> = (window.iter())
                    .filter_map(|r| Some((r.at_s, of(r)?.lag? as f64)))
                    .collect();
                let pending: Vec<(f64, f64)> = (window.iter())
                    .filter_map(|r| Some((r.at_s, of(r)?.pending as f64)))
                    .collect();
                BacklogTrend {
                    name: name.clone(),
                    lag_slope_per_s: slope(&lag),
                    pending_slope_per_s: slope(&pending),
                    lag_max: lag.iter().map(|p| p.1 as u64).max(),
                }
            })
            .collect();
        let memory = |r: &&Reading| (r.used_memory_bytes > 0).then_some(r.used_memory_bytes);
        let memory_points: Vec<(f64, f64)> = (window.iter())
            .filter_map(|r| Some((r.at_s, memory(r)? as f64)))
            .collect();
        WindowLoad {
            readings: window.len() as u32,
            cpu_cores: cores(|r| r.cpu_s),
            harness_cpu_cores: cores(|r| r.harness_cpu_s),
            used_memory_start_bytes: window.first().and_then(memory),
            used_memory_end_bytes: window.last().and_then(memory),
            used_memory_slope_per_s: slope(&memory_points),
            groups,
            streams,
        }
    }
}

/// Ordinary least-squares slope of y over x; None with fewer than three
/// points (two readings are a difference, not a trend) or no spread in x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    if points.len() < 3 {
        return None;
    }
    let n = points.len() as f64;
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in points {
        sxy += (x - mean_x) * (y - mean_y);
        sxx += (x - mean_x) * (x - mean_x);
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::GroupReading;

    #[test]
    fn slope_of_a_line_and_of_noise() {
        let line: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 3.0 * i as f64 + 7.0)).collect();
        assert!((slope(&line).unwrap() - 3.0).abs() < 1e-9);
        let flat: Vec<(f64, f64)> = (0..10)
            .map(|i| (i as f64, if i % 2 == 0 { 100.0 } else { 0.0 }))
            .collect();
        assert!(slope(&flat).unwrap().abs() < 15.0);
        assert_eq!(slope(&line[..2]), None);
        assert_eq!(slope(&[(1.0, 1.0), (1.0, 2.0), (1.0, 3.0)]), None);
    }

    fn series_with(lag: impl Fn(u32) -> Option<u64>) -> Series {
        let mut series = Series::new(vec!["billing".into()]);
        for i in 0..12u32 {
            series.add_reading(
                i,
                Reading {
                    at_s: i as f64 + 0.5,
                    used_memory_bytes: 1_000_000 + 1000 * i as u64,
                    cpu_s: Some(0.25 * i as f64),
                    harness_cpu_s: Some(0.5 * i as f64),
                    groups: vec![GroupReading {
                        name: "billing".into(),
                        lag: lag(i),
                        pending: 50,
                        head_distance: None,
                    }],
                    ..Default::default()
                },
            );
        }
        series
    }

    #[test]
    fn the_window_gives_cpu_memory_and_backlog_trends() {
        let series = series_with(|i| Some(400 * i as u64));
        let load = WindowLoad::over(&series, 2.0, 10.0, Vec::new());
        // Readings at 2.5 .. 9.5.
        assert_eq!(load.readings, 8);
        assert!((load.cpu_cores.unwrap() - 0.25).abs() < 1e-9);
        assert!((load.harness_cpu_cores.unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(load.used_memory_start_bytes, Some(1_002_000));
        assert_eq!(load.used_memory_end_bytes, Some(1_009_000));
        assert!((load.used_memory_slope_per_s.unwrap() - 1000.0).abs() < 1e-6);
        let g = &load.groups[0];
        assert!((g.lag_slope_per_s.unwrap() - 400.0).abs() < 1e-9, "{g:?}");
        assert_eq!(g.pending_slope_per_s, Some(0.0));
        assert_eq!(g.lag_max, Some(3600));
    }

    #[test]
    fn unknown_lag_is_no_slope_not_a_flat_one() {
        let series = series_with(|i| (i < 4).then_some(10));
        let load = WindowLoad::over(&series, 2.0, 10.0, Vec::new());
        // Two known readings in the window: no trend.
        assert_eq!(load.groups[0].lag_slope_per_s, None);
        assert_eq!(load.groups[0].lag_max, Some(10));
        let none = WindowLoad::over(&Series::new(vec!["billing".into()]), 0.0, 9.0, Vec::new());
        assert_eq!((none.cpu_cores, none.used_memory_end_bytes), (None, None));
    }
}
