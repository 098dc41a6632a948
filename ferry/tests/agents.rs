//! The real `ow-ferry` binary carrying bundles between two zones through a gateway folder:
//! round trip, audit, replay after restart, gaps, slow writers, refusals and quarantine.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::fs;
use std::io::Write;
use std::time::Duration;

use common::{Pair, RxOptions, ferry, names, terminate, wait_until};

#[test]
fn bundles_cross_once_and_both_logs_verify() {
    let pair = Pair::new(RxOptions::default());
    let big = pair.root().join("plan.pdf");
    fs::write(&big, b"%PDF-1.7\n".repeat(50_000)).unwrap();
    let photo = pair.root().join("empty.png");
    fs::write(&photo, b"").unwrap();
    let first = pair.pack("application.submitted", &[&big, &photo]);
    for n in 0..5 {
        pair.pack_small(n);
    }
    let sender = pair.start_sender();
    let receiver = pair.start_receiver();
    assert!(
        wait_until(Duration::from_secs(30), || pair.inbox_bundles().len() == 6),
        "inbox: {:?}",
        pair.inbox_bundles()
    );
    assert!(terminate(sender), "sender exits cleanly on SIGTERM");
    assert!(terminate(receiver), "receiver exits cleanly on SIGTERM");

    // Everything landed verifies again, as the zone's importer will check it.
    let first_file = pair
        .inbox_bundles()
        .into_iter()
        .find(|n| n.contains(first["bundle_id"].as_str().unwrap()))
        .unwrap();
    let out = ferry(&[
        "verify",
        "--config",
        pair.receiver_config.to_str().unwrap(),
        pair.inbox.join(&first_file).to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 item(s)"));

    // Outbox empty, bundles filed in sent/, no leftovers in the gateway folder.
    assert!(names(&pair.outbox).is_empty(), "{:?}", names(&pair.outbox));
    assert_eq!(names(&pair.sent).len(), 6);
    assert!(
        names(&pair.gateway).is_empty(),
        "{:?}",
        names(&pair.gateway)
    );
    assert!(pair.reasons().is_empty());

    // Both logs verify with the zones' public keys, and record each bundle's journey.
    for (log, key) in [
        (pair.tx_log(), pair.keys.join("internet.sign.pub")),
        (pair.rx_log(), pair.keys.join("extranet.sign.pub")),
    ] {
        let out = ferry(&[
            "log",
            "verify",
            "--log",
            log.to_str().unwrap(),
            "--public-key",
            key.to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        // The final checkpoint on shutdown covers every entry.
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("0 entries after it"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let out = ferry(&[
        "log",
        "show",
        "--log",
        pair.rx_log().to_str().unwrap(),
        "--event",
        "landed",
        "--json",
    ]);
    assert!(out.status.success());
    let landed: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(landed.len(), 6);
    assert!(landed.iter().any(|e| e["bundle_id"] == first["bundle_id"]));

    // Status from the configuration.
    let out = ferry(&[
        "status",
        "--config",
        pair.receiver_config.to_str().unwrap(),
        "--json",
    ]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[0]["last_sequence"], 6);
    assert_eq!(status[0]["count"], 6);
    assert_eq!(status[0]["gaps"], serde_json::json!([]));

    // An inclusion proof for the landing of the first bundle checks against the key alone.
    let index = landed[0]["index"].as_u64().unwrap().to_string();
    let out = ferry(&[
        "log",
        "prove",
        "--log",
        pair.rx_log().to_str().unwrap(),
        "--index",
        &index,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let proof = pair.root().join("proof.json");
    fs::write(&proof, &out.stdout).unwrap();
    let out = ferry(&[
        "log",
        "verify-proof",
        "--proof",
        proof.to_str().unwrap(),
        "--public-key",
        pair.keys.join("extranet.sign.pub").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = ferry(&[
        "log",
        "verify-proof",
        "--proof",
        proof.to_str().unwrap(),
        "--public-key",
        pair.keys.join("internet.sign.pub").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a proof checked with the wrong key fails"
    );

    // An edited entry in the receiver's log is found and named by `log verify`.
    let entries = pair.rx_log().join("entries.jsonl");
    let text = fs::read_to_string(&entries).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    lines[2] = lines[2].replacen("\"bytes\":", "\"bytes\":1", 1);
    fs::write(&entries, lines.join("\n") + "\n").unwrap();
    let out = ferry(&[
        "log",
        "verify",
        "--log",
        pair.rx_log().to_str().unwrap(),
        "--public-key",
        pair.keys.join("extranet.sign.pub").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("TAMPERED"), "{report}");
    assert!(report.contains("entry 2"), "{report}");
}

#[test]
fn a_replay_after_restart_is_refused_and_quarantined() {
    let pair = Pair::new(RxOptions::default());
    pair.pack_small(1);
    let sender = pair.start_sender();
    let receiver = pair.start_receiver();
    assert!(wait_until(Duration::from_secs(20), || pair
        .inbox_bundles()
        .len()
        == 1));
    assert!(terminate(receiver));
    assert!(terminate(sender));

    // Someone copies the sent bundle back into the gateway folder, and the zone has already
    // imported and removed what landed.
    let sent = names(&pair.sent)[0].clone();
    fs::copy(pair.sent.join(&sent), pair.gateway.join("replayed.owb")).unwrap();
    fs::remove_file(pair.inbox.join(&pair.inbox_bundles()[0])).unwrap();

    let receiver = pair.start_receiver();
    assert!(wait_until(Duration::from_secs(20), || pair.reasons().len() == 1));
    assert!(terminate(receiver));
    let reason = &pair.reasons()[0];
    assert_eq!(reason["code"], "duplicate", "{reason}");
    assert!(
        reason["message"]
            .as_str()
            .unwrap()
            .contains("already landed")
    );
    assert!(
        pair.inbox_bundles().is_empty(),
        "a replay never reaches the inbox"
    );
    assert!(names(&pair.quarantine).contains(&"replayed.owb".to_string()));
}

#[test]
fn a_missing_sequence_is_reported_as_a_gap() {
    let pair = Pair::new(RxOptions::default());
    for n in 1..=3 {
        pair.pack_small(n);
    }
    // Lose sequence 2 between the outbox and the gateway.
    let lost = names(&pair.outbox)
        .into_iter()
        .find(|n| n.contains(&format!(".{:020}.", 2)))
        .unwrap();
    fs::remove_file(pair.outbox.join(lost)).unwrap();
    let sender = pair.start_sender();
    let receiver = pair.start_receiver();
    assert!(wait_until(Duration::from_secs(20), || pair
        .inbox_bundles()
        .len()
        == 2));
    assert!(terminate(sender));
    assert!(terminate(receiver));
    let out = ferry(&["status", "--config", pair.receiver_config.to_str().unwrap()]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("GAPS"), "{table}");
    let out = ferry(&[
        "status",
        "--config",
        pair.receiver_config.to_str().unwrap(),
        "--json",
    ]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status[0]["gaps"], serde_json::json!([[2, 2]]));
    let out = ferry(&[
        "log",
        "show",
        "--log",
        pair.rx_log().to_str().unwrap(),
        "--event",
        "gap",
        "--json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("missing sequences 2..=2"), "{text}");
}

#[test]
fn a_slow_writer_is_landed_once_complete_not_quarantined() {
    // Settle time shorter than the writer's pauses: the file looks settled while it is still
    // growing, verification finds it short, and the agent waits instead of quarantining.
    let pair = Pair::new(RxOptions {
        settle_ms: 150,
        ..RxOptions::default()
    });
    let item = pair.root().join("scan.pdf");
    fs::write(&item, b"%PDF-1.7 slow".repeat(20_000)).unwrap();
    pair.pack("application.submitted", &[&item]);
    let bundle = pair.outbox.join(&names(&pair.outbox)[0]);
    let bytes = fs::read(&bundle).unwrap();
    fs::remove_file(&bundle).unwrap();

    let receiver = pair.start_receiver();
    let target = pair.gateway.join("slow.owb");
    let mut file = fs::File::create(&target).unwrap();
    let chunks: Vec<&[u8]> = bytes.chunks(bytes.len() / 8 + 1).collect();
    for chunk in chunks {
        file.write_all(chunk).unwrap();
        file.flush().unwrap();
        std::thread::sleep(Duration::from_millis(400));
        assert!(pair.reasons().is_empty(), "quarantined while still growing");
    }
    drop(file);
    assert!(wait_until(Duration::from_secs(20), || pair
        .inbox_bundles()
        .len()
        == 1));
    assert!(pair.reasons().is_empty());
    assert!(terminate(receiver));
}

#[test]
fn bad_files_are_quarantined_with_their_reason_and_nothing_lands() {
    let pair = Pair::new(RxOptions {
        allowed_kinds: vec!["application.submitted".into(), "demo.item".into()],
        ..RxOptions::default()
    });
    // A bundle of a kind this channel does not accept.
    let item = pair.root().join("x.txt");
    fs::write(&item, b"x").unwrap();
    pair.pack("catalogue.published", &[&item]);
    let kind_file = names(&pair.outbox)[0].clone();
    fs::rename(pair.outbox.join(&kind_file), pair.gateway.join("kind.owb")).unwrap();
    // Not a bundle at all.
    fs::write(
        pair.gateway.join("notes.owb"),
        b"hello, this is not a bundle",
    )
    .unwrap();
    // A bundle signed by a key the trust file does not list: make another zone key pair and
    // sign with it by pointing a copy of the sender's configuration at it.
    let rogue = pair.root().join("rogue");
    let out = ferry(&[
        "keygen",
        "--zone",
        "internet",
        "--out",
        rogue.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let rogue_config = pair.root().join("rogue.toml");
    let text = fs::read_to_string(&pair.sender_config)
        .unwrap()
        .replace("keys/internet.sign.secret", "rogue/internet.sign.secret")
        .replace("internet/ferry", "rogue/ferry")
        .replace("internet/outbox", "rogue/outbox");
    fs::write(&rogue_config, text).unwrap();
    let out = ferry(&[
        "pack",
        "--config",
        rogue_config.to_str().unwrap(),
        "--channel",
        "internet-to-extranet",
        "--kind",
        "demo.item",
        item.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rogue_outbox = pair.root().join("rogue/outbox");
    let rogue_file = names(&rogue_outbox)[0].clone();
    fs::rename(
        rogue_outbox.join(rogue_file),
        pair.gateway.join("rogue.owb"),
    )
    .unwrap();
    for name in ["kind.owb", "notes.owb", "rogue.owb"] {
        fs::write(pair.gateway.join(format!("{name}.done")), b"").unwrap();
    }

    let receiver = pair.start_receiver();
    assert!(wait_until(Duration::from_secs(20), || pair.reasons().len() == 3));
    assert!(terminate(receiver));
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
    assert_eq!(
        codes,
        vec![
            ("kind.owb".to_string(), "kind-not-allowed".to_string()),
            ("notes.owb".to_string(), "bad-magic".to_string()),
            ("rogue.owb".to_string(), "unknown-key".to_string()),
        ]
    );
    assert!(pair.inbox_bundles().is_empty());
    assert!(
        names(&pair.gateway).is_empty(),
        "markers removed with their files"
    );
    let out = ferry(&[
        "log",
        "show",
        "--log",
        pair.rx_log().to_str().unwrap(),
        "--event",
        "rejected",
        "--json",
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);
}

#[test]
fn every_single_byte_flip_is_quarantined() {
    let pair = Pair::new(RxOptions::default());
    let item = pair.root().join("tiny.txt");
    fs::write(&item, b"OneWindow").unwrap();
    pair.pack("demo.item", &[&item]);
    let original = fs::read(pair.outbox.join(&names(&pair.outbox)[0])).unwrap();
    for i in 0..original.len() {
        let mut copy = original.clone();
        copy[i] ^= 0x01;
        let name = format!("flip-{i:05}.owb");
        fs::write(pair.gateway.join(&name), &copy).unwrap();
        // A marker, as a gateway device writes: the file is complete as it stands.
        fs::write(pair.gateway.join(format!("{name}.done")), b"").unwrap();
    }
    let receiver = pair.start_receiver();
    let n = original.len();
    assert!(
        wait_until(Duration::from_secs(120), || pair.reasons().len() == n),
        "{} of {n} quarantined",
        pair.reasons().len()
    );
    assert!(terminate(receiver));
    assert!(pair.inbox_bundles().is_empty(), "no altered copy landed");
}

#[test]
fn loose_key_permissions_stop_the_agent_at_start() {
    let pair = Pair::new(RxOptions::default());
    let secret = pair.keys.join("extranet.sign.secret");
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o644)).unwrap();
    let out = ferry(&["run", "--config", pair.receiver_config.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
}

#[test]
fn an_outbox_file_that_is_not_a_bundle_is_set_aside_not_sent() {
    let pair = Pair::new(RxOptions::default());
    fs::write(pair.outbox.join("draft.owb"), b"half a thought").unwrap();
    pair.pack_small(1);
    let sender = pair.start_sender();
    let rejected = pair
        .root()
        .join("internet/ferry/rejected/internet-to-extranet-tx");
    assert!(wait_until(Duration::from_secs(20), || {
        rejected.join("draft.owb.reason").exists() && names(&pair.outbox).is_empty()
    }));
    assert!(terminate(sender));
    let reason: serde_json::Value =
        serde_json::from_slice(&fs::read(rejected.join("draft.owb.reason")).unwrap()).unwrap();
    assert_eq!(reason["code"], "bad-magic", "{reason}");
    // Only the real bundle went through the gateway.
    let in_gateway: Vec<String> = names(&pair.gateway)
        .into_iter()
        .filter(|n| n.ends_with(".owb"))
        .collect();
    assert_eq!(in_gateway.len(), 1, "{in_gateway:?}");
}

#[test]
fn a_receiver_that_requires_markers_lands_by_the_batch_manifest() {
    let pair = Pair::new(RxOptions {
        require_marker: true,
        ..RxOptions::default()
    });
    for n in 0..5 {
        pair.pack_small(n);
    }
    let sender = pair.start_sender();
    let receiver = pair.start_receiver();
    assert!(
        wait_until(Duration::from_secs(30), || pair.inbox_bundles().len() == 5),
        "inbox: {:?}, gateway: {:?}",
        pair.inbox_bundles(),
        names(&pair.gateway)
    );
    // The manifest goes once every file it lists was landed.
    assert!(
        wait_until(Duration::from_secs(10), || names(&pair.gateway).is_empty()),
        "{:?}",
        names(&pair.gateway)
    );
    assert!(terminate(sender));
    assert!(terminate(receiver));
    assert!(pair.reasons().is_empty(), "{:?}", pair.reasons());
}
