//! Applications (二手房转移登记, 首次登记; the business is the draft's, see
//! `crate::business`): drafts (the form sealed as one value), materials, the
//! "check your answers" view, submission (application number + outbox message in one
//! transaction), the list and the detail with its timeline, and supplements (补正).
//!
//! Every query is scoped by the citizen's account id: another citizen's application, draft or
//! file is simply not found.

use ow_domain::{
    BusinessType, CaseStatus, CertificateNumber, IdNumber, PersonName, PhoneNumber, Share, UnitCode,
};
use ow_exchange::{
    ApplicationSubmitted, MaterialRef, Message, OutboundFile, Party, SupplementSubmitted,
};
use ow_pii::{Field, Sealed};
use serde::{Deserialize, Serialize};
use sqlx::Row;

use crate::app::{App, OUTBOUND};
use crate::error::{AppError, FieldError};
use crate::files::AcceptedFile;

/// Most sellers or buyers on one application.
pub const MAX_PARTIES: usize = 10;

const FORM_FIELD: Field = Field::Other("application-form");
const FILE_NAME_FIELD: Field = Field::Other("material-file-name");
const NOTE_FIELD: Field = Field::Other("supplement-note");
/// A registrar's reason (refusals and supplement requests quote file names and people).
const REASON_FIELD: Field = Field::Other("status-reason");

/// The sealing context of an application's current status reason.
fn status_reason_ctx(application_id: &str) -> Vec<u8> {
    format!("inet_applications:{application_id}:status_reason").into_bytes()
}

/// The sealing context of a timeline entry's reason: the entry's unique key.
fn timeline_reason_ctx(application_id: &str, status: &str, changed_at_ms: i64) -> Vec<u8> {
    format!("inet_timeline:{application_id}:{status}:{changed_at_ms}").into_bytes()
}

/// Seals an application's status reason for `inet_applications.status_reason`.
pub(crate) fn seal_status_reason(
    app_pii: &ow_pii::PiiKeyring,
    application_id: &str,
    reason: Option<&str>,
) -> Option<String> {
    reason.map(|r| {
        app_pii
            .seal(
                REASON_FIELD,
                &status_reason_ctx(application_id),
                r.as_bytes(),
            )
            .to_text()
    })
}

/// Opens a stored reason. A value that is not sealed (written in clear by an earlier version
/// and not yet sealed at start, see [`seal_stored_reasons`]) is returned as it is.
fn open_reason(
    pii: &ow_pii::PiiKeyring,
    context: &[u8],
    stored: Option<String>,
) -> Result<Option<String>, AppError> {
    match stored {
        Some(text) if text.starts_with("v1.") => Ok(Some(
            pii.open_string(REASON_FIELD, context, &Sealed::from_text(&text)?)?
                .to_string(),
        )),
        other => Ok(other),
    }
}

/// Seals the reasons an earlier version stored in clear (status reasons and timeline reasons).
/// Run at start; returns how many values were sealed.
pub async fn seal_stored_reasons(app: &App) -> Result<usize, AppError> {
    let mut sealed = 0;
    let rows = sqlx::query(
        "SELECT id, status_reason FROM inet_applications \
         WHERE status_reason IS NOT NULL AND status_reason NOT LIKE 'v1.%'",
    )
    .fetch_all(app.store.reader())
    .await?;
    for r in &rows {
        let id: String = r.try_get("id")?;
        let reason: String = r.try_get("status_reason")?;
        sqlx::query(
            "UPDATE inet_applications SET status_reason = $1 WHERE id = $2 AND status_reason = $3",
        )
        .bind(seal_status_reason(&app.pii, &id, Some(&reason)))
        .bind(&id)
        .bind(&reason)
        .execute(app.store.writer())
        .await?;
        sealed += 1;
    }
    let rows = sqlx::query(
        "SELECT id, application_id, status, changed_at_ms, reason FROM inet_timeline \
         WHERE reason IS NOT NULL AND reason NOT LIKE 'v1.%'",
    )
    .fetch_all(app.store.reader())
    .await?;
    for r in &rows {
        let id: String = r.try_get("id")?;
        let application_id: String = r.try_get("application_id")?;
        let status: String = r.try_get("status")?;
        let changed_at_ms: i64 = r.try_get("changed_at_ms")?;
        let reason: String = r.try_get("reason")?;
        let value = app
            .pii
            .seal(
                REASON_FIELD,
                &timeline_reason_ctx(&application_id, &status, changed_at_ms),
                reason.as_bytes(),
            )
            .to_text();
        sqlx::query("UPDATE inet_timeline SET reason = $1 WHERE id = $2 AND reason = $3")
            .bind(value)
            .bind(&id)
            .bind(&reason)
            .execute(app.store.writer())
            .await?;
        sealed += 1;
    }
    Ok(sealed)
}

/// A seller or buyer as typed (not yet validated).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PartyInput {
    /// 姓名.
    #[serde(default)]
    pub name: String,
    /// 身份证号码.
    #[serde(default)]
    pub id_number: String,
    /// 联系电话 (optional).
    #[serde(default)]
    pub phone: String,
    /// 份额: `1/2`, `0.5` or `50%`.
    #[serde(default)]
    pub share: String,
}

impl std::fmt::Debug for PartyInput {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartyInput")
            .field("name", &ow_domain::mask::mask_name(&self.name))
            .field(
                "id_number",
                &ow_domain::mask::mask_id_number(&self.id_number),
            )
            .field("phone", &ow_domain::mask::mask_phone(&self.phone))
            .field("share", &self.share)
            .finish_non_exhaustive()
    }
}

impl PartyInput {
    /// Whether nothing was typed in the row.
    pub fn is_blank(&self) -> bool {
        self.name.trim().is_empty()
            && self.id_number.trim().is_empty()
            && self.phone.trim().is_empty()
            && self.share.trim().is_empty()
    }
}

/// The application form as typed (a draft, or the JSON of an API submission).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApplicationForm {
    /// 不动产单元代码 (28 characters); give this or the certificate number.
    #[serde(default)]
    pub unit_code: String,
    /// 不动产权证书号 of the seller's certificate.
    #[serde(default)]
    pub certificate_number: String,
    /// 成交价格 in yuan, e.g. `1250000` or `1250000.50`.
    #[serde(default)]
    pub price_yuan: String,
    /// 义务人 (sellers).
    #[serde(default)]
    pub sellers: Vec<PartyInput>,
    /// 权利人 (buyers; for a first registration, the applicants).
    #[serde(default)]
    pub buyers: Vec<PartyInput>,
    /// The district (区县代码) handling a first registration given without a land certificate
    /// number; ignored otherwise.
    #[serde(default)]
    pub district_code: String,
}

/// Which side of the transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// 义务人.
    Seller,
    /// 权利人.
    Buyer,
}

