//! Parser tests on the 界址点坐标 TXT format.

mod common;

use common::*;
use ow_survey::{ParseOptions, SourceFormat, parse_package};

#[test]
fn domain_example_reads_with_meta_and_area() {
    let pkg = parse_txt(&domain_example());
    assert_eq!(pkg.encoding, "UTF-8");
    assert_eq!(pkg.format, SourceFormat::BoundaryTxt);
    assert_eq!(pkg.meta.zone, Some(38));
    assert_eq!(pkg.meta.zone_width, Some(3));
    assert_eq!(
        pkg.meta.coordinate_system.as_deref(),
        Some("2000国家大地坐标系")
    );
    assert_eq!(pkg.meta.producer.as_deref(), Some("XX县自然资源局"));
    assert!(!pkg.meta.classified);
    assert_eq!(pkg.parcels.len(), 1);
    let p = &pkg.parcels[0];
    assert_eq!(p.number, "D001");
    assert_eq!(p.name, "示例地块");
    assert_eq!(p.shape, "面");
    assert_eq!(p.use_code, "070101");
    assert_eq!(p.land_class, "0701");
    assert_eq!(p.header_line, Some(13));
    assert_eq!(p.declared_area_m2, Some(5000.0));
    let ring = &p.rings[0];
    assert!(ring.closed_in_source);
    assert_eq!(ring.points.len(), 4, "the closing point is not kept");
    assert_eq!(ring.points[0].easting, 500_000.0, "prefix stripped");
    assert_eq!(ring.points[0].northing, 3_380_000.0);
    assert_eq!(ring.points[1].line, Some(15));
    assert!((p.area_m2() - 5000.0).abs() < 1e-6);
}

#[test]
fn gbk_file_reads_the_same() {
    let text = domain_example();
    let (gbk, _, had_errors) = encoding_rs::GBK.encode(&text);
    assert!(!had_errors);
    assert!(std::str::from_utf8(&gbk).is_err(), "fixture really is GBK");
    let pkg = parse_package(&gbk, SourceFormat::BoundaryTxt, &ParseOptions::default()).unwrap();
    assert_eq!(pkg.encoding, "GBK");
    assert_eq!(pkg.parcels[0].name, "示例地块");
    assert_eq!(pkg.meta.producer.as_deref(), Some("XX县自然资源局"));
    assert_eq!(pkg, parse_txt(&text).with_encoding("GBK"));
}

