//! The e-certificate as a PDF ([`render_pdf`]) and the signed document inside one
//! ([`signed_from_pdf`]).
//!
//! The PDF is one A4 page laid out like the printable page (number, holders, unit, right, the
//! QR code and the verification code), with the signed e-certificate JSON attached to the PDF as
//! an embedded file named [`PDF_ATTACHMENT_NAME`] (the catalog's `/Names /EmbeddedFiles`). The
//! page itself
//! is not signed; what is signed, with the same Ed25519 key as the `.json` file, is the attached
//! document. Verifying a PDF means taking that attachment out ([`signed_from_pdf`]) and
//! verifying it exactly like a `.json` file; `docs/e-certificate.md` says so for second
//! implementations.
//!
//! Chinese text needs a CJK font. None is bundled: the caller loads one ([`CertificateFont`],
//! e.g. Debian's `fonts-wqy-microhei` or `fonts-noto-cjk`); krilla embeds the subset of glyphs
//! the page uses. A certificate with a character the font lacks is refused
//! ([`CertificateError::FontMissesCharacters`]) rather than printed with blank boxes.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Datelike, FixedOffset};
use krilla::Document;
use krilla::color::rgb;
use krilla::embed::{AssociationKind, EmbeddedFile, MimeType};
use krilla::geom::{PathBuilder, Point, Rect};
use krilla::num::NormalizedF32;
use krilla::page::PageSettings;
use krilla::paint::{Fill, FillRule, Stroke};
use krilla::surface::Surface;
use krilla::text::{Font, TextDirection};
use ow_domain::CertificateKind;
use qrcode::{EcLevel, QrCode};
use skrifa::instance::{LocationRef, Size};
use skrifa::{FontRef, MetadataProvider};

use crate::document::Holder;
use crate::error::CertificateError;
use crate::qr::verify_url;
use crate::signing::{MAX_SIGNED_JSON_BYTES, SignedCertificate};

/// The name of the signed e-certificate JSON attached to the PDF.
pub const PDF_ATTACHMENT_NAME: &str = "e-certificate.json";

/// The largest PDF [`signed_from_pdf`] reads. A certificate PDF with its font subset is a few
/// hundred kilobytes; anything far larger is not one.
pub const MAX_PDF_BYTES: usize = 4 * 1024 * 1024;

/// A CJK font for the PDF: the bytes of a TrueType/OpenType file (or one face of a collection).
#[derive(Clone)]
pub struct CertificateFont {
    data: Arc<Vec<u8>>,
    index: u32,
    font: Font,
}

impl std::fmt::Debug for CertificateFont {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateFont")
            .field("bytes", &self.data.len())
            .field("index", &self.index)
            .finish()
    }
}

impl CertificateFont {
    /// A font from its bytes; `index` is the face in a collection (`.ttc`), 0 otherwise.
    pub fn from_bytes(data: Vec<u8>, index: u32) -> Result<Self, CertificateError> {
        let data = Arc::new(data);
        if FontRef::from_index(data.as_slice(), index).is_err() {
            return Err(CertificateError::Font {
                reason: format!("face {index} is not a TrueType/OpenType font"),
            });
        }
        let font = Font::new(krilla::Data::from(data.clone()), index).ok_or_else(|| {
            CertificateError::Font {
                reason: format!("face {index} cannot be used for PDF text"),
            }
        })?;
        Ok(Self { data, index, font })
    }

    /// Reads the font file at `path` (face `index`).
    pub fn load(path: &Path, index: u32) -> Result<Self, CertificateError> {
        let data = std::fs::read(path).map_err(|err| CertificateError::Font {
            reason: format!("cannot read {}: {err}", path.display()),
        })?;
        Self::from_bytes(data, index).map_err(|err| match err {
            CertificateError::Font { reason } => CertificateError::Font {
                reason: format!("{}: {reason}", path.display()),
            },
            other => other,
        })
    }

