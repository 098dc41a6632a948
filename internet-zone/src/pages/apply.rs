//! The application walk: business intro, unit and price, parties, materials, check and submit;
//! deleting a draft.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use ow_domain::Material;
use serde::Deserialize;

use super::{CsrfOnly, Layout, PageResult, layout, mb, render, see_other};
use crate::accounts;
use crate::app::AppState;
use crate::applications::{
    self, ApplicationForm, BUSINESS, MAX_PARTIES, MaterialView, PartyInput, Side, SubmitError,
};
use crate::error::FieldError;
use crate::files::check_all;
use crate::util::fmt_fen;
use crate::web::{Citizen, PageError, check_form_csrf, form_csrf, read_multipart};

#[derive(Template)]
#[template(path = "apply.html")]
struct ApplyPage {
    layout: Layout,
    checklist: &'static [Material],
    max_mb: String,
}

/// `GET /apply`.
pub async fn apply(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
) -> PageResult {
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let page = ApplyPage {
        layout: layout(BUSINESS.name_zh(), Some(&s), csrf),
        checklist: BUSINESS.required_materials(),
        max_mb: mb(app.upload_limits.max_file_bytes),
    };
    render(&page, StatusCode::OK)
}

/// `POST /drafts`: starts a draft.
pub async fn create_draft(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    let id = applications::create_draft(&app, &s.account_id, ow_store::now_ms()).await?;
    Ok(see_other(&format!("/drafts/{id}/unit")))
}

async fn load_draft(
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
}

