//! The closed-loop XADD comparison on one server, plain or TLS-only:
//! streamdrill at rate = "max", then redis-benchmark sending as many XADDs
//! of the same fields, with Redis's own CPU per XADD under each.

use std::path::Path;
use std::process::Command;

use super::{BenchOptions, MAXLEN, XaddRow, harness_cpu_us, run_in_process};
use crate::error::{Error, Result};
use crate::metrics::info_field;
use crate::report::Summary;
use crate::server::RedisServer;

/// One row: both tools on `server`; the streamdrill run's summary too, for
/// what the server and its TLS reported.
pub(super) fn compare(
    server: &RedisServer,
    out: &Path,
    opts: &BenchOptions,
    payload: u64,
    pipeline: u32,
) -> Result<(XaddRow, Summary)> {
    let summary = saturate(server, out, opts, payload, pipeline)?;
    let sent = summary.produce.acked.max(1);
    let rb = redis_benchmark(server, opts.connections, pipeline, payload, sent)?;
    let row = XaddRow {
        payload_bytes: payload,
        pipeline,
        streamdrill_per_s: summary.produce.achieved_rate_per_s,
        redis_benchmark_per_s: rb.per_s,
        streamdrill_cpu_us: harness_cpu_us(&summary),
        redis_benchmark_cpu_us: rb.cpu_s * 1e6 / sent as f64,
        streamdrill_redis_cpu_us: window_redis_cpu_us(&summary),
        redis_benchmark_redis_cpu_us: rb.redis_cpu_s * 1e6 / sent as f64,
    };
    Ok((row, summary))
}

fn saturate(
    server: &RedisServer,
    out: &Path,
    opts: &BenchOptions,
    payload: u64,
    pipeline: u32,
) -> Result<Summary> {
    // A TLS-only server is reached as an external one, verified with its own CA.
    let tls_ca = match server.tls_files() {
        Some(files) => {
            let ca = toml::Value::String(files.ca.to_string_lossy().into_owned());
            format!("tls_ca = {ca}\n")
        }
        None => String::new(),
    };
    let toml = format!(
        r#"
name = "bench-xadd"
duration = "{duration}ms"
drain_timeout = "5s"
[redis]
mode = "external"
url = "{url}"
{tls_ca}[[streams]]
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

/// Redis's CPU per XADD over the run's measured window, as the sampler read
/// it (summary.json's `load.cpu_cores`, the figure a user's own run
/// reports); None when the window held fewer than two readings.
fn window_redis_cpu_us(s: &Summary) -> Option<f64> {
    let cores = s.load.as_ref()?.cpu_cores?;
    let rate = s.produce.achieved_rate_per_s;
    (rate > 0.0).then(|| cores * 1e6 / rate)
}

/// How redis-benchmark reaches `server`: the port, and for a TLS-only server TLS verified with its CA. It
/// asks no client certificate (`tls-auth-clients no`), so none is given.
fn client_args(server: &RedisServer) -> Vec<String> {
    let mut args = vec!["-p".to_string(), server.port().to_string()];
    if let Some(files) = server.tls_files() {
        args.extend(["--tls".into(), "--cacert".into()]);
        args.push(files.ca.to_string_lossy().into_owned());
    }
    args
}

/// What one redis-benchmark run did and cost.
struct BenchmarkRun {
    per_s: f64,
    /// Its own user + system CPU, connection setup included.
    cpu_s: f64,
    /// Redis's over the same run: INFO cpu before and after.
    redis_cpu_s: f64,
}

/// `requests` XADDs with redis-benchmark (bash's `times` reports the
/// children's user and system time).
fn redis_benchmark(
    server: &RedisServer,
    connections: u32,
    pipeline: u32,
    payload: u64,
    requests: u64,
) -> Result<BenchmarkRun> {
    let value = "x".repeat(payload as usize);
    // The entry streamdrill writes, field for field (a typical header, type,
    // aggregate with its version, payload): Redis's work per XADD grows with its fields, so
    // a one-field XADD would flatter redis-benchmark's rate. How to reach the
    // server comes as bash's arguments ("$@"), so a CA path needs no quoting.
    let script = format!(
        "redis-benchmark \"$@\" -c {connections} -P {pipeline} -n {requests} --csv \
         XADD rbench MAXLEN '~' {MAXLEN} '*' sd 12:1048576:1764230400123456789 \
         type Bench agg 4242:17 data {value} && times"
    );
    let redis_cpu_before_s = redis_cpu_s(server)?;
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .arg("redis-benchmark")
        .args(client_args(server))
        .output()
        .map_err(|e| Error::Internal(format!("running redis-benchmark: {e}")))?;
    let redis_cpu_after_s = redis_cpu_s(server)?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        let hint = match server.tls_files() {
            Some(_) => "is it installed, and built with TLS (BUILD_TLS=yes, as Debian's is)?",
            None => "is it installed? it ships with redis-server",
        };
        return Err(Error::Internal(format!(
            "redis-benchmark failed ({hint}): {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let (per_s, cpu_s) = parse_benchmark_output(&text).ok_or_else(|| {
        Error::Internal(format!("could not read redis-benchmark's output:\n{text}"))
    })?;
    Ok(BenchmarkRun {
        per_s,
        cpu_s,
        redis_cpu_s: redis_cpu_after_s - redis_cpu_before_s,
    })
}

/// Redis's own CPU so far, by INFO cpu on a connection of the server's own
/// probes: another connection than redis-benchmark's, whose CPU (`times`)
/// leaves it out.
fn redis_cpu_s(server: &RedisServer) -> Result<f64> {
    let text = server.info("cpu")?;
    parse_cpu_s(&text).ok_or_else(|| {
        Error::Internal(format!(
            "INFO cpu gave no used_cpu_user/used_cpu_sys: {text}"
        ))
    })
}

/// used_cpu_user + used_cpu_sys of an INFO cpu reply.
fn parse_cpu_s(info: &str) -> Option<f64> {
    Some(info_field::<f64>(info, "used_cpu_user")? + info_field::<f64>(info, "used_cpu_sys")?)
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

    #[test]
    fn reads_redis_cpu_from_info() {
        // As INFO cpu answers: CRLF line ends, children's CPU apart.
        let info = "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\n\
                    used_cpu_sys_children:9.000000\r\nused_cpu_user_children:9.000000\r\n";
        assert_eq!(parse_cpu_s(info), Some(3.75));
        assert_eq!(parse_cpu_s("# CPU\r\nused_cpu_sys:1.0\r\n"), None);
    }
}