    fn face(&self) -> Result<FontRef<'_>, CertificateError> {
        FontRef::from_index(self.data.as_slice(), self.index).map_err(|err| {
            CertificateError::Font {
                reason: err.to_string(),
            }
        })
    }

    /// The characters of `text` the font has no glyph for (whitespace aside).
    pub fn missing(&self, text: &str) -> Result<Vec<char>, CertificateError> {
        let face = self.face()?;
        let charmap = face.charmap();
        let mut missing: Vec<char> = text
            .chars()
            .filter(|c| !c.is_whitespace() && charmap.map(*c).is_none())
            .collect();
        missing.sort_unstable();
        missing.dedup();
        Ok(missing)
    }
}

/// Measures text in points with the font's advance widths.
struct Measure<'a> {
    charmap: skrifa::charmap::Charmap<'a>,
    metrics: skrifa::metrics::GlyphMetrics<'a>,
    upem: f32,
}

impl<'a> Measure<'a> {
    fn new(face: &FontRef<'a>) -> Self {
        let upem = face
            .metrics(Size::unscaled(), LocationRef::default())
            .units_per_em;
        Self {
            charmap: face.charmap(),
            metrics: face.glyph_metrics(Size::unscaled(), LocationRef::default()),
            upem: f32::from(upem.max(1)),
        }
    }

    fn width(&self, text: &str, size: f32) -> f32 {
        text.chars()
            .map(|c| {
                self.charmap
                    .map(c)
                    .and_then(|g| self.metrics.advance_width(g))
                    .map_or(size, |w| w / self.upem * size)
            })
            .sum()
    }

    /// Splits `text` into lines no wider than `max` points (at any character: Chinese has no
    /// spaces between words; explicit line breaks are kept).
    fn wrap(&self, text: &str, size: f32, max: f32) -> Vec<String> {
        let mut lines = Vec::new();
        for paragraph in text.split('\n') {
            let mut line = String::new();
            let mut width = 0.0;
            for c in paragraph.chars() {
                let w = self.width(c.encode_utf8(&mut [0; 4]), size);
                if width + w > max && !line.is_empty() {
                    lines.push(std::mem::take(&mut line));
                    width = 0.0;
                }
                line.push(c);
                width += w;
            }
            lines.push(line);
        }
        lines
    }
}

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 40.0;
const RED: (u8, u8, u8) = (0x8c, 0x2f, 0x1e);
const INK: (u8, u8, u8) = (0x1a, 0x1a, 0x1a);
const GREY: (u8, u8, u8) = (0x55, 0x55, 0x55);

fn fill(colour: (u8, u8, u8)) -> Fill {
    Fill {
        paint: rgb::Color::new(colour.0, colour.1, colour.2).into(),
        opacity: NormalizedF32::ONE,
        rule: FillRule::NonZero,
    }
}

fn stroke(colour: (u8, u8, u8), width: f32) -> Stroke {
    Stroke {
        paint: rgb::Color::new(colour.0, colour.1, colour.2).into(),
        width,
        ..Stroke::default()
    }
}

fn rect_path(x: f32, y: f32, w: f32, h: f32) -> Option<krilla::geom::Path> {
    let mut pb = PathBuilder::new();
    pb.push_rect(Rect::from_xywh(x, y, w, h)?);
    pb.finish()
}

struct Painter<'s, 'p, 'f> {
    surface: &'s mut Surface<'p>,
    font: &'f CertificateFont,
    measure: Measure<'f>,
}

