//! The docs stay true to the repository: README.md stays short and reaches
//! every document under docs/, every relative link and every path a
//! document or a code comment names exists, a comment that cites a section
//! of docs/ names a heading that is there, src/lib.rs's Layout names every
//! module, and nothing cites design notes the repository does not hold.
//! Reads files only: no server, no build of anything else.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::fs;
use std::path::{Path, PathBuf};

/// README.md is what a newcomer reads in five minutes; the reference lives in docs/.
const README_MAX_BYTES: u64 = 12 * 1024;

/// Repository folders whose paths, when a document or comment names them, must exist.
const CHECKED_PREFIXES: [&str; 7] = [
    "docs/",
    "scenarios/",
    "schema/",
    "src/",
    "tests/",
    "benches/",
    "assets/",
];

/// Folders whose `.rs` comments are checked.
const COMMENTED_CODE: [&str; 3] = ["src", "tests", "benches"];

/// Spelled in two pieces so this file does not match itself.
const FORBIDDEN: [&str; 2] = [concat!("DESIGN", ".md"), concat!("DESIGN", " rule")];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// README.md and every docs/*.md, as paths relative to the repository root.
fn documents() -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = fs::read_dir(root().join("docs"))
        .expect("docs/ exists")
        .map(|e| e.expect("readable dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .map(|p| {
            p.strip_prefix(root())
                .expect("inside the repo")
                .to_path_buf()
        })
        .collect();
    docs.sort();
    docs.insert(0, PathBuf::from("README.md"));
    docs
}

/// Every file under `dir` (relative to the root) with extension `ext`.
fn files_under(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![root().join(dir)];
    while let Some(d) = todo.pop() {
        for entry in fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let path = entry.expect("readable dir entry").path();
            if path.is_dir() {
                todo.push(path);
            } else if path.extension().is_some_and(|x| x == ext) {
                out.push(path.strip_prefix(root()).expect("inside").to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The lines of a Markdown text outside fenced code blocks, with their numbers.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// A line without its `inline code` spans.
fn without_code_spans(line: &str) -> String {
    line.split('`').step_by(2).collect::<Vec<_>>().join(" ")
}

/// GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// A Markdown file's headings as written (without the #s).
fn headings(text: &str) -> Vec<String> {
    prose_lines(text)
        .into_iter()
        .filter(|(_, l)| l.starts_with('#'))
        .map(|(_, l)| l.trim_start_matches('#').trim().to_string())
        .collect()
}

/// The anchors GitHub gives a file's headings, duplicates numbered.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen = HashSet::new();
    for h in headings(text) {
        let base = slug(&h);
        let mut anchor = base.clone();
        let mut n = 0;
        while !seen.insert(anchor.clone()) {
            n += 1;
            anchor = format!("{base}-{n}");
        }
    }
    seen
}

/// The targets of a Markdown text's inline links `[text](target)`, with line numbers.
fn link_targets(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in prose_lines(text) {
        let line = without_code_spans(line);
        let mut rest = line.as_str();
        while let Some(at) = rest.find("](") {
            rest = &rest[at + 2..];
            if let Some(end) = rest.find(')') {
                out.push((n, rest[..end].trim().to_string()));
                rest = &rest[end..];
            }
        }
    }
    out
}

/// A relative link resolved against the repository (None for web and mail links).
/// Returns the target file (relative to the root) and its anchor, if any.
fn resolve(from: &Path, target: &str) -> Option<(PathBuf, Option<String>)> {
    if target.contains("://") || target.starts_with("mailto:") {
        return None;
    }
    let (file, anchor) = match target.split_once('#') {
        Some((f, a)) => (f, Some(a.to_string())),
        None => (target, None),
    };
    let path = if file.is_empty() {
        from.to_path_buf()
    } else {
        normalize(&from.parent().unwrap_or(Path::new("")).join(file))
    };
    Some((path, anchor))
}

/// `a/b/../c` -> `a/c`, without touching the file system.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Paths under [`CHECKED_PREFIXES`] a text names, each with what follows it
/// on the line (for section citations).
fn named_paths(text: &str) -> Vec<(String, String)> {
    let part_of_path = |c: char| c.is_ascii_alphanumeric() || "_./*-".contains(c);
    let mut out = Vec::new();
    for prefix in CHECKED_PREFIXES {
        for (at, _) in text.match_indices(prefix) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| part_of_path(c) || c == ':') {
                continue; // part of a longer path or a URL
            }
            let len = text[at..]
                .find(|c: char| !part_of_path(c))
                .unwrap_or(text.len() - at);
            let path = text[at..at + len].trim_end_matches('.').to_string();
            let after = text[at + path.len()..].lines().next().unwrap_or("");
            out.push((path, after.to_string()));
        }
    }
    out
}

/// Whether a named path exists; `*` matches within one file name.
fn exists(path: &str) -> bool {
    if !path.contains('*') {
        return root().join(path).exists();
    }
    let (dir, pattern) = path.rsplit_once('/').unwrap_or(("", path));
    let Some((head, tail)) = pattern.split_once('*') else {
        return false;
    };
    fs::read_dir(root().join(dir)).is_ok_and(|entries| {
        entries.filter_map(|e| e.ok()).any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.len() >= head.len() + tail.len() && name.starts_with(head) && name.ends_with(tail)
        })
    })
}

