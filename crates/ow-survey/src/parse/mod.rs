//! Reading a survey package: format detection, limits, the problem list, and the coordinate
//! rules shared by both formats (column order by magnitude, zone prefix).

mod geojson_in;
mod txt;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::SurveyPackage;

/// The most problems one parse reports; the rest are summarised in one last line.
pub const MAX_PROBLEMS: usize = 200;

/// The two input formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SourceFormat {
    /// The 界址点坐标 exchange TXT (`[属性描述]` / `[地块坐标]`).
    #[serde(rename = "boundary-txt")]
    BoundaryTxt,
    /// GeoJSON in the profile of `docs/survey-format.md`.
    #[serde(rename = "geojson")]
    GeoJson,
}

impl SourceFormat {
    /// The stable name: `"boundary-txt"` or `"geojson"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BoundaryTxt => "boundary-txt",
            Self::GeoJson => "geojson",
        }
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown format name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown survey format {0:?}; use \"boundary-txt\" or \"geojson\"")]
pub struct UnknownFormat(pub String);

impl FromStr for SourceFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "boundary-txt" => Ok(Self::BoundaryTxt),
            "geojson" => Ok(Self::GeoJson),
            other => Err(UnknownFormat(other.chars().take(40).collect())),
        }
    }
}

/// Limits of one parse, checked before anything is allocated for the content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ParseOptions {
    /// Largest file accepted, in bytes (default 16 MiB).
    pub max_bytes: usize,
    /// Most boundary points in the whole package, closing points included (default 200 000).
    pub max_points: usize,
    /// Most parcels plus buildings (default 5 000).
    pub max_parcels: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_bytes: 16 * 1024 * 1024,
            max_points: 200_000,
            max_parcels: 5_000,
        }
    }
}

/// One problem found while reading a file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseProblem {
    /// 1-based line in the file, when the problem has one.
    pub line: Option<u32>,
    /// What is wrong, in plain Chinese.
    pub message: String,
    /// What to do about it.
    pub advice: String,
}

impl ParseProblem {
    pub(crate) fn new(
        line: Option<u32>,
        message: impl Into<String>,
        advice: impl Into<String>,
    ) -> Self {
        Self {
            line,
            message: message.into(),
            advice: advice.into(),
        }
    }
}

impl fmt::Display for ParseProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "第{line}行：{}（{}）", self.message, self.advice),
            None => write!(f, "{}（{}）", self.message, self.advice),
        }
    }
}

/// Every problem that kept a file from being read (at most [`MAX_PROBLEMS`] plus a summary).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub struct ParseErrors(pub Vec<ParseProblem>);

impl fmt::Display for ParseErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "权籍调查成果文件有{}处问题：", self.0.len())?;
        for p in &self.0 {
            write!(f, "\n- {p}")?;
        }
        Ok(())
    }
}

/// Collects problems up to the cap.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    list: Vec<ParseProblem>,
    dropped: usize,
}

impl Problems {
    pub(crate) fn push(&mut self, p: ParseProblem) {
        if self.list.len() < MAX_PROBLEMS {
            self.list.push(p);
        } else {
            self.dropped += 1;
        }
    }

