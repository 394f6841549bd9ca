//! `pbx:app/recording@0.3.0`: recording a leg, a bridge or a conference, and stopping it.
//! This file owns the record options check and the session's recording limit.
//!
//! Invariants: a recording id names a recording of this session only (`rec_` and 16 random
//! hex digits); a session holds at most [`MAX_RECORDINGS`] live ones; a recording lasts at
//! most a day.

use super::{HostState, MAX_TIMER_MS, WitResult, cut, failed, invalid_arg, is_name, not_found};
use crate::bindings::v0_3::{recording, types as wit};
use pbx_app::{Action, RecordOptions, RecordTarget};

/// Live recordings of one session at once.
pub(crate) const MAX_RECORDINGS: usize = 8;
/// Longest recording, in milliseconds (0 means one hour; at most a day).
const DEFAULT_RECORD_MS: u32 = 3_600_000;
/// Most metadata pairs of one recording.
const MAX_METADATA: usize = 16;

impl recording::Host for HostState {
    fn start(
        &mut self,
        target: wit::RecordTarget,
        options: wit::RecordOptions,
    ) -> WitResult<String> {
        let target = match target {
            wit::RecordTarget::Call(call) => {
                self.need_answered(&call, "record")?;
                RecordTarget::Call(call)
            }
            wit::RecordTarget::Bridge(call) => {
                self.need_answered(&call, "record")?;
                RecordTarget::Bridge(call)
            }
            wit::RecordTarget::Conference(conference) => {
                self.need_conference(&conference)?;
                RecordTarget::Conference(conference)
            }
        };
        let opts = check_record_options(options)?;
        if self.recordings.len() >= MAX_RECORDINGS {
            return Err(failed(format!(
                "the session has {MAX_RECORDINGS} live recordings, the most it may have"
            )));
        }
        self.need_room()?;
        let id = loop {
            let id = format!("rec_{:016x}", rand::random::<u64>());
            if !self.recordings.contains(&id) {
                break id;
            }
        };
        self.push(Action::RecordStart {
            id: id.clone(),
            target,
            opts,
        })?;
        self.recordings.insert(id.clone());
        Ok(id)
    }

    fn stop(&mut self, recording: String) -> WitResult<()> {
        if !self.recordings.contains(&recording) {
            return Err(not_found(format!(
                "no live recording `{}` in this session",
                cut(&recording, 64)
            )));
        }
        self.push(Action::RecordStop {
            id: recording.clone(),
        })?;
        self.recordings.remove(&recording);
        Ok(())
    }
}

fn check_record_options(o: wit::RecordOptions) -> WitResult<RecordOptions> {
    if o.per_participant && o.stereo {
        return Err(invalid_arg(
            "stereo applies to a mixed recording, not per-participant files",
        ));
    }
    let max_duration_ms = match o.max_duration_ms {
        0 => DEFAULT_RECORD_MS,
        t if t <= MAX_TIMER_MS => t,
        t => {
            return Err(invalid_arg(format!(
                "max-duration-ms {t} is above {MAX_TIMER_MS}"
            )));
        }
    };
    if o.metadata.len() > MAX_METADATA {
        return Err(invalid_arg(format!(
            "{} metadata pairs; at most {MAX_METADATA}",
            o.metadata.len()
        )));
    }
    for (name, value) in &o.metadata {
        if !is_name(name) {
            return Err(invalid_arg(format!(
                "metadata name `{}` must be 1 to 64 of A-Z a-z 0-9 . _ -",
                cut(name, 64)
            )));
        }
        if value.chars().count() > 1024 || value.chars().any(char::is_control) {
            return Err(invalid_arg(format!(
                "metadata `{name}` value must be at most 1024 printable characters"
            )));
        }
    }
    Ok(RecordOptions {
        per_participant: o.per_participant,
        stereo: o.stereo,
        max_duration_ms,
        metadata: o.metadata,
    })
}
