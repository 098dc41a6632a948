//! My certificates: the list, the signed file, the printable page.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse};

use super::{Layout, PageResult, attachment, layout, render};
use crate::app::AppState;
use crate::certificates;
use crate::util::fmt_ms;
use crate::web::{Citizen, PageError, form_csrf};

struct CertRow {
    id: String,
    number: String,
    status_zh: &'static str,
    badge: &'static str,
    when: String,
}

#[derive(Template)]
#[template(path = "certificates.html")]
struct CertificatesPage {
    layout: Layout,
    rows: Vec<CertRow>,
}

/// `GET /certificates`: 我的证书.
pub async fn certificates_list(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
) -> PageResult {
    let rows = certificates::list(&app, &s.account_id)
        .await?
        .into_iter()
        .map(|c| CertRow {
            status_zh: match c.status.as_str() {
                "valid" => "有效",
                "cancelled" => "已注销",
                _ => "待确认",
            },
            badge: match c.status.as_str() {
                "valid" => "ok",
                "cancelled" => "bad",
                _ => "",
            },
            id: c.id,
            number: c.certificate_number,
            when: fmt_ms(c.issued_at_ms),
        })
        .collect();
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    render(
        &CertificatesPage {
            layout: layout("我的证书", Some(&s), csrf),
            rows,
        },
        StatusCode::OK,
    )
}

/// `GET /certificates/{id}/download`: the signed e-certificate JSON.
pub async fn certificate_download(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    Path(id): Path<String>,
) -> PageResult {
    let signed = certificates::get_signed(&app, &s.account_id, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let json = signed.to_json().map_err(crate::error::AppError::from)?;
    let name = format!("{}.json", signed.certificate.certificate_number.as_str());
    let mut r = json.into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r.headers_mut()
        .insert(CONTENT_DISPOSITION, attachment(&name, "e-certificate.json"));
    Ok(r)
}

/// `GET /certificates/{id}/print`: the printable page with the QR code.
pub async fn certificate_print(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    Path(id): Path<String>,
) -> PageResult {
    let signed = certificates::get_signed(&app, &s.account_id, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let html = ow_certificate::render_html(&signed, &app.settings.verify_base_url())
        .map_err(crate::error::AppError::from)?;
    Ok(Html(html).into_response())
}
