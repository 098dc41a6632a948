//! Reconciliation: from the two sides' ferry logs, per channel, what was sent, what landed, what
//! was lost (with the sequences), duplicated or refused (with reasons), and whether each log
//! verifies against its own signed checkpoints (`ow-ferry reconcile`, `docs/ferry-log.md`).
//!
//! It reads logs only, never the state databases: a security officer runs it offline on copies
//! of the logs carried out of each zone. The same events are written whether a bundle crossed a
//! gateway folder or a disc (`sent` / `media-exported` on the sending side, `landed` and
//! `rejected` on the receiving side), so one reconciliation covers both.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ed25519_dalek::VerifyingKey;
use ow_ferrylog::{Entry, Event};
use serde::Serialize;

/// Which side of a channel a log was written on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// A sending agent (or the media export of a zone): `sent`, `media-exported`.
    Sender,
    /// A receiving agent (or the media import): `landed`, `rejected`, `gap`.
    Receiver,
}

/// One log given to reconcile.
#[derive(Debug, Clone)]
pub struct LogSource {
    /// The log folder (`entries.jsonl`, `checkpoints.jsonl`).
    pub dir: PathBuf,
    /// Which side wrote it.
    pub side: Side,
}

/// Whether one log verified against its signed checkpoints.
#[derive(Debug, Clone, Serialize)]
pub struct LogCheck {
    /// The log folder.
    pub log: String,
    /// Which side wrote it.
    pub side: Side,
    /// `verified` (every entry covered by a signed checkpoint), `verified-with-tail` (verified,
    /// but entries after the last checkpoint are only hash-chained), `failed` (tampered or
    /// damaged: its content is not evidence), or `not-checked` (no key for it was given).
    pub status: &'static str,
    /// The key name its checkpoints are signed with (`onewindow-<zone>`), when it has any.
    pub key_name: Option<String>,
    /// Entries read.
    pub entries: u64,
    /// Entries covered by the last signed checkpoint.
    pub covered: u64,
    /// What failed, or what is not covered.
    pub message: Option<String>,
}

/// A bundle refused by the receiving side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Refused {
    /// Its sequence, when its header could be read (unverified unless the code is a state code).
    pub sequence: Option<u64>,
    /// Its bundle id, likewise.
    pub bundle_id: Option<String>,
    /// The refusal code (`bad-signature`, `duplicate`, …).
    pub code: String,
    /// The logged reason (code and message).
    pub reason: String,
}

/// One channel's reconciliation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelReport {
    /// The channel.
    pub channel: String,
    /// Distinct bundles the sending side logged as sent (over a gateway folder or on a disc).
    pub sent: u64,
    /// Sequences sent more than once (`ow-ferry resend`, or a crash before the move to `sent/`).
    pub resent: Vec<u64>,
    /// Distinct bundles the receiving side logged as landed.
    pub received: u64,
    /// Sent bundles the receiving side landed with the same id and sequence.
    pub confirmed: u64,
    /// Sequences sent that never landed and were never refused: lost on the way.
    pub lost: Vec<u64>,
    /// Every sequence from 1 to the highest sent or landed that never landed, as inclusive
    /// ranges: the gap lost and refused bundles leave (and bundles the sending log does not show).
    pub missing: Vec<(u64, u64)>,
    /// Copies refused as already landed (`duplicate`): the copy arrived again, nothing landed
    /// twice.
    pub duplicated: Vec<Refused>,
    /// Everything else the receiving side refused, with its reason.
    pub refused: Vec<Refused>,
    /// Sequences landed that the sending logs given do not show as sent (a log is missing, or
    /// was cut short).
    pub landed_not_sent: Vec<u64>,
    /// Whether a sending and a receiving log were both given for this channel; without both,
    /// `lost` and `confirmed` cannot be told.
    pub both_sides: bool,
    /// With the receipts a sending zone imported ([`add_receipts`]): how many it imported for
    /// this channel.
    pub receipts: u64,
    /// Sent bundles a receipt lists with the same sequence and bundle id.
    pub confirmed_by_receipt: u64,
    /// Sent sequences inside a receipt's range that the receipt does not list, and no receipt
    /// lists: they had not landed when the receiving zone wrote it.
    pub not_landed_per_receipt: Vec<u64>,
    #[serde(skip)]
    sent_ids: BTreeSet<(u64, String)>,
    #[serde(skip)]
    listed: BTreeSet<(u64, String)>,
    #[serde(skip)]
    ranges: Vec<(u64, u64)>,
}

