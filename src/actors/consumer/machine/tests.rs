//! The transition function on its own: the paths the project's fixes were
//! about, every fault step's refusal, and a random walk that checks no
//! sequence of events reaches a combination the old flags allowed.

use rand::rngs::SmallRng;
use rand::{RngExt, SeedableRng};

use super::super::cursors::Cursors;
use super::{Action, Event, State, Task};
use crate::actors::Refused;
use crate::actors::reads::{Batch, Read};
use crate::wire::entries::Entry;

use Event::{Crash, Delivered, Hinder, ReadFailed, Restart, Stop, WindowEnds};
use State::{Down, Idle, Running, Stalled, Starting, Stopping};

const READY: Event = Event::Ready {
    ack: false,
    stalled: false,
};
const PROCESSED: Event = Event::Ready {
    ack: true,
    stalled: false,
};

/// Runs `events` from `state`, checking each transition against `expected`.
fn walk(mut state: State, steps: &[(Event, State, Action)]) {
    for &(event, to, action) in steps {
        let got = state.on(event);
        assert_eq!(got, (to, action), "{state:?} on {event:?}");
        state = to;
    }
}

#[test]
fn it_reads_works_and_reads_again_with_the_xack_in_front() {
    walk(
        Starting,
        &[
            (READY, Running(Task::Read), Action::Read),
            (READY, Running(Task::Read), Action::Read), // nothing new
            (Delivered, Running(Task::Work), Action::Work),
            (PROCESSED, Running(Task::Read), Action::Read),
            (ReadFailed, Running(Task::Backoff), Action::Backoff),
            (READY, Running(Task::Read), Action::Read),
        ],
    );
}

#[test]
fn during_a_stall_the_xack_due_goes_alone_then_it_waits_without_reading() {
    let stalled = |ack| Event::Ready { ack, stalled: true };
    walk(
        Running(Task::Work),
        &[
            (Hinder, Running(Task::Work), Action::Wait),
            (stalled(true), Running(Task::Ack), Action::Ack),
            (stalled(false), Stalled, Action::Stall),
            (Hinder, Stalled, Action::Wait), // a longer stall: the timer looks again
            (stalled(false), Stalled, Action::Stall),
            (READY, Running(Task::Read), Action::Read),
        ],
    );
    assert_eq!(Starting.on(stalled(false)), (Stalled, Action::Stall));
}

/// d1efcfc: the read is in Redis; it delivers into the dead consumer's PEL
/// and the ledger sees it, but nobody holds the entries.
#[test]
fn a_crash_leaves_the_read_in_flight_to_deliver_to_nobody() {
    walk(
        Running(Task::Read),
        &[
            (Crash, Down { read_out: true }, Action::Wait),
            (Delivered, Down { read_out: false }, Action::Abandon),
        ],
    );
    let down = Down { read_out: true };
    assert_eq!(down.on(READY), (Down { read_out: false }, Action::Wait));
}

#[test]
fn a_crash_cancels_everything_else_in_hand() {
    for state in [
        Starting,
        Stalled,
        Running(Task::Work),
        Running(Task::Ack),
        Running(Task::Backoff),
    ] {
        let to = Down { read_out: false };
        assert_eq!(state.on(Crash), (to, Action::Cancel), "{state:?}");
    }
}

/// A restart while the pre-crash read is out waits for it: sending
/// another would run two read loops. The restarted consumer works on what
/// that read brings.
#[test]
fn a_restart_while_the_pre_crash_read_is_out_sends_no_second_read() {
    walk(
        Running(Task::Read),
        &[
            (Crash, Down { read_out: true }, Action::Wait),
            (
                Restart { stalled: false },
                Running(Task::Read),
                Action::Wait,
            ),
            (Delivered, Running(Task::Work), Action::Work),
        ],
    );
}

/// 58a4e65: a pre-crash read that failed used to leave a retry behind that
/// a restart then doubled; a down consumer schedules nothing.
#[test]
fn a_pre_crash_read_that_fails_leaves_nothing_to_retry() {
    let down = Down { read_out: true };
    assert_eq!(
        down.on(ReadFailed),
        (Down { read_out: false }, Action::Wait)
    );
    let down = Down { read_out: false };
    let restart = |stalled| Restart { stalled };
    assert_eq!(down.on(restart(false)), (Running(Task::Read), Action::Read));
    assert_eq!(down.on(restart(true)), (Stalled, Action::Stall));
}

