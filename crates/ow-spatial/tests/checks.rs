//! The overlap, gap and near checks against a small index of hand-made parcels.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use geo::{Area, Coord, LineString, MultiPolygon, Polygon, Rotate};
use ow_spatial::{Gap, ParcelIndex, SpatialError, Tolerance};

/// A polygon through the given corners (closed here).
fn poly(points: &[(f64, f64)]) -> MultiPolygon<f64> {
    let mut ring: Vec<Coord<f64>> = points.iter().map(|&(x, y)| Coord { x, y }).collect();
    ring.push(ring[0]);
    MultiPolygon(vec![Polygon::new(LineString(ring), vec![])])
}

fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> MultiPolygon<f64> {
    poly(&[(x0, y0), (x1, y0), (x1, y1), (x0, y1)])
}

fn index(parcels: Vec<(i64, MultiPolygon<f64>)>) -> ParcelIndex {
    ParcelIndex::bulk_load(parcels)
}

fn tol() -> Tolerance {
    Tolerance::default()
}

/// A rectangle whose east edge at `x1` is re-surveyed as a zig-zag of ±`noise` every 10 m.
fn noisy_east_edge(x0: f64, x1: f64, height: f64, noise: f64) -> MultiPolygon<f64> {
    let mut pts = vec![(x0, 0.0)];
    let steps = (height / 10.0) as usize;
    for i in 0..=steps {
        let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
        pts.push((x1 + sign * noise, i as f64 * 10.0));
    }
    pts.push((x0, height));
    poly(&pts)
}

#[test]
fn a_clear_overlap_is_found_with_its_area() {
    let idx = index(vec![
        (1, rect(0.0, 0.0, 20.0, 20.0)),
        (2, rect(50.0, 0.0, 70.0, 20.0)),
    ]);
    let found = idx.overlaps(&rect(10.0, 5.0, 30.0, 25.0), &tol());
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].parcel, 1);
    assert!(
        (found[0].area_m2 - 150.0).abs() < 1e-6,
        "{}",
        found[0].area_m2
    );
    assert!(
        (found[0].width_m - 10.0).abs() < 1e-6,
        "{}",
        found[0].width_m
    );
    assert!((found[0].region.unsigned_area() - 150.0).abs() < 1e-6);
}

#[test]
fn a_shared_edge_is_not_an_overlap() {
    let idx = index(vec![(1, rect(0.0, 0.0, 20.0, 20.0))]);
    assert!(
        idx.overlaps(&rect(20.0, 0.0, 40.0, 20.0), &tol())
            .is_empty()
    );
    // Touching at a corner only.
    assert!(
        idx.overlaps(&rect(20.0, 20.0, 40.0, 40.0), &tol())
            .is_empty()
    );
}

#[test]
fn a_two_millimetre_resurvey_sliver_is_not_an_overlap() {
    // 100 m of shared boundary re-surveyed ±2 mm: the pieces add up to more than the area
    // tolerance, but each is 2 mm wide.
    let idx = index(vec![(1, rect(20.0, 0.0, 40.0, 100.0))]);
    let candidate = noisy_east_edge(0.0, 20.0, 100.0, 0.002);
    assert!(idx.overlaps(&candidate, &tol()).is_empty());
    // The same, turned 30° so that the envelopes overlap widely and the boolean operation runs.
    let centre = geo::Point::new(0.0, 0.0);
    let rotated = index(vec![(
        1,
        rect(20.0, 0.0, 40.0, 100.0).rotate_around_point(30.0, centre),
    )]);
    let turned = candidate.rotate_around_point(30.0, centre);
    assert!(rotated.overlaps(&turned, &tol()).is_empty());
    // The check can fail: with a tolerance below 2 mm the same sliver is reported.
    let strict = Tolerance {
        sliver_area_m2: 0.0,
        sliver_width_m: 0.0001,
        ..tol()
    };
    assert!(!rotated.overlaps(&turned, &strict).is_empty());
}

#[test]
fn a_five_metre_overlap_is_an_overlap() {
    let idx = index(vec![(1, rect(20.0, 0.0, 40.0, 100.0))]);
    let found = idx.overlaps(&rect(0.0, 0.0, 25.0, 100.0), &tol());
    assert_eq!(found.len(), 1);
    assert!((found[0].area_m2 - 500.0).abs() < 1e-6);
    assert!(
        (found[0].width_m - 5.0).abs() < 1e-6,
        "{}",
        found[0].width_m
    );
    // Turned 30°: same area and width.
    let c = geo::Point::new(0.0, 0.0);
    let idx = index(vec![(
        1,
        rect(20.0, 0.0, 40.0, 100.0).rotate_around_point(30.0, c),
    )]);
    let found = idx.overlaps(
        &rect(0.0, 0.0, 25.0, 100.0).rotate_around_point(30.0, c),
        &tol(),
    );
    assert_eq!(found.len(), 1);
    assert!(
        (found[0].area_m2 - 500.0).abs() < 1e-3,
        "{}",
        found[0].area_m2
    );
    assert!((found[0].width_m - 5.0).abs() < 1e-3);
}

