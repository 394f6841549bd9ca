//! The actions an app asks the session to carry out, in the order it asked.
//!
//! Invariants: every id an action names was checked against the session mirror when the
//! app asked, and the mirror already reflects the action (a dialled leg is `Dialing`, a
//! hung-up leg `Finished`, a created conference live, ...); options are validated.

use crate::{
    CollectOptions, ConferenceOptions, DialOptions, Endpoint, GroupStage, HttpRequest, JoinOptions,
    MediaId, MuteDirection, PlayOptions, RecordOptions, RecordTarget, RequestId, SayOptions,
    TimerId,
};

/// One thing the app asked the session to do, in the order it asked; the call layer carries
/// them out after the event returns. Every id named was checked against the session mirror.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Answer an inbound leg (200 OK with our SDP).
    Answer {
        /// The leg.
        call: String,
    },
    /// Start early media on an inbound leg (183 with our SDP).
    EarlyMedia {
        /// The leg.
        call: String,
    },
    /// Reject an unanswered inbound leg with this final status (400..=699).
    Reject {
        /// The leg.
        call: String,
        /// The SIP final status.
        status: u16,
    },
    /// End a leg: BYE when answered, 480 when inbound unanswered, CANCEL when dialling.
    /// Hanging up the session's first leg hangs up every other leg.
    Hangup {
        /// The leg.
        call: String,
    },
    /// Speak text; report the end as `on-say-finished` with `id`.
    Say {
        /// The leg.
        call: String,
        /// The id returned to the app.
        id: MediaId,
        /// The text to speak (1 to 4000 characters).
        text: String,
        /// How to speak it.
        opts: SayOptions,
    },
    /// Play an uploaded file; report the end as `on-play-finished` with `id`.
    Play {
        /// The leg.
        call: String,
        /// The id returned to the app.
        id: MediaId,
        /// The file's id (known to exist when the request was made).
        file_id: String,
        /// How to play it.
        opts: PlayOptions,
    },
    /// Play music in a loop until `stop-media`; report the end as `on-play-finished`.
    PlayMusic {
        /// The leg.
        call: String,
        /// The id returned to the app.
        id: MediaId,
        /// An uploaded file (known to exist); `None` is the built-in music.
        file_id: Option<String>,
    },
    /// Stop the media playing to a leg and drop what is queued.
    StopMedia {
        /// The leg.
        call: String,
    },
    /// Collect digits; report the result as `on-dtmf-collected`.
    CollectDtmf {
        /// The leg.
        call: String,
        /// How to collect.
        opts: CollectOptions,
    },
    /// Send RFC 4733 digits to an answered leg.
    SendDtmf {
        /// The leg.
        call: String,
        /// 1 to 32 of "0"-"9", "*", "#", "A"-"D".
        digits: String,
        /// Per digit, 40 to 2000 ms (0 was turned into 100).
        duration_ms: u32,
    },
    /// Place a new outbound leg; it is already in the mirror as `Dialing`.
    Dial {
        /// The new leg's id, returned to the app.
        call: String,
        /// Where it goes.
        target: Endpoint,
        /// How.
        opts: DialOptions,
    },
    /// Ring a group stage by stage; `call` stands for whichever member answers.
    DialGroup {
        /// The new leg's id, returned to the app.
        call: String,
        /// The stages, run one after another.
        stages: Vec<GroupStage>,
        /// Options of every member's INVITE.
        opts: DialOptions,
    },
    /// Bridge two answered legs.
    Connect {
        /// One leg.
        a: String,
        /// The other, distinct from `a`.
        b: String,
    },
    /// Take a leg out of its bridge.
    Disconnect {
        /// The leg.
        call: String,
    },
    /// Dial `target` for the unanswered inbound `call` and bridge them, answering `call`
    /// only when `new_call` answers.
    DialAndConnect {
        /// The inbound leg.
        call: String,
        /// The new leg's id, returned to the app.
        new_call: String,
        /// Where it goes.
        target: Endpoint,
        /// How.
        opts: DialOptions,
    },
    /// Put an answered leg on hold (re-INVITE sendonly, then music).
    Hold {
        /// The leg.
        call: String,
        /// An uploaded file (known to exist); `None` is the built-in music.
        music_file: Option<String>,
    },
    /// Take a leg off hold.
    Resume {
        /// The leg.
        call: String,
    },
    /// Mute a leg.
    Mute {
        /// The leg.
        call: String,
        /// Which way.
        direction: MuteDirection,
    },
    /// Undo `Mute` for a direction.
    Unmute {
        /// The leg.
        call: String,
        /// Which way.
        direction: MuteDirection,
    },
    /// Blind transfer: hang up `call`'s bridge peer and dial `target` for `call`.
    Transfer {
        /// The leg that stays.
        call: String,
        /// The new leg's id, returned to the app.
        new_call: String,
        /// Where it goes.
        target: Endpoint,
        /// How.
        opts: DialOptions,
    },
    /// Attended transfer, first step: `call` consults `target` while its peer hears music.
    Consult {
        /// The agent's leg.
        call: String,
        /// The consult leg's id, returned to the app.
        new_call: String,
        /// Where it goes.
        target: Endpoint,
        /// How.
        opts: DialOptions,
    },
    /// Attended transfer, last step: bridge the held party with the consult leg, hang up `call`.
    CompleteTransfer {
        /// The agent's leg.
        call: String,
    },
    /// Abandon a consultation: hang up the consult leg, bridge `call` with its held party.
    CancelTransfer {
        /// The agent's leg.
        call: String,
    },
    /// Create a conference; it is already in the mirror as live.
    ConferenceCreate {
        /// The new conference's id, returned to the app.
        id: String,
        /// Its options.
        opts: ConferenceOptions,
    },
    /// Add an answered leg to a conference.
    ConferenceJoin {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
        /// How it joins.
        opts: JoinOptions,
    },
    /// Take a participant out; the leg stays up.
    ConferenceLeave {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
    },
    /// Take a participant out and hang up its leg.
    ConferenceKick {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
    },
    /// Stop the others hearing a participant.
    ConferenceMute {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
    },
    /// Let the others hear a participant again.
    ConferenceUnmute {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
    },
    /// Stop a participant hearing the conference.
    ConferenceDeafen {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
    },
    /// Let a participant hear the conference again.
    ConferenceUndeafen {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
    },
    /// Speak into a conference; report the end as `on-conference-media-finished`.
    ConferenceSay {
        /// The conference.
        conference: String,
        /// The id returned to the app.
        id: MediaId,
        /// The text (1 to 4000 characters).
        text: String,
        /// How to speak it.
        opts: SayOptions,
    },
    /// Play an uploaded file into a conference.
    ConferencePlay {
        /// The conference.
        conference: String,
        /// The id returned to the app.
        id: MediaId,
        /// The file (known to exist).
        file_id: String,
        /// How to play it.
        opts: PlayOptions,
    },
    /// Stop what is playing into a conference.
    ConferenceStopMedia {
        /// The conference.
        conference: String,
    },
    /// End a conference and hang up every participant; the mirror forgets it at once.
    ConferenceHangup {
        /// The conference.
        conference: String,
    },
    /// Start a recording; it is already in the mirror as live.
    RecordStart {
        /// The new recording's id, returned to the app.
        id: String,
        /// What it captures.
        target: RecordTarget,
        /// How.
        opts: RecordOptions,
    },
    /// Stop a recording; `on-recording-ready` follows. The mirror forgets it at once.
    RecordStop {
        /// The recording.
        id: String,
    },
    /// Deliver `Event::Timer { id, tag }` after `ms` milliseconds.
    SetTimer {
        /// The id returned to the app.
        id: TimerId,
        /// 1 to 86 400 000.
        ms: u32,
        /// At most 256 bytes.
        tag: String,
    },
    /// Cancel a live timer (only queued for a timer that was live).
    CancelTimer {
        /// The timer.
        id: TimerId,
    },
    /// Hand the leg over to another app; the mirror holds the leg in `HandingOver` until the
    /// host answers with `set_leg` (refused) or `Event::HandOverResult` (accepted). The host
    /// checks that the app exists and that the leg is in no bridge or conference, and answers
    /// `HandOverResult { accepted: false, .. }` when not possible.
    HandOver {
        /// The leg (known, not finished, not dialing, not already being handed over).
        call: String,
        /// An app id (`app_` + 16 hex) or an app name (`[A-Za-z0-9._-]{1,64}`).
        app: String,
        /// Passed to the other app in `CallInfo::handed_over` (at most 4096 bytes).
        data: String,
    },
    /// Give back a leg that was handed over to this app, during the `CallReceived` that
    /// delivered it; the mirror marks the leg `Finished` (it is no longer this session's).
    RefuseHandOver {
        /// The handed-over leg.
        call: String,
        /// Told to the handing session (at most 256 bytes).
        reason: String,
    },
    /// Send an HTTP request off the session's task and deliver [`Event::HttpResponse`](crate::Event::HttpResponse) with
    /// the same id when it completes (or fails, or times out). The URL's host passed the
    /// app's allow-list; do not follow redirects (they could leave it).
    HttpRequest {
        /// The session-unique id the app got back from `http.send`.
        id: RequestId,
        /// The checked request.
        request: HttpRequest,
    },
}
