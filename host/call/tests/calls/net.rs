//! A virtual network of scripted phones around one or more media planes.
//!
//! Each phone is a real `RtpSession` (G.711 µ-law, RFC 4733, a jitter buffer) that says a
//! constant level every 20 ms and measures what it hears; datagrams either way are dropped
//! with a seeded probability. Constant levels make what a party hears a number: in a
//! conference of 1000, 2000 and 4000, the first hears 6000.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pbx_call::{MediaOutput, MediaPlane, TICK};
use pbx_media::dtmf::Digit;
use pbx_media::pcm::Pcm;
use pbx_media::sdp::{Direction, Negotiated};
use pbx_media::session::{MediaEvent, RtpSession, SessionConfig};
use pbx_media::{Codec, Pop};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[allow(
    clippy::disallowed_methods,
    reason = "tests need an arbitrary origin for virtual time"
)]
pub(crate) fn origin() -> Instant {
    Instant::now()
}

/// A clip of one constant level, `secs` long: music whose sound is a number.
pub(crate) fn level_clip(level: i16, secs: usize) -> Arc<Pcm> {
    Arc::new(Pcm {
        rate: 8000,
        samples: vec![level; 8000 * secs],
    })
}

/// One phone: its RTP session, what it says, and what it heard.
pub(crate) struct Phone {
    pub(crate) leg: String,
    /// The plane the phone's leg lives in (an index into `Net::planes`).
    pub(crate) plane: usize,
    pub(crate) addr: SocketAddr,
    pub(crate) pbx_addr: SocketAddr,
    pub(crate) rtp: RtpSession,
    /// The constant level the phone says; `None` is silence (nothing is sent).
    pub(crate) says: Option<i16>,
    /// The mean level of each frame heard, one per tick (`None`: nothing arrived).
    pub(crate) heard: Vec<Option<i32>>,
    /// Key presses the phone received (RFC 4733 from pbx).
    pub(crate) digits: Vec<Digit>,
}

/// Phones, planes and a seeded lossy network in virtual time.
pub(crate) struct Net {
    pub(crate) now: Instant,
    pub(crate) planes: Vec<MediaPlane>,
    pub(crate) phones: Vec<Phone>,
    /// Every output of each plane, in order.
    pub(crate) outputs: Vec<Vec<MediaOutput>>,
    pub(crate) loss: f64,
    rng: StdRng,
    next_port: u16,
}

impl Net {
    /// One plane whose built-in music is a constant `music` level, and `loss` per datagram.
    pub(crate) fn new(seed: u64, loss: f64, music: i16) -> Self {
        Net {
            now: origin(),
            planes: vec![MediaPlane::new(level_clip(music, 2))],
            phones: Vec::new(),
            outputs: vec![Vec::new()],
            loss,
            rng: StdRng::seed_from_u64(seed),
            next_port: 4000,
        }
    }

    /// Another plane (another session or media loop), for hand-overs.
    pub(crate) fn add_plane(&mut self, music: i16) -> usize {
        self.planes.push(MediaPlane::new(level_clip(music, 2)));
        self.outputs.push(Vec::new());
        self.planes.len() - 1
    }

    /// A phone that called in (or was dialled) and answered: a leg of `plane` whose audio
    /// flows, saying `says`.
    pub(crate) fn phone(&mut self, plane: usize, leg: &str, says: i16) -> usize {
        self.next_port += 2;
        let addr: SocketAddr = format!("10.0.0.2:{}", self.next_port)
            .parse()
            .expect("addr");
        let pbx_addr: SocketAddr = format!("10.0.0.1:{}", self.next_port)
            .parse()
            .expect("addr");
        let negotiated = Negotiated {
            answer_sdp: String::new(),
            codec: Codec::Pcmu,
            pt: 0,
            dtmf_pt: Some(101),
            remote_rtp: Some(addr),
            direction: Direction::SendRecv,
            remote_direction: Direction::SendRecv,
        };
        let seed = self.rng.random();
        let p = &mut self.planes[plane];
        p.add_leg(leg);
        p.set_remote(self.now, leg, negotiated, |n| {
            let mut config = SessionConfig::from_negotiated(n, seed);
            config.jitter_depth = Some(3);
            RtpSession::new(config)
        });
        p.start_flowing(leg);
        p.set_answered(leg);
        let rtp = RtpSession::new(SessionConfig {
            codec: Codec::Pcmu,
            pt: 0,
            dtmf_pt: Some(101),
            remote: Some(pbx_addr),
            direction: Direction::SendRecv,
            seed: self.rng.random(),
            jitter_depth: Some(3),
        });
        self.phones.push(Phone {
            leg: leg.to_owned(),
            plane,
            addr,
            pbx_addr,
            rtp,
            says: Some(says),
            heard: Vec::new(),
            digits: Vec::new(),
        });
        self.phones.len() - 1
    }

