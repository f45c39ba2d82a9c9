//! What the capacity views say, written once for `index.html` and the
//! terminal: the headline per server, its bound explained, a step's kind,
//! verdict and figures as cells. A figure the search did not get reads "-"
//! or "unknown", never 0.

use super::{
    Bound, CapacityResult, Criterion, Quantiles, SearchSettings, ServerSearch, Step, StepKind,
    Verdict,
};
use crate::report::format::{format_rate, format_us};

/// A cell for a figure that is absent.
pub(super) const ABSENT: &str = "-";

/// How a headline reads: all good, a result with a caveat, or no result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tone {
    Pass,
    Warn,
    Fail,
}

impl Tone {
    /// The stylesheet's class for it.
    pub(super) fn class(self) -> &'static str {
        match self {
            Tone::Pass => "pass",
            Tone::Warn => "warn",
            Tone::Fail => "fail",
        }
    }
}

/// "21,000 events/s".
pub(super) fn rate(rate_per_s: f64) -> String {
    format!("{} events/s", format_rate(rate_per_s))
}

/// "pass", "FAIL", or "FAIL (harness)" when the harness was the limit.
pub(super) fn verdict(v: &Verdict) -> &'static str {
    match (v.passed, v.harness_limited) {
        (true, _) => "pass",
        (false, false) => "FAIL",
        (false, true) => "FAIL (harness)",
    }
}

/// What failed, in a few words for a table cell: "lag billing", "SLO
/// e2e_p99", "achieved 71.0 %"; the verdict's `reason` has the figures.
pub(super) fn criterion(c: &Criterion) -> String {
    match c {
        Criterion::AchievedRate { ratio } => format!("achieved {:.1} %", 100.0 * ratio),
        Criterion::GroupLag { group, .. } => format!("lag {group}"),
        Criterion::GroupPending { group, .. } => format!("pending {group}"),
        Criterion::GroupTrendUnknown { group } => format!("lag {group} unknown"),
        Criterion::Slo { check, .. } => format!("SLO {check}"),
        Criterion::Incomplete { .. } => "incomplete".into(),
    }
}

/// A step's verdict for a table cell: "pass", or "FAIL: lag billing",
/// "FAIL (harness): achieved 97.8 %".
pub(super) fn verdict_cell(v: &Verdict) -> String {
    match &v.failed {
        Some(c) if !v.passed => format!("{}: {}", verdict(v), criterion(c)),
        _ => verdict(v).into(),
    }
}

/// A latency quantile of a step, "-" when it recorded no value.
pub(super) fn latency(q: &Quantiles, pick: fn(&Quantiles) -> u64) -> String {
    if q.count == 0 {
        return ABSENT.into();
    }
    format_us(pick(q))
}

pub(super) fn cores(cores: Option<f64>) -> String {
    cores.map_or(ABSENT.into(), |c| format!("{c:.2}"))
}

/// A cluster step's Redis CPU per shard in slot order, "0.41 / 0.12 /
/// 0.10"; "-" for one server.
pub(super) fn shard_cores(st: &Step) -> String {
    let cells: Vec<String> = st.shards.iter().map(|s| cores(s.cpu_cores_mean)).collect();
    match cells.is_empty() {
        true => ABSENT.into(),
        false => cells.join(" / "),
    }
}

/// A cluster step's share of the entries per shard, "62 / 20 / 18 %".
pub(super) fn shard_shares(st: &Step) -> String {
    let total: u64 = st.shards.iter().map(|s| s.entries_added).sum();
    if st.shards.is_empty() || total == 0 {
        return ABSENT.into();
    }
    let shares: Vec<String> = (st.shards.iter())
        .map(|s| format!("{:.0}", 100.0 * s.entries_added as f64 / total as f64))
        .collect();
    format!("{} %", shares.join(" / "))
}

