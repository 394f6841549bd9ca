//! New legs: `dial`, group calls, and the dial options shared with `dial_and_connect`,
//! `transfer` and `consult`.
//!
//! Invariants: a [`Dial`] sends exactly one import, only when `send` is called, and returns
//! the new leg as a [`Call`]; option defaults follow the WIT (the session's caller id, no
//! display name, a 60 s connect timeout, no extra headers). Header and timeout limits are
//! checked by the host, which answers `invalid-argument`.

use std::time::Duration;

use crate::bindings::pbx::app::types::{DialOptions, GroupStage, RingStrategy};
use crate::host::cc;
use crate::media::millis;
use crate::{Call, Endpoint, Error};

/// Places a new outbound leg in this session with default options. Its progress arrives as
/// [`App::on_call_ringing`](crate::App::on_call_ringing) /
/// [`App::on_call_answered`](crate::App::on_call_answered); a leg that never answers ends
/// with [`App::on_call_finished`](crate::App::on_call_finished).
pub fn dial(target: &Endpoint) -> Result<Call, Error> {
    dial_with(target).send()
}

/// Starts a dial with options:
/// `dial_with(&target).caller_id("1000").timeout(Duration::from_secs(30)).send()`.
pub fn dial_with(target: &Endpoint) -> Dial<'_> {
    Dial::new(Kind::Dial(target))
}

/// Rings a [`Group`] stage by stage with default options; the returned leg stands for the
/// group and is answered by whichever member answers first.
pub fn dial_group(group: &Group) -> Result<Call, Error> {
    group.dial_with().send()
}

/// What a [`Dial`] sends.
#[derive(Debug, Clone, Copy)]
enum Kind<'a> {
    Dial(&'a Endpoint),
    Group(&'a Group),
    DialAndConnect(&'a Call, &'a Endpoint),
    Transfer(&'a Call, &'a Endpoint),
    Consult(&'a Call, &'a Endpoint),
}

/// A new leg being set up, with its options; [`Dial::send`] places it.
///
/// Made by [`dial_with`], [`Group::dial_with`], [`Call::dial_and_connect_with`],
/// [`Call::transfer_with`] and [`Call::consult_with`].
#[derive(Debug, Clone)]
#[must_use = "a Dial does nothing until `send` is called"]
pub struct Dial<'a> {
    kind: Kind<'a>,
    caller_id: Option<&'a str>,
    caller_name: Option<&'a str>,
    timeout_ms: u32,
    headers: Vec<(&'a str, &'a str)>,
}

impl<'a> Dial<'a> {
    fn new(kind: Kind<'a>) -> Self {
        Dial {
            kind,
            caller_id: None,
            caller_name: None,
            timeout_ms: 0,
            headers: Vec::new(),
        }
    }

    pub(crate) fn dial_and_connect(call: &'a Call, target: &'a Endpoint) -> Self {
        Dial::new(Kind::DialAndConnect(call, target))
    }

    pub(crate) fn transfer(call: &'a Call, target: &'a Endpoint) -> Self {
        Dial::new(Kind::Transfer(call, target))
    }

    pub(crate) fn consult(call: &'a Call, target: &'a Endpoint) -> Self {
        Dial::new(Kind::Consult(call, target))
    }

    /// The caller's user part in From; by default the session's caller (or the trunk's
    /// caller-id rule for phone numbers).
    pub fn caller_id(mut self, caller_id: &'a str) -> Self {
        self.caller_id = Some(caller_id);
        self
    }

    /// The display name in From; by default none.
    pub fn caller_name(mut self, caller_name: &'a str) -> Self {
        self.caller_name = Some(caller_name);
        self
    }

    /// How long the leg may ring before it ends with `noanswer` (default 60 s, at most
    /// 600 s; millisecond precision, zero means the default).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout_ms = millis(timeout);
        self
    }

    /// An extra SIP header for the INVITE; the name must start with "X-" (at most 16).
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    pub(crate) fn options(&self) -> DialOptions {
        DialOptions {
            caller_id: self.caller_id.map(String::from),
            caller_name: self.caller_name.map(String::from),
            connect_timeout_ms: self.timeout_ms,
            headers: self
                .headers
                .iter()
                .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    /// Sends the request and returns the new leg (for a group, the leg standing for it).
    pub fn send(self) -> Result<Call, Error> {
        let options = self.options();
        let id = match self.kind {
            Kind::Dial(target) => cc::dial(&target.to_wit(), &options),
            Kind::Group(group) => cc::dial_group(&group.to_wit(), &options),
            Kind::DialAndConnect(call, target) => {
                cc::dial_and_connect(call.id(), &target.to_wit(), &options)
            }
            Kind::Transfer(call, target) => cc::transfer(call.id(), &target.to_wit(), &options),
            Kind::Consult(call, target) => cc::consult(call.id(), &target.to_wit(), &options),
        }?;
        Ok(Call::from_id(id))
    }
}

/// One stage of a [`Group`].
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stage {
    members: Vec<Endpoint>,
    strategy: RingStrategy,
    timeout_ms: u32,
}

/// A group call: stages that ring one after another, each ringing its members all at once
/// or one by one:
/// `Group::ring_all([alice, bob]).timeout(secs(20)).then_linear([carol]).timeout(secs(20))`.
///
/// Stage timeouts default to 20 s (the whole stage for ring-all, each member for linear).
/// The host checks the limits (1 to 32 members per stage).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    stages: Vec<Stage>,
}

