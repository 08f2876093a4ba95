//! A hand-written SVG: the cumulative distribution of reap lateness (or,
//! with other labels, of any figure in ms), one curve per server, with the
//! target as a dashed line.

use std::fmt::Write as _;

/// Width and height of the plot.
pub const W: f64 = 640.0;
pub const H: f64 = 360.0;
/// Margins: left, right, top, bottom.
pub const L: f64 = 60.0;
pub const R: f64 = 20.0;
pub const T: f64 = 30.0;
pub const B: f64 = 50.0;
/// Points per curve, at most (about).
const MAX_POINTS: usize = 400;

/// One curve: a name, its samples (ms) and a colour.
pub struct Curve<'a> {
    pub name: &'a str,
    pub samples: &'a [f64],
    pub color: &'a str,
}

/// The x axis: from `min` to `max` ms, with a grid line every `step`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub min: f64,
    pub max: f64,
    pub step: f64,
}

impl Scale {
    /// An axis that shows every sample, zero and the target, with 10 %
    /// room on the right and round steps.
    pub fn fit(samples: impl Iterator<Item = f64> + Clone, target: f64) -> Scale {
        let hi = samples.clone().fold(target, f64::max);
        let lo = samples.fold(0.0, f64::min);
        let max = (hi * 1.1).ceil().max(1.0);
        let min = lo.floor();
        Scale {
            min,
            max,
            step: nice_step((max - min) / 6.0),
        }
    }

    /// The pixel column of `v` ms.
    pub fn x(&self, v: f64) -> f64 {
        L + (v - self.min) / (self.max - self.min) * (W - L - R)
    }

    /// The grid values: every multiple of the step within the axis.
    pub fn ticks(&self) -> Vec<f64> {
        let first = (self.min / self.step).ceil() as i64;
        let last = (self.max / self.step + 1e-9).floor() as i64;
        (first..=last).map(|i| i as f64 * self.step).collect()
    }
}

/// The smallest round step (1, 2 or 5 times a power of ten) at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|st| *st >= raw)
        .unwrap_or(10.0 * mag)
}

/// The pixel row of the cumulative share `p` (0 to 1).
fn y(p: f64) -> f64 {
    H - B - p * (H - T - B)
}

/// The words of a plot.
pub struct Labels<'a> {
    pub title: &'a str,
    pub x_axis: &'a str,
    /// Before the target's value, e.g. `target p99`.
    pub target: &'a str,
}

/// The plot of `curves` against the lateness target `target` (ms).
pub fn lateness_svg(curves: &[Curve<'_>], target: f64) -> String {
    let labels = Labels {
        title: "Reap lateness: BYE idle after the deadline (CDF)",
        x_axis: "lateness (ms)",
        target: "target p99",
    };
    cdf_svg(curves, target, &labels)
}

/// The cumulative distribution of each curve's samples (ms), with a dashed
/// line at `target` (ms).
pub fn cdf_svg(curves: &[Curve<'_>], target: f64, labels: &Labels<'_>) -> String {
    let scale = Scale::fit(
        curves.iter().flat_map(|c| c.samples.iter().copied()),
        target,
    );
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="18" text-anchor="middle" font-size="14">{}</text>"#,
        W / 2.0,
        labels.title
    );
    for i in 0..=4 {
        let p = f64::from(i) / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{L}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}%</text>"##,
            W - R,
            L - 6.0,
            y(p) + 4.0,
            i * 25,
            y = y(p)
        );
    }
    for v in scale.ticks() {
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" x2="{x:.1}" y1="{T}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{v}</text>"##,
            H - B,
            H - B + 16.0,
            x = scale.x(v)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text>"#,
        (L + W - R) / 2.0,
        H - 12.0,
        labels.x_axis
    );
    let _ = writeln!(
        s,
        r##"<line x1="{x:.1}" x2="{x:.1}" y1="{T}" y2="{}" stroke="#c00" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" fill="#c00">{} {target} ms</text>"##,
        H - B,
        scale.x(target) + 4.0,
        T + 14.0,
        labels.target,
        x = scale.x(target)
    );
    for (i, c) in curves.iter().enumerate() {
        let mut d = c.samples.to_vec();
        d.sort_by(f64::total_cmp);
        let n = d.len().max(1) as f64;
        let every = (d.len() / MAX_POINTS).max(1);
        let mut pts = String::new();
        for (i, v) in d.iter().enumerate() {
            if i % every == 0 || i + 1 == d.len() {
                let _ = write!(pts, "{:.1},{:.1} ", scale.x(*v), y((i + 1) as f64 / n));
            }
        }
        let color = c.color;
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>"#
        );
        let ly = H - B - 60.0 + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{}" x2="{}" y1="{ly}" y2="{ly}" stroke="{color}" stroke-width="2"/><text x="{}" y="{}">{} (n={})</text>"#,
            W - R - 240.0,
            W - R - 220.0,
            W - R - 215.0,
            ly + 4.0,
            c.name,
            d.len(),
        );
    }
    s.push_str("</svg>\n");
    s
}
