//! What a request needs of the leg it names, and the one refusal for each case: the rules
//! the runtime's imports and the SDK's stand-in host both apply.
//!
//! Invariants: [`check`] is the only definition of these rules. An unknown leg is refused
//! with [`Refusal::NotFound`] before anything else; a `Finished` or `HandingOver` leg with
//! [`Refusal::InvalidState`] whatever the request needs; only then is the need itself
//! judged. Leg ids in refusal texts are cut to 64 bytes (at a character boundary), so an app
//! cannot make the host build long messages.

use crate::{Direction, LegPhase};

/// Longest leg id quoted in a refusal, in bytes.
const MAX_QUOTED_ID: usize = 64;

/// What a request needs of the leg it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Need {
    /// Known, not ended and not being handed over (hang up, hand over, leave a conference).
    Live,
    /// Live and answered or with early media (say, play, stop media, collect digits).
    Media,
    /// Live and answered (send digits, connect, hold, transfer, join a conference, ...).
    Answered,
    /// Live, inbound and not answered yet (answer, early media, reject, dial and connect).
    InboundUnanswered,
}

/// Why a request naming a leg is refused; the text is what the app sees.
#[derive(Debug, Clone, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Refusal {
    /// The leg is not part of this session (WIT `not-found`).
    #[error("{0}")]
    NotFound(String),
    /// The leg is in a phase where the request makes no sense (WIT `invalid-state`).
    #[error("{0}")]
    InvalidState(String),
}

impl Refusal {
    /// The text the app sees.
    pub fn message(&self) -> &str {
        match self {
            Refusal::NotFound(m) | Refusal::InvalidState(m) => m,
        }
    }
}

/// The refusal for a leg id that is not part of the session.
pub fn no_leg(call: &str) -> Refusal {
    Refusal::NotFound(format!(
        "no leg `{}` in this session",
        cut(call, MAX_QUOTED_ID)
    ))
}

