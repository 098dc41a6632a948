//! The intrinsic checks of a survey package (everything that needs no other data): rings, points,
//! polygon validity, areas against the declared ones, projection zone, buildings in their
//! parcels, parcel numbers and unit codes within the package.
//!
//! Area tolerance: the 地籍调查规程 practice limits the difference between the area computed from
//! the boundary points and the declared area to `ΔS ≤ factor · mj · √S` (`factor` 2, `S` the
//! computed area in m², `mj` the mean square error of a boundary point of the survey's point
//! class: 一级 0.05 m, 二级 0.075 m, 三级 0.10 m). The classes, their `mj`, the class used and the
//! factor are configuration, so a registration centre sets them to its local rules; so is an
//! optional relative limit (e.g. 0.01: the difference must also be within 1 % of `S`) and a floor
//! (`min_abs_m2`, default 1 m², the rounding of an area written to 0.0001 公顷).

use std::collections::{BTreeMap, HashMap};

use geo::algorithm::line_intersection::LineIntersection;
use geo::algorithm::sweep::{Cross, Intersections};
use geo::coordinate_position::CoordPos;
use geo::dimensions::Dimensions;
use geo::{
    Area, BooleanOps, BoundingRect, Coord, Intersects, Line, LineString, Polygon, PreparedGeometry,
    Relate,
};
use ow_domain::UnitCode;
use serde::{Deserialize, Serialize};

use crate::{BoundaryPoint, Finding, SourceFormat, SurveyPackage, SurveyParcel, SurveyRing};

/// Settings of the checks; the intranet reads them from its TOML configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckConfig {
    /// The projection zone (带号) the centre works in; `None` skips the comparison.
    pub expected_zone: Option<u8>,
    /// The zone width in degrees: 3 (default) or 6.
    pub zone_width: u8,
    /// Successive boundary points closer than this (m) are reported (warning). Default 0.05.
    pub min_point_spacing_m: f64,
    /// Points closer than this (m) are the same point (duplicates). Default 0.001.
    pub duplicate_point_m: f64,
    /// The area tolerance.
    pub area: AreaTolerance,
    /// Metres an easting may lie beyond the zone's edge (its half-width at the equator:
    /// 166 980 m for 3°, 333 960 m for 6°). Default 0.
    pub zone_margin_m: f64,
    /// The northings (m) accepted as inside the country: default 300 000 to 6 000 000.
    pub northing_range_m: (f64, f64),
    /// Area (m²) a building may lie outside its parcel before it is reported. Default 0.01.
    pub building_tolerance_m2: f64,
    /// Area (m²) two parcels of one package may overlap before it is reported. Default 0.01.
    pub overlap_tolerance_m2: f64,
}

impl Default for CheckConfig {
    fn default() -> Self {
        Self {
            expected_zone: None,
            zone_width: 3,
            min_point_spacing_m: 0.05,
            duplicate_point_m: 0.001,
            area: AreaTolerance::default(),
            zone_margin_m: 0.0,
            northing_range_m: (300_000.0, 6_000_000.0),
            building_tolerance_m2: 0.01,
            overlap_tolerance_m2: 0.01,
        }
    }
}

/// A setting that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckConfigError {
    /// `zone_width` is not 3 or 6.
    #[error("survey check setting zone_width is {0}; set it to 3 or 6")]
    ZoneWidth(u8),
    /// `area.point_class` names no class in `area.classes`.
    #[error(
        "survey check setting area.point_class {0:?} is not one of area.classes; add it there or choose a listed class"
    )]
    UnknownPointClass(String),
    /// A number is negative or not finite.
    #[error("survey check setting {0} must be a non-negative number")]
    Negative(&'static str),
}

