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
    pdf: bool,
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
            pdf: app.certificate_font.is_ok(),
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

/// `GET /certificates/{id}/print`: the certificate page with the QR code: as wide as the screen
/// on a phone, an A4 sheet when printed, with links to the PDF and the signed file on screen.
pub async fn certificate_print(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    Path(id): Path<String>,
) -> PageResult {
    let signed = certificates::get_signed(&app, &s.account_id, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let pdf = format!("/certificates/{id}/pdf");
    let json = format!("/certificates/{id}/download");
    let links = ow_certificate::ScreenLinks {
        pdf: app.certificate_font.is_ok().then_some(pdf.as_str()),
        json: Some(json.as_str()),
        back: Some("/certificates"),
    };
    let html =
        ow_certificate::render_html_with_links(&signed, &app.settings.verify_base_url(), links)
            .map_err(crate::error::AppError::from)?;
    Ok(Html(html).into_response())
}

/// `GET /certificates/{id}/pdf`: the e-certificate as a PDF (one A4 page with the QR code and the
/// signed file attached, verifiable on `/verify`).
pub async fn certificate_pdf(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    Path(id): Path<String>,
) -> PageResult {
    let signed = certificates::get_signed(&app, &s.account_id, &id)
        .await?
        .ok_or(PageError::NotFound)?;
    let unavailable = |message: &str| {
        let html = super::error_page("暂时无法生成 PDF", message);
        Ok((StatusCode::SERVICE_UNAVAILABLE, Html(html)).into_response())
    };
    let font = match &app.certificate_font {
        Ok(font) => font.clone(),
        Err(reason) => {
            tracing::warn!(%reason, "certificate PDF asked for without a font");
            return unavailable(
                "本平台暂时无法生成 PDF 电子证书。请使用证书页面打印，或下载电子证照文件（.json），两者同样可以查验。",
            );
        }
    };
    let base = app.settings.verify_base_url();
    let number = signed.certificate.certificate_number.as_str().to_owned();
    let rendered =
        tokio::task::spawn_blocking(move || ow_certificate::render_pdf(&signed, &base, &font))
            .await
            .map_err(|e| crate::error::AppError::Corrupt(format!("PDF task: {e}")))?;
    let pdf = match rendered {
        Ok(pdf) => pdf,
        Err(e @ ow_certificate::CertificateError::FontMissesCharacters { .. }) => {
            tracing::warn!(certificate = %id, error = %e, "certificate PDF not made");
            return unavailable(&e.message_zh());
        }
        Err(e) => return Err(crate::error::AppError::from(e).into()),
    };
    let mut r = pdf.into_response();
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    r.headers_mut().insert(
        CONTENT_DISPOSITION,
        attachment(&format!("{number}.pdf"), "e-certificate.pdf"),
    );
    Ok(r)
}
