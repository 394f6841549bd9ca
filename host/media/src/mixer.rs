//! The N-1 conference mixer: every participant hears everyone else (and the announcement),
//! never itself, one 20 ms frame per tick.
//!
//! Invariants: `frame_len` is fixed at [`Mixer::new`]; buffers grow in [`Mixer::add`] only,
//! so [`Mixer::push`], [`Mixer::mix`] and the getters never allocate. A tick is O(N): all
//! contributions are summed once in `i32`, then each output is that sum minus the listener's
//! own contribution. Outputs never wrap: each output has a limiter (below), and the final
//! conversion to `i16` saturates. Unknown ids are ignored by mutators and hear silence.
//!
//! Clipping: a gain limiter per output, not a waveshaper. When a frame's peak would exceed
//! [`CEILING`] (-2.5 dBFS) the output's gain drops at once (ramped over [`ATTACK_SAMPLES`]) to
//! bring the peak to the ceiling, and recovers smoothly (about [`RELEASE_PER_FRAME`] of the
//! distance per frame, a ~300 ms time constant). Scaling keeps the waveform's shape, so two
//! loud talkers stay undistorted (only a little quieter); a soft knee above the ceiling
//! catches what the attack ramp lets through, and the final cast saturates.

use std::collections::HashMap;

/// The peak an output is limited to (-2.5 dBFS).
pub const CEILING: i32 = 24_576;
/// Samples over which the limiter's gain falls to its new value (4 ms at 8 kHz).
pub const ATTACK_SAMPLES: usize = 32;
/// How much of the distance to the target gain is recovered per 20 ms frame.
pub const RELEASE_PER_FRAME: f32 = 0.06;

/// One participant's state; its samples live in the mixer's flat buffers at `index * frame_len`.
#[derive(Debug, Clone, Copy)]
struct Slot {
    id: u64,
    muted: bool,
    deaf: bool,
    has_input: bool,
    gain: f32,
}

/// An N-1 mixer for a conference (or a recorded bridge): push each participant's frame, call
/// [`Mixer::mix`] once per tick, then read each participant's [`Mixer::output`].
#[derive(Debug)]
pub struct Mixer {
    frame_len: usize,
    slots: Vec<Slot>,
    index: HashMap<u64, usize>,
    /// Participant inputs, `frame_len` each; after `mix`, the mixed input (zero when muted).
    inputs: Vec<i16>,
    outputs: Vec<i16>,
    sum: Vec<i32>,
    mixed: Vec<i16>,
    mixed_gain: f32,
    announcement: Vec<i16>,
    has_announcement: bool,
    silence: Vec<i16>,
}

impl Mixer {
    /// An empty mixer for frames of `frame_len` samples (160 for 20 ms at 8 kHz).
    pub fn new(frame_len: usize) -> Self {
        Mixer {
            frame_len,
            slots: Vec::new(),
            index: HashMap::new(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            sum: vec![0; frame_len],
            mixed: vec![0; frame_len],
            mixed_gain: 1.0,
            announcement: vec![0; frame_len],
            has_announcement: false,
            silence: vec![0; frame_len],
        }
    }

    // ----- getters -----

    /// Samples per frame.
    pub fn frame_len(&self) -> usize {
        self.frame_len
    }

    /// True when `id` takes part.
    pub fn contains(&self, id: u64) -> bool {
        self.index.contains_key(&id)
    }

    /// Number of participants.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when nobody takes part.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The participants, in no particular order.
    pub fn ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.slots.iter().map(|s| s.id)
    }

    /// True when the others do not hear `id`.
    pub fn is_muted(&self, id: u64) -> bool {
        self.slot(id).is_some_and(|i| self.slots[i].muted)
    }

    /// True when `id` hears silence.
    pub fn is_deafened(&self, id: u64) -> bool {
        self.slot(id).is_some_and(|i| self.slots[i].deaf)
    }

    /// What `id` hears after the last [`Self::mix`]: everyone else's audio plus the
    /// announcement (silence when deafened or unknown).
    pub fn output(&self, id: u64) -> &[i16] {
        match self.slot(id) {
            Some(i) => &self.outputs[self.range(i)],
            None => &self.silence,
        }
    }

