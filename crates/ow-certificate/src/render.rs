//! The HTML page of a certificate ([`render_html`]): on a screen it is as wide as the screen
//! (a phone shows every field, label above value); printed it is an A4 sheet in the style of the
//! paper 不动产权证书 / 不动产登记证明, with the QR code inline. No JavaScript, no external
//! resources; every value is HTML-escaped by the template (askama escapes by default), and only
//! the QR code's SVG, which this crate generates from the verification link, is inserted as
//! markup.
//!
//! Nothing is masked here: this is the holder's own certificate.

use askama::Template;
use chrono::{DateTime, Datelike, FixedOffset};
use ow_domain::CertificateKind;

use crate::document::Holder;
use crate::error::CertificateError;
use crate::qr::{qr_svg, verify_url};
use crate::signing::SignedCertificate;

/// One row of the holder or obligor table.
struct PartyRow<'a> {
    name: &'a str,
    id_type: &'static str,
    id_number: &'a str,
    share: String,
}

impl<'a> PartyRow<'a> {
    fn of(holder: &'a Holder) -> Self {
        Self {
            name: holder.name.as_str(),
            id_type: holder.id_type.name_zh(),
            id_number: &holder.id_number,
            share: holder.share.map(|s| s.to_string()).unwrap_or_default(),
        }
    }
}

/// Links shown above the certificate on screen (never printed): the PDF and the way back.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScreenLinks<'a> {
    /// Where the PDF of this certificate is downloaded.
    pub pdf: Option<&'a str>,
    /// Where the JSON file of this certificate is downloaded.
    pub json: Option<&'a str>,
    /// The page to go back to.
    pub back: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "certificate.html")]
struct CertificatePage<'a> {
    links: ScreenLinks<'a>,
    title: &'static str,
    is_proof: bool,
    number: &'a str,
    license_id: &'a str,
    issuer: &'a str,
    holders: Vec<PartyRow<'a>>,
    any_share: bool,
    joint_ownership: &'static str,
    obligors: Vec<PartyRow<'a>>,
    location: &'a str,
    unit_code: &'a str,
    right_type: &'static str,
    right_nature: &'a str,
    registration_type: &'static str,
    usage: &'a str,
    area_m2: &'a str,
    use_term: &'a str,
    recorded_date: String,
    issued_date: String,
    case_id: &'a str,
    replaces: Vec<&'a str>,
    notes: &'a str,
    verification_code: String,
    verify_base_url: &'a str,
    qr_svg: String,
    key_id: &'a str,
}

/// Renders the printable page of a signed certificate. `verify_base_url` is the portal's public
/// verification page, e.g. `https://portal.example/verify`; the QR code holds
/// [`verify_url`] of it, and the page tells the reader to verify there.
///
/// The page is rendered as given: call [`SignedCertificate::verify`] first if the certificate
/// came from outside.
pub fn render_html(
    signed: &SignedCertificate,
    verify_base_url: &str,
) -> Result<String, CertificateError> {
    render_html_with_links(signed, verify_base_url, ScreenLinks::default())
}

/// [`render_html`] with links above the certificate on screen (PDF, JSON, back).
pub fn render_html_with_links(
    signed: &SignedCertificate,
    verify_base_url: &str,
    links: ScreenLinks<'_>,
) -> Result<String, CertificateError> {
    let cert = &signed.certificate;
    let link = verify_url(
        verify_base_url,
        &cert.certificate_number,
        &cert.verification_code,
    );
    let page = CertificatePage {
        links,
        title: cert.kind().name_zh(),
        is_proof: cert.kind() == CertificateKind::RegistrationProof,
        number: cert.certificate_number.as_str(),
        license_id: cert.license_id.as_str(),
        issuer: &cert.issuer,
        holders: cert.holders.iter().map(PartyRow::of).collect(),
        any_share: cert.holders.iter().any(|h| h.share.is_some()),
        joint_ownership: cert.joint_ownership.name_zh(),
        obligors: cert.obligors.iter().map(PartyRow::of).collect(),
        location: &cert.location,
        unit_code: cert.unit_code.as_str(),
        right_type: cert.right_type.name_zh(),
        right_nature: &cert.right_nature,
        registration_type: cert.registration_type.name_zh(),
        usage: &cert.usage,
        area_m2: cert.area_m2.as_str(),
        use_term: &cert.use_term,
        recorded_date: date_zh(&cert.recorded_at),
        issued_date: date_zh(&cert.issued_at),
        case_id: &cert.case_id,
        replaces: cert.replaces.iter().map(|n| n.as_str()).collect(),
        notes: &cert.notes,
        verification_code: cert.verification_code.grouped(),
        verify_base_url: verify_base_url.trim(),
        qr_svg: qr_svg(&link)?,
        key_id: &signed.key_id,
    };
    page.render().map_err(|err| CertificateError::Render {
        reason: err.to_string(),
    })
}

