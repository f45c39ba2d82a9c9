//! Which connection each of a producer's stream keys goes out on, and what
//! happens when a cluster says a key lives elsewhere (docs/cluster.md,
//! "Routing"): `-MOVED` corrects the route of every key in that slot and
//! sends the XADD on to the new node; `-ASK` sends that one XADD on, after
//! ASKING, and leaves the route alone. Neither was applied where it was
//! refused, so the XADD goes on once, and its latency still counts from
//! its intended time. Both are counted, for the report.

use std::sync::Arc;

use actix::prelude::*;

use super::link::Link;
use super::{Outcome, Pipeline, Producer, Sent};
use crate::metrics::cluster::Redirects;
use crate::slot::key_slot;
use crate::wire::resp;
use crate::wire::slots::Redirect;

/// More redirections than this for one XADD is a cluster that cannot make
/// up its mind: the XADD fails.
const MAX_REDIRECTS: u8 = 5;

pub(super) struct Routes {
    /// Per stream key (partition), its slot and the link it goes out on.
    slots: Vec<u16>,
    links: Vec<usize>,
    pub redirects: Redirects,
}

impl Routes {
    pub fn new(keys: &[String], links: Vec<usize>) -> Routes {
        Routes {
            slots: keys.iter().map(|k| key_slot(k.as_bytes())).collect(),
            links,
            redirects: Redirects::default(),
        }
    }

    pub fn link_of(&self, partition: u32) -> usize {
        self.links[partition as usize]
    }
}

/// The redirection an error reply to `sent` is, if it is one and `sent`
/// may still be sent on.
pub(super) fn redirect(error: &str, sent: &Sent) -> Option<Redirect> {
    (sent.redirects < MAX_REDIRECTS)
        .then(|| Redirect::parse(error))
        .flatten()
}

impl Producer {
    /// Sends `sent` on where `to` says, as a pipeline of its own; a node
    /// not connected yet gets a connection, and until it is up the XADD
    /// fails as never sent.
    pub(super) fn redirect(
        &mut self,
        ctx: &mut Context<Self>,
        mut sent: Sent,
        to: Redirect,
        sent_ns: u64,
    ) {
        let (slot, addr, asking) = match &to {
            Redirect::Moved { slot, addr } => (*slot, addr, false),
            Redirect::Ask { slot, addr } => (*slot, addr, true),
        };
        match asking {
            true => self.routes.redirects.xadd_ask += 1,
            false => self.routes.redirects.xadd_moved += 1,
        }
        let known = self.links.iter().position(|l| l.endpoint.addr() == *addr);
        let l = match known.or_else(|| self.add_link(ctx, addr)) {
            // After the run gave up nothing more goes out: not applied, failed.
            Some(l) if !self.giving_up => l,
            _ => {
                let pipeline = Pipeline {
                    sent_ns,
                    start: 0,
                    batch: vec![sent],
                    asking: false,
                };
                return self.on_reply(ctx, pipeline, &[], Some(Outcome::NotSent));
            }
        };
        if !asking {
            for (key_slot, link) in self.routes.slots.iter().zip(&mut self.routes.links) {
                if *key_slot == slot {
                    *link = l;
                }
            }
        }
        sent.redirects += 1;
        if asking {
            resp::command(&mut self.links[l].out, &[b"ASKING"]);
        }
        self.encode(l, &sent);
        self.transmit(ctx, l, sent_ns, vec![sent], asking);
    }

    /// Link `l` is down: in a cluster its keys go out on another link that
    /// is up, until a `-MOVED` says where their slots live now (a promoted
    /// replica, or `l`'s node again). One server has nowhere else to go.
    pub(super) fn reroute_from(&mut self, l: usize) {
        let up = (0..self.links.len()).find(|&o| o != l && self.links[o].is_up());
        let Some(up) = up else {
            return;
        };
        for link in &mut self.routes.links {
            if *link == l {
                *link = up;
            }
        }
    }

    /// A connection to a node first heard of in a redirection, opened now;
    /// None for an address that names no host and port.
    fn add_link(&mut self, ctx: &mut Context<Self>, addr: &str) -> Option<usize> {
        let endpoint = Arc::new(self.links[0].endpoint.at(addr)?);
        self.links.push(Link::new(endpoint, None));
        let l = self.links.len() - 1;
        self.reconnect(ctx, l);
        Some(l)
    }
}
