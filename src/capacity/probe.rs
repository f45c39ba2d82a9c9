//! The memory one pending entry costs (docs/capacity.md, "Sizing"),
//! measured rather than assumed: on a fresh idle server like the steps'
//! (on an external server, on that server, where other clients' use of
//! memory adds noise), INFO used_memory before and after one consumer reads a stream's
//! `ENTRIES` entries without acknowledging them. Not MEMORY USAGE: it
//! estimates a pending list from node counts, and on Redis 7.0.15 says
//! 569 bytes per entry where used_memory grows by 91. The pending list's
//! cost does not depend on the payload (it holds ids, delivery counts and
//! times), so the entries are small.

use std::time::Duration;

use crate::connect::{Conn, Target};
use crate::error::{Error, Result};

const ENTRIES: u64 = 10_000;
const TIMEOUT: Duration = Duration::from_secs(10);

/// Bytes per pending entry on the Redis at `target`, probed on a key of the
/// search's own (`sd:<search id>:pending-probe`), deleted afterwards. None
/// when the server does not report used_memory.
pub fn pending_bytes_per_entry(target: &Target, search_id: &str) -> Result<Option<f64>> {
    let key = format!("sd:{search_id}:pending-probe");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("starting the probe's runtime: {e}")))?;
    runtime.block_on(async {
        let mut conn = target.connect(TIMEOUT).await?;
        let measured = measure(&mut conn, &key).await;
        let _ = redis::cmd("DEL")
            .arg(&key)
            .query_async::<u64>(&mut conn)
            .await;
        let url = target.to_string();
        measured.map_err(|e| Error::redis(&url, "measuring a pending list's memory", e))
    })
}

async fn measure(conn: &mut Conn, key: &str) -> redis::RedisResult<Option<f64>> {
    redis::cmd("DEL").arg(key).query_async::<u64>(conn).await?;
    let mut pipe = redis::pipe();
    for i in 0..ENTRIES {
        pipe.cmd("XADD").arg(key).arg("*").arg("n").arg(i).ignore();
    }
    pipe.query_async::<()>(conn).await?;
    redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(key)
        .arg(&["probe", "0"])
        .query_async::<()>(conn)
        .await?;
    let before = used_memory(conn).await?;
    redis::cmd("XREADGROUP")
        .arg(&["GROUP", "probe", "reader", "COUNT"])
        .arg(ENTRIES)
        .arg("STREAMS")
        .arg(key)
        .arg(">")
        .query_async::<redis::Value>(conn)
        .await?;
    let after = used_memory(conn).await?;
    Ok(before
        .zip(after)
        .map(|(b, a)| a.saturating_sub(b) as f64 / ENTRIES as f64))
}

/// INFO used_memory; None when the server does not report it.
async fn used_memory(conn: &mut Conn) -> redis::RedisResult<Option<u64>> {
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    Ok(crate::metrics::info_field(&info, "used_memory"))
}
