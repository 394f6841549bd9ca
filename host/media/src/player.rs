//! The playback queue of one call leg: `say` and `play` requests played in order, one 20 ms
//! frame per tick.
//!
//! Invariants: clips are already at the player's rate (the caller resamples); `next_frame`
//! never allocates (the event queue is pre-sized, clips are shared `Arc`s) and always fills
//! the whole frame, with silence where there is nothing to play. Consecutive items and loops
//! are joined without a gap. Every enqueued item produces exactly one
//! [`PlayerEvent::Finished`]: when it ends, is stopped by a key, by [`Player::stop_all`], or
//! by its timeout.
//!
//! Semantics: a loop count of 0 means 1; the offset applies to the first loop only; the
//! timeout counts played time (not wall time, and not time spent queued). A key press stops
//! only the current item, and only when it asked for `stop_on_dtmf`; queued items then play.

use std::collections::VecDeque;
use std::sync::Arc;

use crate::dtmf::Digit;
use crate::pcm::{Pcm, ms_to_samples};

/// Which request an item came from, echoed in its finished event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    /// Text to speech.
    Say,
    /// An uploaded file.
    Play,
}

/// How to play one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlayOpts {
    /// Times to play the clip; 0 is treated as 1.
    pub loop_count: u32,
    /// Where to start in the clip, first loop only.
    pub offset_ms: u32,
    /// Stop after this much played time.
    pub timeout_ms: Option<u32>,
    /// Stop this item when a key is pressed.
    pub stop_on_dtmf: bool,
    /// Say or play.
    pub kind: MediaKind,
}

impl PlayOpts {
    /// Play once from the start, no timeout, not interruptible.
    pub const fn once(kind: MediaKind) -> Self {
        PlayOpts {
            loop_count: 1,
            offset_ms: 0,
            timeout_ms: None,
            stop_on_dtmf: false,
            kind,
        }
    }
}

/// What the player reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayerEvent {
    /// An item ended.
    Finished {
        /// The id given to [`Player::enqueue`].
        id: u64,
        /// Say or play.
        kind: MediaKind,
        /// True when every loop played to its end.
        played_completely: bool,
        /// The key that stopped it, when `stop_on_dtmf` did.
        digit: Option<Digit>,
    },
}

#[derive(Debug)]
struct Item {
    id: u64,
    clip: Arc<Pcm>,
    opts: PlayOpts,
}

#[derive(Debug)]
struct Current {
    item: Item,
    pos: usize,
    loops_done: u32,
    loops_total: u32,
    played: u64,
    limit: Option<u64>,
}

/// Pre-sized event queue; more pending events than this only cost an allocation.
const EVENT_CAPACITY: usize = 16;

/// One leg's playback queue.
#[derive(Debug)]
pub struct Player {
    rate: u32,
    queue: VecDeque<Item>,
    current: Option<Current>,
    events: VecDeque<PlayerEvent>,
}

impl Player {
    /// An idle player for a graph at `rate` Hz.
    pub fn new(rate: u32) -> Self {
        Player {
            rate,
            queue: VecDeque::with_capacity(8),
            current: None,
            events: VecDeque::with_capacity(EVENT_CAPACITY),
        }
    }

    /// The player's sample rate.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// True when nothing is playing or queued.
    pub fn is_idle(&self) -> bool {
        self.current.is_none() && self.queue.is_empty()
    }

    /// The id of the item playing now.
    pub fn current_id(&self) -> Option<u64> {
        self.current.as_ref().map(|c| c.item.id)
    }

    /// Items waiting behind the current one.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Queues a clip behind whatever is playing.
    pub fn enqueue(&mut self, id: u64, clip: Arc<Pcm>, opts: PlayOpts) {
        if clip.rate != self.rate && !clip.samples.is_empty() {
            tracing::warn!(
                id,
                clip_rate = clip.rate,
                player_rate = self.rate,
                "clip not resampled to the player's rate; it will play at the wrong speed"
            );
        }
        self.queue.push_back(Item { id, clip, opts });
    }

    /// Fills `out` with the next frame (silence where idle); returns whether any of it came
    /// from a clip.
    pub fn next_frame(&mut self, out: &mut [i16]) -> bool {
        let mut filled = 0;
        let mut produced = false;
        loop {
            self.settle();
            if filled == out.len() {
                break;
            }
            let Some(cur) = self.current.as_mut() else {
                match self.queue.pop_front() {
                    Some(item) => {
                        self.current = Some(self.start(item));
                        continue;
                    }
                    None => break,
                }
            };
            let samples = &cur.item.clip.samples;
            let mut n = (out.len() - filled).min(samples.len() - cur.pos);
            if let Some(limit) = cur.limit {
                n = n.min((limit - cur.played) as usize);
            }
            out[filled..filled + n].copy_from_slice(&samples[cur.pos..cur.pos + n]);
            cur.pos += n;
            cur.played += n as u64;
            filled += n;
            produced |= n > 0;
        }
        out[filled..].fill(0);
        produced
    }

