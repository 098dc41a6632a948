//! Import of messages from the portal ([`Importer`], the exchange's `ImportHandler`).
//!
//! - `ApplicationSubmitted` → a case in the district named by `district_code`, status
//!   `submitted`; the parties stored sealed with blind indexes of their ID numbers; the
//!   materials checked again (BLAKE3, magic bytes, size) and saved sealed, one file per
//!   material ([`crate::materials`]), their file names sealed.
//! - `SupplementSubmitted` → materials attached to a case in `supplement_requested`, which goes
//!   back to `submitted`.
//!
//! Content that cannot be accepted (unknown district, invalid ID number, a material that is not
//! what it claims …) is `Refused` with the reason, logged, recorded as a case event, and an
//! `ApplicationStatus` `refused` with the reason is queued back so the citizen is told why.
//! Exactly-once is the exchange's job (message id recorded in the same transaction); the
//! handler is idempotent anyway: a case that already exists is not imported twice.

use std::path::Path;

use ow_domain::{
    BusinessType, CaseStatus, CertificateNumber, IdNumber, PersonName, Share, UnitCode,
};
use ow_pii::{Field, normalize_id_number, normalize_phone};
use ow_web::upload::sniff;
use sqlx::{Any, AnyConnection, Transaction};

use crate::AppState;
use crate::cases;
use crate::db;
use crate::error::ExtranetError;
use crate::exchange::{
    self, ApplicationStatus, ApplicationSubmitted, DeadLetter, Disposition, ExchangeError,
    ImportHandler, InboundMessage, MaterialRef, Message, Party, SupplementSubmitted,
};
use crate::materials;
use crate::register;
use crate::workflow::TO_PORTAL;

/// The import handler of the back office.
#[derive(Debug, Clone)]
pub struct Importer {
    state: AppState,
}

impl Importer {
    /// A handler over `state`.
    pub fn new(state: AppState) -> Self {
        Importer { state }
    }
}

/// A refusal: the reason in Chinese for the citizen.
struct Refusal(String);

type Outcome<T> = Result<Result<T, Refusal>, ExtranetError>;

impl ImportHandler for Importer {
    async fn prepare(&self, msg: &InboundMessage) -> Result<(), ExchangeError> {
        let refs = match &msg.envelope.message {
            Message::ApplicationSubmitted(app) => app.materials.clone(),
            Message::SupplementSubmitted(sup) => sup.materials.clone(),
            _ => return Ok(()),
        };
        let data_dir = self.state.data_dir().to_path_buf();
        let max = self.state.settings.materials.max_file_bytes;
        let msg = msg.clone();
        let pii = self.state.pii.clone();
        tokio::task::spawn_blocking(move || {
            save_checked_materials(&pii, &data_dir, max, &msg, &refs)
        })
        .await
        .map_err(|e| ExchangeError::Handler(format!("saving materials failed: {e}")))?
        .map_err(|e| ExchangeError::Handler(e.to_string()))
    }

    async fn set_aside(
        &self,
        tx: &mut Transaction<'static, Any>,
        letter: &DeadLetter,
        msg: &InboundMessage,
    ) -> Result<(), ExchangeError> {
        let no = match &msg.envelope.message {
            Message::ApplicationSubmitted(app) => &app.application_no,
            Message::SupplementSubmitted(sup) => &sup.application_no,
            _ => return Ok(()),
        };
        if !valid_application_no(no) {
            return Ok(());
        }
        let status = cases::get_any(tx, no)
            .await
            .map_err(|e| ExchangeError::Handler(e.to_string()))?
            .map(|c| c.status)
            .unwrap_or(CaseStatus::Submitted);
        let todo = match letter.code.as_str() {
            "too-large" | "too-many-files" => {
                "材料过多或过大，请联系登记机构窗口，按工作人员的指引补交材料"
            }
            "control-character" => "填写的内容含有无法识别的字符，请联系登记机构窗口更正",
            _ => "工作人员已收到提示，会在处理后继续办理，您无需重复提交",
        };
        exchange::enqueue(
            tx,
            &self.state.pii,
            &TO_PORTAL,
            Message::ApplicationStatus(ApplicationStatus {
                application_no: no.clone(),
                status: status.code().to_owned(),
                reason: Some(format!(
                    "登记机构暂时无法接收您提交的内容（编号 {}）：{todo}。",
                    letter.id
                )),
                requested_materials: Vec::new(),
                changed_at_ms: self.state.now_ms(),
                received_message_id: None,
            }),
            Vec::new(),
        )
        .await?;
        tracing::warn!(application_no = %no, dead_letter = %letter.id, code = %letter.code,
            "a message from the portal was set aside; the citizen is told");
        Ok(())
    }

