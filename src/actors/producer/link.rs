//! The producer's connections (see `wire`): one per Redis node its keys
//! live on (one, unless the run drives a cluster). Pipelines are written
//! without a task hand-off, replies read in order and handed to the
//! pipelines that asked, and, when a connection is lost, every pipeline
//! still out on it marked indeterminate and a new connection made with
//! backoff.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::{Outcome, Pipeline, Producer, Sent};
use crate::wire::{Endpoint, Opened, Outstanding, Replies, Writer};

/// Reconnection backoff after the connection was lost: quick first, capped,
/// so a restarted server is found within ~0.5 s of coming back.
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(50);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// One connection, up with a writer or being re-established after a loss,
/// and what goes out on it.
pub(super) struct Link {
    pub endpoint: Arc<Endpoint>,
    writer: Option<Writer>,
    /// Bumped on every loss, so reads of a dropped connection are ignored.
    generation: u64,
    /// A wait for the socket to take queued bytes is pending.
    flushing: bool,
    reconnect_delay: Duration,
    /// The commands of the pipeline being built, RESP-encoded.
    pub out: Vec<u8>,
    /// The XADDs of the pipeline being built.
    pub batch: Vec<Sent>,
    /// Pipelines sent and not yet answered, oldest first.
    pub in_flight: Outstanding<Pipeline>,
    /// The read half of the first connection, until the actor starts reading.
    first_read: Option<Replies>,
}