/// `GET /drafts/{id}/unit`.
pub async fn draft_unit(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let (_, form) = load_draft(&app, &s, &id).await?;
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let page = UnitPage {
        layout: layout("不动产与成交价格", Some(&s), csrf),
        draft_id: id,
        step: 1,
        form,
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
    let (_, mut form) = load_draft(&app, &s, &id).await?;
    form.unit_code = f.unit_code.trim().to_owned();
    form.certificate_number = f.certificate_number.trim().to_owned();
    form.price_yuan = f.price_yuan.trim().to_owned();
    applications::save_draft(&app, &s.account_id, &id, &form, ow_store::now_ms()).await?;
    let mut errors = applications::check_unit(&form, &app)
        .err()
        .unwrap_or_default();
    if let Err(e) = applications::parse_price_fen(&form.price_yuan) {
        errors.push(e);
    }
    if errors.is_empty() {
        return Ok(see_other(&format!("/drafts/{id}/parties")));
    }
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let mut l = layout("不动产与成交价格", Some(&s), csrf);
    l.errors = errors;
    render(
        &UnitPage {
            layout: l,
            draft_id: id,
            step: 1,
            form,
        },
        StatusCode::UNPROCESSABLE_ENTITY,
    )
}

struct PartyRow {
    input: PartyInput,
    f_name: String,
    f_id: String,
    f_phone: String,
    f_share: String,
}

struct SideView {
    key: &'static str,
    title: &'static str,
    rows: Vec<PartyRow>,
    can_add: bool,
}

fn side_view(side: Side, rows: &[PartyInput]) -> SideView {
    let key = side.key();
    SideView {
        key,
        title: side.name_zh(),
        rows: rows
            .iter()
            .enumerate()
            .map(|(i, r)| PartyRow {
                input: r.clone(),
                f_name: format!("{key}_{i}_name"),
                f_id: format!("{key}_{i}_id_number"),
                f_phone: format!("{key}_{i}_phone"),
                f_share: format!("{key}_{i}_share"),
            })
            .collect(),
        can_add: rows.len() < MAX_PARTIES,
    }
}

#[derive(Template)]
#[template(path = "draft_parties.html")]
struct PartiesPage {
    layout: Layout,
    draft_id: String,
    step: usize,
    sellers: Vec<PartyInput>,
    buyers: Vec<PartyInput>,
    sides: Vec<SideView>,
}

fn parties_page(l: Layout, id: String, form: &ApplicationForm) -> PartiesPage {
    let mut sellers = form.sellers.clone();
    let mut buyers = form.buyers.clone();
    if sellers.is_empty() {
        sellers.push(PartyInput::default());
    }
    if buyers.is_empty() {
        buyers.push(PartyInput::default());
    }
    PartiesPage {
        layout: l,
        draft_id: id,
        step: 2,
        sides: vec![
            side_view(Side::Seller, &sellers),
            side_view(Side::Buyer, &buyers),
        ],
        sellers,
        buyers,
    }
}

/// `GET /drafts/{id}/parties`.
pub async fn draft_parties(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let (_, form) = load_draft(&app, &s, &id).await?;
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    render(
        &parties_page(layout("买卖双方", Some(&s), csrf), id, &form),
        StatusCode::OK,
    )
}

fn rows_from(fields: &HashMap<String, String>, side: Side) -> Vec<PartyInput> {
    let key = side.key();
    let n = fields
        .get(&format!("{key}_rows"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0)
        .min(MAX_PARTIES);
    let get = |i: usize, f: &str| {
        fields
            .get(&format!("{key}_{i}_{f}"))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    (0..n)
        .map(|i| PartyInput {
            name: get(i, "name"),
            id_number: get(i, "id_number"),
            phone: get(i, "phone"),
            share: get(i, "share"),
        })
        .collect()
}

/// `POST /drafts/{id}/parties`: saves; "再添加一位" adds a row; "保存并继续" checks both sides.
pub async fn save_parties(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(fields): Form<HashMap<String, String>>,
) -> PageResult {
    check_form_csrf(
        &app,
        Some(&s),
        &headers,
        fields.get("csrf").map(String::as_str),
    )?;
    let (_, mut form) = load_draft(&app, &s, &id).await?;
    form.sellers = rows_from(&fields, Side::Seller);
    form.buyers = rows_from(&fields, Side::Buyer);
    let action = fields.get("action").map(String::as_str).unwrap_or("save");
    match action {
        "add_seller" if form.sellers.len() < MAX_PARTIES => {
            form.sellers.push(PartyInput::default())
        }
        "add_buyer" if form.buyers.len() < MAX_PARTIES => form.buyers.push(PartyInput::default()),
        _ => {}
    }
    applications::save_draft(&app, &s.account_id, &id, &form, ow_store::now_ms()).await?;
    if action.starts_with("add_") {
        return Ok(see_other(&format!("/drafts/{id}/parties")));
    }
    let mut errors = Vec::new();
    if let Err(e) = applications::check_side(&form.sellers, Side::Seller) {
        errors.extend(e);
    }
    if let Err(e) = applications::check_side(&form.buyers, Side::Buyer) {
        errors.extend(e);
    }
    if errors.is_empty() {
        return Ok(see_other(&format!("/drafts/{id}/materials")));
    }
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let mut l = layout("买卖双方", Some(&s), csrf);
    l.errors = errors;
    render(
        &parties_page(l, id, &form),
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
    name_zh: &'static str,
    required: bool,
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
) -> Result<MaterialsPage, PageError> {
    let have = applications::materials(app, &id).await?;
    let items = BUSINESS
        .required_materials()
        .iter()
        .map(|m| MaterialItem {
            code: m.code,
            name_zh: m.name_zh,
            required: m.required,
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
    load_draft(&app, &s, &id).await?;
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let page = materials_page(&app, layout("上传材料", Some(&s), csrf), id).await?;
    render(&page, StatusCode::OK)
}

/// `POST /drafts/{id}/materials` (multipart): one or more files, each in a field named by its
/// checklist code. Every file is checked first; one refusal stores nothing.
pub async fn upload_materials(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    mp: Multipart,
) -> PageResult {
    let read = read_multipart(mp, app.upload_limits.max_file_bytes).await;
    let (fields, files) = match &read {
        Ok((fields, files)) => (fields.clone(), files.clone()),
        Err(_) => (HashMap::new(), Vec::new()),
    };
    if read.is_ok() {
        check_form_csrf(
            &app,
            Some(&s),
            &headers,
            fields.get("csrf").map(String::as_str),
        )?;
    }
    load_draft(&app, &s, &id).await?;
    let result = match read {
        Err(e) => Err(FieldError::new("file", e.message_zh())),
        Ok(_) if files.is_empty() => Err(FieldError::new("file", "请选择要上传的文件")),
        Ok(_) => match files
            .iter()
            .find(|f| !applications::is_checklist_code(&f.field))
        {
            Some(f) => Err(FieldError::new(
                "file",
                format!("未知的材料类型：{}", f.field),
            )),
            None => {
                let code = files.first().map(|f| f.field.clone()).unwrap_or_default();
                check_all(files, &app.upload_limits)
                    .map_err(|e| FieldError::new(code, e.message_zh()))
            }
        },
    };
    let result = match result {
        Ok(accepted) => applications::check_draft_capacity(&app, &id, &accepted)
            .await?
            .map(|()| accepted),
        Err(e) => Err(e),
    };
    match result {
        Ok(accepted) => {
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
            Ok(see_other(&format!("/drafts/{id}/materials")))
        }
        Err(err) => {
            let (csrf, _) = form_csrf(&app, Some(&s), &headers);
            let mut l = layout("上传材料", Some(&s), csrf);
            l.errors = vec![err];
            let page = materials_page(&app, l, id).await?;
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

/// `POST /drafts/{id}/delete`.
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
    Ok(see_other("/applications"))
}

struct PartyLine {
    role: &'static str,
    name: String,
    id_number: String,
    share: String,
}

#[derive(Template)]
#[template(path = "draft_check.html")]
struct CheckPage {
    layout: Layout,
    draft_id: String,
    step: usize,
    business: &'static str,
    unit_code: String,
    certificate_number: String,
    price: String,
    parties: Vec<PartyLine>,
    materials: Vec<MaterialView>,
    ready: bool,
}

async fn check_page(
    app: &crate::app::App,
    s: &accounts::Session,
    headers: &HeaderMap,
    id: String,
    extra_errors: Vec<FieldError>,
) -> Result<CheckPage, PageError> {
    let (_, form) = load_draft(app, s, &id).await?;
    let materials = applications::materials(app, &id).await?;
    let mut errors = applications::check_form(&form, app)
        .err()
        .unwrap_or_default();
    for m in applications::missing_materials(&materials) {
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
    let mut parties = Vec::new();
    for (role, rows) in [("出卖人", &form.sellers), ("买受人", &form.buyers)] {
        for p in rows
            .iter()
            .filter(|p| !p.name.trim().is_empty() || !p.id_number.trim().is_empty())
        {
            parties.push(PartyLine {
                role,
                name: ow_domain::mask::mask_name(p.name.trim()),
                id_number: ow_domain::mask::mask_id_number(p.id_number.trim()),
                share: p.share.clone(),
            });
        }
    }
    let (csrf, _) = form_csrf(app, Some(s), headers);
    let ready = errors.is_empty();
    let mut l = layout("核对信息", Some(s), csrf);
    l.errors = errors;
    Ok(CheckPage {
        layout: l,
        draft_id: id,
        step: 4,
        business: BUSINESS.name_zh(),
        unit_code: form.unit_code.clone(),
        certificate_number: form.certificate_number.clone(),
        price: applications::parse_price_fen(&form.price_yuan)
            .map(fmt_fen)
            .unwrap_or_else(|_| form.price_yuan.clone()),
        parties,
        materials,
        ready,
    })
}

/// `GET /drafts/{id}/check`: 核对信息, personal data masked.
pub async fn draft_check(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> PageResult {
    let page = check_page(&app, &s, &headers, id, Vec::new()).await?;
    render(&page, StatusCode::OK)
}

/// `POST /drafts/{id}/submit`.
pub async fn submit(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    match applications::submit(&app, &s.account_id, &id, ow_store::now_ms()).await {
        Ok(no) => Ok(see_other(&format!("/applications/{no}?submitted=1"))),
        Err(SubmitError::NotFound) => Err(PageError::NotFound),
        Err(SubmitError::Invalid(errors)) => {
            let page = check_page(&app, &s, &headers, id, errors).await?;
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(SubmitError::Internal(e)) => Err(e.into()),
    }
}
