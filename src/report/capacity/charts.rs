//! The plots of a capacity search, each against the offered rate: produce
//! latency, e2e p99 per group, achieved rate, lag growth, CPU. Every server
//! is a curve on the same chart so servers compare at a glance; every step
//! is a marked point (filled: passed; hollow: failed; cross: the harness was
//! the limit), confirmation steps included; each server's knee is a
//! vertical line, an objective a horizontal one. Drawn by `plot::draw`.

use super::words::knee_rate;
use super::{Capacity, Quantiles, ServerSearch, Step};
use crate::report::format::format_rate;
use crate::report::format_us;
use crate::report::plot::{Axis, Chart, Legend, Line, Marker, Rule, RuleAt};
use crate::scenario::Dur;

const OFFERED_AXIS: &str = "offered rate (events/s)";
/// What the markers mean, in every title (the PNGs travel without the page).
const MARKER_KEY: &str = "● pass  ○ fail  × harness limit";

pub fn capacity_charts(c: &Capacity) -> Vec<Chart> {
    let slo = &c.scenario.slo;
    vec![
        produce_latency(c, slo.produce_p99),
        e2e_latency(c, slo.e2e_p99),
        achieved(c),
        lag_slope(c),
        cpu(c),
    ]
}

fn chart(c: &Capacity, name: &str, title: &str, y_label: &str, y_axis: Axis) -> Chart {
    Chart {
        name: name.into(),
        title: format!("{title}   {MARKER_KEY}"),
        x_label: OFFERED_AXIS.into(),
        y_label: y_label.into(),
        x_axis: Axis::Linear,
        y_axis,
        lines: Vec::new(),
        windows: Vec::new(),
        rules: knees(c),
        // Every curve here rises to the right; the top left stays empty.
        legend: Legend::UpperLeft,
    }
}

/// One vertical line per server at its knee.
fn knees(c: &Capacity) -> Vec<Rule> {
    (c.servers.iter())
        .filter_map(|s| {
            let rate = knee_rate(s)?;
            let label = format!("{}knee {}/s", prefix(c, s), format_rate(rate));
            Some(Rule {
                label,
                at: RuleAt::X(rate),
            })
        })
        .collect()
}

/// "redis 7.0.15 " when several servers share the chart, else nothing.
fn prefix(c: &Capacity, s: &ServerSearch) -> String {
    match c.servers.len() {
        1 => String::new(),
        _ => format!("{} ", s.label),
    }
}

/// A step's marker: how it was judged.
fn marker(step: &Step) -> Marker {
    match (step.verdict.passed, step.verdict.harness_limited) {
        (true, _) => Marker::Filled,
        (false, false) => Marker::Hollow,
        (false, true) => Marker::Cross,
    }
}

/// The server's steps by offered rate (the confirmation after the step it repeats).
fn by_rate(s: &ServerSearch) -> Vec<&Step> {
    let mut steps: Vec<&Step> = s.steps.iter().collect();
    steps.sort_by(|a, b| {
        (a.offered_rate_per_s.total_cmp(&b.offered_rate_per_s)).then(a.index.cmp(&b.index))
    });
    steps
}

/// A marked line of `value` per step, skipping steps where it is unknown.
fn step_line(
    name: String,
    s: &ServerSearch,
    dashed: bool,
    value: impl Fn(&Step) -> Option<f64>,
) -> Line {
    let (points, markers) = (by_rate(s).into_iter())
        .filter_map(|step| {
            let v = value(step).filter(|v| v.is_finite())?;
            Some(((step.offered_rate_per_s, v), marker(step)))
        })
        .unzip();
    Line {
        name,
        points,
        dashed,
        markers,
    }
}

/// Which quantile of a step's `Quantiles` a curve shows.
type Pick = fn(&Quantiles) -> u64;

/// log10 µs of a quantile, for the log latency axis; None without values.
fn log_us(q: &Quantiles, pick: Pick) -> Option<f64> {
    (q.count > 0).then(|| (pick(q).max(1) as f64).log10())
}

