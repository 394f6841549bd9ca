//! Events: the hub call code emits through, the recorder that stores and publishes them,
//! and signed webhook delivery with retries.
//!
//! Invariants: [`EventHub::emit`] is the only thing call code touches, and it never blocks
//! or awaits, so no event, database or webhook endpoint can delay a call; every published
//! or delivered event is a stored [`pbx_store::EventRecord`] with its id; a webhook gets its
//! events in order, one at a time (see [`retry`]). Retention of old events is not handled.

mod hub;
pub mod retry;
mod webhooks;

pub use hub::{BROADCAST_CAPACITY, EVENT_QUEUE, EventHub, MAX_BATCH};
pub use webhooks::{WebhookConfig, sign};
