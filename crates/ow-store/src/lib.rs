//! Storage for the zone applications: one [`Store`] over SQLite (the embedded default, a file in
//! the zone's data folder) or PostgreSQL (the scale-out backend), chosen by the configured URL.
//!
//! Queries go through sqlx's `Any` driver, so one query text serves both backends. That keeps
//! the SQL portable by construction, with a few house rules every store crate follows:
//! placeholders are `$1, $2, …` (SQLite accepts them too); integers are `BIGINT` and read as
//! `i64`; times are `BIGINT` Unix milliseconds; ids are `TEXT`; no `BLOB`/`BYTEA` columns
//! (binary goes to files or base64 text); booleans are `BIGINT` 0/1; upserts use
//! `ON CONFLICT … DO …` and `RETURNING`, which both engines support.
//!
//! Each crate owns its tables and its migrations folder, and keeps its own migrations table
//! (`_ow_migrations_<crate>`), so crates migrate independently in one database
//! ([`Store::migrate`]).
//!
//! SQLite allows one writer at a time. A [`Store`] over SQLite runs in WAL mode (readers never
//! wait for the writer), with a busy timeout so writers wait for each other instead of failing,
//! and starts write transactions with `BEGIN IMMEDIATE` so a transaction never fails half-way
//! on a lock upgrade. `writer()` and `reader()` are the same pool today; call sites say which
//! they mean, so a read replica can be added without touching them.
//!
//! [`testing`] gives a fresh database on every configured backend, used by every store test so
//! that the same suite runs on SQLite and PostgreSQL.

mod store;
pub mod testing;

pub use sqlx;
pub use store::{Backend, OpenOptions, Store, StoreError, new_id, now_ms, redact_url};
