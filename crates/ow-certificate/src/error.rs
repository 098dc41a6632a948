//! [`CertificateError`]: everything that can go wrong while issuing, reading, verifying or
//! rendering an e-certificate.

use crate::code::VerificationCodeError;
use crate::license_id::LicenseIdError;

/// Why an e-certificate could not be issued, read, verified or rendered.
///
/// The English message says what was wrong and what to do; [`CertificateError::message_zh`] gives
/// the short Chinese message a citizen sees on the portal.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The signed certificate file is larger than [`crate::MAX_SIGNED_JSON_BYTES`].
    #[error(
        "the signed certificate is {size} bytes, more than the limit of {limit} bytes; \
         a genuine e-certificate is far smaller, so check that the right file was chosen"
    )]
    TooLarge {
        /// Size of the input in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// The input is not a well-formed signed certificate (bad JSON, missing or extra fields,
    /// a field that does not parse).
    #[error(
        "the signed certificate is not well-formed: {reason}; use the unmodified .json file \
         issued by the registration centre"
    )]
    Malformed {
        /// What was wrong, with the position in the input where known.
        reason: String,
    },
    /// The `format` field names a version this software does not know.
    #[error(
        "the certificate has format {found:?}, but this software reads only {expected:?}; \
         upgrade the software or ask the issuer for a certificate in the supported format"
    )]
    UnknownFormat {
        /// The format found.
        found: String,
        /// The format supported.
        expected: &'static str,
    },
    /// No trusted certificate key has the signature's key id.
    #[error(
        "the certificate is signed by key {key_id}, which is not among the trusted certificate \
         keys; if the issuer rotated its key, add the new public key to the trust list, \
         otherwise treat the certificate as not genuine"
    )]
    UnknownKey {
        /// The key id named by the signature.
        key_id: String,
    },
    /// The signature does not verify (the document was altered, or signed by another key).
    #[error(
        "the certificate's signature does not verify ({reason}); the document was altered \
         after issue or is not genuine, so do not rely on it"
    )]
    BadSignature {
        /// What failed.
        reason: String,
    },
    /// A field of the certificate is invalid or inconsistent with another field.
    #[error("certificate field `{field}` is invalid: {reason}")]
    Invalid {
        /// The field (JSON name).
        field: &'static str,
        /// What was wrong and what is expected.
        reason: String,
    },
    /// A verification code did not parse.
    #[error(transparent)]
    VerificationCode(#[from] VerificationCodeError),
    /// A license id (证照标识) did not parse or could not be built.
    #[error(transparent)]
    LicenseId(#[from] LicenseIdError),
    /// A key file could not be generated, read or parsed.
    #[error(transparent)]
    Key(#[from] ow_keys::KeyError),
    /// The operating system's random number generator failed.
    #[error(
        "the operating system's random number generator failed ({reason}); \
         check that /dev/urandom (or getrandom) is available to the process"
    )]
    Random {
        /// The underlying error.
        reason: String,
    },
    /// The QR code could not be built.
    #[error(
        "cannot build the QR code: {reason}; shorten the verification base URL \
         (the QR holds the URL with the certificate number and the code)"
    )]
    Qr {
        /// The underlying error.
        reason: String,
    },
    /// The verification query string lacks a parameter or has a bad one.
    #[error(
        "the verification link is incomplete or damaged: {reason}; scan the QR code again or \
         enter the certificate number and the verification code by hand"
    )]
    Query {
        /// What was wrong.
        reason: String,
    },
    /// The CJK font for the PDF cannot be used.
    #[error(
        "the font for e-certificate PDFs cannot be used ({reason}); set `certificate_font_file` \
         to a TrueType/OpenType CJK font, e.g. install Debian's fonts-wqy-microhei and use \
         /usr/share/fonts/truetype/wqy/wqy-microhei.ttc"
    )]
    Font {
        /// What is wrong.
        reason: String,
    },
    /// The certificate has characters the PDF font has no glyph for.
    #[error(
        "the certificate has {count} character(s) the PDF font lacks; configure a font with \
         fuller CJK coverage (e.g. Noto Sans CJK); the printable page still works"
    )]
    FontMissesCharacters {
        /// How many distinct characters are missing (not which: they may be part of a name).
        count: usize,
    },
    /// The HTML page or the PDF failed to render.
    #[error("cannot render the certificate page: {reason}; this is a bug, please report it")]
    Render {
        /// The underlying error.
        reason: String,
    },
    /// The certificate could not be serialised (a bug: every field serialises).
    #[error("cannot serialise the certificate: {reason}; this is a bug, please report it")]
    Serialize {
        /// The underlying error.
        reason: String,
    },
}

impl CertificateError {
    /// A short Chinese message for the citizen on the portal.
    pub fn message_zh(&self) -> String {
        match self {
            Self::TooLarge { .. } => "文件过大，不是本平台签发的电子证书，请核对所选文件".into(),
            Self::Malformed { .. } | Self::UnknownFormat { .. } => {
                "文件不是有效的电子证书，请使用登记机构签发的原始文件".into()
            }
            Self::UnknownKey { .. } | Self::BadSignature { .. } => {
                "电子证书签名验证未通过，证书可能被篡改或不是真实证书".into()
            }
            Self::Invalid { .. } => "电子证书内容不完整或不一致，请联系登记机构".into(),
            Self::VerificationCode(e) => e.message_zh(),
            Self::LicenseId(_) => "证照标识不正确，请核对后重新输入".into(),
            Self::Query { .. } => "核验链接不完整，请重新扫描二维码或手工输入证号和验证码".into(),
            Self::Font { .. } | Self::FontMissesCharacters { .. } => {
                "暂时无法生成 PDF 电子证书，请使用打印版或下载电子证照文件（.json）".into()
            }
            Self::Key(_)
            | Self::Random { .. }
            | Self::Qr { .. }
            | Self::Render { .. }
            | Self::Serialize { .. } => "系统暂时无法处理电子证书，请稍后再试".into(),
        }
    }

    pub(crate) fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }
}
