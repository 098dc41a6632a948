//! The tamper-evident audit log of registrar actions, built on `ow-ferrylog`.
//!
//! Every action on a case writes an `ext_case_events` row in the action's transaction. Right
//! after the commit, [`AuditLog::flush_pending`] appends every row not yet in the log (agent
//! `staff-<id>`, or `extranet-import` for imports; `case_id` = application number; `kind` = the
//! action such as `case.accept`; `reason` = `sealed:` and a digest of the sealed reason, never
//! the reason itself, which is personal data) and records the entry's index on the
//! row. On start the same flush runs, so a crash between commit and append never loses an
//! entry; a row whose entry did reach the log before the crash is matched by
//! (agent, case, kind, time) and not appended twice.
//!
//! A registrar's opinion is sealed in the database; the entry records only that one was given
//! ([`OPINION_GIVEN`] in `reason`). A view of personal data in full is an entry of kind
//! `case.view-personal-data` whose reason names the field kinds (`person-name,id-number`),
//! never the values. Checkpoints are signed with the extranet
//! zone signing key; a security officer verifies the folder with `ow_ferrylog::verify_log`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ow_certificate::{SigningKey, VerifyingKey};
use ow_ferrylog::{EntryDraft, Event, FerryLog, LogConfig, read_entries};
use ow_store::Store;
use sqlx::Row;

use crate::error::Result;

/// The checkpoint origin (and key name) of the audit log.
pub const AUDIT_ORIGIN: &str = "onewindow.example/extranet/audit";

/// The agent name of imports (no staff member acted).
pub const IMPORT_AGENT: &str = "extranet-import";

/// The ferry-log event of a registrar's action (`kind` names the action).
pub const ACTION_EVENT: Event = Event::Action;

type Key = (String, String, String, i64);

struct Inner {
    log: Option<FerryLog>,
    known: HashMap<Key, u64>,
}

/// The open audit log. Appends are serialised by an async mutex.
pub struct AuditLog {
    dir: PathBuf,
    verifying_key: VerifyingKey,
    inner: tokio::sync::Mutex<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").field("dir", &self.dir).finish()
    }
}

/// The agent name for a staff member.
pub fn staff_agent(staff_id: &str) -> String {
    format!("staff-{staff_id}")
}

impl AuditLog {
    /// Opens (creating or verifying) the log in `dir`.
    pub fn open(dir: &Path, signing_key: SigningKey, checkpoint_every: u64) -> Result<Self> {
        let verifying_key = signing_key.verifying_key();
        let mut config = LogConfig::new(AUDIT_ORIGIN, AUDIT_ORIGIN, signing_key);
        config.checkpoint_every = checkpoint_every.max(1);
        let log = FerryLog::open(dir, config)?;
        let mut known = HashMap::new();
        for entry in read_entries(dir)? {
            if let (Some(case), Some(kind)) = (entry.case_id, entry.kind) {
                known.insert(
                    (entry.agent, case, kind, entry.time.timestamp_millis()),
                    entry.index,
                );
            }
        }
        Ok(AuditLog {
            dir: dir.to_path_buf(),
            verifying_key,
            inner: tokio::sync::Mutex::new(Inner {
                log: Some(log),
                known,
            }),
        })
    }

