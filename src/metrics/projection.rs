//! A projection's read model checked against the stream it was built from
//! (docs/event-sourcing.md, "Projections"): per aggregate, the effects the
//! model applied against the events the stream holds. Pure; `verify` reads
//! both back and calls `compare`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// The model hash's field counting the events the idempotent script refused.
pub const SKIPPED_FIELD: &str = "skipped";

/// Per aggregate: (effects or events, highest version).
pub type PerAggregate = HashMap<u64, (u64, u64)>;

/// One group's projection after the drain.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct ProjectionCheck {
    /// "naive" or "idempotent".
    pub mode: String,
    /// Aggregates in the stream or in the model.
    pub aggregates: u64,
    /// Aggregates whose effect count or last version differs from the stream's.
    pub divergent: u64,
    /// Effects beyond the aggregate's events in the stream: applied twice.
    pub double_applied: u64,
    /// Events in the stream whose effect the model lacks.
    pub missing: u64,
    /// Events the idempotent script refused (duplicates, or out of order);
    /// None for a naive projection, which refuses nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<u64>,
    /// Why the model or the stream could not be read back; the figures are
    /// then zero and mean nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readback_error: Option<String>,
    /// What Redis spent in the projection's commands over the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_cost: Option<RedisCost>,
    /// Why `redis_cost` is absent, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_cost_note: Option<String>,
}

/// Redis's own time in one group's projection commands, from INFO
/// commandstats read before the run's clock starts and after its consumers
/// stop (docs/event-sourcing.md, "What a projection costs").
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct RedisCost {
    /// The commands counted, lowercase as INFO names them.
    pub commands: Vec<String>,
    pub calls: u64,
    pub usec: u64,
    /// `usec` per event the group processed, duplicates included; None
    /// when it processed none.
    pub usec_per_event: Option<f64>,
}

/// The commands a projection mode sends. The script's own HGET, HINCRBY and
/// HSET run inside EVAL's time, so EVAL alone is the idempotent cost.
pub fn cost_commands(mode: &str) -> &'static [&'static str] {
    match mode {
        "idempotent" => &["eval"],
        _ => &["hincrby", "hset"],
    }
}

/// Per group (name, projection mode, whether it also sends EVAL of its own,
/// as a group dead-lettering schema versions does): the commands whose
/// counters are its alone, or why none are. INFO counts commands, not
/// clients: two groups with one mode share counters, and the idempotent
/// script's inner HINCRBY and HSET land in the naive mode's.
pub fn cost_attribution<'a>(
    groups: &[(&'a str, Option<&'a str>, bool)],
) -> Vec<Option<std::result::Result<&'static [&'static str], String>>> {
    let others = |i: usize, pick: &dyn Fn(&str) -> bool| -> Vec<&str> {
        (groups.iter().enumerate())
            .filter(|&(j, (_, m, _))| j != i && m.is_some_and(pick))
            .map(|(_, (name, _, _))| *name)
            .collect()
    };
    let evaluating: Vec<&str> = (groups.iter())
        .filter(|(_, _, evals)| *evals)
        .map(|(name, _, _)| *name)
        .collect();
    (groups.iter().enumerate())
        .map(|(i, (_, mode, _))| {
            let mode = (*mode)?;
            let same = others(i, &|m| m == mode);
            let scripted = others(i, &|m| m == "idempotent");
            Some(if mode == "idempotent" && !evaluating.is_empty() {
                Err(format!(
                    "group(s) {} send EVAL too (dead-lettering schema versions); Redis \
                     counts them together",
                    evaluating.join(", ")
                ))
            } else if !same.is_empty() {
                Err(format!(
                    "group(s) {} send the same commands; Redis counts them together",
                    same.join(", ")
                ))
            } else if mode != "idempotent" && !scripted.is_empty() {
                Err(format!(
                    "the idempotent script of group(s) {} runs HINCRBY and HSET too",
                    scripted.join(", ")
                ))
            } else {
                Ok(cost_commands(mode))
            })
        })
        .collect()
}

impl ProjectionCheck {
    pub fn unavailable(mode: &str, why: String) -> ProjectionCheck {
        ProjectionCheck {
            mode: mode.to_string(),
            readback_error: Some(why),
            ..ProjectionCheck::default()
        }
    }
}

/// The stream's events per aggregate from their (aggregate, version) pairs.
pub fn expected(events: impl IntoIterator<Item = (u64, u64)>) -> PerAggregate {
    let mut out = PerAggregate::new();
    for (a, v) in events {
        let slot = out.entry(a).or_default();
        slot.0 += 1;
        slot.1 = slot.1.max(v);
    }
    out
}

