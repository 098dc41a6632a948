//! Ferry log tests: appending and reopening, crash recovery, tamper detection, proofs.

#![allow(clippy::unwrap_used)] // tests may unwrap

use std::fs;
use std::path::Path;

use base64::Engine as _;
use chrono::{DateTime, Duration, TimeZone, Utc};
use ed25519_dalek::SigningKey;
use ow_ferrylog::merkle::leaf_hash;
use ow_ferrylog::note::{Checkpoint, sign_checkpoint};
use ow_ferrylog::{
    CheckpointRecord, Entry, EntryDraft, Error, Event, FerryLog, Filter, LogConfig, LogVerifyError,
    NoteError, parse_checkpoint_note, prove_consistency, prove_inclusion, read_entries,
    verify_consistency_proof, verify_inclusion_proof, verify_log,
};
use tempfile::TempDir;

const AGENT: &str = "extranet-rx";
const NAME: &str = "onewindow.example/ferry/extranet-rx";

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42u8; 32])
}

fn other_key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn config(every: u64) -> LogConfig {
    let mut c = LogConfig::for_agent(AGENT, key());
    c.checkpoint_every = every;
    c
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 8, 0, 0).unwrap()
}

fn draft(i: u64) -> EntryDraft {
    let event = Event::ALL[(i % Event::ALL.len() as u64) as usize];
    let mut d = EntryDraft::new(
        t0() + Duration::seconds(i as i64) + Duration::microseconds(123_456),
        AGENT,
        event,
    );
    d.channel = Some(
        if i.is_multiple_of(2) {
            "internet-to-extranet"
        } else {
            "extranet-to-intranet"
        }
        .into(),
    );
    d.bundle_id = Some(format!("bundle-{i:04}"));
    d.sequence = Some(i);
    d.case_id = Some(format!("case-{}", i / 3));
    d.kind = Some("application-submitted".into());
    d.bytes = 1000 + i;
    d.item_hashes = vec![hex::encode(blake3_like(i))];
    if event == Event::Rejected {
        d.reason = Some("E_SIGNATURE: bundle signature does not verify".into());
    }
    d
}

/// 32 pseudo-random bytes (stands in for a BLAKE3 item hash).
fn blake3_like(i: u64) -> [u8; 32] {
    leaf_hash(&i.to_le_bytes())
}

fn verify(dir: &Path) -> Result<ow_ferrylog::LogReport, LogVerifyError> {
    verify_log(dir, &key().verifying_key(), NAME)
}

/// A closed log of `n` entries with a checkpoint every `every`.
fn build(n: u64, every: u64) -> TempDir {
    let tmp = TempDir::new().unwrap();
    let mut log = FerryLog::open(tmp.path(), config(every)).unwrap();
    for i in 0..n {
        assert_eq!(log.append(draft(i)).unwrap(), i);
        if i % 7 == 6 {
            log.sync().unwrap();
        }
    }
    log.close().unwrap();
    tmp
}

fn entries_path(dir: &Path) -> std::path::PathBuf {
    dir.join("entries.jsonl")
}

fn checkpoints_path(dir: &Path) -> std::path::PathBuf {
    dir.join("checkpoints.jsonl")
}

fn read_lines(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    let mut s = lines.join("\n");
    s.push('\n');
    fs::write(path, s).unwrap();
}

fn entry_of(line: &str) -> Entry {
    serde_json::from_str(line).unwrap()
}

fn line_of(e: &Entry) -> String {
    serde_json::to_string(e).unwrap()
}

