//! Schema versions of event types (docs/event-sourcing.md, "Schema versions"):
//! an `events` entry's `versions` step schedule, a group's `understands` and
//! `upcast`, their checks, and the table of event kinds (type and version)
//! a stream carries, which producers, consumers and the report share.
//! Pure; `validate` calls [`check`].

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::violation::Violation;
use super::{Dur, Scenario};

/// Highest schema version a scenario may name: a typo guard, and the bound
/// of a step's weight list.
pub const MAX_SCHEMA_VERSION: u32 = 99;

/// One step of a versioned type's schedule: from `at` on (until the next
/// step), version `i + 1` is drawn with weight `weights[i]`. Written
/// `{ at = "30s", v1 = 1, v2 = 3 }`; a version left out weighs 0.
#[derive(Debug, Clone, PartialEq)]
pub struct VersionStep {
    pub at: Dur,
    /// Weight of v1, v2 … in order; versions past the end weigh 0.
    pub weights: Vec<f64>,
    /// A `v<N>` key that is not a version from 1 to [`MAX_SCHEMA_VERSION`],
    /// kept for validation to name (a weight of 0 in its place).
    pub bad_keys: Vec<String>,
}

impl VersionStep {
    /// The highest version with a weight above 0 (0: none).
    pub fn highest(&self) -> u32 {
        (self.weights.iter().rposition(|w| *w > 0.0)).map_or(0, |i| i as u32 + 1)
    }
}

impl Serialize for VersionStep {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let named = (self.weights.iter().enumerate()).filter(|(_, w)| **w > 0.0);
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("at", &self.at)?;
        for (i, w) in named {
            map.serialize_entry(&format!("v{}", i + 1), w)?;
        }
        map.end()
    }
}

// Hand-written: the weights are keys `v1`, `v2` … of the step's table, which
// serde's derive cannot name in advance.
impl<'de> Deserialize<'de> for VersionStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = VersionStep;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a table like { at = \"30s\", v1 = 1, v2 = 1 }")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<VersionStep, A::Error> {
        let mut at = None;
        let mut weights: Vec<f64> = Vec::new();
        let mut bad_keys = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "at" {
                at = Some(map.next_value::<Dur>()?);
                continue;
            }
            let version = key.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
            let Some(v) = version.filter(|v| n_ok(&key, *v)) else {
                return Err(de::Error::custom(format_args!(
                    "unknown field `{key}`, expected `at` or a version `v1` … `v{MAX_SCHEMA_VERSION}`"
                )));
            };
            let w = map.next_value::<f64>()?;
            let i = (v - 1) as usize;
            if weights.len() <= i {
                weights.resize(i + 1, 0.0);
            }
            if !(w.is_finite() && w >= 0.0) {
                bad_keys.push(format!("{key} = {w}"));
            }
            weights[i] = w;
        }
        let at = at.ok_or_else(|| de::Error::missing_field("at"))?;
        Ok(VersionStep {
            at,
            weights,
            bad_keys,
        })
    }
}

/// `v<N>` exactly as written (no `v01`, no `v+1`), N from 1 to the maximum.
fn n_ok(key: &str, v: u32) -> bool {
    (1..=MAX_SCHEMA_VERSION).contains(&v) && key == format!("v{v}")
}

/// One kind of event a stream carries: a type, and its schema version for
/// a versioned type. `field` is what its `type` field holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventKind {
    pub stream: String,
    pub kind: String,
    /// None: the type is not versioned, and its field is the bare name.
    pub version: Option<u32>,
    pub field: String,
}

/// The `type` field of version `version` of `kind`: `OrderPlaced.v2`.
pub fn versioned_name(kind: &str, version: u32) -> String {
    format!("{kind}.v{version}")
}

/// Whether the run writes any versioned type: only then are kinds counted
/// and reported.
pub fn uses_versions(s: &Scenario) -> bool {
    (s.producers.iter()).any(|p| p.events.iter().any(|e| !e.versions.is_empty()))
}

/// Every kind of event the scenario writes, stream by stream in the order
/// producers first name them: the one table producers count into, consumers
/// look type fields up in and the report names. Empty unless the run writes
/// a versioned type, so runs without versions count nothing.
pub fn event_kinds(s: &Scenario) -> Vec<EventKind> {
    let mut kinds: Vec<EventKind> = Vec::new();
    if !uses_versions(s) {
        return kinds;
    }
    for p in &s.producers {
        for (kind, version) in producer_kinds(&p.events) {
            let field = version.map_or_else(|| kind.clone(), |v| versioned_name(&kind, v));
            if !kinds
                .iter()
                .any(|k| k.stream == p.stream && k.field == field)
            {
                kinds.push(EventKind {
                    stream: p.stream.clone(),
                    kind,
                    version,
                    field,
                });
            }
        }
    }
    kinds
}

