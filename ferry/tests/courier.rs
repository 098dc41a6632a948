//! The local stack's disc courier (`deploy/local/courier.sh`) run for real: a throwaway run
//! folder with the extranet's and the intranet's ferry configurations exactly as
//! `deploy/local/run.sh` makes them from `deploy/local/*.ferry.toml`, keys and trust file from the
//! ferry's own commands, bundles packed with `ow-ferry pack`, and the built `ow-ferry`. One round
//! carries both ways and files the discs; a tampered disc in the tray is refused with its reason
//! and stops nothing else; the receipts the courier writes confirm, on the next round, what the
//! other side sent, and a quiet round writes none.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::{BIN, ferry, names, start, terminate, wait_until};
use serde_json::Value;

const OUT: &str = "extranet-to-intranet";
const BACK: &str = "intranet-to-extranet";

/// The repository root (the crate is `ferry/`).
fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn have_bash() -> bool {
    Command::new("bash")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A run folder as `deploy/local/run.sh` prepares it, without starting anything.
struct Stack {
    _dir: tempfile::TempDir,
    run: PathBuf,
}

impl Stack {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("run");
        let keys = run.join("keys");
        let conf = run.join("config");
        fs::create_dir_all(&conf).unwrap();
        // The configurations the stack runs with: deploy/local's, with its run folder named.
        for zone in ["internet", "extranet", "intranet"] {
            let name = format!("{zone}.ferry.toml");
            let toml = fs::read_to_string(repo().join("deploy/local").join(&name)).unwrap();
            let toml = toml.replace("../../.run", run.to_str().unwrap());
            fs::write(conf.join(&name), toml).unwrap();
            let out = ferry(&["keygen", "--zone", zone, "--out", keys.to_str().unwrap()]);
            assert!(out.status.success(), "{}", text(&out));
        }
        let out = ferry(&[
            "trust",
            "--keys",
            keys.to_str().unwrap(),
            "--out",
            run.join("trust.toml").to_str().unwrap(),
            "--channel",
            "internet-to-extranet",
            "--channel",
            "extranet-to-internet",
            "--channel",
            OUT,
            "--channel",
            BACK,
        ]);
        assert!(out.status.success(), "{}", text(&out));
        Self { _dir: dir, run }
    }

    fn config(&self, zone: &str) -> PathBuf {
        self.run.join("config").join(format!("{zone}.ferry.toml"))
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.run.join(rel)
    }

    /// Packs one small bundle on `channel` from `zone` into `outbox`; returns its bundle id.
    fn pack(&self, zone: &str, channel: &str, outbox: &Path, tag: &str) -> String {
        fs::create_dir_all(outbox).unwrap();
        let item = self.run.join(format!("{tag}.txt"));
        fs::write(&item, format!("survey review {tag}\n").repeat(30)).unwrap();
        let out = ferry(&[
            "pack",
            "--config",
            self.config(zone).to_str().unwrap(),
            "--channel",
            channel,
            "--kind",
            "demo.item",
            "--out",
            outbox.to_str().unwrap(),
            item.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
        summary["bundle_id"].as_str().unwrap().to_owned()
    }

    /// One courier round, as an operator runs it.
    fn courier(&self) -> String {
        let out = Command::new("bash")
            .arg(repo().join("deploy/local/courier.sh"))
            .env("OW_RUN_DIR", &self.run)
            .env("OW_FERRY", BIN)
            .env("OW_LOG", "error")
            .output()
            .unwrap();
        assert!(out.status.success(), "courier.sh failed: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn drive(&self, channel: &str, folder: &str) -> Vec<String> {
        names(&self.path(&format!("media/drive/{channel}/{folder}")))
    }

    /// Bundle ids in a landing inbox (file names `<channel>.<sequence>.<id>.owb`).
    fn landed_ids(&self, inbox: &str) -> Vec<String> {
        let mut ids: Vec<String> = names(&self.path(inbox))
            .into_iter()
            .filter(|n| n.ends_with(".owb") && !n.starts_with('.'))
            .map(|n| {
                n.trim_end_matches(".owb")
                    .rsplit('.')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        ids.sort();
        ids
    }

    /// `confirmed` of a zone's sending agent on `channel`, from `ow-ferry status --json`.
    fn confirmed(&self, zone: &str, channel: &str) -> u64 {
        let out = ferry(&[
            "status",
            "--config",
            self.config(zone).to_str().unwrap(),
            "--json",
        ]);
        assert!(out.status.success(), "{}", text(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        report
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["role"] == "send" && a["channel"] == channel)
            .unwrap_or_else(|| panic!("no sending agent for {channel} in {report}"))["confirmed"]
            .as_u64()
            .unwrap()
    }

    /// Bundles on `channel` the zone's state records as confirmed by a receipt (for a channel
    /// that leaves only on media, which `status` does not list).
    fn confirmed_in_state(&self, zone: &str, channel: &str) -> u64 {
        let config = ow_ferry::config::FerryConfig::load(&self.config(zone)).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let state = ow_ferry::state::FerryState::open(&config.state_db())
                    .await
                    .unwrap();
                let n = ow_ferry::receipts::confirmed_count(&state, channel)
                    .await
                    .unwrap();
                state.close().await;
                n
            })
    }
}

/// Kinds of the bundles in a folder, read with `ow-ferry inspect`.
fn kinds(dir: &Path) -> Vec<String> {
    names(dir)
        .into_iter()
        .filter(|n| n.ends_with(".owb") && !n.starts_with('.'))
        .map(|n| {
            let out = ferry(&["inspect", dir.join(&n).to_str().unwrap()]);
            assert!(out.status.success(), "{}", text(&out));
            let inspected: Value = serde_json::from_slice(&out.stdout).unwrap();
            inspected["header"]["kind"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn a_courier_round_carries_both_ways_refuses_a_tampered_disc_and_brings_receipts_back() {
    if !have_bash() {
        eprintln!("SKIPPED: bash is not installed, and deploy/local/courier.sh is a bash script");
        return;
    }
    let stack = Stack::new();
    let intranet_outbox = stack.path("intranet/outbox/extranet");
    let extranet_media_outbox = stack.path("extranet/media-outbox/intranet");

    // A disc of the intranet's answers, tampered with on the way: one payload byte flipped.
    stack.pack("intranet", BACK, &intranet_outbox, "lost-on-the-way");
    let tampered = stack.run.join("tampered-set");
    let out = ferry(&[
        "media",
        "export",
        "--config",
        stack.config("intranet").to_str().unwrap(),
        "--channel",
        BACK,
        "--set",
        tampered.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let disc = tampered.join("disc-1-of-1");
    let payload = disc.join("data/bundles");
    let bundle = payload.join(&names(&payload)[0]);
    let mut bytes = fs::read(&bundle).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    fs::write(&bundle, bytes).unwrap();
    // In the tray, and sorted before the sets the courier writes: it is imported first.
    let tray = stack.path(&format!("media/drive/{BACK}/tray"));
    fs::create_dir_all(&tray).unwrap();
    fs::rename(&tampered, tray.join("set-0-tampered")).unwrap();

    // What each side has to send.
    let mut answers: Vec<String> = (0..2)
        .map(|i| stack.pack("intranet", BACK, &intranet_outbox, &format!("answer-{i}")))
        .collect();
    answers.sort();
    let mut surveys: Vec<String> = (0..3)
        .map(|i| {
            stack.pack(
                "extranet",
                OUT,
                &extranet_media_outbox,
                &format!("survey-{i}"),
            )
        })
        .collect();
    surveys.sort();

    // Round 1.
    let log = stack.courier();
    assert_eq!(
        stack.landed_ids("extranet/inbox/intranet"),
        answers,
        "the intranet's answers land on the extranet (and nothing of the tampered disc): {log}"
    );
    assert_eq!(
        stack.landed_ids("intranet/inbox/extranet"),
        surveys,
        "the extranet's survey data lands on the intranet: {log}"
    );
    let refused = stack.drive(BACK, "refused");
    assert_eq!(
        refused,
        [
            "set-0-tampered-disc-1-of-1",
            "set-0-tampered-disc-1-of-1.reason.txt"
        ],
        "{log}"
    );
    let reason = fs::read_to_string(stack.path(&format!(
        "media/drive/{BACK}/refused/set-0-tampered-disc-1-of-1.reason.txt"
    )))
    .unwrap();
    assert!(reason.contains("altered"), "{reason}");
    for channel in [BACK, OUT] {
        let imported = stack.drive(channel, "imported");
        assert_eq!(imported.len(), 1, "{channel}: {imported:?}\n{log}");
        assert!(imported[0].starts_with("set-") && imported[0].ends_with("-disc-1-of-1"));
        assert!(stack.drive(channel, "tray").is_empty(), "{log}");
        assert!(stack.drive(channel, "burn").is_empty(), "{log}");
    }
    // Nothing had landed on the intranet when it exported: no receipt from it yet. The extranet
    // had landed the answers when its turn came: its receipt leaves through its [[send]] agent
    // of the return channel (the one-way gateway), as its configuration says.
    assert!(
        !log.contains("the intranet zone wrote"),
        "the intranet had nothing to acknowledge: {log}"
    );
    assert!(
        log.contains(&format!(
            "{OUT}: the extranet zone wrote 1 receipt(s) for what landed on {BACK}"
        )),
        "{log}"
    );
    assert_eq!(
        kinds(&stack.path("extranet/outbox/intranet")),
        ["ferry.receipt"]
    );
    assert_eq!(stack.confirmed("extranet", OUT), 0);

    // Round 2: the intranet acknowledges the survey data on its next set; the extranet imports
    // the receipt and marks its sent bundles confirmed. The receipt landing on the extranet is
    // not news: the extranet writes nothing back.
    let log = stack.courier();
    assert!(
        log.contains(&format!(
            "{BACK}: the intranet zone wrote 1 receipt(s) for what landed on {OUT}"
        )),
        "{log}"
    );
    assert!(!log.contains("the extranet zone wrote"), "{log}");
    assert_eq!(
        stack.confirmed("extranet", OUT),
        3,
        "the intranet's receipt confirms the three survey bundles: {log}"
    );
    assert_eq!(stack.drive(BACK, "imported").len(), 2, "{log}");
    assert_eq!(
        stack.landed_ids("extranet/inbox/intranet"),
        answers,
        "a receipt is taken by the ferry, never placed in the inbox"
    );

    // Round 3: nothing new anywhere, so no receipt and no disc.
    let log = stack.courier();
    assert!(!log.contains("wrote"), "{log}");
    assert_eq!(stack.drive(BACK, "imported").len(), 2, "{log}");
    assert_eq!(stack.drive(OUT, "imported").len(), 1, "{log}");
    assert!(
        names(&intranet_outbox).iter().all(|n| !n.ends_with(".owb")),
        "{:?}",
        names(&intranet_outbox)
    );

    // The command the courier runs, by hand: nothing new prints `[]` and exits 0; a channel the
    // zone does not land is an error (exit 2) that says so.
    let quiet = ferry(&[
        "receipts",
        "write",
        "--if-new",
        "--config",
        stack.config("intranet").to_str().unwrap(),
        "--channel",
        OUT,
    ]);
    assert!(quiet.status.success(), "{}", text(&quiet));
    let written: Value = serde_json::from_slice(&quiet.stdout).unwrap();
    assert_eq!(written, serde_json::json!([]));
    let wrong = ferry(&[
        "receipts",
        "write",
        "--if-new",
        "--config",
        stack.config("intranet").to_str().unwrap(),
        "--channel",
        BACK,
    ]);
    assert_eq!(wrong.status.code(), Some(2), "{}", text(&wrong));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("lands nothing on channel"),
        "{}",
        text(&wrong)
    );

    // The extranet's receipt crosses the gateway with the zones' running agents and confirms
    // the two answers that landed (not the one on the refused disc).
    assert_eq!(stack.confirmed_in_state("intranet", BACK), 0);
    let intranet = start(&stack.config("intranet"));
    let extranet = start(&stack.config("extranet"));
    let confirmed = wait_until(Duration::from_secs(30), || {
        stack.confirmed_in_state("intranet", BACK) == 2
    });
    assert!(terminate(extranet));
    assert!(terminate(intranet));
    assert!(
        confirmed,
        "the intranet confirmed {} bundle(s)",
        stack.confirmed_in_state("intranet", BACK)
    );
}
