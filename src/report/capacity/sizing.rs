//! index.html's sizing tables for one server: memory per entry (the stream's
//! own and Redis's whole), the operating rate and its headroom, the memory
//! and XADD trimming bounds that keep a retention window, how long a backlog
//! takes to drain, and how many shards a target rate needs.

use std::fmt::Write as _;

use super::words::{self, ABSENT};
use super::{Capacity, ServerSearch, Sizing};
use crate::report::format::{format_bytes, format_count, format_rate, format_seconds};
use crate::report::html::{esc, table};

/// What a figure the search could not measure reads as.
const UNKNOWN: &str = "unknown";

pub(super) fn sizing_section(c: &Capacity, server: &ServerSearch) -> String {
    let title = match c.servers.len() {
        1 => "Sizing".to_string(),
        _ => format!("Sizing: {}", server.label),
    };
    let mut out = format!("<h2>{}</h2>\n", esc(&title));
    let Some(z) = &server.sizing else {
        return out + "<p>No sizing: no step passed, so there is no rate to plan from.</p>\n";
    };
    let max = server.result.as_ref().map(|r| r.max_sustainable_rate_per_s);
    out += &figures(c, z, max);
    out += &retention(z);
    out += &drain(z);
    out += &shards(z, max);
    out
}

fn bytes(b: Option<f64>) -> String {
    b.map_or(UNKNOWN.into(), format_bytes)
}

fn figures(c: &Capacity, z: &Sizing, max: Option<f64>) -> String {
    let source = match c.settings.scenario_rate_per_s {
        Some(_) => "the scenario's own rate",
        None => "half the result: the scenario has no single rate",
    };
    let max = max.map_or(ABSENT.into(), words::rate);
    let headroom = match z.headroom {
        h if !h.is_finite() => ABSENT.into(),
        h if h >= 0.0 => format!("{:.0} % more load fits ({max} max sustainable)", 100.0 * h),
        // The scenario's own rate is beyond what the setup sustains.
        h => format!(
            "none: the load must drop by {:.0} % to fit ({max} max sustainable)",
            -100.0 * h
        ),
    };
    let rows = vec![
        vec![
            "bytes per entry, stream".into(),
            bytes(z.bytes_per_entry),
            "MEMORY USAGE / XLEN of the streams after the knee step's drain".into(),
        ],
        vec![
            "bytes per entry, used_memory".into(),
            bytes(z.used_memory_bytes_per_entry),
            "INFO used_memory's growth rate over the knee step / its achieved rate \
             (unknown when a stream is trimmed)"
                .into(),
        ],
        vec![
            "pending bytes per entry".into(),
            bytes(z.pending_bytes_per_entry),
            "extra memory while an entry is read but not acknowledged (a probe on a fresh \
             server)"
                .into(),
        ],
        vec![
            "operating rate".into(),
            words::rate(z.operating_rate_per_s),
            source.into(),
        ],
        vec![
            "headroom".into(),
            headroom,
            "max sustainable / operating − 1".into(),
        ],
    ];
    table(&["figure", "value", "from"], &rows)
}

fn retention(z: &Sizing) -> String {
    let rows: Vec<Vec<String>> = (z.retention.iter())
        .map(|r| {
            vec![
                words::rate(r.rate_per_s),
                format_seconds(r.window_s),
                format_count(r.entries),
                r.bytes.map_or(UNKNOWN.into(), |b| format_bytes(b as f64)),
                format!("MAXLEN {}", format_count(r.maxlen)),
                format!("MINID now_ms − {}", format_count(r.minid_ms)),
            ]
        })
        .collect();
    let headers = [
        "rate",
        "window",
        "entries",
        "memory",
        "XADD trim by count",
        "XADD trim by id",
    ];
    let mut out = String::from("<h3>Retention</h3>\n");
    if rows.is_empty() {
        return out + "<p>No retention rows.</p>\n";
    }
    out += &table(&headers, &rows);
    out + "<p class=\"note\">Memory to keep a window of events at a rate, from the bytes \
           per entry above, and the XADD bound that keeps it: MAXLEN counts entries, MINID \
           drops ids older than now − window (ids are milliseconds). With <code>~</code> \
           Redis trims whole nodes, a little later.</p>\n"
}

fn drain(z: &Sizing) -> String {
    let rows: Vec<Vec<String>> = (z.drain.iter())
        .map(|d| {
            vec![
                format_seconds(d.outage_s),
                format_count(d.backlog),
                d.drain_s
                    .map_or("never: no spare rate".into(), format_seconds),
            ]
        })
        .collect();
    let mut out = String::from("<h3>Catching up after an outage</h3>\n");
    if rows.is_empty() {
        return out + "<p>No drain rows.</p>\n";
    }
    out += &table(
        &["consumers down for", "backlog (entries)", "drain time"],
        &rows,
    );
    let _ = writeln!(
        out,
        "<p class=\"note\">While consumers are down, {} piles up; afterwards they catch up \
         with the rate left over: backlog / (max sustainable − operating).</p>",
        esc(&words::rate(z.operating_rate_per_s))
    );
    out
}

fn shards(z: &Sizing, max: Option<f64>) -> String {
    let rows: Vec<Vec<String>> = (z.shards.iter())
        .map(|s| vec![words::rate(s.target_rate_per_s), s.shards.to_string()])
        .collect();
    let mut out = String::from("<h3>Shards</h3>\n");
    if rows.is_empty() {
        return out + "<p>No shard rows.</p>\n";
    }
    out += &table(&["target rate", "shards"], &rows);
    let per_shard = max.map_or(ABSENT.into(), format_rate);
    let _ = writeln!(
        out,
        "<p class=\"note\">One stream is one key, and one key lives on one shard: a single \
         stream cannot go beyond one shard's capacity ({per_shard} events/s here). A target \
         above it needs the stream partitioned into several streams (keys), one or more per \
         shard, with producers spreading events across them and a consumer group per \
         partition.</p>"
    );
    out
}
