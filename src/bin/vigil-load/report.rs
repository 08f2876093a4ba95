//! The result of a scenario: a readable table and a hand-written JSON file.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// A value in a report.
#[derive(Debug, Clone)]
pub enum Value {
    /// A whole count.
    Int(u64),
    /// A measurement (NaN when it could not be measured; `null` in JSON).
    Num(f64),
    /// Text.
    Text(String),
    /// Raw samples (JSON only, summarised in the table by other fields).
    Samples(Vec<f64>),
}

/// One figure: JSON key, table label, unit, value.
#[derive(Debug, Clone)]
pub struct Field {
    pub key: &'static str,
    pub label: &'static str,
    pub unit: &'static str,
    pub value: Value,
}

/// The figures of one run, in the order they were added.
#[derive(Debug, Default)]
pub struct Report {
    fields: Vec<Field>,
    notes: Vec<String>,
}

impl Report {
    /// Adds a count.
    pub fn int(&mut self, key: &'static str, label: &'static str, unit: &'static str, v: u64) {
        self.push(key, label, unit, Value::Int(v));
    }

    /// Adds a measurement.
    pub fn num(&mut self, key: &'static str, label: &'static str, unit: &'static str, v: f64) {
        self.push(key, label, unit, Value::Num(v));
    }

    /// Adds text.
    pub fn text(&mut self, key: &'static str, label: &'static str, v: impl Into<String>) {
        self.push(key, label, "", Value::Text(v.into()));
    }

    /// Adds raw samples (written to JSON only).
    pub fn samples(&mut self, key: &'static str, v: Vec<f64>) {
        self.push(key, "", "", Value::Samples(v));
    }

    /// Adds a sentence printed under the table (and kept in JSON).
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    fn push(&mut self, key: &'static str, label: &'static str, unit: &'static str, value: Value) {
        self.fields.push(Field {
            key,
            label,
            unit,
            value,
        });
    }

    /// The table printed on stdout.
    pub fn table(&self, title: &str) -> String {
        let rows: Vec<(&str, String)> = self
            .fields
            .iter()
            .filter(|f| !matches!(f.value, Value::Samples(_)))
            .map(|f| {
                let v = match &f.value {
                    Value::Int(v) => v.to_string(),
                    Value::Num(v) => format_num(*v),
                    Value::Text(t) => t.clone(),
                    Value::Samples(_) => unreachable!(),
                };
                let v = if f.unit.is_empty() || matches!(f.value, Value::Num(x) if x.is_nan()) {
                    v
                } else {
                    format!("{v} {}", f.unit)
                };
                (f.label, v)
            })
            .collect();
        let w0 = rows.iter().map(|r| r.0.len()).max().unwrap_or(0).max(6);
        let w1 = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(5);
        let mut out = String::new();
        let _ = writeln!(out, "{title}");
        let _ = writeln!(out, "| {:<w0$} | {:>w1$} |", "figure", "value");
        let _ = writeln!(out, "|-{}-|{}:|", "-".repeat(w0), "-".repeat(w1 + 1));
        for (label, value) in rows {
            let _ = writeln!(out, "| {label:<w0$} | {value:>w1$} |");
        }
        for note in &self.notes {
            let _ = writeln!(out, "{note}");
        }
        out
    }

    /// Every figure as one JSON object.
    pub fn json(&self) -> String {
        let mut out = String::from("{\n");
        for f in &self.fields {
            let _ = write!(out, "  \"{}\": ", f.key);
            match &f.value {
                Value::Int(v) => {
                    let _ = write!(out, "{v}");
                }
                Value::Num(v) => json_num(&mut out, *v),
                Value::Text(t) => json_str(&mut out, t),
                Value::Samples(v) => {
                    out.push('[');
                    for (i, x) in v.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        json_num(&mut out, *x);
                    }
                    out.push(']');
                }
            }
            out.push_str(",\n");
        }
        out.push_str("  \"notes\": [");
        for (i, n) in self.notes.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            json_str(&mut out, n);
        }
        out.push_str("]\n}\n");
        out
    }

    /// Writes [`Report::json`] to `path`.
    pub fn write_json(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, self.json())
    }
}

/// A measurement for the table: three significant-ish decimals.
pub fn format_num(v: f64) -> String {
    if v.is_nan() {
        "n/a".into()
    } else if v.abs() >= 1000.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

fn json_num(out: &mut String, v: f64) {
    if v.is_finite() {
        let _ = write!(out, "{v}");
    } else {
        out.push_str("null");
    }
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let mut r = Report::default();
        r.int("n", "count", "", 3);
        r.num("x", "x", "ms", f64::NAN);
        r.text("s", "s", "a\"b");
        r.samples("v", vec![1.0, 2.5]);
        r.note("done");
        let j = r.json();
        assert!(j.contains("\"n\": 3,"));
        assert!(j.contains("\"x\": null,"));
        assert!(j.contains("\"s\": \"a\\\"b\","));
        assert!(j.contains("\"v\": [1,2.5],"));
        assert!(r.table("t").contains("| count"));
    }
}
