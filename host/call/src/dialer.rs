//! The dialer: how one outbound leg tries its SIP targets, as a sans-IO state machine.
//!
//! A leg dials a list of stages (a plain `dial` is one stage of one member). A ring-all stage
//! starts every member at once; a linear stage starts them one after another, each for the
//! stage's timeout. A member is one endpoint expanded into SIP targets: every registered
//! contact of a user at once (`Parallel`), or a phone number's trunks one after another
//! (`Failover`, which moves on only when a trunk *failed*, never on busy, noanswer or cancel).
//!
//! Invariants: the first answer wins and every other live attempt is cancelled; the dialer
//! ends exactly once, with `Answered` or `Failed`; time is an argument, so group timeouts are
//! tested in virtual time in `tests/calls/group.rs`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use pbx_app::HangupReason;

/// One SIP destination an attempt is sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The Request-URI.
    pub request_uri: String,
    /// A label for logs and history: the endpoint as the app named it.
    pub label: String,
    /// The trunk this goes through, for credentials and caller-id rules.
    pub trunk: Option<String>,
}

/// One endpoint of a stage, expanded into targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Member {
    /// Ring every target at once (the contacts of a user, or one SIP URI).
    Parallel(Vec<Target>),
    /// Try targets in order, moving on only when one failed (a phone number's trunks).
    Failover(Vec<Target>),
    /// The endpoint cannot be reached at all (unknown user, no trunk): fails at once.
    Unreachable(HangupReason),
}

/// How a stage rings its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// All members at once.
    RingAll,
    /// One member after another.
    Linear,
}

/// One stage of a dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stage {
    pub members: Vec<Member>,
    pub strategy: Strategy,
    /// The whole stage's ring time for ring-all, each member's for linear.
    pub timeout: Duration,
}

/// Identifies one SIP attempt of a dialer.
pub type AttemptId = u32;

/// What the dialer asks its owner to do, or reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialerOutput {
    /// Send an INVITE to `target`; report its outcome with `attempt`.
    Start { attempt: AttemptId, target: Target },
    /// Cancel an attempt that is still ringing (it lost, or its time ran out).
    Cancel { attempt: AttemptId },
    /// `attempt` answered: the leg is established through it. Terminal.
    Answered { attempt: AttemptId },
    /// Every stage is exhausted. Terminal.
    Failed {
        reason: HangupReason,
        status: Option<u16>,
    },
}

/// How one member's targets are being tried.
#[derive(Debug)]
struct MemberRun {
    targets: VecDeque<Target>,
    failover: bool,
    live: Vec<AttemptId>,
    done: bool,
}

/// How a SIP final status classifies, for failover and the leg's hangup reason.
pub fn reason_for_status(status: u16) -> HangupReason {
    match status {
        486 | 600 => HangupReason::Busy,
        408 | 480 => HangupReason::Noanswer,
        487 => HangupReason::Cancel,
        403 | 404 | 410 | 484 | 603 | 604 => HangupReason::Rejected,
        _ => HangupReason::Failed,
    }
}

/// The dial state machine of one outbound leg.
#[derive(Debug)]
pub struct Dialer {
    stages: VecDeque<Stage>,
    /// Members of the current stage not started yet (linear) or running.
    pending: VecDeque<Member>,
    running: Vec<MemberRun>,
    strategy: Strategy,
    stage_timeout: Duration,
    deadline: Option<Instant>,
    next_attempt: AttemptId,
    /// Attempt → index in `running`.
    owners: Vec<(AttemptId, usize)>,
    outputs: VecDeque<DialerOutput>,
    worst: Option<HangupReason>,
    last_status: Option<u16>,
    finished: bool,
}

impl Dialer {
    /// A dialer over `stages`; nothing happens until [`Dialer::start`].
    pub fn new(stages: Vec<Stage>) -> Self {
        Dialer {
            stages: stages.into(),
            pending: VecDeque::new(),
            running: Vec::new(),
            strategy: Strategy::RingAll,
            stage_timeout: Duration::ZERO,
            deadline: None,
            next_attempt: 1,
            owners: Vec::new(),
            outputs: VecDeque::new(),
            worst: None,
            last_status: None,
            finished: false,
        }
    }

    /// Starts the first stage.
    pub fn start(&mut self, now: Instant) {
        self.next_stage(now);
    }

    /// True once `Answered` or `Failed` was produced.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The next thing to do.
    pub fn poll_output(&mut self) -> Option<DialerOutput> {
        self.outputs.pop_front()
    }

