//! Ferry throughput, end to end, beside the machine's physical references measured in the same
//! run: `cargo bench -p ow-ferry`.
//!
//! * small: N bundles of one 1 KiB item, pack → outbox → sending agent → gateway folder →
//!   receiving agent (verify) → inbox; bundles/s from the first pack to the last landing.
//! * large: one bundle with a 256 MiB item, the same path; MB/s. Bundles are written in format
//!   version 2 (the default); the large bundle and the batched small bundles are measured in
//!   version 1 too (the trust file's `bundle_format_version = 1`), in the same run.
//! * references: fsync'd 1 KiB file writes/s, a plain copy of the same bytes between the same
//!   folders, and BLAKE3 hashing speed.
//!
//! Sizes can be changed with `OW_BENCH_SMALL` (count) and `OW_BENCH_LARGE_MIB`; the folders are
//! made under `OW_BENCH_DIR` (default: the system temporary folder).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::pseudo_random;
use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use ow_bundle::{Channel, Zone};
use ow_ferry::agent;
use ow_ferry::config::FerryConfig;
use ow_ferry::pack::{self, PackItem, PackRequest};
use ow_ferry::state::FerryState;

/// Bundles packed per group commit in the main small-bundle run (a zone sending a burst of
/// status updates packs them together).
const SMALL_BATCH: usize = 64;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Bench {
    _dir: tempfile::TempDir,
    root: PathBuf,
    sender: FerryConfig,
    receiver: FerryConfig,
}

fn setup() -> Bench {
    let base = std::env::var_os("OW_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).unwrap();
    let root = dir.path().to_path_buf();
    let keys = root.join("keys");
    ow_keys::generate_zone_keys(&keys, Zone::Internet).unwrap();
    ow_keys::generate_zone_keys(&keys, Zone::Extranet).unwrap();
    let channel = Channel::new(Zone::Internet, Zone::Extranet).unwrap();
    let trust = ow_keys::trust_from_key_dir(&keys, &[channel]).unwrap();
    fs::write(root.join("trust.toml"), trust.to_toml_string()).unwrap();
    let sender_text = r#"zone = "internet"
data_dir = "internet/ferry"
[keys]
signing_key = "keys/internet.sign.secret"
encryption_key = "keys/internet.enc.secret"
trust_file = "trust.toml"
[[send]]
channel = "internet-to-extranet"
outbox = "internet/outbox"
gateway = "gateway"
marker = true
rescan_ms = 50
"#;
    let receiver_text = r#"zone = "extranet"
data_dir = "extranet/ferry"
[keys]
signing_key = "keys/extranet.sign.secret"
encryption_key = "keys/extranet.enc.secret"
trust_file = "trust.toml"
[[receive]]
channel = "internet-to-extranet"
gateway = "gateway"
inbox = "extranet/inbox"
require_marker = true
rescan_ms = 50
"#;
    let sender_path = root.join("internet.toml");
    let receiver_path = root.join("extranet.toml");
    fs::write(&sender_path, sender_text).unwrap();
    fs::write(&receiver_path, receiver_text).unwrap();
    Bench {
        sender: FerryConfig::load(&sender_path).unwrap(),
        receiver: FerryConfig::load(&receiver_path).unwrap(),
        root,
        _dir: dir,
    }
}

fn count_landed(inbox: &Path) -> usize {
    fs::read_dir(inbox)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.ends_with(".owb") && !n.starts_with('.')
                })
                .count()
        })
        .unwrap_or(0)
}

