//! The closed-loop XADD comparison: streamdrill at rate = "max", then
//! redis-benchmark sending as many XADDs of the same fields.

use std::path::Path;
use std::process::Command;

use super::{BenchOptions, MAXLEN, run_in_process};
use crate::error::{Error, Result};
use crate::report::Summary;
use crate::server::RedisServer;

pub(super) fn saturate(
    server: &RedisServer,
    out: &Path,
    opts: &BenchOptions,
    payload: u64,
    pipeline: u32,
) -> Result<Summary> {
    let toml = format!(
        r#"
name = "bench-xadd"
duration = "{duration}ms"
drain_timeout = "5s"
[redis]
mode = "external"
url = "{url}"
[[streams]]
key = "bench"
maxlen = {MAXLEN}
[[producers]]
stream = "bench"
count = {connections}
rate = "max"
pipeline = {pipeline}
events = [ {{ type = "Bench", size = "{payload}B" }} ]
"#,
        duration = opts.duration.as_millis(),
        url = server.url(),
        connections = opts.connections,
    );
    run_in_process(&toml, out)
}

/// `requests` XADDs with redis-benchmark; returns its rate and its own CPU seconds
/// (bash's `times` reports the children's user and system time).
pub(super) fn redis_benchmark(
    server: &RedisServer,
    connections: u32,
    pipeline: u32,
    payload: u64,
    requests: u64,
) -> Result<(f64, f64)> {
    let value = "x".repeat(payload as usize);
    // The entry streamdrill writes, field for field (a typical header, type,
    // aggregate, payload): Redis's work per XADD grows with its fields, so
    // a one-field XADD would flatter redis-benchmark's rate.
    let script = format!(
        "redis-benchmark -p {port} -c {connections} -P {pipeline} -n {requests} --csv \
         XADD rbench MAXLEN '~' {MAXLEN} '*' sd 12:1048576:1764230400123456789 \
         type Bench agg 4242 data {value} && times",
        port = server.port()
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .output()
        .map_err(|e| Error::Internal(format!("running redis-benchmark: {e}")))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(Error::Internal(format!(
            "redis-benchmark failed (is it installed? it ships with redis-server): {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    parse_benchmark_output(&text)
        .ok_or_else(|| Error::Internal(format!("could not read redis-benchmark's output:\n{text}")))
}

/// The rps column of redis-benchmark's CSV line, and the children's CPU from `times`.
fn parse_benchmark_output(text: &str) -> Option<(f64, f64)> {
    let csv = text.lines().find(|l| l.starts_with("\"XADD"))?;
    let rps: f64 = csv.split(',').nth(1)?.trim_matches('"').parse().ok()?;
    let children = text
        .lines()
        .rev()
        .find(|l| l.contains("m") && l.ends_with('s'))?;
    let cpu: f64 = children
        .split_whitespace()
        .filter_map(parse_times_field)
        .sum();
    Some((rps, cpu))
}

/// "0m1.234s" -> 1.234
fn parse_times_field(field: &str) -> Option<f64> {
    let (m, s) = field.strip_suffix('s')?.split_once('m')?;
    Some(m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_redis_benchmark_csv_and_times() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\"\n\"XADD rbench MAXLEN ~ 100000 * field xx\",\"716845.81\",\"1.055\"\n0m0.002s 0m0.000s\n0m1.018s 0m0.060s\n";
        let (rps, cpu) = parse_benchmark_output(text).unwrap();
        assert_eq!(rps, 716845.81);
        assert!((cpu - 1.078).abs() < 1e-9);
    }
}
