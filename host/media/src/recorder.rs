//! Streaming WAV recording (8 kHz, 16-bit PCM, mono or stereo) of a leg, a bridge or a
//! conference, written frame by frame so a call is never held in memory.
//!
//! Invariants: samples go to the writer as they arrive (one buffered write per frame; wrap a
//! file in a `BufWriter`, as the shell does); the header's sizes are patched on
//! [`WavRecorder::flush`] and [`WavRecorder::finish`] (and, best effort, on drop), so a crash
//! loses at most what came after the last flush. A recording never exceeds the 4 GiB a WAV
//! header can describe ([`RecordError::TooLong`], about 74 hours mono). The sample rate is
//! [`RATE`]: the graph's rate.

use std::io::{Seek, Write};

use thiserror::Error;

/// The sample rate of every recording.
pub const RATE: u32 = 8000;
/// The largest data chunk we write (bytes), under the 32-bit RIFF limits with room for the
/// header.
const MAX_DATA_BYTES: u64 = u32::MAX as u64 - 4096;

/// Why a recording failed.
#[derive(Debug, Error)]
pub enum RecordError {
    /// Only mono and stereo recordings exist.
    #[error("a recording has 1 or 2 channels, not {0}")]
    Channels(u16),
    /// `write_mono` on a stereo recording or `write_stereo` on a mono one.
    #[error("this recording has {0} channel(s)")]
    WrongChannels(u16),
    /// The WAV size limit was reached; the file so far is still valid after `finish`.
    #[error("the recording reached the WAV size limit")]
    TooLong,
    /// Writing failed.
    #[error("writing the recording failed: {0}")]
    Wav(#[from] hound::Error),
    /// Opening the file failed.
    #[error("creating the recording file failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A WAV file being recorded: feed it one frame per tick, then [`WavRecorder::finish`] it.
pub struct WavRecorder<W: Write + Seek> {
    writer: hound::WavWriter<W>,
    channels: u16,
    /// Samples per channel written so far.
    frames: u64,
}

impl<W: Write + Seek> std::fmt::Debug for WavRecorder<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WavRecorder")
            .field("channels", &self.channels)
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

impl<W: Write + Seek> WavRecorder<W> {
    /// Starts a recording at the writer's position 0 (8 kHz, 16-bit, `channels` 1 or 2). The
    /// writer should be buffered: every frame is one `write_all`.
    pub fn new(w: W, channels: u16) -> Result<Self, RecordError> {
        if !(1..=2).contains(&channels) {
            return Err(RecordError::Channels(channels));
        }
        let spec = hound::WavSpec {
            channels,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        Ok(WavRecorder {
            writer: hound::WavWriter::new(w, spec)?,
            channels,
            frames: 0,
        })
    }

    /// Channels (1 or 2).
    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Appends mono samples (a mono recording only).
    pub fn write_mono(&mut self, frame: &[i16]) -> Result<(), RecordError> {
        if self.channels != 1 {
            return Err(RecordError::WrongChannels(self.channels));
        }
        self.reserve(frame.len())?;
        let mut w = self.writer.get_i16_writer(frame.len() as u32);
        for &s in frame {
            w.write_sample(s);
        }
        w.flush()?;
        self.frames += frame.len() as u64;
        Ok(())
    }

    /// Appends a stereo frame (a stereo recording only): `left` and `right` interleaved; the
    /// shorter side is padded with silence.
    pub fn write_stereo(&mut self, left: &[i16], right: &[i16]) -> Result<(), RecordError> {
        if self.channels != 2 {
            return Err(RecordError::WrongChannels(self.channels));
        }
        let n = left.len().max(right.len());
        self.reserve(n)?;
        let mut w = self.writer.get_i16_writer((2 * n) as u32);
        for i in 0..n {
            w.write_sample(left.get(i).copied().unwrap_or(0));
            w.write_sample(right.get(i).copied().unwrap_or(0));
        }
        w.flush()?;
        self.frames += n as u64;
        Ok(())
    }

    /// Milliseconds recorded so far.
    pub fn duration_ms(&self) -> u64 {
        self.frames * 1000 / u64::from(RATE)
    }

    /// Makes the file valid up to here (patches the header and flushes the writer); a
    /// checkpoint the shell can take every few seconds.
    pub fn flush(&mut self) -> Result<(), RecordError> {
        self.writer.flush()?;
        Ok(())
    }

    /// Completes the file; returns its duration in milliseconds.
    pub fn finish(self) -> Result<u64, RecordError> {
        let ms = self.duration_ms();
        self.writer.finalize()?;
        Ok(ms)
    }

    /// Refuses a write of `samples_per_channel` that would pass the WAV size limit.
    fn reserve(&self, samples_per_channel: usize) -> Result<(), RecordError> {
        let bytes = (self.frames + samples_per_channel as u64) * 2 * u64::from(self.channels);
        if bytes > MAX_DATA_BYTES {
            return Err(RecordError::TooLong);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn read(bytes: &[u8]) -> (hound::WavSpec, Vec<i16>) {
        let mut r = hound::WavReader::new(Cursor::new(bytes)).unwrap();
        let spec = r.spec();
        let samples = r.samples::<i16>().map(Result::unwrap).collect();
        (spec, samples)
    }

    #[test]
    fn mono_round_trip() {
        let mut buf = Cursor::new(Vec::new());
        let mut rec = WavRecorder::new(&mut buf, 1).unwrap();
        let frame: Vec<i16> = (0..160).map(|i| i * 100 - 8000).collect();
        for _ in 0..50 {
            rec.write_mono(&frame).unwrap();
        }
        assert_eq!(rec.duration_ms(), 1000);
        assert!(matches!(
            rec.write_stereo(&frame, &frame),
            Err(RecordError::WrongChannels(1))
        ));
        assert_eq!(rec.finish().unwrap(), 1000);
        let (spec, samples) = read(buf.get_ref());
        assert_eq!(
            (spec.channels, spec.sample_rate, spec.bits_per_sample),
            (1, 8000, 16)
        );
        assert_eq!(samples.len(), 8000);
        assert_eq!(&samples[160..320], frame.as_slice());
    }

    #[test]
    fn stereo_round_trip_pads_the_short_side() {
        let mut buf = Cursor::new(Vec::new());
        let mut rec = WavRecorder::new(&mut buf, 2).unwrap();
        rec.write_stereo(&[1, 2, 3], &[-1, -2]).unwrap();
        rec.write_stereo(&[4], &[-4]).unwrap();
        assert!(matches!(
            rec.write_mono(&[0]),
            Err(RecordError::WrongChannels(2))
        ));
        assert_eq!(rec.finish().unwrap(), 0);
        let (spec, samples) = read(buf.get_ref());
        assert_eq!(spec.channels, 2);
        assert_eq!(samples, vec![1, -1, 2, -2, 3, 0, 4, -4]);
    }

    #[test]
    fn flush_makes_a_valid_file_midway_and_drop_finalizes() {
        let mut buf = Cursor::new(Vec::new());
        {
            let mut rec = WavRecorder::new(&mut buf, 1).unwrap();
            rec.write_mono(&[7; 160]).unwrap();
            rec.flush().unwrap();
            rec.write_mono(&[8; 160]).unwrap();
            // Dropped without finish: hound patches the header on drop.
        }
        let (_, samples) = read(buf.get_ref());
        assert_eq!(samples.len(), 320);
        assert!(matches!(
            WavRecorder::new(Cursor::new(Vec::new()), 3),
            Err(RecordError::Channels(3))
        ));
    }

    #[test]
    fn size_limit_is_enforced() {
        let mut rec = WavRecorder::new(Cursor::new(Vec::new()), 2).unwrap();
        rec.frames = MAX_DATA_BYTES / 4 - 10;
        assert!(matches!(
            rec.write_stereo(&[0; 160], &[0; 160]),
            Err(RecordError::TooLong)
        ));
        // Dropping without data would write a header claiming nothing; fine.
    }
}
