//! The producer's connection (see `wire`): pipelines written without a task
//! hand-off, replies read in order and handed to the pipelines that asked,
//! and, when the connection is lost, every pipeline still out marked
//! indeterminate and a new connection made with backoff.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::{Outcome, Pipeline, Producer, Sent};
use crate::wire::{Endpoint, Replies, Writer};

/// Reconnection backoff after the connection was lost: quick first, capped,
/// so a restarted server is found within ~0.5 s of coming back.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// Up with a writer, or being re-established after a loss.
pub(super) struct Link {
    endpoint: Arc<Endpoint>,
    writer: Option<Writer>,
    /// Bumped on every loss, so reads of a dropped connection are ignored.
    generation: u64,
    /// A wait for the socket to take queued bytes is pending.
    flushing: bool,
    reconnect_delay: Duration,
    /// Unanswered this long, the connection is presumed dead.
    response_timeout: Duration,
}

impl Link {
    pub fn new(endpoint: Arc<Endpoint>, writer: Writer, response_timeout: Duration) -> Link {
        Link {
            endpoint,
            writer: Some(writer),
            generation: 0,
            flushing: false,
            reconnect_delay: RECONNECT_MIN_DELAY,
            response_timeout,
        }
    }

    pub fn is_up(&self) -> bool {
        self.writer.is_some()
    }

    /// The next delay before reconnecting, doubling up to the cap.
    fn backoff(&mut self) -> Duration {
        let delay = self.reconnect_delay;
        self.reconnect_delay = (delay * 2).min(RECONNECT_MAX_DELAY);
        delay
    }
}

impl Producer {
    /// Sends the pipeline built in `out`: its XADDs are `batch`.
    pub(super) fn send(&mut self, ctx: &mut Context<Self>, batch: Vec<Sent>) {
        self.add_wait();
        let sent_ns = self.clock.now_ns();
        self.roll(sent_ns);
        for sent in &batch {
            let phase = self.phase(sent.intended_ns);
            let stats = self.stats.get_mut(phase);
            stats.sent += 1;
            stats.schedule_lag.record_ns(sent_ns - sent.intended_ns);
            self.sources[sent.source].stalls.sent(sent_ns);
        }
        let commands = batch.len() + usize::from(self.wait.is_some());
        let start = self.link.writer.as_ref().map_or(0, Writer::offset);
        let pipeline = Pipeline {
            sent_ns,
            start,
            batch,
        };
        let written = match self.link.writer.as_mut() {
            Some(writer) => writer.write(&self.out),
            None => {
                // Down and reconnecting: nothing reached Redis, a definite failure.
                self.out.clear();
                return self.on_reply(pipeline, &[], Some(Outcome::NotSent));
            }
        };
        self.out.clear();
        self.in_flight.push(pipeline, commands);
        match written {
            Ok(true) => {}
            Ok(false) => self.wait_writable(ctx),
            Err(_) => self.lost(ctx),
        }
    }

    /// The socket took only part of a pipeline: send the rest when it can.
    fn wait_writable(&mut self, ctx: &mut Context<Self>) {
        let Some(writer) = self.link.writer.as_ref() else {
            return;
        };
        if std::mem::replace(&mut self.link.flushing, true) {
            return;
        }
        let generation = self.link.generation;
        let writable = writer.writable().into_actor(self);
        ctx.spawn(writable.map(move |ready, act, ctx| {
            // A waiter of a lost connection: `lost` reset the flag for the new one.
            if act.link.generation != generation {
                return;
            }
            act.link.flushing = false;
            match (ready, act.link.writer.as_mut().map(Writer::flush)) {
                (Ok(()), Some(Ok(true))) => {}
                (Ok(()), Some(Ok(false))) => act.wait_writable(ctx),
                _ => act.lost(ctx),
            }
        }));
    }

