//! Fixtures shared by the integration tests: real-looking packages written by the tests.
#![allow(dead_code)]

use ow_survey::{ParseOptions, SourceFormat, SurveyPackage, parse_package};

/// The `[属性描述]` section of a typical 3-degree zone 38 file.
pub const ATTRS_38: &str = "[属性描述]\n格式版本号=1.01版本\n数据产生单位=XX县自然资源局\n\
数据产生日期=2024-05-01\n坐标系=2000国家大地坐标系\n几度分带=3\n投影类型=高斯克吕格\n\
计量单位=米\n带号=38\n精度=0.001\n转换参数=,,,,,,\n";

/// The domain-facts §3.8 example: 100 m × 50 m = 5000 m² = 0.5 ha, closed, zone prefix 38.
pub fn domain_example() -> String {
    format!(
        "{ATTRS_38}[地块坐标]\n5,0.5000,D001,示例地块,面,,070101,0701,@\n\
J1,1,3380000.000,38500000.000\nJ2,1,3380000.000,38500100.000\n\
J3,1,3379950.000,38500100.000\nJ4,1,3379950.000,38500000.000\n\
J1,1,3380000.000,38500000.000\n"
    )
}

/// A TXT parcel: header line then `J{i},ring,X,Y` lines from (northing, easting) pairs, the
/// eastings with the zone-38 prefix; each ring closed by repeating its first point.
pub fn parcel_txt(number: &str, area_ha: &str, rings: &[&[(f64, f64)]]) -> String {
    let count: usize = rings.iter().map(|r| r.len() + 1).sum();
    let mut s = format!("{count},{area_ha},{number},测试地块,面,,070101,0701,@\n");
    let mut k = 0;
    for (ri, ring) in rings.iter().enumerate() {
        let first = k + 1;
        for (n, e) in ring.iter() {
            k += 1;
            s.push_str(&format!("J{k},{},{n:.3},{:.3}\n", ri + 1, 38_000_000.0 + e));
        }
        let (n, e) = ring[0];
        s.push_str(&format!(
            "J{first},{},{n:.3},{:.3}\n",
            ri + 1,
            38_000_000.0 + e
        ));
    }
    s
}

/// A rectangle ring (northing, easting) with its lower-left corner at (n, e).
pub fn rect(n: f64, e: f64, dn: f64, de: f64) -> Vec<(f64, f64)> {
    vec![(n + dn, e), (n + dn, e + de), (n, e + de), (n, e)]
}

pub fn parse_txt(text: &str) -> SurveyPackage {
    parse_package(
        text.as_bytes(),
        SourceFormat::BoundaryTxt,
        &ParseOptions::default(),
    )
    .unwrap_or_else(|e| panic!("parse failed: {e}"))
}

pub fn parse_geojson(text: &str) -> SurveyPackage {
    parse_package(
        text.as_bytes(),
        SourceFormat::GeoJson,
        &ParseOptions::default(),
    )
    .unwrap_or_else(|e| panic!("parse failed: {e}"))
}

/// GeoJSON polygon coordinates from (easting, northing) rings, closed.
pub fn gj_rings(rings: &[Vec<(f64, f64)>]) -> serde_json::Value {
    serde_json::Value::Array(
        rings
            .iter()
            .map(|r| {
                let mut v: Vec<serde_json::Value> =
                    r.iter().map(|(e, n)| serde_json::json!([e, n])).collect();
                v.push(serde_json::json!([r[0].0, r[0].1]));
                serde_json::Value::Array(v)
            })
            .collect(),
    )
}

/// A rectangle ring (easting, northing) with its lower-left corner at (e, n).
pub fn gj_rect(e: f64, n: f64, de: f64, dn: f64) -> Vec<(f64, f64)> {
    vec![(e, n), (e + de, n), (e + de, n + dn), (e, n + dn)]
}