/// The whole reconciliation.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Reconciliation {
    /// Per channel, in name order.
    pub channels: Vec<ChannelReport>,
    /// Per log: did it verify.
    pub logs: Vec<LogCheck>,
}

impl Reconciliation {
    /// True when every log verified (checkpoints may leave an unsigned tail).
    pub fn logs_verify(&self) -> bool {
        self.logs.iter().all(|l| l.status != "failed")
    }
}

/// Why a log could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the ferry log {dir}: {cause}")]
pub struct ReconcileError {
    dir: String,
    cause: ow_ferrylog::Error,
}

/// Checks one log against the key `key_for` gives for its key name.
pub fn check_log(source: &LogSource, key_for: &dyn Fn(&str) -> Option<VerifyingKey>) -> LogCheck {
    let dir = &source.dir;
    let key_name = crate::audit::key_name_in_log(dir);
    let mut check = LogCheck {
        log: dir.display().to_string(),
        side: source.side,
        status: "not-checked",
        key_name: key_name.clone(),
        entries: 0,
        covered: 0,
        message: None,
    };
    let Some(name) = key_name else {
        check.message = Some(
            "the log has no signed checkpoint, so it cannot be verified (an agent signs one on \
             stop; checkpoints.jsonl may have been deleted)"
                .into(),
        );
        return check;
    };
    let Some(key) = key_for(&name) else {
        check.message = Some(format!(
            "no public key for {name} was given; pass the folder holding <zone>.sign.pub"
        ));
        return check;
    };
    match ow_ferrylog::verify_log(dir, &key, &name) {
        Ok(report) => {
            check.entries = report.entries;
            check.covered = report.last_checkpoint_size;
            match crate::audit::uncovered_entries(&report) {
                None => check.status = "verified",
                Some(warning) => {
                    check.status = "verified-with-tail";
                    check.message = Some(warning);
                }
            }
        }
        Err(err) => {
            check.status = "failed";
            check.message = Some(err.to_string());
        }
    }
    check
}

#[derive(Default)]
struct Channel {
    /// sequence → bundle ids sent at it, with how many sends.
    sent: BTreeMap<u64, BTreeMap<String, u64>>,
    /// sequence → bundle id landed.
    landed: BTreeMap<u64, String>,
    refused: Vec<Refused>,
    duplicated: Vec<Refused>,
    has_sender: bool,
    has_receiver: bool,
}

/// Reconciles the given logs. A log that cannot be read is an error; one that does not verify is
/// still read, and reported as `failed`.
pub fn reconcile(
    sources: &[LogSource],
    key_for: &dyn Fn(&str) -> Option<VerifyingKey>,
) -> Result<Reconciliation, ReconcileError> {
    let mut channels: BTreeMap<String, Channel> = BTreeMap::new();
    let mut logs = Vec::with_capacity(sources.len());
    for source in sources {
        logs.push(check_log(source, key_for));
        let entries = read(&source.dir)?;
        // The channels this log speaks for (an agent's entries all carry its channel).
        for entry in &entries {
            let Some(name) = &entry.channel else { continue };
            let channel = channels.entry(name.clone()).or_default();
            match source.side {
                Side::Sender => channel.has_sender = true,
                Side::Receiver => channel.has_receiver = true,
            }
            add(channel, source.side, entry);
        }
    }
    let channels = channels
        .into_iter()
        .map(|(name, c)| report(name, c))
        .collect();
    Ok(Reconciliation { channels, logs })
}

fn read(dir: &Path) -> Result<Vec<Entry>, ReconcileError> {
    ow_ferrylog::read_entries(dir).map_err(|cause| ReconcileError {
        dir: dir.display().to_string(),
        cause,
    })
}