/// The knee's shards in a sentence, the busiest named: which shard a
/// cluster's limit is; None for one server.
pub(super) fn knee_shards(server: &ServerSearch) -> Option<String> {
    let knee = knee_step(server)?;
    let (busiest, shard) = knee.busiest_shard()?;
    Some(format!(
        "Redis CPU per shard at the knee: {} cores (entries {}); busiest shard {busiest} \
         ({}), {} cores, {} at its busiest second",
        shard_cores(knee),
        shard_shares(knee),
        shard.primary,
        cores(shard.cpu_cores_mean),
        cores(shard.cpu_cores_max),
    ))
}

/// A slope in entries/s with its sign: "+412", "-3.2", "-" when unknown.
pub(super) fn slope(slope_per_s: Option<f64>) -> String {
    match slope_per_s {
        Some(s) if s.is_finite() => {
            let sign = if s > 0.0 && format_rate(s) != "0" {
                "+"
            } else {
                ""
            };
            format!("{sign}{}", format_rate(s))
        }
        _ => ABSENT.into(),
    }
}

/// The step the result stands on: `knee_step`, else none.
pub(super) fn knee_step(server: &ServerSearch) -> Option<&Step> {
    let index = server.result.as_ref()?.knee_step?;
    server.steps.iter().find(|s| s.index == index)
}

/// Where the knee lies on the offered-rate axis: the knee step's rate, else
/// the result's (none when nothing passed).
pub(super) fn knee_rate(server: &ServerSearch) -> Option<f64> {
    let knee = knee_step(server).map(|s| s.offered_rate_per_s);
    let result = server.result.as_ref().map(|r| r.max_sustainable_rate_per_s);
    knee.or(result).filter(|r| *r > 0.0)
}

/// "(confirmed)", "(confirmation failed)" or "(not confirmed)".
fn confirmation(server: &ServerSearch, result: &CapacityResult) -> &'static str {
    let confirm_failed =
        (server.steps.iter()).any(|s| s.kind == StepKind::Confirm && !s.verdict.passed);
    match (result.confirmed, confirm_failed) {
        (true, _) => "confirmed",
        (false, true) => "confirmation failed",
        (false, false) => "not confirmed",
    }
}

/// What failed first above the result, for people; "-" when nothing did.
pub(super) fn limiting_factor(server: &ServerSearch) -> String {
    let limit = server.result.as_ref().and_then(|r| r.limit.as_ref());
    match limit {
        Some(v) if v.harness_limited => format!("the harness: {}", v.reason),
        Some(v) => v.reason.clone(),
        None => ABSENT.into(),
    }
}

/// One line: what the search found against this server.
pub(super) fn headline(server: &ServerSearch) -> (Tone, String) {
    let Some(r) = &server.result else {
        let why = match (&server.error, server.steps.is_empty()) {
            (Some(e), _) => format!("no result: {e}"),
            (None, true) => "no result: no step ran".into(),
            (None, false) => "no result".into(),
        };
        return (Tone::Fail, why);
    };
    let max = rate(r.max_sustainable_rate_per_s);
    let confirmed = confirmation(server, r);
    let limit = limiting_factor(server);
    match r.bound {
        Bound::Found => {
            let tone = if r.confirmed { Tone::Pass } else { Tone::Warn };
            let text = format!("max sustainable rate: {max} ({confirmed}), limited by {limit}");
            (tone, text)
        }
        Bound::HarnessLimited => (
            Tone::Warn,
            format!("at least {max} ({confirmed}): the harness was the limit, not the server"),
        ),
        Bound::Ceiling => (
            Tone::Warn,
            format!("at least {max} ({confirmed}): every step up to the ceiling passed"),
        ),
        Bound::BelowStart => (
            Tone::Fail,
            format!("below the start rate: the first step failed, on {limit}"),
        ),
        Bound::Unconfirmed => (
            Tone::Warn,
            format!("{max}, unconfirmed: no confirmation run held"),
        ),
        Bound::Incomplete if r.max_sustainable_rate_per_s > 0.0 => (
            Tone::Fail,
            format!("incomplete: {max} passed before the search stopped"),
        ),
        Bound::Incomplete => (
            Tone::Fail,
            "incomplete: no step passed before the search stopped".into(),
        ),
    }
}

