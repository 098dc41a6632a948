//! Findings of the survey checks: a stable code, a severity, where, and a message and advice a
//! surveyor understands. Every finding is worded here, including those of checks other crates
//! run (overlap with existing parcels, gaps to neighbours, unit codes in the database).

use std::fmt;

use serde::{Deserialize, Serialize};

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The package cannot be accepted until it is corrected.
    Error,
    /// A reviewer should look; the package may still be accepted.
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Error => "error",
            Self::Warning => "warning",
        }
    }

    /// 错误 / 警告.
    pub fn label_zh(self) -> &'static str {
        match self {
            Self::Error => "错误",
            Self::Warning => "警告",
        }
    }
}

macro_rules! finding_codes {
    ($($(#[$doc:meta])* $variant:ident => $code:literal,)*) => {
        /// The stable code of a finding; `as_str` and serde use the kebab-case names.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum FindingCode {
            $($(#[$doc])* #[serde(rename = $code)] $variant,)*
        }

        impl FindingCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [FindingCode] = &[$(FindingCode::$variant,)*];

            /// The stable kebab-case code, e.g. `"overlap-existing"`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FindingCode::$variant => $code,)*
                }
            }
        }
    };
}

finding_codes! {
    /// A ring does not end on its first point (GeoJSON), or its closing point differs from the
    /// first point (TXT).
    RingNotClosed => "ring-not-closed",
    /// A ring has fewer than 3 distinct points.
    TooFewPoints => "too-few-points",
    /// A boundary line crosses or touches another line of the same ring.
    SelfIntersection => "self-intersection",
    /// An inner ring is not inside the outer ring.
    HoleOutsideShell => "hole-outside-shell",
    /// Two inner rings overlap or share a line.
    HolesOverlap => "holes-overlap",
    /// Two points of one parcel have the same coordinates.
    DuplicatePoint => "duplicate-point",
    /// Two successive boundary points are closer than the configured spacing.
    PointSpacing => "point-spacing",
    /// The computed area differs from the declared area beyond the tolerance.
    AreaMismatch => "area-mismatch",
    /// The declared area is missing, so the area check could not be made.
    DeclaredAreaMissing => "declared-area-missing",
    /// Coordinates lie outside the projection zone configured for the centre.
    OutsideZone => "outside-zone",
    /// The package's zone (or zone width) differs from the configured one.
    ZoneMismatch => "zone-mismatch",
    /// A building footprint is not inside its parcel.
    BuildingOutsideParcel => "building-outside-parcel",
    /// A building names a parcel that is not in the package.
    BuildingParcelUnknown => "building-parcel-unknown",
    /// Two parcels of the package have the same number.
    DuplicateParcelNumber => "duplicate-parcel-number",
    /// Two parcels of the package overlap each other.
    ParcelsOverlap => "parcels-overlap",
    /// A parcel overlaps an existing parcel of the cadastral database (checked by ow-spatial).
    OverlapExisting => "overlap-existing",
    /// A gap to a neighbour the survey claims to share a boundary with (checked by ow-spatial).
    GapToNeighbour => "gap-to-neighbour",
    /// A unit code is not a well-formed GB/T 37346 code.
    UnitCodeMalformed => "unit-code-malformed",
    /// Two parcels of the package carry the same unit code.
    DuplicateUnitCode => "duplicate-unit-code",
    /// A unit code is already used in the cadastral database (checked by the intranet).
    UnitCodeTaken => "unit-code-taken",
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding of a check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// What kind of problem.
    pub code: FindingCode,
    /// How serious.
    pub severity: Severity,
    /// 地块编号 (or a building's number for building findings) it concerns.
    pub parcel: Option<String>,
    /// 点号 it concerns.
    pub point: Option<String>,
    /// The boundary line (from point, to point) it concerns.
    pub segment: Option<(String, String)>,
    /// 1-based line in the TXT file.
    pub line: Option<u32>,
    /// What is wrong, in plain Chinese, with the numbers.
    pub message: String,
    /// What the surveyor should do.
    pub advice: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.severity.label_zh(), self.message)?;
        if let Some(line) = self.line {
            write!(f, "（第{line}行）")?;
        }
        write!(f, " {}", self.advice)
    }
}

fn ring_label(ring_no: u32) -> String {
    if ring_no <= 1 {
        "外圈".to_owned()
    } else {
        format!("第{ring_no}圈（内圈）")
    }
}

impl Finding {
    fn new(code: FindingCode, severity: Severity, message: String, advice: &str) -> Self {
        Self {
            code,
            severity,
            parcel: None,
            point: None,
            segment: None,
            line: None,
            message,
            advice: advice.to_owned(),
        }
    }

