//! 不动产单元代码: the 28-character real estate unit code of GB/T 37346-2019 (domain-facts §3.1).
//!
//! | positions | length | meaning |
//! |---|---|---|
//! | 1–6 | 6 | county code (GB/T 2260) |
//! | 7–9 | 3 | cadastral district (地籍区) |
//! | 10–12 | 3 | cadastral subdistrict (地籍子区) |
//! | 13 | 1 | land ownership: `G` state, `J` collective, `Z` undetermined or disputed |
//! | 14 | 1 | parcel kind: `A B S X C D E F L N H G W Y` (see [`ParcelKind`]) |
//! | 15–19 | 5 | parcel (宗地/宗海) sequence number; positions 1–19 are the parcel code |
//! | 20 | 1 | fixture kind: `F` building, `L` forest, `Q` other, `W` none |
//! | 21–28 | 8 | fixture unit number; for buildings usually 4-digit building + 4-digit room |
//!
//! The shape is `^\d{12}[GJZ][ABSXCDEFLNHGWY]\d{5}[FLQW]\d{8}$`. On top of it the parser
//! enforces: the county code does not start with 0; parcel kinds `A` (collective land ownership
//! parcel) and `C` (homestead) occur only on collective land (`J`); and a unit without fixture
//! ends in `W00000000`.

use std::fmt;
use std::str::FromStr;

use crate::text::{is_full_width, serde_via_str};

/// Why a string is not a valid real estate unit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitCodeError {
    /// Nothing was entered.
    #[error("the unit code is empty; enter the 28-character real estate unit code")]
    Empty,
    /// Full-width characters were entered.
    #[error(
        "the unit code contains full-width characters; \
         switch the input method to half-width and enter it again"
    )]
    FullWidth,
    /// Not 28 characters.
    #[error("the unit code has {len} characters but must have 28")]
    WrongLength {
        /// Number of characters entered (after trimming spaces).
        len: usize,
    },
    /// A position that must hold a digit does not.
    #[error("character {position} of the unit code must be a digit")]
    NotDigit {
        /// 1-based position.
        position: usize,
    },
    /// The county code starts with 0.
    #[error("the unit code starts with 0, which no county code does; check the first six digits")]
    InvalidCounty,
    /// Character 13 is not `G`, `J` or `Z`.
    #[error(
        "character 13 of the unit code must be G (state land), J (collective land) \
         or Z (undetermined)"
    )]
    InvalidLandOwnership,
    /// Character 14 is not a parcel kind letter.
    #[error("character 14 of the unit code must be one of A B S X C D E F L N H G W Y")]
    InvalidParcelKind,
    /// `A` or `C` on land that is not collective.
    #[error(
        "parcel kind {kind} (character 14) exists only on collective land, \
         so character 13 must be J"
    )]
    ParcelKindNeedsCollectiveLand {
        /// The parcel kind letter.
        kind: char,
    },
    /// Character 20 is not `F`, `L`, `Q` or `W`.
    #[error(
        "character 20 of the unit code must be F (building), L (forest), Q (other) \
         or W (no fixture)"
    )]
    InvalidFixtureKind,
    /// Fixture `W` with a non-zero fixture number.
    #[error("a unit without fixture (W at character 20) must end in W00000000")]
    NoFixtureNotZero,
}

impl UnitCodeError {
    /// A short Chinese message for the applicant on the portal.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Empty => "请输入28位不动产单元号".into(),
            Self::FullWidth => "不动产单元号含有全角字符，请切换到半角输入后重新输入".into(),
            Self::WrongLength { len } => {
                format!("不动产单元号应为28位，您输入了{len}位，请核对后重新输入")
            }
            Self::NotDigit { position } => {
                format!("不动产单元号第{position}位应为数字，请核对后重新输入")
            }
            Self::InvalidCounty => "不动产单元号前6位行政区划代码不正确，请核对后重新输入".into(),
            Self::InvalidLandOwnership => "不动产单元号第13位应为G、J或Z，请核对后重新输入".into(),
            Self::InvalidParcelKind | Self::ParcelKindNeedsCollectiveLand { .. } => {
                "不动产单元号第14位宗地特征码不正确，请核对后重新输入".into()
            }
            Self::InvalidFixtureKind => "不动产单元号第20位应为F、L、Q或W，请核对后重新输入".into(),
            Self::NoFixtureNotZero => {
                "无定着物的不动产单元号应以W00000000结尾，请核对后重新输入".into()
            }
        }
    }
}

/// Land ownership (character 13, 宗地特征码第一位).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LandOwnership {
    /// `G` 国家土地所有权.
    State,
    /// `J` 集体土地所有权.
    Collective,
    /// `Z` 土地所有权未确定或有争议.
    Undetermined,
}