fn add(channel: &mut Channel, side: Side, entry: &Entry) {
    match (side, entry.event) {
        (Side::Sender, Event::Sent | Event::MediaExported) => {
            if let (Some(sequence), Some(id)) = (entry.sequence, &entry.bundle_id) {
                *channel
                    .sent
                    .entry(sequence)
                    .or_default()
                    .entry(id.clone())
                    .or_default() += 1;
            }
        }
        (Side::Receiver, Event::Landed) => {
            if let (Some(sequence), Some(id)) = (entry.sequence, &entry.bundle_id) {
                channel.landed.insert(sequence, id.clone());
            }
        }
        (Side::Receiver, Event::Rejected) => {
            let reason = entry.reason.clone().unwrap_or_default();
            let refused = Refused {
                sequence: entry.sequence,
                bundle_id: entry.bundle_id.clone(),
                code: reason_code(&reason).to_owned(),
                reason,
            };
            if refused.code == "duplicate" {
                channel.duplicated.push(refused);
            } else {
                channel.refused.push(refused);
            }
        }
        _ => {}
    }
}

/// The code a logged rejection starts with: `code: message` or `code [where]: message`.
pub fn reason_code(reason: &str) -> &str {
    let end = reason
        .find(|c: char| c == ':' || c.is_whitespace())
        .unwrap_or(reason.len());
    &reason[..end]
}

fn report(name: String, c: Channel) -> ChannelReport {
    let both_sides = c.has_sender && c.has_receiver;
    let sent_ids: BTreeSet<(u64, &str)> = c
        .sent
        .iter()
        .flat_map(|(s, ids)| ids.keys().map(move |id| (*s, id.as_str())))
        .collect();
    let resent = c
        .sent
        .iter()
        .filter(|(_, ids)| ids.values().sum::<u64>() > 1)
        .map(|(s, _)| *s)
        .collect();
    let confirmed = c
        .landed
        .iter()
        .filter(|(s, id)| sent_ids.contains(&(**s, id.as_str())))
        .count() as u64;
    // A landed copy of a refused bundle (refused at first, landed on a resend) is not refused.
    let refused_sequences: BTreeSet<u64> = c
        .refused
        .iter()
        .filter_map(|r| r.sequence)
        .filter(|s| !c.landed.contains_key(s))
        .collect();
    let lost = if both_sides {
        c.sent
            .keys()
            .filter(|s| !c.landed.contains_key(s) && !refused_sequences.contains(s))
            .copied()
            .collect()
    } else {
        Vec::new()
    };
    let landed_not_sent = if both_sides {
        c.landed
            .iter()
            .filter(|(s, id)| !sent_ids.contains(&(**s, id.as_str())))
            .map(|(s, _)| *s)
            .collect()
    } else {
        Vec::new()
    };
    let top = c
        .sent
        .keys()
        .next_back()
        .copied()
        .max(c.landed.keys().next_back().copied())
        .unwrap_or(0);
    let mut missing = Vec::new();
    let mut expected = 1u64;
    for &sequence in c.landed.keys() {
        if sequence > expected {
            missing.push((expected, sequence - 1));
        }
        expected = sequence.saturating_add(1);
    }
    if top >= expected && top > 0 {
        missing.push((expected, top));
    }
    ChannelReport {
        channel: name,
        sent: sent_ids.len() as u64,
        resent,
        received: c.landed.len() as u64,
        confirmed,
        lost,
        missing,
        duplicated: c.duplicated,
        refused: c.refused,
        landed_not_sent,
        both_sides,
        receipts: 0,
        confirmed_by_receipt: 0,
        not_landed_per_receipt: Vec::new(),
        listed: BTreeSet::new(),
        ranges: Vec::new(),
        sent_ids: c
            .sent
            .iter()
            .flat_map(|(s, ids)| ids.keys().map(move |id| (*s, id.clone())))
            .collect(),
    }
}

