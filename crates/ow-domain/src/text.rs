//! Small text helpers shared by the parsers: character classes and the serde glue that makes
//! every string newtype serialize as its canonical string and deserialize through its parser.

/// Whether `c` is a full-width ASCII variant (U+FF01–U+FF5E), such as `１`, `Ｘ` or `（`.
pub(crate) fn is_full_width(c: char) -> bool {
    ('\u{FF01}'..='\u{FF5E}').contains(&c)
}

/// Whether `c` is a CJK unified ideograph of the basic block (U+4E00–U+9FFF), the class the
/// registration systems use (`[\u4e00-\u9fa5]` and its later additions).
pub(crate) fn is_cjk(c: char) -> bool {
    ('\u{4E00}'..='\u{9FFF}').contains(&c)
}

/// Implements `Serialize` (as `as_str()`) and `Deserialize` (through `FromStr`, so a value that
/// the parser refuses cannot be deserialized) for a string newtype.
macro_rules! serde_via_str {
    ($ty:ty, $expecting:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        v.parse::<$ty>().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

pub(crate) use serde_via_str;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_classes() {
        assert!(is_full_width('１'));
        assert!(is_full_width('（'));
        assert!(is_full_width('Ｘ'));
        assert!(!is_full_width('1'));
        assert!(!is_full_width('鲁'));
        assert!(is_cjk('鲁'));
        assert!(is_cjk('龥'));
        assert!(!is_cjk('('));
        assert!(!is_cjk('（'));
    }
}
