//! One test per finding code: a package that should raise it does, and a clean one does not.

mod common;

use common::*;
use ow_survey::{CheckConfig, Finding, FindingCode, Severity, SurveyPackage, check_package};
use serde_json::json;

fn codes(pkg: &SurveyPackage, cfg: &CheckConfig) -> Vec<FindingCode> {
    check_package(pkg, cfg).iter().map(|f| f.code).collect()
}

fn only(pkg: &SurveyPackage, code: FindingCode) -> Finding {
    let all = check_package(pkg, &CheckConfig::default());
    let hits: Vec<_> = all.iter().filter(|f| f.code == code).cloned().collect();
    assert_eq!(hits.len(), 1, "expected one {code}: {all:#?}");
    hits[0].clone()
}

fn txt_pkg(body: &str) -> SurveyPackage {
    parse_txt(&format!("{ATTRS_38}[地块坐标]\n{body}"))
}

fn geo_pkg(features: serde_json::Value) -> SurveyPackage {
    parse_geojson(
        &json!({"type": "FeatureCollection", "zone": 38, "features": features}).to_string(),
    )
}

fn parcel_feature(number: &str, area: f64, rings: &[Vec<(f64, f64)>]) -> serde_json::Value {
    json!({"type": "Feature", "properties": {"kind": "parcel", "number": number,
        "declared_area_m2": area}, "geometry": {"type": "Polygon", "coordinates": gj_rings(rings)}})
}

#[test]
fn domain_example_has_no_findings() {
    let pkg = parse_txt(&domain_example());
    assert_eq!(check_package(&pkg, &CheckConfig::default()), Vec::new());
    let cfg = CheckConfig {
        expected_zone: Some(38),
        ..CheckConfig::default()
    };
    assert_eq!(check_package(&pkg, &cfg), Vec::new());
}

#[test]
fn ring_not_closed_geojson() {
    let mut feature = parcel_feature(
        "D1",
        5000.0,
        &[gj_rect(500_000.0, 3_380_000.0, 100.0, 50.0)],
    );
    let ring = feature["geometry"]["coordinates"][0]
        .as_array_mut()
        .unwrap();
    ring.pop();
    let f = only(&geo_pkg(json!([feature])), FindingCode::RingNotClosed);
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.parcel.as_deref(), Some("D1"));
}

#[test]
fn ring_not_closed_txt_when_the_closing_point_moved() {
    let text = domain_example().replace("J1,1,3380000.000,38500000.000\n[", "");
    let mut lines: Vec<&str> = text.lines().collect();
    let last = lines.len() - 1;
    lines[last] = "J1,1,3380000.300,38500000.400";
    let pkg = parse_txt(&lines.join("\n"));
    let f = only(&pkg, FindingCode::RingNotClosed);
    assert_eq!(f.point.as_deref(), Some("J1"));
    assert_eq!(f.line, Some(18));
    assert!(f.message.contains("0.500"), "{}", f.message);
}

#[test]
fn too_few_points() {
    let body = "3,0.0001,D1,,面,,,,@\nJ1,1,3380000,38500000\nJ2,1,3380000,38500010\nJ1,1,3380000,38500000\n";
    let f = only(&txt_pkg(body), FindingCode::TooFewPoints);
    assert!(f.message.contains("只有2个"), "{}", f.message);
    assert_eq!(f.line, Some(14), "the first point of the ring");
}

#[test]
fn self_intersection_names_both_lines() {
    // A bow tie: J1-J2 crosses J3-J4.
    let ring = [
        (3_380_000.0, 500_000.0),
        (3_380_000.0, 500_100.0),
        (3_379_950.0, 500_000.0),
        (3_379_950.0, 500_100.0),
    ];
    let body = parcel_txt("D1", "0.2500", &[&ring]);
    let f = only(&txt_pkg(&body), FindingCode::SelfIntersection);
    assert_eq!(f.segment, Some(("J2".into(), "J3".into())));
    assert!(f.message.contains("J4-J1"), "{}", f.message);
}

#[test]
fn hole_outside_shell() {
    let outer = rect(3_380_000.0, 500_000.0, 100.0, 100.0);
    let hole = rect(3_380_080.0, 500_080.0, 40.0, 40.0); // sticks out
    let body = parcel_txt("D1", "0.9000", &[&outer, &hole]);
    let f = only(&txt_pkg(&body), FindingCode::HoleOutsideShell);
    assert!(f.message.contains("第2圈"));
    assert!(f.line.is_some());
}

#[test]
fn holes_overlap() {
    let outer = rect(3_380_000.0, 500_000.0, 100.0, 100.0);
    let a = rect(3_380_010.0, 500_010.0, 30.0, 30.0);
    let b = rect(3_380_020.0, 500_020.0, 30.0, 30.0);
    let body = parcel_txt("D1", "0.8500", &[&outer, &a, &b]);
    let f = only(&txt_pkg(&body), FindingCode::HolesOverlap);
    assert!(
        f.message.contains("第2圈") && f.message.contains("第3圈"),
        "{}",
        f.message
    );
}

