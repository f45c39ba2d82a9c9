//! The admin connection to a Redis Cluster: one `ConnectionManager` per
//! primary, and each command sent to the primary of its key's slot by our
//! own slot map (`wire::slots`), read from the seed node's CLUSTER SLOTS and
//! corrected by MOVED; ASK is followed for the one command. Keyless
//! commands go to the first shard in slot order; pipelines are split per
//! node and their replies put back in order
//! (docs/cluster.md, "The admin connection").
//!
//! Not redis-rs's `cluster-async`: its pipelines refuse commands whose keys
//! are in different slots, which the sampler's and the read-back's
//! pipelines are, and it routes INFO and the other keyless commands its own
//! way, where the harness needs to know which node answered.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::task::Poll;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, RedisResult, Value};

use super::route::{Plan, Route, client_error, route, slot_of, sum};
use super::{Target, UNREACHABLE, manager};
use crate::error::{Error, Result};
use crate::slot::SLOTS;
use crate::wire::slots::{Addr, Redirect, SlotMap};

/// A cluster as one connection: cheap to clone, clones share the slot map,
/// the node connections and the redirection counters.
#[derive(Clone)]
pub struct ClusterConn {
    shared: Arc<Shared>,
}

struct Shared {
    /// The seed's URL and TLS, which every node's connection copies.
    seed: Target,
    response_timeout: Duration,
    map: RwLock<SlotMap>,
    nodes: Mutex<HashMap<Addr, ConnectionManager>>,
    moved: AtomicU64,
    asked: AtomicU64,
}

impl ClusterConn {
    /// Reads the slot map from `seed` and connects to every primary in it.
    pub async fn connect(seed: &Target, response_timeout: Duration) -> Result<ClusterConn> {
        let shown = seed.to_string();
        let reading = "reading the cluster's slot map (CLUSTER SLOTS)";
        let mut first = (manager(&seed.client()?, response_timeout).await)
            .map_err(|e| Error::redis(&shown, UNREACHABLE, e))?;
        let default_host = seed.host().unwrap_or_else(|| "127.0.0.1".to_string());
        let map = (read_slot_map(&mut first, &default_host).await)
            .and_then(|map| match map.nodes().is_empty() {
                true => Err(bad_reply("no node serves any slot".to_string())),
                false => Ok(map),
            })
            .map_err(|e| match e.to_string().contains(NOT_A_CLUSTER) {
                true => not_a_cluster(&shown, &e.to_string()),
                false => Error::redis(&shown, reading, e),
            })?;
        let shown = &shown;
        let connecting = map.nodes().iter().map(|addr| async move {
            let client = seed.at_node(addr)?.client()?;
            let conn = (manager(&client, response_timeout).await).map_err(|e| {
                Error::redis(&format!("{shown}, cluster node {addr}"), UNREACHABLE, e)
            })?;
            Ok((addr.clone(), conn))
        });
        let nodes = (join_all(connecting).await.into_iter()).collect::<Result<HashMap<_, _>>>()?;
        Ok(ClusterConn {
            shared: Arc::new(Shared {
                seed: seed.clone(),
                response_timeout,
                map: RwLock::new(map),
                nodes: Mutex::new(nodes),
                moved: AtomicU64::new(0),
                asked: AtomicU64::new(0),
            }),
        })
    }

    /// MOVED and ASK replies followed so far, by this connection and its clones.
    pub fn redirects(&self) -> (u64, u64) {
        let s = &self.shared;
        (
            s.moved.load(Ordering::Relaxed),
            s.asked.load(Ordering::Relaxed),
        )
    }

    /// Every primary that serves a slot, `host:port` and its connection, in
    /// slot order.
    pub fn primaries(&self) -> Vec<(Addr, ConnectionManager)> {
        let map = read(&self.shared.map);
        let mut owners: Vec<&str> = Vec::new();
        for slot in 0..SLOTS {
            if let Some(addr) = map.owner(slot)
                && owners.last() != Some(&addr)
                && !owners.contains(&addr)
            {
                owners.push(addr);
            }
        }
        let nodes = lock(&self.shared.nodes);
        (owners.into_iter())
            .filter_map(|addr| Some((addr.to_string(), nodes.get(addr)?.clone())))
            .collect()
    }