    /// Everyone (unmuted) plus the announcement, after the last [`Self::mix`]: what a
    /// recording of the whole conference captures.
    pub fn mixed(&self) -> &[i16] {
        &self.mixed
    }

    /// What `id` said in the last [`Self::mix`] (silence when muted, absent or unknown), for
    /// per-participant recordings. Before the first `mix` it is the frame just pushed.
    pub fn input(&self, id: u64) -> &[i16] {
        match self.slot(id) {
            Some(i) => &self.inputs[self.range(i)],
            None => &self.silence,
        }
    }

    // ----- mutators -----

    /// Adds a participant (unmuted, hearing); adding a present id changes nothing. This is
    /// where buffers grow, never per tick.
    pub fn add(&mut self, id: u64) {
        if self.index.contains_key(&id) {
            return;
        }
        self.index.insert(id, self.slots.len());
        self.slots.push(Slot {
            id,
            muted: false,
            deaf: false,
            has_input: false,
            gain: 1.0,
        });
        let len = self.inputs.len() + self.frame_len;
        self.inputs.resize(len, 0);
        self.outputs.resize(len, 0);
    }

    /// Removes a participant; unknown ids are ignored. Capacity is kept for the next add.
    pub fn remove(&mut self, id: u64) {
        let Some(i) = self.index.remove(&id) else {
            return;
        };
        let last = self.slots.len() - 1;
        self.slots.swap_remove(i);
        if i != last {
            let from = self.range(last);
            let to = i * self.frame_len;
            self.inputs.copy_within(from.clone(), to);
            self.outputs.copy_within(from, to);
            self.index.insert(self.slots[i].id, i);
        }
        let len = last * self.frame_len;
        self.inputs.truncate(len);
        self.outputs.truncate(len);
    }

    /// Mutes or unmutes `id`: while muted, nobody (nor the mixed recording) hears it.
    pub fn set_muted(&mut self, id: u64, muted: bool) {
        if let Some(i) = self.slot(id) {
            self.slots[i].muted = muted;
        }
    }

    /// Deafens or undeafens `id`: while deafened it hears silence, announcements included.
    pub fn set_deafened(&mut self, id: u64, deaf: bool) {
        if let Some(i) = self.slot(id) {
            self.slots[i].deaf = deaf;
        }
    }

    /// Sets `id`'s input for this tick (a participant that pushes nothing is silent). A short
    /// frame is padded with silence, a long one cut; a second push in a tick replaces the first.
    pub fn push(&mut self, id: u64, frame: &[i16]) {
        let Some(i) = self.slot(id) else {
            tracing::trace!(id, "mixer input for an unknown participant");
            return;
        };
        let r = self.range(i);
        copy_padded(frame, &mut self.inputs[r]);
        self.slots[i].has_input = true;
    }

    /// Sets this tick's announcement (a prompt or music played into the conference), heard by
    /// every participant that is not deafened and by the mixed recording.
    pub fn push_announcement(&mut self, frame: &[i16]) {
        copy_padded(frame, &mut self.announcement);
        self.has_announcement = true;
    }

    /// Computes this tick's outputs from the pushed inputs, then forgets the inputs: the next
    /// tick starts with everyone silent and no announcement.
    pub fn mix(&mut self) {
        let n = self.frame_len;
        if self.has_announcement {
            for (s, &a) in self.sum.iter_mut().zip(&self.announcement) {
                *s = i32::from(a);
            }
        } else {
            self.sum.fill(0);
        }
        for (slot, input) in self
            .slots
            .iter()
            .zip(self.inputs.chunks_exact_mut(n.max(1)))
        {
            if !slot.has_input || slot.muted {
                // Silent this tick: nothing to add, and `input()` reports silence.
                input.fill(0);
                continue;
            }
            for (s, &x) in self.sum.iter_mut().zip(input.iter()) {
                *s += i32::from(x);
            }
        }
        for ((slot, input), output) in self
            .slots
            .iter_mut()
            .zip(self.inputs.chunks_exact(n.max(1)))
            .zip(self.outputs.chunks_exact_mut(n.max(1)))
        {
            if slot.deaf {
                output.fill(0);
            } else {
                // Muted or silent participants have a zero input, so subtracting is exact.
                render(&self.sum, input, output, &mut slot.gain);
            }
            slot.has_input = false;
        }
        render(
            &self.sum,
            &self.silence,
            &mut self.mixed,
            &mut self.mixed_gain,
        );
        self.has_announcement = false;
    }

