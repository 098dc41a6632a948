//! Fresh databases for store tests, on every configured backend.
//!
//! SQLite is always tested. PostgreSQL is tested when `OW_TEST_POSTGRES_URL` names a server
//! (an admin URL such as `postgres://postgres:pw@127.0.0.1:5432/postgres`): each test gets a new
//! database created on it and dropped afterwards. When `OW_REQUIRE_POSTGRES=1` (CI sets it), a
//! missing or unreachable server fails the test instead of skipping PostgreSQL silently.

use sqlx::AnyConnection;
use sqlx::Connection;
use sqlx::any::install_default_drivers;

use crate::{Backend, OpenOptions, Store};

/// A fresh, empty database on one backend. Drop it with [`TestDatabase::cleanup`].
#[derive(Debug)]
pub struct TestDatabase {
    /// The engine.
    pub backend: Backend,
    /// The URL to open it with (a file path for SQLite).
    pub url: String,
    admin_url: Option<String>,
    name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDatabase {
    /// Opens it and applies nothing.
    pub async fn open(&self) -> Store {
        match Store::open(&self.url, &OpenOptions::default()).await {
            Ok(store) => store,
            Err(e) => panic!(
                "cannot open the {} test database: {e}",
                self.backend.as_str()
            ),
        }
    }

    /// Drops the PostgreSQL database (SQLite's folder goes with the value).
    pub async fn cleanup(self) {
        if let (Some(admin), Some(name)) = (&self.admin_url, &self.name)
            && let Ok(mut conn) = AnyConnection::connect(admin).await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .execute(&mut conn)
            .await;
        }
    }
}

/// The PostgreSQL admin URL from the environment, if any; panics when PostgreSQL is required
/// (`OW_REQUIRE_POSTGRES=1`) and none is given.
pub fn postgres_admin_url() -> Option<String> {
    let url = std::env::var("OW_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() && std::env::var("OW_REQUIRE_POSTGRES").as_deref() == Ok("1") {
        panic!(
            "OW_REQUIRE_POSTGRES=1 but OW_TEST_POSTGRES_URL is not set: start PostgreSQL \
             (.ci/postgres.sh prints the URL) or unset OW_REQUIRE_POSTGRES"
        );
    }
    url
}

/// A fresh SQLite database in a temporary folder.
pub fn sqlite() -> TestDatabase {
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("cannot make a temporary folder: {e}"),
    };
    let url = dir.path().join("test.db").to_string_lossy().into_owned();
    TestDatabase {
        backend: Backend::Sqlite,
        url,
        admin_url: None,
        name: None,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL database, if a server is configured (see the module docs).
pub async fn postgres() -> Option<TestDatabase> {
    let admin = postgres_admin_url()?;
    install_default_drivers();
    let mut conn = match AnyConnection::connect(&admin).await {
        Ok(conn) => conn,
        Err(e) => panic!(
            "OW_TEST_POSTGRES_URL is set but PostgreSQL cannot be reached ({}): {e}",
            crate::redact_url(&admin)
        ),
    };
    let name = format!("ow_test_{}", uuid::Uuid::now_v7().simple());
    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
    {
        panic!("cannot create the test database {name}: {e}");
    }
    let _ = conn.close().await;
    let base = admin
        .rsplit_once('/')
        .map(|(base, _)| base.to_string())
        .unwrap_or(admin.clone());
    Some(TestDatabase {
        backend: Backend::Postgres,
        url: format!("{base}/{name}"),
        admin_url: Some(admin),
        name: Some(name),
        _dir: None,
    })
}

/// One fresh database per configured backend: SQLite always, PostgreSQL when configured.
pub async fn all_backends() -> Vec<TestDatabase> {
    let mut out = vec![sqlite()];
    if let Some(pg) = postgres().await {
        out.push(pg);
    }
    out
}
