//! One proxied connection: the client socket, its upstream socket, and two
//! pumps (client → Redis, Redis → client) that apply the current toxics.
//! [`super::FaultProxy`]'s accept loop spawns [`serve`] once per accepted client.
//!
//! Each pump is a reader and a writer joined by a queue of timestamped chunks.
//! The reader never waits on the toxics, so added latency delays every chunk
//! by its own amount from the moment it was read instead of serialising the
//! stream (a chunk read at t leaves at t + delay); the writer delivers the queue
//! in order, so bytes are never reordered. A byte budget bounds the queue: when
//! the writer is held back (blackhole, bandwidth) the reader stops and TCP flow
//! control pushes back on the sender, as a slow network would.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::{sleep, sleep_until, timeout};

use super::toxic::{Direction, TokenBucket, Toxics, chunk_delay};

/// The largest single read, hence the largest chunk a toxic acts on.
pub(crate) const CHUNK_MAX_BYTES: usize = 64 * 1024;
/// Bytes a pump holds (read, not yet written) before it stops reading.
const QUEUE_MAX_BYTES: usize = 4 * 1024 * 1024;
/// How long connecting to the upstream may take before the client is reset.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What every connection watches: the toxics, and a counter `reset_all` bumps.
/// The proxy dropping its sender tells connections to close.
#[derive(Clone, Debug, Default)]
pub(crate) struct Control {
    pub toxics: Toxics,
    pub resets: u64,
}

/// Counters shared by the accept loop and every connection.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub accepted: AtomicU64,
    pub open: AtomicU64,
    pub bytes_upstream: AtomicU64,
    pub bytes_downstream: AtomicU64,
}

impl Counters {
    fn bytes(&self, direction: Direction) -> &AtomicU64 {
        match direction {
            Direction::Upstream => &self.bytes_upstream,
            Direction::Downstream => &self.bytes_downstream,
        }
    }
}

