//! Sans-IO SIP for the pbx: message parsing and printing behind our own types, RFC 3261
//! transactions and dialogs, digest authentication, and the user agent core (inbound and
//! outbound calls, REGISTER for the registrar) the server shell drives.
//!
//! Invariants: nothing here touches sockets, threads, tokio or the clock. Time is always an
//! argument (`now: Instant`), received bytes are arguments, and everything the core wants done
//! (transmissions, call events, the next wake-up) is polled. Randomness comes from a seeded RNG,
//! so every test runs in virtual time and repeats exactly. Input from the network never panics.

pub mod builder;
pub mod dialog;
pub mod digest;
pub mod endpoint;
pub mod framing;
pub mod header;
pub mod message;
pub mod transaction;
pub mod transport;
mod validate;

pub use digest::Credentials;
pub use endpoint::{
    CallKey, ContactBinding, EndCause, Endpoint, EndpointConfig, IncomingCall, OutgoingCall,
    Output, RegisterRequest, RequestKey, SipError, SipEvent,
};
pub use header::{CSeq, HeaderError, Method, NameAddr, Param, Scheme, Uri, Via};
pub use message::{Headers, ParseError, Request, Response, SipMessage, parse};
pub use transaction::Timers;
pub use transport::{Peer, Transmit, Transport};