    pub(crate) fn add(
        &mut self,
        line: Option<u32>,
        message: impl Into<String>,
        advice: impl Into<String>,
    ) {
        self.push(ParseProblem::new(line, message, advice));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The problems as an error; only called after a problem was added.
    pub(crate) fn into_err<T>(self) -> Result<T, ParseErrors> {
        match self.into_result(()) {
            Err(e) => Err(e),
            Ok(()) => Err(ParseErrors(Vec::new())),
        }
    }

    pub(crate) fn into_result<T>(self, value: T) -> Result<T, ParseErrors> {
        if self.list.is_empty() {
            return Ok(value);
        }
        let mut list = self.list;
        if self.dropped > 0 {
            list.push(ParseProblem::new(
                None,
                format!("另有{}处问题未列出", self.dropped),
                "请先改正以上问题后重新上传，其余问题会再列出",
            ));
        }
        Err(ParseErrors(list))
    }
}

/// Reads a survey package. Pure: bytes in, package out. Every problem found is reported, each
/// with its line where the format has lines; nothing panics on any input.
pub fn parse_package(
    bytes: &[u8],
    format: SourceFormat,
    opts: &ParseOptions,
) -> Result<SurveyPackage, ParseErrors> {
    if bytes.len() > opts.max_bytes {
        return Err(ParseErrors(vec![ParseProblem::new(
            None,
            format!(
                "文件大小{}字节，超过上限{}字节",
                bytes.len(),
                opts.max_bytes
            ),
            "请检查是否上传了正确的文件；成果过大时请拆分为多个文件，或到登记窗口现场提交",
        )]));
    }
    match format {
        SourceFormat::BoundaryTxt => txt::parse(bytes, opts),
        SourceFormat::GeoJson => geojson_in::parse(bytes, opts),
    }
}

/// Guesses the format from the content, then from the file name's extension. `None` when
/// neither says.
pub fn detect_format(file_name: &str, bytes: &[u8]) -> Option<SourceFormat> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        return Some(SourceFormat::GeoJson);
    }
    let head = &body[..body.len().min(64 * 1024)];
    let markers: [&[u8]; 4] = [
        "[属性描述]".as_bytes(),
        "[地块坐标]".as_bytes(),
        b"[\xca\xf4\xd0\xd4\xc3\xe8\xca\xf6]", // [属性描述] in GBK
        b"[\xb5\xd8\xbf\xe9\xd7\xf8\xb1\xea]", // [地块坐标] in GBK
    ];
    if markers
        .iter()
        .any(|m| head.windows(m.len()).any(|w| w == *m))
    {
        return Some(SourceFormat::BoundaryTxt);
    }
    let lower = file_name.to_ascii_lowercase();
    if lower.ends_with(".txt") {
        Some(SourceFormat::BoundaryTxt)
    } else if lower.ends_with(".geojson") || lower.ends_with(".json") {
        Some(SourceFormat::GeoJson)
    } else {
        None
    }
}

/// Which file column holds the northing when magnitudes cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DefaultOrder {
    /// TXT: X (first) = northing, Y (second) = easting.
    NorthingFirst,
    /// GeoJSON: [easting, northing].
    EastingFirst,
}

/// A coordinate pair placed by magnitude.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Placed {
    pub easting: f64,
    pub northing: f64,
    /// The zone prefix the easting carried, if any.
    pub prefix_zone: Option<u8>,
}

/// Places a pair of numbers as easting/northing by magnitude (northings in China lie between
/// about 0.3e6 and 6e6 m; eastings without prefix below 1e6, with the 带号 prefix at
/// zone·1e6 + easting, ≥ 1e7). Both below 1e6 falls back to the format's column order.
pub(crate) fn place(a: f64, b: f64, order: DefaultOrder) -> Result<Placed, &'static str> {
    if !a.is_finite() || !b.is_finite() {
        return Err("坐标不是有限数值");
    }
    if a < 0.0 || b < 0.0 {
        return Err("坐标为负数，高斯-克吕格投影坐标应为正数");
    }
    const PREFIXED: f64 = 1.0e7;
    const MAX_NORTHING: f64 = 1.0e7;
    let (easting, northing) = match (a >= PREFIXED, b >= PREFIXED) {
        (true, true) => return Err("两个坐标都像带带号的横坐标，无法区分X和Y"),
        (true, false) => (a, b),
        (false, true) => (b, a),
        (false, false) => match (a < 1.0e6, b < 1.0e6) {
            (true, false) => (a, b),
            (false, true) => (b, a),
            (true, true) => match order {
                DefaultOrder::NorthingFirst => (b, a),
                DefaultOrder::EastingFirst => (a, b),
            },
            (false, false) => {
                return Err("两个坐标都在1000千米到10000千米之间，无法区分X和Y");
            }
        },
    };
    if northing >= MAX_NORTHING {
        return Err("纵坐标（X）超出范围");
    }
    if easting >= PREFIXED {
        let zone = (easting / 1.0e6).floor();
        if !(1.0..=60.0).contains(&zone) {
            return Err("横坐标的带号前缀不在1到60之间");
        }
        // zone is an integer in 1..=60 here, so the cast is exact.
        let zone_u8 = zone as u8;
        Ok(Placed {
            easting: easting - zone * 1.0e6,
            northing,
            prefix_zone: Some(zone_u8),
        })
    } else {
        Ok(Placed {
            easting,
            northing,
            prefix_zone: None,
        })
    }
}

