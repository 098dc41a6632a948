//! Cases (applications in the workflow): reading cases, their parties (sealed), materials and
//! event timeline, and the district queue. Every read takes the district: a case of another
//! district is "not found".

use ow_domain::{BusinessType, CaseStatus, mask};
use ow_pii::{Field, PiiKeyring};
use sqlx::{AnyConnection, Row};

use crate::db;
use crate::error::Result;

/// Party role: seller (义务人).
pub const SELLER: &str = "seller";
/// Party role: buyer (权利人).
pub const BUYER: &str = "buyer";

/// A case row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Case {
    /// Application number (the case id across zones).
    pub application_no: String,
    /// District (tenant).
    pub district_code: String,
    /// National business code.
    pub business_type: String,
    /// The unit.
    pub unit_code: Option<String>,
    /// The certificate number the applicant gave.
    pub given_certificate_number: Option<String>,
    /// Price in fen.
    pub price_fen: i64,
    /// Status.
    pub status: CaseStatus,
    /// Reason of the last refusal or supplement request, as stored: sealed (open it with
    /// [`Case::status_reason_opened`]).
    pub status_reason: Option<String>,
    /// Checklist codes asked for in the last supplement request.
    pub requested_materials: Vec<String>,
    /// When the citizen submitted.
    pub submitted_at_ms: i64,
    /// When it arrived here.
    pub received_at_ms: i64,
    /// Last change.
    pub updated_at_ms: i64,
    /// The right the case ended (after recording).
    pub old_right_id: Option<String>,
    /// The right the case recorded.
    pub new_right_id: Option<String>,
    /// When it was recorded.
    pub recorded_at_ms: Option<i64>,
    /// The certificate issued.
    pub certificate_number: Option<String>,
    /// When it was accepted (受理); the time limit counts from here.
    pub accepted_at_ms: Option<i64>,
}

impl Case {
    /// The reason of the last refusal or supplement request, opened.
    pub fn status_reason_opened(&self, pii: &PiiKeyring) -> Result<Option<String>> {
        open_reason(
            pii,
            &status_reason_ctx(&self.application_no),
            self.status_reason.clone(),
        )
    }

    /// Business name in Chinese.
    pub fn business_zh(&self) -> &'static str {
        BusinessType::from_code(&self.business_type).map_or("其他登记", BusinessType::name_zh)
    }
}

/// A party of a case, opened. `Debug` shows the name, number and phone masked.
#[derive(Clone, PartialEq, Eq)]
pub struct Party {
    /// Row id.
    pub id: String,
    /// `seller` or `buyer`.
    pub role: String,
    /// Full name.
    pub name: String,
    /// 证件种类 code.
    pub id_type: String,
    /// Document number.
    pub id_number: String,
    /// Blind index of the document number.
    pub id_index: String,
    /// Phone, if given.
    pub phone: Option<String>,
    /// Share.
    pub share: String,
}

impl std::fmt::Debug for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Party")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("name", &self.name_masked())
            .field("id_type", &self.id_type)
            .field("id_number", &self.id_masked())
            .field("phone", &self.phone.as_ref().map(|_| self.phone_masked()))
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

impl Party {
    /// `张*三`.
    pub fn name_masked(&self) -> String {
        mask::mask_name(&self.name)
    }
    /// `370781********1234`.
    pub fn id_masked(&self) -> String {
        mask::mask_id_number(&self.id_number)
    }
    /// `138****5678`.
    pub fn phone_masked(&self) -> String {
        self.phone
            .as_deref()
            .map(mask::mask_phone)
            .unwrap_or_default()
    }
}