impl Painter<'_, '_, '_> {
    /// Draws one line of text with its baseline at `y`.
    fn text(&mut self, x: f32, y: f32, size: f32, colour: (u8, u8, u8), text: &str) {
        self.surface.set_fill(Some(fill(colour)));
        self.surface.draw_text(
            Point::from_xy(x, y),
            self.font.font.clone(),
            size,
            text,
            false,
            TextDirection::LeftToRight,
        );
    }

    fn centred(&mut self, y: f32, size: f32, colour: (u8, u8, u8), text: &str) {
        let w = self.measure.width(text, size);
        self.text((PAGE_W - w) / 2.0, y, size, colour, text);
    }

    fn frame(&mut self, x: f32, y: f32, w: f32, h: f32, colour: (u8, u8, u8), width: f32) {
        if let Some(path) = rect_path(x, y, w, h) {
            self.surface.set_fill(None);
            self.surface.set_stroke(Some(stroke(colour, width)));
            self.surface.draw_path(&path);
            self.surface.set_stroke(None);
        }
    }

    fn filled(&mut self, x: f32, y: f32, w: f32, h: f32, colour: (u8, u8, u8)) {
        if let Some(path) = rect_path(x, y, w, h) {
            self.surface.set_stroke(None);
            self.surface.set_fill(Some(fill(colour)));
            self.surface.draw_path(&path);
        }
    }

    /// A table row: the label on the left, the value wrapped on the right; returns its height.
    fn row(&mut self, x: f32, y: f32, w: f32, label: &str, value: &str) -> f32 {
        const LABEL_W: f32 = 86.0;
        const SIZE: f32 = 10.5;
        const LEAD: f32 = 15.0;
        const PAD: f32 = 5.0;
        let lines = self.measure.wrap(value, SIZE, w - LABEL_W - 2.0 * PAD);
        let h = f32::from(u16::try_from(lines.len()).unwrap_or(u16::MAX)) * LEAD + 2.0 * PAD;
        self.filled(x, y, LABEL_W, h, (0xf4, 0xef, 0xe2));
        self.frame(x, y, LABEL_W, h, GREY, 0.6);
        self.frame(x + LABEL_W, y, w - LABEL_W, h, GREY, 0.6);
        let lw = self.measure.width(label, SIZE);
        self.text(x + (LABEL_W - lw) / 2.0, y + PAD + SIZE, SIZE, INK, label);
        for (i, line) in lines.iter().enumerate() {
            let dy = f32::from(u16::try_from(i).unwrap_or(u16::MAX)) * LEAD;
            self.text(x + LABEL_W + PAD, y + PAD + SIZE + dy, SIZE, INK, line);
        }
        h
    }

    fn qr(&mut self, x: f32, y: f32, side: f32, link: &str) -> Result<(), CertificateError> {
        let code =
            QrCode::with_error_correction_level(link.as_bytes(), EcLevel::M).map_err(|err| {
                CertificateError::Qr {
                    reason: err.to_string(),
                }
            })?;
        let n = code.width();
        let quiet = 2usize;
        let cells = f32::from(u16::try_from(n + 2 * quiet).unwrap_or(u16::MAX));
        let cell = side / cells;
        self.filled(x, y, side, side, (0xff, 0xff, 0xff));
        let mut pb = PathBuilder::new();
        for (i, colour) in code.to_colors().into_iter().enumerate() {
            if colour == qrcode::Color::Dark {
                let col = f32::from(u16::try_from(i % n + quiet).unwrap_or(u16::MAX));
                let row = f32::from(u16::try_from(i / n + quiet).unwrap_or(u16::MAX));
                if let Some(r) = Rect::from_xywh(x + col * cell, y + row * cell, cell, cell) {
                    pb.push_rect(r);
                }
            }
        }
        if let Some(path) = pb.finish() {
            self.surface.set_stroke(None);
            self.surface.set_fill(Some(fill((0, 0, 0))));
            self.surface.draw_path(&path);
        }
        Ok(())
    }
}

fn party_line(h: &Holder, with_share: bool) -> String {
    let mut line = format!(
        "{}　{} {}",
        h.name.as_str(),
        h.id_type.name_zh(),
        h.id_number
    );
    if with_share && let Some(share) = h.share {
        line.push_str(&format!("　份额 {share}"));
    }
    line
}

fn date_zh(at: &DateTime<FixedOffset>) -> String {
    format!("{}年{}月{}日", at.year(), at.month(), at.day())
}

