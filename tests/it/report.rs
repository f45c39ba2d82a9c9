//! The report layer on real runs: plots, `.hgrm`, `index.html` (rendered in
//! headless Chromium), `streamdrill report` reproducing a run's views, and
//! `streamdrill compare` catching an injected regression with `--fail-if`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
use streamdrill::metrics::{Latency, tags};
use streamdrill::report::{Summary, read_summary};
use streamdrill::runner::{RunOptions, run_scenario};
use streamdrill::scenario::{Overrides, load_str};

use crate::browser;

/// A short run with two groups; `processing` sets group `slow`'s work per event.
fn scenario(processing: &str) -> String {
    format!(
        r#"
name = "report"
duration = "4s"
warmup = "1s"
[[producers]]
stream = "s"
rate = 200
[[groups]]
stream = "s"
name = "slow"
processing = "{processing}"
[[groups]]
stream = "s"
name = "fast"
"#
    )
}

fn run(toml: &str, out: &Path) -> (PathBuf, Summary) {
    let scenario = load_str(toml, "test.toml", &Overrides::default()).expect("valid scenario");
    let options = RunOptions::new(out).workers(1);
    let report = run_scenario(scenario, options).expect("run succeeds");
    (report.dir, report.summary)
}

/// One real run shared by the tests that only read it.
fn shared_run() -> &'static (PathBuf, Summary) {
    static RUN: OnceLock<(PathBuf, Summary)> = OnceLock::new();
    RUN.get_or_init(|| {
        let out = tempfile::tempdir().unwrap().keep();
        run(&scenario("100us"), &out)
    })
}

fn streamdrill(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_streamdrill"))
        .args(args)
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn run_writes_plots_hgrm_and_a_self_contained_page() {
    let (dir, summary) = shared_run();
    for name in [
        "latency-histogram",
        "percentile-spectrum",
        "throughput",
        "e2e-latency",
        "backlog",
        "stream-length",
        "memory",
    ] {
        let svg = std::fs::read_to_string(dir.join(format!("plots/{name}.svg"))).unwrap();
        assert!(
            svg.matches("<polyline").count() >= 1,
            "{name}.svg has no line"
        );
        let png = std::fs::metadata(dir.join(format!("plots/{name}.png"))).unwrap();
        assert!(png.len() > 10_000, "{name}.png is {} bytes", png.len());
    }
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 7);
    assert!(html.contains(&summary.run_id) && html.contains("e2e slow"));
    let p99 = streamdrill::report::format_us(summary.groups[0].measured.e2e_latency_us.p99);
    assert!(
        html.contains(&format!("<td>{p99}</td>")),
        "e2e p99 {p99} in the table"
    );
    for external in ["<script", "<img", "src=", "href=\"http"] {
        assert!(
            !html.contains(external),
            "index.html must be self-contained: {external}"
        );
    }
}

#[test]
fn histogram_files_agree_with_summary_json() {
    let (dir, summary) = shared_run();
    // Measured-phase histograms in summary.json give exactly its percentiles.
    let e2e = Latency::decode(&summary.histograms[&tags::e2e("slow")]).unwrap();
    assert_eq!(e2e.percentiles(), summary.groups[0].measured.e2e_latency_us);
    // The .hgrm carries the same count and max (written in milliseconds).
    let hgrm = std::fs::read_to_string(dir.join("histograms/e2e.slow.hgrm")).unwrap();
    let footer = hgrm.lines().find(|l| l.starts_with("#[Max")).unwrap();
    let count = summary.groups[0].measured.e2e_latency_us.count;
    let max_ms = summary.groups[0].measured.e2e_latency_us.max as f64 / 1000.0;
    assert!(
        footer.ends_with(&format!("Total count    = {count:>12}]")),
        "{footer}"
    );
    assert!(
        footer.contains(&format!("{max_ms:.3}")),
        "{footer} vs max {max_ms}"
    );
    // The interval log, read with hdrhistogram's own reader, holds warmup + measured.
    let hlog = std::fs::read(dir.join("histograms/produce.latency.hlog")).unwrap();
    let mut total = Latency::new();
    for entry in IntervalLogIterator::new(&hlog) {
        if let LogEntry::Interval(i) = entry.unwrap() {
            total.add(&Latency::decode(i.encoded_histogram()).unwrap());
        }
    }
    let p = &summary.produce.latency_us;
    let w = &summary.warmup.produce_latency_us;
    assert_eq!(total.count(), p.count + w.count);
    assert_eq!(total.percentiles().max, p.max.max(w.max));
}

