//! Where a Redis Cluster keeps each slot, and what a redirection says: the
//! map a cluster client routes commands by, read from CLUSTER SLOTS and
//! corrected by `-MOVED` replies; `-ASK` sends one command elsewhere
//! without changing it (docs/cluster.md, "Routing"). The coordinator places
//! the actors' connections by it and the admin connection routes by it.

use redis::Value;

use crate::slot::{SLOTS, key_slot};

/// A node's address as the cluster announces it: `host:port`.
pub type Addr = String;

/// A redirection in an error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// The slot lives at `addr` now: update the map and resend there.
    Moved { slot: u16, addr: Addr },
    /// The slot is migrating: resend this one command to `addr`, after ASKING.
    Ask { slot: u16, addr: Addr },
}

impl Redirect {
    /// `MOVED 3999 127.0.0.1:6381` or `ASK 3999 127.0.0.1:6381` (the error
    /// text, with or without its `-`); anything else is not a redirection.
    pub fn parse(error: &str) -> Option<Redirect> {
        let mut words = error.trim_start_matches('-').split_whitespace();
        let kind = words.next()?;
        let slot: u16 = words.next()?.parse().ok().filter(|s| *s < SLOTS)?;
        let addr = words.next()?.to_string();
        if words.next().is_some() || !addr.contains(':') {
            return None;
        }
        match kind {
            "MOVED" => Some(Redirect::Moved { slot, addr }),
            "ASK" => Some(Redirect::Ask { slot, addr }),
            _ => None,
        }
    }
}

/// The primary of every slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMap {
    /// Indexed by slot; `None` for a slot no node serves.
    owners: Vec<Option<u16>>,
    /// The primaries' addresses, each once, in the order first seen.
    nodes: Vec<Addr>,
}

impl SlotMap {
    /// From a CLUSTER SLOTS reply: `[[start, end, [host, port, id, …],
    /// replicas…], …]`. A node announced with an empty host is `default_host`
    /// (the node we asked), as the reply means.
    pub fn from_cluster_slots(reply: &Value, default_host: &str) -> Result<SlotMap, String> {
        let Value::Array(ranges) = reply else {
            return Err(format!("CLUSTER SLOTS answered {reply:?}"));
        };
        let mut map = SlotMap {
            owners: vec![None; usize::from(SLOTS)],
            nodes: Vec::new(),
        };
        for range in ranges {
            let Value::Array(parts) = range else {
                return Err(format!("a CLUSTER SLOTS range is {range:?}"));
            };
            let (start, end) = match (parts.first(), parts.get(1)) {
                (Some(Value::Int(s)), Some(Value::Int(e)))
                    if 0 <= *s && s <= e && *e < SLOTS.into() =>
                {
                    (*s as u16, *e as u16)
                }
                _ => return Err(format!("a CLUSTER SLOTS range has no slots: {parts:?}")),
            };
            let addr = match parts.get(2) {
                Some(Value::Array(node)) => node_addr(node, default_host)?,
                other => return Err(format!("slots {start}-{end} have no primary: {other:?}")),
            };
            let index = map.node_index(addr);
            for slot in start..=end {
                map.owners[usize::from(slot)] = Some(index);
            }
        }
        Ok(map)
    }

    /// The primary serving `slot`.
    pub fn owner(&self, slot: u16) -> Option<&str> {
        Some(&self.nodes[self.owner_index(slot)?])
    }

    /// The primary serving `slot`, as its place in `nodes`.
    pub fn owner_index(&self, slot: u16) -> Option<usize> {
        let index = (*self.owners.get(usize::from(slot))?)?;
        Some(usize::from(index))
    }

    /// The primary serving `key`'s slot.
    pub fn owner_of_key(&self, key: &[u8]) -> Option<&str> {
        self.owner(key_slot(key))
    }

    /// The primaries, each once.
    pub fn nodes(&self) -> &[Addr] {
        &self.nodes
    }