    fn parcel(mut self, parcel: &str) -> Self {
        self.parcel = Some(parcel.to_owned());
        self
    }

    fn point(mut self, point: &str, line: Option<u32>) -> Self {
        self.point = Some(point.to_owned());
        self.line = line;
        self
    }

    fn segment(mut self, from: &str, to: &str) -> Self {
        self.segment = Some((from.to_owned(), to.to_owned()));
        self
    }

    /// A GeoJSON ring that does not repeat its first point at the end.
    pub fn ring_not_closed_geojson(parcel: &str, ring_no: u32) -> Self {
        Self::new(
            FindingCode::RingNotClosed,
            Severity::Error,
            format!(
                "地块{parcel}的{}没有闭合：最后一个坐标与第一个坐标不同",
                ring_label(ring_no)
            ),
            "GeoJSON要求每圈的最后一个坐标重复第一个坐标；请在测绘软件中闭合该圈后重新导出",
        )
        .parcel(parcel)
    }

    /// A TXT ring whose last point repeats the first point's name with other coordinates.
    pub fn ring_not_closed_txt(
        parcel: &str,
        ring_no: u32,
        point: &str,
        line: Option<u32>,
        distance_m: f64,
    ) -> Self {
        Self::new(
            FindingCode::RingNotClosed,
            Severity::Error,
            format!(
                "地块{parcel}的{}没有闭合：闭合点{point}与起点同名，但坐标相差{distance_m:.3}米",
                ring_label(ring_no)
            ),
            "闭合点的坐标应与起点完全相同；请核对起点和闭合点的坐标",
        )
        .parcel(parcel)
        .point(point, line)
    }

    /// A ring with fewer than 3 distinct points.
    pub fn too_few_points(parcel: &str, ring_no: u32, distinct: usize, line: Option<u32>) -> Self {
        let mut f = Self::new(
            FindingCode::TooFewPoints,
            Severity::Error,
            format!(
                "地块{parcel}的{}只有{distinct}个不同的界址点，至少需要3个才能构成面",
                ring_label(ring_no)
            ),
            "请补全该圈的界址点，或确认图形属性是否应为“面”",
        )
        .parcel(parcel);
        f.line = line;
        f
    }

    /// A boundary line that crosses or touches another line of the same ring.
    pub fn self_intersection(
        parcel: &str,
        ring_no: u32,
        segment: (&str, &str),
        other: Option<(&str, &str)>,
        line: Option<u32>,
    ) -> Self {
        let message = match other {
            Some((a, b)) => format!(
                "地块{parcel}的{}自相交：界址线{}-{}与{a}-{b}相交",
                ring_label(ring_no),
                segment.0,
                segment.1
            ),
            None => format!(
                "地块{parcel}的{}自相交（在界址线{}-{}附近）",
                ring_label(ring_no),
                segment.0,
                segment.1
            ),
        };
        let mut f = Self::new(
            FindingCode::SelfIntersection,
            Severity::Error,
            message,
            "界址线不能交叉或自接触；请核对界址点的顺序和坐标（常见原因是点号顺序颠倒或点位录错）",
        )
        .parcel(parcel)
        .segment(segment.0, segment.1);
        f.line = line;
        f
    }

    /// An inner ring not inside the outer ring.
    pub fn hole_outside_shell(parcel: &str, ring_no: u32, line: Option<u32>) -> Self {
        let mut f = Self::new(
            FindingCode::HoleOutsideShell,
            Severity::Error,
            format!("地块{parcel}的第{ring_no}圈（内圈）不完全在外圈之内，或与外圈共线"),
            "内圈（挖空部分）必须完全位于外圈之内；请核对内圈坐标和圈号",
        )
        .parcel(parcel);
        f.line = line;
        f
    }

    /// Two inner rings that overlap or share a line.
    pub fn holes_overlap(parcel: &str, ring_a: u32, ring_b: u32) -> Self {
        Self::new(
            FindingCode::HolesOverlap,
            Severity::Error,
            format!("地块{parcel}的第{ring_a}圈与第{ring_b}圈（均为内圈）相互重叠或共线"),
            "各内圈不能重叠；相邻的挖空部分请合并为一个内圈",
        )
        .parcel(parcel)
    }

    /// Two points with the same coordinates in one parcel.
    pub fn duplicate_point(
        parcel: &str,
        point: &str,
        line: Option<u32>,
        same_as: &str,
        easting: f64,
        northing: f64,
    ) -> Self {
        Self::new(
            FindingCode::DuplicatePoint,
            Severity::Error,
            format!(
                "地块{parcel}的界址点{point}与{same_as}坐标相同（X={northing:.3}，Y={easting:.3}）"
            ),
            "同一地块中不能有重复的界址点（闭合点除外）；请删除重复点或改正坐标",
        )
        .parcel(parcel)
        .point(point, line)
    }

