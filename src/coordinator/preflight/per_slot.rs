//! The preflight on a Redis Cluster (docs/acl.md, "The preflight"): a node
//! refuses a transaction whose keys are in several slots (CROSSSLOT), and
//! one whose key it does not serve (MOVED), so the run's commands are
//! queued node by node, one MULTI … DISCARD per slot the node serves, read
//! from CLUSTER SLOTS on the seed. Commands without a key go to every node:
//! the sampler reads INFO on each primary, and each node keeps its own ACL.
//! A command over several slots that the cluster connection splits (DEL)
//! is checked as its parts; any other is queued where its first key is,
//! and refused there as the run would be.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::needs::{self, Need};
use super::{Group, refusal, transactions, verdict};
use crate::connect::keys::{key_positions, splits};
use crate::connect::{NOT_A_CLUSTER, Target, not_a_cluster};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::slot::key_slot;
use crate::wire::slots::SlotMap;
use crate::wire::{Endpoint, Session};

pub(super) async fn check(plan: &Plan, target: &Target) -> Result<()> {
    let needs = needs::of(plan);
    let url = target.url();
    let seed = Arc::new(Endpoint::parse(url, target.tls())?);
    let timeout = plan.response_timeout();
    let map = slot_map(&seed, target, timeout).await?;
    let (keyless, by_slot) = place(&needs);
    let mut refused = Vec::new();
    for addr in map.nodes() {
        let node = seed
            .at(addr)
            .ok_or_else(|| Error::Internal(format!("CLUSTER SLOTS names a node at {addr:?}")))?;
        let mut groups = vec![keyless_group(&needs, &keyless)];
        groups.extend(
            (by_slot.iter())
                .filter(|(slot, _)| map.owner(**slot) == Some(addr.as_str()))
                .map(|(_, g)| Group {
                    needs: g.iter().map(|(i, _)| *i).collect(),
                    packed: g.iter().map(|(_, p)| p.clone()).collect(),
                }),
        );
        groups.retain(|g| !g.needs.is_empty());
        if groups.is_empty() {
            continue;
        }
        let session = Session::new(Arc::new(node), None, timeout);
        let at = target.at_node(addr)?;
        transactions(&session, &at, &needs, &groups, &mut refused).await?;
    }
    // Nodes of one cluster mostly share their ACL: each refusal once.
    let mut seen = Vec::new();
    refused.retain(|(i, r)| {
        let key = (*i, r.command.clone(), r.reply.clone());
        let new = !seen.contains(&key);
        seen.push(key);
        new
    });
    match refused.is_empty() {
        true => Ok(()),
        false => Err(verdict(url, refused)),
    }
}

/// CLUSTER SLOTS on the seed: which node serves each slot. A node without
/// cluster support, or a slot no node serves, stops the run here.
async fn slot_map(
    seed: &Arc<Endpoint>,
    target: &Target,
    timeout: std::time::Duration,
) -> Result<SlotMap> {
    let shown = target.to_string();
    let session = Session::new(seed.clone(), None, timeout);
    let failed =
        |e: std::io::Error| Error::redis(&shown, "reading the slot map (CLUSTER SLOTS)", e.into());
    let packed = redis::cmd("CLUSTER").arg("SLOTS").get_packed_command();
    let raw = session.call(packed, 1).await.map_err(failed)?;
    if let Some(reply) = raw.error(0) {
        if reply.contains(NOT_A_CLUSTER) {
            return Err(not_a_cluster(&shown, &reply));
        }
        let why = "reading the cluster's slot map";
        let refused = vec![(0, refusal("CLUSTER SLOTS".into(), why.into(), reply))];
        return Err(verdict(target.url(), refused));
    }
    let value = raw
        .value(0)
        .map_err(|e| Error::redis(&shown, "reading CLUSTER SLOTS", e))?;
    let host = seed.addr();
    let host = host.rsplit_once(':').map_or("", |(h, _)| h);
    let map = SlotMap::from_cluster_slots(&value, host)
        .map_err(|why| Error::Internal(format!("{shown}: CLUSTER SLOTS: {why}")))?;
    if map.uncovered() > 0 {
        return Err(Error::Usage(format!(
            "{shown}: {} slots are served by no node (CLUSTER SLOTS); the cluster is not \
             ready: run once every slot is assigned (cluster_state:ok)",
            map.uncovered()
        )));
    }
    Ok(map)
}

/// A need's index and a command as queued.
type Queued = (usize, Vec<u8>);

/// The needs without a key (MULTI and EXEC left out: `transactions` checks
/// them), and the rest by slot; a splitting command over several slots
/// becomes one part per slot, as the cluster connection sends it.
fn place(needs: &[Need]) -> (Vec<usize>, BTreeMap<u16, Vec<Queued>>) {
    let mut keyless = Vec::new();
    let mut by_slot: BTreeMap<u16, Vec<Queued>> = BTreeMap::new();
    for (i, need) in needs.iter().enumerate() {
        let name = need.name();
        if matches!(name.as_str(), "MULTI" | "EXEC") {
            continue;
        }
        let args = need.args();
        let bytes: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let keys: Vec<&str> = (key_positions(&bytes).into_iter())
            .map(|at| args[at].as_str())
            .collect();
        let Some(first) = keys.first() else {
            keyless.push(i);
            continue;
        };
        let first_slot = key_slot(first.as_bytes());
        if !splits(name.as_bytes()) || keys.iter().all(|k| key_slot(k.as_bytes()) == first_slot) {
            by_slot
                .entry(first_slot)
                .or_default()
                .push((i, need.packed.clone()));
            continue;
        }
        let mut parts: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
        for key in keys {
            parts.entry(key_slot(key.as_bytes())).or_default().push(key);
        }
        for (slot, keys) in parts {
            let mut part = redis::cmd(&name);
            part.arg(&keys);
            by_slot
                .entry(slot)
                .or_default()
                .push((i, part.get_packed_command()));
        }
    }
    (keyless, by_slot)
}

fn keyless_group(needs: &[Need], keyless: &[usize]) -> Group {
    Group {
        needs: keyless.to_vec(),
        packed: keyless.iter().map(|&i| needs[i].packed.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn need(args: &[&str]) -> Need {
        let mut c = redis::cmd(args[0]);
        c.arg(&args[1..]);
        Need {
            packed: c.get_packed_command(),
            needed_for: String::new(),
        }
    }

    #[test]
    fn commands_are_grouped_by_the_slot_of_their_keys_and_del_is_split() {
        let (a, b) = ("sd:r:orders:p0", "sd:r:orders:p1");
        let (slot_a, slot_b) = (key_slot(a.as_bytes()), key_slot(b.as_bytes()));
        assert_ne!(slot_a, slot_b);
        let needs = [
            need(&["INFO", "server"]),
            need(&["MULTI"]),
            need(&["XADD", a, "*", "f", "v"]),
            need(&["XREADGROUP", "GROUP", "g", "c", "STREAMS", b, ">"]),
            need(&["DEL", a, b]),
        ];
        let (keyless, by_slot) = place(&needs);
        assert_eq!(keyless, [0]);
        let at = |slot: u16| -> Vec<usize> { by_slot[&slot].iter().map(|(i, _)| *i).collect() };
        assert_eq!(at(slot_a), [2, 4]);
        assert_eq!(at(slot_b), [3, 4]);
        let del_b = &by_slot[&slot_b][1].1;
        assert_eq!(del_b, &redis::cmd("DEL").arg(b).get_packed_command());
    }
}
