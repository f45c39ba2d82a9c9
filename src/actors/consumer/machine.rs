//! The consumer's life as one state machine: what it is doing (`State`),
//! what can happen to it (`Event`), and one transition function, `State::on`,
//! that says what it does next (`Action`). Pure: no actix, no Redis, no
//! clock; the actor (`mod.rs`) turns what happens into events and runs the
//! actions, and these tests drive the machine alone.
//!
//! Crash, restart, stall, stop and a read in flight are one value, so none
//! of the combinations that no consumer can be in can be written down: a
//! stopping consumer is not down, a stalled one has nothing in flight, a
//! down one has at most the read it sent before the crash. The rules the
//! project learnt, each a transition below:
//! - a read is never cancelled: once sent, Redis delivers its entries to
//!   this consumer's PEL whatever happens to the consumer, and the ledger
//!   must see that delivery (docs/measurement.md, "Accounting");
//! - a crash abandons everything else in hand (a batch, an XACK, a timer);
//! - a restart while the pre-crash read is out waits for that read instead
//!   of sending a second one: one read loop, never two;
//! - a stop lets the read, batch or XACK in hand finish, sends the last
//!   batch's XACK alone, and goes idle; a consumer with nothing out (not
//!   started, waiting out a stall, down) goes idle at once.

use crate::actors::Refused;

/// What the consumer is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    /// Waiting for the group's `start_after`; nothing sent yet.
    Starting,
    /// Reading and working through batches.
    Running(Task),
    /// Waiting out a stall: nothing in flight, only the stall's timer.
    Stalled,
    /// Crashed. `read_out`: a read sent before the crash has not returned;
    /// its entries go to the ledger and the PEL, not to work.
    Down { read_out: bool },
    /// Asked to stop while doing `Task`: it finishes it, sends the last
    /// XACK alone, then goes idle. It takes no fault any more.
    Stopping(Task),
    /// Stopped: nothing more is sent. A read from before a crash may still
    /// return; its entries go to the ledger only.
    Idle,
}

/// What a running (or stopping) consumer has in hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Task {
    /// A read is out (with the last batch's XACK in front of it, if any).
    Read,
    /// A batch read is being worked on: its delivery counts asked,
    /// dead-lettered, processed.
    Work,
    /// An XACK sent alone: no read followed to carry it.
    Ack,
    /// The pause after a failed read.
    Backoff,
}

/// What happened to the consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Event {
    /// What it had in hand is over: the start or stall timer fired, a read
    /// returned nothing new, a batch was processed (`ack`: its XACK is due),
    /// an XACK sent alone was answered, the backoff ended. `stalled`: a
    /// stall's window is open now.
    Ready { ack: bool, stalled: bool },
    /// The read returned entries.
    Delivered,
    /// The read failed (an error reply, a lost connection, a reply not
    /// understood).
    ReadFailed,
    /// crash_consumer begins.
    Crash,
    /// crash_consumer's restart. `stalled` as in `Ready`.
    Restart { stalled: bool },
    /// A fault that changes how a live consumer works begins
    /// (stall_consumer, slow_consumer); the actor keeps its window.
    Hinder,
    /// Such a fault's window ends: the consumer timed it itself.
    WindowEnds,
    /// The run is over: finish what is in hand and go idle.
    Stop,
}

/// What the actor does on a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Action {
    /// Nothing new: what is in flight goes on.
    Wait,
    /// Send the next read, the XACK due (if any) in front of it.
    Read,
    /// Send the XACK due alone.
    Ack,
    /// Wait until the stall's window closes.
    Stall,
    /// Wait before reading again.
    Backoff,
    /// Take the entries read in hand and work on them.
    Work,
    /// Tell the ledger of the entries read, which nobody holds: they stay
    /// pending (or, read with NOACK, are gone with the consumer).
    Abandon,
    /// Cancel what is in hand (a batch, an XACK, a timer; never a read).
    Cancel,
    /// Cancel the timer in hand, if any, and say it is idle.
    Idle,
    /// The fault step does not apply: answer with why.
    Refuse(Refused),
}