#[test]
fn duplicate_point() {
    let ring = [
        (3_380_000.0, 500_000.0),
        (3_380_000.0, 500_100.0),
        (3_379_950.0, 500_100.0),
        (3_380_000.0, 500_100.0),
        (3_379_950.0, 500_000.0),
    ];
    let body = parcel_txt("D1", "0.5000", &[&ring]);
    let findings = check_package(&txt_pkg(&body), &CheckConfig::default());
    let f = findings
        .iter()
        .find(|f| f.code == FindingCode::DuplicatePoint)
        .expect("duplicate reported");
    assert_eq!(f.point.as_deref(), Some("J4"));
    assert!(f.message.contains("J2"));
    assert_eq!(f.line, Some(17));
}

#[test]
fn point_spacing() {
    let ring = [
        (3_380_000.0, 500_000.0),
        (3_380_000.0, 500_100.0),
        (3_379_950.0, 500_100.0),
        (3_379_950.0, 500_000.02),
        (3_379_950.0, 500_000.0),
    ];
    let body = parcel_txt("D1", "0.5000", &[&ring]);
    let f = only(&txt_pkg(&body), FindingCode::PointSpacing);
    assert_eq!(f.severity, Severity::Warning);
    assert_eq!(f.segment, Some(("J4".into(), "J5".into())));
    assert!(f.message.contains("0.020"), "{}", f.message);
    let relaxed = CheckConfig {
        min_point_spacing_m: 0.01,
        ..CheckConfig::default()
    };
    assert!(!codes(&txt_pkg(&body), &relaxed).contains(&FindingCode::PointSpacing));
}

#[test]
fn area_mismatch_uses_the_class_limit() {
    // 5000 m²: limit 2 · 0.05 · √5000 ≈ 7.07 m².
    let body = |ha: &str| parcel_txt("D1", ha, &[&rect(3_380_000.0, 500_000.0, 50.0, 100.0)]);
    assert!(check_package(&txt_pkg(&body("0.5007")), &CheckConfig::default()).is_empty());
    let f = only(&txt_pkg(&body("0.5008")), FindingCode::AreaMismatch);
    assert!(
        f.message.contains("5000.00") && f.message.contains("5008.00"),
        "{}",
        f.message
    );
    assert!(f.message.contains("7.07"), "{}", f.message);
    assert_eq!(f.line, Some(13));
    // 三级: 2 · 0.1 · √5000 ≈ 14.1 m² accepts 8 m².
    let mut cfg = CheckConfig::default();
    cfg.area.point_class = "三级".into();
    assert!(check_package(&txt_pkg(&body("0.5008")), &cfg).is_empty());
}

#[test]
fn declared_area_missing() {
    let body = parcel_txt("D1", "", &[&rect(3_380_000.0, 500_000.0, 50.0, 100.0)]);
    let f = only(&txt_pkg(&body), FindingCode::DeclaredAreaMissing);
    assert_eq!(f.severity, Severity::Warning);
}

#[test]
fn outside_zone() {
    // 200 km east of the central meridian is beyond a 3-degree zone.
    let body = parcel_txt(
        "D1",
        "0.5000",
        &[&rect(3_380_000.0, 700_000.0, 50.0, 100.0)],
    );
    let f = only(&txt_pkg(&body), FindingCode::OutsideZone);
    assert!(f.message.contains("4个"), "{}", f.message);
    // In a 6-degree zone it is inside.
    let cfg = CheckConfig {
        zone_width: 6,
        ..CheckConfig::default()
    };
    let pkg = parse_txt(&format!(
        "[属性描述]\n几度分带=6\n带号=20\n[地块坐标]\n{}",
        body.replace("38", "20")
    ));
    assert!(
        !codes(&pkg, &cfg).contains(&FindingCode::OutsideZone),
        "{:?}",
        codes(&pkg, &cfg)
    );
}

#[test]
fn zone_mismatch() {
    let pkg = parse_txt(&domain_example());
    let cfg = CheckConfig {
        expected_zone: Some(39),
        ..CheckConfig::default()
    };
    let findings = check_package(&pkg, &cfg);
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0].code, FindingCode::ZoneMismatch);
    assert!(findings[0].message.contains("38") && findings[0].message.contains("39"));
    let six = CheckConfig {
        zone_width: 6,
        ..CheckConfig::default()
    };
    assert!(codes(&pkg, &six).contains(&FindingCode::ZoneMismatch));
}

