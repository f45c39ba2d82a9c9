//! `index.html` of a capacity directory: one self-contained page (the run
//! report's stylesheet and helpers, plots inline as SVG) with the headline
//! per server, the servers side by side, the search settings, each server's
//! steps (linking to each step's own report), the plots, the sizing tables,
//! the scenario and the terminal summary.

use std::fmt::Write as _;

use super::words::{self, ABSENT, knee_step};
use super::{Bound, Capacity, ServerSearch, Step};
use crate::report::format::{format_bytes, format_rate, format_us};
use crate::report::html::{Row, esc, page_with_style, plots_section, table, table_html};
use crate::report::plot::Rendered;

pub(super) fn index_html(c: &Capacity, plots: &[Rendered]) -> String {
    let s = &c.scenario;
    let mut body = String::new();
    let _ = writeln!(
        body,
        "<h1>{} capacity <small>{}</small></h1>",
        esc(&s.name),
        esc(&c.id)
    );
    if !s.description.is_empty() {
        let _ = writeln!(body, "<p>{}</p>", esc(&s.description));
    }
    if c.interrupted {
        body += "<p class=\"fail\"><b>INTERRUPTED</b> (Ctrl-C): the steps so far, and what \
                 they found.</p>\n";
    }
    body += &headlines(c);
    if c.servers.len() > 1 {
        body += &servers_side_by_side(c);
    }
    body += &settings(c);
    for server in &c.servers {
        body += &steps_section(c, server);
    }
    body += &plots_section(plots);
    let _ = writeln!(
        body,
        "<p class=\"note\">Each point is one step: filled passed, hollow failed, a cross \
         failed because the harness could not keep its schedule. The dashed vertical line \
         is the knee (the highest passing rate), a red dashed line an objective.</p>"
    );
    for server in &c.servers {
        body += &super::sizing::sizing_section(c, server);
    }
    let scenario_toml = toml::to_string(s).unwrap_or_default();
    let _ = writeln!(
        body,
        "<h2>Scenario (as given, before each step scales its rates)</h2>\n<pre>{}</pre>",
        esc(&scenario_toml)
    );
    let _ = writeln!(
        body,
        "<h2>Terminal summary</h2>\n<pre>{}</pre>",
        esc(&super::render_capacity_text(c))
    );
    let title = format!("streamdrill capacity: {}", s.name);
    page_with_style(&title, STYLE, &body)
}

/// Beyond the run report's stylesheet: a yellow box for a result with a
/// caveat, the knee row, notes, and the steps tables compact enough to fit.
const STYLE: &str = ".warn{background:#fff4d6;border:2px solid #b8860b;padding:.6em 1em}\
div.headline{margin:.8em 0}tr.knee td{font-weight:bold;background:#eef5fb}\
p.note{color:#555;font-size:.9em}div.wide{overflow-x:auto;font-size:.85em}\
div.wide td{white-space:nowrap}div.wide td,div.wide th{padding:2px 5px}";

/// Per server: what it sustains, in a box coloured by how sure that is.
fn headlines(c: &Capacity) -> String {
    let mut out = String::new();
    for server in &c.servers {
        let (tone, text) = words::headline(server);
        let _ = writeln!(
            out,
            "<div class=\"{} headline\"><p><b>{}</b>: {}</p><p>{}</p></div>",
            tone.class(),
            esc(&server.label),
            esc(&text),
            esc(&words::bound_explained(server, &c.settings))
        );
    }
    if c.servers.is_empty() {
        out += "<p class=\"fail\">No server was searched.</p>\n";
    }
    out
}

fn bound_word(server: &ServerSearch) -> &'static str {
    match server.result.as_ref().map(|r| r.bound) {
        Some(Bound::Found) => "found",
        Some(Bound::HarnessLimited) => "harness-limited (at least)",
        Some(Bound::Ceiling) => "ceiling (at least)",
        Some(Bound::BelowStart) => "below the start rate",
        Some(Bound::Unconfirmed) => "unconfirmed",
        Some(Bound::Incomplete) => "incomplete",
        None => "none",
    }
}