impl Side {
    /// `seller` / `buyer`: the prefix of form field names.
    pub fn key(self) -> &'static str {
        match self {
            Side::Seller => "seller",
            Side::Buyer => "buyer",
        }
    }

    /// 出卖人（义务人） / 买受人（权利人）.
    pub fn name_zh(self) -> &'static str {
        match self {
            Side::Seller => "出卖人（义务人）",
            Side::Buyer => "买受人（权利人）",
        }
    }

    /// 出卖人 / 买受人.
    pub fn short_zh(self) -> &'static str {
        match self {
            Side::Seller => "出卖人",
            Side::Buyer => "买受人",
        }
    }

    /// `sellers` / `buyers`: the field of errors about the side as a whole (none named, shares
    /// not summing to 1, too many).
    pub fn list_field(self) -> &'static str {
        match self {
            Side::Seller => "sellers",
            Side::Buyer => "buyers",
        }
    }

    /// The side named by [`key`](Self::key).
    pub fn from_key(key: &str) -> Option<Side> {
        match key {
            "seller" => Some(Side::Seller),
            "buyer" => Some(Side::Buyer),
            _ => None,
        }
    }

    /// The rows of this side in `form`.
    pub fn rows(self, form: &ApplicationForm) -> &Vec<PartyInput> {
        match self {
            Side::Seller => &form.sellers,
            Side::Buyer => &form.buyers,
        }
    }

    /// The rows of this side in `form`, to change.
    pub fn rows_mut(self, form: &mut ApplicationForm) -> &mut Vec<PartyInput> {
        match self {
            Side::Seller => &mut form.sellers,
            Side::Buyer => &mut form.buyers,
        }
    }
}

/// A form that passed every check.
#[derive(Debug, Clone)]
pub struct ValidApplication {
    /// The business.
    pub business: BusinessType,
    /// The unit code, when given.
    pub unit_code: Option<UnitCode>,
    /// The seller's certificate number, when given.
    pub certificate_number: Option<CertificateNumber>,
    /// The district that handles it.
    pub district_code: String,
    /// Sellers.
    pub sellers: Vec<Party>,
    /// Buyers.
    pub buyers: Vec<Party>,
    /// Price in fen.
    pub price_fen: i64,
}

/// Checks the unit part: a unit code or a certificate number (or both), and finds the district.
pub fn check_unit(
    form: &ApplicationForm,
    app: &App,
) -> Result<(Option<UnitCode>, Option<CertificateNumber>, String), Vec<FieldError>> {
    let mut errors = Vec::new();
    let unit_text = form.unit_code.trim();
    let cert_text = form.certificate_number.trim();
    if unit_text.is_empty() && cert_text.is_empty() {
        errors.push(FieldError::new(
            "unit_code",
            "请填写不动产单元代码，或填写出卖人持有的不动产权证书号",
        ));
        return Err(errors);
    }
    let unit = if unit_text.is_empty() {
        None
    } else {
        UnitCode::parse(unit_text)
            .map_err(|e| errors.push(FieldError::new("unit_code", e.message_zh())))
            .ok()
    };
    let cert = if cert_text.is_empty() {
        None
    } else {
        CertificateNumber::parse(cert_text)
            .map_err(|e| errors.push(FieldError::new("certificate_number", e.message_zh())))
            .ok()
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let district = if let Some(u) = &unit {
        u.county_code().to_owned()
    } else if let Some(c) = &cert {
        match app.settings.district_of_county(c.county()) {
            Some(d) => d.to_owned(),
            None => {
                return Err(vec![FieldError::new(
                    "certificate_number",
                    format!(
                        "本平台暂不受理{}的业务，请填写不动产单元代码或到不动产所在地登记机构办理",
                        c.county()
                    ),
                )]);
            }
        }
    } else {
        return Err(vec![FieldError::new("unit_code", "请填写不动产单元代码")]);
    };
    if !app.settings.counties.values().any(|d| *d == district) {
        return Err(vec![FieldError::new(
            if unit.is_some() {
                "unit_code"
            } else {
                "certificate_number"
            },
            "该不动产不在本平台受理的区县范围内，请到不动产所在地登记机构办理",
        )]);
    }
    Ok((unit, cert, district))
}

/// Checks the unit part of a new unit (首次登记): no unit code (the surveyor assigns it); the
/// land-use certificate number is optional and, when given, names the district; otherwise the
/// district is the one chosen (or the only one the portal serves).
pub fn check_new_unit(
    form: &ApplicationForm,
    app: &App,
) -> Result<(Option<UnitCode>, Option<CertificateNumber>, String), Vec<FieldError>> {
    let cert_text = form.certificate_number.trim();
    if !cert_text.is_empty() {
        let cert = CertificateNumber::parse(cert_text)
            .map_err(|e| vec![FieldError::new("certificate_number", e.message_zh())])?;
        let Some(district) = app.settings.district_of_county(cert.county()) else {
            return Err(vec![FieldError::new(
                "certificate_number",
                format!(
                    "本平台暂不受理{}的业务，请核对证书号，或到不动产所在地登记机构办理",
                    cert.county()
                ),
            )]);
        };
        return Ok((None, Some(cert), district.to_owned()));
    }
    let mut districts: Vec<&String> = app.settings.counties.values().collect();
    districts.sort();
    districts.dedup();
    let chosen = form.district_code.trim();
    if !chosen.is_empty() {
        return match districts.iter().find(|d| d.as_str() == chosen) {
            Some(d) => Ok((None, None, (*d).clone())),
            None => Err(vec![FieldError::new(
                "district_code",
                "该区县不在本平台受理范围内，请重新选择，或到不动产所在地登记机构办理",
            )]),
        };
    }
    match districts.as_slice() {
        [only] => Ok((None, None, (*only).clone())),
        _ => Err(vec![FieldError::new(
            "district_code",
            "请选择不动产所在区县，或填写国有建设用地使用权证书号",
        )]),
    }
}

/// Parses a price in yuan (up to two decimals) into fen.
pub fn parse_price_fen(text: &str) -> Result<i64, FieldError> {
    let err = |m: &str| FieldError::new("price_yuan", m);
    let t: String = text
        .trim()
        .chars()
        .filter(|c| *c != ',' && *c != '，')
        .collect();
    if t.is_empty() {
        return Err(err("请填写成交价格（元）"));
    }
    let (whole, frac) = t.split_once('.').unwrap_or((&t, ""));
    if whole.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 2
    {
        return Err(err(
            "成交价格应为数字（元），最多两位小数，例如 1250000 或 1250000.50",
        ));
    }
    if whole.len() > 12 {
        return Err(err("成交价格过大，请核对后重新填写"));
    }
    let whole: i64 = whole.parse().map_err(|_| err("成交价格格式不正确"))?;
    let mut frac_fen: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| err("成交价格格式不正确"))?
    };
    if frac.len() == 1 {
        frac_fen *= 10;
    }
    let fen = whole * 100 + frac_fen;
    if fen <= 0 {
        return Err(err("成交价格应大于零"));
    }
    Ok(fen)
}

/// One person as typed, checked: the errors' fields are `name`, `id_number`, `phone` and
/// `share` (the fields of the one-person page). A blank share is allowed here (`None`): whether
/// it may stay blank depends on how many people the side has, which [`check_side`] decides.
pub fn check_person(row: &PartyInput) -> Result<(Party, Option<Share>), Vec<FieldError>> {
    let mut errors = Vec::new();
    let name = PersonName::parse(&row.name)
        .map_err(|e| errors.push(FieldError::new("name", e.message_zh())))
        .ok();
    let id = IdNumber::parse(&row.id_number)
        .map_err(|e| errors.push(FieldError::new("id_number", e.message_zh())))
        .ok();
    let phone = if row.phone.trim().is_empty() {
        Some(None)
    } else {
        PhoneNumber::parse(&row.phone)
            .map(Some)
            .map_err(|e| errors.push(FieldError::new("phone", e.message_zh())))
            .ok()
    };
    let share = if row.share.trim().is_empty() {
        Some(None)
    } else {
        Share::parse(&row.share)
            .map(Some)
            .map_err(|e| errors.push(FieldError::new("share", e.message_zh())))
            .ok()
    };
    match (name, id, phone, share) {
        (Some(name), Some(id), Some(phone), Some(share)) if errors.is_empty() => Ok((
            Party {
                name: name.as_str().to_owned(),
                id_type: "1".into(),
                id_number: id.as_str().to_owned(),
                phone: phone.map(|p| p.as_str().to_owned()),
                share: share.map(|s| s.to_string()).unwrap_or_default(),
            },
            share,
        )),
        _ => Err(errors),
    }
}

