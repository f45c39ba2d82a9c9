//! Every scenario shipped in `scenarios/` loads and validates, and a bad file
//! gives an error naming the file, the line and the field.

use std::path::Path;

use streamdrill::Error;
use streamdrill::scenario::{Overrides, load_file};

#[test]
fn every_shipped_scenario_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("scenarios/ exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 3,
        "expected the shipped scenarios, found {files:?}"
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| load_file(f, &Overrides::default()).err())
        .map(|e| e.to_string())
        .collect();
    assert!(
        failures.is_empty(),
        "scenarios that do not load:\n{}",
        failures.join("\n")
    );
}

#[test]
fn unknown_field_names_file_line_and_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("typo.toml");
    let text = "name = \"typo\"\nduration = \"5s\"\n\n[[producers]]\nstream = \"s\"\nrate = 10\nrtae = 20\n";
    std::fs::write(&path, text).expect("write temp scenario");
    let err = load_file(&path, &Overrides::default()).expect_err("unknown field must fail");
    assert!(
        matches!(err, Error::Scenario { line: Some(7), .. }),
        "{err:?}"
    );
    let shown = err.to_string();
    for needle in [
        "typo.toml",
        ":7",
        "producers[0].rtae",
        "unknown field `rtae`",
        "`rate`",
    ] {
        assert!(shown.contains(needle), "{needle:?} missing from: {shown}");
    }
}
