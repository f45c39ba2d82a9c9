//! Consumer actor: one member of a consumer group. Reads with XREADGROUP on
//! its own connection (a BLOCK on a shared connection stalls every command
//! queued behind it), "processes" each entry for a sampled time, XACKs the
//! batch, records delivery and end-to-end latency from the intended send time
//! carried in the event, and sends the batch's keys to the ledger.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use redis::Value;
use redis::aio::MultiplexedConnection;
use tokio::sync::watch;

use super::{ConsumeReport, LedgerBatch, every_interval};
use crate::clock::RunClock;
use crate::event::{Header, entries};
use crate::metrics::{ConsumeStats, EventKey, Phase, Phased};
use crate::plan::{GroupPlan, derive_seed};
use crate::scenario::AckMode;

/// Pause before reading again after a failed read, so a dead Redis is not hammered.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

pub struct Consumer {
    group: Arc<GroupPlan>,
    name: String,
    stream_key: String,
    conn: MultiplexedConnection,
    clock: RunClock,
    rng: SmallRng,
    measure_from_ns: u64,
    stats: Phased<ConsumeStats>,
    collector: Recipient<ConsumeReport>,
    ledger: Recipient<LedgerBatch>,
    /// Reading has begun (`start_after` has passed).
    reading: bool,
    stopping: bool,
    /// True once `stopping` is seen between batches: nothing is in flight.
    idle: watch::Sender<bool>,
}

pub struct ConsumerSetup {
    pub index: u32,
    pub stream_key: String,
    /// A connection of its own, with a response timeout longer than BLOCK.
    pub conn: MultiplexedConnection,
    pub clock: RunClock,
    pub measure_from: Duration,
    pub collector: Recipient<ConsumeReport>,
    pub ledger: Recipient<LedgerBatch>,
}

/// One delivered entry, kept until its batch is processed.
struct Delivered {
    key: EventKey,
    intended_ns: u64,
}

impl Consumer {
    pub fn new(group: Arc<GroupPlan>, setup: ConsumerSetup) -> Consumer {
        Consumer {
            rng: SmallRng::seed_from_u64(derive_seed(group.seed, 3, setup.index as u64, 0)),
            name: format!("c{}", setup.index),
            stream_key: setup.stream_key,
            conn: setup.conn,
            clock: setup.clock,
            measure_from_ns: setup.measure_from.as_nanos() as u64,
            stats: Phased::default(),
            collector: setup.collector,
            ledger: setup.ledger,
            reading: false,
            stopping: false,
            idle: watch::channel(false).0,
            group,
        }
    }

    fn phase(&self, intended_ns: u64) -> Phase {
        if intended_ns < self.measure_from_ns {
            Phase::Warmup
        } else {
            Phase::Measured
        }
    }

    fn read_cmd(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(&self.group.name).arg(&self.name);
        cmd.arg("COUNT").arg(self.group.batch);
        cmd.arg("BLOCK").arg(self.group.block.as_millis() as u64);
        if self.group.ack == AckMode::Noack {
            cmd.arg("NOACK");
        }
        cmd.arg("STREAMS").arg(&self.stream_key).arg(">");
        cmd
    }

    fn poll(&mut self, ctx: &mut Context<Self>) {
        self.reading = true;
        if self.stopping {
            self.idle.send_replace(true);
            return;
        }
        let mut conn = self.conn.clone();
        let cmd = self.read_cmd();
        let read = async move { cmd.query_async::<Value>(&mut conn).await };
        ctx.spawn(
            read.into_actor(self)
                .map(|reply, act, ctx| act.on_read(reply, ctx)),
        );
    }