#[test]
fn report_command_rerenders_the_same_views() {
    let (dir, summary) = shared_run();
    let copy = tempfile::tempdir().unwrap();
    for file in ["summary.json", "timeseries.csv"] {
        std::fs::copy(dir.join(file), copy.path().join(file)).unwrap();
    }
    let out = streamdrill(&["report", copy.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with(&streamdrill::report::render_table(summary)),
        "{stdout}"
    );
    for file in [
        "index.html",
        "plots/throughput.svg",
        "plots/percentile-spectrum.png",
        "histograms/e2e.fast.hgrm",
    ] {
        let original = std::fs::read(dir.join(file)).unwrap();
        let again = std::fs::read(copy.path().join(file)).unwrap();
        assert!(
            original == again,
            "{file} differs after `streamdrill report`"
        );
    }
    assert_eq!(
        read_summary(&copy.path().join("summary.json")).unwrap(),
        *summary
    );
}

#[test]
fn compare_fails_on_a_regression_and_passes_equal_runs() {
    let out = tempfile::tempdir().unwrap();
    let (a, _) = run(&scenario("100us"), out.path());
    let (b, _) = run(&scenario("100us"), out.path());
    // Equal runs differ by up to ~3x on a loaded 2-core CI machine; the
    // regression (4 ms of work per event at 80% utilisation) is far beyond that.
    let (slow, slow_summary) = run(&scenario("4ms"), out.path());
    assert!(slow_summary.groups[0].measured.e2e_latency_us.p50 > 4_000);
    let gates = ["--fail-if", "e2e.slow.p50 > +500%", "--fail-if", "lost > 0"];
    let cmp_dir = out.path().join("cmp");
    let path = |p: &Path| p.to_str().unwrap().to_string();

    let mut args = vec![
        "compare".to_string(),
        path(&a),
        path(&b),
        "--out".into(),
        path(&cmp_dir),
    ];
    args.extend(gates.map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let equal = streamdrill(&args);
    assert_eq!(equal.status.code(), Some(0), "{}", text(&equal));
    assert!(cmp_dir.join("compare.html").exists());

    let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    args[2] = path(&slow);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let regressed = streamdrill(&args);
    assert_eq!(regressed.status.code(), Some(1), "{}", text(&regressed));
    let stdout = String::from_utf8_lossy(&regressed.stdout);
    assert!(
        stdout.contains("gate [FAIL] e2e.slow.p50 > +500%"),
        "{stdout}"
    );
    assert!(stdout.contains("gate [pass] lost > 0"), "{stdout}");
    assert!(
        stdout.contains("A 100us | B 4ms"),
        "scenario difference shown: {stdout}"
    );
    let row = stdout
        .lines()
        .find(|l| l.starts_with("e2e.slow.p50 "))
        .unwrap();
    // Whether the shift is judged beyond noise (the Welch test, unit-tested
    // in compare/) depends on the machine's load over a few short intervals;
    // that it is tested and reported does not.
    assert!(row.contains(" p="), "the significance is reported: {row}");
    let html = std::fs::read_to_string(cmp_dir.join("compare.html")).unwrap();
    assert!(html.contains("<svg") && html.contains("gates FAILED"));

    let bad = streamdrill(&["compare", &path(&a), &path(&b), "--fail-if", "nonsense > 1"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("unknown metric"), "{}", text(&bad));
}

#[test]
fn progress_is_quiet_without_a_terminal() {
    let out = tempfile::tempdir().unwrap();
    let scenario = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(scenario.path(), scenario_toml_short()).unwrap();
    let result = streamdrill(&[
        "run",
        scenario.path().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert_eq!(result.status.code(), Some(0), "{}", text(&result));
    assert!(
        result.stderr.is_empty(),
        "stderr is not a terminal: {}",
        text(&result)
    );
    assert!(String::from_utf8_lossy(&result.stdout).contains("SLO"));
}

fn scenario_toml_short() -> String {
    scenario("0s").replace("duration = \"4s\"", "duration = \"2s\"")
}

#[test]
fn index_html_renders_in_headless_chromium() {
    let (dir, _) = shared_run();
    browser::assert_page_renders(&dir.join("index.html"), 7);
}
