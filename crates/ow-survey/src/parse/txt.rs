//! The 界址点坐标 exchange TXT (domain-facts §3.8): encoding detection, the `[属性描述]` and
//! `[地块坐标]` sections, parcel headers and point lines. Written by hand because no crate reads
//! this national exchange format.

use std::borrow::Cow;

use super::{DefaultOrder, ParseErrors, ParseOptions, Problems, classified_value, place};
use crate::{BoundaryPoint, PackageMeta, SourceFormat, SurveyPackage, SurveyParcel, SurveyRing};

/// Two coordinates closer than this (in each axis) are the same point: half the 1 mm precision
/// the format writes.
pub(crate) const SAME_POINT_M: f64 = 0.0005;

const ADVICE_REEXPORT: &str =
    "请用测绘软件重新导出界址点坐标文件，或按《界址点坐标交换格式》改正该行后重新上传";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    Attributes,
    Coordinates,
    Unknown,
}

struct PendingRing {
    ring_no: u32,
    points: Vec<BoundaryPoint>,
}

struct PendingParcel {
    parcel: SurveyParcel,
    declared_points: Option<u32>,
    rings: Vec<PendingRing>,
    lines: usize,
    ring_order_broken: bool,
}

/// Splits the bytes into decoded lines, reporting undecodable ones.
fn decode(bytes: &[u8], problems: &mut Problems) -> (Vec<(u32, String)>, &'static str) {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        problems.add(
            Some(1),
            "文件是UTF-16编码，无法读取",
            "请另存为UTF-8或GBK（ANSI）编码的文本文件后重新上传",
        );
        return (Vec::new(), "UTF-8");
    }
    let (body, bom) = match bytes.strip_prefix(b"\xEF\xBB\xBF") {
        Some(rest) => (rest, true),
        None => (bytes, false),
    };
    let utf8 = bom || std::str::from_utf8(body).is_ok();
    let mut lines = Vec::new();
    for (i, raw) in body.split(|&b| b == b'\n').enumerate() {
        let line_no = u32::try_from(i + 1).unwrap_or(u32::MAX);
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let text: Cow<'_, str> = if utf8 {
            match std::str::from_utf8(raw) {
                Ok(s) => Cow::Borrowed(s),
                Err(_) => {
                    problems.add(
                        Some(line_no),
                        "该行含有不是UTF-8编码的字节（文件开头有UTF-8标记）",
                        "请把整个文件统一另存为UTF-8或GBK编码后重新上传",
                    );
                    continue;
                }
            }
        } else {
            let (text, had_errors) = encoding_rs::GBK.decode_without_bom_handling(raw);
            if had_errors {
                problems.add(
                    Some(line_no),
                    "该行含有既不是UTF-8也不是GBK编码的字节",
                    "请把整个文件另存为UTF-8或GBK编码后重新上传",
                );
                continue;
            }
            text
        };
        lines.push((line_no, text.into_owned()));
    }
    (lines, if utf8 { "UTF-8" } else { "GBK" })
}

fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c.is_whitespace() || c == '\u{3000}' || c == '\u{feff}')
}

fn fields(line: &str) -> Vec<&str> {
    let mut f: Vec<&str> = line.split([',', '，']).map(trim).collect();
    while f.last().is_some_and(|s| s.is_empty()) {
        f.pop();
    }
    f
}

fn parse_f64(s: &str) -> Option<f64> {
    let v: f64 = s.parse().ok()?;
    v.is_finite().then_some(v)
}

fn opt(s: &str) -> Option<String> {
    let s = trim(s);
    (!s.is_empty()).then(|| s.to_owned())
}

