//! Survey packages (权籍调查成果): reading the 界址点坐标 TXT and GeoJSON, the intrinsic checks
//! with their findings, the online limits, and GeoJSON export. Pure: bytes in, values out; no
//! I/O, no clock. The formats, the checks and every finding code are specified in
//! `docs/survey-format.md`.
//!
//! ```
//! use ow_survey::{CheckConfig, OnlineLimits, ParseOptions, SourceFormat, check_package, parse_package};
//!
//! let txt = "[属性描述]\n带号=38\n[地块坐标]\n5,0.5000,D001,示例地块,面,,070101,0701,@\n\
//!            J1,1,3380000.000,38500000.000\nJ2,1,3380000.000,38500100.000\n\
//!            J3,1,3379950.000,38500100.000\nJ4,1,3379950.000,38500000.000\n\
//!            J1,1,3380000.000,38500000.000\n";
//! let pkg = parse_package(txt.as_bytes(), SourceFormat::BoundaryTxt, &ParseOptions::default())?;
//! assert_eq!(pkg.parcels[0].area_m2(), 5000.0);
//! assert!(check_package(&pkg, &CheckConfig::default()).is_empty());
//! assert!(pkg.counter_only(&OnlineLimits::default()).is_none());
//! # Ok::<(), ow_survey::ParseErrors>(())
//! ```

mod check;
mod export;
mod finding;
mod model;
mod parse;

pub use check::{AreaTolerance, CheckConfig, CheckConfigError, check_package};
pub use export::{epsg_for_zone, to_geojson};
pub use finding::{Finding, FindingCode, Severity};
pub use model::{
    BoundaryPoint, CounterReason, OnlineLimits, PackageMeta, SurveyBuilding, SurveyPackage,
    SurveyParcel, SurveyRing,
};
pub use parse::{
    MAX_PROBLEMS, ParseErrors, ParseOptions, ParseProblem, SourceFormat, UnknownFormat,
    detect_format, parse_package,
};
