//! The register mirror (登记簿镜像): register-log bundles from the extranet (登簿日志 同步导入
//! 业务内网) keep the intranet's copy of the state of units current.
//!
//! Entries are numbered per district from 1 without gaps. Each is stored once in
//! `int_register_log` (a replayed entry is skipped) and applied to `int_register_units` strictly
//! in sequence: `int_register_cursor` holds the last applied number per district. An entry that
//! arrives after a gap is held (stored, not applied) and the gap is reported — logged at once and
//! listed by [`gaps`] on the surveyors' queue — until the missing entries arrive; then the held
//! ones are applied in order.

use ow_domain::UnitCode;
use ow_exchange::RegisterLog;
use ow_store::Store;
use serde::Serialize;
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::error::Result;

/// What applying one register-log message did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// Entries applied now (including held ones a filled gap released).
    pub applied: u64,
    /// Entries already received before (skipped).
    pub duplicates: u64,
    /// Entries held behind a gap after this message.
    pub held: u64,
    /// The gap still open after this message, if any.
    pub gap: Option<RegisterGap>,
}

/// Entries missing from a district's register log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegisterGap {
    /// The district.
    pub district_code: String,
    /// The first missing entry.
    pub missing_from: u64,
    /// The last missing entry (the one before the first held entry).
    pub missing_to: u64,
    /// How many entries are held behind the gap.
    pub held: u64,
}

impl RegisterGap {
    /// What a surveyor or operator reads.
    pub fn message_zh(&self) -> String {
        format!(
            "区县 {} 的登簿日志缺少第 {} 至 {} 条，其后已收到的 {} 条暂未应用；\
             请联系外网运维人员补发缺少的登簿日志（收到后自动按顺序应用）",
            self.district_code, self.missing_from, self.missing_to, self.held
        )
    }
}

/// Why a register-log message cannot be taken (it is refused, with this reason).
pub fn validate(log: &RegisterLog) -> std::result::Result<(), String> {
    let d = &log.district_code;
    if d.len() != 6 || !d.bytes().all(|b| b.is_ascii_digit()) {
        return Err("登簿日志的区县代码不是6位数字".into());
    }
    if log.entries.is_empty() {
        return Err("登簿日志没有条目".into());
    }
    for (i, e) in log.entries.iter().enumerate() {
        if e.seq == 0 || i64::try_from(e.seq).is_err() {
            return Err(format!("登簿日志第 {} 个条目的序号 {} 无效", i + 1, e.seq));
        }
        if i > 0 && e.seq != log.entries[i - 1].seq + 1 {
            return Err("登簿日志的条目序号不连续或未按升序排列".into());
        }
        let code = UnitCode::parse(&e.unit_code)
            .map_err(|err| format!("登簿日志第 {} 条：{}", e.seq, err.message_zh()))?;
        if code.county_code() != d {
            return Err(format!(
                "登簿日志第 {} 条的不动产单元号不属于区县 {d}",
                e.seq
            ));
        }
        if !matches!(e.state.as_str(), "current" | "cancelled") {
            return Err(format!(
                "登簿日志第 {} 条的状态应为 current 或 cancelled",
                e.seq
            ));
        }
    }
    Ok(())
}

