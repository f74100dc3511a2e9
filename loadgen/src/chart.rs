//! Self-contained HTML reports with line charts drawn as inline SVG.
//!
//! Pure functions: data in, `String` out. Every piece of text that goes into the output (titles,
//! labels, series names, `<pre>` blocks) is escaped here, so callers may pass anything,
//! including a command line a user typed. Any mode can describe its charts with [`Chart`] and
//! its page with [`Page`].
//!
//! What it deliberately does not do: use JavaScript, fetch anything (fonts, scripts, styles),
//! interpolate, smooth or resample data (a point is drawn where it is given, a missing value
//! breaks the line), or read files and clocks.

use std::fmt::Write as _;

/// Width of every chart's viewBox.
const WIDTH: f64 = 800.0;
/// Height of every chart's viewBox.
const HEIGHT: f64 = 300.0;
/// Plot area margins inside the viewBox: left (y labels), right, top (title, legend), bottom
/// (x labels).
const LEFT: f64 = 72.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 44.0;

/// How the y axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// From 0 (or the smallest value, if negative) to a round number above the largest.
    Linear,
    /// Whole decades around the positive values; values <= 0 are not drawn.
    Log,
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub(crate) struct Series<'a> {
    /// Shown in the legend.
    pub(crate) name: &'a str,
    /// A CSS colour, e.g. `#1f77b4`.
    pub(crate) color: &'a str,
    /// `(x, y)` in data units, x ascending; `None` (or a non-finite y) breaks the line.
    pub(crate) points: Vec<(f64, Option<f64>)>,
}

/// A line chart: several series over one x axis.
#[derive(Debug, Clone)]
pub(crate) struct Chart<'a> {
    pub(crate) title: &'a str,
    /// Unit of the x axis, shown as its name, e.g. `s`.
    pub(crate) x_unit: &'a str,
    /// Unit shown after every y tick label, e.g. `ms` or `req/s`.
    pub(crate) y_unit: &'a str,
    pub(crate) y_scale: Scale,
    pub(crate) series: Vec<Series<'a>>,
}

