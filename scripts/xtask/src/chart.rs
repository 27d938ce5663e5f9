//! The benchmark chart: one panel per CPU, a pair of horizontal bars per case (Gaon and
//! Linux medians, instructions per operation on a log scale), drawn with plotters into a
//! PNG. Text is drawn with a TrueType font read at run time (DejaVu Sans from Debian's
//! `fonts-dejavu-core`, which `scripts/bench` installs if missing).
#![allow(clippy::cast_precision_loss, reason = "bar positions are small case indices")]

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontStyle, register_font};

use crate::bench::Row;

/// Where the font is looked for.
const FONTS: [&str; 2] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

const GAON: RGBColor = RGBColor(0x1f, 0x6f, 0xb4);
const LINUX: RGBColor = RGBColor(0xe0, 0x7b, 0x1a);

fn load_font() -> Result<(), String> {
    let bytes = FONTS
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or_else(|| format!("no TrueType font at {FONTS:?}: apt-get install fonts-dejavu-core"))?;
    // plotters keeps the font for the life of the program.
    register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into_boxed_slice()))
        .map_err(|_| "the font could not be parsed".to_string())
}

/// Draw the instruction-count cases of `rows` into `out`.
pub fn draw(rows: &[Row], out: &Path) -> Result<(), String> {
    load_font()?;
    let mut cpus: Vec<&str> = rows.iter().map(|r| r.cpu.as_str()).collect();
    cpus.dedup();
    let cases: Vec<&str> = {
        let mut v: Vec<&str> = rows
            .iter()
            .filter(|r| r.system == "gaon" && r.unit == "instructions" && !r.case.starts_with("calibrate"))
            .map(|r| r.case.as_str())
            .collect();
        v.dedup();
        let mut seen = Vec::new();
        v.retain(|c| {
            let new = !seen.contains(c);
            seen.push(*c);
            new
        });
        v
    };
    if cases.is_empty() || cpus.is_empty() {
        return Err("nothing to chart".into());
    }
    let height = 120 + 34 * u32::try_from(cases.len()).unwrap_or(40);
    let width = 760 * u32::try_from(cpus.len()).unwrap_or(1);
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = BitMapBackend::new(out, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let panels = root.split_evenly((1, cpus.len()));
    let median = |system: &str, cpu: &str, case: &str| {
        rows.iter()
            .find(|r| r.system == system && r.cpu == cpu && r.case == case)
            .map(|r| r.median)
    };
    let max = rows
        .iter()
        .filter(|r| cases.contains(&r.case.as_str()))
        .map(|r| r.median)
        .fold(1.0f64, f64::max)
        * 2.0;
    let n = cases.len();
    for (panel, cpu) in panels.iter().zip(&cpus) {
        let mut chart = ChartBuilder::on(panel)
            .caption(
                format!("{cpu}: median instructions per operation (log scale)"),
                ("sans-serif", 18),
            )
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(190)
            .build_cartesian_2d((50f64..max).log_scale(), 0f64..n as f64)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("instructions (QEMU -icount shift=0)")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(e)?;
        for (system, color, offset) in [("gaon", GAON, 0.52), ("linux", LINUX, 0.12)] {
            let bars = cases.iter().enumerate().filter_map(|(i, case)| {
                let v = median(system, cpu, case)?;
                let y = (n - 1 - i) as f64 + offset;
                Some(Rectangle::new([(50.0, y), (v.max(50.0), y + 0.36)], color.filled()))
            });
            chart
                .draw_series(bars)
                .map_err(e)?
                .label(system)
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
        }
        // Case names, right-aligned against the axis beside their pair of bars.
        let style = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
        for (i, case) in cases.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(50.0, (n - 1 - i) as f64 + 0.5));
            let (ox, oy) = panel.get_base_pixel();
            panel
                .draw(&Text::new(case.to_string(), (x - ox - 6, y - oy), style.clone()))
                .map_err(e)?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font(("sans-serif", 14))
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}
