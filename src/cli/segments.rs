//! The command line of runs split over several processes (docs/segments.md):
//! `run --segment I/N` and `merge DIR…`.

// The command line is where output goes to the terminal.
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use crate::error::Result;
use crate::plan::Segment;
use crate::runner::SegmentOptions;

#[derive(Debug, Args)]
pub struct SegmentArgs {
    /// Run segment I of N: a share of the producers and consumers, meeting
    /// the other N-1 processes through the Redis under test to start
    /// together; `streamdrill merge` joins their run directories.
    #[arg(long, value_name = "I/N", env = "STREAMDRILL_SEGMENT", value_parser = parse_segment)]
    pub segment: Option<Segment>,
    /// The segments' meeting name, the same for all N; default: the
    /// scenario's name and N. Tells two concurrent runs of one scenario apart.
    #[arg(
        long,
        value_name = "NAME",
        env = "STREAMDRILL_MEET",
        requires = "segment"
    )]
    pub meet: Option<String>,
    /// How long a segment waits for the others: at the start for all to
    /// be ready, at the end for all to finish.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = humantime::parse_duration)]
    pub segment_wait: Duration,
}

fn parse_segment(text: &str) -> std::result::Result<Segment, String> {
    Segment::parse(text)
}

impl SegmentArgs {
    pub fn options(&self) -> Option<SegmentOptions> {
        Some(SegmentOptions {
            segment: self.segment?,
            meet: self.meet.clone(),
            wait: self.segment_wait,
        })
    }
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The run directories of the segments of one run (`<run>-seg<I>of<N>`).
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Directory that receives the merged run directory, `<run id>`.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
}

/// `streamdrill merge`: 0 when the merged run passes its SLOs, 1 when not.
pub fn merge_command(args: &MergeArgs) -> Result<u8> {
    let merged = crate::merge::merge_dirs(&args.dirs, &args.out)?;
    print!("{}", crate::report::render_table(&merged.summary));
    println!("report: {}", merged.dir.display());
    for m in &merged.missing {
        let planned = (merged.summary.segments.iter().flatten())
            .find(|s| s.index == *m)
            .map_or(0, |s| s.planned_events);
        println!(
            "segment {m} missing: its {planned} planned events are unaccounted for (not counted \
             lost or sent); the merged run fails"
        );
    }
    Ok(u8::from(
        !merged.summary.slo.passed || !merged.missing.is_empty(),
    ))
}
