//! The command line: `run`, `validate`, `report`, `compare` and `bench`
//! (docs/cli.md). `main.rs` parses it and calls [`run`]; this is the one
//! place that prints, because printing is the command line's job. Exit
//! codes: 0 passed, 1 an SLO failed (or a `compare` gate held), 2 an error,
//! 130 a run stopped by Ctrl-C (its report written all the same).

// The command line is where output goes to the terminal; the library returns it.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod segments;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::cpu_idle::CpuIdle;
use crate::error::{Error, Result};
use crate::live::Live;
use crate::live::http::{MetricsServer, parse_addr};
use crate::metrics::Progress;
use crate::report;
use crate::runner::{ProgressSink, RunOptions, run_scenario};
use crate::scenario::{Overrides, Scenario, load_file};

#[derive(Debug, Parser)]
#[command(
    name = "streamdrill",
    version,
    about = "Load tests and failure drills for Redis Streams"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write reports/<scenario>-<timestamp>/.
    Run(RunArgs),
    /// Check a scenario file (with overrides) without running it.
    Validate(ScenarioArgs),
    /// Re-render a run folder's plots, .hgrm files and index.html from its summary.json
    /// (or a capacity folder's plots and index.html from its capacity.json).
    Report(ReportArgs),
    /// Compare runs side by side against the first; gates make CI fail on a regression.
    Compare(CompareArgs),
    /// Compare streamdrill with redis-benchmark on a managed Redis, side by side.
    Bench(BenchArgs),
    /// Find the highest rate a scenario's setup sustains within its SLO, and size it;
    /// writes reports/<scenario>-capacity-<timestamp>/.
    Capacity(CapacityArgs),
    /// Join the run directories of a run's segments (`run --segment I/N`)
    /// into one run directory, as if one process had run it.
    Merge(segments::MergeArgs),
}

#[derive(Debug, Args)]
pub struct CapacityArgs {
    /// The scenario file (TOML): the workload shape whose total rate is scaled.
    pub scenario: PathBuf,
    /// Search this Redis instead of managed ones, e.g. redis://127.0.0.1:6379.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override any field, e.g. --set groups.0.consumers=4 (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    /// A managed-server binary to search (repeatable: one search each, shown side by side).
    #[arg(long = "server", value_name = "PATH")]
    pub servers: Vec<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
    /// Search each managed server twice, plain TCP and TLS-only, side by side.
    #[arg(long, conflicts_with = "redis")]
    pub tls_compare: bool,
    /// The first step's total rate in events/s (default: the scenario's own
    /// constant rate, or 1000).
    #[arg(long, value_name = "EVENTS/S")]
    pub start_rate: Option<f64>,
    /// No step goes above this rate (events/s).
    #[arg(long, value_name = "EVENTS/S", default_value_t = 1_000_000.0)]
    pub max_rate: f64,
    /// Bisection stops when the highest pass and the lowest failure are this close.
    #[arg(long, default_value = "5%", value_parser = parse_percent)]
    pub resolution: f64,
    /// Each probe multiplies the rate by this until a step fails.
    #[arg(long, default_value_t = 2.0)]
    pub growth: f64,
    /// Each step's warmup, before its measured window.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub step_warmup: std::time::Duration,
    /// Each step's measured window.
    #[arg(long, default_value = "8s", value_parser = parse_duration)]
    pub step: std::time::Duration,
    /// The measured window of the confirmation run at the result.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub confirm: std::time::Duration,
    /// Directory that receives the capacity directory.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// No line per step, only the result.
    #[arg(long)]
    pub quiet: bool,
    /// Threads for producers and consumers in each step (as for `run`).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// How idle CPUs wait during each step (as for `run`).
    #[arg(long, value_enum, default_value_t = CpuIdle::Os)]
    pub cpu_idle: CpuIdle,
    /// Serve live metrics for Prometheus at http://HOST:PORT/metrics while
    /// the process lasts; a bare PORT (or :PORT) listens on loopback only
    /// (docs/metrics-endpoint.md).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
}

