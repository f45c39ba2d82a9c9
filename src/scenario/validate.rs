//! Checks a deserialized [`Scenario`] for what its types cannot express:
//! positive rates, groups reading streams that someone writes, sane
//! distributions. Pure (no I/O): `load` calls it and turns each
//! [`Violation`] into an error with a file line; the CLI may call it too.
//! Every problem text says what is allowed and how to fix it.

use super::violation::{Checks, Violation};
use super::{GroupConfig, Rate, RedisConfig, RedisMode, Scenario, TimeDist};
use std::collections::HashSet;

const MAX_CONSUMERS_PER_GROUP: u32 = 10_000;

/// All violations, in file order; empty when the scenario is valid.
pub fn validate(s: &Scenario) -> Vec<Violation> {
    let mut v = Checks(Vec::new());
    top_level(&mut v, s);
    redis(&mut v, s);
    if s.producers.is_empty() {
        v.add(
            "producers",
            "at least one producer is needed: add a [[producers]] table with `stream` and `rate`",
        );
    }
    for (i, p) in s.producers.iter().enumerate() {
        super::producer_checks::producer(&mut v, &format!("producers[{i}]"), p);
    }
    let written: Vec<&str> = s.producers.iter().map(|p| p.stream.as_str()).collect();
    streams(&mut v, s, &written);
    groups(&mut v, &s.groups, &written);
    slo(&mut v, s);
    v.0.extend(super::replication_checks::check(s));
    v.0.extend(super::cluster::check(s));
    v.0.extend(super::group_checks::check(s));
    v.0.extend(super::replay::check(s));
    v.0.extend(super::partition_checks::check(s));
    v.0.extend(super::schema_versions::check(s));
    v.0.extend(super::trim_policy::check(s));
    v.0.extend(super::faults::check(s));
    v.0
}

fn top_level(v: &mut Checks, s: &Scenario) {
    let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    if s.name.is_empty() || !s.name.chars().all(name_ok) {
        v.add(
            "name",
            format!(
                "{:?} cannot be used: the name goes into directory and key names, so use only \
                 letters, digits, '.', '_' and '-' (e.g. \"order-events\")",
                s.name
            ),
        );
    }
    if s.duration.is_zero() {
        v.add("duration", "must be more than 0, e.g. duration = \"30s\"");
    } else if s.warmup >= s.duration {
        v.add(
            "warmup",
            format!(
                "warmup ({}) must be shorter than duration ({}), which includes it",
                s.warmup, s.duration
            ),
        );
    }
    if s.drain_timeout.is_zero() {
        v.add(
            "drain_timeout",
            "must be more than 0 so consumers can finish, e.g. drain_timeout = \"10s\"",
        );
    }
    if s.reply_grace.is_zero() {
        v.add(
            "reply_grace",
            "must be more than 0 so the last XADDs can be answered, e.g. reply_grace = \"10s\"",
        );
    }
}

/// The TLS fields: which apply to which mode (docs/tls.md, "Settings").
fn tls(v: &mut Checks, r: &RedisConfig) {
    let external_tls = r.mode == RedisMode::External && r.uses_tls();
    let client_fields = [
        ("redis.tls_ca", r.tls_ca.is_some()),
        ("redis.tls_cert", r.tls_cert.is_some()),
        ("redis.tls_key", r.tls_key.is_some()),
        ("redis.tls_insecure", r.tls_insecure),
    ];
    for (field, set) in client_fields {
        match (set, r.mode, external_tls) {
            (false, _, _) | (true, RedisMode::External, true) => {}
            (true, RedisMode::External, false) => v.add(
                field,
                "applies to TLS connections: use a rediss:// URL, or remove it",
            ),
            (true, RedisMode::Managed, _) => v.add(
                field,
                "applies to an external rediss:// server; a managed TLS server (tls = true) \
                 gets a throwaway CA of streamdrill's own, which the harness trusts: remove \
                 it, or run against your server with --redis rediss://HOST:PORT",
            ),
        }
    }
    if r.tls_cert.is_some() != r.tls_key.is_some() && external_tls {
        let missing = if r.tls_cert.is_some() {
            "tls_key"
        } else {
            "tls_cert"
        };
        v.add(
            format!("redis.{missing}"),
            "a client certificate needs its key and a key its certificate: set both \
             tls_cert and tls_key (--tls-cert, --tls-key)",
        );
    }
    if external_tls && r.tls_insecure && r.tls_ca.is_some() {
        v.add(
            "redis.tls_insecure",
            "verifies nothing, so tls_ca would be ignored: remove one of the two",
        );
    }
    // redis-rs reads "#insecure" off a URL; the harness's own client does
    // not, and both must verify alike.
    if let Some(url) = r.url.as_deref().filter(|u| u.contains('#')) {
        v.add(
            "redis.url",
            format!(
                "{:?}: a URL fragment (#...) is not read; for an unverified TLS server set \
                 tls_insecure = true (--tls-insecure)",
                crate::error::redact(url)
            ),
        );
    }
    if r.mode == RedisMode::External && r.tls {
        v.add(
            "redis.tls",
            "starts a managed TLS-only server; an external server's URL says it: use \
             rediss://HOST:PORT and remove tls (or --tls)",
        );
    }
    if r.tls_auth_clients && !(r.mode == RedisMode::Managed && r.tls) {
        v.add(
            "redis.tls_auth_clients",
            "makes the managed TLS server (tls = true) ask clients for a certificate; an \
             external server decides that itself (give yours with tls_cert and tls_key)",
        );
    }
}

