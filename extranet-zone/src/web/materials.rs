//! The materials of a case, served to the registrar of the case's district.
//!
//! PDF, JPEG and PNG open in the browser (`Content-Disposition: inline`) so the registrar can
//! compare them with the application at the counter; any other type downloads as an
//! attachment. Either way the response names the real file name (RFC 6266 `filename*`), says
//! `nosniff`, and carries a sandboxing Content-Security-Policy: a material is the citizen's
//! file and is never allowed to run script or reach anything in the back office's origin.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header::{
    CONTENT_DISPOSITION, CONTENT_SECURITY_POLICY, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use super::{PageError, authed, internal};
use crate::AppState;
use crate::cases::{self, Material};

/// The routes of this part of the back office.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/cases/{no}/materials/{id}", get(material))
}

/// The policy of a material opened in the browser: a sandboxed document (no script, a unique
/// origin) that may show itself and nothing else. Inline styles and `data:`/`blob:` images are
/// what the browsers' own PDF and image viewers use.
pub const MATERIAL_CSP: &str = "sandbox; default-src 'none'; img-src 'self' data: blob:; \
     style-src 'unsafe-inline'; object-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

/// The media types that open in the browser.
pub const INLINE_TYPES: [&str; 3] = ["application/pdf", "image/jpeg", "image/png"];

/// Whether a material of `media_type` opens in the browser.
pub fn opens_inline(media_type: &str) -> bool {
    INLINE_TYPES.contains(&media_type)
}

/// Whether `bytes` start as `media_type` files do. The import checked this already; it is
/// checked again because a file that is served inline must be what it says.
fn magic_matches(media_type: &str, bytes: &[u8]) -> bool {
    match media_type {
        "application/pdf" => bytes.starts_with(b"%PDF-"),
        "image/jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        _ => false,
    }
}

/// RFC 8187 `attr-char`s stay; everything else is percent-encoded.
const ATTR_CHAR: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The plain-ASCII stand-in for browsers that ignore `filename*`: letters, digits, `-`, `_` and
/// `.` of the real name (others become `_`), or `material.<ext>` when nothing readable is left.
fn ascii_fallback(file_name: &str, media_type: &str) -> String {
    let kept: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    let stem_readable = kept
        .rsplit_once('.')
        .map_or(kept.as_str(), |(stem, _)| stem)
        .chars()
        .any(|c| c.is_ascii_alphanumeric());
    if stem_readable && !kept.starts_with('.') {
        return kept;
    }
    let ext = match media_type {
        "application/pdf" => ".pdf",
        "image/jpeg" => ".jpg",
        "image/png" => ".png",
        _ => "",
    };
    format!("material{ext}")
}