impl CheckConfig {
    /// Checks the settings; call it when loading the configuration.
    pub fn validate(&self) -> Result<(), CheckConfigError> {
        if !matches!(self.zone_width, 3 | 6) {
            return Err(CheckConfigError::ZoneWidth(self.zone_width));
        }
        if !self.area.classes.contains_key(&self.area.point_class) {
            return Err(CheckConfigError::UnknownPointClass(
                self.area.point_class.clone(),
            ));
        }
        let numbers = [
            ("min_point_spacing_m", self.min_point_spacing_m),
            ("duplicate_point_m", self.duplicate_point_m),
            ("zone_margin_m", self.zone_margin_m),
            ("building_tolerance_m2", self.building_tolerance_m2),
            ("overlap_tolerance_m2", self.overlap_tolerance_m2),
            ("area.factor", self.area.factor),
            ("area.min_abs_m2", self.area.min_abs_m2),
            ("area.relative", self.area.relative.unwrap_or(0.0)),
        ];
        for (name, v) in numbers {
            if !(v.is_finite() && v >= 0.0) {
                return Err(CheckConfigError::Negative(name));
            }
        }
        if self
            .area
            .classes
            .values()
            .any(|v| !(v.is_finite() && *v >= 0.0))
        {
            return Err(CheckConfigError::Negative("area.classes"));
        }
        Ok(())
    }

    /// Half the zone's width in metres at the equator, plus the margin.
    fn max_offset_m(&self) -> f64 {
        f64::from(self.zone_width) / 2.0 * 111_320.0 + self.zone_margin_m
    }
}

/// Class-based area tolerance: `ΔS ≤ factor · mj · √S` (see the module documentation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AreaTolerance {
    /// The point class (界址点精度等级) of the survey; a key of `classes`. Default `一级`.
    pub point_class: String,
    /// Mean square error `mj` (m) of a boundary point per class. Default 一级 0.05, 二级 0.075,
    /// 三级 0.10.
    pub classes: BTreeMap<String, f64>,
    /// The factor before `mj · √S`. Default 2 (the limit is twice the mean square error).
    pub factor: f64,
    /// An optional relative limit as a fraction of `S` (0.01 = 1 %) that must also be met.
    pub relative: Option<f64>,
    /// The smallest limit (m²) ever applied. Default 1.
    pub min_abs_m2: f64,
}

impl Default for AreaTolerance {
    fn default() -> Self {
        Self {
            point_class: "一级".to_owned(),
            classes: BTreeMap::from([
                ("一级".to_owned(), 0.05),
                ("二级".to_owned(), 0.075),
                ("三级".to_owned(), 0.10),
            ]),
            factor: 2.0,
            relative: None,
            min_abs_m2: 1.0,
        }
    }
}

impl AreaTolerance {
    /// The largest allowed difference (m²) for a parcel of `area_m2`. An unknown point class
    /// (see [`CheckConfig::validate`]) counts as 0.05 m.
    pub fn limit_m2(&self, area_m2: f64) -> f64 {
        let mj = self.classes.get(&self.point_class).copied().unwrap_or(0.05);
        let mut limit = self.factor * mj * area_m2.max(0.0).sqrt();
        if let Some(r) = self.relative {
            limit = limit.min(r * area_m2);
        }
        limit.max(self.min_abs_m2)
    }
}

