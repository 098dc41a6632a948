//! The register (登记簿): units, rights with their holders and shares, mortgages and seizures.
//!
//! Holders' names and ID numbers are stored sealed (context `ext_right_holders:<id>`) with a
//! blind index of the ID number, which the rule check compares with the sellers of a case.
//! A right is `current` (现势) or `historic` (历史); recording a transfer makes the old right
//! historic and the buyers' new right current. Every right recorded is appended to the register
//! log ([`crate::register_log`]) in the same transaction.

use ow_domain::{RegistrationType, RightType, mask};
use ow_pii::{Field, PiiKeyring, normalize_id_number};
use sqlx::{AnyConnection, Row};

use crate::db;
use crate::error::Result;

/// Right status: in force.
pub const CURRENT: &str = "current";
/// Right status: replaced.
pub const HISTORIC: &str = "historic";

/// A unit (不动产单元) as registered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// 28-character unit code.
    pub unit_code: String,
    /// District (first six digits of the code).
    pub district_code: String,
    /// 坐落.
    pub location: String,
    /// Area in m², decimal text.
    pub area_m2: String,
    /// 用途.
    pub usage: String,
    /// 权利类型 code (QLLX).
    pub right_type: i64,
    /// 权利性质.
    pub right_nature: String,
    /// 使用期限.
    pub use_term: String,
}

impl Unit {
    /// 权利类型 in Chinese.
    pub fn right_type_zh(&self) -> &'static str {
        u8::try_from(self.right_type)
            .ok()
            .and_then(RightType::from_code)
            .map_or("其它", RightType::name_zh)
    }
}

/// A person or organisation to register as a holder.
#[derive(Clone, PartialEq, Eq)]
pub struct PartyInput {
    /// Full name.
    pub name: String,
    /// 证件种类 code.
    pub id_type: String,
    /// Document number.
    pub id_number: String,
    /// Share, `1/2`.
    pub share: String,
}

impl std::fmt::Debug for PartyInput {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartyInput")
            .field("name", &ow_domain::mask::mask_name(&self.name))
            .field("id_type", &self.id_type)
            .field(
                "id_number",
                &ow_domain::mask::mask_id_number(&self.id_number),
            )
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

/// A holder of a right, opened (full personal data — never shown unmasked on pages).
#[derive(Clone, PartialEq, Eq)]
pub struct Holder {
    /// Row id.
    pub id: String,
    /// Full name.
    pub name: String,
    /// 证件种类 code.
    pub id_type: String,
    /// Document number.
    pub id_number: String,
    /// Blind index of the document number.
    pub id_index: String,
    /// Share.
    pub share: String,
}

impl std::fmt::Debug for Holder {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Holder")
            .field("id", &self.id)
            .field("name", &ow_domain::mask::mask_name(&self.name))
            .field("id_type", &self.id_type)
            .field(
                "id_number",
                &ow_domain::mask::mask_id_number(&self.id_number),
            )
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

impl Holder {
    /// `张*三`.
    pub fn name_masked(&self) -> String {
        mask::mask_name(&self.name)
    }
    /// `370781********1234`.
    pub fn id_masked(&self) -> String {
        mask::mask_id_number(&self.id_number)
    }
}

/// The blind index of a document number.
pub fn id_index(pii: &PiiKeyring, id_number: &str) -> String {
    pii.blind_index(Field::IdNumber, &normalize_id_number(id_number))
}

/// A right with its holders.
#[derive(Debug, Clone)]
pub struct Right {
    /// Row id.
    pub id: String,
    /// `current` or `historic`.
    pub status: String,
    /// 登记类型 code.
    pub registration_type: i64,
    /// 共有方式 code.
    pub joint_ownership: i64,
    /// The case that recorded it.
    pub application_no: Option<String>,
    /// When it was recorded.
    pub recorded_at_ms: i64,
    /// When it became historic.
    pub ended_at_ms: Option<i64>,
    /// Holders in order.
    pub holders: Vec<Holder>,
}

impl Right {
    /// 登记类型 in Chinese.
    pub fn registration_type_zh(&self) -> &'static str {
        u16::try_from(self.registration_type)
            .ok()
            .and_then(RegistrationType::from_code)
            .map_or("其他", RegistrationType::name_zh)
    }
}

/// A seizure (查封).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seizure {
    /// Row id.
    pub id: String,
    /// `current` or `released`.
    pub status: String,
    /// 查封类型 code: 1 查封, 2 轮候查封, 3 预查封, 4 轮候预查封.
    pub kind: i64,
    /// The court.
    pub court: String,
    /// The ruling's number.
    pub document_no: String,
    /// Start.
    pub starts_at_ms: i64,
    /// End of the term.
    pub ends_at_ms: i64,
    /// When it was released.
    pub released_at_ms: Option<i64>,
}