/// Checks one side's rows: at least one person, each row complete and valid, no person twice,
/// shares summing to exactly 1. A person alone on their side may leave the share blank: they
/// hold all of it. Errors of a row are named `{side}_{index}_{field}` (index from 0); errors
/// of the side as a whole are named by [`Side::list_field`].
pub fn check_side(rows: &[PartyInput], side: Side) -> Result<Vec<Party>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut parties = Vec::new();
    let mut shares = Vec::new();
    let mut seen_ids = Vec::new();
    let filled = rows.iter().filter(|r| !r.is_blank()).count();
    for (i, row) in rows.iter().enumerate() {
        if row.is_blank() {
            continue;
        }
        let who = format!("第{}位{}", i + 1, side.name_zh());
        let field = |name: &str| format!("{}_{i}_{name}", side.key());
        match check_person(row) {
            Err(e) => errors.extend(
                e.into_iter()
                    .map(|e| FieldError::new(field(&e.field), format!("{who}：{}", e.message))),
            ),
            Ok((mut party, share)) => {
                if seen_ids.contains(&party.id_number) {
                    errors.push(FieldError::new(
                        field("id_number"),
                        format!("{who}：同一人不能重复填写"),
                    ));
                }
                seen_ids.push(party.id_number.clone());
                let share = match share {
                    Some(share) => share,
                    None if filled == 1 => {
                        let whole = Share::parse("1")
                            .map_err(|_| vec![FieldError::new(field("share"), "份额格式不正确")])?;
                        party.share = whole.to_string();
                        whole
                    }
                    None => {
                        errors.push(FieldError::new(
                            field("share"),
                            format!("{who}：请填写份额（{}不止一位）", side.short_zh()),
                        ));
                        continue;
                    }
                };
                shares.push(share);
                parties.push(party);
            }
        }
    }
    if parties.is_empty() && errors.is_empty() {
        errors.push(FieldError::new(
            side.list_field(),
            format!("请至少添加一位{}", side.name_zh()),
        ));
    }
    if filled > MAX_PARTIES {
        errors.push(FieldError::new(
            side.list_field(),
            format!("{}最多{}位", side.name_zh(), MAX_PARTIES),
        ));
    }
    if errors.is_empty() && !Share::sum_is_one(&shares) {
        errors.push(FieldError::new(
            side.list_field(),
            format!(
                "{}的份额之和必须等于1（例如两人各 1/2），请修改各人的份额",
                side.name_zh()
            ),
        ));
    }
    if errors.is_empty() {
        Ok(parties)
    } else {
        Err(errors)
    }
}

/// What kind of transfer the checked parties describe (`ow_domain::parties`): a sale, a buyout
/// between co-owners, a change of shares or a partial sale; buyers who are exactly the sellers,
/// share for share, are refused.
pub fn transfer_kind(
    sellers: &[Party],
    buyers: &[Party],
) -> Result<ow_domain::TransferKind, ow_domain::SameAsSellers> {
    let keyed = |parties: &[Party]| -> Vec<(String, Share)> {
        parties
            .iter()
            .filter_map(|p| Some((p.id_number.clone(), Share::parse(&p.share).ok()?)))
            .collect()
    };
    ow_domain::classify_transfer(&keyed(sellers), &keyed(buyers))
}

/// Checks the whole form.
pub fn check_form(
    form: &ApplicationForm,
    business: BusinessType,
    app: &App,
) -> Result<ValidApplication, Vec<FieldError>> {
    let profile = crate::business::profile(business);
    let mut errors = Vec::new();
    let unit = if profile.unit_required {
        check_unit(form, app)
    } else {
        check_new_unit(form, app)
    }
    .map_err(|e| errors.extend(e))
    .ok();
    let price = if profile.has_price {
        parse_price_fen(&form.price_yuan)
            .map_err(|e| errors.push(e))
            .ok()
    } else {
        Some(0)
    };
    let sellers = if profile.has_sellers {
        check_side(&form.sellers, Side::Seller)
            .map_err(|e| errors.extend(e))
            .ok()
    } else {
        Some(Vec::new())
    };
    let buyers = check_side(&form.buyers, Side::Buyer)
        .map_err(|e| errors.extend(e))
        .ok();
    if profile.has_sellers
        && let (Some(sellers), Some(buyers)) = (&sellers, &buyers)
        && let Err(e) = transfer_kind(sellers, buyers)
    {
        errors.push(FieldError::new(
            format!("{}_0_id_number", Side::Buyer.key()),
            e.message_zh(),
        ));
    }
    match (unit, price, sellers, buyers) {
        (
            Some((unit_code, certificate_number, district_code)),
            Some(price_fen),
            Some(sellers),
            Some(buyers),
        ) if errors.is_empty() => Ok(ValidApplication {
            business,
            unit_code,
            certificate_number,
            district_code,
            sellers,
            buyers,
            price_fen,
        }),
        _ => Err(errors),
    }
}

/// A stored material (file metadata; the name opened).
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct MaterialView {
    /// Material id.
    pub id: String,
    /// Checklist code.
    pub checklist_code: String,
    /// Checklist title in Chinese.
    pub checklist_name: String,
    /// The file name as uploaded (made safe).
    pub file_name: String,
    /// Media type sniffed from the bytes.
    pub media_type: String,
    /// Size in bytes.
    pub size: i64,
    /// BLAKE3, hex.
    #[serde(skip)]
    pub blake3: String,
    /// Whether it came with a supplement.
    pub supplement: bool,
    /// Whether the back office has confirmed receiving it; the portal then no longer keeps the
    /// file.
    pub delivered: bool,
}

impl std::fmt::Debug for MaterialView {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MaterialView")
            .field("id", &self.id)
            .field("checklist_code", &self.checklist_code)
            .field("media_type", &self.media_type)
            .field("size", &self.size)
            .field("supplement", &self.supplement)
            .field("delivered", &self.delivered)
            .finish_non_exhaustive()
    }
}

/// A draft or application row (without the opened form). `Debug` does not show the reason.
#[derive(Clone)]
pub struct ApplicationRow {
    /// Internal id (drafts are addressed by it).
    pub id: String,
    /// The business applied for.
    pub business: BusinessType,
    /// The application number once submitted.
    pub application_no: Option<String>,
    /// `draft` or `submitted`.
    pub state: String,
    /// Current status code once submitted.
    pub status: Option<String>,
    /// The registrar's latest reason.
    pub status_reason: Option<String>,
    /// Checklist codes the registrar asked for (补正).
    pub requested_materials: Vec<String>,
    /// District.
    pub district_code: Option<String>,
    /// Created.
    pub created_at_ms: i64,
    /// Submitted.
    pub submitted_at_ms: Option<i64>,
    form_sealed: String,
}

impl std::fmt::Debug for ApplicationRow {
    /// The registrar's reason may quote people: not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApplicationRow")
            .field("id", &self.id)
            .field("business", &self.business.code())
            .field("application_no", &self.application_no)
            .field("state", &self.state)
            .field("status", &self.status)
            .field("requested_materials", &self.requested_materials)
            .field("district_code", &self.district_code)
            .field("created_at_ms", &self.created_at_ms)
            .field("submitted_at_ms", &self.submitted_at_ms)
            .finish_non_exhaustive()
    }
}

impl ApplicationRow {
    /// The status, parsed.
    pub fn case_status(&self) -> Option<CaseStatus> {
        self.status.as_deref().and_then(CaseStatus::from_code)
    }
}

