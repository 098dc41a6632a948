//! The database: migrations, the sealing helpers and geometry as hex-encoded WKB.

use geo::MultiPolygon;
use ow_pii::{Field, PiiKeyring, Sealed};
use ow_store::Store;

use crate::error::{IntranetError, Result};

/// The migrations of the tables this crate owns (`migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The owner name of this crate's migrations table.
pub const MIGRATIONS_OWNER: &str = "ow-intranet";

/// Brings the exchange's tables and this crate's tables up to date.
pub async fn migrate(store: &Store) -> Result<()> {
    ow_exchange::migrate(store).await?;
    store.migrate(MIGRATIONS_OWNER, &MIGRATOR).await?;
    Ok(())
}

/// Seals `value` for `field` bound to the record `context`, as text for a TEXT column.
pub fn seal(pii: &PiiKeyring, field: Field, context: &str, value: &str) -> String {
    pii.seal(field, context.as_bytes(), value.as_bytes())
        .to_text()
}

/// Opens a value sealed by [`seal`].
pub fn open(pii: &PiiKeyring, field: Field, context: &str, text: &str) -> Result<String> {
    let sealed = Sealed::from_text(text)?;
    let clear = pii.open_string(field, context.as_bytes(), &sealed)?;
    Ok(clear.as_str().to_owned())
}

/// The sealing field of TOTP secrets.
pub const TOTP_FIELD: Field = Field::Other("totp-secret");
/// The sealing field of parcel names (a name may be a person's: 张三宅基地).
pub const PARCEL_NAME_FIELD: Field = Field::Other("parcel-name");
/// The sealing field of findings (their wording quotes the survey file).
pub const FINDINGS_FIELD: Field = Field::Other("survey-findings");
/// The sealing field of a surveyor's reasons.
pub const REASON_FIELD: Field = Field::Other("review-reason");

/// Whether `err` is a unique-constraint violation.
pub fn unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.code().as_deref() == Some("23505")
                || db.code().as_deref() == Some("2067")
                || db.code().as_deref() == Some("1555")
        }
        _ => false,
    }
}

/// A geometry as hex-encoded WKB (little-endian, 2D) for a TEXT column.
pub fn geometry_to_hex(geometry: &MultiPolygon<f64>) -> Result<String> {
    let mut out = Vec::new();
    wkb::writer::write_geometry(&mut out, geometry, &wkb::writer::WriteOptions::default())
        .map_err(|e| IntranetError::Invalid(format!("geometry cannot be written as WKB: {e}")))?;
    Ok(hex::encode(out))
}

/// A geometry stored by [`geometry_to_hex`]; a polygon is read as a one-part multipolygon.
pub fn geometry_from_hex(text: &str) -> Result<MultiPolygon<f64>> {
    use geo_traits::to_geo::ToGeoGeometry as _;
    let bytes = hex::decode(text).map_err(|_| IntranetError::Corrupt("WKB is not hex".into()))?;
    let wkb = wkb::reader::read_wkb(&bytes)
        .map_err(|e| IntranetError::Corrupt(format!("WKB does not read: {e}")))?;
    match wkb.try_to_geometry() {
        Some(geo::Geometry::MultiPolygon(m)) => Ok(m),
        Some(geo::Geometry::Polygon(p)) => Ok(MultiPolygon::new(vec![p])),
        _ => Err(IntranetError::Corrupt(
            "stored geometry is not a polygon".into(),
        )),
    }
}

/// An area in square metres as the register writes it: two decimals (`5000.00`).
pub fn area_text(area_m2: f64) -> String {
    format!("{area_m2:.2}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::{Area as _, polygon};

    #[test]
    fn geometry_round_trips_through_wkb_hex() {
        let p = polygon![
            (x: 500_000.0, y: 4_000_000.0),
            (x: 500_100.0, y: 4_000_000.0),
            (x: 500_100.0, y: 4_000_050.0),
            (x: 500_000.0, y: 4_000_050.0),
            (x: 500_000.0, y: 4_000_000.0),
        ];
        let m = MultiPolygon::new(vec![p]);
        let text = geometry_to_hex(&m).unwrap();
        let back = geometry_from_hex(&text).unwrap();
        assert_eq!(back, m);
        assert_eq!(area_text(back.unsigned_area()), "5000.00");
        assert!(geometry_from_hex("zz").is_err());
        assert!(geometry_from_hex("0101000000").is_err());
    }
}