    /// Reads the next replies of the current connection, for ever.
    pub(super) fn read(&mut self, mut replies: Replies, ctx: &mut Context<Self>) {
        let generation = self.link.generation;
        let next = async move {
            let read = replies.read_more().await;
            (replies, read)
        };
        let next = next.into_actor(self);
        ctx.spawn(next.map(move |(mut replies, read), act, ctx| {
            if act.link.generation != generation {
                return;
            }
            let in_step = (read.map_err(|e| e.to_string())).and_then(|()| act.answer(&mut replies));
            match in_step {
                Ok(()) => {
                    act.after_replies(ctx);
                    act.read(replies, ctx);
                }
                Err(_) => act.lost(ctx),
            }
        }));
    }

    /// Hands every reply buffered to the pipeline it answers, one by one
    /// (no vector of replies per read, none per pipeline). Pipelines
    /// answered before an error are answered all the same.
    fn answer(&mut self, replies: &mut Replies) -> Result<(), String> {
        while let Some(reply) = replies.next_reply().map_err(|e| e.to_string())? {
            if let Some((pipeline, answers)) = self.in_flight.answer_one(reply)? {
                self.on_reply(pipeline, &answers, None);
                self.in_flight.recycle(answers);
            }
        }
        Ok(())
    }

    /// The connection is gone (closed, reset, garbled, or silent past the
    /// response timeout): what it carried is indeterminate, except what
    /// never left the process; reconnect.
    fn lost(&mut self, ctx: &mut Context<Self>) {
        let sent = self.link.writer.take().map_or(0, |w| w.sent());
        self.link.generation += 1;
        self.link.flushing = false;
        for (pipeline, replies) in self.in_flight.drain() {
            let missing = match pipeline.start >= sent {
                true => Outcome::NotSent,
                false => Outcome::Unknown,
            };
            self.on_reply(pipeline, &replies, Some(missing));
        }
        self.after_replies(ctx);
        let delay = self.link.backoff();
        ctx.run_later(delay, |act, ctx| act.reconnect(ctx));
    }

    fn reconnect(&mut self, ctx: &mut Context<Self>) {
        let endpoint = self.link.endpoint.clone();
        let timeout = crate::connect::CONNECT_TIMEOUT;
        let open = async move { endpoint.open(timeout).await };
        ctx.spawn(open.into_actor(self).map(|opened, act, ctx| match opened {
            Ok((replies, writer)) => {
                act.link.writer = Some(writer);
                act.link.reconnect_delay = RECONNECT_MIN_DELAY;
                act.read(replies, ctx);
                act.resume_saturating(ctx);
            }
            Err(_) => {
                let delay = act.link.backoff();
                ctx.run_later(delay, |act, ctx| act.reconnect(ctx));
                // It still has to notice when its run is over.
                act.resume_saturating(ctx);
            }
        }));
    }

    /// After replies (or their loss): resume a blocked or saturating
    /// producer, or say it is done.
    fn after_replies(&mut self, ctx: &mut Context<Self>) {
        if std::mem::take(&mut self.blocked) || self.saturate.is_some() {
            self.tick(ctx);
        } else if self.due.is_empty() && self.in_flight.is_empty() {
            self.done.send_replace(true);
        }
    }

    /// A saturating producer sends again only on a reply; none comes while
    /// the connection is down, so a reconnection attempt wakes it.
    fn resume_saturating(&mut self, ctx: &mut Context<Self>) {
        if self.saturate.is_some() {
            self.tick(ctx);
        }
    }

    /// A connection silent past the response timeout is presumed dead.
    pub(super) fn check_response_timeout(&mut self, ctx: &mut Context<Self>) {
        let timeout_ns = self.link.response_timeout.as_nanos() as u64;
        let now_ns = self.clock.now_ns();
        let oldest = self.in_flight.oldest();
        if oldest.is_some_and(|p| now_ns.saturating_sub(p.sent_ns) > timeout_ns) {
            self.lost(ctx);
        }
    }
}
