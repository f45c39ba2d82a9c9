//! The three reads a consumer makes, and their replies as one shape:
//! new entries (XREADGROUP >), its own pending entries after a restart
//! (XREADGROUP from an id), and entries it takes over from others (XAUTOCLAIM);
//! plus the two commands that follow a read from a pending list when the group
//! has `max_deliveries`: the entries' delivery counts (XPENDING, which
//! XAUTOCLAIM does not return) and the move to the dead-letter stream; the
//! XACK of a processed batch; and the group created again after NOGROUP.
//! `every_command` lists them all for the preflight.

use std::time::Duration;

use redis::Value;

use crate::plan::GroupPlan;
use crate::scenario::AckMode;
use crate::wire::entries::{
    Entry, aggregate_of_entry_fields, header_of_entry_fields, kind_of_entry_fields,
};
use crate::wire::resp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    New,
    /// Re-read this consumer's own PEL after id `after` ("0": from the start),
    /// one id per key it reads, as a restarted consumer does. Entries that
    /// stay pending (poison) are passed by moving `after`, so the walk ends.
    OwnPending {
        after: Vec<String>,
    },
    /// XAUTOCLAIM from `cursor`.
    Claim {
        cursor: String,
        min_idle: Duration,
    },
}

/// What a read returned.
pub struct Batch {
    pub entries: Vec<Entry>,
    /// XAUTOCLAIM's next cursor; "0-0" once the PEL has been scanned.
    pub cursor: Option<String>,
    /// Reads from a pending list only: each entry's field/value array, which
    /// a dead-letter copy carries over. Empty for new entries (the hot path).
    pub fields: Vec<Value>,
}

impl Batch {
    /// Each entry's kind among `types`, read from its fields (a pending
    /// list's read keeps them; empty `types`: none is looked up).
    pub fn with_kinds(mut self, types: &[Vec<u8>]) -> Batch {
        if !types.is_empty() {
            for (entry, fields) in self.entries.iter_mut().zip(&self.fields) {
                entry.kind = kind_of_entry_fields(fields, types);
            }
        }
        self
    }
}

/// `keys`: the keys the consumer reads, several when it owns several
/// partitions; a reclaim only ever has one (validation).
pub fn command(read: &Read, group: &GroupPlan, consumer: &str, keys: &[String]) -> redis::Cmd {
    match read {
        Read::New | Read::OwnPending { .. } => {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP").arg(&group.name).arg(consumer);
            cmd.arg("COUNT").arg(group.batch);
            if *read == Read::New {
                cmd.arg("BLOCK").arg(group.block.as_millis() as u64);
            }
            if group.ack == AckMode::Noack {
                cmd.arg("NOACK");
            }
            cmd.arg("STREAMS").arg(keys);
            match read {
                Read::OwnPending { after } => cmd.arg(after),
                _ => cmd.arg(vec![">"; keys.len()]),
            };
            cmd
        }
        Read::Claim { cursor, min_idle } => {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(&keys[0]).arg(&group.name).arg(consumer);
            cmd.arg(min_idle.as_millis() as u64)
                .arg(cursor)
                .arg("COUNT")
                .arg(group.batch);
            cmd
        }
    }
}

/// `XACK key group id...` of a processed batch, one per key it came from,
/// encoded in one go: they ride in front of the next read, on the hot path.
/// Returns the commands and how many there are.
pub fn ack(keys: &[String], group: &str, entries: &[Entry]) -> (Vec<u8>, usize) {
    let mut packed = Vec::with_capacity(64 + entries.len() * 24);
    let mut commands = 0;
    for (i, key) in keys.iter().enumerate() {
        let n = entries.iter().filter(|e| e.key == i).count();
        if n == 0 {
            continue;
        }
        resp::array(&mut packed, 3 + n);
        resp::bulk(&mut packed, b"XACK");
        resp::bulk(&mut packed, key.as_bytes());
        resp::bulk(&mut packed, group.as_bytes());
        for e in entries.iter().filter(|e| e.key == i) {
            resp::bulk(&mut packed, &e.id);
        }
        commands += 1;
    }
    (packed, commands)
}

/// The group created again from the stream's start, as a consumer does on
/// NOGROUP (Redis restarted without persistence).
pub fn recreate_group(group: &GroupPlan, stream_key: &str) -> redis::Cmd {
    let mut cmd = redis::cmd("XGROUP");
    cmd.arg("CREATE")
        .arg(stream_key)
        .arg(&group.name)
        .arg("0")
        .arg("MKSTREAM");
    cmd
}

