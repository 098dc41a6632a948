//! The ferry's durable state (sqlx, SQLite): what each receiver has landed, what each sender has
//! placed in its gateway folder, and the packer's per-channel sequence.
//!
//! The receiver's table is what makes landing exactly-once across restarts: a bundle id, or a
//! sequence number on a channel, is landed at most once, so a replayed, duplicated or older bundle
//! is refused however long after the first copy it arrives. Gaps are not stored: they are the
//! sequence numbers below the highest landed one that have no row, computed when asked.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Row, SqlitePool};

/// A failure of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The database could not be opened or migrated.
    #[error("cannot open the ferry state database {path}: {cause}")]
    Open {
        /// The database file.
        path: String,
        /// The cause.
        cause: sqlx::Error,
    },
    /// The database's migrations could not be applied.
    #[error("cannot bring the ferry state database up to date: {0}")]
    Migrate(sqlx::migrate::MigrateError),
    /// A query failed.
    #[error("ferry state database error: {0}")]
    Query(sqlx::Error),
}

/// A bundle a receiver has landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    /// Channel name.
    pub channel: String,
    /// Sequence number on the channel.
    pub sequence: u64,
    /// Bundle id.
    pub bundle_id: String,
    /// Bundle digest (hex BLAKE3 of the header).
    pub digest: String,
    /// The digest its header chains to (`None` at sequence 1, and for rows landed before this
    /// was recorded).
    pub prev_digest: Option<String>,
    /// File name in the inbox.
    pub file_name: String,
    /// Bundle size in bytes.
    pub bytes: u64,
    /// When it landed.
    pub landed_at: DateTime<Utc>,
}

/// A bundle a sender has placed in its gateway folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// Bundle id.
    pub bundle_id: String,
    /// Channel name.
    pub channel: String,
    /// Sequence number.
    pub sequence: u64,
    /// Bundle digest.
    pub digest: String,
    /// Bundle size in bytes.
    pub bytes: u64,
    /// When it was placed.
    pub sent_at: DateTime<Utc>,
}

/// A file an agent could not handle and is retrying with backoff, or has given up on.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Held {
    /// The agent.
    pub agent: String,
    /// The file name in the agent's folder (gateway folder or outbox).
    pub file: String,
    /// A stable code (`io-error`, `cannot-quarantine`, …).
    pub code: String,
    /// What went wrong and what to do.
    pub message: String,
    /// Attempts so far.
    pub attempts: u32,
    /// True once the retry budget is spent: the agent no longer tries on its own, and an
    /// operator must remove or repair the file (the agent tries again after a restart).
    pub gave_up: bool,
    /// First failure.
    pub first_at: DateTime<Utc>,
    /// Latest failure.
    pub last_at: DateTime<Utc>,
}

/// The durable state of one zone's ferry agents.
#[derive(Debug, Clone)]
pub struct FerryState {
    pool: SqlitePool,
}

impl From<sqlx::migrate::MigrateError> for StateError {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(err)
    }
}

impl From<sqlx::Error> for StateError {
    fn from(err: sqlx::Error) -> Self {
        Self::Query(err)
    }
}

/// Most values bound in one `IN (…)` lookup (well under SQLite's and PostgreSQL's limits).
pub const LOOKUP_CHUNK: usize = 500;

