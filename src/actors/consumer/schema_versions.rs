//! A group's schema versions at work: before a batch is processed, the
//! events of a version the group does not understand are moved to the
//! dead-letter stream and acknowledged, never processed or silently
//! dropped; the rest are counted per kind as they finish, upcasts apart.
//! See docs/event-sourcing.md, "Schema versions".

use actix::prelude::*;
use redis::Value;

use super::{Consumer, RETRY_BACKOFF};
use crate::actors::{LedgerBatch, LedgerEvent, schema_versions};
use crate::metrics::EventKey;
use crate::scenario::Handling;
use crate::wire::entries::Entry;

impl Consumer {
    /// What the group does with an entry's kind, and the kind's index in
    /// the run's table; None outside runs with versions or for an entry of
    /// no known kind.
    pub(super) fn handling(&self, kind: Option<u16>) -> Option<(u32, Handling)> {
        let schema = self.group.schema.as_ref()?;
        schema.kinds.get(usize::from(kind?)).copied()
    }

    /// Splits `entries` into those the group processes and those of a
    /// version it does not understand.
    pub(super) fn unknown_versions(&self, entries: Vec<Entry>) -> (Vec<Entry>, Vec<Entry>) {
        if self.group.schema.is_none() {
            return (entries, Vec::new());
        }
        entries
            .into_iter()
            .partition(|e| !matches!(self.handling(e.kind), Some((_, Handling::DeadLetter))))
    }

    /// Moves `dead` to the dead-letter stream (one EVAL: copy and XACK
    /// each), tells the ledger, then processes `rest`. When the move fails
    /// they stay pending, and the consumer re-reads its pending list first.
    /// The EVAL is never cancelled: a crash while it is out cannot stop
    /// Redis moving and acknowledging the events, so its reply is read
    /// either way and the ledger hears of them; only `rest` is dropped.
    pub(super) fn dead_letter_versions(
        &mut self,
        dead: Vec<Entry>,
        rest: Vec<Entry>,
        redelivered: bool,
        ctx: &mut Context<Self>,
    ) {
        let refs: Vec<&Entry> = dead.iter().collect();
        let cmd = schema_versions::dead_letter(
            &self.group.dead_letter_key,
            &self.stream_keys,
            &self.group.name,
            &refs,
        );
        let packed = cmd.get_packed_command();
        let conn = self.conn.clone();
        let request = async move { conn.call(packed, 1).await };
        let landed = move |act: &mut Self, reply: std::io::Result<crate::wire::Raw>, crashed| {
            let moved = reply.ok().and_then(|raw| raw.value(0).ok());
            let all = matches!(moved, Some(Value::Int(n)) if n as usize == dead.len());
            match (all, crashed) {
                (true, _) => act.dead_lettered(&dead),
                (false, true) => {}
                (false, false) => {
                    act.command_failed();
                    act.cursors.start_over();
                }
            }
            all
        };
        // After a failed move the next read brings the same entries back
        // from the pending list: pause first rather than retry at once.
        let then = move |act: &mut Self, all: bool, ctx: &mut Context<Self>| match all {
            true => act.process(rest, redelivered, ctx),
            false => {
                let later = move |act: &mut Self, ctx: &mut Context<Self>| {
                    act.process(rest, redelivered, ctx)
                };
                act.cancellable = Some(ctx.run_later(RETRY_BACKOFF, later));
            }
        };
        self.write_then(request, landed, then, ctx);
    }

    fn dead_lettered(&mut self, dead: &[Entry]) {
        self.roll(self.clock.now_ns());
        let mut keys = Vec::with_capacity(dead.len());
        for e in dead {
            let (Some(h), Some((kind, _))) = (e.header, self.handling(e.kind)) else {
                continue;
            };
            let phase = self.phase(self.clock.offset_of_unix_ns(h.intended_ns));
            self.stats.get_mut(phase).versions.dead_lettered.add(kind);
            keys.push(EventKey {
                producer: h.producer,
                seq: h.seq,
            });
        }
        self.ledger.do_send(LedgerBatch {
            group: self.group.index,
            keys,
            what: LedgerEvent::DeadLettered,
            at_ns: self.clock.now_ns(),
            read_sent_ns: 0,
            unparsable: 0,
        });
    }
}
