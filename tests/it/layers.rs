//! The layers of `src/lib.rs`'s Layout, held against the code: every
//! `crate::` path in a module's non-test code names a module its layer may
//! use, and the pure layers never touch redis-rs, actix or tokio. A new
//! module must be placed here (and in the Layout) before it can be used.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What every layer may use: the base.
const BASE: &[&str] = &["error", "decimal", "clock", "event", "slot"];

/// Each top-level module and the modules it may import besides the base,
/// bottom to top, as `src/lib.rs` lists them.
const LAYERS: &[(&str, &[&str])] = &[
    // The base: the error type, the run clock, the format of one event.
    ("error", &[]),
    ("decimal", &[]),
    ("clock", &[]),
    ("event", &[]),
    ("slot", &[]),
    // Pure: what the user wrote and what it means; run records; their views.
    ("scenario", &[]),
    ("plan", &["scenario"]),
    ("metrics", &[]),
    ("report", &["metrics", "scenario"]),
    // Standalone: processes and sockets a run or a test starts.
    ("tls", &[]),
    ("powerfs", &[]),
    ("server", &["powerfs", "tls"]),
    ("proxy", &[]),
    // The runtime: talking to Redis and running the actors.
    ("cpu_idle", &["metrics"]),
    ("live", &["metrics"]),
    ("wire", &["tls"]),
    ("connect", &["tls", "wire"]),
    ("verify", &["connect", "metrics", "plan", "wire"]),
    (
        "actors",
        &[
            "connect", "metrics", "plan", "proxy", "scenario", "server", "verify", "wire",
        ],
    ),
    (
        "coordinator",
        &[
            "actors", "connect", "metrics", "plan", "proxy", "tls", "verify", "wire",
        ],
    ),
    // The top: picks servers, runs, renders.
    (
        "runner",
        &[
            "actors",
            "coordinator",
            "connect",
            "cpu_idle",
            "live",
            "metrics",
            "plan",
            "proxy",
            "report",
            "scenario",
            "server",
            "tls",
        ],
    ),
    (
        "bench",
        &[
            "cpu_idle", "metrics", "report", "runner", "scenario", "server",
        ],
    ),
    (
        "capacity",
        &[
            "connect", "cpu_idle", "live", "metrics", "report", "runner", "scenario", "server",
        ],
    ),
    ("merge", &["metrics", "plan", "report"]),
    (
        "cli",
        &[
            "bench", "capacity", "cpu_idle", "live", "merge", "metrics", "plan", "report",
            "runner", "scenario",
        ],
    ),
];

/// Layers that are pure data and logic: no client, no actor system, no runtime.
const PURE: &[&str] = &[
    "scenario", "plan", "metrics", "report", "event", "decimal", "slot",
];
const IMPURE_CRATES: &[&str] = &["redis::", "actix", "tokio"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Each top-level module's non-test source, file by file.
fn modules() -> BTreeMap<String, Vec<(PathBuf, String)>> {
    let mut out: BTreeMap<String, Vec<(PathBuf, String)>> = BTreeMap::new();
    let mut stack = vec![src()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if !name.ends_with(".rs") || name == "tests.rs" {
                continue;
            }
            let rel = path.strip_prefix(src()).unwrap();
            let top = rel.iter().next().unwrap().to_string_lossy();
            let top = top.trim_end_matches(".rs").to_string();
            if top == "lib" || top == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Unit tests may reach across layers; the module itself may not.
            let code = text.split("#[cfg(test)]").next().unwrap().to_string();
            out.entry(top).or_default().push((path, code));
        }
    }
    out
}

/// `line` without its comment (a `//` not part of a URL's `://`).
fn code_of(line: &str) -> &str {
    let bytes = line.as_bytes();
    let comment = (0..bytes.len().saturating_sub(1))
        .find(|&i| &bytes[i..i + 2] == b"//" && (i == 0 || bytes[i - 1] != b':'));
    comment.map_or(line, |i| &line[..i])
}

/// The top-level modules `code` names through `crate::`.
fn imports(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in code.lines().map(code_of) {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push(name);
        }
    }
    out
}

#[test]
fn every_module_has_a_layer_and_imports_only_below_it() {
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    let mut problems = Vec::new();
    for (module, files) in modules() {
        let Some(may) = allowed.get(module.as_str()) else {
            problems.push(format!(
                "{module}: no layer; add it to LAYERS and lib.rs's Layout"
            ));
            continue;
        };
        for (path, code) in &files {
            for import in imports(code) {
                let fine = import == module
                    || BASE.contains(&import.as_str())
                    || may.contains(&import.as_str());
                if !fine {
                    problems.push(format!(
                        "{}: {module} imports {import}, above its layer",
                        path.display()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn pure_layers_touch_no_client_actor_or_runtime() {
    let mut problems = Vec::new();
    for (module, files) in modules() {
        if !PURE.contains(&module.as_str()) {
            continue;
        }
        for (path, code) in &files {
            let code: String = code.lines().map(code_of).collect::<Vec<_>>().join("\n");
            for name in IMPURE_CRATES.iter().filter(|c| code.contains(*c)) {
                problems.push(format!("{}: {module} uses {name}", path.display()));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_layers_are_the_ones_lib_rs_lists() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    for (module, _) in LAYERS {
        assert!(
            lib.contains(&format!("[`{module}`]")),
            "lib.rs's Layout does not place {module}"
        );
    }
}

#[test]
fn the_checks_catch_an_upward_import() {
    assert_eq!(
        imports("use crate::report::Summary; // crate::cli\nlet x = crate::metrics::Row;"),
        ["report", "metrics"]
    );
    let allowed: BTreeMap<&str, &[&str]> = LAYERS.iter().copied().collect();
    assert!(!allowed["metrics"].contains(&"report"));
    assert!(!allowed["scenario"].contains(&"plan"));
}