/// Every command a consumer of `group` may send, encoded as it sends it, with
/// what it is for: the preflight checks them before the run starts. Consumer
/// names are no matter of permissions, so consumer 0's commands stand for all.
pub fn every_command(group: &GroupPlan, stream_key: &str) -> Vec<(Vec<u8>, &'static str)> {
    let consumer = super::consumer::name(0);
    let keys = [stream_key.to_string()];
    let read = |read: Read| command(&read, group, &consumer, &keys).get_packed_command();
    let own = Read::OwnPending {
        after: vec!["0".into()],
    };
    let mut sent = vec![
        (read(Read::New), "reading new entries"),
        (read(own), "re-reading its own pending entries"),
        (
            recreate_group(group, stream_key).get_packed_command(),
            "creating its group again after NOGROUP",
        ),
    ];
    let entry = Entry {
        key: 0,
        id: b"0-1".to_vec(),
        header: None,
        aggregate: None,
        kind: None,
    };
    if group.ack == AckMode::Batch {
        let (acked, _) = ack(&keys, &group.name, std::slice::from_ref(&entry));
        sent.push((acked, "acknowledging a batch"));
    }
    if let Some((min_idle, _)) = group.reclaim {
        let cursor = "0-0".into();
        sent.push((
            read(Read::Claim { cursor, min_idle }),
            "reclaiming idle entries",
        ));
    }
    if group.max_deliveries.is_some() {
        let counts = delivery_counts(group, stream_key, std::slice::from_ref(&entry));
        let count = "counting an entry's deliveries";
        sent.extend(counts.cmd_iter().map(|c| (c.get_packed_command(), count)));
        let moved = dead_letter(group, stream_key, &[(&entry, &Value::Nil, 1)]);
        let dead_letters = "moving an entry to the dead-letter stream";
        // MULTI and EXEC are added when the pipeline is packed.
        let transaction = moved.is_transaction();
        if transaction {
            sent.push((redis::cmd("MULTI").get_packed_command(), dead_letters));
        }
        sent.extend(
            moved
                .cmd_iter()
                .map(|c| (c.get_packed_command(), dead_letters)),
        );
        if transaction {
            sent.push((redis::cmd("EXEC").get_packed_command(), dead_letters));
        }
    }
    sent
}

