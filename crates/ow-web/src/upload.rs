//! Checking uploaded files: type by magic bytes, size limits, safe display names.
//!
//! Applicants upload scans of documents (ID cards, contracts, certificates) as PDF, JPEG or PNG.
//! What the browser declares (`Content-Type`, the file name's extension) is not trusted: the type
//! is decided by [`sniff`] from the first bytes of the content, and anything else — executables,
//! archives, web pages, office documents, empty files — is refused with a message that names what
//! was detected and what is allowed.
//!
//! Enforce the size limit while reading the request too (axum's `DefaultBodyLimit`, or stop
//! reading a multipart field past [`UploadLimits::max_file_bytes`]); [`check_upload`] checks it
//! again on the bytes received.
//!
//! File names can be personal data (`张三身份证.jpg`): never log them.

use std::fmt;

/// The file types accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowedMedia {
    /// PDF document (`%PDF-` at the start).
    Pdf,
    /// JPEG image (`FF D8 FF`).
    Jpeg,
    /// PNG image (the 8-byte PNG signature).
    Png,
}

impl AllowedMedia {
    /// Every accepted type.
    pub const ALL: [Self; 3] = [Self::Pdf, Self::Jpeg, Self::Png];

    /// The MIME type to serve it with.
    pub fn mime(self) -> &'static str {
        match self {
            Self::Pdf => "application/pdf",
            Self::Jpeg => "image/jpeg",
            Self::Png => "image/png",
        }
    }

    /// The usual file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Pdf => "pdf",
            Self::Jpeg => "jpg",
            Self::Png => "png",
        }
    }

    /// The name shown to users: `PDF`, `JPEG`, `PNG`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Pdf => "PDF",
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
        }
    }

    fn matches_extension(self, ext: &str) -> bool {
        let ext = ext.to_ascii_lowercase();
        match self {
            Self::Pdf => ext == "pdf",
            Self::Jpeg => matches!(ext.as_str(), "jpg" | "jpeg" | "jpe" | "jfif"),
            Self::Png => ext == "png",
        }
    }
}

impl fmt::Display for AllowedMedia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Size and count limits for uploads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UploadLimits {
    /// Largest accepted file in bytes (default 10 MiB).
    pub max_file_bytes: u64,
    /// Most files in one submission (default 20).
    pub max_files: usize,
}

impl Default for UploadLimits {
    fn default() -> Self {
        Self {
            max_file_bytes: 10 * 1024 * 1024,
            max_files: 20,
        }
    }
}

impl UploadLimits {
    /// `Err(TooManyFiles)` when `count` files exceed [`max_files`](Self::max_files).
    pub fn check_count(&self, count: usize) -> Result<(), UploadError> {
        if count > self.max_files {
            return Err(UploadError::TooManyFiles {
                count,
                max: self.max_files,
            });
        }
        Ok(())
    }
}

/// Why an upload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UploadError {
    /// The file has no content.
    #[error(
        "the file{} is empty; choose the right file and upload it again",
        quoted(filename)
    )]
    Empty {
        /// Safe display name, when known.
        filename: Option<String>,
    },
    /// The content is not one of the accepted types.
    #[error(
        "the file{} is not a PDF, JPEG or PNG file (detected: {detected}); \
         save or scan it as PDF, JPEG or PNG and upload it again",
        quoted(filename)
    )]
    NotAllowed {
        /// Safe display name, when known.
        filename: Option<String>,
        /// What the content looks like, in English.
        detected: String,
        /// What the content looks like, in Chinese.
        detected_zh: String,
    },
    /// The file is larger than the limit.
    #[error(
        "the file{} is too large ({} MB); a file may be at most {} MB, so compress it or \
         split it and upload again",
        quoted(filename),
        mb(*size),
        mb(*limit)
    )]
    TooLarge {
        /// Safe display name, when known.
        filename: Option<String>,
        /// Size in bytes.
        size: u64,
        /// The limit in bytes.
        limit: u64,
    },
    /// More files than allowed in one submission.
    #[error(
        "{count} files were sent but at most {max} may be uploaded at once; upload them in parts"
    )]
    TooManyFiles {
        /// Files sent.
        count: usize,
        /// The limit.
        max: usize,
    },
}