#[test]
fn a_candidate_inside_the_hole_of_an_existing_parcel_does_not_overlap_it() {
    let outer = rect(0.0, 0.0, 100.0, 100.0).0.remove(0).exterior().clone();
    let hole = rect(40.0, 40.0, 60.0, 60.0).0.remove(0).exterior().clone();
    let courtyard_house = MultiPolygon(vec![Polygon::new(outer, vec![hole])]);
    let idx = index(vec![(1, courtyard_house)]);
    assert!(
        idx.overlaps(&rect(41.0, 41.0, 59.0, 59.0), &tol())
            .is_empty()
    );
    assert!(
        idx.overlaps(&rect(40.0, 40.0, 60.0, 60.0), &tol())
            .is_empty()
    );
    // Reaching out of the hole by 2 m is an overlap of 2 × 20 m.
    let found = idx.overlaps(&rect(40.0, 40.0, 62.0, 60.0), &tol());
    assert_eq!(found.len(), 1);
    assert!((found[0].area_m2 - 40.0).abs() < 1e-6);
}

#[test]
fn overlaps_are_sorted_by_area() {
    let idx = index(vec![
        (1, rect(0.0, 0.0, 10.0, 10.0)),
        (2, rect(10.0, 0.0, 20.0, 10.0)),
    ]);
    let found = idx.overlaps(&rect(2.0, 0.0, 18.5, 10.0), &tol());
    let ids: Vec<i64> = found.iter().map(|o| o.parcel).collect();
    assert_eq!(ids, [2, 1]);
}

fn neighbour_east() -> ParcelIndex {
    index(vec![(7, rect(20.0, 0.0, 40.0, 20.0))])
}

#[test]
fn an_exact_shared_edge_has_no_gap() {
    let got = neighbour_east()
        .gap_to(&rect(0.0, 0.0, 20.0, 20.0), 7, &tol())
        .unwrap();
    assert_eq!(got, None);
    // Clockwise candidate: the same.
    let cw = poly(&[(0.0, 0.0), (0.0, 20.0), (20.0, 20.0), (20.0, 0.0)]);
    assert_eq!(neighbour_east().gap_to(&cw, 7, &tol()).unwrap(), None);
}

#[test]
fn a_resurveyed_shared_edge_has_no_gap() {
    let idx = index(vec![(7, rect(20.0, 0.0, 40.0, 100.0))]);
    let candidate = noisy_east_edge(0.0, 20.0, 100.0, 0.002);
    assert_eq!(idx.gap_to(&candidate, 7, &tol()).unwrap(), None);
}

#[test]
fn a_thirty_centimetre_gap_is_reported() {
    let gap = neighbour_east()
        .gap_to(&rect(0.0, 0.0, 19.7, 20.0), 7, &tol())
        .unwrap()
        .expect("a gap");
    assert_eq!(gap.neighbour, 7);
    assert!((gap.max_gap_m - 0.3).abs() < 1e-6, "{gap:?}");
    assert!((gap.length_m - 20.0).abs() < 0.11, "{gap:?}");
    assert!((gap.at.x - 19.7).abs() < 1e-9);
    assert!((gap.at.y - 10.0).abs() < 0.2, "marked mid-edge: {gap:?}");
}

#[test]
fn a_partly_shared_edge_is_no_gap() {
    // The candidate is taller than its neighbour: only part of its east edge faces it.
    let got = neighbour_east()
        .gap_to(&rect(0.0, -10.0, 20.0, 35.0), 7, &tol())
        .unwrap();
    assert_eq!(got, None);
}

#[test]
fn a_half_gapped_edge_reports_the_gapped_length() {
    // East edge: y 0–10 on the neighbour, y 10–20 set back 0.3 m.
    let candidate = poly(&[
        (0.0, 0.0),
        (20.0, 0.0),
        (20.0, 10.0),
        (19.7, 10.0),
        (19.7, 20.0),
        (0.0, 20.0),
    ]);
    let gap = neighbour_east()
        .gap_to(&candidate, 7, &tol())
        .unwrap()
        .expect("a gap");
    assert!((gap.max_gap_m - 0.3).abs() < 1e-6, "{gap:?}");
    assert!((gap.length_m - 10.0).abs() < 0.25, "{gap:?}");
    assert!((gap.at.y - 15.0).abs() < 0.2, "{gap:?}");
}