impl Link {
    /// `conn`: opened before the run clock started; None to open it now.
    pub fn new(endpoint: Arc<Endpoint>, conn: Option<Opened>) -> Link {
        let (first_read, writer) = conn.unzip();
        Link {
            endpoint,
            writer,
            generation: 0,
            flushing: false,
            reconnect_delay: RECONNECT_MIN_DELAY,
            out: Vec::new(),
            batch: Vec::new(),
            in_flight: Outstanding::default(),
            first_read,
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
    /// Starts reading every connection opened beforehand, and opens those
    /// that were not.
    pub(super) fn start_links(&mut self, ctx: &mut Context<Self>) {
        for l in 0..self.links.len() {
            match self.links[l].first_read.take() {
                Some(replies) => self.read(l, replies, ctx),
                None if !self.links[l].is_up() => self.reconnect(ctx, l),
                None => {}
            }
        }
    }

    /// Sends the pipeline built in link `l`'s `out`: its XADDs are `batch`.
    pub(super) fn send(&mut self, ctx: &mut Context<Self>, l: usize, batch: Vec<Sent>) {
        let sent_ns = self.clock.now_ns();
        self.roll(sent_ns);
        for sent in &batch {
            let phase = self.phase(sent.intended_ns);
            let stats = self.stats.get_mut(phase);
            stats.sent += 1;
            stats.schedule_lag.record_ns(sent_ns - sent.intended_ns);
            self.sources[sent.source].stalls.sent(sent_ns);
        }
        self.transmit(ctx, l, sent_ns, batch, false);
    }

    /// Writes what link `l`'s `out` holds, `batch`'s XADDs after an ASKING
    /// when `asking`, closed by the producer's WAIT if it has one. `sent_ns`:
    /// when the XADDs first went out (a redirected one keeps its first send).
    pub(super) fn transmit(
        &mut self,
        ctx: &mut Context<Self>,
        l: usize,
        sent_ns: u64,
        batch: Vec<Sent>,
        asking: bool,
    ) {
        if let Some(w) = self.wait {
            super::encode::wait(&mut self.links[l].out, w);
        }
        let commands = batch.len() + usize::from(self.wait.is_some()) + usize::from(asking);
        let link = &mut self.links[l];
        let start = link.writer.as_ref().map_or(0, Writer::offset);
        let pipeline = Pipeline {
            sent_ns,
            start,
            batch,
            asking,
        };
        let written = match link.writer.as_mut() {
            Some(writer) => writer.write(&link.out),
            None => {
                // Down and reconnecting: nothing reached Redis, a definite failure.
                link.out.clear();
                self.reroute_from(l);
                return self.on_reply(ctx, pipeline, &[], Some(Outcome::NotSent));
            }
        };
        link.out.clear();
        link.in_flight.push(pipeline, commands);
        match written {
            Ok(true) => {}
            Ok(false) => self.wait_writable(ctx, l),
            Err(_) => self.lost(ctx, l),
        }
    }

    /// The socket took only part of a pipeline: send the rest when it can.
    fn wait_writable(&mut self, ctx: &mut Context<Self>, l: usize) {
        let link = &mut self.links[l];
        let Some(writer) = link.writer.as_ref() else {
            return;
        };
        if std::mem::replace(&mut link.flushing, true) {
            return;
        }
        let generation = link.generation;
        let writable = writer.writable().into_actor(self);
        ctx.spawn(writable.map(move |ready, act, ctx| {
            let link = &mut act.links[l];
            // A waiter of a lost connection: `lost` reset the flag for the new one.
            if link.generation != generation {
                return;
            }
            link.flushing = false;
            match (ready, link.writer.as_mut().map(Writer::flush)) {
                (Ok(()), Some(Ok(true))) => {}
                (Ok(()), Some(Ok(false))) => act.wait_writable(ctx, l),
                _ => act.lost(ctx, l),
            }
        }));
    }

    /// Reads the next replies of link `l`'s current connection, for ever.
    fn read(&mut self, l: usize, mut replies: Replies, ctx: &mut Context<Self>) {
        let generation = self.links[l].generation;
        let next = async move {
            let read = replies.read_more().await;
            (replies, read)
        };
        let next = next.into_actor(self);
        ctx.spawn(next.map(move |(mut replies, read), act, ctx| {
            if act.links[l].generation != generation {
                return;
            }
            let in_step =
                (read.map_err(|e| e.to_string())).and_then(|()| act.answer(ctx, l, &mut replies));
            match in_step {
                Ok(()) => {
                    act.after_replies(ctx);
                    act.read(l, replies, ctx);
                }
                Err(_) => act.lost(ctx, l),
            }
        }));
    }

    /// Hands every reply buffered to the pipeline it answers, one by one
    /// (no vector of replies per read, none per pipeline). Pipelines
    /// answered before an error are answered all the same.
    fn answer(
        &mut self,
        ctx: &mut Context<Self>,
        l: usize,
        replies: &mut Replies,
    ) -> Result<(), String> {
        while let Some(reply) = replies.next_reply().map_err(|e| e.to_string())? {
            if let Some((pipeline, answers)) = self.links[l].in_flight.answer_one(reply)? {
                self.on_reply(ctx, pipeline, &answers, None);
                self.links[l].in_flight.recycle(answers);
            }
        }
        Ok(())
    }

    /// The connection is gone (closed, reset, garbled, or silent past the
    /// response timeout): what it carried is indeterminate, except what
    /// never left the process; reconnect.
    fn lost(&mut self, ctx: &mut Context<Self>, l: usize) {
        let link = &mut self.links[l];
        let sent = link.writer.take().map_or(0, |w| w.sent());
        link.generation += 1;
        link.flushing = false;
        for (pipeline, replies) in link.in_flight.drain() {
            let missing = match pipeline.start >= sent {
                true => Outcome::NotSent,
                false => Outcome::Unknown,
            };
            self.on_reply(ctx, pipeline, &replies, Some(missing));
        }
        self.reroute_from(l);
        self.after_replies(ctx);
        let delay = self.links[l].backoff();
        ctx.run_later(delay, move |act, ctx| act.reconnect(ctx, l));
    }

    pub(super) fn reconnect(&mut self, ctx: &mut Context<Self>, l: usize) {
        let endpoint = self.links[l].endpoint.clone();
        let timeout = crate::connect::CONNECT_TIMEOUT;
        let open = async move { endpoint.open(timeout).await };
        ctx.spawn(
            open.into_actor(self)
                .map(move |opened, act, ctx| match opened {
                    Ok((replies, writer)) => {
                        let link = &mut act.links[l];
                        link.writer = Some(writer);
                        link.reconnect_delay = RECONNECT_MIN_DELAY;
                        act.read(l, replies, ctx);
                        act.resume_saturating(ctx);
                    }
                    Err(_) => {
                        let delay = act.links[l].backoff();
                        ctx.run_later(delay, move |act, ctx| act.reconnect(ctx, l));
                        // It still has to notice when its run is over.
                        act.resume_saturating(ctx);
                    }
                }),
        );
    }

    /// After replies (or their loss): resume a blocked or saturating
    /// producer, or say it is done.
    fn after_replies(&mut self, ctx: &mut Context<Self>) {
        if std::mem::take(&mut self.blocked) || self.saturate.is_some() {
            self.tick(ctx);
        } else if self.due.is_empty() && self.nothing_in_flight() {
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
        let timeout_ns = self.response_timeout.as_nanos() as u64;
        let now_ns = self.clock.now_ns();
        for l in 0..self.links.len() {
            let oldest = self.links[l].in_flight.oldest();
            if oldest.is_some_and(|p| now_ns.saturating_sub(p.sent_ns) > timeout_ns) {
                self.lost(ctx, l);
            }
        }
    }

    pub(super) fn nothing_in_flight(&self) -> bool {
        self.links.iter().all(|l| l.in_flight.is_empty())
    }
}
