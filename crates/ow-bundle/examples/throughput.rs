//! Measures pack and verify throughput for one large pseudo-random item.
//!
//! `cargo run --release -p ow-bundle --example throughput -- [MiB] [plain] [spool] [v1]`
//!
//! `v1` writes format version 1 (one age stream) instead of version 2 (parallel chunks).
//! The bundle is written with `BundleBuilder::write_to_file` (payload written in place), or with
//! `spool`, through `BundleBuilder::write` (payload spooled, then copied after the header).

use std::io::{Read, Seek, SeekFrom};
use std::time::Instant;

use chrono::{Duration, Utc};
use ow_bundle::*;

/// CPU time of the calling thread in seconds (Linux), to judge throughput on a busy machine.
fn thread_cpu() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<f64>().ok())
        })
        .map_or(0.0, |ns| ns / 1e9)
}

/// CPU time of the whole process (all threads) in seconds (Linux; 10 ms resolution).
fn process_cpu() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let mib: u64 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(200);
    let rest: Vec<String> = args.collect();
    let encrypted = !rest.iter().any(|a| a == "plain");
    let spooled = rest.iter().any(|a| a == "spool");
    let version = if rest.iter().any(|a| a == "v1") {
        FORMAT_VERSION_1
    } else {
        FORMAT_VERSION
    };
    let size = mib << 20;
    let signer = generate_signing_key()?;
    let secret = EncryptionSecret::generate();
    let channel: Channel = "internet-to-extranet".parse()?;
    let mut trust = TrustStore::new();
    trust.add_sender_key(channel, signer.verifying_key())?;
    let now = Utc::now();

    // Pre-generate the data so the measurement is the bundle code only.
    let mut data = Vec::with_capacity(size as usize);
    let mut h = blake3::Hasher::new();
    h.update(b"throughput");
    h.finalize_xof().take(size).read_to_end(&mut data)?;

    let mut file = tempfile::tempfile()?;
    let t = Instant::now();
    let c0 = thread_cpu();
    let p0 = process_cpu();
    let mut b = BundleBuilder::new(channel, "bench", 1, None, now, now + Duration::hours(1))
        .format_version(version);
    b = if encrypted {
        b.encrypt_to(&secret.public())
    } else {
        b.without_encryption()
    };
    let b = b.item_bytes("big.bin", "application/octet-stream", data.as_slice());
    let packed = if spooled {
        b.write(&signer, &mut file)?
    } else {
        b.write_to_file(&signer, &file)?
    };
    let pack = t.elapsed();
    let pack_cpu = thread_cpu() - c0;
    let pack_all = process_cpu() - p0;
    file.seek(SeekFrom::Start(0))?;
    let t = Instant::now();
    let c0 = thread_cpu();
    let p1 = process_cpu();
    let opts = VerifyOptions::new(&trust, Zone::Extranet, Some(&secret), now);
    verify_to_sink(&mut file, &opts, &mut DiscardSink)?;
    let check = t.elapsed();
    let check_cpu = thread_cpu() - c0;
    let check_all = process_cpu() - p1;
    let all_cpu = process_cpu() - p0;
    let mb = size as f64 / 1e6;
    println!(
        "{mib} MiB version={version} encrypted={encrypted} spooled={spooled} bundle={} bytes: pack {:.3}s ({:.0} MB/s) verify {:.3}s ({:.0} MB/s) pack+verify {:.0} MB/s",
        packed.total_len,
        pack.as_secs_f64(),
        mb / pack.as_secs_f64(),
        check.as_secs_f64(),
        mb / check.as_secs_f64(),
        mb / (pack + check).as_secs_f64()
    );
    println!(
        "  CPU: calling thread pack {pack_cpu:.3}s + verify {check_cpu:.3}s, all threads pack {pack_all:.2}s + verify {check_all:.2}s = {all_cpu:.2}s; with two free cores about {:.0} MB/s",
        mb / (pack_cpu + check_cpu).max(all_cpu / 2.0)
    );
    Ok(())
}
