//! The survey package as parsed: metadata, parcels with their rings of boundary points, buildings,
//! and the online limits that send a package to the counter.

use std::fmt;

use geo::{Area, Coord, LineString, Polygon};
use serde::{Deserialize, Serialize};

use crate::SourceFormat;

/// A parsed survey package (权籍调查成果). Coordinates are CGCS2000 Gauss-Krüger metres:
/// `easting` without the zone prefix, `northing` as is.
#[derive(Debug, Clone, PartialEq)]
pub struct SurveyPackage {
    /// What the `[属性描述]` section (or the GeoJSON top level) said about the data.
    pub meta: PackageMeta,
    /// The parcels (宗地/地块), in file order.
    pub parcels: Vec<SurveyParcel>,
    /// Buildings (GeoJSON input only; the TXT format has none).
    pub buildings: Vec<SurveyBuilding>,
    /// The text encoding the file was read in: `"UTF-8"` or `"GBK"`.
    pub encoding: &'static str,
    /// The format the package was read from (the checks treat an unclosed GeoJSON ring as an
    /// error, while the TXT format may leave the closing point out).
    pub format: SourceFormat,
}

/// Package metadata: the `[属性描述]` keys of the TXT format, or GeoJSON top-level members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageMeta {
    /// 格式版本号.
    pub format_version: Option<String>,
    /// 数据产生单位 (an organisation).
    pub producer: Option<String>,
    /// 数据产生日期, as written.
    pub produced_on: Option<String>,
    /// 坐标系, as written (e.g. `2000国家大地坐标系`).
    pub coordinate_system: Option<String>,
    /// 几度分带: 3 or 6.
    pub zone_width: Option<u8>,
    /// 带号: from `带号=`, or else from the zone prefix of the eastings.
    pub zone: Option<u8>,
    /// 计量单位, as written.
    pub unit: Option<String>,
    /// 精度, as written.
    pub precision: Option<String>,
    /// The package is classified: a `涉密` or `密级` attribute is present with a value other than
    /// one meaning "no" (`无`, `公开`, `否`, `非涉密`, `0`, `false`, `no`, or empty).
    pub classified: bool,
}

/// One parcel (地块/宗地) with its rings.
#[derive(Clone, PartialEq)]
pub struct SurveyParcel {
    /// 地块编号 as written.
    pub number: String,
    /// 地块名称 (may name a person, e.g. a homestead; it is left out of `Debug`).
    pub name: String,
    /// The declared area in m² (the TXT format gives 公顷, multiplied by 10 000 here).
    pub declared_area_m2: Option<f64>,
    /// 地块用途.
    pub use_code: String,
    /// 地类编码.
    pub land_class: String,
    /// 图形属性: `点`, `线` or `面` (GeoJSON: `面`).
    pub shape: String,
    /// The rings, outer ring (圈号 1) first, then the inner rings in order.
    pub rings: Vec<SurveyRing>,
    /// 1-based line of the parcel header in a TXT file.
    pub header_line: Option<u32>,
    /// Parcel codes this parcel claims to share a boundary with (GeoJSON `neighbours`; TXT: none).
    pub neighbours: Vec<String>,
    /// The 28-character unit code (不动产单元代码), if the package gives one: GeoJSON
    /// `unit_code`; TXT: the 地块编号 when it is 28 characters long.
    pub unit_code: Option<String>,
}

impl fmt::Debug for SurveyParcel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SurveyParcel")
            .field("number", &self.number)
            .field(
                "name",
                &format_args!("<{} chars>", self.name.chars().count()),
            )
            .field("declared_area_m2", &self.declared_area_m2)
            .field("use_code", &self.use_code)
            .field("land_class", &self.land_class)
            .field("shape", &self.shape)
            .field("rings", &self.rings)
            .field("header_line", &self.header_line)
            .field("neighbours", &self.neighbours)
            .field("unit_code", &self.unit_code)
            .finish()
    }
}

impl SurveyParcel {
    /// The parcel as a polygon: the first ring is the shell, the others holes.
    pub fn polygon(&self) -> Polygon<f64> {
        rings_polygon(&self.rings)
    }

    /// The computed area in m² (shell minus holes).
    pub fn area_m2(&self) -> f64 {
        self.polygon().unsigned_area()
    }

    /// The outer ring, if any.
    pub fn outer_ring(&self) -> Option<&SurveyRing> {
        self.rings.first()
    }
}

