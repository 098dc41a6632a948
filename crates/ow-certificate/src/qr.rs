//! The verification link and its QR code.
//!
//! The QR code printed on a certificate holds the link to the portal's public `/verify` page
//! with the certificate number and the verification code in the query string
//! (`application/x-www-form-urlencoded`, UTF-8):
//!
//! ```text
//! https://portal.example/verify?cert=%E9%B2%81%282026%29…%E5%8F%B7&code=7KQ4M-X9PTB
//! ```
//!
//! Scanning it with any phone camera opens the page, which answers 有效 / 已注销 / 非真实证书.

use ow_domain::CertificateNumber;
use qrcode::render::svg;
use qrcode::{EcLevel, QrCode};

use crate::code::VerificationCode;
use crate::error::CertificateError;

/// Query parameter holding the certificate number.
pub const CERT_PARAM: &str = "cert";
/// Query parameter holding the verification code.
pub const CODE_PARAM: &str = "code";
/// Longest query string [`parse_verify_query`] reads.
pub const MAX_QUERY_LEN: usize = 2048;

/// The link to `/verify` for one certificate: `base_url`, then `?` (or `&` if `base_url`
/// already has a query), then `cert=<number>&code=<XXXXX-XXXXX>`, form-urlencoded.
pub fn verify_url(
    base_url: &str,
    certificate_number: &CertificateNumber,
    code: &VerificationCode,
) -> String {
    let base = base_url.trim().trim_end_matches(['?', '&']);
    let separator = if base.contains('?') { '&' } else { '?' };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair(CERT_PARAM, certificate_number.as_str())
        .append_pair(CODE_PARAM, &code.grouped())
        .finish();
    format!("{base}{separator}{query}")
}

/// A parsed `/verify` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyQuery {
    /// The certificate number asked about.
    pub certificate_number: CertificateNumber,
    /// The verification code given.
    pub code: VerificationCode,
}

/// Parses the query string of a `/verify` request (with or without the leading `?`), as made by
/// [`verify_url`] or typed into the form: `cert` and `code` must each appear once; other
/// parameters are ignored. The number is parsed leniently (full-width brackets) and so is the
/// code (lower case, spaces, hyphens).
pub fn parse_verify_query(query: &str) -> Result<VerifyQuery, CertificateError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    if query.len() > MAX_QUERY_LEN {
        return Err(CertificateError::Query {
            reason: format!(
                "the query has {} bytes, more than {MAX_QUERY_LEN}",
                query.len()
            ),
        });
    }
    let mut number = None;
    let mut code = None;
    for (name, value) in form_urlencoded::parse(query.as_bytes()) {
        let slot = match name.as_ref() {
            CERT_PARAM => &mut number,
            CODE_PARAM => &mut code,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(CertificateError::Query {
                reason: format!("the parameter {name:?} appears more than once"),
            });
        }
    }
    let missing = |name: &str| CertificateError::Query {
        reason: format!("the parameter {name:?} is missing"),
    };
    let number = number.ok_or_else(|| missing(CERT_PARAM))?;
    let code = code.ok_or_else(|| missing(CODE_PARAM))?;
    let certificate_number =
        CertificateNumber::parse(&number).map_err(|err| CertificateError::Query {
            reason: format!("the certificate number is invalid: {err}"),
        })?;
    let code = VerificationCode::parse(&code)?;
    Ok(VerifyQuery {
        certificate_number,
        code,
    })
}

