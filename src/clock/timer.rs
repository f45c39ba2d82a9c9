//! A precise sleep for open-loop schedules. tokio's timer wheel has 1 ms
//! granularity, which put ~0.7 ms of harness-made schedule lag into every
//! produce latency at 2000 events/s. A Linux timerfd, registered with the
//! runtime's own epoll, wakes the same thread at the deadline (within the
//! kernel's ~50 µs timer slack) with no thread hand-off; a background timer
//! thread cost 4x the CPU in context switches.
//!
//! Each actor keeps one `Timer` and re-arms it for every sleep: a fresh
//! timerfd per sleep cost six system calls (create, register, arm, read,
//! deregister, close) and a fifth of the harness's CPU at 50,000 events/s;
//! re-arming costs two (arm, read).

use std::cell::RefCell;
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::Instant;

use timerfd::{ClockId, SetTimeFlags, TimerFd, TimerState};
use tokio::io::unix::AsyncFd;

/// One actor's timer. Cheap to clone (the clones share the timerfd), so a
/// sleep can own a handle while the actor keeps its own; starting a new sleep
/// re-arms the timer, which supersedes (and should replace) an older one.
#[derive(Clone, Default)]
pub struct Timer {
    inner: Rc<RefCell<Option<Rc<Armed>>>>,
}

/// The timerfd, and its registration with the runtime that polls it (first,
/// so it is dropped, and deregistered, before the descriptor closes).
struct Armed {
    ready: AsyncFd<Raw>,
    fd: RefCell<TimerFd>,
}

/// The timerfd's descriptor as the reactor sees it; `Armed` keeps the owner.
struct Raw(RawFd);

impl AsRawFd for Raw {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl Timer {
    pub fn new() -> Timer {
        Timer::default()
    }

    /// Completes at `at`, not at the next millisecond tick. Falls back to
    /// tokio's timer if no timerfd can be made (e.g. out of descriptors).
    pub fn sleep_until(&self, at: Instant) -> impl Future<Output = ()> + 'static {
        let armed = self.armed();
        async move {
            let now = Instant::now();
            if at <= now {
                return;
            }
            let Some(armed) = armed else {
                return tokio::time::sleep_until(at.into()).await;
            };
            armed
                .fd
                .borrow_mut()
                .set_state(TimerState::Oneshot(at - now), SetTimeFlags::Default);
            loop {
                let Ok(mut ready) = armed.ready.readable().await else {
                    return tokio::time::sleep_until(at.into()).await;
                };
                // Readiness can be left over from an earlier sleep that was
                // superseded before it read its expiry: only the deadline counts.
                // Re-arming resets the expiry count, so the descriptor need
                // not be read (a system call saved): only the readiness the
                // runtime cached is cleared, and the next expiry wakes it again.
                ready.clear_ready();
                if Instant::now() >= at {
                    return;
                }
            }
        }
    }

    /// The timerfd, made on first use (it must be registered from inside
    /// the runtime that will poll it); None if the system refused one.
    fn armed(&self) -> Option<Rc<Armed>> {
        let mut slot = self.inner.borrow_mut();
        if slot.is_none() {
            *slot = make().ok().map(Rc::new);
        }
        slot.clone()
    }
}

#[allow(unsafe_code)] // the crate's one audited `unsafe`: see SAFETY below
fn make() -> std::io::Result<Armed> {
    let fd = TimerFd::new_custom(ClockId::Monotonic, true, true)?;
    // SAFETY: `Armed` owns the `TimerFd` beside this registration and drops
    // the registration first, so the descriptor outlives it and is never
    // closed or replaced while registered.
    let ready = unsafe { AsyncFd::register(Raw(fd.as_raw_fd())) }.map_err(std::io::Error::from)?;
    Ok(Armed {
        ready,
        fd: RefCell::new(fd),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn wakes_in_deadline_order_and_not_early() {
        runtime().block_on(async {
            let start = Instant::now();
            let (a, b) = (Timer::new(), Timer::new());
            let late = a.sleep_until(start + Duration::from_millis(20));
            let early = b.sleep_until(start + Duration::from_millis(5));
            tokio::pin!(late);
            tokio::select! {
                _ = &mut late => panic!("the later deadline fired first"),
                _ = early => {}
            }
            assert!(start.elapsed() >= Duration::from_millis(5));
            late.await;
            assert!(start.elapsed() >= Duration::from_millis(20));
        });
    }

    #[test]
    fn one_timer_rearmed_many_times_never_wakes_early() {
        runtime().block_on(async {
            let timer = Timer::new();
            let start = Instant::now();
            for i in 1..=50u64 {
                let at = start + Duration::from_micros(200 * i);
                timer.sleep_until(at).await;
                assert!(Instant::now() >= at, "sleep {i} woke early");
            }
        });
    }

    #[test]
    fn a_superseded_sleep_does_not_wake_the_next_one_early() {
        runtime().block_on(async {
            let timer = Timer::new();
            let start = Instant::now();
            // Arm for 1 ms, let it expire unread, then sleep for 30 ms.
            let first = timer.sleep_until(start + Duration::from_millis(1));
            tokio::pin!(first);
            let _ = tokio::time::timeout(Duration::from_micros(1), &mut first).await;
            std::thread::sleep(Duration::from_millis(3));
            let at = start + Duration::from_millis(30);
            timer.sleep_until(at).await;
            assert!(Instant::now() >= at);
        });
    }
}