/// Runs both zones' agents and packs `items` (one bundle each) as fast as the packer goes;
/// returns the seconds from the first pack to the last landing and the seconds packing took.
fn end_to_end(bench: &Bench, items: &[PathBuf], batch: usize, version: u16) -> (f64, f64) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let receiving = agent::start_zone(&bench.receiver).unwrap();
    let sending = agent::start_zone(&bench.sender).unwrap();
    let signing = ow_keys::load_signing_key(&bench.sender.keys.signing_key).unwrap();
    let mut trust = ow_keys::load_trust(&bench.sender.keys.trust_file).unwrap();
    trust.set_bundle_format_version(
        Channel::new(Zone::Internet, Zone::Extranet).unwrap(),
        version,
    );
    let state = runtime
        .block_on(FerryState::open(&bench.sender.state_db()))
        .unwrap();
    let outbox = bench.sender.send[0].outbox.clone();
    let inbox = bench.receiver.receive[0].inbox.clone();
    let before = count_landed(&inbox);
    let start = Instant::now();
    for chunk in items.chunks(batch) {
        let requests: Vec<PackRequest> = chunk
            .iter()
            .map(|item| PackRequest {
                channel: Channel {
                    from: Zone::Internet,
                    to: Zone::Extranet,
                },
                kind: "bench.item".into(),
                case_id: None,
                valid_for: chrono::Duration::hours(1),
                encrypt: true,
                items: vec![PackItem {
                    name: "item.bin".into(),
                    media_type: "application/octet-stream".into(),
                    path: item.clone(),
                    open: None,
                }],
            })
            .collect();
        runtime
            .block_on(pack::pack_many_into_outbox(
                &state,
                &signing,
                &trust,
                &outbox,
                &requests,
                Utc::now(),
            ))
            .unwrap();
    }
    let packed = start.elapsed().as_secs_f64();
    let want = before + items.len();
    let deadline = Instant::now() + Duration::from_secs(600);
    while count_landed(&inbox) < want {
        assert!(
            Instant::now() < deadline,
            "bundles did not land within 10 minutes"
        );
        // Every 10 ms: listing a folder of thousands of files more often takes CPU from the agents
        // being measured.
        std::thread::sleep(Duration::from_millis(10));
    }
    let total = start.elapsed().as_secs_f64();
    runtime.block_on(state.close());
    sending.stop().unwrap();
    receiving.stop().unwrap();
    (total, packed)
}

