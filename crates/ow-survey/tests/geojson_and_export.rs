//! GeoJSON input profile, the online limits, and the GeoJSON export.

mod common;

use common::*;
use ow_survey::{
    CounterReason, OnlineLimits, ParseOptions, SourceFormat, detect_format, parse_package,
    to_geojson,
};
use serde_json::{Value, json};

#[test]
fn geojson_profile_reads_parcels_buildings_and_meta() {
    let text = json!({
        "type": "FeatureCollection", "zone": 38, "zone_width": 3, "producer": "XX测绘公司",
        "features": [
            {"type": "Feature", "properties": {"kind": "parcel", "number": "D1", "name": "甲",
                "declared_area_m2": 9600.0, "use_code": "070101", "land_class": "0701",
                "neighbours": ["340121261006GB00015"], "unit_code": "340121261006GB00014W00000000"},
             "geometry": {"type": "Polygon", "coordinates": gj_rings(&[
                gj_rect(38_500_000.0, 3_380_000.0, 100.0, 100.0),
                gj_rect(38_500_040.0, 3_380_040.0, 20.0, 20.0)])}},
            {"type": "Feature", "properties": {"kind": "building", "number": "F1", "parcel": "D1"},
             "geometry": {"type": "MultiPolygon", "coordinates": [gj_rings(&[
                gj_rect(38_500_010.0, 3_380_010.0, 10.0, 10.0)])]}}
        ]
    })
    .to_string();
    let pkg = parse_geojson(&text);
    assert_eq!(pkg.format, SourceFormat::GeoJson);
    assert_eq!(pkg.meta.zone, Some(38));
    assert_eq!(pkg.meta.zone_width, Some(3));
    assert!(!pkg.meta.classified);
    let p = &pkg.parcels[0];
    assert_eq!(p.rings.len(), 2);
    assert!(
        p.rings
            .iter()
            .all(|r| r.closed_in_source && r.points.len() == 4)
    );
    assert_eq!(p.rings[0].points[0].easting, 500_000.0);
    assert_eq!(
        p.rings[1].points[0].name, "J5",
        "names continue across rings"
    );
    assert_eq!(p.neighbours, vec!["340121261006GB00015".to_owned()]);
    assert_eq!(p.unit_code.as_deref(), Some("340121261006GB00014W00000000"));
    assert!((p.area_m2() - 9600.0).abs() < 1e-6);
    assert_eq!(pkg.buildings.len(), 1);
    assert!((pkg.buildings[0].area_m2() - 100.0).abs() < 1e-6);
    assert_eq!(pkg.buildings[0].parcel_number, "D1");
}

#[test]
fn geojson_problems_are_all_reported() {
    let text = json!({
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "properties": {"kind": "parcel"}, "geometry":
                {"type": "Polygon", "coordinates": gj_rings(&[gj_rect(500_000.0, 3_380_000.0, 1.0, 1.0)])}},
            {"type": "Feature", "properties": {"kind": "parcel", "number": "P"}, "geometry":
                {"type": "Point", "coordinates": [500_000.0, 3_380_000.0]}},
            {"type": "Feature", "properties": {"kind": "road", "number": "R"}, "geometry":
                {"type": "Polygon", "coordinates": gj_rings(&[gj_rect(500_000.0, 3_380_000.0, 1.0, 1.0)])}},
            {"type": "Feature", "properties": {"kind": "building", "number": "B"}, "geometry":
                {"type": "Polygon", "coordinates": gj_rings(&[gj_rect(500_000.0, 3_380_000.0, 1.0, 1.0)])}},
            {"type": "Feature", "properties": {"kind": "parcel", "number": "Q"}, "geometry":
                {"type": "Polygon", "coordinates": [[[38_500_000.0, 39_500_000.0], [1.0, 2.0]]]}}
        ]
    })
    .to_string();
    let e = parse_package(
        text.as_bytes(),
        SourceFormat::GeoJson,
        &ParseOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.0.len(), 5, "{e}");
    for needle in [
        "第1个要素缺少编号",
        "Point",
        "kind=“road”",
        "parcel",
        "第5个要素",
    ] {
        assert!(
            e.0.iter().any(|p| p.message.contains(needle)),
            "{needle} not in {e}"
        );
    }
}

#[test]
fn invalid_json_gives_its_line() {
    let e = parse_package(
        b"{\n\"type\": \n,",
        SourceFormat::GeoJson,
        &ParseOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.0[0].line, Some(3));
    let e = parse_package(b"[1,2]", SourceFormat::GeoJson, &ParseOptions::default()).unwrap_err();
    assert!(e.0[0].message.contains("顶层"));
}

#[test]
fn detect_format_of_fixtures() {
    assert_eq!(
        detect_format("成果.dat", domain_example().as_bytes()),
        Some(SourceFormat::BoundaryTxt)
    );
    let gbk = encoding_rs::GBK.encode(&domain_example()).0.into_owned();
    assert_eq!(detect_format("x", &gbk), Some(SourceFormat::BoundaryTxt));
    assert_eq!(
        detect_format("x.txt", b"{\"type\":\"FeatureCollection\"}"),
        Some(SourceFormat::GeoJson)
    );
}

