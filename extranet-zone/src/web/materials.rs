//! The materials of a case, served to the registrar.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{PageError, authed, internal, url_encode};
use crate::AppState;
use crate::cases;
use crate::import::material_path;

/// The routes of this part of the back office.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/cases/{no}/materials/{id}", get(material))
}

async fn material(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((no, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    cases::get(&mut conn, &auth.staff.district_code, &no)
        .await
        .map_err(internal)?
        .ok_or(PageError::NotFound)?;
    let materials = cases::materials(&mut conn, &no).await.map_err(internal)?;
    let m = materials
        .into_iter()
        .find(|m| m.id == id)
        .ok_or(PageError::NotFound)?;
    let path = material_path(state.data_dir(), &m.blake3);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|e| PageError::Internal(format!("material {} of {no}: {e}", m.id)))?;
    if blake3::hash(&bytes).to_hex().as_str() != m.blake3 {
        return Err(PageError::Internal(format!(
            "material {} of {no} does not match its hash",
            m.id
        )));
    }
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&m.media_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&format!(
        "attachment; filename=\"material\"; filename*=UTF-8''{}",
        url_encode(&m.file_name)
    )) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