pub(super) fn parse(bytes: &[u8], opts: &ParseOptions) -> Result<SurveyPackage, ParseErrors> {
    let mut problems = Problems::default();
    let (lines, encoding) = decode(bytes, &mut problems);
    let mut meta = PackageMeta::default();
    let mut section = Section::None;
    let mut seen_coordinates = false;
    let mut parcels: Vec<SurveyParcel> = Vec::new();
    let mut prefixes: Vec<(u32, u8)> = Vec::new();
    let mut current: Option<PendingParcel> = None;
    let mut total_points = 0usize;
    let mut header_zone_line: Option<u32> = None;

    for (line_no, text) in &lines {
        let line_no = *line_no;
        let line = trim(text);
        if line.is_empty() {
            continue;
        }
        if line.starts_with('[') && line.ends_with(']') {
            let name = trim(&line[1..line.len() - 1]);
            section = match name {
                "属性描述" => Section::Attributes,
                "地块坐标" => {
                    seen_coordinates = true;
                    Section::Coordinates
                }
                _ => {
                    problems.add(
                        Some(line_no),
                        format!("未知的节“{}”", clip(name)),
                        "界址点坐标文件只有[属性描述]和[地块坐标]两节；请删除该节或重新导出",
                    );
                    Section::Unknown
                }
            };
            continue;
        }
        match section {
            Section::None => problems.add(
                Some(line_no),
                "该行出现在[属性描述]或[地块坐标]节之前，无法识别",
                "文件应以[属性描述]开头；请删除该行或重新导出",
            ),
            Section::Unknown => {}
            Section::Attributes => {
                let Some((key, value)) = line.split_once(['=', '＝']) else {
                    problems.add(
                        Some(line_no),
                        "[属性描述]中的该行不是“名称=值”的形式",
                        ADVICE_REEXPORT,
                    );
                    continue;
                };
                let (key, value) = (trim(key), trim(value));
                attribute(
                    &mut meta,
                    key,
                    value,
                    line_no,
                    &mut problems,
                    &mut header_zone_line,
                );
            }
            Section::Coordinates => {
                let f = fields(line);
                if f.last() == Some(&"@") {
                    if let Some(done) = current.take() {
                        finish(done, &mut parcels, &mut problems);
                    }
                    if parcels.len() >= opts.max_parcels {
                        problems.add(
                            Some(line_no),
                            format!("地块数超过上限{}个", opts.max_parcels),
                            "请把成果拆分为多个文件分别提交，或到登记窗口现场提交",
                        );
                        return problems.into_err();
                    }
                    current = header(&f[..f.len() - 1], line_no, &mut problems);
                    if current.is_none() {
                        // Keep reading points into a placeholder so they are not each reported
                        // as belonging to no parcel.
                        current = Some(placeholder(line_no));
                    }
                    continue;
                }
                let Some(parcel) = current.as_mut() else {
                    problems.add(
                        Some(line_no),
                        "该行出现在第一个地块头行（以@结尾的行）之前",
                        "每个地块以“点数,面积,编号,名称,图形属性,图幅号,用途,地类编码,@”开头；请补上地块头行或删除该行",
                    );
                    continue;
                };
                total_points += 1;
                if total_points > opts.max_points {
                    problems.add(
                        Some(line_no),
                        format!("界址点总数超过上限{}个", opts.max_points),
                        "请把成果拆分为多个文件分别提交，或到登记窗口现场提交",
                    );
                    return problems.into_err();
                }
                parcel.lines += 1;
                point(parcel, &f, line_no, &mut problems, &mut prefixes);
            }
        }
    }
    if let Some(done) = current.take() {
        finish(done, &mut parcels, &mut problems);
    }
    if lines.iter().all(|(_, t)| trim(t).is_empty()) && problems.is_empty() {
        problems.add(None, "文件是空的", "请上传测绘单位提交的界址点坐标文件");
    } else if !seen_coordinates {
        problems.add(
            None,
            "文件中没有[地块坐标]节",
            "请确认上传的是界址点坐标文件（含[属性描述]和[地块坐标]两节）",
        );
    } else if parcels.is_empty() && problems.is_empty() {
        problems.add(
            None,
            "[地块坐标]节中没有地块",
            "请确认导出时选择了地块；每个地块以地块头行开头，后接界址点行",
        );
    }
    // The zone prefix of every easting must agree with 带号 (or, without it, with each other).
    for &(line_no, zone) in &prefixes {
        match meta.zone {
            None => meta.zone = Some(zone),
            Some(z) if z != zone => problems.add(
                Some(line_no),
                match header_zone_line {
                    Some(_) => format!("横坐标的带号前缀{zone}与[属性描述]中的带号={z}不一致"),
                    None => format!("横坐标的带号前缀{zone}与前面各点的带号{z}不一致"),
                },
                "同一文件的坐标应在同一投影带；请核对该点坐标或[属性描述]中的带号",
            ),
            Some(_) => {}
        }
    }
    problems.into_result(SurveyPackage {
        meta,
        parcels,
        buildings: Vec::new(),
        encoding,
        format: SourceFormat::BoundaryTxt,
    })
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(40).collect();
    if s.chars().count() > 40 {
        out.push('…');
    }
    out
}

