//! Plain Rust mirrors of the WIT types, the events the host delivers and the actions an app
//! requests.
//!
//! Invariants: these are the only event and action types the rest of pbx sees (no generated
//! binding type leaves the crate); option structs hold normalised values (a loop count of 0
//! becomes 1, a connect timeout of 0 becomes 60 000 ms, ...) because the host validated them
//! before queuing the action. Conversions from and to the `pbx:app@0.3.0` bindings live here
//! (0.2.0 shares its `types` with 0.3.0, so they serve both); those of `0.1.0` live in
//! `legacy.rs`.

use std::time::Duration;

use crate::bindings::v0_3::{http as wit_http, types as wit};

/// The host's identifier of one `say` or `play` request, echoed in its finished event.
pub type MediaId = u64;

/// The host's identifier of a timer set with `set-timer`.
pub type TimerId = u64;

/// Which contract a component was built against; decides which events it can receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AbiVersion {
    /// `pbx:app@0.1.0`: one call, six events, no dialing.
    V0_1,
    /// `pbx:app@0.2.0`: a session of legs, conferences, recordings and timers.
    V0_2,
    /// `pbx:app@0.3.0`: 0.2.0 plus capabilities (key-value store, HTTP, configuration).
    V0_3,
}

impl AbiVersion {
    /// The WIT package version, `0.1.0`, `0.2.0` or `0.3.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            AbiVersion::V0_1 => "0.1.0",
            AbiVersion::V0_2 => "0.2.0",
            AbiVersion::V0_3 => "0.3.0",
        }
    }

    /// Whether components of this version can import the capabilities (`kv`, `http`,
    /// `config`) and receive `on-http-response`.
    pub fn has_capabilities(self) -> bool {
        self == AbiVersion::V0_3
    }
}

/// Where a leg of the session is in its life, as far as the app's requests are concerned.
///
/// The call layer reports changes with [`AppInstance::set_leg`](crate::AppInstance::set_leg);
/// the imports also move it optimistically (answer → `Answered`, hangup → `Finished`) so that
/// a second answer in the same event is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LegPhase {
    /// An inbound leg, offered and unanswered (180 Ringing sent).
    Ringing,
    /// An inbound leg with early media flowing (183 sent), not yet answered.
    EarlyMedia,
    /// An outbound leg being dialled, not answered yet.
    Dialing,
    /// The leg is answered (200 OK sent or received).
    Answered,
    /// The app asked to hand the leg over to another app and the host has not answered yet:
    /// every request naming the leg gets `invalid-state` until the host calls `set_leg`
    /// (refused: the leg's real phase) or delivers an accepted `HandOverResult`.
    HandingOver,
    /// The leg ended or is ending (rejected, hung up, cancelled, handed over or finished).
    Finished,
}

/// Which way a leg was set up, seen from the pbx.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// A caller reached the pbx.
    Inbound,
    /// The pbx placed the call (a `dial`, or `POST /v1/calls`).
    Outbound,
}

/// What the app is told about the call that starts a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallInfo {
    /// This leg's identifier.
    pub id: String,
    /// Which way the leg was set up.
    pub direction: Direction,
    /// The caller: the user part of the From URI, or the whole URI when it has none.
    pub from: String,
    /// The called number or user (inbound), or the endpoint being dialled (outbound).
    pub to: String,
    /// The caller's display name, when the From header carries one.
    pub caller_name: Option<String>,
    /// The app's configuration values (name, value).
    pub config: Vec<(String, String)>,
    /// Set when another app handed this leg over; `None` for every other call (and always
    /// for 0.1 apps, which cannot be handed a leg).
    pub handed_over: Option<HandOverInfo>,
}

/// Where a handed-over leg comes from, given in [`CallInfo::handed_over`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HandOverInfo {
    /// The id of the app whose session handed the leg over.
    pub from_app: String,
    /// What that app passed along (at most 4 KiB).
    pub data: String,
}

/// Who ended a leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HangupBy {
    /// The pbx ended it: the app, the admin API, a limit or a failure on our side.
    Local,
    /// The other party ended it (BYE, CANCEL, or an error response).
    Remote,
}

