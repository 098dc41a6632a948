//! The register mirror as surveyors see it: the district's units and how far the register log
//! has been applied, with any gap.

use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;

use super::{Layout, PageError, authed, internal, render_status};
use crate::{AppState, register};

/// The routes of this part.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/register", get(page))
}

/// How many units the page lists at most.
const LIMIT: i64 = 500;

struct UnitView {
    unit_code: String,
    registration_type: String,
    current: bool,
    area_m2: String,
    last_seq: i64,
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    layout: Layout,
    applied_up_to: u64,
    gaps: Vec<String>,
    units: Vec<UnitView>,
    limit: i64,
}

async fn page(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let district = &auth.surveyor.district_code;
    let units = register::district_units(&state.store, district, LIMIT)
        .await
        .map_err(internal)?;
    let gaps = register::gaps(&state.store)
        .await
        .map_err(internal)?
        .into_iter()
        .filter(|g| &g.district_code == district)
        .map(|g| g.message_zh())
        .collect();
    let page = RegisterPage {
        layout: Layout::for_surveyor("登记簿镜像", &auth),
        applied_up_to: register::applied_up_to(&state.store, district)
            .await
            .map_err(internal)?,
        gaps,
        units: units
            .into_iter()
            .map(|u| UnitView {
                current: u.state == "current",
                unit_code: u.unit_code,
                registration_type: u.registration_type,
                area_m2: u.area_m2.unwrap_or_default(),
                last_seq: u.last_seq,
            })
            .collect(),
        limit: LIMIT,
    };
    Ok(render_status(StatusCode::OK, &page))
}
