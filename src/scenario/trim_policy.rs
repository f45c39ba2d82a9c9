//! `[[streams]] trim_policy`: what trimming may do to entries a group still
//! needs (docs/event-sourcing.md, "Safe trimming"), and its checks. Pure;
//! whether the server has the options is probed at setup, by sending them.

use serde::{Deserialize, Serialize};

use super::Scenario;
use super::violation::Violation;

/// Redis 8.2's XADD/XTRIM reference options, sent before the trim.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TrimPolicy {
    /// Trimmed entries stay referenced in the groups' pending lists (what
    /// trimming always did, made explicit).
    Keepref,
    /// Trimming also removes the entries from every group's pending list.
    Delref,
    /// Only entries every group has acknowledged are trimmed, so no group
    /// loses an entry it has not read or not finished.
    Acked,
}

impl TrimPolicy {
    /// As XADD spells it.
    pub fn arg(self) -> &'static str {
        match self {
            TrimPolicy::Keepref => "KEEPREF",
            TrimPolicy::Delref => "DELREF",
            TrimPolicy::Acked => "ACKED",
        }
    }

    /// As the scenario and summary.json spell it.
    pub fn name(self) -> &'static str {
        match self {
            TrimPolicy::Keepref => "keepref",
            TrimPolicy::Delref => "delref",
            TrimPolicy::Acked => "acked",
        }
    }
}

pub(super) fn check(s: &Scenario) -> Vec<Violation> {
    let mut v = Vec::new();
    for (i, st) in s.streams.iter().enumerate() {
        if let Some(policy) = st.trim_policy
            && st.maxlen.is_none()
            && st.minid.is_none()
        {
            v.push(Violation {
                field: format!("streams[{i}].trim_policy"),
                problem: format!(
                    "trim_policy = \"{}\" says how XADD trims, and stream `{}` is not trimmed: \
                     set `maxlen` or `minid`, or remove `trim_policy`",
                    policy.name(),
                    st.key
                ),
            });
        }
    }
    v
}
