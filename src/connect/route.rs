//! Where a cluster connection sends each command of a call: by the slot
//! of its keys (`keys`), DEL and its kind split per slot, a pipeline split
//! into one sub-pipeline per node with each reply's place kept, a MULTI …
//! EXEC block whole (docs/cluster.md, "The admin connection"). No I/O:
//! `cluster` sends what this plans.

use std::ops::Range;

use redis::{Arg, Cmd, ErrorKind, Pipeline, RedisError, RedisResult, Value};

use super::keys;
use crate::slot::key_slot;
use crate::wire::slots::Addr;

/// Where one command goes.
pub(super) enum Route {
    /// No key: the first shard.
    Keyless,
    /// The primary of this slot. A command whose keys span slots goes to
    /// its first key's, and the node answers CROSSSLOT, as Redis would.
    Slot(u16),
    /// DEL and its kind over several slots: one command per slot, replies summed.
    Split(Vec<(u16, Cmd)>),
}

/// One part of a pipeline's command: where it went and its reply's place.
pub(super) struct Part {
    pub batch: usize,
    pub at: usize,
    pub in_block: bool,
}

/// A MULTI … EXEC block's place in its batch.
pub(super) struct Block {
    pub batch: usize,
    pub at: Range<usize>,
}

/// How a pipeline is split: per node a sub-pipeline (in first-use order),
/// and per command of the original its parts (one, or one per slot for a
/// split DEL).
pub(super) struct Plan {
    pub batches: Vec<(Addr, Pipeline)>,
    pub parts: Vec<Vec<Part>>,
    pub blocks: Vec<Block>,
}

impl Plan {
    /// `addr_of`: the node of a slot, or of the first shard for none.
    pub fn of(pipeline: &Pipeline, addr_of: impl Fn(Option<u16>) -> Addr) -> Plan {
        let mut plan = Plan {
            batches: Vec::new(),
            parts: Vec::new(),
            blocks: Vec::new(),
        };
        let commands: Vec<&Cmd> = pipeline.cmd_iter().collect();
        let mut i = 0;
        while i < commands.len() {
            if name_is(commands[i], b"MULTI") {
                let end = (commands[i..].iter())
                    .position(|c| name_is(c, b"EXEC") || name_is(c, b"DISCARD"))
                    .map_or(commands.len(), |n| i + n + 1);
                let block = &commands[i..end];
                let slot = block.iter().copied().find_map(slot_of);
                let batch = plan.batch(addr_of(slot));
                let start = plan.batches[batch].1.len();
                for c in block {
                    let at = plan.push(batch, (*c).clone());
                    plan.parts.push(vec![Part {
                        batch,
                        at,
                        in_block: true,
                    }]);
                }
                let at = start..start + block.len();
                plan.blocks.push(Block { batch, at });
                i = end;
                continue;
            }
            let pieces = match route(commands[i]) {
                Route::Keyless => vec![(None, commands[i].clone())],
                Route::Slot(slot) => vec![(Some(slot), commands[i].clone())],
                Route::Split(parts) => parts.into_iter().map(|(s, c)| (Some(s), c)).collect(),
            };
            let parts = (pieces.into_iter())
                .map(|(slot, c)| {
                    let batch = plan.batch(addr_of(slot));
                    let at = plan.push(batch, c);
                    Part {
                        batch,
                        at,
                        in_block: false,
                    }
                })
                .collect();
            plan.parts.push(parts);
            i += 1;
        }
        plan
    }

    fn batch(&mut self, addr: Addr) -> usize {
        match self.batches.iter().position(|(a, _)| *a == addr) {
            Some(b) => b,
            None => {
                self.batches.push((addr, redis::pipe()));
                self.batches.len() - 1
            }
        }
    }

    fn push(&mut self, batch: usize, cmd: Cmd) -> usize {
        let pipeline = &mut self.batches[batch].1;
        pipeline.add_command(cmd);
        pipeline.len() - 1
    }

