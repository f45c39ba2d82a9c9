//! A capacity directory's own files: `capacity.json` (pretty, the source of
//! truth), and the views rendered from it, `plots/` and `index.html`. The
//! steps' run directories under `steps/` are written by their runs.
//! `streamdrill capacity` calls `write_capacity`; `streamdrill report DIR`
//! calls `read_capacity`, then `render_capacity_views`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::{CAPACITY_FILE, CAPACITY_SCHEMA_VERSION, Capacity};
use crate::error::{Error, Result};
use crate::report::html::{INDEX_FILE, write_text};
use crate::report::plot;

/// Writes `capacity.json` and the views into `dir` (created if missing);
/// returns the paths written, `capacity.json` first and `index.html` last.
pub fn write_capacity(dir: &Path, capacity: &Capacity) -> Result<Vec<PathBuf>> {
    let mut written = vec![write_record(dir, capacity)?];
    written.extend(render_capacity_views(dir, capacity)?);
    Ok(written)
}

/// Writes `capacity.json` alone into `dir` (created if missing), as a
/// search does after every step; returns its path.
pub fn write_record(dir: &Path, capacity: &Capacity) -> Result<PathBuf> {
    fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(CAPACITY_FILE);
    let json = serde_json::to_string_pretty(capacity).map_err(|e| Error::Write {
        path: path.clone(),
        source: io::Error::from(e),
    })?;
    write_text(&path, &(json + "\n"))?;
    Ok(path)
}

/// Draws the plots into `dir/plots/` and writes `dir/index.html`; returns
/// their paths. Reads nothing but `capacity`, so an old search re-renders.
pub fn render_capacity_views(dir: &Path, capacity: &Capacity) -> Result<Vec<PathBuf>> {
    let rendered = plot::write_charts(dir, &super::charts::capacity_charts(capacity))?;
    let mut written: Vec<PathBuf> = (rendered.iter())
        .flat_map(|r| r.files.iter().cloned())
        .collect();
    let path = dir.join(INDEX_FILE);
    write_text(&path, &super::html::index_html(capacity, &rendered))?;
    written.push(path);
    Ok(written)
}

