//! The queue, the package page (drawing, findings, approve / reject forms) and the GeoJSON
//! export.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::{
    Authed, Layout, PageError, authed, check_form_csrf, field, fmt_ms, internal, redirect,
    render_status,
};
use crate::packages::{self, ApproveInput, Package, ReviewError};
use crate::surveyors::Role;
use crate::{AppState, checks, files, parcels, register};

/// The routes of this part.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/packages", get(queue))
        .route("/packages/{id}", get(package))
        .route("/packages/{id}/approve", post(approve))
        .route("/packages/{id}/reject", post(reject))
        .route("/packages/{id}/parcels/{position}/geojson", get(geojson))
}

struct RowView {
    package_id: String,
    application_no: String,
    format: String,
    confidential: bool,
    status_zh: &'static str,
    error_count: i64,
    warning_count: i64,
    parcel_count: i64,
    received: String,
}

fn status_zh(status: &str) -> &'static str {
    match status {
        packages::PENDING => "待审查",
        packages::APPROVED => "已通过",
        packages::REJECTED => "已驳回",
        _ => "未知",
    }
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    layout: Layout,
    rows: Vec<RowView>,
    showing_all: bool,
    gaps: Vec<String>,
    parcel_count: i64,
}

#[derive(Deserialize)]
struct QueueQuery {
    status: Option<String>,
}

async fn queue(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<QueueQuery>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let all = q.status.as_deref() == Some("all");
    let district = &auth.surveyor.district_code;
    let rows = packages::queue(
        &state.store,
        district,
        if all { None } else { Some(packages::PENDING) },
    )
    .await
    .map_err(internal)?;
    let gaps = register::gaps(&state.store)
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|g| &g.district_code == district)
        .map(|g| g.message_zh())
        .collect();
    let parcel_count = parcels::count(&state.store, district)
        .await
        .map_err(internal)?;
    let page = QueuePage {
        layout: Layout::for_surveyor("调查成果审查队列", &auth),
        rows: rows
            .into_iter()
            .map(|r| RowView {
                status_zh: status_zh(&r.status),
                received: fmt_ms(r.received_at_ms),
                package_id: r.package_id,
                application_no: r.application_no,
                format: r.format,
                confidential: r.confidential,
                error_count: r.error_count,
                warning_count: r.warning_count,
                parcel_count: r.parcel_count,
            })
            .collect(),
        showing_all: all,
        gaps,
        parcel_count,
    };
    Ok(render_status(StatusCode::OK, &page))
}

struct FindingView {
    n: usize,
    code: String,
    is_error: bool,
    parcel: String,
    point: String,
    message: String,
    advice: String,
}

/// How many parcels of one package the page draws (a package may hold thousands; each has its
/// GeoJSON export).
const MAX_DRAWINGS: usize = 50;

struct ParcelView {
    position: i64,
    number: String,
    name: String,
    area_m2: String,
    unit_code: String,
    entered: String,
    svg: Option<String>,
}

#[derive(Template)]
#[template(path = "package.html")]
struct PackagePage {
    layout: Layout,
    package_id: String,
    application_no: String,
    format: String,
    confidential: bool,
    status_zh: &'static str,
    pending: bool,
    received: String,
    decided: String,
    reason: String,
    error_count: i64,
    warning_count: i64,
    is_chief: bool,
    findings: Vec<FindingView>,
    parcels: Vec<ParcelView>,
}

async fn load(state: &AppState, auth: &Authed, id: &str) -> Result<Package, PageError> {
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    packages::get(&mut conn, state, &auth.surveyor.district_code, id)
        .await
        .map_err(internal)?
        .ok_or(PageError::NotFound)
}

async fn survey_bytes(state: &AppState, p: &Package) -> Result<Vec<u8>, PageError> {
    let pii = state.pii.clone();
    let dir = state.data_dir().to_path_buf();
    let id = p.survey_file_id.clone();
    let max = state.settings.survey.max_file_bytes;
    tokio::task::spawn_blocking(move || files::read_blocking(&pii, &dir, &id, max))
        .await
        .map_err(internal)?
        .map_err(internal)
}