    async fn import(
        &self,
        tx: &mut Transaction<'static, Any>,
        msg: &InboundMessage,
    ) -> Result<Disposition, ExchangeError> {
        let handler_error = to_exchange_error;
        match &msg.envelope.message {
            Message::SurveyReview(review) => {
                return match crate::survey::import_review(&self.state, tx, review)
                    .await
                    .map_err(handler_error)?
                {
                    Ok(()) => Ok(Disposition::Imported),
                    Err(reason) => {
                        tracing::warn!(package = %review.package_id, reason = %reason,
                            "survey review refused");
                        Ok(Disposition::Refused { reason })
                    }
                };
            }
            Message::ApplicationSubmitted(app) => {
                match submitted(&self.state, tx, msg, app)
                    .await
                    .map_err(handler_error)?
                {
                    Ok(()) => {
                        acknowledge(
                            &self.state,
                            tx,
                            &app.application_no,
                            CaseStatus::Submitted,
                            Some("登记机构已收到申请材料，等待受理"),
                            &msg.envelope.message_id,
                        )
                        .await
                        .map_err(handler_error)?;
                        Ok(Disposition::Imported)
                    }
                    Err(Refusal(reason)) => {
                        refuse(
                            &self.state,
                            tx,
                            &app.application_no,
                            Some(app.district_code.as_str()),
                            &reason,
                            &msg.envelope.message_id,
                        )
                        .await
                        .map_err(handler_error)?;
                        Ok(Disposition::Refused { reason })
                    }
                }
            }
            Message::SupplementSubmitted(sup) => {
                match supplemented(&self.state, tx, msg, sup)
                    .await
                    .map_err(handler_error)?
                {
                    Ok(()) => Ok(Disposition::Imported),
                    Err(Refusal(reason)) => {
                        // The reason is recorded sealed with the case; it is not logged.
                        tracing::warn!(application_no = %sup.application_no,
                            "supplement refused");
                        let now = self.state.now_ms();
                        cases::insert_event(
                            tx,
                            &self.state.pii,
                            &sup.application_no,
                            None,
                            None,
                            "case.import-refused",
                            None,
                            None,
                            Some(&reason),
                            now,
                        )
                        .await
                        .map_err(handler_error)?;
                        // Tell the portal the materials arrived (so it drops its copies) and
                        // why they were not taken, under the case's current status.
                        if let Some(case) = cases::get_any(tx, &sup.application_no)
                            .await
                            .map_err(handler_error)?
                        {
                            acknowledge(
                                &self.state,
                                tx,
                                &sup.application_no,
                                case.status,
                                Some(&format!("补正材料未被接收：{reason}")),
                                &msg.envelope.message_id,
                            )
                            .await
                            .map_err(handler_error)?;
                        }
                        Ok(Disposition::Refused { reason })
                    }
                }
            }
            other => Ok(Disposition::Refused {
                reason: format!(
                    "本系统不接收“{}”类消息（仅接收网上申请和补正材料）",
                    other.kind()
                ),
            }),
        }
    }
}

/// Keeps what the exchange needs to classify a failure: the database's own error (a refusal of
/// this message's data is permanent, a lost connection is an outage) and the exchange's.
fn to_exchange_error(e: ExtranetError) -> ExchangeError {
    match e {
        ExtranetError::Db(e) => ExchangeError::Database(e),
        ExtranetError::Exchange(e) => e,
        other => ExchangeError::Handler(other.to_string()),
    }
}