/// "5%" or "0.05".
fn parse_percent(s: &str) -> std::result::Result<f64, String> {
    let parsed = match s.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => s.trim().parse::<f64>(),
    };
    parsed.map_err(|e| format!("{e}: write it like 5% or 0.05"))
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How long each streamdrill run lasts, closed loop and cycle.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub duration: std::time::Duration,
    /// Connections (producers) on both sides.
    #[arg(long, default_value_t = 50)]
    pub connections: u32,
    /// Payload sizes in bytes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,512")]
    pub payloads: Vec<u64>,
    /// Pipeline depths, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub pipelines: Vec<u32>,
    /// Rate of the scheduled produce/consume/ack cycle (0 skips it).
    #[arg(long, default_value_t = 50_000.0)]
    pub cycle_rate: f64,
    /// How idle CPUs wait during the comparison (as for `run`; poll by
    /// default here, so both tools run on CPUs that never sleep).
    #[arg(long, value_enum, default_value_t = CpuIdle::Poll)]
    pub cpu_idle: CpuIdle,
    /// Also run every row on a TLS-only managed server and report what TLS
    /// costs (rate, and Redis's CPU per XADD, TLS / plain); twice the time.
    #[arg(long)]
    pub tls: bool,
}

fn parse_duration(s: &str) -> std::result::Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e}: write it like 5s or 1500ms"))
}

#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Use this Redis instead of a managed one, e.g. redis://127.0.0.1:6379.
    /// Streams get a per-run key prefix and are deleted afterwards.
    #[arg(long, value_name = "URL")]
    pub redis: Option<String>,
    /// Start this redis-server-compatible binary (Redis, Valkey) as the
    /// managed server; overrides `[redis] server`. A relative path is taken
    /// from the current directory, a bare name from PATH.
    #[arg(long, value_name = "PATH", conflicts_with = "redis")]
    pub server: Option<PathBuf>,
    /// Override the scenario's duration, e.g. 30s.
    #[arg(long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Override the scenario's seed.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Override any field, e.g. --set producers.0.rate=20000 (repeatable).
    #[arg(long = "set", value_name = "PATH=VALUE")]
    pub set: Vec<String>,
    #[command(flatten)]
    pub tls: TlsArgs,
}

/// The `[redis] tls*` fields on the command line (docs/tls.md, "Settings").
#[derive(Debug, Clone, Default, Args)]
pub struct TlsArgs {
    /// Start the managed server TLS-only, with a throwaway CA of its own.
    #[arg(long)]
    pub tls: bool,
    /// The CA file (PEM) that signed a rediss:// server's certificate
    /// (default: the system's roots).
    #[arg(long, value_name = "PEM")]
    pub tls_ca: Option<PathBuf>,
    /// A client certificate (PEM) for a rediss:// server that asks for one.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The client certificate's private key (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Do not verify a rediss:// server's certificate: encrypted, not
    /// authenticated; for throwaway test servers. The report says so.
    #[arg(long)]
    pub tls_insecure: bool,
}

impl TlsArgs {
    fn push(&self, overrides: &mut Overrides) -> Result<()> {
        if self.tls {
            overrides.push("redis.tls", "true");
        }
        if self.tls_insecure {
            overrides.push("redis.tls_insecure", "true");
        }
        for (field, path) in [
            ("redis.tls_ca", &self.tls_ca),
            ("redis.tls_cert", &self.tls_cert),
            ("redis.tls_key", &self.tls_key),
        ] {
            if let Some(path) = path {
                overrides.push(field, toml_path(path)?);
            }
        }
        Ok(())
    }
}