/// `2026年3月2日`, in the timestamp's own offset.
fn date_zh(at: &DateTime<FixedOffset>) -> String {
    format!("{}年{}月{}日", at.year(), at.month(), at.day())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::sign;
    use crate::testutil::{fixed_key, sample, sample_in_shares};
    use ow_domain::PersonName;

    const BASE: &str = "https://portal.example/verify";

    #[test]
    fn page_holds_the_certificate() {
        let cert = sample_in_shares();
        let signed = sign(&cert, &fixed_key()).expect("sign");
        let html = render_html(&signed, BASE).expect("render");
        assert!(html.starts_with("<!DOCTYPE html>"));
        for expected in [
            "鲁(2026)青州市不动产权第0000123号",
            "中华人民共和国",
            "不动产权证书",
            "张小三",
            "370781199001012347",
            "李小四",
            "按份共有",
            "1/2",
            "青州市云门山街道驼山路88号3号楼2单元101室",
            "370781001001GB00001F00010101",
            "国有建设用地使用权/房屋（构筑物）所有权",
            "城镇住宅用地/成套住宅",
            "89.50",
            "2026年3月2日",
            "青州市不动产登记中心",
            "7KQ4M-X9PTB",
            "<svg",
            "https://portal.example/verify",
            cert.license_id.as_str(),
            &signed.key_id,
            "@media print",
            "size: A4",
        ] {
            assert!(html.contains(expected), "missing {expected}");
        }
        assert!(!html.contains("<script"), "no JavaScript");
        assert!(!html.contains("<?xml"));
        assert!(!html.contains("http://") || html.contains("http://www.w3.org/2000/svg"));
    }

    #[test]
    fn the_screen_gets_its_own_layout_and_print_keeps_the_a4_sheet() {
        let signed = sign(&sample_in_shares(), &fixed_key()).expect("sign");
        let html = render_html_with_links(
            &signed,
            BASE,
            ScreenLinks {
                pdf: Some("/certificates/1/pdf"),
                json: Some("/certificates/1/download"),
                back: Some("/certificates"),
            },
        )
        .expect("render");
        let print_at = html.find("@media print").expect("print rules");
        let screen_css = &html[..print_at];
        // On screen nothing is wider than the viewport: no fixed 210 mm sheet.
        assert_eq!(
            screen_css.matches("width: 210mm").count(),
            screen_css.matches("max-width: 210mm").count(),
            "{screen_css}"
        );
        assert!(screen_css.contains("max-width: 210mm"));
        assert!(html.contains("@media (max-width: 40em)"));
        // Printed, the sheet is A4: the page size, the full-height frame, table rows again.
        assert!(html.contains("@page { size: A4"));
        assert!(html[print_at..].contains(".frame { min-height: 270mm"));
        assert!(html[print_at..].contains("display: table-cell"));
        // The links are on screen only.
        assert!(html.contains("href=\"/certificates/1/pdf\""));
        assert!(html.contains("class=\"screen-only toolbar\""));
        let plain = render_html(&signed, BASE).expect("render");
        assert!(!plain.contains("class=\"screen-only toolbar\""));
    }

    #[test]
    fn proof_page_uses_proof_labels() {
        let mut cert = sample();
        cert.certificate_number =
            ow_domain::CertificateNumber::parse("鲁(2026)青州市不动产证明第0000456号")
                .expect("proof number");
        cert.license_id =
            crate::LicenseId::new(CertificateKind::RegistrationProof, "370781", 456, 1)
                .expect("license id");
        cert.right_type = ow_domain::RightType::Mortgage;
        cert.obligors.push(sample_in_shares().holders[1].clone());
        cert.obligors[0].share = None;
        let signed = sign(&cert, &fixed_key()).expect("sign");
        let html = render_html(&signed, BASE).expect("render");
        assert!(html.contains("不动产登记证明"));
        assert!(html.contains("证明权利或事项"));
        assert!(html.contains("义务人"));
        assert!(html.contains("抵押权"));
    }

    #[test]
    fn values_are_escaped() {
        let mut cert = sample();
        cert.holders[0].name = PersonName::parse("<script>alert(1)</script>").expect("name");
        cert.holders[0].id_type = crate::IdDocumentType::Passport;
        cert.holders[0].id_number = "E1234\"5678'".into();
        cert.notes = "a & b <b>bold</b>\n第二行".into();
        cert.location = "某路<img src=x onerror=alert(1)>".into();
        let signed = sign(&cert, &fixed_key()).expect("sign");
        let html =
            render_html(&signed, "https://portal.example/verify?a=1&b=\"2\"").expect("render");
        assert!(!html.contains("<script"), "unescaped script tag");
        assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
        assert!(!html.contains("<img"));
        assert!(!html.contains("<b>bold"));
        assert!(html.contains("a &#38; b &#60;b&#62;bold&#60;/b&#62;"));
        assert!(html.contains("E1234&#34;5678&#39;"));
        assert!(!html.contains("b=\"2\""));
    }
}
