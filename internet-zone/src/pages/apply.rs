//! The application walk: business intro, unit and price, parties, materials, check and submit;
//! deleting a draft.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use ow_domain::Material;
use serde::Deserialize;

use super::{CsrfOnly, Layout, PageResult, layout, mb, render, see_other};
use crate::accounts;
use crate::app::AppState;
use crate::applications::{self, ApplicationForm, MaterialView, PartyInput, Side, SubmitError};
use crate::business::{self, Profile};
use crate::error::FieldError;
use crate::files::check_all_for;
use crate::uploads::{TokenCheck, UploadBodyError, read_upload};
use crate::util::fmt_fen;
use crate::web::{Citizen, PageError, check_form_csrf, check_form_origin, form_csrf};

#[derive(Template)]
#[template(path = "apply.html")]
struct ApplyPage {
    layout: Layout,
    offers: Vec<Offer>,
    max_mb: String,
}

/// One business offered on the apply page.
struct Offer {
    code: &'static str,
    name_zh: &'static str,
    checklist: &'static [Material],
    survey: bool,
}

/// `GET /apply`.
pub async fn apply(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
) -> PageResult {
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let page = ApplyPage {
        layout: layout("我要申请", Some(&s), csrf),
        offers: business::OFFERED
            .iter()
            .map(|b| Offer {
                code: b.code(),
                name_zh: b.name_zh(),
                checklist: b.required_materials(),
                survey: b.needs_survey(),
            })
            .collect(),
        max_mb: mb(app.upload_limits.max_file_bytes),
    };
    render(&page, StatusCode::OK)
}

/// The form starting a draft: the business chosen (absent: 二手房转移登记).
#[derive(Debug, Deserialize)]
pub struct StartForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    business: String,
}

/// `POST /drafts`: starts a draft of the business chosen.
pub async fn create_draft(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Form(f): Form<StartForm>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    let chosen = if f.business.trim().is_empty() {
        business::DEFAULT
    } else {
        business::offered(&f.business).ok_or(PageError::NotFound)?
    };
    // The applicant is usually a buyer: their own details fill the first buyer, which they
    // can change or delete on the parties page.
    let own = accounts::own_details(&app, &s.account_id).await?;
    let form = ApplicationForm {
        buyers: vec![PartyInput {
            name: own.name,
            id_number: own.id_number,
            phone: own.phone,
            share: String::new(),
        }],
        ..ApplicationForm::default()
    };
    let id =
        applications::create_draft(&app, &s.account_id, chosen, &form, ow_store::now_ms()).await?;
    Ok(see_other(&format!("/drafts/{id}/unit")))
}

pub(super) async fn load_draft(
    app: &crate::app::App,
    s: &accounts::Session,
    id: &str,
) -> Result<(applications::ApplicationRow, ApplicationForm), PageError> {
    let row = applications::get_draft(app, &s.account_id, id)
        .await?
        .ok_or(PageError::NotFound)?;
    let form = applications::open_form(app, &row)?;
    Ok((row, form))
}

#[derive(Template)]
#[template(path = "draft_unit.html")]
struct UnitPage {
    layout: Layout,
    draft_id: String,
    step: usize,
    form: ApplicationForm,
    profile: Profile,
    /// (区县名称, 代码) of the districts served, for a new unit.
    districts: Vec<(String, String)>,
}

/// The districts the portal serves, by name.
fn districts(app: &crate::app::App) -> Vec<(String, String)> {
    app.settings
        .counties
        .iter()
        .map(|(name, code)| (name.clone(), code.clone()))
        .collect()
}

/// The title of the unit step.
fn unit_title(profile: &Profile) -> &'static str {
    if profile.has_price {
        "不动产与成交价格"
    } else {
        "不动产信息"
    }
}

/// `GET /drafts/{id}/unit`.
pub async fn draft_unit(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let (row, form) = load_draft(&app, &s, &id).await?;
    let profile = business::profile(row.business);
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let page = UnitPage {
        layout: layout(unit_title(&profile), Some(&s), csrf),
        draft_id: id,
        step: 1,
        form,
        profile,
        districts: districts(&app),
    };
    render(&page, StatusCode::OK)
}

/// The unit form.
#[derive(Debug, Deserialize)]
pub struct UnitForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    unit_code: String,
    #[serde(default)]
    certificate_number: String,
    #[serde(default)]
    price_yuan: String,
    #[serde(default)]
    district_code: String,
}