    fn on_read(&mut self, reply: redis::RedisResult<Value>, ctx: &mut Context<Self>) {
        let received_ns = self.clock.now_ns();
        let reply = match reply {
            Ok(reply) => reply,
            Err(_) => {
                self.stats.measured.errors += 1;
                ctx.run_later(RETRY_BACKOFF, |act, ctx| act.poll(ctx));
                return;
            }
        };
        let (ids, headers, unparsable) = parse_read_reply(reply);
        if ids.is_empty() {
            return self.poll(ctx);
        }
        let mut batch = Vec::with_capacity(headers.len());
        for h in headers {
            let intended_ns = self.clock.offset_of_unix_ns(h.intended_ns);
            let stats = self.stats.get_mut(self.phase(intended_ns));
            stats.delivered += 1;
            stats
                .delivery
                .record_ns(received_ns.saturating_sub(intended_ns));
            batch.push(Delivered {
                key: EventKey {
                    producer: h.producer,
                    seq: h.seq,
                },
                intended_ns,
            });
        }
        // Entries are processed one after another; entry i finishes at the sum of
        // the first i+1 sampled times. Sleeping once for the whole batch keeps the
        // 1 ms timer granularity out of every entry but the batch's last.
        let mut finished_ns = Vec::with_capacity(batch.len());
        let mut elapsed_ns = 0u64;
        for _ in &batch {
            elapsed_ns += self.group.processing_ns.sample(&mut self.rng) as u64;
            finished_ns.push(received_ns + elapsed_ns);
        }
        let ack = (self.group.ack == AckMode::Batch).then(|| {
            let mut cmd = redis::cmd("XACK");
            cmd.arg(&self.stream_key).arg(&self.group.name).arg(&ids);
            cmd
        });
        let done_at = self.clock.instant_at(received_ns + elapsed_ns);
        let mut conn = self.conn.clone();
        let work = async move {
            super::timer::sleep_until(done_at).await;
            match ack {
                Some(cmd) => cmd.query_async::<u64>(&mut conn).await.map(Some),
                None => Ok(None),
            }
        };
        ctx.spawn(work.into_actor(self).map(move |acked, act, ctx| {
            act.on_processed(batch, finished_ns, unparsable, acked);
            act.poll(ctx);
        }));
    }

    fn on_processed(
        &mut self,
        batch: Vec<Delivered>,
        finished_ns: Vec<u64>,
        unparsable: u32,
        acked: redis::RedisResult<Option<u64>>,
    ) {
        for (d, &done_ns) in batch.iter().zip(&finished_ns) {
            let stats = self.stats.get_mut(self.phase(d.intended_ns));
            stats.processed += 1;
            stats.e2e.record_ns(done_ns.saturating_sub(d.intended_ns));
        }
        match acked {
            Ok(Some(n)) => self.stats.measured.acked += n,
            Ok(None) => {}
            Err(_) => self.stats.measured.errors += 1,
        }
        let keys = batch.into_iter().map(|d| d.key).collect();
        self.ledger.do_send(LedgerBatch {
            group: self.group.index,
            keys,
            processed: true,
            unparsable,
        });
    }

    fn flush(&mut self, interval: u32) {
        let stats = std::mem::take(&mut self.stats);
        self.collector.do_send(ConsumeReport {
            group: self.group.index,
            interval,
            stats,
        });
    }
}

/// Entry ids and headers of an XREADGROUP reply, and how many entries were
/// not streamdrill events. Reply shape: [[stream, entries]], or nil on timeout.
fn parse_read_reply(reply: Value) -> (Vec<Vec<u8>>, Vec<Header>, u32) {
    let (mut ids, mut headers, mut unparsable) = (Vec::new(), Vec::new(), 0);
    let Value::Array(streams) = reply else {
        return (ids, headers, unparsable);
    };
    for stream in streams {
        let Value::Array(mut key_entries) = stream else {
            continue;
        };
        for entry in entries(key_entries.pop().unwrap_or(Value::Nil)) {
            match entry.header {
                Some(h) => headers.push(h),
                None => unparsable += 1,
            }
            ids.push(entry.id);
        }
    }
    (ids, headers, unparsable)
}

impl Actor for Consumer {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        every_interval(ctx, self.clock, |act: &mut Self, interval, _| {
            act.flush(interval)
        });
        let wait = self
            .group
            .start_after
            .saturating_sub(Duration::from_nanos(self.clock.now_ns()));
        ctx.run_later(wait, |act, ctx| act.poll(ctx));
    }
}

/// Stop reading: finish the batch in hand (or give up after `deadline`),
/// flush the last interval and stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop {
    pub deadline: Duration,
}

impl Handler<Stop> for Consumer {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, msg: Stop, _: &mut Context<Self>) -> Self::Result {
        self.stopping = true;
        if !self.reading {
            self.idle.send_replace(true);
        }
        let mut idle = self.idle.subscribe();
        let wait = async move {
            let _ = tokio::time::timeout(msg.deadline, idle.wait_for(|i| *i)).await;
        };
        Box::pin(wait.into_actor(self).map(|_, act, ctx| {
            act.flush(RunClock::interval_of(act.clock.now_ns()));
            ctx.stop();
        }))
    }
}