#[test]
fn building_outside_parcel_and_unknown_parcel() {
    let parcel = parcel_feature(
        "D1",
        5000.0,
        &[gj_rect(500_000.0, 3_380_000.0, 100.0, 50.0)],
    );
    let building = |parcel: &str, e: f64| {
        json!({"type": "Feature", "properties": {"kind": "building", "number": "F1", "parcel": parcel},
            "geometry": {"type": "Polygon", "coordinates": gj_rings(&[gj_rect(e, 3_380_010.0, 20.0, 20.0)])}})
    };
    let inside = geo_pkg(json!([parcel.clone(), building("D1", 500_010.0)]));
    assert_eq!(check_package(&inside, &CheckConfig::default()), Vec::new());
    // 10 m of a 20 m wide building sticks out: 200 m².
    let out = geo_pkg(json!([parcel.clone(), building("D1", 500_090.0)]));
    let f = only(&out, FindingCode::BuildingOutsideParcel);
    assert!(f.message.contains("200.00"), "{}", f.message);
    let unknown = geo_pkg(json!([parcel, building("D9", 500_010.0)]));
    only(&unknown, FindingCode::BuildingParcelUnknown);
}

#[test]
fn duplicate_parcel_number() {
    let a = parcel_txt(
        "D1",
        "0.5000",
        &[&rect(3_380_000.0, 500_000.0, 50.0, 100.0)],
    );
    let b = parcel_txt(
        "D1",
        "0.5000",
        &[&rect(3_380_000.0, 500_200.0, 50.0, 100.0)],
    );
    let f = only(
        &txt_pkg(&format!("{a}{b}")),
        FindingCode::DuplicateParcelNumber,
    );
    assert_eq!(f.line, Some(19));
    assert!(f.message.contains("第13行"));
}

#[test]
fn parcels_overlap() {
    let a = parcel_txt(
        "D1",
        "0.5000",
        &[&rect(3_380_000.0, 500_000.0, 50.0, 100.0)],
    );
    let b = parcel_txt(
        "D2",
        "0.5000",
        &[&rect(3_380_000.0, 500_090.0, 50.0, 100.0)],
    );
    let f = only(&txt_pkg(&format!("{a}{b}")), FindingCode::ParcelsOverlap);
    assert!(f.message.contains("500.00"), "{}", f.message);
    // Sharing a boundary is not an overlap.
    let c = parcel_txt(
        "D3",
        "0.5000",
        &[&rect(3_380_000.0, 500_100.0, 50.0, 100.0)],
    );
    assert!(check_package(&txt_pkg(&format!("{a}{c}")), &CheckConfig::default()).is_empty());
}

#[test]
fn unit_code_malformed_and_duplicate() {
    let good = "340121261006GB00014W00000000";
    let bad = "340121261006QB00014W00000000"; // Q is no land ownership letter
    let f = |code: &str, e: f64| {
        let mut v = parcel_feature("D", 5000.0, &[gj_rect(e, 3_380_000.0, 100.0, 50.0)]);
        v["properties"]["number"] = json!(format!("D{e}"));
        v["properties"]["unit_code"] = json!(code);
        v
    };
    let pkg = geo_pkg(json!([f(bad, 500_000.0)]));
    let finding = only(&pkg, FindingCode::UnitCodeMalformed);
    assert!(finding.message.contains(bad));
    let pkg = geo_pkg(json!([f(good, 500_000.0), f(good, 500_200.0)]));
    only(&pkg, FindingCode::DuplicateUnitCode);
    let pkg = geo_pkg(json!([f(good, 500_000.0)]));
    assert!(check_package(&pkg, &CheckConfig::default()).is_empty());
}

#[test]
fn constructors_for_checks_done_elsewhere() {
    let f = Finding::overlap_existing("D1", "340121261006GB00014", 3.25, 0.4);
    assert_eq!(
        (f.code, f.severity),
        (FindingCode::OverlapExisting, Severity::Error)
    );
    assert!(f.message.contains("3.25") && f.message.contains("0.40"));
    let f = Finding::gap_to_neighbour("D1", "340121261006GB00015", 0.35, 42.0);
    assert_eq!(f.code, FindingCode::GapToNeighbour);
    assert!(f.message.contains("0.35") && f.message.contains("42.00"));
    let f = Finding::unit_code_taken("340121261006GB00014W00000000");
    assert_eq!(f.code, FindingCode::UnitCodeTaken);
    let f = Finding::unit_code_malformed("12", "长度不对");
    assert_eq!(f.code, FindingCode::UnitCodeMalformed);
    assert!(!f.advice.is_empty());
}

/// A parcel name may name a person (宅基地): it appears in no finding and not in Debug output.
#[test]
fn parcel_names_stay_out_of_findings_and_debug() {
    let ring = [
        (3_380_000.0, 500_000.0),
        (3_380_000.0, 500_100.0),
        (3_379_950.0, 500_000.0),
        (3_379_950.0, 500_100.0),
    ];
    let body = parcel_txt("D1", "0.9000", &[&ring]).replace("测试地块", "张三宅基地");
    let pkg = txt_pkg(&body);
    assert_eq!(pkg.parcels[0].name, "张三宅基地");
    let findings = check_package(&pkg, &CheckConfig::default());
    assert!(!findings.is_empty());
    for f in &findings {
        assert!(
            !f.message.contains("张三") && !f.advice.contains("张三"),
            "{f}"
        );
    }
    assert!(!format!("{pkg:?}").contains("张三"));
}