impl Group {
    /// A group whose first stage rings every member at once; the first to answer wins and
    /// the others are cancelled.
    pub fn ring_all(members: impl IntoIterator<Item = Endpoint>) -> Self {
        Group { stages: Vec::new() }.then_ring_all(members)
    }

    /// A group whose first stage rings its members one after another.
    pub fn linear(members: impl IntoIterator<Item = Endpoint>) -> Self {
        Group { stages: Vec::new() }.then_linear(members)
    }

    /// Adds a ring-all stage, tried when the previous ones found nobody.
    pub fn then_ring_all(self, members: impl IntoIterator<Item = Endpoint>) -> Self {
        self.then(members, RingStrategy::RingAll)
    }

    /// Adds a linear stage, tried when the previous ones found nobody.
    pub fn then_linear(self, members: impl IntoIterator<Item = Endpoint>) -> Self {
        self.then(members, RingStrategy::Linear)
    }

    fn then(mut self, members: impl IntoIterator<Item = Endpoint>, strategy: RingStrategy) -> Self {
        self.stages.push(Stage {
            members: members.into_iter().collect(),
            strategy,
            timeout_ms: 0,
        });
        self
    }

    /// Sets how long the most recently added stage rings (millisecond precision; zero
    /// means the default of 20 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        if let Some(stage) = self.stages.last_mut() {
            stage.timeout_ms = millis(timeout);
        }
        self
    }

    /// How many stages the group has.
    pub fn stages(&self) -> usize {
        self.stages.len()
    }

    /// Rings the group with default options (see [`dial_group`]).
    pub fn dial(&self) -> Result<Call, Error> {
        dial_group(self)
    }

    /// Starts ringing the group with options (caller id, headers, ...).
    pub fn dial_with(&self) -> Dial<'_> {
        Dial::new(Kind::Group(self))
    }

    pub(crate) fn to_wit(&self) -> Vec<GroupStage> {
        self.stages
            .iter()
            .map(|s| GroupStage {
                members: s.members.iter().map(Endpoint::to_wit).collect(),
                strategy: s.strategy,
                timeout_ms: s.timeout_ms,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_options_default_to_the_wit_defaults() {
        let target = Endpoint::user("bob");
        let o = dial_with(&target).options();
        assert_eq!(o.caller_id, None);
        assert_eq!(o.caller_name, None);
        assert_eq!(o.connect_timeout_ms, 0);
        assert!(o.headers.is_empty());
    }

    #[test]
    fn dial_options_carry_every_setting() {
        let target = Endpoint::user("bob");
        let call = Call::from_id("c1");
        let o = Dial::consult(&call, &target)
            .caller_id("1000")
            .caller_name("Front desk")
            .timeout(Duration::from_secs(30))
            .header("X-Ticket", "42")
            .header("X-Queue", "sales")
            .options();
        assert_eq!(o.caller_id.as_deref(), Some("1000"));
        assert_eq!(o.caller_name.as_deref(), Some("Front desk"));
        assert_eq!(o.connect_timeout_ms, 30_000);
        assert_eq!(
            o.headers,
            vec![
                ("X-Ticket".to_owned(), "42".to_owned()),
                ("X-Queue".to_owned(), "sales".to_owned())
            ]
        );
    }

    #[test]
    fn group_builds_stages_in_order_with_their_timeouts() {
        let g = Group::ring_all([Endpoint::user("alice"), Endpoint::user("bob")])
            .timeout(Duration::from_secs(20))
            .then_linear([Endpoint::user("carol")])
            .timeout(Duration::from_secs(15))
            .then_ring_all([Endpoint::phone("+4930")]);
        assert_eq!(g.stages(), 3);
        let w = g.to_wit();
        assert_eq!(w.len(), 3);
        assert_eq!(w[0].strategy, RingStrategy::RingAll);
        assert_eq!(w[0].members.len(), 2);
        assert_eq!(w[0].timeout_ms, 20_000);
        assert_eq!(w[1].strategy, RingStrategy::Linear);
        assert_eq!(w[1].timeout_ms, 15_000);
        assert_eq!(w[2].timeout_ms, 0);
        assert_eq!(Group::linear([]).stages(), 1);
    }
}
