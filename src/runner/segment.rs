//! A run's segment joining the others (docs/segments.md, "A common start"):
//! what it may not run, the scenario's digest, and its arrival at the meeting.

use std::time::Duration;

use super::external_target;
use crate::coordinator::meeting::{Arrival, Meeting};
use crate::error::{Error, Result};
use crate::plan::{Plan, Segment};
use crate::report;
use crate::scenario::{RedisMode, Scenario};

/// `--segment I/N`, `--meet`, `--segment-wait`.
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    pub segment: Segment,
    /// The meeting's name; None: the scenario's name and N.
    pub meet: Option<String>,
    /// How long to wait for the other segments, at the start and at the end.
    pub wait: Duration,
}

/// Registers this process as its segment of the run at the Redis the
/// segments share and returns the meeting and the run's id (docs/segments.md,
/// "A common start").
pub(super) async fn join_meeting(
    scenario: &Scenario,
    options: &SegmentOptions,
) -> Result<(Meeting, String)> {
    let segment = options.segment;
    if scenario.redis.mode != RedisMode::External {
        return Err(Error::Usage(format!(
            "--segment {segment}: the segments of a run meet at, and test, one Redis they all \
             reach; a managed server would be each process's own. Pass --redis \
             redis://host:port (or set [redis] mode = \"external\" and url)"
        )));
    }
    check_segment(scenario, segment)?;
    let target = external_target(&scenario.redis)?;
    let mut conn = target.connect(crate::plan::RESPONSE_TIMEOUT).await?;
    let name =
        (options.meet.clone()).unwrap_or_else(|| format!("{}:{}", scenario.name, segment.count));
    let stamp = report::utc::basic_stamp(crate::clock::unix_now_ns());
    let proposed = format!("{}-{stamp}", scenario.name);
    let resolved = serde_json::to_string(scenario)
        .map_err(|e| Error::Internal(format!("the scenario's digest: {e}")))?;
    let arrival = Arrival {
        name: &name,
        segment,
        wait: options.wait,
        proposed_run_id: &proposed,
        digest: &format!("{:016x}", fnv1a(resolved.as_bytes())),
        run_length: scenario.duration.as_duration()
            + scenario.reply_grace.as_duration()
            + scenario.drain_timeout.as_duration(),
    };
    Meeting::arrive(&mut conn, arrival).await
}

/// What a segment cannot do yet, or would do nothing of, said before it
/// makes the others wait (docs/segments.md, "Segments").
fn check_segment(scenario: &Scenario, segment: Segment) -> Result<()> {
    // Versions within an aggregate are counted by the process that writes
    // them, and order is checked by the process that reads: split over
    // several, neither holds.
    for (i, g) in scenario.groups.iter().enumerate() {
        let versioned = [
            (g.check_order, "check_order"),
            (g.projection.is_some(), "projection"),
            (g.replay.is_some(), "replay"),
        ];
        if let Some((_, field)) = versioned.iter().find(|(set, _)| *set) {
            return Err(Error::Usage(format!(
                "--segment {segment}: groups[{i}].{field} relies on each aggregate's versions, \
                 which a segment numbers for its own producers only: run this scenario as one \
                 process, or without `{field}`"
            )));
        }
    }
    let whole = Plan::new(scenario.clone(), String::new());
    let connections = whole.producers_by_connection().len();
    let plan = whole.in_segment(segment);
    let consumers: usize = (plan.groups.iter())
        .map(|g| plan.consumers_run(g).count())
        .sum();
    if plan.producers_run().next().is_none() && consumers == 0 {
        return Err(Error::Usage(format!(
            "--segment {segment}: this segment would run no producer and no consumer (the \
             scenario has {connections} producer connection(s) and {} consumer(s)): use fewer \
             segments, or more producers (count, connections) and consumers",
            scenario.groups.iter().map(|g| g.consumers).sum::<u32>()
        )));
    }
    Ok(())
}

/// FNV-1a: a digest every build computes alike, unlike std's hasher.
fn fnv1a(bytes: &[u8]) -> u64 {
    (bytes.iter()).fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
