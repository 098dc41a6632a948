//! Ferry log entries: what an agent records about each bundle it queued, sent, received,
//! landed, rejected, imported, or carried on offline media.
//!
//! # No personal data
//!
//! An entry holds only identifiers (agent, channel, bundle, case), sequence numbers, sizes,
//! BLAKE3 hashes of items, event codes and short machine-readable reasons. Never put names, ID
//! numbers, addresses, file names chosen by citizens or any other personal data in an entry:
//! the log is append-only and cannot be redacted later, and it is shown to security officers
//! in every zone. [`EntryDraft::validate`] enforces the shapes it can (lengths, single-line
//! text, hex hashes); the rest is the caller's duty.
//!
//! # Storage
//!
//! An entry is stored as one compact JSON object per line of `entries.jsonl`. The exact bytes
//! of the stored line (without its newline) are the Merkle leaf, so no canonical form is
//! needed: readers hash what is on disk. Optional fields that are `None` are omitted.

use chrono::{DateTime, SecondsFormat, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::merkle::Hash;

/// The `prev` value of entry 0: 64 zeros.
pub const ZERO_PREV: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Longest accepted identifier field (agent, channel, bundle id, case id, kind), in bytes.
pub const MAX_ID_LEN: usize = 128;
/// Longest accepted `reason`, in bytes.
pub const MAX_REASON_LEN: usize = 512;
/// Most item hashes accepted in one entry.
pub const MAX_ITEM_HASHES: usize = 10_000;

/// What happened to a bundle (or to the agent).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Event {
    /// A bundle was put in the outbox queue of the agent.
    Queued,
    /// A bundle was handed to the gateway.
    Sent,
    /// A bundle arrived from the gateway.
    Received,
    /// A received bundle passed every check and was placed in the zone's inbox.
    Landed,
    /// A bundle failed a check and was quarantined (`reason` holds the code and message).
    Rejected,
    /// A zone imported the bundle (exactly once).
    Imported,
    /// A bundle was written to offline media.
    MediaExported,
    /// A bundle was read from offline media.
    MediaImported,
    /// A disc was refused as a whole (`reason` holds the code and message).
    MediaRefused,
    /// A gap in a channel's sequence numbers was seen (`reason` holds the missing range).
    Gap,
    /// The agent started.
    Started,
    /// The agent stopped.
    Stopped,
    /// A person acted in a zone application (a registrar accepting a case, …): `agent` names
    /// the actor by id, `kind` the action, `case_id` the case, `reason` the stated reason.
    Action,
    /// An alarm was raised about a channel (`reason` holds its code and message, e.g.
    /// `no-traffic: nothing has landed for 900 s`).
    Alarm,
}

impl Event {
    /// The kebab-case name used in the log (`media-exported`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Queued => "queued",
            Event::Sent => "sent",
            Event::Received => "received",
            Event::Landed => "landed",
            Event::Rejected => "rejected",
            Event::Imported => "imported",
            Event::MediaExported => "media-exported",
            Event::MediaImported => "media-imported",
            Event::MediaRefused => "media-refused",
            Event::Gap => "gap",
            Event::Started => "started",
            Event::Stopped => "stopped",
            Event::Action => "action",
            Event::Alarm => "alarm",
        }
    }

    /// All events, in declaration order.
    pub const ALL: [Event; 14] = [
        Event::Queued,
        Event::Sent,
        Event::Received,
        Event::Landed,
        Event::Rejected,
        Event::Imported,
        Event::MediaExported,
        Event::MediaImported,
        Event::MediaRefused,
        Event::Gap,
        Event::Started,
        Event::Stopped,
        Event::Action,
        Event::Alarm,
    ];
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Event {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Event::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| Error::InvalidArgument {
                reason: format!(
                    "unknown event {s:?}; use one of: {}",
                    Event::ALL.map(Event::as_str).join(", ")
                ),
            })
    }
}

/// Serde helpers: RFC 3339 UTC with milliseconds (`2026-03-01T08:00:00.123Z`).
pub(crate) mod time_ms {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DateTime::parse_from_rfc3339(&s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| serde::de::Error::custom(format!("time {s:?} is not RFC 3339: {e}")))
    }
}

/// One ferry log entry (one line of `entries.jsonl`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the log, from 0, without gaps.
    pub index: u64,
    /// When it happened (supplied by the caller), RFC 3339 UTC with milliseconds.
    #[serde(with = "time_ms")]
    pub time: DateTime<Utc>,
    /// The agent that wrote the entry, e.g. `extranet-rx`.
    pub agent: String,
    /// The channel, e.g. `internet-to-extranet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The bundle id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<String>,
    /// The bundle's sequence number on its channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
    /// The registration case the bundle belongs to (an id, never a person's name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_id: Option<String>,
    /// The bundle kind, e.g. `application-submitted`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Size of the bundle file in bytes (0 when not about a bundle).
    pub bytes: u64,
    /// BLAKE3 hashes (lowercase hex) of the bundle's items.
    #[serde(default)]
    pub item_hashes: Vec<String>,
    /// What happened.
    pub event: Event,
    /// For `rejected`: an error code and short message; for `gap`: the missing range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Hex SHA-256 leaf hash of the previous entry's line (all zeros for index 0).
    pub prev: String,
}

impl Entry {
    /// The `prev` field decoded, if it is 64 hex digits.
    pub fn prev_hash(&self) -> Option<Hash> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(&self.prev, &mut out)
            .ok()
            .map(|()| out)
    }

    /// The time formatted as stored (RFC 3339 UTC, milliseconds).
    pub fn time_rfc3339(&self) -> String {
        self.time.to_rfc3339_opts(SecondsFormat::Millis, true)
    }
}