impl LandOwnership {
    /// The letter in the unit code.
    pub fn letter(self) -> char {
        match self {
            Self::State => 'G',
            Self::Collective => 'J',
            Self::Undetermined => 'Z',
        }
    }

    /// Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::State => "国家土地所有权",
            Self::Collective => "集体土地所有权",
            Self::Undetermined => "土地所有权未确定或有争议",
        }
    }

    fn from_letter(c: char) -> Option<Self> {
        Some(match c {
            'G' => Self::State,
            'J' => Self::Collective,
            'Z' => Self::Undetermined,
            _ => return None,
        })
    }
}

/// Parcel kind (character 14, 宗地特征码第二位) (domain-facts §3.1 \[V\]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParcelKind {
    /// `A` 集体土地所有权宗地 (collective land only).
    CollectiveOwnership,
    /// `B` 建设用地使用权宗地（地表）.
    ConstructionSurface,
    /// `S` 建设用地使用权宗地（地上）.
    ConstructionAbove,
    /// `X` 建设用地使用权宗地（地下）.
    ConstructionBelow,
    /// `C` 宅基地使用权宗地 (collective land only).
    Homestead,
    /// `D` 土地承包经营权宗地（耕地）.
    ContractArable,
    /// `E` 土地承包经营权宗地（林地）.
    ContractForest,
    /// `F` 土地承包经营权宗地（草地）.
    ContractGrassland,
    /// `L` 林地使用权宗地（承包经营以外的）.
    ForestUse,
    /// `N` 农用地使用权宗地（承包经营以外的、非林地）.
    AgriculturalUse,
    /// `H` 海域使用权宗海.
    SeaArea,
    /// `G` 无居民海岛使用权海岛.
    UninhabitedIsland,
    /// `W` 使用权未确定或有争议的土地.
    UseUndetermined,
    /// `Y` 其他 (some deployments use it locally for 水域滩涂养殖).
    Other,
}

impl ParcelKind {
    const ALL: [(char, Self, &'static str); 14] = [
        ('A', Self::CollectiveOwnership, "集体土地所有权宗地"),
        ('B', Self::ConstructionSurface, "建设用地使用权宗地（地表）"),
        ('S', Self::ConstructionAbove, "建设用地使用权宗地（地上）"),
        ('X', Self::ConstructionBelow, "建设用地使用权宗地（地下）"),
        ('C', Self::Homestead, "宅基地使用权宗地"),
        ('D', Self::ContractArable, "土地承包经营权宗地（耕地）"),
        ('E', Self::ContractForest, "土地承包经营权宗地（林地）"),
        ('F', Self::ContractGrassland, "土地承包经营权宗地（草地）"),
        ('L', Self::ForestUse, "林地使用权宗地"),
        ('N', Self::AgriculturalUse, "农用地使用权宗地"),
        ('H', Self::SeaArea, "海域使用权宗海"),
        ('G', Self::UninhabitedIsland, "无居民海岛使用权海岛"),
        ('W', Self::UseUndetermined, "使用权未确定或有争议的土地"),
        ('Y', Self::Other, "其他"),
    ];

    /// The letter in the unit code.
    pub fn letter(self) -> char {
        Self::ALL.iter().find(|e| e.1 == self).map_or('?', |e| e.0)
    }

    /// Chinese name.
    pub fn name_zh(self) -> &'static str {
        Self::ALL.iter().find(|e| e.1 == self).map_or("", |e| e.2)
    }

    fn from_letter(c: char) -> Option<Self> {
        Self::ALL.iter().find(|e| e.0 == c).map(|e| e.1)
    }
}

/// Fixture kind (character 20, 定着物特征码).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FixtureKind {
    /// `F` 房屋等建筑物、构筑物.
    Building,
    /// `L` 森林、林木.
    Forest,
    /// `Q` 其他.
    Other,
    /// `W` 无定着物 (fixture number `00000000`).
    None,
}

impl FixtureKind {
    /// The letter in the unit code.
    pub fn letter(self) -> char {
        match self {
            Self::Building => 'F',
            Self::Forest => 'L',
            Self::Other => 'Q',
            Self::None => 'W',
        }
    }

    /// Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::Building => "房屋等建筑物、构筑物",
            Self::Forest => "森林、林木",
            Self::Other => "其他",
            Self::None => "无定着物",
        }
    }

    fn from_letter(c: char) -> Option<Self> {
        Some(match c {
            'F' => Self::Building,
            'L' => Self::Forest,
            'Q' => Self::Other,
            'W' => Self::None,
            _ => return None,
        })
    }
}

/// A valid 28-character real estate unit code (不动产单元号, BDCDYH). Construct it with
/// [`UnitCode::parse`] (or `str::parse`, or serde).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitCode(String);