/// Why a leg ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HangupReason {
    /// An ordinary hangup after the leg was answered.
    Normal,
    /// A signalling or media failure, or a dialled endpoint that could not be reached.
    Failed,
    /// The callee or the app answered busy (486, 600).
    Busy,
    /// The leg was cancelled before it was answered.
    Cancel,
    /// A timer of the pbx ran out.
    Timeout,
    /// Nobody answered within the connect timeout.
    Noanswer,
    /// The app trapped, ran past its CPU deadline or exceeded its memory.
    AppError,
    /// The call was declined (403, 404, 603, ...) by the app or the callee.
    Rejected,
    /// The pbx is shutting down or the admin API ended the call.
    Admin,
}

impl HangupReason {
    /// The WIT name (`app-error`, `noanswer`, ...), used in the call history and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            HangupReason::Normal => "normal",
            HangupReason::Failed => "failed",
            HangupReason::Busy => "busy",
            HangupReason::Cancel => "cancel",
            HangupReason::Timeout => "timeout",
            HangupReason::Noanswer => "noanswer",
            HangupReason::AppError => "app-error",
            HangupReason::Rejected => "rejected",
            HangupReason::Admin => "admin",
        }
    }
}

/// How a leg ended, given to `on-call-finished`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallEnded {
    /// Who ended the leg.
    pub hangup_by: HangupBy,
    /// Why it ended.
    pub hangup_reason: HangupReason,
    /// The SIP status that ended it, where there was one.
    pub sip_status: Option<u16>,
    /// True when the leg was answered before it ended (not seen by 0.1 apps).
    pub answered: bool,
}

/// What a finished `say` or `play` reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MediaFinished {
    /// The id that `say` or `play` returned.
    pub id: MediaId,
    /// True when every loop played to its end.
    pub played_completely: bool,
    /// The key that stopped it, when `stop-on-dtmf` did.
    pub digit: Option<String>,
}

/// Why a digit collection finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CollectEnd {
    /// `max-digits` digits were collected.
    MaxDigits,
    /// The terminator key was pressed.
    Terminator,
    /// The inter-digit timeout ran out.
    Timeout,
    /// The leg ended or the app started another collection.
    Cancelled,
}

/// The result of a `collect-dtmf`, given to `on-dtmf-collected`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CollectedDigits {
    /// The digits in the order pressed, without the terminator.
    pub digits: String,
    /// Why the collection finished.
    pub end: CollectEnd,
}

/// A finished recording, given to `on-recording-ready`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordingInfo {
    /// The id `start-recording` returned.
    pub id: String,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// How many WAV files it produced.
    pub files: u32,
}

/// Validated options of a `say` request.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SayOptions {
    /// A BCP 47 language tag; `None` means English.
    pub language: Option<String>,
    /// A voice variant of the engine; `None` means the default voice.
    pub voice: Option<String>,
    /// How many times to speak the text, at least 1.
    pub loop_count: u32,
    /// Stop speaking when the caller presses a key.
    pub stop_on_dtmf: bool,
}

/// Validated options of a `play` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PlayOptions {
    /// How many times to play the file, at least 1.
    pub loop_count: u32,
    /// Where to start within the file, in milliseconds (first loop only).
    pub offset_ms: u32,
    /// Stop playing after this many milliseconds; `None` plays to the end.
    pub timeout_ms: Option<u32>,
    /// Stop playing when the caller presses a key.
    pub stop_on_dtmf: bool,
}

/// Validated options of a `collect-dtmf` request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CollectOptions {
    /// Finish once this many digits are collected (1 to 64).
    pub max_digits: u32,
    /// Finish when this key ('#' or '*') is pressed; it is not included in the digits.
    pub terminator: Option<char>,
    /// Finish when no digit arrives for this long, in milliseconds (at least 1).
    pub timeout_ms: u32,
}