    fn slot(&self, id: u64) -> Option<usize> {
        self.index.get(&id).copied()
    }

    fn range(&self, i: usize) -> std::ops::Range<usize> {
        i * self.frame_len..(i + 1) * self.frame_len
    }
}

fn copy_padded(frame: &[i16], dst: &mut [i16]) {
    let n = frame.len().min(dst.len());
    dst[..n].copy_from_slice(&frame[..n]);
    dst[n..].fill(0);
}

/// Writes `sum - own` into `out` through the output's limiter (see the module docs).
fn render(sum: &[i32], own: &[i16], out: &mut [i16], gain: &mut f32) {
    let peak = sum
        .iter()
        .zip(own)
        .map(|(&s, &o)| (s - i32::from(o)).abs())
        .max()
        .unwrap_or(0);
    let g0 = *gain;
    if peak <= CEILING && g0 >= 1.0 {
        // The common case: nothing near full scale and no gain reduction in progress.
        for ((o, &s), &x) in out.iter_mut().zip(sum).zip(own) {
            *o = (s - i32::from(x)) as i16;
        }
        return;
    }
    let target = if peak > CEILING {
        CEILING as f32 / peak as f32
    } else {
        1.0
    };
    let attack = target < g0;
    let mut g1 = if attack {
        target
    } else {
        g0 + (target - g0) * RELEASE_PER_FRAME
    };
    if g1 > 0.999 {
        g1 = 1.0;
    }
    let len = out.len().max(1) as f32;
    for (i, ((o, &s), &x)) in out.iter_mut().zip(sum).zip(own).enumerate() {
        let g = if attack {
            if i < ATTACK_SAMPLES {
                g0 + (g1 - g0) * (i + 1) as f32 / ATTACK_SAMPLES as f32
            } else {
                g1
            }
        } else {
            g0 + (g1 - g0) * (i + 1) as f32 / len
        };
        *o = soft_knee((s - i32::from(x)) as f32 * g);
    }
    *gain = g1;
}

