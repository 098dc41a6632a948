//! Receipts with real agents in two zones joined both ways: the extranet sends to the intranet
//! over one gateway folder, and the intranet's receipts come back over the other (in the field, on
//! a disc). A receipt confirms exactly what landed; a replayed, forged or misdirected one
//! confirms nothing and is refused and logged.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{ferry, names, start, terminate, wait_until};
use serde_json::Value;

const OUT: &str = "extranet-to-intranet";
const BACK: &str = "intranet-to-extranet";

struct Duplex {
    dir: tempfile::TempDir,
    extranet: PathBuf,
    intranet: PathBuf,
}

fn zone_config(zone: &str, send: &str, receive: &str, oneway: &str) -> String {
    let send = format!(
        r#"[[send]]
channel = "{send}"
outbox = "{zone}/outbox"
gateway = "gw-{send}"
sent = "{zone}/sent"
marker = true
rescan_ms = 100
"#
    );
    zone_config_with(zone, &send, receive, oneway)
}

/// A zone whose way out is `send` (a `[[send]]` agent or a `[[media]]` route, TOML text).
fn zone_config_with(zone: &str, send: &str, receive: &str, oneway: &str) -> String {
    format!(
        r#"zone = "{zone}"
data_dir = "{zone}/ferry"
[keys]
signing_key = "keys/{zone}.sign.secret"
encryption_key = "keys/{zone}.enc.secret"
trust_file = "trust.toml"
[log]
checkpoint_every = 50
{send}
[[receive]]
channel = "{receive}"
gateway = "gw-{receive}"
inbox = "{zone}/inbox"
quarantine = "{zone}/quarantine"
settle_ms = 200
rescan_ms = 100
[oneway]
{oneway}
"#
    )
}

impl Duplex {
    fn new() -> Self {
        Self::with_return(false)
    }