/// Records a refused application and tells the citizen why.
async fn refuse(
    state: &AppState,
    tx: &mut Transaction<'static, Any>,
    no: &str,
    district: Option<&str>,
    reason: &str,
    received: &str,
) -> Result<(), ExtranetError> {
    // The reason is recorded sealed with the case event and told to the citizen; not logged.
    tracing::warn!(application_no = %no, "application refused at import");
    let now = state.now_ms();
    cases::insert_event(
        tx,
        &state.pii,
        no,
        district,
        None,
        "case.import-refused",
        None,
        Some(CaseStatus::Refused),
        Some(reason),
        now,
    )
    .await?;
    acknowledge(state, tx, no, CaseStatus::Refused, Some(reason), received).await
}

/// Queues the status that answers an imported message: the citizen sees it, and the portal
/// learns that the message's materials arrived and drops its copies.
async fn acknowledge(
    state: &AppState,
    tx: &mut Transaction<'static, Any>,
    no: &str,
    status: CaseStatus,
    reason: Option<&str>,
    received: &str,
) -> Result<(), ExtranetError> {
    exchange::enqueue(
        tx,
        &state.pii,
        &TO_PORTAL,
        Message::ApplicationStatus(ApplicationStatus {
            application_no: no.to_owned(),
            status: status.code().to_owned(),
            reason: reason.map(str::to_owned),
            requested_materials: Vec::new(),
            changed_at_ms: state.now_ms(),
            received_message_id: Some(received.to_owned()),
        }),
        Vec::new(),
    )
    .await?;
    Ok(())
}

fn valid_application_no(no: &str) -> bool {
    (1..=64).contains(&no.len())
        && no
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

fn check_party(p: &Party, role: &str, index: usize) -> Result<(), Refusal> {
    let who = format!("第{}位{}", index + 1, role);
    PersonName::parse(&p.name)
        .map_err(|e| Refusal(format!("{who}姓名有误：{}", e.message_zh())))?;
    if p.id_type == "1" {
        IdNumber::parse(&p.id_number)
            .map_err(|e| Refusal(format!("{who}身份证号码有误：{}", e.message_zh())))?;
    } else if p.id_number.trim().is_empty() || p.id_number.chars().count() > 64 {
        return Err(Refusal(format!("{who}证件号码有误")));
    }
    Ok(())
}

/// A material that passed its checks: its reference, size and BLAKE3 (hex).
struct Checked<'a> {
    m: &'a MaterialRef,
    size: u64,
    hash: String,
}

