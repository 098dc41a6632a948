//! OneWindow domain newtypes: validated identifiers and codes of real estate registration.
//!
//! "Parse, don't validate": every type here can only be built by its parser (or a validating
//! constructor), so holding one means holding a valid value. All parsers are pure (no I/O, no
//! clock), trim surrounding spaces and refuse full-width digits with a message that says so.
//! Every string type serializes as its canonical string and deserializes through its parser,
//! so an invalid value cannot be deserialized either.
//!
//! | type | what |
//! |---|---|
//! | [`IdNumber`] | 18-character resident ID number (GB 11643) |
//! | [`Uscc`] | unified social credit code (GB 32100) |
//! | [`UnitCode`] | 28-character real estate unit code (GB/T 37346) |
//! | [`CertificateNumber`] | 不动产权证书 / 不动产登记证明 number |
//! | [`PhoneNumber`], [`PersonName`] | personal data with masking |
//! | [`RegistrationType`], [`RightType`] | DJLX and QLLX code lists |
//! | [`BusinessType`], [`Material`] | portal businesses and material checklists |
//! | [`Share`] | exact co-ownership share |
//! | [`classify_transfer`], [`TransferKind`] | sellers vs buyers of a transfer: buyouts between co-owners, buyers exactly the sellers refused |
//! | [`CaseStatus`] | application status and workflow moves |
//!
//! Errors are `thiserror` enums with an English message (what is wrong and what to do) and a
//! `message_zh()` method giving the short Chinese message a citizen sees on the portal.
//! [`DomainError`] gathers them all.
//!
//! Personal data ([`IdNumber`], [`PhoneNumber`], [`PersonName`]) has no `Display`; its `Debug`
//! is masked and the clear value is reached only through `as_str()`. See [`mask`] and
//! `docs/domain.md`.

pub mod business;
pub mod certificate;
pub mod codes;
pub mod id_number;
pub mod mask;
pub mod parties;
pub mod person;
pub mod share;
pub mod status;
mod text;
pub mod unit_code;
pub mod uscc;

pub use business::{BusinessType, Material};
pub use certificate::{CertificateKind, CertificateNumber, CertificateNumberError};
pub use codes::{RegistrationType, RightType};
pub use id_number::{IdNumber, IdNumberError, Sex};
pub use parties::{SameAsSellers, TransferKind, classify_transfer};
pub use person::{PersonName, PersonNameError, PhoneNumber, PhoneNumberError};
pub use share::{Share, ShareError};
pub use status::{CaseStatus, StatusTransitionError};
pub use unit_code::{FixtureKind, LandOwnership, ParcelKind, UnitCode, UnitCodeError};
pub use uscc::{Uscc, UsccError};

/// Any error of this crate, for callers that handle them together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DomainError {
    /// See [`IdNumberError`].
    #[error(transparent)]
    IdNumber(#[from] IdNumberError),
    /// See [`UsccError`].
    #[error(transparent)]
    Uscc(#[from] UsccError),
    /// See [`UnitCodeError`].
    #[error(transparent)]
    UnitCode(#[from] UnitCodeError),
    /// See [`CertificateNumberError`].
    #[error(transparent)]
    CertificateNumber(#[from] CertificateNumberError),
    /// See [`PhoneNumberError`].
    #[error(transparent)]
    PhoneNumber(#[from] PhoneNumberError),
    /// See [`PersonNameError`].
    #[error(transparent)]
    PersonName(#[from] PersonNameError),
    /// See [`ShareError`].
    #[error(transparent)]
    Share(#[from] ShareError),
    /// See [`StatusTransitionError`].
    #[error(transparent)]
    StatusTransition(#[from] StatusTransitionError),
}

impl DomainError {
    /// The short Chinese message of the underlying error.
    pub fn message_zh(&self) -> String {
        match self {
            Self::IdNumber(e) => e.message_zh(),
            Self::Uscc(e) => e.message_zh(),
            Self::UnitCode(e) => e.message_zh(),
            Self::CertificateNumber(e) => e.message_zh(),
            Self::PhoneNumber(e) => e.message_zh(),
            Self::PersonName(e) => e.message_zh(),
            Self::Share(e) => e.message_zh(),
            Self::StatusTransition(e) => e.message_zh(),
        }
    }
}

#[cfg(test)]
mod testutil {
    //! A small deterministic generator for property-style tests (SplitMix64).

    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Self {
            Self(seed)
        }

        pub(crate) fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// A value in `0..n` (`n > 0`; the slight modulo bias does not matter here).
        pub(crate) fn below(&mut self, n: u64) -> u64 {
            self.next_u64() % n
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domain_error_wraps_and_localises() {
        let e: DomainError = IdNumber::parse("11010119900307451X")
            .expect_err("bad")
            .into();
        assert_eq!(e.message_zh(), "身份证号码校验位不正确，请核对后重新输入");
        assert!(e.to_string().contains("check character"));
        let errors: Vec<DomainError> = vec![
            Uscc::parse("x").expect_err("bad").into(),
            UnitCode::parse("x").expect_err("bad").into(),
            CertificateNumber::parse("x").expect_err("bad").into(),
            PhoneNumber::parse("x").expect_err("bad").into(),
            PersonName::parse("").expect_err("bad").into(),
            Share::parse("x").expect_err("bad").into(),
            CaseStatus::Completed
                .move_to(CaseStatus::Accepted)
                .expect_err("bad")
                .into(),
        ];
        for e in errors {
            assert!(!e.message_zh().is_empty());
            assert!(!e.to_string().is_empty());
        }
    }
}