/// A material of a case (its sealed file is `materials::material_file(data_dir, id)`).
/// `Debug` does not show the file name.
#[derive(Clone, PartialEq, Eq)]
pub struct Material {
    /// Row id.
    pub id: String,
    /// Checklist code.
    pub checklist_code: String,
    /// Display file name, opened (personal data: the citizen named the file).
    pub file_name: String,
    /// Media type.
    pub media_type: String,
    /// Size in bytes.
    pub size: i64,
    /// BLAKE3 hex.
    pub blake3: String,
    /// `application` or `supplement`.
    pub source: String,
    /// When it arrived.
    pub received_at_ms: i64,
}

impl std::fmt::Debug for Material {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Material")
            .field("id", &self.id)
            .field("checklist_code", &self.checklist_code)
            .field("media_type", &self.media_type)
            .field("size", &self.size)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// One event of a case's timeline. `Debug` does not show the reason.
#[derive(Clone, PartialEq, Eq)]
pub struct Event {
    /// Row id.
    pub id: String,
    /// Staff id, or `None` for imports.
    pub staff_id: Option<String>,
    /// The staff member's display name, if known.
    pub staff_name: Option<String>,
    /// Action, e.g. `case.accept`.
    pub action: String,
    /// Status before.
    pub from_status: Option<String>,
    /// Status after.
    pub to_status: Option<String>,
    /// Reason, opened (registrars' reasons and supplement notes may quote people).
    pub reason: Option<String>,
    /// When.
    pub at_ms: i64,
    /// Position in the audit log, once appended.
    pub audit_index: Option<i64>,
    /// The registrar's opinion, sealed ([`open_opinion`] opens it).
    pub opinion_sealed: Option<String>,
}

/// The sealing field of opinions (审核意见, 登簿意见, …): they may quote personal data.
pub const OPINION_FIELD: Field = Field::Other("case-opinion");

/// The event action of a registrar viewing personal data in full (no status change).
pub const VIEW_PERSONAL_DATA: &str = "case.view-personal-data";

/// The field kinds a full view of the parties opens: the reason of a [`VIEW_PERSONAL_DATA`] event
/// and of its audit entry (kinds, never values, so the audit log may hold it in clear).
pub const FULL_VIEW_FIELDS: &str = "person-name,id-number";

fn event_context(event_id: &str) -> String {
    format!("ext_case_events:{event_id}")
}

/// Stores `opinion` sealed on event `event_id` (in the caller's transaction).
pub async fn set_opinion(
    conn: &mut AnyConnection,
    pii: &PiiKeyring,
    event_id: &str,
    opinion: &str,
) -> Result<()> {
    let sealed = db::seal(pii, OPINION_FIELD, &event_context(event_id), opinion);
    sqlx::query("UPDATE ext_case_events SET opinion_sealed = $1 WHERE id = $2")
        .bind(sealed)
        .bind(event_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The opinion of `event`, opened; `None` when none was given.
pub fn open_opinion(pii: &PiiKeyring, event: &Event) -> Result<Option<String>> {
    event
        .opinion_sealed
        .as_deref()
        .map(|s| db::open(pii, OPINION_FIELD, &event_context(&event.id), s))
        .transpose()
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Event")
            .field("id", &self.id)
            .field("staff_id", &self.staff_id)
            .field("action", &self.action)
            .field("from_status", &self.from_status)
            .field("to_status", &self.to_status)
            .field("at_ms", &self.at_ms)
            .field("audit_index", &self.audit_index)
            .finish_non_exhaustive()
    }
}

/// The sealing field of reasons and notes (refusals, supplement requests and notes, import
/// refusals): free text that may quote names, numbers and file names.
pub const REASON_FIELD: Field = Field::Other("case-reason");
/// The sealing field of materials' file names.
pub const FILE_NAME_FIELD: Field = Field::Other("material-file-name");

fn status_reason_ctx(no: &str) -> String {
    format!("ext_cases:{no}:status_reason")
}

fn event_reason_ctx(event_id: &str) -> String {
    format!("ext_case_events:{event_id}")
}

fn file_name_ctx(material_id: &str) -> String {
    format!("ext_case_materials:{material_id}")
}

/// Whether a stored text value is sealed (`v1.<key id>.<data>`); values an earlier version
/// stored in clear are not, until [`seal_stored_reasons`] or `materials::seal_stored` seal them.
pub fn is_sealed_text(value: &str) -> bool {
    value.starts_with("v1.") && value.parse::<ow_pii::Sealed>().is_ok()
}

/// Seals a case's status reason for `ext_cases.status_reason`.
pub fn seal_status_reason(pii: &PiiKeyring, no: &str, reason: Option<&str>) -> Option<String> {
    reason.map(|r| db::seal(pii, REASON_FIELD, &status_reason_ctx(no), r))
}

/// Seals a material's file name for `ext_case_materials.file_name`.
pub fn seal_file_name(pii: &PiiKeyring, material_id: &str, name: &str) -> String {
    db::seal(pii, FILE_NAME_FIELD, &file_name_ctx(material_id), name)
}

/// Opens a stored reason; a value stored in clear by an earlier version is returned as it is.
fn open_reason(pii: &PiiKeyring, context: &str, stored: Option<String>) -> Result<Option<String>> {
    match stored {
        Some(text) if is_sealed_text(&text) => {
            Ok(Some(db::open(pii, REASON_FIELD, context, &text)?))
        }
        other => Ok(other),
    }
}

/// Seals the status reasons and event reasons an earlier version stored in clear. Idempotent;
/// returns how many values were sealed.
pub async fn seal_stored_reasons(state: &crate::AppState) -> Result<usize> {
    let mut sealed = 0;
    let rows = sqlx::query(
        "SELECT application_no, status_reason FROM ext_cases WHERE status_reason IS NOT NULL",
    )
    .fetch_all(state.store.reader())
    .await?;
    for row in &rows {
        let no: String = row.try_get("application_no")?;
        let reason: String = row.try_get("status_reason")?;
        if is_sealed_text(&reason) {
            continue;
        }
        sqlx::query(
            "UPDATE ext_cases SET status_reason = $1 WHERE application_no = $2 AND status_reason = $3",
        )
        .bind(seal_status_reason(&state.pii, &no, Some(&reason)))
        .bind(&no)
        .bind(&reason)
        .execute(state.store.writer())
        .await?;
        sealed += 1;
    }
    let rows = sqlx::query("SELECT id, reason FROM ext_case_events WHERE reason IS NOT NULL")
        .fetch_all(state.store.reader())
        .await?;
    for row in &rows {
        let id: String = row.try_get("id")?;
        let reason: String = row.try_get("reason")?;
        if is_sealed_text(&reason) {
            continue;
        }
        sqlx::query("UPDATE ext_case_events SET reason = $1 WHERE id = $2 AND reason = $3")
            .bind(db::seal(
                &state.pii,
                REASON_FIELD,
                &event_reason_ctx(&id),
                &reason,
            ))
            .bind(&id)
            .bind(&reason)
            .execute(state.store.writer())
            .await?;
        sealed += 1;
    }
    Ok(sealed)
}

const CASE_COLUMNS: &str = "application_no, district_code, business_type, unit_code, \
    given_certificate_number, price_fen, status, status_reason, requested_materials, \
    submitted_at_ms, received_at_ms, updated_at_ms, old_right_id, new_right_id, recorded_at_ms, \
    certificate_number, accepted_at_ms";

fn case_of(row: &sqlx::any::AnyRow) -> Result<Case> {
    let status: String = row.try_get("status")?;
    let requested: String = row.try_get("requested_materials")?;
    Ok(Case {
        application_no: row.try_get("application_no")?,
        district_code: row.try_get("district_code")?,
        business_type: row.try_get("business_type")?,
        unit_code: row.try_get("unit_code")?,
        given_certificate_number: row.try_get("given_certificate_number")?,
        price_fen: row.try_get("price_fen")?,
        status: CaseStatus::from_code(&status)
            .ok_or_else(|| db::corrupt(format!("case status {status:?}")))?,
        status_reason: row.try_get("status_reason")?,
        requested_materials: requested
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        submitted_at_ms: row.try_get("submitted_at_ms")?,
        received_at_ms: row.try_get("received_at_ms")?,
        updated_at_ms: row.try_get("updated_at_ms")?,
        old_right_id: row.try_get("old_right_id")?,
        new_right_id: row.try_get("new_right_id")?,
        recorded_at_ms: row.try_get("recorded_at_ms")?,
        certificate_number: row.try_get("certificate_number")?,
        accepted_at_ms: row.try_get("accepted_at_ms")?,
    })
}

/// A case of `district`, or `None` (also when it belongs to another district).
pub async fn get(conn: &mut AnyConnection, district: &str, no: &str) -> Result<Option<Case>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CASE_COLUMNS} FROM ext_cases WHERE application_no = $1 AND district_code = $2"
    )))
    .bind(no)
    .bind(district)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(case_of).transpose()
}