    /// With `media`, the intranet's way back is a disc: a `[[media]]` route that exports the
    /// return channel, and one in the extranet that imports it.
    fn with_return(media: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let keys = root.join("keys");
        for zone in ["extranet", "intranet"] {
            let out = ferry(&["keygen", "--zone", zone, "--out", keys.to_str().unwrap()]);
            assert!(out.status.success());
        }
        let out = ferry(&[
            "trust",
            "--keys",
            keys.to_str().unwrap(),
            "--channel",
            OUT,
            "--channel",
            BACK,
            "--out",
            root.join("trust.toml").to_str().unwrap(),
        ]);
        assert!(out.status.success());
        let extranet = root.join("extranet.toml");
        let mut extranet_text = zone_config("extranet", OUT, BACK, "confirm_within_s = 3600");
        let intranet = root.join("intranet.toml");
        let intranet_text = if media {
            extranet_text.push_str(&format!(
                "[[media]]\nchannel = \"{BACK}\"\ninbox = \"extranet/inbox\"\n\
                 refused = \"extranet/refused-media\"\n"
            ));
            let route = format!(
                "[[media]]\nchannel = \"{BACK}\"\noutbox = \"intranet/media-outbox\"\n\
                 sent = \"intranet/media-sent\"\n"
            );
            zone_config_with("intranet", &route, OUT, "")
        } else {
            zone_config("intranet", BACK, OUT, "")
        };
        fs::write(&extranet, extranet_text).unwrap();
        fs::write(&intranet, intranet_text).unwrap();
        Self {
            dir,
            extranet,
            intranet,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn pack(&self, config: &Path, channel: &str, kind: &str, item: &Path, out: Option<&Path>) {
        let mut args = vec![
            "pack",
            "--config",
            config.to_str().unwrap(),
            "--channel",
            channel,
            "--kind",
            kind,
        ];
        if let Some(out) = out {
            args.extend(["--out", out.to_str().unwrap()]);
        }
        args.push(item.to_str().unwrap());
        let out = ferry(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn bundles(&self, rel: &str) -> Vec<String> {
        names(&self.path(rel))
            .into_iter()
            .filter(|n| n.ends_with(".owb") && !n.starts_with('.'))
            .collect()
    }

    fn reasons(&self, rel: &str) -> Vec<Value> {
        names(&self.path(rel))
            .into_iter()
            .filter(|n| n.ends_with(".reason"))
            .map(|n| serde_json::from_slice(&fs::read(self.path(rel).join(n)).unwrap()).unwrap())
            .collect()
    }

    fn sender_status(&self, at: Option<&str>) -> Value {
        let mut args = vec![
            "status",
            "--config",
            self.extranet.to_str().unwrap(),
            "--json",
        ];
        if let Some(at) = at {
            args.extend(["--at", at]);
        }
        let out = ferry(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all: Value = serde_json::from_slice(&out.stdout).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .find(|a| a["role"] == "send")
            .unwrap()
            .clone()
    }

    /// Runs the intranet (which sends what is in its outbox) and the extranet (which lands it)
    /// until `done`.
    fn carry_back(&self, done: impl FnMut() -> bool) {
        let intranet = start(&self.intranet);
        let extranet = start(&self.extranet);
        assert!(wait_until(Duration::from_secs(30), done));
        assert!(terminate(intranet));
        assert!(terminate(extranet));
    }
}

fn seq_file(dir: &Path, sequence: u64) -> String {
    names(dir)
        .into_iter()
        .find(|n| n.contains(&format!(".{sequence:020}.")) && n.ends_with(".owb"))
        .unwrap()
}

#[test]
fn receipts_confirm_what_landed_and_forged_or_replayed_ones_confirm_nothing() {
    let d = Duplex::new();
    for n in 1..=3 {
        let item = d.path(&format!("item-{n}.txt"));
        fs::write(&item, format!("case file {n}\n")).unwrap();
        d.pack(&d.extranet, OUT, "demo.item", &item, None);
    }
    let extranet = start(&d.extranet);
    assert!(wait_until(Duration::from_secs(30), || names(
        &d.path("extranet/sent")
    )
    .len()
        == 3));
    assert!(terminate(extranet));
    // Sequence 2 is lost on the way.
    let gw = d.path(&format!("gw-{OUT}"));
    fs::remove_file(gw.join(seq_file(&gw, 2))).unwrap();
    let intranet = start(&d.intranet);
    assert!(wait_until(Duration::from_secs(30), || d
        .bundles("intranet/inbox")
        .len()
        == 2));
    assert!(terminate(intranet));

    // Nothing is confirmed yet, and nothing is overdue yet.
    let status = d.sender_status(None);
    assert_eq!(status["confirmed"], 0);
    assert!(
        status["alarms"].as_array().unwrap().is_empty(),
        "{status:#}"
    );

    // The intranet writes its receipt into the return channel's outbox.
    let out = ferry(&[
        "receipts",
        "write",
        "--config",
        d.intranet.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(written[0]["channel"], OUT);
    assert_eq!(written[0]["return_channel"], BACK);
    assert_eq!(written[0]["bundles"], 2);
    // It carries the intranet agent's latest signed checkpoint (signed on its stop).
    assert!(
        written[0]["checkpoint_size"].as_u64().unwrap() > 0,
        "{written:#}"
    );

    d.carry_back(|| d.sender_status(None)["confirmed"] == 2);
    // The receipt was consumed by the ferry, never handed to the extranet's importer.
    assert!(
        d.bundles("extranet/inbox").is_empty(),
        "{:?}",
        d.bundles("extranet/inbox")
    );
    // Sequence 2 stays unconfirmed, and is listed once it is overdue.
    let later = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let status = d.sender_status(Some(&later));
    assert_eq!(status["confirmed"], 2);
    let alarm = &status["alarms"][0];
    assert_eq!(alarm["code"], "unconfirmed", "{status:#}");
    assert_eq!(alarm["sequences"], serde_json::json!([[2, 2]]));
    // The import is in the extranet's log.
    let rx_log = d.path(&format!("extranet/ferry/log/{BACK}-rx"));
    let out = ferry(&[
        "log",
        "show",
        "--log",
        rx_log.to_str().unwrap(),
        "--event",
        "imported",
        "--json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 newly confirmed"), "{text}");

    // Without the intranet's log, the receipts say what landed: reconcile from the extranet's
    // sending log and the receipts it imported.
    let tx_log = d.path(&format!("extranet/ferry/log/{OUT}-tx"));
    let out = ferry(&[
        "reconcile",
        "--sender-log",
        tx_log.to_str().unwrap(),
        "--receipts",
        d.extranet.to_str().unwrap(),
        "--keys",
        d.path("keys").to_str().unwrap(),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = report["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == OUT)
        .unwrap();
    assert_eq!(c["receipts"], 1, "{c:#}");
    assert_eq!(c["confirmed_by_receipt"], 2, "{c:#}");
    assert_eq!(c["not_landed_per_receipt"], serde_json::json!([2]), "{c:#}");

    // Replayed: the same receipt bundle through the gateway again is a duplicate.
    let back_gw = d.path(&format!("gw-{BACK}"));
    let receipt = seq_file(&d.path("intranet/sent"), 1);
    fs::copy(
        d.path("intranet/sent").join(&receipt),
        back_gw.join(&receipt),
    )
    .unwrap();
    let extranet = start(&d.extranet);
    assert!(wait_until(Duration::from_secs(30), || d
        .reasons("extranet/quarantine")
        .len()
        == 1));
    assert!(terminate(extranet));
    assert_eq!(d.reasons("extranet/quarantine")[0]["code"], "duplicate");

    // Forged: a receipt claiming sequence 2 landed (its real id and digest), signed with a key the
    // extranet does not pin for the intranet.
    let sent2 = d
        .path("extranet/sent")
        .join(seq_file(&d.path("extranet/sent"), 2));
    let out = ferry(&["inspect", sent2.to_str().unwrap()]);
    let header: Value = serde_json::from_slice(&out.stdout).unwrap();
    let claim = serde_json::json!({
        "format": "onewindow-ferry-receipt/1",
        "zone": "intranet",
        "channel": OUT,
        "agent": format!("{OUT}-rx"),
        "written_at": chrono::Utc::now(),
        "first_sequence": 1,
        "last_sequence": 3,
        "landed": [[2, header["header"]["bundle_id"], header["digest"]]],
        "checkpoint": null,
    });
    let claim_file = d.path("receipt.json");
    fs::write(&claim_file, serde_json::to_vec(&claim).unwrap()).unwrap();
    let forger = d.path("forger");
    assert!(
        ferry(&[
            "keygen",
            "--zone",
            "intranet",
            "--out",
            forger.to_str().unwrap()
        ])
        .status
        .success()
    );
    let forged_config = d.path("forged.toml");
    fs::write(
        &forged_config,
        fs::read_to_string(&d.intranet)
            .unwrap()
            .replace("keys/intranet.sign.secret", "forger/intranet.sign.secret")
            .replace(
                "data_dir = \"intranet/ferry\"",
                "data_dir = \"forger/ferry\"",
            ),
    )
    .unwrap();
    d.pack(
        &forged_config,
        BACK,
        "ferry.receipt",
        &claim_file,
        Some(&back_gw),
    );
    let extranet = start(&d.extranet);
    assert!(wait_until(Duration::from_secs(30), || d
        .reasons("extranet/quarantine")
        .len()
        == 2));
    assert!(terminate(extranet));
    assert_eq!(
        d.sender_status(None)["confirmed"],
        2,
        "a forged receipt confirms nothing"
    );

    // Misdirected: the genuine intranet key, but a receipt for a channel the extranet does not
    // send on. It lands (a genuine bundle), is refused for its content, and confirms nothing.
    let mut wrong = claim.clone();
    wrong["channel"] = "internet-to-intranet".into();
    fs::write(&claim_file, serde_json::to_vec(&wrong).unwrap()).unwrap();
    d.pack(&d.intranet, BACK, "ferry.receipt", &claim_file, None);
    d.carry_back(|| d.reasons("extranet/quarantine").len() == 3);
    let reasons = d.reasons("extranet/quarantine");
    let codes: Vec<&str> = reasons
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert!(codes.contains(&"receipt-wrong-channel"), "{codes:?}");
    let forged = reasons
        .iter()
        .find(|r| r["code"] != "duplicate" && r["code"] != "receipt-wrong-channel")
        .unwrap();
    assert_eq!(forged["code"], "unknown-key", "{forged}");
    assert_eq!(d.sender_status(None)["confirmed"], 2);
    assert!(d.bundles("extranet/inbox").is_empty());
    // A receipt whose log checkpoint does not verify confirms nothing either, even with the
    // genuine key and a real id and digest.
    let mut bad = claim.clone();
    bad["checkpoint"] = serde_json::json!({
        "agent": format!("{OUT}-rx"),
        "size": 3,
        "note": "onewindow/ferry/extranet-to-intranet-rx\n3\nAAAA\n\n\u{2014} onewindow-intranet AAAA\n",
    });
    fs::write(&claim_file, serde_json::to_vec(&bad).unwrap()).unwrap();
    d.pack(&d.intranet, BACK, "ferry.receipt", &claim_file, None);
    d.carry_back(|| d.reasons("extranet/quarantine").len() == 4);
    assert!(
        d.reasons("extranet/quarantine")
            .iter()
            .any(|r| r["code"] == "receipt-bad-checkpoint")
    );
    assert_eq!(d.sender_status(None)["confirmed"], 2);

    // A receipt whose item is not receipt.json is refused from its signed header alone.
    let other = d.path("other.json");
    fs::write(&other, serde_json::to_vec(&claim).unwrap()).unwrap();
    d.pack(&d.intranet, BACK, "ferry.receipt", &other, None);
    d.carry_back(|| d.reasons("extranet/quarantine").len() == 5);
    assert!(
        d.reasons("extranet/quarantine")
            .iter()
            .any(|r| r["code"] == "receipt-malformed")
    );
    assert_eq!(d.sender_status(None)["confirmed"], 2);
    let out = ferry(&[
        "log",
        "show",
        "--log",
        rx_log.to_str().unwrap(),
        "--event",
        "rejected",
        "--json",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("receipt-wrong-channel"), "{text}");
}

/// The usual way back from the intranet: the receipt goes onto a disc with the route's other
/// bundles, and importing the disc in the extranet confirms what landed.
#[test]
fn a_receipt_carried_on_a_disc_confirms_what_landed() {
    let d = Duplex::with_return(true);
    for n in 1..=2 {
        let item = d.path(&format!("item-{n}.txt"));
        fs::write(&item, format!("survey {n}\n")).unwrap();
        d.pack(&d.extranet, OUT, "demo.item", &item, None);
    }
    let extranet = start(&d.extranet);
    let intranet = start(&d.intranet);
    assert!(wait_until(Duration::from_secs(30), || d
        .bundles("intranet/inbox")
        .len()
        == 2));
    assert!(terminate(extranet));
    assert!(terminate(intranet));

    let out = ferry(&[
        "receipts",
        "write",
        "--config",
        d.intranet.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        written[0]["path"]
            .as_str()
            .unwrap()
            .contains("intranet/media-outbox"),
        "{written:#}"
    );
    let disc = d.path("disc-0001");
    let out = ferry(&[
        "media",
        "export",
        "--config",
        d.intranet.to_str().unwrap(),
        "--disc",
        disc.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = ferry(&[
        "media",
        "import",
        "--config",
        d.extranet.to_str().unwrap(),
        "--disc",
        disc.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["left"], 0, "{report:#}");
    assert_eq!(d.sender_status(None)["confirmed"], 2);
    assert!(d.bundles("extranet/inbox").is_empty());
}
