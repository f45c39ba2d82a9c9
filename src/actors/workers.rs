//! The threads producers and consumers run on. With one worker they share
//! the coordinator's thread; with more, each worker is an actix arbiter (a
//! thread with its own event loop) and actors are dealt out round-robin, so
//! a thousand of them are not queued behind one another on one thread. The
//! collector, sampler and chaos actor stay on the coordinator's thread: they
//! are not on the per-event path.
//!
//! An actor's connection must be opened on the thread the actor runs on:
//! redis-rs spawns each connection's driver task on the runtime it is
//! created in, and a driver on another thread costs a hand-off per command.

use std::future::Future;

use actix::{Arbiter, ArbiterHandle};
use tokio::sync::oneshot;

use crate::error::{Error, Result};

pub struct Workers {
    /// Empty with one worker: the coordinator's own thread is it.
    arbiters: Vec<Arbiter>,
    home: ArbiterHandle,
}

impl Workers {
    /// `n` workers; must be called inside an actix System.
    pub fn start(n: usize) -> Workers {
        let arbiters = match n {
            0 | 1 => Vec::new(),
            n => (0..n).map(|_| Arbiter::new()).collect(),
        };
        Workers {
            arbiters,
            home: Arbiter::current(),
        }
    }

    /// Actors beyond which one event loop falls behind its schedules.
    pub const ONE_THREAD_ACTORS: usize = 64;

    /// How many workers for a run of `actors` producers and consumers: one
    /// (least CPU per event, no cross-thread hand-offs) unless there are
    /// many, then one per core. Measured with 1000 producers + 1000
    /// consumers: produce p99 62 ms on one thread, 5.7 ms on two.
    pub fn auto(actors: usize) -> usize {
        match actors > Self::ONE_THREAD_ACTORS {
            true => std::thread::available_parallelism().map_or(1, |n| n.get()),
            false => 1,
        }
    }

    /// The worker that runs actor number `i` of a kind.
    pub fn of(&self, i: usize) -> ArbiterHandle {
        match self.arbiters.len() {
            0 => self.home.clone(),
            n => self.arbiters[i % n].handle(),
        }
    }

    /// How many threads actors are dealt out to.
    pub fn threads(&self) -> usize {
        self.arbiters.len().max(1)
    }

    /// Starts `make()` on worker `w` now; the returned future yields its result.
    pub fn run_on<F, Fut, T>(
        &self,
        w: usize,
        make: F,
    ) -> impl Future<Output = Result<T>> + use<F, Fut, T>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = T> + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let spawned = self.of(w).spawn_fn(move || {
            actix::spawn(async move {
                let _ = tx.send(make().await);
            });
        });
        async move {
            if !spawned {
                return Err(Error::Internal("a worker thread has stopped".into()));
            }
            rx.await
                .map_err(|_| Error::Internal("a worker thread dropped its task".into()))
        }
    }
}

/// How many connections a worker opens at once: one by one, a thousand
/// actors took longer to connect than a short run lasts.
const OPEN_CONCURRENCY: usize = 64;

impl Workers {
    /// `n` things (connections) for actors `first..first + n` (actors are
    /// numbered across the whole run, so every worker gets its share), the
    /// i-th made by `open(i)` on the worker that will run its actor
    /// (`of(first + i)`), all workers at once.
    pub async fn open_each<F, Fut, T>(&self, first: usize, n: usize, open: F) -> Result<Vec<T>>
    where
        F: Fn(usize) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = Result<T>> + 'static,
        T: Send + 'static,
    {
        let threads = self.threads();
        let worker = |i: usize| (first + i) % threads;
        let pending: Vec<_> = (0..threads)
            .map(|w| {
                let share: Vec<usize> = (0..n).filter(|&i| worker(i) == w).collect();
                let open = open.clone();
                self.run_on(w, move || open_many(share, open))
            })
            .collect();
        let mut shares = Vec::with_capacity(threads);
        for share in pending {
            shares.push(share.await??.into_iter());
        }
        Ok((0..n).filter_map(|i| shares[worker(i)].next()).collect())
    }
}

/// `open(i)` for each of `indices`, `OPEN_CONCURRENCY` at a time, on this thread.
async fn open_many<F, Fut, T>(indices: Vec<usize>, open: F) -> Result<Vec<T>>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<T>> + 'static,
    T: 'static,
{
    let mut all = Vec::with_capacity(indices.len());
    for chunk in indices.chunks(OPEN_CONCURRENCY) {
        let tasks: Vec<_> = (chunk.iter())
            .map(|&i| tokio::task::spawn_local(open(i)))
            .collect();
        for task in tasks {
            let opened = task
                .await
                .map_err(|e| Error::Internal(format!("connecting: {e}")))?;
            all.push(opened?);
        }
    }
    Ok(all)
}

impl Drop for Workers {
    /// Stops the threads' event loops; actors still on them stop with them.
    fn drop(&mut self) {
        for a in &self.arbiters {
            a.stop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_on_the_chosen_threads() {
        let system = actix::System::new();
        system.block_on(async {
            let workers = Workers::start(2);
            let main = std::thread::current().id();
            let a = workers.run_on(0, || async { std::thread::current().id() });
            let b = workers.run_on(1, || async { std::thread::current().id() });
            let (a, b) = (a.await.unwrap(), b.await.unwrap());
            assert_ne!(a, main);
            assert_ne!(b, main);
            assert_ne!(a, b);
            let c = workers.run_on(2, || async { std::thread::current().id() });
            assert_eq!(c.await.unwrap(), a);
            // Actors 1, 2, 3 on workers 1, 0, 1.
            let ids = workers.open_each(1, 3, |_| async { Ok(std::thread::current().id()) });
            assert_eq!(ids.await.unwrap(), vec![b, a, b]);
            let one = Workers::start(1);
            let home = one.run_on(5, || async { std::thread::current().id() });
            assert_eq!(home.await.unwrap(), main);
        });
    }
}