/// Identity up to [`CEILING`], then a smooth curve that approaches full scale without
/// reaching it (slope 1 at the knee); the cast saturates in any case.
fn soft_knee(x: f32) -> i16 {
    let a = x.abs();
    let k = CEILING as f32;
    if a <= k {
        return x as i16;
    }
    let h = f32::from(i16::MAX) - k;
    let d = a - k;
    let y = k + d * h / (d + h);
    (y.copysign(x)) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: usize = 160;

    fn tone(freq: f64, amp: f64, tick: usize) -> Vec<i16> {
        (0..N)
            .map(|i| {
                let t = (tick * N + i) as f64 / 8000.0;
                (amp * (2.0 * std::f64::consts::PI * freq * t).sin()) as i16
            })
            .collect()
    }

    /// Mean power of the `freq` component of `x` (Goertzel): about A²/2 for a sine of
    /// amplitude A that fills whole periods.
    fn goertzel(x: &[i16], freq: f64) -> f64 {
        let w = 2.0 * std::f64::consts::PI * freq / 8000.0;
        let c = 2.0 * w.cos();
        let (mut s1, mut s2) = (0.0, 0.0);
        for &v in x {
            let s = f64::from(v) + c * s1 - s2;
            s2 = s1;
            s1 = s;
        }
        2.0 * (s1 * s1 + s2 * s2 - c * s1 * s2) / (x.len() as f64).powi(2)
    }

    fn energy(x: &[i16]) -> f64 {
        x.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>() / x.len() as f64
    }

    /// Runs `ticks` ticks with participant `id` playing `freqs[id]`; returns what each heard.
    fn run(m: &mut Mixer, freqs: &[(u64, f64)], amp: f64, ticks: usize) -> Vec<Vec<i16>> {
        let mut heard = vec![Vec::new(); freqs.len()];
        for tick in 0..ticks {
            for &(id, f) in freqs {
                m.push(id, &tone(f, amp, tick));
            }
            m.mix();
            for (h, &(id, _)) in heard.iter_mut().zip(freqs) {
                h.extend_from_slice(m.output(id));
            }
        }
        heard
    }

    #[test]
    fn each_hears_the_others_and_not_itself() {
        let mut m = Mixer::new(N);
        for id in 1..=3 {
            m.add(id);
        }
        let freqs = [(1, 400.0), (2, 700.0), (3, 1100.0)];
        let heard = run(&mut m, &freqs, 8000.0, 10);
        for (i, h) in heard.iter().enumerate() {
            for (j, &(_, f)) in freqs.iter().enumerate() {
                let p = goertzel(h, f);
                if i == j {
                    assert!(p < 1e2, "{i} hears itself: {p}");
                } else {
                    assert!(p > 1e6, "{i} does not hear {j}: {p}");
                }
            }
        }
        // The mixed output has everyone.
        for &(_, f) in &freqs {
            assert!(goertzel(m.mixed(), f) > 1e5);
        }
        assert_eq!(m.input(2), tone(700.0, 8000.0, 9).as_slice());
    }

    #[test]
    fn mute_and_deafen() {
        let mut m = Mixer::new(N);
        for id in 1..=3 {
            m.add(id);
        }
        m.set_muted(2, true);
        m.set_deafened(3, true);
        assert!(m.is_muted(2) && m.is_deafened(3) && !m.is_muted(1));
        let freqs = [(1, 400.0), (2, 700.0), (3, 1100.0)];
        let heard = run(&mut m, &freqs, 8000.0, 5);
        // Nobody hears 2; 3 hears nothing; 1 hears 3 only; 2 hears 1 and 3.
        assert!(goertzel(&heard[0], 700.0) < 1e3);
        assert!(goertzel(&heard[0], 1100.0) > 1e6);
        assert!(heard[2].iter().all(|&s| s == 0));
        assert!(goertzel(&heard[1], 400.0) > 1e6);
        assert!(goertzel(&heard[1], 1100.0) > 1e6);
        assert!(goertzel(m.mixed(), 700.0) < 1e3);
        assert!(m.input(2).iter().all(|&s| s == 0), "muted input is silence");
        // Unmuting brings 2 back.
        m.set_muted(2, false);
        let heard = run(&mut m, &freqs, 8000.0, 5);
        assert!(goertzel(&heard[0], 700.0) > 1e6);
    }

    #[test]
    fn announcement_reaches_all_but_the_deafened() {
        let mut m = Mixer::new(N);
        m.add(1);
        m.add(2);
        m.set_deafened(2, true);
        m.push_announcement(&tone(500.0, 5000.0, 0));
        m.mix();
        assert!(goertzel(m.output(1), 500.0) > 1e6);
        assert!(goertzel(m.mixed(), 500.0) > 1e6);
        assert!(m.output(2).iter().all(|&s| s == 0));
        // Inputs and the announcement last one tick.
        m.mix();
        assert!(m.output(1).iter().all(|&s| s == 0));
        assert!(m.mixed().iter().all(|&s| s == 0));
    }

    #[test]
    fn silence_when_nothing_pushed_and_for_unknown_ids() {
        let mut m = Mixer::new(N);
        m.add(1);
        m.add(2);
        m.push(1, &[1000; 10]); // short: padded with silence
        m.push(99, &[1000; N]); // unknown: ignored
        m.mix();
        assert_eq!(&m.output(2)[..10], &[1000; 10]);
        assert!(m.output(2)[10..].iter().all(|&s| s == 0));
        assert!(m.output(1).iter().all(|&s| s == 0));
        assert_eq!(m.output(99).len(), N);
        assert!(m.output(99).iter().all(|&s| s == 0));
    }

    #[test]
    fn add_remove_keeps_the_others_intact() {
        let mut m = Mixer::new(N);
        for id in [10, 20, 30, 40] {
            m.add(id);
        }
        m.add(20);
        assert_eq!(m.len(), 4);
        m.set_muted(40, true);
        m.remove(20);
        m.remove(77);
        assert_eq!(m.len(), 3);
        assert!(!m.contains(20) && m.contains(40) && m.is_muted(40));
        let heard = run(&mut m, &[(10, 400.0), (30, 700.0), (40, 1100.0)], 8000.0, 4);
        assert!(goertzel(&heard[0], 700.0) > 1e6);
        assert!(goertzel(&heard[0], 1100.0) < 1e3);
        assert!(goertzel(&heard[2], 400.0) > 1e6);
        for id in [10, 30, 40] {
            m.remove(id);
        }
        assert!(m.is_empty());
        m.mix();
        assert!(m.mixed().iter().all(|&s| s == 0));
    }

    #[test]
    fn saturation_never_wraps() {
        let mut m = Mixer::new(N);
        for id in 0..100 {
            m.add(id);
        }
        for frame in [[i16::MAX; N], [i16::MIN; N]] {
            for _ in 0..5 {
                for id in 0..100 {
                    m.push(id, &frame);
                }
                m.mix();
                let positive = frame[0] > 0;
                for id in 0..100 {
                    assert!(m.output(id).iter().all(|&s| (s > 0) == positive), "wrapped");
                }
                assert!(m.mixed().iter().all(|&s| (s > 0) == positive));
            }
        }
        // Alternating extremes from one participant heard by another.
        let mut m = Mixer::new(N);
        for id in 0..3 {
            m.add(id);
        }
        let square: Vec<i16> = (0..N)
            .map(|i| if i % 2 == 0 { i16::MAX } else { i16::MIN })
            .collect();
        m.push(0, &square);
        m.push(1, &square);
        m.mix();
        for (i, &s) in m.output(2).iter().enumerate() {
            assert_eq!(s > 0, i % 2 == 0);
        }
    }

    #[test]
    fn two_loud_talkers_stay_undistorted() {
        let mut m = Mixer::new(N);
        for id in 1..=3 {
            m.add(id);
        }
        // Two talkers at -4 dBFS each: their sum would clip at twice full scale.
        let (f1, f2) = (450.0, 650.0);
        let amp = 20_000.0;
        let heard = run(&mut m, &[(1, f1), (2, f2), (3, 1000.0)], amp, 50);
        let tail = &heard[2][N * 30..];
        assert!(tail.iter().all(|&s| i32::from(s).abs() <= CEILING + 1));
        // The limiter only scales: the two tones carry almost all of the energy.
        let tones = goertzel(tail, f1) + goertzel(tail, f2);
        let ratio = tones / energy(tail);
        // A hard clip of the same sum, for comparison.
        let clipped: Vec<i16> = (30..50)
            .flat_map(|t| {
                let (a, b) = (tone(f1, amp, t), tone(f2, amp, t));
                a.into_iter()
                    .zip(b)
                    .map(|(x, y)| (i32::from(x) + i32::from(y)).clamp(-32768, 32767) as i16)
                    .collect::<Vec<_>>()
            })
            .collect();
        let clip_ratio = (goertzel(&clipped, f1) + goertzel(&clipped, f2)) / energy(&clipped);
        assert!(ratio > 0.9999, "limited: {ratio}");
        assert!(
            ratio > clip_ratio,
            "limited {ratio} vs clipped {clip_ratio}"
        );
        // Once the talkers stop, the gain recovers to unity.
        for _ in 0..200 {
            m.push(1, &[1000; N]);
            m.mix();
        }
        assert_eq!(m.output(3)[0], 1000);
    }

    #[test]
    fn hundred_participants() {
        let mut m = Mixer::new(N);
        for id in 0..100u64 {
            m.add(id);
        }
        // Three talkers, the rest listen.
        let freqs = [(7, 400.0), (42, 700.0), (99, 1100.0)];
        let heard = run(&mut m, &freqs, 6000.0, 5);
        assert!(goertzel(&heard[0], 700.0) > 1e6 && goertzel(&heard[0], 400.0) < 1e3);
        let listener = m.output(50);
        for &(_, f) in &freqs {
            assert!(goertzel(listener, f) > 1e5);
        }
        assert_eq!(m.len(), 100);
    }

    #[test]
    fn soft_knee_is_monotonic_and_bounded() {
        let mut last = i16::MIN;
        for x in (-200_000..200_000).step_by(97) {
            let y = soft_knee(x as f32);
            assert!(y >= last);
            last = y;
        }
        assert_eq!(soft_knee(1234.0), 1234);
        assert!(soft_knee(1e9) >= 32_760);
        assert!(soft_knee(-1e9) <= -32_760);
    }
}
