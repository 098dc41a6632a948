//! The checks of a new survey against the index: overlaps beyond the sliver tolerance, gaps to a
//! neighbour the survey claims to share a boundary with, and the parcels near it (for drawing).

use geo::{Area, BooleanOps, BoundingRect, Coord, Intersects, MultiPolygon, Rect};
use serde::Deserialize;

use crate::index::ParcelIndex;
use crate::{ParcelId, SpatialError, check_finite};

/// The tolerances of the checks; the `[spatial]` section of the intranet's configuration.
///
/// The defaults follow the point accuracy of urban cadastral surveys: a first-class boundary point
/// (一级界址点) has a mean square error of ±5 cm, so the same boundary surveyed twice may differ by a
/// few centimetres without anyone having moved a fence.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Tolerance {
    /// An overlap piece of at most this area (m²) is a sliver, not an overlap. Default 0.1 m²:
    /// below a tenth of a square metre no registration question arises, and it absorbs the
    /// small triangles where two surveys of a corner cross.
    pub sliver_area_m2: f64,
    /// An overlap piece at most this wide (m) is a sliver, whatever its length. Default 0.05 m:
    /// the point accuracy above; a 4 cm band along a 100 m boundary is re-survey noise.
    pub sliver_width_m: f64,
    /// A boundary claimed as shared may stand off its neighbour by at most this much (m).
    /// Default 0.05 m, the same point accuracy.
    pub gap_m: f64,
    /// How far from the neighbour (m) a part of the candidate's boundary still counts as facing
    /// it. Default 1.0 m: farther than that the survey does not describe a shared boundary, and
    /// the whole claim fails (reported with the distance).
    pub search_m: f64,
}

impl Tolerance {
    /// Checks that every tolerance is a finite number, none negative, and that the search
    /// reaches beyond the gap tolerance.
    ///
    /// # Errors
    /// [`SpatialError::InvalidTolerance`] naming the setting.
    pub fn validate(&self) -> Result<(), SpatialError> {
        for (name, value) in [
            ("sliver_area_m2", self.sliver_area_m2),
            ("sliver_width_m", self.sliver_width_m),
            ("gap_m", self.gap_m),
            ("search_m", self.search_m),
        ] {
            if !value.is_finite() || value < 0.0 {
                return Err(SpatialError::InvalidTolerance(name));
            }
        }
        if self.search_m <= self.gap_m {
            return Err(SpatialError::InvalidTolerance("search_m"));
        }
        Ok(())
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        Tolerance {
            sliver_area_m2: 0.1,
            sliver_width_m: 0.05,
            gap_m: 0.05,
            search_m: 1.0,
        }
    }
}

/// A candidate's overlap with an existing parcel, beyond the sliver tolerance.
///
/// The intersection of the two is split into its pieces (connected polygons); a piece counts when
/// its area exceeds [`Tolerance::sliver_area_m2`] **and** its width exceeds
/// [`Tolerance::sliver_width_m`]. The width of a piece is that of the rectangle with the same
/// area and perimeter (`w = (s − √(s² − 4A)) / 2`, `s` = half the perimeter; `s / 2` when the
/// piece is rounder than a square): exact for rectangles, ≈ `A / length` for a long sliver, and
/// unlike `2A/P` it gives a 5 m × 5 m square its 5 m. Edges that only touch, a shared boundary
/// and the same boundary re-surveyed with millimetre noise give no piece or only thin ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlap {
    /// The existing parcel overlapped.
    pub parcel: ParcelId,
    /// The area (m²) of the pieces that count.
    pub area_m2: f64,
    /// The largest width (m) among the pieces that count.
    pub width_m: f64,
    /// The pieces that count.
    pub region: MultiPolygon<f64>,
}

/// A gap between the candidate and a neighbour it claims to share a boundary with.
#[derive(Debug, Clone, PartialEq)]
pub struct Gap {
    /// The neighbour named in the claim.
    pub neighbour: ParcelId,
    /// The largest separation (m) between the facing boundary and the neighbour; when no part of
    /// the candidate's boundary faces the neighbour, the distance between the two parcels.
    pub max_gap_m: f64,
    /// The length (m) of the candidate's facing boundary that stands off by more than
    /// [`Tolerance::gap_m`] (0 when nothing faces the neighbour).
    pub length_m: f64,
    /// Where on the candidate's boundary the largest separation was found (the middle sample of
    /// those within a millimetre of it, so a uniformly set-back edge is marked at its middle).
    pub at: Coord<f64>,
}

/// The spacing (m) at which the candidate's boundary is sampled for the gap check; the
/// `length_m` of a gap is accurate to about this much at each end of the gapped stretch.
const SAMPLE_STEP_M: f64 = 0.1;

