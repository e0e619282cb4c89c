//! The report's charts, as SVG (plotters' SVG backend; text is laid out without system fonts).
//!
//! - daily-spending.svg: value paid each day online and offline (one or both devices offline,
//!   cash on delivery, transfers);
//! - settlement-lag.svg: settled offline payments by how long they took to settle (online
//!   payments settle at once);
//! - double-spend-exposure.svg: offline money accepted and not yet settled at the end of each day
//!   (what a double spender could still take), and the losses booked.
//!
//! Values are converted from fen to yuan as floating point for drawing only.

use plotters::prelude::*;

use super::report::Report;

/// Chart size in pixels.
const SIZE: (u32, u32) = (860, 440);

/// The three charts: (file name, SVG text).
pub fn render(r: &Report) -> anyhow::Result<Vec<(&'static str, String)>> {
    Ok(vec![
        ("daily-spending.svg", spending(r)?),
        ("settlement-lag.svg", lag(r)?),
        ("double-spend-exposure.svg", exposure(r)?),
    ])
}

fn err<E: std::fmt::Display>(e: E) -> anyhow::Error {
    anyhow::anyhow!("chart: {e}")
}

fn yuan(fen: u64) -> f64 {
    fen as f64 / 100.0
}

fn lines(
    title: &str,
    y_label: &str,
    days: usize,
    series: &[(&str, RGBColor, Vec<f64>)],
) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let top = series
            .iter()
            .flat_map(|(_, _, v)| v.iter().copied())
            .fold(0.0f64, f64::max)
            .max(1.0)
            * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(1f64..(days.max(2) as f64), 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("day of the pilot")
            .y_desc(y_label)
            .x_labels(days.clamp(2, 20))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(err)?;
        for (name, color, v) in series {
            let color = *color;
            chart
                .draw_series(LineSeries::new(
                    v.iter().enumerate().map(|(i, y)| (i as f64 + 1.0, *y)),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}

fn spending(r: &Report) -> anyhow::Result<String> {
    let online: Vec<f64> = r.daily.iter().map(|d| yuan(d.value_fen[0])).collect();
    let offline: Vec<f64> = r
        .daily
        .iter()
        .map(|d| yuan(d.value_fen[1] + d.value_fen[2] + d.value_fen[3] + d.value_fen[4]))
        .collect();
    let envelope: Vec<f64> = r.daily.iter().map(|d| yuan(d.envelope_fen)).collect();
    lines(
        "Daily spending, online and offline",
        "yuan",
        r.daily.len(),
        &[
            ("online", BLUE, online),
            (
                "offline (one or both devices, cash on delivery, transfers)",
                RED,
                offline,
            ),
            ("of all: red-envelope money", GREEN, envelope),
        ],
    )
}

fn exposure(r: &Report) -> anyhow::Result<String> {
    let exposure: Vec<f64> = r.daily.iter().map(|d| yuan(d.exposure_fen)).collect();
    let losses: Vec<f64> = r.daily.iter().map(|d| yuan(d.losses_fen)).collect();
    lines(
        "Double-spend exposure: offline money not yet settled, and losses",
        "yuan",
        r.daily.len(),
        &[
            ("accepted offline, unsettled at day end", RED, exposure),
            ("losses booked against cheaters (cumulative)", BLACK, losses),
        ],
    )
}

fn lag(r: &Report) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let n = r.lag_buckets.len();
        let top = r
            .lag_buckets
            .iter()
            .map(|(_, c)| *c)
            .max()
            .unwrap_or(1)
            .max(1) as f64
            * 1.1;
        let labels: Vec<String> = r.lag_buckets.iter().map(|(l, _)| l.clone()).collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Settlement lag of offline payments (online ones settle at once)",
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(0f64..n.max(1) as f64, 0f64..top)
            .map_err(err)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc("time from payment to settlement at the issuer")
            .y_desc("payments")
            .x_labels(n.max(1) * 2)
            .x_label_formatter(&|v| {
                let i = (*v - 0.5).round();
                if (v - 0.5 - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(err)?;
        chart
            .draw_series(r.lag_buckets.iter().enumerate().map(|(i, (_, c))| {
                Rectangle::new(
                    [(i as f64 + 0.1, 0.0), (i as f64 + 0.9, *c as f64)],
                    BLUE.mix(0.7).filled(),
                )
            }))
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(out)
}
