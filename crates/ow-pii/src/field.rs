//! The purpose a sealed value serves, bound into its associated data and its blind-index key.

use std::borrow::Cow;
use std::fmt;

/// What a personal-data value is. The field is bound into every ciphertext (so a sealed ID number
/// cannot be opened as a name) and selects the blind-index key (so equal strings in two fields
/// have unrelated indexes).
///
/// The names returned by [`Field::name`] are part of the on-disk format: never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// A person's name (权利人/义务人/申请人 姓名). Name `person-name`.
    PersonName,
    /// A resident ID number or other identity-document number. Name `id-number`.
    IdNumber,
    /// A phone number. Name `phone`.
    Phone,
    /// A postal address. Name `address`.
    Address,
    /// Any other personal datum, named by a stable label such as `"bank-account"`.
    /// Name `other:<label>`, so it can never collide with the fields above.
    Other(&'static str),
}

impl Field {
    /// The stable name used in associated data and in the blind-index key derivation.
    pub fn name(&self) -> Cow<'static, str> {
        match self {
            Self::PersonName => Cow::Borrowed("person-name"),
            Self::IdNumber => Cow::Borrowed("id-number"),
            Self::Phone => Cow::Borrowed("phone"),
            Self::Address => Cow::Borrowed("address"),
            Self::Other(label) => Cow::Owned(format!("other:{label}")),
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}