impl Seizure {
    /// 查封类型 in Chinese.
    pub fn kind_zh(&self) -> &'static str {
        match self.kind {
            1 => "查封",
            2 => "轮候查封",
            3 => "预查封",
            4 => "轮候预查封",
            5 => "续封",
            _ => "查封",
        }
    }

    /// Whether it is in force at `now_ms` (current and its term not expired, 实施细则 §92).
    pub fn in_force(&self, now_ms: i64) -> bool {
        self.status == CURRENT && self.ends_at_ms > now_ms
    }
}

/// A mortgage (抵押权).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mortgage {
    /// Row id.
    pub id: String,
    /// `current` or `released`.
    pub status: String,
    /// The mortgagee (an organisation).
    pub mortgagee: String,
    /// 抵押方式: 1 一般抵押, 2 最高额抵押.
    pub method: i64,
    /// Secured amount in fen.
    pub amount_fen: i64,
    /// Term start.
    pub starts_at_ms: i64,
    /// Term end.
    pub ends_at_ms: i64,
}

fn unit_of(row: &sqlx::any::AnyRow) -> Result<Unit> {
    Ok(Unit {
        unit_code: row.try_get("unit_code")?,
        district_code: row.try_get("district_code")?,
        location: row.try_get("location")?,
        area_m2: row.try_get("area_m2")?,
        usage: row.try_get("usage")?,
        right_type: row.try_get("right_type")?,
        right_nature: row.try_get("right_nature")?,
        use_term: row.try_get("use_term")?,
    })
}

/// The unit `code` in `district`, or `None` (also for another district's unit).
pub async fn unit(conn: &mut AnyConnection, district: &str, code: &str) -> Result<Option<Unit>> {
    let row = sqlx::query(
        "SELECT unit_code, district_code, location, area_m2, usage, right_type, right_nature, \
         use_term FROM ext_units WHERE unit_code = $1 AND district_code = $2",
    )
    .bind(code)
    .bind(district)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(unit_of).transpose()
}

/// Every unit of a district, by code.
pub async fn units(conn: &mut AnyConnection, district: &str) -> Result<Vec<Unit>> {
    let rows = sqlx::query(
        "SELECT unit_code, district_code, location, area_m2, usage, right_type, right_nature, \
         use_term FROM ext_units WHERE district_code = $1 ORDER BY unit_code",
    )
    .bind(district)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(unit_of).collect()
}

/// Inserts a unit.
pub async fn insert_unit(conn: &mut AnyConnection, unit: &Unit, now_ms: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO ext_units (unit_code, district_code, location, area_m2, usage, right_type, \
         right_nature, use_term, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&unit.unit_code)
    .bind(&unit.district_code)
    .bind(&unit.location)
    .bind(&unit.area_m2)
    .bind(&unit.usage)
    .bind(unit.right_type)
    .bind(&unit.right_nature)
    .bind(&unit.use_term)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn holders_of(
    conn: &mut AnyConnection,
    pii: &PiiKeyring,
    right_id: &str,
) -> Result<Vec<Holder>> {
    let rows = sqlx::query(
        "SELECT id, name_sealed, id_type, id_number_sealed, id_number_index, share \
         FROM ext_right_holders WHERE right_id = $1 ORDER BY position",
    )
    .bind(right_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        let ctx = format!("ext_right_holders:{id}");
        let name_sealed: String = row.try_get("name_sealed")?;
        let id_sealed: String = row.try_get("id_number_sealed")?;
        out.push(Holder {
            name: db::open(pii, Field::PersonName, &ctx, &name_sealed)?,
            id_number: db::open(pii, Field::IdNumber, &ctx, &id_sealed)?,
            id_type: row.try_get("id_type")?,
            id_index: row.try_get("id_number_index")?,
            share: row.try_get("share")?,
            id,
        });
    }
    Ok(out)
}

fn right_of(row: &sqlx::any::AnyRow) -> Result<Right> {
    Ok(Right {
        id: row.try_get("id")?,
        status: row.try_get("status")?,
        registration_type: row.try_get("registration_type")?,
        joint_ownership: row.try_get("joint_ownership")?,
        application_no: row.try_get("application_no")?,
        recorded_at_ms: row.try_get("recorded_at_ms")?,
        ended_at_ms: row.try_get("ended_at_ms")?,
        holders: Vec::new(),
    })
}

const RIGHT_COLUMNS: &str = "id, status, registration_type, joint_ownership, application_no, \
    recorded_at_ms, ended_at_ms";

/// The current right of a unit with its holders, if any.
pub async fn current_right(
    conn: &mut AnyConnection,
    pii: &PiiKeyring,
    unit_code: &str,
) -> Result<Option<Right>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RIGHT_COLUMNS} FROM ext_rights WHERE unit_code = $1 AND status = 'current' \
         ORDER BY recorded_at_ms DESC"
    )))
    .bind(unit_code)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut right = right_of(&row)?;
    right.holders = holders_of(conn, pii, &right.id).await?;
    Ok(Some(right))
}

