//! Plots of a run, every one as SVG (inlined in `index.html`) and PNG (for
//! slides and chats), in `plots/` of the run folder. `charts` describes them
//! from `summary.json` and `timeseries.csv` (read back by `data`), `draw`
//! renders a description with plotters and the bundled DejaVu Sans font.
//! Called by `html::render_views` for a new run and by `streamdrill report`.

pub mod charts;
pub mod data;
pub mod draw;

use std::fs;
use std::path::{Path, PathBuf};

pub use charts::{histogram, run_charts, spectrum_points};
pub use data::Timeseries;
pub use draw::{Axis, Chart, Legend, Line, Marker, Rule, RuleAt, Window};

use crate::error::{Error, Result};

pub const PLOT_DIR: &str = "plots";

/// A rendered chart: its title and SVG text, plus the files written.
pub struct Rendered {
    pub title: String,
    pub svg: String,
    pub files: Vec<PathBuf>,
}

/// Writes `<dir>/plots/<name>.svg` and `.png` for each chart.
pub fn write_charts(dir: &Path, charts: &[Chart]) -> Result<Vec<Rendered>> {
    let plot_dir = dir.join(PLOT_DIR);
    fs::create_dir_all(&plot_dir).map_err(|source| Error::Write {
        path: plot_dir.clone(),
        source,
    })?;
    charts.iter().map(|c| write_chart(&plot_dir, c)).collect()
}

fn write_chart(plot_dir: &Path, chart: &Chart) -> Result<Rendered> {
    let svg = draw::svg_string(chart)?;
    let svg_path = plot_dir.join(format!("{}.svg", chart.name));
    fs::write(&svg_path, &svg).map_err(|source| Error::Write {
        path: svg_path.clone(),
        source,
    })?;
    let png_path = plot_dir.join(format!("{}.png", chart.name));
    draw::write_png(chart, &png_path)?;
    Ok(Rendered {
        title: chart.title.clone(),
        svg,
        files: vec![svg_path, png_path],
    })
}