    /// The primary of `slot`, or of the first shard for none (or a slot no
    /// node serves: it answers MOVED or CLUSTERDOWN).
    fn addr_of(&self, slot: Option<u16>) -> Addr {
        let map = read(&self.shared.map);
        (slot.and_then(|s| map.owner(s)))
            .or_else(|| map.owner(0))
            .or_else(|| map.nodes().first().map(String::as_str))
            .unwrap_or_default()
            .to_string()
    }

    /// The connection to `addr`, made on first use (a node a MOVED names).
    async fn node(&self, addr: &str) -> RedisResult<ConnectionManager> {
        let known = lock(&self.shared.nodes).get(addr).cloned();
        if let Some(conn) = known {
            return Ok(conn);
        }
        let client = (self.shared.seed.at_node(addr))
            .and_then(|t| t.client())
            .map_err(|e| client_error("a cluster node's URL", e.to_string()))?;
        let conn = manager(&client, self.shared.response_timeout).await?;
        let mut nodes = lock(&self.shared.nodes);
        Ok(nodes.entry(addr.to_string()).or_insert(conn).clone())
    }

    async fn command(&self, cmd: &Cmd) -> RedisResult<Value> {
        match route(cmd) {
            Route::Keyless => self.on(&self.addr_of(None), cmd).await,
            Route::Slot(slot) => self.on(&self.addr_of(Some(slot)), cmd).await,
            Route::Split(parts) => {
                let sending = (parts.iter())
                    .map(|(slot, c)| async move { self.on(&self.addr_of(Some(*slot)), c).await });
                let replies = join_all(sending).await;
                sum(replies.into_iter().collect::<RedisResult<Vec<_>>>()?)
            }
        }
    }

    /// `cmd` on `addr`, and where it is redirected, once more there.
    async fn on(&self, addr: &str, cmd: &Cmd) -> RedisResult<Value> {
        let reply = self.node(addr).await?.req_packed_command(cmd).await;
        let reply = self.unless_lost(addr, reply).await;
        match redirect_in(&reply) {
            Some(redirect) => self.follow(&redirect, cmd).await,
            None => reply,
        }
    }

    async fn follow(&self, redirect: &Redirect, cmd: &Cmd) -> RedisResult<Value> {
        match redirect {
            Redirect::Moved { .. } => {
                let addr = self.moved(redirect).await?;
                self.node(&addr).await?.req_packed_command(cmd).await
            }
            Redirect::Ask { addr, .. } => {
                self.shared.asked.fetch_add(1, Ordering::Relaxed);
                let mut asking = redis::pipe();
                asking.cmd("ASKING").add_command(cmd.clone());
                let mut replies = self.send(addr, &asking).await?;
                match (replies.pop(), replies.pop()) {
                    (_, Some(refused @ Value::ServerError(_))) => Ok(refused),
                    (Some(reply), _) => Ok(reply),
                    (None, _) => Err(client_error("ASKING", "no reply".to_string())),
                }
            }
        }
    }

    /// Counts a MOVED, connects to where it points and corrects the map.
    async fn moved(&self, redirect: &Redirect) -> RedisResult<Addr> {
        let Redirect::Moved { addr, .. } = redirect else {
            return Ok(self.addr_of(None));
        };
        self.shared.moved.fetch_add(1, Ordering::Relaxed);
        self.node(addr).await?;
        write(&self.shared.map).apply(redirect);
        Ok(addr.clone())
    }

    /// A whole (non-atomic) sub-pipeline on `addr`: every reply, errors as values.
    async fn send(&self, addr: &str, pipeline: &Pipeline) -> RedisResult<Vec<Value>> {
        let mut conn = self.node(addr).await?;
        let replies = conn.req_packed_commands(pipeline, 0, pipeline.len()).await;
        self.unless_lost(addr, replies).await
    }