fn servers_side_by_side(c: &Capacity) -> String {
    let rows: Vec<Vec<String>> = (c.servers.iter())
        .map(|s| {
            let r = s.result.as_ref();
            let knee = knee_step(s);
            let sizing = s.sizing.as_ref();
            vec![
                s.label.clone(),
                r.map_or(ABSENT.into(), |r| format_rate(r.max_sustainable_rate_per_s)),
                bound_word(s).into(),
                r.map_or(ABSENT.into(), |r| yes_no(r.confirmed).into()),
                words::limiting_factor(s),
                words::cores(knee.and_then(|k| k.redis_cpu_cores)),
                words::cores(knee.map(|k| k.harness_cpu_cores)),
                (sizing.and_then(|z| z.bytes_per_entry)).map_or("unknown".into(), format_bytes),
            ]
        })
        .collect();
    let headers = [
        "server",
        "max sustainable (events/s)",
        "bound",
        "confirmed",
        "limiting factor",
        "redis CPU at knee",
        "harness CPU at knee",
        "bytes per entry",
    ];
    format!("<h2>Servers side by side</h2>\n{}", table(&headers, &rows))
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

fn settings(c: &Capacity) -> String {
    let st = &c.settings;
    let slo = &c.scenario.slo;
    let objectives: Vec<String> = [("e2e p99", slo.e2e_p99), ("produce p99", slo.produce_p99)]
        .into_iter()
        .filter_map(|(name, d)| d.map(|d| format!("{name} ≤ {}", format_us(d.as_nanos() / 1_000))))
        .collect();
    let m = &c.machine;
    let mut rows = vec![
        vec!["started".into(), c.started_at.clone()],
        vec!["start rate".into(), words::rate(st.start_rate_per_s)],
        vec!["ceiling".into(), words::rate(st.max_rate_per_s)],
        vec![
            "probe growth".into(),
            format!("× {} per step until one fails", st.growth),
        ],
        vec![
            "resolution".into(),
            format!(
                "bisect until (fail − pass) / pass ≤ {:.1} %",
                100.0 * st.resolution
            ),
        ],
        vec![
            "each step".into(),
            format!(
                "{} s warmup, then {} s measured",
                st.step_warmup_s, st.step_duration_s
            ),
        ],
        vec![
            "confirmation".into(),
            format!("{} s measured at the result", st.confirm_duration_s),
        ],
        vec![
            "a step passes when".into(),
            format!(
                "achieved ≥ {} % of offered, no group's lag or pending grows beyond its \
                 limit, and the scenario's SLO holds",
                format_rate(100.0 * st.min_achieved_ratio)
            ),
        ],
        vec![
            "scenario SLO".into(),
            if objectives.is_empty() {
                "none".into()
            } else {
                objectives.join(", ")
            },
        ],
        vec![
            "scenario rate (operating point)".into(),
            st.scenario_rate_per_s
                .map_or("none (half the result is planned for)".into(), words::rate),
        ],
        vec!["streamdrill".into(), c.streamdrill_version.clone()],
        vec![
            "machine".into(),
            format!(
                "{} {}/{}, {} CPUs, kernel {}",
                m.hostname, m.os, m.arch, m.cpus, m.kernel
            ),
        ],
        vec!["idle CPUs".into(), m.idle_label()],
    ];
    for s in &c.servers {
        let binary = s.binary.as_deref().unwrap_or("external");
        let seen = match &s.redis {
            None => "never reached".to_string(),
            // Valkey's redis_version is the Redis it is compatible with.
            Some(r) if !s.label.trim_end_matches(" TLS").ends_with(&r.version) => {
                format!("{}, redis_version {}", r.url, r.version)
            }
            Some(r) => r.url.clone(),
        };
        rows.push(vec![s.label.clone(), format!("{binary} ({seen})")]);
    }
    format!("<h2>Search settings</h2>\n{}", table(&["", "value"], &rows))
}

fn steps_section(c: &Capacity, server: &ServerSearch) -> String {
    let groups: Vec<String> = (server.steps.first())
        .map(|st| st.groups.iter().map(|g| g.name.clone()).collect())
        .unwrap_or_default();
    let mut headers: Vec<String> = [
        "#",
        "kind",
        "offered/s",
        "achieved/s",
        "verdict",
        "produce p99",
    ]
    .map(String::from)
    .to_vec();
    headers.extend(groups.iter().map(|g| format!("e2e p99 {g}")));
    headers.extend(groups.iter().map(|g| format!("lag slope/s {g}")));
    headers.extend(["slope limit/s", "redis CPU", "harness CPU"].map(String::from));
    // A cluster's shards, each one Redis thread (docs/cluster.md, "Capacity across shards").
    let sharded = server.steps.iter().any(|st| !st.shards.is_empty());
    if sharded {
        headers.extend(["redis CPU per shard", "entries per shard"].map(String::from));
    }
    let knee = knee_step(server).map(|k| k.index);
    let rows: Vec<Row> = (server.steps.iter())
        .map(|st| {
            let mut cells = step_cells(st, &groups);
            if sharded {
                cells.extend([words::shard_cores(st), words::shard_shares(st)].map(|c| esc(&c)));
            }
            Row {
                class: (Some(st.index) == knee).then_some("knee"),
                cells,
            }
        })
        .collect();
    let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
    let title = match c.servers.len() {
        1 => "Steps".to_string(),
        _ => format!("Steps: {}", server.label),
    };
    let mut out = format!("<h2>{}</h2>\n", esc(&title));
    if let Some(e) = &server.error {
        let _ = writeln!(out, "<p class=\"fail\">Stopped early: {}</p>", esc(e));
    }
    if server.steps.is_empty() {
        return out + "<p>No step ran.</p>\n";
    }
    out += "<div class=\"wide\">\n";
    out += &table_html(&headers, &rows);
    out += "</div>\n<p class=\"note\">In the order run; each number links the step's own \
            report; the knee (the step the result stands on) in bold. Slopes: how fast a \
            group's backlog grew over the measured window.</p>\n";
    if let Some(shards) = words::knee_shards(server) {
        let _ = writeln!(out, "<p>{}.</p>", esc(&shards));
    }
    out + &failures(server)
}

/// Why each failing step failed, in full.
fn failures(server: &ServerSearch) -> String {
    let failed: Vec<&Step> = server.steps.iter().filter(|s| !s.verdict.passed).collect();
    if failed.is_empty() {
        return String::new();
    }
    let mut out = String::from("<ul>\n");
    for st in failed {
        let _ = writeln!(
            out,
            "<li>step {} ({}/s, {}): {}</li>",
            st.index,
            format_rate(st.offered_rate_per_s),
            words::verdict(&st.verdict),
            esc(&st.verdict.reason)
        );
    }
    out + "</ul>\n"
}

/// One step's cells, escaped; its number links the step's own report.
fn step_cells(st: &Step, groups: &[String]) -> Vec<String> {
    let group = |name: &String| st.groups.iter().find(|g| &g.name == name);
    let achieved = match st.offered_rate_per_s > 0.0 {
        true => format!(
            "{} ({:.1} %)",
            format_rate(st.achieved_rate_per_s),
            100.0 * st.achieved_rate_per_s / st.offered_rate_per_s
        ),
        false => format_rate(st.achieved_rate_per_s),
    };
    let mut cells = vec![
        st.kind.name().into(),
        format_rate(st.offered_rate_per_s),
        achieved,
        words::verdict_cell(&st.verdict),
        words::latency(&st.produce, |q| q.p99_us),
    ];
    cells.extend(
        groups
            .iter()
            .map(|g| group(g).map_or(ABSENT.into(), |g| words::latency(&g.e2e, |q| q.p99_us))),
    );
    cells.extend((groups.iter()).map(|g| words::slope(group(g).and_then(|g| g.lag_slope_per_s))));
    let limits = st.groups.iter().map(|g| g.slope_limit_per_s);
    let limit = limits.fold(None, |m: Option<f64>, l| Some(m.map_or(l, |m| m.min(l))));
    cells.extend([
        limit.map_or(ABSENT.into(), format_rate),
        words::cores(st.redis_cpu_cores),
        words::cores(Some(st.harness_cpu_cores)),
    ]);
    let href = format!("{}/index.html", st.run_dir.trim_end_matches('/'));
    let link = format!("<a href=\"{}\">{}</a>", esc(&href), st.index);
    std::iter::once(link)
        .chain(cells.iter().map(|c| esc(c)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::capacity::example::example_capacity;

    #[test]
    fn a_step_row_links_its_report_and_says_why_it_failed() {
        let c = example_capacity();
        let groups = vec!["billing".to_string(), "audit".to_string()];
        let cells = step_cells(&c.servers[0].steps[7], &groups);
        assert_eq!(
            cells,
            [
                "<a href=\"steps/1/08-bisect-22000/index.html\">8</a>",
                "bisect",
                "22,000",
                "21,989 (100.0 %)",
                "FAIL: lag billing",
                "5.29ms",
                "34.7ms",
                "10.9ms",
                "+412",
                "+3",
                "220",
                "0.98",
                "1.36",
            ]
        );
    }
}