/// The timeline status of the back office's receipt of a submission or a supplement
/// (登记机构已收到): a step of its own, not a change of the case's status.
pub const RECEIVED: &str = "received";

/// One entry of the status timeline.
#[derive(Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// Status code (`submitted`, `accepted`, `supplement_requested`, …), or `received` for
    /// the back office's receipt of the materials.
    pub status: String,
    /// 受理 / 补正 / …
    pub status_zh: String,
    /// The registrar's reason, if any.
    pub reason: Option<String>,
    /// Checklist codes asked for.
    pub requested_materials: Vec<String>,
    /// When, Unix milliseconds.
    pub changed_at_ms: i64,
}

impl std::fmt::Debug for TimelineEntry {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimelineEntry")
            .field("status", &self.status)
            .field("requested_materials", &self.requested_materials)
            .field("changed_at_ms", &self.changed_at_ms)
            .finish_non_exhaustive()
    }
}

fn form_ctx(id: &str) -> Vec<u8> {
    format!("inet_applications:{id}").into_bytes()
}

fn material_ctx(id: &str) -> Vec<u8> {
    format!("inet_materials:{id}").into_bytes()
}

macro_rules! row_columns {
    () => {
        "id, business_type, application_no, state, status, status_reason, requested_materials, \
         district_code, created_at_ms, submitted_at_ms, form_sealed"
    };
}

fn row_of(pii: &ow_pii::PiiKeyring, r: &sqlx::any::AnyRow) -> Result<ApplicationRow, AppError> {
    let requested: Option<String> = r.try_get("requested_materials")?;
    let id: String = r.try_get("id")?;
    let business: String = r.try_get("business_type")?;
    Ok(ApplicationRow {
        business: BusinessType::from_code(&business).ok_or_else(|| {
            AppError::Corrupt(format!(
                "application {id}: unknown business type {business}"
            ))
        })?,
        status_reason: open_reason(pii, &status_reason_ctx(&id), r.try_get("status_reason")?)?,
        id,
        application_no: r.try_get("application_no")?,
        state: r.try_get("state")?,
        status: r.try_get("status")?,
        requested_materials: requested
            .map(|t| serde_json::from_str(&t))
            .transpose()?
            .unwrap_or_default(),
        district_code: r.try_get("district_code")?,
        created_at_ms: r.try_get("created_at_ms")?,
        submitted_at_ms: r.try_get("submitted_at_ms")?,
        form_sealed: r.try_get("form_sealed")?,
    })
}

/// Creates a draft for the citizen holding `form` (empty, or prefilled); returns its id.
pub async fn create_draft(
    app: &App,
    account_id: &str,
    business: BusinessType,
    form: &ApplicationForm,
    now_ms: i64,
) -> Result<String, AppError> {
    let id = ow_store::new_id();
    let sealed = seal_form(app, &id, form)?;
    sqlx::query(
        "INSERT INTO inet_applications (id, account_id, business_type, state, form_sealed, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, 'draft', $4, $5, $5)",
    )
    .bind(&id)
    .bind(account_id)
    .bind(business.code())
    .bind(sealed)
    .bind(now_ms)
    .execute(app.store.writer())
    .await?;
    tracing::info!(account = %account_id, draft = %id, "draft created");
    Ok(id)
}

fn seal_form(app: &App, id: &str, form: &ApplicationForm) -> Result<String, AppError> {
    let json = serde_json::to_vec(form)?;
    Ok(app.pii.seal(FORM_FIELD, &form_ctx(id), &json).to_text())
}

/// Opens the form stored with a row.
pub fn open_form(app: &App, row: &ApplicationRow) -> Result<ApplicationForm, AppError> {
    let sealed = Sealed::from_text(&row.form_sealed)?;
    let bytes = app.pii.open(FORM_FIELD, &form_ctx(&row.id), &sealed)?;
    Ok(serde_json::from_slice(&bytes)?)
}

/// The citizen's draft with this id (`None` if it is not theirs, not a draft, or not there).
pub async fn get_draft(
    app: &App,
    account_id: &str,
    id: &str,
) -> Result<Option<ApplicationRow>, AppError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        row_columns!(),
        " FROM inet_applications WHERE id = $1 AND account_id = $2 AND state = 'draft'"
    ))
    .bind(id)
    .bind(account_id)
    .fetch_optional(app.store.reader())
    .await?;
    row.as_ref().map(|r| row_of(&app.pii, r)).transpose()
}

/// The citizen's submitted application with this number.
pub async fn get_application(
    app: &App,
    account_id: &str,
    application_no: &str,
) -> Result<Option<ApplicationRow>, AppError> {
    let row = sqlx::query(concat!(
        "SELECT ",
        row_columns!(),
        " FROM inet_applications WHERE application_no = $1 AND account_id = $2 AND state = 'submitted'"
    ))
    .bind(application_no)
    .bind(account_id)
    .fetch_optional(app.store.reader())
    .await?;
    row.as_ref().map(|r| row_of(&app.pii, r)).transpose()
}

/// The citizen's drafts and applications, newest first.
pub async fn list(app: &App, account_id: &str) -> Result<Vec<ApplicationRow>, AppError> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        row_columns!(),
        " FROM inet_applications WHERE account_id = $1 ORDER BY created_at_ms DESC, id DESC"
    ))
    .bind(account_id)
    .fetch_all(app.store.reader())
    .await?;
    rows.iter().map(|r| row_of(&app.pii, r)).collect()
}