/// A case by number, whatever its district (import only).
pub async fn get_any(conn: &mut AnyConnection, no: &str) -> Result<Option<Case>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {CASE_COLUMNS} FROM ext_cases WHERE application_no = $1"
    )))
    .bind(no)
    .fetch_optional(&mut *conn)
    .await?;
    row.as_ref().map(case_of).transpose()
}

/// The district's cases in one of `statuses` (all when empty): the oldest first when statuses
/// are given (a work queue), the newest first otherwise. At most 500.
pub async fn queue(
    conn: &mut AnyConnection,
    district: &str,
    statuses: &[CaseStatus],
) -> Result<Vec<Case>> {
    let rows = if statuses.is_empty() {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {CASE_COLUMNS} FROM ext_cases WHERE district_code = $1 \
             ORDER BY received_at_ms DESC, application_no LIMIT 500"
        )))
        .bind(district)
        .fetch_all(&mut *conn)
        .await?
    } else {
        // Placeholders $2, $3, … for the statuses; the values are bound, never inlined.
        let sql = format!(
            "SELECT {CASE_COLUMNS} FROM ext_cases WHERE district_code = $1 AND status IN ({}) \
             ORDER BY received_at_ms, application_no LIMIT 500",
            placeholders(2, statuses.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(district);
        for s in statuses {
            q = q.bind(s.code());
        }
        q.fetch_all(&mut *conn).await?
    };
    rows.iter().map(case_of).collect()
}

/// What a queue row shows beside the case: the unit's location and the applicants (权利人,
/// or the 义务人 when there are none), opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueExtras {
    /// 坐落 of the unit, if it is in the register.
    pub location: Option<String>,
    /// Applicants' full names (mask before showing).
    pub applicants: Vec<String>,
}

