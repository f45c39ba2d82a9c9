//! Reads back `timeseries.csv` (as `files::timeseries_csv` wrote it) into
//! columns of numbers, so plots of old runs can be redrawn from the run folder.

use std::path::Path;

use crate::error::{Error, Result};
use crate::report::columns::T_S;

/// The CSV as columns: one header per column, one row per interval, empty
/// cells as `None`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Timeseries {
    pub headers: Vec<String>,
    pub rows: Vec<Vec<Option<f64>>>,
}

impl Timeseries {
    pub fn read(path: &Path) -> Result<Timeseries> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Timeseries::parse(&text))
    }

    /// Unparsable cells read as empty rather than failing: a plot with a gap
    /// beats no report.
    pub fn parse(text: &str) -> Timeseries {
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let headers = lines.next().map(split_csv_line).unwrap_or_default();
        let rows = lines
            .map(|l| {
                split_csv_line(l)
                    .iter()
                    .map(|c| c.trim().parse::<f64>().ok())
                    .collect()
            })
            .collect();
        Timeseries { headers, rows }
    }

    pub fn index(&self, header: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == header)
    }

    /// (t_s, value) for every row where both cells are present and `keep` holds for the row.
    pub fn points_where(
        &self,
        header: &str,
        keep: impl Fn(&[Option<f64>]) -> bool,
    ) -> Vec<(f64, f64)> {
        let (Some(t), Some(c)) = (self.index(T_S), self.index(header)) else {
            return Vec::new();
        };
        (self.rows.iter())
            .filter(|r| keep(r))
            .filter_map(|r| Some((r.get(t).copied()??, r.get(c).copied()??)))
            .collect()
    }

    pub fn points(&self, header: &str) -> Vec<(f64, f64)> {
        self.points_where(header, |_| true)
    }

    /// Values of `header` over rows whose `t_s` lies in `[from_s, to_s)`.
    pub fn values_between(&self, header: &str, from_s: f64, to_s: f64) -> Vec<f64> {
        (self.points(header).into_iter())
            .filter(|(t, _)| *t >= from_s && *t < to_s)
            .map(|(_, v)| v)
            .collect()
    }
}

/// Splits one RFC 4180 line: fields may be quoted, `""` is a quote inside quotes.
fn split_csv_line(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quoted_headers_and_empty_cells() {
        let csv = "t_s,\"audit,eu.lag\",x\n0,5,\n1,,2.5\n";
        let ts = Timeseries::parse(csv);
        assert_eq!(ts.headers, ["t_s", "audit,eu.lag", "x"]);
        assert_eq!(ts.points("audit,eu.lag"), [(0.0, 5.0)]);
        assert_eq!(ts.points("x"), [(1.0, 2.5)]);
        assert_eq!(ts.values_between("x", 1.0, 2.0), [2.5]);
        assert!(ts.points("missing").is_empty());
        assert_eq!(split_csv_line("\"a\"\"b\",c"), ["a\"b", "c"]);
    }

    #[test]
    fn reads_what_the_writer_writes() {
        use crate::report::columns::ACKED;
        let csv = format!("{T_S},{ACKED}\n0,10\n1,12\n2,nonsense\n");
        let ts = Timeseries::parse(&csv);
        assert_eq!(ts.points_where(ACKED, |r| r[0] != Some(0.0)), [(1.0, 12.0)]);
        assert_eq!(ts.rows.len(), 3);
    }
}
