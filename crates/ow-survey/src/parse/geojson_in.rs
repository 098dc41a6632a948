//! GeoJSON input in the profile of `docs/survey-format.md`: a FeatureCollection of Polygon or
//! MultiPolygon features with `kind` "parcel" or "building". JSON syntax and structure are read by
//! serde_json and the `geojson` crate; this module applies the profile.

use geojson::{FeatureCollection, GeometryValue, JsonObject, PolygonType};
use serde_json::Value;

use super::txt::SAME_POINT_M;
use super::{DefaultOrder, ParseErrors, ParseOptions, Problems, classified_value, place};
use crate::{
    BoundaryPoint, PackageMeta, SourceFormat, SurveyBuilding, SurveyPackage, SurveyParcel,
    SurveyRing,
};

const ADVICE_PROFILE: &str = "请按《权籍调查成果GeoJSON格式》（要素类型kind为parcel或building，几何为Polygon）改正后重新上传";

pub(super) fn parse(bytes: &[u8], opts: &ParseOptions) -> Result<SurveyPackage, ParseErrors> {
    let mut problems = Problems::default();
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    // Every position opens with '[', so this bounds what parsing would allocate before it starts
    // (rings, polygons and brackets in strings make it an over-count; hence the slack).
    let brackets = body.iter().filter(|&&b| b == b'[').count();
    if brackets > opts.max_points.saturating_mul(2).saturating_add(10_000) {
        problems.add(
            None,
            format!("坐标数超过上限{}个", opts.max_points),
            "请把成果拆分为多个文件分别提交，或到登记窗口现场提交",
        );
        return problems.into_err();
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            problems.add(
                u32::try_from(e.line()).ok().filter(|&l| l > 0),
                format!("文件不是有效的JSON（第{}列附近）", e.column()),
                "请确认文件是UTF-8编码的GeoJSON，用测绘软件重新导出后上传",
            );
            return problems.into_err();
        }
    };
    let Value::Object(top) = &value else {
        problems.add(None, "GeoJSON顶层不是对象", ADVICE_PROFILE);
        return problems.into_err();
    };
    if top.get("type").and_then(Value::as_str) != Some("FeatureCollection") {
        problems.add(
            None,
            "GeoJSON顶层类型不是FeatureCollection",
            "请把所有地块和房屋放在一个FeatureCollection中",
        );
        return problems.into_err();
    }
    let mut meta = PackageMeta::default();
    read_meta(top, &mut meta, &mut problems);
    let collection: FeatureCollection = match serde_json::from_value(value) {
        Ok(c) => c,
        Err(e) => {
            let detail: String = e.to_string().chars().take(200).collect();
            problems.add(
                None,
                format!("GeoJSON结构不符合规范：{detail}"),
                ADVICE_PROFILE,
            );
            return problems.into_err();
        }
    };
    if collection.features.len() > opts.max_parcels {
        problems.add(
            None,
            format!(
                "要素数{}超过上限{}个",
                collection.features.len(),
                opts.max_parcels
            ),
            "请把成果拆分为多个文件分别提交，或到登记窗口现场提交",
        );
        return problems.into_err();
    }
    let total_points: usize = collection
        .features
        .iter()
        .filter_map(|f| f.geometry.as_ref())
        .map(|g| match &g.value {
            GeometryValue::Polygon { coordinates } => coordinates.iter().map(Vec::len).sum(),
            GeometryValue::MultiPolygon { coordinates } => coordinates
                .iter()
                .flat_map(|p| p.iter().map(Vec::len))
                .sum(),
            _ => 0,
        })
        .sum();
    if total_points > opts.max_points {
        problems.add(
            None,
            format!("界址点总数{total_points}超过上限{}个", opts.max_points),
            "请把成果拆分为多个文件分别提交，或到登记窗口现场提交",
        );
        return problems.into_err();
    }

    let mut parcels = Vec::new();
    let mut buildings = Vec::new();
    let mut prefixes: Vec<(usize, u8)> = Vec::new();
    for (i, feature) in collection.features.iter().enumerate() {
        let n = i + 1;
        let empty = JsonObject::new();
        let props = feature.properties.as_ref().unwrap_or(&empty);
        let kind = props.get("kind").and_then(Value::as_str).unwrap_or("");
        let number = string_prop(props, "number");
        let label = match &number {
            Some(num) => format!("第{n}个要素（编号{}）", clip(num)),
            None => format!("第{n}个要素"),
        };
        let Some(number) = number else {
            problems.add(None, format!("{label}缺少编号属性number"), ADVICE_PROFILE);
            continue;
        };
        let polygon = match feature.geometry.as_ref().map(|g| &g.value) {
            Some(GeometryValue::Polygon { coordinates }) => coordinates,
            Some(GeometryValue::MultiPolygon { coordinates }) if coordinates.len() == 1 => {
                &coordinates[0]
            }
            Some(GeometryValue::MultiPolygon { coordinates }) => {
                problems.add(
                    None,
                    format!("{label}是含{}个多边形的MultiPolygon", coordinates.len()),
                    "一个地块或房屋只能有一个外圈；请拆分为多个要素，各有自己的编号",
                );
                continue;
            }
            Some(other) => {
                problems.add(
                    None,
                    format!("{label}的几何类型是{}，不是面", other.type_name()),
                    "地块和房屋的几何应为Polygon；请改正后重新上传",
                );
                continue;
            }
            None => {
                problems.add(None, format!("{label}没有几何"), ADVICE_PROFILE);
                continue;
            }
        };
        let Some(rings) = rings(polygon, &label, n, &mut problems, &mut prefixes) else {
            continue;
        };
        match kind {
            "parcel" => {
                let declared_area_m2 = match props.get("declared_area_m2") {
                    None | Some(Value::Null) => None,
                    Some(v) => match v.as_f64() {
                        Some(a) if a.is_finite() && a >= 0.0 => Some(a),
                        _ => {
                            problems.add(
                                None,
                                format!("{label}的declared_area_m2不是非负数"),
                                "declared_area_m2为申报面积，单位平方米，如5000.00",
                            );
                            continue;
                        }
                    },
                };
                let neighbours = match props.get("neighbours") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(a)) if a.iter().all(Value::is_string) => a
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect(),
                    Some(_) => {
                        problems.add(
                            None,
                            format!("{label}的neighbours不是字符串数组"),
                            "neighbours列出共用界址线的相邻宗地代码，如[\"…GB00001\"]",
                        );
                        continue;
                    }
                };
                parcels.push(SurveyParcel {
                    number,
                    name: string_prop(props, "name").unwrap_or_default(),
                    declared_area_m2,
                    use_code: string_prop(props, "use_code").unwrap_or_default(),
                    land_class: string_prop(props, "land_class").unwrap_or_default(),
                    shape: "面".to_owned(),
                    rings,
                    header_line: None,
                    neighbours,
                    unit_code: string_prop(props, "unit_code"),
                });
            }
            "building" => {
                let Some(parcel_number) = string_prop(props, "parcel") else {
                    problems.add(
                        None,
                        format!("{label}是房屋，但缺少所在地块编号属性parcel"),
                        "请为房屋填写parcel属性，值为其所在地块的number",
                    );
                    continue;
                };
                buildings.push(SurveyBuilding {
                    number,
                    parcel_number,
                    rings,
                });
            }
            other => problems.add(
                None,
                format!("{label}的类型kind=“{}”无法识别", clip(other)),
                "kind应为parcel（地块）或building（房屋）",
            ),
        }
    }
    if parcels.is_empty() && problems.is_empty() {
        problems.add(
            None,
            "GeoJSON中没有地块（kind为parcel的要素）",
            "请确认导出时包含了地块",
        );
    }
    for &(feature_no, zone) in &prefixes {
        match meta.zone {
            None => meta.zone = Some(zone),
            Some(z) if z != zone => problems.add(
                None,
                format!("第{feature_no}个要素的横坐标带号前缀{zone}与带号{z}不一致"),
                "同一文件的坐标应在同一投影带；请核对坐标或顶层zone",
            ),
            Some(_) => {}
        }
    }
    problems.into_result(SurveyPackage {
        meta,
        parcels,
        buildings,
        encoding: "UTF-8",
        format: SourceFormat::GeoJson,
    })
}

fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

fn string_prop(props: &JsonObject, key: &str) -> Option<String> {
    match props.get(key)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn read_meta(top: &JsonObject, meta: &mut PackageMeta, problems: &mut Problems) {
    let s = |k: &str| string_prop(top, k);
    meta.format_version = s("format_version");
    meta.producer = s("producer");
    meta.produced_on = s("produced_on");
    meta.coordinate_system = s("coordinate_system");
    meta.unit = s("unit");
    meta.precision = s("precision");
    meta.classified = match top.get("classified") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::String(v)) => classified_value(v),
        Some(_) => true,
    };
    match top.get("zone") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_u64() {
            Some(z @ 1..=60) => meta.zone = u8::try_from(z).ok(),
            _ => problems.add(
                None,
                "顶层zone不是1到60之间的整数",
                "zone为坐标所在投影带的带号，如\"zone\": 38",
            ),
        },
    }
    match top.get("zone_width") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_u64() {
            Some(3) => meta.zone_width = Some(3),
            Some(6) => meta.zone_width = Some(6),
            _ => problems.add(None, "顶层zone_width不是3或6", "zone_width为分带宽度：3或6"),
        },
    }
}

/// Converts the rings of one polygon; `None` when a coordinate could not be read (reported).
fn rings(
    polygon: &PolygonType,
    label: &str,
    feature_no: usize,
    problems: &mut Problems,
    prefixes: &mut Vec<(usize, u8)>,
) -> Option<Vec<SurveyRing>> {
    if polygon.is_empty() {
        problems.add(None, format!("{label}的多边形没有坐标"), ADVICE_PROFILE);
        return None;
    }
    let mut out = Vec::with_capacity(polygon.len());
    let mut counter = 0usize;
    for (ring_idx, ring) in polygon.iter().enumerate() {
        let mut points = Vec::with_capacity(ring.len());
        for pos in ring {
            let s = pos.as_slice();
            if s.len() < 2 {
                problems.add(
                    None,
                    format!("{label}的坐标少于2个数"),
                    "每个坐标应为[横坐标, 纵坐标]",
                );
                return None;
            }
            let placed = match place(s[0], s[1], DefaultOrder::EastingFirst) {
                Ok(p) => p,
                Err(why) => {
                    problems.add(
                        None,
                        format!(
                            "{label}第{}圈的坐标[{}, {}]无法识别：{why}",
                            ring_idx + 1,
                            s[0],
                            s[1]
                        ),
                        "坐标应为[横坐标（东，可带带号前缀）, 纵坐标（北）]，单位米",
                    );
                    return None;
                }
            };
            if let Some(z) = placed.prefix_zone {
                prefixes.push((feature_no, z));
            }
            points.push(BoundaryPoint {
                name: String::new(),
                easting: placed.easting,
                northing: placed.northing,
                line: None,
            });
        }
        let closed = points.len() >= 2
            && match (points.first(), points.last()) {
                (Some(a), Some(b)) => {
                    (a.easting - b.easting).abs() <= SAME_POINT_M
                        && (a.northing - b.northing).abs() <= SAME_POINT_M
                }
                _ => false,
            };
        if closed {
            points.pop();
        }
        for p in &mut points {
            counter += 1;
            p.name = format!("J{counter}");
        }
        out.push(SurveyRing {
            ring_no: u32::try_from(ring_idx + 1).unwrap_or(u32::MAX),
            points,
            closed_in_source: closed,
        });
    }
    Some(out)
}
