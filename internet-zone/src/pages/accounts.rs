//! Home, registration, sign-in and sign-out, and the account page.

use std::collections::HashMap;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;

use super::{CsrfOnly, Layout, PageResult, layout, render, see_other};
use crate::accounts::{self, LoginError, RegisterError, RegisterInput};
use crate::app::AppState;
use crate::error::FieldError;
use crate::web::{Citizen, MaybeCitizen, PageError, check_form_csrf, form_csrf, with_cookie};

#[derive(Template)]
#[template(path = "index.html")]
struct IndexPage {
    layout: Layout,
}

/// `GET /`.
pub async fn index(
    State(app): State<AppState>,
    MaybeCitizen(s): MaybeCitizen,
    headers: HeaderMap,
) -> PageResult {
    let (csrf, cookie) = form_csrf(&app, s.as_ref(), &headers);
    let page = IndexPage {
        layout: layout("首页", s.as_ref(), csrf),
    };
    Ok(with_cookie(render(&page, StatusCode::OK)?, cookie))
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    layout: Layout,
    name: String,
    id_number: String,
    phone: String,
    password_hint: String,
}

fn password_hint(app: &crate::app::App) -> String {
    format!(
        "至少{}个字符，包含小写字母、大写字母、数字、符号中的至少{}类",
        app.password_policy.min_length, app.password_policy.min_classes
    )
}

/// `GET /register`.
pub async fn register_form(
    State(app): State<AppState>,
    MaybeCitizen(s): MaybeCitizen,
    headers: HeaderMap,
) -> PageResult {
    if s.is_some() {
        return Ok(see_other("/applications"));
    }
    let (csrf, cookie) = form_csrf(&app, None, &headers);
    let page = RegisterPage {
        layout: layout("注册", None, csrf),
        name: String::new(),
        id_number: String::new(),
        phone: String::new(),
        password_hint: password_hint(&app),
    };
    Ok(with_cookie(render(&page, StatusCode::OK)?, cookie))
}

/// The registration form.
#[derive(Deserialize)]
pub struct RegisterForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    id_number: String,
    #[serde(default)]
    phone: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    password_confirm: String,
}

impl std::fmt::Debug for RegisterForm {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterForm")
            .field("name", &ow_domain::mask::mask_name(&self.name))
            .field(
                "id_number",
                &ow_domain::mask::mask_id_number(&self.id_number),
            )
            .field("phone", &ow_domain::mask::mask_phone(&self.phone))
            .finish_non_exhaustive()
    }
}

/// `POST /register`.
pub async fn register(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<RegisterForm>,
) -> PageResult {
    check_form_csrf(&app, None, &headers, Some(&f.csrf))?;
    let input = RegisterInput {
        name: f.name.clone(),
        id_number: f.id_number.clone(),
        phone: f.phone.clone(),
        password: f.password,
        password_confirm: f.password_confirm,
    };
    match accounts::register(&app, &input, ow_store::now_ms()).await {
        Ok(_) => Ok(see_other("/login?registered=1")),
        Err(RegisterError::Invalid(errors)) => {
            let (csrf, cookie) = form_csrf(&app, None, &headers);
            let mut l = layout("注册", None, csrf);
            l.set_errors(errors);
            let page = RegisterPage {
                layout: l,
                name: f.name,
                id_number: f.id_number,
                phone: f.phone,
                password_hint: password_hint(&app),
            };
            Ok(with_cookie(
                render(&page, StatusCode::UNPROCESSABLE_ENTITY)?,
                cookie,
            ))
        }
        Err(RegisterError::Busy) => Err(PageError::Busy),
        Err(RegisterError::Internal(e)) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    login: String,
}

/// `GET /login`.
pub async fn login_form(
    State(app): State<AppState>,
    MaybeCitizen(s): MaybeCitizen,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> PageResult {
    if s.is_some() {
        return Ok(see_other("/applications"));
    }
    let (csrf, cookie) = form_csrf(&app, None, &headers);
    let mut l = layout("登录", None, csrf);
    if q.contains_key("registered") {
        l.notice = Some(accounts::REGISTERED_NOTICE_ZH.into());
    }
    let page = LoginPage {
        layout: l,
        login: String::new(),
    };
    Ok(with_cookie(render(&page, StatusCode::OK)?, cookie))
}

/// The login form.
#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
}

impl std::fmt::Debug for LoginForm {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginForm")
            .field("login", &ow_domain::mask::mask_all(&self.login))
            .finish_non_exhaustive()
    }
}

/// `POST /login`.
pub async fn login(
    State(app): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> PageResult {
    check_form_csrf(&app, None, &headers, Some(&f.csrf))?;
    // An empty field is asked for; it is not a failed sign-in and does not count towards the
    // lockout.
    let mut missing = Vec::new();
    if f.login.trim().is_empty() {
        missing.push(FieldError::new("login", "请输入身份证号码或手机号码"));
    }
    if f.password.is_empty() {
        missing.push(FieldError::new("password", "请输入密码"));
    }
    if !missing.is_empty() {
        let (csrf, cookie) = form_csrf(&app, None, &headers);
        let mut l = layout("登录", None, csrf);
        l.set_errors(missing);
        let page = LoginPage {
            layout: l,
            login: f.login,
        };
        return Ok(with_cookie(
            render(&page, StatusCode::UNPROCESSABLE_ENTITY)?,
            cookie,
        ));
    }
    match accounts::login(&app, &f.login, &f.password, chrono::Utc::now()).await {
        Ok(session) => {
            let mut r = see_other("/applications");
            r.headers_mut()
                .append(SET_COOKIE, app.cookie.set_cookie_header(&session.token));
            Ok(r)
        }
        Err(LoginError::Internal(e)) => Err(e.into()),
        Err(LoginError::Busy) => Err(PageError::Busy),
        Err(e) => {
            let (csrf, cookie) = form_csrf(&app, None, &headers);
            let mut l = layout("登录", None, csrf);
            l.set_errors(vec![FieldError::new("login", e.message_zh())]);
            let page = LoginPage {
                layout: l,
                login: f.login,
            };
            let status = if matches!(e, LoginError::Locked(_)) {
                StatusCode::TOO_MANY_REQUESTS
            } else {
                StatusCode::UNAUTHORIZED
            };
            Ok(with_cookie(render(&page, status)?, cookie))
        }
    }
}

/// `POST /logout`.
pub async fn logout(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
    Form(f): Form<CsrfOnly>,
) -> PageResult {
    check_form_csrf(&app, Some(&s), &headers, Some(&f.csrf))?;
    accounts::logout(&app, &s.token).await?;
    let mut r = see_other("/");
    r.headers_mut()
        .append(SET_COOKIE, app.cookie.clear_cookie_header());
    Ok(r)
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    layout: Layout,
    account: accounts::AccountView,
}

/// `GET /account`.
pub async fn account(
    State(app): State<AppState>,
    Citizen(s): Citizen,
    headers: HeaderMap,
) -> PageResult {
    let (csrf, _) = form_csrf(&app, Some(&s), &headers);
    let page = AccountPage {
        layout: layout("我的账户", Some(&s), csrf),
        account: accounts::view(&app, &s.account_id).await?,
    };
    render(&page, StatusCode::OK)
}
