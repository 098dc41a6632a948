//! ow-internet: the citizen portal (网上一窗办事平台) of OneWindow.
//!
//! Citizens register and sign in, apply for 二手房转移登记 or 首次登记 (with its survey package,
//! pre-checked on upload) with their materials, follow the status timeline, send supplement
//! materials, download their e-certificates, and anyone can verify a certificate on `/verify`.
//! Pages are server-rendered Chinese HTML that works on a phone without JavaScript; the same
//! functions are a JSON API under `/api/v1`.
//!
//! Wiring (what `main.rs` does, and what tests do on port 0):
//!
//! ```no_run
//! # async fn run() -> Result<(), ow_internet::AppError> {
//! let settings = ow_internet::Settings::load(Some("internet.toml".as_ref()), &[])?;
//! let listener = tokio::net::TcpListener::bind(settings.listen).await
//!     .map_err(|e| ow_internet::AppError::io("listen", e))?;
//! let state = ow_internet::App::build(settings).await?;
//! ow_internet::serve(listener, state, async { let _ = tokio::signal::ctrl_c().await; }).await
//! # }
//! ```
//!
//! Submissions leave as `ApplicationSubmitted` / `SupplementSubmitted` messages queued in
//! ow-exchange's transactional outbox in the same transaction as the application; status,
//! certificates and public certificate records come back through [`PortalImporter`].
//! `docs/internet-zone.md` lists routes, settings and what is stored.

pub mod accounts;
pub mod api;
pub mod app;
pub mod applications;
pub mod business;
pub mod certificates;
pub mod config;
pub mod error;
pub mod files;
pub mod import;
pub mod openapi;
pub mod ops;
pub mod pages;
pub mod server;
pub mod survey;
pub mod uploads;
pub mod util;
pub mod web;

pub use app::{App, AppState, INBOUND, MIGRATOR, OUTBOUND};
pub use config::Settings;
pub use error::AppError;
pub use import::PortalImporter;
pub use server::{router, serve};