/// `POST /drafts/{id}/unit`: saves, then checks.
pub async fn save_unit(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<UnitForm>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    let (row, mut form) = load_draft(&app, &s, &id).await?;
    let profile = business::profile(row.business);
    form.unit_code = f.unit_code.trim().to_owned();
    form.certificate_number = f.certificate_number.trim().to_owned();
    form.price_yuan = f.price_yuan.trim().to_owned();
    form.district_code = f.district_code.trim().to_owned();
    applications::save_draft(&app, &s.account_id, &id, &form, ow_store::now_ms()).await?;
    let mut errors = if profile.unit_required {
        applications::check_unit(&form, &app)
    } else {
        applications::check_new_unit(&form, &app)
    }
    .err()
    .unwrap_or_default();
    if profile.has_price
        && let Err(e) = applications::parse_price_fen(&form.price_yuan)
    {
        errors.push(e);
    }
    if errors.is_empty() {
        return Ok(see_other(&format!("/drafts/{id}/parties")));
    }
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let mut l = layout(unit_title(&profile), Some(&s), csrf);
    l.set_errors(errors);
    render(
        &UnitPage {
            layout: l,
            draft_id: id,
            step: 1,
            form,
            profile,
            districts: districts(&app),
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

struct FileRow {
    id: String,
    file_name: String,
    size_text: String,
}

struct MaterialItem {
    code: &'static str,
    field: String,
    name_zh: &'static str,
    required: bool,
    survey: bool,
    files: Vec<FileRow>,
}

#[derive(Template)]
#[template(path = "draft_materials.html")]
struct MaterialsPage {
    layout: Layout,
    draft_id: String,
    step: usize,
    items: Vec<MaterialItem>,
    max_mb: String,
}

fn size_text(size: i64) -> String {
    let size = u64::try_from(size).unwrap_or(0);
    if size < 1024 * 1024 {
        format!("{} KB", size.div_ceil(1024))
    } else {
        format!("{} MB", mb(size))
    }
}

async fn materials_page(
    app: &crate::app::App,
    l: Layout,
    id: String,
    biz: ow_domain::BusinessType,
) -> Result<MaterialsPage, PageError> {
    let have = applications::materials(app, &id).await?;
    let items = biz
        .required_materials()
        .iter()
        .map(|m| MaterialItem {
            code: m.code,
            field: format!("material_{}", m.code),
            name_zh: m.name_zh,
            required: m.required,
            survey: business::takes_survey(biz, m.code),
            files: have
                .iter()
                .filter(|h| h.checklist_code == m.code)
                .map(|h| FileRow {
                    id: h.id.clone(),
                    file_name: h.file_name.clone(),
                    size_text: size_text(h.size),
                })
                .collect(),
        })
        .collect();
    Ok(MaterialsPage {
        layout: l,
        draft_id: id,
        step: 3,
        items,
        max_mb: mb(app.upload_limits.max_file_bytes),
    })
}

/// `GET /drafts/{id}/materials`.
pub async fn draft_materials(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let (row, _) = load_draft(&app, &s, &id).await?;
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let page = materials_page(&app, layout("上传材料", Some(&s), csrf), id, row.business).await?;
    render(&page, StatusCode::OK)
}

/// `POST /drafts/{id}/materials[?item=<checklist code>]` (multipart): one or more files, each
/// in a field named by its checklist code. Every file is checked first; one refusal stores
/// nothing. `item` names the form's checklist item, so an error is shown beside that item's
/// file field even when the upload could not be read.
pub async fn upload_materials(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    mp: Multipart,
) -> PageResult {
    // Whose draft, and whether the page's origin is ours, before a byte of the body is read;
    // the token before the first file is written.
    check_form_origin(&app, &headers)?;
    let (row, _) = load_draft(&app, &s, &id).await?;
    let biz = row.business;
    let check = |t: Option<&str>| check_form_csrf(&app, Some(&s), &headers, t);
    let read = match read_upload(
        mp,
        &app.files,
        &app.upload_limits,
        TokenCheck::FormField(&check),
    )
    .await
    {
        Err(UploadBodyError::Csrf(e)) => return Err(PageError::Csrf(e)),
        Err(UploadBodyError::Internal(e)) => return Err(e.into()),
        other => other,
    };
    let first_field = read
        .as_ref()
        .ok()
        .and_then(|(_, files)| files.first().map(|f| f.field.clone()));
    let item = q
        .get("item")
        .filter(|c| applications::is_checklist_code(biz, c))
        .cloned()
        .or_else(|| first_field.filter(|c| applications::is_checklist_code(biz, c)))
        .or_else(|| biz.required_materials().first().map(|m| m.code.to_owned()))
        .unwrap_or_default();
    let field = format!("material_{item}");
    let result = match read {
        Err(e) => Err(vec![FieldError::new(field, e.message_zh())]),
        Ok((_, files)) if files.is_empty() => {
            Err(vec![FieldError::new(field, "请选择要上传的文件")])
        }
        Ok((_, files)) => match files
            .iter()
            .find(|f| !applications::is_checklist_code(biz, &f.field))
        {
            Some(_) => Err(vec![FieldError::new(
                field,
                "未知的材料类型，请用本页每项材料下的“上传”按钮上传",
            )]),
            None => check_all_for(biz, files, &app.upload_limits, &app.files)
                .await
                .map_err(|e| {
                    e.messages_zh()
                        .into_iter()
                        .map(|m| FieldError::new(field.clone(), m))
                        .collect()
                }),
        },
    };
    let result = match result {
        Ok((accepted, reports)) => applications::check_draft_capacity(&app, &id, &accepted)
            .await?
            .map(|()| (accepted, reports))
            .map_err(|e| vec![e]),
        Err(e) => Err(e),
    };
    match result {
        Ok((accepted, reports)) => {
            let notes: Vec<FieldError> = reports
                .iter()
                .flat_map(|r| r.messages_zh())
                .map(|m| FieldError::new(format!("material_{}", business::SURVEY_ITEM), m))
                .collect();
            if !applications::add_draft_materials(
                &app,
                &s.account_id,
                &id,
                accepted,
                ow_store::now_ms(),
            )
            .await?
            {
                return Err(PageError::NotFound);
            }
            if notes.is_empty() {
                return Ok(see_other(&format!("/drafts/{id}/materials")));
            }
            // Kept, but the pre-check found problems: shown now (the citizen may still
            // submit; the cadastral review decides).
            let (csrf, _) = form_csrf(&app, Some(&s), &headers);
            let mut l = layout("上传材料", Some(&s), csrf);
            l.set_errors(notes);
            let page = materials_page(&app, l, id, biz).await?;
            render(&page, StatusCode::OK)
        }
        Err(errs) => {
            let (csrf, _) = form_csrf(&app, Some(&s), &headers);
            let mut l = layout("上传材料", Some(&s), csrf);
            l.set_errors(errs);
            let page = materials_page(&app, l, id, biz).await?;
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
    }
}

/// `POST /drafts/{id}/materials/{material}/delete`.
pub async fn delete_material(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path((id, material)): Path<(String, String)>,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    if !applications::remove_draft_material(&app, &s.account_id, &id, &material).await? {
        return Err(PageError::NotFound);
    }
    Ok(see_other(&format!("/drafts/{id}/materials")))
}

#[derive(Template)]
#[template(path = "draft_delete.html")]
struct DeleteDraftPage {
    layout: Layout,
    draft_id: String,
}

/// `GET /drafts/{id}/delete`: asks before deleting the draft.
pub async fn delete_draft_confirm(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    load_draft(&app, &s, &id).await?;
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    render(
        &DeleteDraftPage {
            layout: layout("删除草稿", Some(&s), csrf),
            draft_id: id,
        },
        StatusCode::OK,
    )
}

/// `POST /drafts/{id}/delete`: deletes the draft and its files, then says so on 我的申请.
pub async fn delete_draft(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    if !applications::delete_draft(&app, &s.account_id, &id).await? {
        return Err(PageError::NotFound);
    }
    Ok(see_other("/applications?deleted=1"))
}

struct PartyLine {
    role: &'static str,
    edit: String,
    name: String,
    id_number: String,
    share: String,
    phone: String,
    mismatch: Option<String>,
}

#[derive(Template)]
#[template(path = "draft_check.html")]
struct CheckPage {
    layout: Layout,
    draft_id: String,
    step: usize,
    business: &'static str,
    has_price: bool,
    unit_code: String,
    certificate_number: String,
    location: Option<String>,
    price: String,
    parties: Vec<PartyLine>,
    materials: Vec<MaterialView>,
    ready: bool,
    declared: bool,
}

/// Where an error of the whole form links from the check page: the page that has the field.
fn check_href(draft_id: &str, field: &str) -> String {
    match field {
        "unit_code" | "certificate_number" | "price_yuan" => {
            format!("/drafts/{draft_id}/unit#{field}")
        }
        f if f.starts_with("material_") => format!("/drafts/{draft_id}/materials#{f}"),
        f => super::parties::party_href(draft_id, f)
            .unwrap_or_else(|| format!("/drafts/{draft_id}/check")),
    }
}

/// The field of the declaration (承诺) on the check page.
const DECLARATION: &str = "declaration";

async fn check_page(
    app: &crate::app::App,
    s: &accounts::Session,
    headers: &HeaderMap,
    id: String,
    extra_errors: Vec<FieldError>,
    declared: bool,
) -> Result<CheckPage, PageError> {
    let (row, form) = load_draft(app, s, &id).await?;
    let materials = applications::materials(app, &id).await?;
    let mut errors = applications::check_form(&form, row.business, app)
        .err()
        .unwrap_or_default();
    for m in applications::missing_materials(row.business, &materials) {
        errors.push(FieldError::new(
            format!("material_{}", m.code),
            format!("请上传“{}”", m.name_zh),
        ));
    }
    for e in extra_errors {
        if !errors.contains(&e) {
            errors.push(e);
        }
    }
    let published =
        crate::certificates::published_unit(app, &form.unit_code, &form.certificate_number).await?;
    let registered = published
        .as_ref()
        .map(|p| p.holders_masked.clone())
        .unwrap_or_default();
    // The citizen sees the ID numbers they typed in full: this is their own draft, and a typo
    // must be visible to be caught. Sellers are compared with the published holders (masked).
    let mut parties = Vec::new();
    let profile = business::profile(row.business);
    for (side, rows) in [(Side::Seller, &form.sellers), (Side::Buyer, &form.buyers)] {
        if side == Side::Seller && !profile.has_sellers {
            continue;
        }
        let filled: Vec<&PartyInput> = rows.iter().filter(|p| !p.is_blank()).collect();
        let alone = filled.len() == 1;
        for (i, p) in filled.into_iter().enumerate() {
            let masked = format!(
                "{}（{}）",
                ow_domain::mask::mask_name(p.name.trim()),
                ow_domain::mask::mask_id_number(p.id_number.trim())
            );
            let mismatch =
                (side == Side::Seller && !registered.is_empty() && !registered.contains(&masked))
                    .then(|| registered.join("、"));
            parties.push(PartyLine {
                role: if profile.has_sellers {
                    side.short_zh()
                } else {
                    "权利人"
                },
                edit: format!("/drafts/{id}/parties/{}/{}", side.key(), i + 1),
                name: p.name.trim().to_owned(),
                id_number: p.id_number.trim().to_owned(),
                share: if p.share.trim().is_empty() && alone {
                    "全部（单独所有）".to_owned()
                } else {
                    p.share.clone()
                },
                phone: p.phone.trim().to_owned(),
                mismatch,
            });
        }
    }
    let (csrf, _) = form_csrf(app, Some(s), headers);
    let ready = errors.iter().all(|e| e.field == DECLARATION);
    let mut l = layout("核对信息", Some(s), csrf);
    for e in errors {
        if e.field == DECLARATION {
            l.errors.push(super::ErrorLink {
                href: format!("#{DECLARATION}"),
                field: e.field,
                message: e.message,
            });
        } else {
            let href = check_href(&id, &e.field);
            l.push_elsewhere(e.message, href);
        }
    }
    Ok(CheckPage {
        layout: l,
        step: 4,
        business: row.business.name_zh(),
        has_price: business::profile(row.business).has_price,
        unit_code: form.unit_code.clone(),
        certificate_number: form.certificate_number.clone(),
        location: published.map(|p| p.location),
        price: applications::parse_price_fen(&form.price_yuan)
            .map(fmt_fen)
            .unwrap_or_else(|_| form.price_yuan.clone()),
        parties,
        materials,
        ready,
        declared,
        draft_id: id,
    })
}

/// `GET /drafts/{id}/check`: 核对信息, in full for the citizen who typed it, with the
/// declaration to confirm.
pub async fn draft_check(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let page = check_page(&app, &s, &headers, id, Vec::new(), false).await?;
    render(&page, StatusCode::OK)
}

/// The submit form: the CSRF token and the declaration checkbox.
#[derive(Debug, Deserialize)]
pub struct SubmitForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    declaration: String,
}

/// `POST /drafts/{id}/submit`: needs the declaration; then submits and shows the confirmation.
pub async fn submit(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<SubmitForm>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    let declared = f.declaration == "yes";
    if !declared {
        let errors = vec![FieldError::new(
            DECLARATION,
            "请阅读承诺内容，勾选“本人已阅读并同意以上承诺”后再提交",
        )];
        let page = check_page(&app, &s, &headers, id, errors, false).await?;
        return render(&page, StatusCode::UNPROCESSABLE_ENTITY);
    }
    match applications::submit(&app, &s.account_id, &id, ow_store::now_ms()).await {
        Ok(no) => Ok(see_other(&format!("/applications/{no}/submitted"))),
        Err(SubmitError::NotFound) => Err(PageError::NotFound),
        Err(SubmitError::Invalid(errors)) => {
            let page = check_page(&app, &s, &headers, id, errors, declared).await?;
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(SubmitError::Internal(e)) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_page_errors_link_to_the_page_that_has_the_field() {
        assert_eq!(check_href("d", "unit_code"), "/drafts/d/unit#unit_code");
        assert_eq!(check_href("d", "price_yuan"), "/drafts/d/unit#price_yuan");
        assert_eq!(
            check_href("d", "material_sale_contract"),
            "/drafts/d/materials#material_sale_contract"
        );
        assert_eq!(
            check_href("d", "seller_1_name"),
            "/drafts/d/parties/seller/2#name"
        );
        assert_eq!(check_href("d", "sellers"), "/drafts/d/parties#sellers");
    }
}
