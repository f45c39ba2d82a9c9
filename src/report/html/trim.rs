//! index.html's trimming table, in the "Event sourcing" section: per group
//! on a trimmed stream, what trimming took from it and how close it came to
//! the trimmed head (docs/event-sourcing.md, "Safe trimming").

use super::table;
use crate::report::summary::Summary;

pub(super) fn trim_table(summary: &Summary) -> String {
    let rows: Vec<Vec<String>> = (summary.groups.iter())
        .filter_map(|g| {
            let t = g.trim.as_ref()?;
            let unread = g.whole_run_opt(|p| p.trimmed_unread);
            let dash = |n: Option<u64>| n.map_or("-".to_string(), |n| n.to_string());
            Some(vec![
                g.name.clone(),
                t.policy.clone().unwrap_or_else(|| "-".into()),
                t.trimmed_entries.to_string(),
                dash(unread),
                dash(t.min_head_distance),
                t.unclassified_why.clone().unwrap_or_default(),
            ])
        })
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let headers = [
        "group",
        "trim policy",
        "entries trimmed",
        "trimmed unread",
        "min distance to the trimmed head",
        "gone events count as lost because",
    ];
    format!(
        "<p>Trimming, whole run: entries removed from each group's stream, events \
         trimmed before the group read them (gone unprocessed, apart from lost), and the \
         fewest entries between its read position and the trimmed head over the per-second \
         samples (0: it fell off the end).</p>\n{}",
        table(&headers, &rows)
    )
}
