//! The container image and Kubernetes Jobs under deploy/ (docs/deployment.md)
//! cannot run here (no registry, no cluster), so their text is checked
//! against what it feeds: the Jobs' container args go through the real
//! command-line parser as each pod would pass them, then run as three
//! processes against a real redis-server, and the merge Job's shell line
//! merges what they wrote.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use streamdrill::Cli;
use streamdrill::cli::Command as Sub;
use streamdrill::plan::Segment;

use crate::support;

/// Where the Jobs' pods find what the image and the claim hold.
const IMAGE_SCENARIOS: &str = "/scenarios/";
const CLAIM_MOUNT: &str = "/reports";
/// The Redis the segment Job names: a Service assumed to exist.
const JOB_REDIS: &str = "redis://redis:6379";
/// How long the three local segments may take, meeting and read-back included.
const SEGMENTS_DEADLINE: Duration = Duration::from_secs(90);

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The items of the YAML list under the first `key:` line (block style,
/// `- item` per line, comments skipped, surrounding quotes removed).
fn list_under(yaml: &str, key: &str) -> Vec<String> {
    let mut lines = yaml.lines().skip_while(|l| l.trim() != format!("{key}:"));
    let indent = |l: &str| l.len() - l.trim_start().len();
    let key_indent = indent(lines.next().unwrap_or_else(|| panic!("no `{key}:` list")));
    let mut items = Vec::new();
    for line in lines {
        let t = line.trim();
        if t.starts_with('#') {
            continue;
        }
        match t.strip_prefix("- ") {
            Some(item) if indent(line) >= key_indent => {
                items.push(item.trim().trim_matches('"').to_string())
            }
            _ => break,
        }
    }
    assert!(!items.is_empty(), "`{key}:` has no items");
    items
}

/// The value after the first `key: ` line.
fn scalar(yaml: &str, key: &str) -> String {
    (yaml.lines())
        .find_map(|l| l.trim().strip_prefix(&format!("{key}: ")))
        .map(|v| v.split(" #").next().unwrap_or(v).trim().to_string())
        .unwrap_or_else(|| panic!("no `{key}:`"))
}

/// The `value:` of env variable `name`.
fn env_value(yaml: &str, name: &str) -> String {
    let from = (yaml.find(&format!("- name: {name}"))).unwrap_or_else(|| panic!("no env {name}"));
    scalar(&yaml[from..], "value")
}

/// Kubernetes's `$(VAR)` expansion of one argument.
fn expand(arg: &str, vars: &[(&str, &str)]) -> String {
    (vars.iter()).fold(arg.to_string(), |a, (k, v)| {
        a.replace(&format!("$({k})"), v)
    })
}

/// The segment Job's args as pod `index` gets them.
fn segment_args(index: u32) -> (Vec<String>, String, u32) {
    let job = read("deploy/k8s/segments-job.yaml");
    let count: u32 = scalar(&job, "completions").parse().expect("a count");
    let run_name = env_value(&job, "RUN_NAME");
    let vars = [
        ("JOB_COMPLETION_INDEX", index.to_string()),
        ("RUN_NAME", run_name.clone()),
    ];
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let args = (list_under(&job, "args").iter())
        .map(|a| expand(a, &vars))
        .collect();
    (args, run_name, count)
}

/// The merge Job's shell line with RUN_NAME expanded.
fn merge_line() -> String {
    let job = read("deploy/k8s/merge-job.yaml");
    assert_eq!(scalar(&job, "command"), "[sh, -c]", "a shell, for the glob");
    let run_name = env_value(&job, "RUN_NAME");
    let [line] = list_under(&job, "args").try_into().expect("one shell line");
    expand(&line, &[("RUN_NAME", &run_name)])
}

#[test]
fn segment_job_args_parse_as_each_pod_passes_them() {
    let job = read("deploy/k8s/segments-job.yaml");
    assert_eq!(scalar(&job, "completionMode"), "Indexed");
    let (_, run_name, count) = segment_args(0);
    assert_eq!(
        scalar(&job, "parallelism"),
        count.to_string(),
        "all at once"
    );
    assert_eq!(
        env_value(&read("deploy/k8s/merge-job.yaml"), "RUN_NAME"),
        run_name,
        "merge reads the folder the segments wrote"
    );
    for index in 0..count {
        let (args, ..) = segment_args(index);
        let cli = Cli::try_parse_from(std::iter::once("streamdrill".into()).chain(args))
            .unwrap_or_else(|e| panic!("pod {index}'s args: {e}"));
        let Sub::Run(run) = cli.command else {
            panic!("pod {index} does not `run`")
        };
        assert_eq!(run.segment.segment, Some(Segment { index, count }));
        assert_eq!(run.segment.meet.as_deref(), Some(run_name.as_str()));
        assert_eq!(run.scenario.redis.as_deref(), Some(JOB_REDIS));
        assert_eq!(run.out, Path::new(CLAIM_MOUNT).join(&run_name));
        // The image's /scenarios is the repository's scenarios/: the file
        // loads and validates with the Job's overrides.
        let mut scenario = run.scenario;
        let name = (scenario.scenario.strip_prefix(IMAGE_SCENARIOS))
            .expect("a scenario the image holds")
            .to_path_buf();
        scenario.scenario = root().join("scenarios").join(name);
        let loaded = scenario.load().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.producers[0].count, 3, "one producer per segment");
    }
    let line = merge_line();
    let glob = format!("{CLAIM_MOUNT}/{run_name}/*-seg*of{count}");
    let words: Vec<String> = (line.split_whitespace())
        .flat_map(|w| match w == glob {
            true => (0..count).map(|i| format!("r-seg{i}of{count}")).collect(),
            false => vec![w.to_string()],
        })
        .collect();
    let Sub::Merge(merge) = Cli::try_parse_from(&words).expect("merge parses").command else {
        panic!("not a merge: {line}")
    };
    assert_eq!(
        merge.dirs.len(),
        count as usize,
        "the glob is {glob}: {line}"
    );
    assert_eq!(merge.out, Path::new(CLAIM_MOUNT).join(&run_name));
}