fn quoted(filename: &Option<String>) -> String {
    filename
        .as_ref()
        .map(|f| format!(" \"{f}\""))
        .unwrap_or_default()
}

fn quoted_zh(filename: &Option<String>) -> String {
    filename
        .as_ref()
        .map(|f| format!("\"{f}\""))
        .unwrap_or_default()
}

/// Bytes as mebibytes with at most one decimal, without a trailing `.0`: `10`, `12.3`.
fn mb(bytes: u64) -> String {
    let tenths = (u128::from(bytes) * 10 + 524_288) / 1_048_576;
    if tenths % 10 == 0 {
        format!("{}", tenths / 10)
    } else {
        format!("{}.{}", tenths / 10, tenths % 10)
    }
}

impl UploadError {
    /// A short Chinese message for the user.
    pub fn message_zh(&self) -> String {
        match self {
            Self::Empty { filename } => {
                format!(
                    "文件{}是空文件，请选择正确的文件重新上传",
                    quoted_zh(filename)
                )
            }
            Self::NotAllowed {
                filename,
                detected_zh,
                ..
            } => format!(
                "文件{}不是 PDF、JPEG 或 PNG 文件（检测为：{detected_zh}），请重新上传",
                quoted_zh(filename)
            ),
            Self::TooLarge {
                filename,
                size,
                limit,
            } => format!(
                "文件{}过大（{} MB），单个文件不能超过 {} MB，请压缩或拆分后重新上传",
                quoted_zh(filename),
                mb(*size),
                mb(*limit)
            ),
            Self::TooManyFiles { max, .. } => {
                format!("一次最多上传 {max} 个文件，请分批上传")
            }
        }
    }

    fn with_filename(self, name: &str) -> Self {
        let name = Some(name.to_owned());
        match self {
            Self::Empty { .. } => Self::Empty { filename: name },
            Self::NotAllowed {
                detected,
                detected_zh,
                ..
            } => Self::NotAllowed {
                filename: name,
                detected,
                detected_zh,
            },
            Self::TooLarge { size, limit, .. } => Self::TooLarge {
                filename: name,
                size,
                limit,
            },
            other => other,
        }
    }
}

/// The accepted type of `bytes`, decided by their first bytes only.
pub fn sniff(bytes: &[u8]) -> Result<AllowedMedia, UploadError> {
    if bytes.is_empty() {
        return Err(UploadError::Empty { filename: None });
    }
    if bytes.starts_with(b"%PDF-") {
        return Ok(AllowedMedia::Pdf);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(AllowedMedia::Jpeg);
    }
    if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
        return Ok(AllowedMedia::Png);
    }
    let (detected, detected_zh) = describe(bytes);
    Err(UploadError::NotAllowed {
        filename: None,
        detected,
        detected_zh,
    })
}

