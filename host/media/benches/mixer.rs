//! The conference mixer's cost per 20 ms tick (every participant pushes a frame, then one
//! `mix`), for conference sizes from a bridge-like 2 to 100. Run with
//! `cargo bench -p pbx-media --bench mixer`.
#![allow(clippy::unwrap_used, reason = "benchmark setup on fixed inputs")]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use pbx_media::Mixer;

fn speech_like(seed: usize, amp: f64) -> [i16; 160] {
    let mut pcm = [0i16; 160];
    for (i, s) in pcm.iter_mut().enumerate() {
        let t = i as f64 / 8000.0;
        let f = 200.0 + 37.0 * seed as f64;
        *s = (amp * (2.0 * std::f64::consts::PI * f * t).sin()) as i16;
    }
    pcm
}

fn mixer(c: &mut Criterion) {
    let mut group = c.benchmark_group("mixer tick (push all + mix)");
    for n in [2u64, 3, 5, 15, 50, 100] {
        // Quiet talkers (-24 dBFS each): the limiter's fast path, the usual case.
        let quiet: Vec<[i16; 160]> = (0..n as usize).map(|i| speech_like(i, 2000.0)).collect();
        let mut m = Mixer::new(160);
        for id in 0..n {
            m.add(id);
        }
        group.bench_with_input(BenchmarkId::new("quiet", n), &n, |b, &n| {
            b.iter(|| {
                for id in 0..n {
                    m.push(id, &quiet[id as usize]);
                }
                m.mix();
                black_box(m.output(0)[0]);
            })
        });
        // Everyone loud (-6 dBFS): every output is limited.
        let loud: Vec<[i16; 160]> = (0..n as usize).map(|i| speech_like(i, 16000.0)).collect();
        group.bench_with_input(BenchmarkId::new("loud", n), &n, |b, &n| {
            b.iter(|| {
                for id in 0..n {
                    m.push(id, &loud[id as usize]);
                }
                m.mix();
                black_box(m.output(0)[0]);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, mixer);
criterion_main!(benches);