#[test]
fn a_candidate_reaching_into_its_neighbour_has_no_gap() {
    // 0.3 m into the neighbour: an overlap (for `overlaps`), not a gap.
    let got = neighbour_east()
        .gap_to(&rect(0.0, 0.0, 20.3, 20.0), 7, &tol())
        .unwrap();
    assert_eq!(got, None);
}

#[test]
fn a_neighbour_out_of_reach_is_a_gap_with_the_distance() {
    let Gap {
        max_gap_m,
        length_m,
        at,
        ..
    } = neighbour_east()
        .gap_to(&rect(0.0, 0.0, 15.0, 20.0), 7, &tol())
        .unwrap()
        .expect("a gap");
    assert!((max_gap_m - 5.0).abs() < 1e-9);
    assert_eq!(length_m, 0.0);
    assert!((at.x - 15.0).abs() < 1e-9);
}

#[test]
fn an_unknown_neighbour_is_an_error() {
    let err = neighbour_east()
        .gap_to(&rect(0.0, 0.0, 20.0, 20.0), 8, &tol())
        .unwrap_err();
    assert_eq!(err, SpatialError::UnknownParcel(8));
    assert!(err.to_string().contains('8'));
}

#[test]
fn near_finds_parcels_within_the_distance_nearest_first() {
    let idx = index(vec![
        (1, rect(20.0, 0.0, 40.0, 20.0)),  // touching
        (2, rect(-13.0, 0.0, -3.0, 20.0)), // 3 m away
        (3, rect(0.0, 28.0, 20.0, 40.0)),  // 8 m away
        // Its envelope is within 5 m of the candidate's, the triangle itself is not.
        (4, poly(&[(24.0, 24.0), (40.0, 24.0), (40.0, 40.0)])),
    ]);
    assert_eq!(idx.near(&rect(0.0, 0.0, 20.0, 20.0), 5.0), [1, 2]);
    assert_eq!(idx.near(&rect(0.0, 0.0, 20.0, 20.0), 10.0), [1, 2, 4, 3]); // the triangle is 5.66 m away
}

#[test]
fn edits_keep_the_checks_current() {
    let mut idx = neighbour_east();
    let candidate = rect(10.0, 0.0, 30.0, 20.0);
    assert_eq!(idx.overlaps(&candidate, &tol()).len(), 1);
    idx.insert(7, rect(100.0, 0.0, 120.0, 20.0)); // the neighbour re-surveyed far away
    assert!(idx.overlaps(&candidate, &tol()).is_empty());
    idx.insert(8, rect(25.0, 0.0, 45.0, 20.0));
    assert_eq!(idx.overlaps(&candidate, &tol())[0].parcel, 8);
    assert!(idx.remove(8));
    assert!(idx.overlaps(&candidate, &tol()).is_empty());
}

#[test]
fn the_resurveyed_parcel_itself_can_be_left_out() {
    let idx = index(vec![
        (1, rect(0.0, 0.0, 20.0, 20.0)),
        (2, rect(20.0, 0.0, 40.0, 20.0)),
    ]);
    let resurvey = rect(0.0, 0.0, 21.0, 20.0); // 1 m into parcel 2
    let all: Vec<i64> = idx
        .overlaps(&resurvey, &tol())
        .iter()
        .map(|o| o.parcel)
        .collect();
    assert_eq!(all, [1, 2]);
    let others = idx.overlaps_excluding(&resurvey, &tol(), &[1]);
    assert_eq!(others.len(), 1);
    assert_eq!(others[0].parcel, 2);
    assert!((others[0].area_m2 - 20.0).abs() < 1e-6);
}

#[test]
fn a_candidate_with_a_bad_coordinate_is_refused_not_checked() {
    let mut bad = rect(0.0, 0.0, 30.0, 20.0);
    bad.0[0].exterior_mut(|r| r.0[2].y = f64::INFINITY);
    assert_eq!(
        ow_spatial::check_finite(&bad),
        Err(SpatialError::NonFinite { index: 3 })
    );
    let idx = neighbour_east();
    assert!(idx.overlaps(&bad, &tol()).is_empty());
    assert_eq!(
        idx.gap_to(&bad, 7, &tol()),
        Err(SpatialError::NonFinite { index: 3 })
    );
    assert!(idx.near(&bad, 5.0).is_empty());
    assert_eq!(
        idx.gap_to(&MultiPolygon(vec![]), 7, &tol()),
        Err(SpatialError::Empty)
    );
}
