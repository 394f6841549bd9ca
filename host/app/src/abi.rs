//! The versions of the `pbx:app` contract a component can be built against.
//!
//! Invariants: the three versions are frozen WIT packages; a later version only adds to the
//! one before (0.3.0 is 0.2.0 plus capabilities), so one set of plain types serves all three.

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