/// Runs every intrinsic check and returns the findings (empty: nothing to report). Findings are
/// in package order: package-level first, then per parcel, then buildings.
pub fn check_package(pkg: &SurveyPackage, cfg: &CheckConfig) -> Vec<Finding> {
    let mut out = Vec::new();
    if let (Some(expected), Some(found)) = (cfg.expected_zone, pkg.meta.zone)
        && expected != found
    {
        out.push(Finding::zone_mismatch("带号", found, expected));
    }
    if let Some(w) = pkg.meta.zone_width
        && w != cfg.zone_width
    {
        out.push(Finding::zone_mismatch("分带宽度（度）", w, cfg.zone_width));
    }

    let mut numbers: HashMap<&str, Option<u32>> = HashMap::new();
    let mut unit_codes: HashMap<String, &str> = HashMap::new();
    let mut valid: Vec<Option<Polygon<f64>>> = Vec::with_capacity(pkg.parcels.len());
    for parcel in &pkg.parcels {
        if let Some(first_line) = numbers.get(parcel.number.as_str()) {
            out.push(Finding::duplicate_parcel_number(
                &parcel.number,
                parcel.header_line,
                *first_line,
            ));
        } else {
            numbers.insert(&parcel.number, parcel.header_line);
        }
        if let Some(code) = &parcel.unit_code {
            match UnitCode::parse(code) {
                Err(e) => {
                    let mut f = Finding::unit_code_malformed(code, &e.message_zh());
                    f.parcel = Some(parcel.number.clone());
                    f.line = parcel.header_line;
                    out.push(f);
                }
                Ok(c) => {
                    if let Some(other) = unit_codes.get(c.as_str()) {
                        out.push(Finding::duplicate_unit_code(
                            c.as_str(),
                            &parcel.number,
                            other,
                        ));
                    } else {
                        unit_codes.insert(c.as_str().to_owned(), &parcel.number);
                    }
                }
            }
        }
        valid.push(check_parcel(parcel, pkg.format, cfg, &mut out));
    }

    // Parcels of one package must not overlap each other.
    let boxes: Vec<_> = valid
        .iter()
        .map(|p| p.as_ref().and_then(BoundingRect::bounding_rect))
        .collect();
    for i in 0..valid.len() {
        for j in i + 1..valid.len() {
            let (Some(a), Some(b)) = (&valid[i], &valid[j]) else {
                continue;
            };
            let (Some(ba), Some(bb)) = (boxes[i], boxes[j]) else {
                continue;
            };
            if !ba.intersects(&bb) {
                continue;
            }
            let area = a.intersection(b).unsigned_area();
            if area > cfg.overlap_tolerance_m2 {
                out.push(Finding::parcels_overlap(
                    &pkg.parcels[i].number,
                    &pkg.parcels[j].number,
                    area,
                ));
            }
        }
    }

    for building in &pkg.buildings {
        let Some(idx) = pkg
            .parcels
            .iter()
            .position(|p| p.number == building.parcel_number)
        else {
            out.push(Finding::building_parcel_unknown(
                &building.number,
                &building.parcel_number,
            ));
            continue;
        };
        let footprint = building.polygon();
        if distinct_count(building.rings.first(), cfg) < 3 {
            continue;
        }
        let parcel_polygon = pkg.parcels[idx].polygon();
        let outside = footprint.difference(&parcel_polygon).unsigned_area();
        if outside > cfg.building_tolerance_m2 {
            out.push(Finding::building_outside_parcel(
                &building.number,
                &building.parcel_number,
                outside,
            ));
        }
    }
    out
}

fn key(p: &BoundaryPoint, tol: f64) -> (i64, i64) {
    let tol = if tol > 0.0 { tol } else { 0.001 };
    // Grid cells of the duplicate tolerance; coordinates are bounded (< 1e7 m) by the parser,
    // so the rounded values fit an i64.
    (
        (p.easting / tol).round() as i64,
        (p.northing / tol).round() as i64,
    )
}

fn distinct_count(ring: Option<&SurveyRing>, cfg: &CheckConfig) -> usize {
    let Some(ring) = ring else { return 0 };
    let mut keys: Vec<_> = ring
        .points
        .iter()
        .map(|p| key(p, cfg.duplicate_point_m))
        .collect();
    keys.sort_unstable();
    keys.dedup();
    keys.len()
}

fn distance(a: &BoundaryPoint, b: &BoundaryPoint) -> f64 {
    (a.easting - b.easting).hypot(a.northing - b.northing)
}