/// What refused content looks like, in English and Chinese.
fn describe(bytes: &[u8]) -> (String, String) {
    let pair = |en: &str, zh: &str| (en.to_owned(), zh.to_owned());
    // Web pages first: infer would call an HTML page with `%PDF` inside it a PDF.
    if infer::text::is_html(bytes) {
        return pair("HTML web page", "HTML 网页");
    }
    let Some(kind) = infer::get(bytes) else {
        let head = &bytes[..bytes.len().min(1024)];
        let text = std::str::from_utf8(head).is_ok()
            || std::str::from_utf8(head).is_err_and(|e| e.error_len().is_none());
        return if text {
            if head.trim_ascii_start().starts_with(b"<") {
                pair("markup (XML or SVG)", "XML/SVG 标记文件")
            } else {
                pair("plain text", "纯文本文件")
            }
        } else {
            pair("unknown type", "无法识别的类型")
        };
    };
    match kind.extension() {
        "exe" | "dll" => pair("Windows executable", "Windows 可执行文件"),
        "elf" => pair("Linux executable (ELF)", "Linux 可执行文件"),
        "mach" => pair("macOS executable", "macOS 可执行文件"),
        "zip" => pair("ZIP archive", "ZIP 压缩包"),
        "rar" => pair("RAR archive", "RAR 压缩包"),
        "7z" => pair("7-Zip archive", "7z 压缩包"),
        "gz" | "tar" | "bz2" | "xz" | "zst" => (
            format!("{} archive", kind.extension()),
            format!("{} 压缩包", kind.extension()),
        ),
        "doc" | "docx" => pair("Word document", "Word 文档"),
        "xls" | "xlsx" => pair("Excel spreadsheet", "Excel 表格"),
        "ppt" | "pptx" => pair("PowerPoint presentation", "PowerPoint 演示文稿"),
        "pdf" => pair(
            "damaged PDF (the header is not at the start)",
            "格式异常的 PDF 文件",
        ),
        "xml" => pair("XML document", "XML 文件"),
        "sh" => pair("shell script", "脚本文件"),
        ext => match kind.matcher_type() {
            infer::MatcherType::Image => {
                let up = ext.to_ascii_uppercase();
                (format!("{up} image"), format!("{up} 图片"))
            }
            infer::MatcherType::Video => pair("video", "视频文件"),
            infer::MatcherType::Audio => pair("audio", "音频文件"),
            infer::MatcherType::App => pair("program", "可执行程序"),
            infer::MatcherType::Archive => pair("archive", "压缩包"),
            _ => {
                let up = ext.to_ascii_uppercase();
                (format!("{up} file"), format!("{up} 文件"))
            }
        },
    }
}

/// An upload that passed [`check_upload`].
#[derive(Clone, PartialEq, Eq)]
pub struct CheckedUpload {
    /// The type decided from the content.
    pub media: AllowedMedia,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex BLAKE3 of the content (for deduplication and the bundle manifest).
    pub blake3_hex: String,
    /// A display name safe to show and to put in `Content-Disposition`: no path, no control or
    /// direction-changing characters, at most [`MAX_FILENAME_CHARS`] characters, ending in the
    /// extension of [`media`](Self::media).
    pub safe_filename: String,
    /// Whether the browser's declared `Content-Type` agreed with the content (informational:
    /// it is never trusted).
    pub declared_type_matched: bool,
}

impl std::fmt::Debug for CheckedUpload {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedUpload")
            .field("media", &self.media)
            .field("size", &self.size)
            .field("blake3_hex", &self.blake3_hex)
            .field("declared_type_matched", &self.declared_type_matched)
            .finish_non_exhaustive()
    }
}

/// Longest display name kept, in characters.
pub const MAX_FILENAME_CHARS: usize = 100;

/// How many bytes of a file's beginning [`sniff`] needs; a streamed upload keeps this many in
/// memory for [`check_streamed_upload`].
pub const SNIFF_BYTES: usize = 8 * 1024;

/// Checks one uploaded file: size, then type by content; reduces its name to a safe display name.
/// `declared_content_type` (from the multipart part) is not trusted.
pub fn check_upload(
    filename: &str,
    declared_content_type: Option<&str>,
    bytes: &[u8],
    limits: &UploadLimits,
) -> Result<CheckedUpload, UploadError> {
    let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    check_streamed_upload(
        filename,
        declared_content_type,
        &bytes[..bytes.len().min(SNIFF_BYTES)],
        size,
        || blake3::hash(bytes).to_hex().to_string(),
        limits,
    )
}

