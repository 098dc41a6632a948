//! Existing parcels (宗地): the `int_parcels` table, their history, and the spatial index loaded
//! from it at start ([`load_index`]) and kept current as packages are approved.

use std::collections::HashMap;

use geo::MultiPolygon;
use ow_pii::PiiKeyring;
use ow_store::Store;
use sqlx::{AnyConnection, Row};

use crate::checks::{ParcelId, ParcelIndex};
use crate::db;
use crate::error::Result;

/// A parcel to record.
#[derive(Clone)]
pub struct NewParcel<'a> {
    /// The 19-character parcel code (宗地代码).
    pub parcel_code: &'a str,
    /// The unit code assigned, if any.
    pub unit_code: Option<&'a str>,
    /// District.
    pub district_code: &'a str,
    /// 地块名称 (sealed).
    pub name: &'a str,
    /// The geometry.
    pub geometry: &'a MultiPolygon<f64>,
    /// Area, m².
    pub area_m2: f64,
    /// The package it came from.
    pub package_id: Option<&'a str>,
    /// The application of that package.
    pub application_no: Option<&'a str>,
    /// Who approved it.
    pub surveyor_id: Option<&'a str>,
    /// History action: `approved` or `seeded`.
    pub action: &'a str,
}

impl std::fmt::Debug for NewParcel<'_> {
    /// The name is not shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewParcel")
            .field("parcel_code", &self.parcel_code)
            .field("unit_code", &self.unit_code)
            .field("area_m2", &self.area_m2)
            .finish_non_exhaustive()
    }
}

/// Records a parcel and its history row in `conn` (a transaction); returns its id.
pub async fn insert(
    conn: &mut AnyConnection,
    pii: &PiiKeyring,
    p: &NewParcel<'_>,
    now_ms: i64,
) -> Result<ParcelId> {
    let id: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(id), 0) + 1 FROM int_parcels")
        .fetch_one(&mut *conn)
        .await?;
    let wkb = db::geometry_to_hex(p.geometry)?;
    let area = db::area_text(p.area_m2);
    sqlx::query(
        "INSERT INTO int_parcels (id, parcel_code, unit_code, district_code, name_sealed, \
         area_m2, geom_wkb, package_id, created_at_ms, updated_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(id)
    .bind(p.parcel_code)
    .bind(p.unit_code)
    .bind(p.district_code)
    .bind(db::seal(
        pii,
        db::PARCEL_NAME_FIELD,
        &format!("int_parcels:{}", p.parcel_code),
        p.name,
    ))
    .bind(&area)
    .bind(&wkb)
    .bind(p.package_id)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO int_parcel_history (id, parcel_id, parcel_code, action, package_id, \
         application_no, surveyor_id, area_m2, geom_wkb, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(ow_store::new_id())
    .bind(id)
    .bind(p.parcel_code)
    .bind(p.action)
    .bind(p.package_id)
    .bind(p.application_no)
    .bind(p.surveyor_id)
    .bind(&area)
    .bind(&wkb)
    .bind(now_ms)
    .execute(&mut *conn)
    .await?;
    Ok(id)
}

/// The spatial index of every parcel in the table.
pub async fn load_index(store: &Store) -> Result<ParcelIndex> {
    let rows = sqlx::query("SELECT id, geom_wkb FROM int_parcels")
        .fetch_all(store.reader())
        .await?;
    let mut parcels = Vec::with_capacity(rows.len());
    for row in rows {
        let id: i64 = row.try_get("id")?;
        let wkb: String = row.try_get("geom_wkb")?;
        parcels.push((id, db::geometry_from_hex(&wkb)?));
    }
    Ok(ParcelIndex::bulk_load(parcels))
}

/// The ids of the parcels with the given codes (codes not found are left out).
pub async fn ids_by_code(
    conn: &mut AnyConnection,
    codes: &[String],
) -> Result<HashMap<String, ParcelId>> {
    let mut out = HashMap::new();
    for code in codes {
        let id: Option<i64> =
            sqlx::query_scalar("SELECT id FROM int_parcels WHERE parcel_code = $1")
                .bind(code)
                .fetch_optional(&mut *conn)
                .await?;
        if let Some(id) = id {
            out.insert(code.clone(), id);
        }
    }
    Ok(out)
}

/// The code and geometry of each parcel id given (ids not found are left out).
pub async fn by_ids(
    conn: &mut AnyConnection,
    ids: &[ParcelId],
) -> Result<Vec<(ParcelId, String, MultiPolygon<f64>)>> {
    let mut out = Vec::new();
    for id in ids {
        let row = sqlx::query("SELECT parcel_code, geom_wkb FROM int_parcels WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
        if let Some(row) = row {
            let code: String = row.try_get("parcel_code")?;
            let wkb: String = row.try_get("geom_wkb")?;
            out.push((*id, code, db::geometry_from_hex(&wkb)?));
        }
    }
    Ok(out)
}

/// Whether a parcel code or unit code is already used: by an existing parcel, or by a unit of
/// the register mirror (the unit itself, or any unit on that parcel).
pub async fn taken(conn: &mut AnyConnection, parcel_code: &str, unit_code: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM int_parcels WHERE parcel_code = $1 OR unit_code = $2) + \
         (SELECT COUNT(*) FROM int_register_units WHERE unit_code = $2 \
          OR SUBSTR(unit_code, 1, 19) = $1)",
    )
    .bind(parcel_code)
    .bind(unit_code)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// How many parcels a district has.
pub async fn count(store: &Store, district: &str) -> Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM int_parcels WHERE district_code = $1")
            .bind(district)
            .fetch_one(store.reader())
            .await?,
    )
}