/// Checks one parcel; returns its polygon when it is valid (for the overlap check).
fn check_parcel(
    parcel: &SurveyParcel,
    format: SourceFormat,
    cfg: &CheckConfig,
    out: &mut Vec<Finding>,
) -> Option<Polygon<f64>> {
    let number = parcel.number.as_str();
    let mut enough_points = !parcel.rings.is_empty();
    let mut clean_rings: Vec<Vec<(Coord<f64>, usize)>> = Vec::new();
    for ring in &parcel.rings {
        let first_line = ring
            .points
            .first()
            .and_then(|p| p.line)
            .or(parcel.header_line);
        match format {
            SourceFormat::GeoJson if !ring.closed_in_source => {
                out.push(Finding::ring_not_closed_geojson(number, ring.ring_no));
            }
            SourceFormat::BoundaryTxt if !ring.closed_in_source => {
                if let (Some(first), Some(last)) = (ring.points.first(), ring.points.last())
                    && ring.points.len() >= 2
                    && first.name == last.name
                {
                    out.push(Finding::ring_not_closed_txt(
                        number,
                        ring.ring_no,
                        &last.name,
                        last.line,
                        distance(first, last),
                    ));
                }
            }
            _ => {}
        }
        let distinct = distinct_count(Some(ring), cfg);
        if distinct < 3 {
            out.push(Finding::too_few_points(
                number,
                ring.ring_no,
                distinct,
                first_line,
            ));
            enough_points = false;
        }
        // Duplicates anywhere in the ring.
        let mut seen: HashMap<(i64, i64), &BoundaryPoint> = HashMap::new();
        for p in &ring.points {
            if let Some(first) = seen.get(&key(p, cfg.duplicate_point_m)) {
                out.push(Finding::duplicate_point(
                    number,
                    &p.name,
                    p.line,
                    &first.name,
                    p.easting,
                    p.northing,
                ));
            } else {
                seen.insert(key(p, cfg.duplicate_point_m), p);
            }
        }
        // Spacing of successive distinct points, the closing line included.
        let n = ring.points.len();
        if n >= 2 {
            for i in 0..n {
                let (a, b) = (&ring.points[i], &ring.points[(i + 1) % n]);
                if n == 2 && i == 1 {
                    break;
                }
                let d = distance(a, b);
                if d > cfg.duplicate_point_m && d < cfg.min_point_spacing_m {
                    out.push(Finding::point_spacing(
                        number,
                        &a.name,
                        &b.name,
                        b.line,
                        d,
                        cfg.min_point_spacing_m,
                    ));
                }
            }
        }
        // The ring for the validity check, without successive duplicates (reported above),
        // each vertex with the index of its point.
        let mut clean: Vec<(Coord<f64>, usize)> = Vec::with_capacity(n);
        for (i, p) in ring.points.iter().enumerate() {
            let c = Coord {
                x: p.easting,
                y: p.northing,
            };
            if clean
                .last()
                .is_none_or(|(l, _)| (l.x - c.x).hypot(l.y - c.y) > cfg.duplicate_point_m)
            {
                clean.push((c, i));
            }
        }
        if clean.len() >= 2
            && let (Some((a, _)), Some((b, _))) = (clean.first(), clean.last())
            && (a.x - b.x).hypot(a.y - b.y) <= cfg.duplicate_point_m
        {
            clean.pop();
        }
        clean_rings.push(clean);
    }

    check_zone(parcel, cfg, out);

    if !enough_points {
        return None;
    }
    let area = parcel.area_m2();
    match parcel.declared_area_m2 {
        Some(declared) => {
            let limit = cfg.area.limit_m2(area);
            if (area - declared).abs() > limit {
                out.push(Finding::area_mismatch(
                    number,
                    area,
                    declared,
                    limit,
                    parcel.header_line,
                ));
            }
        }
        None => out.push(Finding::declared_area_missing(
            number,
            area,
            parcel.header_line,
        )),
    }

    // Validity: each ring simple (a sweep over its lines), each hole inside the shell and
    // touching it at points only, holes not overlapping each other. The same rules as geo's
    // `Validation`, whose ring test compares every line with every other (O(n²)), too slow for
    // the 200 000 points a package may hold.
    let mut valid = true;
    for (ring, clean) in parcel.rings.iter().zip(&clean_rings) {
        if let Some((i, j)) = ring_crossing(clean) {
            let name = |k: usize| ring.points[clean[k % clean.len()].1].name.as_str();
            out.push(Finding::self_intersection(
                number,
                ring.ring_no,
                (name(i), name(i + 1)),
                Some((name(j), name(j + 1))),
                ring.points[clean[i].1].line,
            ));
            valid = false;
        }
    }
    let as_polygon = |clean: &[(Coord<f64>, usize)]| {
        let mut ls: LineString<f64> = clean.iter().map(|(c, _)| *c).collect();
        ls.close();
        Polygon::new(ls, Vec::new())
    };
    let shell = as_polygon(clean_rings.first()?);
    let holes: Vec<Polygon<f64>> = clean_rings.iter().skip(1).map(|c| as_polygon(c)).collect();
    if !holes.is_empty() {
        let prepared_shell = PreparedGeometry::from(&shell);
        for (k, hole) in holes.iter().enumerate() {
            let ring = &parcel.rings[k + 1];
            let m = prepared_shell.relate(hole);
            if !m.is_contains()
                || m.get(CoordPos::OnBoundary, CoordPos::OnBoundary) == Dimensions::OneDimensional
            {
                out.push(Finding::hole_outside_shell(
                    number,
                    ring.ring_no,
                    ring.points.first().and_then(|p| p.line),
                ));
                valid = false;
            }
        }
        let boxes: Vec<_> = holes.iter().map(BoundingRect::bounding_rect).collect();
        for a in 0..holes.len() {
            for b in a + 1..holes.len() {
                let (Some(ba), Some(bb)) = (boxes[a], boxes[b]) else {
                    continue;
                };
                if !ba.intersects(&bb) {
                    continue;
                }
                let m = holes[a].relate(&holes[b]);
                if m.get(CoordPos::Inside, CoordPos::Inside) == Dimensions::TwoDimensional
                    || m.get(CoordPos::OnBoundary, CoordPos::OnBoundary)
                        == Dimensions::OneDimensional
                {
                    out.push(Finding::holes_overlap(
                        number,
                        parcel.rings[a + 1].ring_no,
                        parcel.rings[b + 1].ring_no,
                    ));
                    valid = false;
                }
            }
        }
    }
    valid.then(|| parcel.polygon())
}