#[test]
fn fault_steps_that_do_not_apply_say_why() {
    let refused = Action::Refuse;
    for down in [Down { read_out: false }, Down { read_out: true }] {
        assert_eq!(down.on(Crash), (down, refused(Refused::AlreadyDown)));
        assert_eq!(down.on(Hinder), (down, refused(Refused::Down)));
        assert_eq!(down.on(WindowEnds), (down, Action::Wait));
    }
    for live in [Starting, Stalled, Running(Task::Read), Running(Task::Work)] {
        let restart = Restart { stalled: false };
        assert_eq!(live.on(restart), (live, refused(Refused::NotDown)));
        assert_eq!(live.on(Hinder), (live, Action::Wait));
    }
    for stopping in [Stopping(Task::Read), Stopping(Task::Ack), Idle] {
        for fault in [Crash, Restart { stalled: false }, Hinder, WindowEnds] {
            let answer = stopping.on(fault);
            assert_eq!(answer, (stopping, refused(Refused::Stopped)), "{fault:?}");
        }
    }
}

/// Nothing in flight: a stalled, unstarted or dead consumer stops at once
/// (a dead one's pre-crash read delivers to nobody).
#[test]
fn a_consumer_with_nothing_in_hand_stops_at_once() {
    for state in [
        Starting,
        Stalled,
        Down { read_out: false },
        Down { read_out: true },
    ] {
        assert_eq!(state.on(Stop), (Idle, Action::Idle), "{state:?}");
    }
    assert_eq!(Idle.on(Delivered), (Idle, Action::Abandon));
}

#[test]
fn a_stopping_consumer_finishes_its_batch_sends_its_xack_alone_and_goes_idle() {
    walk(
        Running(Task::Read),
        &[
            (Stop, Stopping(Task::Read), Action::Wait),
            (Delivered, Stopping(Task::Work), Action::Work),
            (PROCESSED, Stopping(Task::Ack), Action::Ack),
            (READY, Idle, Action::Idle),
        ],
    );
    walk(
        Stopping(Task::Read),
        &[
            (ReadFailed, Stopping(Task::Backoff), Action::Backoff),
            (READY, Idle, Action::Idle),
        ],
    );
    assert_eq!(Stopping(Task::Read).on(READY), (Idle, Action::Idle));
}

/// 088241b: a stall stops the next read, not the batch in hand; a stop
/// during the stall's window lets that batch finish.
#[test]
fn a_stop_during_a_stall_lets_the_batch_begun_before_it_finish() {
    walk(
        Running(Task::Work),
        &[
            (Hinder, Running(Task::Work), Action::Wait),
            (Stop, Stopping(Task::Work), Action::Wait),
            (
                Event::Ready {
                    ack: true,
                    stalled: true,
                },
                Stopping(Task::Ack),
                Action::Ack,
            ),
            (READY, Idle, Action::Idle),
        ],
    );
}

/// 4b58751, with the cursors: the XACK in front of a read of new entries
/// fails, the read brings entries. They are worked on, and the next read
/// (carrying their XACK) goes back to the own PEL from its start.
#[test]
fn an_xack_failure_then_new_entries_sends_the_next_read_to_the_own_pel() {
    let mut cursors = Cursors::new(None, 1);
    let (state, action) = Starting.on(READY);
    assert_eq!(action, Action::Read);
    let read = cursors.next(0);
    assert_eq!(read, Read::New);
    // The reply: the XACK's error, then the entries.
    cursors.start_over();
    let batch = Batch {
        entries: vec![Entry {
            key: 0,
            id: b"9-0".to_vec(),
            header: None,
            aggregate: None,
            kind: None,
        }],
        cursor: None,
        fields: Vec::new(),
    };
    cursors.advance(&read, &batch, 1);
    let (state, action) = state.on(Delivered);
    assert_eq!((state, action), (Running(Task::Work), Action::Work));
    let (_, action) = state.on(PROCESSED);
    assert_eq!(action, Action::Read);
    let own = Read::OwnPending {
        after: vec!["0".into()],
    };
    assert_eq!(cursors.next(2), own);
}

/// What the actor has in hand that it may cancel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Hand {
    /// The start or stall timer.
    Timer,
    Backoff,
    Work,
    Ack,
}

/// The world around the machine as the actor and Redis see it: what is
/// out, and what the faults and the stop did, judged independently of the
/// machine's state.
#[derive(Debug, Default)]
struct World {
    /// A read sent and not yet returned.
    read_out: bool,
    hand: Option<Hand>,
    /// Crashed and not restarted, by the fault steps the machine accepted.
    down: bool,
    stop_sent: bool,
    idle_said: bool,
}

impl World {
    /// An event that can happen now.
    fn event(&mut self, rng: &mut SmallRng) -> Event {
        let stalled = rng.random_bool(0.3);
        loop {
            match rng.random_range(0..9) {
                0 | 1 if self.read_out => return self.reply(rng),
                2 | 3 if self.hand.is_some() => return self.done(stalled, rng),
                4 => return Crash,
                5 => return Restart { stalled },
                6 => return [Hinder, WindowEnds][rng.random_range(0..2)],
                7 if !self.stop_sent && rng.random_bool(0.1) => {
                    self.stop_sent = true;
                    return Stop;
                }
                _ => {}
            }
        }
    }

