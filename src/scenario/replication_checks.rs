//! Checks of what a scenario asks of replication: a replica only where
//! streamdrill starts the servers, and WAIT only where something replicates.
//! (What faults need of the replica, each kind's spec says: `faults`.)
//! Pure; called by `validate`.

use super::violation::Violation;
use super::{RedisMode, Scenario};

pub(super) fn check(s: &Scenario) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut add = |field: String, problem: String| v.push(Violation { field, problem });
    let managed = s.redis.mode == RedisMode::Managed;
    if s.redis.replica && !managed {
        add(
            "redis.replica".into(),
            "streamdrill starts a replica only for a managed Redis; an external one \
             replicates by its own setup: remove replica"
                .into(),
        );
    }
    for (i, p) in s.producers.iter().enumerate() {
        let Some(w) = p.wait else { continue };
        if w.replicas == 0 {
            add(
                format!("producers[{i}].wait.replicas"),
                "must be at least 1 (WAIT 0 waits for nothing)".into(),
            );
        }
        if w.timeout.is_zero() {
            add(
                format!("producers[{i}].wait.timeout"),
                "must be more than 0s: WAIT with timeout 0 blocks until the replicas answer, \
                 for ever if they never do"
                    .into(),
            );
        }
        if managed && !s.redis.replica {
            add(
                format!("producers[{i}].wait"),
                "WAIT needs a replica: set [redis] replica = true (or use an external \
                 Redis that has replicas)"
                    .into(),
            );
        }
    }
    v
}