/// A producer's kinds in its draw order: each type, versioned ones once per
/// version from 1 to the highest any of its steps draws (the default mix
/// is one unversioned type `Event`).
pub fn producer_kinds(events: &[super::EventType]) -> Vec<(String, Option<u32>)> {
    if events.is_empty() {
        return vec![("Event".into(), None)];
    }
    let mut out = Vec::new();
    for e in events {
        match e.versions.iter().map(VersionStep::highest).max() {
            None => out.push((e.kind.clone(), None)),
            Some(top) => out.extend((1..=top.max(1)).map(|v| (e.kind.clone(), Some(v)))),
        }
    }
    out
}

/// What a group does with a versioned type's events: process those it
/// understands, upcast older ones when `upcast`, dead-letter the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    Process,
    Upcast,
    DeadLetter,
}

/// How a group with `understands` (per type, the versions it reads) and
/// `upcast` handles version `version` of `kind`. A type it does not list,
/// or an unversioned event, it processes as it is.
pub fn handling(
    understands: &BTreeMap<String, Vec<u32>>,
    upcast: bool,
    kind: &str,
    version: Option<u32>,
) -> Handling {
    let (Some(known), Some(v)) = (understands.get(kind), version) else {
        return Handling::Process;
    };
    let oldest = known.iter().copied().min().unwrap_or(0);
    match () {
        _ if known.contains(&v) => Handling::Process,
        _ if upcast && v < oldest => Handling::Upcast,
        _ => Handling::DeadLetter,
    }
}

/// The version schedules of every producer's event types, and the groups'
/// `understands` and `upcast`.
pub(super) fn check(s: &Scenario) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut add = |field: String, problem: String| v.push(Violation { field, problem });
    for (i, p) in s.producers.iter().enumerate() {
        for (j, e) in p.events.iter().enumerate() {
            let at = format!("producers[{i}].events[{j}]");
            if is_versioned_name(&e.kind) {
                add(
                    format!("{at}.type"),
                    format!(
                        "{:?} ends like a schema version (`.v<N>`), which streamdrill writes \
                         itself for versioned types: name the type without it and give \
                         `versions = [...]`",
                        e.kind
                    ),
                );
            }
            for (field, problem) in schedule_problems(s, &e.versions) {
                add(format!("{at}.versions{field}"), problem);
            }
        }
    }
    let kinds = event_kinds(s);
    for (i, g) in s.groups.iter().enumerate() {
        if g.projection.is_some() && !g.understands.is_empty() {
            add(
                format!("groups[{i}].understands"),
                "a group with a `projection` cannot dead-letter versions yet: its model \
                 is checked (and replayed) against every event of the stream, so the \
                 events it set aside would read as missing; drop `understands` or the \
                 projection"
                    .into(),
            );
        }
        if g.upcast && g.understands.is_empty() {
            add(
                format!("groups[{i}].upcast"),
                "upcasting needs the versions the group understands: add \
                 `understands = { OrderPlaced = [2] }`"
                    .into(),
            );
        }
        for (kind, versions) in &g.understands {
            let at = format!("groups[{i}].understands.{kind}");
            let written = (kinds.iter())
                .any(|k| k.stream == g.stream && &k.kind == kind && k.version.is_some());
            if !written {
                add(
                    at.clone(),
                    format!(
                        "no producer writes {kind:?} with `versions` on stream {:?}: name a \
                         versioned type of that stream",
                        g.stream
                    ),
                );
            }
            if versions.is_empty() {
                add(
                    at.clone(),
                    "lists no version: give at least one, e.g. [2]".into(),
                );
            }
            if let Some(bad) = (versions.iter()).find(|v| !(1..=MAX_SCHEMA_VERSION).contains(v)) {
                add(
                    at.clone(),
                    format!("version {bad} is out of range: use 1 to {MAX_SCHEMA_VERSION}"),
                );
            }
            let mut sorted = versions.clone();
            sorted.sort_unstable();
            sorted.dedup();
            if sorted.len() != versions.len() {
                add(at, "lists a version twice: give each once".into());
            }
        }
    }
    v
}

