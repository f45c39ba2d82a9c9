//! Reading a scenario: TOML text + `--set` overrides -> a validated [`Scenario`].
//!
//! Overrides are applied to the TOML document (via `toml_edit`) before serde
//! sees it, so `--set producers.0.rate=20000` is checked exactly like the file.
//! The document is deserialized by `de`, whose errors name their field.
//! Every failure becomes [`Error::Scenario`] with the file, the line (found by
//! walking the original document's spans to the field), the field path
//! written like `producers[0].rate`, and what is allowed. Called by the CLI.

use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml_edit::{DocumentMut, Item, Value};

use super::de::Node;
use super::{Scenario, validate};
use crate::error::{Error, Result};

/// `--set path=value` edits, applied in order on top of the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides(Vec<(String, String)>);

impl Overrides {
    /// Parses `path=value` items; an item without `=` is a usage error.
    pub fn parse(items: &[String]) -> Result<Overrides> {
        let mut o = Overrides::default();
        for item in items {
            let Some((path, value)) = item.split_once('=') else {
                return Err(Error::Usage(format!(
                    "--set {item:?}: expected path=value, e.g. --set producers.0.rate=20000"
                )));
            };
            o.push(path.trim(), value.trim());
        }
        Ok(o)
    }

    pub fn push(&mut self, path: impl Into<String>, value: impl Into<String>) {
        self.0.push((path.into(), value.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(p, v)| (p.as_str(), v.as_str()))
    }

    /// Whether `field` (a `producers[0].rate` path) was set, or lies inside a value set, by `--set`.
    fn covers(&self, field: &str) -> bool {
        self.0.iter().any(|(p, _)| {
            let p = field_path(&split_path(p));
            field == p || field.starts_with(&format!("{p}.")) || field.starts_with(&format!("{p}["))
        })
    }
}

pub fn load_file(path: &Path, overrides: &Overrides) -> Result<Scenario> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    load_str(&text, &path.display().to_string(), overrides)
}

/// Parses, overrides, deserializes and validates; `origin` names the file in errors.
pub fn load_str(text: &str, origin: &str, overrides: &Overrides) -> Result<Scenario> {
    let err = |line, field: String, problem: String| Error::Scenario {
        file: origin.to_string(),
        line,
        field,
        problem,
    };
    let original = toml_edit::Document::parse(text).map_err(|e| {
        let line = e.span().map(|s| line_of(text, s.start));
        err(line, "(toml syntax)".into(), one_line(e.message()))
    })?;
    let edited = match overrides.is_empty() {
        true => None,
        false => {
            let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
                err(None, "(toml syntax)".into(), one_line(e.message()))
            })?;
            for (path, value) in overrides.iter() {
                set_path(doc.as_item_mut(), path, value)
                    .map_err(|problem| err(None, field_path(&split_path(path)), problem))?;
            }
            Some(doc)
        }
    };
    // Where a problem sits: its line in the file, or a note that `--set` put it there.
    let locate = |field: &str, problem: String| {
        if overrides.covers(field) {
            err(
                None,
                field.to_string(),
                format!("{problem} (set on the command line)"),
            )
        } else {
            let line = span_of_path(original.as_item(), field).map(|s| line_of(text, s.start));
            err(line, field.to_string(), problem)
        }
    };
    let root = (edited.as_ref()).map_or(original.as_item(), |d| d.as_item());
    let scenario = Scenario::deserialize(Node::root(root)).map_err(|e| {
        let field = match e.path() {
            [] => "(toml)".to_string(),
            path => field_path(path),
        };
        locate(&field, one_line(&e.message))
    })?;
    let mut violations = validate(&scenario).into_iter();
    let Some(first) = violations.next() else {
        return Ok(scenario);
    };
    // The first violation fills the error's fields; any others follow as lines,
    // so one run shows everything to fix.
    let mut error = locate(&first.field, first.problem);
    if let Error::Scenario { problem, .. } = &mut error {
        for v in violations {
            problem.push_str(&format!("\n  also: {}", locate(&v.field, v.problem)));
        }
    }
    Err(error)
}

