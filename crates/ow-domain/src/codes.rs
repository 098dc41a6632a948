//! Code lists of the registration database standard (不动产登记数据库标准 dictionaries,
//! domain-facts §3.3 \[V\]): [`RegistrationType`] (登记类型 DJLX) and [`RightType`]
//! (权利类型 QLLX).
//!
//! Both serialize as their numeric code (e.g. `200`, `4`), the form the register and the
//! national exchange use, and deserialize only from a known code.

use std::fmt;

/// 登记类型 (DJLX): the kind of registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RegistrationType {
    /// 100 首次登记.
    First,
    /// 200 转移登记.
    Transfer,
    /// 300 变更登记.
    Change,
    /// 400 注销登记.
    Cancellation,
    /// 500 更正登记.
    Correction,
    /// 600 异议登记.
    Objection,
    /// 700 预告登记.
    PreNotice,
    /// 800 查封登记.
    Seizure,
    /// 900 其他登记.
    Other,
}

impl RegistrationType {
    /// Every registration type, in code order.
    pub const ALL: [Self; 9] = [
        Self::First,
        Self::Transfer,
        Self::Change,
        Self::Cancellation,
        Self::Correction,
        Self::Objection,
        Self::PreNotice,
        Self::Seizure,
        Self::Other,
    ];

    /// The DJLX code: 100, 200, … 900.
    pub fn code(self) -> u16 {
        match self {
            Self::First => 100,
            Self::Transfer => 200,
            Self::Change => 300,
            Self::Cancellation => 400,
            Self::Correction => 500,
            Self::Objection => 600,
            Self::PreNotice => 700,
            Self::Seizure => 800,
            Self::Other => 900,
        }
    }

    /// The type for a DJLX code, or `None` for an unknown code.
    pub fn from_code(code: u16) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.code() == code)
    }

    /// Chinese name, e.g. `转移登记`.
    pub fn name_zh(self) -> &'static str {
        match self {
            Self::First => "首次登记",
            Self::Transfer => "转移登记",
            Self::Change => "变更登记",
            Self::Cancellation => "注销登记",
            Self::Correction => "更正登记",
            Self::Objection => "异议登记",
            Self::PreNotice => "预告登记",
            Self::Seizure => "查封登记",
            Self::Other => "其他登记",
        }
    }
}

impl fmt::Display for RegistrationType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_zh())
    }
}

impl serde::Serialize for RegistrationType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u16(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for RegistrationType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <u16 as serde::Deserialize>::deserialize(deserializer)?;
        Self::from_code(code).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown registration type code {code}; expected 100, 200, … 900"
            ))
        })
    }
}

/// 权利类型 (QLLX): the kind of right, full list of the database dictionary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RightType {
    /// 1 集体土地所有权.
    CollectiveLandOwnership,
    /// 2 国家土地所有权.
    StateLandOwnership,
    /// 3 国有建设用地使用权.
    StateConstructionLandUse,
    /// 4 国有建设用地使用权/房屋（构筑物）所有权 — the usual right of a flat.
    StateConstructionLandAndBuilding,
    /// 5 宅基地使用权.
    HomesteadUse,
    /// 6 宅基地使用权/房屋（构筑物）所有权.
    HomesteadAndBuilding,
    /// 7 集体建设用地使用权.
    CollectiveConstructionLandUse,
    /// 8 集体建设用地使用权/房屋（构筑物）所有权.
    CollectiveConstructionLandAndBuilding,
    /// 9 土地承包经营权.
    LandContractManagement,
    /// 10 土地承包经营权/森林、林木所有权.
    LandContractAndForestOwnership,
    /// 11 林地使用权.
    ForestLandUse,
    /// 12 林地使用权/森林、林木使用权.
    ForestLandAndForestUse,
    /// 13 草原使用权.
    GrasslandUse,
    /// 14 水域滩涂养殖权.
    AquacultureRight,
    /// 15 海域使用权.
    SeaAreaUse,
    /// 16 海域使用权/构（建）筑物所有权.
    SeaAreaAndStructure,
    /// 17 无居民海岛使用权.
    UninhabitedIslandUse,
    /// 18 无居民海岛使用权/构（建）筑物所有权.
    UninhabitedIslandAndStructure,
    /// 19 地役权.
    Easement,
    /// 20 取水权.
    WaterAbstraction,
    /// 21 探矿权.
    Exploration,
    /// 22 采矿权.
    Mining,
    /// 23 抵押权.
    Mortgage,
    /// 99 其它.
    Other,
}