/// XACK's reply (`:n`, read in place): how many entries it acknowledged;
/// None for an error reply or anything else.
pub fn acked(reply: &[u8]) -> Option<u64> {
    let digits = reply.strip_prefix(b":")?.strip_suffix(b"\r\n")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// The replies of `commands` XACKs, the first at index 0, added up; None
/// if any of them failed.
pub fn acked_all(raw: &crate::wire::Raw, commands: usize) -> Option<u64> {
    (0..commands).map(|i| acked(raw.bytes(i))).sum()
}

/// XREADGROUP: [[stream, entries], ...] or nil, each entry's `key` its
/// stream's index in `keys`; XAUTOCLAIM: [cursor, entries, deleted ids].
pub fn parse(read: &Read, reply: Value, keys: &[String]) -> Batch {
    let mut batch = Batch {
        entries: Vec::new(),
        cursor: None,
        fields: Vec::new(),
    };
    let Value::Array(mut parts) = reply else {
        return batch;
    };
    match read {
        Read::Claim { .. } => {
            let mut parts = parts.drain(..);
            batch.cursor = match parts.next() {
                Some(Value::BulkString(c)) => Some(String::from_utf8_lossy(&c).into_owned()),
                _ => None,
            };
            (batch.entries, batch.fields) = entries_with_fields(parts.next().unwrap_or(Value::Nil));
        }
        Read::New | Read::OwnPending { .. } => {
            for stream in parts {
                let Value::Array(mut key_entries) = stream else {
                    continue;
                };
                let list = key_entries.pop().unwrap_or(Value::Nil);
                let key = match key_entries.pop() {
                    Some(Value::BulkString(k)) => keys.iter().position(|key| key.as_bytes() == k),
                    _ => None,
                };
                let Some(key) = key else { continue };
                let (mut entries, fields) = entries_with_fields(list);
                entries.iter_mut().for_each(|e| e.key = key);
                batch.entries.extend(entries);
                if *read != Read::New {
                    batch.fields.extend(fields);
                }
            }
        }
    }
    batch
}

/// Like `wire::entries::entries`, keeping each entry's fields. A pending entry that
/// was deleted from the stream comes back as `[id, nil]` and is skipped.
fn entries_with_fields(list: Value) -> (Vec<Entry>, Vec<Value>) {
    let Value::Array(items) = list else {
        return (Vec::new(), Vec::new());
    };
    let mut out = (
        Vec::with_capacity(items.len()),
        Vec::with_capacity(items.len()),
    );
    for item in items {
        let Value::Array(mut parts) = item else {
            continue;
        };
        let (Some(fields @ Value::Array(_)), Some(Value::BulkString(id)), None) =
            (parts.pop(), parts.pop(), parts.pop())
        else {
            continue;
        };
        out.0.push(Entry {
            key: 0,
            id,
            header: header_of_entry_fields(&fields),
            aggregate: aggregate_of_entry_fields(&fields),
            kind: None,
        });
        out.1.push(fields);
    }
    out
}

/// One XPENDING per entry (`XPENDING key group id id 1`), pipelined: the
/// delivery count of exactly these entries, whatever else is pending.
pub fn delivery_counts(group: &GroupPlan, stream_key: &str, entries: &[Entry]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    for e in entries {
        pipe.cmd("XPENDING")
            .arg(stream_key)
            .arg(&group.name)
            .arg(&e.id)
            .arg(&e.id)
            .arg(1);
    }
    pipe
}

/// The pipeline's replies as one count per entry; 0 where the entry is no
/// longer pending (acknowledged meanwhile) or the reply is not understood.
pub fn parse_delivery_counts(replies: Vec<Value>) -> Vec<u64> {
    replies
        .into_iter()
        .map(|rows| {
            let row: Option<Vec<(String, String, u64, u64)>> = redis::from_redis_value(rows).ok();
            row.and_then(|r| r.first().map(|r| r.3)).unwrap_or(0)
        })
        .collect()
}

/// Field names a dead-letter entry adds to the original fields.
pub const DLQ_ORIGINAL_ID: &str = "original_id";
pub const DLQ_DELIVERIES: &str = "deliveries";
pub const DLQ_GROUP: &str = "group";
/// Why it was dead-lettered: this reason, or the schema-version one
/// (`schema_versions::UNKNOWN_VERSION_REASON`).
pub const DLQ_REASON: &str = "reason";
pub const MAX_DELIVERIES_REASON: &str = "max_deliveries";

/// MULTI: one XADD to the group's dead-letter stream per entry (the original
/// fields plus its id, delivery count, group and reason), then one XACK of them all,
/// so an entry is never acknowledged without its copy, nor copied twice by
/// a consumer that crashes in between.
pub fn dead_letter(
    group: &GroupPlan,
    stream_key: &str,
    entries: &[(&Entry, &Value, u64)],
) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.atomic();
    for (entry, fields, deliveries) in entries {
        let cmd = pipe.cmd("XADD").arg(&group.dead_letter_key).arg("*");
        if let Value::Array(fields) = fields {
            for f in fields {
                cmd.arg(bulk_of(f));
            }
        }
        cmd.arg(DLQ_ORIGINAL_ID)
            .arg(&entry.id)
            .arg(DLQ_DELIVERIES)
            .arg(*deliveries)
            .arg(DLQ_GROUP)
            .arg(&group.name)
            .arg(DLQ_REASON)
            .arg(MAX_DELIVERIES_REASON);
    }
    let ids: Vec<&[u8]> = entries.iter().map(|(e, ..)| e.id.as_slice()).collect();
    pipe.cmd("XACK").arg(stream_key).arg(&group.name).arg(ids);
    pipe
}

