//! Checks of a drill's fault timeline and recovery settings: every fault names
//! a consumer that exists, happens within the run, and reclaim settings are sane.
//! Pure; called by `validate`.

use super::validate::Violation;
use super::{Fault, RedisMode, Scenario};

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
        if f.kills_redis() {
            if s.redis.mode != RedisMode::Managed {
                add(
                    format!("{at}.action"),
                    "kill_redis needs a managed Redis that streamdrill can kill and restart: \
                     remove --redis / set [redis] mode = \"managed\""
                        .into(),
                );
            }
            if s.streams
                .iter()
                .any(|st| st.maxlen.is_some() || st.minid.is_some())
            {
                add(
                    format!("{at}.action"),
                    "kill_redis reads the streams back to find acknowledged writes that are gone; \
                     trimming (maxlen/minid) removes entries too: drop it from [[streams]]"
                        .into(),
                );
            }
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
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Overrides, load_str};

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
}
