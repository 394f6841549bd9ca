//! The call core in virtual time: scripted phones exchange RTP with a `MediaPlane` over a
//! seeded lossy network, so a minute of a bridge, a conference, a hold, a transfer or a
//! hand-over runs in milliseconds and repeats exactly.

mod net;

mod bridge;
mod conference;
mod dtmf;
mod group;
mod handover;
mod hold;
mod recording;
mod timeout;
mod transfer;