/// The comment text of a Rust file (`//`, `///`, `//!`, and trailing ` // `).
fn rust_comments(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let comment = if trimmed.starts_with("//") {
            Some(trimmed)
        } else {
            line.find(" // ").map(|at| &line[at + 1..])
        };
        if let Some(c) = comment {
            out.push_str(c);
            out.push('\n');
        }
    }
    out
}

/// What each checked text names that is not there: missing paths, and
/// citations of a document's section (its path, a comma, the heading in
/// double quotes) whose heading is not in the document.
fn problems_in(origin: &Path, text: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (path, after) in named_paths(text) {
        if !exists(&path) {
            problems.push(format!(
                "{}: names {path}, which does not exist",
                origin.display()
            ));
            continue;
        }
        let Some(title) = after.strip_prefix(", \"").and_then(|t| t.split('"').next()) else {
            continue;
        };
        if path.ends_with(".md")
            && !headings(&read(&root().join(&path)))
                .iter()
                .any(|h| h == title)
        {
            problems.push(format!(
                "{}: cites {path}, \"{title}\", which has no such heading",
                origin.display()
            ));
        }
    }
    problems
}

#[test]
fn readme_is_short() {
    let size = fs::metadata(root().join("README.md"))
        .expect("README.md")
        .len();
    assert!(
        size <= README_MAX_BYTES,
        "README.md is {size} bytes, more than {README_MAX_BYTES}: move reference material to docs/"
    );
}