/// A right by id, with its holders.
pub async fn right(conn: &mut AnyConnection, pii: &PiiKeyring, id: &str) -> Result<Option<Right>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RIGHT_COLUMNS} FROM ext_rights WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let mut right = right_of(&row)?;
    right.holders = holders_of(conn, pii, &right.id).await?;
    Ok(Some(right))
}

/// Every right of a unit (current first, then newest first), with holders.
pub async fn rights(
    conn: &mut AnyConnection,
    pii: &PiiKeyring,
    unit_code: &str,
) -> Result<Vec<Right>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {RIGHT_COLUMNS} FROM ext_rights WHERE unit_code = $1 \
         ORDER BY CASE WHEN status = 'current' THEN 0 ELSE 1 END, recorded_at_ms DESC"
    )))
    .bind(unit_code)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let mut right = right_of(&row)?;
        right.holders = holders_of(conn, pii, &right.id).await?;
        out.push(right);
    }
    Ok(out)
}

/// Records a new current right on `unit_code` with `holders` (sealed, indexed). The caller
/// makes any previous right historic first.
#[allow(clippy::too_many_arguments)]
pub async fn insert_right(
    conn: &mut AnyConnection,
    pii: &PiiKeyring,
    unit_code: &str,
    registration_type: RegistrationType,
    application_no: Option<&str>,
    holders: &[PartyInput],
    recorded_at_ms: i64,
    recorded_by: Option<&str>,
) -> Result<String> {
    let id = ow_store::new_id();
    let joint: i64 = if holders.len() <= 1 { 0 } else { 2 };
    sqlx::query(
        "INSERT INTO ext_rights (id, unit_code, status, registration_type, joint_ownership, \
         application_no, recorded_at_ms, recorded_by) VALUES ($1, $2, 'current', $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(unit_code)
    .bind(i64::from(registration_type.code()))
    .bind(joint)
    .bind(application_no)
    .bind(recorded_at_ms)
    .bind(recorded_by)
    .execute(&mut *conn)
    .await?;
    for (position, h) in holders.iter().enumerate() {
        let hid = ow_store::new_id();
        let ctx = format!("ext_right_holders:{hid}");
        let id_number = normalize_id_number(&h.id_number);
        sqlx::query(
            "INSERT INTO ext_right_holders (id, right_id, position, name_sealed, id_type, \
             id_number_sealed, id_number_index, share) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&hid)
        .bind(&id)
        .bind(i64::try_from(position).unwrap_or(i64::MAX))
        .bind(db::seal(pii, Field::PersonName, &ctx, h.name.trim()))
        .bind(&h.id_type)
        .bind(db::seal(pii, Field::IdNumber, &ctx, &id_number))
        .bind(id_index(pii, &id_number))
        .bind(&h.share)
        .execute(&mut *conn)
        .await?;
    }
    // The register log (and through it the intranet's mirror) learns of the change in the
    // same transaction.
    crate::register_log::append(
        conn,
        &crate::register_log::NewEntry {
            unit_code,
            registration_type,
            certificate_number: None,
            state: crate::register_log::CURRENT,
            application_no,
            recorded_at_ms,
        },
    )
    .await?;
    Ok(id)
}

/// Makes a right historic, ended by `application_no`. Returns whether it was current.
pub async fn end_right(
    conn: &mut AnyConnection,
    right_id: &str,
    application_no: &str,
    now_ms: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "UPDATE ext_rights SET status = 'historic', ended_at_ms = $1, ended_by_application = $2 \
         WHERE id = $3 AND status = 'current'",
    )
    .bind(now_ms)
    .bind(application_no)
    .bind(right_id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Seizures of a unit, current first.
pub async fn seizures(conn: &mut AnyConnection, unit_code: &str) -> Result<Vec<Seizure>> {
    let rows = sqlx::query(
        "SELECT id, status, kind, court, document_no, starts_at_ms, ends_at_ms, released_at_ms \
         FROM ext_seizures WHERE unit_code = $1 \
         ORDER BY CASE WHEN status = 'current' THEN 0 ELSE 1 END, starts_at_ms",
    )
    .bind(unit_code)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| -> Result<Seizure> {
            Ok(Seizure {
                id: row.try_get("id")?,
                status: row.try_get("status")?,
                kind: row.try_get("kind")?,
                court: row.try_get("court")?,
                document_no: row.try_get("document_no")?,
                starts_at_ms: row.try_get("starts_at_ms")?,
                ends_at_ms: row.try_get("ends_at_ms")?,
                released_at_ms: row.try_get("released_at_ms")?,
            })
        })
        .collect()
}

/// Registers a seizure.
#[allow(clippy::too_many_arguments)]
pub async fn insert_seizure(
    conn: &mut AnyConnection,
    unit_code: &str,
    kind: i64,
    court: &str,
    document_no: &str,
    starts_at_ms: i64,
    ends_at_ms: i64,
    now_ms: i64,
) -> Result<String> {
    let id = ow_store::new_id();
    sqlx::query(
        "INSERT INTO ext_seizures (id, unit_code, status, kind, court, document_no, starts_at_ms, \
         ends_at_ms, registered_at_ms) VALUES ($1, $2, 'current', $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(unit_code)
    .bind(kind)
    .bind(court)
    .bind(document_no)
    .bind(starts_at_ms)
    .bind(ends_at_ms)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// Mortgages of a unit, current first.
pub async fn mortgages(conn: &mut AnyConnection, unit_code: &str) -> Result<Vec<Mortgage>> {
    let rows = sqlx::query(
        "SELECT id, status, mortgagee, method, amount_fen, starts_at_ms, ends_at_ms \
         FROM ext_mortgages WHERE unit_code = $1 \
         ORDER BY CASE WHEN status = 'current' THEN 0 ELSE 1 END, registered_at_ms",
    )
    .bind(unit_code)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| -> Result<Mortgage> {
            Ok(Mortgage {
                id: row.try_get("id")?,
                status: row.try_get("status")?,
                mortgagee: row.try_get("mortgagee")?,
                method: row.try_get("method")?,
                amount_fen: row.try_get("amount_fen")?,
                starts_at_ms: row.try_get("starts_at_ms")?,
                ends_at_ms: row.try_get("ends_at_ms")?,
            })
        })
        .collect()
}

/// Registers a mortgage.
#[allow(clippy::too_many_arguments)]
pub async fn insert_mortgage(
    conn: &mut AnyConnection,
    unit_code: &str,
    mortgagee: &str,
    method: i64,
    amount_fen: i64,
    starts_at_ms: i64,
    ends_at_ms: i64,
    now_ms: i64,
) -> Result<String> {
    let id = ow_store::new_id();
    sqlx::query(
        "INSERT INTO ext_mortgages (id, unit_code, status, mortgagee, method, amount_fen, \
         starts_at_ms, ends_at_ms, registered_at_ms) \
         VALUES ($1, $2, 'current', $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(unit_code)
    .bind(mortgagee)
    .bind(method)
    .bind(amount_fen)
    .bind(starts_at_ms)
    .bind(ends_at_ms)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// The application holding the recording lock of a unit, if any.
pub async fn lock_holder(conn: &mut AnyConnection, unit_code: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT application_no FROM ext_unit_locks WHERE unit_code = $1")
            .bind(unit_code)
            .fetch_optional(&mut *conn)
            .await?,
    )
}