    /// Two successive points closer than the configured spacing.
    pub fn point_spacing(
        parcel: &str,
        from: &str,
        to: &str,
        line: Option<u32>,
        distance_m: f64,
        min_m: f64,
    ) -> Self {
        let mut f = Self::new(
            FindingCode::PointSpacing,
            Severity::Warning,
            format!("地块{parcel}的界址点{from}与{to}相距仅{distance_m:.3}米，小于{min_m:.3}米"),
            "请确认这两个点是否应合并为一个点，或是否录错了坐标",
        )
        .parcel(parcel)
        .segment(from, to);
        f.point = Some(to.to_owned());
        f.line = line;
        f
    }

    /// Computed and declared areas differ beyond the tolerance.
    pub fn area_mismatch(
        parcel: &str,
        computed_m2: f64,
        declared_m2: f64,
        limit_m2: f64,
        line: Option<u32>,
    ) -> Self {
        let diff = computed_m2 - declared_m2;
        let mut f = Self::new(
            FindingCode::AreaMismatch,
            Severity::Error,
            format!(
                "地块{parcel}按坐标计算的面积为{computed_m2:.2}平方米，申报面积为{declared_m2:.2}平方米，相差{:.2}平方米，超过限差{limit_m2:.2}平方米",
                diff.abs()
            ),
            "请核对申报面积（TXT文件以公顷为单位）和界址点坐标，改正后重新提交",
        )
        .parcel(parcel);
        f.line = line;
        f
    }

    /// No declared area, so the area was not compared.
    pub fn declared_area_missing(parcel: &str, computed_m2: f64, line: Option<u32>) -> Self {
        let mut f = Self::new(
            FindingCode::DeclaredAreaMissing,
            Severity::Warning,
            format!("地块{parcel}没有申报面积，无法核对；按坐标计算的面积为{computed_m2:.2}平方米"),
            "请在地块头行填写地块面积（公顷），或在GeoJSON中填写declared_area_m2",
        )
        .parcel(parcel);
        f.line = line;
        f
    }

    /// Points outside the configured projection zone.
    pub fn outside_zone(
        parcel: &str,
        point: &str,
        line: Option<u32>,
        easting: f64,
        northing: f64,
        count: usize,
    ) -> Self {
        Self::new(
            FindingCode::OutsideZone,
            Severity::Error,
            format!(
                "地块{parcel}有{count}个界址点超出本投影带的坐标范围，如{point}（X={northing:.3}，Y={easting:.3}，不含带号）"
            ),
            "请确认坐标系为2000国家大地坐标系、分带和带号正确，X与Y没有写反",
        )
        .parcel(parcel)
        .point(point, line)
    }

    /// The package's zone or zone width differs from the configured one.
    pub fn zone_mismatch(what: &str, found: u8, expected: u8) -> Self {
        Self::new(
            FindingCode::ZoneMismatch,
            Severity::Error,
            format!("成果的{what}为{found}，本登记机构要求{expected}"),
            "请按本地要求的投影带（2000国家大地坐标系）重新投影并导出坐标",
        )
    }

    /// A building footprint partly outside its parcel.
    pub fn building_outside_parcel(building: &str, parcel: &str, outside_m2: f64) -> Self {
        Self::new(
            FindingCode::BuildingOutsideParcel,
            Severity::Error,
            format!("房屋{building}有{outside_m2:.2}平方米超出所在地块{parcel}"),
            "房屋应完全位于所在宗地内；请核对房屋轮廓或其所在地块编号",
        )
        .parcel(parcel)
    }

    /// A building naming a parcel that is not in the package.
    pub fn building_parcel_unknown(building: &str, parcel: &str) -> Self {
        Self::new(
            FindingCode::BuildingParcelUnknown,
            Severity::Error,
            format!("房屋{building}所在地块{parcel}不在本成果中"),
            "请核对房屋的parcel属性，或把该地块一并提交",
        )
        .parcel(parcel)
    }

    /// Two parcels with the same number.
    pub fn duplicate_parcel_number(
        parcel: &str,
        line: Option<u32>,
        first_line: Option<u32>,
    ) -> Self {
        let message = match first_line {
            Some(l) => format!("地块编号{parcel}重复出现（第一次在第{l}行）"),
            None => format!("地块编号{parcel}重复出现"),
        };
        let mut f = Self::new(
            FindingCode::DuplicateParcelNumber,
            Severity::Error,
            message,
            "同一成果中各地块编号不能重复；请改正编号或删除重复的地块",
        )
        .parcel(parcel);
        f.line = line;
        f
    }

