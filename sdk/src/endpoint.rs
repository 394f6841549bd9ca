//! Where a new leg goes: SIP URIs, users registered with the pbx, and phone numbers through
//! trunks, with a parser so configuration strings become endpoints.
//!
//! Invariants: `Endpoint::parse(&e.to_string()) == Ok(e)` for every endpoint the parser
//! accepts; parsing never panics and names the problem in its error.

use std::fmt;
use std::str::FromStr;

use crate::bindings::pbx::app::types::{Endpoint as WitEndpoint, PhoneNumber};

/// Where a new leg goes, for [`dial`](crate::dial), [`Group`](crate::Group) and the transfer
/// requests of [`Call`](crate::Call).
///
/// As text (see [`Endpoint::parse`]): `sip:bob@10.0.0.2:5080` or `sips:...` (a SIP URI),
/// `user:alice` (a SIP user registered with the pbx), `+4930123456` or `tel:+4930123456`
/// (a phone number through any trunk), `+4930123456;trunk=carrier` (through that trunk).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A SIP URI dialled directly, such as "sip:bob@127.0.0.1:5080" (";transport=tcp"
    /// selects TCP).
    SipUri(String),
    /// A SIP user registered with the pbx (its username in `/v1/sip-users`); every
    /// registered contact rings at once.
    User(String),
    /// A phone number (digits with an optional leading "+") through a trunk; `None` tries
    /// every enabled trunk in priority order.
    Phone {
        /// The number as dialled.
        number: String,
        /// The trunk's name.
        trunk: Option<String>,
    },
}

/// Why a string is not an [`Endpoint`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid endpoint `{input}`: {reason}")]
pub struct EndpointError {
    input: String,
    reason: &'static str,
}

impl EndpointError {
    fn new(input: &str, reason: &'static str) -> Self {
        EndpointError {
            input: input.to_owned(),
            reason,
        }
    }

    /// What is wrong with the input, without the input itself.
    pub fn reason(&self) -> &str {
        self.reason
    }
}

impl Endpoint {
    /// A SIP URI dialled directly; the host checks it when dialling.
    pub fn sip(uri: impl Into<String>) -> Self {
        Endpoint::SipUri(uri.into())
    }

    /// A SIP user registered with the pbx.
    pub fn user(name: impl Into<String>) -> Self {
        Endpoint::User(name.into())
    }

    /// A phone number through any enabled trunk.
    pub fn phone(number: impl Into<String>) -> Self {
        Endpoint::Phone {
            number: number.into(),
            trunk: None,
        }
    }

    /// A phone number through the named trunk.
    pub fn phone_via(number: impl Into<String>, trunk: impl Into<String>) -> Self {
        Endpoint::Phone {
            number: number.into(),
            trunk: Some(trunk.into()),
        }
    }

    /// Parses the text form (see [`Endpoint`]); surrounding whitespace is ignored. Bare
    /// digits are a phone number; a SIP user needs the `user:` prefix.
    pub fn parse(text: &str) -> Result<Self, EndpointError> {
        let input = text;
        let text = text.trim();
        if text.is_empty() {
            return Err(EndpointError::new(input, "empty"));
        }
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("sip:") || lower.starts_with("sips:") {
            let rest = &text[text.find(':').map_or(0, |i| i + 1)..];
            if rest.is_empty() {
                return Err(EndpointError::new(input, "a SIP URI needs an address"));
            }
            if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(EndpointError::new(input, "a SIP URI has no spaces"));
            }
            return Ok(Endpoint::SipUri(text.to_owned()));
        }
        if lower.starts_with("user:") {
            let name = &text["user:".len()..];
            if name.is_empty() {
                return Err(EndpointError::new(input, "`user:` needs a user name"));
            }
            if name
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '@' | ':' | ',' | ';'))
            {
                return Err(EndpointError::new(
                    input,
                    "a user name has no spaces, `@`, `:`, `,` or `;`",
                ));
            }
            return Ok(Endpoint::User(name.to_owned()));
        }
        let phone = if lower.starts_with("tel:") {
            &text["tel:".len()..]
        } else {
            text
        };
        let (number, params) = match phone.split_once(';') {
            Some((number, params)) => (number, Some(params)),
            None => (phone, None),
        };
        let digits = number.strip_prefix('+').unwrap_or(number);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EndpointError::new(
                input,
                "expected `sip:...`, `sips:...`, `user:NAME`, `tel:NUMBER` or a number like +4930123456",
            ));
        }
        if digits.len() > 32 {
            return Err(EndpointError::new(input, "a number has at most 32 digits"));
        }
        let trunk = match params {
            None => None,
            Some(params) => match params.strip_prefix("trunk=") {
                Some(trunk) if !trunk.is_empty() && !trunk.contains([';', ',']) => {
                    Some(trunk.to_owned())
                }
                _ => {
                    return Err(EndpointError::new(
                        input,
                        "the only parameter of a number is `;trunk=NAME`",
                    ));
                }
            },
        };
        Ok(Endpoint::Phone {
            number: number.to_owned(),
            trunk,
        })
    }

    /// Parses a comma-separated list such as `user:alice, user:bob`; empty items are
    /// skipped, so an empty string is an empty list.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, EndpointError> {
        text.split(',')
            .filter(|item| !item.trim().is_empty())
            .map(Endpoint::parse)
            .collect()
    }

    pub(crate) fn to_wit(&self) -> WitEndpoint {
        match self {
            Endpoint::SipUri(uri) => WitEndpoint::SipUri(uri.clone()),
            Endpoint::User(name) => WitEndpoint::User(name.clone()),
            Endpoint::Phone { number, trunk } => WitEndpoint::Phone(PhoneNumber {
                number: number.clone(),
                trunk: trunk.clone(),
            }),
        }
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::SipUri(uri) => f.write_str(uri),
            Endpoint::User(name) => write!(f, "user:{name}"),
            Endpoint::Phone {
                number,
                trunk: None,
            } => f.write_str(number),
            Endpoint::Phone {
                number,
                trunk: Some(trunk),
            } => write!(f, "{number};trunk={trunk}"),
        }
    }
}

