//! Dead letters: messages set aside so that the next one goes through, and what operators see
//! and do about them.
//!
//! A message is set aside when it fails deterministically (a contract violation, a file that is
//! gone, a bundle the ferry agent never landed, a database refusing its data) or when it keeps
//! failing past its retry budget. The record names the message by ids, kind and a reason code —
//! never by content — and stays until an operator retries it ([`request_retry`]); the running
//! exchange then puts it back in line and logs the retry.

use ow_store::Store;
use serde::Serialize;
use sqlx::Row;

use crate::ExchangeError;

/// Which way a dead letter was going.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Queued here; could not be packed.
    Outbound,
    /// Arrived in the inbox; could not be imported.
    Inbound,
}

impl Direction {
    /// `outbound` / `inbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }

    fn parse(text: &str) -> Direction {
        if text == "inbound" {
            Direction::Inbound
        } else {
            Direction::Outbound
        }
    }
}

/// One message set aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The dead letter's id (what an operator retries).
    pub id: String,
    /// Which way it was going.
    pub direction: Direction,
    /// The channel.
    pub channel: String,
    /// The message id, when known from verified content.
    pub message_id: Option<String>,
    /// The bundle id (inbound), as verified or as the unverified header claimed.
    pub bundle_id: Option<String>,
    /// The message kind, when known.
    pub kind: Option<String>,
    /// The application it concerns, only from verified content.
    pub case_id: Option<String>,
    /// Short machine code: `not-landed`, `too-large`, `control-character`, `import-failed`, …
    pub code: String,
    /// What went wrong and what to do, for operators (no personal data).
    pub reason: String,
    /// How many times it was tried.
    pub attempts: i64,
    /// When it was set aside, Unix milliseconds.
    pub dead_at_ms: i64,
    /// `dead`, `retry-requested` or `retried`.
    pub state: String,
}

/// The dead-letter states.
pub(crate) const DEAD: &str = "dead";
pub(crate) const RETRY_REQUESTED: &str = "retry-requested";
pub(crate) const RETRIED: &str = "retried";

const COLUMNS: &str = "id, direction, channel, message_id, bundle_id, kind, case_id, code, \
                       reason, attempts, dead_at_ms, state";

fn from_row(row: &sqlx::any::AnyRow) -> Result<DeadLetter, ExchangeError> {
    let direction: String = row.try_get("direction")?;
    Ok(DeadLetter {
        id: row.try_get("id")?,
        direction: Direction::parse(&direction),
        channel: row.try_get("channel")?,
        message_id: row.try_get("message_id")?,
        bundle_id: row.try_get("bundle_id")?,
        kind: row.try_get("kind")?,
        case_id: row.try_get("case_id")?,
        code: row.try_get("code")?,
        reason: row.try_get("reason")?,
        attempts: row.try_get("attempts")?,
        dead_at_ms: row.try_get("dead_at_ms")?,
        state: row.try_get("state")?,
    })
}

/// The messages set aside and not yet put back in line (states `dead` and `retry-requested`),
/// oldest first.
pub async fn dead_letters(store: &Store) -> Result<Vec<DeadLetter>, ExchangeError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM exchange_dead_letters WHERE state <> '{RETRIED}' \
         ORDER BY dead_at_ms, id"
    )))
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(from_row).collect()
}

/// The dead letters that concern application `case_id` and are still set aside, oldest first
/// (for the citizen's timeline).
pub async fn dead_letters_for_case(
    store: &Store,
    case_id: &str,
) -> Result<Vec<DeadLetter>, ExchangeError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM exchange_dead_letters WHERE case_id = $1 AND state <> '{RETRIED}' \
         ORDER BY dead_at_ms, id"
    )))
    .bind(case_id)
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(from_row).collect()
}

/// Asks the running exchange to put dead letter `id` back in line (after the cause was fixed).
/// The exchange does it on its next round and logs the retry in the exchange log; a zone that
/// is not running does it when it starts. Works from another process (an operator's command).
pub async fn request_retry(store: &Store, id: &str) -> Result<DeadLetter, ExchangeError> {
    let done = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE exchange_dead_letters SET state = '{RETRY_REQUESTED}', retry_requested_at_ms = $1 \
         WHERE id = $2 AND state = '{DEAD}'"
    )))
    .bind(ow_store::now_ms())
    .bind(id)
    .execute(store.writer())
    .await?;
    if done.rows_affected() != 1 {
        return Err(ExchangeError::NoDeadLetter { id: id.to_owned() });
    }
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM exchange_dead_letters WHERE id = $1"
    )))
    .bind(id)
    .fetch_one(store.writer())
    .await?;
    from_row(&row)
}

