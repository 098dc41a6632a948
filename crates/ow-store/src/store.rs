//! The store: pools, URL handling, migrations.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor, Transaction};
use tracing::info;

/// Which database engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite: a file in the zone's data folder.
    Sqlite,
    /// PostgreSQL: a server named by a `postgres://` URL.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// How to open a store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Connections in the read pool (SQLite) or the one pool (PostgreSQL).
    pub max_connections: u32,
    /// How long to wait for a free connection before failing a request.
    pub acquire_timeout: Duration,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_connections: 8,
            acquire_timeout: Duration::from_secs(10),
        }
    }
}

/// Why the store could not be opened or migrated.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL is neither a SQLite path nor a PostgreSQL URL.
    #[error(
        "database URL {url:?} is not understood: use a file path or sqlite:PATH for SQLite, or postgres://user:password@host/db for PostgreSQL"
    )]
    BadUrl {
        /// The URL with any password removed.
        url: String,
    },
    /// The folder for a SQLite file could not be created.
    #[error(
        "cannot create the database folder {path}: {cause}; check the data folder setting and its permissions"
    )]
    Folder {
        /// The folder.
        path: PathBuf,
        /// What the file system said.
        cause: std::io::Error,
    },
    /// Connecting failed.
    #[error(
        "cannot open the database {url}: {cause}; check that it is running and the URL, user and password are right"
    )]
    Connect {
        /// The URL with any password removed.
        url: String,
        /// What the driver said.
        cause: sqlx::Error,
    },
    /// A migration failed.
    #[error("cannot bring the {owner} tables up to date: {cause}")]
    Migrate {
        /// The crate whose migrations failed.
        owner: String,
        /// What sqlx said.
        cause: sqlx::migrate::MigrateError,
    },
    /// A query failed.
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
}

/// One database, reached through a write pool and a read pool (the same pool on PostgreSQL).
#[derive(Debug, Clone)]
pub struct Store {
    backend: Backend,
    write: AnyPool,
    read: AnyPool,
    url: String,
}