/// An SVG image of a QR code holding `text` (UTF-8 bytes, error correction level M, with the
/// standard quiet zone), starting at `<svg` so it can be inlined in HTML or saved as a file.
pub fn qr_svg(text: &str) -> Result<String, CertificateError> {
    let code = QrCode::with_error_correction_level(text.as_bytes(), EcLevel::M).map_err(|err| {
        CertificateError::Qr {
            reason: err.to_string(),
        }
    })?;
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // Drop the XML declaration, which has no place inside an HTML document.
    match image.find("<svg") {
        Some(start) => Ok(image[start..].to_owned()),
        None => Err(CertificateError::Qr {
            reason: "the QR renderer produced no <svg> element".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number() -> CertificateNumber {
        CertificateNumber::parse("鲁(2026)青州市不动产权第0000123号").expect("valid")
    }

    fn code() -> VerificationCode {
        VerificationCode::parse("7KQ4M-X9PTB").expect("valid")
    }

    #[test]
    fn url_is_percent_encoded() {
        let url = verify_url("https://portal.example/verify", &number(), &code());
        assert_eq!(
            url,
            "https://portal.example/verify?cert=%E9%B2%81%282026%29%E9%9D%92%E5%B7%9E%E5%B8%82\
             %E4%B8%8D%E5%8A%A8%E4%BA%A7%E6%9D%83%E7%AC%AC0000123%E5%8F%B7&code=7KQ4M-X9PTB"
        );
        assert!(url.is_ascii());
        let with_query = verify_url("https://portal.example/verify?lang=zh", &number(), &code());
        assert!(with_query.starts_with("https://portal.example/verify?lang=zh&cert="));
        let trailing = verify_url(" https://portal.example/verify? ", &number(), &code());
        assert_eq!(trailing, url);
    }

    #[test]
    fn query_round_trip_and_variants() {
        let url = verify_url("https://portal.example/verify", &number(), &code());
        let query = url.split_once('?').expect("query").1;
        let expected = VerifyQuery {
            certificate_number: number(),
            code: code(),
        };
        assert_eq!(parse_verify_query(query).expect("parse"), expected);
        assert_eq!(
            parse_verify_query(&format!("?{query}")).expect("with ?"),
            expected
        );
        // Typed into a form: full-width brackets, lower case, spaces as '+'.
        let typed = form_urlencoded::Serializer::new(String::new())
            .append_pair("lang", "zh")
            .append_pair("code", "7kq4m x9ptb")
            .append_pair("cert", "鲁（2026）青州市不动产权第0000123号")
            .finish();
        assert_eq!(parse_verify_query(&typed).expect("typed"), expected);
    }

    #[test]
    fn query_refusals() {
        let is_query_error =
            |q: &str| matches!(parse_verify_query(q), Err(CertificateError::Query { .. }));
        assert!(is_query_error(""));
        assert!(is_query_error("code=7KQ4M-X9PTB"));
        assert!(is_query_error("cert=%E9%B2%81"));
        assert!(is_query_error("cert=x&cert=y&code=7KQ4M-X9PTB"));
        assert!(is_query_error(&"a".repeat(MAX_QUERY_LEN + 1)));
        let err = parse_verify_query("cert=abc&code=7KQ4M-X9PTB").expect_err("bad number");
        assert!(
            err.to_string().contains("certificate number is invalid"),
            "{err}"
        );
        let url = verify_url("https://p.example/verify", &number(), &code());
        let bad_code = url.replace("7KQ4M-X9PTB", "7KQ4M-X9PT0");
        let err =
            parse_verify_query(bad_code.split_once('?').expect("query").1).expect_err("bad code");
        assert!(
            matches!(err, CertificateError::VerificationCode(_)),
            "{err}"
        );
    }

    #[test]
    fn qr_is_an_svg() {
        let url = verify_url("https://portal.example/verify", &number(), &code());
        let svg = qr_svg(&url).expect("qr");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.ends_with("</svg>"));
        assert!(svg.contains("<path"));
        assert!(!svg.contains("<?xml"));
        // Deterministic for the same content.
        assert_eq!(qr_svg(&url).expect("qr"), svg);
        assert_ne!(qr_svg("other").expect("qr"), svg);
    }

    #[test]
    fn qr_refuses_oversize_content() {
        let err = qr_svg(&"x".repeat(5000)).expect_err("too long for any QR version");
        assert!(matches!(err, CertificateError::Qr { .. }), "{err}");
    }
}
