//! The end-of-run terminal summary, rendered from a `Summary` so it can be
//! reprinted for any old run. Plain text, at most 100 columns wide.

mod cluster;
mod event_sourcing;
mod faults;
mod ledger;
mod produce;
mod replay;
mod schema_versions;
mod segments;
mod trim;

use std::fmt::Write;

use super::summary::Summary;
use crate::metrics::EventKey;

pub(crate) use faults::gone_range;

/// Widest line `render` produces.
pub const MAX_WIDTH: usize = 100;

pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    header(&mut out, summary);
    segments::segment_lines(&mut out, summary);
    produce::produce_lines(&mut out, summary);
    produce::latency_table(&mut out, summary);
    // A segment's ledger is its share only; the merge settles the run.
    if summary.segment.is_none() {
        ledger::ledger_table(&mut out, summary);
        ledger::delivery_table(&mut out, &summary.groups);
    }
    event_sourcing::order_table(&mut out, summary);
    event_sourcing::projection_table(&mut out, summary);
    schema_versions::versions_table(&mut out, summary);
    replay::replay_table(&mut out, summary);
    trim::trim_table(&mut out, summary);
    if summary.segment.is_none() {
        ledger::verify_lines(&mut out, summary);
    }
    cluster::cluster_lines(&mut out, summary);
    faults::durability_lines(&mut out, summary);
    faults::fault_table(&mut out, summary);
    slo_lines(&mut out, summary);
    out
}

fn header(out: &mut String, s: &Summary) {
    let _ = writeln!(
        out,
        "{}",
        clip(&format!(
            "streamdrill {} | run {} | {}",
            s.streamdrill_version, s.run_id, s.started_at
        ))
    );
    let _ = writeln!(
        out,
        "{}",
        clip(&format!(
            "{} ({}, {}) | measured {:.1}s{}",
            s.redis.label(),
            s.redis.mode,
            s.redis.url,
            s.measured_duration_s,
            if s.interrupted {
                " | INTERRUPTED (Ctrl-C)"
            } else {
                ""
            }
        ))
    );
    // An unverified server is said where the server is named, every time.
    if let Some(tls) = &s.redis.tls {
        let _ = writeln!(out, "{}", clip(&format!("tls      {}", tls.describe())));
    }
    // Asked for but refused: say so where the figures are read.
    if s.machine.poll_refused() {
        let line = format!(
            "idle CPUs: {}; latencies include CPU wake-ups from sleep (--cpu-idle os: the machine as configured)",
            s.machine.idle_label()
        );
        let _ = writeln!(out, "{}", clip(&line));
    }
}

fn slo_lines(out: &mut String, s: &Summary) {
    let r = &s.slo;
    if s.segment.is_some() {
        let _ = writeln!(
            out,
            "\nSLO      judged by `streamdrill merge` on the merged run"
        );
        return;
    }
    if r.checks.is_empty() {
        let _ = writeln!(out, "\nSLO      none set");
        return;
    }
    let _ = writeln!(
        out,
        "\nSLO      {}",
        if r.passed { "PASSED" } else { "FAILED" }
    );
    for c in &r.checks {
        let mark = if c.passed { "pass" } else { "FAIL" };
        let line = format!(
            "  [{mark}] {:<28} {:<10} {:<14} actual {}",
            c.name,
            c.scope.label(),
            c.objective.threshold_text(),
            c.objective.actual_text()
        );
        let _ = writeln!(out, "{}", clip(&line));
        if let Some(note) = &c.note {
            wrapped(out, "         ", note);
        }
    }
}

/// Truncates to `width` characters, marking the cut with '~'.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width - 1).collect();
    cut.push('~');
    cut
}

pub(crate) fn clip(line: &str) -> String {
    fit(line, MAX_WIDTH)
}

/// `text` on as many lines as it takes, each starting with `indent`: for
/// reasons, which must not be cut off (the cause is usually at the end).
pub(crate) fn wrapped(out: &mut String, indent: &str, text: &str) {
    let width = MAX_WIDTH - indent.chars().count();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&fit(word, width));
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
}

