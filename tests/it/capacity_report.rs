//! The capacity report as a person opens it: the example search (two
//! servers, probe, bisect and confirmation steps, a harness-limited result)
//! written to a directory, its `index.html` rendered in headless Chromium.
//! The views' content is unit-tested in `src/report/capacity/`.

use streamdrill::report::capacity::example::example_capacity;
use streamdrill::report::capacity::{CAPACITY_FILE, read_capacity, write_capacity};

use crate::browser;

/// The plots `index.html` inlines.
const PLOTS: usize = 5;

#[test]
fn capacity_index_html_renders_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let capacity = example_capacity();
    write_capacity(dir.path(), &capacity).unwrap();
    let read = read_capacity(&dir.path().join(CAPACITY_FILE)).unwrap();
    assert_eq!(read, capacity);
    let page = dir.path().join("index.html");
    let profile = tempfile::tempdir().unwrap();
    let shot = profile.path().join("shot.png");
    let arg = format!("--screenshot={}", shot.display());
    browser::chromium(profile.path(), &[&arg, "--window-size=1280,2000"], &page);
    let (distinct_colours, non_white_share) = browser::png_stats(&shot);
    assert!(
        distinct_colours > 20,
        "screenshot looks blank: {distinct_colours} colours"
    );
    assert!(
        non_white_share > 0.02,
        "screenshot looks blank: {non_white_share}"
    );
    let dom = browser::chromium(profile.path(), &["--dump-dom"], &page);
    assert_eq!(
        dom.matches("<svg").count(),
        PLOTS,
        "inline plots in the DOM"
    );
    for text in [
        "max sustainable rate: 21,000 events/s (confirmed)",
        "the harness was the limit",
        "Servers side by side",
        "Sizing: valkey 9.1.2",
    ] {
        assert!(dom.contains(text), "the rendered page lacks {text:?}");
    }
    assert!(!dom.contains("<img"), "no <img> that could break");
}
