//! The example run committed under `reports/example/` (a `scenarios/quickstart.toml`
//! run, for a visitor to see the output before running anything): rendered
//! again from its `summary.json` and `timeseries.csv` by today's code, its
//! `index.html` and SVG plots must be what is committed, so the example
//! never shows output streamdrill no longer makes.

use std::fs;
use std::path::{Path, PathBuf};

use streamdrill::report::files::{SUMMARY_FILE, TIMESERIES_FILE};
use streamdrill::report::html::INDEX_FILE;
use streamdrill::report::{read_summary, render_views};

const REGENERATE: &str = "regenerate it with `cargo run --release -- report reports/example` \
     and commit index.html and plots/*.svg";

fn example() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("reports/example")
}

#[test]
fn the_example_report_is_what_todays_code_renders() {
    let committed = example();
    let fresh = tempfile::tempdir().unwrap();
    for file in [SUMMARY_FILE, TIMESERIES_FILE] {
        fs::copy(committed.join(file), fresh.path().join(file)).unwrap();
    }
    let summary = read_summary(&fresh.path().join(SUMMARY_FILE)).expect("the example reads");
    assert_eq!(summary.scenario.name, "quickstart");
    assert!(summary.slo.passed, "the example shows a passing run");
    render_views(fresh.path(), &summary).expect("the example renders");

    let mut compared = vec![INDEX_FILE.to_string()];
    let plots = fs::read_dir(committed.join("plots")).unwrap();
    compared.extend(
        (plots.map(|e| e.unwrap().file_name().to_string_lossy().into_owned()))
            .filter(|name| name.ends_with(".svg"))
            .map(|name| format!("plots/{name}")),
    );
    assert!(
        compared.len() > 5,
        "index.html and the SVG plots: {compared:?}"
    );
    for file in &compared {
        let want = fs::read_to_string(committed.join(file)).unwrap();
        let got = fs::read_to_string(fresh.path().join(file))
            .unwrap_or_else(|e| panic!("{file} not rendered ({e}): {REGENERATE}"));
        assert!(got == want, "reports/example/{file} differs: {REGENERATE}");
    }
    let index = fs::read_to_string(committed.join(INDEX_FILE)).unwrap();
    for section in ["Throughput", "Latency", "Ledger", "Fault timeline", "Plots"] {
        assert!(
            index.contains(section),
            "no {section} section in the example"
        );
    }
}
