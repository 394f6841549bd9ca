//! Starting and stopping a session's recordings (the frames are written on the media tick).
//! Invariant: every recording the app started ends with exactly one `on-recording-ready`.

use pbx_call::{TapLayout, TapTarget};

use super::*;

impl Session {
    // ----- recordings -----------------------------------------------------------------------

    pub(super) fn start_recording(
        &mut self,
        id: String,
        target: RecordTarget,
        opts: pbx_plugin::RecordOptions,
    ) {
        let live = match &target {
            RecordTarget::Call(c) | RecordTarget::Bridge(c) => self.live_leg(c).is_some(),
            RecordTarget::Conference(c) => self.conferences.iter().any(|conf| &conf.id == c),
        };
        if !live {
            // Its target ended in this same event: the recording is empty and ready at once.
            debug!(recording = %id, "recording target already ended");
            if let Some(app) = self.app.as_mut() {
                app.recording_stopped(&id);
            }
            self.events
                .push_back(Event::RecordingReady(pbx_plugin::RecordingInfo {
                    id,
                    duration_ms: 0,
                    files: 0,
                }));
            return;
        }
        let (call_id, conference_id, kind) = match &target {
            RecordTarget::Call(c) => (Some(c.clone()), None, pbx_store::RecordingTarget::Call),
            RecordTarget::Bridge(c) => (Some(c.clone()), None, pbx_store::RecordingTarget::Bridge),
            RecordTarget::Conference(c) => (
                None,
                Some(c.clone()),
                pbx_store::RecordingTarget::Conference,
            ),
        };
        let labels: Vec<(String, u16)> = if opts.per_participant {
            match &target {
                RecordTarget::Call(c) => vec![(c.clone(), 1), ("pbx".into(), 1)],
                RecordTarget::Bridge(c) => {
                    let peer = self.media.bridge_peer(c).unwrap_or_else(|| "peer".into());
                    vec![(c.clone(), 1), (peer, 1)]
                }
                RecordTarget::Conference(cid) => self
                    .conferences
                    .iter()
                    .find(|c| &c.id == cid)
                    .map(|c| c.participants.iter().map(|p| (p.call.clone(), 1)).collect())
                    .unwrap_or_default(),
            }
        } else {
            vec![("mixed".into(), if opts.stereo { 2 } else { 1 })]
        };
        let layout = if opts.per_participant {
            TapLayout::PerParticipant(labels.iter().map(|(label, _)| label.clone()).collect())
        } else if opts.stereo {
            TapLayout::Stereo
        } else {
            TapLayout::Mixed
        };
        let tap_target = match &target {
            RecordTarget::Call(c) => TapTarget::Leg(c.clone()),
            RecordTarget::Bridge(c) => TapTarget::Bridge(c.clone()),
            RecordTarget::Conference(c) => TapTarget::Room(c.clone()),
        };
        let tap = self
            .media
            .start_tap(tap_target, layout, Recording::max_frames(&opts));
        let mut rec = Recording {
            id: id.clone(),
            target: target.clone(),
            tap,
            files: Vec::new(),
            failed: false,
        };
        self.events.sink.publish(
            pbx_store::EventType::RecordingStarted,
            call_id.as_deref(),
            conference_id.as_deref(),
            serde_json::json!({ "recording_id": id, "target": kind.as_str() }),
        );
        let row = pbx_store::NewRecording {
            id: Some(id.clone()),
            account_id: self.account_id.clone(),
            app_id: self.app_id.clone().unwrap_or_default(),
            call_id,
            conference_id,
            target: kind,
            per_participant: opts.per_participant,
            stereo: opts.stereo,
            metadata: opts.metadata.iter().cloned().collect(),
        };
        if let Err(err) = self.calls.store.start_recording(row) {
            warn!(%err, "cannot store the recording");
            rec.failed = true;
        }
        for (i, (label, channels)) in labels.into_iter().enumerate() {
            let path = match self.calls.store.recording_path(&id, i as u32) {
                Ok(path) => path,
                Err(err) => {
                    warn!(%err, "no path for the recording");
                    rec.failed = true;
                    continue;
                }
            };
            let writer = std::fs::File::create(&path)
                .map_err(|e| e.to_string())
                .and_then(|f| {
                    WavRecorder::new(BufWriter::new(f), channels).map_err(|e| e.to_string())
                });
            let writer = match writer {
                Ok(w) => Some(w),
                Err(err) => {
                    warn!(%err, path = %path.display(), "cannot create recording file");
                    rec.failed = true;
                    None
                }
            };
            rec.files.push(RecFile {
                label,
                channels,
                index: i as u32,
                writer,
            });
        }
        debug!(recording = %id, "recording started");
        self.recordings.push(rec);
    }

    pub(super) fn stop_recording(&mut self, id: &str) {
        let Some(pos) = self.recordings.iter().position(|r| r.id == id) else {
            return;
        };
        let rec = self.recordings.remove(pos);
        let duration_ms = self.media.stop_tap(rec.tap).unwrap_or(0) * 20;
        let mut failed = rec.failed;
        let mut files = Vec::new();
        for file in rec.files {
            if let Some(writer) = file.writer
                && writer.finish().is_err()
            {
                failed = true;
            }
            files.push(pbx_store::RecordedFile {
                index: file.index,
                label: file.label,
                channels: file.channels,
            });
        }
        let count = files.len() as u32;
        let stored = if failed {
            self.calls.store.fail_recording(&rec.id).map(|_| ())
        } else {
            self.calls
                .store
                .finish_recording(&rec.id, duration_ms, files)
                .map(|_| ())
        };
        if let Err(err) = stored {
            warn!(%err, "cannot finish the recording");
        }
        if let Some(app) = self.app.as_mut() {
            app.recording_stopped(&rec.id);
        }
        debug!(recording = %rec.id, duration_ms, "recording ready");
        self.events
            .push_back(Event::RecordingReady(pbx_plugin::RecordingInfo {
                id: rec.id,
                duration_ms,
                files: count,
            }));
    }
}
