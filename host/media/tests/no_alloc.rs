//! The hot path does not allocate: RTP receive and send, G.711 encode/decode, DTMF, the
//! jitter buffer, the player's frame pull, the conference mixer and the bridge relay and
//! transcode are run under a counting global allocator.
#![allow(clippy::unwrap_used, reason = "test code")]
#![allow(
    clippy::disallowed_methods,
    reason = "one real Instant is the origin of the virtual clock"
)]
#![allow(unsafe_code, reason = "a counting GlobalAlloc needs `unsafe impl`")]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pbx_media::sdp::Direction;
use pbx_media::{
    Codec, Digit, MediaKind, Mixer, Pcm, PlayOpts, Player, RawInput, RtpHeader, RtpPacket,
    RtpSession, SessionConfig, relay_possible, transcode,
};

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

struct Counting;

// SAFETY: every call is forwarded to the system allocator unchanged; the thread-locals are
// const-initialised `Cell`s, which never allocate.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if ARMED.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if ARMED.with(Cell::get) {
            COUNT.with(|c| c.set(c.get() + 1));
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations it made on this thread.
fn allocations(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(Cell::get)
}

#[test]
fn media_hot_path_does_not_allocate() {
    // The counter works.
    assert!(allocations(|| drop(std::hint::black_box(vec![1u8; 10]))) > 0);
    let a: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    let b: SocketAddr = "10.0.0.2:5000".parse().unwrap();
    let cfg = |remote, seed| SessionConfig {
        codec: Codec::Pcmu,
        pt: 0,
        dtmf_pt: Some(101),
        remote: Some(remote),
        direction: Direction::SendRecv,
        seed,
        jitter_depth: Some(3),
    };
    let mut tx = RtpSession::new(cfg(b, 1));
    let mut rx = RtpSession::new(cfg(a, 2));
    let clip = Arc::new(Pcm::new(
        8000,
        (0..8000).map(|i| (i % 200) as i16 * 50).collect(),
    ));
    let mut player = Player::new(8000);
    let opts = PlayOpts {
        loop_count: 3,
        stop_on_dtmf: true,
        ..PlayOpts::once(MediaKind::Play)
    };
    player.enqueue(1, clip.clone(), opts);
    player.enqueue(2, clip, PlayOpts::once(MediaKind::Say));
    // Queue the digit before measuring: queueing is a control action, not the hot path.
    tx.send_dtmf(Digit::parse("7").unwrap(), 100).unwrap();
    let t0 = Instant::now();
    let mut frame = [0i16; 160];
    let mut wire = [0u8; 1500];
    let mut pulled = [0i16; 160];
    let mut enc = [0u8; 160];
    let mut dec = [0i16; 160];
    let mut events = 0;

    let n = allocations(|| {
        for tick in 0..400u32 {
            let now = t0 + Duration::from_millis(20 * u64::from(tick));
            player.next_frame(&mut frame);
            if let Some((_, len)) = tx.send_frame(&frame, &mut wire) {
                let p = RtpPacket::parse(&wire[..len]).unwrap();
                std::hint::black_box(p.payload());
                if let Some(ev) = rx.handle_input(now, a, &wire[..len]) {
                    events += 1;
                    if let pbx_media::MediaEvent::Dtmf { digit } = ev {
                        player.on_dtmf(digit);
                    }
                }
            }
            rx.pull_audio(&mut pulled);
            Codec::Pcma.encode(&frame, &mut enc);
            Codec::Pcma.decode(&enc, &mut dec);
            let h = RtpHeader {
                marker: false,
                payload_type: 8,
                sequence: tick as u16,
                timestamp: tick * 160,
                ssrc: 1,
            };
            h.write_packet(&enc, &mut wire).unwrap();
            // Drain events the way the shell does (the queue is pre-sized).
            while player.poll_event().is_some() {}
        }
    });
    assert_eq!(n, 0, "allocations on the hot path");
    assert_eq!(events, 400 - 6, "audio frames plus one key press");
    assert_eq!(rx.stats().dtmf_received, 1);
}

#[test]
fn mixer_tick_does_not_allocate() {
    let mut mixer = Mixer::new(160);
    for id in 0..100 {
        mixer.add(id);
    }
    mixer.set_muted(3, true);
    mixer.set_deafened(4, true);
    let loud: Vec<i16> = (0..160).map(|i| ((i % 40) as i16 - 20) * 1500).collect();
    let mut sink = 0i64;
    let n = allocations(|| {
        for tick in 0..200u64 {
            // Ten talkers (loud enough to engage the limiter), the rest listen.
            for id in 0..10 {
                mixer.push((id + tick) % 100, &loud);
            }
            mixer.push_announcement(&loud);
            mixer.mix();
            for id in 0..100 {
                sink += i64::from(mixer.output(id)[0]) + i64::from(mixer.input(id)[1]);
            }
            sink += i64::from(mixer.mixed()[2]);
        }
    });
    std::hint::black_box(sink);
    assert_eq!(n, 0, "allocations in the mixer tick");
    // Removing and re-adding within the grown capacity does not allocate either.
    let n = allocations(|| {
        mixer.remove(50);
        mixer.add(50);
    });
    assert_eq!(n, 0);
}

#[test]
fn bridge_relay_and_transcode_do_not_allocate() {
    let a_addr: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    let cfg = |codec: Codec, remote, seed| SessionConfig {
        codec,
        pt: codec.payload_type(),
        dtmf_pt: Some(101),
        remote: Some(remote),
        direction: Direction::SendRecv,
        seed,
        jitter_depth: None,
    };
    let c_addr: SocketAddr = "10.0.0.3:6000".parse().unwrap();
    // a (PCMU) -> b (PCMU) relayed, b -> c (PCMA) transcoded.
    let mut a = RtpSession::new(cfg(Codec::Pcmu, a_addr, 1));
    let mut b = RtpSession::new(cfg(Codec::Pcmu, a_addr, 2));
    let mut c = RtpSession::new(cfg(Codec::Pcma, c_addr, 3));
    let digits = [Digit::parse("1").unwrap(), Digit::parse("2").unwrap()];
    c.send_digits(&digits, 60).unwrap();
    let t0 = Instant::now();
    let pcm = [1000i16; 160];
    let mut wire = [0u8; 1500];
    let mut relayed = [0u8; 1500];
    let mut tbuf = [0u8; 160];
    let mut audio = 0;
    let n = allocations(|| {
        for tick in 0..300u32 {
            let now = t0 + Duration::from_millis(20 * u64::from(tick));
            let (_, len) = a.send_frame(&pcm, &mut wire).unwrap();
            if let RawInput::Audio { payload, .. } = b.handle_input_raw(now, a_addr, &wire[..len]) {
                audio += 1;
                assert!(relay_possible(Codec::Pcmu, b.codec()));
                b.send_payload(payload, &mut relayed).unwrap();
                let m = transcode(b.codec(), c.codec(), payload, &mut tbuf);
                c.send_payload(&tbuf[..m], &mut relayed).unwrap();
            }
        }
    });
    assert_eq!(n, 0, "allocations in relay/transcode");
    assert_eq!(audio, 300);
    assert!(!c.dtmf_pending());
}
