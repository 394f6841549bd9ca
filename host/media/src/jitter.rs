//! A small fixed-depth jitter buffer keyed by RTP sequence number.
//!
//! Invariants: all storage is allocated in [`JitterBuffer::new`]; `push` and `pop` never
//! allocate. Frames come out in sequence order, one per `pop` (one per 20 ms tick); a packet
//! older than the next frame to play is dropped as late; playout starts (and restarts after
//! the buffer runs dry) only once `depth` frames are buffered. Time is the caller's tick.

/// What a [`JitterBuffer::pop`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pop {
    /// A frame of this many samples was written to the output.
    Frame(usize),
    /// The frame due now never arrived (lost or late); the output is silence.
    Missing,
    /// Still filling up to the configured depth; the output is silence.
    Buffering,
}

/// What a [`JitterBuffer::push`] did with a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Stored for playout.
    Stored,
    /// Older than the frame due next: dropped.
    Late,
    /// Already buffered: dropped.
    Duplicate,
}

/// Counters for diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterStats {
    /// Frames played.
    pub played: u64,
    /// Frames due but absent.
    pub missing: u64,
    /// Packets dropped as late.
    pub late: u64,
    /// Packets dropped as duplicates.
    pub duplicate: u64,
    /// Buffered frames skipped because a packet arrived too far ahead.
    pub overflow: u64,
}

#[derive(Debug)]
struct Slot {
    seq: Option<u16>,
    len: usize,
    samples: Box<[i16]>,
}

/// Reorders audio frames by sequence number and plays them out at a fixed delay.
#[derive(Debug)]
pub struct JitterBuffer {
    depth: usize,
    slots: Box<[Slot]>,
    next: Option<u16>,
    started: bool,
    buffered: usize,
    dry_pops: usize,
    stats: JitterStats,
}

/// Signed distance from `b` to `a` in sequence space (RFC 3550 A.1 wrap-around).
fn seq_delta(a: u16, b: u16) -> i32 {
    i32::from(a.wrapping_sub(b) as i16)
}

impl JitterBuffer {
    /// A buffer that delays playout by `depth` frames (at least 1) of up to `frame_len`
    /// samples each; it can hold twice `depth` frames.
    pub fn new(depth: usize, frame_len: usize) -> Self {
        let depth = depth.max(1);
        let slots = (0..depth * 2)
            .map(|_| Slot {
                seq: None,
                len: 0,
                samples: vec![0; frame_len].into_boxed_slice(),
            })
            .collect();
        JitterBuffer {
            depth,
            slots,
            next: None,
            started: false,
            buffered: 0,
            dry_pops: 0,
            stats: JitterStats::default(),
        }
    }

    /// The configured playout delay in frames.
    pub fn depth(&self) -> usize {
        self.depth
    }

    /// Frames currently held.
    pub fn len(&self) -> usize {
        self.buffered
    }

    /// True when no frame is held.
    pub fn is_empty(&self) -> bool {
        self.buffered == 0
    }

    /// Diagnostics counters.
    pub fn stats(&self) -> &JitterStats {
        &self.stats
    }

    /// Forgets everything buffered (for a new SSRC, or hold).
    pub fn reset(&mut self) {
        for s in self.slots.iter_mut() {
            s.seq = None;
        }
        self.next = None;
        self.started = false;
        self.buffered = 0;
        self.dry_pops = 0;
    }

    fn index(&self, seq: u16) -> usize {
        usize::from(seq) % self.slots.len()
    }

    fn clear_slot(&mut self, seq: u16) -> bool {
        let i = self.index(seq);
        if self.slots[i].seq == Some(seq) {
            self.slots[i].seq = None;
            self.buffered -= 1;
            true
        } else {
            false
        }
    }

