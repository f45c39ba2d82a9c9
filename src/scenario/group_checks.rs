//! Checks of a group's recovery settings: XAUTOCLAIM (`reclaim`) timings,
//! and dead-lettering (`max_deliveries`, `poison`), which only mean
//! something with a pending list that is reclaimed. Pure; called by `validate`.

use super::violation::Violation;
use super::{AckMode, GroupConfig, Projection, Scenario};

pub(super) fn check(s: &Scenario) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut add = |field: String, problem: String| v.push(Violation { field, problem });
    for (i, g) in s.groups.iter().enumerate() {
        if let Some(r) = g.reclaim {
            if r.min_idle.is_zero() {
                add(
                    format!("groups[{i}].reclaim.min_idle"),
                    "must be more than 0s, or every pending entry would be stolen at once".into(),
                );
            }
            if r.every.is_zero() {
                add(
                    format!("groups[{i}].reclaim.every"),
                    "must be more than 0s".into(),
                );
            }
        }
        for (field, problem) in dead_letter_problems(g) {
            add(format!("groups[{i}].{field}"), problem.into());
        }
        if let Some(problem) = projection_problem(s, g) {
            add(format!("groups[{i}].projection"), problem.into());
        }
    }
    v
}

/// A projection is checked against the whole stream, which trimming
/// shortens. An idempotent projection applies an aggregate's events only in version
/// order: consumers sharing an unpartitioned stream finish them in any
/// order, so it would refuse the ones that overtake (docs/event-sourcing.md,
/// "Projections").
fn projection_problem(s: &Scenario, g: &GroupConfig) -> Option<&'static str> {
    // The check compares the model with the stream read back: trimmed
    // entries would read as effects applied twice.
    let trimmed =
        (s.streams.iter()).any(|t| t.key == g.stream && (t.maxlen.is_some() || t.minid.is_some()));
    match g.projection? {
        _ if trimmed => Some(
            "the projection is checked against the stream after the run, so the stream \
             must keep every entry: remove `maxlen` / `minid` from its [[streams]]",
        ),
        Projection::Idempotent if g.consumers > 1 && s.partitions_of(&g.stream) <= 1 => Some(
            "an idempotent projection needs each aggregate's events in version order: use one \
             consumer, or partition the stream (`[[streams]] partitions`)",
        ),
        _ => None,
    }
}

/// max_deliveries and poison only mean something with a pending list that
/// is reclaimed: without one a poisoned entry stays pending forever.
fn dead_letter_problems(g: &GroupConfig) -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    if let Some(max) = g.max_deliveries {
        if max == 0 {
            v.push(("max_deliveries", "must be at least 1"));
        }
        if g.reclaim.is_none() {
            v.push((
                "max_deliveries",
                "entries are dead-lettered when reclaimed: add reclaim = { min_idle = \"1s\" }",
            ));
        }
        if g.ack == AckMode::Noack {
            v.push((
                "max_deliveries",
                "with ack = \"noack\" nothing is pending or redelivered: remove one of them",
            ));
        }
    }
    if let Some(p) = g.poison {
        if !(0.0..=1.0).contains(&p.fraction) {
            v.push(("poison.fraction", "must be between 0 and 1, e.g. 0.01"));
        }
        if g.reclaim.is_none() || g.max_deliveries.is_none() {
            v.push((
                "poison",
                "poisoned events are never acknowledged: without reclaim and max_deliveries \
                 they stay pending forever (stranded); add both to the group",
            ));
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use crate::scenario::{Overrides, load_str};

    const BASE: &str = r#"
name = "drill"
duration = "10s"
[[producers]]
stream = "s"
rate = 100
[[groups]]
stream = "s"
name = "billing"
consumers = 2
reclaim = { min_idle = "1s", every = "200ms" }
"#;

    fn error(edits: &[&str]) -> String {
        let edits: Vec<String> = edits.iter().map(|e| e.to_string()).collect();
        let o = Overrides::parse(&edits).unwrap();
        load_str(BASE, "drill.toml", &o).unwrap_err().to_string()
    }

    #[test]
    fn poison_needs_reclaim_and_max_deliveries() {
        assert!(error(&["groups.0.max_deliveries=0"]).contains("at least 1"));
        assert!(error(&["groups.0.poison={fraction=0.1}"]).contains("stranded"));
        let e = error(&["groups.0.poison={fraction=1.5}"]);
        assert!(e.contains("poison.fraction"), "{e}");
        let o = Overrides::parse(&[
            "groups.0.max_deliveries=3".to_string(),
            "groups.0.poison={fraction=0.1}".into(),
        ])
        .unwrap();
        assert!(load_str(BASE, "drill.toml", &o).is_ok());
    }

    #[test]
    fn reclaim_timings_must_be_more_than_zero() {
        assert!(error(&["groups.0.reclaim.min_idle=0s"]).contains("reclaim.min_idle"));
        assert!(error(&["groups.0.reclaim.every=0s"]).contains("reclaim.every"));
    }
}
