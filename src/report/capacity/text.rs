//! The terminal's view of a capacity search, printed at its end and by
//! `streamdrill report`: per server the headline, the limiting factor, and
//! a compact table of the steps, with why each failing step failed beneath
//! it. At most 100 columns wide, like the run summary.

use std::fmt::Write as _;

use super::words::{self, ABSENT, knee_step};
use super::{Bound, Capacity, ServerSearch, Step};
use crate::report::format::{format_bytes, format_rate, format_us};
use crate::report::table::{clip, wrapped};

pub fn render_capacity_text(c: &Capacity) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{}",
        clip(&format!(
            "streamdrill {} capacity | {} | {}",
            c.streamdrill_version, c.id, c.started_at
        ))
    );
    if c.interrupted {
        let _ = writeln!(
            out,
            "INTERRUPTED (Ctrl-C): the steps so far, and what they found"
        );
    }
    for server in &c.servers {
        out.push('\n');
        server_text(&mut out, server);
    }
    out
}

/// One row of the steps table: the knee mark, then the columns of `HEADER`.
macro_rules! row {
    ($mark:expr, $($cell:expr),* $(,)?) => {
        format!("{}{:>3} {:<7} {:>9} {:>10} {:>11} {:>9} {:>8} {:>5} {:>7}  {}", $mark, $($cell),*)
    };
}

fn server_text(out: &mut String, server: &ServerSearch) {
    let (_, headline) = words::headline(server);
    let _ = writeln!(out, "{}", clip(&server.label));
    wrapped(out, "  ", &headline);
    let bound = server.result.as_ref().map(|r| r.bound);
    if !matches!(bound, Some(Bound::Found) | None) {
        let factor = words::limiting_factor(server);
        wrapped(out, "  ", &format!("limiting factor: {factor}"));
    }
    if let Some(z) = &server.sizing {
        let per_entry = z.bytes_per_entry.or(z.used_memory_bytes_per_entry);
        let headroom = match z.headroom.is_finite() {
            true => format!("{:.0} %", 100.0 * z.headroom),
            false => ABSENT.into(),
        };
        let line = format!(
            "  sizing: {} per entry, operating at {}, headroom {headroom}",
            per_entry.map_or("unknown".into(), format_bytes),
            words::rate(z.operating_rate_per_s),
        );
        let _ = writeln!(out, "{}", clip(&line));
    }
    if let Some(shards) = words::knee_shards(server) {
        wrapped(out, "  ", &shards);
    }
    if let Some(e) = &server.error {
        wrapped(out, "  ", &format!("stopped early: {e}"));
    }
    if server.steps.is_empty() {
        let _ = writeln!(out, "  no step ran");
        return;
    }
    let header = row!(
        " ",
        "#",
        "kind",
        "offered/s",
        "achieved/s",
        "produce p99",
        "e2e p99",
        "lag/s",
        "redis",
        "harness",
        "verdict"
    );
    let _ = writeln!(out, "{header}");
    let knee = knee_step(server).map(|k| k.index);
    for st in &server.steps {
        let mark = if Some(st.index) == knee { "*" } else { " " };
        let _ = writeln!(out, "{}", clip(&step_line(mark, st)));
    }
    let _ = writeln!(
        out,
        "  * the knee (the step the result stands on); e2e p99, lag/s: the worst group's; \
         CPU in cores"
    );
    for st in server.steps.iter().filter(|st| !st.verdict.passed) {
        wrapped(
            out,
            "    ",
            &format!("step {}: {}", st.index, st.verdict.reason),
        );
    }
}

fn step_line(mark: &str, st: &Step) -> String {
    let worst_e2e = (st.groups.iter())
        .filter(|g| g.e2e.count > 0)
        .map(|g| g.e2e.p99_us)
        .max();
    let worst_slope = (st.groups.iter())
        .filter_map(|g| g.lag_slope_per_s)
        .fold(None, |m: Option<f64>, s| Some(m.map_or(s, |m| m.max(s))));
    row!(
        mark,
        st.index,
        st.kind.name(),
        format_rate(st.offered_rate_per_s),
        format_rate(st.achieved_rate_per_s),
        words::latency(&st.produce, |q| q.p99_us),
        worst_e2e.map_or(ABSENT.into(), format_us),
        words::slope(worst_slope),
        words::cores(st.redis_cpu_cores),
        words::cores(Some(st.harness_cpu_cores)),
        words::verdict(&st.verdict),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::capacity::StepShard;
    use crate::report::capacity::example::example_capacity;
    use crate::report::table::MAX_WIDTH;

    #[test]
    fn each_server_has_its_result_limit_and_steps() {
        let c = example_capacity();
        let text = render_capacity_text(&c);
        for line in text.lines() {
            assert!(line.chars().count() <= MAX_WIDTH, "too wide: {line}");
        }
        for expected in [
            "redis 7.0.15\n  max sustainable rate: 21,000 events/s (confirmed), limited by group",
            "valkey 9.1.2\n  at least 26,000 events/s (confirmed): the harness was the limit",
            "  limiting factor: the harness: achieved 26,400/s of 27,000/s offered",
            "  sizing: 612 B per entry, operating at 5,000 events/s, headroom 320 %",
            "  sizing: 640 B per entry, operating at 5,000 events/s, headroom 420 %",
            "    step 8: group billing: lag grows 412/s (limit 220/s)",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
        let knee = text.lines().find(|l| l.starts_with('*')).unwrap();
        assert!(knee.starts_with("* 10 confirm    21,000"), "{knee}");
        assert!(knee.ends_with("  pass"), "{knee}");
        let harness = text
            .lines()
            .find(|l| l.starts_with("   9 bisect     27,000"))
            .unwrap();
        assert!(
            harness.ends_with("  FAIL (harness)"),
            "not clipped: {harness}"
        );
        let first = text.lines().find(|l| l.starts_with("   1 probe")).unwrap();
        assert!(first.contains("  -  "), "no redis CPU figure: {first}");
    }

    #[test]
    fn a_cluster_knee_names_its_busiest_shard() {
        let mut c = example_capacity();
        let server = &mut c.servers[0];
        let knee = server.result.as_ref().unwrap().knee_step.unwrap();
        let step = server.steps.iter_mut().find(|s| s.index == knee).unwrap();
        step.shards = [(0.21, 300), (0.74, 1_300), (0.18, 400)]
            .iter()
            .enumerate()
            .map(|(i, &(cores, entries))| StepShard {
                primary: format!("127.0.0.1:700{i}"),
                cpu_cores_mean: Some(cores),
                cpu_cores_max: Some(cores + 0.1),
                entries_added: entries,
            })
            .collect();
        let text = render_capacity_text(&c);
        let expected = "Redis CPU per shard at the knee: 0.21 / 0.74 / 0.18 cores (entries 15 / \
                        65 / 20 %); busiest shard 1 (127.0.0.1:7001), 0.74 cores, 0.84 at its \
                        busiest second";
        let said = words::knee_shards(&c.servers[0]).unwrap();
        assert_eq!(said, expected);
        let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(flat.contains(expected), "{text}");
    }
}
