//! The portable-SQL house rules hold on every backend: `$n` placeholders, BIGINT as i64, TEXT,
//! NULLs, `ON CONFLICT`, `RETURNING`, transactions that roll back, and per-crate migrations.

#![allow(clippy::unwrap_used)]

use ow_store::sqlx;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./tests/migrations");

#[tokio::test]
async fn portable_sql_works_on_every_backend() {
    let dbs = ow_store::testing::all_backends().await;
    if std::env::var("OW_REQUIRE_POSTGRES").as_deref() == Ok("1") {
        assert!(dbs.iter().any(|d| d.backend == ow_store::Backend::Postgres));
    }
    for db in dbs {
        let label = db.backend.as_str();
        let store = db.open().await;
        store.migrate("ow-store-test", &MIGRATOR).await.unwrap();
        // Migrating twice is a no-op; another owner's migrations live in their own table.
        store.migrate("ow-store-test", &MIGRATOR).await.unwrap();
        store
            .migrate("other-owner", &sqlx::migrate::Migrator::DEFAULT)
            .await
            .unwrap();

        let id = ow_store::new_id();
        let n: i64 =
            sqlx::query_scalar("INSERT INTO counter (id, n, note) VALUES ($1, $2, $3) RETURNING n")
                .bind(&id)
                .bind(41_i64)
                .bind(Option::<String>::None)
                .fetch_one(store.writer())
                .await
                .unwrap();
        assert_eq!(n, 41, "{label}");
        let n: i64 = sqlx::query_scalar(
            "INSERT INTO counter (id, n) VALUES ($1, 0) \
             ON CONFLICT (id) DO UPDATE SET n = counter.n + 1 RETURNING n",
        )
        .bind(&id)
        .fetch_one(store.writer())
        .await
        .unwrap();
        assert_eq!(n, 42, "{label}");

        let mut tx = store.begin().await.unwrap();
        sqlx::query("UPDATE counter SET n = $1 WHERE id = $2")
            .bind(0_i64)
            .bind(&id)
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        let (n, note): (i64, Option<String>) =
            sqlx::query_as("SELECT n, note FROM counter WHERE id = $1")
                .bind(&id)
                .fetch_one(store.reader())
                .await
                .unwrap();
        assert_eq!((n, note), (42, None), "{label}");
        assert!(ow_store::now_ms() > 1_700_000_000_000);
        store.close().await;
        db.cleanup().await;
    }
}