    /// When [`Dialer::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.finished { None } else { self.deadline }
    }

    /// The current ring time ran out: cancel what rings and move on.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.finished || self.deadline.is_none_or(|d| now < d) {
            return;
        }
        self.deadline = None;
        self.note(HangupReason::Noanswer, Some(408));
        let attempts: Vec<AttemptId> = self.owners.iter().map(|(a, _)| *a).collect();
        for attempt in attempts {
            self.outputs.push_back(DialerOutput::Cancel { attempt });
        }
        self.owners.clear();
        self.running.clear();
        match self.strategy {
            Strategy::Linear => self.start_next_linear(now),
            Strategy::RingAll => self.next_stage(now),
        }
    }

    /// An attempt answered: it wins, the rest are cancelled.
    pub fn on_answered(&mut self, attempt: AttemptId) {
        if self.finished || !self.owners.iter().any(|(a, _)| *a == attempt) {
            return;
        }
        for (other, _) in self.owners.drain(..) {
            if other != attempt {
                self.outputs
                    .push_back(DialerOutput::Cancel { attempt: other });
            }
        }
        self.running.clear();
        self.finished = true;
        self.deadline = None;
        self.outputs.push_back(DialerOutput::Answered { attempt });
    }

    /// An attempt ended without answering, with its final status.
    pub fn on_failed(&mut self, now: Instant, attempt: AttemptId, status: u16) {
        if self.finished {
            return;
        }
        let Some(pos) = self.owners.iter().position(|(a, _)| *a == attempt) else {
            return;
        };
        let (_, member) = self.owners.remove(pos);
        let reason = reason_for_status(status);
        self.note(reason, Some(status));
        let Some(run) = self.running.get_mut(member) else {
            return;
        };
        run.live.retain(|a| *a != attempt);
        if run.failover
            && reason == HangupReason::Failed
            && let Some(target) = run.targets.pop_front()
        {
            let id = self.next_attempt;
            self.next_attempt += 1;
            run.live.push(id);
            self.owners.push((id, member));
            self.outputs.push_back(DialerOutput::Start {
                attempt: id,
                target,
            });
            return;
        }
        if run.live.is_empty() {
            run.done = true;
        }
        if self.running.iter().all(|r| r.done) {
            self.running.clear();
            self.owners.clear();
            match self.strategy {
                Strategy::Linear => self.start_next_linear(now),
                Strategy::RingAll => self.next_stage(now),
            }
        }
    }

    /// The leg was hung up while dialing: cancel everything, report nothing more.
    pub fn abort(&mut self) {
        for (attempt, _) in self.owners.drain(..) {
            self.outputs.push_back(DialerOutput::Cancel { attempt });
        }
        self.running.clear();
        self.pending.clear();
        self.stages.clear();
        self.finished = true;
        self.deadline = None;
    }

    fn note(&mut self, reason: HangupReason, status: Option<u16>) {
        let rank = |r: HangupReason| match r {
            HangupReason::Noanswer => 4,
            HangupReason::Busy => 3,
            HangupReason::Rejected => 2,
            HangupReason::Failed => 1,
            _ => 0,
        };
        if self.worst.is_none_or(|w| rank(reason) >= rank(w)) {
            self.worst = Some(reason);
            self.last_status = status;
        }
    }

    fn next_stage(&mut self, now: Instant) {
        loop {
            let Some(stage) = self.stages.pop_front() else {
                self.finished = true;
                self.deadline = None;
                self.outputs.push_back(DialerOutput::Failed {
                    reason: self.worst.unwrap_or(HangupReason::Failed),
                    status: self.last_status,
                });
                return;
            };
            self.strategy = stage.strategy;
            self.stage_timeout = stage.timeout;
            self.pending = stage.members.into();
            match self.strategy {
                Strategy::RingAll => {
                    while let Some(member) = self.pending.pop_front() {
                        self.start_member(member);
                    }
                    if !self.running.is_empty() {
                        self.deadline = Some(now + self.stage_timeout);
                        return;
                    }
                }
                Strategy::Linear => {
                    if self.start_linear_member(now) {
                        return;
                    }
                }
            }
        }
    }

    fn start_next_linear(&mut self, now: Instant) {
        if !self.start_linear_member(now) {
            self.next_stage(now);
        }
    }

    /// Starts the next linear member that can ring; false when none is left.
    fn start_linear_member(&mut self, now: Instant) -> bool {
        while let Some(member) = self.pending.pop_front() {
            if self.start_member(member) {
                self.deadline = Some(now + self.stage_timeout);
                return true;
            }
        }
        false
    }

    /// Starts a member's first attempt(s); false when it cannot ring at all.
    fn start_member(&mut self, member: Member) -> bool {
        let (targets, failover) = match member {
            Member::Unreachable(reason) => {
                self.note(reason, None);
                return false;
            }
            Member::Parallel(targets) => (targets, false),
            Member::Failover(targets) => (targets, true),
        };
        if targets.is_empty() {
            self.note(HangupReason::Failed, None);
            return false;
        }
        let index = self.running.len();
        let mut run = MemberRun {
            targets: targets.into(),
            failover,
            live: Vec::new(),
            done: false,
        };
        let starting: Vec<Target> = if failover {
            run.targets.pop_front().into_iter().collect()
        } else {
            run.targets.drain(..).collect()
        };
        for target in starting {
            let id = self.next_attempt;
            self.next_attempt += 1;
            run.live.push(id);
            self.owners.push((id, index));
            self.outputs.push_back(DialerOutput::Start {
                attempt: id,
                target,
            });
        }
        self.running.push(run);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_classes() {
        assert_eq!(reason_for_status(486), HangupReason::Busy);
        assert_eq!(reason_for_status(603), HangupReason::Rejected);
        assert_eq!(reason_for_status(503), HangupReason::Failed);
        assert_eq!(reason_for_status(408), HangupReason::Noanswer);
        assert_eq!(reason_for_status(487), HangupReason::Cancel);
    }
}
