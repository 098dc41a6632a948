//! The whole check suite of a survey package as the intranet runs it on import
//! (`cargo bench -p ow-intranet --bench checks`): a 1,000-parcel 界址点坐标 TXT package is parsed
//! and checked on its own (`ow-survey`), then against an index of 1,000,000 existing parcels
//! (`ow-spatial` overlaps), beside a reference measured in the same run: the index's envelope
//! query alone for the same 1,000 parcels. `docs/benchmarks.md` records one run.
//!
//! `OW_BENCH_EXISTING` sets a smaller city for a quick run (the recorded figures are for the
//! default), `OW_BENCH_ROUNDS` the number of rounds (the median is printed).

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use geo::{BoundingRect, LineString, MultiPolygon, Polygon, Rect};
use ow_intranet::checks::{self, ParcelIndex, Tolerance};
use ow_survey::CheckConfig;

/// Existing parcels: a square city of this many, 20 m × 25 m plots in blocks with streets.
const DEFAULT_EXISTING: usize = 1_000_000;
/// Parcels in the package.
const PACKAGE: usize = 1_000;
/// The 3-degree zone the coordinates lie in (the TXT carries it as the easting's prefix).
const ZONE: u32 = 39;
const ORIGIN: (f64, f64) = (420_000.0, 4_000_000.0);

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The south-west corner of plot (i, j): 20 m × 25 m plots, blocks of 4 × 5, 12 m streets.
fn plot_origin(i: usize, j: usize) -> (f64, f64) {
    (
        ORIGIN.0 + i as f64 * 20.0 + (i / 4) as f64 * 12.0,
        ORIGIN.1 + j as f64 * 25.0 + (j / 5) as f64 * 12.0,
    )
}

fn rect(x: f64, y: f64, w: f64, h: f64) -> MultiPolygon<f64> {
    MultiPolygon::new(vec![Polygon::new(
        LineString::from(vec![(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)]),
        vec![],
    )])
}

/// The package: 1,000 new parcels of 6 points each. Nine in ten lie on free land east of the
/// city; one in ten is drawn over an existing plot, shifted by 3 m, so the overlap check has
/// real work and real findings.
fn package(side: usize) -> (String, usize) {
    let mut txt = String::from(
        "[属性描述]\n格式版本号=1.01版本\n坐标系=2000国家大地坐标系\n几度分带=3\n投影类型=高斯克吕格\n\
         计量单位=米\n带号=39\n精度=0.001\n[地块坐标]\n",
    );
    let east = plot_origin(side, 0).0 + 200.0;
    let mut overlapping = 0;
    for k in 0..PACKAGE {
        let (x, y) = if k % 10 == 0 {
            overlapping += 1;
            let (px, py) = plot_origin((k * 7) % side, (k * 13) % side);
            (px + 3.0, py + 3.0)
        } else {
            (
                east + (k % 40) as f64 * 30.0,
                ORIGIN.1 + (k / 40) as f64 * 40.0,
            )
        };
        // A 20 m × 25 m plot with two extra boundary points on its long sides.
        let points = [
            (x, y),
            (x + 20.0, y),
            (x + 20.0, y + 12.5),
            (x + 20.0, y + 25.0),
            (x, y + 25.0),
            (x, y + 12.5),
        ];
        let _ = writeln!(txt, "7,0.0500,N{k:04},新建地块{k},面,,070101,0701,@");
        for (n, (px, py)) in points.iter().chain(points.first()).enumerate() {
            let name = if n == points.len() { 1 } else { n + 1 };
            // X = northing, Y = easting with the zone prefix.
            let _ = writeln!(txt, "J{name},1,{py:.3},{:.3}", f64::from(ZONE) * 1e6 + px);
        }
    }
    (txt, overlapping)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

fn main() {
    let existing = env_or("OW_BENCH_EXISTING", DEFAULT_EXISTING).max(100);
    let rounds = env_or("OW_BENCH_ROUNDS", 5).max(1);
    let side = (existing as f64).sqrt().ceil() as usize;
    println!(
        "intranet check suite: {PACKAGE}-parcel TXT package against {} existing parcels",
        side * side
    );
    println!("load average before: {}", loadavg());

    let started = Instant::now();
    let mut parcels = Vec::with_capacity(side * side);
    for i in 0..side {
        for j in 0..side {
            let (x, y) = plot_origin(i, j);
            parcels.push(((i * side + j) as i64, rect(x + 0.05, y + 0.05, 19.9, 24.9)));
        }
    }
    let index = ParcelIndex::bulk_load(parcels);
    println!(
        "index of existing parcels built in {:.2} s (setup, not measured below)",
        started.elapsed().as_secs_f64()
    );

    let (txt, overlapping) = package(side);
    let bytes = txt.as_bytes();
    let cfg = CheckConfig {
        expected_zone: Some(ZONE as u8),
        ..CheckConfig::default()
    };
    let tol = Tolerance::default();
    let neighbours: HashMap<String, i64> = HashMap::new();

    let mut reference = Vec::new();
    let mut parse_check = Vec::new();
    let mut spatial = Vec::new();
    let mut suite = Vec::new();
    let mut hits = 0;
    let mut findings: HashMap<String, usize> = HashMap::new();
    for _ in 0..rounds {
        let t = Instant::now();
        let checked = checks::parse_and_check(bytes, "boundary-txt", &cfg);
        let after_parse = t.elapsed();
        let found = checks::spatial(&checked, &index, &neighbours, &tol);
        let total = t.elapsed();
        parse_check.push(after_parse);
        spatial.push(total - after_parse);
        suite.push(total);
        hits = found.len();
        findings.clear();
        for f in &checked.findings {
            *findings.entry(f.code.clone()).or_default() += 1;
        }
        assert_eq!(checked.parcels.len(), PACKAGE, "the package parses whole");

        // The reference: the envelope query alone for the same parcels.
        let envelopes: Vec<Rect<f64>> = checked
            .parcels
            .iter()
            .map(|p| p.geometry.bounding_rect().unwrap())
            .collect();
        let t = Instant::now();
        let mut candidates = 0;
        for e in &envelopes {
            candidates += index.envelope_query(e).len();
        }
        reference.push(t.elapsed());
        std::hint::black_box(candidates);
    }
    let (r, p, s, w) = (
        median(reference),
        median(parse_check),
        median(spatial),
        median(suite),
    );
    println!("median of {rounds} rounds:");
    println!(
        "  reference: envelope query alone, {PACKAGE} parcels   {:>9.2} ms",
        ms(r)
    );
    println!(
        "  parse + intrinsic checks (ow-survey)            {:>9.2} ms",
        ms(p)
    );
    println!(
        "  overlaps against the index (ow-spatial)         {:>9.2} ms  ({:.1}× the reference)",
        ms(s),
        s.as_secs_f64() / r.as_secs_f64()
    );
    println!(
        "  whole suite                                     {:>9.2} ms  ({:.1}× the reference; target < 500 ms)",
        ms(w),
        w.as_secs_f64() / r.as_secs_f64()
    );
    let mut codes: Vec<_> = findings.into_iter().collect();
    codes.sort();
    println!(
        "  {overlapping} parcels drawn over existing plots → {hits} overlap hits; intrinsic findings {codes:?}"
    );
    println!("load average after: {}", loadavg());
}