/// Applies one `--set`. The value is TOML if it parses as a TOML value, else a string.
pub(super) fn set_path(root: &mut Item, path: &str, raw: &str) -> std::result::Result<(), String> {
    let value: Value = raw.parse().unwrap_or_else(|_| Value::from(raw));
    let segs = split_path(path);
    if segs.iter().any(|s| s.is_empty()) {
        return Err("empty key in path; write e.g. producers.0.rate".into());
    }
    let mut item = root;
    for (i, seg) in segs.iter().enumerate() {
        let here = || segs[..i].join(".");
        let next = match seg.parse::<usize>() {
            Ok(n) if item.is_array() || item.is_array_of_tables() => {
                let len = item.as_array().map_or_else(
                    || item.as_array_of_tables().map_or(0, |a| a.len()),
                    |a| a.len(),
                );
                item.get_mut(n).ok_or_else(|| {
                    format!("index {n} is past the end: `{}` has {len} entries", here())
                })?
            }
            _ if item.is_table_like() => item
                .get_mut(seg.as_str())
                .ok_or_else(|| format!("cannot set a key inside `{}`", here()))?,
            _ if item.is_none() && seg.parse::<usize>().is_err() => {
                // A missing key on the way: `get_mut` creates the table.
                item.get_mut(seg.as_str())
                    .ok_or_else(|| format!("cannot create `{}`", here()))?
            }
            _ if item.is_none() => {
                return Err(format!(
                    "index {seg} is past the end: `{}` does not exist",
                    here()
                ));
            }
            _ => {
                return Err(format!(
                    "`{}` is a {}, not a table or list, so it has no `{seg}`",
                    here(),
                    item.type_name()
                ));
            }
        };
        item = next;
    }
    // Keep the old value's spacing and trailing comment.
    let (prefix, suffix) = item
        .as_value()
        .map(|v| (v.decor().prefix().cloned(), v.decor().suffix().cloned()))
        .unwrap_or_default();
    let mut value = value;
    value
        .decor_mut()
        .set_prefix(prefix.unwrap_or_else(|| " ".into()));
    value.decor_mut().set_suffix(suffix.unwrap_or_default());
    *item = match value {
        // A `[table]` or `[[list]]` entry stays a table so the document still renders.
        Value::InlineTable(t) if item.is_table() => Item::Table(t.into_table()),
        _ if item.is_table() => {
            return Err(format!(
                "`{}` is a table; set one of its fields instead, e.g. {path}.<field>=...",
                field_path(&segs)
            ));
        }
        v => Item::Value(v),
    };
    Ok(())
}

fn split_path(path: &str) -> Vec<String> {
    path.trim()
        .split('.')
        .map(|s| s.trim().to_string())
        .collect()
}