fn fsync_writes_per_s(dir: &Path, n: usize) -> f64 {
    fs::create_dir_all(dir).unwrap();
    let data = [0x5au8; 1024];
    let start = Instant::now();
    for i in 0..n {
        let mut f = File::create(dir.join(format!("f{i}"))).unwrap();
        f.write_all(&data).unwrap();
        f.sync_all().unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn copy_files_per_s(from: &Path, to: &Path, n: usize) -> f64 {
    fs::create_dir_all(to).unwrap();
    let start = Instant::now();
    for i in 0..n {
        fs::copy(from.join(format!("f{i}")), to.join(format!("f{i}"))).unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

fn blake3_mb_s(len: usize) -> f64 {
    let buf = vec![0xa5u8; len];
    let start = Instant::now();
    let mut hasher = blake3::Hasher::new();
    hasher.update(&buf);
    std::hint::black_box(hasher.finalize());
    len as f64 / 1e6 / start.elapsed().as_secs_f64()
}

fn cpu_model() -> String {
    let mut text = String::new();
    let _ = File::open("/proc/cpuinfo").and_then(|mut f| f.read_to_string(&mut text));
    text.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "unknown CPU".into())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing we need.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let small = env_or("OW_BENCH_SMALL", 5000) as usize;
    let large_mib = env_or("OW_BENCH_LARGE_MIB", 256);
    let bench = setup();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("ow-ferry throughput — {} core(s), {}", cores, cpu_model());
    println!("folders under {}", bench.root.display());
    println!();

    // Physical references, same folders' file system.
    let refs = bench.root.join("refs");
    let fsyncs = fsync_writes_per_s(&refs.join("a"), 2000);
    let copies = copy_files_per_s(&refs.join("a"), &refs.join("b"), 2000);
    let hash = blake3_mb_s(256 << 20);

    // Small bundles.
    let items_dir = bench.root.join("items");
    fs::create_dir_all(&items_dir).unwrap();
    let small_items: Vec<PathBuf> = (0..small)
        .map(|i| {
            let p = items_dir.join(format!("s{i}.bin"));
            pseudo_random(&p, 1024, i as u64);
            p
        })
        .collect();
    let (small_total, small_pack) = end_to_end(&bench, &small_items, SMALL_BATCH, 2);
    let small_rate = small as f64 / small_total;
    let (small_v1_total, small_v1_pack) = end_to_end(&bench, &small_items, SMALL_BATCH, 1);
    let small_v1_rate = small as f64 / small_v1_total;
    let singles = &small_items[..small / 5];
    let (single_total, _) = end_to_end(&bench, singles, 1, 2);
    let single_rate = singles.len() as f64 / single_total;

    // One large bundle.
    let large = items_dir.join("large.bin");
    let large_bytes = large_mib << 20;
    pseudo_random(&large, large_bytes, 42);
    let large_copy_start = Instant::now();
    fs::copy(&large, refs.join("large-copy.bin")).unwrap();
    File::open(refs.join("large-copy.bin"))
        .unwrap()
        .sync_all()
        .unwrap();
    let copy_mb_s = large_bytes as f64 / 1e6 / large_copy_start.elapsed().as_secs_f64();
    let (large_total, large_pack) = end_to_end(&bench, std::slice::from_ref(&large), 1, 2);
    let large_rate = large_bytes as f64 / 1e6 / large_total;
    let (large_v1_total, large_v1_pack) = end_to_end(&bench, std::slice::from_ref(&large), 1, 1);
    let large_v1_rate = large_bytes as f64 / 1e6 / large_v1_total;
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();

    println!("{:<58} {:>14}", "measure", "figure");
    println!(
        "{:<58} {:>10.0} /s",
        format!("end to end, {small} bundles of 1 KiB (packed in batches)"),
        small_rate
    );
    println!(
        "{:<58} {:>10.0} /s",
        format!("  packing alone (signed, encrypted; batches of {SMALL_BATCH})"),
        small as f64 / small_pack
    );
    println!(
        "{:<58} {:>10.0} /s",
        "  same, format version 1", small_v1_rate
    );
    println!(
        "{:<58} {:>10.0} /s",
        "  packing alone, version 1",
        small as f64 / small_v1_pack
    );
    println!(
        "{:<58} {:>10.0} /s",
        format!("end to end, {} bundles packed one at a time", singles.len()),
        single_rate
    );
    println!(
        "{:<58} {:>10.0} /s",
        "reference: fsync'd 1 KiB file writes", fsyncs
    );
    println!(
        "{:<58} {:>10.0} /s",
        "reference: plain copy of 1 KiB files between folders", copies
    );
    println!(
        "{:<58} {:>10.1} MB/s",
        format!("end to end, one {large_mib} MiB payload"),
        large_rate
    );
    println!(
        "{:<58} {:>10.1} MB/s",
        "  of which packing alone",
        large_bytes as f64 / 1e6 / large_pack
    );
    println!(
        "{:<58} {:>10.1} MB/s",
        "  same, format version 1", large_v1_rate
    );
    println!(
        "{:<58} {:>10.1} MB/s",
        "  of which packing alone, version 1",
        large_bytes as f64 / 1e6 / large_v1_pack
    );
    println!(
        "{:<58} {:>10.1} MB/s",
        "reference: plain copy + fsync of the same bytes", copy_mb_s
    );
    println!(
        "{:<58} {:>10.1} MB/s",
        "reference: BLAKE3 (one thread)", hash
    );
    println!();
    println!(
        "ratios: small end-to-end / fsync'd writes = {:.2} (version 1: {:.2}); large end-to-end / plain copy = {:.2} (version 1: {:.2})",
        small_rate / fsyncs,
        small_v1_rate / fsyncs,
        large_rate / copy_mb_s,
        large_v1_rate / copy_mb_s
    );
    println!("load average at the end: {}", load.trim());
}