fn slo_rule(label: &str, objective: Option<Dur>) -> Option<Rule> {
    let us = objective?.as_nanos() / 1_000;
    Some(Rule {
        label: format!("SLO {label} {}", format_us(us)),
        at: RuleAt::Y((us.max(1) as f64).log10()),
    })
}

fn produce_latency(c: &Capacity, objective: Option<Dur>) -> Chart {
    let mut chart = chart(
        c,
        "produce-latency",
        "Produce latency vs offered load",
        "produce latency (log scale)",
        Axis::LogMicros,
    );
    // The median dashed: the tail is what a limit shows in first.
    let quantiles: [(&str, Pick, bool); 3] = [
        ("p50", |q| q.p50_us, true),
        ("p99", |q| q.p99_us, false),
        ("p99.9", |q| q.p999_us, false),
    ];
    for s in &c.servers {
        for (label, pick, dashed) in quantiles {
            let name = format!("{}produce {label}", prefix(c, s));
            (chart.lines).push(step_line(name, s, dashed, |st| log_us(&st.produce, pick)));
        }
    }
    chart.rules.extend(slo_rule("produce p99", objective));
    chart
}

/// The groups of a server, as its first step names them.
fn group_names(s: &ServerSearch) -> Vec<String> {
    let first = s
        .steps
        .first()
        .map(|st| st.groups.as_slice())
        .unwrap_or_default();
    first.iter().map(|g| g.name.clone()).collect()
}

fn e2e_latency(c: &Capacity, objective: Option<Dur>) -> Chart {
    let mut chart = chart(
        c,
        "e2e-latency",
        "End-to-end p99 per group vs offered load",
        "e2e p99 (log scale)",
        Axis::LogMicros,
    );
    for s in &c.servers {
        for group in group_names(s) {
            let name = format!("{}{group} e2e p99", prefix(c, s));
            let e2e = |st: &Step| {
                let g = st.groups.iter().find(|g| g.name == group)?;
                log_us(&g.e2e, |q| q.p99_us)
            };
            chart.lines.push(step_line(name, s, false, e2e));
        }
    }
    chart.rules.extend(slo_rule("e2e p99", objective));
    chart
}

fn achieved(c: &Capacity) -> Chart {
    let mut chart = chart(
        c,
        "achieved-rate",
        "Achieved vs offered rate",
        "achieved rate (events/s)",
        Axis::Linear,
    );
    for s in &c.servers {
        let name = format!("{}achieved", prefix(c, s));
        (chart.lines).push(step_line(name, s, false, |st| Some(st.achieved_rate_per_s)));
    }
    let top = (c.servers.iter())
        .flat_map(|s| s.steps.iter().map(|st| st.offered_rate_per_s))
        .fold(0.0, f64::max);
    let ratio = c.settings.min_achieved_ratio;
    for (name, factor) in [
        ("offered (y = x)".to_string(), 1.0),
        (
            format!("{} % of offered: passes", format_rate(100.0 * ratio)),
            ratio,
        ),
    ] {
        chart.lines.push(Line {
            name,
            points: vec![(0.0, 0.0), (top, top * factor)],
            dashed: true,
            markers: Vec::new(),
        });
    }
    chart
}