/// A part of the candidate's boundary faces the neighbour when the direction to the nearest
/// point of the neighbour makes at least 45° with the boundary there, on the outer side. A
/// boundary that runs straight towards the neighbour (the side edges of a parcel meeting it at a
/// corner) does not face it.
const FACING_COS: f64 = std::f64::consts::FRAC_1_SQRT_2;

/// The width of the rectangle of the same area and perimeter (see [`Overlap`]).
pub(crate) fn equivalent_width(area: f64, perimeter: f64) -> f64 {
    let s = perimeter / 2.0;
    let d = s * s - 4.0 * area;
    if d <= 0.0 {
        s / 2.0
    } else {
        // The numerically stable form of (s − √d) / 2 for thin pieces.
        2.0 * area / (s + d.sqrt())
    }
}

fn ring_length(ring: &geo::LineString<f64>) -> f64 {
    ring.0
        .windows(2)
        .map(|w| (w[1].x - w[0].x).hypot(w[1].y - w[0].y))
        .sum()
}

fn perimeter(polygon: &geo::Polygon<f64>) -> f64 {
    ring_length(polygon.exterior()) + polygon.interiors().iter().map(ring_length).sum::<f64>()
}

/// Twice the signed area of a ring (positive when counter-clockwise).
fn signed_area2(ring: &geo::LineString<f64>) -> f64 {
    ring.0
        .windows(2)
        .map(|w| w[0].x * w[1].y - w[1].x * w[0].y)
        .sum()
}

/// The segments of all rings of a geometry.
fn segments(geometry: &MultiPolygon<f64>) -> Vec<(Coord<f64>, Coord<f64>)> {
    let mut out = Vec::new();
    for polygon in &geometry.0 {
        for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
            out.extend(ring.0.windows(2).map(|w| (w[0], w[1])));
        }
    }
    out
}

/// The point of segment `a–b` nearest to `p`.
fn nearest_on_segment(p: Coord<f64>, a: Coord<f64>, b: Coord<f64>) -> Coord<f64> {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len2 = dx * dx + dy * dy;
    if len2 == 0.0 {
        return a;
    }
    let t = (((p.x - a.x) * dx + (p.y - a.y) * dy) / len2).clamp(0.0, 1.0);
    Coord {
        x: a.x + t * dx,
        y: a.y + t * dy,
    }
}

fn dist(a: Coord<f64>, b: Coord<f64>) -> f64 {
    (a.x - b.x).hypot(a.y - b.y)
}

/// The distance from `p` to the nearest segment, and the nearest point there.
fn nearest(p: Coord<f64>, segs: &[(Coord<f64>, Coord<f64>)]) -> (f64, Coord<f64>) {
    let mut best = (f64::INFINITY, p);
    for &(a, b) in segs {
        let q = nearest_on_segment(p, a, b);
        let d = dist(p, q);
        if d < best.0 {
            best = (d, q);
        }
    }
    best
}

/// The distance between two geometries (0 when they meet) and the point of `a` nearest to `b`.
fn distance_between(a: &MultiPolygon<f64>, b: &MultiPolygon<f64>) -> (f64, Coord<f64>) {
    let (sa, sb) = (segments(a), segments(b));
    let mut best = (f64::INFINITY, Coord { x: 0.0, y: 0.0 });
    // Between two disjoint polygons the nearest pair has a vertex on one side.
    for &(p, _) in &sa {
        let (d, _) = nearest(p, &sb);
        if d < best.0 {
            best = (d, p);
        }
    }
    for &(q, _) in &sb {
        let (d, p) = nearest(q, &sa);
        if d < best.0 {
            best = (d, p);
        }
    }
    if best.0 > 0.0 && a.intersects(b) {
        best.0 = 0.0;
    }
    best
}

fn grow(rect: Rect<f64>, by: f64) -> Rect<f64> {
    Rect::new(
        Coord {
            x: rect.min().x - by,
            y: rect.min().y - by,
        },
        Coord {
            x: rect.max().x + by,
            y: rect.max().y + by,
        },
    )
}

impl ParcelIndex {
    /// The existing parcels the candidate overlaps beyond the sliver tolerance (see [`Overlap`]),
    /// largest area first. A candidate that is empty or has a coordinate that is not finite
    /// overlaps nothing: check it with [`check_finite`] first.
    pub fn overlaps(&self, candidate: &MultiPolygon<f64>, tol: &Tolerance) -> Vec<Overlap> {
        self.overlaps_excluding(candidate, tol, &[])
    }

