//! The chaos actor's bookkeeping against a probe consumer (no Redis): each
//! step's answer becomes the window's outcome, a fault that lasts until a
//! restart gets its end step on time, and a target that does not resolve
//! is an error, not a skipped fault.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use actix::prelude::*;

use super::{Chaos, Windows, ask};
use crate::actors::consumer::ConsumerFault;
use crate::actors::{FaultStep, Refused};
use crate::clock::RunClock;
use crate::plan::{FaultTarget, Plan};
use crate::scenario::FaultKind;

/// A consumer that is up or down, and counts the steps it was sent; with
/// `stops`, its run is over once it is down.
struct Probe {
    down: bool,
    steps: Arc<AtomicUsize>,
    stops: bool,
}

impl Actor for Probe {
    type Context = Context<Self>;
}

impl Handler<ConsumerFault> for Probe {
    type Result = Result<(), Refused>;

    fn handle(&mut self, fault: ConsumerFault, ctx: &mut Context<Self>) -> Self::Result {
        self.steps.fetch_add(1, Ordering::SeqCst);
        if self.stops {
            ctx.stop();
        }
        match (fault.step, self.down) {
            (FaultStep::Begin, true) => Err(Refused::AlreadyDown),
            (FaultStep::End, false) => Err(Refused::NotDown),
            (FaultStep::Begin, false) | (FaultStep::End, true) => {
                self.down = fault.step == FaultStep::Begin;
                Ok(())
            }
        }
    }
}

/// g/0 crashes at 10 ms and is restarted 40 ms later; a second crash at
/// 20 ms finds it down; g/1 does not exist (the scenario is not validated).
const TIMELINE: &str = r#"
name = "chaos"
duration = "1s"
[[producers]]
stream = "s"
rate = 10
[[groups]]
stream = "s"
name = "g"
[[faults]]
action = "crash_consumer"
at = "10ms"
consumer = "g/0"
restart_after = "40ms"
[[faults]]
action = "crash_consumer"
at = "20ms"
consumer = "g/0"
[[faults]]
action = "stall_consumer"
at = "20ms"
consumer = "g/1"
duration = "10ms"
"#;

#[test]
fn each_steps_answer_is_its_windows_outcome() {
    let plan = Plan::new(toml::from_str(TIMELINE).unwrap(), "run".into());
    assert!(
        matches!(&plan.faults[2].target, FaultTarget::Unresolved(why) if why.contains("0 to 0"))
    );
    actix::System::new().block_on(async {
        let steps = Arc::new(AtomicUsize::new(0));
        let probe = Probe {
            down: false,
            steps: steps.clone(),
            stops: false,
        }
        .start();
        let consumers = vec![vec![Some(probe.recipient())]];
        let chaos = Chaos::new(RunClock::start(), plan.faults.clone(), consumers, None).start();
        // Crash, the refused crash, the restart.
        let deadline = Instant::now() + Duration::from_secs(5);
        while steps.load(Ordering::SeqCst) < 3 {
            assert!(Instant::now() < deadline, "the probe saw {steps:?} steps");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let windows = chaos.send(Windows).await.unwrap();
        assert_eq!(windows.len(), 3, "{windows:?}");
        // Windows are in the order faults began; two began at 20 ms.
        let crashes: Vec<_> = (windows.iter())
            .filter(|w| w.kind == "crash_consumer")
            .collect();
        let [crash, again] = crashes[..] else {
            panic!("{windows:?}")
        };
        let stall = windows.iter().find(|w| w.kind == "stall_consumer").unwrap();
        assert!(crash.applied && crash.error.is_none(), "{crash:?}");
        assert_eq!(
            (crash.kind.as_str(), crash.target.as_deref()),
            ("crash_consumer", Some("g/0"))
        );
        assert!(
            crash.end_s - crash.start_s >= 0.04,
            "down until restarted: {crash:?}"
        );
        assert!(!again.applied);
        assert_eq!(again.error.as_deref(), Some("consumer g/0 is already down"));
        assert!(!stall.applied, "{stall:?}");
        let unresolved = stall.error.as_deref().unwrap_or_default();
        assert!(unresolved.contains("consumers 0 to 0"), "{stall:?}");
        assert_eq!(stall.target.as_deref(), Some("g/1"));
    });
}

/// A restart due after the run was over for its target (a producer stops
/// when its schedule ends) finds it stopped: the fault lasted as long as the
/// run, which is no failure. A start that finds it stopped was not applied.
#[test]
fn an_end_that_finds_its_target_stopped_is_no_failure() {
    actix::System::new().block_on(async {
        let steps = Arc::new(AtomicUsize::new(0));
        let probe = Probe {
            down: false,
            steps,
            stops: true,
        }
        .start();
        let crash = FaultKind::CrashConsumer {
            consumer: "g/0".into(),
            restart_after: None,
        };
        let step = |step| ConsumerFault {
            kind: crash.clone(),
            step,
        };
        let who = || "consumer g/0".to_string();
        let begun = ask(
            Some(probe.clone().recipient()),
            who(),
            step(FaultStep::Begin),
            false,
        );
        assert_eq!(begun.await.error, None);
        let deadline = Instant::now() + Duration::from_secs(5);
        while probe.connected() {
            assert!(Instant::now() < deadline, "the probe never stopped");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let target = || Some(probe.clone().recipient());
        let ended = ask(target(), who(), step(FaultStep::End), true).await;
        assert_eq!(ended.error, None);
        let begun = ask(target(), who(), step(FaultStep::Begin), false).await;
        assert_eq!(begun.error.as_deref(), Some("consumer g/0 has stopped"));
    });
}