/// Adds what the receipts a sending zone imported say (`ferry_receipts`, each checked when it
/// was imported: signature, pinned key, channel, checkpoint) to the channels it sent on.
pub fn add_receipts(report: &mut Reconciliation, receipts: &[crate::receipts::ReceiptPayload]) {
    for payload in receipts {
        let name = payload.channel.to_string();
        let Some(channel) = report.channels.iter_mut().find(|c| c.channel == name) else {
            continue;
        };
        channel.receipts += 1;
        let listed: BTreeSet<(u64, &str)> = payload
            .landed
            .iter()
            .map(|(s, id, _)| (*s, id.as_str()))
            .collect();
        channel
            .listed
            .extend(listed.iter().map(|(s, id)| (*s, (*id).to_owned())));
        channel
            .ranges
            .push((payload.first_sequence, payload.last_sequence));
    }
    for channel in &mut report.channels {
        if channel.receipts == 0 {
            continue;
        }
        channel.confirmed_by_receipt = channel
            .sent_ids
            .iter()
            .filter(|k| channel.listed.contains(*k))
            .count() as u64;
        let listed_sequences: BTreeSet<u64> = channel.listed.iter().map(|(s, _)| *s).collect();
        let mut not_landed: Vec<u64> = channel
            .sent_ids
            .iter()
            .map(|(s, _)| *s)
            .filter(|s| {
                !listed_sequences.contains(s)
                    && channel.ranges.iter().any(|(a, b)| a <= s && s <= b)
            })
            .collect();
        not_landed.dedup();
        channel.not_landed_per_receipt = not_landed;
    }
}

/// Renders a reconciliation for a terminal.
pub fn table(r: &Reconciliation) -> String {
    let mut out = String::new();
    for log in &r.logs {
        out.push_str(&format!(
            "log {} ({}): {}{}\n",
            log.log,
            match log.side {
                Side::Sender => "sending side",
                Side::Receiver => "receiving side",
            },
            log.status,
            log.message
                .as_deref()
                .map(|m| format!(" — {m}"))
                .unwrap_or_default()
        ));
    }
    for c in &r.channels {
        out.push_str(&format!(
            "\nchannel {}{}\n  sent {}  received {}  confirmed {}  lost {}  duplicated {}  refused {}\n",
            c.channel,
            if c.both_sides {
                ""
            } else {
                " (only one side's log: lost and confirmed cannot be told)"
            },
            c.sent,
            c.received,
            c.confirmed,
            c.lost.len(),
            c.duplicated.len(),
            c.refused.len()
        ));
        if c.receipts > 0 {
            out.push_str(&format!(
                "  receipts {}  confirmed by receipt {}\n",
                c.receipts, c.confirmed_by_receipt
            ));
            if !c.not_landed_per_receipt.is_empty() {
                out.push_str(&format!(
                    "  not landed per receipt: {}\n",
                    join(&c.not_landed_per_receipt)
                ));
            }
        }
        if !c.lost.is_empty() {
            out.push_str(&format!("  lost sequences: {}\n", join(&c.lost)));
        }
        if !c.missing.is_empty() {
            let ranges: Vec<String> = c
                .missing
                .iter()
                .map(|(a, b)| {
                    if a == b {
                        a.to_string()
                    } else {
                        format!("{a}-{b}")
                    }
                })
                .collect();
            out.push_str(&format!("  missing (gap): {}\n", ranges.join(",")));
        }
        if !c.resent.is_empty() {
            out.push_str(&format!("  resent sequences: {}\n", join(&c.resent)));
        }
        if !c.landed_not_sent.is_empty() {
            out.push_str(&format!(
                "  landed but not in the sending log: {}\n",
                join(&c.landed_not_sent)
            ));
        }
        for d in &c.duplicated {
            out.push_str(&format!(
                "  duplicated: sequence {} bundle {}\n",
                d.sequence
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "?".into()),
                d.bundle_id.as_deref().unwrap_or("?")
            ));
        }
        for f in &c.refused {
            out.push_str(&format!(
                "  refused: sequence {} [{}] {}\n",
                f.sequence
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "?".into()),
                f.code,
                f.reason
            ));
        }
    }
    out
}