    /// [`overlaps`](Self::overlaps), leaving out the parcels in `exclude`: the parcel a survey
    /// re-surveys, or the parent parcels a split or merge replaces.
    pub fn overlaps_excluding(
        &self,
        candidate: &MultiPolygon<f64>,
        tol: &Tolerance,
        exclude: &[ParcelId],
    ) -> Vec<Overlap> {
        let Some(bbox) = candidate.bounding_rect() else {
            return Vec::new();
        };
        if check_finite(candidate).is_err() {
            return Vec::new();
        }
        let mut found = Vec::new();
        for entry in self.entries_in(&bbox) {
            // Every piece lies inside both envelopes. When their common rectangle is no larger
            // than a sliver, or thinner than half the sliver width (a piece of width w inside a
            // band of width b has w ≤ 2b by the estimate above), no piece can count: skip the
            // boolean operation. This is what makes neighbours sharing a straight edge cheap.
            let er = Self::entry_rect(entry);
            let w = bbox.max().x.min(er.max().x) - bbox.min().x.max(er.min().x);
            let h = bbox.max().y.min(er.max().y) - bbox.min().y.max(er.min().y);
            if w * h <= tol.sliver_area_m2 || w.min(h) <= tol.sliver_width_m / 2.0 {
                continue;
            }
            let Some(id) = self.id_of(entry.slot) else {
                continue;
            };
            if exclude.contains(&id) {
                continue;
            }
            let Some(existing) = self.geometry_of(entry.slot) else {
                continue;
            };
            let pieces = candidate.intersection(&existing);
            let mut region = Vec::new();
            let (mut area_m2, mut width_m) = (0.0, 0.0_f64);
            for piece in pieces.0 {
                let area = piece.unsigned_area();
                if area <= tol.sliver_area_m2 {
                    continue;
                }
                let width = equivalent_width(area, perimeter(&piece));
                if width <= tol.sliver_width_m {
                    continue;
                }
                area_m2 += area;
                width_m = width_m.max(width);
                region.push(piece);
            }
            if !region.is_empty() {
                found.push(Overlap {
                    parcel: id,
                    area_m2,
                    width_m,
                    region: MultiPolygon(region),
                });
            }
        }
        found.sort_by(|a, b| {
            b.area_m2
                .total_cmp(&a.area_m2)
                .then(a.parcel.cmp(&b.parcel))
        });
        found
    }

    /// Checks the candidate's claim to share a boundary with `neighbour`.
    ///
    /// The candidate's boundary is sampled every 0.1 m. A sample faces the neighbour when it is
    /// within [`Tolerance::search_m`] of it, outside it, and the direction to the neighbour's
    /// nearest point leaves the boundary at 45° or more on the parcel's outer side (so the side
    /// edges running into a shared corner do not count). Samples inside the neighbour are at
    /// distance 0 (that is an overlap, not a gap). `None` when every facing sample is within
    /// [`Tolerance::gap_m`]; otherwise the largest separation and the facing length beyond
    /// `gap_m`. When nothing faces the neighbour the claim fails: a gap whose `max_gap_m` is the
    /// distance between the parcels and whose `length_m` is 0 (a distance of 0 then means they
    /// meet at a corner only).
    ///
    /// # Errors
    /// [`SpatialError::UnknownParcel`] when the index does not hold `neighbour`;
    /// [`SpatialError::Empty`] or [`SpatialError::NonFinite`] for such a candidate.
    pub fn gap_to(
        &self,
        candidate: &MultiPolygon<f64>,
        neighbour: ParcelId,
        tol: &Tolerance,
    ) -> Result<Option<Gap>, SpatialError> {
        let other = self
            .get(neighbour)
            .ok_or(SpatialError::UnknownParcel(neighbour))?;
        check_finite(candidate)?;
        let Some(reach) = other.bounding_rect().map(|r| grow(r, tol.search_m)) else {
            return Err(SpatialError::UnknownParcel(neighbour));
        };
        // Written here: geo has distances and Hausdorff/Fréchet measures between whole
        // geometries, but nothing for "the stretch of this boundary that faces that one", which
        // is what a claimed shared boundary means.
        let other_segs = segments(&other);

        let mut faced = false;
        let mut max_gap = 0.0_f64;
        // The samples beyond `gap_m`, in boundary order, to place `at` in the middle of the
        // widest stretch rather than at its first sample.
        let mut beyond: Vec<(f64, Coord<f64>)> = Vec::new();
        let mut length = 0.0;
        for polygon in &candidate.0 {
            let rings = std::iter::once((polygon.exterior(), true))
                .chain(polygon.interiors().iter().map(|r| (r, false)));
            for (ring, exterior) in rings {
                // +1: the parcel's outer side is to the right of the direction of travel.
                let ccw = signed_area2(ring) > 0.0;
                let side = if ccw == exterior { 1.0 } else { -1.0 };
                for w in ring.0.windows(2) {
                    let (a, b) = (w[0], w[1]);
                    let seg_rect = Rect::new(a, b);
                    if !seg_rect.intersects(&reach) {
                        continue;
                    }
                    let len = dist(a, b);
                    if len == 0.0 {
                        continue;
                    }
                    let d = Coord {
                        x: (b.x - a.x) / len,
                        y: (b.y - a.y) / len,
                    };
                    let outward = Coord {
                        x: d.y * side,
                        y: -d.x * side,
                    };
                    let n = (len / SAMPLE_STEP_M).ceil().max(1.0);
                    let step = len / n;
                    for i in 0..n as usize {
                        let t = (i as f64 + 0.5) * step;
                        let p = Coord {
                            x: a.x + d.x * t,
                            y: a.y + d.y * t,
                        };
                        let (mut gap, q) = nearest(p, &other_segs);
                        if gap > tol.search_m {
                            continue;
                        }
                        if gap > 0.0 {
                            let v = Coord {
                                x: (q.x - p.x) / gap,
                                y: (q.y - p.y) / gap,
                            };
                            let along = (v.x * d.x + v.y * d.y).abs();
                            let out = v.x * outward.x + v.y * outward.y;
                            if gap > tol.gap_m && other.intersects(&p) {
                                gap = 0.0; // inside the neighbour: an overlap, not a gap
                            } else if along > FACING_COS || out <= 0.0 {
                                continue;
                            }
                        }
                        faced = true;
                        max_gap = max_gap.max(gap);
                        if gap > tol.gap_m {
                            length += step;
                            beyond.push((gap, p));
                        }
                    }
                }
            }
        }
        if !faced {
            let (distance, nearest_point) = distance_between(candidate, &other);
            return Ok(Some(Gap {
                neighbour,
                max_gap_m: distance,
                length_m: 0.0,
                at: nearest_point,
            }));
        }
        if max_gap <= tol.gap_m {
            return Ok(None);
        }
        // Within a millimetre of the largest separation counts as at it.
        let widest: Vec<Coord<f64>> = beyond
            .iter()
            .filter(|(gap, _)| *gap >= max_gap - 0.001)
            .map(|(_, p)| *p)
            .collect();
        let at = widest
            .get(widest.len() / 2)
            .copied()
            .unwrap_or(Coord { x: 0.0, y: 0.0 });
        Ok(Some(Gap {
            neighbour,
            max_gap_m: max_gap,
            length_m: length,
            at,
        }))
    }