fn attribute(
    meta: &mut PackageMeta,
    key: &str,
    value: &str,
    line_no: u32,
    problems: &mut Problems,
    zone_line: &mut Option<u32>,
) {
    match key {
        "格式版本号" => meta.format_version = opt(value),
        "数据产生单位" => meta.producer = opt(value),
        "数据产生日期" => meta.produced_on = opt(value),
        "坐标系" => meta.coordinate_system = opt(value),
        "计量单位" => meta.unit = opt(value),
        "精度" => meta.precision = opt(value),
        "几度分带" => {
            let v = value.trim_end_matches('度');
            match v {
                "" => {}
                "3" => meta.zone_width = Some(3),
                "6" => meta.zone_width = Some(6),
                _ => problems.add(
                    Some(line_no),
                    format!("几度分带={}不是3或6", clip(value)),
                    "请填写几度分带=3（3度带）或几度分带=6（6度带）",
                ),
            }
        }
        "带号" => {
            if value.is_empty() {
                return;
            }
            match value.parse::<u8>() {
                Ok(z) if (1..=60).contains(&z) => {
                    meta.zone = Some(z);
                    *zone_line = Some(line_no);
                }
                _ => problems.add(
                    Some(line_no),
                    format!("带号={}不是1到60之间的整数", clip(value)),
                    "请填写坐标所在投影带的带号，如带号=38",
                ),
            }
        }
        k if k.contains("涉密") || k.contains("密级") => {
            meta.classified |= classified_value(value);
        }
        // 投影类型, 转换参数 and unknown keys carry nothing the checks use.
        _ => {}
    }
}

fn placeholder(line_no: u32) -> PendingParcel {
    PendingParcel {
        parcel: empty_parcel(String::new(), line_no),
        declared_points: None,
        rings: Vec::new(),
        lines: 0,
        // Suppresses further reports for a parcel whose header was already reported.
        ring_order_broken: true,
    }
}

fn empty_parcel(number: String, line_no: u32) -> SurveyParcel {
    SurveyParcel {
        number,
        name: String::new(),
        declared_area_m2: None,
        use_code: String::new(),
        land_class: String::new(),
        shape: String::new(),
        rings: Vec::new(),
        header_line: Some(line_no),
        neighbours: Vec::new(),
        unit_code: None,
    }
}

/// Parses `点数,面积(公顷),编号,名称,图形属性,图幅号,用途,地类编码` (the `@` already removed).
fn header(f: &[&str], line_no: u32, problems: &mut Problems) -> Option<PendingParcel> {
    let get = |i: usize| f.get(i).copied().unwrap_or("");
    let mut ok = true;
    let declared_points = match get(0).parse::<u32>() {
        Ok(n) => Some(n),
        Err(_) => {
            problems.add(
                Some(line_no),
                format!("地块头行的界址点数“{}”不是整数", clip(get(0))),
                "地块头行格式为“点数,面积(公顷),编号,名称,图形属性,图幅号,用途,地类编码,@”；请改正点数",
            );
            ok = false;
            None
        }
    };
    let declared_area_m2 = match get(1) {
        "" => None,
        s => match parse_f64(s) {
            Some(ha) if ha >= 0.0 => Some(ha * 10_000.0),
            _ => {
                problems.add(
                    Some(line_no),
                    format!("地块面积“{}”不是以公顷为单位的非负数", clip(s)),
                    "地块头行第2项是地块面积，单位公顷（如0.5000）；请改正",
                );
                ok = false;
                None
            }
        },
    };
    let number = get(2);
    if number.is_empty() {
        problems.add(
            Some(line_no),
            "地块头行缺少地块编号（第3项）",
            "请填写地块编号，同一文件中各地块编号不能重复",
        );
        ok = false;
    }
    if !ok {
        return None;
    }
    let mut parcel = empty_parcel(number.to_owned(), line_no);
    parcel.name = get(3).to_owned();
    parcel.shape = get(4).to_owned();
    parcel.use_code = get(6).to_owned();
    parcel.land_class = get(7).to_owned();
    parcel.declared_area_m2 = declared_area_m2;
    if number.chars().count() == 28 {
        parcel.unit_code = Some(number.to_owned());
    }
    Some(PendingParcel {
        parcel,
        declared_points,
        rings: Vec::new(),
        lines: 0,
        ring_order_broken: false,
    })
}

