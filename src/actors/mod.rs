//! The actix actors that do a run's work, and the messages between them.
//!
//! Producers and consumers record into their own counters and HdrHistograms
//! and ship one report per interval to the collector; the ledger travels once
//! per read batch. None of them sends a message per event (docs/measurement.md, "What measuring costs").
//! The coordinator in `run` starts them and stops them; it talks to each
//! through the messages its file declares.

pub mod chaos;
pub mod collector;
pub mod consumer;
pub mod producer;
pub mod projection;
pub mod reads;
pub mod sampler;
pub mod schema_versions;
pub mod workers;

use std::time::Duration;

use actix::{Actor, AsyncContext, Message};

use crate::clock::RunClock;
use crate::metrics::{ConsumeStats, EventKey, Phased, ProduceStats, Reading, StallReport};

/// How often actors flush their measurements to the collector: one time-series row.
pub const INTERVAL: Duration = Duration::from_secs(1);

/// Flushes land this long after each whole second, so an interval's reports
/// arrive together and the work of that second is inside it.
const FLUSH_OFFSET: Duration = Duration::from_millis(5);

/// A producer's measurements for one interval.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ProduceReport {
    pub interval: u32,
    pub stats: Phased<ProduceStats>,
    /// Waits for acknowledgements long enough to be write outages, per
    /// producer of the actor.
    pub stalls: Vec<StallReport>,
}

/// A consumer's measurements for one interval.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ConsumeReport {
    pub group: usize,
    pub interval: u32,
    pub stats: Phased<ConsumeStats>,
}

/// Ledger entries of one read batch: what happened to these events in `group`.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LedgerBatch {
    pub group: usize,
    pub keys: Vec<EventKey>,
    pub what: LedgerEvent,
    /// When, on the run clock: the read reply's arrival for deliveries, the
    /// end of the batch's processing for `Processed`.
    pub at_ns: u64,
    /// Deliveries: when the read was sent (a blocking read outstanding when
    /// a consumer crashes still delivers into its pending list). 0 otherwise.
    pub read_sent_ns: u64,
    /// Entries in the stream that are not streamdrill events.
    pub unparsable: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LedgerEvent {
    /// Read as new entries (XREADGROUP >).
    Delivered,
    /// Read from a pending list (XAUTOCLAIM, or a restarted consumer's own).
    Redelivered,
    /// Processing finished.
    Processed,
    /// Moved to the dead-letter stream and acknowledged, unprocessed.
    DeadLettered,
}

/// Which step of a fault the chaos actor asks a consumer or producer for:
/// its start, or its end (a crash's restart; the end of a window the target
/// times itself, which needs nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultStep {
    Begin,
    End,
}

/// Why a consumer or producer did not apply a fault step. The chaos actor
/// records it as the fault's error after the target's name, e.g. "consumer
/// billing/0 is already down", and the run fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A crash of one that is down.
    #[error("is already down")]
    AlreadyDown,
    /// A restart of one that is not down.
    #[error("is not down, so it cannot restart")]
    NotDown,
    /// A stall or slowdown of one that is down.
    #[error("is down, so it cannot be stalled or slowed")]
    Down,
    /// The run is over for it.
    #[error("has stopped")]
    Stopped,
    /// A fault of another family: a bug in the chaos actor's dispatch.
    #[error("does not take this fault")]
    NotItsFault,
}

/// What the sampler read from Redis this interval.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ReadingReport {
    pub interval: u32,
    pub reading: Reading,
}

/// The interval an actor's open stats belong to. Actors record into the
/// interval of the moment they record (a reply's arrival, a send, the end
/// of processing) and ship each interval's stats when the first record of a
/// later one comes, or when the periodic flush finds it over, so a row of
/// the time series holds what happened in its second even when the flush
/// runs late (an event loop busy for longer than a second).
#[derive(Debug, Clone, Copy)]
pub struct Interval {
    index: u32,
    end_ns: u64,
}

impl Interval {
    pub fn at(now_ns: u64) -> Interval {
        let index = RunClock::interval_of(now_ns);
        Interval {
            index,
            end_ns: (u64::from(index) + 1) * INTERVAL.as_nanos() as u64,
        }
    }

    pub fn index(&self) -> u32 {
        self.index
    }

    /// Moves on to the interval of `now_ns` if this one is over, returning
    /// the index of the one that ended (its stats are due for shipping).
    #[inline]
    pub fn roll(&mut self, now_ns: u64) -> Option<u32> {
        if now_ns < self.end_ns {
            return None;
        }
        let ended = self.index;
        *self = Interval::at(now_ns);
        Some(ended)
    }
}

/// Call `flush` on every whole second of the run clock (plus a small offset),
/// passing the index of the interval that just ended.
pub fn every_interval<A, F>(ctx: &mut A::Context, clock: RunClock, flush: F)
where
    A: Actor<Context = actix::Context<A>>,
    F: Fn(&mut A, u32, &mut actix::Context<A>) + Clone + 'static,
{
    let now = clock.now_ns();
    let interval_ns = INTERVAL.as_nanos() as u64;
    let next_boundary = (now / interval_ns + 1) * interval_ns;
    let first = Duration::from_nanos(next_boundary - now) + FLUSH_OFFSET;
    ctx.run_later(first, move |act, ctx| {
        let f = flush.clone();
        f(
            act,
            RunClock::interval_of(clock.now_ns()).saturating_sub(1),
            ctx,
        );
        ctx.run_interval(INTERVAL, move |act, ctx| {
            flush(
                act,
                RunClock::interval_of(clock.now_ns()).saturating_sub(1),
                ctx,
            )
        });
    });
}