    /// Slots no node serves.
    pub fn uncovered(&self) -> usize {
        self.owners.iter().filter(|o| o.is_none()).count()
    }

    /// A `MOVED` says one slot lives elsewhere now; an `ASK` changes nothing.
    pub fn apply(&mut self, redirect: &Redirect) {
        if let Redirect::Moved { slot, addr } = redirect {
            let index = self.node_index(addr.clone());
            self.owners[usize::from(*slot)] = Some(index);
        }
    }

    fn node_index(&mut self, addr: Addr) -> u16 {
        match self.nodes.iter().position(|n| *n == addr) {
            Some(i) => i as u16,
            None => {
                self.nodes.push(addr);
                (self.nodes.len() - 1) as u16
            }
        }
    }
}

fn node_addr(node: &[Value], default_host: &str) -> Result<Addr, String> {
    let host = match node.first() {
        Some(Value::BulkString(h)) if h.is_empty() => default_host.to_string(),
        Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
        Some(Value::SimpleString(h)) => h.clone(),
        Some(Value::Nil) => default_host.to_string(),
        other => return Err(format!("a CLUSTER SLOTS node has no host: {other:?}")),
    };
    match node.get(1) {
        Some(Value::Int(port)) if (1..=65535).contains(port) => Ok(format!("{host}:{port}")),
        other => Err(format!("a CLUSTER SLOTS node has no port: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn range(start: i64, end: i64, host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            Value::Array(vec![bulk(host), Value::Int(port), bulk("id")]),
            Value::Array(vec![bulk(host), Value::Int(port + 1), bulk("replica")]),
        ])
    }

    #[test]
    fn redirections_parse_and_nothing_else_does() {
        assert_eq!(
            Redirect::parse("MOVED 3999 127.0.0.1:6381"),
            Some(Redirect::Moved {
                slot: 3999,
                addr: "127.0.0.1:6381".into()
            })
        );
        assert_eq!(
            Redirect::parse("-ASK 0 10.0.0.2:7000"),
            Some(Redirect::Ask {
                slot: 0,
                addr: "10.0.0.2:7000".into()
            })
        );
        for not in [
            "ERR unknown",
            "MOVED 16384 h:1",
            "MOVED x h:1",
            "MOVED 1",
            "ASK 1 host",
        ] {
            assert_eq!(Redirect::parse(not), None, "{not}");
        }
    }

    #[test]
    fn the_map_follows_cluster_slots_and_moved() {
        let reply = Value::Array(vec![
            range(0, 8191, "127.0.0.1", 7000),
            range(8192, 16383, "", 7002),
        ]);
        let mut map = SlotMap::from_cluster_slots(&reply, "10.1.1.1").unwrap();
        assert_eq!(map.owner(0), Some("127.0.0.1:7000"));
        assert_eq!(map.owner(16383), Some("10.1.1.1:7002"));
        assert_eq!(map.nodes().len(), 2);
        assert_eq!(map.uncovered(), 0);
        map.apply(&Redirect::Ask {
            slot: 5,
            addr: "h:1".into(),
        });
        assert_eq!(map.owner(5), Some("127.0.0.1:7000"));
        map.apply(&Redirect::Moved {
            slot: 5,
            addr: "h:1".into(),
        });
        assert_eq!(map.owner(5), Some("h:1"));
        assert_eq!(map.owner(6), Some("127.0.0.1:7000"));
        let key = b"{a}";
        assert_eq!(map.owner_of_key(key), map.owner(key_slot(key)));
    }

    #[test]
    fn a_partial_map_says_what_it_lacks() {
        let reply = Value::Array(vec![range(0, 99, "h", 1)]);
        let map = SlotMap::from_cluster_slots(&reply, "h").unwrap();
        assert_eq!(map.uncovered(), 16384 - 100);
        assert_eq!(map.owner(100), None);
        assert!(SlotMap::from_cluster_slots(&Value::Int(1), "h").is_err());
    }
}