/// `$first, $first+1, …` for `n` bound values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// [`QueueExtras`] of each case in `cases`, in the same order (two queries for the whole list).
pub async fn queue_extras(
    conn: &mut AnyConnection,
    pii: &PiiKeyring,
    cases: &[Case],
) -> Result<Vec<QueueExtras>> {
    let mut out = vec![QueueExtras::default(); cases.len()];
    if cases.is_empty() {
        return Ok(out);
    }
    let units: Vec<&str> = cases
        .iter()
        .filter_map(|c| c.unit_code.as_deref())
        .collect();
    let mut locations = std::collections::HashMap::new();
    if !units.is_empty() {
        let sql = format!(
            "SELECT unit_code, location FROM ext_units WHERE unit_code IN ({})",
            placeholders(1, units.len())
        );
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for u in &units {
            q = q.bind(*u);
        }
        for row in q.fetch_all(&mut *conn).await? {
            let code: String = row.try_get("unit_code")?;
            let location: String = row.try_get("location")?;
            locations.insert(code, location);
        }
    }
    let sql = format!(
        "SELECT application_no, id, role, name_sealed FROM ext_case_parties \
         WHERE application_no IN ({}) ORDER BY application_no, position",
        placeholders(1, cases.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for c in cases {
        q = q.bind(&c.application_no);
    }
    let mut buyers: std::collections::HashMap<String, Vec<String>> = Default::default();
    let mut sellers: std::collections::HashMap<String, Vec<String>> = Default::default();
    for row in q.fetch_all(&mut *conn).await? {
        let no: String = row.try_get("application_no")?;
        let id: String = row.try_get("id")?;
        let role: String = row.try_get("role")?;
        let sealed: String = row.try_get("name_sealed")?;
        let name = db::open(
            pii,
            Field::PersonName,
            &format!("ext_case_parties:{id}"),
            &sealed,
        )?;
        let side = if role == BUYER {
            &mut buyers
        } else {
            &mut sellers
        };
        side.entry(no).or_default().push(name);
    }
    for (slot, case) in out.iter_mut().zip(cases) {
        slot.location = case
            .unit_code
            .as_deref()
            .and_then(|u| locations.get(u).cloned());
        slot.applicants = buyers
            .remove(&case.application_no)
            .or_else(|| sellers.remove(&case.application_no))
            .unwrap_or_default();
    }
    Ok(out)
}

/// Number of the district's cases per status.
pub async fn counts(conn: &mut AnyConnection, district: &str) -> Result<Vec<(CaseStatus, i64)>> {
    let rows = sqlx::query(
        "SELECT status, COUNT(*) AS n FROM ext_cases WHERE district_code = $1 GROUP BY status",
    )
    .bind(district)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: Vec<(CaseStatus, i64)> = CaseStatus::ALL.iter().map(|s| (*s, 0)).collect();
    for row in rows {
        let status: String = row.try_get("status")?;
        let n: i64 = row.try_get("n")?;
        if let Some(slot) = out.iter_mut().find(|(s, _)| s.code() == status) {
            slot.1 = n;
        }
    }
    Ok(out)
}

/// The parties of a case, opened, sellers first.
pub async fn parties(conn: &mut AnyConnection, pii: &PiiKeyring, no: &str) -> Result<Vec<Party>> {
    let rows = sqlx::query(
        "SELECT id, role, name_sealed, id_type, id_number_sealed, id_number_index, phone_sealed, \
         share FROM ext_case_parties WHERE application_no = $1 \
         ORDER BY CASE WHEN role = 'seller' THEN 0 ELSE 1 END, position",
    )
    .bind(no)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let id: String = row.try_get("id")?;
        let ctx = format!("ext_case_parties:{id}");
        let name: String = row.try_get("name_sealed")?;
        let idn: String = row.try_get("id_number_sealed")?;
        let phone: Option<String> = row.try_get("phone_sealed")?;
        out.push(Party {
            role: row.try_get("role")?,
            name: db::open(pii, Field::PersonName, &ctx, &name)?,
            id_type: row.try_get("id_type")?,
            id_number: db::open(pii, Field::IdNumber, &ctx, &idn)?,
            id_index: row.try_get("id_number_index")?,
            phone: phone
                .map(|p| db::open(pii, Field::Phone, &ctx, &p))
                .transpose()?,
            share: row.try_get("share")?,
            id,
        });
    }
    Ok(out)
}

/// The materials of a case, in arrival order, their file names opened.
pub async fn materials(
    conn: &mut AnyConnection,
    pii: &PiiKeyring,
    no: &str,
) -> Result<Vec<Material>> {
    let rows = sqlx::query(
        "SELECT id, checklist_code, file_name, media_type, size, blake3, source, received_at_ms \
         FROM ext_case_materials WHERE application_no = $1 ORDER BY received_at_ms, id",
    )
    .bind(no)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| -> Result<Material> {
            let id: String = row.try_get("id")?;
            let stored: String = row.try_get("file_name")?;
            let file_name = if is_sealed_text(&stored) {
                db::open(pii, FILE_NAME_FIELD, &file_name_ctx(&id), &stored)?
            } else {
                stored
            };
            Ok(Material {
                id,
                checklist_code: row.try_get("checklist_code")?,
                file_name,
                media_type: row.try_get("media_type")?,
                size: row.try_get("size")?,
                blake3: row.try_get("blake3")?,
                source: row.try_get("source")?,
                received_at_ms: row.try_get("received_at_ms")?,
            })
        })
        .collect()
}

