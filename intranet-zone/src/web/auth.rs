//! Signing in: password, then TOTP; signing out (the back office's flow, over surveyor accounts).

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use chrono::TimeDelta;
use ow_web::csrf::{check_csrf, csrf_token_for};
use ow_web::token::new_token;

use super::{Layout, PageError, check_form_csrf, field, redirect, render, render_status};
use crate::AppState;
use crate::surveyors::{self, LoginError, Stage, Surveyor};

/// The routes of signing in.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login_submit))
        .route("/login/totp", get(totp_page).post(totp_submit))
        .route("/logout", post(logout))
}

/// The cookie that carries the pre-login CSRF secret.
const PRE_COOKIE: &str = "ow_int_pre";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    username: String,
}

#[derive(Template)]
#[template(path = "totp.html")]
struct TotpPage {
    layout: Layout,
}

fn pre_token(headers: &HeaderMap) -> Option<String> {
    ow_web::session::read_token(headers, PRE_COOKIE)
}

fn pre_cookie(state: &AppState, token: &str) -> HeaderValue {
    let secure = if state.settings.cookie_secure {
        "; Secure"
    } else {
        ""
    };
    HeaderValue::from_str(&format!(
        "{PRE_COOKIE}={token}; Max-Age=3600; Path=/login; HttpOnly; SameSite=Strict{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn login_response(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    username: &str,
    error: Option<String>,
) -> Response {
    let (token, fresh) = match pre_token(headers) {
        Some(t) => (t, false),
        None => (new_token(), true),
    };
    let mut layout = Layout::new("调查审查员登录");
    layout.csrf = csrf_token_for(&token);
    layout.error = error;
    let mut r = render_status(
        status,
        &LoginPage {
            layout,
            username: username.to_owned(),
        },
    );
    if fresh {
        r.headers_mut()
            .append(SET_COOKIE, pre_cookie(state, &token));
    }
    r
}

async fn login_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    login_response(&state, &headers, StatusCode::OK, "", None)
}

async fn login_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let username = field(&form, "username").unwrap_or("").trim().to_owned();
    let pre = pre_token(&headers);
    if let Err(e) = check_csrf(pre.as_deref(), field(&form, "csrf")) {
        return login_response(
            &state,
            &headers,
            StatusCode::BAD_REQUEST,
            &username,
            Some(e.message_zh()),
        );
    }
    let password = field(&form, "password").unwrap_or("");
    let now = state.now();
    match surveyors::check_password(
        &state.store,
        &state.hasher,
        &state.lockout,
        &username,
        password,
        now,
    )
    .await
    {
        Ok(id) => {
            let lifetime = TimeDelta::minutes(10);
            match surveyors::create_session(&state.store, &id, Stage::Password, now, lifetime).await
            {
                Ok(token) => {
                    let mut r = redirect("/login/totp");
                    r.headers_mut()
                        .append(SET_COOKIE, state.cookie.set_cookie_header(&token));
                    r
                }
                Err(e) => PageError::Internal(e.to_string()).into_response(),
            }
        }
        Err(LoginError::Internal(e)) => PageError::Internal(e.to_string()).into_response(),
        Err(e) => {
            tracing::info!("surveyor login refused at the password step");
            let status = if matches!(e, LoginError::Busy) {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::UNAUTHORIZED
            };
            login_response(&state, &headers, status, &username, Some(e.to_string()))
        }
    }
}

async fn pending_session(state: &AppState, headers: &HeaderMap) -> Option<(Surveyor, String)> {
    let token = state.cookie.read_token(headers)?;
    match surveyors::session(&state.store, &token, state.now()).await {
        Ok(Some((s, Stage::Password))) => Some((s, token)),
        _ => None,
    }
}

async fn totp_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some((_, token)) = pending_session(&state, &headers).await else {
        return redirect("/login");
    };
    let mut layout = Layout::new("输入动态口令");
    layout.csrf = csrf_token_for(&token);
    render(&TotpPage { layout })
}

async fn totp_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let Some((member, token)) = pending_session(&state, &headers).await else {
        return redirect("/login");
    };
    if let Err(e) = check_form_csrf(&token, &form) {
        return e.into_response();
    }
    let now = state.now();
    let code = field(&form, "code").unwrap_or("");
    match surveyors::check_totp(
        &state.store,
        &state.pii,
        &state.lockout,
        &member.id,
        code,
        now,
    )
    .await
    {
        Ok(()) => {
            let _ = surveyors::end_session(&state.store, &token).await;
            let lifetime = TimeDelta::minutes(i64::from(state.settings.session_minutes));
            match surveyors::create_session(&state.store, &member.id, Stage::Full, now, lifetime)
                .await
            {
                Ok(full) => {
                    tracing::info!(surveyor_id = %member.id, "surveyor signed in");
                    let mut r = redirect("/packages");
                    r.headers_mut()
                        .append(SET_COOKIE, state.cookie.set_cookie_header(&full));
                    r
                }
                Err(e) => PageError::Internal(e.to_string()).into_response(),
            }
        }
        Err(LoginError::Locked(l)) => {
            let _ = surveyors::end_session(&state.store, &token).await;
            let mut r = login_response(
                &state,
                &headers,
                StatusCode::UNAUTHORIZED,
                &member.username,
                Some(l.message_zh()),
            );
            r.headers_mut()
                .append(SET_COOKIE, state.cookie.clear_cookie_header());
            r
        }
        Err(LoginError::Internal(e)) => PageError::Internal(e.to_string()).into_response(),
        Err(e) => {
            let mut layout = Layout::new("输入动态口令");
            layout.csrf = csrf_token_for(&token);
            layout.error = Some(e.to_string());
            render_status(StatusCode::UNAUTHORIZED, &TotpPage { layout })
        }
    }
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    let Some(token) = state.cookie.read_token(&headers) else {
        return redirect("/login");
    };
    if let Err(e) = check_form_csrf(&token, &form) {
        return e.into_response();
    }
    let _ = surveyors::end_session(&state.store, &token).await;
    let mut r = redirect("/login");
    r.headers_mut()
        .append(SET_COOKIE, state.cookie.clear_cookie_header());
    r
}
