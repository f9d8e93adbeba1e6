//! The SVG chart: failures per second and p99 connect latency over time, one series per run
//! (profile, and variant if any), drawn with plotters' SVG backend (no font files: text is
//! written as SVG `<text>` and laid out with plotters' approximate metrics).

use plotters::prelude::*;

use crate::report::Report;
use crate::stats::ProtoResult;

const COLORS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

struct Series {
    label: String,
    bin_s: f64,
    failures_per_s: Vec<f64>,
    p99_ms: Vec<Option<f64>>,
}

fn series(rep: &Report) -> Vec<Series> {
    let mut out = Vec::new();
    for r in &rep.runs {
        for (p, proto) in [(&r.tcp, "tcp"), (&r.udp, "udp")] {
            let Some(p): &Option<ProtoResult> = p else {
                continue;
            };
            let mut label = r.profile.clone();
            if let Some(v) = &r.variant {
                label = format!("{label} {v}");
            }
            if r.tcp.is_some() && r.udp.is_some() {
                label = format!("{label} ({proto})");
            }
            let t = &p.timeline;
            out.push(Series {
                label,
                bin_s: t.bin_s,
                failures_per_s: t.failed.iter().map(|&f| f as f64 / t.bin_s).collect(),
                p99_ms: t.p99_ms.clone(),
            });
        }
    }
    out
}

/// Renders the chart as an SVG document.
pub fn svg(rep: &Report) -> anyhow::Result<String> {
    let all = series(rep);
    let mut buf = String::new();
    {
        let height = 760 + 18 * all.len().saturating_sub(8) as u32;
        let root = SVGBackend::with_string(&mut buf, (1000, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, bottom) = root.split_vertically(height / 2);
        let duration = rep.scenario.duration_s.max(1.0);
        let fmax = all
            .iter()
            .flat_map(|s| s.failures_per_s.iter().copied())
            .fold(0.0f64, f64::max)
            .max(1.0)
            * 1.1;
        let mut chart = ChartBuilder::on(&top)
            .caption(
                format!("{}: failed connects per second", rep.scenario.name),
                ("sans-serif", 18),
            )
            .margin(10)
            .margin_right(30)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..duration, 0.0..fmax)?;
        chart
            .configure_mesh()
            .x_desc("virtual time (s)")
            .y_desc("failures / s")
            .draw()?;
        for (i, s) in all.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            let pts: Vec<(f64, f64)> = s
                .failures_per_s
                .iter()
                .enumerate()
                .map(|(k, &v)| ((k as f64 + 0.5) * s.bin_s, v))
                .collect();
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))?
                .label(s.label.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;

        let lmax = all
            .iter()
            .flat_map(|s| s.p99_ms.iter().flatten().copied())
            .fold(1.0f64, f64::max)
            * 2.0;
        let lmin = all
            .iter()
            .flat_map(|s| s.p99_ms.iter().flatten().copied())
            .fold(f64::INFINITY, f64::min)
            .clamp(0.01, 1.0)
            / 2.0;
        let mut chart = ChartBuilder::on(&bottom)
            .caption(
                "p99 connect latency of successful connects (ms, log)",
                ("sans-serif", 18),
            )
            .margin(10)
            .margin_right(30)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..duration, (lmin..lmax).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("virtual time (s)")
            .y_desc("p99 ms")
            .draw()?;
        for (i, s) in all.iter().enumerate() {
            let c = COLORS[i % COLORS.len()];
            // One line per stretch of bins that have a value.
            let mut seg: Vec<(f64, f64)> = Vec::new();
            let mut segs = Vec::new();
            for (k, v) in s.p99_ms.iter().enumerate() {
                match v {
                    Some(v) => seg.push(((k as f64 + 0.5) * s.bin_s, v.max(lmin))),
                    None if !seg.is_empty() => segs.push(std::mem::take(&mut seg)),
                    None => {}
                }
            }
            if !seg.is_empty() {
                segs.push(seg);
            }
            for seg in segs {
                chart.draw_series(LineSeries::new(seg, c.stroke_width(2)))?;
            }
        }
        root.present()?;
    }
    Ok(buf)
}
