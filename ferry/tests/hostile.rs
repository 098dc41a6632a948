//! Hostile gateway folders, met through the real `ow-ferry` binary as operators meet them:
//! symlinks, FIFOs, directories and unmovable files are refused with their own reasons and never
//! stop the other bundles; manifests and markers are read carefully; sequences use all 64 bits;
//! headers missing fields and chains broken backwards are refused; `verify --config` and
//! `log verify --require-checkpoint` judge as strictly as the agent.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::Utc;
use common::{Pair, RxOptions, ferry, names, terminate, wait_until};
use ow_bundle::{BundleBuilder, Channel, Digest, SigningKey, Zone};

fn channel() -> Channel {
    Channel::new(Zone::Internet, Zone::Extranet).unwrap()
}

fn internet_key(pair: &Pair) -> SigningKey {
    ow_keys::load_signing_key(&pair.keys.join("internet.sign.secret")).unwrap()
}

/// A bundle signed by the internet zone with any sequence and previous digest.
fn signed_bundle(
    pair: &Pair,
    sequence: u64,
    prev: Option<Digest>,
    text: &str,
) -> (Vec<u8>, Digest) {
    signed_bundle_version(pair, sequence, prev, text, ow_bundle::FORMAT_VERSION)
}

/// Like [`signed_bundle`], in the given format version.
fn signed_bundle_version(
    pair: &Pair,
    sequence: u64,
    prev: Option<Digest>,
    text: &str,
    version: u16,
) -> (Vec<u8>, Digest) {
    let trust = ow_keys::load_trust(&pair.root().join("trust.toml")).unwrap();
    let now = Utc::now();
    let mut out = Vec::new();
    let packed = BundleBuilder::new(
        channel(),
        "demo.item",
        sequence,
        prev,
        now,
        now + chrono::Duration::hours(1),
    )
    .item_bytes("item.txt", "text/plain", text.as_bytes().to_vec())
    .encrypt_to(trust.receiver_encryption_key(channel()).unwrap())
    .format_version(version)
    .write(&internet_key(pair), &mut out)
    .unwrap();
    (out, packed.digest)
}

/// Re-signs a bundle after `edit` changed its header JSON (the layout of `docs/bundle-format.md`).
fn reforge(
    pair: &Pair,
    bundle: &[u8],
    edit: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let h = u32::from_be_bytes(bundle[12..16].try_into().unwrap()) as usize;
    let mut header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bundle[16..16 + h]).unwrap();
    edit(&mut header);
    let json = serde_json::to_vec(&header).unwrap();
    let rest = &bundle[16 + h + 2 + 64..];
    let mut prefix = bundle[..12].to_vec();
    prefix.extend_from_slice(&(json.len() as u32).to_be_bytes());
    let mut message = b"OneWindow bundle signature v1\0".to_vec();
    message.extend_from_slice(&prefix);
    message.extend_from_slice(&json);
    let signature = internet_key(pair).sign(&message).to_bytes();
    let mut out = prefix;
    out.extend_from_slice(&json);
    out.extend_from_slice(&64u16.to_be_bytes());
    out.extend_from_slice(&signature);
    out.extend_from_slice(rest);
    out
}

