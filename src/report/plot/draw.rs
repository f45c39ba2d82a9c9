//! Draws one `Chart` (a plain description of a line chart) with plotters, as
//! SVG text or a PNG file. Log axes are drawn on log10-transformed data with
//! labels mapped back, so every chart uses one linear coordinate type.
//! `charts` builds the descriptions; nothing else here knows about runs.

use std::io;
use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};

/// Pixel size of every plot: readable on a laptop screen and in the HTML page.
pub const SIZE_PX: (u32, u32) = (1000, 540);
/// The font family name the bundled font is registered under.
const FONT: &str = "sans-serif";
/// DejaVu Sans (Bitstream Vera license, see assets/DejaVuSans-LICENSE.txt):
/// bundled so PNG text renders on a machine without any font installed.
static FONT_BYTES: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");

/// How an axis maps values: `Log10` and `Spectrum` expect log10-transformed data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Axis {
    Linear,
    /// Data are log10 of microseconds; labels read "100µs", "1ms".
    LogMicros,
    /// Data are log10(1/(1-p)); labels read "90%", "99%".
    Spectrum,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Line {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

/// A shaded span of the x axis with a label (warmup, drain, a fault).
#[derive(Clone, Debug, PartialEq)]
pub struct Window {
    pub label: String,
    pub start: f64,
    pub end: f64,
    pub fault: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// File stem: `plots/<name>.svg` and `.png`.
    pub name: String,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_axis: Axis,
    pub y_axis: Axis,
    pub lines: Vec<Line>,
    pub windows: Vec<Window>,
}

/// Registers the bundled font once; plotters panics on bitmap text without one.
pub fn ensure_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are a valid TrueType font compiled into the binary.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, FONT_BYTES);
    });
}

pub fn svg_string(chart: &Chart) -> Result<String> {
    ensure_font();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE_PX).into_drawing_area();
        draw(&root, chart).map_err(|e| plot_error(Path::new(&chart.name), e))?;
        root.present()
            .map_err(|e| plot_error(Path::new(&chart.name), e))?;
    }
    Ok(svg)
}

pub fn write_png(chart: &Chart, path: &Path) -> Result<()> {
    ensure_font();
    let root = BitMapBackend::new(path, SIZE_PX).into_drawing_area();
    draw(&root, chart).map_err(|e| plot_error(path, e))?;
    root.present().map_err(|e| plot_error(path, e))
}