    /// The log folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key that verifies the checkpoints.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.verifying_key
    }

    /// Appends every case event not yet in the log, oldest first, and records each index on
    /// its row. Returns how many rows were brought into the log.
    pub async fn flush_pending(&self, store: &Store) -> Result<usize> {
        let mut inner = self.inner.lock().await;
        let rows = sqlx::query(
            "SELECT id, application_no, staff_id, action, reason, at_ms, opinion_sealed \
             FROM ext_case_events \
             WHERE audit_index IS NULL ORDER BY at_ms, id",
        )
        .fetch_all(store.writer())
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let mut done = Vec::with_capacity(rows.len());
        {
            let Inner { log, known } = &mut *inner;
            let Some(log) = log.as_mut() else {
                return Ok(0);
            };
            for row in &rows {
                let id: String = row.try_get("id")?;
                let case: String = row.try_get("application_no")?;
                let staff: Option<String> = row.try_get("staff_id")?;
                let action: String = row.try_get("action")?;
                let reason: Option<String> = row.try_get("reason")?;
                let opinion: Option<String> = row.try_get("opinion_sealed")?;
                let at_ms: i64 = row.try_get("at_ms")?;
                let agent = staff
                    .as_deref()
                    .map_or(IMPORT_AGENT.to_owned(), staff_agent);
                let key = (agent.clone(), case.clone(), action.clone(), at_ms);
                if let Some(index) = known.get(&key) {
                    done.push((id, *index));
                    continue;
                }
                let time = DateTime::<Utc>::from_timestamp_millis(at_ms).unwrap_or_default();
                let mut draft = EntryDraft::new(time, agent, ACTION_EVENT);
                draft.case_id = Some(audit_id(&case));
                // The reason itself is personal data (sealed in the row); the entry holds the
                // digest of the sealed value, which ties the entry to the row without revealing
                // it. A full view of the parties records the field kinds it opened instead: a
                // fixed list, never a value.
                let digest = if action == crate::cases::VIEW_PERSONAL_DATA {
                    Some(crate::cases::FULL_VIEW_FIELDS.to_owned())
                } else {
                    reason.map(|r| sealed_reason_digest(&r))
                };
                draft.kind = Some(action);
                draft.reason = entry_reason(digest.as_deref(), opinion.is_some());
                let index = log.append(draft)?;
                known.insert(key, index);
                done.push((id, index));
            }
            log.sync()?;
        }
        for (id, index) in &done {
            sqlx::query("UPDATE ext_case_events SET audit_index = $1 WHERE id = $2")
                .bind(i64::try_from(*index).unwrap_or(i64::MAX))
                .bind(id)
                .execute(store.writer())
                .await?;
        }
        Ok(done.len())
    }

    /// Writes a final signed checkpoint and closes the log; later flushes do nothing.
    pub async fn close(&self) -> Result<()> {
        let mut inner = self.inner.lock().await;
        if let Some(log) = inner.log.take() {
            log.close()?;
        }
        Ok(())
    }

    /// Signs a checkpoint of what is in the log now.
    pub async fn checkpoint(&self) -> Result<()> {
        let mut inner = self.inner.lock().await;
        if let Some(log) = inner.log.as_mut() {
            log.checkpoint()?;
        }
        Ok(())
    }
}

/// A case id as the log accepts it (printable ASCII without spaces, ≤ 128 bytes); anything
/// else is replaced by its BLAKE3 prefix.
pub fn audit_id(case: &str) -> String {
    if !case.is_empty() && case.len() <= 128 && case.bytes().all(|b| b.is_ascii_graphic()) {
        case.to_owned()
    } else {
        format!("h-{}", &blake3::hash(case.as_bytes()).to_hex()[..32])
    }
}

/// What the audit log holds for a reason: `sealed:` and the first 32 hex digits of the BLAKE3
/// of the stored (sealed) value. The sealed value has a random nonce, so the digest reveals
/// nothing of the text; it proves which stored value the entry was written for.
pub fn sealed_reason_digest(stored: &str) -> String {
    format!("sealed:{}", &blake3::hash(stored.as_bytes()).to_hex()[..32])
}

/// What an entry's `reason` says after a reason `reason` and, when `opinion_given`, the marker
/// [`OPINION_GIVEN`]: the log records that an opinion was given, never its text.
pub fn entry_reason(reason: Option<&str>, opinion_given: bool) -> Option<String> {
    match (reason, opinion_given) {
        (None, false) => None,
        (None, true) => Some(OPINION_GIVEN.to_owned()),
        (Some(r), false) => Some(audit_reason(r)),
        (Some(r), true) => {
            let mut short = audit_reason(r);
            // Keep room for the marker within the 512 bytes the log accepts.
            while short.len() + OPINION_GIVEN.len() + 3 > 512 {
                short.pop();
            }
            Some(format!("{short} | {OPINION_GIVEN}"))
        }
    }
}

/// The marker of an entry whose step came with the registrar's opinion.
pub const OPINION_GIVEN: &str = "opinion-given";

/// A reason as the log accepts it: one line, at most 512 bytes.
pub fn audit_reason(reason: &str) -> String {
    let one_line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut out = String::new();
    for c in one_line.chars() {
        if out.len() + c.len_utf8() > 500 {
            out.push('…');
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_say_an_opinion_was_given_not_what_it_said() {
        assert_eq!(entry_reason(None, false), None);
        assert_eq!(entry_reason(None, true).as_deref(), Some(OPINION_GIVEN));
        assert_eq!(
            entry_reason(Some("材料不齐"), false).as_deref(),
            Some("材料不齐")
        );
        assert_eq!(
            entry_reason(Some("材料不齐"), true).as_deref(),
            Some("材料不齐 | opinion-given")
        );
        let long = "很".repeat(400);
        let r = entry_reason(Some(&long), true).unwrap_or_default();
        assert!(r.len() <= 512, "{}", r.len());
        assert!(r.ends_with(OPINION_GIVEN));
    }
}
