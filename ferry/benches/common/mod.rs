//! Pieces the ferry's benchmarks share.

#![allow(clippy::unwrap_used)]

use std::fs::File;
use std::io::Write;
use std::path::Path;

/// Writes `len` incompressible bytes to `path`, the same for the same `seed` (BLAKE3's XOF), so
/// compression flatters no figure.
pub fn pseudo_random(path: &Path, len: u64, seed: u64) {
    let mut xof = blake3::Hasher::new()
        .update(&seed.to_le_bytes())
        .finalize_xof();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    let mut buf = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        let n = left.min(buf.len() as u64) as usize;
        xof.fill(&mut buf[..n]);
        out.write_all(&buf[..n]).unwrap();
        left -= n as u64;
    }
    out.flush().unwrap();
}