fn status(pair: &Pair) -> serde_json::Value {
    let out = ferry(&[
        "status",
        "--config",
        pair.receiver_config.to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn reason_codes(pair: &Pair) -> Vec<(String, String)> {
    let mut codes: Vec<(String, String)> = pair
        .reasons()
        .iter()
        .map(|r| {
            (
                r["file"].as_str().unwrap().to_owned(),
                r["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    codes.sort();
    codes
}

/// Clears the immutable flag a test set, so the temporary folder can be removed.
struct Mutable(PathBuf);

impl Drop for Mutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// Makes `path` impossible for the agent to move: immutable (even for root) where the file
/// system supports it, otherwise unreadable (chmod 000) for an agent that is not root.
fn make_unmovable(path: &Path) -> Mutable {
    let immutable = Command::new("chattr")
        .arg("+i")
        .arg(path)
        .status()
        .is_ok_and(|s| s.success());
    if !immutable {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o000)).unwrap();
        fs::set_permissions(path.parent().unwrap(), fs::Permissions::from_mode(0o555)).unwrap();
    }
    Mutable(path.to_path_buf())
}

#[test]
fn symlinks_fifos_directories_and_unmovable_files_are_set_aside_and_never_block_the_rest() {
    let pair = Pair::new(RxOptions::default());
    for n in 0..3 {
        pair.pack_small(n);
    }
    // A symlink to a valid bundle (from the outbox: the sender has not run yet).
    let victim = pair.outbox.join(&names(&pair.outbox)[0]);
    let victim_bytes = fs::read(&victim).unwrap();
    std::os::unix::fs::symlink(&victim, pair.gateway.join("a-link.owb")).unwrap();
    // A FIFO: opening it for reading without O_NONBLOCK would block the agent for ever.
    rustix::fs::mknodat(
        rustix::fs::CWD,
        pair.gateway.join("b-pipe.owb"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o644),
        0,
    )
    .unwrap();
    // A directory named like a bundle; a plain sub-folder is left alone.
    fs::create_dir(pair.gateway.join("c-dir.owb")).unwrap();
    fs::create_dir(pair.gateway.join("lost+found")).unwrap();
    // A refused file that cannot be moved to quarantine, sorted first.
    let stuck = pair.gateway.join("0-stuck.owb");
    fs::write(&stuck, b"not a bundle at all").unwrap();
    let _guard = make_unmovable(&stuck);

    let sender = pair.start_sender();
    let receiver = pair.start_receiver();
    assert!(
        wait_until(Duration::from_secs(30), || pair.inbox_bundles().len() == 3
            && pair.reasons().len() == 3),
        "inbox {:?}, reasons {:?}, gateway {:?}",
        pair.inbox_bundles(),
        reason_codes(&pair),
        names(&pair.gateway)
    );
    assert!(
        wait_until(Duration::from_secs(10), || {
            status(&pair)[0]["held"]
                .as_array()
                .is_some_and(|h| !h.is_empty())
        }),
        "{}",
        status(&pair)
    );
    assert!(terminate(sender));
    assert!(terminate(receiver));
    assert_eq!(
        reason_codes(&pair),
        vec![
            ("a-link.owb".to_string(), "symlink".to_string()),
            ("b-pipe.owb".to_string(), "fifo".to_string()),
            ("c-dir.owb".to_string(), "directory".to_string()),
        ]
    );
    // The link was moved, never followed: its target is untouched.
    assert_eq!(
        fs::read(pair.sent.join(names(&pair.sent)[0].clone()))
            .unwrap()
            .len(),
        victim_bytes.len()
    );
    assert!(
        fs::symlink_metadata(pair.quarantine.join("a-link.owb"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        pair.gateway.join("lost+found").is_dir(),
        "a plain sub-folder is not touched"
    );
    // The unmovable file is held, shown with its reason, and the rest went through.
    let report = status(&pair);
    let held = &report[0]["held"][0];
    assert_eq!(held["file"], "0-stuck.owb", "{report}");
    assert_eq!(held["code"], "cannot-quarantine", "{report}");
    assert!(
        held["message"].as_str().unwrap().contains("bad-magic"),
        "{report}"
    );
    let out = ferry(&["status", "--config", pair.receiver_config.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("0-stuck.owb"));
}

#[test]
fn manifests_are_read_with_a_cap_garbage_is_quarantined_and_links_vouch_for_nothing() {
    let pair = Pair::new(RxOptions {
        require_marker: true,
        incomplete_timeout_s: 1,
        settle_ms: 100,
        ..RxOptions::default()
    });
    pair.pack_small(1);
    let bundle = names(&pair.outbox)[0].clone();
    let bytes = fs::read(pair.outbox.join(&bundle)).unwrap();
    fs::remove_file(pair.outbox.join(&bundle)).unwrap();
    fs::write(pair.gateway.join(&bundle), &bytes).unwrap();
    // The only thing vouching for the bundle is a manifest reached through a symlink.
    let real_manifest = pair.root().join("elsewhere.done");
    fs::write(
        &real_manifest,
        ow_ferry::dropfolder::encode_manifest(&[(bundle.clone(), bytes.len() as u64)]),
    )
    .unwrap();
    std::os::unix::fs::symlink(&real_manifest, pair.gateway.join("batch-link.done")).unwrap();
    // A manifest far larger than any batch, and a garbage one.
    let huge = fs::File::create(pair.gateway.join("batch-huge.done")).unwrap();
    huge.set_len(64 << 20).unwrap();
    fs::write(
        pair.gateway.join("batch-garbage.done"),
        b"\xff\xfe garbage\n",
    )
    .unwrap();
    // A marker whose file never comes.
    fs::write(pair.gateway.join("never.owb.done"), b"").unwrap();

    let receiver = pair.start_receiver();
    assert!(
        wait_until(Duration::from_secs(20), || pair.reasons().len() == 3
            && !names(&pair.gateway).contains(&"never.owb.done".to_string())),
        "{:?} {:?}",
        reason_codes(&pair),
        names(&pair.gateway)
    );
    assert!(
        pair.inbox_bundles().is_empty(),
        "a symlinked manifest vouches for nothing"
    );
    assert!(terminate(receiver));
    assert_eq!(
        reason_codes(&pair),
        vec![
            (
                "batch-garbage.done".to_string(),
                "malformed-manifest".to_string()
            ),
            (
                "batch-huge.done".to_string(),
                "manifest-too-large".to_string()
            ),
            ("batch-link.done".to_string(), "symlink".to_string()),
        ]
    );
    assert!(real_manifest.exists(), "the link's target is not touched");
}

#[test]
fn both_format_versions_land_and_an_unknown_one_is_set_aside() {
    // A channel part-way through its upgrade: version 1 bundles still in transit land beside
    // version 2 ones; a version this build does not read is quarantined with its own code.
    let pair = Pair::new(RxOptions::default());
    let (two, two_digest) = signed_bundle_version(&pair, 1, None, "two", 2);
    let (one, _) = signed_bundle_version(&pair, 2, Some(two_digest), "one", 1);
    assert_eq!((&two[8..10], &one[8..10]), (&[0u8, 2][..], &[0u8, 1][..]));
    let mut three = one.clone();
    three[9] = 3;
    fs::write(pair.gateway.join("a-two.owb"), &two).unwrap();
    fs::write(pair.gateway.join("b-one.owb"), &one).unwrap();
    fs::write(pair.gateway.join("c-three.owb"), &three).unwrap();
    let receiver = pair.start_receiver();
    assert!(
        wait_until(Duration::from_secs(30), || pair.inbox_bundles().len() == 2
            && pair.reasons().len() == 1),
        "{:?} {:?}",
        pair.inbox_bundles(),
        reason_codes(&pair)
    );
    assert!(terminate(receiver));
    assert_eq!(
        reason_codes(&pair),
        vec![("c-three.owb".to_owned(), "unsupported-version".to_owned())]
    );
}

#[test]
fn sequences_above_two_to_the_63_land_and_show_in_status() {
    let pair = Pair::new(RxOptions::default());
    let high = (1u64 << 63) + 1;
    let (a, a_digest) = signed_bundle(&pair, high, Some(Digest::blake3(b"earlier")), "a");
    let (b, _) = signed_bundle(&pair, u64::MAX, Some(Digest::blake3(b"other")), "b");
    fs::write(pair.gateway.join("high.owb"), &a).unwrap();
    fs::write(pair.gateway.join("max.owb"), &b).unwrap();
    let receiver = pair.start_receiver();
    assert!(
        wait_until(Duration::from_secs(20), || pair.inbox_bundles().len() == 2),
        "{:?} {:?}",
        pair.inbox_bundles(),
        reason_codes(&pair)
    );
    // The channel is not blocked: an ordinary first bundle still lands.
    let (c, _) = signed_bundle(&pair, 1, None, "c");
    fs::write(pair.gateway.join("first.owb"), &c).unwrap();
    assert!(wait_until(Duration::from_secs(20), || pair
        .inbox_bundles()
        .len()
        == 3));
    assert!(terminate(receiver));
    assert!(pair.reasons().is_empty(), "{:?}", reason_codes(&pair));
    assert!(
        pair.inbox_bundles()
            .iter()
            .any(|n| n.contains(&format!(".{high:020}.")))
    );
    let report = status(&pair);
    assert_eq!(
        report[0]["last_sequence"],
        serde_json::json!(u64::MAX),
        "{report}"
    );
    assert_eq!(report[0]["count"], 3);
    assert_eq!(
        report[0]["gaps"],
        serde_json::json!([[2, high - 1], [high + 1, u64::MAX - 1]])
    );
    let _ = a_digest;
}

#[test]
fn headers_missing_a_field_are_refused() {
    let pair = Pair::new(RxOptions::default());
    let (first, first_digest) = signed_bundle(&pair, 1, None, "first");
    let no_prev = reforge(&pair, &first, |h| {
        h.remove("prev_digest");
    });
    let (second, _) = signed_bundle(&pair, 2, Some(first_digest), "second");
    let no_case = reforge(&pair, &second, |h| {
        h.remove("case_id");
    });
    fs::write(pair.gateway.join("no-prev.owb"), &no_prev).unwrap();
    fs::write(pair.gateway.join("no-case.owb"), &no_case).unwrap();
    let receiver = pair.start_receiver();
    assert!(wait_until(Duration::from_secs(20), || pair.reasons().len() == 2));
    assert!(terminate(receiver));
    assert!(pair.inbox_bundles().is_empty());
    for reason in pair.reasons() {
        assert_eq!(reason["code"], "malformed-header", "{reason}");
        let message = reason["message"].as_str().unwrap();
        assert!(message.contains("missing field"), "{message}");
    }
}

#[test]
fn a_bundle_arriving_after_its_successor_must_be_the_one_it_chains_to() {
    let pair = Pair::new(RxOptions::default());
    let (one, one_digest) = signed_bundle(&pair, 1, None, "one");
    let (two, _) = signed_bundle(&pair, 2, Some(one_digest), "two");
    // Another sequence 1, validly signed, that sequence 2 does not chain to.
    let (forked, _) = signed_bundle(&pair, 1, None, "a different one");
    fs::write(pair.gateway.join("two.owb"), &two).unwrap();
    let receiver = pair.start_receiver();
    assert!(wait_until(Duration::from_secs(20), || pair
        .inbox_bundles()
        .len()
        == 1));
    fs::write(pair.gateway.join("forked.owb"), &forked).unwrap();
    assert!(wait_until(Duration::from_secs(20), || pair.reasons().len() == 1));
    let reason = &pair.reasons()[0];
    assert_eq!(reason["code"], "chain-mismatch", "{reason}");
    assert_eq!(reason["file"], "forked.owb");
    // The genuine one still lands.
    fs::write(pair.gateway.join("one.owb"), &one).unwrap();
    assert!(wait_until(Duration::from_secs(20), || pair
        .inbox_bundles()
        .len()
        == 2));
    assert!(terminate(receiver));
    assert_eq!(status(&pair)[0]["gaps"], serde_json::json!([]));
}

#[test]
fn verify_with_a_configuration_applies_the_channel_limits() {
    let pair = Pair::new(RxOptions {
        allowed_kinds: vec!["application.submitted".into()],
        ..RxOptions::default()
    });
    let config_text = fs::read_to_string(&pair.receiver_config).unwrap();
    fs::write(
        &pair.receiver_config,
        config_text.replace("batch = 64\n", "batch = 64\nmax_bundle_bytes = 2000\n"),
    )
    .unwrap();
    let big = pair.root().join("big.txt");
    // Incompressible, so the bundle is larger than 2000 bytes.
    let noise: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    fs::write(&big, noise).unwrap();
    let packed = pair.pack("application.submitted", &[&big]);
    let big_bundle = packed["file"].as_str().unwrap().to_owned();
    let small = pair.pack_small(1);
    let small_bundle = small["file"].as_str().unwrap().to_owned();
    let verify = |file: &str| {
        let out = ferry(&[
            "verify",
            "--config",
            pair.receiver_config.to_str().unwrap(),
            file,
        ]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let (code, text) = verify(&big_bundle);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("[bundle-too-large]"), "{text}");
    let (code, text) = verify(&small_bundle);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("[kind-not-allowed]"), "{text}");
    // Without the configuration's policy the format alone accepts both.
    let out = ferry(&[
        "verify",
        "--trust",
        pair.root().join("trust.toml").to_str().unwrap(),
        "--receiver",
        "extranet",
        "--decryption-key",
        pair.keys.join("extranet.enc.secret").to_str().unwrap(),
        &small_bundle,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn log_verify(log: &Path, key: &Path, require: bool) -> (Option<i32>, String) {
    let mut args = vec![
        "log",
        "verify",
        "--log",
        log.to_str().unwrap(),
        "--public-key",
        key.to_str().unwrap(),
    ];
    if require {
        args.push("--require-checkpoint");
    }
    let out = ferry(&args);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn log_verify_requires_a_checkpoint_over_every_entry_when_asked() {
    let pair = Pair::new(RxOptions::default());
    pair.pack_small(1);
    let sender = pair.start_sender();
    let receiver = pair.start_receiver();
    assert!(wait_until(Duration::from_secs(20), || pair
        .inbox_bundles()
        .len()
        == 1));
    assert!(terminate(sender));
    assert!(terminate(receiver));
    let log = pair.rx_log();
    let key = pair.keys.join("extranet.sign.pub");
    assert_eq!(
        log_verify(&log, &key, true).0,
        Some(0),
        "a stopped agent's log is covered"
    );

    // An entry forged onto the end: it chains correctly, but no signature covers it.
    let entries_path = log.join("entries.jsonl");
    let text = fs::read_to_string(&entries_path).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let mut forged = last.clone();
    forged["index"] = serde_json::json!(last["index"].as_u64().unwrap() + 1);
    forged["prev"] = serde_json::json!(hex_leaf(text.lines().last().unwrap()));
    forged["event"] = serde_json::json!("landed");
    fs::write(
        &entries_path,
        format!("{text}{}\n", serde_json::to_string(&forged).unwrap()),
    )
    .unwrap();
    let (code, report) = log_verify(&log, &key, false);
    assert_eq!(code, Some(0), "{report}");
    assert!(report.contains("not covered"), "{report}");
    let (code, report) = log_verify(&log, &key, true);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report.contains("1 entries after the last signed checkpoint"),
        "{report}"
    );

    // Every checkpoint deleted.
    fs::write(&entries_path, &text).unwrap();
    fs::write(log.join("checkpoints.jsonl"), b"").unwrap();
    let (code, report) = log_verify(&log, &key, true);
    assert_eq!(code, Some(1), "{report}");
    assert!(report.contains("no signed checkpoint"), "{report}");
}

/// The leaf hash the log chains entries with: RFC 9162 leaf (0x00 prefix), SHA-256 or BLAKE3 as
/// the log uses; taken from the library so the forgery chains exactly as a real append would.
fn hex_leaf(line: &str) -> String {
    hex::encode(ow_ferrylog::merkle::leaf_hash(line.as_bytes()))
}

#[test]
fn the_sender_never_writes_through_a_link_and_one_unplaceable_bundle_does_not_stop_the_rest() {
    let pair = Pair::new(RxOptions::default());
    for n in 0..3 {
        pair.pack_small(n);
    }
    let outbox = names(&pair.outbox);
    // A symlink planted under the first bundle's temporary name, pointing at a file that must
    // not be overwritten.
    let victim = pair.root().join("victim.txt");
    fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, pair.gateway.join(format!(".{}.tmp", outbox[0]))).unwrap();
    // A non-empty directory under the second bundle's temporary name: it cannot be placed.
    let blocker = pair.gateway.join(format!(".{}.tmp", outbox[1]));
    fs::create_dir(&blocker).unwrap();
    fs::write(blocker.join("x"), b"x").unwrap();

    let sender = pair.start_sender();
    let receiver = pair.start_receiver();
    assert!(
        wait_until(Duration::from_secs(30), || pair.inbox_bundles().len() == 2),
        "{:?}",
        pair.inbox_bundles()
    );
    let sender_status = || {
        let out = ferry(&[
            "status",
            "--config",
            pair.sender_config.to_str().unwrap(),
            "--json",
        ]);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    assert!(
        wait_until(Duration::from_secs(10), || sender_status()[0]["held"]
            .as_array()
            .is_some_and(|h| h.len() == 1)),
        "{}",
        sender_status()
    );
    let report = sender_status();
    assert_eq!(report[0]["held"][0]["file"], outbox[1].as_str(), "{report}");
    assert_eq!(report[0]["held"][0]["code"], "cannot-place", "{report}");
    assert!(terminate(sender));
    assert!(terminate(receiver));
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert!(pair.inbox_bundles().iter().any(|n| n == &outbox[0]));
    assert!(pair.inbox_bundles().iter().any(|n| n == &outbox[2]));
    assert!(
        names(&pair.outbox).contains(&outbox[1]),
        "the held bundle is not lost"
    );
}

#[test]
fn per_file_markers_are_never_written_through_a_planted_symlink() {
    let pair = Pair::new(RxOptions::default());
    let text = fs::read_to_string(&pair.sender_config).unwrap();
    fs::write(
        &pair.sender_config,
        text.replace(
            "marker = true\n",
            "marker = true\nmarker_style = \"per-file\"\n",
        ),
    )
    .unwrap();
    pair.pack_small(1);
    let name = names(&pair.outbox)[0].clone();
    let victim = pair.root().join("victim.txt");
    fs::write(&victim, b"precious").unwrap();
    std::os::unix::fs::symlink(&victim, pair.gateway.join(format!("{name}.done"))).unwrap();
    let sender = pair.start_sender();
    assert!(wait_until(Duration::from_secs(20), || names(&pair.outbox).is_empty()));
    assert!(terminate(sender));
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    assert!(names(&pair.gateway).contains(&name));
}
