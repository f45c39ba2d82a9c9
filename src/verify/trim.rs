//! What trimming did to a group's stream, from the read-back's XINFO STREAM
//! of each of its keys, and whether it alone removed entries, all from the
//! head, so that an event the group never had delivered and that is gone
//! was trimmed before the group read it:
//! docs/measurement.md, "Trimmed before read".

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
    if let Some((key, _)) = infos.iter().find(|(_, i)| !i.contains_key("entries-added")) {
        head.unclassified_why = Some(format!(
            "XINFO STREAM {key} has no entries-added (a server before Redis 7.0), so what \
             trimming removed cannot be told"
        ));
        return head;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Stream `s` trimmed to 100, one group, and `extra` TOML at the end.
    fn plan(stream_extra: &str, extra: &str) -> Plan {
        let text = format!(
            r#"
name = "t"
duration = "10s"
[[streams]]
key = "s"
maxlen = 100
{stream_extra}
[[producers]]
stream = "s"
rate = 10
[[groups]]
stream = "s"
name = "g"
consumers = 2
processing = "1ms"
{extra}
"#
        );
        let scenario = crate::scenario::load_str(&text, "t.toml", &Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        Plan::new(scenario, "r".into())
    }

    fn info(added: u64, length: u64, max_deleted: &str) -> HashMap<String, String> {
        [
            ("entries-added", added.to_string()),
            ("length", length.to_string()),
            ("max-deleted-entry-id", max_deleted.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    fn head(plan: &Plan, max_deleted: &str) -> TrimmedHead {
        let keys = keys(plan, &plan.groups[0]);
        assert_eq!(keys, ["sd:r:s"]);
        trimmed_head(
            plan,
            &plan.groups[0],
            &[(keys[0], info(900, 100, max_deleted))],
        )
    }

    #[test]
    fn head_trimming_alone_is_classified() {
        let h = head(&plan("", ""), "0-0");
        assert_eq!((h.trimmed_entries, h.unclassified_why), (800, None));
        // A slow consumer cuts no read off.
        let slow = "[[faults]]\naction = \"slow_consumer\"\nat = \"1s\"\nduration = \"1s\"\n\
                    consumer = \"g/0\"\nfactor = 4";
        assert_eq!(head(&plan("", slow), "0-0").unclassified_why, None);
    }

    #[test]
    fn anything_but_head_trimming_leaves_gone_events_lost() {
        let why = |h: TrimmedHead| h.unclassified_why.unwrap_or_default();
        assert!(why(head(&plan("", ""), "5-0")).contains("deleted besides trimming"));
        let acked = plan("trim_policy = \"acked\"", "");
        assert!(why(head(&acked, "0-0")).contains("trim_policy = \"acked\""));
        let crash = "[[faults]]\naction = \"crash_consumer\"\nat = \"1s\"\nconsumer = \"g/0\"";
        assert!(why(head(&plan("", crash), "0-0")).contains("may cut a read off"));
        // A server before 7.0 does not say how many entries it ever took.
        let plan = plan("", "");
        let mut old = info(900, 100, "0-0");
        old.remove("entries-added");
        let h = trimmed_head(&plan, &plan.groups[0], &[("sd:r:s", old)]);
        assert!(why(h).contains("no entries-added"));
    }

    #[test]
    fn an_untrimmed_stream_needs_no_read_back() {
        let text = "name = \"t\"\nduration = \"1s\"\n[[producers]]\nstream = \"s\"\nrate = 1\n\
                    [[groups]]\nstream = \"s\"\nname = \"g\"";
        let scenario = crate::scenario::load_str(text, "t.toml", &Default::default()).unwrap();
        let plan = Plan::new(scenario, "r".into());
        assert!(keys(&plan, &plan.groups[0]).is_empty());
    }
}
