//! Shared helpers for the integration tests: reading the oracle CSV files.
#![allow(dead_code, missing_docs)]

use solvent_pricing::black76::OptionType;
use std::collections::HashMap;
use std::path::PathBuf;

/// One row of an oracle CSV: the option type and every numeric column by name.
pub struct Row {
    pub line: usize,
    pub option_type: OptionType,
    values: HashMap<String, f64>,
}

impl Row {
    pub fn get(&self, column: &str) -> f64 {
        match self.values.get(column) {
            Some(v) => *v,
            None => panic!("line {}: no column {column}", self.line),
        }
    }
}

/// Reads `tests/data/<name>`: a header line, then `option_type` (`call`/`put`) and numbers.
pub fn read_csv(name: &str) -> Vec<Row> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("header line").split(',').collect();
    assert_eq!(
        header[0], "option_type",
        "{name}: first column must be option_type"
    );
    lines
        .enumerate()
        .map(|(i, line)| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(
                fields.len(),
                header.len(),
                "{name} line {}: wrong number of fields",
                i + 2
            );
            let option_type = match fields[0] {
                "call" => OptionType::Call,
                "put" => OptionType::Put,
                other => panic!("{name} line {}: bad option type {other}", i + 2),
            };
            let values = header[1..]
                .iter()
                .zip(&fields[1..])
                .map(|(h, f)| {
                    let v: f64 = f
                        .parse()
                        .unwrap_or_else(|e| panic!("{name} line {}: {h}={f}: {e}", i + 2));
                    ((*h).to_owned(), v)
                })
                .collect();
            Row {
                line: i + 2,
                option_type,
                values,
            }
        })
        .collect()
}

/// `|a - b| / |b|`, or 0 when both are equal (including both zero).
pub fn relative_error(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { ((a - b) / b).abs() }
}
