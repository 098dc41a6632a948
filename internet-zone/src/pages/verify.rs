//! Public verification of a certificate: by number and code (the QR link) or by its file.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Multipart, Query, State};
use axum::http::{HeaderMap, StatusCode};

use super::{Layout, PageResult, layout, render};
use crate::app::AppState;
use crate::certificates::{self, VerifyResult};
use crate::error::FieldError;
use crate::util::fmt_ms;
use crate::web::{MaybeCitizen, check_form_csrf, form_csrf, read_multipart, with_cookie};

#[derive(Template)]
#[template(path = "verify.html")]
struct VerifyPage {
    layout: Layout,
    cert: String,
    code: String,
    result: Option<VerifyResult>,
    issued: String,
    cancelled: Option<String>,
}

fn verify_page(l: Layout, cert: String, code: String, result: Option<VerifyResult>) -> VerifyPage {
    let issued = result
        .as_ref()
        .and_then(|r| r.record.as_ref())
        .map(|r| fmt_ms(r.issued_at_ms))
        .unwrap_or_default();
    let cancelled = result
        .as_ref()
        .and_then(|r| r.record.as_ref())
        .and_then(|r| r.cancelled_at_ms)
        .map(fmt_ms);
    VerifyPage {
        layout: l,
        cert,
        code,
        result,
        issued,
        cancelled,
    }
}

/// `GET /verify`: the form, or the answer for `?cert=…&code=…` (the QR link; `no` is accepted
/// for `cert`). Public; checks are throttled per source (`server::router`).
pub async fn verify(
    State(app): State<AppState>,
    MaybeCitizen(s): MaybeCitizen,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    let (csrf, cookie) = form_csrf(&app, s.as_ref(), &headers);
    let mut l = layout("电子证书查验", s.as_ref(), csrf);
    let cert = q
        .get("cert")
        .or_else(|| q.get("no"))
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let code = q
        .get("code")
        .map(|v| v.trim().to_owned())
        .unwrap_or_default();
    let mut result = None;
    let mut status = StatusCode::OK;
    if !cert.is_empty() || !code.is_empty() {
        match certificates::verify_code(&app, &cert, &code).await? {
            Ok(r) => result = Some(r),
            Err(errors) => {
                l.errors = errors;
                status = StatusCode::UNPROCESSABLE_ENTITY;
            }
        }
    }
    Ok(with_cookie(
        render(&verify_page(l, cert, code, result), status)?,
        cookie,
    ))
}

/// `POST /verify/file` (multipart `file`): checks an e-certificate file (throttled per source).
pub async fn verify_file(
    State(app): State<AppState>,
    MaybeCitizen(s): MaybeCitizen,
    headers: HeaderMap,
    mp: Multipart,
) -> PageResult {
    let read = read_multipart(mp, ow_certificate::MAX_SIGNED_JSON_BYTES as u64).await;
    let (csrf, cookie) = form_csrf(&app, s.as_ref(), &headers);
    let mut l = layout("电子证书查验", s.as_ref(), csrf);
    let (fields, files) = match read {
        Ok(v) => v,
        Err(e) => {
            l.errors = vec![FieldError::new("file", e.message_zh())];
            return Ok(with_cookie(
                render(
                    &verify_page(l, String::new(), String::new(), None),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )?,
                cookie,
            ));
        }
    };
    check_form_csrf(
        &app,
        s.as_ref(),
        &headers,
        fields.get("csrf").map(String::as_str),
    )?;
    let Some(file) = files.into_iter().next() else {
        l.errors = vec![FieldError::new("file", "请选择电子证照文件")];
        return Ok(with_cookie(
            render(
                &verify_page(l, String::new(), String::new(), None),
                StatusCode::UNPROCESSABLE_ENTITY,
            )?,
            cookie,
        ));
    };
    let result = if file.size > ow_certificate::MAX_SIGNED_JSON_BYTES as u64 {
        certificates::VerifyResult {
            outcome: "not_genuine".into(),
            outcome_zh: "非真实证书".into(),
            record: None,
        }
    } else {
        certificates::verify_file(&app, &file.bytes).await?
    };
    Ok(with_cookie(
        render(
            &verify_page(l, String::new(), String::new(), Some(result)),
            StatusCode::OK,
        )?,
        cookie,
    ))
}