/// The dead letters an operator asked to retry.
pub(crate) async fn retry_requested(store: &Store) -> Result<Vec<DeadLetterRow>, ExchangeError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, file_name, inbox_name FROM exchange_dead_letters \
         WHERE state = '{RETRY_REQUESTED}' ORDER BY dead_at_ms, id"
    )))
    .fetch_all(store.writer())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DeadLetterRow {
                letter: from_row(r)?,
                file_name: r.try_get("file_name")?,
                inbox_name: r.try_get("inbox_name")?,
            })
        })
        .collect()
}

/// A dead letter with where its bundle was set aside.
#[derive(Debug, Clone)]
pub(crate) struct DeadLetterRow {
    pub(crate) letter: DeadLetter,
    pub(crate) file_name: Option<String>,
    pub(crate) inbox_name: Option<String>,
}

/// Counts of what a zone's exchange did, and its dead letters: what an operator's `status`
/// command prints. Holds ids, kinds and codes only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExchangeStatus {
    /// Messages queued and not packed yet (waiting or retrying).
    pub queued: i64,
    /// Of those, messages that failed at least once and wait for another try.
    pub retrying: i64,
    /// Messages packed into bundles.
    pub packed: i64,
    /// Bundles imported.
    pub imported: i64,
    /// Bundles whose message the zone refused (recorded, answered).
    pub refused: i64,
    /// Bundles whose message had been imported before.
    pub duplicates: i64,
    /// Bundles in the inbox that failed and wait for another try.
    pub inbound_retrying: i64,
    /// Messages set aside (dead letters not yet retried).
    pub dead_lettered: i64,
    /// Those dead letters.
    pub dead_letters: Vec<DeadLetter>,
}

impl ExchangeStatus {
    /// A plain-text table for operators.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "queued {} (retrying {})  packed {}  imported {}  refused {}  duplicates {}  \
             inbound retrying {}  dead-lettered {}\n",
            self.queued,
            self.retrying,
            self.packed,
            self.imported,
            self.refused,
            self.duplicates,
            self.inbound_retrying,
            self.dead_lettered
        );
        if self.dead_letters.is_empty() {
            out.push_str("no dead letters\n");
            return out;
        }
        out.push_str("dead letters (retry one with the zone's `exchange retry ID` command):\n");
        for d in &self.dead_letters {
            out.push_str(&format!(
                "  {}  {:<8} {:<22} {:<22} {:<24} attempts {}  {}{}\n",
                d.id,
                d.direction.as_str(),
                d.channel,
                d.kind.as_deref().unwrap_or("-"),
                d.code,
                d.attempts,
                chrono::DateTime::<chrono::Utc>::from_timestamp_millis(d.dead_at_ms)
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                    .unwrap_or_default(),
                if d.state == RETRY_REQUESTED {
                    "  (retry requested)"
                } else {
                    ""
                },
            ));
        }
        out
    }
}

/// The exchange's counts and dead letters (see [`ExchangeStatus`]). Reads only; works from
/// another process while the zone runs.
pub async fn status(store: &Store) -> Result<ExchangeStatus, ExchangeError> {
    let count = |sql: &'static str| async move {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(store.reader())
            .await
    };
    let dead_letters = dead_letters(store).await?;
    Ok(ExchangeStatus {
        queued: count(
            "SELECT COUNT(*) FROM exchange_outbox WHERE packed_at_ms IS NULL AND dead_at_ms IS NULL",
        )
        .await?,
        retrying: count(
            "SELECT COUNT(*) FROM exchange_outbox WHERE packed_at_ms IS NULL AND dead_at_ms IS NULL \
             AND attempts > 0",
        )
        .await?,
        packed: count("SELECT COUNT(*) FROM exchange_outbox WHERE packed_at_ms IS NOT NULL").await?,
        imported: count("SELECT COUNT(*) FROM exchange_imported WHERE outcome = 'imported'")
            .await?,
        refused: count("SELECT COUNT(*) FROM exchange_imported WHERE outcome = 'refused'").await?,
        duplicates: count("SELECT COUNT(*) FROM exchange_imported WHERE outcome = 'duplicate'")
            .await?,
        inbound_retrying: count("SELECT COUNT(*) FROM exchange_inbound_attempts").await?,
        dead_lettered: i64::try_from(dead_letters.len()).unwrap_or(i64::MAX),
        dead_letters,
    })
}
