//! The one-way discipline with real agents run through their folders: reconciliation of the two
//! sides' logs (lost, duplicated, refused, the gap they leave, the logs' own verification) and
//! resending a lost bundle as itself.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::fs;
use std::time::Duration;

use common::{Pair, RxOptions, ferry, names, terminate, wait_until};
use serde_json::Value;

const CHANNEL: &str = "internet-to-extranet";

fn seq_name(dir: &std::path::Path, sequence: u64) -> String {
    names(dir)
        .into_iter()
        .find(|n| n.contains(&format!(".{sequence:020}.")) && n.ends_with(".owb"))
        .unwrap_or_else(|| panic!("no file for sequence {sequence} in {}", dir.display()))
}

fn reconcile(pair: &Pair, extra_sender_logs: &[&std::path::Path]) -> (bool, Value) {
    let mut args = vec![
        "reconcile".to_owned(),
        "--sender-log".into(),
        pair.tx_log().display().to_string(),
        "--receiver-log".into(),
        pair.rx_log().display().to_string(),
        "--keys".into(),
        pair.keys.display().to_string(),
        "--json".into(),
    ];
    for log in extra_sender_logs {
        args.push("--sender-log".into());
        args.push(log.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ferry(&args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}

fn channel(report: &Value) -> &Value {
    report["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == CHANNEL)
        .unwrap()
}

fn resend(pair: &Pair, sequences: &str) -> (bool, Value) {
    let out = ferry(&[
        "resend",
        "--config",
        pair.sender_config.to_str().unwrap(),
        "--channel",
        CHANNEL,
        "--sequence",
        sequences,
    ]);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "not JSON: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.success(), json)
}

/// Five bundles sent: 2 lost in the gateway, 4 damaged on the way (refused), 1 replayed
/// (duplicate). Reconcile names each and the gap; resend lands 2 and 4 from `sent/` and the
/// receiver refuses 1 as a duplicate; reconcile then shows the channel whole.
#[test]
fn reconcile_finds_lost_duplicated_and_refused_and_resend_closes_the_gap() {
    let pair = Pair::new(RxOptions::default());
    for n in 1..=5 {
        pair.pack_small(n);
    }
    let sender = pair.start_sender();
    assert!(wait_until(Duration::from_secs(20), || names(&pair.sent)
        .len()
        == 5));
    assert!(terminate(sender));

    // Lost on the way: the gateway never delivers sequence 2.
    fs::remove_file(pair.gateway.join(seq_name(&pair.gateway, 2))).unwrap();
    // Damaged on the way: one byte of sequence 4's payload changes (same size).
    let damaged = pair.gateway.join(seq_name(&pair.gateway, 4));
    let mut bytes = fs::read(&damaged).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    fs::write(&damaged, &bytes).unwrap();

    let receiver = pair.start_receiver();
    assert!(wait_until(Duration::from_secs(20), || pair
        .inbox_bundles()
        .len()
        == 3
        && pair.reasons().len() == 1));
    // A replay of sequence 1 (a second copy through the gateway) is refused as a duplicate.
    let first = seq_name(&pair.sent, 1);
    fs::copy(pair.sent.join(&first), pair.gateway.join(&first)).unwrap();
    assert!(wait_until(Duration::from_secs(20), || pair.reasons().len() == 2));
    assert!(terminate(receiver));

    // The receiving side's status raises the lost alarm, naming the missing sequences.
    let out = ferry(&[
        "status",
        "--config",
        pair.receiver_config.to_str().unwrap(),
        "--json",
    ]);
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    let lost = status[0]["alarms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["code"] == "lost")
        .unwrap_or_else(|| panic!("no lost alarm: {status:#}"));
    assert_eq!(lost["sequences"], serde_json::json!([[2, 2], [4, 4]]));

    let (ok, report) = reconcile(&pair, &[]);
    assert!(ok, "{report:#}");
    for log in report["logs"].as_array().unwrap() {
        assert_eq!(log["status"], "verified", "{log}");
    }
    let c = channel(&report);
    assert_eq!(c["sent"], 5, "{c:#}");
    assert_eq!(c["received"], 3, "{c:#}");
    assert_eq!(c["confirmed"], 3, "{c:#}");
    assert_eq!(c["lost"], serde_json::json!([2]), "{c:#}");
    assert_eq!(c["missing"], serde_json::json!([[2, 2], [4, 4]]), "{c:#}");
    assert_eq!(c["duplicated"].as_array().unwrap().len(), 1, "{c:#}");
    assert_eq!(c["duplicated"][0]["sequence"], 1);
    assert_eq!(c["refused"].as_array().unwrap().len(), 1, "{c:#}");
    assert_eq!(c["refused"][0]["sequence"], 4);
    assert_ne!(c["refused"][0]["code"], "duplicate");
    assert!(!c["refused"][0]["reason"].as_str().unwrap().is_empty());

    // The text report says the same for a person.
    let out = ferry(&[
        "reconcile",
        "--sender-log",
        pair.tx_log().to_str().unwrap(),
        "--receiver-log",
        pair.rx_log().to_str().unwrap(),
        "--keys",
        pair.keys.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("lost sequences: 2"), "{text}");
    assert!(text.contains("missing (gap): 2,4"), "{text}");

    // Resend the lost, the refused and the one that landed: the same files from sent/.
    let (all, outcomes) = resend(&pair, "2,4,1");
    assert!(all, "{outcomes:#}");
    assert!(
        outcomes
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["outcome"] == "resent")
    );
    let receiver = pair.start_receiver();
    assert!(wait_until(Duration::from_secs(20), || pair
        .inbox_bundles()
        .len()
        == 5
        && pair.reasons().len() == 3));
    assert!(terminate(receiver));
    let reasons = pair.reasons();
    let duplicates = reasons.iter().filter(|r| r["code"] == "duplicate").count();
    assert_eq!(duplicates, 2, "{reasons:#?}");
    // Landed as themselves: the same ids as sent.
    for n in [2u64, 4] {
        let sent = seq_name(&pair.sent, n);
        assert!(pair.inbox_bundles().contains(&sent), "{sent}");
    }

    let resend_log = pair
        .root()
        .join("internet/ferry/log/internet-to-extranet-tx-resend");
    let (ok, report) = reconcile(&pair, &[&resend_log]);
    assert!(ok, "{report:#}");
    let c = channel(&report);
    assert_eq!(c["sent"], 5, "{c:#}");
    assert_eq!(c["received"], 5, "{c:#}");
    assert_eq!(c["confirmed"], 5, "{c:#}");
    assert_eq!(c["lost"], serde_json::json!([]), "{c:#}");
    assert_eq!(c["missing"], serde_json::json!([]), "{c:#}");
    assert_eq!(c["resent"], serde_json::json!([1, 2, 4]), "{c:#}");
    assert_eq!(c["duplicated"].as_array().unwrap().len(), 2, "{c:#}");
}

/// A bundle whose kept copy was pruned, or a sequence never sent, is not resent, and says why;
/// a resend never writes anything into the gateway folder for them.
#[test]
fn resend_refuses_what_it_cannot_send_as_itself() {
    let pair = Pair::new(RxOptions::default());
    pair.pack_small(1);
    let sender = pair.start_sender();
    assert!(wait_until(Duration::from_secs(20), || names(&pair.sent)
        .len()
        == 1));
    assert!(terminate(sender));
    for name in names(&pair.gateway) {
        fs::remove_file(pair.gateway.join(name)).unwrap();
    }
    fs::remove_file(pair.sent.join(seq_name(&pair.sent, 1))).unwrap();
    let (all, outcomes) = resend(&pair, "1,7");
    assert!(!all);
    assert_eq!(outcomes[0]["outcome"], "pruned", "{outcomes:#}");
    assert!(
        outcomes[0]["message"]
            .as_str()
            .unwrap()
            .contains("pack its content again")
    );
    assert_eq!(outcomes[1]["outcome"], "never-sent", "{outcomes:#}");
    assert!(
        names(&pair.gateway).is_empty(),
        "{:?}",
        names(&pair.gateway)
    );
}

/// A receiving log edited after its checkpoint does not verify: reconcile says which and exits 1.
#[test]
fn reconcile_reports_a_tampered_log() {
    let pair = Pair::new(RxOptions::default());
    pair.pack_small(1);
    pair.pack_small(2);
    let sender = pair.start_sender();
    let receiver = pair.start_receiver();
    assert!(wait_until(Duration::from_secs(20), || pair
        .inbox_bundles()
        .len()
        == 2));
    assert!(terminate(sender));
    assert!(terminate(receiver));
    let entries = pair.rx_log().join("entries.jsonl");
    let text = fs::read_to_string(&entries).unwrap();
    // Someone hides a landing: the sequence 2 entry now claims sequence 3.
    let edited = text.replacen("\"sequence\":2,", "\"sequence\":3,", 2);
    assert_ne!(edited, text);
    fs::write(&entries, edited).unwrap();
    let (ok, report) = reconcile(&pair, &[]);
    assert!(!ok, "{report:#}");
    let rx = report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["side"] == "receiver")
        .unwrap();
    assert_eq!(rx["status"], "failed", "{rx}");
    let tx = report["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["side"] == "sender")
        .unwrap();
    assert_eq!(tx["status"], "verified", "{tx}");
}

/// Heartbeats keep a quiet channel alive: they land (their sequences are accounted for) but never
/// reach the zone's inbox; once they stop, the "no traffic" alarm shows in `status` — judged at a
/// time the test chooses.
#[test]
fn heartbeats_land_unseen_and_their_silence_raises_the_alarm() {
    let pair = Pair::new(RxOptions::default());
    let mut tx = fs::read_to_string(&pair.sender_config).unwrap();
    tx.push_str("[oneway]\nheartbeat_s = 1\n");
    fs::write(&pair.sender_config, tx).unwrap();
    let mut rx = fs::read_to_string(&pair.receiver_config).unwrap();
    rx.push_str("[oneway]\nsilence_alarm_s = 600\n");
    fs::write(&pair.receiver_config, rx).unwrap();

    let status = |at: Option<&str>| -> Value {
        let mut args = vec![
            "status",
            "--config",
            pair.receiver_config.to_str().unwrap(),
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
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // Before anything landed, silence is already an alarm.
    let before = status(None);
    assert_eq!(before[0]["alarms"][0]["code"], "no-traffic", "{before:#}");

    let sender = pair.start_sender();
    let receiver = pair.start_receiver();
    assert!(wait_until(Duration::from_secs(30), || {
        status(None)[0]["count"].as_u64().unwrap_or(0) >= 2
    }));
    assert!(terminate(sender));
    assert!(terminate(receiver));
    assert!(
        pair.inbox_bundles().is_empty(),
        "{:?}",
        pair.inbox_bundles()
    );
    assert!(names(&pair.inbox).iter().all(|n| !n.ends_with(".owb")));

    let now = status(None);
    assert!(now[0]["alarms"].as_array().unwrap().is_empty(), "{now:#}");
    assert_eq!(now[0]["gaps"], serde_json::json!([]));
    let last: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(now[0]["last_landed_at"].clone()).unwrap();
    let later = (last + chrono::Duration::seconds(3600)).to_rfc3339();
    let silent = status(Some(&later));
    let alarm = &silent[0]["alarms"][0];
    assert_eq!(alarm["code"], "no-traffic", "{silent:#}");
    assert_eq!(alarm["silent_s"], 3600, "{silent:#}");
    let just_before = (last + chrono::Duration::seconds(599)).to_rfc3339();
    assert!(
        status(Some(&just_before))[0]["alarms"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The heartbeats are in both logs, with their own kind.
    let out = ferry(&[
        "log",
        "show",
        "--log",
        pair.rx_log().to_str().unwrap(),
        "--event",
        "landed",
        "--kind",
        "ferry.heartbeat",
        "--json",
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() >= 2);
}

/// A receiving agent on a silent channel logs the "no traffic" alarm, once per silence.
#[test]
fn a_silent_channel_logs_the_no_traffic_alarm_once() {
    let pair = Pair::new(RxOptions::default());
    let mut rx = fs::read_to_string(&pair.receiver_config).unwrap();
    rx.push_str("[oneway]\nsilence_alarm_s = 1\n");
    fs::write(&pair.receiver_config, rx).unwrap();
    let alarms = || -> Vec<Value> {
        let out = ferry(&[
            "log",
            "show",
            "--log",
            pair.rx_log().to_str().unwrap(),
            "--event",
            "alarm",
            "--json",
        ]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let receiver = pair.start_receiver();
    assert!(wait_until(Duration::from_secs(20), || !alarms().is_empty()));
    // Well past the threshold again: still the same silence, not a second alarm.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(terminate(receiver));
    let logged = alarms();
    assert_eq!(logged.len(), 1, "{logged:#?}");
    assert!(
        logged[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("no-traffic: nothing has landed on internet-to-extranet"),
        "{}",
        logged[0]
    );
    assert_eq!(logged[0]["channel"], CHANNEL);
}