/// `?, ?, …` for `n` values.
fn placeholders(n: usize) -> String {
    let mut text = "?, ".repeat(n);
    text.truncate(text.len().saturating_sub(2));
    text
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A sequence number as stored: exactly 20 decimal digits, so that every u64 fits (SQL integers
/// stop at 2^63 - 1) and text order is numeric order.
pub fn sequence_text(sequence: u64) -> String {
    format!("{sequence:020}")
}

/// Reads a stored sequence number; a value that is not one is a damaged database, never 0.
fn parse_sequence(text: &str) -> Result<u64, sqlx::Error> {
    if text.len() != 20 {
        return Err(sqlx::Error::Decode(
            format!("stored sequence {text:?} is not 20 digits").into(),
        ));
    }
    text.parse::<u64>()
        .map_err(|err| sqlx::Error::Decode(Box::new(err)))
}

impl FerryState {
    /// Opens (creating if needed) the state database at `path` and applies its migrations.
    ///
    /// The database runs in WAL mode with full synchronous commits: a landed bundle's row is on
    /// disk before its file appears in the inbox.
    pub async fn open(path: &Path) -> Result<Self, StateError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|err| StateError::Open {
                path: path.display().to_string(),
                cause: sqlx::Error::Io(err),
            })?;
        }
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|cause| StateError::Open {
                path: path.display().to_string(),
                cause,
            })?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(30));
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(|cause| StateError::Open {
                path: path.display().to_string(),
                cause,
            })?;
        // Several processes of one zone (agents, `pack`) may open a new database at once, and
        // sqlx takes no migration lock on SQLite: serialise migrations with a file lock.
        let lock_path = path.with_extension("db.migrate-lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|err| StateError::Open {
                path: lock_path.display().to_string(),
                cause: sqlx::Error::Io(err),
            })?;
        rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive).map_err(|err| {
            StateError::Open {
                path: lock_path.display().to_string(),
                cause: sqlx::Error::Io(err.into()),
            }
        })?;
        let migrated = sqlx::migrate!("./migrations").run(&pool).await;
        drop(lock);
        migrated?;
        Ok(Self { pool })
    }

    /// Closes the pool, waiting for connections to finish.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The landed record of a bundle id, if any.
    pub async fn landed_by_id(&self, bundle_id: &str) -> Result<Option<Landed>, StateError> {
        let row = sqlx::query(
            "SELECT channel, sequence, bundle_id, digest, prev_digest, file_name, bytes, landed_at \
             FROM rx_landed WHERE bundle_id = ?",
        )
        .bind(bundle_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(landed_from_row).transpose()
    }

    /// The landed records of several bundle ids at once (one query per [`LOOKUP_CHUNK`] ids):
    /// a receiver checks a whole batch with one round trip instead of one per bundle.
    pub async fn landed_by_ids(&self, bundle_ids: &[&str]) -> Result<Vec<Landed>, StateError> {
        let mut found = Vec::new();
        for chunk in bundle_ids.chunks(LOOKUP_CHUNK) {
            let sql = format!(
                "SELECT channel, sequence, bundle_id, digest, prev_digest, file_name, bytes, landed_at \
                 FROM rx_landed WHERE bundle_id IN ({})",
                placeholders(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            for row in query.fetch_all(&self.pool).await? {
                found.push(landed_from_row(row)?);
            }
        }
        Ok(found)
    }

    /// The landed records at several sequence numbers of a channel at once.
    pub async fn landed_at_many(
        &self,
        channel: &str,
        sequences: &[u64],
    ) -> Result<Vec<Landed>, StateError> {
        let mut found = Vec::new();
        for chunk in sequences.chunks(LOOKUP_CHUNK) {
            let sql = format!(
                "SELECT channel, sequence, bundle_id, digest, prev_digest, file_name, bytes, landed_at \
                 FROM rx_landed WHERE channel = ? AND sequence IN ({})",
                placeholders(chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(channel);
            for sequence in chunk {
                query = query.bind(sequence_text(*sequence));
            }
            for row in query.fetch_all(&self.pool).await? {
                found.push(landed_from_row(row)?);
            }
        }
        Ok(found)
    }

    /// Which of `bundle_ids` have a sent record (one query per [`LOOKUP_CHUNK`] ids).
    pub async fn sent_ids(
        &self,
        bundle_ids: &[&str],
    ) -> Result<std::collections::HashSet<String>, StateError> {
        let mut found = std::collections::HashSet::new();
        for chunk in bundle_ids.chunks(LOOKUP_CHUNK) {
            let sql = format!(
                "SELECT bundle_id FROM tx_sent WHERE bundle_id IN ({})",
                placeholders(chunk.len())
            );
            let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            found.extend(query.fetch_all(&self.pool).await?);
        }
        Ok(found)
    }

    /// The landed record at a sequence number on a channel, if any.
    pub async fn landed_at(
        &self,
        channel: &str,
        sequence: u64,
    ) -> Result<Option<Landed>, StateError> {
        let row = sqlx::query(
            "SELECT channel, sequence, bundle_id, digest, prev_digest, file_name, bytes, landed_at \
             FROM rx_landed WHERE channel = ? AND sequence = ?",
        )
        .bind(channel)
        .bind(sequence_text(sequence))
        .fetch_optional(&self.pool)
        .await?;
        row.map(landed_from_row).transpose()
    }

    /// The highest sequence landed on a channel (0 when none).
    pub async fn highest_landed(&self, channel: &str) -> Result<u64, StateError> {
        let max: Option<String> =
            sqlx::query_scalar("SELECT MAX(sequence) FROM rx_landed WHERE channel = ?")
                .bind(channel)
                .fetch_one(&self.pool)
                .await?;
        Ok(max.as_deref().map(parse_sequence).transpose()?.unwrap_or(0))
    }

    /// Records a batch of landed bundles in one transaction.
    pub async fn record_landed(&self, batch: &[Landed]) -> Result<(), StateError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        insert_landed(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The pool, for the offline-media tables ([`crate::media`]), whose rows commit in the same
    /// transaction as the landed or sent rows they account for.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Number of bundles landed on a channel.
    pub async fn landed_count(&self, channel: &str) -> Result<u64, StateError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rx_landed WHERE channel = ?")
            .bind(channel)
            .fetch_one(&self.pool)
            .await?;
        Ok(to_u64(n))
    }

    /// The sequence numbers missing below the highest landed one, as inclusive ranges.
    pub async fn missing_ranges(&self, channel: &str) -> Result<Vec<(u64, u64)>, StateError> {
        let sequences: Vec<String> = sqlx::query_scalar(
            "SELECT sequence FROM rx_landed WHERE channel = ? ORDER BY sequence",
        )
        .bind(channel)
        .fetch_all(&self.pool)
        .await?;
        let mut missing = Vec::new();
        let mut expected = 1u64;
        for text in &sequences {
            let sequence = parse_sequence(text)?;
            if sequence > expected {
                missing.push((expected, sequence - 1));
            }
            expected = sequence.saturating_add(1);
        }
        Ok(missing)
    }

    /// The sent record of a bundle id, if any.
    pub async fn sent_by_id(&self, bundle_id: &str) -> Result<Option<Sent>, StateError> {
        let row = sqlx::query(
            "SELECT bundle_id, channel, sequence, digest, bytes, sent_at \
             FROM tx_sent WHERE bundle_id = ?",
        )
        .bind(bundle_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Sent {
                bundle_id: row.try_get("bundle_id")?,
                channel: row.try_get("channel")?,
                sequence: parse_sequence(&row.try_get::<String, _>("sequence")?)?,
                digest: row.try_get("digest")?,
                bytes: to_u64(row.try_get("bytes")?),
                sent_at: parse_time(&row.try_get::<String, _>("sent_at")?)?,
            })
        })
        .transpose()
    }

    /// The sent record at a sequence number on a channel, if any (`ow-ferry resend`).
    pub async fn sent_at_sequence(
        &self,
        channel: &str,
        sequence: u64,
    ) -> Result<Option<Sent>, StateError> {
        let id: Option<String> =
            sqlx::query_scalar("SELECT bundle_id FROM tx_sent WHERE channel = ? AND sequence = ?")
                .bind(channel)
                .bind(sequence_text(sequence))
                .fetch_optional(&self.pool)
                .await?;
        match id {
            Some(id) => self.sent_by_id(&id).await,
            None => Ok(None),
        }
    }

    /// When the latest bundle landed on a channel (`None` before the first): the receiving side's
    /// "no traffic" alarm measures silence from it.
    pub async fn last_landed_at(&self, channel: &str) -> Result<Option<DateTime<Utc>>, StateError> {
        // Every landed_at is written by `to_rfc3339` in UTC (`+00:00`, fractions of 0, 3, 6 or 9
        // digits), whose text order is time order.
        let latest: Option<String> =
            sqlx::query_scalar("SELECT MAX(landed_at) FROM rx_landed WHERE channel = ?")
                .bind(channel)
                .fetch_one(&self.pool)
                .await?;
        Ok(latest.as_deref().map(parse_time).transpose()?)
    }

    /// Records a batch of sent bundles in one transaction (a bundle sent twice keeps its first
    /// record).
    pub async fn record_sent(&self, batch: &[Sent]) -> Result<(), StateError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        insert_sent(&mut tx, batch).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Number of bundles sent on a channel and the highest sequence among them.
    pub async fn sent_summary(&self, channel: &str) -> Result<(u64, u64), StateError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MAX(sequence) AS top FROM tx_sent WHERE channel = ?",
        )
        .bind(channel)
        .fetch_one(&self.pool)
        .await?;
        let top: Option<String> = row.try_get("top")?;
        Ok((
            to_u64(row.try_get("n")?),
            top.as_deref().map(parse_sequence).transpose()?.unwrap_or(0),
        ))
    }

    /// The packer's last sequence and digest on a channel (`(0, None)` before the first bundle).
    pub async fn last_packed(&self, channel: &str) -> Result<(u64, Option<String>), StateError> {
        let row =
            sqlx::query("SELECT last_sequence, last_digest FROM tx_sequence WHERE channel = ?")
                .bind(channel)
                .fetch_optional(&self.pool)
                .await?;
        match row {
            None => Ok((0, None)),
            Some(row) => Ok((
                parse_sequence(&row.try_get::<String, _>("last_sequence")?)?,
                Some(row.try_get("last_digest")?),
            )),
        }
    }

    /// Advances the packer's sequence from `expected_last` to `sequence` with `digest`, only if no
    /// other packer advanced it meanwhile. Returns false when it lost that race (pack again).
    pub async fn advance_packed(
        &self,
        channel: &str,
        expected_last: u64,
        sequence: u64,
        digest: &str,
    ) -> Result<bool, StateError> {
        let mut tx = self.pool.begin().await?;
        let changed = if expected_last == 0 {
            sqlx::query(
                "INSERT INTO tx_sequence (channel, last_sequence, last_digest) VALUES (?, ?, ?) \
                 ON CONFLICT (channel) DO NOTHING",
            )
            .bind(channel)
            .bind(sequence_text(sequence))
            .bind(digest)
            .execute(&mut *tx)
            .await?
            .rows_affected()
        } else {
            sqlx::query(
                "UPDATE tx_sequence SET last_sequence = ?, last_digest = ? \
                 WHERE channel = ? AND last_sequence = ?",
            )
            .bind(sequence_text(sequence))
            .bind(digest)
            .bind(channel)
            .bind(sequence_text(expected_last))
            .execute(&mut *tx)
            .await?
            .rows_affected()
        };
        tx.commit().await?;
        Ok(changed == 1)
    }
}