/// [`check_upload`] for a file that was streamed elsewhere (to disk) as it arrived: judged on
/// its first bytes (`head`, at least [`SNIFF_BYTES`] of them when the file is that long), its
/// full `size`, and its BLAKE3 digest in lower-case hex (asked for only when the file passes).
pub fn check_streamed_upload(
    filename: &str,
    declared_content_type: Option<&str>,
    head: &[u8],
    size: u64,
    blake3_hex: impl FnOnce() -> String,
    limits: &UploadLimits,
) -> Result<CheckedUpload, UploadError> {
    // A name for the messages before the type is known.
    let shown = safe_filename(filename, None);
    if size > limits.max_file_bytes {
        return Err(UploadError::TooLarge {
            filename: None,
            size,
            limit: limits.max_file_bytes,
        }
        .with_filename(&shown));
    }
    let media = if size == 0 {
        Err(UploadError::Empty { filename: None })
    } else {
        sniff(head)
    }
    .map_err(|e| e.with_filename(&shown))?;
    let declared_type_matched = declared_content_type.is_some_and(|declared| {
        let essence = declared.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case(media.mime())
            || (media == AllowedMedia::Jpeg && essence.eq_ignore_ascii_case("image/pjpeg"))
    });
    Ok(CheckedUpload {
        media,
        size,
        blake3_hex: blake3_hex(),
        safe_filename: safe_filename(filename, Some(media)),
        declared_type_matched,
    })
}

/// Reduces a browser-supplied file name to a safe display name: the last path component only
/// (`/` and `\` both count), control characters, bidirectional overrides and zero-width
/// characters removed, characters Windows forbids in names replaced by `_`, leading dots and
/// surrounding spaces trimmed, at most [`MAX_FILENAME_CHARS`] characters (the extension kept).
/// With `media`, the name is made to end in a matching extension (`扫描件` → `扫描件.pdf`,
/// `a.exe` → `a.exe.pdf`). An empty result becomes `未命名`.
pub fn safe_filename(filename: &str, media: Option<AllowedMedia>) -> String {
    let last = filename.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|&c| !c.is_control() && !is_invisible_format_char(c))
        .map(|c| {
            if matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut name = cleaned.trim().trim_start_matches('.').trim().to_owned();
    if name.is_empty() {
        name = "未命名".to_owned();
    }
    if let Some(media) = media {
        let has_matching_ext = name
            .rsplit_once('.')
            .is_some_and(|(stem, ext)| !stem.is_empty() && media.matches_extension(ext));
        if !has_matching_ext {
            name = format!("{name}.{}", media.extension());
        }
    }
    truncate_keeping_extension(&name, MAX_FILENAME_CHARS)
}

/// Direction overrides and zero-width characters used to disguise names (`invoice\u{202E}fdp.exe`).
fn is_invisible_format_char(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}'
    )
}