fn join(values: &[u64]) -> String {
    values
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_are_read_in_both_logged_forms() {
        assert_eq!(
            reason_code("duplicate [quarantined as a.owb]: already landed"),
            "duplicate"
        );
        assert_eq!(reason_code("bad-signature: no"), "bad-signature");
        assert_eq!(reason_code(""), "");
    }

    fn chan(sent: &[(u64, &str, u64)], landed: &[(u64, &str)], refused: &[u64]) -> Channel {
        let mut c = Channel {
            has_sender: true,
            has_receiver: true,
            ..Channel::default()
        };
        for (s, id, n) in sent {
            c.sent.entry(*s).or_default().insert((*id).into(), *n);
        }
        for (s, id) in landed {
            c.landed.insert(*s, (*id).into());
        }
        for s in refused {
            c.refused.push(Refused {
                sequence: Some(*s),
                bundle_id: None,
                code: "bad-signature".into(),
                reason: "bad-signature: x".into(),
            });
        }
        c
    }

    #[test]
    fn lost_refused_and_the_gap_are_told_apart() {
        let c = chan(
            &[
                (1, "a", 1),
                (2, "b", 1),
                (3, "c", 1),
                (4, "d", 2),
                (5, "e", 1),
            ],
            &[(1, "a"), (4, "d"), (6, "f")],
            &[3],
        );
        let r = report("x".into(), c);
        assert_eq!(r.sent, 5);
        assert_eq!(r.received, 3);
        assert_eq!(r.confirmed, 2);
        assert_eq!(r.lost, vec![2, 5]);
        assert_eq!(r.missing, vec![(2, 3), (5, 5)]);
        assert_eq!(r.resent, vec![4]);
        assert_eq!(r.landed_not_sent, vec![6]);
    }

    #[test]
    fn a_trailing_loss_is_part_of_the_gap() {
        let r = report(
            "x".into(),
            chan(&[(1, "a", 1), (2, "b", 1)], &[(1, "a")], &[]),
        );
        assert_eq!(r.missing, vec![(2, 2)]);
        assert_eq!(r.lost, vec![2]);
        let r = report("x".into(), chan(&[], &[], &[]));
        assert!(r.missing.is_empty());
    }

    #[test]
    fn receipts_confirm_what_they_list_and_show_what_had_not_landed() {
        let c = chan(
            &[(1, "a", 1), (2, "b", 1), (3, "c", 1), (9, "i", 1)],
            &[],
            &[],
        );
        let mut r = Reconciliation {
            channels: vec![report("extranet-to-intranet".into(), c)],
            logs: Vec::new(),
        };
        let receipt = |first, last, landed: &[(u64, &str)]| crate::receipts::ReceiptPayload {
            format: crate::receipts::RECEIPT_FORMAT.into(),
            zone: ow_bundle::Zone::Intranet,
            channel: "extranet-to-intranet"
                .parse()
                .unwrap_or_else(|_| panic!("channel")),
            agent: "rx".into(),
            written_at: chrono::Utc::now(),
            first_sequence: first,
            last_sequence: last,
            landed: landed
                .iter()
                .map(|(s, id)| (*s, (*id).to_owned(), "d".to_owned()))
                .collect(),
            checkpoint: None,
        };
        // Sequence 2 was not listed by the first receipt but was by the second; 3 by neither;
        // 9 is outside both ranges (no receipt speaks for it yet); "x" was never sent.
        add_receipts(
            &mut r,
            &[
                receipt(1, 3, &[(1, "a"), (4, "x")]),
                receipt(2, 3, &[(2, "b")]),
            ],
        );
        let c = &r.channels[0];
        assert_eq!(c.receipts, 2);
        assert_eq!(c.confirmed_by_receipt, 2);
        assert_eq!(c.not_landed_per_receipt, vec![3]);
    }

    #[test]
    fn a_refused_bundle_landed_on_resend_is_not_refused_any_more() {
        let r = report("x".into(), chan(&[(1, "a", 2)], &[(1, "a")], &[1]));
        assert!(r.lost.is_empty());
        assert!(r.missing.is_empty());
    }
}