/// Renders the certificate as a one-page A4 PDF with the signed document attached. The QR code
/// links to [`verify_url`] of `verify_base_url`.
///
/// The page is rendered as given: call [`SignedCertificate::verify`] first if the certificate
/// came from outside.
pub fn render_pdf(
    signed: &SignedCertificate,
    verify_base_url: &str,
    font: &CertificateFont,
) -> Result<Vec<u8>, CertificateError> {
    let cert = &signed.certificate;
    let is_proof = cert.kind() == CertificateKind::RegistrationProof;
    let title = cert.kind().name_zh();
    let base = verify_base_url.trim();
    let link = verify_url(base, &cert.certificate_number, &cert.verification_code);
    let any_share = cert.holders.iter().any(|h| h.share.is_some());

    let mut rows: Vec<(&str, String)> = Vec::new();
    if is_proof {
        rows.push(("证明权利或事项", cert.right_type.name_zh().to_owned()));
    }
    let holders: Vec<String> = cert
        .holders
        .iter()
        .map(|h| party_line(h, any_share))
        .collect();
    rows.push(("权利人", holders.join("\n")));
    if !cert.obligors.is_empty() {
        let obligors: Vec<String> = cert.obligors.iter().map(|h| party_line(h, false)).collect();
        rows.push(("义务人", obligors.join("\n")));
    }
    rows.push(("共有情况", cert.joint_ownership.name_zh().to_owned()));
    rows.push(("坐落", cert.location.clone()));
    rows.push(("不动产单元号", cert.unit_code.as_str().to_owned()));
    if !is_proof {
        rows.push(("权利类型", cert.right_type.name_zh().to_owned()));
    }
    rows.push(("权利性质", cert.right_nature.clone()));
    rows.push(("用途", cert.usage.clone()));
    rows.push(("面积", format!("{} 平方米", cert.area_m2.as_str())));
    rows.push(("使用期限", cert.use_term.clone()));
    rows.push(("登记类型", cert.registration_type.name_zh().to_owned()));
    rows.push(("登簿时间", date_zh(&cert.recorded_at)));
    rows.push(("业务号", cert.case_id.clone()));
    let mut notes = String::new();
    if !cert.replaces.is_empty() {
        let old: Vec<&str> = cert.replaces.iter().map(|n| n.as_str()).collect();
        notes.push_str(&format!("原证号：{}（已注销）", old.join("、")));
    }
    if !cert.notes.is_empty() {
        if !notes.is_empty() {
            notes.push('\n');
        }
        notes.push_str(&cert.notes);
    }
    rows.push(("附记", notes));

    let code = cert.verification_code.grouped();
    let verify_lines = [
        format!("验证码　{code}"),
        format!(
            "核验方法：用手机扫描二维码，或访问 {base} 输入证号和验证码；也可在该页上传本PDF文件，核验其中内嵌的登记机构签名文件。"
        ),
        format!("证照标识　{}", cert.license_id.as_str()),
        format!(
            "本PDF内嵌经登记机构数字签名（Ed25519，密钥标识 {}）的电子证照文件 {PDF_ATTACHMENT_NAME}。",
            signed.key_id
        ),
    ];
    let footer = [
        format!("发证日期　{}", date_zh(&cert.issued_at)),
        format!("登记机构：{}", cert.issuer),
    ];

    // Every character must have a glyph: a name printed as blank boxes is worse than no PDF.
    let mut all = String::new();
    for text in [title, "中华人民共和国", cert.certificate_number.as_str()] {
        all.push_str(text);
    }
    for (label, value) in &rows {
        all.push_str(label);
        all.push_str(value);
    }
    for line in verify_lines.iter().chain(footer.iter()) {
        all.push_str(line);
    }
    let missing = font.missing(&all)?;
    if !missing.is_empty() {
        return Err(CertificateError::FontMissesCharacters {
            count: missing.len(),
        });
    }

    let json = signed.to_json()?;
    let mut document = Document::new();
    document.set_metadata(
        krilla::metadata::Metadata::new()
            .title(format!("{title} {}", cert.certificate_number.as_str()))
            .creator("OneWindow 不动产登记".into())
            .language("zh-CN".into()),
    );
    let page_settings =
        PageSettings::from_wh(PAGE_W, PAGE_H).ok_or_else(|| CertificateError::Render {
            reason: "A4 page size refused".into(),
        })?;
    let mut page = document.start_page_with(page_settings);
    let mut surface = page.surface();
    let face = font.face()?;
    let mut p = Painter {
        surface: &mut surface,
        font,
        measure: Measure::new(&face),
    };
    p.filled(0.0, 0.0, PAGE_W, PAGE_H, (0xff, 0xfd, 0xf6));
    p.frame(
        MARGIN - 8.0,
        MARGIN - 8.0,
        PAGE_W - 2.0 * MARGIN + 16.0,
        PAGE_H - 2.0 * MARGIN + 16.0,
        RED,
        2.2,
    );
    p.frame(
        MARGIN - 4.0,
        MARGIN - 4.0,
        PAGE_W - 2.0 * MARGIN + 8.0,
        PAGE_H - 2.0 * MARGIN + 8.0,
        RED,
        0.8,
    );
    let mut y = MARGIN + 28.0;
    p.centred(y, 15.0, RED, "中华人民共和国");
    y += 36.0;
    p.centred(y, 24.0, RED, title);
    y += 26.0;
    p.centred(y, 12.5, INK, cert.certificate_number.as_str());
    y += 18.0;
    let table_x = MARGIN + 10.0;
    let table_w = PAGE_W - 2.0 * MARGIN - 20.0;
    for (label, value) in &rows {
        y += p.row(table_x, y, table_w, label, value);
    }
    // The verification box: the QR code on the left, the code and how to check on the right.
    y += 14.0;
    let qr_side = 96.0;
    let text_x = table_x + qr_side + 16.0;
    let text_w = table_x + table_w - text_x - 8.0;
    let mut lines: Vec<(f32, (u8, u8, u8), String)> = Vec::new();
    lines.push((14.0, INK, verify_lines[0].clone()));
    for (i, text) in verify_lines.iter().enumerate().skip(1) {
        let (size, colour) = if i == 1 { (9.5, INK) } else { (8.5, GREY) };
        for line in p.measure.wrap(text, size, text_w) {
            lines.push((size, colour, line));
        }
    }
    let text_h: f32 = lines.iter().map(|(size, _, _)| size + 4.5).sum();
    let box_h = (qr_side + 12.0).max(text_h + 16.0);
    p.frame(table_x, y, table_w, box_h, GREY, 0.6);
    p.qr(table_x + 6.0, y + (box_h - qr_side) / 2.0, qr_side, &link)?;
    let mut ty = y + 8.0;
    for (size, colour, line) in &lines {
        ty += size;
        p.text(text_x, ty, *size, *colour, line);
        ty += 4.5;
    }
    y += box_h + 28.0;
    p.text(table_x, y, 10.0, GREY, &footer[0]);
    let issuer_w = p.measure.width(&footer[1], 12.5);
    p.text(table_x + table_w - issuer_w, y, 12.5, INK, &footer[1]);
    surface.finish();
    page.finish();

    let mime = MimeType::new("application/json").ok_or_else(|| CertificateError::Render {
        reason: "media type refused".into(),
    })?;
    document
        .embed_file(EmbeddedFile {
            path: PDF_ATTACHMENT_NAME.into(),
            mime_type: Some(mime),
            description: Some("登记机构签名的电子证照文件（e-certificate JSON）".into()),
            association_kind: AssociationKind::Source,
            data: json.into_bytes().into(),
            modification_date: None,
            compress: Some(true),
            location: None,
        })
        .ok_or_else(|| CertificateError::Render {
            reason: "the signed document could not be attached".into(),
        })?;
    document.finish().map_err(|err| CertificateError::Render {
        reason: format!("{err:?}"),
    })
}