/// A block of a [`Page`], in order.
#[derive(Debug, Clone)]
pub(crate) enum Block<'a> {
    /// An `<h2>`.
    Heading(&'a str),
    /// A `<p>`.
    Text(&'a str),
    /// A chart, as inline SVG.
    Chart(Chart<'a>),
    /// Preformatted text (a summary table, a command line).
    Pre(&'a str),
}

/// A whole HTML document.
#[derive(Debug, Clone)]
pub(crate) struct Page<'a> {
    /// `<title>` and `<h1>`.
    pub(crate) title: &'a str,
    pub(crate) blocks: Vec<Block<'a>>,
}

/// Escapes text for HTML/SVG element content and double-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A command line as one string a POSIX shell would split back into the same words (words with
/// anything but `[A-Za-z0-9_./:=@%+,-]` are single-quoted). Not escaped for HTML: pass it to a
/// [`Block::Pre`].
pub(crate) fn shell_line(words: &[String]) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_./:=@%+,-".contains(c);
    words
        .iter()
        .map(|w| {
            if !w.is_empty() && w.chars().all(plain) {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The whole document: no scripts, no external resources.
pub(crate) fn html(page: &Page<'_>) -> String {
    let title = escape(page.title);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{title}</title>\n<style>\n\
         body {{ font-family: sans-serif; margin: 1.5em; max-width: 60em; color: #222; }}\n\
         svg {{ width: 100%; height: auto; display: block; margin: 0.5em 0 1.5em; }}\n\
         pre {{ background: #f6f6f6; padding: 0.8em; overflow-x: auto; \
         white-space: pre-wrap; word-break: break-all; }}\n\
         </style>\n</head>\n<body>\n<h1>{title}</h1>\n"
    );
    for block in &page.blocks {
        match block {
            Block::Heading(text) => {
                let _ = writeln!(out, "<h2>{}</h2>", escape(text));
            }
            Block::Text(text) => {
                let _ = writeln!(out, "<p>{}</p>", escape(text));
            }
            Block::Chart(chart) => out.push_str(&svg(chart)),
            Block::Pre(text) => {
                let _ = writeln!(out, "<pre>{}</pre>", escape(text));
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// One chart as an `<svg>` element with a fixed viewBox; every coordinate is inside it.
pub(crate) fn svg(chart: &Chart<'_>) -> String {
    let xs = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
    };
    let ys = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().filter_map(|p| p.1))
            .filter(|y| y.is_finite() && (chart.y_scale == Scale::Linear || *y > 0.0))
    };
    let x_axis = Axis::linear(
        xs().filter(|x| x.is_finite()).fold(f64::INFINITY, f64::min),
        xs().filter(|x| x.is_finite())
            .fold(f64::NEG_INFINITY, f64::max),
        false,
    );
    let (y_lo, y_hi) = (
        ys().fold(f64::INFINITY, f64::min),
        ys().fold(f64::NEG_INFINITY, f64::max),
    );
    let y_axis = match chart.y_scale {
        Scale::Linear => Axis::linear(y_lo, y_hi, true),
        Scale::Log => Axis::log(y_lo, y_hi),
    };
    let (plot_w, plot_h) = (WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let px = |x: f64| (LEFT + x_axis.fraction(x) * plot_w).clamp(LEFT, WIDTH - RIGHT);
    let py = |y: f64| (TOP + (1.0 - y_axis.fraction(y)) * plot_h).clamp(TOP, HEIGHT - BOTTOM);

    let mut out = String::new();
    let _ = writeln!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" \
         font-size=\"12\" role=\"img\">"
    );
    let _ = writeln!(out, "<title>{}</title>", escape(chart.title));
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"20\" font-size=\"15\" font-weight=\"bold\">{}</text>",
        escape(chart.title)
    );
    // Grid and tick labels.
    for &y in &y_axis.ticks {
        let v = py(y);
        let _ = writeln!(
            out,
            "<line x1=\"{LEFT}\" y1=\"{v:.1}\" x2=\"{:.1}\" y2=\"{v:.1}\" stroke=\"#ddd\"/>",
            WIDTH - RIGHT
        );
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{} {}</text>",
            LEFT - 6.0,
            v + 4.0,
            fmt_tick(y),
            escape(chart.y_unit)
        );
    }
    for &x in &x_axis.ticks {
        let h = px(x);
        let _ = writeln!(
            out,
            "<line x1=\"{h:.1}\" y1=\"{TOP}\" x2=\"{h:.1}\" y2=\"{:.1}\" stroke=\"#eee\"/>",
            HEIGHT - BOTTOM
        );
        let _ = writeln!(
            out,
            "<text x=\"{h:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            HEIGHT - BOTTOM + 16.0,
            fmt_tick(x)
        );
    }
    let _ = writeln!(
        out,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
        LEFT + plot_w / 2.0,
        HEIGHT - 8.0,
        escape(chart.x_unit)
    );
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" \
         stroke=\"#888\"/>"
    );
    if ys().next().is_none() {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#888\">no data</text>",
            LEFT + plot_w / 2.0,
            TOP + plot_h / 2.0
        );
    }
    // Lines: one polyline per run of consecutive drawable points; a lone point is a dot.
    for s in &chart.series {
        let color = escape(s.color);
        let drawable = |y: Option<f64>| {
            y.filter(|y| y.is_finite() && (chart.y_scale == Scale::Linear || *y > 0.0))
        };
        let mut run: Vec<(f64, f64)> = Vec::new();
        let flush = |run: &mut Vec<(f64, f64)>, out: &mut String| {
            match run.as_slice() {
                [] => {}
                [(x, y)] => {
                    let _ = writeln!(
                        out,
                        "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2\" fill=\"{color}\"/>"
                    );
                }
                points => {
                    let coords: Vec<String> = points
                        .iter()
                        .map(|(x, y)| format!("{x:.1},{y:.1}"))
                        .collect();
                    let _ = writeln!(
                        out,
                        "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" \
                         stroke-width=\"1.5\"/>",
                        coords.join(" ")
                    );
                }
            }
            run.clear();
        };
        for &(x, y) in &s.points {
            match drawable(y) {
                Some(y) if x.is_finite() => run.push((px(x), py(y))),
                _ => flush(&mut run, &mut out),
            }
        }
        flush(&mut run, &mut out);
    }
    // Legend, right-aligned in the top margin.
    let mut lx = WIDTH - RIGHT;
    for s in chart.series.iter().rev() {
        let w = 30.0 + 7.0 * s.name.chars().count() as f64;
        lx = (lx - w).max(LEFT);
        let _ = writeln!(
            out,
            "<line x1=\"{lx:.1}\" y1=\"26\" x2=\"{:.1}\" y2=\"26\" stroke=\"{}\" \
             stroke-width=\"3\"/><text x=\"{:.1}\" y=\"30\">{}</text>",
            lx + 14.0,
            escape(s.color),
            lx + 18.0,
            escape(s.name)
        );
    }
    out.push_str("</svg>\n");
    out
}

// === impl Axis ===

/// A value range and its tick marks.
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
}

impl Axis {
    /// `lo..hi` from 0 (unless something is negative) with round ticks; `round_up` widens `hi`
    /// to the next tick (y axes) rather than ending at the data (x axes). 0..1 when there is
    /// nothing to show.
    fn linear(lo: f64, hi: f64, round_up: bool) -> Self {
        let (mut lo, mut hi) = if lo.is_finite() && hi.is_finite() {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        lo = lo.min(0.0);
        if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
            hi = lo + 1.0;
        }
        let step = nice_step((hi - lo) / 5.0);
        lo = (lo / step).floor() * step;
        if round_up {
            hi = (hi / step).ceil() * step;
        }
        let n = ((hi - lo) / step + 1e-9).floor() as u64;
        let ticks = (0..=n).map(|i| lo + i as f64 * step).collect();
        Self {
            lo,
            hi,
            log: false,
            ticks,
        }
    }

    /// Whole decades around `lo..hi` (both > 0); 1..10 when there is nothing to show.
    fn log(lo: f64, hi: f64) -> Self {
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && lo > 0.0 {
            (lo, hi)
        } else {
            (1.0, 10.0)
        };
        let d_lo = lo.log10().floor() as i32;
        let d_hi = (hi.log10().ceil() as i32).max(d_lo + 1);
        let ticks = (d_lo..=d_hi).map(|d| 10f64.powi(d)).collect();
        Self {
            lo: 10f64.powi(d_lo),
            hi: 10f64.powi(d_hi),
            log: true,
            ticks,
        }
    }

    /// Where `v` falls, 0 at `lo` and 1 at `hi` (outside 0..=1 only for values out of range).
    fn fraction(&self, v: f64) -> f64 {
        let f = if self.log {
            (v.log10() - self.lo.log10()) / (self.hi.log10() - self.lo.log10())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        if f.is_finite() { f } else { 0.0 }
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * magnitude)
}

/// A tick value without float noise: `0.001`, `2.5`, `1000`.
fn fmt_tick(v: f64) -> String {
    let s = format!("{:.6}", v);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VOID: [&str; 1] = ["meta"];

    /// Tag names in order, panicking on unbalanced ones; `<` never appears outside a tag.
    fn assert_balanced(doc: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = doc;
        while let Some(i) = rest.find('<') {
            let end = rest[i..].find('>').expect("unterminated tag") + i;
            let tag = &rest[i + 1..end];
            assert!(!tag.contains('<'), "stray < in {tag}");
            rest = &rest[end + 1..];
            if tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if VOID.contains(&name.as_str()) {
                continue;
            }
            if tag.starts_with('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.as_str()), "at </{name}>");
            } else {
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert!(!rest.contains('>'), "stray > after the last tag");
    }

    /// Every number of every coordinate attribute.
    fn coordinates(svg: &str) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        for attr in ["x", "y", "x1", "y1", "x2", "y2", "cx", "cy", "points"] {
            let needle = format!(" {attr}=\"");
            for (i, _) in svg.match_indices(&needle) {
                let start = i + needle.len();
                let value = &svg[start..start + svg[start..].find('"').unwrap()];
                for n in value.split([' ', ',']) {
                    out.push((attr.to_owned(), n.parse::<f64>().unwrap()));
                }
            }
        }
        out
    }

    fn sample() -> Chart<'static> {
        Chart {
            title: "Latency <per second>",
            x_unit: "s",
            y_unit: "ms",
            y_scale: Scale::Log,
            series: vec![
                Series {
                    name: "p50",
                    color: "#1f77b4",
                    points: vec![
                        (1.0, Some(0.8)),
                        (2.0, Some(1.2)),
                        (3.0, None),
                        (4.0, Some(0.9)),
                    ],
                },
                Series {
                    name: "p99 & more",
                    color: "#d62728",
                    points: vec![(1.0, Some(12.0)), (2.0, Some(250.0)), (3.0, Some(0.0))],
                },
            ],
        }
    }

    #[test]
    fn svg_is_balanced_and_inside_the_view_box() {
        for scale in [Scale::Log, Scale::Linear] {
            let chart = Chart {
                y_scale: scale,
                ..sample()
            };
            let svg = svg(&chart);
            assert_balanced(&svg);
            let coords = coordinates(&svg);
            assert!(coords.len() > 20, "{svg}");
            for (attr, v) in coords {
                let limit = if attr.starts_with('y') || attr == "cy" {
                    HEIGHT
                } else if attr == "points" {
                    WIDTH.max(HEIGHT)
                } else {
                    WIDTH
                };
                assert!((0.0..=limit).contains(&v), "{attr}={v} in {svg}");
            }
            // Each polyline point is an x,y pair inside the plot area.
            for line in svg.lines().filter(|l| l.starts_with("<polyline")) {
                let pts = line.split('"').nth(1).unwrap();
                for pair in pts.split(' ') {
                    let (x, y) = pair.split_once(',').unwrap();
                    let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                    assert!((LEFT..=WIDTH - RIGHT).contains(&x), "{pair}");
                    assert!((TOP..=HEIGHT - BOTTOM).contains(&y), "{pair}");
                }
            }
            assert!(svg.contains("Latency &lt;per second&gt;"), "{svg}");
            assert!(svg.contains("p99 &amp; more"), "{svg}");
        }
        let log = svg(&sample());
        // The gap at x = 3 splits p50 into a line and a lone dot; the 0 of p99 is not drawn on a
        // log axis.
        assert_eq!(log.matches("<polyline").count(), 2, "{log}");
        assert_eq!(log.matches("<circle").count(), 1, "{log}");
        // Decades from 0.1 to 1000 ms.
        for tick in [">0.1 ms<", ">1 ms<", ">10 ms<", ">100 ms<", ">1000 ms<"] {
            assert!(log.contains(tick), "{tick} in {log}");
        }
    }

    #[test]
    fn empty_series_and_no_series() {
        for series in [
            vec![],
            vec![Series {
                name: "ok",
                color: "green",
                points: vec![],
            }],
            vec![Series {
                name: "ok",
                color: "green",
                points: vec![(0.0, None), (1.0, Some(f64::NAN))],
            }],
        ] {
            for y_scale in [Scale::Linear, Scale::Log] {
                let chart = Chart {
                    title: "t",
                    x_unit: "s",
                    y_unit: "req/s",
                    y_scale,
                    series: series.clone(),
                };
                let svg = svg(&chart);
                assert_balanced(&svg);
                assert!(svg.contains("no data"), "{svg}");
                assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
                assert!(
                    !svg.contains("<polyline") && !svg.contains("<circle"),
                    "{svg}"
                );
            }
        }
    }

    #[test]
    fn page_escapes_every_text() {
        let cmd = shell_line(&[
            "rampart-loadgen".into(),
            "http".into(),
            "--path".into(),
            "/a?<script>alert('x')</script>&b".into(),
        ]);
        let page = Page {
            title: "run </title><script>",
            blocks: vec![
                Block::Heading("<h1>"),
                Block::Text("a & b"),
                Block::Chart(sample()),
                Block::Pre("table | <b>"),
                Block::Pre(&cmd),
            ],
        };
        let doc = html(&page);
        assert_balanced(&doc);
        assert!(!doc.contains("<script"), "{doc}");
        assert!(!doc.contains("<b>"), "{doc}");
        assert!(doc.contains("&lt;script&gt;alert("), "{doc}");
        assert!(
            doc.contains("<title>run &lt;/title&gt;&lt;script&gt;</title>"),
            "{doc}"
        );
        assert!(doc.contains("a &amp; b"), "{doc}");
        assert!(doc.starts_with("<!DOCTYPE html>"), "{doc}");
        assert_eq!(doc.matches("<svg").count(), 1);
        // Nothing is fetched.
        assert!(!doc.contains("src=") && !doc.contains("href="), "{doc}");
    }

    #[test]
    fn shell_line_quotes_what_a_shell_would_split() {
        let words: Vec<String> = ["a", "b c", "", "it's", "--x=1"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(shell_line(&words), r"a 'b c' '' 'it'\''s' --x=1");
    }

    #[test]
    fn axes() {
        let a = Axis::linear(0.0, 37.0, true);
        assert_eq!((a.lo, a.hi), (0.0, 40.0));
        assert_eq!(a.ticks, [0.0, 10.0, 20.0, 30.0, 40.0]);
        let a = Axis::linear(5.0, 5.0, true);
        assert_eq!((a.lo, a.hi), (0.0, 5.0));
        // An x axis ends at the data.
        let a = Axis::linear(1.0, 30.3, false);
        assert_eq!((a.lo, a.hi), (0.0, 30.3));
        assert_eq!(a.ticks, [0.0, 10.0, 20.0, 30.0]);
        let l = Axis::log(0.35, 120.0);
        assert_eq!(l.ticks.len(), 5);
        assert!((l.lo - 0.1).abs() < 1e-12 && (l.hi - 1000.0).abs() < 1e-9);
        assert_eq!(fmt_tick(0.1 + 0.2), "0.3");
        assert_eq!(fmt_tick(1000.0), "1000");
        assert_eq!(nice_step(0.7), 1.0);
        assert_eq!(nice_step(13.0), 20.0);
    }
}