async fn package_page(
    state: &AppState,
    auth: &Authed,
    id: &str,
    status: StatusCode,
    error: Option<String>,
    entered: &[(i64, String)],
) -> Result<Response, PageError> {
    let p = load(state, auth, id).await?;
    let bytes = survey_bytes(state, &p).await?;
    let format = p.row.format.clone();
    let survey = tokio::task::spawn_blocking(move || checks::read(&bytes, &format))
        .await
        .map_err(internal)?;
    let proposed = survey
        .as_ref()
        .map(checks::proposed_unit_codes)
        .unwrap_or_default();
    let mut views = Vec::with_capacity(p.parcels.len());
    for (i, parcel) in p.parcels.iter().enumerate() {
        let drawn = i < MAX_DRAWINGS;
        let ids = if drawn {
            state
                .index_read()
                .near(&parcel.geometry, state.settings.survey.draw_neighbours_m)
        } else {
            Vec::new()
        };
        let ids: Vec<_> = ids
            .into_iter()
            .filter(|i| Some(*i) != parcel.parcel_id)
            .collect();
        let mut conn = state.store.reader().acquire().await.map_err(internal)?;
        let neighbours: Vec<_> = parcels::by_ids(&mut conn, &ids)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|(_, code, g)| (code, g))
            .collect();
        let own: Vec<(u32, _)> = p
            .findings
            .iter()
            .enumerate()
            .filter(|(_, f)| f.parcel.as_deref().is_none_or(|n| n == parcel.number))
            .map(|(i, f)| (u32::try_from(i + 1).unwrap_or(u32::MAX), f.clone()))
            .collect();
        let overlaps: Vec<_> = if drawn && p.row.status == packages::PENDING {
            state
                .index_read()
                .overlaps(&parcel.geometry, &state.settings.spatial.tolerance())
                .into_iter()
                .map(|o| o.region)
                .collect()
        } else {
            Vec::new()
        };
        views.push(ParcelView {
            position: parcel.position,
            number: parcel.number.clone(),
            name: parcel.name.clone(),
            area_m2: parcel.area_m2.clone(),
            unit_code: parcel.unit_code.clone().unwrap_or_default(),
            entered: entered
                .iter()
                .find(|(pos, _)| *pos == parcel.position)
                .map(|(_, c)| c.clone())
                .or_else(|| proposed.get(&parcel.number).cloned())
                .unwrap_or_default(),
            svg: survey
                .as_ref()
                .filter(|_| drawn)
                .and_then(|pkg| checks::draw(pkg, &parcel.number, &neighbours, &own, &overlaps)),
        });
    }
    let mut layout = Layout::for_surveyor(format!("调查成果 {}", p.row.application_no), auth);
    layout.error = error;
    let page = PackagePage {
        layout,
        package_id: p.row.package_id.clone(),
        application_no: p.row.application_no.clone(),
        format: p.row.format.clone(),
        confidential: p.row.confidential,
        status_zh: status_zh(&p.row.status),
        pending: p.row.status == packages::PENDING,
        received: fmt_ms(p.row.received_at_ms),
        decided: p.decided_at_ms.map(fmt_ms).unwrap_or_default(),
        reason: p.reason.clone().unwrap_or_default(),
        error_count: p.row.error_count,
        warning_count: p.row.warning_count,
        is_chief: auth.surveyor.has(Role::Chief),
        findings: p
            .findings
            .iter()
            .enumerate()
            .map(|(i, f)| FindingView {
                n: i + 1,
                code: f.code.clone(),
                is_error: f.severity == "error",
                parcel: f.parcel.clone().unwrap_or_default(),
                point: f.point.clone().unwrap_or_default(),
                message: f.message.clone(),
                advice: f.advice.clone(),
            })
            .collect(),
        parcels: views,
    };
    Ok(render_status(status, &page))
}

async fn package(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    package_page(&state, &auth, &id, StatusCode::OK, None, &[]).await
}

fn decision_response(
    state: &AppState,
    id: &str,
    result: Result<packages::Decided, ReviewError>,
) -> Result<Result<Response, String>, PageError> {
    match result {
        Ok(decided) => {
            state.after_decision(&decided);
            Ok(Ok(redirect(&format!("/packages/{id}"))))
        }
        Err(ReviewError::NotFound) => Err(PageError::NotFound),
        Err(ReviewError::Other(e)) => Err(internal(e)),
        Err(e) => Ok(Err(e.to_string())),
    }
}

async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    check_form_csrf(&auth.token, &form)?;
    let p = load(&state, &auth, &id).await?;
    let mut entered = Vec::new();
    let mut input = ApproveInput {
        override_reason: field(&form, "override_reason").map(str::to_owned),
        ..ApproveInput::default()
    };
    for parcel in &p.parcels {
        let code = field(&form, &format!("code_{}", parcel.position))
            .unwrap_or("")
            .trim()
            .to_owned();
        entered.push((parcel.position, code.clone()));
        input.unit_codes.push((parcel.number.clone(), code));
    }
    let result = packages::approve(&state, &auth.surveyor, &id, &input).await;
    match decision_response(&state, &id, result)? {
        Ok(r) => Ok(r),
        Err(message) => {
            package_page(
                &state,
                &auth,
                &id,
                StatusCode::BAD_REQUEST,
                Some(message),
                &entered,
            )
            .await
        }
    }
}

async fn reject(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    check_form_csrf(&auth.token, &form)?;
    let reason = field(&form, "reason").unwrap_or("");
    let result = packages::reject(&state, &auth.surveyor, &id, reason).await;
    match decision_response(&state, &id, result)? {
        Ok(r) => Ok(r),
        Err(message) => {
            package_page(
                &state,
                &auth,
                &id,
                StatusCode::BAD_REQUEST,
                Some(message),
                &[],
            )
            .await
        }
    }
}

async fn geojson(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, position)): Path<(String, i64)>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let p = load(&state, &auth, &id).await?;
    let parcel = p
        .parcels
        .iter()
        .find(|x| x.position == position)
        .ok_or(PageError::NotFound)?;
    let bytes = survey_bytes(&state, &p).await?;
    let text = checks::geojson(&bytes, &p.row.format, &parcel.number).ok_or(PageError::NotFound)?;
    // The file name is made of ids only (a parcel number from the file could be anything).
    let name = format!(
        "attachment; filename=\"parcel-{}-{position}.geojson\"",
        p.row.package_id
    );
    Ok((
        [
            (CONTENT_TYPE, "application/geo+json".to_owned()),
            (CONTENT_DISPOSITION, name),
        ],
        text,
    )
        .into_response())
}
