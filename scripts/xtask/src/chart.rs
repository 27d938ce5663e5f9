//! The benchmark chart: horizontal bars per case (Gaon's and Linux's medians from the
//! results, and seL4's reference figure where there is one), instructions per operation
//! on a log scale, drawn with plotters into a PNG. Under `-icount shift=0` every CPU
//! model executes the same instructions, so when Gaon's counts agree on every CPU of the
//! results there is one panel, for the first CPU; otherwise one per CPU. Text is drawn
//! with a TrueType font read at run time (DejaVu Sans from Debian's `fonts-dejavu-core`,
//! which `scripts/bench` installs if missing).
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
const SEL4: RGBColor = RGBColor(0x4d, 0xa0, 0x4a);
const LINUX: RGBColor = RGBColor(0xe0, 0x7b, 0x1a);

/// The CPU seL4's reference figures were measured on.
pub const SEL4_CPU: &str = "cortex-a53";

/// seL4's reference figures, measured the way the benchmarks measure (QEMU 7.2,
/// `-icount shift=0`, instructions, including the user stub; docs/benchmarks.md,
/// "seL4's figures"), by the case they correspond to: null syscall; Call + ReplyRecv
/// (208 + 232); yield with a switch; signal to a higher-priority thread.
pub const SEL4_FIGURES: [(&str, f64); 4] = [
    ("null_syscall", 91.0),
    ("ipc_rt_cross_as", 440.0),
    ("yield", 365.0),
    ("signal_wait", 569.0),
];

/// The series: label, colour, the bar's offset inside a case's row (from the bottom).
const SERIES: [(&str, RGBColor, f64); 3] = [("Gaon", GAON, 0.68), ("seL4", SEL4, 0.40), ("Linux", LINUX, 0.12)];
/// A bar's thickness, in rows.
const BAR: f64 = 0.26;
/// Left end of the log axis.
const X_MIN: f64 = 50.0;
/// Height of the header (title and legend) above the panels, in pixels.
const HEADER: u32 = 64;

fn load_font() -> Result<(), String> {
    let bytes = FONTS
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or_else(|| format!("no TrueType font at {FONTS:?}: apt-get install fonts-dejavu-core"))?;
    // plotters keeps the font for the life of the program.
    register_font("sans-serif", FontStyle::Normal, Box::leak(bytes.into_boxed_slice()))
        .map_err(|_| "the font could not be parsed".to_string())
}

/// The median of `system` on `cpu` for `case`: from the results, or seL4's figure.
fn median(rows: &[Row], system: &str, cpu: &str, case: &str) -> Option<f64> {
    if system == "seL4" {
        return (cpu == SEL4_CPU)
            .then(|| SEL4_FIGURES.iter().find(|(c, _)| *c == case).map(|(_, v)| *v))
            .flatten();
    }
    let system = system.to_lowercase();
    rows.iter()
        .find(|r| r.system == system && r.cpu == cpu && r.case == case)
        .map(|r| r.median)
}

/// The CPUs to draw a panel for: the first only when Gaon's counts are the same on all.
fn panel_cpus<'a>(rows: &'a [Row], cases: &[&str]) -> Vec<&'a str> {
    let mut cpus: Vec<&str> = Vec::new();
    for r in rows {
        if !cpus.contains(&r.cpu.as_str()) {
            cpus.push(&r.cpu);
        }
    }
    let same = cpus.iter().all(|cpu| {
        cases.iter().all(|case| {
            let (a, b) = (median(rows, "Gaon", cpus[0], case), median(rows, "Gaon", cpu, case));
            a == b
        })
    });
    if same {
        cpus.truncate(1);
    }
    cpus
}

