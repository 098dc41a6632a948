//! The pre-check of a survey package (权籍调查成果: 界址点坐标 TXT in GBK or UTF-8, or GeoJSON)
//! uploaded for a first registration: parsed and checked with ow-survey before it is kept, so
//! the citizen sees every problem with its line number and what to do, and a package that must
//! go to the counter (a parcel over 6 km², or marked 涉密) is refused online.
//!
//! The file is sealed into the staging folder as it arrives, like every upload; once the upload
//! is complete it is opened and read whole (at most [`MAX_SURVEY_BYTES`]) because the TXT's
//! findings need every line: the checks (closure, self-intersection, declared area) look at the
//! whole ring, so the first bytes alone cannot judge it.

use std::io::Read;

use ow_survey::{
    CheckConfig, CounterReason, Finding, OnlineLimits, ParseOptions, ParseProblem, Severity,
    SourceFormat, check_package, detect_format, parse_package,
};

use crate::error::AppError;
use crate::files::{FileStore, material_context};
use crate::uploads::StagedFile;

/// Largest survey package file accepted online (the TXT of a large estate is well under this).
pub const MAX_SURVEY_BYTES: u64 = 16 * 1024 * 1024;

/// Why a survey package was not kept.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SurveyRefusal {
    /// The file is over the limit (the smaller of [`MAX_SURVEY_BYTES`] and the portal's file
    /// size limit).
    #[error("survey file of {size} bytes is over the limit of {limit} bytes")]
    TooBig {
        /// The file's size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file could not be read as a package.
    #[error("the survey file has {} problem(s)", .0.len())]
    Parse(Vec<ParseProblem>),
    /// The package must be brought to the counter.
    #[error("the survey package must be brought to the counter")]
    Counter(CounterReason),
}

impl SurveyRefusal {
    /// What the citizen sees, one line per problem: what is wrong and what to do.
    pub fn messages_zh(&self) -> Vec<String> {
        match self {
            Self::TooBig { size, limit } => vec![format!(
                "权籍调查成果文件为{:.2}MB，超过网上提交上限{:.2}MB，请核对文件是否正确，或携带成果到登记窗口办理",
                *size as f64 / (1024.0 * 1024.0),
                *limit as f64 / (1024.0 * 1024.0)
            )],
            Self::Parse(problems) => problems
                .iter()
                .map(|p| match p.line {
                    Some(line) => format!("第{line}行：{}。{}", p.message, p.advice),
                    None => format!("{}。{}", p.message, p.advice),
                })
                .collect(),
            Self::Counter(reason) => vec![reason.message()],
        }
    }
}

/// What the pre-check found in a package that was kept.
#[derive(Debug, Clone, PartialEq)]
pub struct SurveyReport {
    /// TXT or GeoJSON.
    pub format: SourceFormat,
    /// How many parcels.
    pub parcels: usize,
    /// The findings of the intrinsic checks (errors first).
    pub findings: Vec<Finding>,
}

impl SurveyReport {
    /// The media type the material is stored and sent with.
    pub fn media_type(&self) -> &'static str {
        media_type_of(self.format)
    }

    /// Whether any finding is an error (the citizen may still submit; the cadastral review
    /// decides).
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }

    /// The findings as lines for the citizen, with the note that submitting is still possible.
    pub fn messages_zh(&self) -> Vec<String> {
        if self.findings.is_empty() {
            return Vec::new();
        }
        let mut out = vec![format!(
            "权籍调查成果已保存，预检发现{}处问题。仍可提交，由权籍审核决定是否通过；建议请测绘单位改正后重新上传：",
            self.findings.len()
        )];
        out.extend(self.findings.iter().map(|f| {
            let line = f.line.map(|l| format!("第{l}行：")).unwrap_or_default();
            format!(
                "[{}] {line}{}。{}",
                f.severity.label_zh(),
                f.message,
                f.advice
            )
        }));
        out
    }
}

/// `text/plain` for the TXT, `application/geo+json` for GeoJSON.
pub fn media_type_of(format: SourceFormat) -> &'static str {
    match format {
        SourceFormat::BoundaryTxt => "text/plain",
        SourceFormat::GeoJson => "application/geo+json",
    }
}