trait WithEncoding {
    fn with_encoding(self, e: &'static str) -> Self;
}
impl WithEncoding for ow_survey::SurveyPackage {
    fn with_encoding(mut self, e: &'static str) -> Self {
        self.encoding = e;
        self
    }
}

#[test]
fn utf8_bom_and_crlf_are_tolerated() {
    let text = format!("\u{feff}{}", domain_example().replace('\n', "\r\n"));
    let pkg = parse_txt(&text);
    assert_eq!(pkg.encoding, "UTF-8");
    assert_eq!(pkg.parcels[0].rings[0].points.len(), 4);
    assert_eq!(pkg.parcels[0].rings[0].points[3].name, "J4");
}

#[test]
fn several_parcels_with_inner_rings() {
    let outer = rect(3_380_000.0, 500_000.0, 100.0, 100.0);
    let hole = rect(3_380_040.0, 500_040.0, 20.0, 20.0);
    let second = rect(3_380_000.0, 500_200.0, 50.0, 40.0);
    let text = format!(
        "{ATTRS_38}[地块坐标]\n{}{}",
        parcel_txt("D001", "0.9600", &[&outer, &hole]),
        parcel_txt("D002", "0.2000", &[&second])
    );
    let pkg = parse_txt(&text);
    assert_eq!(pkg.parcels.len(), 2);
    let p = &pkg.parcels[0];
    assert_eq!(p.rings.len(), 2);
    assert_eq!(p.rings[0].ring_no, 1);
    assert_eq!(p.rings[1].ring_no, 2);
    assert_eq!(p.rings[1].points.len(), 4);
    assert!((p.area_m2() - (10_000.0 - 400.0)).abs() < 1e-6);
    assert_eq!(p.polygon().interiors().len(), 1);
    assert!((pkg.parcels[1].area_m2() - 2000.0).abs() < 1e-6);
    assert_eq!(pkg.parcels[1].number, "D002");
}

#[test]
fn missing_closing_point_with_either_point_count() {
    for count in ["4", "5"] {
        let text = format!(
            "{ATTRS_38}[地块坐标]\n{count},0.5000,D001,示例地块,面,,070101,0701,@\n\
J1,1,3380000.000,38500000.000\nJ2,1,3380000.000,38500100.000\n\
J3,1,3379950.000,38500100.000\nJ4,1,3379950.000,38500000.000\n"
        );
        let pkg = parse_package(
            text.as_bytes(),
            SourceFormat::BoundaryTxt,
            &ParseOptions::default(),
        );
        if count == "4" {
            let pkg = pkg.unwrap();
            let ring = &pkg.parcels[0].rings[0];
            assert!(!ring.closed_in_source);
            assert_eq!(ring.points.len(), 4);
            assert!((pkg.parcels[0].area_m2() - 5000.0).abs() < 1e-6);
        } else {
            // 5 declared, 4 read, none closing: truncated.
            let e = pkg.unwrap_err();
            assert_eq!(e.0.len(), 1);
            assert_eq!(e.0[0].line, Some(13));
            assert!(
                e.0[0].message.contains("声明界址点数5"),
                "{}",
                e.0[0].message
            );
        }
    }
    // With the closing point, both counts (4 distinct, 5 lines) are accepted.
    let closed = domain_example().replace("5,0.5000,D001", "4,0.5000,D001");
    assert_eq!(parse_txt(&closed).parcels[0].rings[0].points.len(), 4);
}

#[test]
fn swapped_columns_and_no_prefix_are_detected() {
    // Y (easting) first, without the zone prefix.
    let text = String::from(
        "[属性描述]\n带号=38\n[地块坐标]\n5,0.5000,D001,示例地块,面,,070101,0701,@\n\
J1,1,500000.000,3380000.000\nJ2,1,500100.000,3380000.000\n\
J3,1,500100.000,3379950.000\nJ4,1,500000.000,3379950.000\n\
J1,1,500000.000,3380000.000\n",
    );
    let pkg = parse_txt(&text);
    let reference = parse_txt(&domain_example());
    let a = &pkg.parcels[0].rings[0].points;
    let b = &reference.parcels[0].rings[0].points;
    for (p, q) in a.iter().zip(b) {
        assert_eq!((p.easting, p.northing), (q.easting, q.northing));
    }
    // Swapped with the prefix.
    let text = domain_example().replace(
        "J2,1,3380000.000,38500100.000",
        "J2,1,38500100.000,3380000.000",
    );
    let pkg = parse_txt(&text);
    assert_eq!(pkg.parcels[0].rings[0].points[1].easting, 500_100.0);
}

#[test]
fn zone_comes_from_the_prefix_and_must_agree() {
    let text = domain_example().replace("带号=38\n", "");
    assert_eq!(parse_txt(&text).meta.zone, Some(38));
    let text = domain_example().replace("带号=38", "带号=39");
    let e = parse_package(
        text.as_bytes(),
        SourceFormat::BoundaryTxt,
        &ParseOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.0.len(), 5, "each prefixed point line: {e}");
    assert_eq!(e.0[0].line, Some(14));
    assert!(e.0[0].message.contains("带号=39"));
}

#[test]
fn full_width_commas_trailing_commas_and_blank_lines() {
    let text = format!(
        "{ATTRS_38}\n[地块坐标]\n\n5，0.5000，D001，示例地块，面，，070101，0701，@\n\
J1，1，3380000.000，38500000.000,,\n\nJ2,1,3380000.000,38500100.000,\n\
J3,1,3379950.000,38500100.000\nJ4,1,3379950.000,38500000.000\n\
J1,1,3380000.000,38500000.000\n  \n"
    );
    let pkg = parse_txt(&text);
    assert_eq!(pkg.parcels[0].rings[0].points.len(), 4);
    assert_eq!(pkg.parcels[0].number, "D001");
    assert!((pkg.parcels[0].area_m2() - 5000.0).abs() < 1e-6);
}

#[test]
fn garbage_lines_are_all_reported_with_line_numbers() {
    let text = format!(
        "{ATTRS_38}这一行没有等号\n[地块坐标]\n5,0.5000,D001,示例地块,面,,070101,0701,@\n\
J1,1,3380000.000,38500000.000\nJ2,1,abc,38500100.000\n\
随便写的一行\nJ3,1,3379950.000,38500100.000\nJ4,0,3379950.000,38500000.000\n\
J1,1,3380000.000,38500000.000\nx,0.5,,,,,,,@\n[其他]\n"
    );
    let e = parse_package(
        text.as_bytes(),
        SourceFormat::BoundaryTxt,
        &ParseOptions::default(),
    )
    .unwrap_err();
    let lines: Vec<Option<u32>> = e.0.iter().map(|p| p.line).collect();
    // 12: no '=', 16: bad number, 17: garbage, 19: ring 0, 21: bad header, 22: unknown section;
    // the header at 14 declares 5 points and 6 lines were read (one closing), so it is reported too.
    for expected in [12, 16, 17, 19, 21, 22] {
        assert!(
            lines.contains(&Some(expected)),
            "line {expected} missing from {e}"
        );
    }
    for p in &e.0 {
        assert!(!p.message.is_empty() && !p.advice.is_empty());
    }
    let shown = e.to_string();
    assert!(shown.contains("第17行"), "{shown}");
}

#[test]
fn structural_problems() {
    let cases: &[(&str, &str)] = &[
        ("", "空"),
        ("[属性描述]\n带号=38\n", "没有[地块坐标]"),
        ("[地块坐标]\nJ1,1,3380000,38500000\n", "第一个地块头行"),
        ("[地块坐标]\n4,0.1,D1,,面,,,,@\n", "没有界址点"),
        ("带号=38\n", "之前"),
        ("[属性描述]\n几度分带=5\n[地块坐标]\n", "几度分带"),
        (
            "[地块坐标]\n2,0.1,D1,,面,,,,@\nJ1,2,3380000,38500000\nJ2,2,3380000,38500010\n",
            "圈号",
        ),
    ];
    for (text, needle) in cases {
        let e = parse_package(
            text.as_bytes(),
            SourceFormat::BoundaryTxt,
            &ParseOptions::default(),
        )
        .expect_err(text);
        assert!(
            e.0.iter().any(|p| p.message.contains(needle)),
            "{needle:?} not in {e}"
        );
    }
}

#[test]
fn undecodable_bytes_are_reported_by_line() {
    let mut bytes = encoding_rs::GBK.encode(&domain_example()).0.into_owned();
    bytes.extend_from_slice(b"J9,1,\xff\xfe,1\n");
    let e = parse_package(&bytes, SourceFormat::BoundaryTxt, &ParseOptions::default()).unwrap_err();
    assert_eq!(e.0[0].line, Some(19));
    assert!(e.0[0].message.contains("GBK"));
    let e = parse_package(
        b"\xff\xfe[\x00",
        SourceFormat::BoundaryTxt,
        &ParseOptions::default(),
    )
    .unwrap_err();
    assert!(e.0[0].message.contains("UTF-16"));
}

#[test]
fn limits_are_enforced() {
    let text = domain_example();
    let small = ParseOptions {
        max_bytes: 100,
        ..ParseOptions::default()
    };
    let e = parse_package(text.as_bytes(), SourceFormat::BoundaryTxt, &small).unwrap_err();
    assert!(e.0[0].message.contains("超过上限100字节"));
    let few = ParseOptions {
        max_points: 3,
        ..ParseOptions::default()
    };
    let e = parse_package(text.as_bytes(), SourceFormat::BoundaryTxt, &few).unwrap_err();
    assert_eq!(e.0.last().unwrap().line, Some(17));
    let one = ParseOptions {
        max_parcels: 1,
        ..ParseOptions::default()
    };
    let two = format!(
        "{}{}",
        text,
        parcel_txt("D2", "0.1", &[&rect(3_380_000.0, 500_200.0, 10.0, 10.0)])
    );
    let e = parse_package(two.as_bytes(), SourceFormat::BoundaryTxt, &one).unwrap_err();
    assert!(e.0[0].message.contains("地块数超过上限1"));
}

#[test]
fn classified_attribute() {
    for (value, classified) in [
        ("秘密", true),
        ("无", false),
        ("公开", false),
        ("机密", true),
    ] {
        let text = domain_example().replace("精度=0.001", &format!("精度=0.001\n密级={value}"));
        assert_eq!(parse_txt(&text).meta.classified, classified, "{value}");
    }
    let text = domain_example().replace("精度=0.001", "精度=0.001\n涉密=是");
    assert!(parse_txt(&text).meta.classified);
}

#[test]
fn twenty_eight_character_number_is_a_unit_code() {
    let code = "340121261006GB00014W00000000";
    let text = domain_example().replace("D001", code);
    assert_eq!(parse_txt(&text).parcels[0].unit_code.as_deref(), Some(code));
    assert_eq!(parse_txt(&domain_example()).parcels[0].unit_code, None);
}

#[test]
fn problems_are_capped() {
    let mut text = String::from("[地块坐标]\n");
    for _ in 0..500 {
        text.push_str("garbage\n");
    }
    let e = parse_package(
        text.as_bytes(),
        SourceFormat::BoundaryTxt,
        &ParseOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.0.len(), ow_survey::MAX_PROBLEMS + 1);
    assert!(e.0.last().unwrap().message.contains("另有300处"));
}
