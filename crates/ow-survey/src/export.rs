//! GeoJSON export of parcels that QGIS (GDAL) places on the map: a FeatureCollection with the
//! legacy `crs` member naming the CGCS2000 Gauss-Krüger EPSG code of the zone.

use geojson::{Feature, FeatureCollection, Geometry, GeometryValue, JsonObject, Position};
use serde_json::{Value, json};

use crate::SurveyParcel;

/// The EPSG code of CGCS2000 Gauss-Krüger with the zone prefix in the easting: zones 25–45 are
/// 3-degree zones (EPSG:4513–4533), zones 13–23 are 6-degree zones (EPSG:4491–4501). The two
/// ranges do not overlap, so the zone number alone names the system. `None` for other zones.
pub fn epsg_for_zone(zone: u8) -> Option<u32> {
    match zone {
        25..=45 => Some(4513 + u32::from(zone - 25)),
        13..=23 => Some(4491 + u32::from(zone - 13)),
        _ => None,
    }
}

/// The parcels as a GeoJSON FeatureCollection.
///
/// With a zone that [`epsg_for_zone`] knows, eastings carry the zone prefix (`zone·1e6 + x`) and
/// the collection has `"crs": {"type": "name", "properties": {"name":
/// "urn:ogc:def:crs:EPSG::<code>"}}` (the pre-RFC 7946 member QGIS and GDAL honour; coordinates
/// stay [easting, northing], which GDAL reads in GIS order). Without one, coordinates are the
/// bare eastings and no `crs` is written (the map layer's system must be set by hand). Rings
/// are closed; properties are `地块编号`, `名称`, `面积` (computed, m², 2 decimals), `申报面积`
/// (m² or null) and `点号` (the point names, outer ring first).
pub fn to_geojson(parcels: &[&SurveyParcel], zone: Option<u8>) -> String {
    let epsg = zone.and_then(|z| epsg_for_zone(z).map(|code| (z, code)));
    let offset = epsg.map_or(0.0, |(z, _)| f64::from(z) * 1.0e6);
    let features = parcels.iter().map(|p| {
        let rings: Vec<Vec<Position>> = p
            .rings
            .iter()
            .map(|r| {
                let mut ring: Vec<Position> = r
                    .points
                    .iter()
                    .map(|pt| Position::from(vec![pt.easting + offset, pt.northing]))
                    .collect();
                if let Some(first) = ring.first().cloned() {
                    ring.push(first);
                }
                ring
            })
            .collect();
        let mut props = JsonObject::new();
        props.insert("地块编号".into(), Value::from(p.number.clone()));
        props.insert("名称".into(), Value::from(p.name.clone()));
        props.insert("面积".into(), json!((p.area_m2() * 100.0).round() / 100.0));
        props.insert(
            "申报面积".into(),
            p.declared_area_m2.map_or(Value::Null, Value::from),
        );
        props.insert(
            "点号".into(),
            Value::from(
                p.rings
                    .iter()
                    .flat_map(|r| r.points.iter().map(|pt| pt.name.clone()))
                    .collect::<Vec<_>>(),
            ),
        );
        Feature {
            bbox: None,
            geometry: Some(Geometry::new(GeometryValue::Polygon { coordinates: rings })),
            id: None,
            properties: Some(props),
            foreign_members: None,
        }
    });
    let mut collection = FeatureCollection::new(features);
    if let Some((_, code)) = epsg {
        let mut foreign = JsonObject::new();
        foreign.insert(
            "crs".into(),
            json!({"type": "name", "properties": {"name": format!("urn:ogc:def:crs:EPSG::{code}")}}),
        );
        collection.foreign_members = Some(foreign);
    }
    collection.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epsg_codes() {
        assert_eq!(epsg_for_zone(25), Some(4513));
        assert_eq!(epsg_for_zone(38), Some(4526));
        assert_eq!(epsg_for_zone(45), Some(4533));
        assert_eq!(epsg_for_zone(13), Some(4491));
        assert_eq!(epsg_for_zone(23), Some(4501));
        assert_eq!(epsg_for_zone(24), None);
        assert_eq!(epsg_for_zone(46), None);
    }
}