impl FromStr for Endpoint {
    type Err = EndpointError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Endpoint::parse(s)
    }
}

impl TryFrom<&str> for Endpoint {
    type Error = EndpointError;

    fn try_from(s: &str) -> Result<Self, Self::Error> {
        Endpoint::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_form() {
        assert_eq!(
            Endpoint::parse("sip:bob@127.0.0.1:5080;transport=tcp"),
            Ok(Endpoint::sip("sip:bob@127.0.0.1:5080;transport=tcp"))
        );
        assert_eq!(
            Endpoint::parse(" SIPS:bob@example.com "),
            Ok(Endpoint::sip("SIPS:bob@example.com"))
        );
        assert_eq!(Endpoint::parse("user:alice"), Ok(Endpoint::user("alice")));
        assert_eq!(Endpoint::parse("+4930123"), Ok(Endpoint::phone("+4930123")));
        assert_eq!(Endpoint::parse("1000"), Ok(Endpoint::phone("1000")));
        assert_eq!(Endpoint::parse("tel:+4930"), Ok(Endpoint::phone("+4930")));
        assert_eq!(
            Endpoint::parse("+4930123;trunk=carrier"),
            Ok(Endpoint::phone_via("+4930123", "carrier"))
        );
        assert_eq!(
            "tel:0301;trunk=b".parse::<Endpoint>(),
            Ok(Endpoint::phone_via("0301", "b"))
        );
    }

    #[test]
    fn refuses_malformed_text_with_a_reason() {
        for bad in [
            "",
            "  ",
            "sip:",
            "user:",
            "user:a b",
            "user:a@b",
            "alice",
            "+",
            "+49a",
            "12;x=y",
            "12;trunk=",
            "sip:a b",
        ] {
            let err = Endpoint::parse(bad).expect_err(bad);
            assert!(!err.reason().is_empty());
            assert!(err.to_string().contains(&format!("`{bad}`")), "{err}");
        }
        assert!(Endpoint::parse(&"1".repeat(33)).is_err());
        assert!(Endpoint::try_from("alice").is_err());
    }

    #[test]
    fn display_round_trips() {
        for e in [
            Endpoint::sip("sip:bob@10.0.0.2"),
            Endpoint::user("carol"),
            Endpoint::phone("+4930"),
            Endpoint::phone_via("0049", "main"),
        ] {
            assert_eq!(Endpoint::parse(&e.to_string()), Ok(e));
        }
    }

    #[test]
    fn parses_lists() {
        assert_eq!(
            Endpoint::parse_list("user:alice, user:bob,"),
            Ok(vec![Endpoint::user("alice"), Endpoint::user("bob")])
        );
        assert_eq!(Endpoint::parse_list(""), Ok(vec![]));
        assert!(Endpoint::parse_list("user:alice,bob").is_err());
    }

    #[test]
    fn converts_to_the_wit_variant() {
        assert!(matches!(
            Endpoint::phone_via("+1", "t").to_wit(),
            WitEndpoint::Phone(PhoneNumber { number, trunk: Some(t) }) if number == "+1" && t == "t"
        ));
        assert!(matches!(Endpoint::user("a").to_wit(), WitEndpoint::User(u) if u == "a"));
        assert!(
            matches!(Endpoint::sip("sip:a@b").to_wit(), WitEndpoint::SipUri(u) if u == "sip:a@b")
        );
    }
}
