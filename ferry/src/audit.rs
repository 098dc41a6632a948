//! The agents' side of the ferry log: one tamper-evident log per agent, entries built from bundle
//! headers, so no agent ever writes anything but ids, hashes, sizes and reason codes.

use std::path::Path;

use chrono::Utc;
use ed25519_dalek::SigningKey;
use ow_bundle::Header;
use ow_ferrylog::{EntryDraft, Error as LogError, Event, FerryLog, LogConfig};

/// The origin line of an agent's checkpoints.
pub fn origin_for(agent: &str) -> String {
    format!("onewindow/ferry/{agent}")
}

/// The key name in an agent's checkpoint signatures: the zone whose key signs them.
pub fn key_name_for(zone: ow_bundle::Zone) -> String {
    format!("onewindow-{zone}")
}

/// One agent's ferry log.
pub struct AgentLog {
    log: FerryLog,
    agent: String,
    channel: String,
}

impl std::fmt::Debug for AgentLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentLog")
            .field("agent", &self.agent)
            .finish_non_exhaustive()
    }
}

impl AgentLog {
    /// Opens (or creates) the log of `agent` in `dir`, signing checkpoints with the zone's key.
    pub fn open(
        dir: &Path,
        agent: &str,
        channel: &str,
        zone: ow_bundle::Zone,
        signing_key: SigningKey,
        checkpoint_every: u64,
    ) -> Result<Self, LogError> {
        let log = FerryLog::open(
            dir,
            LogConfig {
                origin: origin_for(agent),
                key_name: key_name_for(zone),
                signing_key,
                checkpoint_every,
            },
        )?;
        Ok(Self {
            log,
            agent: agent.to_owned(),
            channel: channel.to_owned(),
        })
    }

    /// Appends an event about a bundle (or a file that could not be read as one).
    pub fn bundle_event(
        &mut self,
        event: Event,
        header: Option<&Header>,
        bytes: u64,
        reason: Option<String>,
    ) -> Result<u64, LogError> {
        let mut draft = self.draft(event);
        draft.bytes = bytes;
        draft.reason = reason.map(|r| clip(&r));
        if let Some(header) = header {
            draft.channel = Some(header.channel.to_string());
            draft.bundle_id = Some(header.bundle_id.clone());
            draft.sequence = Some(header.sequence);
            draft.case_id = header.case_id.clone();
            draft.kind = Some(header.kind.clone());
            draft.item_hashes = header.items.iter().map(|i| i.blake3.to_string()).collect();
        }
        if draft.validate().is_err() {
            // The header of a refused file is unverified and may carry anything: keep the entry,
            // without the fields that cannot be logged safely.
            draft.bundle_id = None;
            draft.case_id = None;
            draft.kind = None;
            draft.item_hashes.clear();
            draft.reason = draft
                .reason
                .map(|r| clip(&format!("{r} (unverifiable header fields omitted)")));
        }
        self.log.append(draft)
    }

    /// Appends an event that concerns no single bundle (start, stop, a gap).
    pub fn agent_event(&mut self, event: Event, reason: Option<String>) -> Result<u64, LogError> {
        let mut draft = self.draft(event);
        draft.reason = reason.map(|r| clip(&r));
        self.log.append(draft)
    }

    fn draft(&self, event: Event) -> EntryDraft {
        let mut draft = EntryDraft::new(Utc::now(), self.agent.clone(), event);
        draft.channel = Some(self.channel.clone());
        draft
    }

    /// Makes every appended entry durable (one fsync for a batch).
    pub fn sync(&mut self) -> Result<(), LogError> {
        self.log.sync()
    }

    /// Writes a final signed checkpoint and syncs.
    pub fn close(self) -> Result<(), LogError> {
        self.log.close()
    }
}

/// Log reasons are one line of at most 512 bytes: keep the code and the start of the message.
fn clip(reason: &str) -> String {
    let one_line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.len() <= 500 {
        return one_line;
    }
    let mut end = 497;
    while !one_line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &one_line[..end])
}

/// What an auditor must be told about entries no signed checkpoint covers, or `None` when a
/// checkpoint covers every entry. Those entries are only hash-chained: whoever can write the file
/// can append, rewrite or drop them undetected, and a log whose checkpoints were all deleted
/// verifies as a plain hash chain.
pub fn uncovered_entries(report: &ow_ferrylog::LogReport) -> Option<String> {
    if report.checkpoints == 0 {
        return Some(format!(
            "the log has no signed checkpoint at all, so none of its {} entries is covered by a \
             signature (an agent signs one every checkpoint_every entries and on stop: \
             checkpoints.jsonl may have been deleted)",
            report.entries
        ));
    }
    (report.unsigned_tail > 0).then(|| {
        format!(
            "{} entries after the last signed checkpoint (entries {}..{}) are not covered by a \
             signature and could have been appended or rewritten; stop the agent (it signs a \
             final checkpoint) and verify again",
            report.unsigned_tail,
            report.last_checkpoint_size,
            report.entries.saturating_sub(1)
        )
    })
}

/// The key name in a log's checkpoint signatures, read from its first checkpoint note, so an
/// auditor needs only the public key. The key hash in the signature binds name and key, so a
/// forged name cannot make a wrong key verify.
pub fn key_name_in_log(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(ow_ferrylog::CHECKPOINTS_FILE)).ok()?;
    let first = text.lines().next()?;
    let record: serde_json::Value = serde_json::from_str(first).ok()?;
    note_key_name(record.get("note")?.as_str()?)
}

/// The key name on the first signature line (`— <name> <signature>`) of a signed note.
pub fn note_key_name(note: &str) -> Option<String> {
    note.lines()
        .find_map(|line| line.strip_prefix("\u{2014} "))
        .and_then(|rest| rest.split(' ').next())
        .map(str::to_owned)
}