/// Counts a connection as open for exactly as long as its task lives, aborted or not.
struct OpenGuard(Arc<Counters>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a connection ended, which decides how its sockets close.
#[derive(Debug, PartialEq)]
enum End {
    /// Both directions reached end of stream: close normally.
    Closed,
    /// A socket failed, or `reset_all` was called: reset both sides.
    Reset,
    /// The proxy is stopping: close normally.
    Stopped,
}

/// One side of a pump failed; the connection is reset.
#[derive(Debug)]
struct Broken;

/// Bytes read at `read_at`, with the jitter draw they were given then.
struct Chunk {
    bytes: Vec<u8>,
    read_at: Instant,
    jitter_unit: f64,
}

/// Proxies `client` to `upstream` until either side closes, the proxy asks for
/// a reset, or the proxy goes away.
pub(crate) async fn serve(
    mut client: TcpStream,
    upstream: SocketAddr,
    ctl: watch::Receiver<Control>,
    counters: Arc<Counters>,
    rng: SmallRng,
) {
    counters.open.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(counters.clone());
    let resets_seen = ctl.borrow().resets;
    let mut server = match timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await {
        Ok(Ok(server)) => server,
        // The client sees "connection reset", as if the server had refused it.
        _ => return reset(&client),
    };
    // Nagle on either socket would add its own delay to small replies.
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let end = {
        let pumps = pump_both(&mut client, &mut server, &ctl, &counters, rng);
        tokio::select! {
            end = pumps => end,
            end = until_reset_or_stop(ctl.clone(), resets_seen) => end,
        }
    };
    if end == End::Reset {
        reset(&client);
        reset(&server);
    }
}

/// SO_LINGER 0: closing the socket then sends RST instead of FIN.
fn reset(socket: &TcpStream) {
    let _ = socket.set_zero_linger();
}

async fn until_reset_or_stop(mut ctl: watch::Receiver<Control>, resets_seen: u64) -> End {
    loop {
        if ctl.changed().await.is_err() {
            return End::Stopped;
        }
        if ctl.borrow_and_update().resets != resets_seen {
            return End::Reset;
        }
    }
}

async fn pump_both(
    client: &mut TcpStream,
    server: &mut TcpStream,
    ctl: &watch::Receiver<Control>,
    counters: &Counters,
    mut rng: SmallRng,
) -> End {
    let down_rng = SmallRng::seed_from_u64(rng.random());
    let (client_in, client_out) = client.split();
    let (server_in, server_out) = server.split();
    let up = pump(
        client_in,
        server_out,
        Direction::Upstream,
        ctl.clone(),
        counters,
        rng,
    );
    let down = pump(
        server_in,
        client_out,
        Direction::Downstream,
        ctl.clone(),
        counters,
        down_rng,
    );
    match tokio::try_join!(up, down) {
        Ok(_) => End::Closed,
        Err(Broken) => End::Reset,
    }
}

/// Moves one direction's bytes until its source ends (then half-closes the
/// destination, as TCP would) or either socket fails.
async fn pump(
    from: ReadHalf<'_>,
    to: WriteHalf<'_>,
    direction: Direction,
    ctl: watch::Receiver<Control>,
    counters: &Counters,
    rng: SmallRng,
) -> Result<(), Broken> {
    let (queue_in, queue_out) = mpsc::unbounded_channel();
    let budget = Semaphore::new(QUEUE_MAX_BYTES);
    let reader = read_side(from, queue_in, &budget, rng);
    let writer = write_side(to, queue_out, &budget, direction, ctl, counters);
    tokio::try_join!(reader, writer).map(|_| ())
}

async fn read_side(
    mut from: ReadHalf<'_>,
    queue: mpsc::UnboundedSender<Chunk>,
    budget: &Semaphore,
    mut rng: SmallRng,
) -> Result<(), Broken> {
    let mut buf = vec![0u8; CHUNK_MAX_BYTES];
    loop {
        // Wait for room before reading, so a held-back writer stalls the sender.
        let permits = budget
            .acquire_many(CHUNK_MAX_BYTES as u32)
            .await
            .map_err(|_| Broken)?;
        let n = from.read(&mut buf).await.map_err(|_| Broken)?;
        if n == 0 {
            return Ok(()); // dropping `queue` tells the writer to half-close
        }
        // Keep only what the chunk uses; the writer returns it after writing.
        permits.forget();
        budget.add_permits(CHUNK_MAX_BYTES - n);
        let chunk = Chunk {
            bytes: buf[..n].to_vec(),
            read_at: Instant::now(),
            jitter_unit: rng.random_range(-1.0..=1.0),
        };
        if queue.send(chunk).is_err() {
            return Ok(()); // the writer is gone and has reported why
        }
    }
}

async fn write_side(
    mut to: WriteHalf<'_>,
    mut queue: mpsc::UnboundedReceiver<Chunk>,
    budget: &Semaphore,
    direction: Direction,
    mut ctl: watch::Receiver<Control>,
    counters: &Counters,
) -> Result<(), Broken> {
    let mut bucket: Option<TokenBucket> = None;
    while let Some(chunk) = queue.recv().await {
        wait_until_due(&chunk, direction, &mut ctl).await;
        let mut sent = 0;
        while sent < chunk.bytes.len() {
            let n = paced(&chunk.bytes[sent..], &mut bucket, &mut ctl).await;
            to.write_all(&chunk.bytes[sent..sent + n])
                .await
                .map_err(|_| Broken)?;
            counters
                .bytes(direction)
                .fetch_add(n as u64, Ordering::Relaxed);
            sent += n;
        }
        budget.add_permits(chunk.bytes.len());
    }
    // The source ended cleanly: pass the end of stream on. A peer that is
    // already gone makes this fail, which changes nothing.
    let _ = to.shutdown().await;
    Ok(())
}

/// Returns once the current toxics let `chunk` go: no blackhole, and its delay
/// since it was read has passed. Re-evaluated whenever the toxics change.
async fn wait_until_due(chunk: &Chunk, direction: Direction, ctl: &mut watch::Receiver<Control>) {
    loop {
        let toxics = ctl.borrow_and_update().toxics.clone();
        if !toxics.blackhole {
            let delay = chunk_delay(toxics.latency, direction, chunk.jitter_unit);
            if delay.is_zero() {
                return;
            }
            let due = tokio::time::Instant::from_std(chunk.read_at + delay);
            tokio::select! {
                _ = sleep_until(due) => return,
                _ = toxics_changed(ctl) => continue,
            }
        }
        toxics_changed(ctl).await;
    }
}

/// How many of `bytes` may be written now under the bandwidth limit, waiting
/// as long as the limit requires (at least one byte).
async fn paced(
    bytes: &[u8],
    bucket: &mut Option<TokenBucket>,
    ctl: &mut watch::Receiver<Control>,
) -> usize {
    loop {
        let Some(rate) = ctl.borrow().toxics.bandwidth_bytes_per_s else {
            *bucket = None;
            return bytes.len();
        };
        let now = Instant::now();
        if bucket
            .as_ref()
            .is_some_and(|b| b.rate_bytes_per_s() != rate.max(1))
        {
            *bucket = None; // the limit changed: start a bucket at the new rate
        }
        let current = bucket.get_or_insert_with(|| TokenBucket::new(rate, now));
        match current.take(bytes.len(), now) {
            Ok(n) => return n,
            // Pieces are 10 ms at the limit, so a changed limit is seen soon.
            Err(wait) => sleep(wait).await,
        }
    }
}

/// Resolves when the toxics (or anything in the control) change. Once the proxy
/// is gone it never resolves: the connection is being closed by then anyway.
async fn toxics_changed(ctl: &mut watch::Receiver<Control>) {
    if ctl.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}