/// Checks every material of `refs` against the bundle's files: present, within the size
/// limit, the BLAKE3 the bundle verified equal to the one the message states, and of the
/// stated type by its magic bytes. Reads only each file's first bytes; call it off the async
/// workers.
fn check_materials<'a>(
    max: u64,
    msg: &InboundMessage,
    refs: &'a [MaterialRef],
) -> Result<Vec<Checked<'a>>, Refusal> {
    let mut out = Vec::with_capacity(refs.len());
    for m in refs {
        // Named by its checklist title, never by the file name the citizen gave: a refusal
        // reason travels back, is recorded with the bundle and may be logged by the exchange.
        let title = material_title(m);
        let Some(file) = msg.file(&m.item) else {
            return Err(Refusal(format!("材料“{title}”缺失，请重新上传")));
        };
        if file.size() > max {
            return Err(Refusal(format!(
                "材料“{title}”超过{}MB，请压缩后重新上传",
                max / (1024 * 1024)
            )));
        }
        if !file.blake3_hex().eq_ignore_ascii_case(&m.blake3) {
            return Err(Refusal(format!(
                "材料“{title}”在传输中损坏（校验值不符），请重新上传"
            )));
        }
        let head = file
            .head(64)
            .map_err(|_| Refusal(format!("材料“{}”无法读取，请重新上传", m.file_name)))?;
        match sniff(&head) {
            Ok(media) if media.mime() == m.media_type => {}
            _ if is_survey_text(m) => {
                // A survey package (界址点坐标 TXT or GeoJSON) the portal pre-checked: it must
                // still read as one here (UTF-8 or GBK text that parses).
                let bytes = file
                    .read()
                    .map_err(|_| Refusal(format!("材料“{title}”无法读取，请重新上传")))?;
                let format = match m.media_type.as_str() {
                    "application/geo+json" => ow_survey::SourceFormat::GeoJson,
                    _ => ow_survey::SourceFormat::BoundaryTxt,
                };
                if ow_survey::parse_package(&bytes, format, &ow_survey::ParseOptions::default())
                    .is_err()
                {
                    return Err(Refusal(format!(
                        "材料“{title}”不是可读取的界址点坐标文件（TXT 或 GeoJSON），请核对后重新上传"
                    )));
                }
            }
            Ok(_) | Err(_) => {
                return Err(Refusal(format!(
                    "材料“{title}”不是有效的PDF、JPEG或PNG文件，请重新上传"
                )));
            }
        }
        out.push(Checked {
            m,
            size: file.size(),
            hash: file.blake3_hex().to_ascii_lowercase(),
        });
    }
    Ok(out)
}

/// Whether `m` is a survey package sent as text: checklist `cadastral_survey` with media type
/// `text/plain` or `application/geo+json`.
fn is_survey_text(m: &MaterialRef) -> bool {
    m.checklist_code == "cadastral_survey"
        && matches!(m.media_type.as_str(), "text/plain" | "application/geo+json")
}

/// How a refusal names a material: its checklist title (or its checklist code, then its item
/// name, for a code this version does not know). Never the citizen's file name.
fn material_title(m: &MaterialRef) -> String {
    BusinessType::ALL
        .iter()
        .flat_map(|b| b.required_materials().iter())
        .find(|c| c.code == m.checklist_code)
        .map(|c| c.name_zh.to_owned())
        .unwrap_or_else(|| {
            if m.checklist_code
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !m.checklist_code.is_empty()
                && m.checklist_code.len() <= 64
            {
                m.checklist_code.clone()
            } else {
                m.item.clone()
            }
        })
}

/// [`check_materials`] on a blocking thread; returns the indexes into `refs` with size and
/// hash of the materials that passed.
async fn check_materials_off_thread(
    state: &AppState,
    msg: &InboundMessage,
    refs: &[MaterialRef],
) -> Result<Result<Vec<(usize, u64, String)>, Refusal>, ExtranetError> {
    let max = state.settings.materials.max_file_bytes;
    let msg = msg.clone();
    let refs = refs.to_vec();
    tokio::task::spawn_blocking(move || {
        check_materials(max, &msg, &refs).map(|checked| {
            checked
                .into_iter()
                .enumerate()
                .map(|(i, c)| (i, c.size, c.hash))
                .collect()
        })
    })
    .await
    .map_err(|e| ExtranetError::Invalid(format!("checking materials failed: {e}")))
}

/// The id of the material `item` of message `message_id`: derived from both, so the sealed
/// file saved before the import's transaction opens ([`save_checked_materials`]) and the row the
/// transaction inserts agree, and a retried import finds the file it saved before. Message ids
/// are imported once, and item names are unique within a message, so ids are unique.
fn material_id(message_id: &str, item: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(b"onewindow/extranet/material-id/1\0");
    h.update(message_id.as_bytes());
    h.update(b"\0");
    h.update(item.as_bytes());
    h.finalize().to_hex()[..32].to_owned()
}

