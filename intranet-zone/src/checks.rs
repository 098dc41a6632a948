//! The survey checks, as the intranet uses them: parsing and intrinsic checks (`ow-survey`),
//! the spatial checks against existing parcels (`ow-spatial`), the drawing and the GeoJSON
//! export. Every finding leaves this module as an [`ReviewFinding`] (the wording is the survey
//! crate's).
//!
//! TODO(lead): placeholder until `ow-survey` and `ow-spatial` are merged; nothing parses yet.

use std::collections::HashMap;

use geo::MultiPolygon;
use ow_exchange::ReviewFinding;

/// Existing parcels' ids in the spatial index (`int_parcels.id`).
pub type ParcelId = i64;

/// A parcel of a package as checked.
#[derive(Debug, Clone)]
pub struct CheckedParcel {
    /// 地块编号 in the survey.
    pub number: String,
    /// 地块名称.
    pub name: String,
    /// Area computed from the geometry, m².
    pub area_m2: f64,
    /// The geometry (metres, easting without zone prefix, northing).
    pub geometry: MultiPolygon<f64>,
    /// Parcel codes the survey claims it shares a boundary with.
    pub neighbours: Vec<String>,
}

/// A package parsed and checked on its own.
#[derive(Debug, Clone, Default)]
pub struct Checked {
    /// The parcels (empty when the file does not parse).
    pub parcels: Vec<CheckedParcel>,
    /// The findings.
    pub findings: Vec<ReviewFinding>,
}

/// The spatial index of existing parcels.
#[derive(Debug, Default)]
pub struct ParcelIndex {
    parcels: HashMap<ParcelId, MultiPolygon<f64>>,
}

impl ParcelIndex {
    /// An index over `parcels`.
    pub fn bulk_load(parcels: Vec<(ParcelId, MultiPolygon<f64>)>) -> Self {
        ParcelIndex {
            parcels: parcels.into_iter().collect(),
        }
    }

    /// Adds or replaces a parcel.
    pub fn insert(&mut self, id: ParcelId, geometry: MultiPolygon<f64>) {
        self.parcels.insert(id, geometry);
    }

    /// Parcels within `distance_m` of `candidate` (by envelope).
    pub fn near(&self, candidate: &MultiPolygon<f64>, distance_m: f64) -> Vec<ParcelId> {
        use geo::BoundingRect as _;
        let Some(c) = candidate.bounding_rect() else {
            return Vec::new();
        };
        self.parcels
            .iter()
            .filter(|(_, g)| {
                g.bounding_rect().is_some_and(|r| {
                    r.min().x <= c.max().x + distance_m
                        && r.max().x >= c.min().x - distance_m
                        && r.min().y <= c.max().y + distance_m
                        && r.max().y >= c.min().y - distance_m
                })
            })
            .map(|(id, _)| *id)
            .collect()
    }

    /// How many parcels.
    pub fn len(&self) -> usize {
        self.parcels.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.parcels.is_empty()
    }
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
}

/// Parses `bytes` in `format` and runs the intrinsic checks.
pub fn parse_and_check(bytes: &[u8], format: &str) -> Checked {
    let _ = (bytes, format);
    Checked {
        parcels: Vec::new(),
        findings: vec![ReviewFinding {
            code: "checks-unavailable".into(),
            severity: "error".into(),
            parcel: None,
            point: None,
            message: "本系统尚未接入成果检查模块，无法解析该成果".into(),
            advice: "请联系系统管理员".into(),
        }],
    }
}

/// Runs the spatial checks of `checked` against `index`; `neighbours` maps the parcel codes the
/// survey names to existing parcels.
pub fn spatial(
    checked: &Checked,
    index: &ParcelIndex,
    neighbours: &HashMap<String, ParcelId>,
) -> Vec<SpatialHit> {
    let _ = (checked, index, neighbours);
    Vec::new()
}

/// The finding for a spatial hit; `existing_code` names the existing parcel of an overlap.
pub fn finding_for(hit: &SpatialHit, existing_code: &str) -> ReviewFinding {
    match hit {
        SpatialHit::Overlap {
            parcel, area_m2, ..
        } => ReviewFinding {
            code: "overlap-existing".into(),
            severity: "error".into(),
            parcel: Some(parcel.clone()),
            point: None,
            message: format!("与已有宗地 {existing_code} 重叠 {area_m2:.2} 平方米"),
            advice: "请核对界址点".into(),
        },
        SpatialHit::Gap {
            parcel,
            neighbour,
            max_gap_m,
            ..
        } => ReviewFinding {
            code: "gap-to-neighbour".into(),
            severity: "error".into(),
            parcel: Some(parcel.clone()),
            point: None,
            message: format!("与相邻宗地 {neighbour} 之间有 {max_gap_m:.2} 米缝隙"),
            advice: "请核对界址点".into(),
        },
    }
}

/// The finding for a unit code that is not well formed.
pub fn unit_code_malformed(code: &str, why: &str) -> ReviewFinding {
    ReviewFinding {
        code: "unit-code-malformed".into(),
        severity: "error".into(),
        parcel: None,
        point: None,
        message: format!("不动产单元号 {code} 不正确：{why}"),
        advice: "请按 GB/T 37346 核对后重新填写28位不动产单元号".into(),
    }
}

/// The finding for a unit code already used.
pub fn unit_code_taken(code: &str) -> ReviewFinding {
    ReviewFinding {
        code: "unit-code-taken".into(),
        severity: "error".into(),
        parcel: None,
        point: None,
        message: format!("不动产单元号 {code} 已被使用"),
        advice: "请查询已有宗地，分配一个未使用的宗地顺序号".into(),
    }
}

/// The SVG drawing of parcel `number` of the survey in `bytes`, with its neighbours and the
/// findings highlighted; `None` when the file does not parse.
pub fn draw(
    bytes: &[u8],
    format: &str,
    number: &str,
    neighbours: &[(String, MultiPolygon<f64>)],
    findings: &[ReviewFinding],
) -> Option<String> {
    let _ = (bytes, format, number, neighbours, findings);
    None
}

/// Parcel `number` of the survey in `bytes` as GeoJSON; `None` when it is not there.
pub fn geojson(bytes: &[u8], format: &str, number: &str) -> Option<String> {
    let _ = (bytes, format, number);
    None
}