    /// Stores the decoded frame of packet `seq` (samples beyond the frame length are dropped).
    pub fn push(&mut self, seq: u16, samples: &[i16]) -> Push {
        let cap = self.slots.len() as i32;
        match self.next {
            None => self.next = Some(seq),
            Some(next) => {
                let delta = seq_delta(seq, next);
                if delta < 0 {
                    if self.started || -delta + self.span(next) >= cap {
                        self.stats.late += 1;
                        return Push::Late;
                    }
                    // Reordered before playout began: start earlier.
                    self.next = Some(seq);
                } else if delta >= cap {
                    // Too far ahead: skip the oldest frames so that `seq` fits.
                    let new_next = seq.wrapping_sub(cap as u16 - 1);
                    if delta >= 2 * cap {
                        // Nothing buffered can survive the jump.
                        self.stats.overflow += self.buffered as u64;
                        for s in self.slots.iter_mut() {
                            s.seq = None;
                        }
                        self.buffered = 0;
                    } else {
                        let mut s = next;
                        while s != new_next {
                            if self.clear_slot(s) {
                                self.stats.overflow += 1;
                            }
                            s = s.wrapping_add(1);
                        }
                    }
                    self.next = Some(new_next);
                }
            }
        }
        let i = self.index(seq);
        let slot = &mut self.slots[i];
        if slot.seq == Some(seq) {
            self.stats.duplicate += 1;
            return Push::Duplicate;
        }
        if slot.seq.is_none() {
            self.buffered += 1;
        }
        let n = samples.len().min(slot.samples.len());
        slot.samples[..n].copy_from_slice(&samples[..n]);
        slot.len = n;
        slot.seq = Some(seq);
        Push::Stored
    }

    /// How far ahead of `next` the newest buffered frame lies (0 when empty).
    fn span(&self, next: u16) -> i32 {
        self.slots
            .iter()
            .filter_map(|s| s.seq)
            .map(|s| seq_delta(s, next))
            .max()
            .unwrap_or(0)
            .max(0)
    }

    /// Writes the frame due now into `out` (silence when there is none), one call per tick.
    pub fn pop(&mut self, out: &mut [i16]) -> Pop {
        let Some(next) = self.next else {
            out.fill(0);
            return Pop::Buffering;
        };
        if !self.started {
            if self.buffered < self.depth {
                out.fill(0);
                return Pop::Buffering;
            }
            self.started = true;
            self.dry_pops = 0;
        }
        self.next = Some(next.wrapping_add(1));
        let i = self.index(next);
        if self.slots[i].seq == Some(next) {
            let slot = &mut self.slots[i];
            let n = slot.len.min(out.len());
            out[..n].copy_from_slice(&slot.samples[..n]);
            out[n..].fill(0);
            slot.seq = None;
            self.buffered -= 1;
            self.stats.played += 1;
            self.dry_pops = 0;
            return Pop::Frame(n);
        }
        out.fill(0);
        self.stats.missing += 1;
        if self.buffered == 0 {
            self.dry_pops += 1;
            if self.dry_pops >= self.depth {
                // The stream paused (or ended): re-buffer before playing again.
                self.started = false;
                self.next = None;
            }
        }
        Pop::Missing
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u16) -> [i16; 4] {
        [seq as i16; 4]
    }

    /// Simulated network in virtual time: packet `seq` is sent at 20·seq ms and arrives after
    /// `delay(seq)` ms; the playout ticks every 20 ms. Returns the sequence of played frames
    /// (or None for silence) from the first played frame on.
    fn run(delays: &[(u16, u32)], depth: usize, ticks: u32) -> Vec<Option<i16>> {
        let mut jb = JitterBuffer::new(depth, 4);
        let mut arrivals: Vec<(u32, u16)> = delays
            .iter()
            .map(|&(seq, d)| (u32::from(seq) * 20 + d, seq))
            .collect();
        arrivals.sort();
        let mut played = Vec::new();
        let mut out = [0i16; 4];
        let mut a = 0;
        for tick in 0..ticks {
            let now = tick * 20 + 10;
            while a < arrivals.len() && arrivals[a].0 <= now {
                jb.push(arrivals[a].1, &frame(arrivals[a].1));
                a += 1;
            }
            match jb.pop(&mut out) {
                Pop::Frame(_) => played.push(Some(out[0])),
                Pop::Missing => played.push(None),
                Pop::Buffering => {}
            }
        }
        played
    }

    #[test]
    fn reorders_within_depth() {
        // 2 and 3 swap; 5 arrives 30 ms late but still in time for a 3-frame buffer.
        let delays = [
            (0, 5),
            (1, 5),
            (2, 25),
            (3, 5),
            (4, 5),
            (5, 35),
            (6, 5),
            (7, 5),
        ];
        let played = run(&delays, 3, 14);
        let got: Vec<i16> = played.iter().flatten().copied().collect();
        assert_eq!(got, vec![0, 1, 2, 3, 4, 5, 6, 7]);
    }

