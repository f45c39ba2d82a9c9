//! Checks of a drill's fault timeline and recovery settings: every fault names
//! a consumer that exists, happens within the run, and reclaim settings are sane;
//! a consumer slowdown has a sane factor and ends within the run;
//! network faults end within the run and have a TCP Redis for the proxy (or,
//! on the replication link, a managed replica).
//! Pure; called by `validate`.

use super::validate::Violation;
use super::{AckMode, Dur, Fault, GroupConfig, ProducerRef, RedisMode, Scenario, TimeDist};

/// Finds the consumer "<group>/<index>" names: (group index, consumer index).
pub fn resolve_consumer(s: &Scenario, name: &str) -> Result<(usize, u32), String> {
    let (group, index) = name.rsplit_once('/').ok_or_else(|| {
        format!("{name:?} is not a consumer: write it as \"<group>/<index>\", e.g. \"billing/0\"")
    })?;
    let matches: Vec<usize> = (0..s.groups.len())
        .filter(|&i| s.groups[i].name == group)
        .collect();
    let names = || {
        s.groups
            .iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let g = match matches[..] {
        [g] => g,
        [] => return Err(format!("no group is named {group:?}; groups: {}", names())),
        _ => {
            return Err(format!(
                "group name {group:?} is used on several streams; rename one"
            ));
        }
    };
    let consumers = s.groups[g].consumers;
    match index.parse::<u32>() {
        Ok(i) if i < consumers => Ok((g, i)),
        _ => Err(format!(
            "group {group:?} has consumers 0 to {}; {index:?} is not one of them",
            consumers.saturating_sub(1)
        )),
    }
}

pub(super) fn check(s: &Scenario) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut add = |field: String, problem: String| v.push(Violation { field, problem });
    for (i, f) in s.faults.iter().enumerate() {
        let at = format!("faults[{i}]");
        if let Some(Err(problem)) = f.consumer().map(|c| resolve_consumer(s, c)) {
            add(format!("{at}.consumer"), problem);
        }
        if let Fault::CrashProducer { producer, .. } = f
            && let Err(problem) = resolve_producer(s, producer)
        {
            add(format!("{at}.producer"), problem);
        }
        if f.needs_managed_redis() && s.redis.mode != RedisMode::Managed {
            add(
                format!("{at}.action"),
                format!(
                    "{} needs a managed Redis that streamdrill started and controls \
                     (hosted Redis refuse DEBUG and cannot be signalled): \
                     remove --redis / set [redis] mode = \"managed\"",
                    f.action_name()
                ),
            );
        }
        if let Some(duration) = f.server_duration() {
            for (field, problem) in within_run(s, f.at(), duration) {
                add(format!("{at}.{field}"), problem);
            }
        }
        let trimmed = (s.streams.iter()).any(|st| st.maxlen.is_some() || st.minid.is_some());
        if f.kills_redis() && trimmed {
            add(
                format!("{at}.action"),
                format!(
                    "{} reads the streams back to find acknowledged writes that are gone; \
                     trimming (maxlen/minid) removes entries too: drop it from [[streams]]",
                    f.action_name()
                ),
            );
        }
        if f.at() >= s.duration {
            add(
                format!("{at}.at"),
                format!(
                    "{} is not before the end of the run ({}): faults happen while producers run",
                    f.at(),
                    s.duration
                ),
            );
        }
        if let Fault::StallConsumer { duration, .. } = f
            && duration.is_zero()
        {
            add(
                format!("{at}.duration"),
                "a stall must last more than 0s".into(),
            );
        }
        for (field, problem) in slow(s, i, f) {
            add(format!("{at}.{field}"), problem);
        }
        if f.is_network() {
            for (field, problem) in super::network_checks::problems(s, i, f) {
                add(format!("{at}.{field}"), problem);
            }
        }
    }
    for violation in super::replication_checks::check(s) {
        add(violation.field, violation.problem);
    }
    for (i, g) in s.groups.iter().enumerate() {
        if let Some(r) = g.reclaim {
            if r.min_idle.is_zero() {
                add(
                    format!("groups[{i}].reclaim.min_idle"),
                    "must be more than 0s, or every pending entry would be stolen at once".into(),
                );
            }
            if r.every.is_zero() {
                add(
                    format!("groups[{i}].reclaim.every"),
                    "must be more than 0s".into(),
                );
            }
        }
        for (field, problem) in dead_letter_problems(g) {
            add(format!("groups[{i}].{field}"), problem.into());
        }
    }
    v
}

