use sha2::Digest as _;
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
    let chunk = 256 << 10;
    rep("sha256", size, || {
        let mut s = sha2::Sha256::new();
        for c in data.chunks(chunk) {
            s.update(c);
        }
        std::hint::black_box(s.finalize());
    });
    rep("blake3 update", size, || {
        let mut s = blake3::Hasher::new();
        for c in data.chunks(chunk) {
            s.update(c);
        }
        std::hint::black_box(s.finalize());
    });
    rep("blake3 update 1MiB", size, || {
        let mut s = blake3::Hasher::new();
        for c in data.chunks(1 << 20) {
            s.update(c);
        }
        std::hint::black_box(s.finalize());
    });
    rep("memcpy", size, || {
        let mut v = vec![0u8; chunk];
        for c in data.chunks(chunk) {
            v.copy_from_slice(c);
            std::hint::black_box(&v);
        }
    });
    for lvl in [1, -1, -5] {
        let mut out = Vec::with_capacity(size + size / 100);
        rep(&format!("zstd {lvl}"), size, || {
            let mut e = zstd::stream::write::Encoder::new(&mut out, lvl).unwrap();
            e.include_checksum(false).unwrap();
            e.set_pledged_src_size(Some(size as u64)).unwrap();
            for c in data.chunks(chunk) {
                e.write_all(c).unwrap();
            }
            e.finish().unwrap();
        });
        println!("  out {}", out.len());
        rep(&format!("unzstd {lvl}"), size, || {
            let mut d = zstd::stream::read::Decoder::new(&out[..]).unwrap();
            let mut v = vec![0u8; chunk];
            while d.read(&mut v).unwrap() > 0 {}
        });
    }
    let id = age::x25519::Identity::generate();
    let r = id.to_public();
    let mut enc = Vec::with_capacity(size + size / 1000 + 1000);
    rep("age encrypt", size, || {
        let e =
            age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
        let mut w = e.wrap_output(&mut enc).unwrap();
        for c in data.chunks(chunk) {
            w.write_all(c).unwrap();
        }
        w.finish().unwrap();
    });
    rep("age decrypt", size, || {
        let d = age::Decryptor::new_buffered(&enc[..]).unwrap();
        let mut rd = d
            .decrypt(std::iter::once(&id as &dyn age::Identity))
            .unwrap();
        let mut v = vec![0u8; chunk];
        loop {
            let n = rd.read(&mut v).unwrap();
            if n == 0 {
                break;
            }
        }
    });
    // small
    let small = &data[..1024];
    let n = 2000;
    rep("age enc 1KiB x2000", n * 1024, || {
        for _ in 0..n {
            let e = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient))
                .unwrap();
            let mut o = Vec::new();
            let mut w = e.wrap_output(&mut o).unwrap();
            w.write_all(small).unwrap();
            w.finish().unwrap();
        }
    });
    rep("zstd ctx 1KiB x2000", n * 1024, || {
        for _ in 0..n {
            let mut o = Vec::new();
            let mut e = zstd::stream::write::Encoder::new(&mut o, 1).unwrap();
            e.write_all(small).unwrap();
            e.finish().unwrap();
        }
    });
    rep("zstd bulk 1KiB x2000", n * 1024, || {
        let mut c = zstd::bulk::Compressor::new(1).unwrap();
        for _ in 0..n {
            std::hint::black_box(c.compress(small).unwrap());
        }
    });
    rep("tempfile?? vec 64MiB cap x2000", 0, || {
        for _ in 0..n {
            std::hint::black_box(Vec::<u8>::with_capacity(4096 + 1024));
        }
    });
    rep("vec zero 256K x2000", 0, || {
        for _ in 0..n {
            std::hint::black_box(vec![0u8; 256 << 10]);
        }
    });
}
