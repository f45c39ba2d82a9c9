//! Checks of what a drill asks of replication: a replica only where
//! streamdrill starts the servers, a failover only with a replica (and once:
//! afterwards none is left), WAIT only where something replicates, and
//! network faults on the replication link only while there is a replica.
//! Pure; called by `fault_checks`.

use super::validate::Violation;
use super::{Fault, Link, RedisMode, Scenario};

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
    let mut failovers = 0;
    for (i, f) in s.faults.iter().enumerate() {
        if let Fault::Failover { .. } = f {
            failovers += 1;
            if !s.redis.replica {
                add(
                    format!("faults[{i}].action"),
                    "failover promotes the managed replica: set [redis] replica = true".into(),
                );
            }
            if failovers > 1 {
                add(
                    format!("faults[{i}].action"),
                    "one failover per run: after it no replica is left to promote".into(),
                );
            }
        }
        if let Some((field, problem)) = replication_link(s, f) {
            add(format!("faults[{i}].{field}"), problem);
        }
    }
    // Server faults after a failover need no check: the chaos actor sends them
    // to the promoted replica, which is the primary by then.
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

/// A fault on the replication link needs the replica streamdrill starts, and
/// must begin while there is one (before a failover promotes it).
fn replication_link(s: &Scenario, f: &Fault) -> Option<(&'static str, String)> {
    if f.link() != Some(Link::Replication) {
        return None;
    }
    let action = f.action_name();
    if s.redis.mode != RedisMode::Managed || !s.redis.replica {
        return Some((
            "link",
            format!(
                "{action} on link = \"replication\" acts on the link between the managed \
                 primary and the replica streamdrill starts: set [redis] mode = \"managed\" \
                 and replica = true, or drop link (default \"clients\": the harness's connections)"
            ),
        ));
    }
    let failover_at = (s.faults.iter())
        .filter(|f| matches!(f, Fault::Failover { .. }))
        .map(Fault::at)
        .min()?;
    (f.at() >= failover_at).then(|| {
        (
            "at",
            format!(
                "{action} on the replication link at {} starts after the failover at \
                 {failover_at}, when no replica is left; start it before the failover \
                 (e.g. a blackhole from a few seconds before it until after it)",
                f.at()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use crate::scenario::{Link, Overrides, load_str};

    /// A managed primary and replica, 1000/s for 10 s, a failover at 8 s.
    const BASE: &str = r#"
name = "drill"
duration = "10s"
[redis]
replica = true
[[producers]]
stream = "s"
rate = 1000
[[faults]]
action = "failover"
at = "8s"
"#;

    fn load(extra: &str, edits: &[&str]) -> Result<crate::scenario::Scenario, String> {
        let o = Overrides::parse(&edits.iter().map(|e| e.to_string()).collect::<Vec<_>>()).unwrap();
        load_str(&format!("{BASE}{extra}"), "drill.toml", &o).map_err(|e| e.to_string())
    }

    const BLACKHOLE: &str = "[[faults]]\naction = \"network_blackhole\"\nat = \"5s\"\n\
                             duration = \"4s\"\nlink = \"replication\"\n";

    #[test]
    fn the_replication_link_takes_network_faults_before_the_failover() {
        let s = load(BLACKHOLE, &[]).unwrap();
        assert_eq!(s.faults[1].link(), Some(Link::Replication));
        assert_eq!(s.faults[0].link(), None, "a failover is no network fault");
        // The default is the harness's connections, and it is not written out.
        let clients = load(&BLACKHOLE.replace("link = \"replication\"\n", ""), &[]).unwrap();
        assert_eq!(clients.faults[1].link(), Some(Link::Clients));
        let written = toml::to_string(&clients).unwrap();
        assert!(!written.contains("link"), "{written}");
        // One blackhole per link at a time: both links at once is fine.
        let both = format!("{BLACKHOLE}{}", BLACKHOLE.replace("replication", "clients"));
        load(&both, &[]).unwrap();
        let e = load(&format!("{BLACKHOLE}{BLACKHOLE}"), &[]).unwrap_err();
        assert!(e.contains("faults[2].at") && e.contains("same link"), "{e}");
        for other in [
            "network_latency\"\ndelay = \"5s",
            "network_bandwidth\"\nbytes_per_s = \"1KiB",
        ] {
            let f = BLACKHOLE.replace("network_blackhole", other);
            load(&f, &[]).unwrap_or_else(|e| panic!("{other}: {e}"));
        }
        let reset = "[[faults]]\naction = \"network_reset\"\nat = \"2s\"\nlink = \"replication\"\n";
        load(reset, &[]).unwrap();
        // The plan keeps the harness's connections out of it: no client
        // proxy, no shortened timeouts, and the window says which link.
        let plan = crate::plan::Plan::new(s, "run".into());
        assert!(plan.has_replication_faults() && !plan.has_network_faults());
        assert_eq!(plan.faults[1].label, "network_blackhole (replication)");
        assert_eq!(plan.response_timeout(), crate::connect::RESPONSE_TIMEOUT);
    }

    #[test]
    fn the_replication_link_needs_a_managed_replica_and_a_time_before_the_failover() {
        let e = load(BLACKHOLE, &["redis.replica=false"]).unwrap_err();
        assert!(e.contains("faults[1].link"), "{e}");
        assert!(e.contains("replica = true"), "{e}");
        assert!(e.contains("drill.toml"), "names the file: {e}");
        let late = BLACKHOLE
            .replace("at = \"5s\"", "at = \"8s\"")
            .replace("4s", "1s");
        let e = load(&late, &[]).unwrap_err();
        assert!(
            e.contains("faults[1].at") && e.contains("after the failover at 8s"),
            "{e}"
        );
        let e = load(BLACKHOLE, &["redis.mode=external", "redis.url=redis://h:1"]).unwrap_err();
        assert!(e.contains("faults[1].link") && e.contains("managed"), "{e}");
        let e = load(&BLACKHOLE.replace("\"replication\"", "\"replicas\""), &[]).unwrap_err();
        assert!(e.contains("clients") && e.contains("replication"), "{e}");
    }

    #[test]
    fn server_faults_after_a_failover_are_allowed() {
        for fault in [
            "action = \"client_kill\"\nat = \"9s\"",
            "action = \"client_pause\"\nat = \"9s\"\nduration = \"500ms\"",
            "action = \"kill_redis\"\nat = \"9s\"\nrestart_after = \"100ms\"",
        ] {
            load(&format!("[[faults]]\n{fault}\n"), &[]).unwrap_or_else(|e| panic!("{fault}: {e}"));
        }
    }
}