/// Whether an attribute value marks the package classified (present and not a "no").
pub(crate) fn classified_value(v: &str) -> bool {
    let v = v.trim();
    !matches!(
        v.to_ascii_lowercase().as_str(),
        "" | "无" | "公开" | "否" | "非涉密" | "不涉密" | "0" | "false" | "no" | "none"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_by_magnitude() {
        let p = place(3_380_000.0, 38_500_000.0, DefaultOrder::NorthingFirst).unwrap();
        assert_eq!(
            (p.easting, p.northing, p.prefix_zone),
            (500_000.0, 3_380_000.0, Some(38))
        );
        let p = place(38_500_000.0, 3_380_000.0, DefaultOrder::NorthingFirst).unwrap();
        assert_eq!((p.easting, p.northing), (500_000.0, 3_380_000.0));
        let p = place(500_000.0, 3_380_000.0, DefaultOrder::NorthingFirst).unwrap();
        assert_eq!(
            (p.easting, p.northing, p.prefix_zone),
            (500_000.0, 3_380_000.0, None)
        );
        let p = place(900_000.0, 500_000.0, DefaultOrder::NorthingFirst).unwrap();
        assert_eq!((p.easting, p.northing), (500_000.0, 900_000.0));
        let p = place(900_000.0, 500_000.0, DefaultOrder::EastingFirst).unwrap();
        assert_eq!((p.easting, p.northing), (900_000.0, 500_000.0));
        assert!(place(38_500_000.0, 39_500_000.0, DefaultOrder::NorthingFirst).is_err());
        assert!(place(3_000_000.0, 4_000_000.0, DefaultOrder::NorthingFirst).is_err());
        assert!(place(f64::NAN, 1.0, DefaultOrder::NorthingFirst).is_err());
        assert!(place(-1.0, 1.0, DefaultOrder::NorthingFirst).is_err());
        assert!(place(3_000_000.0, 99_000_000.0, DefaultOrder::NorthingFirst).is_err());
    }

    #[test]
    fn format_names_round_trip() {
        for f in [SourceFormat::BoundaryTxt, SourceFormat::GeoJson] {
            assert_eq!(f.as_str().parse::<SourceFormat>().unwrap(), f);
            assert_eq!(
                serde_json::to_string(&f).unwrap(),
                format!("\"{}\"", f.as_str())
            );
        }
        assert!("shp".parse::<SourceFormat>().is_err());
    }

    #[test]
    fn detects_by_content_then_name() {
        assert_eq!(
            detect_format("a.bin", b"  {\"type\":1}"),
            Some(SourceFormat::GeoJson)
        );
        assert_eq!(
            detect_format("a.bin", "x\n[地块坐标]\n".as_bytes()),
            Some(SourceFormat::BoundaryTxt)
        );
        let (gbk, _, _) = encoding_rs::GBK.encode("[属性描述]\n");
        assert_eq!(
            detect_format("a.dat", &gbk),
            Some(SourceFormat::BoundaryTxt)
        );
        assert_eq!(
            detect_format("A.TXT", b"x"),
            Some(SourceFormat::BoundaryTxt)
        );
        assert_eq!(
            detect_format("a.geojson", b"x"),
            Some(SourceFormat::GeoJson)
        );
        assert_eq!(detect_format("a.pdf", b"%PDF"), None);
    }

    #[test]
    fn classified_values() {
        assert!(classified_value("秘密"));
        assert!(classified_value("是"));
        for no in ["", "无", "公开", "否", "FALSE"] {
            assert!(!classified_value(no), "{no}");
        }
    }

    #[test]
    fn problems_are_capped() {
        let mut p = Problems::default();
        for i in 0..250 {
            p.add(Some(i), "m", "a");
        }
        let e = p.into_result(()).unwrap_err();
        assert_eq!(e.0.len(), MAX_PROBLEMS + 1);
        assert!(e.0[MAX_PROBLEMS].message.contains("50"));
        assert!(e.to_string().contains("第3行"));
    }
}
