//! Signed e-certificates (电子证照): the document, its signature, the verification code, the QR
//! code and the printable page.
//!
//! The extranet zone issues a certificate as an [`ECertificate`] (证号, 证照标识, holders with
//! their full personal data, unit, right, area, dates, verification code …), checks it and signs
//! it with an Ed25519 certificate key ([`sign`] → [`SignedCertificate`], JSON). The internet
//! portal stores the signed file, renders it as a page that fits a phone's screen and prints as
//! A4 with the QR code ([`render_html`]), and as a one-page PDF carrying the signed file
//! ([`render_pdf`], read back by [`signed_from_pdf`]), and verifies files it is given against
//! the trusted certificate keys
//! ([`SignedCertificate::from_json`], [`SignedCertificate::verify`], [`CertificateTrust`]).
//! Anyone can check a certificate on the portal's public `/verify` page by scanning the QR code
//! ([`verify_url`], [`parse_verify_query`]) or typing the number and the [`VerificationCode`];
//! the portal keeps only a [`code_digest`] of the code and shows a [`PublicRecord`] with masked
//! holders as a [`VerifyOutcome`]: 有效, 已注销 or 非真实证书. Key files are made and loaded with
//! [`generate_key_file`], [`load_signing_key`] and [`load_verifying_key`].
//!
//! The signed format, the canonical bytes, the key id, the code digest, the QR content and the
//! licence id with its check character are specified in `docs/e-certificate.md`, precisely
//! enough for a second implementation.

pub mod code;
pub mod document;
mod error;
mod keyfile;
pub mod license_id;
mod pdf;
mod public;
mod qr;
mod render;
pub mod signing;
#[cfg(test)]
mod testutil;

pub use code::{VerificationCode, VerificationCodeError, code_digest, digest_matches};
pub use document::{AreaM2, ECertificate, FORMAT, Holder, IdDocumentType, JointOwnership};
pub use error::CertificateError;
pub use keyfile::{
    GeneratedCertificateKey, generate_key_file, load_signing_key, load_verifying_key,
};
pub use license_id::{LicenseId, LicenseIdError};
pub use pdf::{CertificateFont, MAX_PDF_BYTES, PDF_ATTACHMENT_NAME, render_pdf, signed_from_pdf};
pub use public::{CertificateStatus, PublicRecord, VerifyOutcome};
pub use qr::{CERT_PARAM, CODE_PARAM, VerifyQuery, parse_verify_query, qr_svg, verify_url};
pub use render::{ScreenLinks, render_html, render_html_with_links};
pub use signing::{
    CertificateTrust, MAX_SIGNED_JSON_BYTES, SIGNATURE_CONTEXT, SignedCertificate, canonical_bytes,
    key_id, sign,
};

/// Re-exported so callers name exactly the key types this crate signs and verifies with.
pub use ed25519_dalek::{SigningKey, VerifyingKey};
