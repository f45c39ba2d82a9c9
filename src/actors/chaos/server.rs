//! The chaos actor's two server families.
//!
//! Server-process faults act on the managed server's process: SIGKILL,
//! SIGSTOP/SIGCONT, SHUTDOWN, a restart from the same data directory, and a
//! failover's kill and promotion. They run on the blocking pool, so a
//! restart that waits for Redis to load its data does not stall the actors
//! measuring the outage. A signal or shutdown first checks the process is
//! there: a kill that kills nothing did not happen, and says so.
//!
//! Server-command faults send CLIENT KILL, CLIENT PAUSE or DEBUG SLEEP on a
//! connection of their own, so neither the fault (CLIENT KILL skips its
//! sender) nor a slow reply (DEBUG SLEEP) touches the actors' connections or
//! this actor. After a failover both families act on the promoted replica.

use std::time::Duration;

use super::{Applying, Chaos, SharedServer, Stepped, ready};
use crate::actors::FaultStep;
use crate::clock::RunClock;
use crate::connect::Target;
use crate::plan::FaultTarget;
use crate::scenario::FaultKind;
use crate::server::RedisServer;

/// A synchronous operation on a managed server.
type ServerOp = fn(&mut RedisServer) -> Result<(), String>;

impl Chaos {
    /// A step of a server-process fault, on the current primary.
    pub(super) fn server_process(&mut self, kind: &FaultKind, step: FaultStep) -> Applying {
        use FaultKind::{FreezeRedis, KillRedis, PowerLoss, RestartRedis};
        let op: ServerOp = match (kind, step) {
            (FaultKind::Failover {}, FaultStep::Begin) => return self.failover(),
            (KillRedis { .. }, FaultStep::Begin) => kill,
            (PowerLoss { .. }, FaultStep::Begin) => power_cut,
            (FreezeRedis { .. }, FaultStep::Begin) => freeze,
            (FreezeRedis { .. }, FaultStep::End) => thaw,
            (RestartRedis {}, FaultStep::Begin) => shut_down,
            (KillRedis { .. } | PowerLoss { .. } | RestartRedis {}, FaultStep::End) => restart,
            _ => return ready(Err(format!("{} is no server-process fault", kind.action()))),
        };
        let Some(server) = self.server.clone() else {
            return ready(Err("there is no managed redis-server to act on".into()));
        };
        let clock = self.clock;
        Box::pin(blocking_timed(server, op, clock))
    }

    /// SIGKILL the primary, promote the replica (REPLICAOF NO ONE) and point
    /// the proxy, the harness's only address for Redis, at it; connections
    /// still open are reset so every connection reconnects there. Answered
    /// when the replica has accepted the promotion. From the start on, server
    /// faults act on the replica: the old primary is dead, and the replica is
    /// the primary once the promotion is done.
    fn failover(&mut self) -> Applying {
        let Some(primary) = self.server.clone() else {
            return ready(Err("there is no managed primary to fail over from".into()));
        };
        let Some(replica) = self.replica.take() else {
            return ready(Err("there is no replica left to promote".into()));
        };
        let Ok((port, url, tls)) = replica.lock().map(|r| (r.port(), r.url(), r.client_tls()))
        else {
            return ready(Err("the replica's lock is poisoned".into()));
        };
        self.server = Some(replica.clone());
        self.target = crate::connect::Target::new(url, tls).ok();
        let proxy = self.proxy.clone();
        let promote = async move {
            // A primary that died already is what a failover is for: promote anyway.
            blocking(primary, |s| s.kill9().map_err(|e| e.to_string())).await?;
            blocking(replica, |s| s.promote().map_err(|e| e.to_string())).await?;
            if let Some(proxy) = proxy {
                let ip = std::net::Ipv4Addr::LOCALHOST;
                proxy.set_upstream(std::net::SocketAddr::from((ip, port)));
                proxy.reset_all();
            }
            Ok(())
        };
        Box::pin(async move { Stepped::of(promote.await) })
    }

    /// A step of a server-command fault. Redis ends a pause and a sleep by
    /// itself, so their end asks nothing.
    pub(super) fn server_command(&mut self, kind: &FaultKind, step: FaultStep) -> Applying {
        let cmd = match (command(kind), step) {
            (Some(cmd), FaultStep::Begin) => cmd,
            (Some(_), FaultStep::End) => return ready(Ok(())),
            (None, _) => {
                return ready(Err(format!("{} is no server-command fault", kind.action())));
            }
        };
        let Some(target) = self.target.clone() else {
            return ready(Err("there is no Redis URL to send the command to".into()));
        };
        // DEBUG SLEEP answers when the sleep is over: wait that long too.
        let timeout = crate::plan::RESPONSE_TIMEOUT + self.longest_command();
        let counts_kills = matches!(kind, FaultKind::ClientKill {});
        Box::pin(async move {
            match request(&target, cmd, timeout).await {
                Err(e) => Stepped::of(Err(e)),
                Ok(redis::Value::Int(n)) if counts_kills => killed(n),
                Ok(_) => Stepped::default(),
            }
        })
    }

