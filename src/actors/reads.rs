//! The three reads a consumer makes, and their replies as one shape:
//! new entries (XREADGROUP >), its own pending entries after a restart
//! (XREADGROUP 0), and entries it takes over from others (XAUTOCLAIM).

use std::time::Duration;

use redis::Value;

use crate::event::{Entry, entries};
use crate::plan::GroupPlan;
use crate::scenario::AckMode;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    New,
    /// Re-read this consumer's own PEL from the start (a restarted consumer).
    OwnPending,
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
}

pub fn command(read: &Read, group: &GroupPlan, consumer: &str, stream_key: &str) -> redis::Cmd {
    match read {
        Read::New | Read::OwnPending => {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP").arg(&group.name).arg(consumer);
            cmd.arg("COUNT").arg(group.batch);
            if *read == Read::New {
                cmd.arg("BLOCK").arg(group.block.as_millis() as u64);
            }
            if group.ack == AckMode::Noack {
                cmd.arg("NOACK");
            }
            let id = if *read == Read::New { ">" } else { "0" };
            cmd.arg("STREAMS").arg(stream_key).arg(id);
            cmd
        }
        Read::Claim { cursor, min_idle } => {
            let mut cmd = redis::cmd("XAUTOCLAIM");
            cmd.arg(stream_key).arg(&group.name).arg(consumer);
            cmd.arg(min_idle.as_millis() as u64)
                .arg(cursor)
                .arg("COUNT")
                .arg(group.batch);
            cmd
        }
    }
}

/// XREADGROUP: [[stream, entries]] or nil; XAUTOCLAIM: [cursor, entries, deleted ids].
pub fn parse(read: &Read, reply: Value) -> Batch {
    let Value::Array(mut parts) = reply else {
        return Batch {
            entries: Vec::new(),
            cursor: None,
        };
    };
    match read {
        Read::Claim { .. } => {
            let mut parts = parts.drain(..);
            let cursor = match parts.next() {
                Some(Value::BulkString(c)) => Some(String::from_utf8_lossy(&c).into_owned()),
                _ => None,
            };
            Batch {
                entries: entries(parts.next().unwrap_or(Value::Nil)),
                cursor,
            }
        }
        Read::New | Read::OwnPending => {
            let mut all = Vec::new();
            for stream in parts {
                if let Value::Array(mut key_entries) = stream {
                    all.extend(entries(key_entries.pop().unwrap_or(Value::Nil)));
                }
            }
            Batch {
                entries: all,
                cursor: None,
            }
        }
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
        let batch = parse(&claim, reply);
        assert_eq!(batch.cursor.as_deref(), Some("5-0"));
        assert_eq!(batch.entries.len(), 1);
        assert_eq!(batch.entries[0].header.map(|h| h.seq), Some(7));
    }

    #[test]
    fn parses_xreadgroup_replies_and_timeouts() {
        let reply = Value::Array(vec![Value::Array(vec![
            bulk("s"),
            Value::Array(vec![entry("1-0", "0:1:5"), entry("1-1", "junk")]),
        ])]);
        let batch = parse(&Read::New, reply);
        assert_eq!(batch.entries.len(), 2);
        assert!(batch.entries[1].header.is_none());
        assert!(parse(&Read::New, Value::Nil).entries.is_empty());
    }
}