/// Draw the instruction-count cases of `rows` into `out`.
pub fn draw(rows: &[Row], out: &Path) -> Result<(), String> {
    load_font()?;
    let cases: Vec<&str> = {
        let mut v: Vec<&str> = Vec::new();
        for r in rows {
            if r.system == "gaon"
                && r.unit == "instructions"
                && !r.case.starts_with("calibrate")
                && !v.contains(&r.case.as_str())
            {
                v.push(&r.case);
            }
        }
        v
    };
    let cpus = panel_cpus(rows, &cases);
    if cases.is_empty() || cpus.is_empty() {
        return Err("nothing to chart".into());
    }
    let n = cases.len();
    let height = HEADER + 90 + 40 * u32::try_from(n).unwrap_or(40);
    let width = 900 * u32::try_from(cpus.len()).unwrap_or(1);
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = BitMapBackend::new(out, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let (header, body) = root.split_vertically(HEADER);
    draw_header(&header, rows, &cpus).map_err(e)?;
    let max = rows
        .iter()
        .filter(|r| cases.contains(&r.case.as_str()))
        .map(|r| r.median)
        .fold(1.0f64, f64::max)
        * 2.0;
    for (panel, cpu) in body.split_evenly((1, cpus.len())).iter().zip(&cpus) {
        let mut chart = ChartBuilder::on(panel)
            .caption(*cpu, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(190)
            .build_cartesian_2d((X_MIN..max).log_scale(), 0f64..n as f64)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_label_formatter(&|v| format!("{v:.0}"))
            .x_desc("median instructions per operation, log scale (QEMU -icount shift=0)")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(e)?;
        for (system, color, offset) in SERIES {
            let bars = cases.iter().enumerate().filter_map(|(i, case)| {
                let v = median(rows, system, cpu, case)?;
                let y = (n - 1 - i) as f64 + offset;
                Some(Rectangle::new([(X_MIN, y), (v.max(X_MIN), y + BAR)], color.filled()))
            });
            chart.draw_series(bars).map_err(e)?;
        }
        // Case names, right-aligned against the axis beside their bars.
        let style = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
        for (i, case) in cases.iter().enumerate() {
            let (x, y) = chart.backend_coord(&(X_MIN, (n - 1 - i) as f64 + 0.53));
            let (ox, oy) = panel.get_base_pixel();
            panel
                .draw(&Text::new(case.to_string(), (x - ox - 6, y - oy), style.clone()))
                .map_err(e)?;
        }
    }
    root.present().map_err(e)?;
    Ok(())
}

/// Draw paper 004's comparison into `out`: for every case of the `gaon-vm` rows (Linux
/// inside a Gaon VM), its cost relative to bare Linux on the same CPU ([`vm_ratio`]),
/// one panel per CPU, with a line at 1 (no overhead); each bar is labelled with both
/// medians.
pub fn draw_vm(rows: &[Row], out: &Path) -> Result<(), String> {
    load_font()?;
    let mut cpus: Vec<&str> = Vec::new();
    let mut cases: Vec<&str> = Vec::new();
    for r in rows
        .iter()
        .filter(|r| r.system == "gaon-vm" && !r.case.starts_with("calibrate"))
    {
        if !cpus.contains(&r.cpu.as_str()) {
            cpus.push(&r.cpu);
        }
        if !cases.contains(&r.case.as_str()) {
            cases.push(&r.case);
        }
    }
    if cases.is_empty() {
        return Err("no gaon-vm rows to chart".into());
    }
    let ratio = |cpu: &str, case: &str| vm_ratio(rows, cpu, case);
    let n = cases.len();
    let max = cpus
        .iter()
        .flat_map(|cpu| cases.iter().filter_map(|case| ratio(cpu, case)))
        .map(|(r, _, _)| r)
        .fold(1.5f64, f64::max)
        * 1.15;
    let height = HEADER + 90 + 30 * u32::try_from(n).unwrap_or(40);
    let width = 900 * u32::try_from(cpus.len()).unwrap_or(1);
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = BitMapBackend::new(out, (width, height)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let (header, body) = root.split_vertically(HEADER);
    header
        .draw(&Text::new(
            "Linux in a Gaon VM against Linux on bare QEMU: ratio of the medians",
            (16, 10),
            ("sans-serif", 19).into_font(),
        ))
        .map_err(e)?;
    header
        .draw(&Text::new(
            "the same Debian kernel, initramfs, memory and one CPU; instructions (QEMU -icount shift=0), \
             bandwidth inverted; labels: VM / bare medians (tables: docs/benchmarks.md)",
            (16, 38),
            ("sans-serif", 13).into_font(),
        ))
        .map_err(e)?;
    for (panel, cpu) in body.split_evenly((1, cpus.len())).iter().zip(&cpus) {
        let mut chart = ChartBuilder::on(panel)
            .caption(*cpu, ("sans-serif", 17))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(190)
            .build_cartesian_2d(0f64..max, 0f64..n as f64)
            .map_err(e)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_label_formatter(&|v| format!("{v:.1}"))
            .x_desc("VM median / bare median (1 = no overhead)")
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(e)?;
        let bars = cases.iter().enumerate().filter_map(|(i, case)| {
            let (r, _, _) = ratio(cpu, case)?;
            let y = (n - 1 - i) as f64 + 0.2;
            Some(Rectangle::new([(0.0, y), (r, y + 0.6)], GAON.filled()))
        });
        chart.draw_series(bars).map_err(e)?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(1.0, 0.0), (1.0, n as f64)],
                LINUX.stroke_width(2),
            )))
            .map_err(e)?;
        let name_style = TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Right, VPos::Center));
        let value_style = TextStyle::from(("sans-serif", 11).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
        let (ox, oy) = panel.get_base_pixel();
        for (i, case) in cases.iter().enumerate() {
            let y = (n - 1 - i) as f64 + 0.5;
            let (x, py) = chart.backend_coord(&(0.0, y));
            panel
                .draw(&Text::new(case.to_string(), (x - ox - 6, py - oy), name_style.clone()))
                .map_err(e)?;
            if let Some((r, vm, bare)) = ratio(cpu, case) {
                let (bx, by) = chart.backend_coord(&(r, y));
                let label = if bare < 10.0 {
                    format!("{r:.2}  ({vm:.2} / {bare:.2})")
                } else {
                    format!("{r:.2}  ({vm:.0} / {bare:.0})")
                };
                panel
                    .draw(&Text::new(label, (bx - ox + 6, by - oy), value_style.clone()))
                    .map_err(e)?;
            }
        }
    }
    root.present().map_err(e)?;
    Ok(())
}