/// The materials of a message, sealed into their files (one per material id, see
/// [`material_id`]) before the import's transaction opens, so the single database writer is
/// never held while they are written and synced. Materials that fail their checks are skipped:
/// the import refuses them. Blocking.
fn save_checked_materials(
    pii: &ow_pii::PiiKeyring,
    data_dir: &Path,
    max: u64,
    msg: &InboundMessage,
    refs: &[MaterialRef],
) -> Result<(), ExtranetError> {
    let Ok(checked) = check_materials(max, msg, refs) else {
        return Ok(());
    };
    for c in checked {
        save_material(pii, data_dir, msg, c.m)?;
    }
    Ok(())
}

/// Seals the file of material `m` of `msg` unless it is there already. Blocking.
fn save_material(
    pii: &ow_pii::PiiKeyring,
    data_dir: &Path,
    msg: &InboundMessage,
    m: &MaterialRef,
) -> Result<(), ExtranetError> {
    let id = material_id(&msg.envelope.message_id, &m.item);
    let exists = materials::material_file(data_dir, &id).is_some_and(|p| p.exists());
    if exists {
        return Ok(());
    }
    let Some(file) = msg.file(&m.item) else {
        return Ok(());
    };
    let bytes = file
        .read()
        .map_err(|e| ExtranetError::Invalid(e.to_string()))?;
    materials::store_blocking(pii, data_dir, &id, &mut bytes.as_slice())?;
    Ok(())
}

/// The materials of one message that passed their checks, to record on a case.
struct Received<'a> {
    msg: &'a InboundMessage,
    refs: &'a [MaterialRef],
    /// Index into `refs`, size, BLAKE3 (hex).
    checked: &'a [(usize, u64, String)],
    /// `application` or `supplement`.
    source: &'a str,
}