impl State {
    /// The one transition function.
    pub(super) fn on(self, event: Event) -> (State, Action) {
        use Event as E;
        use State::{Down, Idle, Running, Stalled, Starting, Stopping};
        match (self, event) {
            // Fault steps. A stopping consumer takes none, whatever the step.
            (Stopping(_) | Idle, E::Crash | E::Restart { .. } | E::Hinder | E::WindowEnds) => {
                (self, Action::Refuse(Refused::Stopped))
            }
            (Down { .. }, E::Crash) => (self, Action::Refuse(Refused::AlreadyDown)),
            // The read is already in Redis: it delivers into the PEL anyway.
            (Running(Task::Read), E::Crash) => (Down { read_out: true }, Action::Wait),
            (Starting | Stalled | Running(_), E::Crash) => {
                (Down { read_out: false }, Action::Cancel)
            }
            // The pre-crash read resumes the loop when it returns.
            (Down { read_out: true }, E::Restart { .. }) => (Running(Task::Read), Action::Wait),
            (Down { read_out: false }, E::Restart { stalled }) => next(false, stalled),
            (_, E::Restart { .. }) => (self, Action::Refuse(Refused::NotDown)),
            (Down { .. }, E::Hinder) => (self, Action::Refuse(Refused::Down)),
            (_, E::Hinder | E::WindowEnds) => (self, Action::Wait),

            // Stop: at once with nothing out, else once what is in hand is done.
            (Starting | Stalled | Down { .. }, E::Stop) => (Idle, Action::Idle),
            (Running(task), E::Stop) => (Stopping(task), Action::Wait),
            (Stopping(_) | Idle, E::Stop) => (self, Action::Wait),

            // What was in hand is over.
            (Starting | Stalled | Running(_), E::Ready { ack, stalled }) => next(ack, stalled),
            (Stopping(_), E::Ready { ack: true, .. }) => (Stopping(Task::Ack), Action::Ack),
            (Stopping(_), E::Ready { ack: false, .. }) => (Idle, Action::Idle),
            (Down { .. }, E::Ready { .. }) => (Down { read_out: false }, Action::Wait),
            (Idle, E::Ready { .. }) => (Idle, Action::Wait),

            // The read's outcome.
            (Running(Task::Read), E::Delivered) => (Running(Task::Work), Action::Work),
            (Stopping(Task::Read), E::Delivered) => (Stopping(Task::Work), Action::Work),
            (Down { .. }, E::Delivered) => (Down { read_out: false }, Action::Abandon),
            // Stopped since its crash: nobody holds what the pre-crash read brings.
            (_, E::Delivered) => (self, Action::Abandon),
            (Running(Task::Read), E::ReadFailed) => (Running(Task::Backoff), Action::Backoff),
            (Stopping(Task::Read), E::ReadFailed) => (Stopping(Task::Backoff), Action::Backoff),
            (Down { .. }, E::ReadFailed) => (Down { read_out: false }, Action::Wait),
            (_, E::ReadFailed) => (self, Action::Wait),
        }
    }

    /// Whether what it has in hand is something the actor may cancel (a
    /// timer, a batch, an XACK alone): the actor keeps its handle exactly then.
    pub(super) fn cancellable(self) -> bool {
        match self {
            State::Starting | State::Stalled => true,
            State::Running(task) | State::Stopping(task) => task != Task::Read,
            State::Down { .. } | State::Idle => false,
        }
    }

    /// Asked to stop (it may still be finishing what it had in hand).
    pub(super) fn stopping(self) -> bool {
        matches!(self, State::Stopping(_) | State::Idle)
    }
}

/// A live consumer free for its next step: during a stall the XACK due goes
/// out alone (no read follows to carry it), then it waits; otherwise it
/// reads, the XACK riding in front.
fn next(ack: bool, stalled: bool) -> (State, Action) {
    match (stalled, ack) {
        (true, true) => (State::Running(Task::Ack), Action::Ack),
        (true, false) => (State::Stalled, Action::Stall),
        (false, _) => (State::Running(Task::Read), Action::Read),
    }
}

#[cfg(test)]
mod tests;
