//! Offline media throughput: `ow-ferry media export` of about 1 GiB of pending bundles onto a set
//! of discs, then `ow-ferry media import` of every disc, beside a plain copy (with fsync) of the
//! same bundle files measured in the same run: `cargo bench -p ow-ferry --bench media_throughput`.
//!
//! The export reads each bundle once, hashes it three ways (SHA-256, SHA-512, BLAKE3) while it
//! writes it to the disc, and syncs; the import reads each disc file once into private staging
//! while hashing it three ways, verifies every bundle (signature, decryption, item hashes), and
//! lands it through the receiving agent (its own private copy, verification and rename). So an
//! export is about one copy plus hashing, an import about two copies plus hashing and decryption.
//!
//! `OW_BENCH_MEDIA_MIB` (default 1024) sets the total, `OW_BENCH_MEDIA_BUNDLE_MIB` (default 64) the
//! size of one bundle's item, `OW_BENCH_MEDIA_CAPACITY` (default 4.7G) the disc size (a smaller
//! one makes a set, and a bundle larger than a disc is split), and `OW_BENCH_DIR` the folder.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;
use common::pseudo_random;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_ow-ferry");

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn ferry(args: &[&str]) -> std::process::Output {
    let out = Command::new(BIN)
        .args(args)
        .env("OW_LOG", "error")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ow-ferry {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "owb"))
        .collect();
    files.sort();
    files
}

fn bytes_of(files: &[PathBuf]) -> u64 {
    files.iter().map(|f| fs::metadata(f).unwrap().len()).sum()
}

/// Copies `files` into `to`, each synced, as a plain file copy would (the reference).
fn plain_copy(files: &[PathBuf], to: &Path) -> f64 {
    fs::create_dir_all(to).unwrap();
    let start = Instant::now();
    for file in files {
        let target = to.join(file.file_name().unwrap());
        fs::copy(file, &target).unwrap();
        File::open(&target).unwrap().sync_all().unwrap();
    }
    start.elapsed().as_secs_f64()
}

fn loadavg() -> String {
    let mut text = String::new();
    let _ = File::open("/proc/loadavg").and_then(|mut f| f.read_to_string(&mut text));
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let total_mib = env_or("OW_BENCH_MEDIA_MIB", 1024);
    let bundle_mib = env_or("OW_BENCH_MEDIA_BUNDLE_MIB", 64).max(1);
    let capacity = std::env::var("OW_BENCH_MEDIA_CAPACITY").unwrap_or_else(|_| "4.7G".into());
    let base = std::env::var_os("OW_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::tempdir_in(base).unwrap();
    let root = dir.path();
    let keys = root.join("keys");
    let s = |p: &Path| p.to_str().unwrap().to_owned();
    for zone in ["internet", "extranet"] {
        ferry(&["keygen", "--zone", zone, "--out", &s(&keys)]);
    }
    ferry(&[
        "trust",
        "--keys",
        &s(&keys),
        "--out",
        &s(&root.join("trust.toml")),
        "--channel",
        "internet-to-extranet",
    ]);
    let sender = root.join("internet.toml");
    let receiver = root.join("extranet.toml");
    fs::write(
        &sender,
        "zone = \"internet\"\ndata_dir = \"internet/ferry\"\n[keys]\n\
         signing_key = \"keys/internet.sign.secret\"\nencryption_key = \"keys/internet.enc.secret\"\n\
         trust_file = \"trust.toml\"\n[[media]]\nchannel = \"internet-to-extranet\"\n\
         outbox = \"internet/media-outbox\"\n",
    )
    .unwrap();
    fs::write(
        &receiver,
        "zone = \"extranet\"\ndata_dir = \"extranet/ferry\"\n[keys]\n\
         signing_key = \"keys/extranet.sign.secret\"\nencryption_key = \"keys/extranet.enc.secret\"\n\
         trust_file = \"trust.toml\"\n[[media]]\nchannel = \"internet-to-extranet\"\n\
         inbox = \"extranet/inbox\"\n",
    )
    .unwrap();

    // The bundles: pseudo-random (incompressible) items, packed with the real CLI.
    let outbox = root.join("internet/media-outbox");
    fs::create_dir_all(&outbox).unwrap();
    let item = root.join("item.bin");
    let count = total_mib.div_ceil(bundle_mib);
    for i in 0..count {
        pseudo_random(&item, bundle_mib << 20, i);
        ferry(&[
            "pack",
            "--config",
            &s(&sender),
            "--channel",
            "internet-to-extranet",
            "--kind",
            "survey.package",
            "--out",
            &s(&outbox),
            &s(&item),
        ]);
    }
    fs::remove_file(&item).unwrap();
    let bundles = files(&outbox);
    let bytes = bytes_of(&bundles);
    let mb = bytes as f64 / 1e6;
    let load_before = loadavg();

    // Reference first, on the same files and the same file system.
    let copy_dir = root.join("plain-copy");
    let copy_s = plain_copy(&bundles, &copy_dir);
    fs::remove_dir_all(&copy_dir).unwrap();

    let set = root.join("set");
    let start = Instant::now();
    let out = ferry(&[
        "media",
        "export",
        "--config",
        &s(&sender),
        "--set",
        &s(&set),
        "--capacity",
        &capacity,
    ]);
    let export_s = start.elapsed().as_secs_f64();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let discs: Vec<String> = report["discs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["folder"].as_str().unwrap().to_owned())
        .collect();
    // The bundles moved to `sent/`; free the space before importing.
    fs::remove_dir_all(root.join("internet/ferry/sent")).unwrap();

    let start = Instant::now();
    for disc in &discs {
        ferry(&["media", "import", "--config", &s(&receiver), "--disc", disc]);
    }
    let import_s = start.elapsed().as_secs_f64();
    let landed = files(&root.join("extranet/inbox"));
    assert_eq!(landed.len(), bundles.len(), "not every bundle landed");
    assert_eq!(bytes_of(&landed), bytes);
    let load_after = loadavg();

    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "offline media: {count} bundles, {mb:.0} MB, {} disc(s) of {capacity}",
        discs.len()
    );
    println!("  load average (1/5/15 min) before {load_before}, after {load_after}; {cores} cores");
    println!(
        "  reference: plain copy + fsync of the same files   {:>8.1} MB/s  ({copy_s:.1} s)",
        mb / copy_s
    );
    println!(
        "  media export (copy + 3 digests + sign + record) {:>8.1} MB/s  ({export_s:.1} s)  = {:.2} × copy",
        mb / export_s,
        copy_s / export_s
    );
    println!(
        "  media import (check, stage, verify, land)        {:>8.1} MB/s  ({import_s:.1} s)  = {:.2} × copy",
        mb / import_s,
        copy_s / import_s
    );
}
