//! The parsers never panic: random bytes and mutations of valid files, in both formats. A small
//! xorshift generator keeps the runs reproducible without a dependency.

mod common;

use common::*;
use ow_survey::{CheckConfig, ParseOptions, SourceFormat, check_package, parse_package};

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const PIECES: &[&[u8]] = &[
    b",",
    "，".as_bytes(),
    b"\n",
    b"\r\n",
    b"@",
    b"[",
    b"]",
    b"=",
    b"-",
    b".",
    b"1e308",
    b"NaN",
    b"0",
    b"38",
    b"99999999999",
    b"J1",
    "[地块坐标]".as_bytes(),
    "[属性描述]".as_bytes(),
    b"\xff",
    b"\xef\xbb\xbf",
    b"{",
    b"}",
    b"\"",
    b"null",
    b"[[[",
    b"]]]",
];

fn mutate(rng: &mut XorShift, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..=rng.below(8) {
        match rng.below(4) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                let n = rng.below(v.len() - i + 1).min(32);
                v.drain(i..i + n);
            }
            _ => {
                let i = rng.below(v.len() + 1);
                let piece = PIECES[rng.below(PIECES.len())];
                v.splice(i..i, piece.iter().copied());
            }
        }
    }
    v
}

fn exercise(bytes: &[u8], format: SourceFormat) {
    if let Ok(pkg) = parse_package(bytes, format, &ParseOptions::default()) {
        // Whatever parses can be checked and exported.
        let _ = check_package(&pkg, &CheckConfig::default());
        let parcels: Vec<_> = pkg.parcels.iter().collect();
        let _ = ow_survey::to_geojson(&parcels, pkg.meta.zone);
    }
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let outer = rect(3_380_000.0, 500_000.0, 100.0, 100.0);
    let hole = rect(3_380_040.0, 500_040.0, 20.0, 20.0);
    let txt = format!(
        "{}{}",
        domain_example(),
        parcel_txt("D002", "0.9600", &[&outer, &hole])
    );
    let gbk = encoding_rs::GBK.encode(&txt).0.into_owned();
    let geojson = serde_json::json!({"type": "FeatureCollection", "zone": 38, "features": [
        {"type": "Feature", "properties": {"kind": "parcel", "number": "D1", "declared_area_m2": 5000},
         "geometry": {"type": "Polygon", "coordinates": gj_rings(&[gj_rect(38_500_000.0, 3_380_000.0, 100.0, 50.0)])}},
        {"type": "Feature", "properties": {"kind": "building", "number": "F1", "parcel": "D1"},
         "geometry": {"type": "Polygon", "coordinates": gj_rings(&[gj_rect(38_500_010.0, 3_380_010.0, 10.0, 10.0)])}}
    ]})
    .to_string();
    let mut parsed_ok = 0;
    for round in 0..3_000 {
        let base: &[u8] = match round % 3 {
            0 => txt.as_bytes(),
            1 => &gbk,
            _ => geojson.as_bytes(),
        };
        let bytes = mutate(&mut rng, base);
        exercise(&bytes, SourceFormat::BoundaryTxt);
        exercise(&bytes, SourceFormat::GeoJson);
        if parse_package(&bytes, SourceFormat::BoundaryTxt, &ParseOptions::default()).is_ok() {
            parsed_ok += 1;
        }
        let random: Vec<u8> = (0..rng.below(256)).map(|_| rng.next() as u8).collect();
        exercise(&random, SourceFormat::BoundaryTxt);
        exercise(&random, SourceFormat::GeoJson);
    }
    // The mutations are small enough that some files still parse: the loop reaches the checks.
    assert!(parsed_ok > 0);
}

#[test]
fn degenerate_geometries_are_checked_without_panic() {
    let collinear = [
        (3_380_000.0, 500_000.0),
        (3_380_000.0, 500_010.0),
        (3_380_000.0, 500_020.0),
    ];
    let same = [(3_380_000.0, 500_000.0); 4];
    for ring in [&collinear[..], &same[..]] {
        let text = format!(
            "{ATTRS_38}[地块坐标]\n{}",
            parcel_txt("D1", "0.0001", &[ring])
        );
        exercise(text.as_bytes(), SourceFormat::BoundaryTxt);
    }
}

/// A parcel of 50 000 points (a circle of radius 1 km) is parsed and checked in one pass; the
/// ring check is a sweep, not a comparison of every line with every other.
#[test]
fn large_ring_is_checked() {
    let n = 50_000;
    let ring: Vec<(f64, f64)> = (0..n)
        .map(|i| {
            let a = i as f64 / n as f64 * std::f64::consts::TAU;
            (
                3_380_000.0 + 1_000.0 * a.sin(),
                500_000.0 + 1_000.0 * a.cos(),
            )
        })
        .collect();
    let area = std::f64::consts::PI * 1_000_000.0;
    let text = format!(
        "{ATTRS_38}[地块坐标]\n{}",
        parcel_txt("D1", &format!("{:.4}", area / 10_000.0), &[&ring])
    );
    let pkg = parse_txt(&text);
    assert_eq!(pkg.parcels[0].rings[0].points.len(), n);
    let findings = check_package(&pkg, &CheckConfig::default());
    assert_eq!(findings, Vec::new());
}