/// Takes the signed e-certificate out of a PDF made by [`render_pdf`] (or any PDF that carries
/// it as an embedded file named [`PDF_ATTACHMENT_NAME`]) and parses it. The document is **not**
/// verified here: call [`SignedCertificate::verify`] on the result.
///
/// Input over [`MAX_PDF_BYTES`] is refused before parsing; the attachment is inflated to at
/// most [`MAX_SIGNED_JSON_BYTES`] + 1 bytes, so a compressed bomb stops there.
pub fn signed_from_pdf(bytes: &[u8]) -> Result<SignedCertificate, CertificateError> {
    if bytes.len() > MAX_PDF_BYTES {
        return Err(CertificateError::TooLarge {
            size: bytes.len(),
            limit: MAX_PDF_BYTES,
        });
    }
    let malformed = |reason: &str| CertificateError::Malformed {
        reason: format!("PDF: {reason}"),
    };
    let pdf = hayro_syntax::Pdf::new(bytes.to_vec())
        .map_err(|err| malformed(&format!("cannot be read ({err:?})")))?;
    let json = embedded_json(&pdf).ok_or_else(|| {
        malformed(&format!(
            "no embedded file named {PDF_ATTACHMENT_NAME} (not an e-certificate PDF)"
        ))
    })??;
    SignedCertificate::from_json(&json)
}