#[test]
fn dockerfile_builds_locked_and_ships_the_scenarios() {
    let file = read("deploy/Dockerfile");
    let has = |s: &str| assert!(file.contains(s), "deploy/Dockerfile lacks {s:?}");
    has("cargo build --release --locked");
    has("COPY scenarios/ /scenarios/");
    has("/usr/local/bin/streamdrill");
    has("ENTRYPOINT [\"streamdrill\"]");
    let ignored = read(".dockerignore");
    for dir in ["target", "reports", ".servers", ".git"] {
        assert!(ignored.lines().any(|l| l == dir), ".dockerignore: {dir}");
    }
}

/// How often the segments' exits are checked.
const POLL: Duration = Duration::from_millis(50);

/// Waits for every child; past the deadline kills them all and fails.
fn wait_all(mut children: Vec<Child>, deadline: Duration) -> Vec<std::process::Output> {
    let until = Instant::now() + deadline;
    while (children.iter_mut()).any(|c| c.try_wait().expect("try_wait").is_none()) {
        if Instant::now() >= until {
            children.iter_mut().for_each(|c| drop(c.kill()));
            panic!("the segments did not exit within {deadline:?}");
        }
        std::thread::sleep(POLL);
    }
    (children.into_iter())
        .map(|c| c.wait_with_output().expect("output"))
        .collect()
}

fn info_field(info: &str, prefix: &str, field: &str) -> u64 {
    let line = (info.lines().find(|l| l.starts_with(prefix)))
        .unwrap_or_else(|| panic!("no {prefix} in INFO"));
    let at = line.find(&format!("{field}=")).expect("field") + field.len() + 1;
    line[at..].split(',').next().unwrap().parse().unwrap()
}

#[test]
fn segment_job_runs_as_three_processes_and_merge_job_joins_them() {
    let server = support::server();
    let out = tempfile::tempdir().unwrap();
    let claim = out.path().to_str().unwrap();
    let scenarios = root().join("scenarios/");
    let local = |a: &str| {
        (a.replace(JOB_REDIS, &server.url()))
            .replace(IMAGE_SCENARIOS, scenarios.to_str().unwrap())
            .replace(CLAIM_MOUNT, claim)
    };
    let count = segment_args(0).2;
    let children: Vec<Child> = (0..count)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_streamdrill"))
                .args(segment_args(i).0.iter().map(|a| local(a)))
                // Shorter than the Job's run, and loose SLOs: this checks the
                // wiring, not the latency of a loaded test machine.
                .args(["--duration", "4s", "--set", "warmup=1s"])
                .args(["--set", "slo.e2e_p99=5s", "--set", "slo.min_rate_ratio=0.5"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // A segment judges no SLO (its events' consumers run in other
    // segments): 0 once it ran. The run's verdict is merge's.
    for (i, o) in wait_all(children, SEGMENTS_DEADLINE).iter().enumerate() {
        assert!(
            o.status.success(),
            "segment {i}: {:?}\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_streamdrill"))
        .parent()
        .unwrap();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap());
    let merged = Command::new("sh")
        .args(["-c", &local(&merge_line())])
        .env("PATH", path)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&merged.stdout);
    assert_eq!(
        merged.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&merged.stderr)
    );
    let run_name = segment_args(0).1;
    let dir = (std::fs::read_dir(out.path().join(&run_name)).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| !p.to_string_lossy().contains("-seg"))
        .expect("the merged run directory");
    let s = streamdrill::report::read_summary(&dir.join("summary.json")).unwrap();
    support::assert_ledger_adds_up(&s);
    // Independent count: every XADD the server executed, warmup included,
    // and each segment's one stream-feature probe (src/coordinator/setup.rs).
    let sent = s.produce.sent + s.warmup.produce_sent;
    let info = server.info("commandstats").unwrap();
    let xadds = info_field(&info, "cmdstat_xadd:", "calls");
    let failed = info_field(&info, "cmdstat_xadd:", "failed_calls");
    println!(
        "merged run: {sent} XADDs sent by {count} segments; redis INFO commandstats: {xadds} \
         XADD calls ({failed} failed)"
    );
    assert!(sent > 0);
    assert_eq!(sent + u64::from(count), xadds);
    for g in &s.groups {
        assert_eq!(g.measured.lost, 0, "group {}", g.name);
        assert_eq!(
            g.measured.processed,
            Some(s.produce.acked),
            "group {}",
            g.name
        );
    }
}