/// A path as a TOML string, quoted so that `1234` stays a string.
fn toml_path(path: &std::path::Path) -> Result<String> {
    let text = path.to_str().ok_or_else(|| {
        crate::error::Error::Usage(format!("{}: not a UTF-8 path", path.display()))
    })?;
    Ok(toml_edit::Value::from(text).to_string())
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Directory that receives the run directory.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// No progress line, only the final summary.
    #[arg(long)]
    pub quiet: bool,
    /// Print the progress line even when stderr is not a terminal (one line per second).
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,
    /// Threads for producers and consumers: 1 runs them on one event loop
    /// (least CPU per event); more spreads many actors over cores. Default:
    /// 1, or one per core when the run has more than 64 actors.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,
    /// How idle CPUs wait during the run. os: as the machine is configured.
    /// poll: ask the kernel (PM QoS) to keep every idle CPU of this host
    /// polling, so neither the harness's timers nor a Redis on this host pay
    /// a wake-up from sleep (50-150 µs on a VM) in what is measured; costs
    /// those CPUs spinning while the run lasts; needs root. summary.json
    /// records which held.
    #[arg(long, value_enum, default_value_t = CpuIdle::Os)]
    pub cpu_idle: CpuIdle,
    /// With an external server: leave the run's keys (its streams,
    /// dead-letter streams, projection models) for redis-cli to inspect,
    /// instead of deleting them when the run is over.
    #[arg(long)]
    pub keep_keys: bool,
    /// Serve live metrics for Prometheus at http://HOST:PORT/metrics while
    /// the process lasts; a bare PORT (or :PORT) listens on loopback only
    /// (docs/metrics-endpoint.md).
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    #[command(flatten)]
    pub segment: segments::SegmentArgs,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A run folder (reports/<scenario>-<timestamp>) or a capacity folder.
    pub run_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Run folders; the first is the baseline.
    #[arg(required = true, num_args = 2..)]
    pub runs: Vec<PathBuf>,
    /// Exit 1 if this holds for any run against the baseline, e.g. 'e2e.p99 > +10%',
    /// 'produce.rate < -5%', 'e2e.billing.p99 > +2ms', 'lost > 0' (repeatable).
    #[arg(long = "fail-if", value_name = "GATE")]
    pub fail_if: Vec<String>,
    /// Where compare.html and the spectrum plot go
    /// (default: compare-<A>-vs-<last> beside the first run).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

impl ScenarioArgs {
    pub fn load(&self) -> Result<Scenario> {
        let mut overrides = Overrides::parse(&self.set)?;
        if let Some(d) = &self.duration {
            overrides.push("duration", d);
        }
        if let Some(s) = self.seed {
            overrides.push("seed", s.to_string());
        }
        if let Some(url) = &self.redis {
            overrides.push("redis.mode", "external");
            overrides.push("redis.url", url);
        }
        if let Some(path) = &self.server {
            overrides.push("redis.server", toml_path(path)?);
        }
        self.tls.push(&mut overrides)?;
        load_file(&self.scenario, &overrides)
    }
}

/// Run the command; returns the process exit code.
/// A feature the server lacks is the scenario's to fix: its file leads the
/// problem, as a validation error's does.
fn in_file(e: Error, file: &std::path::Path) -> Error {
    match e {
        Error::ServerLacks {
            url,
            server,
            problem,
        } => Error::ServerLacks {
            url,
            server,
            problem: format!("{}: {problem}", file.display()),
        },
        e => e,
    }
}

pub fn run(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Validate(args) => {
            let s = args.load()?;
            println!(
                "{}: ok ({} producer entries, {} groups)",
                args.scenario.display(),
                s.producers.len(),
                s.groups.len()
            );
            Ok(0)
        }
        Command::Bench(args) => {
            let options = crate::bench::BenchOptions {
                duration: args.duration,
                connections: args.connections,
                payloads_bytes: args.payloads,
                pipelines: args.pipelines,
                cycle_rate_per_s: args.cycle_rate,
                cpu_idle: args.cpu_idle,
                tls: args.tls,
            };
            print!("{}", crate::bench::render(&crate::bench::run(&options)?));
            Ok(0)
        }
        Command::Report(args) => report_command(&args),
        Command::Capacity(args) => capacity_command(args),
        Command::Compare(args) => compare_command(&args),
        Command::Merge(args) => segments::merge_command(&args),
        Command::Run(args) => {
            let scenario = args.scenario.load()?;
            // Progress is for people watching; logs and CI get only the summary.
            let show_progress = !args.quiet && (args.progress || std::io::stderr().is_terminal());
            let on_progress: Option<ProgressSink> = show_progress
                .then(|| Box::new(print_progress(scenario.duration.as_secs_f64())) as _);
            let endpoint = start_endpoint(args.metrics_addr.as_deref())?;
            let report = run_scenario(
                scenario,
                RunOptions {
                    out_dir: args.out,
                    on_progress,
                    workers: args.workers.map(usize::from),
                    cpu_idle: args.cpu_idle,
                    named: None,
                    keep_keys: args.keep_keys,
                    live: endpoint.as_ref().map(|e| e.live().clone()),
                    segment: args.segment.options(),
                },
            )
            .map_err(|e| in_file(e, &args.scenario.scenario))?;
            if show_progress && std::io::stderr().is_terminal() {
                eprintln!();
            }
            print!("{}", report::render_table(&report.summary));
            println!("report: {}", report.dir.display());
            if let Some(server) = endpoint {
                server.finish(report.summary.interrupted, announce_final_wait);
            }
            let code = match (report.summary.interrupted, report.summary.slo.passed) {
                (true, _) => 130,
                (false, passed) => u8::from(!passed),
            };
            Ok(code)
        }
    }
}