#[test]
fn every_relative_link_resolves() {
    let mut problems = Vec::new();
    for doc in documents() {
        for (line, target) in link_targets(&read(&root().join(&doc))) {
            let Some((file, anchor)) = resolve(&doc, &target) else {
                continue;
            };
            let at = format!("{}:{line}: ({target})", doc.display());
            if !root().join(&file).exists() {
                problems.push(format!("{at}: {} does not exist", file.display()));
            } else if let Some(anchor) = anchor
                && file.extension().is_some_and(|x| x == "md")
                && !anchors(&read(&root().join(&file))).contains(&anchor)
            {
                problems.push(format!("{at}: {} has no heading #{anchor}", file.display()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "broken links:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_document_is_reachable_from_the_readme() {
    let mut seen = BTreeSet::from([PathBuf::from("README.md")]);
    let mut todo = VecDeque::from([PathBuf::from("README.md")]);
    while let Some(doc) = todo.pop_front() {
        for (_, target) in link_targets(&read(&root().join(&doc))) {
            if let Some((file, _)) = resolve(&doc, &target)
                && file.extension().is_some_and(|x| x == "md")
                && root().join(&file).is_file()
                && seen.insert(file.clone())
            {
                todo.push_back(file);
            }
        }
    }
    let unreachable: Vec<_> = (documents().into_iter())
        .filter(|d| !seen.contains(d))
        .map(|d| d.display().to_string())
        .collect();
    assert!(
        unreachable.is_empty(),
        "not reachable by links from README.md: {unreachable:?}"
    );
}

#[test]
fn paths_named_in_docs_and_comments_exist() {
    let mut problems = Vec::new();
    for doc in documents() {
        problems.extend(problems_in(&doc, &read(&root().join(&doc))));
    }
    for dir in COMMENTED_CODE {
        for file in files_under(dir, "rs") {
            problems.extend(problems_in(
                &file,
                &rust_comments(&read(&root().join(&file))),
            ));
        }
    }
    for file in files_under("scenarios", "toml") {
        let text = read(&root().join(&file));
        let comments: String = (text.lines())
            .filter_map(|l| l.find('#').map(|at| format!("{}\n", &l[at..])))
            .collect();
        problems.extend(problems_in(&file, &comments));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn nothing_cites_design_notes_the_repository_lacks() {
    let mut hits = Vec::new();
    let mut todo = vec![root()];
    while let Some(dir) = todo.pop() {
        for entry in fs::read_dir(&dir).expect("readable dir") {
            let path = entry.expect("readable dir entry").path();
            let rel = path.strip_prefix(root()).expect("inside").to_path_buf();
            let name = rel.to_string_lossy().into_owned();
            // Build output, git's data and run directories are not the repository's text.
            let generated = ["target", ".git"].contains(&name.as_str())
                || (name.starts_with("reports/") && name != "reports/README.md");
            if generated {
                continue;
            }
            if path.is_dir() {
                todo.push(path);
                continue;
            }
            let bytes = fs::read(&path).expect("readable file");
            let text = String::from_utf8_lossy(&bytes);
            for needle in FORBIDDEN {
                if text.contains(needle) {
                    hits.push(format!("{name} mentions {needle}"));
                }
            }
        }
    }
    assert!(
        hits.is_empty(),
        "cite docs/ or say the reason in place:\n{}",
        hits.join("\n")
    );
}

#[test]
fn lib_layout_names_every_module() {
    let lib = read(&root().join("src/lib.rs"));
    let layout: String = (lib.lines())
        .filter_map(|l| l.strip_prefix("//!"))
        .skip_while(|l| l.trim() != "# Layout")
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        !layout.is_empty(),
        "src/lib.rs has no `//! # Layout` section"
    );
    let missing: Vec<&str> = (lib.lines())
        .filter_map(|l| l.strip_prefix("pub mod ")?.strip_suffix(';'))
        .filter(|m| !layout.contains(&format!("[`{m}`]")))
        .collect();
    assert!(
        missing.is_empty(),
        "modules missing from src/lib.rs's Layout: {missing:?}"
    );
}

#[test]
fn the_checks_catch_what_they_look_for() {
    // A broken link, a missing path and a stale section citation are found.
    let doc = "See [x](nope.md) and [y](scenario.md#no-such-heading).\n";
    let targets: Vec<String> = link_targets(doc).into_iter().map(|(_, t)| t).collect();
    assert_eq!(targets, ["nope.md", "scenario.md#no-such-heading"]);
    assert!(!exists("docs/nope.md"));
    assert!(exists("scenarios/drill-*.toml"));
    assert!(!exists("scenarios/nope-*.toml"));
    let problems = problems_in(
        Path::new("x.rs"),
        "// see src/nowhere.rs and docs/measurement.md, \"No such section\"\n",
    );
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(slug("Overrides: `--set`"), "overrides---set");
    assert_eq!(slug("`[[groups]]`"), "groups");
    // Code spans and fenced blocks are not links.
    assert!(link_targets("`[a](b)`\n```\n[c](d)\n```\n").is_empty());
}
