//! The survey checks as the intranet runs them: parsing and intrinsic checks (`ow-survey`), the
//! spatial checks against existing parcels (`ow-spatial`), the drawing and the GeoJSON export.
//! Every finding leaves this module as an [`ReviewFinding`] (the message contract's shape); the
//! wording is `ow-survey`'s, except the two findings only this zone can make (a file that does
//! not parse, a claimed neighbour the cadastral database does not hold).

use std::collections::HashMap;

use geo::{Coord, Line, MultiPolygon};
use ow_exchange::ReviewFinding;
use ow_spatial::svg::{self, BoundaryPoint, Drawing, Highlight, Neighbour, Shape, Subject};
use ow_survey::{
    CheckConfig, Finding, ParseOptions, SourceFormat, SurveyPackage, check_package, parse_package,
    to_geojson,
};

pub use ow_spatial::{ParcelId, ParcelIndex, Tolerance};

/// A parcel of a package as checked.
#[derive(Clone)]
pub struct CheckedParcel {
    /// 地块编号 in the survey.
    pub number: String,
    /// 地块名称 (may name a person; not in `Debug`).
    pub name: String,
    /// Area computed from the geometry, m².
    pub area_m2: f64,
    /// The geometry (metres, easting without zone prefix, northing).
    pub geometry: MultiPolygon<f64>,
    /// Parcel codes the survey claims it shares a boundary with.
    pub neighbours: Vec<String>,
}

impl std::fmt::Debug for CheckedParcel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedParcel")
            .field("number", &self.number)
            .field("area_m2", &self.area_m2)
            .field("neighbours", &self.neighbours)
            .finish_non_exhaustive()
    }
}

/// A package parsed and checked on its own.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// The parcels (empty when the file does not parse).
    pub parcels: Vec<CheckedParcel>,
    /// The findings.
    pub findings: Vec<ReviewFinding>,
}

/// The findings of the survey checks as the message contract carries them. The TXT line, when
/// there is one, is added to the message; a segment is written `J3–J4` in `point`.
pub fn review_finding(f: &Finding) -> ReviewFinding {
    let point = match (&f.point, &f.segment) {
        (Some(p), _) => Some(p.clone()),
        (None, Some((a, b))) => Some(format!("{a}–{b}")),
        (None, None) => None,
    };
    ReviewFinding {
        code: f.code.as_str().to_owned(),
        severity: f.severity.as_str().to_owned(),
        parcel: f.parcel.clone(),
        point,
        message: match f.line {
            Some(line) => format!("{}（文件第{line}行）", f.message),
            None => f.message.clone(),
        },
        advice: f.advice.clone(),
    }
}

fn parse(bytes: &[u8], format: &str) -> Result<SurveyPackage, Vec<ReviewFinding>> {
    let Ok(format) = format.parse::<SourceFormat>() else {
        return Err(vec![ReviewFinding {
            code: "unreadable".into(),
            severity: "error".into(),
            parcel: None,
            point: None,
            message: format!("成果格式 {format} 不受支持"),
            advice: "请以界址点坐标 TXT（boundary-txt）或 GeoJSON 格式重新报送".into(),
        }]);
    };
    parse_package(bytes, format, &ParseOptions::default()).map_err(|errors| {
        errors
            .0
            .iter()
            .map(|p| ReviewFinding {
                code: "unreadable".into(),
                severity: "error".into(),
                parcel: None,
                point: None,
                message: match p.line {
                    Some(line) => format!("成果文件无法读取：{}（文件第{line}行）", p.message),
                    None => format!("成果文件无法读取：{}", p.message),
                },
                advice: p.advice.clone(),
            })
            .collect()
    })
}

/// Parses `bytes` in `format` (`boundary-txt` or `geojson`) and runs the intrinsic checks.
pub fn parse_and_check(bytes: &[u8], format: &str, cfg: &CheckConfig) -> Checked {
    let pkg = match parse(bytes, format) {
        Ok(pkg) => pkg,
        Err(findings) => {
            return Checked {
                parcels: Vec::new(),
                findings,
            };
        }
    };
    let findings = check_package(&pkg, cfg)
        .iter()
        .map(review_finding)
        .collect();
    let parcels = pkg
        .parcels
        .iter()
        .map(|p| CheckedParcel {
            number: p.number.clone(),
            name: p.name.clone(),
            area_m2: p.area_m2(),
            geometry: MultiPolygon::new(vec![p.polygon()]),
            neighbours: p.neighbours.clone(),
        })
        .collect();
    Checked { parcels, findings }
}