fn lag_slope(c: &Capacity) -> Chart {
    let mut chart = chart(
        c,
        "lag-slope",
        "Consumer lag growth vs offered load",
        "lag slope (entries/s; > 0: falling behind)",
        Axis::Linear,
    );
    for s in &c.servers {
        let groups = group_names(s);
        for group in &groups {
            let name = format!("{}{group} lag slope", prefix(c, s));
            let slope = |st: &Step| st.groups.iter().find(|g| &g.name == group)?.lag_slope_per_s;
            chart.lines.push(step_line(name, s, false, slope));
        }
        // Groups share a limit unless their noise differs: one line then.
        let shared = s.steps.iter().all(|st| {
            (st.groups.windows(2)).all(|w| w[0].slope_limit_per_s == w[1].slope_limit_per_s)
        });
        let limited: Vec<Option<&String>> = match shared {
            true => vec![None],
            false => groups.iter().map(Some).collect(),
        };
        for group in limited {
            let name = match group {
                Some(g) => format!("{}{g} limit", prefix(c, s)),
                None => format!("{}limit", prefix(c, s)),
            };
            let limit = |st: &Step| {
                let g = match group {
                    Some(name) => st.groups.iter().find(|g| &g.name == name),
                    None => st.groups.first(),
                };
                g.map(|g| g.slope_limit_per_s)
            };
            let mut line = step_line(name, s, true, limit);
            line.markers.clear();
            chart.lines.push(line);
        }
    }
    chart
}

fn cpu(c: &Capacity) -> Chart {
    let mut chart = chart(
        c,
        "cpu",
        "Redis and harness CPU vs offered load",
        "CPU (cores)",
        Axis::Linear,
    );
    for s in &c.servers {
        let name = format!("{}redis CPU", prefix(c, s));
        chart
            .lines
            .push(step_line(name, s, false, |st| st.redis_cpu_cores));
        let name = format!("{}harness CPU", prefix(c, s));
        (chart.lines).push(step_line(name, s, true, |st| Some(st.harness_cpu_cores)));
    }
    // Redis runs commands on one thread: a core is its ceiling unless it has I/O threads.
    chart.rules.push(Rule {
        label: "1 core".into(),
        at: RuleAt::Y(1.0),
    });
    chart
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::capacity::example::example_capacity;

    #[test]
    fn one_curve_per_server_and_figure_with_a_marker_per_step() {
        let c = example_capacity();
        let charts = capacity_charts(&c);
        let names: Vec<&str> = charts.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "produce-latency",
                "e2e-latency",
                "achieved-rate",
                "lag-slope",
                "cpu"
            ]
        );
        let produce = &charts[0];
        assert_eq!(produce.lines.len(), 6, "p50, p99, p99.9 for each server");
        let p99 = &produce.lines[1];
        assert_eq!(p99.name, "redis 7.0.15 produce p99");
        assert_eq!(p99.points.len(), 10, "every step, the confirmation too");
        assert!(p99.points.windows(2).all(|w| w[0].0 <= w[1].0), "by rate");
        assert_eq!(p99.points.len(), p99.markers.len());
        assert_eq!(
            p99.markers.iter().filter(|m| **m == Marker::Hollow).count(),
            3
        );
        let valkey_p99 = &produce.lines[4];
        assert_eq!(
            valkey_p99
                .markers
                .iter()
                .filter(|m| **m == Marker::Cross)
                .count(),
            3
        );
        let labels: Vec<&str> = produce.rules.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "redis 7.0.15 knee 21,000/s",
                "valkey 9.1.2 knee 26,000/s",
                "SLO produce p99 20ms"
            ]
        );
        assert_eq!(produce.rules[2].at, RuleAt::Y(20_000f64.log10()));
        let cpu = &charts[4];
        let redis7 = &cpu.lines[0];
        assert_eq!(
            redis7.points.len(),
            9,
            "the step without a CPU figure left out"
        );
        let lag = &charts[3];
        let names: Vec<&str> = lag.lines.iter().map(|l| l.name.as_str()).collect();
        assert!(names.contains(&"redis 7.0.15 limit"), "{names:?}");
    }

    #[test]
    fn a_single_server_has_plain_names_and_no_slo_without_one() {
        let mut c = example_capacity();
        c.servers.truncate(1);
        c.scenario.slo = Default::default();
        let charts = capacity_charts(&c);
        assert_eq!(charts[1].lines[0].name, "billing e2e p99");
        let labels: Vec<&str> = charts[1].rules.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["knee 21,000/s"]);
    }
}