/// The file extension for a package of `media_type`, if it is one.
pub fn extension_of(media_type: &str) -> Option<&'static str> {
    match media_type {
        "text/plain" => Some("txt"),
        "application/geo+json" => Some("geojson"),
        _ => None,
    }
}

/// Whether the first bytes (and the name) look like a survey package.
pub fn looks_like_survey(file_name: &str, head: &[u8]) -> Option<SourceFormat> {
    detect_format(file_name, head)
}

/// Parses and checks a whole package: the report, or why it is refused online.
pub fn precheck(bytes: &[u8], format: SourceFormat) -> Result<SurveyReport, SurveyRefusal> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    if size > MAX_SURVEY_BYTES {
        return Err(SurveyRefusal::TooBig {
            size,
            limit: MAX_SURVEY_BYTES,
        });
    }
    let pkg = parse_package(bytes, format, &ParseOptions::default())
        .map_err(|e| SurveyRefusal::Parse(e.0))?;
    if let Some(reason) = pkg.counter_only(&OnlineLimits::default()) {
        return Err(SurveyRefusal::Counter(reason));
    }
    let mut findings = check_package(&pkg, &CheckConfig::default());
    findings.sort_by_key(|f| f.severity != Severity::Error);
    Ok(SurveyReport {
        format,
        parcels: pkg.parcels.len(),
        findings,
    })
}

/// Reads a staged upload whole (it is at most [`MAX_SURVEY_BYTES`]; the caller checks the size
/// first). Blocking: run it off the async threads.
pub fn read_staged(store: &FileStore, staged: &StagedFile) -> Result<Vec<u8>, AppError> {
    let (reader, len) = store
        .pii()
        .open_file(
            material_context(staged.material_id()).as_bytes(),
            staged.path(),
        )
        .map_err(|e| AppError::Corrupt(format!("staged upload: {e}")))?;
    let mut bytes = Vec::with_capacity(usize::try_from(len.min(MAX_SURVEY_BYTES)).unwrap_or(0));
    reader
        .take(MAX_SURVEY_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| AppError::io(staged.path(), e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TXT: &str = "[属性描述]\n带号=38\n[地块坐标]\n5,0.5000,D001,示例地块,面,,070101,0701,@\n\
        J1,1,3380000.000,38500000.000\nJ2,1,3380000.000,38500100.000\n\
        J3,1,3379950.000,38500100.000\nJ4,1,3379950.000,38500000.000\n\
        J1,1,3380000.000,38500000.000\n";

    #[test]
    fn a_good_package_is_kept_as_text() {
        let format = looks_like_survey("a.txt", TXT.as_bytes()).unwrap();
        let report = precheck(TXT.as_bytes(), format).unwrap();
        assert_eq!(report.media_type(), "text/plain");
        assert_eq!(report.parcels, 1);
        assert!(!report.has_errors());
        assert!(report.messages_zh().is_empty());
    }

    #[test]
    fn problems_name_their_line_and_what_to_do() {
        let bad = TXT.replace("J3,1,3379950.000,38500100.000", "乱码");
        let err = precheck(bad.as_bytes(), SourceFormat::BoundaryTxt).unwrap_err();
        let lines = err.messages_zh();
        assert!(lines.iter().any(|l| l.starts_with("第7行：")), "{lines:?}");
        let classified = TXT.replace("带号=38\n", "带号=38\n涉密=是\n");
        let err = precheck(classified.as_bytes(), SourceFormat::BoundaryTxt).unwrap_err();
        assert!(matches!(
            err,
            SurveyRefusal::Counter(CounterReason::Classified)
        ));
        assert!(err.messages_zh()[0].contains("登记窗口"));
        let big = SurveyRefusal::TooBig {
            size: 20 << 20,
            limit: MAX_SURVEY_BYTES,
        };
        assert!(
            big.messages_zh()[0].contains("16.00MB"),
            "{:?}",
            big.messages_zh()
        );
    }
}