/// `streamdrill capacity`: 0 when the search ran to its end, 2 when a
/// server's search stopped on an error, 130 when Ctrl-C stopped it (what
/// was found is written all the same).
fn capacity_command(args: CapacityArgs) -> Result<u8> {
    use crate::capacity::{CapacityOptions, StepNotice, run_capacity};
    let load = ScenarioArgs {
        scenario: args.scenario.clone(),
        redis: args.redis.clone(),
        duration: None,
        seed: args.seed,
        set: args.set.clone(),
        server: None,
        tls: args.tls.clone(),
    };
    let scenario = load.load()?;
    let mut options = CapacityOptions::new(&args.out);
    options.start_rate_per_s = args.start_rate;
    options.max_rate_per_s = args.max_rate;
    options.resolution = args.resolution;
    options.growth = args.growth;
    options.step_warmup = args.step_warmup;
    options.step = args.step;
    options.confirm = args.confirm;
    options.servers = args.servers.clone();
    options.tls_compare = args.tls_compare;
    options.workers = args.workers.map(usize::from);
    options.cpu_idle = args.cpu_idle;
    let endpoint = start_endpoint(args.metrics_addr.as_deref())?;
    options.live = endpoint.as_ref().map(|e| e.live().clone());
    if !args.quiet {
        options.on_step = Some(Box::new(|notice: &StepNotice| match notice {
            StepNotice::Starting {
                server,
                index,
                kind,
                rate_per_s,
            } => eprint!(
                "server {} step {index:>2} {:<7} {:>9.0}/s ... ",
                server + 1,
                kind.name(),
                rate_per_s
            ),
            StepNotice::Finished { step, .. } => eprintln!(
                "{} {}",
                if step.verdict.passed { "pass" } else { "FAIL" },
                step.verdict.reason
            ),
        }));
    }
    let origin = args.scenario.display().to_string();
    let report = run_capacity(scenario, &origin, options)?;
    print!(
        "{}",
        report::capacity::render_capacity_text(&report.capacity)
    );
    println!(
        "report: {}",
        report.dir.join(report::html::INDEX_FILE).display()
    );
    if let Some(server) = endpoint {
        server.finish(report.capacity.interrupted, announce_final_wait);
    }
    // A server whose search stopped on an error: the report has what ran.
    let errors: Vec<String> = (report.capacity.servers.iter())
        .filter_map(|s| Some(format!("{}: {}", s.label, s.error.as_ref()?)))
        .collect();
    for e in &errors {
        eprintln!("error: {e}");
    }
    Ok(match (report.capacity.interrupted, errors.is_empty()) {
        (true, _) => 130,
        (false, false) => 2,
        (false, true) => 0,
    })
}

/// `--metrics-addr`: the endpoint, listening before the run starts.
fn start_endpoint(addr: Option<&str>) -> Result<Option<MetricsServer>> {
    let Some(addr) = addr else {
        return Ok(None);
    };
    let server = MetricsServer::start(parse_addr(addr)?, Live::new())?;
    eprintln!("metrics: {}", server.url());
    Ok(Some(server))
}

