//! Dead-lettering events of a schema version a group does not understand
//! (docs/event-sourcing.md, "Schema versions"): one EVAL per batch copies
//! each such entry, whole, to the stream's dead-letter stream with
//! `original_id`, `group` and `reason = unknown_schema_version`, and XACKs
//! it, atomically, so an event is never acknowledged without its copy.
//! A consumer reading new entries has only their ids and headers, not their
//! payloads: the script reads each entry where it is (XRANGE id id) rather
//! than having the consumer send it back. An entry trimmed away meanwhile
//! still gets a copy, of the three fields only, so none goes unrecorded.

use crate::wire::entries::Entry;

/// The `reason` of a dead-letter copy of an event of an unknown version.
pub const UNKNOWN_VERSION_REASON: &str = "unknown_schema_version";

/// KEYS: the dead-letter stream, then the keys the consumer reads. ARGV:
/// the group, the reason, then per entry the index of its key (from 0) and
/// its id. Returns how many entries it moved.
pub const DEAD_LETTER_SCRIPT: &str = "\
local moved = 0
for i = 3, #ARGV, 2 do
  local key, id = KEYS[tonumber(ARGV[i]) + 2], ARGV[i + 1]
  local found = redis.call('XRANGE', key, id, id)
  local fields = {}
  if #found == 1 then fields = found[1][2] end
  table.insert(fields, 'original_id')
  table.insert(fields, id)
  table.insert(fields, 'group')
  table.insert(fields, ARGV[1])
  table.insert(fields, 'reason')
  table.insert(fields, ARGV[2])
  redis.call('XADD', KEYS[1], '*', unpack(fields))
  redis.call('XACK', key, ARGV[1], id)
  moved = moved + 1
end
return moved
";

/// The EVAL moving `entries` (read from `keys`) to `dead_letter_key`.
pub fn dead_letter(
    dead_letter_key: &str,
    keys: &[String],
    group: &str,
    entries: &[&Entry],
) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(DEAD_LETTER_SCRIPT)
        .arg(keys.len() + 1)
        .arg(dead_letter_key)
        .arg(keys)
        .arg(group)
        .arg(UNKNOWN_VERSION_REASON);
    for e in entries {
        cmd.arg(e.key).arg(&e.id[..]);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_each_entry_by_its_key_and_id() {
        let entry = |key, id: &str| Entry {
            key,
            id: id.as_bytes().to_vec(),
            header: None,
            aggregate: None,
            kind: None,
        };
        let (a, b) = (entry(0, "1-0"), entry(1, "2-0"));
        let keys = ["s:p0".to_string(), "s:p1".to_string()];
        let packed = dead_letter("s:dlq", &keys, "g", &[&a, &b]).get_packed_command();
        let text = String::from_utf8_lossy(&packed);
        let args: Vec<&str> = text
            .split("\r\n")
            .filter(|l| !l.starts_with(['$', '*']))
            .collect();
        let tail = &args[2..];
        assert_eq!(
            tail,
            [
                "3",
                "s:dlq",
                "s:p0",
                "s:p1",
                "g",
                UNKNOWN_VERSION_REASON,
                "0",
                "1-0",
                "1",
                "2-0",
                ""
            ]
        );
    }

    #[test]
    fn the_script_writes_the_fields_every_dead_letter_has() {
        use crate::actors::reads::{DLQ_GROUP, DLQ_ORIGINAL_ID, DLQ_REASON};
        for field in [DLQ_ORIGINAL_ID, DLQ_GROUP, DLQ_REASON] {
            assert!(
                DEAD_LETTER_SCRIPT.contains(&format!("'{field}'")),
                "{field}"
            );
        }
    }
}
