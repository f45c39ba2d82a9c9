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
    let dom = browser::assert_page_renders(&dir.path().join("index.html"), PLOTS);
    for text in [
        "max sustainable rate: 21,000 events/s (confirmed)",
        "the harness was the limit",
        "Servers side by side",
        "Sizing: valkey 9.1.2",
    ] {
        assert!(dom.contains(text), "the rendered page lacks {text:?}");
    }
}