    /// The parcels within `distance_m` of the candidate (meeting it counts), nearest first: the
    /// neighbours to draw beside it.
    pub fn near(&self, candidate: &MultiPolygon<f64>, distance_m: f64) -> Vec<ParcelId> {
        let Some(bbox) = candidate.bounding_rect() else {
            return Vec::new();
        };
        if check_finite(candidate).is_err() || distance_m.is_nan() || distance_m < 0.0 {
            return Vec::new();
        }
        let mut found: Vec<(f64, ParcelId)> = self
            .entries_in(&grow(bbox, distance_m))
            .filter_map(|e| {
                let geometry = self.geometry_of(e.slot)?;
                let (d, _) = distance_between(candidate, &geometry);
                (d <= distance_m).then_some((d, self.id_of(e.slot)?))
            })
            .collect();
        found.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        found.into_iter().map(|(_, id)| id).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_width_is_exact_for_rectangles() {
        for (w, l) in [(5.0, 5.0), (0.002, 50.0), (3.0, 40.0)] {
            let got = equivalent_width(w * l, 2.0 * (w + l));
            assert!((got - w).abs() < 1e-9 * l, "{w}×{l}: {got}");
        }
        // Rounder than a square: half the half-perimeter.
        assert!((equivalent_width(10.0, 10.0) - 2.5).abs() < 1e-12);
    }

    #[test]
    fn default_tolerance_and_toml_section() {
        let t: Tolerance = toml::from_str("gap_m = 0.1").expect("valid section");
        assert_eq!(t.gap_m, 0.1);
        assert_eq!(t.sliver_area_m2, Tolerance::default().sliver_area_m2);
        assert!(toml::from_str::<Tolerance>("gap = 0.1").is_err());
        assert_eq!(Tolerance::default().validate(), Ok(()));
        let bad: Tolerance = toml::from_str("search_m = 0.01").expect("valid toml");
        assert_eq!(
            bad.validate(),
            Err(SpatialError::InvalidTolerance("search_m"))
        );
        let bad = Tolerance {
            sliver_width_m: f64::NAN,
            ..Tolerance::default()
        };
        assert_eq!(
            bad.validate(),
            Err(SpatialError::InvalidTolerance("sliver_width_m"))
        );
    }
}