/// What the spatial checks found, by existing parcel id (the caller names them).
#[derive(Debug, Clone)]
pub enum SpatialHit {
    /// The parcel overlaps an existing one beyond the tolerance.
    Overlap {
        /// 地块编号.
        parcel: String,
        /// The existing parcel.
        existing: ParcelId,
        /// Overlap area, m².
        area_m2: f64,
        /// Overlap width, m.
        width_m: f64,
    },
    /// The parcel leaves a gap to a neighbour it claims to share a boundary with.
    Gap {
        /// 地块编号.
        parcel: String,
        /// The neighbour's parcel code.
        neighbour: String,
        /// Largest separation, m.
        max_gap_m: f64,
        /// Length of boundary beyond the tolerance, m.
        length_m: f64,
    },
    /// The survey names a neighbour the cadastral database does not hold.
    UnknownNeighbour {
        /// 地块编号.
        parcel: String,
        /// The code named.
        neighbour: String,
    },
}

/// Runs the spatial checks of `checked` against `index`: overlaps beyond `tol` with any
/// existing parcel, and gaps to each claimed neighbour (`neighbours` maps the codes the survey
/// names to existing parcels).
pub fn spatial(
    checked: &Checked,
    index: &ParcelIndex,
    neighbours: &HashMap<String, ParcelId>,
    tol: &Tolerance,
) -> Vec<SpatialHit> {
    let mut hits = Vec::new();
    for p in &checked.parcels {
        if ow_spatial::check_finite(&p.geometry).is_err() {
            continue;
        }
        for o in index.overlaps(&p.geometry, tol) {
            hits.push(SpatialHit::Overlap {
                parcel: p.number.clone(),
                existing: o.parcel,
                area_m2: o.area_m2,
                width_m: o.width_m,
            });
        }
        for code in &p.neighbours {
            let Some(id) = neighbours.get(code) else {
                hits.push(SpatialHit::UnknownNeighbour {
                    parcel: p.number.clone(),
                    neighbour: code.clone(),
                });
                continue;
            };
            match index.gap_to(&p.geometry, *id, tol) {
                Ok(Some(g)) => hits.push(SpatialHit::Gap {
                    parcel: p.number.clone(),
                    neighbour: code.clone(),
                    max_gap_m: g.max_gap_m,
                    length_m: g.length_m,
                }),
                Ok(None) => {}
                Err(_) => hits.push(SpatialHit::UnknownNeighbour {
                    parcel: p.number.clone(),
                    neighbour: code.clone(),
                }),
            }
        }
    }
    hits
}

/// The finding for a spatial hit; `existing_code` names the existing parcel of an overlap.
pub fn finding_for(hit: &SpatialHit, existing_code: &str) -> ReviewFinding {
    match hit {
        SpatialHit::Overlap {
            parcel,
            area_m2,
            width_m,
            ..
        } => review_finding(&Finding::overlap_existing(
            parcel,
            existing_code,
            *area_m2,
            *width_m,
        )),
        SpatialHit::Gap {
            parcel,
            neighbour,
            max_gap_m,
            length_m,
        } => review_finding(&Finding::gap_to_neighbour(
            parcel, neighbour, *max_gap_m, *length_m,
        )),
        SpatialHit::UnknownNeighbour { parcel, neighbour } => ReviewFinding {
            code: "neighbour-unknown".into(),
            severity: "warning".into(),
            parcel: Some(parcel.clone()),
            point: None,
            message: format!(
                "地块{parcel}申报与宗地{neighbour}共用界址线，但地籍库中没有该宗地，无法检查缝隙"
            ),
            advice: "请核对相邻宗地代码（19位宗地代码）；如相邻宗地尚未入库，请在审查意见中说明"
                .into(),
        },
    }
}

/// The finding for a unit code that is not well formed.
pub fn unit_code_malformed(code: &str, why: &str) -> ReviewFinding {
    review_finding(&Finding::unit_code_malformed(code, why))
}

/// The finding for a unit code already used.
pub fn unit_code_taken(code: &str) -> ReviewFinding {
    review_finding(&Finding::unit_code_taken(code))
}

/// The survey in `bytes` read again (for the page: drawing, proposed codes, export); `None`
/// when it does not parse.
pub fn read(bytes: &[u8], format: &str) -> Option<SurveyPackage> {
    parse(bytes, format).ok()
}

