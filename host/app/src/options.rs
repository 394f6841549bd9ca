//! The validated options of the requests an app makes: media, digits, dialling, conferences,
//! mute and recordings.
//!
//! Invariants: these hold normalised values (a loop count of 0 becomes 1, a connect timeout
//! of 0 becomes 60 000 ms, ...) because the host validated them before queuing the action;
//! every bound stated on a field holds.

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