/// One clipped line listing sample events as producer:seq, if there are any.
fn key_sample(out: &mut String, what: &str, keys: &[EventKey]) {
    if keys.is_empty() {
        return;
    }
    let keys: Vec<String> = keys
        .iter()
        .map(|k| format!("{}:{}", k.producer, k.seq))
        .collect();
    let _ = writeln!(
        out,
        "{}",
        clip(&format!("  {what} (producer:seq): {}", keys.join(" ")))
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::IdleState;
    use crate::report::slo::evaluate;
    use crate::report::summary::tests::test_summary;
    use crate::scenario::{Dur, Slo};

    #[test]
    fn render_fits_and_shows_the_numbers() {
        let mut summary = test_summary();
        summary.groups[0].name = "a-very-long-consumer-group-name-indeed".into();
        summary.groups[0].measured.dead_lettered = 7;
        summary.groups[0].lost_sample = (0..20)
            .map(|seq| crate::metrics::EventKey {
                producer: 12,
                seq: seq * 1_000_000,
            })
            .collect();
        let slo = Slo {
            e2e_p99: Some(Dur::from_millis(5)),
            lost: Some(0),
            ..Default::default()
        };
        summary.slo = evaluate(&slo, &summary);
        summary.faults = vec![crate::metrics::FaultWindow {
            name: "freeze_redis 1s".into(),
            start_s: 2.0,
            end_s: 3.0,
            first_ack_after_s: Some(0.0),
            lag_recovered_after_s: None,
            first_write_after_s: Some(1.004),
            all_writes_after_s: Some(1.25),
            in_flight_at_start: Some(12),
            recovered_after_s: Some(0.031),
            ..Default::default()
        }];
        summary.faults.push(crate::metrics::FaultWindow {
            name: "client_kill".into(),
            applied: false,
            error: Some("CLIENT KILL closed no connection".into()),
            clients_killed: Some(0),
            start_s: 4.0,
            end_s: 4.0,
            ..Default::default()
        });
        summary.interrupted = true;
        assert!(
            !render(&summary).contains("idle CPUs"),
            "held as asked: nothing to say"
        );
        let why = "/dev/cpu_dma_latency: Permission denied (os error 13)";
        summary.machine.cpu_idle = Some(IdleState::OsPollRefused(why.into()));
        let text = render(&summary);
        assert!(text.contains("INTERRUPTED"), "{text}");
        assert!(
            text.contains(&format!("idle CPUs: os (poll not held: {why})")),
            "{text}"
        );
        let fault = text
            .lines()
            .find(|l| l.starts_with("freeze_redis"))
            .unwrap();
        let cols: Vec<&str> = fault.split_whitespace().collect();
        assert_eq!(
            cols[2..],
            ["yes", "2.0s", "3.0s", "1.00/1.25s", "12", "0.03s", "never"],
            "{text}"
        );
        let kill = text.lines().find(|l| l.starts_with("client_kill")).unwrap();
        assert_eq!(kill.split_whitespace().nth(1), Some("NO"), "{text}");
        assert!(
            text.contains("  NOT APPLIED client_kill at 4.0s: CLIENT KILL closed no connection\n"),
            "{text}"
        );
        assert!(
            text.contains("  client_kill closed 0 connections\n"),
            "{text}"
        );
        for line in text.lines() {
            assert!(line.chars().count() <= MAX_WIDTH, "too wide: {line:?}");
        }
        assert!(text.contains("achieved 100.0/s (100.0%)"), "{text}");
        // 0.65 s of CPU over the test summary's 6,500 events sent.
        assert!(
            text.contains("harness  CPU 0.65s, 100.00µs per event"),
            "{text}"
        );
        assert!(text.contains("produce latency"));
        assert!(text.contains("e2e a-very-long-consum~"));
        assert!(text.contains("SLO      FAILED"));
        assert!(text.contains("[FAIL] e2e_p99[a-very-long-consumer-group-name-indeed]"));
        assert!(text.contains("[pass] lost["));
        assert!(text.contains("entries-added 6500 vs produce acked 6500: consistent"));
        let mut rows = text.lines().filter(|l| l.starts_with("a-very-long-cons~"));
        let cols = |line: &str| -> Vec<String> {
            line.split_whitespace().skip(1).map(String::from).collect()
        };
        // Measured: acked, processed, dlq, in-prog, unread, strand, unknown, lost.
        assert_eq!(
            cols(rows.next().unwrap()),
            ["6000", "6000", "7", "0", "0", "0", "0", "0"]
        );
        let warmup = text.lines().find(|l| l.starts_with("  warmup")).unwrap();
        assert_eq!(cols(warmup), ["500", "500", "0", "0", "0", "0", "0", "0"]);
        // Whole run: dupes, redeliv, unacked-w, unexp, pending, drained.
        assert_eq!(cols(rows.next().unwrap()), ["1", "1", "0", "0", "0", "yes"]);
        assert!(
            text.contains("  deliveries per event: 1x 6499  2x 1\n"),
            "{text}"
        );
        assert!(
            text.contains("processed): n 1  p50 750ms  p99 750ms  max 750ms\n"),
            "{text}"
        );
    }
}
