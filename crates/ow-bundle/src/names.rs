//! Syntax rules for names and identifiers in a header: item names, kinds, case ids, bundle ids
//! and media types. Each rule returns a human-readable reason on failure.

/// Longest item name allowed by the format (bytes of UTF-8); a receiver may set a lower limit.
pub const MAX_ITEM_NAME_BYTES: usize = 255;

/// Windows device names that cannot be used as file names, with or without an extension.
const WINDOWS_RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7",
    "COM8", "COM9", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    "CONIN$", "CONOUT$",
];

/// Checks that `name` is a plain file name that is safe on Linux and Windows:
///
/// * 1 to `max_len` bytes of UTF-8 (`max_len` is at most 255);
/// * not `.` or `..`;
/// * no `/`, `\`, `:` (Windows alternate data streams), NUL or other control characters
///   (C0, DEL and C1);
/// * no leading or trailing whitespace, and no trailing `.` (Windows strips it);
/// * not a Windows device name (`CON`, `NUL`, `COM1`, `LPT1`, … — with any extension, any case);
/// * none of the characters Windows forbids in file names: `<`, `>`, `"`, `|`, `?`, `*`.
pub fn validate_item_name(name: &str, max_len: usize) -> Result<(), String> {
    let max_len = max_len.min(MAX_ITEM_NAME_BYTES);
    if name.is_empty() {
        return Err("empty name".into());
    }
    if name.len() > max_len {
        return Err(format!(
            "{} bytes long, more than the limit of {max_len}",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Err("`.` and `..` are directory references".into());
    }
    for c in name.chars() {
        match c {
            '/' | '\\' => return Err("contains a path separator".into()),
            ':' => return Err("contains `:` (drive letters and Windows streams)".into()),
            '\0' => return Err("contains NUL".into()),
            '<' | '>' | '"' | '|' | '?' | '*' => {
                return Err(format!(
                    "contains {c:?}, which Windows forbids in file names"
                ));
            }
            c if c.is_control() => {
                return Err(format!("contains control character U+{:04X}", c as u32));
            }
            _ => {}
        }
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return Err("leading or trailing whitespace".into());
    }
    if name.ends_with('.') {
        return Err("ends with `.` (Windows strips it)".into());
    }
    let stem = name.split('.').next().unwrap_or(name).trim_end();
    if WINDOWS_RESERVED
        .iter()
        .any(|r| r.eq_ignore_ascii_case(stem))
    {
        return Err(format!("`{stem}` is a reserved device name on Windows"));
    }
    Ok(())
}

/// `[a-z0-9._-]{1,64}`: the bundle kind, e.g. `application.submitted`.
pub fn validate_kind(kind: &str) -> Result<(), String> {
    if kind.is_empty() || kind.len() > 64 {
        return Err(format!("must be 1 to 64 characters, found {}", kind.len()));
    }
    if !kind
        .bytes()
        .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-'))
    {
        return Err("only lowercase ASCII letters, digits, `.`, `_` and `-` are allowed".into());
    }
    Ok(())
}

/// `[A-Za-z0-9._-]{1,64}`, not starting with `.` or `-`: case ids and bundle ids.
pub(crate) fn validate_identifier(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 64 {
        return Err(format!("must be 1 to 64 characters, found {}", id.len()));
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err("only ASCII letters, digits, `.`, `_` and `-` are allowed".into());
    }
    if id.starts_with(['.', '-']) {
        return Err("must not start with `.` or `-`".into());
    }
    Ok(())
}

fn is_restricted_name(s: &str) -> bool {
    // RFC 6838 restricted-name: an alphanumeric first character, then up to 126 of
    // alphanumerics and ! # $ & - ^ _ . +
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 127
        && b[0].is_ascii_alphanumeric()
        && b.iter().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(
                    c,
                    b'!' | b'#' | b'$' | b'&' | b'-' | b'^' | b'_' | b'.' | b'+'
                )
        })
}

/// A media type `type/subtype` (RFC 6838 restricted names), optionally followed by `;`
/// parameters made of printable ASCII; at most 255 bytes.
pub(crate) fn validate_media_type(mt: &str) -> Result<(), String> {
    if mt.is_empty() || mt.len() > 255 {
        return Err(format!("must be 1 to 255 bytes, found {}", mt.len()));
    }
    let (essence, params) = match mt.split_once(';') {
        Some((e, p)) => (e, Some(p)),
        None => (mt, None),
    };
    let Some((ty, sub)) = essence.split_once('/') else {
        return Err("expected `type/subtype`".into());
    };
    if !is_restricted_name(ty) || !is_restricted_name(sub) {
        return Err("expected `type/subtype` made of letters, digits and !#$&-^_.+".into());
    }
    if let Some(p) = params
        && !p.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return Err("parameters must be printable ASCII".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_item_names() {
        for n in [
            "a",
            "申请书.pdf",
            "scan 001.tiff",
            "x.tar.gz",
            ".hidden",
            "CONSOLE.txt",
            "com10",
            &"a".repeat(255),
        ] {
            assert!(validate_item_name(n, 255).is_ok(), "{n}");
        }
    }

    #[test]
    fn bad_item_names() {
        for n in [
            "",
            ".",
            "..",
            "a/b",
            "/etc/passwd",
            "a\\b",
            "c:x",
            "file.txt:stream",
            "a\0b",
            "a\nb",
            "a\tb",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{9b}b",
            " a",
            "a ",
            "a.",
            "\u{3000}a",
            "CON",
            "con.txt",
            "Nul.tar.gz",
            "lpt1",
            "COM9.log",
            "a<b",
            "a|b",
            "a?",
            "*",
            "a\"b",
            &"a".repeat(256),
        ] {
            assert!(validate_item_name(n, 255).is_err(), "{n:?}");
        }
        assert!(validate_item_name("abcd", 3).is_err());
    }

    #[test]
    fn kinds_and_identifiers() {
        assert!(validate_kind("application.submitted").is_ok());
        assert!(validate_kind("survey-package_v2").is_ok());
        for k in ["", "Application", "a b", "a/b", &"a".repeat(65)] {
            assert!(validate_kind(k).is_err(), "{k}");
        }
        assert!(validate_identifier("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b").is_ok());
        assert!(validate_identifier("QZ-2026.000123_A").is_ok());
        for id in ["", "-x", ".x", "a b", "案件1", &"a".repeat(65)] {
            assert!(validate_identifier(id).is_err(), "{id}");
        }
    }

    #[test]
    fn media_types() {
        for m in [
            "application/pdf",
            "image/tiff",
            "application/vnd.ms-excel",
            "text/plain; charset=utf-8",
            "application/geo+json",
        ] {
            assert!(validate_media_type(m).is_ok(), "{m}");
        }
        for m in ["", "pdf", "/pdf", "application/", "text/plain;\n", "a b/c"] {
            assert!(validate_media_type(m).is_err(), "{m:?}");
        }
    }
}