/// `inline` or `attachment` with the real name: `filename="…"` (ASCII stand-in) and
/// `filename*=UTF-8''…` (percent-encoded UTF-8).
pub fn content_disposition(disposition: &str, file_name: &str, media_type: &str) -> HeaderValue {
    let value = format!(
        "{disposition}; filename=\"{}\"; filename*=UTF-8''{}",
        ascii_fallback(file_name, media_type),
        utf8_percent_encode(file_name, ATTR_CHAR)
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// The bytes of material `m` of case `no`, checked against the hash recorded at import.
async fn read_material(state: &AppState, no: &str, m: &Material) -> Result<Vec<u8>, PageError> {
    // The sealed file is opened on a blocking thread; every chunk is authenticated (a replaced
    // or altered file fails), and the bytes are checked against the row's hash as well.
    let (pii, data_dir, id) = (
        state.pii.clone(),
        state.data_dir().to_path_buf(),
        m.id.clone(),
    );
    let bytes = tokio::task::spawn_blocking(move || {
        let (mut reader, _) =
            crate::materials::open_blocking(&pii, &data_dir, &id).map_err(|e| e.to_string())?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut bytes).map_err(|e| e.to_string())?;
        Ok::<_, String>(bytes)
    })
    .await
    .map_err(internal)?
    .map_err(|e| PageError::Internal(format!("material {} of {no}: {e}", m.id)))?;
    if blake3::hash(&bytes).to_hex().as_str() != m.blake3 {
        return Err(PageError::Internal(format!(
            "material {} of {no} does not match its hash",
            m.id
        )));
    }
    Ok(bytes)
}

async fn material(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((no, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let auth = authed(&state, &headers).await?;
    let mut conn = state.store.reader().acquire().await.map_err(internal)?;
    cases::get(&mut conn, &auth.staff.district_code, &no)
        .await
        .map_err(internal)?
        .ok_or(PageError::NotFound)?;
    let materials = cases::materials(&mut conn, &state.pii, &no)
        .await
        .map_err(internal)?;
    drop(conn);
    let m = materials
        .into_iter()
        .find(|m| m.id == id)
        .ok_or(PageError::NotFound)?;
    let bytes = read_material(&state, &no, &m).await?;
    let inline = opens_inline(&m.media_type) && magic_matches(&m.media_type, &bytes);
    let (media_type, disposition) = if inline {
        (m.media_type.as_str(), "inline")
    } else if opens_inline(&m.media_type) {
        tracing::warn!(application_no = %no, material = %m.id,
            "material does not start as its media type says; served as a download");
        ("application/octet-stream", "attachment")
    } else {
        (m.media_type.as_str(), "attachment")
    };
    tracing::info!(application_no = %no, material = %m.id, staff_id = %auth.staff.id,
        disposition, "material opened");
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(media_type)
            .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(
        CONTENT_DISPOSITION,
        content_disposition(disposition, &m.file_name, media_type),
    );
    h.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(MATERIAL_CSP),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disposition_names_the_real_file() {
        let v = content_disposition("inline", "房屋买卖合同 (签字页).pdf", "application/pdf");
        assert_eq!(
            v.to_str().unwrap_or_default(),
            "inline; filename=\"material.pdf\"; filename*=UTF-8''%E6%88%BF%E5%B1%8B%E4%B9%B0%E5%8D%96\
             %E5%90%88%E5%90%8C%20%28%E7%AD%BE%E5%AD%97%E9%A1%B5%29.pdf"
        );
        let v = content_disposition("attachment", "scan_01.PNG", "image/png");
        assert_eq!(
            v.to_str().unwrap_or_default(),
            "attachment; filename=\"scan_01.PNG\"; filename*=UTF-8''scan_01.PNG"
        );
    }

    #[test]
    fn hostile_names_cannot_break_the_header() {
        for name in [
            "a\"; filename=evil.html",
            "line\r\nSet-Cookie: x=1",
            "../../etc/passwd",
            "",
            "\u{202e}fdp.exe",
        ] {
            let v = content_disposition("inline", name, "application/pdf");
            let s = v.to_str().unwrap_or_default();
            assert!(s.starts_with("inline; filename=\""), "{s}");
            let fallback = s.split('"').nth(1).unwrap_or_default();
            assert!(
                fallback
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
                "{s}"
            );
            assert_eq!(s.matches('"').count(), 2, "{s}");
            assert!(
                !s.contains('\r') && !s.contains('\n') && !s.contains('/'),
                "{s}"
            );
        }
    }

    #[test]
    fn only_pdf_and_images_open_inline_and_only_when_they_are_what_they_say() {
        assert!(opens_inline("application/pdf"));
        assert!(opens_inline("image/png"));
        assert!(!opens_inline("text/html"));
        assert!(!opens_inline("image/svg+xml"));
        assert!(magic_matches("application/pdf", b"%PDF-1.7\n"));
        assert!(!magic_matches("application/pdf", b"<html><script>"));
        assert!(magic_matches("image/jpeg", &[0xFF, 0xD8, 0xFF, 0xE0]));
        assert!(!magic_matches("image/png", b"GIF89a"));
    }
}