/// Parses `点号,圈号,X,Y` into the current parcel.
fn point(
    parcel: &mut PendingParcel,
    f: &[&str],
    line_no: u32,
    problems: &mut Problems,
    prefixes: &mut Vec<(u32, u8)>,
) {
    if f.len() != 4 {
        problems.add(
            Some(line_no),
            format!("无法识别的行：应为“点号,圈号,X,Y”4项，实际{}项", f.len()),
            ADVICE_REEXPORT,
        );
        return;
    }
    let ring_no = match f[1].parse::<u32>() {
        Ok(n) if n >= 1 => n,
        _ => {
            problems.add(
                Some(line_no),
                format!("圈号“{}”不是从1开始的整数", clip(f[1])),
                "圈号1为外圈，内圈（挖空部分）依次为2、3……；请改正圈号",
            );
            return;
        }
    };
    let (Some(a), Some(b)) = (parse_f64(f[2]), parse_f64(f[3])) else {
        problems.add(
            Some(line_no),
            format!("坐标“{}”“{}”不是数字", clip(f[2]), clip(f[3])),
            "X、Y坐标应为以米为单位的数字，如3380000.000；请改正",
        );
        return;
    };
    let placed = match place(a, b, DefaultOrder::NorthingFirst) {
        Ok(p) => p,
        Err(why) => {
            problems.add(
                Some(line_no),
                format!("点{}的坐标无法识别：{why}", clip(f[0])),
                "请核对该点坐标：X为纵坐标（北），Y为横坐标（东，可带带号前缀），单位米",
            );
            return;
        }
    };
    if f[0].is_empty() {
        problems.add(Some(line_no), "界址点缺少点号", "请填写点号，如J1");
        return;
    }
    let expected = parcel.rings.last().map_or(1, |r| r.ring_no);
    let new_ring = if parcel.rings.is_empty() {
        true
    } else {
        ring_no != expected
    };
    if (parcel.rings.is_empty() && ring_no != 1)
        || (!parcel.rings.is_empty() && ring_no != expected && ring_no != expected + 1)
    {
        if !parcel.ring_order_broken {
            problems.add(
                Some(line_no),
                format!(
                    "地块{}的圈号{ring_no}不连续（应为{}）",
                    clip(&parcel.parcel.number),
                    if parcel.rings.is_empty() {
                        1
                    } else {
                        expected + 1
                    }
                ),
                "同一地块的圈号从1开始，每圈的点连续排列、圈号依次加1；请改正圈号或点的顺序",
            );
            parcel.ring_order_broken = true;
        }
        return;
    }
    if let Some(z) = placed.prefix_zone {
        prefixes.push((line_no, z));
    }
    let p = BoundaryPoint {
        name: f[0].to_owned(),
        easting: placed.easting,
        northing: placed.northing,
        line: Some(line_no),
    };
    if new_ring {
        parcel.rings.push(PendingRing {
            ring_no,
            points: vec![p],
        });
    } else if let Some(r) = parcel.rings.last_mut() {
        r.points.push(p);
    }
}

fn finish(done: PendingParcel, parcels: &mut Vec<SurveyParcel>, problems: &mut Problems) {
    let PendingParcel {
        mut parcel,
        declared_points,
        rings,
        lines,
        ring_order_broken,
    } = done;
    if parcel.number.is_empty() {
        return; // the header was reported already
    }
    if rings.is_empty() {
        if !ring_order_broken {
            problems.add(
                parcel.header_line,
                format!("地块{}没有界址点", clip(&parcel.number)),
                "地块头行之后应列出该地块的界址点（点号,圈号,X,Y）；请补上或删除该地块",
            );
        }
        return;
    }
    let mut closings = 0usize;
    for ring in rings {
        let mut points = ring.points;
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
            closings += 1;
        }
        parcel.rings.push(SurveyRing {
            ring_no: ring.ring_no,
            points,
            closed_in_source: closed,
        });
    }
    if let Some(n) = declared_points {
        let n = n as usize;
        if !ring_order_broken && n != lines && n != lines - closings {
            problems.add(
                parcel.header_line,
                format!(
                    "地块{}头行声明界址点数{n}，实际读到{lines}个点（其中闭合点{closings}个）",
                    clip(&parcel.number)
                ),
                "文件可能被截断或漏行；请核对点数或重新导出完整文件",
            );
        }
    }
    parcels.push(parcel);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_tolerate_full_width_and_trailing_commas() {
        assert_eq!(fields("J1， 1,2.5,3,,"), vec!["J1", "1", "2.5", "3"]);
        assert_eq!(
            fields("5,0.5,D1,,面,,,,@"),
            vec!["5", "0.5", "D1", "", "面", "", "", "", "@"]
        );
    }

    #[test]
    fn gbk_lines_decode_and_bad_bytes_are_located() {
        let mut p = Problems::default();
        let (gbk, _, _) = encoding_rs::GBK.encode("[属性描述]\n带号=38\n");
        let (lines, enc) = decode(&gbk, &mut p);
        assert_eq!(enc, "GBK");
        assert_eq!(lines[1].1, "带号=38");
        let mut bad = gbk.into_owned();
        bad.extend_from_slice(b"x\xff\xff\n");
        let (_, enc) = decode(&bad, &mut p);
        assert_eq!(enc, "GBK");
        let e = p.into_result(()).unwrap_err();
        assert_eq!(e.0[0].line, Some(3));
    }
}
