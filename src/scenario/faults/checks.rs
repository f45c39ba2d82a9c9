//! Checks of a drill's fault timeline that follow from each kind's [`Spec`],
//! the same for every kind: the target exists (and a network link has what
//! its proxy needs), what the kind needs is there (a managed Redis, the
//! replica, untrimmed streams to read back), its window fits in the run, and
//! no two faults of an exclusive kind overlap on one target. Then each kind's
//! own checks (`FaultKind::checks`). Every problem is reported, not just the
//! first. Pure; called by `validate`.

use super::{Fault, Lasts, Link, ReadBack, Spec, Target};
use crate::scenario::violation::Violation;
use crate::scenario::{Dur, RedisMode, Scenario};

/// All problems of the fault timeline, in timeline order.
pub(in crate::scenario) fn check(s: &Scenario) -> Vec<Violation> {
    let mut v = Vec::new();
    for (i, f) in s.faults.iter().enumerate() {
        let spec = f.kind.spec();
        let problems = (target(s, f, &spec).into_iter())
            .chain(needs(s, f, &spec))
            .chain(window(s, f, &spec))
            .chain(overlap(s, i, f, &spec))
            .chain(f.kind.checks(s, i));
        for (field, problem) in problems {
            v.push(Violation {
                field: format!("faults[{i}].{field}"),
                problem,
            });
        }
    }
    v
}

