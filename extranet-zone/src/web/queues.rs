//! The case queues.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use ow_domain::CaseStatus;
use serde::Deserialize;

use super::{Layout, PageError, authed, fmt_ms, internal, render};
use crate::AppState;
use crate::cases;

/// The routes of this part of the back office.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/cases", get(queue))
}

struct CountView {
    code: &'static str,
    name: &'static str,
    count: i64,
    selected: bool,
}

struct QueueRow {
    no: String,
    business: &'static str,
    unit_code: String,
    status: &'static str,
    status_code: &'static str,
    received: String,
    updated: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    layout: Layout,
    counts: Vec<CountView>,
    heading: String,
    rows: Vec<QueueRow>,
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
    let district = &auth.staff.district_code;
    let selected = match q.status.as_deref() {
        None | Some("") => Some(CaseStatus::Submitted),
        Some("all") => None,
        Some(code) => Some(CaseStatus::from_code(code).ok_or(PageError::NotFound)?),
    };
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    let counts = cases::counts(&mut conn, district).await.map_err(internal)?;
    let list = cases::queue(&mut conn, district, selected)
        .await
        .map_err(internal)?;
    let page = QueuePage {
        layout: Layout::for_staff("业务队列", &auth),
        counts: counts
            .into_iter()
            .map(|(s, n)| CountView {
                code: s.code(),
                name: s.name_zh(),
                count: n,
                selected: Some(s) == selected,
            })
            .collect(),
        heading: selected.map_or("全部业务".to_owned(), |s| {
            format!("{}的业务", s.name_zh())
        }),
        rows: list
            .iter()
            .map(|c| QueueRow {
                no: c.application_no.clone(),
                business: c.business_zh(),
                unit_code: c.unit_code.clone().unwrap_or_default(),
                status: c.status.name_zh(),
                status_code: c.status.code(),
                received: fmt_ms(c.received_at_ms),
                updated: fmt_ms(c.updated_at_ms),
            })
            .collect(),
    };
    Ok(render(&page))
}