impl UnitCode {
    /// Parses a unit code: surrounding spaces are trimmed and lower-case letters upper-cased;
    /// full-width characters are refused.
    pub fn parse(input: &str) -> Result<Self, UnitCodeError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(UnitCodeError::Empty);
        }
        if s.chars().any(is_full_width) {
            return Err(UnitCodeError::FullWidth);
        }
        let chars: Vec<char> = s.chars().map(|c| c.to_ascii_uppercase()).collect();
        if chars.len() != 28 {
            return Err(UnitCodeError::WrongLength { len: chars.len() });
        }
        for (i, c) in chars.iter().enumerate() {
            if !matches!(i, 12 | 13 | 19) && !c.is_ascii_digit() {
                return Err(UnitCodeError::NotDigit { position: i + 1 });
            }
        }
        if chars[0] == '0' {
            return Err(UnitCodeError::InvalidCounty);
        }
        let ownership =
            LandOwnership::from_letter(chars[12]).ok_or(UnitCodeError::InvalidLandOwnership)?;
        let kind = ParcelKind::from_letter(chars[13]).ok_or(UnitCodeError::InvalidParcelKind)?;
        if matches!(
            kind,
            ParcelKind::CollectiveOwnership | ParcelKind::Homestead
        ) && ownership != LandOwnership::Collective
        {
            return Err(UnitCodeError::ParcelKindNeedsCollectiveLand { kind: chars[13] });
        }
        let fixture =
            FixtureKind::from_letter(chars[19]).ok_or(UnitCodeError::InvalidFixtureKind)?;
        if fixture == FixtureKind::None && chars[20..].iter().any(|&c| c != '0') {
            return Err(UnitCodeError::NoFixtureNotZero);
        }
        Ok(Self(chars.into_iter().collect()))
    }

    /// The canonical code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Positions 1–6: the county code (GB/T 2260).
    pub fn county_code(&self) -> &str {
        &self.0[0..6]
    }

    /// Positions 7–9: the cadastral district (地籍区).
    pub fn cadastral_district(&self) -> &str {
        &self.0[6..9]
    }

    /// Positions 10–12: the cadastral subdistrict (地籍子区).
    pub fn cadastral_subdistrict(&self) -> &str {
        &self.0[9..12]
    }

    /// Positions 1–19: the parcel code (宗地代码 / 宗海代码).
    pub fn parcel_code(&self) -> &str {
        &self.0[0..19]
    }

    /// Positions 15–19: the parcel sequence number (宗地顺序号).
    pub fn parcel_sequence(&self) -> &str {
        &self.0[14..19]
    }

    /// Position 13: the land ownership.
    pub fn land_ownership(&self) -> LandOwnership {
        LandOwnership::from_letter(self.char_at(12)).unwrap_or(LandOwnership::Undetermined)
    }

    /// Position 14: the parcel kind.
    pub fn parcel_kind(&self) -> ParcelKind {
        ParcelKind::from_letter(self.char_at(13)).unwrap_or(ParcelKind::Other)
    }

    /// Position 20: the fixture kind.
    pub fn fixture_kind(&self) -> FixtureKind {
        FixtureKind::from_letter(self.char_at(19)).unwrap_or(FixtureKind::Other)
    }

    /// Positions 21–28: the fixture unit number (定着物单元编号).
    pub fn fixture_number(&self) -> &str {
        &self.0[20..28]
    }

    /// Positions 21–24, the building number (幢号), for building units (`F`); `None` otherwise.
    pub fn building_no(&self) -> Option<&str> {
        (self.fixture_kind() == FixtureKind::Building).then(|| &self.0[20..24])
    }

    /// Positions 25–28, the room number (户号), for building units (`F`); `None` otherwise.
    pub fn room_no(&self) -> Option<&str> {
        (self.fixture_kind() == FixtureKind::Building).then(|| &self.0[24..28])
    }

    fn char_at(&self, i: usize) -> char {
        char::from(self.0.as_bytes()[i])
    }
}

impl FromStr for UnitCode {
    type Err = UnitCodeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for UnitCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

serde_via_str!(UnitCode, "a 28-character real estate unit code");

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: [&str; 3] = [
        "340121261006GB00014F00220045",
        "320684413219GB00029F00010002",
        "320311001021GB00233F00010013",
    ];

    #[test]
    fn valid_vectors_and_accessors() {
        for v in VALID {
            assert_eq!(UnitCode::parse(v).map(|u| u.to_string()), Ok(v.to_owned()));
        }
        let u = UnitCode::parse("340121261006GB00014F00220045").expect("valid");
        assert_eq!(u.county_code(), "340121");
        assert_eq!(u.cadastral_district(), "261");
        assert_eq!(u.cadastral_subdistrict(), "006");
        assert_eq!(u.parcel_code(), "340121261006GB00014");
        assert_eq!(u.parcel_sequence(), "00014");
        assert_eq!(u.land_ownership(), LandOwnership::State);
        assert_eq!(u.parcel_kind(), ParcelKind::ConstructionSurface);
        assert_eq!(u.parcel_kind().letter(), 'B');
        assert_eq!(u.fixture_kind(), FixtureKind::Building);
        assert_eq!(u.fixture_kind().name_zh(), "房屋等建筑物、构筑物");
        assert_eq!(u.fixture_number(), "00220045");
        assert_eq!(u.building_no(), Some("0022"));
        assert_eq!(u.room_no(), Some("0045"));
    }