/// Where a new leg goes (syntax checked; whether it exists is the call layer's business).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// A SIP URI starting with `sip:` or `sips:`, with a host.
    SipUri(String),
    /// A SIP user registered with the pbx, `[A-Za-z0-9._-]{1,64}`.
    User(String),
    /// A phone number through a trunk.
    Phone {
        /// Digits with an optional leading "+", `\+?[0-9*#]{1,32}`.
        number: String,
        /// The trunk's name; `None` tries every enabled trunk in priority order.
        trunk: Option<String>,
    },
}

/// Validated options of a new leg.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DialOptions {
    /// The caller's user part in From; `None` uses the session's caller or the trunk's rule.
    pub caller_id: Option<String>,
    /// The display name in From; `None` sends none.
    pub caller_name: Option<String>,
    /// How long the leg may ring, in milliseconds (1 to 600 000; 0 was turned into 60 000).
    pub connect_timeout_ms: u32,
    /// Extra `X-` headers for the INVITE (name, value), at most 16, printable ASCII.
    pub headers: Vec<(String, String)>,
}

/// How a stage of a group call rings its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RingStrategy {
    /// Every member rings at once; the first to answer wins, the others are cancelled.
    RingAll,
    /// Members ring one after another, each for the stage's timeout.
    Linear,
}

/// One validated stage of a group call.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GroupStage {
    /// The endpoints of this stage (1 to 32).
    pub members: Vec<Endpoint>,
    /// How they ring.
    pub strategy: RingStrategy,
    /// How long each ring lasts in milliseconds (0 was turned into 20 000).
    pub timeout_ms: u32,
}

/// The role of a conference participant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParticipantRole {
    /// An ordinary participant.
    Participant,
    /// A moderator; see [`ConferenceOptions::end_when_moderator_leaves`].
    Moderator,
}

/// Validated options of a new conference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConferenceOptions {
    /// A name shown in the admin API.
    pub name: Option<String>,
    /// An uploaded file (known to exist) played to a lone participant; `None` is built-in music.
    pub music_file: Option<String>,
    /// Play music to a participant who is alone.
    pub music_when_alone: bool,
    /// End the conference when the last moderator leaves.
    pub end_when_moderator_leaves: bool,
    /// Most participants at once, 2 to 100 (0 was turned into 100).
    pub max_participants: u32,
}

/// Options for joining a conference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JoinOptions {
    /// Join muted: the others do not hear this participant.
    pub muted: bool,
    /// Join deafened: this participant hears nothing from the conference.
    pub deafened: bool,
    /// The participant's role.
    pub role: ParticipantRole,
}

/// Which direction of a leg's audio `mute` acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MuteDirection {
    /// What the leg says: nobody hears it.
    Inbound,
    /// What the leg hears: it hears silence.
    Outbound,
    /// Both.
    Both,
}

/// What a recording captures.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordTarget {
    /// One answered leg.
    Call(String),
    /// The bridge an answered leg is in.
    Bridge(String),
    /// A live conference of this session.
    Conference(String),
}

/// Validated options of a recording.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordOptions {
    /// One WAV file per participant instead of one mixed file.
    pub per_participant: bool,
    /// A stereo mixed file (never set together with `per_participant`).
    pub stereo: bool,
    /// Stop by itself after this many milliseconds (0 was turned into 3 600 000).
    pub max_duration_ms: u32,
    /// Free-form metadata (name, value), at most 16 pairs.
    pub metadata: Vec<(String, String)>,
}