/// One ring of boundary points.
#[derive(Debug, Clone, PartialEq)]
pub struct SurveyRing {
    /// 圈号: 1 for the outer ring, 2.. for inner rings.
    pub ring_no: u32,
    /// The points in ring order. The closing point (a repeat of the first point at the end) is
    /// never included; see `closed_in_source`.
    pub points: Vec<BoundaryPoint>,
    /// Whether the source repeated the first point at the end of the ring.
    pub closed_in_source: bool,
}

impl SurveyRing {
    /// The ring as a closed line string.
    pub fn line_string(&self) -> LineString<f64> {
        let mut ls: LineString<f64> = self
            .points
            .iter()
            .map(|p| Coord {
                x: p.easting,
                y: p.northing,
            })
            .collect();
        ls.close();
        ls
    }
}

/// One boundary point (界址点).
#[derive(Debug, Clone, PartialEq)]
pub struct BoundaryPoint {
    /// 点号, e.g. `J1` (GeoJSON points are named J1, J2 … in ring order).
    pub name: String,
    /// Easting in metres, without the zone prefix.
    pub easting: f64,
    /// Northing in metres.
    pub northing: f64,
    /// 1-based line in a TXT file.
    pub line: Option<u32>,
}

/// A building (定着物) footprint; only GeoJSON packages carry them.
#[derive(Debug, Clone, PartialEq)]
pub struct SurveyBuilding {
    /// The building's number.
    pub number: String,
    /// 地块编号 of the parcel it stands on.
    pub parcel_number: String,
    /// The footprint rings, outer first.
    pub rings: Vec<SurveyRing>,
}

impl SurveyBuilding {
    /// The footprint as a polygon.
    pub fn polygon(&self) -> Polygon<f64> {
        rings_polygon(&self.rings)
    }

    /// The footprint area in m².
    pub fn area_m2(&self) -> f64 {
        self.polygon().unsigned_area()
    }
}

fn rings_polygon(rings: &[SurveyRing]) -> Polygon<f64> {
    let mut iter = rings.iter();
    let Some(shell) = iter.next() else {
        return Polygon::new(LineString::new(Vec::new()), Vec::new());
    };
    Polygon::new(
        shell.line_string(),
        iter.map(SurveyRing::line_string).collect(),
    )
}

/// The limits above which the portal refuses a package online.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnlineLimits {
    /// The largest parcel area (computed or declared) accepted online, in m². Default 6 km².
    pub max_parcel_area_m2: f64,
}

impl Default for OnlineLimits {
    fn default() -> Self {
        Self {
            max_parcel_area_m2: 6_000_000.0,
        }
    }
}

/// Why a package must be submitted at the counter instead of online.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "kebab-case")]
pub enum CounterReason {
    /// A parcel is larger than the online limit.
    TooLarge {
        /// 地块编号 of the (first) parcel over the limit.
        parcel: String,
        /// Its area in m² (the larger of computed and declared).
        area_m2: f64,
        /// The online limit it exceeds, in m².
        limit_m2: f64,
    },
    /// The package is marked classified (涉密).
    Classified,
}

impl CounterReason {
    /// The message shown to the applicant: why, and what to do.
    pub fn message(&self) -> String {
        match self {
            Self::TooLarge {
                parcel,
                area_m2,
                limit_m2,
            } => format!(
                "地块{parcel}面积{:.2}平方米（{:.4}平方公里），超过网上提交上限{}平方公里，属于涉密测绘成果，不能在网上提交。\
                 须到登记窗口现场提交：请将权籍调查成果刻录到光盘或拷入专用移动介质，携带申请材料到不动产登记窗口办理。",
                area_m2,
                area_m2 / 1_000_000.0,
                limit_m2 / 1_000_000.0
            ),
            Self::Classified => "该权籍调查成果标注为涉密，不能在网上提交。\
                 须到登记窗口现场提交：请将成果刻录到光盘或拷入专用移动介质，携带申请材料到不动产登记窗口办理。"
                .to_owned(),
        }
    }
}

impl fmt::Display for CounterReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl SurveyPackage {
    /// Whether this package must go to the counter: classified, or a parcel over the area
    /// limit (the larger of its computed and declared areas). `None` means it may go online.
    pub fn counter_only(&self, limits: &OnlineLimits) -> Option<CounterReason> {
        if self.meta.classified {
            return Some(CounterReason::Classified);
        }
        self.parcels.iter().find_map(|p| {
            let area = p.area_m2().max(p.declared_area_m2.unwrap_or(0.0));
            (area > limits.max_parcel_area_m2).then(|| CounterReason::TooLarge {
                parcel: p.number.clone(),
                area_m2: area,
                limit_m2: limits.max_parcel_area_m2,
            })
        })
    }
}
