//! What trimming did to a group's stream, from the read-back's XINFO STREAM
//! of each of its keys, and whether it alone removed entries, all from the
//! head, so that an event the group never had delivered and that is gone
//! was trimmed before the group read it (docs/measurement.md, "Trimmed
//! before read").

use std::collections::HashMap;

use crate::plan::{GroupPlan, Plan};

/// A trimmed stream as the read-back found it, for one group.
#[derive(Debug, Default, Clone)]
pub struct TrimmedHead {
    /// Entries removed from the stream (entries-added − length, every partition).
    pub trimmed_entries: u64,
    /// Why gone events cannot be put down to trimming, if they cannot.
    pub unclassified_why: Option<String>,
}

/// The group's stream's keys whose XINFO STREAM the read-back needs: none
/// for an untrimmed stream.
pub(super) fn keys<'a>(plan: &'a Plan, g: &GroupPlan) -> Vec<&'a str> {
    let keys = plan.partitions(g.stream);
    match keys.first().is_some_and(|s| s.trim.is_some()) {
        true => keys.iter().map(|s| s.key.as_str()).collect(),
        false => Vec::new(),
    }
}

/// `infos`: XINFO STREAM of each of `keys(plan, g)`, as field -> text.
pub(super) fn trimmed_head(
    plan: &Plan,
    g: &GroupPlan,
    infos: &[(&str, HashMap<String, String>)],
) -> TrimmedHead {
    let mut head = TrimmedHead::default();
    let mut deleted = Vec::new();
    for (key, info) in infos {
        let number = |f: &str| info.get(f).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        head.trimmed_entries += number("entries-added").saturating_sub(number("length"));
        // XDEL sets it; trimming, which removes from the head, does not.
        let max_deleted = info
            .get("max-deleted-entry-id")
            .map_or("0-0", String::as_str);
        if !matches!(max_deleted, "0-0" | "0") {
            deleted.push(format!("{key} up to {max_deleted}"));
        }
    }
    let acked_only = plan
        .partitions(g.stream)
        .first()
        .is_some_and(|s| s.trims_acked_only());
    head.unclassified_why = why_unclassified(plan, acked_only, &deleted);
    head
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
