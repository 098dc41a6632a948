//! The register log (登簿日志): every change 登簿 makes to a unit's registered state, numbered per
//! district from 1 without gaps, and its delivery to the intranet's register mirror.
//!
//! An entry is appended in the transaction that changes the register ([`append`], called by
//! [`crate::register::insert_right`]), so the log and the register cannot disagree. The table is
//! itself the outbox towards the intranet: [`queue_unsent`] takes the entries no message has
//! carried yet, in `seq` order, and queues them as `register-log` messages on
//! `extranet-to-intranet`, marking each entry with its message id in the same transaction — an
//! entry is queued once, and entries written while no intranet was linked wait until one is.
//! Entries hold no personal data (units and their state, not holders).

use ow_bundle::{Channel, Zone};
use ow_domain::RegistrationType;
use ow_pii::PiiKeyring;
use ow_store::Store;
use sqlx::{AnyConnection, Row};

use crate::error::Result;
use crate::exchange::{self, Message, RegisterLog, RegisterLogEntry};

/// The channel towards the intranet (one-way gateway, or offline media for confidential data).
pub const TO_INTRANET: Channel = Channel {
    from: Zone::Extranet,
    to: Zone::Intranet,
};

/// Most entries one `register-log` message carries (each is about 250 bytes of JSON).
pub const MAX_ENTRIES_PER_MESSAGE: usize = 500;

/// A unit's state after an entry: current (现势).
pub const CURRENT: &str = "current";

/// One change to append.
#[derive(Debug, Clone)]
pub struct NewEntry<'a> {
    /// The unit.
    pub unit_code: &'a str,
    /// 登记类型 of the change.
    pub registration_type: RegistrationType,
    /// The certificate issued or cancelled by it, when there is one.
    pub certificate_number: Option<&'a str>,
    /// The unit's state after it: [`CURRENT`] or `cancelled`.
    pub state: &'a str,
    /// The application that caused it.
    pub application_no: Option<&'a str>,
    /// When it was recorded, Unix milliseconds.
    pub recorded_at_ms: i64,
}

/// Appends `entry` to the log of the unit's district, with the next sequence number; returns
/// it. The district, area and right type come from the unit's register page. Two writers that
/// race for the same number cannot both commit (the key is `(district, seq)`): the later one
/// fails and is retried by its caller, never leaving a gap or a duplicate.
pub async fn append(conn: &mut AnyConnection, entry: &NewEntry<'_>) -> Result<u64> {
    let unit = sqlx::query(
        "SELECT district_code, area_m2, right_type FROM ext_units WHERE unit_code = $1",
    )
    .bind(entry.unit_code)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| {
        crate::ExtranetError::Corrupt(format!(
            "unit {} has no register page; its change cannot be logged",
            entry.unit_code
        ))
    })?;
    let district: String = unit.try_get("district_code")?;
    let area: String = unit.try_get("area_m2")?;
    let right_type: i64 = unit.try_get("right_type")?;
    let last: Option<i64> =
        sqlx::query_scalar("SELECT MAX(seq) FROM ext_register_log WHERE district_code = $1")
            .bind(&district)
            .fetch_one(&mut *conn)
            .await?;
    let seq = last.unwrap_or(0) + 1;
    sqlx::query(
        "INSERT INTO ext_register_log (district_code, seq, unit_code, registration_type, \
         right_type, certificate_number, state, area_m2, application_no, recorded_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&district)
    .bind(seq)
    .bind(entry.unit_code)
    .bind(entry.registration_type.code().to_string())
    .bind(right_type.to_string())
    .bind(entry.certificate_number)
    .bind(entry.state)
    .bind(area)
    .bind(entry.application_no)
    .bind(entry.recorded_at_ms)
    .execute(&mut *conn)
    .await?;
    u64::try_from(seq).map_err(|_| crate::ExtranetError::Corrupt("negative log sequence".into()))
}