    #[test]
    fn other_fixtures() {
        let land = UnitCode::parse("320311001021GB00233W00000000").expect("bare land");
        assert_eq!(land.fixture_kind(), FixtureKind::None);
        assert_eq!(land.building_no(), None);
        assert_eq!(land.room_no(), None);
        let forest = UnitCode::parse("320311001021JE00233L00000007").expect("forest");
        assert_eq!(forest.fixture_kind(), FixtureKind::Forest);
        assert_eq!(forest.land_ownership(), LandOwnership::Collective);
        assert_eq!(forest.building_no(), None);
        let homestead = UnitCode::parse("320311001021jc00233f00010001").expect("lower case");
        assert_eq!(homestead.as_str(), "320311001021JC00233F00010001");
        assert_eq!(homestead.parcel_kind(), ParcelKind::Homestead);
    }

    #[test]
    fn refusals() {
        use UnitCodeError as E;
        let p = |s: &str| UnitCode::parse(s);
        assert_eq!(p(""), Err(E::Empty));
        assert_eq!(p("３40121261006GB00014F00220045"), Err(E::FullWidth));
        assert_eq!(
            p("340121261006GB00014F0022004"),
            Err(E::WrongLength { len: 27 })
        );
        assert_eq!(
            p("34012126100AGB00014F00220045"),
            Err(E::NotDigit { position: 12 })
        );
        assert_eq!(
            p("340121261006GB0001AF00220045"),
            Err(E::NotDigit { position: 19 })
        );
        assert_eq!(
            p("340121261006GB00014F0022004A"),
            Err(E::NotDigit { position: 28 })
        );
        assert_eq!(p("040121261006GB00014F00220045"), Err(E::InvalidCounty));
        assert_eq!(
            p("340121261006KB00014F00220045"),
            Err(E::InvalidLandOwnership)
        );
        assert_eq!(p("340121261006GK00014F00220045"), Err(E::InvalidParcelKind));
        assert_eq!(p("340121261006G100014F00220045"), Err(E::InvalidParcelKind));
        assert_eq!(
            p("340121261006GA00014F00220045"),
            Err(E::ParcelKindNeedsCollectiveLand { kind: 'A' })
        );
        assert_eq!(
            p("340121261006ZC00014F00220045"),
            Err(E::ParcelKindNeedsCollectiveLand { kind: 'C' })
        );
        assert_eq!(
            p("340121261006GB00014X00220045"),
            Err(E::InvalidFixtureKind)
        );
        assert_eq!(p("340121261006GB00014W00000001"), Err(E::NoFixtureNotZero));
    }

    #[test]
    fn every_parcel_kind_letter_round_trips() {
        for (letter, kind, name) in ParcelKind::ALL {
            assert_eq!(kind.letter(), letter);
            assert_eq!(kind.name_zh(), name);
            let ownership = if matches!(letter, 'A' | 'C') {
                'J'
            } else {
                'G'
            };
            let code = format!("340121261006{ownership}{letter}00014F00220045");
            assert_eq!(UnitCode::parse(&code).map(|u| u.parcel_kind()), Ok(kind));
        }
    }

    #[test]
    fn serde_round_trip_and_refusal() {
        let u = UnitCode::parse(VALID[1]).expect("valid");
        let json = serde_json::to_string(&u).expect("serialize");
        assert_eq!(json, format!("\"{}\"", VALID[1]));
        assert_eq!(
            serde_json::from_str::<UnitCode>(&json).expect("deserialize"),
            u
        );
        assert!(serde_json::from_str::<UnitCode>("\"320684413219GB00029W00010002\"").is_err());
    }

    #[test]
    fn chinese_messages_are_non_empty() {
        use UnitCodeError as E;
        for e in [
            E::Empty,
            E::FullWidth,
            E::WrongLength { len: 1 },
            E::NotDigit { position: 1 },
            E::InvalidCounty,
            E::InvalidLandOwnership,
            E::InvalidParcelKind,
            E::ParcelKindNeedsCollectiveLand { kind: 'A' },
            E::InvalidFixtureKind,
            E::NoFixtureNotZero,
        ] {
            assert!(!e.message_zh().is_empty());
            assert!(!e.to_string().is_empty());
        }
    }
}