    pub fn command(&self, part: &Part) -> Option<&Cmd> {
        self.batches[part.batch].1.cmd_iter().nth(part.at)
    }

    pub fn block_pipeline(&self, block: &Block) -> Pipeline {
        let mut out = redis::pipe();
        let commands = self.batches[block.batch].1.cmd_iter();
        for c in commands.skip(block.at.start).take(block.at.len()) {
            out.add_command(c.clone());
        }
        out
    }
}

pub(super) fn args(cmd: &Cmd) -> Vec<&[u8]> {
    (cmd.args_iter())
        .filter_map(|a| match a {
            Arg::Simple(a) => Some(a),
            _ => None,
        })
        .collect()
}

pub(super) fn name_is(cmd: &Cmd, name: &[u8]) -> bool {
    args(cmd)
        .first()
        .is_some_and(|n| n.eq_ignore_ascii_case(name))
}

pub(super) fn route(cmd: &Cmd) -> Route {
    let args = args(cmd);
    let mut slots: Vec<(u16, Vec<&[u8]>)> = Vec::new();
    for key in keys::key_positions(&args).into_iter().map(|at| args[at]) {
        let slot = key_slot(key);
        match slots.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, keys)) => keys.push(key),
            None => slots.push((slot, vec![key])),
        }
    }
    match slots.first() {
        None => Route::Keyless,
        Some((slot, _)) if slots.len() == 1 || !keys::splits(args[0]) => Route::Slot(*slot),
        Some(_) => Route::Split(
            (slots.into_iter())
                .map(|(slot, keys)| {
                    let mut one = Cmd::new();
                    one.arg(args[0]).arg(keys);
                    (slot, one)
                })
                .collect(),
        ),
    }
}

/// The slot a command goes to, if it has a key.
pub(super) fn slot_of(cmd: &Cmd) -> Option<u16> {
    match route(cmd) {
        Route::Keyless => None,
        Route::Slot(slot) => Some(slot),
        Route::Split(parts) => parts.first().map(|(s, _)| *s),
    }
}

/// Split DEL's replies: the counts summed, or the first error.
pub(super) fn sum(replies: Vec<Value>) -> RedisResult<Value> {
    let mut total = 0;
    for reply in replies {
        match reply {
            Value::Int(n) => total += n,
            error @ Value::ServerError(_) => return Ok(error),
            other => {
                let why = format!("a split multi-key command answered {other:?}");
                return Err(client_error("summing replies", why));
            }
        }
    }
    Ok(Value::Int(total))
}

/// An error of the client's making, with what it was doing and why.
pub(super) fn client_error(what: &'static str, why: String) -> RedisError {
    RedisError::from((ErrorKind::Client, what, why))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(cmd: &Cmd) -> Vec<(u16, Vec<Vec<u8>>)> {
        match route(cmd) {
            Route::Split(parts) => (parts.iter())
                .map(|(s, c)| (*s, args(c).into_iter().map(<[u8]>::to_vec).collect()))
                .collect(),
            Route::Slot(s) => vec![(s, Vec::new())],
            Route::Keyless => Vec::new(),
        }
    }

    #[test]
    fn del_over_slots_splits_and_others_go_to_their_first_key() {
        let (a, b) = (key_slot(b"a"), key_slot(b"b"));
        assert_ne!(a, b);
        let parts = split(redis::cmd("DEL").arg("a").arg("b").arg("{a}x"));
        assert_eq!(
            parts,
            [
                (a, vec![b"DEL".to_vec(), b"a".to_vec(), b"{a}x".to_vec()]),
                (b, vec![b"DEL".to_vec(), b"b".to_vec()]),
            ]
        );
        let same = split(redis::cmd("DEL").arg("{t}a").arg("{t}b"));
        assert_eq!(same, [(key_slot(b"t"), Vec::new())]);
        let eval = split(redis::cmd("EVAL").arg("s").arg(2).arg("a").arg("b"));
        assert_eq!(eval, [(a, Vec::new())]);
        assert!(split(&redis::cmd("INFO")).is_empty());
    }
}
