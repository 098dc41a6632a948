//! What the receiving ferry agent landed: a small read-only view of its `rx_landed` table.
//!
//! A zone imports only bundles its own ferry agent verified and landed (the agent checked
//! expiry, replay, order and the channel's kind policy, and recorded the bundle id and digest
//! before the file got its inbox name). A file that appears in the inbox any other way — copied
//! there by hand, an expired or quarantined bundle moved in, a landed file swapped for another
//! validly signed one — has no matching row and is set aside.
//!
//! The database belongs to `ow-ferry`; this view opens it read-only and never migrates or
//! writes it.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};

use crate::ExchangeError;

/// One `rx_landed` row: the bundle the agent landed under an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LandedRecord {
    /// The channel it came on.
    pub channel: String,
    /// Its sequence number on the channel.
    pub sequence: u64,
    /// The bundle digest the agent verified (hex BLAKE3 of the header).
    pub digest: String,
}

/// A read-only view of a ferry agent's landed bundles.
#[derive(Debug, Clone)]
pub struct LandedView {
    path: PathBuf,
    pool: Option<SqlitePool>,
}

impl LandedView {
    /// A view of the state database at `path` (`<ferry data_dir>/ferry-state.db`). Nothing is
    /// opened yet: the agent may start after the zone.
    pub fn new(path: &Path) -> Self {
        LandedView {
            path: path.to_path_buf(),
            pool: None,
        }
    }

    async fn pool(&mut self) -> Result<&SqlitePool, ExchangeError> {
        if self.pool.is_none() {
            let options = SqliteConnectOptions::from_str("sqlite://")?
                .filename(&self.path)
                .read_only(true)
                .create_if_missing(false)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(|e| ExchangeError::Landed {
                    path: self.path.clone(),
                    cause: e.to_string(),
                })?;
            self.pool = Some(pool);
        }
        self.pool.as_ref().ok_or_else(|| ExchangeError::Landed {
            path: self.path.clone(),
            cause: "not open".into(),
        })
    }

    /// The landed record of `bundle_id`, or `None` when the agent never landed it.
    pub async fn landed(&mut self, bundle_id: &str) -> Result<Option<LandedRecord>, ExchangeError> {
        let path = self.path.clone();
        let pool = self.pool().await?;
        // The agent stores sequences as zero-padded decimal text (they are u64; SQLite integers
        // are i64); agents before that stored integers. The cast reads both.
        let row = sqlx::query(
            "SELECT channel, CAST(sequence AS TEXT) AS sequence, digest \
             FROM rx_landed WHERE bundle_id = ?",
        )
        .bind(bundle_id)
        .fetch_optional(pool)
        .await
        .map_err(|e| ExchangeError::Landed {
            path: path.clone(),
            cause: e.to_string(),
        })?;
        row.map(|r| {
            let sequence: String = r.try_get("sequence")?;
            Ok(LandedRecord {
                channel: r.try_get("channel")?,
                sequence: parse_sequence(&sequence).ok_or_else(|| ExchangeError::Landed {
                    path: path.clone(),
                    cause: format!("rx_landed holds an unreadable sequence number {sequence:?}"),
                })?,
                digest: r.try_get("digest")?,
            })
        })
        .transpose()
    }

    /// Closes the connection.
    pub async fn close(&self) {
        if let Some(pool) = &self.pool {
            pool.close().await;
        }
    }
}

/// A sequence number as the agent stores it: decimal digits, zero-padded or not.
fn parse_sequence(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_are_read_as_the_agent_stores_them() {
        assert_eq!(parse_sequence("00000000000000000001"), Some(1));
        assert_eq!(parse_sequence("7"), Some(7));
        assert_eq!(parse_sequence("18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_sequence("18446744073709551616"), None);
        assert_eq!(parse_sequence("-1"), None);
        assert_eq!(parse_sequence("+1"), None);
        assert_eq!(parse_sequence(""), None);
    }
}