fn plot_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Write {
        path: path.to_path_buf(),
        source: io::Error::other(format!("plotting failed: {e}")),
    }
}

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, chart: &Chart) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (x_range, y_range) = ranges(chart);
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, (FONT, 22))
        .margin(14)
        .margin_right(36)
        .x_label_area_size(48)
        .y_label_area_size(78)
        .build_cartesian_2d(x_range.clone(), y_range.clone())?;
    let (x_fmt, y_fmt) = (formatter(chart.x_axis), formatter(chart.y_axis));
    ctx.configure_mesh()
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .x_labels(label_count(chart.x_axis, &x_range))
        .y_labels(label_count(chart.y_axis, &y_range))
        .x_label_formatter(&x_fmt)
        .y_label_formatter(&y_fmt)
        .label_style((FONT, 14))
        .axis_desc_style((FONT, 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for w in &chart.windows {
        let color = if w.fault {
            RED
        } else {
            RGBColor(120, 120, 120)
        };
        let (start, end) = (w.start.max(x_range.start), w.end.min(x_range.end));
        if end <= start {
            continue;
        }
        let rect = Rectangle::new(
            [(start, y_range.start), (end, y_range.end)],
            color.mix(0.12).filled(),
        );
        ctx.draw_series(std::iter::once(rect))?;
        let style = (FONT, 13).into_font().color(&color);
        // Labelled at the bottom: the legend owns the top right corner.
        let label =
            EmptyElement::at((start, y_range.start)) + Text::new(w.label.clone(), (4, -18), style);
        ctx.draw_series(std::iter::once(label))?;
    }
    for (i, line) in chart.lines.iter().enumerate() {
        let color = palette(i);
        let style = color.stroke_width(2);
        let points = line.points.iter().copied();
        let series = if line.dashed {
            ctx.draw_series(DashedLineSeries::new(points, 6, 4, style))?
        } else {
            ctx.draw_series(LineSeries::new(points, style))?
        };
        series
            .label(line.name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    if !chart.lines.is_empty() {
        ctx.configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font((FONT, 13))
            .draw()?;
    }
    Ok(())
}

/// Data ranges with headroom on top for the legend; degenerate ranges widened.
fn ranges(chart: &Chart) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let points = chart.lines.iter().flat_map(|l| l.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    for w in &chart.windows {
        (x0, x1) = (x0.min(w.start), x1.max(w.end));
    }
    if x0 > x1 {
        (x0, x1) = (0.0, 1.0);
    }
    if y0 > y1 {
        (y0, y1) = (0.0, 1.0);
    }
    let (x0, x1) = match chart.x_axis {
        Axis::Linear => (x0.min(0.0), x1.max(x0 + 1.0)),
        _ => (x0.floor(), x1.ceil().max(x0.floor() + 1.0)),
    };
    let (y0, y1) = match chart.y_axis {
        Axis::Linear => (y0.min(0.0), if y1 > 0.0 { y1 * 1.3 } else { 1.0 }),
        _ => (y0.floor(), (y1 + 0.3).ceil()),
    };
    (x0..x1, y0..y1)
}

fn label_count(axis: Axis, range: &std::ops::Range<f64>) -> usize {
    match axis {
        Axis::Linear => 10,
        // One label per decade, so log labels land on 1, 10, 100 (or 90%, 99%).
        _ => (range.end - range.start).round() as usize + 1,
    }
}

fn formatter(axis: Axis) -> impl Fn(&f64) -> String {
    move |v: &f64| match axis {
        Axis::Linear => linear_label(*v),
        Axis::LogMicros => super::super::format_us(10f64.powf(*v).round() as u64),
        Axis::Spectrum => spectrum_label(*v),
    }
}

/// "1.5k", "20k", "3M": short labels for counts and rates.
pub fn linear_label(v: f64) -> String {
    let a = v.abs();
    let (scaled, unit) = if a >= 1e9 {
        (v / 1e9, "G")
    } else if a >= 1e6 {
        (v / 1e6, "M")
    } else if a >= 1e4 {
        (v / 1e3, "k")
    } else {
        (v, "")
    };
    let text = format!("{scaled:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}{unit}")
}

/// The percentile at x = log10(1/(1-p)): 1 -> "90%", 3 -> "99.9%".
pub fn spectrum_label(x: f64) -> String {
    let percent = 100.0 * (1.0 - 10f64.powf(-x));
    let decimals = (x.round() as i64 - 2).clamp(0, 6) as usize;
    format!("{percent:.decimals$}%")
}

/// Distinct, colour-blind-friendly colours (Okabe-Ito, then a few more).
pub fn palette(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 10] = [
        RGBColor(0, 114, 178),
        RGBColor(213, 94, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(230, 159, 0),
        RGBColor(86, 180, 233),
        RGBColor(0, 0, 0),
        RGBColor(240, 228, 66),
        RGBColor(140, 86, 75),
        RGBColor(127, 127, 127),
    ];
    COLORS[i % COLORS.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> Chart {
        Chart {
            name: "t".into(),
            title: "Throughput".into(),
            x_label: "time since start (s)".into(),
            y_label: "events/s".into(),
            x_axis: Axis::Linear,
            y_axis: Axis::Linear,
            lines: vec![Line {
                name: "acked".into(),
                points: (0..10)
                    .map(|i| (f64::from(i), f64::from(i * 100)))
                    .collect(),
                dashed: false,
            }],
            windows: vec![Window {
                label: "kill billing/0".into(),
                start: 3.0,
                end: 5.0,
                fault: true,
            }],
        }
    }

    #[test]
    fn labels_read_naturally() {
        assert_eq!(spectrum_label(0.0), "0%");
        assert_eq!(spectrum_label(1.0), "90%");
        assert_eq!(spectrum_label(2.0), "99%");
        assert_eq!(spectrum_label(3.0), "99.9%");
        assert_eq!(spectrum_label(5.0), "99.999%");
        assert_eq!(linear_label(20_000.0), "20k");
        assert_eq!(linear_label(1_500.0), "1500");
        assert_eq!(linear_label(2.5e6), "2.5M");
        assert_eq!(formatter(Axis::LogMicros)(&3.0), "1ms");
    }

    #[test]
    fn svg_has_labels_lines_and_fault_window() {
        let svg = svg_string(&chart()).unwrap();
        for text in [
            "Throughput",
            "time since start (s)",
            "events/s",
            "acked",
            "kill billing/0",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        assert!(svg.contains("<polyline"), "no line drawn");
    }

    #[test]
    fn png_renders_text_and_empty_charts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.png");
        write_png(&chart(), &path).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() > 5_000);
        let empty = Chart {
            lines: vec![],
            windows: vec![],
            ..chart()
        };
        write_png(&empty, &path).unwrap();
        svg_string(&Chart {
            y_axis: Axis::LogMicros,
            ..empty
        })
        .unwrap();
    }
}
