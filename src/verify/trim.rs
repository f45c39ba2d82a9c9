//! What trimming did to a group's stream, read back after the drain, and
//! whether it alone removed entries, all from the head, so that an event
//! the group never had delivered and that is gone was trimmed before the
//! group read it (docs/measurement.md, "Trimmed before read").

use redis::RedisResult;

use crate::connect::Conn;
use crate::plan::{GroupPlan, Plan};

/// A trimmed stream as the read-back found it, for one group.
#[derive(Debug, Default, Clone)]
pub struct TrimmedHead {
    /// Entries removed from the stream (entries-added − length, every partition).
    pub trimmed_entries: u64,
    /// Why gone events cannot be put down to trimming, if they cannot.
    pub unclassified_why: Option<String>,
}

/// None for a group whose stream is not trimmed.
pub(super) async fn trimmed_head(
    plan: &Plan,
    g: &GroupPlan,
    conn: &mut Conn,
) -> RedisResult<Option<TrimmedHead>> {
    let keys = plan.partitions(g.stream);
    let Some(first) = keys.first().filter(|s| s.trim.is_some()) else {
        return Ok(None);
    };
    let mut head = TrimmedHead::default();
    let mut deleted = Vec::new();
    for s in keys {
        let info = super::stream_info(conn, &s.key).await?;
        let number = |f: &str| info.get(f).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        head.trimmed_entries += number("entries-added").saturating_sub(number("length"));
        // XDEL sets it; trimming, which removes from the head, does not.
        let max_deleted = info
            .get("max-deleted-entry-id")
            .map_or("0-0", String::as_str);
        if super::parse_id(max_deleted) != (0, 0) {
            deleted.push(format!("{} up to {max_deleted}", s.key));
        }
    }
    head.unclassified_why = why_unclassified(plan, first.trims_acked_only(), &deleted);
    Ok(Some(head))
}

/// The rule's conditions (docs/measurement.md, "Trimmed before read").
fn why_unclassified(plan: &Plan, acked_only: bool, deleted: &[String]) -> Option<String> {
    if acked_only {
        return Some(
            "trim_policy = \"acked\" removes only entries every group acknowledged, so no \
             unread event was trimmed"
                .into(),
        );
    }
    if !deleted.is_empty() {
        return Some(format!(
            "entries were deleted besides trimming (max-deleted-entry-id): {}",
            deleted.join(", ")
        ));
    }
    // A fault that can cut a read off leaves the harness blind to a
    // delivery: a gone event it never saw delivered may have been read.
    plan.fault_cutting_reads().map(|f| {
        format!(
            "fault {} may cut a read off, so an event the group read may look unread",
            f.label
        )
    })
}
