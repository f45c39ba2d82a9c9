//! Draws one `Chart` (a plain description of a line chart) with plotters, as
//! SVG text or a PNG file. Log axes are drawn on log10-transformed data with
//! labels mapped back, so every chart uses one linear coordinate type.
//! `charts` (and `capacity::charts`) build the descriptions; nothing here
//! knows about runs.

use std::io;
use std::path::Path;

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;
use plotters::style::text_anchor::{HPos, Pos, VPos};

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
    /// One per point when each point is marked (a capacity search's steps);
    /// empty for a plain line.
    pub markers: Vec<Marker>,
}

/// How one point of a line is marked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Marker {
    Filled,
    Hollow,
    Cross,
}

/// A labelled reference line across the whole plot: an objective at some y,
/// a knee at some x. The value is in the axis's data units (log10 on log axes).
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    pub label: String,
    pub at: RuleAt,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RuleAt {
    /// A vertical line.
    X(f64),
    /// A horizontal line.
    Y(f64),
}

/// Which top corner the legend takes: the one the data leave empty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Legend {
    /// Time series, whose recent values sit on the right.
    #[default]
    UpperRight,
    /// Curves that rise to the right (latency or CPU against load).
    UpperLeft,
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
    pub rules: Vec<Rule>,
    pub legend: Legend,
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
        .margin(MARGIN_PX)
        .margin_right(MARGIN_RIGHT_PX)
        .x_label_area_size(48)
        .y_label_area_size(Y_LABEL_AREA_PX)
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
    for (i, rule) in chart.rules.iter().enumerate() {
        draw_rule(&mut ctx, rule, i, (&x_range, &y_range))?;
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
        draw_markers(&mut ctx, line, color)?;
    }
    if !chart.lines.is_empty() {
        let position = match chart.legend {
            Legend::UpperRight => SeriesLabelPosition::UpperRight,
            Legend::UpperLeft => SeriesLabelPosition::UpperLeft,
        };
        ctx.configure_series_labels()
            .position(position)
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(180, 180, 180))
            .label_font((FONT, 13))
            .draw()?;
    }
    Ok(())
}

type Ctx<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Pixels between the labels of successive vertical rules, so that two
/// knees close together stay readable.
const RULE_LABEL_STEP_PX: i32 = 17;

/// Around the chart, and on the right where the last x label overhangs.
const MARGIN_PX: u32 = 14;
const MARGIN_RIGHT_PX: u32 = 36;
/// Room for the y labels and the axis description.
const Y_LABEL_AREA_PX: u32 = 78;
/// Width of the plotting area in pixels, near enough to place labels.
const PLOT_WIDTH_PX: f64 = (SIZE_PX.0 - Y_LABEL_AREA_PX - MARGIN_PX - MARGIN_RIGHT_PX) as f64;
/// Average advance of a 13 px DejaVu Sans character, for the same purpose.
const LABEL_CHAR_PX: f64 = 7.5;

/// A dashed line across the plot, objectives (y) in red, knees (x) in dark
/// grey. A knee's label hangs from the top beside the line, on its left when
/// the right has no room; an objective's sits above its left end, where
/// curves that rise with load leave space.
fn draw_rule<DB: DrawingBackend>(
    ctx: &mut Ctx<'_, DB>,
    rule: &Rule,
    i: usize,
    (x_range, y_range): (&std::ops::Range<f64>, &std::ops::Range<f64>),
) -> DrawResult<DB> {
    let (color, ends, anchor, offset, pos) = match rule.at {
        RuleAt::X(x) => {
            let room_px = (x_range.end - x) / (x_range.end - x_range.start) * PLOT_WIDTH_PX;
            let fits = room_px > rule.label.chars().count() as f64 * LABEL_CHAR_PX + 10.0;
            let (dx, h) = if fits {
                (5, HPos::Left)
            } else {
                (-5, HPos::Right)
            };
            (
                RGBColor(70, 70, 70),
                [(x, y_range.start), (x, y_range.end)],
                (x, y_range.end),
                (dx, 4 + RULE_LABEL_STEP_PX * i as i32),
                Pos::new(h, VPos::Top),
            )
        }
        RuleAt::Y(y) => (
            RGBColor(178, 34, 34),
            [(x_range.start, y), (x_range.end, y)],
            (x_range.start, y),
            (6, -4),
            Pos::new(HPos::Left, VPos::Bottom),
        ),
    };
    let style = color.stroke_width(2);
    ctx.draw_series(DashedLineSeries::new(ends, 10, 5, style))?;
    let font = (FONT, 13).into_font().color(&color).pos(pos);
    let label = EmptyElement::at(anchor) + Text::new(rule.label.clone(), offset, font);
    ctx.draw_series(std::iter::once(label))?;
    Ok(())
}

/// Marker radius in pixels: visible on the line, small beside the labels.
const MARKER_PX: i32 = 4;

/// Each marked point: filled and hollow circles, crosses.
fn draw_markers<DB: DrawingBackend>(
    ctx: &mut Ctx<'_, DB>,
    line: &Line,
    color: RGBColor,
) -> DrawResult<DB> {
    let marked = || {
        line.points
            .iter()
            .copied()
            .zip(line.markers.iter().copied())
    };
    let of = |kind| marked().filter(move |(_, m)| *m == kind).map(|(p, _)| p);
    ctx.draw_series(of(Marker::Filled).map(|p| Circle::new(p, MARKER_PX, color.filled())))?;
    ctx.draw_series(of(Marker::Hollow).map(|p| {
        EmptyElement::at(p)
            + Circle::new((0, 0), MARKER_PX, WHITE.filled())
            + Circle::new((0, 0), MARKER_PX, color.stroke_width(2))
    }))?;
    ctx.draw_series(
        of(Marker::Cross).map(|p| Cross::new(p, MARKER_PX + 1, color.stroke_width(2))),
    )?;
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
    for r in &chart.rules {
        match r.at {
            RuleAt::X(x) if x.is_finite() => (x0, x1) = (x0.min(x), x1.max(x)),
            RuleAt::Y(y) if y.is_finite() => (y0, y1) = (y0.min(y), y1.max(y)),
            _ => {}
        }
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
                markers: Vec::new(),
            }],
            windows: vec![Window {
                label: "kill billing/0".into(),
                start: 3.0,
                end: 5.0,
                fault: true,
            }],
            rules: Vec::new(),
            legend: Legend::UpperRight,
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
    fn svg_has_rules_and_markers() {
        let mut c = chart();
        c.legend = Legend::UpperLeft;
        c.lines[0].markers = [Marker::Filled, Marker::Hollow, Marker::Cross]
            .into_iter()
            .cycle()
            .take(10)
            .collect();
        c.rules = vec![
            Rule {
                label: "knee 8/s".into(),
                at: RuleAt::X(8.5),
            },
            Rule {
                label: "SLO 2ms".into(),
                at: RuleAt::Y(1_500.0),
            },
        ];
        let (_, y_range) = ranges(&c);
        assert!(
            y_range.end >= 1_500.0,
            "a rule above the data stays in view"
        );
        let svg = svg_string(&c).unwrap();
        for text in ["knee 8/s", "SLO 2ms", "<circle"] {
            assert!(svg.contains(text), "missing {text}");
        }
        // 4 filled, 3 hollow drawn twice (white fill, then the ring).
        assert_eq!(svg.matches("<circle").count(), 4 + 2 * 3);
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