fn announce_final_wait(wait: std::time::Duration) {
    eprintln!(
        "metrics: waiting up to {:.0} s for a scrape of the final figures (Ctrl-C skips)",
        wait.as_secs_f64().ceil()
    );
}

/// `streamdrill report DIR`: the views again, from summary.json and the
/// files beside it, or from capacity.json for a capacity search.
fn report_command(args: &ReportArgs) -> Result<u8> {
    let capacity_file = args.run_dir.join(report::capacity::CAPACITY_FILE);
    if capacity_file.is_file() {
        let capacity = report::capacity::read_capacity(&capacity_file)?;
        let written = report::capacity::render_capacity_views(&args.run_dir, &capacity)?;
        print!("{}", report::capacity::render_capacity_text(&capacity));
        println!(
            "report: {} ({} files rendered)",
            args.run_dir.join(report::html::INDEX_FILE).display(),
            written.len()
        );
        return Ok(0);
    }
    let summary = report::read_summary(&args.run_dir.join(report::files::SUMMARY_FILE))?;
    let written = report::html::render_views(&args.run_dir, &summary)?;
    print!("{}", report::render_table(&summary));
    println!(
        "report: {} ({} files rendered)",
        args.run_dir.join(report::html::INDEX_FILE).display(),
        written.len()
    );
    Ok(0)
}

/// `streamdrill compare`: exit 1 when a `--fail-if` gate holds for any run.
fn compare_command(args: &CompareArgs) -> Result<u8> {
    use report::compare::{Comparison, Gate, view};
    let gates = (args.fail_if.iter().map(|g| Gate::parse(g))).collect::<Result<Vec<_>>>()?;
    let cmp = Comparison::load(&args.runs)?;
    let mut results = Vec::new();
    for gate in &gates {
        results.extend(gate.check(&cmp)?);
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_compare_dir(&args.runs));
    let written = view::write_compare(&cmp, &results, &out)?;
    print!("{}", view::render_text(&cmp, &results));
    if let Some(html) = written.last() {
        println!("compare: {}", html.display());
    }
    Ok(if results.iter().any(|r| r.failed) {
        1
    } else {
        0
    })
}

fn default_compare_dir(runs: &[PathBuf]) -> PathBuf {
    let name = |p: &PathBuf| {
        p.file_name()
            .map_or("run".into(), |n| n.to_string_lossy().into_owned())
    };
    let (first, last) = (&runs[0], &runs[runs.len() - 1]);
    let parent = first.parent().map(PathBuf::from).unwrap_or_default();
    parent.join(format!("compare-{}-vs-{}", name(first), name(last)))
}

/// One line per interval on stderr; redrawn in place on a terminal.
fn print_progress(total_s: f64) -> impl Fn(&Progress) {
    let in_place = std::io::stderr().is_terminal();
    move |p: &Progress| {
        let mut line = format!(
            "{} {:>6.1}s/{:.0}s  target {:>7.0}/s  acked {:>7}/s  p99 {:>8}  err {}",
            bar(p.elapsed_s, total_s),
            p.elapsed_s,
            total_s,
            p.target_rate_per_s,
            p.acked_per_s,
            report::format_us(p.produce_p99_us),
            p.errors
        );
        for g in &p.groups {
            let lag = g.lag.map_or("?".to_string(), |l| l.to_string());
            line += &format!(
                " | {} {}/s e2e p99 {} lag {lag} pend {}",
                g.name,
                g.processed_per_s,
                report::format_us(g.e2e_p99_us),
                g.pending
            );
        }
        let mut err = std::io::stderr().lock();
        let _ = if in_place {
            write!(err, "\r\x1b[2K{line}")
        } else {
            writeln!(err, "{line}")
        };
        let _ = err.flush();
    }
}

/// `[#####-----]`: elapsed share of the run in ten steps.
fn bar(elapsed_s: f64, total_s: f64) -> String {
    let filled = if total_s > 0.0 {
        ((elapsed_s / total_s).clamp(0.0, 1.0) * 10.0).round() as usize
    } else {
        0
    };
    format!("[{}{}]", "#".repeat(filled), "-".repeat(10 - filled))
}