#[test]
fn entries_are_compact_json_lines_chained_by_leaf_hash() {
    let tmp = build(3, 0);
    let lines = read_lines(&entries_path(tmp.path()));
    assert_eq!(lines.len(), 3);
    let first = &lines[0];
    assert!(first.starts_with(r#"{"index":0,"time":"2026-03-01T08:00:00.123Z","agent":"extranet-rx","channel":"internet-to-extranet","bundle_id":"bundle-0000","sequence":0,"#), "{first}");
    assert!(first.contains(r#""event":"queued""#));
    assert!(first.ends_with(&format!(r#""prev":"{}"}}"#, "0".repeat(64))));
    assert!(!first.contains("reason"), "None fields are omitted");
    for w in lines.windows(2) {
        let next = entry_of(&w[1]);
        assert_eq!(next.prev, hex::encode(leaf_hash(w[0].as_bytes())));
    }
    let e = entry_of(&lines[1]);
    assert_eq!(e.event, Event::Sent);
    assert_eq!(e.time_rfc3339(), "2026-03-01T08:00:01.123Z");
    // close() wrote a checkpoint even with automatic checkpoints off.
    let report = verify(tmp.path()).unwrap();
    assert_eq!(report.entries, 3);
    assert_eq!(report.checkpoints, 1);
    assert_eq!(report.unsigned_tail, 0);
    assert_eq!(report.origin.as_deref(), Some(NAME));
}

#[test]
fn event_names_are_kebab_case() {
    let names: Vec<String> = Event::ALL
        .iter()
        .map(|e| serde_json::to_string(e).unwrap())
        .collect();
    assert_eq!(
        names.join(","),
        r#""queued","sent","received","landed","rejected","imported","media-exported","media-imported","media-refused","gap","started","stopped","action","alarm""#
    );
    for e in Event::ALL {
        assert_eq!(e.as_str().parse::<Event>().unwrap(), e);
    }
    assert!("landing".parse::<Event>().is_err());
}

#[test]
fn reopen_keeps_the_same_root_and_continues() {
    let tmp = TempDir::new().unwrap();
    let (root, size) = {
        let mut log = FerryLog::open(tmp.path(), config(10)).unwrap();
        for i in 0..25 {
            log.append(draft(i)).unwrap();
        }
        log.sync().unwrap();
        assert_eq!(log.last_checkpoint_size(), 20);
        (log.root(), log.size())
        // dropped without close: entries 20..25 stay unsigned
    };
    let report = verify(tmp.path()).unwrap();
    assert_eq!((report.entries, report.unsigned_tail), (25, 5));
    assert_eq!(report.root, hex::encode(root));

    let mut log = FerryLog::open(tmp.path(), config(10)).unwrap();
    assert_eq!(log.size(), size);
    assert_eq!(log.root(), root);
    assert_eq!(log.last_checkpoint_size(), 20);
    assert_eq!(log.append(draft(25)).unwrap(), 25);
    // Nothing new since the last checkpoint: checkpoint() returns None.
    let cp = log.checkpoint().unwrap().unwrap();
    assert_eq!(cp.size, 26);
    assert_eq!(cp.root, log.root());
    assert!(log.checkpoint().unwrap().is_none());
    log.close().unwrap();

    let report = verify(tmp.path()).unwrap();
    assert_eq!(report.entries, 26);
    assert_eq!(report.checkpoints, 3);
    assert_eq!(report.last_checkpoint_size, 26);
    assert_eq!(report.unsigned_tail, 0);
}

#[test]
fn automatic_checkpoints_every_n_entries() {
    let tmp = build(50, 10);
    let lines = read_lines(&checkpoints_path(tmp.path()));
    let records: Vec<CheckpointRecord> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let sizes: Vec<u64> = records.iter().map(|r| r.size).collect();
    assert_eq!(sizes, vec![10, 20, 30, 40, 50]);
    let cp = parse_checkpoint_note(&records[1].note).unwrap();
    assert_eq!(cp.origin, NAME);
    assert_eq!(cp.size, 20);
    // The checkpoint time is the time of the last entry it covers.
    assert_eq!(
        records[1].time,
        entry_of(&read_lines(&entries_path(tmp.path()))[19]).time
    );
}

#[test]
fn a_torn_last_line_is_truncated_on_reopen() {
    let tmp = build(5, 0);
    let path = entries_path(tmp.path());
    let before = fs::read(&path).unwrap();
    let mut torn = before.clone();
    torn.extend_from_slice(br#"{"index":5,"time":"2026-03-01T08:0"#);
    fs::write(&path, &torn).unwrap();

    // The verifier reports the torn tail but the log itself is fine.
    let report = verify(tmp.path()).unwrap();
    assert_eq!(report.entries, 5);
    assert_eq!(report.torn_tail_bytes, 34);
    assert_eq!(read_entries(tmp.path()).unwrap().len(), 5);

    let mut log = FerryLog::open(tmp.path(), config(0)).unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        before,
        "the torn line was truncated"
    );
    assert_eq!(log.size(), 5);
    assert_eq!(log.append(draft(5)).unwrap(), 5);
    log.close().unwrap();
    let report = verify(tmp.path()).unwrap();
    assert_eq!((report.entries, report.torn_tail_bytes), (6, 0));
}

#[test]
fn a_torn_line_in_the_middle_is_an_error() {
    let tmp = build(10, 0);
    let path = entries_path(tmp.path());
    let mut lines = read_lines(&path);
    let half = lines[5].len() / 2;
    lines[5].truncate(half);
    write_lines(&path, &lines);

    let err = verify(tmp.path()).unwrap_err();
    assert!(
        matches!(err, LogVerifyError::EntryNotJson { line: 6, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("line 6 (entry 5)"), "{err}");
    let err = FerryLog::open(tmp.path(), config(0)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("line 6"), "{err}");
}

/// The tamper tests start from 50 entries with a checkpoint every 10.
fn tamper_log() -> TempDir {
    let tmp = build(50, 10);
    let report = verify(tmp.path()).unwrap();
    assert_eq!((report.entries, report.checkpoints), (50, 5));
    tmp
}

fn assert_open_refused(dir: &Path) {
    let err = FerryLog::open(dir, config(10)).unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
}

#[test]
fn editing_one_field_of_one_entry_is_detected_and_named() {
    let tmp = tamper_log();
    let path = entries_path(tmp.path());
    let mut lines = read_lines(&path);
    lines[23] = lines[23].replace(r#""bytes":1023"#, r#""bytes":9999"#);
    write_lines(&path, &lines);

    let err = verify(tmp.path()).unwrap_err();
    match &err {
        LogVerifyError::ChainBroken { line, index, .. } => assert_eq!((*line, *index), (25, 24)),
        other => panic!("unexpected {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("not the hash of entry 23 (line 24): entry 23 was edited"),
        "{msg}"
    );
    assert_open_refused(tmp.path());
}

#[test]
fn deleting_an_entry_is_detected() {
    let tmp = tamper_log();
    let path = entries_path(tmp.path());
    let mut lines = read_lines(&path);
    lines.remove(23);
    write_lines(&path, &lines);
    let err = verify(tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            LogVerifyError::IndexMismatch {
                line: 24,
                expected: 23,
                found: 24
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("entry 23 was deleted"), "{err}");
    assert_open_refused(tmp.path());
}

#[test]
fn swapping_two_entries_is_detected() {
    let tmp = tamper_log();
    let path = entries_path(tmp.path());
    let mut lines = read_lines(&path);
    lines.swap(30, 31);
    write_lines(&path, &lines);
    let err = verify(tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            LogVerifyError::IndexMismatch {
                line: 31,
                expected: 30,
                found: 31
            }
        ),
        "{err}"
    );
}

#[test]
fn inserting_a_forged_entry_is_detected() {
    let tmp = tamper_log();
    let path = entries_path(tmp.path());
    let mut lines = read_lines(&path);
    // A well-formed forgery that chains onto entry 22.
    let mut forged = entry_of(&lines[23]);
    forged.bundle_id = Some("bundle-forged".into());
    forged.prev = hex::encode(leaf_hash(lines[22].as_bytes()));
    lines.insert(23, line_of(&forged));
    write_lines(&path, &lines);
    let err = verify(tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            LogVerifyError::IndexMismatch {
                line: 25,
                expected: 24,
                found: 23
            }
        ),
        "{err}"
    );
}

/// Re-chains entries from `from` on, as an attacker without the signing key would.
fn rechain(lines: &mut [String], from: usize) {
    for i in from..lines.len() {
        let mut e = entry_of(&lines[i]);
        e.prev = if i == 0 {
            "0".repeat(64)
        } else {
            hex::encode(leaf_hash(lines[i - 1].as_bytes()))
        };
        lines[i] = line_of(&e);
    }
}

#[test]
fn an_edit_with_the_chain_recomputed_is_caught_by_the_checkpoint() {
    let tmp = tamper_log();
    let path = entries_path(tmp.path());
    let mut lines = read_lines(&path);
    let mut e = entry_of(&lines[23]);
    e.event = Event::Landed;
    lines[23] = line_of(&e);
    rechain(&mut lines, 24);
    write_lines(&path, &lines);

    let err = verify(tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            LogVerifyError::CheckpointRootMismatch {
                line: 3,
                size: 30,
                from: 20
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("index in 20..=29"), "{err}");
    assert_open_refused(tmp.path());
}

#[test]
fn rewriting_the_whole_log_and_its_checkpoints_needs_the_key() {
    let tmp = tamper_log();
    let path = entries_path(tmp.path());
    let mut lines = read_lines(&path);
    let mut e = entry_of(&lines[3]);
    e.bytes = 1;
    lines[3] = line_of(&e);
    rechain(&mut lines, 4);
    write_lines(&path, &lines);
    // Re-sign every checkpoint with another key under the same key name.
    let roots: Vec<[u8; 32]> = (1..=5)
        .map(|k| {
            let leaves: Vec<_> = lines[..k * 10]
                .iter()
                .map(|l| leaf_hash(l.as_bytes()))
                .collect();
            ow_ferrylog::merkle::root_from_leaf_hashes(&leaves)
        })
        .collect();
    let cps: Vec<String> = roots
        .iter()
        .enumerate()
        .map(|(k, root)| {
            let cp = Checkpoint {
                origin: NAME.into(),
                size: (k as u64 + 1) * 10,
                root: *root,
            };
            let rec = CheckpointRecord {
                size: cp.size,
                time: t0(),
                note: sign_checkpoint(&cp, NAME, &other_key()).unwrap(),
            };
            serde_json::to_string(&rec).unwrap()
        })
        .collect();
    write_lines(&checkpoints_path(tmp.path()), &cps);

    let err = verify(tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            LogVerifyError::CheckpointNote {
                line: 1,
                source: NoteError::NotSigned { .. },
                ..
            }
        ),
        "{err}"
    );
    // With the forger's key it would verify: the agent's public key is the trust anchor.
    verify_log(tmp.path(), &other_key().verifying_key(), NAME).unwrap();
}

#[test]
fn editing_a_checkpoint_is_detected() {
    let tmp = tamper_log();
    let path = checkpoints_path(tmp.path());
    let original = read_lines(&path);
    let b64 = base64::engine::general_purpose::STANDARD;

    // Edit the root inside the signed note.
    let mut lines = original.clone();
    let mut rec: CheckpointRecord = serde_json::from_str(&lines[2]).unwrap();
    let cp = parse_checkpoint_note(&rec.note).unwrap();
    rec.note = rec
        .note
        .replace(&b64.encode(cp.root), &b64.encode([0u8; 32]));
    lines[2] = serde_json::to_string(&rec).unwrap();
    write_lines(&path, &lines);
    let err = verify(tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            LogVerifyError::CheckpointNote {
                line: 3,
                size: 30,
                source: NoteError::BadSignature { .. }
            }
        ),
        "{err}"
    );
    assert_open_refused(tmp.path());

    // Edit the size inside the signed note.
    let mut lines = original.clone();
    let mut rec: CheckpointRecord = serde_json::from_str(&lines[2]).unwrap();
    rec.note = rec.note.replacen("\n30\n", "\n29\n", 1);
    lines[2] = serde_json::to_string(&rec).unwrap();
    write_lines(&path, &lines);
    assert!(matches!(
        verify(tmp.path()).unwrap_err(),
        LogVerifyError::CheckpointNote { line: 3, .. }
    ));

    // Edit only the record's size field.
    let mut lines = original.clone();
    lines[2] = lines[2].replacen(r#""size":30"#, r#""size":31"#, 1);
    write_lines(&path, &lines);
    assert!(matches!(
        verify(tmp.path()).unwrap_err(),
        LogVerifyError::CheckpointSizeMismatch {
            line: 3,
            record_size: 31,
            note_size: 30
        }
    ));

    // Reorder checkpoints.
    let mut lines = original.clone();
    lines.swap(1, 3);
    write_lines(&path, &lines);
    assert!(matches!(
        verify(tmp.path()).unwrap_err(),
        LogVerifyError::CheckpointBackwards {
            line: 3,
            size: 30,
            previous: 40
        }
    ));

    // Garbage line.
    let mut lines = original.clone();
    lines[0] = "{not json".into();
    write_lines(&path, &lines);
    assert!(matches!(
        verify(tmp.path()).unwrap_err(),
        LogVerifyError::CheckpointNotJson { line: 1, .. }
    ));

    write_lines(&path, &original);
    verify(tmp.path()).unwrap();
}

#[test]
fn a_checkpoint_signed_by_another_key_is_refused() {
    let tmp = tamper_log();
    let path = checkpoints_path(tmp.path());
    let mut lines = read_lines(&path);
    let rec: CheckpointRecord = serde_json::from_str(&lines[4]).unwrap();
    let cp = parse_checkpoint_note(&rec.note).unwrap();
    let forged = CheckpointRecord {
        note: sign_checkpoint(&cp, NAME, &other_key()).unwrap(),
        ..rec
    };
    lines[4] = serde_json::to_string(&forged).unwrap();
    write_lines(&path, &lines);
    let err = verify(tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            LogVerifyError::CheckpointNote {
                line: 5,
                size: 50,
                source: NoteError::NotSigned { .. }
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("no signature by key"), "{err}");
}

#[test]
fn truncating_entries_covered_by_a_checkpoint_is_detected() {
    let tmp = tamper_log();
    let path = entries_path(tmp.path());
    let lines = read_lines(&path);
    write_lines(&path, &lines[..35]);
    let err = verify(tmp.path()).unwrap_err();
    assert!(
        matches!(
            err,
            LogVerifyError::CheckpointBeyondLog {
                line: 4,
                size: 40,
                entries: 35
            }
        ),
        "{err}"
    );
    assert_open_refused(tmp.path());

    // Even the very last entry is protected once a checkpoint covers it.
    write_lines(&path, &lines[..49]);
    assert!(matches!(
        verify(tmp.path()).unwrap_err(),
        LogVerifyError::CheckpointBeyondLog {
            line: 5,
            size: 50,
            entries: 49
        }
    ));
}

#[test]
fn inclusion_proof_documents_verify_offline_and_detect_edits() {
    let tmp = tamper_log();
    let vk = key().verifying_key();
    let doc = prove_inclusion(tmp.path(), 17, None).unwrap();
    assert_eq!((doc.index, doc.size), (17, 50));
    // Round trip through JSON: the document is all a verifier needs.
    let json = serde_json::to_string_pretty(&doc).unwrap();
    let doc: ow_ferrylog::InclusionProofDoc = serde_json::from_str(&json).unwrap();
    let verified = verify_inclusion_proof(&doc, &vk, NAME).unwrap();
    assert_eq!(verified.entry.index, 17);
    assert_eq!(verified.entry.bundle_id.as_deref(), Some("bundle-0017"));
    assert_eq!(verified.checkpoint.size, 50);

    // Against an older checkpoint.
    let doc20 = prove_inclusion(tmp.path(), 17, Some(20)).unwrap();
    assert_eq!(doc20.size, 20);
    verify_inclusion_proof(&doc20, &vk, NAME).unwrap();
    for i in [0, 49] {
        let d = prove_inclusion(tmp.path(), i, None).unwrap();
        verify_inclusion_proof(&d, &vk, NAME).unwrap();
    }

    // Edited leaf.
    let mut bad = doc.clone();
    bad.leaf = bad.leaf.replace(r#""bytes":1017"#, r#""bytes":1018"#);
    assert!(matches!(
        verify_inclusion_proof(&bad, &vk, NAME),
        Err(Error::Proof(ow_ferrylog::ProofError::RootMismatch))
    ));
    // Edited proof hash.
    let mut bad = doc.clone();
    let first = bad.proof[0].clone();
    let flipped = if first.starts_with('0') { "1" } else { "0" };
    bad.proof[0] = format!("{flipped}{}", &first[1..]);
    assert!(verify_inclusion_proof(&bad, &vk, NAME).is_err());
    // Dropped proof hash.
    let mut bad = doc.clone();
    bad.proof.pop();
    assert!(verify_inclusion_proof(&bad, &vk, NAME).is_err());
    // Edited note.
    let mut bad = doc.clone();
    bad.checkpoint = bad.checkpoint.replacen("\n50\n", "\n51\n", 1);
    assert!(matches!(
        verify_inclusion_proof(&bad, &vk, NAME),
        Err(Error::Note(NoteError::BadSignature { .. }))
    ));
    // Claimed index or size differs.
    let mut bad = doc.clone();
    bad.index = 18;
    assert!(matches!(
        verify_inclusion_proof(&bad, &vk, NAME),
        Err(Error::ProofDoc { .. })
    ));
    let mut bad = doc.clone();
    bad.size = 40;
    assert!(matches!(
        verify_inclusion_proof(&bad, &vk, NAME),
        Err(Error::ProofDoc { .. })
    ));
    // Wrong key.
    assert!(verify_inclusion_proof(&doc, &other_key().verifying_key(), NAME).is_err());
}

#[test]
fn inclusion_proofs_need_a_covering_checkpoint() {
    let tmp = TempDir::new().unwrap();
    let mut log = FerryLog::open(tmp.path(), config(10)).unwrap();
    for i in 0..15 {
        log.append(draft(i)).unwrap();
    }
    log.sync().unwrap();
    prove_inclusion(tmp.path(), 9, None).unwrap();
    let err = prove_inclusion(tmp.path(), 12, None).unwrap_err();
    assert!(matches!(err, Error::NoCheckpoint { .. }), "{err}");
    assert!(err.to_string().contains("entry 12 is not covered"), "{err}");
    let err = prove_inclusion(tmp.path(), 3, Some(7)).unwrap_err();
    assert!(err.to_string().contains("no checkpoint of size 7"), "{err}");
    log.close().unwrap();
    prove_inclusion(tmp.path(), 12, None).unwrap();
}

#[test]
fn proofs_are_refused_on_a_tampered_log() {
    let tmp = tamper_log();
    let path = entries_path(tmp.path());
    let mut lines = read_lines(&path);
    let mut e = entry_of(&lines[5]);
    e.bytes = 0;
    lines[5] = line_of(&e);
    rechain(&mut lines, 6);
    write_lines(&path, &lines);
    let err = prove_inclusion(tmp.path(), 5, None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Verify(LogVerifyError::CheckpointRootMismatch { size: 10, .. })
        ),
        "{err}"
    );
}

#[test]
fn consistency_proof_documents_verify_offline() {
    let tmp = tamper_log();
    let vk = key().verifying_key();
    let doc = prove_consistency(tmp.path(), 20, 50).unwrap();
    let (old, new) = verify_consistency_proof(&doc, &vk, NAME).unwrap();
    assert_eq!((old.size, new.size), (20, 50));
    verify_consistency_proof(&prove_consistency(tmp.path(), 30, 30).unwrap(), &vk, NAME).unwrap();

    let mut bad = doc.clone();
    bad.proof.reverse();
    assert!(verify_consistency_proof(&bad, &vk, NAME).is_err());
    let mut bad = doc.clone();
    std::mem::swap(&mut bad.old_checkpoint, &mut bad.new_checkpoint);
    assert!(verify_consistency_proof(&bad, &vk, NAME).is_err());
    let mut bad = doc.clone();
    bad.old_size = 30;
    assert!(verify_consistency_proof(&bad, &vk, NAME).is_err());
    let mut bad = doc.clone();
    bad.proof[0] = "zz".into();
    assert!(matches!(
        verify_consistency_proof(&bad, &vk, NAME),
        Err(Error::ProofDoc { .. })
    ));

    assert!(matches!(
        prove_consistency(tmp.path(), 15, 50),
        Err(Error::NoCheckpoint { .. })
    ));
    assert!(prove_consistency(tmp.path(), 50, 20).is_err());
}

#[test]
fn read_entries_and_filter() {
    let tmp = build(30, 10);
    let entries = read_entries(tmp.path()).unwrap();
    assert_eq!(entries.len(), 30);
    let count = |f: &Filter| entries.iter().filter(|e| f.matches(e)).count();
    assert_eq!(count(&Filter::default()), 30);
    let rejected = Filter {
        event: Some(Event::Rejected),
        ..Filter::default()
    };
    assert_eq!(count(&rejected), 2); // indexes 4, 17
    assert!(
        entries
            .iter()
            .filter(|e| rejected.matches(e))
            .all(|e| e.reason.is_some())
    );
    let channel = Filter {
        channel: Some("extranet-to-intranet".into()),
        ..Filter::default()
    };
    assert_eq!(count(&channel), 15);
    let window = Filter {
        since: Some(t0() + Duration::seconds(10)),
        until: Some(t0() + Duration::seconds(20)),
        ..Filter::default()
    };
    assert_eq!(count(&window), 10); // 10..=19 (times carry .123)
    let case = Filter {
        case_id: Some("case-2".into()),
        kind: Some("application-submitted".into()),
        ..Filter::default()
    };
    assert_eq!(count(&case), 3);
    let bundle = Filter {
        bundle_id: Some("bundle-0007".into()),
        event: Some(Event::MediaImported),
        ..Filter::default()
    };
    assert_eq!(count(&bundle), 1); // entry 7's event is Event::ALL[7]
    let wrong_event = Filter {
        event: Some(Event::Landed),
        ..bundle
    };
    assert_eq!(count(&wrong_event), 0);
}

#[test]
fn invalid_drafts_are_refused_without_harm() {
    let tmp = TempDir::new().unwrap();
    let mut log = FerryLog::open(tmp.path(), config(10)).unwrap();
    log.append(draft(0)).unwrap();
    let cases: Vec<(&str, EntryDraft)> = vec![
        ("agent", EntryDraft::new(t0(), "has space", Event::Sent)),
        ("agent", EntryDraft::new(t0(), "", Event::Sent)),
        ("item_hashes", {
            let mut d = draft(1);
            d.item_hashes = vec!["ABC".into()];
            d
        }),
        ("reason", {
            let mut d = draft(1);
            d.reason = Some("two\nlines".into());
            d
        }),
        ("case_id", {
            let mut d = draft(1);
            d.case_id = Some("x".repeat(200));
            d
        }),
    ];
    for (field, d) in cases {
        match log.append(d) {
            Err(Error::InvalidEntry { field: f, .. }) => assert_eq!(f, field),
            other => panic!("expected InvalidEntry for {field}, got {other:?}"),
        }
    }
    assert_eq!(log.size(), 1);
    assert_eq!(log.append(draft(1)).unwrap(), 1);
    log.close().unwrap();
    assert_eq!(verify(tmp.path()).unwrap().entries, 2);
}

#[test]
fn only_one_process_may_hold_a_log() {
    let tmp = TempDir::new().unwrap();
    let log = FerryLog::open(tmp.path(), config(10)).unwrap();
    let err = FerryLog::open(tmp.path(), config(10)).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    drop(log);
    FerryLog::open(tmp.path(), config(10)).unwrap();
}

#[test]
fn reopening_with_another_key_or_origin_is_refused() {
    let tmp = build(12, 10);
    let mut wrong_key = LogConfig::for_agent(AGENT, other_key());
    wrong_key.checkpoint_every = 10;
    let err = FerryLog::open(tmp.path(), wrong_key).unwrap_err();
    assert!(err.to_string().contains("no signature by key"), "{err}");
    let wrong_origin = LogConfig::new("onewindow.example/ferry/other", NAME, key());
    let err = FerryLog::open(tmp.path(), wrong_origin).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Corrupt {
                source: LogVerifyError::CheckpointOrigin { line: 1, .. },
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn many_appends_with_group_commit() {
    // Not a timing test: it exercises the path agents use (many appends, one sync per 100)
    // across several automatic checkpoints, then checks everything.
    let tmp = TempDir::new().unwrap();
    let mut log = FerryLog::open(tmp.path(), config(1000)).unwrap();
    for i in 0..5000 {
        log.append(draft(i)).unwrap();
        if i % 100 == 99 {
            log.sync().unwrap();
        }
    }
    let root = log.root();
    log.close().unwrap();
    let report = verify(tmp.path()).unwrap();
    assert_eq!((report.entries, report.checkpoints), (5000, 5));
    assert_eq!(report.root, hex::encode(root));
    let doc = prove_inclusion(tmp.path(), 4321, None).unwrap();
    verify_inclusion_proof(&doc, &key().verifying_key(), NAME).unwrap();
    let doc = prove_consistency(tmp.path(), 1000, 5000).unwrap();
    verify_consistency_proof(&doc, &key().verifying_key(), NAME).unwrap();
}

#[test]
fn shipped_checkpoints_catch_a_rewrite_by_the_key_holder() {
    let tmp = build(30, 10);
    let vk = key().verifying_key();
    // The checkpoint of size 20 left the zone (e.g. on offline media) when it was written.
    let records: Vec<CheckpointRecord> = read_lines(&checkpoints_path(tmp.path()))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let shipped = records[1].note.clone();
    let cp = ow_ferrylog::check_shipped_checkpoint(tmp.path(), &shipped, &vk, NAME).unwrap();
    assert_eq!(cp.size, 20);

    // Someone holding the signing key rewrites entry 5 and re-signs every checkpoint.
    let path = entries_path(tmp.path());
    let mut lines = read_lines(&path);
    let mut e = entry_of(&lines[5]);
    e.event = Event::Landed;
    lines[5] = line_of(&e);
    rechain(&mut lines, 6);
    write_lines(&path, &lines);
    let resigned: Vec<String> = [10usize, 20, 30]
        .iter()
        .map(|&n| {
            let leaves: Vec<_> = lines[..n].iter().map(|l| leaf_hash(l.as_bytes())).collect();
            let cp = Checkpoint {
                origin: NAME.into(),
                size: n as u64,
                root: ow_ferrylog::merkle::root_from_leaf_hashes(&leaves),
            };
            let rec = CheckpointRecord {
                size: cp.size,
                time: t0(),
                note: sign_checkpoint(&cp, NAME, &key()).unwrap(),
            };
            serde_json::to_string(&rec).unwrap()
        })
        .collect();
    write_lines(&checkpoints_path(tmp.path()), &resigned);

    // The log is self-consistent again, but not with what already left the zone.
    verify(tmp.path()).unwrap();
    let err = ow_ferrylog::check_shipped_checkpoint(tmp.path(), &shipped, &vk, NAME).unwrap_err();
    assert!(
        matches!(
            err,
            LogVerifyError::ShippedCheckpointMismatch { size: 20, .. }
        ),
        "{err}"
    );

    // Truncating the log (and its checkpoints) below a shipped checkpoint is caught too.
    let tmp = build(30, 10);
    let path = entries_path(tmp.path());
    let lines = read_lines(&path);
    write_lines(&path, &lines[..15]);
    let cps = read_lines(&checkpoints_path(tmp.path()));
    write_lines(&checkpoints_path(tmp.path()), &cps[..1]);
    assert_eq!(verify(tmp.path()).unwrap().unsigned_tail, 5);
    let err = ow_ferrylog::check_shipped_checkpoint(tmp.path(), &shipped, &vk, NAME).unwrap_err();
    assert!(err.to_string().contains("only 15 entries"), "{err}");
    // A shipped note from another key is refused as such.
    let foreign = sign_checkpoint(&cp, NAME, &other_key()).unwrap();
    assert!(matches!(
        ow_ferrylog::check_shipped_checkpoint(tmp.path(), &foreign, &vk, NAME),
        Err(LogVerifyError::ShippedNote { .. })
    ));
}