async fn cursor(conn: &mut AnyConnection, district: &str) -> Result<u64> {
    sqlx::query(
        "INSERT INTO int_register_cursor (district_code, last_seq) VALUES ($1, 0) \
         ON CONFLICT (district_code) DO NOTHING",
    )
    .bind(district)
    .execute(&mut *conn)
    .await?;
    let last: i64 =
        sqlx::query_scalar("SELECT last_seq FROM int_register_cursor WHERE district_code = $1")
            .bind(district)
            .fetch_one(&mut *conn)
            .await?;
    Ok(u64::try_from(last).unwrap_or(0))
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Stores the entries of `log` (already [`validate`]d) and applies every entry that is next in
/// sequence, in `tx`.
pub async fn apply(
    tx: &mut Transaction<'static, Any>,
    log: &RegisterLog,
    now_ms: i64,
) -> Result<ApplyReport> {
    let district = log.district_code.as_str();
    let mut report = ApplyReport::default();
    let mut last = cursor(tx, district).await?;
    for e in &log.entries {
        if e.seq <= last {
            report.duplicates += 1;
            continue;
        }
        let inserted = sqlx::query(
            "INSERT INTO int_register_log (district_code, seq, unit_code, registration_type, \
             right_type, certificate_number, state, area_m2, application_no, recorded_at_ms, \
             received_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT (district_code, seq) DO NOTHING",
        )
        .bind(district)
        .bind(to_i64(e.seq))
        .bind(e.unit_code.trim().to_ascii_uppercase())
        .bind(&e.registration_type)
        .bind(&e.right_type)
        .bind(e.certificate_number.as_deref())
        .bind(&e.state)
        .bind(e.area_m2.as_deref())
        .bind(e.application_no.as_deref())
        .bind(e.recorded_at_ms)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        if inserted.rows_affected() == 0 {
            report.duplicates += 1;
        }
    }
    // Apply every stored entry that is next in line.
    loop {
        let row = sqlx::query(
            "SELECT unit_code, registration_type, right_type, certificate_number, state, \
             area_m2, recorded_at_ms FROM int_register_log \
             WHERE district_code = $1 AND seq = $2",
        )
        .bind(district)
        .bind(to_i64(last + 1))
        .fetch_optional(&mut **tx)
        .await?;
        let Some(row) = row else { break };
        let next = last + 1;
        let unit: String = row.try_get("unit_code")?;
        let area: Option<String> = row.try_get("area_m2")?;
        sqlx::query(
            "INSERT INTO int_register_units (unit_code, district_code, registration_type, \
             right_type, certificate_number, state, area_m2, last_seq, recorded_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
             ON CONFLICT (unit_code) DO UPDATE SET registration_type = excluded.registration_type, \
             right_type = excluded.right_type, certificate_number = excluded.certificate_number, \
             state = excluded.state, \
             area_m2 = COALESCE(excluded.area_m2, int_register_units.area_m2), \
             last_seq = excluded.last_seq, recorded_at_ms = excluded.recorded_at_ms",
        )
        .bind(&unit)
        .bind(district)
        .bind(row.try_get::<String, _>("registration_type")?)
        .bind(row.try_get::<String, _>("right_type")?)
        .bind(row.try_get::<Option<String>, _>("certificate_number")?)
        .bind(row.try_get::<String, _>("state")?)
        .bind(area)
        .bind(to_i64(next))
        .bind(row.try_get::<i64, _>("recorded_at_ms")?)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "UPDATE int_register_log SET applied_at_ms = $1 WHERE district_code = $2 AND seq = $3",
        )
        .bind(now_ms)
        .bind(district)
        .bind(to_i64(next))
        .execute(&mut **tx)
        .await?;
        let moved = sqlx::query(
            "UPDATE int_register_cursor SET last_seq = $1 WHERE district_code = $2 \
             AND last_seq = $3",
        )
        .bind(to_i64(next))
        .bind(district)
        .bind(to_i64(last))
        .execute(&mut **tx)
        .await?;
        if moved.rows_affected() != 1 {
            return Err(crate::error::IntranetError::Invalid(
                "the register cursor moved under this import; it will be retried".into(),
            ));
        }
        last = next;
        report.applied += 1;
    }
    let gap = district_gap(tx, district, last).await?;
    report.held = gap.as_ref().map_or(0, |g| g.held);
    if let Some(g) = &gap {
        tracing::warn!(district = %g.district_code, missing_from = g.missing_from,
            missing_to = g.missing_to, held = g.held,
            "register log has a gap; later entries are held until it is filled");
    }
    report.gap = gap;
    Ok(report)
}