impl RightType {
    const TABLE: [(u8, Self, &'static str); 24] = [
        (1, Self::CollectiveLandOwnership, "集体土地所有权"),
        (2, Self::StateLandOwnership, "国家土地所有权"),
        (3, Self::StateConstructionLandUse, "国有建设用地使用权"),
        (
            4,
            Self::StateConstructionLandAndBuilding,
            "国有建设用地使用权/房屋（构筑物）所有权",
        ),
        (5, Self::HomesteadUse, "宅基地使用权"),
        (
            6,
            Self::HomesteadAndBuilding,
            "宅基地使用权/房屋（构筑物）所有权",
        ),
        (7, Self::CollectiveConstructionLandUse, "集体建设用地使用权"),
        (
            8,
            Self::CollectiveConstructionLandAndBuilding,
            "集体建设用地使用权/房屋（构筑物）所有权",
        ),
        (9, Self::LandContractManagement, "土地承包经营权"),
        (
            10,
            Self::LandContractAndForestOwnership,
            "土地承包经营权/森林、林木所有权",
        ),
        (11, Self::ForestLandUse, "林地使用权"),
        (
            12,
            Self::ForestLandAndForestUse,
            "林地使用权/森林、林木使用权",
        ),
        (13, Self::GrasslandUse, "草原使用权"),
        (14, Self::AquacultureRight, "水域滩涂养殖权"),
        (15, Self::SeaAreaUse, "海域使用权"),
        (
            16,
            Self::SeaAreaAndStructure,
            "海域使用权/构（建）筑物所有权",
        ),
        (17, Self::UninhabitedIslandUse, "无居民海岛使用权"),
        (
            18,
            Self::UninhabitedIslandAndStructure,
            "无居民海岛使用权/构（建）筑物所有权",
        ),
        (19, Self::Easement, "地役权"),
        (20, Self::WaterAbstraction, "取水权"),
        (21, Self::Exploration, "探矿权"),
        (22, Self::Mining, "采矿权"),
        (23, Self::Mortgage, "抵押权"),
        (99, Self::Other, "其它"),
    ];

    /// Every right type, in code order.
    pub fn all() -> impl Iterator<Item = Self> {
        Self::TABLE.into_iter().map(|e| e.1)
    }

    /// The QLLX code: 1–23 or 99.
    pub fn code(self) -> u8 {
        Self::TABLE.iter().find(|e| e.1 == self).map_or(99, |e| e.0)
    }

    /// The right type for a QLLX code, or `None` for an unknown code.
    pub fn from_code(code: u8) -> Option<Self> {
        Self::TABLE.iter().find(|e| e.0 == code).map(|e| e.1)
    }

    /// Chinese name, e.g. `抵押权`.
    pub fn name_zh(self) -> &'static str {
        Self::TABLE
            .iter()
            .find(|e| e.1 == self)
            .map_or("其它", |e| e.2)
    }
}

impl fmt::Display for RightType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_zh())
    }
}

impl serde::Serialize for RightType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(self.code())
    }
}

impl<'de> serde::Deserialize<'de> for RightType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let code = <u8 as serde::Deserialize>::deserialize(deserializer)?;
        Self::from_code(code).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown right type code {code}; expected 1 to 23 or 99"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registration_types() {
        let codes: Vec<u16> = RegistrationType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(codes, [100, 200, 300, 400, 500, 600, 700, 800, 900]);
        for t in RegistrationType::ALL {
            assert_eq!(RegistrationType::from_code(t.code()), Some(t));
            assert!(!t.name_zh().is_empty());
        }
        assert_eq!(RegistrationType::Transfer.name_zh(), "转移登记");
        assert_eq!(RegistrationType::from_code(150), None);
        assert_eq!(RegistrationType::Seizure.to_string(), "查封登记");
    }

    #[test]
    fn right_types() {
        let codes: Vec<u8> = RightType::all().map(RightType::code).collect();
        let mut expected: Vec<u8> = (1..=23).collect();
        expected.push(99);
        assert_eq!(codes, expected);
        for t in RightType::all() {
            assert_eq!(RightType::from_code(t.code()), Some(t));
        }
        assert_eq!(
            RightType::from_code(4),
            Some(RightType::StateConstructionLandAndBuilding)
        );
        assert_eq!(RightType::Mortgage.code(), 23);
        assert_eq!(RightType::Mortgage.name_zh(), "抵押权");
        assert_eq!(RightType::from_code(24), None);
        assert_eq!(RightType::from_code(0), None);
    }

    #[test]
    fn serde_uses_codes() {
        assert_eq!(
            serde_json::to_string(&RegistrationType::Transfer).expect("ser"),
            "200"
        );
        assert_eq!(
            serde_json::from_str::<RegistrationType>("800").expect("de"),
            RegistrationType::Seizure
        );
        assert!(serde_json::from_str::<RegistrationType>("250").is_err());
        assert_eq!(
            serde_json::to_string(&RightType::Mortgage).expect("ser"),
            "23"
        );
        assert_eq!(
            serde_json::from_str::<RightType>("99").expect("de"),
            RightType::Other
        );
        assert!(serde_json::from_str::<RightType>("24").is_err());
        assert!(serde_json::from_str::<RightType>("\"4\"").is_err());
    }
}
