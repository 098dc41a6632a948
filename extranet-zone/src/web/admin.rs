//! Staff administration by the district admin.

use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;

use super::{
    Authed, Layout, PageError, authed, check_form_csrf, field, fields, internal, render_status,
};
use crate::AppState;
use crate::staff::{self, NewStaff, Role, StaffError};

/// The routes of this part of the back office.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/staff", get(staff_page).post(staff_create))
}

struct StaffRow {
    username: String,
    display_name: String,
    roles: String,
}

struct RoleOption {
    code: &'static str,
    name: &'static str,
}

struct Credentials {
    username: String,
    password: String,
    totp: String,
    otpauth: String,
}

#[derive(Template)]
#[template(path = "staff.html")]
struct StaffPage {
    layout: Layout,
    staff: Vec<StaffRow>,
    roles: Vec<RoleOption>,
    created: Option<Credentials>,
}

async fn staff_page_inner(
    state: &AppState,
    auth: &Authed,
    created: Option<Credentials>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let list = staff::list_district(&state.store, &auth.staff.district_code)
        .await
        .map_err(internal)?;
    let mut layout = Layout::for_staff("工作人员管理", auth);
    layout.error = error;
    Ok(render_status(
        status,
        &StaffPage {
            layout,
            staff: list
                .iter()
                .map(|m| StaffRow {
                    username: m.username.clone(),
                    display_name: m.display_name.clone(),
                    roles: m.roles_zh(),
                })
                .collect(),
            roles: Role::ALL
                .iter()
                .map(|r| RoleOption {
                    code: r.code(),
                    name: r.name_zh(),
                })
                .collect(),
            created,
        },
    ))
}

fn require_admin(auth: &Authed) -> Result<(), PageError> {
    if auth.staff.has(Role::DistrictAdmin) {
        Ok(())
    } else {
        Err(PageError::Forbidden(
            "只有区县管理员可以管理工作人员账号".into(),
        ))
    }
}

async fn staff_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    require_admin(&auth)?;
    staff_page_inner(&state, &auth, None, None, StatusCode::OK).await
}

async fn staff_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    check_form_csrf(&auth.token, &form)?;
    require_admin(&auth)?;
    let roles: Vec<Role> = fields(&form, "roles")
        .into_iter()
        .filter_map(Role::from_code)
        .collect();
    let new = NewStaff {
        username: field(&form, "username").unwrap_or("").to_owned(),
        display_name: field(&form, "display_name").unwrap_or("").to_owned(),
        district_code: auth.staff.district_code.clone(),
        roles,
        password: None,
    };
    match staff::create_staff(
        &state.store,
        &state.pii,
        &state.hasher,
        state.settings.login.min_password_length,
        new,
        Some(&auth.staff.id),
        state.now_ms(),
    )
    .await
    {
        Ok(c) => {
            let creds = Credentials {
                username: c.member.username,
                password: c.password,
                totp: c.totp_base32,
                otpauth: c.otpauth_uri,
            };
            staff_page_inner(&state, &auth, Some(creds), None, StatusCode::OK).await
        }
        Err(StaffError::Other(e)) => Err(internal(e)),
        Err(e) => {
            staff_page_inner(
                &state,
                &auth,
                None,
                Some(e.to_string()),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}