async fn district_gap(
    conn: &mut AnyConnection,
    district: &str,
    last: u64,
) -> Result<Option<RegisterGap>> {
    let row = sqlx::query(
        "SELECT MIN(seq) AS first, COUNT(*) AS held FROM int_register_log \
         WHERE district_code = $1 AND seq > $2",
    )
    .bind(district)
    .bind(to_i64(last))
    .fetch_one(&mut *conn)
    .await?;
    let first: Option<i64> = row.try_get("first")?;
    let held: i64 = row.try_get("held")?;
    Ok(first.map(|first| RegisterGap {
        district_code: district.to_owned(),
        missing_from: last + 1,
        missing_to: u64::try_from(first).unwrap_or(0).saturating_sub(1),
        held: u64::try_from(held).unwrap_or(0),
    }))
}

/// Every open gap, by district.
pub async fn gaps(store: &Store) -> Result<Vec<RegisterGap>> {
    let mut conn = store.reader().acquire().await?;
    let rows = sqlx::query("SELECT district_code, last_seq FROM int_register_cursor ORDER BY 1")
        .fetch_all(&mut *conn)
        .await?;
    let mut out = Vec::new();
    for row in rows {
        let district: String = row.try_get("district_code")?;
        let last: i64 = row.try_get("last_seq")?;
        if let Some(g) =
            district_gap(&mut conn, &district, u64::try_from(last).unwrap_or(0)).await?
        {
            out.push(g);
        }
    }
    Ok(out)
}

/// A unit of the mirror.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MirrorUnit {
    /// Unit code.
    pub unit_code: String,
    /// 登记类型 code of the last entry.
    pub registration_type: String,
    /// `current` or `cancelled`.
    pub state: String,
    /// Registered area, when known.
    pub area_m2: Option<String>,
    /// The last entry applied to it.
    pub last_seq: i64,
}

/// The mirror's unit `unit_code`, if the register log named it.
pub async fn unit(store: &Store, unit_code: &str) -> Result<Option<MirrorUnit>> {
    let row = sqlx::query(
        "SELECT unit_code, registration_type, state, area_m2, last_seq FROM int_register_units \
         WHERE unit_code = $1",
    )
    .bind(unit_code)
    .fetch_optional(store.reader())
    .await?;
    row.map(|r| {
        Ok(MirrorUnit {
            unit_code: r.try_get("unit_code")?,
            registration_type: r.try_get("registration_type")?,
            state: r.try_get("state")?,
            area_m2: r.try_get("area_m2")?,
            last_seq: r.try_get("last_seq")?,
        })
    })
    .transpose()
}

/// The last entry applied in `district` (0 before the first).
pub async fn applied_up_to(store: &Store, district: &str) -> Result<u64> {
    let last: Option<i64> =
        sqlx::query_scalar("SELECT last_seq FROM int_register_cursor WHERE district_code = $1")
            .bind(district)
            .fetch_optional(store.reader())
            .await?;
    Ok(last.and_then(|l| u64::try_from(l).ok()).unwrap_or(0))
}

/// The mirror's units of `district`, by unit code (at most `limit`).
pub async fn district_units(store: &Store, district: &str, limit: i64) -> Result<Vec<MirrorUnit>> {
    let rows = sqlx::query(
        "SELECT unit_code, registration_type, state, area_m2, last_seq FROM int_register_units \
         WHERE district_code = $1 ORDER BY unit_code LIMIT $2",
    )
    .bind(district)
    .bind(limit)
    .fetch_all(store.reader())
    .await?;
    rows.iter()
        .map(|r| {
            Ok(MirrorUnit {
                unit_code: r.try_get("unit_code")?,
                registration_type: r.try_get("registration_type")?,
                state: r.try_get("state")?,
                area_m2: r.try_get("area_m2")?,
                last_seq: r.try_get("last_seq")?,
            })
        })
        .collect()
}