/// The SVG drawing of parcel `number` of the survey `pkg`: its boundary points labelled
/// as in the file, the `neighbours` (code, geometry) drawn lighter, and each of `findings`
/// (number in the page's list, finding) that names a point or segment of this parcel marked;
/// `overlaps` are the regions overlapping existing parcels, marked with the number of the
/// first overlap finding. `None` when the package has no such parcel.
pub fn draw(
    pkg: &SurveyPackage,
    number: &str,
    neighbours: &[(String, MultiPolygon<f64>)],
    findings: &[(u32, ReviewFinding)],
    overlaps: &[MultiPolygon<f64>],
) -> Option<String> {
    let parcel = pkg.parcels.iter().find(|p| p.number == number)?;
    let points: Vec<BoundaryPoint> = parcel
        .rings
        .iter()
        .flat_map(|r| r.points.iter())
        .map(|p| BoundaryPoint {
            name: p.name.clone(),
            at: Coord {
                x: p.easting,
                y: p.northing,
            },
        })
        .collect();
    let at = |name: &str| points.iter().find(|p| p.name == name).map(|p| p.at);
    let mut highlights = Vec::new();
    for (n, f) in findings {
        let shape = match f.point.as_deref() {
            Some(seg) if seg.contains('–') => {
                let mut ends = seg.split('–');
                match (ends.next().and_then(at), ends.next().and_then(at)) {
                    (Some(a), Some(b)) => Some(Shape::Segment(Line::new(a, b))),
                    _ => None,
                }
            }
            Some(p) => at(p).map(Shape::Point),
            None => None,
        };
        let shape = shape.or_else(|| {
            (f.code == "overlap-existing" && !overlaps.is_empty()).then(|| {
                Shape::Region(MultiPolygon::new(
                    overlaps.iter().flat_map(|m| m.0.iter().cloned()).collect(),
                ))
            })
        });
        if let Some(shape) = shape {
            highlights.push(Highlight {
                number: *n,
                shape,
                note: f.message.clone(),
            });
        }
    }
    let drawing = Drawing {
        title: format!("宗地草图 地块{}", parcel.number),
        subject: Subject {
            label: format!("地块{}", parcel.number),
            geometry: MultiPolygon::new(vec![parcel.polygon()]),
            points,
        },
        neighbours: neighbours
            .iter()
            .map(|(code, g)| Neighbour {
                label: code.clone(),
                geometry: g.clone(),
            })
            .collect(),
        highlights,
    };
    Some(svg::draw(&drawing))
}

/// The unit code the survey proposes for each parcel (GeoJSON `unit_code`; TXT: a 28-character
/// 地块编号), by 地块编号; the surveyor's form starts from it.
pub fn proposed_unit_codes(pkg: &SurveyPackage) -> HashMap<String, String> {
    pkg.parcels
        .iter()
        .filter_map(|p| Some((p.number.clone(), p.unit_code.clone()?)))
        .collect()
}

/// A building (定着物) footprint of a package (GeoJSON packages carry them).
#[derive(Debug, Clone)]
pub struct CheckedBuilding {
    /// The building's number.
    pub number: String,
    /// 地块编号 of the parcel it stands on.
    pub parcel_number: String,
    /// Footprint area, m².
    pub area_m2: f64,
    /// The footprint.
    pub geometry: MultiPolygon<f64>,
}

/// The buildings of the survey in `bytes` (none when it does not parse).
pub fn buildings(bytes: &[u8], format: &str) -> Vec<CheckedBuilding> {
    let Ok(pkg) = parse(bytes, format) else {
        return Vec::new();
    };
    pkg.buildings
        .iter()
        .map(|b| CheckedBuilding {
            number: b.number.clone(),
            parcel_number: b.parcel_number.clone(),
            area_m2: b.area_m2(),
            geometry: MultiPolygon::new(vec![b.polygon()]),
        })
        .collect()
}

/// Parcel `number` of the survey in `bytes` as a GeoJSON FeatureCollection QGIS places (with
/// the projection zone when the file names it); `None` when it is not there.
pub fn geojson(bytes: &[u8], format: &str, number: &str) -> Option<String> {
    let pkg = parse(bytes, format).ok()?;
    let parcel = pkg.parcels.iter().find(|p| p.number == number)?;
    Some(to_geojson(&[parcel], pkg.meta.zone))
}
