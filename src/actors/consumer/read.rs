//! Reading: the next read goes out with the last batch's XACK in front of
//! it (one write and one round trip per batch instead of two), and its
//! reply is taken apart here: the XACK's count, the entries, the cursors
//! moved on, the deliveries told to the ledger and, if the machine says the
//! consumer takes them, handed to `work`. A failed read backs off; a group
//! that vanished is created again.

use std::io;

use actix::prelude::*;

use super::Consumer;
use super::machine::{Action, Event};
use super::work::Ack;
use crate::actors::reads::{self, Read};
use crate::actors::{LedgerBatch, LedgerEvent};
use crate::metrics::EventKey;
use crate::wire::entries::Entry;
use crate::wire::slots::Redirect;
use crate::wire::{self, Raw};

impl Consumer {
    /// Sends the next read, `ack` in front of it. The read is never
    /// cancelled, so it is not `cancellable`: once in Redis it delivers to
    /// this consumer's PEL whatever happens meanwhile (machine.rs).
    pub(super) fn read(&mut self, ack: Option<Ack>, now_ns: u64, ctx: &mut Context<Self>) {
        let read = self.cursors.next(now_ns);
        let at = ack.as_ref().map_or(0, |a| a.commands);
        let (mut packed, ack) = match ack {
            Some(Ack {
                packed,
                entries,
                measured,
                ..
            }) => (packed, Some((entries, measured))),
            None => (Vec::new(), None),
        };
        match &read {
            Read::New => packed.extend_from_slice(&self.new_read),
            _ => packed.extend(
                reads::command(&read, &self.group, &self.name, &self.stream_keys)
                    .get_packed_command(),
            ),
        }
        let conn = self.conn.clone();
        let request = async move { conn.call(packed, at + 1).await };
        ctx.spawn(request.into_actor(self).map(move |reply, act, ctx| {
            if let Some(sent) = ack {
                let acked = reply.as_ref().ok();
                act.on_acked(sent, acked.and_then(|raw| reads::acked_all(raw, at)));
            }
            act.on_read(read, reply, at, now_ns, ctx)
        }));
    }

    /// `reply` holds the read's reply at index `at`; the read went out at
    /// `sent_ns`.
    fn on_read(
        &mut self,
        read: Read,
        reply: io::Result<Raw>,
        at: usize,
        sent_ns: u64,
        ctx: &mut Context<Self>,
    ) {
        let received_ns = self.clock.now_ns();
        let reply = match reply {
            Ok(reply) => reply,
            Err(_) => return self.read_failed(None, ctx),
        };
        if let Some(message) = reply.error(at) {
            return self.read_failed(Some(&message), ctx);
        }
        // New entries, the hot path, are scanned in place; the rare reads
        // go through redis-rs's parser.
        let types = (self.group.schema.as_ref()).map_or(&[][..], |s| &s.fields[..]);
        let batch = match &read {
            Read::New => {
                let keys = &self.stream_keys;
                let parsed = wire::entries::parse_xreadgroup(reply.bytes(at), keys, types);
                parsed.map(|entries| reads::Batch {
                    entries,
                    cursor: None,
                    fields: Vec::new(),
                })
            }
            _ => (reply.value(at))
                .map(|value| reads::parse(&read, value, &self.stream_keys).with_kinds(types))
                .map_err(|e| e.to_string()),
        };
        let Ok(batch) = batch else {
            return self.read_failed(None, ctx);
        };
        self.cursors.advance(&read, &batch, received_ns);
        if batch.entries.is_empty() {
            return self.ready(None, ctx);
        }
        let what = match read {
            Read::New => LedgerEvent::Delivered,
            Read::OwnPending { .. } | Read::Claim { .. } => LedgerEvent::Redelivered,
        };
        // Work, or Abandon: delivered to a consumer that died meanwhile, it
        // stays pending and nobody holds it.
        let held = self.on(Event::Delivered) == Action::Work;
        self.record_deliveries(&batch.entries, what, received_ns, sent_ns, held);
        if !held {
            return;
        }
        let redelivered = !matches!(read, Read::New);
        match (read, self.group.max_deliveries) {
            (Read::New, _) | (_, None) => self.process(batch.entries, redelivered, ctx),
            (_, Some(max)) => self.check_deliveries(batch, max, ctx),
        }
    }

    /// Backs off and reads again. A group that vanished (Redis restarted
    /// without persistence) is created again from the stream's start, as a
    /// resilient consumer would on NOGROUP.
    /// `error`: the error reply, None when the connection failed.
    fn read_failed(&mut self, error: Option<&str>, ctx: &mut Context<Self>) {
        self.command_failed();
        // A cluster moved the keys' slot (docs/cluster.md, "Routing"): read
        // from its new primary, where the group and its pending list went
        // with the keys. An `-ASK` is a migration under way: back off and
        // read again, by when it has finished.
        if let Some(Redirect::Moved { addr, .. }) = error.and_then(Redirect::parse)
            && let Some(node) = self.conn.endpoint().at(&addr)
        {
            self.conn = self.conn.moved_to(std::sync::Arc::new(node));
            self.moved
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        } else if error.is_none() {
            // Its node is unreachable (killed, a replica about to take
            // over): ask another primary, whose `-MOVED` says where the
            // keys live now (docs/cluster.md, "Shard failover").
            self.try_another_node();
        }
        // Whatever this consumer held may have stayed pending: look there first.
        self.cursors.start_over();
        if error.is_some_and(|e| e.starts_with("NOGROUP")) {
            let keys = &self.stream_keys;
            let packed: Vec<u8> = (keys.iter())
                .flat_map(|key| reads::recreate_group(&self.group, key).get_packed_command())
                .collect();
            let conn = self.conn.clone();
            let n = keys.len();
            // BUSYGROUP (another consumer was first) is as good as success.
            let create = async move { conn.call(packed, n).await };
            ctx.spawn(create.into_actor(self).map(|_, _, _| ()));
        }
        let action = self.on(Event::ReadFailed);
        self.act(action, ctx);
    }

    /// The next of a cluster's primaries other than the current node.
    fn try_another_node(&mut self) {
        let current = self.conn.endpoint().addr();
        for _ in 0..self.fallbacks.len() {
            let next = &self.fallbacks[self.next_fallback % self.fallbacks.len()];
            self.next_fallback += 1;
            if next.addr() != current {
                self.conn = self.conn.moved_to(next.clone());
                return;
            }
        }
    }

    /// Counts the deliveries and tells the ledger; `hold`: the consumer
    /// takes them in hand (it is not down).
    fn record_deliveries(
        &mut self,
        entries: &[Entry],
        what: LedgerEvent,
        received_ns: u64,
        read_sent_ns: u64,
        hold: bool,
    ) {
        self.roll(received_ns);
        let mut keys = Vec::with_capacity(entries.len());
        let mut unparsable = 0;
        for h in entries.iter().map(|e| e.header) {
            let Some(h) = h else {
                unparsable += 1;
                continue;
            };
            let intended_ns = self.clock.offset_of_unix_ns(h.intended_ns);
            let stats = self.stats.get_mut(self.phase(intended_ns));
            stats.delivered += 1;
            stats
                .delivery
                .record_ns(received_ns.saturating_sub(intended_ns));
            keys.push(EventKey {
                producer: h.producer,
                seq: h.seq,
            });
        }
        if hold {
            self.in_hand.hold(keys.iter().copied());
        }
        self.ledger.do_send(LedgerBatch {
            group: self.group.index,
            keys,
            what,
            at_ns: received_ns,
            read_sent_ns,
            unparsable,
        });
    }
}