/// The model hash (field -> integer) as per aggregate (effects, last
/// version), and its refusal count.
pub fn parse_model(fields: impl IntoIterator<Item = (String, u64)>) -> (PerAggregate, u64) {
    let mut model = PerAggregate::new();
    let mut skipped = 0;
    for (field, value) in fields {
        if field == SKIPPED_FIELD {
            skipped = value;
            continue;
        }
        let Some((a, what)) = field.split_once(':') else {
            continue;
        };
        let Ok(a) = a.parse::<u64>() else { continue };
        let slot = model.entry(a).or_default();
        match what {
            "n" => slot.0 = value,
            "v" => slot.1 = value,
            _ => {}
        }
    }
    (model, skipped)
}

/// Compares the model with the stream, aggregate by aggregate. `skipped`:
/// the idempotent script's refusals (None for a naive projection).
pub fn compare(
    mode: &str,
    stream: &PerAggregate,
    model: &PerAggregate,
    skipped: Option<u64>,
) -> ProjectionCheck {
    let mut check = ProjectionCheck {
        mode: mode.to_string(),
        skipped,
        ..ProjectionCheck::default()
    };
    let absent = (0, 0);
    let aggregates = stream
        .keys()
        .chain(model.keys().filter(|a| !stream.contains_key(a)));
    for a in aggregates {
        let (events, last) = stream.get(a).unwrap_or(&absent);
        let (effects, applied) = model.get(a).unwrap_or(&absent);
        check.aggregates += 1;
        check.double_applied += effects.saturating_sub(*events);
        check.missing += events.saturating_sub(*effects);
        check.divergent += u64::from(effects != events || applied != last);
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_matching_the_stream_has_nothing_to_report() {
        let stream = expected([(1, 1), (1, 2), (2, 1)]);
        let model = parse_model([
            ("1:n".into(), 2),
            ("1:v".into(), 2),
            ("2:n".into(), 1),
            ("2:v".into(), 1),
        ])
        .0;
        let c = compare("idempotent", &stream, &model, Some(0));
        assert_eq!(
            (c.aggregates, c.divergent, c.double_applied, c.missing),
            (2, 0, 0, 0)
        );
    }

    #[test]
    fn counts_double_applied_and_missing_effects_per_aggregate() {
        let stream = expected([(1, 1), (1, 2), (2, 1), (2, 2), (3, 1)]);
        // 1: applied three times; 2: its second event never; 3: not at all;
        // 4: in the model only.
        let fields = [
            ("1:n", 3),
            ("1:v", 2),
            ("2:n", 1),
            ("2:v", 1),
            ("4:n", 1),
            ("4:v", 1),
            ("skipped", 7),
        ];
        let (model, skipped) = parse_model(fields.map(|(f, n)| (f.to_string(), n)));
        assert_eq!(skipped, 7);
        let c = compare("naive", &stream, &model, None);
        assert_eq!(c.aggregates, 4);
        assert_eq!(c.double_applied, 1 + 1);
        assert_eq!(c.missing, 1 + 1);
        assert_eq!(c.divergent, 4);
    }

    #[test]
    fn cost_is_a_groups_own_only_when_no_other_group_shares_its_commands() {
        let alone = cost_attribution(&[
            ("a", Some("naive"), false),
            ("b", None, false),
            ("c", Some("idempotent"), false),
        ]);
        assert!(alone[1].is_none());
        assert_eq!(alone[2], Some(Ok(&["eval"][..])));
        // c's script runs HINCRBY and HSET inside EVAL.
        assert!(matches!(&alone[0], Some(Err(e)) if e.contains("group(s) c")));
        let two = cost_attribution(&[
            ("a", Some("idempotent"), false),
            ("b", Some("idempotent"), false),
        ]);
        assert!(matches!(&two[0], Some(Err(e)) if e.contains("group(s) b")));
        let naive = cost_attribution(&[("a", Some("naive"), false)]);
        assert_eq!(naive[0], Some(Ok(&["hincrby", "hset"][..])));
        let beside_dead_letters =
            cost_attribution(&[("a", Some("idempotent"), false), ("b", None, true)]);
        assert!(matches!(&beside_dead_letters[0], Some(Err(e)) if e.contains("group(s) b")));
    }

    #[test]
    fn a_right_count_at_the_wrong_version_diverges() {
        let stream = expected([(1, 1), (1, 2)]);
        let model = parse_model([("1:n".into(), 2), ("1:v".into(), 1)]).0;
        let c = compare("naive", &stream, &model, None);
        assert_eq!((c.divergent, c.double_applied, c.missing), (1, 0, 0));
    }
}
