//! Latency-by-percentile chart as a small hand-written SVG, laid out like the HdrHistogram
//! plotter: x is `1/(1-percentile)` on a log scale (labelled 0%, 90%, 99%, 99.9%, ...), y is the
//! latency on a linear scale, one curve per distribution, with a legend.

use std::fmt::Write as _;
use std::io::{self, Write};

use shardnet::hgrm::Row;

/// One curve.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// The distribution's rows (value in the chart's unit).
    pub rows: Vec<Row>,
}

const W: f64 = 900.0;
const H: f64 = 560.0;
const LEFT: f64 = 90.0;
const RIGHT: f64 = 870.0;
const TOP: f64 = 60.0;
const BOTTOM: f64 = 480.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Writes the chart of `series` to `out`.
///
/// # Errors
///
/// Any error of `out`.
pub fn write_svg<W: Write>(
    out: &mut W,
    title: &str,
    unit: &str,
    series: &[Series],
) -> io::Result<()> {
    out.write_all(render(title, unit, series).as_bytes())
}

/// `x = log10(1/(1-p))` of a row below 100%.
fn x_of(p: f64) -> Option<f64> {
    (0.0..1.0).contains(&p).then(|| (1.0 / (1.0 - p)).log10())
}

/// 1, 2 or 5 times a power of ten, at least `v`.
fn nice_ceil(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10_f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v * (1.0 - 1e-12) {
            return m * p;
        }
    }
    10.0 * p
}

/// Percentile label of decade `k`: 0%, 90%, 99%, 99.9%, ...
fn decade_label(k: u32) -> String {
    match k {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        _ => format!("99.{}%", "9".repeat(k as usize - 2)).replace("99.%", "99%"),
    }
}

fn number_label(v: f64) -> String {
    if v == 0.0 {
        "0".to_owned()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        let s = format!("{v:.4}");
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    }
}

fn escape(text: &str) -> String {
    let mut s = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => s.push_str("&amp;"),
            '<' => s.push_str("&lt;"),
            '>' => s.push_str("&gt;"),
            '"' => s.push_str("&quot;"),
            c if c.is_control() => s.push(' '),
            c => s.push(c),
        }
    }
    s
}

fn render(title: &str, unit: &str, series: &[Series]) -> String {
    let max_x = series
        .iter()
        .flat_map(|s| s.rows.iter())
        .filter_map(|r| x_of(r.percentile))
        .fold(0.0_f64, f64::max);
    let decades = (max_x.ceil() as u32).clamp(2, 7);
    let max_y = series
        .iter()
        .flat_map(|s| s.rows.iter())
        .map(|r| r.value)
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let y_top = nice_ceil(max_y);
    let y_step = nice_ceil(y_top / 6.0);
    let px = |x: f64| LEFT + (x / f64::from(decades)).clamp(0.0, 1.0) * (RIGHT - LEFT);
    let py = |y: f64| BOTTOM - (y / y_top).clamp(0.0, 1.0) * (BOTTOM - TOP);

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="30" text-anchor="middle" font-size="16">{}</text>"#,
        W / 2.0,
        escape(title)
    );
    // grid and x labels
    for k in 0..=decades {
        let x = px(f64::from(k));
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{BOTTOM}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"#,
            BOTTOM + 18.0,
            decade_label(k)
        );
    }
    let mut y = 0.0;
    while y <= y_top * (1.0 + 1e-9) {
        let yy = py(y);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{yy:.1}" x2="{RIGHT}" y2="{yy:.1}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            yy + 4.0,
            number_label(y)
        );
        y += y_step;
    }
    let _ = writeln!(
        s,
        r#"<rect x="{LEFT}" y="{TOP}" width="{}" height="{}" fill="none" stroke="black"/>"#,
        RIGHT - LEFT,
        BOTTOM - TOP
    );
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">Percentile</text>"#,
        (LEFT + RIGHT) / 2.0,
        BOTTOM + 42.0
    );
    let _ = writeln!(
        s,
        r#"<text transform="translate(24 {}) rotate(-90)" text-anchor="middle">Latency ({})</text>"#,
        (TOP + BOTTOM) / 2.0,
        escape(unit)
    );
    // curves
    for (i, ser) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let points: Vec<String> = ser
            .rows
            .iter()
            .filter_map(|r| {
                let x = x_of(r.percentile)?;
                r.value
                    .is_finite()
                    .then(|| format!("{:.1},{:.1}", px(x), py(r.value)))
            })
            .collect();
        if !points.is_empty() {
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}"/>"#,
                points.join(" ")
            );
        }
    }
    // legend
    let legend_h = 8.0 + 18.0 * series.len() as f64;
    let _ = writeln!(
        s,
        r##"<rect x="{}" y="{}" width="330" height="{legend_h}" fill="white" stroke="#999"/>"##,
        LEFT + 10.0,
        TOP + 10.0
    );
    for (i, ser) in series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let y = TOP + 24.0 + 18.0 * i as f64;
        let max = ser.rows.iter().map(|r| r.value).fold(f64::NAN, f64::max);
        let note = if max.is_finite() {
            format!("max {} {}", number_label(max), unit)
        } else {
            "empty".to_owned()
        };
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{color}" stroke-width="3"/>"#,
            LEFT + 18.0,
            y - 4.0,
            LEFT + 42.0,
            y - 4.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{y}">{} ({})</text>"#,
            LEFT + 50.0,
            escape(&ser.label),
            escape(&note)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(value: f64, percentile: f64) -> Row {
        Row {
            value,
            percentile,
            total_count: 1,
        }
    }

    #[test]
    fn labels_and_scales() {
        assert_eq!(decade_label(0), "0%");
        assert_eq!(decade_label(1), "90%");
        assert_eq!(decade_label(2), "99%");
        assert_eq!(decade_label(4), "99.99%");
        assert_eq!(nice_ceil(730.0), 1000.0);
        assert_eq!(nice_ceil(120.0), 200.0);
        assert_eq!(nice_ceil(5.0), 5.0);
        assert_eq!(nice_ceil(0.0), 1.0);
        assert_eq!(number_label(2.5), "2.5");
        assert_eq!(number_label(200.0), "200");
    }

    #[test]
    fn one_polyline_and_legend_entry_per_series() {
        let a = Series {
            label: "a<b>".into(),
            rows: vec![
                row(1.0, 0.0),
                row(2.0, 0.5),
                row(9.0, 0.999),
                row(10.0, 1.0),
            ],
        };
        let b = Series {
            label: "b".into(),
            rows: vec![row(3.0, 0.0), row(4.0, 1.0)],
        };
        let svg = render("t & t", "µs", &[a, b]);
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains("a&lt;b&gt; (max 10 µs)"));
        assert!(svg.contains("t &amp; t"));
        assert!(svg.contains(">99.9%<"));
        // the 100% row is not plotted (it is at infinity)
        let first = svg.lines().find(|l| l.starts_with("<polyline")).unwrap();
        assert_eq!(first.matches(',').count(), 3);
        // empty input still makes a valid chart
        let empty = render("e", "us", &[]);
        assert!(empty.contains("</svg>"));
    }
}
