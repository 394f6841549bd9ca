//! A bridge's cost per RTP packet: relay (parse + re-header, no decode), PCMU->PCMA transcode
//! (byte table), and the full decode + encode path a mixed or recorded bridge takes. Run with
//! `cargo bench -p pbx-media --bench bridge`.
#![allow(clippy::unwrap_used, reason = "benchmark setup on fixed inputs")]
#![allow(
    clippy::disallowed_methods,
    reason = "one real Instant as the arrival time; the session never reads the clock"
)]

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Instant;

use criterion::{Criterion, criterion_group, criterion_main};
use pbx_media::sdp::Direction;
use pbx_media::{Codec, RawInput, RtpHeader, RtpSession, SessionConfig, transcode};

fn session(codec: Codec, seed: u64) -> RtpSession {
    RtpSession::new(SessionConfig {
        codec,
        pt: codec.payload_type(),
        dtmf_pt: Some(101),
        remote: Some("10.0.0.9:7000".parse().unwrap()),
        direction: Direction::SendRecv,
        seed,
        jitter_depth: None,
    })
}

/// A PCMU packet; `bump` rewrites its sequence number and timestamp for the next iteration.
fn packet() -> Vec<u8> {
    let mut pcm = [0i16; 160];
    for (i, s) in pcm.iter_mut().enumerate() {
        *s = ((i as f64 * 0.3456).sin() * 12000.0) as i16;
    }
    let mut payload = [0u8; 160];
    Codec::Pcmu.encode(&pcm, &mut payload);
    let header = RtpHeader {
        marker: false,
        payload_type: 0,
        sequence: 1,
        timestamp: 160,
        ssrc: 0x1234_5678,
    };
    let mut buf = vec![0u8; 172];
    header.write_packet(&payload, &mut buf).unwrap();
    buf
}

fn bump(pkt: &mut [u8], seq: &mut u16) {
    *seq = seq.wrapping_add(1);
    pkt[2..4].copy_from_slice(&seq.to_be_bytes());
    let ts = u32::from(*seq) * 160;
    pkt[4..8].copy_from_slice(&ts.to_be_bytes());
}

fn bridge(c: &mut Criterion) {
    let from: SocketAddr = "10.0.0.1:4000".parse().unwrap();
    let now = Instant::now();
    let mut out = [0u8; 1500];

    let (mut a, mut b) = (session(Codec::Pcmu, 1), session(Codec::Pcmu, 2));
    let mut pkt = packet();
    let mut seq = 1u16;
    c.bench_function("bridge relay PCMU->PCMU per packet", |bch| {
        bch.iter(|| {
            bump(&mut pkt, &mut seq);
            if let RawInput::Audio { payload, .. } = a.handle_input_raw(now, from, &pkt) {
                black_box(b.send_payload(payload, &mut out));
            }
        })
    });

    let (mut a, mut b) = (session(Codec::Pcmu, 3), session(Codec::Pcma, 4));
    let mut tbuf = [0u8; 160];
    c.bench_function("bridge transcode PCMU->PCMA per packet", |bch| {
        bch.iter(|| {
            bump(&mut pkt, &mut seq);
            if let RawInput::Audio { payload, .. } = a.handle_input_raw(now, from, &pkt) {
                let n = transcode(Codec::Pcmu, Codec::Pcma, payload, &mut tbuf);
                black_box(b.send_payload(&tbuf[..n], &mut out));
            }
        })
    });

    let (mut a, mut b) = (session(Codec::Pcmu, 5), session(Codec::Pcma, 6));
    c.bench_function("bridge decode+encode PCMU->PCMA per packet", |bch| {
        bch.iter(|| {
            bump(&mut pkt, &mut seq);
            if a.handle_input(now, from, &pkt).is_some() {
                black_box(b.send_frame(a.audio(), &mut out));
            }
        })
    });
}

criterion_group!(benches, bridge);
criterion_main!(benches);