/// The bound in words: what the figure means and what to do next.
pub(super) fn bound_explained(server: &ServerSearch, settings: &SearchSettings) -> String {
    let Some(r) = &server.result else {
        return "The search against this server found nothing to report.".into();
    };
    let max = rate(r.max_sustainable_rate_per_s);
    let failing = r.first_failing_rate_per_s.map(rate);
    let percent = |x: f64| format!("{:.1} %", 100.0 * x);
    let mut text = match r.bound {
        Bound::Found => format!(
            "Bracketed: {max} passed and {} failed, {} apart (the search stops at {}).",
            failing.as_deref().unwrap_or("the next rate"),
            r.resolution_reached
                .map_or("an unknown gap".into(), percent),
            percent(settings.resolution),
        ),
        Bound::HarnessLimited => format!(
            "The lowest failure{} was the harness's own: it could not keep its schedule \
             (its CPU saturated, alone or with a server on the same machine). The server \
             sustains at least {max}; its own limit lies higher than this machine could \
             offer. Run the harness on more cores or another machine to find it.",
            failing.map(|f| format!(", at {f},")).unwrap_or_default(),
        ),
        Bound::Ceiling => format!(
            "Every step up to the ceiling of {} passed: the server sustains at least that \
             much. Raise the ceiling to find its limit.",
            rate(settings.max_rate_per_s)
        ),
        Bound::BelowStart => format!(
            "Even the first step, at the start rate of {}, failed: the limit lies below it. \
             Lower --start-rate.",
            rate(settings.start_rate_per_s)
        ),
        Bound::Unconfirmed => format!(
            "{max} passed once, but no confirmation run held (three were tried): the setup \
             is noisy around its limit. Longer steps (--step, --confirm) judge it more steadily."
        ),
        Bound::Incomplete => "The search stopped (Ctrl-C or an error) before a passing and a \
             failing step bracketed the limit: the figure is the highest rate that passed so \
             far, a lower bound."
            .into(),
    };
    if let Some(e) = &server.error {
        text += &format!(" Stopped early: {e}.");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::capacity::example::example_capacity;

    #[test]
    fn each_bound_reads_as_what_it_means() {
        let c = example_capacity();
        let (tone, text) = headline(&c.servers[0]);
        assert_eq!(tone, Tone::Pass);
        assert_eq!(
            text,
            "max sustainable rate: 21,000 events/s (confirmed), limited by group billing: \
             lag grows 412/s (limit 220/s)"
        );
        let (tone, text) = headline(&c.servers[1]);
        assert_eq!(tone, Tone::Warn);
        assert!(text.starts_with("at least 26,000 events/s (confirmed): the harness"));
        let explained = bound_explained(&c.servers[1], &c.settings);
        assert!(explained.contains("at 27,000 events/s,"), "{explained}");

        let mut s = c.servers[0].clone();
        let r = s.result.as_mut().unwrap();
        (r.bound, r.max_sustainable_rate_per_s, r.confirmed) = (Bound::Incomplete, 0.0, false);
        s.error = Some("redis-server exited".into());
        assert_eq!(
            headline(&s).1,
            "incomplete: no step passed before the search stopped"
        );
        assert!(bound_explained(&s, &c.settings).ends_with("Stopped early: redis-server exited."));
        s.result = None;
        assert_eq!(
            headline(&s),
            (Tone::Fail, "no result: redis-server exited".into())
        );
    }

    #[test]
    fn absent_figures_are_not_zero() {
        assert_eq!(latency(&Quantiles::default(), |q| q.p99_us), ABSENT);
        assert_eq!((cores(None), slope(None)), (ABSENT.into(), ABSENT.into()));
        assert_eq!(slope(Some(412.0)), "+412");
        assert_eq!(slope(Some(-3.25)), "-3.2");
        assert_eq!(slope(Some(0.0)), "0");
    }
}