    /// The longest timed server command of the drill.
    fn longest_command(&self) -> Duration {
        (self.faults.iter())
            .filter(|f| f.target == FaultTarget::ServerCommand)
            .filter_map(|f| f.spec().lasts.ends_after())
            .map(|d| d.as_duration())
            .max()
            .unwrap_or_default()
    }
}

/// The command a server-command fault sends (None for any other kind); the
/// preflight checks this very command before the run starts.
pub fn command(kind: &FaultKind) -> Option<redis::Cmd> {
    let mut cmd;
    match kind {
        FaultKind::ClientKill {} => {
            cmd = redis::cmd("CLIENT");
            cmd.arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"][..]);
        }
        FaultKind::ClientPause { duration } => {
            cmd = redis::cmd("CLIENT");
            let ms = duration.as_duration().as_millis() as u64;
            cmd.arg("PAUSE").arg(ms).arg("ALL");
        }
        FaultKind::DebugSleep { duration } => {
            cmd = redis::cmd("DEBUG");
            cmd.arg("SLEEP")
                .arg(format!("{:.3}", duration.as_secs_f64()));
        }
        _ => return None,
    }
    Some(cmd)
}

/// CLIENT KILL answers how many connections it closed. None closed means
/// it reached none of the harness's: the fault did nothing.
fn killed(n: i64) -> Stepped {
    let n = u64::try_from(n).unwrap_or(0);
    Stepped {
        error: (n == 0).then(|| {
            "CLIENT KILL closed no connection: none of the harness's was on this server".into()
        }),
        clients_killed: Some(n),
        acted_ns: None,
    }
}

/// `cmd` on a connection of its own to the server at `target`.
async fn request(
    target: &Target,
    cmd: redis::Cmd,
    timeout: Duration,
) -> Result<redis::Value, String> {
    let mut conn = target.connect(timeout).await.map_err(|e| e.to_string())?;
    cmd.query_async::<redis::Value>(&mut conn)
        .await
        .map_err(|e| e.to_string())
}

/// The process must be there for a signal or a shutdown to be a fault.
fn running(s: &mut RedisServer) -> Result<(), String> {
    match s.is_running() {
        true => Ok(()),
        false => Err(format!("redis-server on port {} is already down", s.port())),
    }
}

fn kill(s: &mut RedisServer) -> Result<(), String> {
    running(s)?;
    s.kill9().map_err(|e| e.to_string())
}

fn power_cut(s: &mut RedisServer) -> Result<(), String> {
    running(s)?;
    s.power_cut().map(drop).map_err(|e| e.to_string())
}

fn freeze(s: &mut RedisServer) -> Result<(), String> {
    running(s)?;
    s.freeze().map_err(|e| {
        // Never leave a half-applied freeze behind.
        let _ = s.thaw();
        e.to_string()
    })
}

fn thaw(s: &mut RedisServer) -> Result<(), String> {
    s.thaw().map_err(|e| e.to_string())
}

fn shut_down(s: &mut RedisServer) -> Result<(), String> {
    running(s)?;
    s.stop().map_err(|e| e.to_string())
}

fn restart(s: &mut RedisServer) -> Result<(), String> {
    s.restart().map_err(|e| e.to_string())
}

/// Runs a server operation on the blocking pool: a restart waits for Redis to
/// load its data, which must not stall the actors measuring the outage.
async fn blocking(server: SharedServer, op: ServerOp) -> Result<(), String> {
    blocking_with(server, op).await
}

/// `blocking`, answered with when the operation began on the run clock
/// (`Stepped::acted_ns`).
async fn blocking_timed(server: SharedServer, op: ServerOp, clock: RunClock) -> Stepped {
    let timed = move |s: &mut RedisServer| {
        let began = clock.now_ns();
        op(s).map(|()| began)
    };
    Stepped::acted(blocking_with(server, timed).await)
}

async fn blocking_with<T, F>(server: SharedServer, op: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce(&mut RedisServer) -> Result<T, String> + Send + 'static,
{
    let joined = tokio::task::spawn_blocking(move || {
        let mut server = server
            .lock()
            .map_err(|_| "server lock poisoned".to_string())?;
        op(&mut server)
    })
    .await;
    joined.map_err(|e| e.to_string())?
}