#[test]
fn counter_only_for_large_or_classified() {
    let limits = OnlineLimits::default();
    let pkg = parse_txt(&domain_example());
    assert_eq!(pkg.counter_only(&limits), None);
    // 3 km × 2.5 km = 7.5 km².
    let big = format!(
        "{ATTRS_38}[地块坐标]\n{}",
        parcel_txt(
            "D9",
            "750.0000",
            &[&rect(3_380_000.0, 400_000.0, 2_500.0, 3_000.0)]
        )
    );
    let reason = parse_txt(&big).counter_only(&limits).expect("too large");
    match &reason {
        CounterReason::TooLarge {
            parcel, area_m2, ..
        } => {
            assert_eq!(parcel, "D9");
            assert!((area_m2 - 7_500_000.0).abs() < 1e-3);
        }
        other => panic!("{other:?}"),
    }
    assert!(reason.message().contains("须到登记窗口现场提交"));
    assert!(
        reason.message().contains("7.5000平方公里"),
        "{}",
        reason.message()
    );
    // A small parcel declared as 7 km² also goes to the counter.
    let declared = domain_example().replace("0.5000,D001", "700.0000,D001");
    assert!(parse_txt(&declared).counter_only(&limits).is_some());
    let higher = OnlineLimits {
        max_parcel_area_m2: 8_000_000.0,
    };
    assert_eq!(parse_txt(&big).counter_only(&higher), None);
    let classified = domain_example().replace("精度=0.001", "精度=0.001\n涉密=秘密");
    let reason = parse_txt(&classified).counter_only(&limits);
    assert_eq!(reason, Some(CounterReason::Classified));
    assert!(reason.unwrap().to_string().contains("涉密"));
    let gj = json!({"type": "FeatureCollection", "classified": true, "features": [
        {"type": "Feature", "properties": {"kind": "parcel", "number": "D1"}, "geometry":
            {"type": "Polygon", "coordinates": gj_rings(&[gj_rect(500_000.0, 3_380_000.0, 10.0, 10.0)])}}]});
    assert_eq!(
        parse_geojson(&gj.to_string()).counter_only(&limits),
        Some(CounterReason::Classified)
    );
}

#[test]
fn export_places_the_parcel_in_its_zone() {
    let pkg = parse_txt(&domain_example());
    let parcels: Vec<_> = pkg.parcels.iter().collect();
    let out: Value = serde_json::from_str(&to_geojson(&parcels, pkg.meta.zone)).unwrap();
    assert_eq!(out["type"], "FeatureCollection");
    assert_eq!(
        out["crs"]["properties"]["name"],
        "urn:ogc:def:crs:EPSG::4526"
    );
    let f = &out["features"][0];
    assert_eq!(f["properties"]["地块编号"], "D001");
    assert_eq!(f["properties"]["名称"], "示例地块");
    assert_eq!(f["properties"]["面积"], 5000.0);
    assert_eq!(f["properties"]["点号"], json!(["J1", "J2", "J3", "J4"]));
    let ring = f["geometry"]["coordinates"][0].as_array().unwrap();
    assert_eq!(ring.len(), 5, "closed");
    assert_eq!(ring[0], ring[4]);
    assert_eq!(ring[0], json!([38_500_000.0, 3_380_000.0]));
    // Read back through the parser: the same parcel.
    let mut back = out.clone();
    back["features"][0]["properties"] = json!({"kind": "parcel", "number": "D001"});
    let again = parse_geojson(&back.to_string());
    assert_eq!(again.meta.zone, Some(38));
    let a: Vec<_> = again.parcels[0].rings[0]
        .points
        .iter()
        .map(|p| (p.easting, p.northing))
        .collect();
    let b: Vec<_> = pkg.parcels[0].rings[0]
        .points
        .iter()
        .map(|p| (p.easting, p.northing))
        .collect();
    assert_eq!(a, b);
    // Without a zone: bare eastings, no crs.
    let out: Value = serde_json::from_str(&to_geojson(&parcels, None)).unwrap();
    assert!(out.get("crs").is_none());
    assert_eq!(
        out["features"][0]["geometry"]["coordinates"][0][0],
        json!([500_000.0, 3_380_000.0])
    );
}

#[test]
fn bracket_bombs_are_refused_before_parsing() {
    let opts = ParseOptions {
        max_points: 10,
        ..ParseOptions::default()
    };
    let text = format!(
        "{{\"type\":\"FeatureCollection\",\"features\":{}}}",
        "[".repeat(20_100)
    );
    let e = parse_package(text.as_bytes(), SourceFormat::GeoJson, &opts).unwrap_err();
    assert!(e.0[0].message.contains("坐标数超过上限10"), "{e}");
}