/// One line of a ring for the sweep, with its index.
#[derive(Debug, Clone, Copy)]
struct RingLine {
    index: usize,
    line: Line<f64>,
}

impl Cross for RingLine {
    type Scalar = f64;

    fn line(&self) -> Line<f64> {
        self.line
    }
}

/// A pair of lines (by index, `i < j`; line `i` runs from vertex `i` to `i + 1`) of a ring that
/// cross or touch other than where neighbours meet, or that fold back on each other (a spike).
/// `None` when the ring is simple. The sweep runs along the axis on which fewer lines overlap
/// (its cost grows with those overlaps), and stops at the first pair found.
fn ring_crossing(ring: &[(Coord<f64>, usize)]) -> Option<(usize, usize)> {
    let n = ring.len();
    if n < 3 {
        return None;
    }
    let swap = overlaps(ring, |c| c.y) < overlaps(ring, |c| c.x);
    let at = |i: usize| {
        let c = ring[i % n].0;
        if swap { Coord { x: c.y, y: c.x } } else { c }
    };
    let lines = (0..n).map(|i| RingLine {
        index: i,
        line: Line::new(at(i), at(i + 1)),
    });
    Intersections::from_iter(lines).find_map(|(a, b, hit)| {
        let (i, j) = (a.index.min(b.index), a.index.max(b.index));
        let neighbours = j == i + 1 || (i == 0 && j == n - 1);
        (!neighbours || matches!(hit, LineIntersection::Collinear { .. })).then_some((i, j))
    })
}

/// How many pairs of the ring's lines overlap in their extent along one axis: the number of
/// candidate pairs a sweep along that axis tests.
fn overlaps(ring: &[(Coord<f64>, usize)], axis: impl Fn(&Coord<f64>) -> f64) -> u64 {
    let n = ring.len();
    let mut spans: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let (a, b) = (axis(&ring[i].0), axis(&ring[(i + 1) % n].0));
            (a.min(b), a.max(b))
        })
        .collect();
    spans.sort_by(|p, q| p.0.total_cmp(&q.0));
    let mut count = 0u64;
    for (i, &(_, hi)) in spans.iter().enumerate() {
        let end = spans.partition_point(|s| s.0 <= hi);
        count += end.saturating_sub(i + 1) as u64;
    }
    count
}