    fn lost(&mut self) -> bool {
        self.loss > 0.0 && self.rng.random::<f64>() < self.loss
    }

    /// One 20 ms step: every phone sends a frame, every plane ticks and sends, every phone
    /// listens; then virtual time moves on.
    pub(crate) fn step(&mut self) {
        let now = self.now;
        // Phones speak.
        for i in 0..self.phones.len() {
            let Some(level) = self.phones[i].says else {
                continue;
            };
            let frame = [level; 160];
            let mut out = [0u8; 1500];
            let sent = self.phones[i].rtp.send_frame(&frame, &mut out);
            if let Some((_, len)) = sent
                && !self.lost()
            {
                let phone = &self.phones[i];
                self.planes[phone.plane].handle_rtp(now, &phone.leg, phone.addr, &out[..len]);
            }
        }
        // Planes tick and send.
        for p in 0..self.planes.len() {
            self.planes[p].handle_timeout(now);
            self.planes[p].handle_tick(now);
            self.deliver(p);
        }
        // Phones listen.
        for phone in &mut self.phones {
            let mut frame = [0i16; 160];
            let heard = match phone.rtp.pull_audio(&mut frame) {
                Pop::Frame(n) if n > 0 => {
                    Some(frame.iter().map(|&s| i32::from(s)).sum::<i32>() / 160)
                }
                _ => None,
            };
            phone.heard.push(heard);
        }
        self.now += TICK;
    }

    /// Carries plane `p`'s datagrams to the phones and keeps its outputs.
    pub(crate) fn deliver(&mut self, p: usize) {
        let mut datagrams = Vec::new();
        while let Some(t) = self.planes[p].poll_transmit() {
            datagrams.push((t.leg.to_owned(), t.to, t.bytes.to_vec()));
        }
        for (leg, to, bytes) in datagrams {
            if self.lost() {
                continue;
            }
            let now = self.now;
            if let Some(phone) = self
                .phones
                .iter_mut()
                .find(|ph| ph.plane == p && ph.leg == leg && ph.addr == to)
                && let Some(MediaEvent::Dtmf { digit }) =
                    phone.rtp.handle_input(now, phone.pbx_addr, &bytes)
            {
                phone.digits.push(digit);
            }
        }
        while let Some(output) = self.planes[p].poll_output() {
            self.outputs[p].push(output);
        }
    }

    /// Runs for `duration` of virtual time.
    pub(crate) fn run(&mut self, duration: Duration) {
        let steps = duration.as_millis() / TICK.as_millis();
        for _ in 0..steps {
            self.step();
        }
    }

    /// Forgets what every phone heard so far (before a new phase of a scenario).
    pub(crate) fn clear_heard(&mut self) {
        for phone in &mut self.phones {
            phone.heard.clear();
        }
    }

    /// The level a phone heard most often since the last `clear_heard`, skipping the first
    /// `settle` frames, with frames that never arrived counted as 0; and the share of frames
    /// that were near that level.
    pub(crate) fn heard(&self, phone: usize, settle: usize) -> (i32, f64) {
        let frames: Vec<i32> = self.phones[phone]
            .heard
            .iter()
            .skip(settle)
            .map(|h| h.unwrap_or(0))
            .collect();
        assert!(!frames.is_empty(), "phone {phone} heard no frames");
        // Bucket to 2% of full scale, so G.711 quantisation does not split a level.
        let mut best = (0, 0usize);
        for &f in &frames {
            let near = frames.iter().filter(|&&g| close(f, g)).count();
            if near > best.1 {
                best = (f, near);
            }
        }
        (best.0, best.1 as f64 / frames.len() as f64)
    }
}

/// True when two levels are the same after G.711 (within 4% and 40 units).
pub(crate) fn close(a: i32, b: i32) -> bool {
    let tol = (a.abs().max(b.abs()) / 25).max(40);
    (a - b).abs() <= tol
}

/// Asserts the phone mostly heard `level` (at least `share` of its frames after `settle`).
#[track_caller]
pub(crate) fn assert_hears(net: &Net, phone: usize, level: i32, share: f64) {
    let (heard, got) = net.heard(phone, 10);
    assert!(
        close(heard, level) && got >= share,
        "phone {} ({}) heard {heard} in {:.0}% of frames; expected {level} in {:.0}%",
        phone,
        net.phones[phone].leg,
        got * 100.0,
        share * 100.0
    );
}