/// An entry as a caller fills it: everything but `index` and `prev`, which the log assigns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDraft {
    /// When it happened. Stored with millisecond precision (truncated).
    pub time: DateTime<Utc>,
    /// The agent writing the entry, e.g. `extranet-rx`.
    pub agent: String,
    /// The channel, e.g. `internet-to-extranet`.
    pub channel: Option<String>,
    /// The bundle id.
    pub bundle_id: Option<String>,
    /// The bundle's sequence number on its channel.
    pub sequence: Option<u64>,
    /// The registration case id.
    pub case_id: Option<String>,
    /// The bundle kind.
    pub kind: Option<String>,
    /// Size in bytes.
    pub bytes: u64,
    /// BLAKE3 hashes (hex) of the bundle's items.
    pub item_hashes: Vec<String>,
    /// What happened.
    pub event: Event,
    /// Error code + short message (rejected) or missing range (gap).
    pub reason: Option<String>,
}

impl EntryDraft {
    /// A draft with only the required fields set; fill the others as needed.
    pub fn new(time: DateTime<Utc>, agent: impl Into<String>, event: Event) -> Self {
        EntryDraft {
            time,
            agent: agent.into(),
            channel: None,
            bundle_id: None,
            sequence: None,
            case_id: None,
            kind: None,
            bytes: 0,
            item_hashes: Vec::new(),
            event,
            reason: None,
        }
    }

    /// Like [`EntryDraft::new`], stamped with the system clock. This is the only place the
    /// library reads the clock; prefer passing the time you already have.
    pub fn new_with_clock_now(agent: impl Into<String>, event: Event) -> Self {
        Self::new(Utc::now(), agent, event)
    }

    /// Checks the shapes that keep entries small, single-line and free of free-form text:
    /// identifiers are 1..=128 bytes of printable ASCII without spaces, the reason is at most
    /// 512 bytes on one line, and item hashes are 64 lowercase hex digits (BLAKE3).
    pub fn validate(&self) -> Result<(), Error> {
        check_id("agent", Some(&self.agent))?;
        check_id("channel", self.channel.as_deref())?;
        check_id("bundle_id", self.bundle_id.as_deref())?;
        check_id("case_id", self.case_id.as_deref())?;
        check_id("kind", self.kind.as_deref())?;
        if let Some(reason) = &self.reason
            && (reason.len() > MAX_REASON_LEN || reason.chars().any(char::is_control))
        {
            return Err(Error::InvalidEntry {
                field: "reason",
                reason: format!(
                    "must be at most {MAX_REASON_LEN} bytes on one line (an error code and a \
                     short message, no personal data)"
                ),
            });
        }
        if self.item_hashes.len() > MAX_ITEM_HASHES {
            return Err(Error::InvalidEntry {
                field: "item_hashes",
                reason: format!("at most {MAX_ITEM_HASHES} hashes per entry"),
            });
        }
        for (i, h) in self.item_hashes.iter().enumerate() {
            let ok = h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !ok {
                return Err(Error::InvalidEntry {
                    field: "item_hashes",
                    reason: format!(
                        "item hash {i} ({h:?}) is not 64 lowercase hex digits; pass BLAKE3 \
                         hashes in hex"
                    ),
                });
            }
        }
        Ok(())
    }

    /// Turns the draft into an entry at `index` after the entry whose leaf hash is `prev`.
    pub(crate) fn into_entry(self, index: u64, prev: &Hash) -> Entry {
        Entry {
            index,
            time: self.time.trunc_subsecs(3),
            agent: self.agent,
            channel: self.channel,
            bundle_id: self.bundle_id,
            sequence: self.sequence,
            case_id: self.case_id,
            kind: self.kind,
            bytes: self.bytes,
            item_hashes: self.item_hashes,
            event: self.event,
            reason: self.reason,
            prev: hex::encode(prev),
        }
    }
}

fn check_id(field: &'static str, value: Option<&str>) -> Result<(), Error> {
    let Some(v) = value else { return Ok(()) };
    let ok = !v.is_empty() && v.len() <= MAX_ID_LEN && v.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidEntry {
            field,
            reason: format!(
                "{v:?} must be 1..={MAX_ID_LEN} bytes of printable ASCII without spaces (an \
                 identifier, never personal data)"
            ),
        })
    }
}

/// A filter over entries, for showing and searching a log. Every set field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only entries at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only entries strictly before this time.
    pub until: Option<DateTime<Utc>>,
    /// Only entries on this channel.
    pub channel: Option<String>,
    /// Only entries of this bundle kind.
    pub kind: Option<String>,
    /// Only entries of this case.
    pub case_id: Option<String>,
    /// Only entries with this event.
    pub event: Option<Event>,
    /// Only entries about this bundle.
    pub bundle_id: Option<String>,
}

impl Filter {
    /// Whether `entry` passes every condition that is set.
    pub fn matches(&self, entry: &Entry) -> bool {
        fn eq(want: &Option<String>, have: &Option<String>) -> bool {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        }
        self.since.is_none_or(|t| entry.time >= t)
            && self.until.is_none_or(|t| entry.time < t)
            && eq(&self.channel, &entry.channel)
            && eq(&self.kind, &entry.kind)
            && eq(&self.case_id, &entry.case_id)
            && eq(&self.bundle_id, &entry.bundle_id)
            && self.event.is_none_or(|e| entry.event == e)
    }
}