/// Judges a request that would `what` (e.g. "send digits") the leg `call`, whose phase and
/// direction are `leg` (`None`: no such leg in the session), against what it `need`s.
pub fn check(
    call: &str,
    leg: Option<(LegPhase, Direction)>,
    need: Need,
    what: &str,
) -> Result<(), Refusal> {
    let Some((phase, direction)) = leg else {
        return Err(no_leg(call));
    };
    let id = cut(call, MAX_QUOTED_ID);
    let refuse = |text: String| Err(Refusal::InvalidState(text));
    match (need, phase) {
        (_, LegPhase::Finished) => refuse(format!("leg `{id}` has ended")),
        (_, LegPhase::HandingOver) => refuse(format!("the leg `{id}` is being handed over")),
        (Need::Live, _)
        | (Need::Media, LegPhase::EarlyMedia | LegPhase::Answered)
        | (Need::Answered, LegPhase::Answered) => Ok(()),
        (Need::Media, _) => refuse(format!(
            "cannot {what} before leg `{id}` is answered or early media started"
        )),
        (Need::Answered, _) => refuse(format!("cannot {what}: leg `{id}` is not answered")),
        (Need::InboundUnanswered, _) if direction == Direction::Outbound => {
            refuse(format!("cannot {what}: leg `{id}` is outbound"))
        }
        (Need::InboundUnanswered, LegPhase::Answered) => {
            refuse(format!("cannot {what}: leg `{id}` is already answered"))
        }
        (Need::InboundUnanswered, _) => Ok(()),
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
pub fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use Direction::{Inbound, Outbound};
    use LegPhase::{Answered, Dialing, EarlyMedia, Finished, HandingOver, Ringing};

    const ALL_PHASES: [LegPhase; 6] = [
        Ringing,
        EarlyMedia,
        Dialing,
        Answered,
        HandingOver,
        Finished,
    ];
    const ALL_NEEDS: [Need; 4] = [
        Need::Live,
        Need::Media,
        Need::Answered,
        Need::InboundUnanswered,
    ];

    fn state(text: &str) -> Result<(), Refusal> {
        Err(Refusal::InvalidState(text.to_owned()))
    }

    #[test]
    fn an_unknown_leg_is_not_found_whatever_the_need() {
        for need in ALL_NEEDS {
            assert_eq!(
                check("x", None, need, "say"),
                Err(Refusal::NotFound("no leg `x` in this session".into()))
            );
        }
        assert_eq!(no_leg("x").message(), "no leg `x` in this session");
    }

    #[test]
    fn an_ended_or_handed_over_leg_is_refused_whatever_the_need() {
        for need in ALL_NEEDS {
            for direction in [Inbound, Outbound] {
                assert_eq!(
                    check("x", Some((Finished, direction)), need, "say"),
                    state("leg `x` has ended")
                );
                assert_eq!(
                    check("x", Some((HandingOver, direction)), need, "say"),
                    state("the leg `x` is being handed over")
                );
            }
        }
    }

    #[test]
    fn live_accepts_every_other_phase() {
        for phase in [Ringing, EarlyMedia, Dialing, Answered] {
            for direction in [Inbound, Outbound] {
                assert_eq!(
                    check("x", Some((phase, direction)), Need::Live, "hang up"),
                    Ok(())
                );
            }
        }
    }

    #[test]
    fn media_needs_an_answer_or_early_media() {
        for phase in [EarlyMedia, Answered] {
            assert_eq!(
                check("x", Some((phase, Inbound)), Need::Media, "say"),
                Ok(())
            );
        }
        for phase in [Ringing, Dialing] {
            assert_eq!(
                check("x", Some((phase, Outbound)), Need::Media, "say"),
                state("cannot say before leg `x` is answered or early media started")
            );
        }
    }

    #[test]
    fn answered_needs_an_answer() {
        assert_eq!(
            check("x", Some((Answered, Outbound)), Need::Answered, "mute"),
            Ok(())
        );
        for phase in [Ringing, EarlyMedia, Dialing] {
            assert_eq!(
                check("x", Some((phase, Inbound)), Need::Answered, "send digits"),
                state("cannot send digits: leg `x` is not answered")
            );
        }
    }

    #[test]
    fn inbound_unanswered_refuses_outbound_then_answered_legs() {
        for phase in [Ringing, EarlyMedia] {
            assert_eq!(
                check(
                    "x",
                    Some((phase, Inbound)),
                    Need::InboundUnanswered,
                    "answer"
                ),
                Ok(())
            );
        }
        for phase in [Ringing, Dialing, Answered] {
            assert_eq!(
                check(
                    "x",
                    Some((phase, Outbound)),
                    Need::InboundUnanswered,
                    "answer"
                ),
                state("cannot answer: leg `x` is outbound")
            );
        }
        assert_eq!(
            check(
                "x",
                Some((Answered, Inbound)),
                Need::InboundUnanswered,
                "answer"
            ),
            state("cannot answer: leg `x` is already answered")
        );
    }

    #[test]
    fn every_case_has_one_outcome() {
        // No combination panics, and only the documented ones are accepted.
        for need in ALL_NEEDS {
            for phase in ALL_PHASES {
                for direction in [Inbound, Outbound] {
                    let accepted = check("x", Some((phase, direction)), need, "do it").is_ok();
                    let expected = match need {
                        Need::Live => !matches!(phase, Finished | HandingOver),
                        Need::Media => matches!(phase, EarlyMedia | Answered),
                        Need::Answered => phase == Answered,
                        Need::InboundUnanswered => {
                            direction == Inbound && matches!(phase, Ringing | EarlyMedia | Dialing)
                        }
                    };
                    assert_eq!(accepted, expected, "{need:?} {phase:?} {direction:?}");
                }
            }
        }
    }

    #[test]
    fn long_ids_are_cut_to_64_bytes() {
        let long = "é".repeat(40); // 80 bytes: cut at 64, a character boundary.
        let quoted = "é".repeat(32);
        assert_eq!(
            check(&long, None, Need::Live, "hang up"),
            Err(Refusal::NotFound(format!(
                "no leg `{quoted}` in this session"
            )))
        );
        assert_eq!(
            check(&long, Some((Ringing, Outbound)), Need::Answered, "mute"),
            state(&format!("cannot mute: leg `{quoted}` is not answered"))
        );
        let odd = format!("a{long}"); // 81 bytes: byte 64 is inside a character.
        assert_eq!(cut(&odd, 64).len(), 63);
    }

    #[test]
    fn cut_respects_char_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("abc", 10), "abc");
        assert_eq!(cut("", 0), "");
    }

    #[test]
    fn a_refusal_displays_its_text() {
        let r = Refusal::InvalidState("leg `x` has ended".into());
        assert_eq!(r.to_string(), "leg `x` has ended");
        assert_eq!(r.message(), "leg `x` has ended");
    }
}