/// Something that happened in the session, delivered to the app with
/// [`AppInstance::deliver`](crate::AppInstance::deliver).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `on-call-received`: the call that starts the session.
    CallReceived(CallInfo),
    /// `on-call-ringing`: a dialled leg is ringing (180).
    CallRinging {
        /// The leg.
        call: String,
    },
    /// `on-call-early-media`: a dialled leg sent early media (183 with SDP).
    CallEarlyMedia {
        /// The leg.
        call: String,
    },
    /// `on-call-answered`: a dialled leg answered; the mirror moves it to `Answered`.
    CallAnswered {
        /// The leg.
        call: String,
    },
    /// `on-dtmf`: a party pressed a key.
    Dtmf {
        /// The leg.
        call: String,
        /// "0"-"9", "*", "#", "A"-"D".
        digit: String,
    },
    /// `on-say-finished`.
    SayFinished {
        /// The leg.
        call: String,
        /// Which request and how it ended.
        finished: MediaFinished,
    },
    /// `on-play-finished` (also for `play-music`).
    PlayFinished {
        /// The leg.
        call: String,
        /// Which request and how it ended.
        finished: MediaFinished,
    },
    /// `on-dtmf-collected`.
    Collected {
        /// The leg.
        call: String,
        /// The digits.
        collected: CollectedDigits,
    },
    /// `on-call-finished`, the last event of a leg; the mirror moves it to `Finished` first.
    CallFinished {
        /// The leg.
        call: String,
        /// How it ended.
        ended: CallEnded,
    },
    /// `on-participant-joining`.
    ParticipantJoining {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
    },
    /// `on-participant-joined`.
    ParticipantJoined {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
    },
    /// `on-participant-join-failed`.
    ParticipantJoinFailed {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
        /// Why it could not join.
        reason: String,
    },
    /// `on-participant-left`.
    ParticipantLeft {
        /// The conference.
        conference: String,
        /// The leg.
        call: String,
    },
    /// `on-conference-finished`; the mirror forgets the conference first.
    ConferenceFinished {
        /// The conference.
        conference: String,
    },
    /// `on-conference-media-finished`.
    ConferenceMediaFinished {
        /// The conference.
        conference: String,
        /// Which request and how it ended.
        finished: MediaFinished,
    },
    /// `on-recording-ready`; the mirror forgets the recording first.
    RecordingReady(RecordingInfo),
    /// `on-timer`; the mirror forgets the timer first.
    Timer {
        /// The id `set-timer` returned.
        id: TimerId,
        /// The tag given to `set-timer`.
        tag: String,
    },
    /// `on-hand-over-result`, the outcome of [`Action::HandOver`] (skipped for 0.1 apps).
    /// Accepted: the mirror marks the leg `Finished` first, as for `CallFinished`. Refused:
    /// the host calls `set_leg` with the leg's real phase before delivering it (a leg still
    /// `HandingOver` then goes back to the phase it had when the app asked).
    HandOverResult {
        /// The leg.
        call: String,
        /// True when the other app took the leg; it has left this session.
        accepted: bool,
        /// Why it was refused or failed (the other app's reason, no such app, ...).
        reason: Option<String>,
    },
    /// `on-http-response`, the outcome of [`Action::HttpRequest`] (0.3 apps only). Delivered
    /// only for a request of this session still in flight; the request then no longer counts
    /// against the session's limit.
    HttpResponse {
        /// The id the request was queued with.
        id: RequestId,
        /// The response, or why there was none.
        result: Result<HttpResponse, HttpError>,
    },
}

impl Event {
    /// The WIT export this event calls, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Event::CallReceived(_) => "on-call-received",
            Event::CallRinging { .. } => "on-call-ringing",
            Event::CallEarlyMedia { .. } => "on-call-early-media",
            Event::CallAnswered { .. } => "on-call-answered",
            Event::Dtmf { .. } => "on-dtmf",
            Event::SayFinished { .. } => "on-say-finished",
            Event::PlayFinished { .. } => "on-play-finished",
            Event::Collected { .. } => "on-dtmf-collected",
            Event::CallFinished { .. } => "on-call-finished",
            Event::ParticipantJoining { .. } => "on-participant-joining",
            Event::ParticipantJoined { .. } => "on-participant-joined",
            Event::ParticipantJoinFailed { .. } => "on-participant-join-failed",
            Event::ParticipantLeft { .. } => "on-participant-left",
            Event::ConferenceFinished { .. } => "on-conference-finished",
            Event::ConferenceMediaFinished { .. } => "on-conference-media-finished",
            Event::RecordingReady(_) => "on-recording-ready",
            Event::Timer { .. } => "on-timer",
            Event::HandOverResult { .. } => "on-hand-over-result",
            Event::HttpResponse { .. } => "on-http-response",
        }
    }
}

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
    /// Send an HTTP request off the session's task and deliver [`Event::HttpResponse`] with
    /// the same id when it completes (or fails, or times out). The URL's host passed the
    /// app's allow-list; do not follow redirects (they could leave it).
    HttpRequest {
        /// The session-unique id the app got back from `http.send`.
        id: RequestId,
        /// The checked request.
        request: HttpRequest,
    },
}

