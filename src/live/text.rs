//! The two text formats a scrape may ask for, and how a metric is written
//! in each: OpenMetrics 1.0 for a scraper that asks for it (Prometheus
//! does), the Prometheus text format 0.0.4 for everyone else (`promtool`,
//! curl). They differ only in family headers: OpenMetrics names a counter's
//! family without `_total`, has an `info` type and `# UNIT`, and ends with
//! `# EOF`. `exposition` says what is written.

use std::fmt::Write as _;

use crate::metrics::{LatencyTotal, Percentiles};

/// The content types served.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Every metric's name starts with this.
pub const PREFIX: &str = "streamdrill_";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    OpenMetrics,
    Prometheus,
}

impl Format {
    /// What a request's `Accept` header asks for.
    pub fn accepting(accept: &str) -> Format {
        match accept.contains("application/openmetrics-text") {
            true => Format::OpenMetrics,
            false => Format::Prometheus,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::OpenMetrics => OPENMETRICS_CONTENT_TYPE,
            Format::Prometheus => PROMETHEUS_CONTENT_TYPE,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
    Summary,
    Info,
}

/// Reads one percentile (µs).
type Percentile = fn(&Percentiles) -> u64;

/// The quantiles of every latency summary, and the percentile each reads.
const QUANTILES: [(&str, Percentile); 5] = [
    ("0.5", |p| p.p50),
    ("0.9", |p| p.p90),
    ("0.99", |p| p.p99),
    ("0.999", |p| p.p999),
    ("1", |p| p.max),
];

pub(super) struct Writer {
    out: String,
    format: Format,
}

impl Writer {
    pub(super) fn new(format: Format) -> Writer {
        Writer {
            out: String::new(),
            format,
        }
    }

    /// The text, ended as the format wants.
    pub(super) fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }

    /// The family's header; `name` without prefix, a counter's without `_total`.
    pub(super) fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let om = self.format == Format::OpenMetrics;
        let (family, kind_name) = match (kind, om) {
            (Kind::Counter, true) => (name.to_string(), "counter"),
            (Kind::Counter, false) => (format!("{name}_total"), "counter"),
            (Kind::Info, true) => (name.to_string(), "info"),
            (Kind::Info, false) => (format!("{name}_info"), "gauge"),
            (Kind::Gauge, _) => (name.to_string(), "gauge"),
            (Kind::Summary, _) => (name.to_string(), "summary"),
        };
        let _ = writeln!(self.out, "# TYPE {PREFIX}{family} {kind_name}");
        let unit = ["seconds", "bytes"]
            .into_iter()
            .find(|u| name.ends_with(&format!("_{u}")));
        if let (true, Some(unit)) = (om, unit) {
            let _ = writeln!(self.out, "# UNIT {PREFIX}{family} {unit}");
        }
        let _ = writeln!(self.out, "# HELP {PREFIX}{family} {help}");
    }

    /// One sample; `name` is the sample's own name, suffix included.
    pub(super) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = write!(self.out, "{PREFIX}{name}");
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }

    /// A summary's quantiles (from one second's percentiles, µs) and totals.
    pub(super) fn summary(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        second: Option<&Percentiles>,
        total: &LatencyTotal,
    ) {
        // An empty second has no quantiles, rather than zeros.
        if let Some(p) = second.filter(|p| p.count > 0) {
            for (q, read) in QUANTILES {
                let mut with_q = labels.to_vec();
                with_q.push(("quantile", q));
                self.sample(name, &with_q, seconds_of_us(read(p) as f64));
            }
        }
        self.sample(&format!("{name}_sum"), labels, seconds_of_us(total.sum_us));
        self.sample(&format!("{name}_count"), labels, total.count as f64);
    }
}

fn seconds_of_us(us: f64) -> f64 {
    us / 1e6
}

/// A label value as the text formats quote it.
fn escape(value: &str) -> String {
    value
        .replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}
