//! `streamdrill capacity`: the maximum sustainable rate of a workload shape
//! on a server, the curve up to it, and how big a deployment must be
//! (docs/capacity.md). A driver above `runner`: every step is a whole run
//! (same accounting, its own report under `steps/`) at a scaled rate on a
//! fresh server and stream; `search` decides the next rate from the
//! verdicts, `verdict` judges a step from its summary, `sizing` turns the
//! measurements into tables. `capacity.json` is rewritten after every step,
//! so a Ctrl-C or a crash keeps what was found.

pub mod options;
pub mod probe;
pub mod search;
pub mod shape;
pub mod sizing;
pub mod verdict;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::connect::Target;
use crate::error::{Error, Result};
use crate::live::CapacityStep;
use crate::report::capacity::{
    CAPACITY_SCHEMA_VERSION, Capacity, SearchSettings, ServerSearch, Step, StepKind,
};
use crate::report::{MachineInfo, Summary, rfc3339};
use crate::runner::{RunOptions, create_run_dir, external_target, run_scenario, server_settings};
use crate::scenario::{RedisMode, Scenario};
use crate::server::RedisServer;

pub use self::options::CapacityOptions;
use self::options::settings;
use self::search::{Next, Outcome};
use self::shape::Shape;

/// Receives the search's progress.
pub type OnStep = Box<dyn Fn(&StepNotice)>;

/// What the progress line is told.
pub enum StepNotice<'a> {
    Starting {
        server: usize,
        index: u32,
        kind: StepKind,
        rate_per_s: f64,
    },
    Finished {
        server: usize,
        step: &'a Step,
    },
}

pub struct CapacityReport {
    pub dir: PathBuf,
    pub capacity: Capacity,
}

/// Run the search against each server and write `<out>/<name>-capacity-<time>/`.
/// `origin` names the scenario file in errors.
pub fn run_capacity(
    scenario: Scenario,
    origin: &str,
    options: CapacityOptions,
) -> Result<CapacityReport> {
    let shape = Shape::of(scenario, origin)?;
    let settings = settings(&shape, &options)?;
    if shape.scenario.redis.mode == RedisMode::External {
        if !options.servers.is_empty() {
            return Err(Error::Usage(
                "--server picks managed servers; drop --redis (or the scenario's external url) to search them".into(),
            ));
        }
        if options.tls_compare {
            return Err(Error::Usage(
                "--tls-compare starts managed servers plain and TLS-only; an external server \
                 is one or the other: drop --redis, or search it alone"
                    .into(),
            ));
        }
    }
    let interrupted = watch_interrupt();
    let (id, dir) = create_run_dir(
        &options.out_dir,
        &format!("{}-capacity", shape.scenario.name),
    )?;
    let started_ns = crate::clock::unix_now_ns();
    let servers = variants(&options, shape.scenario.redis.tls);
    let mut capacity = Capacity {
        schema_version: CAPACITY_SCHEMA_VERSION,
        streamdrill_version: env!("CARGO_PKG_VERSION").to_string(),
        id: id.clone(),
        started_at: rfc3339(started_ns),
        scenario: shape.scenario.clone(),
        settings,
        servers: Vec::new(),
        machine: MachineInfo::current(),
        interrupted: false,
    };
    let mut first_error = None;
    for (n, variant) in servers.iter().enumerate() {
        let steps_dir = match servers.len() {
            1 => dir.join("steps"),
            _ => dir.join("steps").join(format!("{}", n + 1)),
        };
        let search = ServerSearch {
            label: variant
                .binary
                .map_or("redis-server".into(), |b| b.to_string()),
            binary: variant.binary.map(str::to_string),
            redis: None,
            steps: Vec::new(),
            result: None,
            sizing: None,
            error: None,
        };
        capacity.servers.push(search);
        let ctx = SearchContext {
            shape: &shape,
            options: &options,
            settings: &capacity.settings,
            variant: *variant,
            server: n,
            steps_dir: &steps_dir,
            run_prefix: &id,
            interrupted: &interrupted,
        };
        let Searched {
            found,
            stopped: stop,
            error,
        } = search_one(&ctx, &dir, &capacity)?;
        first_error = first_error.or(error);
        capacity.servers[n] = found;
        write(&dir, &capacity)?;
        if stop {
            capacity.interrupted = true;
            break;
        }
    }
    crate::report::capacity::write_capacity(&dir, &capacity)?;
    // No server ran a step: the search failed, for the first one's reason.
    match first_error {
        Some(e) if capacity.servers.iter().all(|s| s.steps.is_empty()) => Err(e),
        _ => Ok(CapacityReport { dir, capacity }),
    }
}