/// The timeline of a case, oldest first, reasons opened.
pub async fn events(conn: &mut AnyConnection, pii: &PiiKeyring, no: &str) -> Result<Vec<Event>> {
    let rows = sqlx::query(
        "SELECT e.id, e.staff_id, s.display_name, e.action, e.from_status, e.to_status, e.reason, \
         e.at_ms, e.audit_index, e.opinion_sealed FROM ext_case_events e LEFT JOIN ext_staff s ON s.id = e.staff_id \
         WHERE e.application_no = $1 ORDER BY e.at_ms, e.id",
    )
    .bind(no)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| -> Result<Event> {
            let id: String = row.try_get("id")?;
            Ok(Event {
                reason: open_reason(pii, &event_reason_ctx(&id), row.try_get("reason")?)?,
                id,
                staff_id: row.try_get("staff_id")?,
                staff_name: row.try_get("display_name")?,
                action: row.try_get("action")?,
                from_status: row.try_get("from_status")?,
                to_status: row.try_get("to_status")?,
                at_ms: row.try_get("at_ms")?,
                audit_index: row.try_get("audit_index")?,
                opinion_sealed: row.try_get("opinion_sealed")?,
            })
        })
        .collect()
}

/// Writes a timeline event (in the caller's transaction); the reason is sealed.
#[allow(clippy::too_many_arguments)]
pub async fn insert_event(
    conn: &mut AnyConnection,
    pii: &PiiKeyring,
    no: &str,
    district: Option<&str>,
    staff_id: Option<&str>,
    action: &str,
    from: Option<CaseStatus>,
    to: Option<CaseStatus>,
    reason: Option<&str>,
    at_ms: i64,
) -> Result<String> {
    let id = ow_store::new_id();
    sqlx::query(
        "INSERT INTO ext_case_events (id, application_no, district_code, staff_id, action, \
         from_status, to_status, reason, at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(no)
    .bind(district)
    .bind(staff_id)
    .bind(action)
    .bind(from.map(CaseStatus::code))
    .bind(to.map(CaseStatus::code))
    .bind(reason.map(|r| db::seal(pii, REASON_FIELD, &event_reason_ctx(&id), r)))
    .bind(at_ms)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// The Chinese label of an event action.
pub fn action_zh(action: &str) -> &'static str {
    match action {
        "case.submitted" => "收到网上申请",
        "case.supplemented" => "收到补正材料",
        "case.import-refused" => "申请内容无法接收",
        "case.accept" => "受理",
        "case.refuse" => "不予受理",
        "case.refuse-registration" => "不予登记",
        "case.request-supplement" => "要求补正",
        "case.review" => "审核通过",
        "case.record" => "登簿",
        "case.prepare-certificate" => "缮证",
        "case.issue" => "发证办结",
        "case.survey-sent" => "权籍调查成果送业务内网审核（单向光闸）",
        "case.survey-sent-on-media" => "权籍调查成果送业务内网审核（涉密，光盘摆渡）",
        "case.survey-approved" => "权籍调查审核通过",
        "case.survey-rejected" => "权籍调查审核未通过",
        "case.survey-reviewed-late" => "收到权籍调查审核结果（业务已结束，未变更状态）",
        "case.unit-page" => "填写新单元登簿信息",
        VIEW_PERSONAL_DATA => "查阅完整姓名和证件号码",
        _ => "其他",
    }
}