async fn insert_materials(
    state: &AppState,
    conn: &mut AnyConnection,
    no: &str,
    received: Received<'_>,
    now: i64,
) -> Result<(), ExtranetError> {
    let Received {
        msg,
        refs,
        checked,
        source,
    } = received;
    for (index, size, hash) in checked {
        let Some(m) = refs.get(*index) else {
            continue;
        };
        // One sealed file per material, bound to its row id, durable before the row commits:
        // sealed in `prepare` when the exchange imports; a direct call (a tool, a test) seals
        // it here, on a blocking thread.
        let id = material_id(&msg.envelope.message_id, &m.item);
        let (pii, data_dir, owned_msg, owned_ref) = (
            state.pii.clone(),
            state.data_dir().to_path_buf(),
            msg.clone(),
            m.clone(),
        );
        tokio::task::spawn_blocking(move || save_material(&pii, &data_dir, &owned_msg, &owned_ref))
            .await
            .map_err(|e| ExtranetError::Corrupt(format!("the file task failed: {e}")))??;
        let file_name = ow_web::upload::safe_filename(&m.file_name, None);
        sqlx::query(
            "INSERT INTO ext_case_materials (id, application_no, checklist_code, file_name, \
             media_type, size, blake3, source, received_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(no)
        .bind(&m.checklist_code)
        .bind(cases::seal_file_name(&state.pii, &id, &file_name))
        .bind(&m.media_type)
        .bind(i64::try_from(*size).unwrap_or(i64::MAX))
        .bind(hash)
        .bind(source)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

async fn submitted(
    state: &AppState,
    tx: &mut Transaction<'static, Any>,
    msg: &InboundMessage,
    app: &ApplicationSubmitted,
) -> Outcome<()> {
    let no = app.application_no.as_str();
    if !valid_application_no(no) {
        return Ok(Err(Refusal("申请编号格式有误".into())));
    }
    if cases::get_any(tx, no).await?.is_some() {
        tracing::info!(application_no = %no, "application already imported; skipped");
        return Ok(Ok(()));
    }
    let district = crate::certificates::district(tx, &app.district_code).await?;
    let Some(district) = district else {
        return Ok(Err(Refusal(format!(
            "受理地区代码“{}”不在本登记机构的辖区内，请选择不动产所在的区县重新申请",
            app.district_code
        ))));
    };
    let Some(business) = BusinessType::from_code(&app.business_type) else {
        return Ok(Err(Refusal(format!(
            "不办理业务类型“{}”，请选择正确的登记业务",
            app.business_type
        ))));
    };
    // The unit: by unit code, or by the current certificate's number.
    let unit_code = match (&app.unit_code, &app.certificate_number) {
        (Some(code), _) => match UnitCode::parse(code) {
            Ok(code) if code.county_code() == district.code => Some(code.as_str().to_owned()),
            Ok(_) => {
                return Ok(Err(Refusal(format!(
                    "不动产单元号不属于{}，请向不动产所在区县申请",
                    district.name
                ))));
            }
            Err(e) => {
                return Ok(Err(Refusal(format!(
                    "不动产单元号有误：{}",
                    e.message_zh()
                ))));
            }
        },
        (None, Some(number)) => match CertificateNumber::parse(number) {
            Ok(number) => {
                let found = crate::certificates::get(tx, &district.code, number.as_str()).await?;
                match found {
                    Some(c) => Some(c.unit_code),
                    None => {
                        return Ok(Err(Refusal(format!(
                            "{}登记簿中没有证书号为“{}”的不动产权证书，请核对后重新申请",
                            district.name,
                            number.as_str()
                        ))));
                    }
                }
            }
            Err(e) => return Ok(Err(Refusal(format!("证书号有误：{}", e.message_zh())))),
        },
        // A first registration's unit is new: the surveyor assigns its code after the
        // cadastral review.
        (None, None) if business.needs_survey() => None,
        (None, None) => {
            return Ok(Err(Refusal(
                "申请未注明不动产单元号或不动产权证书号".into(),
            )));
        }
    };
    if business.needs_survey() {
        // 首次登记: the applicants are the new rights holders; nobody gives a right up.
        if !app.sellers.is_empty() || app.buyers.is_empty() {
            return Ok(Err(Refusal(
                "首次登记只须填写权利人（申请人），不填写义务人".into(),
            )));
        }
    } else if app.sellers.is_empty() || app.buyers.is_empty() {
        return Ok(Err(Refusal(
            "申请须有义务人（卖方）和权利人（买方）".into(),
        )));
    }
    if app.sellers.len() + app.buyers.len() > 100 {
        return Ok(Err(Refusal("申请人过多".into())));
    }
    for (i, p) in app.sellers.iter().enumerate() {
        if let Err(r) = check_party(p, "义务人", i) {
            return Ok(Err(r));
        }
    }
    for (i, p) in app.buyers.iter().enumerate() {
        if let Err(r) = check_party(p, "权利人", i) {
            return Ok(Err(r));
        }
        if let Err(e) = Share::parse(&p.share) {
            return Ok(Err(Refusal(format!(
                "第{}位权利人份额有误：{}",
                i + 1,
                e.message_zh()
            ))));
        }
    }
    let checked = match check_materials_off_thread(state, msg, &app.materials).await? {
        Ok(c) => c,
        Err(r) => return Ok(Err(r)),
    };
    let now = state.now_ms();
    sqlx::query(
        "INSERT INTO ext_cases (application_no, district_code, business_type, unit_code, \
         given_certificate_number, price_fen, applicant_ref, status, submitted_at_ms, \
         received_at_ms, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, 'submitted', $8, $9, $9)",
    )
    .bind(no)
    .bind(&district.code)
    .bind(business.code())
    .bind(unit_code.as_deref())
    .bind(app.certificate_number.as_deref())
    .bind(app.price_fen)
    .bind(&app.applicant_ref)
    .bind(app.submitted_at_ms)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    for (role, list) in [(cases::SELLER, &app.sellers), (cases::BUYER, &app.buyers)] {
        for (position, p) in list.iter().enumerate() {
            let id = ow_store::new_id();
            let ctx = format!("ext_case_parties:{id}");
            let id_number = normalize_id_number(&p.id_number);
            sqlx::query(
                "INSERT INTO ext_case_parties (id, application_no, role, position, name_sealed, \
                 id_type, id_number_sealed, id_number_index, phone_sealed, share) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&id)
            .bind(no)
            .bind(role)
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(db::seal(&state.pii, Field::PersonName, &ctx, p.name.trim()))
            .bind(&p.id_type)
            .bind(db::seal(&state.pii, Field::IdNumber, &ctx, &id_number))
            .bind(register::id_index(&state.pii, &id_number))
            .bind(
                p.phone
                    .as_deref()
                    .map(|ph| db::seal(&state.pii, Field::Phone, &ctx, &normalize_phone(ph))),
            )
            .bind(p.share.trim())
            .execute(&mut **tx)
            .await?;
        }
    }
    insert_materials(
        state,
        tx,
        no,
        Received {
            msg,
            refs: &app.materials,
            checked: &checked,
            source: "application",
        },
        now,
    )
    .await?;
    cases::insert_event(
        tx,
        &state.pii,
        no,
        Some(&district.code),
        None,
        "case.submitted",
        None,
        Some(CaseStatus::Submitted),
        None,
        now,
    )
    .await?;
    tracing::info!(application_no = %no, district = %district.code, "application imported");
    Ok(Ok(()))
}

async fn supplemented(
    state: &AppState,
    tx: &mut Transaction<'static, Any>,
    msg: &InboundMessage,
    sup: &SupplementSubmitted,
) -> Outcome<()> {
    let no = sup.application_no.as_str();
    let Some(case) = cases::get_any(tx, no).await? else {
        return Ok(Err(Refusal("未找到该申请，无法接收补正材料".into())));
    };
    if case.status != CaseStatus::SupplementRequested {
        return Ok(Err(Refusal(format!(
            "申请当前为“{}”状态，无需补正材料",
            case.status.name_zh()
        ))));
    }
    if sup.note.chars().any(exchange::is_forbidden_control) {
        return Ok(Err(Refusal(
            "补正说明含有无法识别的控制字符，请删除后重新提交".into(),
        )));
    }
    let checked = match check_materials_off_thread(state, msg, &sup.materials).await? {
        Ok(c) => c,
        Err(r) => return Ok(Err(r)),
    };
    let now = state.now_ms();
    insert_materials(
        state,
        tx,
        no,
        Received {
            msg,
            refs: &sup.materials,
            checked: &checked,
            source: "supplement",
        },
        now,
    )
    .await?;
    sqlx::query(
        "UPDATE ext_cases SET status = 'submitted', status_reason = NULL, updated_at_ms = $1 \
         WHERE application_no = $2 AND status = 'supplement_requested'",
    )
    .bind(now)
    .bind(no)
    .execute(&mut **tx)
    .await?;
    let note: String = sup.note.chars().take(200).collect();
    cases::insert_event(
        tx,
        &state.pii,
        no,
        Some(&case.district_code),
        None,
        "case.supplemented",
        Some(CaseStatus::SupplementRequested),
        Some(CaseStatus::Submitted),
        (!note.trim().is_empty()).then_some(note.trim()),
        now,
    )
    .await?;
    acknowledge(
        state,
        tx,
        no,
        CaseStatus::Submitted,
        Some("登记机构已收到补正材料"),
        &msg.envelope.message_id,
    )
    .await?;
    tracing::info!(application_no = %no, "supplement imported");
    Ok(Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_materials_by_checklist_title_not_file_name() {
        let m = MaterialRef {
            item: "m02.pdf".into(),
            checklist_code: "applicant_identity".into(),
            file_name: "张三丰身份证.pdf".into(),
            media_type: "application/pdf".into(),
            size: 1,
            blake3: String::new(),
        };
        let title = material_title(&m);
        assert!(!title.contains("张三丰"), "{title}");
        assert!(!title.is_empty());
        let odd = MaterialRef {
            checklist_code: "王五 的 文件".into(),
            ..m
        };
        assert_eq!(material_title(&odd), "m02.pdf");
    }

    #[test]
    fn application_numbers() {
        assert!(valid_application_no("A2026-000123"));
        assert!(!valid_application_no("../x"));
        assert!(!valid_application_no(""));
    }
}