/// Queues the entries no message carries yet as `register-log` messages (per district, in
/// `seq` order, at most [`MAX_ENTRIES_PER_MESSAGE`] each), marking them in the same
/// transaction. Returns how many entries were queued. Run by the serving loop and after each
/// commit; concurrent runs cannot queue an entry twice (the marking update must claim every
/// entry it queued, or the transaction is rolled back).
pub async fn queue_unsent(store: &Store, pii: &PiiKeyring) -> Result<usize> {
    let mut tx = store.begin().await?;
    let rows = sqlx::query(
        "SELECT district_code, seq, unit_code, registration_type, right_type, \
         certificate_number, state, area_m2, application_no, recorded_at_ms \
         FROM ext_register_log WHERE message_id IS NULL ORDER BY district_code, seq LIMIT $1",
    )
    .bind(i64::try_from(MAX_ENTRIES_PER_MESSAGE * 4).unwrap_or(i64::MAX))
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let mut runs: Vec<(String, Vec<RegisterLogEntry>)> = Vec::new();
    for row in rows {
        let district: String = row.try_get("district_code")?;
        let seq: i64 = row.try_get("seq")?;
        let area: Option<String> = row.try_get("area_m2")?;
        let entry = RegisterLogEntry {
            seq: u64::try_from(seq)
                .map_err(|_| crate::ExtranetError::Corrupt("negative log sequence".into()))?,
            unit_code: row.try_get("unit_code")?,
            registration_type: row.try_get("registration_type")?,
            right_type: row.try_get("right_type")?,
            certificate_number: row.try_get("certificate_number")?,
            state: row.try_get("state")?,
            area_m2: area.as_deref().and_then(two_decimals),
            application_no: row.try_get("application_no")?,
            recorded_at_ms: row.try_get("recorded_at_ms")?,
        };
        // A new message for a new district, a full message, or a break in the sequence (an
        // earlier entry already sent on its own): each message is one consecutive run.
        match runs.last_mut() {
            Some((d, entries))
                if *d == district
                    && entries.len() < MAX_ENTRIES_PER_MESSAGE
                    && entries.last().is_some_and(|e| e.seq + 1 == entry.seq) =>
            {
                entries.push(entry);
            }
            _ => runs.push((district, vec![entry])),
        }
    }
    let mut queued = 0;
    for (district, entries) in runs {
        let (first, last, count) = match (entries.first(), entries.last()) {
            (Some(f), Some(l)) => (f.seq as i64, l.seq as i64, entries.len()),
            _ => continue,
        };
        let message_id = exchange::enqueue(
            &mut tx,
            pii,
            &TO_INTRANET,
            Message::RegisterLog(RegisterLog {
                district_code: district.clone(),
                entries,
            }),
            Vec::new(),
        )
        .await?;
        let claimed = sqlx::query(
            "UPDATE ext_register_log SET message_id = $1 WHERE district_code = $2 \
             AND seq >= $3 AND seq <= $4 AND message_id IS NULL",
        )
        .bind(&message_id)
        .bind(&district)
        .bind(first)
        .bind(last)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed != count as u64 {
            // Another run queued some of them first: leave it all to that run.
            tx.rollback().await?;
            return Ok(0);
        }
        queued += count;
    }
    tx.commit().await?;
    tracing::info!(entries = queued, "register log queued for the intranet");
    Ok(queued)
}

/// `89.5` → `89.50`; anything that is not a plain non-negative decimal is left out (the
/// mirror then shows no area rather than a wrong one).
fn two_decimals(text: &str) -> Option<String> {
    let value: f64 = text.trim().parse().ok()?;
    (value.is_finite() && value >= 0.0).then(|| format!("{value:.2}"))
}

#[cfg(test)]
mod tests {
    use super::two_decimals;

    #[test]
    fn areas_travel_with_two_decimals() {
        assert_eq!(two_decimals("89.5").as_deref(), Some("89.50"));
        assert_eq!(two_decimals(" 120 ").as_deref(), Some("120.00"));
        assert_eq!(two_decimals("约90"), None);
        assert_eq!(two_decimals("-1"), None);
        assert_eq!(two_decimals("NaN"), None);
    }
}
