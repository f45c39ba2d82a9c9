//! `--fail-if` gates: `METRIC OP VALUE`, checked for every run against the
//! baseline (the first run). VALUE forms:
//! - `+10%` / `-5%`: relative change from the baseline;
//! - `+2ms` / `-100`: absolute change (a sign makes it a change);
//! - `25ms` / `0`: the run's own value.
//!
//! Latency metrics take durations (`500us`, `2ms`); rates and counts plain numbers.
//! OP is one of `>`, `>=`, `<`, `<=`. A gate that holds is a failure.

use std::str::FromStr;

use super::metrics::Unit;
use super::{Comparison, Delta};
use crate::error::{Error, Result};
use crate::scenario::Dur;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    RelativePct,
    AbsoluteChange,
    Value,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    pub text: String,
    metric: String,
    op: Op,
    kind: Kind,
    /// The threshold as written, numbers unconverted (durations parsed later per unit).
    threshold: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GateResult {
    pub gate: String,
    /// Which run (directory name) it was checked on.
    pub run: String,
    pub failed: bool,
    pub detail: String,
}

fn usage(text: &str, problem: &str) -> Error {
    Error::Usage(format!(
        "--fail-if '{text}': {problem} (expected e.g. 'e2e.p99 > +10%', 'produce.rate < -5%', 'lost > 0')"
    ))
}

impl Gate {
    pub fn parse(text: &str) -> Result<Gate> {
        let ops = [(">=", Op::Ge), ("<=", Op::Le), (">", Op::Gt), ("<", Op::Lt)];
        let (at, sym, op) = (ops.iter())
            .filter_map(|(sym, op)| text.find(sym).map(|at| (at, *sym, *op)))
            .min_by_key(|(at, sym, _)| (*at, std::cmp::Reverse(sym.len())))
            .ok_or_else(|| usage(text, "no comparison operator"))?;
        let metric = text[..at].trim().to_string();
        let value = text[at + sym.len()..].trim();
        if metric.is_empty() || value.is_empty() {
            return Err(usage(text, "needs a metric and a value"));
        }
        let kind = if value.ends_with('%') {
            Kind::RelativePct
        } else if value.starts_with(['+', '-']) {
            Kind::AbsoluteChange
        } else {
            Kind::Value
        };
        let gate = Gate {
            text: text.to_string(),
            metric,
            op,
            kind,
            threshold: value.to_string(),
        };
        // Catch a malformed number now rather than after the comparison.
        gate.threshold_in(Unit::Count)
            .or_else(|_| gate.threshold_in(Unit::Micros))?;
        Ok(gate)
    }

    /// The threshold in the metric's unit (µs for latencies, or percent).
    fn threshold_in(&self, unit: Unit) -> Result<f64> {
        let t = self.threshold.trim_end_matches('%');
        let (sign, magnitude) = match t.strip_prefix('-') {
            Some(rest) => (-1.0, rest),
            None => (1.0, t.strip_prefix('+').unwrap_or(t)),
        };
        if let Ok(n) = magnitude.parse::<f64>() {
            return Ok(sign * n);
        }
        if unit == Unit::Micros
            && self.kind != Kind::RelativePct
            && let Ok(d) = Dur::from_str(magnitude)
        {
            return Ok(sign * d.as_nanos() as f64 / 1e3);
        }
        Err(usage(
            &self.text,
            &format!(
                "`{}` is not a number{}",
                self.threshold,
                duration_hint(unit)
            ),
        ))
    }

    /// Checks every run after the baseline; an unknown metric is an error that lists the known ones.
    pub fn check(&self, cmp: &Comparison) -> Result<Vec<GateResult>> {
        let row = cmp.row(&self.metric).ok_or_else(|| {
            let known: Vec<&str> = cmp.rows.iter().map(|r| r.metric.key.as_str()).collect();
            usage(
                &self.text,
                &format!("unknown metric; known: {}", known.join(", ")),
            )
        })?;
        let threshold = self.threshold_in(row.metric.unit)?;
        let runs = cmp.runs.iter().zip(&row.cells).skip(1);
        Ok(runs
            .map(|(run, cell)| {
                let name = run
                    .dir
                    .file_name()
                    .map_or(String::new(), |n| n.to_string_lossy().into_owned());
                let observed = self.observed(cell);
                let failed = match observed {
                    Some(x) => self.holds(x, threshold),
                    None => row.metric.missing_fails && cell.value.is_none(),
                };
                let detail = match observed {
                    Some(x) => format!(
                        "{} {x:.2}{}",
                        self.kind_name(),
                        if self.kind == Kind::RelativePct {
                            "%"
                        } else {
                            ""
                        }
                    ),
                    None if failed => "not measured (a read-back failed): fails".into(),
                    None => format!("{} not available", self.kind_name()),
                };
                GateResult {
                    gate: self.text.clone(),
                    run: name,
                    failed,
                    detail,
                }
            })
            .collect())
    }

    fn observed(&self, cell: &Delta) -> Option<f64> {
        match self.kind {
            Kind::RelativePct => cell.rel_pct,
            Kind::AbsoluteChange => cell.abs,
            Kind::Value => cell.value,
        }
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            Kind::RelativePct => "change",
            Kind::AbsoluteChange => "change",
            Kind::Value => "value",
        }
    }

    fn holds(&self, x: f64, threshold: f64) -> bool {
        match self.op {
            Op::Gt => x > threshold,
            Op::Ge => x >= threshold,
            Op::Lt => x < threshold,
            Op::Le => x <= threshold,
        }
    }
}

fn duration_hint(unit: Unit) -> &'static str {
    match unit {
        Unit::Micros => " or a duration like 2ms",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        let g = Gate::parse("e2e.p99 > +10%").unwrap();
        assert_eq!(
            (g.metric.as_str(), g.op, g.kind),
            ("e2e.p99", Op::Gt, Kind::RelativePct)
        );
        assert_eq!(g.threshold_in(Unit::Micros).unwrap(), 10.0);
        let g = Gate::parse("produce.p99>=+2ms").unwrap();
        assert_eq!((g.op, g.kind), (Op::Ge, Kind::AbsoluteChange));
        assert_eq!(g.threshold_in(Unit::Micros).unwrap(), 2000.0);
        let g = Gate::parse("produce.rate < -5%").unwrap();
        assert_eq!(g.threshold_in(Unit::PerSecond).unwrap(), -5.0);
        let g = Gate::parse("lost > 0").unwrap();
        assert_eq!((g.op, g.kind), (Op::Gt, Kind::Value));
        assert!(g.holds(1.0, 0.0) && !g.holds(0.0, 0.0));
    }

    #[test]
    fn rejects_malformed_gates() {
        for bad in [
            "e2e.p99",
            "> 5",
            "e2e.p99 >",
            "e2e.p99 > fast",
            "e2e.p99 > 2ms%",
        ] {
            let err = Gate::parse(bad).unwrap_err().to_string();
            assert!(err.contains("--fail-if"), "{bad}: {err}");
        }
    }
}