/// The host's identifier of one HTTP request, unique within a session.
pub type RequestId = u64;

/// An HTTP method `http.send` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HttpMethod {
    /// GET
    Get,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
    /// HEAD
    Head,
}

impl HttpMethod {
    /// The method as it goes on the wire (`GET`, `POST`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
            HttpMethod::Head => "HEAD",
        }
    }

    /// Parses an upper-case method name; `None` for any other method.
    pub fn parse(method: &str) -> Option<HttpMethod> {
        Some(match method {
            "GET" => HttpMethod::Get,
            "POST" => HttpMethod::Post,
            "PUT" => HttpMethod::Put,
            "PATCH" => HttpMethod::Patch,
            "DELETE" => HttpMethod::Delete,
            "HEAD" => HttpMethod::Head,
            _ => return None,
        })
    }
}

/// A checked outbound HTTP request, in [`Action::HttpRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method.
    pub method: HttpMethod,
    /// An absolute `http`/`https` URL, normalised (as `url::Url` serialises it), without
    /// user info; its host passed the allow-list.
    pub url: String,
    /// Headers (name, value): token names, printable values, no hop-by-hop or `host`
    /// headers; at most 32.
    pub headers: Vec<(String, String)>,
    /// The body, at most 1 MiB.
    pub body: Option<Vec<u8>>,
    /// How long the whole exchange may take: the app's `timeout-ms` clamped to
    /// [`Capabilities::http_timeout`](crate::Capabilities::http_timeout).
    pub timeout: Duration,
    /// Read at most this many body bytes; a longer body ends the request with
    /// [`HttpError::TooLarge`].
    pub max_response_bytes: usize,
}

/// A response to deliver in [`Event::HttpResponse`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Response headers (name in lower case, value); values that are not UTF-8 are best
    /// dropped.
    pub headers: Vec<(String, String)>,
    /// The body (at most the request's `max_response_bytes`).
    pub body: Vec<u8>,
}

/// Why an HTTP request got no response, in [`Event::HttpResponse`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// No complete response within the request's timeout.
    #[error("timed out")]
    Timeout,
    /// The response body was over the request's `max_response_bytes`.
    #[error("response too large")]
    TooLarge,
    /// The server could not be reached (DNS, TCP or TLS).
    #[error("connection failed: {0}")]
    ConnectionFailed(String),
    /// The server's answer was not a valid HTTP response.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
}

impl From<&HttpResponse> for wit_http::HttpResponse {
    fn from(r: &HttpResponse) -> Self {
        wit_http::HttpResponse {
            status: r.status,
            headers: r.headers.clone(),
            body: r.body.clone(),
        }
    }
}

impl From<&HttpError> for wit_http::HttpError {
    fn from(e: &HttpError) -> Self {
        match e {
            HttpError::Timeout => wit_http::HttpError::Timeout,
            HttpError::TooLarge => wit_http::HttpError::TooLarge,
            HttpError::ConnectionFailed(m) => wit_http::HttpError::ConnectionFailed(m.clone()),
            HttpError::InvalidResponse(m) => wit_http::HttpError::InvalidResponse(m.clone()),
        }
    }
}

// ---- plain → 0.3 (and 0.2) bindings (events) ----

impl From<Direction> for wit::Direction {
    fn from(d: Direction) -> Self {
        match d {
            Direction::Inbound => wit::Direction::Inbound,
            Direction::Outbound => wit::Direction::Outbound,
        }
    }
}

impl From<&CallInfo> for wit::CallInfo {
    fn from(c: &CallInfo) -> Self {
        wit::CallInfo {
            id: c.id.clone(),
            direction: c.direction.into(),
            from: c.from.clone(),
            to: c.to.clone(),
            caller_name: c.caller_name.clone(),
            config: c.config.clone(),
            handed_over: c.handed_over.as_ref().map(|h| wit::HandOverInfo {
                from_app: h.from_app.clone(),
                data: h.data.clone(),
            }),
        }
    }
}

