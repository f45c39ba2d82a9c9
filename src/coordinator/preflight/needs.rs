//! Every command a run sends to Redis, with the run's own keys as arguments
//! and what it is for, derived from the plan. The actors' commands come from
//! the code that encodes them (`producer::commands`, `reads::every_command`,
//! `sampler::readings`, `chaos::command`); setup's, the drain's and the
//! read-back's are written here under their senders' names, and a test
//! checks that every command the runtime's source sends is among them.

use crate::actors::{chaos, producer, projection, reads, sampler, schema_versions};
use crate::coordinator::delete_keys;
use crate::coordinator::setup::{PROBE_GROUP, create_group, probe_key};
use crate::event::AggregateVersion;
use crate::plan::Plan;
use crate::verify::READ_CHUNK;

/// One command the run will send.
pub(super) struct Need {
    /// As the run sends it, RESP-encoded.
    pub packed: Vec<u8>,
    /// e.g. "fault client_kill at 10s".
    pub needed_for: String,
}

impl Need {
    /// The command's arguments as text, for people.
    pub fn args(&self) -> Vec<String> {
        match redis::parse_redis_value(&self.packed) {
            Ok(redis::Value::Array(args)) => (args.into_iter())
                .map(|a| match a {
                    redis::Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
                    other => format!("{other:?}"),
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// "XADD", "CLIENT".
    pub fn name(&self) -> String {
        self.args()
            .first()
            .map_or(String::new(), |a| a.to_uppercase())
    }
}

/// The run's commands in the order the run first sends them, each once.
pub(super) fn of(plan: &Plan) -> Vec<Need> {
    let mut needs = Needs(Vec::new());
    let keys_of = |stream: usize| plan.partitions(stream).iter().map(|s| s.key.as_str());

    // Setup (setup.rs). The probe's XAUTOCLAIM is left out: it tries
    // whether the server has it, and the groups that need it ask below.
    needs.cmd(cmd(&["INFO", "server"]), "reading what the server is");
    // The admin connection and the actors' placement read the slot map.
    if plan.redis.cluster.is_some() {
        needs.cmd(cmd(&["CLUSTER", "SLOTS"]), "reading the cluster's slot map");
    }
    let probe = probe_key(plan);
    let probing = "the stream-feature probe";
    needs.cmd(create_group(&probe, PROBE_GROUP, "$"), probing);
    needs.cmd(cmd(&["XINFO", "GROUPS", &probe]), probing);
    // The trim-policy probe only matters to a run whose streams use one:
    // refused, it would read as a server without the option.
    if plan.streams.iter().any(|s| s.trim_policy.is_some()) {
        let xadd = [
            "XADD", &probe, "ACKED", "MAXLEN", "=", "1", "*", "sd", "probe",
        ];
        needs.cmd(cmd(&xadd), probing);
    }
    needs.cmd(cmd(&["DEL", &probe]), probing);
    // The segments' meeting (meeting.rs); its scripts' EVAL is checked
    // with the projections'. A --meet name is under the same prefix.
    if !plan.segment.is_whole() {
        let name = format!("{}:{}", plan.scenario.name, plan.segment.count);
        let meet = crate::coordinator::meeting::Meeting::key_of(&name);
        let meeting = "the segments' meeting";
        needs.cmd(cmd(&["TIME"]), meeting);
        needs.cmd(cmd(&["EVAL", "return 1", "1", &meet]), meeting);
        needs.cmd(cmd(&["HKEYS", &meet]), meeting);
        needs.cmd(cmd(&["DEL", &meet]), meeting);
    }
    for g in &plan.groups {
        for key in keys_of(g.stream) {
            let creating = format!("creating group {}", g.name);
            needs.cmd(create_group(key, &g.name, &g.start_id), creating);
        }
    }

    for p in &plan.producers {
        for stream in plan.partitions(p.stream) {
            for packed in producer::commands(p, stream) {
                needs.packed(packed, format!("producer {}", p.label));
            }
        }
    }
    for g in &plan.groups {
        for key in keys_of(g.stream) {
            for (packed, what) in reads::every_command(g, key) {
                needs.packed(packed, format!("group {}'s consumers: {what}", g.name));
            }
        }
    }
    for g in &plan.groups {
        let Some(mode) = g.projection else { continue };
        let projecting = format!("group {}'s {} projection", g.name, mode.name());
        let first = AggregateVersion {
            aggregate: 1,
            version: 1,
        };
        for c in projection::pipeline(mode, &g.projection_key, &[first]).cmd_iter() {
            needs.cmd(c.clone(), &projecting);
        }
        // Redis checks the idempotent script's own commands against the rules too.
        let key = g.projection_key.as_str();
        needs.cmd(cmd(&["HGET", key, "1:v"]), &projecting);
        needs.cmd(cmd(&["HINCRBY", key, "1:n", "1"]), &projecting);
        needs.cmd(cmd(&["HSET", key, "1:v", "1"]), &projecting);
    }
    for g in (plan.groups.iter()).filter(|g| g.schema.as_ref().is_some_and(|s| s.dead_letters())) {
        let moving = format!(
            "group {}'s dead-lettering of unknown schema versions",
            g.name
        );
        let keys: Vec<String> = keys_of(g.stream).map(String::from).collect();
        let entry = crate::wire::entries::Entry {
            key: 0,
            id: b"0-1".to_vec(),
            header: None,
            aggregate: None,
            kind: None,
        };
        let dlq = g.dead_letter_key.as_str();
        needs.cmd(
            schema_versions::dead_letter(dlq, &keys, &g.name, &[&entry]),
            &moving,
        );
        // Redis checks the script's own commands against the rules too.
        for key in &keys {
            needs.cmd(cmd(&["XRANGE", key, "0-1", "0-1"]), &moving);
            needs.cmd(cmd(&["XACK", key, &g.name, "0-1"]), &moving);
        }
        needs.cmd(cmd(&["XADD", dlq, "*", "original_id", "0-1"]), &moving);
    }
    let keys: Vec<String> = plan.streams.iter().map(|s| s.key.clone()).collect();
    let trimmed: Vec<bool> = plan.streams.iter().map(|s| s.trim.is_some()).collect();
    for c in sampler::readings(&keys, &trimmed).cmd_iter() {
        needs.cmd(c.clone(), "the sampler");
    }
    for f in &plan.faults {
        if let Some(c) = chaos::command(&f.kind) {
            needs.cmd(c, format!("fault {} at {}s", f.label, f.at.as_secs_f64()));
        }
    }

    // The drain (finish.rs) and the read-back (verify.rs).
    let chunk = READ_CHUNK.to_string();
    for s in &plan.streams {
        needs.cmd(
            cmd(&["XINFO", "STREAM", &s.key]),
            "the drain and the read-back",
        );
        let reading = "reading the stream back";
        needs.cmd(cmd(&["XRANGE", &s.key, "-", "+", "COUNT", &chunk]), reading);
    }
    for g in &plan.groups {
        let reading = format!("reading back group {}'s pending entries", g.name);
        for key in keys_of(g.stream) {
            needs.cmd(cmd(&["XPENDING", key, &g.name, "-", "+", &chunk]), &reading);
            needs.cmd(cmd(&["XRANGE", key, "0-1", "0-1"]), &reading);
        }
        if g.projection.is_some() {
            let reading = format!("reading back group {}'s projection", g.name);
            needs.cmd(cmd(&["HGETALL", &g.projection_key]), reading);
        }
        if g.dead_letters() {
            let reading = "reading back the dead-letter stream";
            needs.cmd(cmd(&["XLEN", &g.dead_letter_key]), reading);
            needs.cmd(cmd(&["XINFO", "STREAM", &g.dead_letter_key]), reading);
        }
    }
    // The replay phase, after the read-back (docs/event-sourcing.md, "Replay and snapshots").
    for (c, doing) in crate::coordinator::replay::commands(plan) {
        needs.cmd(c, doing);
    }
    // A managed server is thrown away whole; on anyone else's, the run
    // deletes its keys (`delete_run_keys`).
    if plan.external() {
        needs.cmd(delete_keys(plan), "deleting the run's keys afterwards");
    }
    needs.0
}

fn cmd(args: &[&str]) -> redis::Cmd {
    let mut c = redis::cmd(args[0]);
    c.arg(&args[1..]);
    c
}

/// The list, each command once (the first need of it names it).
struct Needs(Vec<Need>);

impl Needs {
    fn cmd(&mut self, c: redis::Cmd, needed_for: impl Into<String>) {
        self.packed(c.get_packed_command(), needed_for);
    }

    fn packed(&mut self, packed: Vec<u8>, needed_for: impl Into<String>) {
        if !self.0.iter().any(|n| n.packed == packed) {
            let needed_for = needed_for.into();
            self.0.push(Need { packed, needed_for });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::path::{Path, PathBuf};

    /// A plan with every feature that sends a command of its own: trims, a
    /// producer that waits, a reclaiming group that dead-letters, one
    /// without acks, each server-command fault.
    fn plan() -> Plan {
        let text = r#"
name = "all"
duration = "10s"
[redis]
replica = true
[[streams]]
key = "a"
maxlen = 1000
[[streams]]
key = "b"
minid = "1m"
[[producers]]
stream = "a"
rate = 10
wait = { replicas = 1, timeout = "10ms" }
[[producers]]
stream = "b"
rate = 10
[[producers]]
stream = "c"
rate = 10
[[groups]]
stream = "a"
name = "g"
reclaim = { min_idle = "1s" }
max_deliveries = 3
[[groups]]
stream = "b"
name = "n"
ack = "noack"
[[groups]]
stream = "c"
name = "p"
projection = "idempotent"
[[groups]]
stream = "c"
name = "q"
projection = "naive"
replay = { snapshot_every = 5, compact = true }
[[faults]]
action = "client_kill"
at = "1s"
[[faults]]
action = "client_pause"
at = "2s"
duration = "1s"
[[faults]]
action = "debug_sleep"
at = "4s"
duration = "1s"
"#;
        let scenario = crate::scenario::load_str(text, "all.toml", &Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        Plan::new(scenario, "r".into())
    }

    fn shown_all(plan: &Plan) -> Vec<String> {
        of(plan).iter().map(|n| n.args().join(" ")).collect()
    }

    #[test]
    fn every_command_carries_the_runs_own_keys() {
        let shown = shown_all(&plan());
        for command in [
            "XGROUP CREATE sd:r:a:feature-probe streamdrill-probe $ MKSTREAM",
            "XGROUP CREATE sd:r:a g 0 MKSTREAM",
            "XADD sd:r:a MAXLEN ~ 1000 * sd 0:0:0 type Event agg 0:1 data ",
            "WAIT 1 10",
            "XADD sd:r:b MINID ~ 0 * sd 1:0:0 type Event agg 0:1 data ",
            "XREADGROUP GROUP g c0 COUNT 100 BLOCK 100 STREAMS sd:r:a >",
            "XREADGROUP GROUP n c0 COUNT 100 BLOCK 100 NOACK STREAMS sd:r:b >",
            "XACK sd:r:a g 0-1",
            "XAUTOCLAIM sd:r:a g c0 1000 0-0 COUNT 100",
            "XPENDING sd:r:a g 0-1 0-1 1",
            "MULTI",
            "EXEC",
            "INFO cpu",
            "CLIENT KILL TYPE normal SKIPME yes",
            "CLIENT PAUSE 1000 ALL",
            "DEBUG SLEEP 1.000",
            "XLEN sd:r:a:dlq",
            "HINCRBY sd:r:c:proj:q 1:n 1",
            "HSET sd:r:c:proj:p 1:v 1",
            "HGETALL sd:r:c:proj:p",
        ] {
            assert!(
                shown.contains(&command.to_string()),
                "{command:?} not in {shown:#?}"
            );
        }
        let dead_letter = shown.iter().find(|c| c.starts_with("XADD sd:r:a:dlq *"));
        assert!(dead_letter.is_some(), "{shown:#?}");
        // A group that does not acknowledge sends no XACK of its own.
        assert!(
            !shown.iter().any(|c| c.starts_with("XACK sd:r:b")),
            "{shown:#?}"
        );
        let eval = shown
            .iter()
            .find(|c| c.starts_with("EVAL ") && c.ends_with(" 1 sd:r:c:proj:p 1 1"));
        assert!(eval.is_some(), "{shown:#?}");
        let keys = "DEL sd:r:a sd:r:b sd:r:c sd:r:a:dlq sd:r:b:dlq sd:r:c:dlq sd:r:c:proj:p sd:r:c:proj:q \
             sd:r:c:replay:q sd:r:c:replay:q:tail sd:r:c:replay:q:pos sd:r:c:replay:q:snap";
        assert!(
            !shown.contains(&keys.to_string()),
            "managed: no DEL of the run's keys"
        );
        let mut external = plan();
        external.redis.mode = crate::scenario::RedisMode::External;
        let external = shown_all(&external);
        assert!(external.contains(&keys.to_string()), "{external:#?}");
        for replay in [
            "XRANGE sd:r:c - + COUNT 500",
            "HSET sd:r:c:replay:q:pos sd:r:c 0-1",
            "XTRIM sd:r:c MINID = 0-1",
            "HSET sd:r:c:replay:q:snap 1:n 1 1:v 1 1:id 0-1",
        ] {
            assert!(
                shown.contains(&replay.to_string()),
                "{replay:?} not in {shown:#?}"
            );
        }
        let fault = of(&plan()).into_iter().find(|n| n.name() == "CLIENT");
        assert_eq!(fault.unwrap().needed_for, "fault client_kill at 1s");
    }

    /// Where the runtime's commands are written: as the name given to
    /// redis-rs's `cmd`, or as a byte string the actors encode themselves.
    /// Where the run's commands are sent from (`connect/keys.rs` names
    /// commands, to route them, and sends none).
    const RUNTIME: [&str; 7] = [
        "src/coordinator",
        "src/actors",
        "src/verify.rs",
        "src/wire",
        "src/connect.rs",
        "src/connect/cluster.rs",
        "src/connect/route.rs",
    ];

    /// Commands the run sends but can do without, so the preflight does not
    /// ask for them: their refusal costs a figure of the report, not the run.
    const BEST_EFFORT: [&str; 2] = [
        // CONFIG GET of the settings that shape results: hosted Redis often refuse it.
        "CONFIG", // MEMORY USAGE of each stream after the run: its size is left out.
        "MEMORY",
    ];

    /// Upper-case words in `b"..."` that are arguments, not commands.
    const ARGUMENTS: [&str; 2] = ["MAXLEN", "MINID"];

    /// What every connection sends before anything else, the preflight's own
    /// too: a user that may not log in fails there, named by Redis.
    const LOGIN: [&str; 2] = ["AUTH", "SELECT"];

    /// The preflight's own transaction: it checks it as it goes. And what
    /// only cluster runs send: CLUSTER SLOTS is checked in those (the plans
    /// here are one server's); the rest only a managed cluster's nodes are
    /// sent, whose default user may do anything (coordinator::execute).
    const PREFLIGHT: [&str; 5] = ["DISCARD", "CLUSTER", "ASKING", "MIGRATE", "ROLE"];

    fn files(path: &Path, out: &mut Vec<PathBuf>) {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).unwrap() {
                files(&entry.unwrap().path(), out);
            }
        } else if path.extension().is_some_and(|x| x == "rs") {
            out.push(path.to_path_buf());
        }
    }

    /// Command names in source text: the words after `cmd("` and in `b"`
    /// (upper case, three letters or more).
    fn names_in(text: &str) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for start in ["cmd(\"", "b\""] {
            for (at, _) in text.match_indices(start) {
                let rest = &text[at + start.len()..];
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase())
                    .collect();
                if word.len() >= 3 && rest[word.len()..].starts_with('"') {
                    names.insert(word);
                }
            }
        }
        names
    }

    #[test]
    fn every_command_the_runtime_sends_is_checked_or_said_why_not() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut paths = Vec::new();
        for dir in RUNTIME {
            files(&root.join(dir), &mut paths);
        }
        let segment = crate::plan::Segment { index: 0, count: 2 };
        let checked: BTreeSet<String> = (of(&plan()).iter())
            .chain(&of(&plan().in_segment(segment)))
            .map(Need::name)
            .collect();
        let excused: BTreeSet<&str> = (BEST_EFFORT.into_iter())
            .chain(ARGUMENTS)
            .chain(LOGIN)
            .chain(PREFLIGHT)
            .collect();
        let mut unchecked = Vec::new();
        for path in &paths {
            let text = std::fs::read_to_string(path).unwrap();
            for name in names_in(&text) {
                if !checked.contains(&name) && !excused.contains(name.as_str()) {
                    unchecked.push(format!("{name} in {}", path.display()));
                }
            }
        }
        assert!(
            unchecked.is_empty(),
            "commands the run sends that the preflight does not check: add them to \
             `needs::of` (or, if the run does without them, to BEST_EFFORT): {unchecked:?}"
        );
        assert!(names_in("redis::cmd(\"XLEN\"), b\"XACK\", b\"ab\", cmd(\"x\")").len() == 2);
    }
}
