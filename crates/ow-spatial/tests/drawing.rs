//! A surveyor's drawing built from the checks' findings: the overlap region and the gap point are
//! highlighted with their numbers, the neighbours come from `near`.
//!
//! Set `OW_SPATIAL_SVG_OUT=/some/file.svg` to keep the drawing for a look in a browser.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use geo::{Coord, LineString, MultiPolygon, Polygon};
use ow_spatial::svg::{BoundaryPoint, Drawing, Highlight, Neighbour, Shape, Subject, draw};
use ow_spatial::{ParcelIndex, Tolerance};

fn poly(points: &[(f64, f64)]) -> MultiPolygon<f64> {
    let mut ring: Vec<Coord<f64>> = points
        .iter()
        .map(|&(x, y)| Coord {
            x: 500_000.0 + x,
            y: 3_380_000.0 + y,
        })
        .collect();
    ring.push(ring[0]);
    MultiPolygon(vec![Polygon::new(LineString(ring), vec![])])
}

#[test]
fn findings_are_drawn_with_their_numbers() {
    let index = ParcelIndex::bulk_load(vec![
        (
            1,
            poly(&[(20.0, 0.0), (40.0, 0.0), (40.0, 25.0), (20.0, 25.0)]),
        ),
        (
            2,
            poly(&[(0.0, 25.0), (20.0, 25.0), (20.0, 50.0), (0.0, 50.0)]),
        ),
        (
            3,
            poly(&[(-20.0, 0.0), (-0.4, 0.0), (-0.4, 25.0), (-20.0, 25.0)]),
        ),
        (4, poly(&[(500.0, 500.0), (520.0, 500.0), (520.0, 520.0)])),
    ]);
    // Reaches 3 m into parcel 1 over its southern half; stands 0.4 m off parcel 3.
    let subject = poly(&[
        (0.0, 0.0),
        (23.0, 0.0),
        (23.0, 12.0),
        (20.0, 12.0),
        (20.0, 25.0),
        (0.0, 25.0),
    ]);
    let tol = Tolerance::default();
    let overlaps = index.overlaps(&subject, &tol);
    assert_eq!(overlaps.len(), 1);
    let gap = index.gap_to(&subject, 3, &tol).unwrap().expect("a gap");
    assert!((gap.max_gap_m - 0.4).abs() < 1e-6);

    let neighbours: Vec<Neighbour> = index
        .near(&subject, 10.0)
        .into_iter()
        .map(|id| Neighbour {
            label: format!("宗地 {id}"),
            geometry: index.get(id).unwrap(),
        })
        .collect();
    assert_eq!(neighbours.len(), 3, "the far triangle is not drawn");
    let drawing = Drawing {
        title: "宗地草图 320102001001GB00001".into(),
        subject: Subject {
            label: "320102001001GB00001".into(),
            points: BoundaryPoint::numbered(&subject),
            geometry: subject,
        },
        neighbours,
        highlights: vec![
            Highlight {
                number: 1,
                shape: Shape::Region(overlaps[0].region.clone()),
                note: format!("与宗地 1 重叠 {:.2} m²", overlaps[0].area_m2),
            },
            Highlight {
                number: 2,
                shape: Shape::Point(gap.at),
                note: format!("与宗地 3 间隙 {:.2} m", gap.max_gap_m),
            },
        ],
    };
    let svg = draw(&drawing);
    if let Ok(path) = std::env::var("OW_SPATIAL_SVG_OUT") {
        std::fs::write(path, &svg).unwrap();
    }
    for text in [
        "J1",
        "J6",
        "宗地 1",
        "宗地 3",
        "重叠 36.00 m²",
        "间隙 0.40 m",
        "> 1</text>",
    ] {
        let text = text.replace("> ", ">");
        assert!(svg.contains(&text), "{text} missing");
    }
    assert!(!svg.contains("J7"));
    assert!(!svg.contains("宗地 4"));
    assert!(svg.matches("vector-effect=\"non-scaling-stroke\"").count() >= 5);
}