    /// Two parcels of the package overlapping.
    pub fn parcels_overlap(parcel: &str, other: &str, area_m2: f64) -> Self {
        Self::new(
            FindingCode::ParcelsOverlap,
            Severity::Error,
            format!("本成果中地块{parcel}与地块{other}重叠{area_m2:.2}平方米"),
            "同一成果中的地块不能重叠；请核对两地块的共用界址点坐标",
        )
        .parcel(parcel)
    }

    /// A parcel overlapping an existing parcel of the cadastral database.
    pub fn overlap_existing(parcel: &str, existing: &str, area_m2: f64, width_m: f64) -> Self {
        Self::new(
            FindingCode::OverlapExisting,
            Severity::Error,
            format!(
                "地块{parcel}与已登记宗地{existing}重叠{area_m2:.2}平方米，最大重叠宽度{width_m:.2}米"
            ),
            "请核对与该宗地的共用界址点：应采用已登记的界址点坐标；如确有争议，请附权属争议材料",
        )
        .parcel(parcel)
    }

    /// A gap to a neighbour the survey claims to share a boundary with.
    pub fn gap_to_neighbour(parcel: &str, neighbour: &str, max_gap_m: f64, length_m: f64) -> Self {
        Self::new(
            FindingCode::GapToNeighbour,
            Severity::Error,
            format!(
                "地块{parcel}与相邻宗地{neighbour}之间有缝隙：长{length_m:.2}米的界址线上最大间距{max_gap_m:.2}米"
            ),
            "申报为共用界址线的部分应与相邻宗地的界址点重合；请采用相邻宗地已登记的界址点坐标",
        )
        .parcel(parcel)
    }

    /// A unit code that is not well formed; `why` is the reason in Chinese.
    pub fn unit_code_malformed(code: &str, why: &str) -> Self {
        let mut f = Self::new(
            FindingCode::UnitCodeMalformed,
            Severity::Error,
            format!("不动产单元代码{code}格式不正确：{why}"),
            "不动产单元代码为28位（GB/T 37346）：6位县级区划+3位地籍区+3位地籍子区+2位特征码+5位宗地顺序号+1位定着物特征码+8位定着物编号；请改正",
        );
        f.parcel = Some(code.to_owned());
        f
    }

    /// Two parcels of the package carry the same unit code.
    pub fn duplicate_unit_code(code: &str, parcel: &str, other: &str) -> Self {
        Self::new(
            FindingCode::DuplicateUnitCode,
            Severity::Error,
            format!("地块{parcel}与地块{other}的不动产单元代码都是{code}"),
            "每个不动产单元的代码唯一；请核对两地块的单元代码",
        )
        .parcel(parcel)
    }

    /// A unit code already used in the cadastral database.
    pub fn unit_code_taken(code: &str) -> Self {
        let mut f = Self::new(
            FindingCode::UnitCodeTaken,
            Severity::Error,
            format!("不动产单元代码{code}已被其他不动产单元使用"),
            "请向不动产登记机构核实该单元代码；新设单元应使用未使用的宗地顺序号",
        );
        f.parcel = Some(code.to_owned());
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_stable_and_serde_matches_as_str() {
        assert_eq!(FindingCode::OverlapExisting.as_str(), "overlap-existing");
        for code in FindingCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: FindingCode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, *code);
        }
    }

    #[test]
    fn finding_round_trips_as_json() {
        let f = Finding::point_spacing("D001", "J1", "J2", Some(12), 0.012, 0.05);
        let json = serde_json::to_value(&f).unwrap();
        assert_eq!(json["code"], "point-spacing");
        assert_eq!(json["severity"], "warning");
        assert_eq!(json["segment"], serde_json::json!(["J1", "J2"]));
        let back: Finding = serde_json::from_value(json).unwrap();
        assert_eq!(back, f);
    }

    #[test]
    fn external_constructors_carry_numbers() {
        let f = Finding::overlap_existing("D1", "370781001001GB00001", 12.345, 0.5);
        assert_eq!(f.code, FindingCode::OverlapExisting);
        assert!(f.message.contains("12.35") && f.message.contains("0.50"));
        let f = Finding::gap_to_neighbour("D1", "N2", 0.3, 25.0);
        assert!(f.message.contains("0.30") && f.message.contains("25.00"));
        assert_eq!(
            Finding::unit_code_taken("X").code,
            FindingCode::UnitCodeTaken
        );
        let f = Finding::unit_code_malformed("123", "长度不是28位");
        assert!(f.message.contains("长度不是28位"));
    }
}
