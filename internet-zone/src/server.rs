//! The router and the server: pages, API, health, style sheet, security headers, body limits;
//! [`serve`] runs the HTTP server and the exchange loop together and stops both on shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ow_web::problem::ApiProblem;
use ow_web::throttle::Guards;
use tokio::net::TcpListener;

use crate::app::AppState;
use crate::error::AppError;
use crate::import::PortalImporter;
use crate::pages;
use crate::web::PageError;

/// All routes with their state.
pub fn router(state: AppState) -> Router {
    let upload_limit = DefaultBodyLimit::max(state.upload_body_limit());
    let verify_limit = DefaultBodyLimit::max(ow_certificate::MAX_SIGNED_JSON_BYTES + (64 << 10));
    let app = Router::new()
        .route("/", get(pages::index))
        .route("/register", get(pages::register_form).post(pages::register))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/account", get(pages::account))
        .route("/apply", get(pages::apply))
        .route("/drafts", post(pages::create_draft))
        .route(
            "/drafts/{id}/unit",
            get(pages::draft_unit).post(pages::save_unit),
        )
        .route(
            "/drafts/{id}/parties",
            get(pages::draft_parties).post(pages::save_parties),
        )
        .route(
            "/drafts/{id}/materials",
            get(pages::draft_materials)
                .post(pages::upload_materials)
                .layer(upload_limit),
        )
        .route(
            "/drafts/{id}/materials/{material}/delete",
            post(pages::delete_material),
        )
        .route("/drafts/{id}/check", get(pages::draft_check))
        .route("/drafts/{id}/submit", post(pages::submit))
        .route("/drafts/{id}/delete", post(pages::delete_draft))
        .route("/applications", get(pages::applications_list))
        .route("/applications/{no}", get(pages::application_detail))
        .route(
            "/applications/{no}/supplements",
            post(pages::supplement).layer(upload_limit),
        )
        .route("/materials/{id}", get(pages::material_download))
        .route("/certificates", get(pages::certificates_list))
        .route(
            "/certificates/{id}/download",
            get(pages::certificate_download),
        )
        .route("/certificates/{id}/print", get(pages::certificate_print))
        .route("/verify", get(pages::verify))
        .route("/verify/file", post(pages::verify_file).layer(verify_limit))
        .merge(crate::api::routes(state.upload_body_limit()))
        .route(ow_web::health::HEALTHZ_PATH, get(ow_web::health::healthz))
        .route(ow_web::page::STYLE_CSS_PATH, get(ow_web::page::style_css))
        .fallback(not_found)
        .with_state(state.clone());
    ow_web::headers::with_security_headers(guards(&state).layer(app))
}

/// The throttled routes: login and registration (pages and API) share one budget per source,
/// verification (by code, QR link, file or API) another.
fn guards(state: &AppState) -> Guards {
    let login = &state.login_throttle;
    let verify = &state.verify_throttle;
    Guards::new(state.client_addressing.clone())
        .guard(Method::POST, "/login", login)
        .guard(Method::POST, "/register", login)
        .guard(Method::POST, "/api/v1/login", login)
        .guard(Method::POST, "/api/v1/register", login)
        .guard_with_query(Method::GET, "/verify", verify)
        .guard(Method::POST, "/verify/file", verify)
        .guard(Method::POST, "/api/v1/verify", verify)
}

/// 404: problem+json under `/api/`, an HTML page elsewhere.
async fn not_found(uri: Uri) -> Response {
    if uri.path().starts_with("/api/") {
        ApiProblem::new(
            axum::http::StatusCode::NOT_FOUND,
            "route_not_found",
            "接口不存在，请查看 /api/v1/openapi.json",
        )
        .into_response()
    } else {
        PageError::NotFound.into_response()
    }
}

/// Runs the portal on `listener` until `shutdown` completes: the HTTP server (with client
/// addresses, for the per-source throttles) and, when enabled, the exchange loop (packing the
/// outbox, importing the inbox through [`PortalImporter`]). On shutdown the server stops
/// accepting, finishes the requests in flight, and the exchange loop is stopped too.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let addr = listener.local_addr().ok();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let exchange_task = state.exchange.clone().map(|x| {
        let handler = Arc::new(PortalImporter::new(&state));
        let mut rx = stop_rx.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|stopped| *stopped).await;
            };
            let _ = x.run(handler, stop).await;
        })
    });
    tracing::info!(listen = ?addr, "ow-internet serving");
    let service = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let result = axum::serve(listener, service)
        .with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down");
        })
        .await;
    let _ = stop_tx.send(true);
    if let Some(task) = exchange_task {
        let _ = task.await;
    }
    tracing::info!("ow-internet stopped");
    result.map_err(|e| AppError::io("HTTP listener", e))
}