fn redis(v: &mut Checks, s: &Scenario) {
    let r = &s.redis;
    match (r.mode, &r.url) {
        (RedisMode::External, None) => v.add(
            "redis.url",
            "mode = \"external\" needs url = \"redis://host:port\"",
        ),
        // Refused here, not when the run connects: the per-event client and
        // the fault proxy speak TCP (docs/tls.md, "Unix sockets").
        (RedisMode::External, Some(url)) if url.starts_with("unix://") => v.add(
            "redis.url",
            "unix sockets are not supported: producers, consumers and the fault proxy \
             speak TCP; let the server listen on a TCP port too and use \
             redis://127.0.0.1:PORT",
        ),
        (RedisMode::External, Some(url))
            if !url.starts_with("redis://") && !url.starts_with("rediss://") =>
        {
            v.add(
                "redis.url",
                format!(
                    "{url:?} must start with redis:// (or rediss:// for TLS), \
                     e.g. redis://127.0.0.1:6379"
                ),
            )
        }
        (RedisMode::External, Some(_)) => {}
        (RedisMode::Managed, Some(_)) => v.add(
            "redis.url",
            "a managed server gets its own address: remove url or set mode = \"external\"",
        ),
        (RedisMode::Managed, None) => {}
    }
    match (r.mode, &r.server) {
        (RedisMode::External, Some(_)) => v.add(
            "redis.server",
            "names the binary of a server streamdrill starts, and an external one is already \
             running: remove `server`, or drop `--redis` / mode = \"external\" to start it",
        ),
        (RedisMode::Managed, Some(path)) if path.as_os_str().is_empty() => v.add(
            "redis.server",
            "must name a binary: a path such as \".servers/valkey-9.1.2/valkey-server\" \
             (from scripts/fetch-servers) or a name on PATH such as \"valkey-server\"; \
             leave it out for redis-server",
        ),
        _ => {}
    }
    tls(v, r);
    if r.power_fs && r.mode == RedisMode::External {
        v.add(
            "redis.power_fs",
            "puts the data files of a server streamdrill starts on its power-loss file \
             system; an external server keeps its own: remove power_fs, or drop --redis",
        );
    }
    if let Some(m) = &r.maxmemory
        && !is_redis_memory(m)
    {
        v.add(
            "redis.maxmemory",
            format!(
                "{m:?} is not a redis memory size; write e.g. \"256mb\", \"1gb\" or a byte count"
            ),
        );
    }
}

/// Redis's own memory syntax: digits then b, k, kb, m, mb, g or gb (any case).
fn is_redis_memory(s: &str) -> bool {
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let unit = s[digits..].to_ascii_lowercase();
    digits > 0 && ["", "b", "k", "kb", "m", "mb", "g", "gb"].contains(&unit.as_str())
}

fn streams(v: &mut Checks, s: &Scenario, written: &[&str]) {
    let mut seen = HashSet::new();
    for (i, st) in s.streams.iter().enumerate() {
        let at = format!("streams[{i}]");
        if st.key.is_empty() {
            v.add(
                format!("{at}.key"),
                "must name a stream, e.g. key = \"orders\"",
            );
        } else if !seen.insert(st.key.as_str()) {
            v.add(
                format!("{at}.key"),
                format!(
                    "stream {:?} is configured twice: merge the two [[streams]] tables",
                    st.key
                ),
            );
        } else if !written.contains(&st.key.as_str()) {
            v.add(
                format!("{at}.key"),
                format!(
                    "stream {:?} is written by no producer; producers write: {}",
                    st.key,
                    written.join(", ")
                ),
            );
        }
        if st.maxlen.is_some() && st.minid.is_some() {
            v.add(
                at.clone(),
                "set `maxlen` or `minid`, not both: XADD trims by one of them",
            );
        }
        if st.maxlen == Some(0) {
            v.add(
                format!("{at}.maxlen"),
                "must be at least 1 (leave it out to keep every entry)",
            );
        }
    }
}

