use chacha20poly1305::{AeadInPlace, ChaCha20Poly1305, KeyInit};
use std::io::{Read, Write};
use std::time::Instant;
fn cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<f64>().ok())
        })
        .map_or(0.0, |ns| ns / 1e9)
}
fn rep(name: &str, bytes: usize, f: impl FnOnce()) {
    let t = Instant::now();
    let c = cpu();
    f();
    let w = t.elapsed().as_secs_f64();
    let c = cpu() - c;
    println!(
        "{name:28} wall {:7.3}s cpu {:7.3}s  {:6.0} MB/s (cpu)",
        w,
        c,
        bytes as f64 / 1e6 / c
    );
}
fn main() {
    let size = 256usize << 20;
    let mut data = Vec::with_capacity(size);
    let mut h = blake3::Hasher::new();
    h.update(b"throughput");
    h.finalize_xof()
        .take(size as u64)
        .read_to_end(&mut data)
        .unwrap();
    let aead = ChaCha20Poly1305::new(&[7u8; 32].into());
    let mut buf = vec![0u8; 64 << 10];
    rep("chacha20poly1305 64K hot", size, || {
        for (i, c) in data.chunks(64 << 10).enumerate() {
            buf.copy_from_slice(c);
            let mut n = [0u8; 12];
            n[..8].copy_from_slice(&(i as u64).to_be_bytes());
            std::hint::black_box(
                aead.encrypt_in_place_detached(&n.into(), b"", &mut buf)
                    .unwrap(),
            );
        }
    });
    for lvl in [1, -1, -7, -50, -500] {
        let mut out = Vec::with_capacity(size + size / 100);
        out.resize(size + size / 100, 0);
        out.clear();
        rep(&format!("zstd {lvl} (prefaulted out)"), size, || {
            let mut e = zstd::stream::write::Encoder::new(&mut out, lvl).unwrap();
            e.include_checksum(false).unwrap();
            e.set_pledged_src_size(Some(size as u64)).unwrap();
            for c in data.chunks(256 << 10) {
                e.write_all(c).unwrap();
            }
            e.finish().unwrap();
        });
    }
    let text: Vec<u8> = (0..size)
        .map(|i| {
            b"the quick brown fox jumps over the lazy dog 0123456789 "[i % 55]
                ^ ((i / 997) as u8 & 1)
        })
        .collect();
    for lvl in [1, -1] {
        let mut out = Vec::with_capacity(size);
        rep(&format!("zstd {lvl} text"), size, || {
            let mut e = zstd::stream::write::Encoder::new(&mut out, lvl).unwrap();
            for c in text.chunks(256 << 10) {
                e.write_all(c).unwrap();
            }
            e.finish().unwrap();
        });
        println!(" size {}", out.len());
    }
}
