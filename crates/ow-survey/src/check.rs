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

use geo::algorithm::line_intersection::line_intersection;
use geo::algorithm::validation::{InvalidPolygon, RingRole};
use geo::{
    Area, BooleanOps, BoundingRect, Coord, Intersects, Line, LineString, Polygon, Validation,
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
    let mut clean_rings: Vec<LineString<f64>> = Vec::new();
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
        // The ring for the validity check, without successive duplicates (reported above).
        let mut coords: Vec<Coord<f64>> = Vec::with_capacity(n + 1);
        for p in &ring.points {
            let c = Coord {
                x: p.easting,
                y: p.northing,
            };
            if coords
                .last()
                .is_none_or(|l| (l.x - c.x).hypot(l.y - c.y) > cfg.duplicate_point_m)
            {
                coords.push(c);
            }
        }
        let mut ls = LineString::new(coords);
        ls.close();
        clean_rings.push(ls);
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

    let mut rings = clean_rings.into_iter();
    let shell = rings.next()?;
    let polygon = Polygon::new(shell, rings.collect());
    let errors = polygon.validation_errors();
    let mut holes_reported: Vec<(usize, usize)> = Vec::new();
    for e in &errors {
        match e {
            InvalidPolygon::SelfIntersection(role) => {
                let idx = ring_index(*role);
                if let Some(ring) = parcel.rings.get(idx) {
                    out.push(locate_self_intersection(number, ring));
                }
            }
            InvalidPolygon::InteriorRingNotContainedInExteriorRing(role) => {
                let idx = ring_index(*role);
                let ring = parcel.rings.get(idx);
                out.push(Finding::hole_outside_shell(
                    number,
                    ring.map_or(0, |r| r.ring_no),
                    ring.and_then(|r| r.points.first()).and_then(|p| p.line),
                ));
            }
            InvalidPolygon::IntersectingRingsOnALine(a, b)
            | InvalidPolygon::IntersectingRingsOnAnArea(a, b) => {
                let (ia, ib) = (ring_index(*a), ring_index(*b));
                let pair = (ia.min(ib), ia.max(ib));
                if holes_reported.contains(&pair) {
                    continue;
                }
                holes_reported.push(pair);
                let no = |i: usize| parcel.rings.get(i).map_or(0, |r| r.ring_no);
                if pair.0 == 0 {
                    let ring = parcel.rings.get(pair.1);
                    out.push(Finding::hole_outside_shell(
                        number,
                        no(pair.1),
                        ring.and_then(|r| r.points.first()).and_then(|p| p.line),
                    ));
                } else {
                    out.push(Finding::holes_overlap(number, no(pair.0), no(pair.1)));
                }
            }
            // Too few points was reported above; coordinates are finite by construction.
            InvalidPolygon::TooFewPointsInRing(_) | InvalidPolygon::NonFiniteCoord(..) => {}
        }
    }
    errors.is_empty().then_some(polygon)
}

fn ring_index(role: RingRole) -> usize {
    match role {
        RingRole::Exterior => 0,
        RingRole::Interior(i) => i + 1,
    }
}

/// The most points for which the crossing lines are located (pairwise, O(n²)); larger rings
/// get a finding without the second line.
const LOCATE_MAX_POINTS: usize = 3_000;

fn locate_self_intersection(parcel: &str, ring: &SurveyRing) -> Finding {
    let pts = &ring.points;
    let n = pts.len();
    let seg = |i: usize| -> Line<f64> {
        let (a, b) = (&pts[i], &pts[(i + 1) % n]);
        Line::new(
            Coord {
                x: a.easting,
                y: a.northing,
            },
            Coord {
                x: b.easting,
                y: b.northing,
            },
        )
    };
    let line_of = |i: usize| pts[i].line;
    if n <= LOCATE_MAX_POINTS {
        for i in 0..n {
            for j in i + 1..n {
                // Skip neighbouring lines, which share an end point.
                if j == i + 1 || (i == 0 && j == n - 1) {
                    continue;
                }
                if line_intersection(seg(i), seg(j)).is_some() {
                    return Finding::self_intersection(
                        parcel,
                        ring.ring_no,
                        (&pts[i].name, &pts[(i + 1) % n].name),
                        Some((&pts[j].name, &pts[(j + 1) % n].name)),
                        line_of(i),
                    );
                }
            }
        }
    }
    let (a, b) = match (pts.first(), pts.get(1)) {
        (Some(a), Some(b)) => (a.name.as_str(), b.name.as_str()),
        _ => ("", ""),
    };
    Finding::self_intersection(parcel, ring.ring_no, (a, b), None, line_of(0))
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