    /// The read returns: entries, nothing new, or a failure.
    fn reply(&mut self, rng: &mut SmallRng) -> Event {
        self.read_out = false;
        [Delivered, READY, ReadFailed][rng.random_range(0..3)]
    }

    /// What is in hand ends; a processed batch (usually) has an XACK due.
    fn done(&mut self, stalled: bool, rng: &mut SmallRng) -> Event {
        let ack = self.hand.take() == Some(Hand::Work) && rng.random_bool(0.8);
        Event::Ready { ack, stalled }
    }

    /// Runs the action as the actor does; panics where the actor could not.
    fn apply(&mut self, action: Action, from: State, event: Event) {
        let at = format!("{action:?} from {from:?} on {event:?} in {self:?}");
        let refused = matches!(action, Action::Refuse(_));
        let refuse = match event {
            Crash | Hinder => Some(self.down || self.stop_sent),
            Restart { .. } => Some(!self.down || self.stop_sent),
            WindowEnds => Some(self.stop_sent),
            _ => None,
        };
        assert_eq!(refuse.unwrap_or(false), refused, "{at}");
        if let Event::Ready { ack: true, .. } = event {
            let sent = matches!(action, Action::Read | Action::Ack);
            assert!(sent, "the XACK due was dropped: {at}");
        }
        match (event, refused) {
            (Crash, false) => self.down = true,
            (Restart { .. }, false) => self.down = false,
            _ => {}
        }
        let mut start = |hand| {
            assert!(self.hand.is_none(), "two things in hand: {at}");
            assert!(!self.idle_said && !self.down, "{at}");
            self.hand = Some(hand);
        };
        match action {
            Action::Wait | Action::Refuse(_) => {}
            Action::Ack => start(Hand::Ack),
            Action::Stall => start(Hand::Timer),
            Action::Backoff => start(Hand::Backoff),
            Action::Work => start(Hand::Work),
            Action::Read => {
                assert!(!self.read_out, "a second read loop: {at}");
                assert!(!self.idle_said && !self.down, "{at}");
                self.read_out = true;
            }
            Action::Abandon => assert!(event == Delivered && self.down, "{at}"),
            Action::Cancel => {
                assert!(event == Crash && self.hand.is_some(), "{at}");
                self.hand = None;
            }
            Action::Idle => {
                assert!(self.stop_sent, "idle before a stop: {at}");
                assert!(self.down || !self.read_out, "a read left behind: {at}");
                let timer = matches!(self.hand, None | Some(Hand::Timer));
                assert!(timer, "work cut short: {at}");
                (self.hand, self.idle_said) = (None, true);
            }
        }
    }

    fn check(&self, state: State) {
        let reading = matches!(
            state,
            Running(Task::Read) | Stopping(Task::Read) | Down { read_out: true }
        );
        assert!(!reading || self.read_out, "{state:?} with no read out");
        assert!(
            !self.read_out || reading || state == Idle,
            "{state:?} forgot the read out"
        );
        let down = matches!(state, Down { .. });
        assert!(down == self.down || state == Idle, "{state:?} {self:?}");
        assert_eq!(
            state.cancellable(),
            self.hand.is_some(),
            "{state:?} {self:?}"
        );
        assert_eq!(state.stopping(), self.stop_sent, "{state:?} {self:?}");
        assert_eq!(state == Idle, self.idle_said, "{state:?} {self:?}");
    }

    fn step(&mut self, state: State, event: Event) -> State {
        let (to, action) = state.on(event);
        self.apply(action, state, event);
        self.check(to);
        to
    }
}

/// Any order of replies, timers, faults and a stop, checked against a model
/// of what is out: never two reads out, never a read cancelled or
/// forgotten, nothing started while down or after idle, the actor's handle
/// exactly when something cancellable is in hand, every XACK due sent, each
/// fault step refused exactly when the old rules said; and once stopped and
/// left to finish, the consumer ends idle.
#[test]
fn no_sequence_of_events_reaches_an_impossible_combination() {
    let mut rng = SmallRng::seed_from_u64(11);
    for _ in 0..5000 {
        let mut world = World {
            hand: Some(Hand::Timer),
            ..World::default()
        };
        let mut state = Starting;
        for _ in 0..rng.random_range(1..60) {
            let event = world.event(&mut rng);
            state = world.step(state, event);
        }
        if !world.stop_sent {
            world.stop_sent = true;
            state = world.step(state, Stop);
        }
        // Left alone, whatever is out comes back.
        for _ in 0..10 {
            let event = match (world.read_out, world.hand) {
                (true, _) => world.reply(&mut rng),
                (false, Some(_)) => world.done(false, &mut rng),
                (false, None) => break,
            };
            state = world.step(state, event);
        }
        assert_eq!(state, Idle, "{world:?}");
    }
}