impl Store {
    /// Opens the database named by `url`: `postgres://…` (or `postgresql://…`) for PostgreSQL;
    /// `sqlite:PATH`, `sqlite://PATH` or a plain path for SQLite (the file and its folder are
    /// created when missing).
    pub async fn open(url: &str, options: &OpenOptions) -> Result<Store, StoreError> {
        install_default_drivers();
        let redacted = redact_url(url);
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = AnyPoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(options.acquire_timeout)
                .connect(url)
                .await
                .map_err(|cause| StoreError::Connect {
                    url: redacted.clone(),
                    cause,
                })?;
            info!(backend = "postgres", url = %redacted, "database opened");
            return Ok(Store {
                backend: Backend::Postgres,
                write: pool.clone(),
                read: pool,
                url: redacted,
            });
        }
        let path = sqlite_path(url).ok_or_else(|| StoreError::BadUrl {
            url: redacted.clone(),
        })?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|cause| StoreError::Folder {
                path: parent.to_path_buf(),
                cause,
            })?;
        }
        // sqlx reads `sqlite://a/b` with a relative path unreliably: always hand it an
        // absolute one.
        let path = std::path::absolute(&path).map_err(|cause| StoreError::Folder {
            path: path.clone(),
            cause,
        })?;
        let file = path.to_string_lossy().into_owned();
        if file.contains('?') || file.contains('#') {
            return Err(StoreError::BadUrl { url: redacted });
        }
        // Two pools of ordinary read-write connections: writes go through a pool of one
        // connection, so in-process writers queue in order for it instead of meeting SQLite's
        // busy handler, which sleeps in growing steps (up to 100 ms) and lets a late writer
        // overtake an early one; reads run beside it on the other pool (WAL). Read-only
        // connections are avoided: sqlx-sqlite keeps their statements open, which stalled
        // writers in practice. The busy timeout still covers other processes (the CLI).
        let sqlite_url = format!("sqlite://{file}?mode=rwc");
        let connect = |max: u32| {
            AnyPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(options.acquire_timeout)
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        // WAL lets readers run beside the writer; FULL makes every commit
                        // durable, which exactly-once import relies on. One statement per
                        // call: the Any driver may run only the first of several.
                        for pragma in [
                            "PRAGMA busy_timeout = 10000",
                            "PRAGMA journal_mode = WAL",
                            "PRAGMA synchronous = FULL",
                            "PRAGMA foreign_keys = ON",
                        ] {
                            conn.execute(pragma).await?;
                        }
                        Ok(())
                    })
                })
                .connect(&sqlite_url)
        };
        let connect_error = |cause| StoreError::Connect {
            url: redacted.clone(),
            cause,
        };
        let write = connect(1).await.map_err(connect_error)?;
        let read = connect(options.max_connections.max(1))
            .await
            .map_err(connect_error)?;
        info!(backend = "sqlite", path = %file, "database opened");
        Ok(Store {
            backend: Backend::Sqlite,
            write,
            read,
            url: redacted,
        })
    }

    /// Applies `migrator`'s migrations that are not yet applied. `owner` names the crate that owns
    /// the tables; its migrations are tracked in their own table `_ow_migrations_<owner>`, so
    /// crates sharing a database never see each other's versions.
    pub async fn migrate(&self, owner: &str, migrator: &Migrator) -> Result<(), StoreError> {
        let mut migrator = Migrator {
            migrations: migrator.migrations.clone(),
            ignore_missing: migrator.ignore_missing,
            locking: migrator.locking,
            no_tx: migrator.no_tx,
            table_name: migrator.table_name.clone(),
            create_schemas: migrator.create_schemas.clone(),
        };
        let table = format!("_ow_migrations_{}", owner.replace(['-', ' '], "_"));
        migrator.dangerous_set_table_name(table);
        migrator
            .run(&self.write)
            .await
            .map_err(|cause| StoreError::Migrate {
                owner: owner.to_string(),
                cause,
            })
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The URL without its password, for logs and messages.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The pool for writes.
    pub fn writer(&self) -> &AnyPool {
        &self.write
    }

    /// The pool for reads (the same pool; kept apart so a read-only replica can be added).
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so a transaction that reads before it writes never fails half-way
    /// because another writer committed in between; writers wait their turn instead.
    pub async fn begin(&self) -> Result<Transaction<'static, Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        })
    }

    /// Closes both pools, waiting for connections in use.
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// The SQLite file a URL names, or `None` if it is not a SQLite URL or path.
fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = if let Some(rest) = url.strip_prefix("sqlite://") {
        rest
    } else if let Some(rest) = url.strip_prefix("sqlite:") {
        rest
    } else if url.contains("://") || url.is_empty() {
        return None;
    } else {
        url
    };
    let rest = rest.split('?').next().unwrap_or(rest);
    if rest.is_empty() || rest == ":memory:" {
        return None;
    }
    Some(Path::new(rest).to_path_buf())
}

/// `url` with the password (if any) replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Now, as Unix milliseconds (how times are stored).
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A new time-ordered id (UUID v7, hyphenated lower case).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(sqlite_path("a/b.db"), Some(PathBuf::from("a/b.db")));
        assert_eq!(sqlite_path("sqlite:a.db"), Some(PathBuf::from("a.db")));
        assert_eq!(
            sqlite_path("sqlite:///tmp/a.db?mode=rwc"),
            Some(PathBuf::from("/tmp/a.db"))
        );
        assert_eq!(sqlite_path("mysql://x"), None);
        assert_eq!(sqlite_path(""), None);
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("postgres://h/db"), "postgres://h/db");
    }

    #[tokio::test]
    async fn sqlite_writers_wait_for_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("sub/x.db");
        let store = Store::open(url.to_str().unwrap(), &OpenOptions::default())
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT NOT NULL)")
            .execute(store.writer())
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (id, n) VALUES ('a', 0)")
            .execute(store.writer())
            .await
            .unwrap();
        // Many concurrent read-then-write transactions: none fails, none is lost.
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut tx = store.begin().await.unwrap();
                let n: i64 = sqlx::query_scalar("SELECT n FROM t WHERE id = 'a'")
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
                sqlx::query("UPDATE t SET n = $1 WHERE id = 'a'")
                    .bind(n + 1)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx.commit().await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        let n: i64 = sqlx::query_scalar("SELECT n FROM t WHERE id = 'a'")
            .fetch_one(store.reader())
            .await
            .unwrap();
        assert_eq!(n, 20);
        store.close().await;
    }

    #[tokio::test]
    async fn bad_url_says_what_to_use() {
        let err = Store::open("mysql://u:pw@h/db", &OpenOptions::default())
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("postgres://"), "{text}");
        assert!(!text.contains("pw"), "{text}");
    }
}