    #[test]
    fn drops_packets_later_than_the_buffer() {
        // Packet 3 arrives 200 ms late, after its playout slot passed.
        let delays = [(0, 5), (1, 5), (2, 5), (3, 200), (4, 5), (5, 5), (6, 5)];
        let played = run(&delays, 2, 12);
        assert_eq!(
            played[..7],
            [Some(0), Some(1), Some(2), None, Some(4), Some(5), Some(6)]
        );
    }

    #[test]
    fn late_push_reports_late() {
        let mut jb = JitterBuffer::new(1, 4);
        let mut out = [0i16; 4];
        assert_eq!(jb.push(10, &frame(10)), Push::Stored);
        assert_eq!(jb.pop(&mut out), Pop::Frame(4));
        assert_eq!(jb.push(9, &frame(9)), Push::Late);
        assert_eq!(jb.push(11, &frame(11)), Push::Stored);
        assert_eq!(jb.push(11, &frame(11)), Push::Duplicate);
        assert_eq!(jb.stats().late, 1);
        assert_eq!(jb.stats().duplicate, 1);
    }

    #[test]
    fn waits_for_depth_before_playing() {
        let mut jb = JitterBuffer::new(3, 4);
        let mut out = [7i16; 4];
        assert_eq!(jb.pop(&mut out), Pop::Buffering);
        assert_eq!(out, [0; 4]);
        jb.push(100, &frame(100));
        jb.push(101, &frame(101));
        assert_eq!(jb.pop(&mut out), Pop::Buffering);
        jb.push(102, &frame(102));
        assert_eq!(jb.pop(&mut out), Pop::Frame(4));
        assert_eq!(out[0], 100);
    }

    #[test]
    fn sequence_wraps_around() {
        let mut jb = JitterBuffer::new(2, 4);
        let mut out = [0i16; 4];
        for seq in [65534u16, 65535, 0, 1] {
            jb.push(seq, &frame(seq));
        }
        let mut got = Vec::new();
        for _ in 0..4 {
            assert!(matches!(jb.pop(&mut out), Pop::Frame(_)));
            got.push(out[0]);
        }
        assert_eq!(got, vec![-2, -1, 0, 1]);
    }

    #[test]
    fn jump_ahead_skips_oldest_and_rebuffers_after_silence() {
        let mut jb = JitterBuffer::new(2, 4);
        let mut out = [0i16; 4];
        jb.push(0, &frame(0));
        jb.push(1, &frame(1));
        // A jump of 1000 (peer restarted its stream) discards what was buffered.
        jb.push(1000, &frame(1000));
        assert_eq!(jb.stats().overflow, 2);
        assert_eq!(jb.len(), 1);
        // The stream pauses: after `depth` dry ticks the buffer re-buffers.
        let mut jb = JitterBuffer::new(2, 4);
        jb.push(0, &frame(0));
        jb.push(1, &frame(1));
        assert!(matches!(jb.pop(&mut out), Pop::Frame(_)));
        assert!(matches!(jb.pop(&mut out), Pop::Frame(_)));
        assert_eq!(jb.pop(&mut out), Pop::Missing);
        assert_eq!(jb.pop(&mut out), Pop::Missing);
        assert_eq!(jb.pop(&mut out), Pop::Buffering);
        jb.push(50, &frame(50));
        assert_eq!(jb.pop(&mut out), Pop::Buffering);
        jb.push(51, &frame(51));
        assert_eq!(jb.pop(&mut out), Pop::Frame(4));
        assert_eq!(out[0], 50);
    }

    #[test]
    fn short_frames_are_padded_and_long_ones_cut() {
        let mut jb = JitterBuffer::new(1, 4);
        let mut out = [9i16; 4];
        jb.push(1, &[5, 5]);
        assert_eq!(jb.pop(&mut out), Pop::Frame(2));
        assert_eq!(out, [5, 5, 0, 0]);
        jb.push(2, &[6; 10]);
        assert_eq!(jb.pop(&mut out), Pop::Frame(4));
        jb.reset();
        assert!(jb.is_empty());
        assert_eq!(jb.depth(), 1);
    }
}