/// The bytes of the embedded file named [`PDF_ATTACHMENT_NAME`]: `None` if there is none,
/// an error if it is there but cannot be read within the limits.
fn embedded_json(pdf: &hayro_syntax::Pdf) -> Option<Result<Vec<u8>, CertificateError>> {
    use hayro_syntax::object::{Array, Dict, Object, Stream};
    let xref = pdf.xref();
    let root: Dict<'_> = xref.get(xref.root_id())?;
    let names: Dict<'_> = root.get(b"Names".as_slice())?;
    let tree: Dict<'_> = names.get(b"EmbeddedFiles".as_slice())?;
    // A name tree: leaves hold /Names [key value …]; inner nodes hold /Kids. Bounded descent.
    let mut stack = vec![(tree, 0u8)];
    while let Some((node, depth)) = stack.pop() {
        if let Some(pairs) = node.get::<Array<'_>>(b"Names".as_slice()) {
            let mut items = pairs.iter::<Object<'_>>();
            while let (Some(key), Some(value)) = (items.next(), items.next()) {
                let (Object::String(key), Object::Dict(spec)) = (key, value) else {
                    continue;
                };
                if key.as_bytes() != PDF_ATTACHMENT_NAME.as_bytes() {
                    continue;
                }
                let ef: Dict<'_> = spec.get(b"EF".as_slice())?;
                let stream: Stream<'_> = ef.get(b"F".as_slice())?;
                return Some(inflate_limited(&stream));
            }
        }
        if depth < 8
            && let Some(kids) = node.get::<Array<'_>>(b"Kids".as_slice())
        {
            for kid in kids.iter::<Dict<'_>>() {
                stack.push((kid, depth + 1));
            }
        }
    }
    None
}

