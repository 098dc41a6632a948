//! Normalisation before blind indexing, so the same person always gets the same index.
//!
//! Callers that hold `ow-domain` types should index their canonical form (`IdNumber::as_str()`,
//! `PhoneNumber::as_str()`); these helpers give the same result on those forms and tolerate the
//! spellings users type.

/// Normalises an ID number for [`crate::PiiKeyring::blind_index`]: surrounding whitespace
/// (including the ideographic space U+3000) is trimmed and ASCII letters are upper-cased, so a
/// final check character `x` becomes `X`.
///
/// ```
/// assert_eq!(ow_pii::normalize_id_number(" 11010519491231002x\n"), "11010519491231002X");
/// ```
pub fn normalize_id_number(input: &str) -> String {
    input.trim().to_ascii_uppercase()
}

/// Normalises a phone number for [`crate::PiiKeyring::blind_index`]: only digits are kept
/// (full-width digits count as digits), and the country code `86` is removed when it precedes an
/// 11-digit number (written `+86`, `0086` or `86`). Other numbers keep all their digits.
///
/// ```
/// assert_eq!(ow_pii::normalize_phone("+86 138-0013-8000"), "13800138000");
/// assert_eq!(ow_pii::normalize_phone("0536-1234567"), "05361234567");
/// ```
pub fn normalize_phone(input: &str) -> String {
    let digits: String = input
        .chars()
        .filter_map(|c| match c {
            '0'..='9' => Some(c),
            // Full-width digits U+FF10..U+FF19.
            '\u{ff10}'..='\u{ff19}' => char::from_u32(u32::from(c) - 0xff10 + u32::from('0')),
            _ => None,
        })
        .collect();
    match digits.len() {
        13 => digits.strip_prefix("86").unwrap_or(&digits).to_owned(),
        15 => digits.strip_prefix("0086").unwrap_or(&digits).to_owned(),
        _ => digits,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_number_forms() {
        assert_eq!(
            normalize_id_number("370781199001011234"),
            "370781199001011234"
        );
        assert_eq!(
            normalize_id_number("11010519491231002x"),
            "11010519491231002X"
        );
        assert_eq!(
            normalize_id_number("\u{3000}11010519491231002X \t"),
            "11010519491231002X"
        );
    }

    #[test]
    fn phone_forms() {
        for input in [
            "13800138000",
            "138 0013 8000",
            "138-0013-8000",
            "+86 13800138000",
            "+8613800138000",
            "0086 138 0013 8000",
            "8613800138000",
            "(+86) 138.0013.8000",
            "１３８００１３８０００",
        ] {
            assert_eq!(normalize_phone(input), "13800138000", "{input}");
        }
        assert_eq!(normalize_phone("0536-1234567"), "05361234567");
        assert_eq!(normalize_phone(""), "");
    }
}