/// A type name that would read as a versioned one's `type` field.
fn is_versioned_name(kind: &str) -> bool {
    kind.rsplit_once(".v")
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Problems of one `versions` schedule, each with the field under
/// `versions` it concerns (`""`, `[2].at`).
fn schedule_problems(s: &Scenario, steps: &[VersionStep]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(first) = steps.first() else {
        return out;
    };
    if !first.at.is_zero() {
        out.push((
            "[0].at".into(),
            format!(
                "the first step is at {}, so nothing says which version comes before it: \
                 start the schedule at \"0s\"",
                first.at
            ),
        ));
    }
    for (k, step) in steps.iter().enumerate() {
        if k > 0 && step.at <= steps[k - 1].at {
            out.push((
                format!("[{k}].at"),
                format!(
                    "{} is not after the previous step's {}: give the steps in increasing `at`",
                    step.at,
                    steps[k - 1].at
                ),
            ));
        }
        if k > 0 && step.at >= s.duration {
            out.push((
                format!("[{k}].at"),
                format!(
                    "{} is not within the run (duration {}): move it earlier or drop the step",
                    step.at, s.duration
                ),
            ));
        }
        for bad in &step.bad_keys {
            out.push((
                format!("[{k}]"),
                format!("weight `{bad}` is not a weight: use a finite number, 0 or more"),
            ));
        }
        if step.highest() == 0 {
            out.push((
                format!("[{k}]"),
                "gives no version a weight above 0, so no event could be drawn: e.g. \
                 { at = \"0s\", v1 = 1 }"
                    .into(),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scenario(events: &str, groups: &str) -> Result<Scenario, String> {
        let text = format!(
            "name = \"v\"\nduration = \"10s\"\n[[producers]]\nstream = \"s\"\nrate = 10\n\
             events = [{events}]\n{groups}"
        );
        super::super::load_str(&text, "v.toml", &Default::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_schedule_reads_its_steps_and_kinds_follow() {
        let s = scenario(
            "{ type = \"A\", versions = [{ at = \"0s\", v1 = 1 }, { at = \"5s\", v1 = 1, v3 = 2 }] }, \
             { type = \"B\" }",
            "",
        )
        .unwrap();
        let steps = &s.producers[0].events[0].versions;
        assert_eq!(steps[1].weights, [1.0, 0.0, 2.0]);
        assert_eq!(steps[1].at, Dur::from_secs(5));
        let fields: Vec<String> = event_kinds(&s).into_iter().map(|k| k.field).collect();
        assert_eq!(fields, ["A.v1", "A.v2", "A.v3", "B"]);
        let unversioned = scenario("{ type = \"B\" }", "").unwrap();
        assert!(event_kinds(&unversioned).is_empty());
    }

    #[test]
    fn bad_schedules_name_their_field() {
        let cases = [
            (
                "{ at = \"1s\", v1 = 1 }",
                "producers[0].events[0].versions[0].at",
            ),
            (
                "{ at = \"0s\", v1 = 1 }, { at = \"0s\", v2 = 1 }",
                "producers[0].events[0].versions[1].at",
            ),
            (
                "{ at = \"0s\", v1 = 1 }, { at = \"10s\", v2 = 1 }",
                "producers[0].events[0].versions[1].at",
            ),
            (
                "{ at = \"0s\", v1 = 0 }",
                "producers[0].events[0].versions[0]",
            ),
            (
                "{ at = \"0s\", v1 = -1 }",
                "producers[0].events[0].versions[0]",
            ),
        ];
        for (steps, field) in cases {
            let err =
                scenario(&format!("{{ type = \"A\", versions = [{steps}] }}"), "").unwrap_err();
            assert!(err.contains(field), "{steps}: {err}");
        }
        for key in ["v0", "v01", "x"] {
            let err = scenario(
                &format!("{{ type = \"A\", versions = [{{ at = \"0s\", {key} = 1 }}] }}"),
                "",
            )
            .unwrap_err();
            assert!(err.contains("expected `at` or a version"), "{key}: {err}");
        }
        let named = scenario("{ type = \"A.v2\" }", "").unwrap_err();
        assert!(named.contains("producers[0].events[0].type"), "{named}");
    }

    #[test]
    fn groups_name_versioned_types_of_their_stream() {
        let events = "{ type = \"A\", versions = [{ at = \"0s\", v1 = 1, v2 = 1 }] }";
        let ok =
            "[[groups]]\nstream = \"s\"\nname = \"g\"\nunderstands = { A = [2] }\nupcast = true\n";
        assert!(scenario(events, ok).is_ok());
        for (groups, field) in [
            (
                "[[groups]]\nstream = \"s\"\nname = \"g\"\nunderstands = { B = [2] }\n",
                "groups[0].understands.B",
            ),
            (
                "[[groups]]\nstream = \"s\"\nname = \"g\"\nunderstands = { A = [] }\n",
                "groups[0].understands.A",
            ),
            (
                "[[groups]]\nstream = \"s\"\nname = \"g\"\nunderstands = { A = [2, 2] }\n",
                "groups[0].understands.A",
            ),
            (
                "[[groups]]\nstream = \"s\"\nname = \"g\"\nupcast = true\n",
                "groups[0].upcast",
            ),
        ] {
            let err = scenario(events, groups).unwrap_err();
            assert!(err.contains(field), "{groups}: {err}");
        }
    }

    #[test]
    fn handling_processes_upcasts_and_dead_letters() {
        let understands = BTreeMap::from([("A".to_string(), vec![2, 3])]);
        let h = |kind: &str, v, up| handling(&understands, up, kind, v);
        assert_eq!(h("A", Some(2), false), Handling::Process);
        assert_eq!(h("A", Some(1), true), Handling::Upcast);
        assert_eq!(h("A", Some(1), false), Handling::DeadLetter);
        assert_eq!(h("A", Some(4), true), Handling::DeadLetter);
        assert_eq!(
            h("B", Some(9), false),
            Handling::Process,
            "a type it does not list"
        );
        assert_eq!(h("A", None, false), Handling::Process, "unversioned");
    }
}
