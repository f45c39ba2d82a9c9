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
    fn a_right_count_at_the_wrong_version_diverges() {
        let stream = expected([(1, 1), (1, 2)]);
        let model = parse_model([("1:n".into(), 2), ("1:v".into(), 1)]).0;
        let c = compare("naive", &stream, &model, None);
        assert_eq!((c.divergent, c.double_applied, c.missing), (1, 0, 0));
    }
}