impl From<HangupBy> for wit::HangupBy {
    fn from(h: HangupBy) -> Self {
        match h {
            HangupBy::Local => wit::HangupBy::Local,
            HangupBy::Remote => wit::HangupBy::Remote,
        }
    }
}

impl From<HangupReason> for wit::HangupReason {
    fn from(r: HangupReason) -> Self {
        match r {
            HangupReason::Normal => wit::HangupReason::Normal,
            HangupReason::Failed => wit::HangupReason::Failed,
            HangupReason::Busy => wit::HangupReason::Busy,
            HangupReason::Cancel => wit::HangupReason::Cancel,
            HangupReason::Timeout => wit::HangupReason::Timeout,
            HangupReason::Noanswer => wit::HangupReason::Noanswer,
            HangupReason::AppError => wit::HangupReason::AppError,
            HangupReason::Rejected => wit::HangupReason::Rejected,
            HangupReason::Admin => wit::HangupReason::Admin,
        }
    }
}

impl From<CallEnded> for wit::CallEnded {
    fn from(e: CallEnded) -> Self {
        wit::CallEnded {
            hangup_by: e.hangup_by.into(),
            hangup_reason: e.hangup_reason.into(),
            sip_status: e.sip_status,
            answered: e.answered,
        }
    }
}

impl From<&MediaFinished> for wit::MediaFinished {
    fn from(m: &MediaFinished) -> Self {
        wit::MediaFinished {
            id: m.id,
            played_completely: m.played_completely,
            digit: m.digit.clone(),
        }
    }
}

impl From<CollectEnd> for wit::CollectEnd {
    fn from(e: CollectEnd) -> Self {
        match e {
            CollectEnd::MaxDigits => wit::CollectEnd::MaxDigits,
            CollectEnd::Terminator => wit::CollectEnd::Terminator,
            CollectEnd::Timeout => wit::CollectEnd::Timeout,
            CollectEnd::Cancelled => wit::CollectEnd::Cancelled,
        }
    }
}

impl From<&CollectedDigits> for wit::CollectedDigits {
    fn from(c: &CollectedDigits) -> Self {
        wit::CollectedDigits {
            digits: c.digits.clone(),
            end: c.end.into(),
        }
    }
}

impl From<&RecordingInfo> for wit::RecordingInfo {
    fn from(r: &RecordingInfo) -> Self {
        wit::RecordingInfo {
            id: r.id.clone(),
            duration_ms: r.duration_ms,
            files: r.files,
        }
    }
}

// ---- 0.3 (and 0.2) bindings → plain (import arguments with no checks of their own) ----

impl From<wit::Direction> for Direction {
    fn from(d: wit::Direction) -> Self {
        match d {
            wit::Direction::Inbound => Direction::Inbound,
            wit::Direction::Outbound => Direction::Outbound,
        }
    }
}

impl From<wit::RingStrategy> for RingStrategy {
    fn from(s: wit::RingStrategy) -> Self {
        match s {
            wit::RingStrategy::RingAll => RingStrategy::RingAll,
            wit::RingStrategy::Linear => RingStrategy::Linear,
        }
    }
}

impl From<wit::ParticipantRole> for ParticipantRole {
    fn from(r: wit::ParticipantRole) -> Self {
        match r {
            wit::ParticipantRole::Participant => ParticipantRole::Participant,
            wit::ParticipantRole::Moderator => ParticipantRole::Moderator,
        }
    }
}

impl From<wit::JoinOptions> for JoinOptions {
    fn from(o: wit::JoinOptions) -> Self {
        JoinOptions {
            muted: o.muted,
            deafened: o.deafened,
            role: o.role.into(),
        }
    }
}

impl From<wit::MuteDirection> for MuteDirection {
    fn from(d: wit::MuteDirection) -> Self {
        match d {
            wit::MuteDirection::Inbound => MuteDirection::Inbound,
            wit::MuteDirection::Outbound => MuteDirection::Outbound,
            wit::MuteDirection::Both => MuteDirection::Both,
        }
    }
}
