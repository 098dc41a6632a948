//! Server-rendered pages (askama templates in `templates/`), in Chinese, for phones, without
//! JavaScript: plain forms, POST-redirect-GET, a CSRF token in every POST form.
//!
//! One module per area: [`accounts`] (home, registration, sign-in), [`apply`] (the draft walk
//! from the unit to submission), [`applications`] (my applications, timeline, supplements),
//! [`certificates`] (my certificates) and [`verify`] (public verification). This module holds
//! the frame every page shares.

use std::net::{IpAddr, SocketAddr};

use askama::Template;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::error::FieldError;
use crate::web::PageError;

pub mod accounts;
pub mod applications;
pub mod apply;
pub mod certificates;
pub mod verify;

pub use accounts::{
    LoginForm, RegisterForm, account, index, login, login_form, logout, register, register_form,
};
pub use applications::{application_detail, applications_list, material_download, supplement};
pub use apply::{
    UnitForm, apply, create_draft, delete_draft, delete_material, draft_check, draft_materials,
    draft_parties, draft_unit, save_parties, save_unit, submit, upload_materials,
};
pub use certificates::{certificate_download, certificate_print, certificates_list};
pub use verify::{verify, verify_file};

/// The frame every page shares.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Page title.
    pub title: String,
    /// Whether a citizen is signed in (navigation, logout form).
    pub signed_in: bool,
    /// CSRF token for the page's forms.
    pub csrf: String,
    /// Form errors for the summary at the top.
    pub errors: Vec<FieldError>,
    /// A success message.
    pub notice: Option<String>,
}

impl Layout {
    /// Whether `field` has an error.
    pub fn has_error(&self, field: &str) -> bool {
        self.errors.iter().any(|e| e.field == field)
    }
}

pub(crate) type PageResult = Result<Response, PageError>;

pub(crate) fn layout(
    title: &str,
    session: Option<&crate::accounts::Session>,
    csrf: String,
) -> Layout {
    Layout {
        title: title.to_owned(),
        signed_in: session.is_some(),
        csrf,
        errors: Vec::new(),
        notice: None,
    }
}

pub(crate) fn render<T: Template>(t: &T, status: StatusCode) -> PageResult {
    Ok((status, Html(t.render()?)).into_response())
}

pub(crate) fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}

pub(crate) fn mb(bytes: u64) -> String {
    let tenths = (bytes * 10 + 524_288) / 1_048_576;
    if tenths.is_multiple_of(10) {
        format!("{}", tenths / 10)
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    layout: Layout,
    message: &'a str,
}

/// The HTML of an error page.
pub fn error_page(title: &str, message: &str) -> String {
    let page = ErrorPage {
        layout: layout(title, None, String::new()),
        message,
    };
    page.render()
        .unwrap_or_else(|_| format!("<!DOCTYPE html><title>{title}</title><p>{message}</p>"))
}

/// The client's address (when the server was started with connect info).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

/// A form with only the CSRF token.
#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// `Content-Disposition: attachment` with an ASCII fallback and the UTF-8 name.
pub fn attachment(file_name: &str, fallback: &str) -> HeaderValue {
    let mut encoded = String::new();
    for b in file_name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            encoded.push(char::from(b));
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!(
        "attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}
