//! A group's projection: the writes that fold a processed batch into its
//! read model, one hash per group (`GroupPlan::projection_key`) with fields
//! `<aggregate>:n` (effects applied) and `<aggregate>:v` (last version
//! applied), and `skipped` (events the idempotent script refused). The
//! consumer sends them as soon as it has read a batch, before its
//! processing time and its XACK, so a crash in between redelivers applied
//! effects; the read-back in `verify` compares the model with the stream
//! (docs/event-sourcing.md, "Projections").

use crate::event::AggregateVersion;
use crate::scenario::Projection;

/// Applies each (aggregate, version) pair of ARGV only when its version
/// follows the stored one (absent: 0), atomically with that check, and
/// counts the others in `skipped`.
pub const IDEMPOTENT_SCRIPT: &str = "\
local skipped = 0
for i = 1, #ARGV, 2 do
  local a, v = ARGV[i], tonumber(ARGV[i + 1])
  local at = tonumber(redis.call('HGET', KEYS[1], a .. ':v') or '0')
  if at == v - 1 then
    redis.call('HINCRBY', KEYS[1], a .. ':n', 1)
    redis.call('HSET', KEYS[1], a .. ':v', v)
  else
    skipped = skipped + 1
  end
end
if skipped > 0 then redis.call('HINCRBY', KEYS[1], 'skipped', skipped) end
return skipped
";

/// A batch's projection writes, packed, and how many replies they get.
pub struct Writes {
    pub packed: Vec<u8>,
    pub replies: usize,
}

/// The writes for `events` (in processing order), or None when there are none.
pub fn writes(mode: Projection, key: &str, events: &[AggregateVersion]) -> Option<Writes> {
    if events.is_empty() {
        return None;
    }
    let pipe = pipeline(mode, key, events);
    Some(Writes {
        replies: pipe.len(),
        packed: pipe.get_packed_pipeline(),
    })
}

/// Naive: HINCRBY and HSET per event. Idempotent: one EVAL for the batch;
/// EVAL rather than EVALSHA because the harness has no SHA-1 of its own, and
/// Redis caches the compiled script by its body after the first call.
pub fn pipeline(mode: Projection, key: &str, events: &[AggregateVersion]) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    match mode {
        Projection::Naive => {
            for e in events {
                let a = e.aggregate;
                pipe.cmd("HINCRBY").arg(key).arg(format!("{a}:n")).arg(1);
                pipe.cmd("HSET")
                    .arg(key)
                    .arg(format!("{a}:v"))
                    .arg(e.version);
            }
        }
        Projection::Idempotent => {
            let cmd = pipe.cmd("EVAL").arg(IDEMPOTENT_SCRIPT).arg(1).arg(key);
            for e in events {
                cmd.arg(e.aggregate).arg(e.version);
            }
        }
    }
    pipe
}

#[cfg(test)]
mod tests {
    use super::*;

    fn av(aggregate: u64, version: u32) -> AggregateVersion {
        AggregateVersion { aggregate, version }
    }

    #[test]
    fn naive_writes_two_commands_per_event_idempotent_one_per_batch() {
        let events = [av(3, 1), av(3, 2), av(5, 1)];
        let naive = writes(Projection::Naive, "k", &events).unwrap();
        assert_eq!(naive.replies, 6);
        let idem = writes(Projection::Idempotent, "k", &events).unwrap();
        assert_eq!(idem.replies, 1);
        assert!(writes(Projection::Naive, "k", &[]).is_none());
    }

    #[test]
    fn the_script_counts_refusals_where_the_read_back_looks() {
        let field = crate::metrics::projection::SKIPPED_FIELD;
        assert!(IDEMPOTENT_SCRIPT.contains(&format!("'{field}'")));
    }
}