/// Reads a `capacity.json`; one written by a newer streamdrill (a higher
/// schema version) is refused rather than misread.
pub fn read_capacity(path: &Path) -> Result<Capacity> {
    let read_err = |source| Error::Read {
        path: path.to_path_buf(),
        source,
    };
    let invalid = |e: String| read_err(io::Error::new(io::ErrorKind::InvalidData, e));
    let text = fs::read_to_string(path).map_err(read_err)?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    let version = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64);
    if version.is_some_and(|v| v > u64::from(CAPACITY_SCHEMA_VERSION)) {
        return Err(invalid(format!(
            "schema_version {} is newer than this streamdrill reads ({CAPACITY_SCHEMA_VERSION})",
            version.unwrap_or_default()
        )));
    }
    serde_json::from_value(value).map_err(|e| invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::capacity::example::example_capacity;

    /// Every plot's SVG inline, once.
    const PLOTS: usize = 5;

    fn written() -> (tempfile::TempDir, Capacity, String) {
        let dir = tempfile::tempdir().unwrap();
        let capacity = example_capacity();
        let files = write_capacity(dir.path(), &capacity).unwrap();
        let names: Vec<String> = (files.iter())
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names.first().map(String::as_str), Some(CAPACITY_FILE));
        assert_eq!(names.last().map(String::as_str), Some(INDEX_FILE));
        assert!(
            names.contains(&"plots/produce-latency.png".to_string()),
            "{names:?}"
        );
        assert!(
            names.contains(&"plots/lag-slope.svg".to_string()),
            "{names:?}"
        );
        let html = fs::read_to_string(dir.path().join(INDEX_FILE)).unwrap();
        (dir, capacity, html)
    }

    #[test]
    fn capacity_json_round_trips_and_ends_with_a_newline() {
        let (dir, capacity, _) = written();
        let path = dir.path().join(CAPACITY_FILE);
        assert!(fs::read_to_string(&path).unwrap().ends_with("}\n"));
        assert_eq!(read_capacity(&path).unwrap(), capacity);
        let mut newer = serde_json::to_value(&capacity).unwrap();
        newer["schema_version"] = (CAPACITY_SCHEMA_VERSION + 1).into();
        fs::write(&path, newer.to_string()).unwrap();
        let err = read_capacity(&path).unwrap_err().to_string();
        assert!(err.contains("newer than this streamdrill reads"), "{err}");
        assert!(matches!(
            read_capacity(&dir.path().join("nope.json")),
            Err(Error::Read { .. })
        ));
    }

    #[test]
    fn views_rerender_the_same_from_capacity_json_alone() {
        let (dir, _, html) = written();
        let again = tempfile::tempdir().unwrap();
        let capacity = read_capacity(&dir.path().join(CAPACITY_FILE)).unwrap();
        render_capacity_views(again.path(), &capacity).unwrap();
        assert_eq!(
            fs::read_to_string(again.path().join(INDEX_FILE)).unwrap(),
            html
        );
        for plot in ["plots/cpu.svg", "plots/e2e-latency.png"] {
            let (a, b) = (dir.path().join(plot), again.path().join(plot));
            assert!(
                fs::read(a).unwrap() == fs::read(b).unwrap(),
                "{plot} differs"
            );
        }
    }

    #[test]
    fn page_shows_headline_knee_limit_sizing_and_every_plot() {
        let (_dir, _, html) = written();
        for text in [
            "orders capacity <small>orders-capacity-20261205T101500Z</small>",
            "max sustainable rate: 21,000 events/s (confirmed), limited by group billing: \
             lag grows 412/s (limit 220/s)",
            "at least 26,000 events/s (confirmed): the harness was the limit",
            "The server sustains at least 26,000 events/s",
            "Servers side by side",
            "<td>valkey 9.1.2</td><td>26,000</td><td>harness-limited (at least)</td>",
            "<tr class=\"knee\"><td><a href=\"steps/1/10-confirm-21000/index.html\">10</a></td>\
             <td>confirm</td><td>21,000</td>",
            "<a href=\"steps/1/08-bisect-22000/index.html\">8</a>",
            "<td>FAIL (harness): achieved 97.8 %</td>",
            "<li>step 9 (27,000/s, FAIL (harness)): achieved 26,400/s of 27,000/s offered",
            "Sizing: redis 7.0.15",
            "<td>bytes per entry, stream</td><td>612 B</td>",
            "<td>bytes per entry, stream</td><td>unknown</td>",
            "MAXLEN 18,000,000",
            "MINID now_ms − 3,600,000",
            "Catching up after an outage",
            "One stream is one key, and one key lives on one shard",
            "knee 21,000/s",
            "SLO e2e p99 50ms",
            "Terminal summary",
        ] {
            assert!(html.contains(text), "missing {text:?}");
        }
        assert_eq!(html.matches("<svg").count(), PLOTS);
        for bad in ["NaN", "inf<", ">inf", "<script", "<img", "href=\"http"] {
            assert!(!html.contains(bad), "page holds {bad:?}");
        }
    }

    #[test]
    fn absent_figures_read_as_unknown_or_a_dash() {
        let mut c = example_capacity();
        c.servers.truncate(1);
        let server = &mut c.servers[0];
        let step = &mut server.steps[0];
        step.groups[0].lag_slope_per_s = None;
        step.groups[0].e2e = Default::default();
        let z = server.sizing.as_mut().unwrap();
        (z.bytes_per_entry, z.pending_bytes_per_entry) = (None, None);
        z.retention[0].bytes = None;
        z.drain[0].drain_s = None;
        let html = super::super::html::index_html(&c, &[]);
        assert!(!html.contains("Servers side by side"), "one server");
        let first = html.split(">1</a></td><td>probe</td>").nth(1).unwrap();
        let first = first.split("</tr>").next().unwrap();
        // offered, achieved, verdict, produce p99, e2e billing (no values) and
        // audit, lag billing (unknown) and audit, limit, redis CPU (unknown), harness CPU
        assert_eq!(
            first,
            "<td>2,000</td><td>1,999 (100.0 %)</td><td>pass</td><td>936µs</td><td>-</td>\
             <td>2.36ms</td><td>-</td><td>-0.1</td><td>50</td><td>-</td><td>0.21</td>"
        );
        for text in [
            "<td>pending bytes per entry</td><td>unknown</td>",
            "<td>1 h</td><td>18,000,000</td><td>unknown</td>",
            "<td>never: no spare rate</td>",
        ] {
            assert!(html.contains(text), "missing {text:?}");
        }
        assert!(!html.contains("<td>0 B</td>"), "no silent zero");
    }
}
