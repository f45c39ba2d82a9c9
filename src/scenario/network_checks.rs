//! Checks of one network fault: a TCP Redis the proxy can reach, a window
//! within the run, sane toxic values, and no overlap with another fault of
//! its kind on its link. Pure; called by `fault_checks`.

use super::{Fault, Link, RedisMode, Scenario};

/// A network fault's own problems, as (field, problem): it needs a TCP Redis
/// the proxy can reach, a window within the run, sane toxic values, and no
/// overlap with another network fault of its kind (one toxic of each kind at a time).
pub(super) fn problems(s: &Scenario, index: usize, f: &Fault) -> Vec<(&'static str, String)> {
    let mut v = Vec::new();
    if let Some(url) = s
        .redis
        .url
        .as_deref()
        .filter(|_| s.redis.mode == RedisMode::External && f.link() == Some(Link::Clients))
        && !url.starts_with("redis://")
    {
        v.push((
            "action",
            format!(
                "network faults put streamdrill's TCP proxy between the harness and Redis, \
                 which needs a plain TCP url (redis://host:port), not {url:?}"
            ),
        ));
    }
    let Some(duration) = f.network_duration() else {
        return v;
    };
    if duration.is_zero() {
        v.push(("duration", "must be more than 0s".into()));
    } else if f.at().as_duration() + duration.as_duration() > s.duration.as_duration() {
        v.push((
            "duration",
            format!(
                "{} + {duration} ends after the run ({}): network faults must end while \
                 producers run, so the run measures the recovery",
                f.at(),
                s.duration
            ),
        ));
    }
    match f {
        Fault::NetworkLatency { delay, .. } if delay.is_zero() => v.push((
            "delay",
            "must be more than 0s, e.g. delay = \"20ms\"".into(),
        )),
        Fault::NetworkBandwidth { bytes_per_s, .. } if bytes_per_s.0 == 0 => v.push((
            "bytes_per_s",
            "must be more than 0 (use network_blackhole to stop all traffic)".into(),
        )),
        _ => {}
    }
    let window = |g: &Fault| {
        let start = g.at().as_duration();
        (
            start,
            start + g.network_duration().unwrap_or_default().as_duration(),
        )
    };
    let (start, end) = window(f);
    // Each link has its own proxy, so only faults of one kind on one link clash.
    let overlaps = s.faults[..index].iter().position(|g| {
        let (g_start, g_end) = window(g);
        std::mem::discriminant(g) == std::mem::discriminant(f)
            && g.link() == f.link()
            && g_start < end
            && start < g_end
    });
    if let Some(earlier) = overlaps {
        v.push((
            "at",
            format!("overlaps faults[{earlier}] of the same kind on the same link; one at a time"),
        ));
    }
    v
}