/// One search's server: a binary (None: the scenario's) and whether it
/// runs TLS-only.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Variant<'a> {
    binary: Option<&'a str>,
    tls: bool,
}

/// The searches to run, in order: each server, and with `--tls-compare`
/// each one plain, then TLS-only. `tls`: the scenario's own setting.
fn variants(options: &CapacityOptions, tls: bool) -> Vec<Variant<'_>> {
    let binaries: Vec<Option<&str>> = match options.servers.is_empty() {
        true => vec![None],
        false => options.servers.iter().map(|s| Some(s.as_str())).collect(),
    };
    let modes: &[bool] = match options.tls_compare {
        true => &[false, true],
        false if tls => &[true],
        false => &[false],
    };
    (binaries.into_iter())
        .flat_map(|binary| modes.iter().map(move |&tls| Variant { binary, tls }))
        .collect()
}

/// How one server's search ended.
struct Searched {
    found: ServerSearch,
    /// Stopped by Ctrl-C.
    stopped: bool,
    /// Why a step could not run (also in `found.error`).
    error: Option<Error>,
}

/// What one server's search needs besides its record.
struct SearchContext<'a> {
    shape: &'a Shape,
    options: &'a CapacityOptions,
    settings: &'a SearchSettings,
    variant: Variant<'a>,
    server: usize,
    steps_dir: &'a Path,
    run_prefix: &'a str,
    interrupted: &'a AtomicBool,
}

/// One server's search. `so_far` is the record written after each step
/// (this server's entry replaced as it goes).
fn search_one(ctx: &SearchContext, dir: &Path, so_far: &Capacity) -> Result<Searched> {
    let mut record = so_far.clone();
    let mut found = so_far.servers[ctx.server].clone();
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut stopped = false;
    let mut error = None;
    loop {
        if ctx.interrupted.load(Ordering::Relaxed) {
            stopped = true;
            break;
        }
        let Next::Run { rate_per_s, kind } = search::next(ctx.settings, &outcomes) else {
            break;
        };
        let index = found.steps.len() as u32 + 1;
        if let Some(f) = &ctx.options.on_step {
            f(&StepNotice::Starting {
                server: ctx.server,
                index,
                kind,
                rate_per_s,
            });
        }
        let summary = match run_step(ctx, index, kind, rate_per_s) {
            Ok(summary) => summary,
            Err(e) => {
                found.error = Some(e.to_string());
                error = Some(e);
                break;
            }
        };
        if found.redis.is_none() {
            found.label = summary.redis.label();
            found.redis = Some(summary.redis.clone());
            // The binary a managed server ran, as the server module resolved it.
            let ran = summary.redis.server.as_ref().and_then(|s| s.binary.clone());
            found.binary = ran.or(found.binary.take());
        }
        let run_dir = relative(dir, &ctx.steps_dir.join(step_name(index, kind, rate_per_s)));
        let step = verdict::step_of(&summary, ctx.settings, index, kind, rate_per_s, run_dir);
        // A step cut short by Ctrl-C is no verdict on its rate.
        if !summary.interrupted {
            outcomes.push(Outcome::of(&step));
        }
        if let Some(f) = &ctx.options.on_step {
            f(&StepNotice::Finished {
                server: ctx.server,
                step: &step,
            });
        }
        found.steps.push(step);
        // Incomplete until the search is done: what a crash would leave.
        found.result = Some(search::result(ctx.settings, &found.steps, true));
        record.servers[ctx.server] = found.clone();
        write(dir, &record)?;
        if summary.interrupted {
            stopped = true;
            break;
        }
    }
    if found.steps.is_empty() {
        return Ok(Searched {
            found,
            stopped,
            error,
        });
    }
    // A step that could not run ends the search as surely as a Ctrl-C.
    let incomplete = stopped || error.is_some();
    let result = search::result(ctx.settings, &found.steps, incomplete);
    let pending = match result.max_sustainable_rate_per_s > 0.0 && !incomplete {
        true => probe_pending(ctx),
        false => None,
    };
    found.sizing = sizing::sizing(
        &ctx.shape.scenario,
        &found.steps,
        &result,
        ctx.shape.own_rate_per_s(),
        pending,
    );
    found.result = Some(result);
    Ok(Searched {
        found,
        stopped,
        error,
    })
}

