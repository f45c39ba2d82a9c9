//! Headless Chromium (Debian's `chromium` package) as the person opening a
//! report page: the run report's and the capacity report's tests use it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The names Chromium goes by on PATH (Debian: chromium; others: the rest).
const NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// The first Chromium on PATH.
fn find() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| NAMES.map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Runs Chromium headless on `page`; returns its stdout.
pub fn chromium(profile: &Path, args: &[&str], page: &Path) -> String {
    let binary = find().unwrap_or_else(|| {
        panic!(
            "no {} on PATH: install it with `apt-get install -y chromium` (.ci/run does)",
            NAMES.join(" or ")
        )
    });
    let out = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!(
            "--user-data-dir={}",
            profile.join("profile").display()
        ))
        .args(args)
        .arg(format!("file://{}", page.canonicalize().unwrap().display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// (distinct colours, share of pixels that are not white) of a PNG.
pub fn png_stats(path: &Path) -> (usize, f64) {
    let file = std::fs::File::open(path)
        .unwrap_or_else(|e| panic!("no screenshot {}: {e}", path.display()));
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let distinct: HashSet<&[u8]> = pixels.iter().copied().collect();
    let non_white = pixels
        .iter()
        .filter(|p| p.iter().take(3).any(|&c| c < 250))
        .count();
    (distinct.len(), non_white as f64 / pixels.len() as f64)
}

/// Opens `page` as a person would: its screenshot is not blank and the DOM
/// Chromium built holds `plots` inline SVGs and no `<img>` that could break.
/// Returns that DOM.
pub fn assert_page_renders(page: &Path, plots: usize) -> String {
    let profile = tempfile::tempdir().unwrap();
    let shot = profile.path().join("shot.png");
    let arg = format!("--screenshot={}", shot.display());
    chromium(profile.path(), &[&arg, "--window-size=1280,2000"], page);
    let (distinct_colours, non_white_share) = png_stats(&shot);
    assert!(
        distinct_colours > 20,
        "screenshot looks blank: {distinct_colours} colours"
    );
    assert!(
        non_white_share > 0.02,
        "screenshot looks blank: {non_white_share}"
    );
    let dom = chromium(profile.path(), &["--dump-dom"], page);
    assert_eq!(
        dom.matches("<svg").count(),
        plots,
        "inline plots in the DOM"
    );
    assert!(!dom.contains("<img"), "no <img> that could break");
    dom
}