/// The soft-real-time experiment's lateness CDF (`bench/results/rt-cdf.png`): per
/// configuration, the share of activations that started within x µs of their release,
/// x on a log scale.
pub fn draw_rt(results: &[crate::rt::RtResult], out: &Path) -> Result<(), String> {
    load_font()?;
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = BitMapBackend::new(out, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let (header, body) = root.split_vertically(HEADER);
    header
        .draw(&Text::new(
            "A 2.3 ms / 60 µs guest task beside CPU-bound guests: release-to-start lateness",
            (16, 10),
            ("sans-serif", 17).into_font(),
        ))
        .map_err(e)?;
    let one_core = results.iter().find(|r| r.cores == 1);
    let hog = one_core.map_or("", |r| r.hog.as_str());
    let periods = one_core.map_or(0, |r| r.periods);
    header
        .draw(&Text::new(
            format!(
                "one core: {periods} periods per configuration, {hog} hog{}; QEMU -icount shift=0 (1 ns per instruction); docs/realtime.md",
                if results.iter().any(|r| r.cores == 2) {
                    "; two cores: two RT guests, two hogs"
                } else {
                    ""
                }
            ),
            (16, 38),
            ("sans-serif", 13).into_font(),
        ))
        .map_err(e)?;
    let max_x = results
        .iter()
        .flat_map(|r| r.cdf.iter().map(|&(us, _)| us as f64 + 1.0))
        .fold(100.0f64, f64::max)
        * 1.5;
    let mut chart = ChartBuilder::on(&body)
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d((1f64..max_x).log_scale(), 0f64..1.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("lateness (µs, log scale)")
        .y_desc("releases whose job started within it")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    // Equal curves (LL-boost with and without borrowing) stay apart by their widths.
    let styles = [
        (LINUX, 3),
        (SEL4, 3),
        (GAON, 7),
        (RGBColor(120, 60, 160), 2),
        (RGBColor(200, 40, 40), 1),
    ];
    for (r, &(colour, width)) in results.iter().zip(styles.iter().cycle()) {
        let n = r.periods.max(1) as f64;
        // A step per bucket: the count below us + 1 µs.
        let mut points = vec![(1.0, 0.0)];
        let mut last = 0.0;
        for &(us, count) in &r.cdf {
            let x = us as f64 + 1.0;
            points.push((x, last));
            last = count as f64 / n;
            points.push((x, last));
        }
        points.push((max_x, last));
        let label = if r.cores == 1 {
            format!("{} ({} misses)", r.config, r.misses)
        } else {
            format!("{}, {} cores, {} hog ({} misses)", r.config, r.cores, r.hog, r.misses)
        };
        chart
            .draw_series(std::iter::once(PathElement::new(points, colour.stroke_width(width))))
            .map_err(e)?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(width)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::Coordinate(260, 120))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)?;
    Ok(())
}

/// Linux in a Gaon VM against bare Linux on `cpu` for `case`: (the cost ratio, the VM's
/// median, bare Linux's median). The ratio is VM / bare for instructions, bare / VM for
/// bandwidth, so above 1 is always the VM's overhead.
fn vm_ratio(rows: &[Row], cpu: &str, case: &str) -> Option<(f64, f64, f64)> {
    let vm = median(rows, "gaon-vm", cpu, case).filter(|v| *v > 0.0)?;
    let bare = median(rows, "linux", cpu, case).filter(|b| *b > 0.0)?;
    let bandwidth = rows.iter().any(|r| r.case == case && r.unit != "instructions");
    Some((if bandwidth { bare / vm } else { vm / bare }, vm, bare))
}

/// The largest relative difference between Linux's medians on `cpu` and on the other
/// CPUs, over the cases both have.
fn linux_spread(rows: &[Row], cpu: &str) -> f64 {
    rows.iter()
        .filter(|r| r.system == "linux" && r.cpu != cpu && r.median > 0.0)
        .filter_map(|r| median(rows, "Linux", cpu, &r.case).map(|base| (r.median - base).abs() / base))
        .fold(0.0, f64::max)
}

/// The title and, beside it, the legend: above the panels, so it covers no bar.
fn draw_header<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    rows: &[Row],
    cpus: &[&str],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let title = ("sans-serif", 19).into_font();
    area.draw(&Text::new(
        "Gaon, seL4 and Linux: instructions per operation",
        (16, 10),
        title,
    ))?;
    let mut all: Vec<&str> = Vec::new();
    for r in rows {
        if !all.contains(&r.cpu.as_str()) {
            all.push(&r.cpu);
        }
    }
    let note = if cpus.len() < all.len() {
        format!(
            "{}; on {} Gaon's counts are the same to the instruction, Linux's within {:.0} % (tables: docs/benchmarks.md)",
            cpus[0],
            all[1..].join(", "),
            linux_spread(rows, cpus[0]) * 100.0
        )
    } else {
        "tables: docs/benchmarks.md".to_string()
    };
    area.draw(&Text::new(note, (16, 38), ("sans-serif", 13).into_font()))?;
    let labels = [
        ("Gaon", GAON),
        ("seL4 (reference figures, same method)", SEL4),
        ("Linux", LINUX),
    ];
    let style = TextStyle::from(("sans-serif", 14).into_font());
    let mut x = i32::try_from(area.dim_in_pixel().0).unwrap_or(900) - 16;
    for (label, color) in labels.iter().rev() {
        let (w, _) = area.estimate_text_size(label, &style)?;
        let w = i32::try_from(w).unwrap_or(100);
        x -= w;
        area.draw(&Text::new(*label, (x, 12), style.clone()))?;
        x -= 20;
        area.draw(&Rectangle::new([(x, 13), (x + 13, 26)], color.filled()))?;
        x -= 22;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{SEL4_FIGURES, panel_cpus, vm_ratio};
    use crate::bench::Row;

    fn row(system: &str, cpu: &str, case: &str, median: f64) -> Row {
        Row {
            system: system.into(),
            cpu: cpu.into(),
            case: case.into(),
            unit: "instructions".into(),
            min: median,
            max: median,
            median,
            iterations: 1,
        }
    }

    #[test]
    fn one_panel_when_gaon_counts_agree() {
        let mut rows = vec![
            row("gaon", "a", "x", 10.0),
            row("linux", "a", "x", 99.0),
            row("gaon", "b", "x", 10.0),
            row("linux", "b", "x", 98.0),
        ];
        assert_eq!(panel_cpus(&rows, &["x"]), ["a"]);
        rows[2].median = 11.0;
        assert_eq!(panel_cpus(&rows, &["x"]), ["a", "b"]);
    }

    #[test]
    fn a_vms_cost_is_above_one_for_instructions_and_bandwidth_alike() {
        let mut rows = vec![
            row("gaon-vm", "a", "x", 12.0),
            row("linux", "a", "x", 10.0),
            row("gaon-vm", "a", "bw", 0.5),
            row("linux", "a", "bw", 1.0),
            row("gaon-vm", "a", "only-vm", 1.0),
        ];
        rows[2].unit = "MB/Minstr".into();
        rows[3].unit = "MB/Minstr".into();
        assert_eq!(vm_ratio(&rows, "a", "x"), Some((1.2, 12.0, 10.0)));
        assert_eq!(vm_ratio(&rows, "a", "bw"), Some((2.0, 0.5, 1.0)));
        assert_eq!(vm_ratio(&rows, "a", "only-vm"), None);
        assert_eq!(vm_ratio(&rows, "b", "x"), None);
    }

    /// The chart's seL4 bars are the figures docs/benchmarks.md gives.
    #[test]
    fn sel4_figures_are_the_documented_ones() {
        let doc = std::fs::read_to_string(crate::root_dir().join("docs/benchmarks.md")).unwrap();
        let doc = doc.split_whitespace().collect::<Vec<_>>().join(" ");
        for (case, text) in [
            ("null_syscall", "null syscall 91,"),
            ("ipc_rt_cross_as", "= 440 for a round trip"),
            ("yield", "yield with a switch 365,"),
            ("signal_wait", "higher-priority thread about 569,"),
        ] {
            assert!(doc.contains(text), "docs/benchmarks.md lacks `{text}`");
            let v = SEL4_FIGURES.iter().find(|(c, _)| *c == case).unwrap().1;
            assert!(text.contains(&format!("{v:.0}")), "{case}: {v} is not in `{text}`");
        }
    }
}