/// The stream's bytes: stored, or deflated (`/FlateDecode`, what krilla writes), inflated to at
/// most [`MAX_SIGNED_JSON_BYTES`] + 1 bytes.
fn inflate_limited(stream: &hayro_syntax::object::Stream<'_>) -> Result<Vec<u8>, CertificateError> {
    use hayro_syntax::Filter;
    let limit = MAX_SIGNED_JSON_BYTES as u64 + 1;
    let raw = stream.raw_data();
    let filters = stream.filters();
    let mut out = Vec::new();
    match filters.as_slice() {
        [] => out.extend_from_slice(&raw[..raw.len().min(MAX_SIGNED_JSON_BYTES + 1)]),
        [Filter::FlateDecode] => {
            flate2::read::ZlibDecoder::new(raw.as_ref())
                .take(limit)
                .read_to_end(&mut out)
                .map_err(|err| CertificateError::Malformed {
                    reason: format!("PDF: the embedded certificate cannot be inflated ({err})"),
                })?;
        }
        _ => {
            return Err(CertificateError::Malformed {
                reason: "PDF: the embedded certificate uses an unsupported filter".into(),
            });
        }
    }
    if out.len() > MAX_SIGNED_JSON_BYTES {
        return Err(CertificateError::TooLarge {
            size: out.len(),
            limit: MAX_SIGNED_JSON_BYTES,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signing::{CertificateTrust, sign};
    use crate::testutil::{fixed_key, sample, sample_in_shares};
    use ow_domain::PersonName;

    const BASE: &str = "https://portal.example/verify";

    /// The test font: a subset of WenQuanYi Micro Hei (see `tests/fonts/README.md`).
    fn font() -> CertificateFont {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fonts/wqy-microhei-subset.ttf");
        CertificateFont::load(&path, 0).expect("test font")
    }

    fn trust() -> CertificateTrust {
        let mut trust = CertificateTrust::new();
        trust.add(fixed_key().verifying_key());
        trust
    }

    #[test]
    fn the_pdf_carries_the_signed_document_and_it_verifies() {
        for cert in [sample(), sample_in_shares()] {
            let signed = sign(&cert, &fixed_key()).expect("sign");
            let pdf = render_pdf(&signed, BASE, &font()).expect("pdf");
            assert!(pdf.starts_with(b"%PDF-"), "a PDF");
            assert!(pdf.len() < 400 * 1024, "{} bytes", pdf.len());
            let back = signed_from_pdf(&pdf).expect("attachment");
            assert_eq!(back, signed);
            assert_eq!(back.verify(&trust()).expect("verifies"), &cert);
        }
    }

    #[test]
    fn a_pdf_whose_embedded_document_was_altered_does_not_verify() {
        let signed = sign(&sample(), &fixed_key()).expect("sign");
        // The document changed after signing, the signature kept: a well-formed PDF whose
        // attachment no longer matches its signature.
        let mut altered = signed.clone();
        altered.certificate.area_m2 = crate::AreaM2::parse("189.50").expect("area");
        let pdf = render_pdf(&altered, BASE, &font()).expect("pdf");
        let back = signed_from_pdf(&pdf).expect("attachment");
        assert!(matches!(
            back.verify(&trust()),
            Err(CertificateError::BadSignature { .. })
        ));
        // Bytes inside the compressed attachment flipped: it no longer reads at all.
        let good = render_pdf(&signed, BASE, &font()).expect("pdf");
        let spec = find(&good, b"/EmbeddedFile").expect("embedded file stream");
        let data = spec + find(&good[spec..], b"stream").expect("stream") + 10;
        let mut broken = good.clone();
        for b in broken.iter_mut().skip(data).take(16) {
            *b ^= 0x5a;
        }
        assert!(signed_from_pdf(&broken).is_err());
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn other_files_are_refused_with_a_reason() {
        let signed = sign(&sample(), &fixed_key()).expect("sign");
        let json = signed.to_json().expect("json");
        for bad in [
            json.as_bytes().to_vec(),
            b"%PDF-1.7\n garbage".to_vec(),
            Vec::new(),
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF"
                .to_vec(),
        ] {
            assert!(matches!(
                signed_from_pdf(&bad),
                Err(CertificateError::Malformed { .. })
            ));
        }
        let huge = vec![b' '; MAX_PDF_BYTES + 1];
        assert!(matches!(
            signed_from_pdf(&huge),
            Err(CertificateError::TooLarge { .. })
        ));
    }

    #[test]
    fn a_character_the_font_lacks_is_refused_not_printed_as_a_box() {
        let mut cert = sample();
        cert.holders[0].name = PersonName::parse("龘小三").expect("name");
        let signed = sign(&cert, &fixed_key()).expect("sign");
        assert!(matches!(
            render_pdf(&signed, BASE, &font()),
            Err(CertificateError::FontMissesCharacters { count: 1 })
        ));
        let err = CertificateFont::from_bytes(b"not a font".to_vec(), 0).unwrap_err();
        assert!(err.to_string().contains("certificate_font_file"), "{err}");
        let err = CertificateFont::load(Path::new("/nonexistent/font.ttc"), 0).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/font.ttc"), "{err}");
    }
}