/// `["producers", "0", "rate"]` -> `producers[0].rate`.
fn field_path(segs: &[String]) -> String {
    let mut out = String::new();
    for s in segs {
        if s.parse::<usize>().is_ok() {
            out.push_str(&format!("[{s}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(s);
        }
    }
    out
}

/// `producers[0].rate` -> `["producers", "0", "rate"]`.
fn parse_field_path(field: &str) -> Vec<String> {
    field
        .replace('[', ".")
        .replace(']', "")
        .split('.')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The span of the deepest part of `field` present in the document (so a
/// defaulted field points at its table). Keys are preferred to values: the key is
/// on the line a reader looks for.
fn span_of_path(root: &Item, field: &str) -> Option<Range<usize>> {
    let mut item = root;
    let mut best = None;
    for seg in parse_field_path(field) {
        let (span, next) = match (seg.parse::<usize>(), item.as_table_like()) {
            (Ok(n), _) if item.is_array() || item.is_array_of_tables() => match item.get(n) {
                Some(next) => (next.span(), next),
                None => break,
            },
            (_, Some(t)) => match t.get_key_value(&seg) {
                Some((k, next)) => (k.span().or_else(|| next.span()), next),
                None => break,
            },
            _ => break,
        };
        best = span.or(best);
        item = next;
    }
    best
}

/// 1-based line of a byte offset (clamped to the text).
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

fn one_line(msg: &str) -> String {
    msg.trim().replace('\n', "; ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Bytes, Dur, SizeDist, TimeDist};

    const BASE: &str = "name = \"t\"\nduration = \"10s\"\n\n[[producers]]\nstream = \"orders\"\nrate = 100 # per second\n\n[[groups]]\nstream = \"orders\"\nname = \"g\"\n";

    fn sets(items: &[&str]) -> Overrides {
        let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        Overrides::parse(&items).expect("valid --set items")
    }

    fn load(text: &str, items: &[&str]) -> Result<Scenario> {
        load_str(text, "t.toml", &sets(items))
    }

    /// (line, field, problem) of a scenario error.
    fn fail(text: &str, items: &[&str]) -> (Option<usize>, String, String) {
        match load(text, items) {
            Err(Error::Scenario {
                line,
                field,
                problem,
                ..
            }) => (line, field, problem),
            other => panic!("expected a scenario error, got {other:?}"),
        }
    }

    #[test]
    fn set_without_equals_is_a_usage_error_naming_the_item() {
        let e = Overrides::parse(&["producers.0.rate".to_string()]).unwrap_err();
        assert!(
            matches!(&e, Error::Usage(m) if m.contains("\"producers.0.rate\"")),
            "{e}"
        );
    }

    #[test]
    fn overrides_parse_toml_values_or_fall_back_to_strings() {
        let s = load(
            BASE,
            &[
                "producers.0.rate=20000.5",
                "duration=5s",
                "groups.0.processing=2ms",
                "groups.0.consumers=3",
            ],
        )
        .unwrap();
        assert_eq!(
            s.producers[0].rate,
            Some(crate::scenario::Rate::PerSecond(20000.5))
        );
        assert_eq!(s.duration, Dur::from_secs(5));
        assert_eq!(
            s.groups[0].processing,
            TimeDist::Fixed {
                value: Dur::from_millis(2)
            }
        );
        assert_eq!(s.groups[0].consumers, 3);
        let s = load(
            BASE,
            &[
                "redis.mode=external",
                "redis.url=redis://h:1",
                "slo.e2e_p99=\"10ms\"",
            ],
        );
        let s = s.unwrap();
        assert_eq!(s.redis.url.as_deref(), Some("redis://h:1"));
        assert_eq!(s.slo.e2e_p99, Some(Dur::from_millis(10)));
        let s = load(
            BASE,
            &["redis.appendonly=true", "redis.config=[\"a 1\", \"b 2\"]"],
        )
        .unwrap();
        assert!(s.redis.appendonly);
        assert_eq!(s.redis.config, ["a 1", "b 2"]);
    }

    #[test]
    fn overrides_edit_the_document_in_place() {
        let mut doc: DocumentMut = BASE.parse().unwrap();
        set_path(doc.as_item_mut(), "producers.0.rate", "7").unwrap();
        set_path(doc.as_item_mut(), "producers.0.stages.0", "1").unwrap_err();
        let text = doc.to_string();
        assert!(text.contains("rate = 7 # per second"), "{text}");
    }

    #[test]
    fn override_errors_name_the_path() {
        let (line, field, problem) = fail(BASE, &["producers.3.rate=5"]);
        assert_eq!((line, field.as_str()), (None, "producers[3].rate"));
        assert!(
            problem.contains("index 3 is past the end: `producers` has 1 entries"),
            "{problem}"
        );
        let (_, field, problem) = fail(BASE, &["name.x=5"]);
        assert_eq!(field, "name.x");
        assert!(problem.contains("`name` is a string"), "{problem}");
        let (_, _, problem) = fail(BASE, &["producers.0=5"]);
        assert!(problem.contains("is a table"), "{problem}");
        let (_, field, problem) = fail(BASE, &["producers.0.bogus=5"]);
        assert_eq!(field, "producers[0].bogus");
        assert!(problem.ends_with("(set on the command line)"), "{problem}");
        assert!(problem.contains("unknown field `bogus`"), "{problem}");
    }

    #[test]
    fn serde_errors_carry_line_and_field() {
        let text = BASE.replace("rate = 100 # per second", "rate = 100\nrtae = 5");
        let (line, field, problem) = fail(&text, &[]);
        assert_eq!((line, field.as_str()), (Some(7), "producers[0].rtae"));
        assert!(
            problem.contains("unknown field `rtae`, expected one of"),
            "{problem}"
        );
        assert!(problem.contains("`stages`"), "{problem}");
        let (line, field, problem) = fail(&BASE.replace("rate = 100", "rate = \"fast\""), &[]);
        assert_eq!((line, field.as_str()), (Some(6), "producers[0].rate"));
        assert!(
            problem.contains("like 1000, or \"max\"; got \"fast\""),
            "{problem}"
        );
        let (line, field, problem) = fail(&BASE.replace("name = \"g\"\n", ""), &[]);
        assert_eq!((line, field.as_str()), (Some(8), "groups[0].name"));
        assert!(problem.contains("missing field `name`"), "{problem}");
        let (line, field, problem) = fail(&BASE.replace("\"10s\"", "\"5 parsecs\""), &[]);
        assert_eq!((line, field.as_str()), (Some(2), "duration"));
        assert!(
            problem
                .contains("expected a duration like \"250ms\", \"5s\", \"2m\"; got \"5 parsecs\"")
        );
    }

    /// Each element of a list is its own place: an error in the second is
    /// not reported at the first.
    #[test]
    fn errors_in_later_entries_name_their_entry() {
        let second = "\n[[producers]]\nstream = \"orders\"\nrate = 5\narrival = 5\n";
        let (line, field, problem) = fail(&format!("{BASE}{second}"), &[]);
        assert_eq!((line, field.as_str()), (Some(15), "producers[1].arrival"));
        assert_eq!(
            problem,
            "invalid type: integer `5`, expected one of `uniform`, `poisson`"
        );
        let (line, field, problem) = fail(&format!("{BASE}\n[[producers]]\nrate = 5\n"), &[]);
        assert_eq!((line, field.as_str()), (Some(12), "producers[1].stream"));
        assert_eq!(problem, "missing field `stream`");
        let events = "events = [{ type = \"A\" }, { type = \"B\", weight = \"x\" }]";
        let text = BASE.replace("rate = 100", &format!("rate = 100\n{events}"));
        let (line, field, problem) = fail(&text, &[]);
        assert_eq!(
            (line, field.as_str()),
            (Some(7), "producers[0].events[1].weight")
        );
        assert!(
            problem.starts_with("invalid type: string \"x\""),
            "{problem}"
        );
    }

    #[test]
    fn syntax_errors_carry_the_line() {
        let (line, field, _) = fail(
            &BASE.replace("stream = \"orders\"\nrate", "stream = \nrate"),
            &[],
        );
        assert_eq!((line, field.as_str()), (Some(5), "(toml syntax)"));
    }

    fn size_of(spec: &str) -> Result<SizeDist> {
        let text = BASE.replace(
            "rate = 100",
            &format!("rate = 100\nevents = [{{ type = \"A\", size = {spec} }}]"),
        );
        load(&text, &[]).map(|s| s.producers[0].events[0].size.clone())
    }

    #[test]
    fn distributions_take_a_plain_value_or_a_dist_table() {
        let b = Bytes;
        assert_eq!(
            size_of("\"512B\"").unwrap(),
            SizeDist::Fixed { value: b(512) }
        );
        assert_eq!(size_of("64").unwrap(), SizeDist::Fixed { value: b(64) });
        assert_eq!(
            size_of("{ value = \"1KiB\" }").unwrap(),
            SizeDist::Fixed { value: b(1024) }
        );
        let u = size_of("{ dist = \"uniform\", min = \"100B\", max = \"1KiB\" }").unwrap();
        assert_eq!(
            u,
            SizeDist::Uniform {
                min: b(100),
                max: b(1024)
            }
        );
        for (spec, needle) in [
            (
                "{ dist = \"weird\" }",
                "unknown dist \"weird\"; expected one of \"fixed\" (value), \"uniform\" (min, max)",
            ),
            (
                "{ dist = \"uniform\", min = \"1B\" }",
                "dist = \"uniform\" needs `max`",
            ),
            (
                "{ dist = \"uniform\", min = \"1B\", max = \"2B\", mean = \"1B\" }",
                "`mean` does not apply",
            ),
            (
                "{ dist = \"normal\", mean = \"1B\", sd = \"1B\" }",
                "unknown field `sd` in a size distribution",
            ),
            ("{ min = \"1B\" }", "missing `dist`"),
            ("true", "a fixed size or a table"),
        ] {
            let e = size_of(spec).unwrap_err().to_string();
            assert!(
                e.contains(needle) && e.contains("producers[0].events[0].size"),
                "{spec}: {e}"
            );
        }
    }

    #[test]
    fn validation_errors_point_at_the_line_or_at_the_override() {
        let (line, field, problem) = fail(&BASE.replace("rate = 100", "rate = 0"), &[]);
        assert_eq!((line, field.as_str()), (Some(6), "producers[0].rate"));
        assert!(problem.contains("above 0"), "{problem}");
        let (line, _, problem) = fail(BASE, &["producers.0.rate=-1"]);
        assert_eq!(line, None);
        assert!(problem.ends_with("(set on the command line)"), "{problem}");
        // Further problems follow as lines.
        let (line, field, problem) = fail(&BASE.replace("\"t\"", "\"a b\""), &["groups.0.batch=0"]);
        assert_eq!((line, field.as_str()), (Some(1), "name"));
        assert!(
            problem.contains("\n  also: t.toml: `groups[0].batch`"),
            "{problem}"
        );
        assert!(
            problem.ends_with("(entries per XREADGROUP) (set on the command line)"),
            "{problem}"
        );
        // A field missing from the file points at its table.
        let text = format!("{BASE}\n[redis]\nmode = \"external\"\n");
        let (line, field, problem) = fail(&text, &[]);
        assert_eq!((line, field.as_str()), (Some(12), "redis.url"));
        assert!(problem.contains("redis://"), "{problem}");
        let (line, field, _) = fail(
            &BASE.replace("name = \"g\"", "name = \"g\"\nconsumers = 0"),
            &[],
        );
        assert_eq!((line, field.as_str()), (Some(11), "groups[0].consumers"));
        let (line, field, _) = fail(
            &BASE.replace("[[groups]]", "[[groups]]\nbatch = 1"),
            &["groups.0.consumers=0"],
        );
        assert_eq!((line, field.as_str()), (None, "groups[0].consumers"));
    }

    #[test]
    fn a_scenario_round_trips_through_serialize() {
        let text = BASE.replace("rate = 100", "rate = 100\nevents = [{ type = \"A\", size = { dist = \"lognormal\", mean = \"1KiB\", stddev = \"100B\" } }]");
        let s = load(
            &text,
            &["groups.0.processing={ dist = \"exponential\", mean = \"1.5ms\" }"],
        )
        .unwrap();
        let again = toml::to_string(&s).unwrap();
        assert_eq!(load(&again, &[]).unwrap(), s, "{again}");
    }

    #[test]
    fn bad_input_never_panics() {
        let huge = "9".repeat(400);
        let deep = "a = ".to_string() + &"[".repeat(10_000);
        for text in [
            "",
            "\0\u{1}\u{7f}[[",
            "[[producers]]",
            "name = 1",
            &huge,
            &deep,
            "duration = nan",
            "name=\"x\"\nduration=\"1s\"\n[[producers]]\nstream=\"s\"\nrate=nan\ncount=4294967296",
            "name=\"x\"\nduration=\"99999999999999999999h\"\nproducers=[]",
            "x = { a = { b = [ {} ] } }",
        ] {
            assert!(load(text, &[]).is_err(), "{text:?}");
            assert!(load(text, &["a.b.0=1"]).is_err());
        }
        assert!(load(BASE, &["producers.0.rate=nan"]).is_err());
        assert!(load(BASE, &["=1"]).is_err());
        assert!(load(BASE, &["producers..rate=1"]).is_err());
    }
}