    fn start(&self, item: Item) -> Current {
        let pos = ms_to_samples(self.rate, item.opts.offset_ms).min(item.clip.samples.len());
        let limit = item
            .opts
            .timeout_ms
            .map(|ms| ms_to_samples(self.rate, ms) as u64);
        Current {
            loops_total: item.opts.loop_count.max(1),
            item,
            pos,
            loops_done: 0,
            played: 0,
            limit,
        }
    }

    /// Resolves the current item's boundaries: loop wrap-around, completion, timeout. After
    /// this, a current item (if any) has samples left to play within its limit.
    fn settle(&mut self) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        if cur.pos >= cur.item.clip.samples.len() {
            cur.loops_done += 1;
            if cur.loops_done >= cur.loops_total || cur.item.clip.samples.is_empty() {
                self.finish(true, None);
                return;
            }
            cur.pos = 0;
        }
        if cur.limit.is_some_and(|limit| cur.played >= limit) {
            self.finish(false, None);
        }
    }

    fn finish(&mut self, played_completely: bool, digit: Option<Digit>) {
        if let Some(cur) = self.current.take() {
            self.events.push_back(PlayerEvent::Finished {
                id: cur.item.id,
                kind: cur.item.opts.kind,
                played_completely,
                digit,
            });
        }
    }

    /// A key was pressed: stops the current item if it asked for `stop_on_dtmf` (queued items
    /// are kept and play next). Returns the id of the stopped item.
    pub fn on_dtmf(&mut self, digit: Digit) -> Option<u64> {
        let cur = self.current.as_ref()?;
        if !cur.item.opts.stop_on_dtmf {
            return None;
        }
        let id = cur.item.id;
        self.finish(false, Some(digit));
        Some(id)
    }

    /// Stops the current item and drops the queue; each reports `played_completely: false`.
    /// Returns how many items were stopped.
    pub fn stop_all(&mut self) -> usize {
        let mut n = 0;
        if self.current.is_some() {
            self.finish(false, None);
            n += 1;
        }
        while let Some(item) = self.queue.pop_front() {
            self.events.push_back(PlayerEvent::Finished {
                id: item.id,
                kind: item.opts.kind,
                played_completely: false,
                digit: None,
            });
            n += 1;
        }
        n
    }

    /// The next event, in the order the items ended.
    pub fn poll_event(&mut self) -> Option<PlayerEvent> {
        self.events.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RATE: u32 = 8000;
    const FRAME: usize = 160;

    /// A clip whose samples count up from `base`, so positions are visible in the output.
    fn ramp(base: i16, len: usize) -> Arc<Pcm> {
        Arc::new(Pcm::new(RATE, (0..len).map(|i| base + i as i16).collect()))
    }

    fn finished(p: &mut Player) -> Vec<(u64, bool, Option<Digit>)> {
        let mut v = Vec::new();
        while let Some(PlayerEvent::Finished {
            id,
            played_completely,
            digit,
            ..
        }) = p.poll_event()
        {
            v.push((id, played_completely, digit));
        }
        v
    }

    fn frames(p: &mut Player, n: usize) -> Vec<i16> {
        let mut all = Vec::new();
        let mut out = [0i16; FRAME];
        for _ in 0..n {
            p.next_frame(&mut out);
            all.extend_from_slice(&out);
        }
        all
    }

    #[test]
    fn idle_player_gives_silence() {
        let mut p = Player::new(RATE);
        let mut out = [5i16; FRAME];
        assert!(!p.next_frame(&mut out));
        assert!(out.iter().all(|&s| s == 0));
        assert!(p.is_idle());
        assert_eq!(p.poll_event(), None);
    }

    #[test]
    fn plays_once_then_reports_completion_in_the_same_frame() {
        let mut p = Player::new(RATE);
        p.enqueue(1, ramp(1, 320), PlayOpts::once(MediaKind::Say));
        let mut out = [0i16; FRAME];
        assert!(p.next_frame(&mut out));
        assert_eq!(out[0], 1);
        assert!(finished(&mut p).is_empty());
        assert!(p.next_frame(&mut out));
        assert_eq!(out[FRAME - 1], 320);
        assert_eq!(
            p.poll_event(),
            Some(PlayerEvent::Finished {
                id: 1,
                kind: MediaKind::Say,
                played_completely: true,
                digit: None
            })
        );
        assert!(!p.next_frame(&mut out));
        assert!(p.is_idle());
    }

    #[test]
    fn loops_and_queue_are_gapless() {
        let mut p = Player::new(RATE);
        let opts = PlayOpts {
            loop_count: 3,
            ..PlayOpts::once(MediaKind::Play)
        };
        p.enqueue(1, ramp(100, 100), opts);
        p.enqueue(2, ramp(1000, 50), PlayOpts::once(MediaKind::Say));
        let all = frames(&mut p, 3);
        let mut expected: Vec<i16> = Vec::new();
        for _ in 0..3 {
            expected.extend(100..200);
        }
        expected.extend(1000..1050);
        expected.resize(3 * FRAME, 0);
        assert_eq!(all, expected);
        assert_eq!(finished(&mut p), vec![(1, true, None), (2, true, None)]);
    }

    #[test]
    fn loop_count_zero_means_once() {
        let mut p = Player::new(RATE);
        let opts = PlayOpts {
            loop_count: 0,
            ..PlayOpts::once(MediaKind::Play)
        };
        p.enqueue(1, ramp(1, 100), opts);
        let all = frames(&mut p, 1);
        assert_eq!(all[99], 100);
        assert_eq!(all[100], 0);
        assert_eq!(finished(&mut p), vec![(1, true, None)]);
    }

    #[test]
    fn offset_applies_to_the_first_loop_only() {
        let mut p = Player::new(RATE);
        let opts = PlayOpts {
            loop_count: 2,
            offset_ms: 10, // 80 samples
            ..PlayOpts::once(MediaKind::Play)
        };
        p.enqueue(1, ramp(0, 200), opts);
        let all = frames(&mut p, 2);
        let mut expected: Vec<i16> = (80..200).collect();
        expected.extend(0..200);
        expected.resize(2 * FRAME, 0);
        assert_eq!(all, expected);
        assert_eq!(finished(&mut p), vec![(1, true, None)]);
    }

    #[test]
    fn offset_beyond_the_clip() {
        let mut p = Player::new(RATE);
        let opts = PlayOpts {
            offset_ms: 1000,
            ..PlayOpts::once(MediaKind::Play)
        };
        p.enqueue(1, ramp(1, 100), opts);
        p.enqueue(
            2,
            Arc::new(Pcm::new(RATE, vec![])),
            PlayOpts::once(MediaKind::Play),
        );
        let mut out = [0i16; FRAME];
        assert!(!p.next_frame(&mut out));
        assert_eq!(finished(&mut p), vec![(1, true, None), (2, true, None)]);
    }

    #[test]
    fn timeout_counts_played_time_across_loops() {
        let mut p = Player::new(RATE);
        let opts = PlayOpts {
            loop_count: 10,
            timeout_ms: Some(30), // 240 samples
            ..PlayOpts::once(MediaKind::Play)
        };
        p.enqueue(1, ramp(0, 100), opts);
        p.enqueue(2, ramp(5000, 10), PlayOpts::once(MediaKind::Play));
        let all = frames(&mut p, 2);
        let mut expected: Vec<i16> = (0..100).chain(0..100).chain(0..40).collect();
        expected.extend(5000..5010);
        expected.resize(2 * FRAME, 0);
        assert_eq!(all, expected);
        assert_eq!(finished(&mut p), vec![(1, false, None), (2, true, None)]);
        // A timeout equal to the clip length still completes it.
        let opts = PlayOpts {
            timeout_ms: Some(20),
            ..PlayOpts::once(MediaKind::Play)
        };
        p.enqueue(3, ramp(0, 160), opts);
        frames(&mut p, 1);
        assert_eq!(finished(&mut p), vec![(3, true, None)]);
    }

    #[test]
    fn dtmf_stops_only_the_current_item_when_asked() {
        let mut p = Player::new(RATE);
        let key = Digit::parse("5").unwrap();
        p.enqueue(1, ramp(0, 1000), PlayOpts::once(MediaKind::Say));
        let stoppable = PlayOpts {
            stop_on_dtmf: true,
            ..PlayOpts::once(MediaKind::Say)
        };
        p.enqueue(2, ramp(0, 1000), stoppable);
        p.enqueue(3, ramp(7000, 10), stoppable);
        frames(&mut p, 1);
        // Item 1 does not stop on a key.
        assert_eq!(p.on_dtmf(key), None);
        frames(&mut p, 6); // 1120 samples: item 1 done, item 2 under way
        assert_eq!(p.current_id(), Some(2));
        assert_eq!(p.on_dtmf(key), Some(2));
        let all = frames(&mut p, 1);
        assert_eq!(all[..10], (7000..7010).collect::<Vec<i16>>()[..]);
        assert_eq!(
            finished(&mut p),
            vec![(1, true, None), (2, false, Some(key)), (3, true, None)]
        );
    }

    #[test]
    fn stop_all_reports_every_item() {
        let mut p = Player::new(RATE);
        for id in 1..=3 {
            p.enqueue(id, ramp(0, 1000), PlayOpts::once(MediaKind::Play));
        }
        frames(&mut p, 1);
        assert_eq!(p.queued(), 2);
        assert_eq!(p.stop_all(), 3);
        assert_eq!(
            finished(&mut p),
            vec![(1, false, None), (2, false, None), (3, false, None)]
        );
        assert!(p.is_idle());
        assert_eq!(p.stop_all(), 0);
    }
}