type Problems = Vec<(&'static str, String)>;

/// The consumer or producer exists; a network link has what its proxy needs.
fn target(s: &Scenario, f: &Fault, spec: &Spec) -> Problems {
    let problem = match spec.target {
        Target::Consumer(name) => super::resolve_consumer(s, name)
            .err()
            .map(|e| ("consumer", e)),
        Target::Producer(p) => super::resolve_producer(s, p).err().map(|e| ("producer", e)),
        Target::Network {
            link: Link::Clients,
            ..
        } => tcp_redis(s),
        Target::Network {
            link: Link::Replication,
            ..
        } => replication_link(s, f),
        // Checked with the cluster (`scenario::cluster`).
        Target::Slot { .. } | Target::Shard(_) => None,
        Target::ServerProcess | Target::ServerCommand => None,
    };
    problem.into_iter().collect()
}

/// Network faults on the clients' link put a TCP proxy between the harness
/// and Redis, which needs a plain TCP url.
fn tcp_redis(s: &Scenario) -> Option<(&'static str, String)> {
    let url = (s.redis.url.as_deref()).filter(|_| s.redis.mode == RedisMode::External)?;
    let why = match url {
        u if u.starts_with("redis://") => return None,
        // The harness would reach the proxy's loopback address, which the
        // server's certificate does not name (docs/tls.md, "Managed servers").
        u if u.starts_with("rediss://") => {
            "over TLS the certificate names the server, not the proxy's loopback address: run \
             the drill on a managed TLS server (tls = true) or on a plain redis:// url"
                .to_string()
        }
        u => format!("which needs a plain TCP url (redis://host:port), not {u:?}"),
    };
    Some((
        "action",
        format!("network faults put streamdrill's TCP proxy between the harness and Redis, {why}"),
    ))
}

/// A fault on the replication link needs the replica streamdrill starts, and
/// must begin while there is one (before a failover promotes it).
fn replication_link(s: &Scenario, f: &Fault) -> Option<(&'static str, String)> {
    let action = f.kind.action();
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
        .filter(|g| g.kind.spec().replica)
        .map(|g| g.at)
        .min()?;
    (f.at >= failover_at).then(|| {
        (
            "at",
            format!(
                "{action} on the replication link at {} starts after the failover at \
                 {failover_at}, when no replica is left; start it before the failover \
                 (e.g. a blackhole from a few seconds before it until after it)",
                f.at
            ),
        )
    })
}

/// A managed Redis, the replica, and untrimmed streams where the kind needs them.
fn needs(s: &Scenario, f: &Fault, spec: &Spec) -> Problems {
    let action = f.kind.action();
    let mut v = Vec::new();
    if spec.managed_redis && s.redis.mode != RedisMode::Managed {
        v.push((
            "action",
            format!(
                "{action} needs a managed Redis that streamdrill started and controls \
                 (hosted Redis refuse DEBUG and cannot be signalled): \
                 remove --redis / set [redis] mode = \"managed\""
            ),
        ));
    }
    if spec.replica && !s.redis.replica {
        v.push((
            "action",
            format!("{action} promotes the managed replica: set [redis] replica = true"),
        ));
    }
    let trimmed = (s.streams.iter()).any(|st| st.maxlen.is_some() || st.minid.is_some());
    if spec.read_back == ReadBack::Always && trimmed {
        v.push((
            "action",
            format!(
                "{action} reads the streams back to find acknowledged writes that are gone; \
                 trimming (maxlen/minid) removes entries too: drop it from [[streams]]"
            ),
        ));
    }
    v
}

/// The fault begins while producers run; a timed one lasts more than 0 s
/// and, where its kind says so, ends while they run, so the run measures the
/// recovery.
fn window(s: &Scenario, f: &Fault, spec: &Spec) -> Problems {
    let mut v = Vec::new();
    if f.at >= s.duration {
        v.push((
            "at",
            format!(
                "{} is not before the end of the run ({}): faults happen while producers run",
                f.at, s.duration
            ),
        ));
    }
    let Lasts::For { duration, in_run } = spec.lasts else {
        return v;
    };
    if duration.is_zero() {
        v.push(("duration", "must be more than 0s".into()));
    } else if in_run && end(f.at, duration) > s.duration.as_duration() {
        v.push((
            "duration",
            format!(
                "{} + {duration} ends after the run ({}): {} must end while producers run, \
                 so the run measures the recovery",
                f.at,
                s.duration,
                f.kind.action()
            ),
        ));
    }
    v
}

fn end(at: Dur, duration: Dur) -> std::time::Duration {
    at.as_duration() + duration.as_duration()
}

/// An exclusive kind acts once at a time on one target: the consumer keeps
/// one slowdown factor, a link's proxy one toxic of each kind.
fn overlap(s: &Scenario, index: usize, f: &Fault, spec: &Spec) -> Problems {
    let Some(duration) = spec.lasts.ends_after().filter(|_| spec.exclusive) else {
        return Vec::new();
    };
    let same = |g: &Fault| {
        std::mem::discriminant(&g.kind) == std::mem::discriminant(&f.kind)
            && shares_target(&g.kind.spec().target, &spec.target)
    };
    let overlaps = |g: &Fault| {
        let g_duration = g.kind.spec().lasts.ends_after().unwrap_or_default();
        g.at.as_duration() < end(f.at, duration) && f.at.as_duration() < end(g.at, g_duration)
    };
    let Some(earlier) = s.faults[..index]
        .iter()
        .position(|g| same(g) && overlaps(g))
    else {
        return Vec::new();
    };
    let on = match spec.target {
        Target::Network {
            shard: Some(shard), ..
        } => format!("on shard {shard}'s link or every shard's"),
        Target::Network { link, .. } => format!("on the same link ({})", link.name()),
        Target::Consumer(c) => format!("of the same consumer ({c})"),
        Target::Producer(p) => format!("of the same producer ({p})"),
        Target::Slot { stream, .. } => format!("on the same stream ({stream})"),
        Target::Shard(shard) => format!("on the same shard ({shard})"),
        Target::ServerProcess | Target::ServerCommand => "on the server".into(),
    };
    vec![(
        "at",
        format!(
            "overlaps faults[{earlier}], another {} {on}; one at a time: move `at` or merge \
             the two",
            f.kind.action()
        ),
    )]
}

/// Whether two faults act on one target. A network fault without a shard
/// acts on every shard's link, so it shares one with a fault on any shard.
fn shares_target(a: &Target, b: &Target) -> bool {
    match (a, b) {
        (
            Target::Network {
                link: la,
                shard: sa,
            },
            Target::Network {
                link: lb,
                shard: sb,
            },
        ) => la == lb && (sa.is_none() || sb.is_none() || sa == sb),
        _ => a == b,
    }
}