fn groups(v: &mut Checks, groups: &[GroupConfig], written: &[&str]) {
    let mut seen = HashSet::new();
    for (i, g) in groups.iter().enumerate() {
        let at = format!("groups[{i}]");
        // Names identify groups in reports, histogram tags and fault targets.
        if !seen.insert(g.name.as_str()) {
            v.add(
                format!("{at}.name"),
                format!(
                    "a group named {:?} is already defined: give each group its own name",
                    g.name
                ),
            );
        }
        if g.name.is_empty() {
            v.add(
                format!("{at}.name"),
                "must name the group, e.g. name = \"billing\"",
            );
        }
        if !written.contains(&g.stream.as_str()) {
            v.add(
                format!("{at}.stream"),
                format!(
                    "group `{}` reads stream `{}`, which no producer writes; producers write: {}",
                    g.name,
                    g.stream,
                    written.join(", ")
                ),
            );
        }
        if g.consumers == 0 || g.consumers > MAX_CONSUMERS_PER_GROUP {
            v.add(
                format!("{at}.consumers"),
                format!(
                    "{} is out of range: use 1 to {MAX_CONSUMERS_PER_GROUP}",
                    g.consumers
                ),
            );
        }
        if g.batch == 0 {
            v.add(
                format!("{at}.batch"),
                "must be at least 1 (entries per XREADGROUP)",
            );
        }
        if g.block.as_duration() < std::time::Duration::from_millis(1)
            || g.block.as_duration() > std::time::Duration::from_secs(3600)
        {
            v.add(
                format!("{at}.block"),
                format!(
                    "{} is out of range: use 1ms to 1h (BLOCK 0 would wait forever)",
                    g.block
                ),
            );
        }
        if !is_start_id(&g.start) {
            v.add(
                format!("{at}.start"),
                format!(
                    "{:?} is not a stream id: use \"0\" (from the start), \"$\" (only new entries) \
                     or an id like \"1700000000000-0\"",
                    g.start
                ),
            );
        }
        processing(v, &format!("{at}.processing"), &g.processing);
    }
}

/// "0", "$", or `<ms>-<seq>` (Redis also accepts a bare `<ms>`).
fn is_start_id(s: &str) -> bool {
    let num = |p: &str| !p.is_empty() && p.len() <= 20 && p.parse::<u64>().is_ok();
    match s.split_once('-') {
        _ if s == "$" => true,
        Some((ms, seq)) => num(ms) && num(seq),
        None => num(s),
    }
}

fn processing(v: &mut Checks, at: &str, d: &TimeDist) {
    match d {
        TimeDist::Uniform { min, max } if min > max => {
            v.add(at, format!("min ({min}) is larger than max ({max})"))
        }
        TimeDist::Lognormal { mean, .. } if mean.is_zero() => v.add(
            at,
            "a lognormal mean must be above 0; use \"0s\" for no processing time",
        ),
        _ => {}
    }
}

