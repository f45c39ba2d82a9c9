//! Interval-log entries that no late snapshot will reopen any more, moved out
//! of memory into an unnamed temporary file per tag until the report reads
//! them back. Kept in memory they grew with the run's length (about 8 KB a
//! second, 5 MB in 10 minutes): a day-long soak would have held 700 MB of
//! histograms nobody needed until the end.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};

use super::series::HlogInterval;

#[derive(Default)]
pub struct Spill {
    /// Per tag, one entry per line: `start_s len_s max_us encoded`.
    files: BTreeMap<String, File>,
}

impl Spill {
    /// Appends `entries` to the tag's file. On an error (no temporary
    /// directory, disk full) the caller keeps them in memory.
    pub fn write(&mut self, tag: &str, entries: &[HlogInterval]) -> io::Result<()> {
        if !self.files.contains_key(tag) {
            self.files.insert(tag.to_string(), tempfile::tempfile()?);
        }
        let file = self.files.get_mut(tag).expect("inserted above");
        file.seek(SeekFrom::End(0))?;
        let mut text = String::new();
        for e in entries {
            // f64's Display is the shortest text that parses back to the same value.
            text.push_str(&format!(
                "{} {} {} {}\n",
                e.start_s, e.len_s, e.max_us, e.encoded
            ));
        }
        file.write_all(text.as_bytes())
    }

    /// Everything written for `tag`, in the order written. A line that
    /// cannot be read back is skipped (it was written by this process).
    pub fn read(&self, tag: &str) -> Vec<HlogInterval> {
        let Some(mut file) = self.files.get(tag) else {
            return Vec::new();
        };
        if file.seek(SeekFrom::Start(0)).is_err() {
            return Vec::new();
        }
        (BufReader::new(file).lines())
            .map_while(Result::ok)
            .filter_map(|line| parse(&line))
            .collect()
    }

    pub fn tags(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }
}

fn parse(line: &str) -> Option<HlogInterval> {
    let mut parts = line.split(' ');
    let entry = HlogInterval {
        start_s: parts.next()?.parse().ok()?,
        len_s: parts.next()?.parse().ok()?,
        max_us: parts.next()?.parse().ok()?,
        encoded: parts.next()?.to_string(),
    };
    parts.next().is_none().then_some(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(start_s: f64) -> HlogInterval {
        HlogInterval {
            start_s,
            len_s: 1.0,
            max_us: 4_242,
            encoded: "HISTFAAAACR4nJNpmSzMwMDAyAABzFCaEUzOmQ==".into(),
        }
    }

    #[test]
    fn entries_come_back_as_written_in_order() {
        let mut spill = Spill::default();
        spill
            .write("produce.latency", &[entry(0.0), entry(1.0)])
            .unwrap();
        spill.write("e2e.g", &[entry(0.0)]).unwrap();
        let back = spill.read("produce.latency");
        assert_eq!(back, [entry(0.0), entry(1.0)]);
        // Writing after a read appends rather than overwriting.
        spill.write("produce.latency", &[entry(0.1 + 0.2)]).unwrap();
        let back = spill.read("produce.latency");
        assert_eq!(back.len(), 3);
        assert_eq!(back[2].start_s, 0.1 + 0.2, "floats round-trip exactly");
        assert_eq!(
            spill.tags().collect::<Vec<_>>(),
            ["e2e.g", "produce.latency"]
        );
        assert!(spill.read("nothing").is_empty());
    }
}