fn truncate_keeping_extension(name: &str, max: usize) -> String {
    let count = name.chars().count();
    if count <= max {
        return name.to_owned();
    }
    match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() && ext.chars().count() <= 10 => {
            let keep = max - ext.chars().count() - 1;
            let stem: String = stem.chars().take(keep).collect();
            format!("{}.{ext}", stem.trim_end())
        }
        _ => name.chars().take(max).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PDF: &[u8] = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n";
    const JPEG: &[u8] = &[
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01,
    ];
    const PNG: &[u8] = &[
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, b'I', b'H', b'D',
        b'R',
    ];

    fn elf() -> Vec<u8> {
        let mut v = vec![0x7F, b'E', b'L', b'F', 2, 1, 1, 0];
        v.resize(64, 0);
        v
    }

    fn exe() -> Vec<u8> {
        let mut v = b"MZ\x90\x00\x03\x00\x00\x00".to_vec();
        v.resize(128, 0);
        v
    }

    fn zip() -> Vec<u8> {
        let mut v = b"PK\x03\x04\x14\x00\x00\x00\x08\x00".to_vec();
        v.resize(64, 0);
        v
    }

    fn detected(err: &UploadError) -> &str {
        match err {
            UploadError::NotAllowed { detected_zh, .. } => detected_zh,
            other => panic!("expected NotAllowed, got {other:?}"),
        }
    }

    #[test]
    fn sniff_accepts_real_magic_bytes() {
        assert_eq!(sniff(PDF), Ok(AllowedMedia::Pdf));
        assert_eq!(sniff(JPEG), Ok(AllowedMedia::Jpeg));
        assert_eq!(sniff(PNG), Ok(AllowedMedia::Png));
    }

    #[test]
    fn sniff_refuses_executables_archives_and_pages() {
        assert_eq!(detected(&sniff(&exe()).unwrap_err()), "Windows 可执行文件");
        assert_eq!(detected(&sniff(&elf()).unwrap_err()), "Linux 可执行文件");
        assert_eq!(detected(&sniff(&zip()).unwrap_err()), "ZIP 压缩包");
        assert_eq!(
            detected(&sniff(b"<!DOCTYPE html><html><body>x</body></html>").unwrap_err()),
            "HTML 网页"
        );
        assert_eq!(
            detected(&sniff(b"  <html lang=\"zh\">").unwrap_err()),
            "HTML 网页"
        );
        assert_eq!(
            detected(&sniff(b"GIF89a\x01\x00\x01\x00").unwrap_err()),
            "GIF 图片"
        );
        assert_eq!(
            detected(&sniff("身份证号码".as_bytes()).unwrap_err()),
            "纯文本文件"
        );
        assert_eq!(
            detected(&sniff(&[0x00, 0x01, 0xFE, 0x80, 0x81]).unwrap_err()),
            "无法识别的类型"
        );
        assert_eq!(sniff(b""), Err(UploadError::Empty { filename: None }));
    }

    #[test]
    fn sniff_refuses_polyglots_and_truncated_signatures() {
        // `%PDF` inside a page: infer would call it a PDF.
        let page = b"<html><body>%PDF-1.4 trick</body></html>";
        assert_eq!(detected(&sniff(page).unwrap_err()), "HTML 网页");
        let late = b"junk junk %PDF-1.4\n";
        assert_eq!(detected(&sniff(late).unwrap_err()), "格式异常的 PDF 文件");
        // Only the first four bytes of the PNG signature.
        assert!(sniff(&[0x89, b'P', b'N', b'G', 0, 0, 0, 0]).is_err());
        assert!(sniff(&[0xFF, 0xD8]).is_err());
    }

    #[test]
    fn refusal_message_names_file_detected_and_allowed_types() {
        let err = check_upload(
            "x.pdf",
            Some("application/pdf"),
            &exe(),
            &UploadLimits::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.message_zh(),
            "文件\"x.pdf\"不是 PDF、JPEG 或 PNG 文件（检测为：Windows 可执行文件），请重新上传"
        );
        let en = err.to_string();
        assert!(
            en.contains("\"x.pdf\"") && en.contains("Windows executable"),
            "{en}"
        );
        assert!(en.contains("PDF, JPEG or PNG"));
    }

    #[test]
    fn empty_file_is_refused_with_its_name() {
        let err = check_upload("空.pdf", None, b"", &UploadLimits::default()).unwrap_err();
        assert_eq!(
            err,
            UploadError::Empty {
                filename: Some("空.pdf".into())
            }
        );
        assert!(err.message_zh().contains("空文件"));
    }

    #[test]
    fn oversize_is_refused_with_the_limit_in_mb() {
        let limits = UploadLimits::default();
        let mut big = PDF.to_vec();
        big.resize(12_897_485, b' '); // 12.3 MiB
        let err = check_upload("合同.pdf", None, &big, &limits).unwrap_err();
        assert_eq!(
            err.message_zh(),
            "文件\"合同.pdf\"过大（12.3 MB），单个文件不能超过 10 MB，请压缩或拆分后重新上传"
        );
        assert!(err.to_string().contains("at most 10 MB"));
        // Exactly the limit is fine.
        big.truncate(10 * 1024 * 1024);
        assert!(check_upload("合同.pdf", None, &big, &limits).is_ok());
        big.push(b' ');
        assert!(matches!(
            check_upload("合同.pdf", None, &big, &limits),
            Err(UploadError::TooLarge {
                size: 10_485_761,
                ..
            })
        ));
        // Size is checked before type.
        let small = UploadLimits {
            max_file_bytes: 4,
            max_files: 1,
        };
        assert!(matches!(
            check_upload("a", None, &exe(), &small),
            Err(UploadError::TooLarge { .. })
        ));
    }

    #[test]
    fn mb_formatting() {
        assert_eq!(mb(10 * 1024 * 1024), "10");
        assert_eq!(mb(12_897_485), "12.3");
        assert_eq!(mb(1), "0");
        assert_eq!(mb(1_572_864), "1.5");
    }

    #[test]
    fn checked_upload_fields() {
        let c = check_upload(
            "scan.JPEG",
            Some("image/jpeg; charset=x"),
            JPEG,
            &UploadLimits::default(),
        )
        .unwrap();
        assert_eq!(c.media, AllowedMedia::Jpeg);
        assert_eq!(c.size, JPEG.len() as u64);
        assert_eq!(c.blake3_hex, blake3::hash(JPEG).to_hex().to_string());
        assert_eq!(c.safe_filename, "scan.JPEG");
        assert!(c.declared_type_matched);
        // The declared type is not trusted: a PNG declared as PDF is a PNG.
        let c = check_upload(
            "a.pdf",
            Some("application/pdf"),
            PNG,
            &UploadLimits::default(),
        )
        .unwrap();
        assert_eq!(c.media, AllowedMedia::Png);
        assert_eq!(c.safe_filename, "a.pdf.png");
        assert!(!c.declared_type_matched);
    }

    #[test]
    fn path_like_and_hostile_filenames() {
        let s = |n: &str| safe_filename(n, Some(AllowedMedia::Pdf));
        assert_eq!(s("../../etc/passwd"), "passwd.pdf");
        assert_eq!(s("C:\\Users\\张三\\Desktop\\房产证.pdf"), "房产证.pdf");
        assert_eq!(s("/abs/path/"), "未命名.pdf");
        assert_eq!(s(".."), "未命名.pdf");
        assert_eq!(s(".htaccess"), "htaccess.pdf");
        assert_eq!(s("a\u{0000}b\r\n.pdf"), "ab.pdf");
        assert_eq!(s("invoice\u{202E}fdp.exe"), "invoicefdp.exe.pdf");
        assert_eq!(s("<script>.pdf"), "_script_.pdf");
        assert_eq!(s("  报告 .pdf  "), "报告 .pdf");
        assert_eq!(s("扫描件"), "扫描件.pdf");
        assert_eq!(safe_filename("a/b\\c.txt", None), "c.txt");
        assert_eq!(safe_filename("", None), "未命名");

        let long = format!("{}.pdf", "长".repeat(300));
        let out = s(&long);
        assert_eq!(out.chars().count(), MAX_FILENAME_CHARS);
        assert!(out.ends_with("长.pdf"));
        let long_no_ext = "x".repeat(300);
        assert_eq!(
            safe_filename(&long_no_ext, None).chars().count(),
            MAX_FILENAME_CHARS
        );
    }

    #[test]
    fn count_limit() {
        let limits = UploadLimits::default();
        assert_eq!(limits.max_file_bytes, 10 * 1024 * 1024);
        assert_eq!(limits.check_count(20), Ok(()));
        let err = limits.check_count(21).unwrap_err();
        assert_eq!(err.message_zh(), "一次最多上传 20 个文件，请分批上传");
    }
}
