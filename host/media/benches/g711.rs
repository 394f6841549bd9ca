//! Micro-benchmarks of the per-packet hot path: G.711 encode/decode of one 20 ms frame and
//! RTP header parsing. Run with `cargo bench -p pbx-media`.
#![allow(clippy::unwrap_used, reason = "benchmark setup on fixed inputs")]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pbx_media::{Codec, RtpHeader, RtpPacket};

fn frame() -> [i16; 160] {
    let mut pcm = [0i16; 160];
    for (i, s) in pcm.iter_mut().enumerate() {
        *s = ((i as f64 * 0.3456).sin() * 12000.0) as i16;
    }
    pcm
}

fn g711(c: &mut Criterion) {
    let pcm = frame();
    for codec in [Codec::Pcmu, Codec::Pcma] {
        let mut enc = [0u8; 160];
        c.bench_function(&format!("{codec} encode 20 ms"), |b| {
            b.iter(|| codec.encode(black_box(&pcm), black_box(&mut enc)))
        });
        codec.encode(&pcm, &mut enc);
        let mut dec = [0i16; 160];
        c.bench_function(&format!("{codec} decode 20 ms"), |b| {
            b.iter(|| codec.decode(black_box(&enc), black_box(&mut dec)))
        });
    }
}

fn rtp(c: &mut Criterion) {
    let header = RtpHeader {
        marker: false,
        payload_type: 0,
        sequence: 4711,
        timestamp: 160 * 4711,
        ssrc: 0x1234_5678,
    };
    let mut buf = [0u8; 172];
    let n = header.write_packet(&[0xff; 160], &mut buf).unwrap();
    c.bench_function("RTP parse", |b| {
        b.iter(|| {
            let p = RtpPacket::parse(black_box(&buf[..n])).unwrap();
            (p.sequence(), p.payload().len())
        })
    });
}

criterion_group!(benches, g711, rtp);
criterion_main!(benches);