fn slo(v: &mut Checks, s: &Scenario) {
    if let Some(r) = s.slo.min_rate_ratio
        && !(r > 0.0 && r <= 1.5)
    {
        v.add(
            "slo.min_rate_ratio",
            format!("{r} is out of range: use a fraction of the target rate above 0 and at most 1.5, e.g. 0.99"),
        );
    }
    if s.slo.min_rate_ratio.is_some() && s.producers.iter().any(|p| p.rate == Some(Rate::Max)) {
        v.add(
            "slo.min_rate_ratio",
            "a producer with rate = \"max\" has no target rate to compare with: remove min_rate_ratio",
        );
    }
    for (name, d) in [
        ("e2e_p99", s.slo.e2e_p99),
        ("produce_p99", s.slo.produce_p99),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            v.add(
                format!("slo.{name}"),
                "must be more than 0 (no latency is 0); e.g. \"25ms\"",
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::MAX_EVENT_SIZE;
    use toml_edit::DocumentMut;

    const BASE: &str = r#"
name = "ok"
duration = "10s"
[[producers]]
stream = "orders"
rate = 100
events = [{ type = "A" }]
[[groups]]
stream = "orders"
name = "g"
"#;

    /// BASE with `path=value` edits (as `--set` applies them); `-path` removes a key.
    fn with(edits: &[&str]) -> Scenario {
        let mut doc: DocumentMut = BASE.parse().expect("BASE parses");
        for edit in edits {
            if let Some(path) = edit.strip_prefix('-') {
                let (parent, key) = path.rsplit_once('.').expect("a dotted path");
                let mut item = doc.as_item_mut();
                for seg in parent.split('.') {
                    item = match seg.parse::<usize>() {
                        Ok(n) => &mut item[n],
                        Err(_) => &mut item[seg],
                    };
                }
                item.as_table_like_mut().expect("a table").remove(key);
            } else {
                let (path, value) = edit.split_once('=').expect("path=value");
                super::super::load::set_path(doc.as_item_mut(), path, value).expect("edit applies");
            }
        }
        toml::from_str(&doc.to_string()).unwrap_or_else(|e| panic!("{edits:?}: {e}"))
    }

    fn problems(edits: &[&str]) -> Vec<Violation> {
        validate(&with(edits))
    }

    #[test]
    fn valid_scenarios_pass() {
        assert_eq!(problems(&[]), []);
        // A stage may step (duration 0) and go to rate 0.
        let stages = "[{ duration = \"0s\", rate = 10 }, { duration = \"5s\", rate = 0 }]";
        let edits = ["-producers.0.rate", &format!("producers.0.stages={stages}")];
        assert_eq!(problems(&edits), []);
        // Whether the binary is there is for the run to find out, not validation.
        let server = "redis.server=\".servers/valkey-9.1.2/valkey-server\"";
        assert_eq!(problems(&[server]), []);
        for ok in ["256mb", "1GB", "1048576", "100k"] {
            assert!(is_redis_memory(ok), "{ok}");
        }
        for ok in ["0", "$", "1700000000000-0", "5"] {
            assert!(is_start_id(ok), "{ok}");
        }
    }

    /// Each case: edits to BASE, the field expected to be reported, and a piece of its text.
    #[rustfmt::skip]
    const CASES: &[(&[&str], &str, &str)] = &[
        (&["name=\"\""], "name", "only letters, digits"),
        (&["name=\"a/b\""], "name", "directory and key names"),
        (&["duration=0s"], "duration", "more than 0"),
        (&["warmup=10s"], "warmup", "shorter than duration"),
        (&["drain_timeout=0s"], "drain_timeout", "more than 0"),
        (&["reply_grace=0s"], "reply_grace", "more than 0"),
        (&["redis.mode=external"], "redis.url", "needs url"),
        (&["redis.mode=external", "redis.url=http://x"], "redis.url", "must start with redis://"),
        (&["redis.mode=external", "redis.url=\"unix:///tmp/redis.sock\""], "redis.url", "unix sockets are not supported"),
        (&["redis.mode=external", "redis.url=redis://x", "redis.tls_ca=ca.pem"], "redis.tls_ca", "use a rediss:// URL"),
        (&["redis.mode=external", "redis.url=redis://x", "redis.tls_insecure=true"], "redis.tls_insecure", "use a rediss:// URL"),
        (&["redis.tls=true", "redis.tls_cert=c.pem"], "redis.tls_cert", "throwaway CA"),
        (&["redis.mode=external", "redis.url=\"rediss://x\"", "redis.tls_cert=c.pem"], "redis.tls_key", "set both"),
        (&["redis.mode=external", "redis.url=\"rediss://x\"", "redis.tls=true"], "redis.tls", "remove tls"),
        (&["redis.tls_auth_clients=true"], "redis.tls_auth_clients", "(tls = true)"),
        (&["redis.mode=external", "redis.url=\"rediss://x\"", "redis.tls_insecure=true", "redis.tls_ca=ca.pem"], "redis.tls_insecure", "remove one"),
        (&["redis.mode=external", "redis.url=\"rediss://x#insecure\""], "redis.url", "set tls_insecure = true"),
        (&["redis.url=redis://x"], "redis.url", "remove url or set mode = \"external\""),
        (&["redis.maxmemory=lots"], "redis.maxmemory", "\"256mb\""),
        (&["redis.mode=external", "redis.url=redis://x", "redis.server=valkey-server"], "redis.server", "remove `server`, or drop `--redis`"),
        (&["redis.server=\"\""], "redis.server", "must name a binary"),
        (&["producers=[]"], "producers", "at least one producer"),
        (&["producers.0.stream=\"\""], "producers[0].stream", "stream = "),
        (&["producers.0.count=0"], "producers[0].count", "use 1 to 100000"),
        (&["producers.0.count=100001"], "producers[0].count", "use 1 to 100000"),
        (&["-producers.0.rate"], "producers[0]", "set `rate = 1000` or `stages = [...]`"),
        (&["producers.0.stages=[{duration=\"1s\", rate=1}]"], "producers[0]", "both `rate`"),
        (&["producers.0.rate=nan"], "producers[0].rate", "above 0"),
        (&["producers.0.rate=0"], "producers[0].rate", "above 0"),
        (&["producers.0.pipeline=16"], "producers[0].pipeline", "only applies to rate = \"max\""),
        (&["producers.0.connections=0"], "producers[0].connections", "use 1 to count"),
        (&["producers.0.linger=\"1s\""], "producers[0].linger", "at most 100ms"),
        (&["producers.0.rate=\"max\"", "producers.0.linger=\"1ms\""], "producers[0].linger", "only applies to scheduled"),
        (&["producers.0.count=2", "producers.0.connections=3"], "producers[0].connections", "use 1 to count (2)"),
        (&["producers.0.rate=\"max\"", "producers.0.count=2", "producers.0.connections=1"], "producers[0].connections", "drop `connections`"),
        (&["producers.0.rate=\"max\"", "producers.0.pipeline=0"], "producers[0].pipeline", "1 to 10000"),
        (&["producers.0.rate=\"max\"", "slo.min_rate_ratio=0.9"], "slo.min_rate_ratio", "no target rate"),
        (&["producers.0.start_rate=5"], "producers[0].start_rate", "only applies to `stages`"),
        (&["-producers.0.rate", "producers.0.stages=[{duration=\"1s\", rate=-1}]"], "producers[0].stages[0].rate", "0 or more"),
        (&["-producers.0.rate", "producers.0.stages=[{duration=\"1s\", rate=inf}]"], "producers[0].stages[0].rate", "finite"),
        (&["-producers.0.rate", "producers.0.stages=[{duration=\"1s\", rate=0}]"], "producers[0].stages", "every stage has rate 0"),
        (&["-producers.0.rate", "producers.0.stages=[{duration=\"1s\", rate=1}]", "producers.0.start_rate=nan"], "producers[0].start_rate", "0 or more"),
        (&["producers.0.aggregates={count=0}"], "producers[0].aggregates.count", "at least 1"),
        (&["producers.0.aggregates={count=16777217}"], "producers[0].aggregates.count", "at most 16777216"),
        (&["producers.0.aggregates={popularity=\"zipf\", exponent=0.0}"], "producers[0].aggregates.exponent", "above 0"),
        (&["producers.0.events.0.type=\"\""], "producers[0].events[0].type", "type = "),
        (&["producers.0.events.0.weight=-1"], "producers[0].events[0].weight", "0 or more"),
        (&["producers.0.events.0.weight=0"], "producers[0].events", "add up to 0"),
        (&["producers.0.events.0.size={dist=\"uniform\", min=10, max=5}"], "producers[0].events[0].size", "larger than max"),
        (&["producers.0.events.0.size={dist=\"lognormal\", mean=0, stddev=1}"], "producers[0].events[0].size", "mean must be above 0"),
        (&["streams=[{key=\"\"}]"], "streams[0].key", "must name a stream"),
        (&["streams=[{key=\"orders\"}, {key=\"orders\"}]"], "streams[1].key", "configured twice"),
        (&["streams=[{key=\"other\"}]"], "streams[0].key", "written by no producer; producers write: orders"),
        (&["streams=[{key=\"orders\", maxlen=10, minid=\"1s\"}]"], "streams[0]", "not both"),
        (&["streams=[{key=\"orders\", partitions=0}]"], "streams[0].partitions", "use 1 (one key) to 256"),
        (&["streams=[{key=\"orders\", partitions=257}]"], "streams[0].partitions", "use 1 (one key) to 256"),
        (&["streams=[{key=\"orders\", partitions=2}]", "groups.0.consumers=3"], "groups[0].consumers", "use at most 2 consumers"),
        (&["streams=[{key=\"orders\", partitions=2}]", "groups.0.consumers=2", "groups.0.reclaim={min_idle=\"1s\"}"], "groups[0]", "not supported yet"),
        (&["groups.0.consumers=2", "groups.0.projection=\"idempotent\""], "groups[0].projection", "use one consumer, or partition"),
        (&["streams=[{key=\"orders\", maxlen=100}]", "groups.0.projection=\"naive\""], "groups[0].projection", "remove `maxlen` / `minid`"),
        (&["groups.0.replay={batch=10}"], "groups[0].replay", "add projection = \"idempotent\""),
        (&["groups.0.projection=\"naive\"", "groups.0.replay={batch=0}"], "groups[0].replay.batch", "1 to 100000"),
        (&["groups.0.projection=\"naive\"", "groups.0.replay={checkpoint_every=0}"], "groups[0].replay.checkpoint_every", "at least 1"),
        (&["groups.0.projection=\"naive\"", "groups.0.replay={snapshot_every=0}"], "groups[0].replay.snapshot_every", "at least 1"),
        (&["groups.0.projection=\"naive\"", "groups.0.replay={compact=true}"], "groups[0].replay.compact", "add snapshot_every"),
        (&["groups=[{stream=\"orders\", name=\"g\", projection=\"naive\", replay={snapshot_every=5, compact=true}}, {stream=\"orders\", name=\"h\", projection=\"naive\", replay={}}]"], "groups[0].replay.compact", "compact in one group per stream"),
        (&["streams=[{key=\"orders\", maxlen=0}]"], "streams[0].maxlen", "at least 1"),
        (&["streams=[{key=\"orders\", trim_policy=\"acked\"}]"], "streams[0].trim_policy", "set `maxlen` or `minid`, or remove `trim_policy`"),
        (&["groups=[{stream=\"orders\", name=\"g\"}, {stream=\"payments\", name=\"g\"}]"], "groups[1].name", "already defined"),
        (&["groups.0.name=\"\""], "groups[0].name", "must name the group"),
        (&["groups.0.stream=payments"], "groups[0].stream", "group `g` reads stream `payments`, which no producer writes; producers write: orders"),
        (&["groups.0.consumers=0"], "groups[0].consumers", "use 1 to 10000"),
        (&["groups.0.consumers=10001"], "groups[0].consumers", "use 1 to 10000"),
        (&["groups.0.batch=0"], "groups[0].batch", "at least 1"),
        (&["groups.0.block=0s"], "groups[0].block", "BLOCK 0 would wait forever"),
        (&["groups.0.block=61m"], "groups[0].block", "1ms to 1h"),
        (&["groups.0.start=soon"], "groups[0].start", "\"0\" (from the start)"),
        (&["groups.0.start=1-x"], "groups[0].start", "not a stream id"),
        (&["groups.0.processing={dist=\"uniform\", min=\"2ms\", max=\"1ms\"}"], "groups[0].processing", "larger than max"),
        (&["groups.0.processing={dist=\"lognormal\", mean=\"0s\", stddev=\"0s\"}"], "groups[0].processing", "mean must be above 0"),
        (&["slo.min_rate_ratio=0.0"], "slo.min_rate_ratio", "above 0 and at most 1.5"),
        (&["slo.min_rate_ratio=1.6"], "slo.min_rate_ratio", "at most 1.5"),
        (&["slo.min_rate_ratio=nan"], "slo.min_rate_ratio", "out of range"),
        (&["slo.e2e_p99=0s"], "slo.e2e_p99", "more than 0"),
        (&["slo.produce_p99=0s"], "slo.produce_p99", "more than 0"),
    ];

    #[test]
    fn event_sizes_go_up_to_the_limit() {
        let size = |n: u64| problems(&[&format!("producers.0.events.0.size={n}")]);
        assert_eq!(size(MAX_EVENT_SIZE.get()), []);
        let over = MAX_EVENT_SIZE.get() + 1;
        let problem = format!("{over}B is too large: event sizes go up to {MAX_EVENT_SIZE}");
        let field = "producers[0].events[0].size".to_string();
        assert_eq!(size(over), [Violation { field, problem }]);
    }

    #[test]
    fn each_rule_reports_its_field_and_what_is_allowed() {
        for (edits, field, needle) in CASES {
            let v = problems(edits);
            assert!(
                v.iter()
                    .any(|v| v.field == *field && v.problem.contains(needle)),
                "{edits:?}: wanted `{field}`: ...{needle}...; got {v:?}"
            );
        }
    }
}