/// max_deliveries and poison only mean something with a pending list that
/// is reclaimed: without one a poisoned entry stays pending forever.
fn dead_letter_problems(g: &GroupConfig) -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    if let Some(max) = g.max_deliveries {
        if max == 0 {
            v.push(("max_deliveries", "must be at least 1"));
        }
        if g.reclaim.is_none() {
            v.push((
                "max_deliveries",
                "entries are dead-lettered when reclaimed: add reclaim = { min_idle = \"1s\" }",
            ));
        }
        if g.ack == AckMode::Noack {
            v.push((
                "max_deliveries",
                "with ack = \"noack\" nothing is pending or redelivered: remove one of them",
            ));
        }
    }
    if let Some(p) = g.poison {
        if !(0.0..=1.0).contains(&p.fraction) {
            v.push(("poison.fraction", "must be between 0 and 1, e.g. 0.01"));
        }
        if g.reclaim.is_none() || g.max_deliveries.is_none() {
            v.push((
                "poison",
                "poisoned events are never acknowledged: without reclaim and max_deliveries \
                 they stay pending forever (stranded); add both to the group",
            ));
        }
    }
    v
}

/// A timed server fault (freeze, pause, sleep) or a slowdown lasts more than 0 s and ends
/// while producers run, so the run measures the recovery.
fn within_run(s: &Scenario, at: Dur, duration: Dur) -> Vec<(&'static str, String)> {
    if duration.is_zero() {
        return vec![("duration", "must be more than 0s".into())];
    }
    if at.as_duration() + duration.as_duration() > s.duration.as_duration() {
        return vec![(
            "duration",
            format!(
                "{at} + {duration} ends after the run ({}): the fault must end while \
                 producers run, so the run measures the recovery",
                s.duration
            ),
        )];
    }
    Vec::new()
}

/// Largest `factor` of a slow_consumer: beyond it a window is a stall, and
/// `stall_consumer` says so plainly.
const MAX_SLOW_FACTOR: f64 = 1000.0;

/// A slow_consumer's own problems, as (field, problem): a factor that slows
/// (finite, more than 1, at most [`MAX_SLOW_FACTOR`]), a window within the
/// run, and no overlap with another slowdown of the same consumer (the
/// consumer keeps one factor at a time).
fn slow(s: &Scenario, index: usize, f: &Fault) -> Vec<(&'static str, String)> {
    let Fault::SlowConsumer {
        at,
        consumer,
        duration,
        factor,
    } = f
    else {
        return Vec::new();
    };
    let mut v = within_run(s, *at, *duration);
    if !factor.is_finite() || *factor <= 1.0 || *factor > MAX_SLOW_FACTOR {
        v.push((
            "factor",
            format!(
                "{factor} cannot be used: it multiplies each processing time, so it must be \
                 more than 1 and at most {MAX_SLOW_FACTOR}, e.g. factor = 5 for 5 times slower"
            ),
        ));
    }
    let idle =
        |g: &&GroupConfig| matches!(g.processing, TimeDist::Fixed { value } if value.is_zero());
    let group = resolve_consumer(s, consumer)
        .ok()
        .map(|(g, _)| &s.groups[g]);
    if let Some(g) = group.filter(idle) {
        v.push((
            "consumer",
            format!(
                "group {:?} has no processing time (processing = \"0s\"), which a factor \
                 leaves at 0: give it one, e.g. processing = \"1ms\"",
                g.name
            ),
        ));
    }
    let end = at.as_duration() + duration.as_duration();
    let overlaps = s.faults[..index].iter().position(|g| match g {
        Fault::SlowConsumer {
            at: g_at,
            consumer: g_consumer,
            duration: g_duration,
            ..
        } => {
            g_consumer == consumer
                && g_at.as_duration() < end
                && at.as_duration() < g_at.as_duration() + g_duration.as_duration()
        }
        _ => false,
    });
    if let Some(earlier) = overlaps {
        v.push((
            "at",
            format!(
                "overlaps faults[{earlier}], which slows {consumer:?} too; one slowdown per \
                 consumer at a time: move `at` or merge the two"
            ),
        ));
    }
    v
}