/// Saves the form of a draft (sealed). `false` if the draft is not the citizen's.
pub async fn save_draft(
    app: &App,
    account_id: &str,
    id: &str,
    form: &ApplicationForm,
    now_ms: i64,
) -> Result<bool, AppError> {
    let sealed = seal_form(app, id, form)?;
    let done = sqlx::query(
        "UPDATE inet_applications SET form_sealed = $1, updated_at_ms = $2 WHERE id = $3 AND account_id = $4 AND state = 'draft'",
    )
    .bind(sealed)
    .bind(now_ms)
    .bind(id)
    .bind(account_id)
    .execute(app.store.writer())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes a draft, its material rows and their files.
pub async fn delete_draft(app: &App, account_id: &str, id: &str) -> Result<bool, AppError> {
    let mut tx = app.store.begin().await?;
    let owned = sqlx::query(
        "SELECT id FROM inet_applications WHERE id = $1 AND account_id = $2 AND state = 'draft'",
    )
    .bind(id)
    .bind(account_id)
    .fetch_optional(&mut *tx)
    .await?;
    if owned.is_none() {
        return Ok(false);
    }
    let files: Vec<String> =
        sqlx::query_scalar("SELECT id FROM inet_materials WHERE application_id = $1")
            .bind(id)
            .fetch_all(&mut *tx)
            .await?;
    sqlx::query("DELETE FROM inet_materials WHERE application_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM inet_applications WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    app.files.remove(files).await?;
    Ok(true)
}

/// Materials of an application (all, or only the originals / one supplement).
pub async fn materials(app: &App, application_id: &str) -> Result<Vec<MaterialView>, AppError> {
    let rows = sqlx::query(
        "SELECT id, supplement_id, checklist_code, file_name_sealed, media_type, size, blake3, delivered_at_ms \
         FROM inet_materials WHERE application_id = $1 ORDER BY created_at_ms, id",
    )
    .bind(application_id)
    .fetch_all(app.store.reader())
    .await?;
    // A checklist code names the same item in every business.
    let checklist = BusinessType::ALL
        .iter()
        .flat_map(|b| b.required_materials().iter());
    rows.iter()
        .map(|r| {
            let id: String = r.try_get("id")?;
            let code: String = r.try_get("checklist_code")?;
            let sealed: String = r.try_get("file_name_sealed")?;
            let name = app
                .pii
                .open_string(
                    FILE_NAME_FIELD,
                    &material_ctx(&id),
                    &Sealed::from_text(&sealed)?,
                )?
                .to_string();
            let supplement: Option<String> = r.try_get("supplement_id")?;
            let delivered: Option<i64> = r.try_get("delivered_at_ms")?;
            Ok(MaterialView {
                checklist_name: checklist
                    .clone()
                    .find(|m| m.code == code)
                    .map(|m| m.name_zh.to_owned())
                    .unwrap_or_else(|| code.clone()),
                checklist_code: code,
                file_name: name,
                media_type: r.try_get("media_type")?,
                size: r.try_get("size")?,
                blake3: r.try_get("blake3")?,
                supplement: supplement.is_some(),
                delivered: delivered.is_some(),
                id,
            })
        })
        .collect()
}

/// Adds the rows of files already stored (see [`crate::files::FileStore::put_accepted`]) inside
/// `tx`.
async fn add_materials(
    app: &App,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    application_id: &str,
    supplement_id: Option<&str>,
    files: &[(String, AcceptedFile)],
    now_ms: i64,
) -> Result<Vec<String>, AppError> {
    let mut ids = Vec::new();
    for (id, f) in files {
        let id = id.clone();
        let sealed = app
            .pii
            .seal(
                FILE_NAME_FIELD,
                &material_ctx(&id),
                f.checked.safe_filename.as_bytes(),
            )
            .to_text();
        sqlx::query(
            "INSERT INTO inet_materials (id, application_id, supplement_id, checklist_code, file_name_sealed, media_type, size, blake3, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(application_id)
        .bind(supplement_id)
        .bind(&f.field)
        .bind(sealed)
        .bind(f.checked.media_type)
        .bind(i64::try_from(f.checked.size).unwrap_or(i64::MAX))
        .bind(&f.checked.blake3_hex)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        ids.push(id);
    }
    Ok(ids)
}

/// Most materials one application (or one supplement) may have: what one exchange message may
/// carry to the back office.
pub const MAX_MATERIALS: usize = ow_exchange::MAX_FILES_PER_MESSAGE;

/// Largest total size of the materials of one application (or one supplement).
pub const MAX_MATERIALS_BYTES: u64 = ow_exchange::MAX_FILES_TOTAL_BYTES;

/// Checks that `count` materials of `total` bytes fit in one application: the caps come from
/// the exchange contract, so an application that passes can always travel to the back office.
pub fn check_materials_cap(count: usize, total: u64) -> Result<(), FieldError> {
    if count > MAX_MATERIALS {
        return Err(FieldError::new(
            "file",
            format!(
                "一件申请最多可上传{MAX_MATERIALS}份材料（现有{count}份），请删除重复或不需要的材料后再试"
            ),
        ));
    }
    if total > MAX_MATERIALS_BYTES {
        return Err(FieldError::new(
            "file",
            format!(
                "一件申请的材料合计不能超过{}MB（现为{:.1}MB），请压缩或删除部分材料后再试",
                MAX_MATERIALS_BYTES >> 20,
                total as f64 / (1024.0 * 1024.0)
            ),
        ));
    }
    Ok(())
}

/// Whether the files about to be added to draft `draft_id` keep it within
/// [`check_materials_cap`] (checked again at submit).
pub async fn check_draft_capacity(
    app: &App,
    draft_id: &str,
    adding: &[AcceptedFile],
) -> Result<Result<(), FieldError>, AppError> {
    let have = materials(app, draft_id).await?;
    let count = have.len() + adding.len();
    let total = have
        .iter()
        .map(|m| u64::try_from(m.size).unwrap_or(0))
        .chain(adding.iter().map(|f| f.checked.size))
        .fold(0u64, u64::saturating_add);
    Ok(check_materials_cap(count, total))
}

fn materials_cap_of(mats: &[MaterialView]) -> Result<(), FieldError> {
    let total = mats
        .iter()
        .map(|m| u64::try_from(m.size).unwrap_or(0))
        .fold(0u64, u64::saturating_add);
    check_materials_cap(mats.len(), total)
}

/// Whether `code` is on `business`'s checklist.
pub fn is_checklist_code(business: BusinessType, code: &str) -> bool {
    crate::business::is_checklist_code(business, code)
}

/// Adds checked files to a draft. `false` if the draft is not the citizen's (nothing stored).
pub async fn add_draft_materials(
    app: &App,
    account_id: &str,
    draft_id: &str,
    files: Vec<AcceptedFile>,
    now_ms: i64,
) -> Result<bool, AppError> {
    if get_draft(app, account_id, draft_id).await?.is_none() {
        return Ok(false);
    }
    let files = app.files.put_accepted(files).await?;
    let mut tx = app.store.begin().await?;
    add_materials(app, &mut tx, draft_id, None, &files, now_ms).await?;
    tx.commit().await?;
    Ok(true)
}

/// Removes one material from a draft.
pub async fn remove_draft_material(
    app: &App,
    account_id: &str,
    draft_id: &str,
    material_id: &str,
) -> Result<bool, AppError> {
    if get_draft(app, account_id, draft_id).await?.is_none() {
        return Ok(false);
    }
    let done = sqlx::query("DELETE FROM inet_materials WHERE id = $1 AND application_id = $2")
        .bind(material_id)
        .bind(draft_id)
        .execute(app.store.writer())
        .await?;
    if done.rows_affected() != 1 {
        return Ok(false);
    }
    app.files.remove(vec![material_id.to_owned()]).await?;
    Ok(true)
}

/// The checklist items still missing (required, no file yet).
pub fn missing_materials(
    business: BusinessType,
    have: &[MaterialView],
) -> Vec<&'static ow_domain::Material> {
    business
        .required_materials()
        .iter()
        .filter(|m| m.required && !have.iter().any(|h| h.checklist_code == m.code))
        .collect()
}

/// Why a submission did not go through.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Not the citizen's draft (or already submitted).
    #[error("no such draft")]
    NotFound,
    /// The form or the materials have problems.
    #[error("the application has {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// Something broke.
    #[error(transparent)]
    Internal(#[from] AppError),
}

impl From<sqlx::Error> for SubmitError {
    fn from(e: sqlx::Error) -> Self {
        SubmitError::Internal(e.into())
    }
}

/// The next application number for the day of `now_ms` (Beijing time): `SQ20260302000001`.
async fn next_application_no(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    now_ms: i64,
) -> Result<String, AppError> {
    let day = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .with_timezone(&crate::util::BEIJING)
        .format("%Y%m%d")
        .to_string();
    let name = format!("application:{day}");
    let value: i64 = sqlx::query_scalar(
        "INSERT INTO inet_sequences (name, value) VALUES ($1, 1) \
         ON CONFLICT (name) DO UPDATE SET value = inet_sequences.value + 1 RETURNING value",
    )
    .bind(&name)
    .fetch_one(&mut **tx)
    .await?;
    Ok(format!("SQ{day}{value:06}"))
}

fn outbound_files(
    app: &App,
    materials: &[MaterialView],
) -> Result<(Vec<MaterialRef>, Vec<OutboundFile>), AppError> {
    let mut refs = Vec::new();
    let mut files = Vec::new();
    for (i, m) in materials.iter().enumerate() {
        let ext = match m.media_type.as_str() {
            "application/pdf" => "pdf",
            "image/jpeg" => "jpg",
            "image/png" => "png",
            other => crate::survey::extension_of(other).unwrap_or("bin"),
        };
        let item = format!("m{:02}.{ext}", i + 1);
        let file = app
            .files
            .outbound(&m.id, item.clone(), m.media_type.clone())?;
        refs.push(MaterialRef {
            item: item.clone(),
            checklist_code: m.checklist_code.clone(),
            file_name: m.file_name.clone(),
            media_type: m.media_type.clone(),
            size: u64::try_from(m.size).unwrap_or(0),
            blake3: m.blake3.clone(),
        });
        files.push(file);
    }
    Ok((refs, files))
}

/// Submits a draft: checks the form and the materials, assigns the application number and, in
/// the same transaction, queues `ApplicationSubmitted` for the extranet. Returns the number.
pub async fn submit(
    app: &App,
    account_id: &str,
    draft_id: &str,
    now_ms: i64,
) -> Result<String, SubmitError> {
    let row = get_draft(app, account_id, draft_id)
        .await?
        .ok_or(SubmitError::NotFound)?;
    let form = open_form(app, &row)?;
    let mats = materials(app, draft_id).await?;
    let valid = check_submission(&form, row.business, &mats, app)?;
    let mut tx = app.store.begin().await.map_err(AppError::from)?;
    let no = finish_submission(app, &mut tx, account_id, draft_id, valid, &mats, now_ms).await?;
    tx.commit().await?;
    app.wake_exchange();
    tracing::info!(account = %account_id, application = %no, "application submitted");
    Ok(no)
}

/// Creates and submits an application in one step (the API's single request): the files are
/// stored durably first, then the application, its materials, its number, its timeline and the
/// queued message are one transaction, so a failure leaves no draft behind.
pub async fn submit_new(
    app: &App,
    account_id: &str,
    business: BusinessType,
    form: &ApplicationForm,
    files: Vec<AcceptedFile>,
    now_ms: i64,
) -> Result<String, SubmitError> {
    let valid = check_submission(form, business, &views_of(&files, false), app)?;
    let files = app.files.put_accepted(files).await?;
    let id = ow_store::new_id();
    let sealed = seal_form(app, &id, form)?;
    let mut tx = app.store.begin().await.map_err(AppError::from)?;
    sqlx::query(
        "INSERT INTO inet_applications (id, account_id, business_type, state, form_sealed, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, 'draft', $4, $5, $5)",
    )
    .bind(&id)
    .bind(account_id)
    .bind(business.code())
    .bind(sealed)
    .bind(now_ms)
    .execute(&mut *tx)
    .await?;
    add_materials(app, &mut tx, &id, None, &files, now_ms).await?;
    let mats = views_of(files.iter().map(|(_, f)| f), false);
    let no = finish_submission(app, &mut tx, account_id, &id, valid, &mats, now_ms).await?;
    tx.commit().await?;
    app.wake_exchange();
    tracing::info!(account = %account_id, application = %no, "application submitted");
    Ok(no)
}

/// Gives each accepted file a new material id.
/// How accepted files look as materials.
fn views_of<'a>(
    files: impl IntoIterator<Item = &'a AcceptedFile>,
    supplement: bool,
) -> Vec<MaterialView> {
    files
        .into_iter()
        .map(|f| MaterialView {
            id: f.material_id().to_owned(),
            checklist_code: f.field.clone(),
            checklist_name: String::new(),
            file_name: f.checked.safe_filename.clone(),
            media_type: f.checked.media_type.to_owned(),
            size: i64::try_from(f.checked.size).unwrap_or(i64::MAX),
            blake3: f.checked.blake3_hex.clone(),
            supplement,
            delivered: false,
        })
        .collect()
}

/// The form's and the materials' problems, all at once; or the checked application.
fn check_submission(
    form: &ApplicationForm,
    business: BusinessType,
    mats: &[MaterialView],
    app: &App,
) -> Result<ValidApplication, SubmitError> {
    let mut errors = Vec::new();
    let valid = check_form(form, business, app)
        .map_err(|e| errors.extend(e))
        .ok();
    for m in missing_materials(business, mats) {
        errors.push(FieldError::new(
            format!("material_{}", m.code),
            format!("请上传“{}”", m.name_zh),
        ));
    }
    if let Err(e) = materials_cap_of(mats) {
        errors.push(e);
    }
    valid
        .filter(|_| errors.is_empty())
        .ok_or(SubmitError::Invalid(errors))
}

/// Turns the draft `draft_id` into a submitted application inside `tx`: the day's next number,
/// the timeline's first entry and `ApplicationSubmitted` on the outbox. Returns the number.
async fn finish_submission(
    app: &App,
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    account_id: &str,
    draft_id: &str,
    valid: ValidApplication,
    mats: &[MaterialView],
    now_ms: i64,
) -> Result<String, SubmitError> {
    let (refs, files) = outbound_files(app, mats)?;
    let no = next_application_no(tx, now_ms).await?;
    let done = sqlx::query(
        "UPDATE inet_applications SET state = 'submitted', application_no = $1, status = 'submitted', \
         status_changed_at_ms = $2, district_code = $3, submitted_at_ms = $2, updated_at_ms = $2 \
         WHERE id = $4 AND account_id = $5 AND state = 'draft'",
    )
    .bind(&no)
    .bind(now_ms)
    .bind(&valid.district_code)
    .bind(draft_id)
    .bind(account_id)
    .execute(&mut **tx)
    .await?;
    if done.rows_affected() != 1 {
        return Err(SubmitError::NotFound);
    }
    insert_timeline(
        tx,
        &app.pii,
        draft_id,
        CaseStatus::Submitted.code(),
        None,
        &[],
        now_ms,
    )
    .await?;
    let message = Message::ApplicationSubmitted(ApplicationSubmitted {
        application_no: no.clone(),
        district_code: valid.district_code.clone(),
        business_type: valid.business.code().to_owned(),
        unit_code: valid.unit_code.as_ref().map(|u| u.as_str().to_owned()),
        certificate_number: valid
            .certificate_number
            .as_ref()
            .map(|c| c.as_str().to_owned()),
        sellers: valid.sellers,
        buyers: valid.buyers,
        price_fen: valid.price_fen,
        materials: refs,
        applicant_ref: account_id.to_owned(),
        submitted_at_ms: now_ms,
    });
    let message_id = ow_exchange::enqueue(tx, &app.pii, &OUTBOUND, message, files)
        .await
        .map_err(AppError::from)?;
    sqlx::query(
        "UPDATE inet_materials SET message_id = $1 \
         WHERE application_id = $2 AND supplement_id IS NULL AND message_id IS NULL",
    )
    .bind(&message_id)
    .bind(draft_id)
    .execute(&mut **tx)
    .await?;
    Ok(no)
}

/// Adds a timeline row (idempotent on application, status and time).
pub(crate) async fn insert_timeline(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    pii: &ow_pii::PiiKeyring,
    application_id: &str,
    status: &str,
    reason: Option<&str>,
    requested: &[String],
    changed_at_ms: i64,
) -> Result<(), AppError> {
    let requested = if requested.is_empty() {
        None
    } else {
        Some(serde_json::to_string(requested)?)
    };
    let reason = reason.map(|r| {
        pii.seal(
            REASON_FIELD,
            &timeline_reason_ctx(application_id, status, changed_at_ms),
            r.as_bytes(),
        )
        .to_text()
    });
    sqlx::query(
        "INSERT INTO inet_timeline (id, application_id, status, reason, requested_materials, changed_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (application_id, status, changed_at_ms) DO NOTHING",
    )
    .bind(ow_store::new_id())
    .bind(application_id)
    .bind(status)
    .bind(reason)
    .bind(requested)
    .bind(changed_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The timeline of an application, oldest first.
pub async fn timeline(app: &App, application_id: &str) -> Result<Vec<TimelineEntry>, AppError> {
    let rows = sqlx::query(
        "SELECT status, reason, requested_materials, changed_at_ms FROM inet_timeline \
         WHERE application_id = $1 ORDER BY changed_at_ms, id",
    )
    .bind(application_id)
    .fetch_all(app.store.reader())
    .await?;
    let mut entries = rows
        .iter()
        .map(|r| {
            let status: String = r.try_get("status")?;
            let requested: Option<String> = r.try_get("requested_materials")?;
            let changed_at_ms: i64 = r.try_get("changed_at_ms")?;
            let reason = open_reason(
                &app.pii,
                &timeline_reason_ctx(application_id, &status, changed_at_ms),
                r.try_get("reason")?,
            )?;
            Ok(TimelineEntry {
                status_zh: if status == RECEIVED {
                    "登记机构已收到".to_owned()
                } else {
                    CaseStatus::from_code(&status)
                        .map(|s| s.name_zh().to_owned())
                        .unwrap_or_else(|| status.clone())
                },
                status,
                reason,
                requested_materials: requested
                    .map(|t| serde_json::from_str(&t))
                    .transpose()?
                    .unwrap_or_default(),
                changed_at_ms,
            })
        })
        .collect::<Result<Vec<_>, AppError>>()?;
    // A message about this application that the exchange set aside: the citizen sees it, in
    // plain words, with what to do.
    let no: Option<String> =
        sqlx::query_scalar("SELECT application_no FROM inet_applications WHERE id = $1")
            .bind(application_id)
            .fetch_optional(app.store.reader())
            .await?
            .flatten();
    if let Some(no) = no {
        for letter in ow_exchange::dead_letters_for_case(&app.store, &no).await? {
            entries.push(TimelineEntry {
                status: SET_ASIDE.to_owned(),
                status_zh: "传递暂停".to_owned(),
                reason: Some(set_aside_text(&letter)),
                requested_materials: Vec::new(),
                changed_at_ms: letter.dead_at_ms,
            });
        }
        entries.sort_by_key(|e| e.changed_at_ms);
    }
    Ok(entries)
}

/// The timeline status of a message the exchange set aside.
pub const SET_ASIDE: &str = "set_aside";

/// What the citizen is told when a message about their application was set aside.
fn set_aside_text(letter: &ow_exchange::DeadLetter) -> String {
    let what = match letter.direction {
        ow_exchange::Direction::Outbound => "您提交的内容在发送到登记机构时被暂停",
        ow_exchange::Direction::Inbound => "登记机构发来的办理进度暂时无法在网上显示",
    };
    let todo = match letter.code.as_str() {
        "too-large" | "too-many-files" => {
            "原因是材料过多或过大。请联系登记机构窗口，按工作人员的指引补交材料"
        }
        "control-character" => "原因是填写的内容含有无法识别的字符。请联系登记机构窗口更正",
        _ => "工作人员已收到提示，会在处理后重新发送，您无需重复提交",
    };
    format!("{what}（编号 {}）。{todo}。", letter.id)
}

/// Sends supplement materials for an application in status 补正. Returns the supplement id.
pub async fn submit_supplement(
    app: &App,
    account_id: &str,
    application_no: &str,
    note: &str,
    files: Vec<AcceptedFile>,
    now_ms: i64,
) -> Result<String, SubmitError> {
    let row = get_application(app, account_id, application_no)
        .await?
        .ok_or(SubmitError::NotFound)?;
    if row.case_status() != Some(CaseStatus::SupplementRequested) {
        return Err(SubmitError::Invalid(vec![FieldError::new(
            "file",
            "该申请当前不需要补正材料",
        )]));
    }
    if files.is_empty() {
        return Err(SubmitError::Invalid(vec![FieldError::new(
            "file",
            "请至少上传一份补正材料",
        )]));
    }
    let note = note.trim();
    if note.chars().count() > 500 {
        return Err(SubmitError::Invalid(vec![FieldError::new(
            "note",
            "说明不能超过500字",
        )]));
    }
    if note.chars().any(ow_exchange::is_forbidden_control) {
        return Err(SubmitError::Invalid(vec![FieldError::new(
            "note",
            "说明中含有不可见的控制字符，请删除后重新填写（可直接重新输入文字，不要从其他软件粘贴）",
        )]));
    }
    let total = files
        .iter()
        .map(|f| f.checked.size)
        .fold(0u64, u64::saturating_add);
    if let Err(e) = check_materials_cap(files.len(), total) {
        return Err(SubmitError::Invalid(vec![e]));
    }
    let supplement_id = ow_store::new_id();
    let files = app.files.put_accepted(files).await?;
    let mut tx = app.store.begin().await.map_err(AppError::from)?;
    sqlx::query("INSERT INTO inet_supplements (id, application_id, note_sealed, submitted_at_ms) VALUES ($1, $2, $3, $4)")
        .bind(&supplement_id)
        .bind(&row.id)
        .bind(
            app.pii
                .seal(NOTE_FIELD, format!("inet_supplements:{supplement_id}").as_bytes(), note.as_bytes())
                .to_text(),
        )
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    add_materials(app, &mut tx, &row.id, Some(&supplement_id), &files, now_ms).await?;
    // Only this supplement's files travel.
    let mats = views_of(files.iter().map(|(_, f)| f), true);
    let (refs, outbound) = outbound_files(app, &mats)?;
    sqlx::query(
        "UPDATE inet_applications SET status = 'submitted', status_reason = NULL, requested_materials = NULL, \
         status_changed_at_ms = $1, updated_at_ms = $1 WHERE id = $2",
    )
    .bind(now_ms)
    .bind(&row.id)
    .execute(&mut *tx)
    .await?;
    insert_timeline(
        &mut tx,
        &app.pii,
        &row.id,
        CaseStatus::Submitted.code(),
        Some("已提交补正材料"),
        &[],
        now_ms,
    )
    .await?;
    let message = Message::SupplementSubmitted(SupplementSubmitted {
        application_no: application_no.to_owned(),
        note: note.to_owned(),
        materials: refs,
        submitted_at_ms: now_ms,
    });
    let message_id = ow_exchange::enqueue(&mut tx, &app.pii, &OUTBOUND, message, outbound)
        .await
        .map_err(AppError::from)?;
    sqlx::query("UPDATE inet_materials SET message_id = $1 WHERE supplement_id = $2")
        .bind(&message_id)
        .bind(&supplement_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    app.wake_exchange();
    tracing::info!(account = %account_id, application = %application_no, "supplement submitted");
    Ok(supplement_id)
}

/// The file of one material of the citizen's own draft or application, opened as a stream (and
/// its length).
/// `None` if it is not the citizen's; no bytes once the back office has it (the portal keeps
/// materials only until they have crossed).
pub async fn material_file(
    app: &App,
    account_id: &str,
    material_id: &str,
) -> Result<Option<(MaterialView, Option<(axum::body::Body, u64)>)>, AppError> {
    let row = sqlx::query(
        "SELECT m.application_id FROM inet_materials m JOIN inet_applications a ON a.id = m.application_id \
         WHERE m.id = $1 AND a.account_id = $2",
    )
    .bind(material_id)
    .bind(account_id)
    .fetch_optional(app.store.reader())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let application_id: String = row.try_get("application_id")?;
    let Some(m) = materials(app, &application_id)
        .await?
        .into_iter()
        .find(|m| m.id == material_id)
    else {
        return Ok(None);
    };
    if m.delivered {
        return Ok(Some((m, None)));
    }
    let body = app.files.body(&m.id).await?;
    Ok(Some((m, Some(body))))
}

/// Marks the materials carried by outbox message `message_id` as received by the back office,
/// inside `tx`. Returns their ids, whose files the caller removes.
pub(crate) async fn materials_delivered(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    message_id: &str,
    now_ms: i64,
) -> Result<Vec<String>, sqlx::Error> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM inet_materials WHERE message_id = $1 AND delivered_at_ms IS NULL",
    )
    .bind(message_id)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE inet_materials SET delivered_at_ms = $1 WHERE message_id = $2 AND delivered_at_ms IS NULL",
    )
    .bind(now_ms)
    .bind(message_id)
    .execute(&mut **tx)
    .await?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Debug` of everything on the portal that holds a name, an ID number, a phone, a
    /// password, a session token, a file name or a reason shows none of them in clear.
    #[test]
    fn debug_of_personal_data_and_secrets_is_redacted() {
        const NAME: &str = "欧阳明月";
        const ID: &str = "370781199001012345";
        const PHONE: &str = "13800138000";
        const SECRET: &str = "Pa55-word-never-shown";
        let reason = Some(format!("{NAME} {ID} {PHONE}"));
        let timeline = TimelineEntry {
            status: "refused".into(),
            status_zh: "不予受理".into(),
            reason: reason.clone(),
            requested_materials: vec![],
            changed_at_ms: 0,
        };
        let material = MaterialView {
            id: "m1".into(),
            checklist_code: "applicant_identity".into(),
            checklist_name: "申请人身份证明".into(),
            file_name: format!("{NAME}{ID}.pdf"),
            media_type: "application/pdf".into(),
            size: 1,
            blake3: String::new(),
            supplement: false,
            delivered: false,
        };
        let shown = [
            format!(
                "{:?}",
                PartyInput {
                    name: NAME.into(),
                    id_number: ID.into(),
                    phone: PHONE.into(),
                    share: "1/1".into(),
                }
            ),
            format!("{material:?}"),
            format!("{timeline:?}"),
            format!(
                "{:?}",
                ApplicationRow {
                    id: "a1".into(),
                    business: BusinessType::TransferSecondHand,
                    application_no: None,
                    state: "submitted".into(),
                    status: Some("refused".into()),
                    status_reason: reason.clone(),
                    requested_materials: vec![],
                    district_code: None,
                    created_at_ms: 0,
                    submitted_at_ms: None,
                    form_sealed: format!("{NAME} {ID}"),
                }
            ),
            format!(
                "{:?}",
                crate::api::ApplicationView {
                    application_no: "SQ1".into(),
                    business_type: "2000402".into(),
                    status: "refused".into(),
                    status_zh: "不予受理".into(),
                    status_reason: reason,
                    requested_materials: vec![],
                    district_code: None,
                    submitted_at_ms: None,
                    timeline: vec![timeline.clone()],
                    materials: vec![material.clone()],
                }
            ),
            format!(
                "{:?}",
                crate::accounts::RegisterInput {
                    name: NAME.into(),
                    id_number: ID.into(),
                    phone: PHONE.into(),
                    password: SECRET.into(),
                    password_confirm: SECRET.into(),
                }
            ),
            format!(
                "{:?}",
                crate::accounts::Session {
                    account_id: "acc".into(),
                    token: SECRET.into(),
                }
            ),
            format!(
                "{:?}",
                crate::api::LoginRequest {
                    login: ID.into(),
                    password: SECRET.into(),
                }
            ),
        ];
        for text in &shown {
            for clear in [NAME, ID, PHONE, SECRET] {
                assert!(!text.contains(clear), "{clear} shown in {text}");
            }
        }
        assert!(
            shown[0].contains("欧*"),
            "names are shown masked: {}",
            shown[0]
        );
    }

    fn p(name: &str, id: &str, share: &str) -> PartyInput {
        PartyInput {
            name: name.into(),
            id_number: id.into(),
            phone: String::new(),
            share: share.into(),
        }
    }

    #[test]
    fn materials_are_capped_by_what_one_message_may_carry() {
        assert!(check_materials_cap(MAX_MATERIALS, MAX_MATERIALS_BYTES).is_ok());
        let e = check_materials_cap(MAX_MATERIALS + 1, 10).unwrap_err();
        assert!(e.message.contains("最多可上传"), "{}", e.message);
        let e = check_materials_cap(2, MAX_MATERIALS_BYTES + 1).unwrap_err();
        assert!(e.message.contains("合计不能超过256MB"), "{}", e.message);
    }

    #[test]
    fn prices() {
        assert_eq!(parse_price_fen("1250000").unwrap(), 125_000_000);
        assert_eq!(parse_price_fen("1,250,000.5").unwrap(), 125_000_050);
        assert_eq!(parse_price_fen("0.07").unwrap(), 7);
        assert!(parse_price_fen("").is_err());
        assert!(parse_price_fen("0").is_err());
        assert!(parse_price_fen("12.345").is_err());
        assert!(parse_price_fen("-5").is_err());
        assert!(parse_price_fen("1e6").is_err());
    }

    #[test]
    fn sides_need_shares_summing_to_one() {
        let ok = check_side(
            &[
                p("张小三", "11010519491231002X", "1/2"),
                p("李四", "440524188001010014", "50%"),
                PartyInput::default(),
            ],
            Side::Buyer,
        )
        .unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].share, "1/2");
        let err = check_side(
            &[
                p("张小三", "11010519491231002X", "1/2"),
                p("李四", "440524188001010014", "1/3"),
            ],
            Side::Seller,
        )
        .unwrap_err();
        assert!(err[0].message.contains("份额之和"), "{err:?}");
        let err = check_side(&[p("张小三", "11010119900307451X", "1")], Side::Seller).unwrap_err();
        assert_eq!(err[0].field, "seller_0_id_number");
        assert!(err[0].message.contains("校验位"), "{err:?}");
        let err = check_side(&[PartyInput::default()], Side::Buyer).unwrap_err();
        assert!(err[0].message.contains("至少"));
        assert_eq!(err[0].field, "buyers");
        let err = check_side(
            &[
                p("张小三", "11010519491231002X", "1/2"),
                p("张小三", "11010519491231002X", "1/2"),
            ],
            Side::Buyer,
        )
        .unwrap_err();
        assert!(err[0].message.contains("重复"));
    }

    #[test]
    fn one_person_alone_may_leave_the_share_blank_two_may_not() {
        let sole = check_side(&[p("王大山", "11010519491231002X", "")], Side::Seller).unwrap();
        assert_eq!(sole[0].share, Share::parse("1").unwrap().to_string());
        let err = check_side(
            &[
                p("张小三", "11010519491231002X", ""),
                p("李四", "440524188001010014", "1/2"),
            ],
            Side::Buyer,
        )
        .unwrap_err();
        assert_eq!(err[0].field, "buyer_0_share");
        assert!(err[0].message.contains("请填写份额"), "{err:?}");
    }

    #[test]
    fn one_person_page_errors_name_its_own_fields() {
        let err = check_person(&PartyInput {
            name: String::new(),
            id_number: "11010119900307451X".into(),
            phone: "123".into(),
            share: "2/1".into(),
        })
        .unwrap_err();
        let fields: Vec<&str> = err.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "id_number", "phone", "share"]);
        let (party, share) = check_person(&p("王大山", "11010519491231002X", "")).unwrap();
        assert_eq!(party.name, "王大山");
        assert!(share.is_none());
    }
}
