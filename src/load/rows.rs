//! The table `vigil-load` prints: one row per figure, notes under it.

use std::fmt::Write as _;

use super::parts::Cpu;

/// The rows of the table printed on stdout, and the notes under it.
#[derive(Debug, Default)]
pub(crate) struct Rows {
    rows: Vec<(String, String)>,
    notes: Vec<String>,
}

impl Rows {
    pub(crate) fn int(&mut self, label: &str, v: u64) {
        self.rows.push((label.into(), v.to_string()));
    }

    pub(crate) fn int_unit(&mut self, label: &str, unit: &str, v: u64) {
        self.rows.push((label.into(), format!("{v} {unit}")));
    }

    pub(crate) fn opt_int(&mut self, label: &str, v: Option<u64>) {
        self.rows
            .push((label.into(), v.map_or("n/a".into(), |v| v.to_string())));
    }

    pub(crate) fn num(&mut self, label: &str, unit: &str, v: f64) {
        self.opt(label, unit, Some(v).filter(|v| !v.is_nan()));
    }

    pub(crate) fn opt(&mut self, label: &str, unit: &str, v: Option<f64>) {
        let text = match v {
            None => "n/a".into(),
            Some(v) if unit.is_empty() => format_num(v),
            Some(v) => format!("{} {unit}", format_num(v)),
        };
        self.rows.push((label.into(), text));
    }

    /// A CPU time: the total, and the kernel's part on the next row.
    pub(crate) fn cpu(&mut self, label: &str, cpu: Cpu) {
        self.num(label, "s", cpu.total());
        self.num("  of which in the kernel", "s", cpu.kernel);
    }

    pub(crate) fn text(&mut self, label: &str, v: &str) {
        self.rows.push((label.into(), v.into()));
    }

    pub(crate) fn note(&mut self, note: String) {
        self.notes.push(note);
    }

    pub(crate) fn render(&self, title: &str, notes: &[String]) -> String {
        let w0 = self.rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        let w0 = w0.max(6);
        let w1 = self.rows.iter().map(|r| r.1.len()).max().unwrap_or(0);
        let w1 = w1.max(5);
        let mut out = String::new();
        let _ = writeln!(out, "{title}");
        let _ = writeln!(out, "| {:<w0$} | {:>w1$} |", "figure", "value");
        let _ = writeln!(out, "|-{}-|{}:|", "-".repeat(w0), "-".repeat(w1 + 1));
        for (label, value) in &self.rows {
            let _ = writeln!(out, "| {label:<w0$} | {value:>w1$} |");
        }
        for note in self.notes.iter().chain(notes) {
            let _ = writeln!(out, "{note}");
        }
        out
    }
}

/// A measurement for the table: three significant-ish decimals.
fn format_num(v: f64) -> String {
    if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_missing_figures_as_n_a() {
        let mut t = Rows::default();
        t.opt("x", "ms", None);
        t.num("y", "ms", 1.5);
        t.note("done".into());
        let out = t.render("title", &[]);
        assert!(out.contains("| x      |      n/a |"), "{out}");
        assert!(out.contains("| y      | 1.500 ms |"), "{out}");
        assert!(out.ends_with("done\n"));
    }
}