/// Finds the producer a fault names: "<label>/<n>" (label = the entry's
/// `name`, else its stream) or an index among all producers. Returns the
/// producer's dense id, as `plan::ProducerPlan::id`.
pub fn resolve_producer(s: &Scenario, producer: &ProducerRef) -> Result<u32, String> {
    let total: u32 = s.producers.iter().map(|p| p.count).sum();
    let labels = || {
        (s.producers.iter())
            .map(|p| format!("{}/0..{}", p.name.as_deref().unwrap_or(&p.stream), p.count))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match producer {
        ProducerRef::Index(i) if *i < total => Ok(*i),
        ProducerRef::Index(i) => Err(format!(
            "there are {total} producers (0 to {}); {i} is not one of them",
            total.saturating_sub(1)
        )),
        ProducerRef::Name(name) => {
            let mut first = 0;
            for p in &s.producers {
                let label = p.name.as_deref().unwrap_or(&p.stream);
                if let Some(n) = (name.strip_prefix(label))
                    .and_then(|rest| rest.strip_prefix('/'))
                    .and_then(|n| n.parse::<u32>().ok())
                    .filter(|&n| n < p.count)
                {
                    return Ok(first + n);
                }
                first += p.count;
            }
            Err(format!(
                "no producer is named {name:?}; write \"<label>/<n>\" or an index: {}",
                labels()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Dur, Overrides, load_str};

    const BASE: &str = r#"
name = "drill"
duration = "10s"
[[producers]]
stream = "s"
rate = 100
[[groups]]
stream = "s"
name = "billing"
consumers = 2
reclaim = { min_idle = "1s", every = "200ms" }
[[faults]]
action = "crash_consumer"
at = "2s"
consumer = "billing/1"
restart_after = "3s"
"#;

    fn error(edit: &str) -> String {
        let o = Overrides::parse(&[edit.to_string()]).unwrap();
        load_str(BASE, "drill.toml", &o).unwrap_err().to_string()
    }

    #[test]
    fn a_valid_drill_loads() {
        let s = load_str(BASE, "drill.toml", &Overrides::default()).unwrap();
        assert_eq!(resolve_consumer(&s, "billing/1"), Ok((0, 1)));
    }

    #[test]
    fn poison_needs_reclaim_and_max_deliveries() {
        assert!(error("groups.0.max_deliveries=0").contains("at least 1"));
        assert!(error("groups.0.poison={fraction=0.1}").contains("stranded"));
        let e = error("groups.0.poison={fraction=1.5}");
        assert!(e.contains("poison.fraction"), "{e}");
        let o = Overrides::parse(&[
            "groups.0.max_deliveries=3".to_string(),
            "groups.0.poison={fraction=0.1}".into(),
        ])
        .unwrap();
        assert!(load_str(BASE, "drill.toml", &o).is_ok());
    }

    #[test]
    fn faults_must_name_real_consumers_within_the_run() {
        assert!(error("faults.0.consumer=billing/2").contains("consumers 0 to 1"));
        assert!(error("faults.0.consumer=shipping/0").contains("groups: billing"));
        assert!(error("faults.0.consumer=billing").contains("\"<group>/<index>\""));
        assert!(error("faults.0.at=10s").contains("faults[0].at"));
        assert!(error("groups.0.reclaim.min_idle=0s").contains("reclaim.min_idle"));
        assert!(error("faults.0.action=explode").contains("crash_consumer"));
        let kill = Overrides::parse(&[
            "faults=[{action=\"kill_redis\", at=\"2s\"}]".to_string(),
            "redis.mode=external".into(),
            "redis.url=redis://h:1".into(),
        ])
        .unwrap();
        let e = load_str(BASE, "drill.toml", &kill).unwrap_err().to_string();
        assert!(e.contains("managed Redis"), "{e}");
    }

    fn with_faults(faults: &str, extra: &[&str]) -> Result<Scenario, String> {
        let mut edits = vec![format!("faults=[{faults}]")];
        edits.extend(extra.iter().map(|e| e.to_string()));
        let o = Overrides::parse(&edits).unwrap();
        load_str(BASE, "drill.toml", &o).map_err(|e| e.to_string())
    }

    #[test]
    fn network_faults_load_and_check_their_window() {
        let latency = r#"{action="network_latency", at="1s", duration="2s", delay="20ms"}"#;
        let s = with_faults(latency, &[]).unwrap();
        assert!(s.faults[0].is_network());
        assert_eq!(s.faults[0].network_duration(), Some(Dur::from_secs(2)));
        let ok = [
            r#"{action="network_blackhole", at="1s", duration="9s"}"#,
            r#"{action="network_bandwidth", at="1s", duration="1s", bytes_per_s="1MiB"}"#,
            r#"{action="network_reset", at="9s"}"#,
        ];
        for f in ok {
            with_faults(f, &[]).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        // Against an external TCP Redis too: the proxy is on the harness side.
        let external = ["redis.mode=external", "redis.url=redis://h:1"];
        with_faults(latency, &external).unwrap();
        let bad = [
            (
                r#"{action="network_blackhole", at="8s", duration="3s"}"#,
                "ends after the run",
            ),
            (
                r#"{action="network_blackhole", at="1s", duration="0s"}"#,
                "more than 0s",
            ),
            (
                r#"{action="network_latency", at="1s", duration="1s", delay="0s"}"#,
                ".delay",
            ),
            (
                r#"{action="network_bandwidth", at="1s", duration="1s", bytes_per_s=0}"#,
                "bytes_per_s",
            ),
            (r#"{action="network_reset", at="10s"}"#, "faults[0].at"),
            (
                r#"{action="network_reset", at="1s", duration="1s"}"#,
                "duration",
            ),
        ];
        for (f, want) in bad {
            let e = with_faults(f, &[]).expect_err(f);
            assert!(e.contains(want), "{f}: {e}");
        }
        let two = format!("{latency}, {}", latency.replace("at=\"1s\"", "at=\"2s\""));
        assert!(
            with_faults(&two, &[])
                .unwrap_err()
                .contains("overlaps faults[0]")
        );
        let after = latency.replace("at=\"1s\"", "at=\"3s\"");
        with_faults(&format!("{latency}, {after}"), &[]).unwrap();
    }

    #[test]
    fn slow_consumer_checks_target_factor_and_window() {
        let slow = |fields: &str| {
            format!(r#"{{action="slow_consumer", at="2s", consumer="billing/1", {fields}}}"#)
        };
        let ms = ["groups.0.processing=1ms"];
        for ok in [
            r#"duration="8s", factor=1000"#,
            r#"duration="1s", factor=1.5"#,
        ] {
            with_faults(&slow(ok), &ms).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let factor = "more than 1 and at most 1000, e.g. factor = 5";
        let bad = [
            (r#"duration="1s", factor=1"#, "`faults[0].factor`: 1 cannot"),
            (r#"duration="1s", factor=0.5"#, factor),
            (r#"duration="1s", factor=-3"#, factor),
            (r#"duration="1s", factor=1000.5"#, factor),
            (r#"duration="1s", factor=nan"#, "NaN cannot be used"),
            (r#"duration="1s", factor=inf"#, "inf cannot be used"),
            // Type errors and missing or unknown fields name the fault's table
            // (serde's tagged enums lose the span), so the text names the field.
            (r#"duration="1s", factor="5x""#, "a number for `factor`"),
            (r#"duration="1s""#, "missing field `factor`"),
            (r#"factor=5"#, "missing field `duration`"),
            (
                r#"duration="1s", factor=5, restart_after="1s""#,
                "unknown field",
            ),
            (
                r#"duration="0s", factor=5"#,
                "`faults[0].duration`: must be more",
            ),
            (
                r#"duration="9s", factor=5"#,
                "2s + 9s ends after the run (10s)",
            ),
        ];
        for (fields, want) in bad {
            let e = with_faults(&slow(fields), &ms).expect_err(fields);
            assert!(e.contains(want), "{fields}: {e}");
        }
        // One consumer, named as for crash and stall (not a whole group), of
        // a group with a processing time for the factor to multiply.
        let ok = slow(r#"duration="1s", factor=5"#);
        for (consumer, want) in [
            ("billing", "\"<group>/<index>\""),
            ("billing/2", "consumers 0 to 1"),
            ("billing/1", "give it one, e.g. processing = \"1ms\""),
        ] {
            let e = with_faults(&ok.replace("billing/1", consumer), &[]).unwrap_err();
            assert!(
                e.contains("`faults[0].consumer`") && e.contains(want),
                "{e}"
            );
        }
        // In a file, the error points at the line.
        let file = BASE
            .replace("\"crash_consumer\"", "\"slow_consumer\"")
            .replace("restart_after = \"3s\"", "duration = \"1s\"\nfactor = 0.5");
        let o = Overrides::parse(&ms.map(String::from)).unwrap();
        let e = load_str(&file, "drill.toml", &o).unwrap_err().to_string();
        assert!(e.starts_with("drill.toml:17: `faults[0].factor`"), "{e}");
        // Two slowdowns of one consumer at once are refused; apart, or of
        // two consumers, they are fine.
        let window = |at: &str, c: &str| {
            format!(
                r#"{{action="slow_consumer", at="{at}", consumer="{c}", duration="2s", factor=5}}"#
            )
        };
        let two = |at, consumer| format!("{}, {}", window("1s", "billing/0"), window(at, consumer));
        let e = with_faults(&two("2s", "billing/0"), &ms).unwrap_err();
        assert!(e.contains("`faults[1].at`: overlaps faults[0]"), "{e}");
        for (at, consumer) in [("3s", "billing/0"), ("2s", "billing/1")] {
            let faults = two(at, consumer);
            with_faults(&faults, &ms).unwrap_or_else(|e| panic!("{faults}: {e}"));
        }
    }

    #[test]
    fn producers_are_named_by_label_or_index() {
        let o = Overrides::parse(&[
            "producers=[{stream=\"s\", rate=10, count=2}, {stream=\"t\", name=\"api\", rate=5}]"
                .to_string(),
        ])
        .unwrap();
        let s = load_str(BASE, "drill.toml", &o).unwrap();
        let name = |n: &str| resolve_producer(&s, &ProducerRef::Name(n.into()));
        assert_eq!(name("s/1"), Ok(1));
        assert_eq!(name("api/0"), Ok(2));
        assert_eq!(resolve_producer(&s, &ProducerRef::Index(2)), Ok(2));
        assert!(name("t/0").unwrap_err().contains("s/0..2, api/0..1"));
        assert!(name("s/2").is_err());
        let e = resolve_producer(&s, &ProducerRef::Index(3)).unwrap_err();
        assert!(e.contains("0 to 2"), "{e}");
    }

    #[test]
    fn network_faults_need_a_tcp_redis() {
        let reset = r#"{action="network_reset", at="1s"}"#;
        let unix = ["redis.mode=external", "redis.url=unix:///tmp/redis.sock"];
        let e = with_faults(reset, &unix).unwrap_err();
        assert!(e.contains("plain TCP url"), "{e}");
    }

    #[test]
    fn server_faults_check_redis_mode_and_window() {
        let external = ["redis.mode=external", "redis.url=redis://h:1"];
        let managed_only = [
            r#"{action="freeze_redis", at="1s", duration="1s"}"#,
            r#"{action="restart_redis", at="1s"}"#,
            r#"{action="debug_sleep", at="1s", duration="1s"}"#,
        ];
        for f in managed_only {
            with_faults(f, &[]).unwrap_or_else(|e| panic!("{f}: {e}"));
            let e = with_faults(f, &external).expect_err(f);
            let name = f.split('"').nth(1).unwrap();
            assert!(e.contains(&format!("{name} needs a managed Redis")), "{e}");
        }
        for f in [
            r#"{action="client_kill", at="1s"}"#,
            r#"{action="client_pause", at="1s", duration="1s"}"#,
        ] {
            with_faults(f, &external).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
        let bad = [
            (
                r#"{action="client_pause", at="9s", duration="2s"}"#,
                "ends after the run",
            ),
            (
                r#"{action="freeze_redis", at="1s", duration="0s"}"#,
                "more than 0s",
            ),
            (r#"{action="debug_sleep", at="1s"}"#, "duration"),
        ];
        for (f, want) in bad {
            let e = with_faults(f, &[]).expect_err(f);
            assert!(e.contains(want), "{f}: {e}");
        }
        let trimmed = ["streams=[{key=\"s\", maxlen=10}]"];
        let e = with_faults(r#"{action="restart_redis", at="1s"}"#, &trimmed).unwrap_err();
        assert!(e.contains("restart_redis reads the streams back"), "{e}");
    }
}