    /// `result` as it is; but when `addr` could not be reached or did not
    /// answer (not an error reply: no reply), the slot map is read again
    /// first. A dead primary says no MOVED, and its replica takes its slots
    /// over: without a fresh map every later command would go to the dead
    /// one. The failed command is not resent, so its failure is seen, as on
    /// one server.
    async fn unless_lost<T>(&self, addr: &str, result: RedisResult<T>) -> RedisResult<T> {
        if let Err(e) = &result
            && !matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::Extension)
        {
            self.refresh(addr).await;
        }
        result
    }

    /// The slot map as the first other primary that answers CLUSTER SLOTS
    /// has it, connected to every primary it names; kept as it was when
    /// none does.
    async fn refresh(&self, failed: &str) {
        let others: Vec<Addr> = (read(&self.shared.map).nodes().iter())
            .filter(|a| *a != failed)
            .cloned()
            .collect();
        for addr in others {
            let Ok(mut conn) = self.node(&addr).await else {
                continue;
            };
            let host = addr.rsplit_once(':').map_or(addr.as_str(), |(h, _)| h);
            let Ok(map) = read_slot_map(&mut conn, host).await else {
                continue;
            };
            for node in map.nodes() {
                // One that cannot be reached yet is tried again on use.
                let _ = self.node(node).await;
            }
            *write(&self.shared.map) = map;
            return;
        }
    }

    /// A pipeline split into one per node, sent at once, replies put back in
    /// order. A MULTI … EXEC block stays whole on the node of its first
    /// keyed command; a redirected command is resent on its own, a block
    /// that got a MOVED whole.
    async fn pipeline(&self, pipeline: &Pipeline) -> RedisResult<Vec<Value>> {
        let plan = Plan::of(pipeline, |slot| self.addr_of(slot));
        let sending = (plan.batches.iter()).map(|(addr, p)| self.send(addr, p));
        let mut replies = (join_all(sending).await.into_iter()).collect::<RedisResult<Vec<_>>>()?;
        for block in &plan.blocks {
            let got = &replies[block.batch][block.at.clone()];
            let Some(moved) = got.iter().find_map(moved_in) else {
                continue;
            };
            let addr = self.moved(&moved).await?;
            let again = plan.block_pipeline(block);
            let resent = self.send(&addr, &again).await?;
            replies[block.batch].splice(block.at.clone(), resent);
        }
        for part in plan.parts.iter().flatten().filter(|p| !p.in_block) {
            let reply = &replies[part.batch][part.at];
            let Some(redirect) = redirect_of(reply) else {
                continue;
            };
            let Some(cmd) = plan.command(part) else {
                continue;
            };
            replies[part.batch][part.at] = self.follow(&redirect, cmd).await?;
        }
        let mut taken: Vec<Vec<Option<Value>>> = (replies.into_iter())
            .map(|r| r.into_iter().map(Some).collect())
            .collect();
        (plan.parts.iter())
            .map(|parts| {
                let values = (parts.iter())
                    .map(|p| taken[p.batch][p.at].take().unwrap_or(Value::Nil))
                    .collect::<Vec<_>>();
                match values.len() {
                    1 => Ok(values.into_iter().next().unwrap_or(Value::Nil)),
                    _ => sum(values),
                }
            })
            .collect()
    }

    /// An atomic pipeline: MULTI, its commands, EXEC, all on the node of its
    /// first keyed command; resent whole there after a MOVED.
    async fn transaction(&self, pipeline: &Pipeline) -> RedisResult<Vec<Value>> {
        let slot = pipeline.cmd_iter().find_map(slot_of);
        let mut block = redis::pipe();
        block.cmd("MULTI");
        for c in pipeline.cmd_iter() {
            block.add_command(c.clone());
        }
        block.cmd("EXEC");
        let mut replies = self.send(&self.addr_of(slot), &block).await?;
        if let Some(moved) = replies.iter().find_map(moved_in) {
            let addr = self.moved(&moved).await?;
            replies = self.send(&addr, &block).await?;
        }
        let exec = replies.pop().unwrap_or(Value::Nil);
        if let Value::ServerError(aborted) = exec {
            // Say which command made EXEC abort, not only that it did.
            let first = replies.into_iter().find_map(|r| match r {
                Value::ServerError(e) => Some(e),
                _ => None,
            });
            return Err(RedisError::from(first.unwrap_or(aborted)));
        }
        Ok(vec![exec])
    }
}