fn check_zone(parcel: &SurveyParcel, cfg: &CheckConfig, out: &mut Vec<Finding>) {
    let max_offset = cfg.max_offset_m();
    let (lo, hi) = cfg.northing_range_m;
    let mut first: Option<&BoundaryPoint> = None;
    let mut count = 0usize;
    for p in parcel.rings.iter().flat_map(|r| r.points.iter()) {
        let outside =
            (p.easting - 500_000.0).abs() > max_offset || p.northing < lo || p.northing > hi;
        if outside {
            count += 1;
            first.get_or_insert(p);
        }
    }
    if let Some(p) = first {
        out.push(Finding::outside_zone(
            &parcel.number,
            &p.name,
            p.line,
            p.easting,
            p.northing,
            count,
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_limit_follows_the_formula() {
        let t = AreaTolerance::default();
        // 2 · 0.05 · √10000 = 10
        assert!((t.limit_m2(10_000.0) - 10.0).abs() < 1e-9);
        // the floor
        assert!((t.limit_m2(1.0) - 1.0).abs() < 1e-9);
        let t = AreaTolerance {
            point_class: "三级".into(),
            relative: Some(0.001),
            ..AreaTolerance::default()
        };
        // 2 · 0.1 · 100 = 20, relative 10 → 10
        assert!((t.limit_m2(10_000.0) - 10.0).abs() < 1e-9);
    }

    /// The sweep agrees with geo's (quadratic) ring validity on random small rings.
    #[test]
    fn ring_crossing_agrees_with_geo_validation() {
        use geo::Validation;
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 1000) as f64 / 10.0
        };
        let (mut simple, mut crossing) = (0, 0);
        for _ in 0..2_000 {
            let n = 3 + (next() as usize) % 6;
            let ring: Vec<(Coord<f64>, usize)> = (0..n)
                .map(|i| {
                    (
                        Coord {
                            x: next(),
                            y: next(),
                        },
                        i,
                    )
                })
                .collect();
            let mut ls: LineString<f64> = ring.iter().map(|(c, _)| *c).collect();
            ls.close();
            let geo_says = Polygon::new(ls, Vec::new()).is_valid();
            assert_eq!(ring_crossing(&ring).is_none(), geo_says, "{ring:?}");
            if geo_says {
                simple += 1;
            } else {
                crossing += 1;
            }
        }
        assert!(simple > 100 && crossing > 100, "{simple} {crossing}");
    }

    #[test]
    fn overlaps_count_candidate_pairs() {
        let c = |x: f64, y: f64, i| (Coord { x, y }, i);
        let square = [
            c(0.0, 0.0, 0),
            c(10.0, 0.0, 1),
            c(10.0, 10.0, 2),
            c(0.0, 10.0, 3),
        ];
        // Along x: [0,10] [10,10] [0,10] [0,0]: all pairs but [0,0]-[10,10] → 5.
        assert_eq!(overlaps(&square, |c| c.x), 5);
        // A comb of long horizontal teeth: the sweep along y has far fewer candidates.
        let comb = [
            c(0.0, 0.0, 0),
            c(100.0, 0.0, 1),
            c(100.0, 1.0, 2),
            c(1.0, 1.0, 3),
            c(1.0, 2.0, 4),
            c(100.0, 2.0, 5),
            c(100.0, 3.0, 6),
            c(0.0, 3.0, 7),
        ];
        assert!(overlaps(&comb, |c| c.y) < overlaps(&comb, |c| c.x));
        assert_eq!(ring_crossing(&comb), None);
    }

    #[test]
    fn spikes_are_crossings() {
        let c = |x: f64, y: f64, i| (Coord { x, y }, i);
        // 0,0 → 10,0 → 10,10 → 10,5 (back along the last line) → 0,10
        let ring = [
            c(0.0, 0.0, 0),
            c(10.0, 0.0, 1),
            c(10.0, 10.0, 2),
            c(10.0, 5.0, 3),
            c(0.0, 10.0, 4),
        ];
        assert!(ring_crossing(&ring).is_some());
        let square = [
            c(0.0, 0.0, 0),
            c(10.0, 0.0, 1),
            c(10.0, 10.0, 2),
            c(0.0, 10.0, 3),
        ];
        assert_eq!(ring_crossing(&square), None);
    }

    /// The configuration example in docs/survey-format.md is the default configuration.
    #[test]
    fn documented_configuration_is_the_default() {
        let doc = include_str!("../../../docs/survey-format.md");
        let start = doc.find("```toml\n").expect("toml block") + 8;
        let end = start + doc[start..].find("```").expect("end of block");
        let mut cfg: CheckConfig = toml::from_str(&doc[start..end]).unwrap();
        assert_eq!(cfg.expected_zone, Some(38));
        cfg.expected_zone = None;
        assert_eq!(cfg, CheckConfig::default());
    }

    #[test]
    fn config_reads_from_toml_and_validates() {
        let cfg: CheckConfig = toml::from_str(
            "expected_zone = 38\nmin_point_spacing_m = 0.1\n[area]\npoint_class = \"二级\"\nrelative = 0.01\n",
        )
        .unwrap();
        assert_eq!(cfg.expected_zone, Some(38));
        assert_eq!(cfg.zone_width, 3);
        assert_eq!(cfg.area.classes.len(), 3);
        cfg.validate().unwrap();
        let bad: CheckConfig = toml::from_str("[area]\npoint_class = \"四级\"\n").unwrap();
        assert!(matches!(
            bad.validate(),
            Err(CheckConfigError::UnknownPointClass(_))
        ));
        assert!(toml::from_str::<CheckConfig>("zone_widht = 3\n").is_err());
        let bad = CheckConfig {
            zone_width: 4,
            ..CheckConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
