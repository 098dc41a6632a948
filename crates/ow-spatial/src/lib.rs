//! The intranet's in-memory spatial index of existing parcels (宗地), the checks of a new survey
//! against it (overlaps beyond a sliver tolerance, gaps to a claimed neighbour) and the SVG
//! drawing of a parcel for surveyors.
//!
//! Pure library: no I/O, no database, no clock. Coordinates are metres in CGCS2000
//! Gauss-Krüger: `x` = easting without the zone prefix, `y` = northing. The caller builds the
//! index at start ([`ParcelIndex::bulk_load`]) from the cadastral database and keeps it current
//! with [`ParcelIndex::insert`] and [`ParcelIndex::remove`].
//!
//! Every coordinate handed in must be finite; [`check_finite`] tells the caller before it asks
//! (a parser of uploaded files should refuse such a file anyway).

mod checks;
mod index;
pub mod svg;

pub use checks::{Gap, Overlap, Tolerance};
pub use index::ParcelIndex;

/// The identifier of an existing parcel in the cadastral database (its row id).
pub type ParcelId = i64;

/// What went wrong in a spatial check. The messages are for operators and surveyors.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpatialError {
    /// A check named a parcel that the index does not hold.
    #[error(
        "宗地 {0} 不在空间索引中：请核对相邻宗地编号，或在地籍库中确认该宗地存在后重建索引 \
         (parcel {0} is not in the spatial index: check the neighbour's id)"
    )]
    UnknownParcel(ParcelId),
    /// A geometry had a coordinate that is not a finite number.
    #[error(
        "坐标不是有限数值（第 {index} 个坐标）：请检查界址点坐标文件 \
         (coordinate number {index} is not a finite number: check the coordinate file)"
    )]
    NonFinite {
        /// The position of the first bad coordinate, counted from 1 over all rings.
        index: usize,
    },
    /// A tolerance of the `[spatial]` configuration is out of range.
    #[error(
        "空间检查容差 {0} 无效：须为非负有限数值，且 search_m 须大于 gap_m；请修改内网配置的 [spatial] 节 \
         (tolerance {0} is invalid: use a finite, non-negative number, and search_m above gap_m)"
    )]
    InvalidTolerance(&'static str),
    /// A geometry had no polygon at all.
    #[error("图形为空：请检查界址点坐标文件是否包含地块 (the geometry is empty: check the file)")]
    Empty,
}

/// Checks that `geometry` has at least one polygon and only finite coordinates.
pub fn check_finite(geometry: &geo::MultiPolygon<f64>) -> Result<(), SpatialError> {
    use geo::CoordsIter;
    if geometry.0.is_empty() {
        return Err(SpatialError::Empty);
    }
    match geometry
        .coords_iter()
        .position(|c| !(c.x.is_finite() && c.y.is_finite()))
    {
        Some(i) => Err(SpatialError::NonFinite { index: i + 1 }),
        None => Ok(()),
    }
}