impl FerryState {
    /// Records (or updates) a file the agent is holding back after a failure.
    pub async fn record_held(&self, held: &Held) -> Result<(), StateError> {
        sqlx::query(
            "INSERT INTO held_files \
             (agent, file, code, message, attempts, gave_up, first_at, last_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (agent, file) DO UPDATE SET code = excluded.code, \
             message = excluded.message, attempts = excluded.attempts, \
             gave_up = excluded.gave_up, last_at = excluded.last_at",
        )
        .bind(&held.agent)
        .bind(&held.file)
        .bind(&held.code)
        .bind(&held.message)
        .bind(i64::from(held.attempts))
        .bind(i64::from(held.gave_up))
        .bind(held.first_at.to_rfc3339())
        .bind(held.last_at.to_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Forgets a held file (handled at last, or gone).
    pub async fn release_held(&self, agent: &str, file: &str) -> Result<(), StateError> {
        sqlx::query("DELETE FROM held_files WHERE agent = ? AND file = ?")
            .bind(agent)
            .bind(file)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Forgets every held file of an agent (on start: it tries each one again).
    pub async fn release_all_held(&self, agent: &str) -> Result<(), StateError> {
        sqlx::query("DELETE FROM held_files WHERE agent = ?")
            .bind(agent)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// The files an agent is holding back, by name.
    pub async fn held(&self, agent: &str) -> Result<Vec<Held>, StateError> {
        let rows = sqlx::query(
            "SELECT agent, file, code, message, attempts, gave_up, first_at, last_at \
             FROM held_files WHERE agent = ? ORDER BY file",
        )
        .bind(agent)
        .fetch_all(&self.pool)
        .await?;
        let mut held = Vec::with_capacity(rows.len());
        for row in rows {
            held.push(Held {
                agent: row.try_get("agent")?,
                file: row.try_get("file")?,
                code: row.try_get("code")?,
                message: row.try_get("message")?,
                attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
                gave_up: row.try_get::<i64, _>("gave_up")? != 0,
                first_at: parse_time(&row.try_get::<String, _>("first_at")?)?,
                last_at: parse_time(&row.try_get::<String, _>("last_at")?)?,
            });
        }
        Ok(held)
    }
}

/// Inserts landed rows inside a caller's transaction (a bundle id or sequence lands once).
pub(crate) async fn insert_landed(
    conn: &mut sqlx::SqliteConnection,
    batch: &[Landed],
) -> Result<(), StateError> {
    for landed in batch {
        sqlx::query(
            "INSERT INTO rx_landed \
             (channel, sequence, bundle_id, digest, prev_digest, file_name, bytes, landed_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&landed.channel)
        .bind(sequence_text(landed.sequence))
        .bind(&landed.bundle_id)
        .bind(&landed.digest)
        .bind(&landed.prev_digest)
        .bind(&landed.file_name)
        .bind(to_i64(landed.bytes))
        .bind(landed.landed_at.to_rfc3339())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Inserts sent rows inside a caller's transaction (a bundle sent twice keeps its first record).
pub(crate) async fn insert_sent(
    conn: &mut sqlx::SqliteConnection,
    batch: &[Sent],
) -> Result<(), StateError> {
    for sent in batch {
        sqlx::query(
            "INSERT INTO tx_sent (bundle_id, channel, sequence, digest, bytes, sent_at) \
             VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (bundle_id) DO NOTHING",
        )
        .bind(&sent.bundle_id)
        .bind(&sent.channel)
        .bind(sequence_text(sent.sequence))
        .bind(&sent.digest)
        .bind(to_i64(sent.bytes))
        .bind(sent.sent_at.to_rfc3339())
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, sqlx::Error> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|err| sqlx::Error::Decode(Box::new(err)))
}

fn landed_from_row(row: sqlx::sqlite::SqliteRow) -> Result<Landed, StateError> {
    Ok(Landed {
        channel: row.try_get("channel")?,
        sequence: parse_sequence(&row.try_get::<String, _>("sequence")?)?,
        bundle_id: row.try_get("bundle_id")?,
        digest: row.try_get("digest")?,
        prev_digest: row.try_get("prev_digest")?,
        file_name: row.try_get("file_name")?,
        bytes: to_u64(row.try_get("bytes")?),
        landed_at: parse_time(&row.try_get::<String, _>("landed_at")?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn landed(sequence: u64, id: &str) -> Landed {
        Landed {
            channel: "internet-to-extranet".into(),
            sequence,
            bundle_id: id.into(),
            digest: format!("d{sequence}"),
            prev_digest: None,
            file_name: format!("{id}.owb"),
            bytes: 10,
            landed_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn landed_bundles_survive_reopen_and_gaps_are_computed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let state = FerryState::open(&path).await.unwrap();
        state
            .record_landed(&[
                landed(1, "a"),
                landed(2, "b"),
                landed(5, "e"),
                landed(9, "i"),
            ])
            .await
            .unwrap();
        state.close().await;

        let state = FerryState::open(&path).await.unwrap();
        let ch = "internet-to-extranet";
        assert_eq!(state.highest_landed(ch).await.unwrap(), 9);
        assert_eq!(state.landed_count(ch).await.unwrap(), 4);
        assert_eq!(
            state.missing_ranges(ch).await.unwrap(),
            vec![(3, 4), (6, 8)]
        );
        assert_eq!(state.landed_by_id("e").await.unwrap().unwrap().sequence, 5);
        assert!(state.landed_at(ch, 3).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn batch_lookups_find_what_single_lookups_find() {
        let dir = tempfile::tempdir().unwrap();
        let state = FerryState::open(&dir.path().join("s.db")).await.unwrap();
        state
            .record_landed(&[landed(1, "a"), landed(2, "b"), landed(4, "d")])
            .await
            .unwrap();
        let mut ids: Vec<String> = state
            .landed_by_ids(&["a", "d", "zz"])
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.bundle_id)
            .collect();
        ids.sort();
        assert_eq!(ids, vec!["a", "d"]);
        let many: Vec<u64> = (0..1200).collect();
        let mut seqs: Vec<u64> = state
            .landed_at_many("internet-to-extranet", &many)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.sequence)
            .collect();
        seqs.sort();
        assert_eq!(seqs, vec![1, 2, 4]);
        assert!(
            state
                .landed_at_many("extranet-to-intranet", &[1])
                .await
                .unwrap()
                .is_empty()
        );
        state
            .record_sent(&[Sent {
                bundle_id: "s1".into(),
                channel: "internet-to-extranet".into(),
                sequence: 1,
                digest: "d".into(),
                bytes: 1,
                sent_at: Utc::now(),
            }])
            .await
            .unwrap();
        let sent = state.sent_ids(&["s1", "s2"]).await.unwrap();
        assert!(sent.contains("s1") && !sent.contains("s2"));
    }

    #[tokio::test]
    async fn a_bundle_id_or_sequence_lands_once() {
        let dir = tempfile::tempdir().unwrap();
        let state = FerryState::open(&dir.path().join("s.db")).await.unwrap();
        state.record_landed(&[landed(1, "a")]).await.unwrap();
        assert!(state.record_landed(&[landed(2, "a")]).await.is_err());
        assert!(state.record_landed(&[landed(1, "z")]).await.is_err());
        assert_eq!(state.landed_count("internet-to-extranet").await.unwrap(), 1);
    }

    #[tokio::test]
    async fn every_u64_sequence_is_stored_exactly_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let state = FerryState::open(&dir.path().join("s.db")).await.unwrap();
        let ch = "internet-to-extranet";
        let high = (1u64 << 63) + 1;
        state
            .record_landed(&[landed(3, "c"), landed(high, "h"), landed(u64::MAX, "m")])
            .await
            .unwrap();
        // Two sequences above 2^63 - 1 are two rows, not one clamped value.
        assert_eq!(state.landed_count(ch).await.unwrap(), 3);
        assert_eq!(state.highest_landed(ch).await.unwrap(), u64::MAX);
        assert_eq!(
            state.landed_at(ch, high).await.unwrap().unwrap().bundle_id,
            "h"
        );
        assert_eq!(
            state.missing_ranges(ch).await.unwrap(),
            vec![(1, 2), (4, high - 1), (high + 1, u64::MAX - 1)]
        );
        let many = state
            .landed_at_many(ch, &[high, u64::MAX, 9])
            .await
            .unwrap();
        assert_eq!(many.len(), 2);
        assert!(
            state
                .record_landed(&[landed(u64::MAX, "again")])
                .await
                .is_err()
        );
        assert!(
            state
                .advance_packed(ch, 0, u64::MAX - 1, "a")
                .await
                .unwrap()
        );
        assert!(
            state
                .advance_packed(ch, u64::MAX - 1, u64::MAX, "b")
                .await
                .unwrap()
        );
        assert_eq!(
            state.last_packed(ch).await.unwrap(),
            (u64::MAX, Some("b".into()))
        );
        state
            .record_sent(&[Sent {
                bundle_id: "s".into(),
                channel: ch.into(),
                sequence: u64::MAX,
                digest: "d".into(),
                bytes: 1,
                sent_at: Utc::now(),
            }])
            .await
            .unwrap();
        assert_eq!(state.sent_summary(ch).await.unwrap(), (1, u64::MAX));
        assert_eq!(
            state.sent_by_id("s").await.unwrap().unwrap().sequence,
            u64::MAX
        );
    }

    #[tokio::test]
    async fn held_files_are_recorded_updated_and_released() {
        let dir = tempfile::tempdir().unwrap();
        let state = FerryState::open(&dir.path().join("s.db")).await.unwrap();
        let mut held = Held {
            agent: "rx".into(),
            file: "a.owb".into(),
            code: "io-error".into(),
            message: "cannot read".into(),
            attempts: 1,
            gave_up: false,
            first_at: Utc::now(),
            last_at: Utc::now(),
        };
        state.record_held(&held).await.unwrap();
        held.attempts = 2;
        held.gave_up = true;
        state.record_held(&held).await.unwrap();
        let rows = state.held("rx").await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!((rows[0].attempts, rows[0].gave_up), (2, true));
        assert!(state.held("other").await.unwrap().is_empty());
        state.release_held("rx", "a.owb").await.unwrap();
        assert!(state.held("rx").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn the_packer_sequence_advances_only_from_what_was_read() {
        let dir = tempfile::tempdir().unwrap();
        let state = FerryState::open(&dir.path().join("s.db")).await.unwrap();
        let ch = "extranet-to-intranet";
        assert_eq!(state.last_packed(ch).await.unwrap(), (0, None));
        assert!(state.advance_packed(ch, 0, 1, "d1").await.unwrap());
        assert!(!state.advance_packed(ch, 0, 1, "other").await.unwrap());
        assert!(state.advance_packed(ch, 1, 2, "d2").await.unwrap());
        assert!(!state.advance_packed(ch, 1, 2, "d2b").await.unwrap());
        assert_eq!(state.last_packed(ch).await.unwrap(), (2, Some("d2".into())));
    }
}