fn bulk_of(v: &Value) -> &[u8] {
    match v {
        Value::BulkString(b) => b,
        Value::SimpleString(s) => s.as_bytes(),
        _ => b"",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, header: &str) -> Value {
        Value::Array(vec![bulk(id), Value::Array(vec![bulk("sd"), bulk(header)])])
    }

    #[test]
    fn reads_xack_counts_in_place() {
        assert_eq!(acked(b":3\r\n"), Some(3));
        assert_eq!(acked(b":0\r\n"), Some(0));
        assert_eq!(acked(b"-NOGROUP No such key\r\n"), None);
        assert_eq!(acked(b":3"), None, "a reply cut short");
        assert_eq!(acked(b""), None);
    }

    #[test]
    fn a_consumer_of_several_keys_reads_and_acks_each() {
        let keys = ["k:p1".to_string(), "k:p3".to_string()];
        let group = crate::plan::Plan::new(
            crate::scenario::load_str(
                "name = \"p\"\nduration = \"1s\"\n[[producers]]\nstream = \"s\"\nrate = 1\n\
                 [[groups]]\nstream = \"s\"\nname = \"g\"\n",
                "p.toml",
                &Default::default(),
            )
            .unwrap(),
            "r".into(),
        )
        .groups[0]
            .clone();
        let text = |cmd: redis::Cmd| {
            String::from_utf8_lossy(&cmd.get_packed_command()).replace("\r\n", " ")
        };
        let new = text(command(&Read::New, &group, "c0", &keys));
        assert!(new.ends_with("STREAMS $4 k:p1 $4 k:p3 $1 > $1 > "), "{new}");
        let after = vec!["0".into(), "7-0".into()];
        let own = text(command(&Read::OwnPending { after }, &group, "c0", &keys));
        assert!(
            own.ends_with("STREAMS $4 k:p1 $4 k:p3 $1 0 $3 7-0 "),
            "{own}"
        );

        let held = |key, id: &str| Entry {
            key,
            id: id.as_bytes().to_vec(),
            header: None,
            aggregate: None,
            kind: None,
        };
        let batch = [held(1, "2-0"), held(0, "1-0"), held(1, "3-0")];
        let (packed, commands) = ack(&keys, "g", &batch);
        let acks = String::from_utf8_lossy(&packed).replace("\r\n", " ");
        assert_eq!(commands, 2);
        assert_eq!(
            acks,
            "*4 $4 XACK $4 k:p1 $1 g $3 1-0 *5 $4 XACK $4 k:p3 $1 g $3 2-0 $3 3-0 "
        );

        let reply = Value::Array(vec![Value::Array(vec![
            bulk("k:p3"),
            Value::Array(vec![entry("9-0", "0:1:5")]),
        ])]);
        let read = Read::OwnPending {
            after: vec!["0".into(), "0".into()],
        };
        let parsed = parse(&read, reply, &keys);
        assert_eq!(parsed.entries[0].key, 1);
    }

    #[test]
    fn parses_xautoclaim_replies() {
        let reply = Value::Array(vec![
            bulk("5-0"),
            Value::Array(vec![entry("1-0", "0:7:100")]),
            Value::Array(vec![]),
        ]);
        let claim = Read::Claim {
            cursor: "0-0".into(),
            min_idle: Duration::from_secs(1),
        };
        let batch = parse(&claim, reply, &["s".into()]);
        assert_eq!(batch.cursor.as_deref(), Some("5-0"));
        assert_eq!(batch.entries.len(), 1);
        assert_eq!(batch.entries[0].header.map(|h| h.seq), Some(7));
    }

    #[test]
    fn own_pending_reads_keep_fields_and_skip_deleted_entries() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![
                entry("1-0", "0:1:5"),
                Value::Array(vec![bulk("2-0"), Value::Nil]),
            ]),
        ])]);
        let read = Read::OwnPending {
            after: vec!["0".into()],
        };
        let batch = parse(&read, reply, &["s".into()]);
        assert_eq!(batch.entries.len(), 1);
        assert_eq!(batch.fields.len(), 1);
        assert_eq!(
            batch.fields[0],
            Value::Array(vec![bulk("sd"), bulk("0:1:5")])
        );
    }

    #[test]
    fn delivery_counts_come_from_xpending_rows() {
        let row = |n: i64| {
            Value::Array(vec![Value::Array(vec![
                bulk("1-0"),
                bulk("c0"),
                Value::Int(5),
                Value::Int(n),
            ])])
        };
        let counts = parse_delivery_counts(vec![row(3), Value::Array(vec![]), row(1)]);
        assert_eq!(counts, vec![3, 0, 1]);
    }

    #[test]
    fn dead_letters_copy_fields_and_are_acked_atomically() {
        let scenario = crate::scenario::load_str(
            "name = \"p\"\nduration = \"1s\"\n[[producers]]\nstream = \"s\"\nrate = 1\n\
             [[groups]]\nstream = \"s\"\nname = \"g\"\nmax_deliveries = 2\n\
             reclaim = { min_idle = \"1s\" }\n",
            "p.toml",
            &Default::default(),
        )
        .unwrap();
        let plan = crate::plan::Plan::new(scenario, "r".into());
        let group = &plan.groups[0];
        assert_eq!(group.dead_letter_key, "sd:r:s:dlq");
        let e = Entry {
            key: 0,
            id: b"1-0".to_vec(),
            header: None,
            aggregate: None,
            kind: None,
        };
        let fields = Value::Array(vec![bulk("sd"), bulk("0:1:5")]);
        let packed = dead_letter(group, "sd:r:s", &[(&e, &fields, 3)]).get_packed_pipeline();
        let text = String::from_utf8_lossy(&packed).replace("\r\n", " ");
        for part in [
            "MULTI",
            "XADD $10 sd:r:s:dlq $1 * $2 sd $5 0:1:5 $11 original_id $3 1-0 $10 deliveries $1 3 \
             $5 group $1 g $6 reason $14 max_deliveries",
            "XACK $6 sd:r:s $1 g $3 1-0",
            "EXEC",
        ] {
            assert!(text.contains(part), "{part:?} not in {text}");
        }
    }

    #[test]
    fn parses_xreadgroup_replies_and_timeouts() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![entry("1-0", "0:1:5"), entry("1-1", "junk")]),
        ])]);
        let keys = ["s".to_string()];
        let batch = parse(&Read::New, reply, &keys);
        assert_eq!(batch.entries.len(), 2);
        assert!(batch.entries[1].header.is_none());
        assert!(parse(&Read::New, Value::Nil, &keys).entries.is_empty());
    }
}