/// One step: the shape at `rate_per_s`, run whole.
fn run_step(ctx: &SearchContext, index: u32, kind: StepKind, rate_per_s: f64) -> Result<Summary> {
    let measured = match kind {
        StepKind::Confirm => ctx.options.confirm,
        _ => ctx.options.step,
    };
    let mut scenario = ctx
        .shape
        .step(rate_per_s, ctx.options.step_warmup, measured)?;
    with_server(&mut scenario, ctx.variant);
    let name = step_name(index, kind, rate_per_s);
    let run_id = format!("{}-s{}-{name}", ctx.run_prefix, ctx.server + 1);
    let mut options = RunOptions::new(ctx.steps_dir)
        .named(name, run_id)
        .cpu_idle(ctx.options.cpu_idle);
    options.workers = ctx.options.workers;
    if let Some(live) = &ctx.options.live {
        live.capacity_step(CapacityStep {
            index,
            kind: kind.name().into(),
            server: (ctx.server + 1).to_string(),
            offered_rate_per_s: rate_per_s,
        });
        options = options.live(live.clone());
    }
    Ok(run_scenario(scenario, options)?.summary)
}

/// The managed server this search runs: its binary (None: the scenario's)
/// and TLS. An external server's TLS is its URL's and stays so.
fn with_server(scenario: &mut Scenario, variant: Variant) {
    if let Some(binary) = variant.binary {
        scenario.redis.server = Some(PathBuf::from(binary));
    }
    if scenario.redis.mode == RedisMode::Managed {
        scenario.redis.tls = variant.tls;
        // Client certificates come with TLS; a plain search has none to ask for.
        scenario.redis.tls_auth_clients &= variant.tls;
    }
}

/// The pending-list probe on a server like the steps' (best effort: the
/// sizing says "unknown" without it).
fn probe_pending(ctx: &SearchContext) -> Option<f64> {
    let redis = &ctx.shape.scenario.redis;
    match redis.mode {
        RedisMode::External => {
            probe::pending_bytes_per_entry(&external_target(redis).ok()?, ctx.run_prefix).ok()?
        }
        RedisMode::Managed => {
            let mut scenario = ctx.shape.scenario.clone();
            with_server(&mut scenario, ctx.variant);
            let server = RedisServer::start(server_settings(&scenario.redis)).ok()?;
            let target = Target::new(server.url(), server.client_tls()).ok()?;
            probe::pending_bytes_per_entry(&target, ctx.run_prefix).ok()?
        }
    }
}

/// e.g. "03-probe-4000".
fn step_name(index: u32, kind: StepKind, rate_per_s: f64) -> String {
    format!("{index:02}-{}-{rate_per_s:.0}", kind.name())
}

fn relative(base: &Path, path: &Path) -> String {
    path.strip_prefix(base)
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

/// capacity.json alone, rewritten after every step (the plots and page
/// are rendered once, at the end).
fn write(dir: &Path, capacity: &Capacity) -> Result<()> {
    crate::report::capacity::write_record(dir, capacity).map(drop)
}

/// Turns true on Ctrl-C, between steps as well as during them (each step's
/// run stops itself; this stops the search).
fn watch_interrupt() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    let _ = std::thread::Builder::new()
        .name("capacity-ctrl-c".into())
        .spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if tokio::signal::ctrl_c().await.is_ok() {
                    set.store(true, Ordering::Relaxed);
                }
            });
        });
    flag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_compare_searches_each_server_plain_then_tls() {
        let mut options = CapacityOptions::new("reports");
        options.servers = vec!["a".into(), "b".into()];
        options.tls_compare = true;
        let got: Vec<_> = (variants(&options, false).iter())
            .map(|v| (v.binary.unwrap(), v.tls))
            .collect();
        assert_eq!(got, [("a", false), ("a", true), ("b", false), ("b", true)]);
        options.tls_compare = false;
        assert!(variants(&options, true).iter().all(|v| v.tls));
        assert!(variants(&options, false).iter().all(|v| !v.tls));
    }
}