impl ConnectionLike for ClusterConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(self.command(cmd))
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            match pipeline.is_transaction() {
                // EXEC's reply alone, as redis-rs asks for it.
                true => self.transaction(pipeline).await,
                false => {
                    let replies = self.pipeline(pipeline).await?;
                    Ok(replies.into_iter().skip(offset).take(count).collect())
                }
            }
        })
    }

    /// A cluster has database 0 only.
    fn get_db(&self) -> i64 {
        0
    }
}

/// The redirection a reply (or a failed command) carries.
/// CLUSTER SLOTS on `conn`, as a slot map; a node announced without a
/// host is on `default_host`, the host of the node asked.
pub async fn read_slot_map(
    conn: &mut impl ConnectionLike,
    default_host: &str,
) -> RedisResult<SlotMap> {
    let reply: Value = redis::cmd("CLUSTER").arg("SLOTS").query_async(conn).await?;
    SlotMap::from_cluster_slots(&reply, default_host).map_err(bad_reply)
}

/// What a server without cluster support answers CLUSTER SLOTS with.
pub const NOT_A_CLUSTER: &str = "cluster support disabled";

/// A target marked as a cluster's seed that is one server
/// (docs/cluster.md, "External clusters").
pub fn not_a_cluster(shown: &str, reply: &str) -> Error {
    Error::Usage(format!(
        "redis.cluster: {shown} is not a Redis Cluster node ({reply}): remove `cluster` to \
         run against it as one server, or give the URL of a cluster's node"
    ))
}

fn bad_reply(why: String) -> RedisError {
    RedisError::from((ErrorKind::UnexpectedReturnType, "bad reply", why))
}

fn redirect_in(reply: &RedisResult<Value>) -> Option<Redirect> {
    match reply {
        Ok(value) => redirect_of(value),
        Err(e) => Redirect::parse(&format!("{} {}", e.code()?, e.detail()?)),
    }
}

/// The redirection an error reply of a pipeline carries.
fn redirect_of(reply: &Value) -> Option<Redirect> {
    let Value::ServerError(e) = reply else {
        return None;
    };
    Redirect::parse(&format!("{} {}", e.code(), e.details().unwrap_or_default()))
}

fn moved_in(reply: &Value) -> Option<Redirect> {
    redirect_of(reply).filter(|r| matches!(r, Redirect::Moved { .. }))
}

/// Waits for every future, polled together; their outputs in their order.
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut pending: Vec<Pin<Box<F>>> = futures.into_iter().map(Box::pin).collect();
    let mut done: Vec<Option<F::Output>> = pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for (future, out) in pending.iter_mut().zip(done.iter_mut()) {
            if out.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(v) => *out = Some(v),
                    Poll::Pending => all = false,
                }
            }
        }
        match all {
            true => Poll::Ready(()),
            false => Poll::Pending,
        }
    })
    .await;
    done.into_iter().flatten().collect()
}

/// Locks that a panic elsewhere leaves usable: the data is a cache.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn read(m: &RwLock<SlotMap>) -> std::sync::RwLockReadGuard<'_, SlotMap> {
    m.read().unwrap_or_else(|p| p.into_inner())
}

fn write(m: &RwLock<SlotMap>) -> std::sync::RwLockWriteGuard<'_, SlotMap> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirections_are_read_from_replies_and_errors() {
        let moved = RedisError::from((ErrorKind::Client, "x", "not a redirection".to_string()));
        assert_eq!(redirect_in(&Err(moved)), None);
        assert_eq!(redirect_in(&Ok(Value::Int(1))), None);
        assert_eq!(
            sum(vec![Value::Int(2), Value::Int(3)]).unwrap(),
            Value::Int(5)
        );
        assert!(sum(vec![Value::Okay]).is_err());
    }

    #[tokio::test]
    async fn join_all_keeps_the_order_of_its_futures() {
        let slow = async {
            tokio::time::sleep(Duration::from_millis(5)).await;
            1
        };
        let futures: Vec<Pin<Box<dyn Future<Output = i32> + Send>>> =
            vec![Box::pin(slow), Box::pin(async { 2 })];
        assert_eq!(join_all(futures).await, [1, 2]);
    }
}
