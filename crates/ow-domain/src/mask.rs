//! Display masking for personal data.
//!
//! Names, ID numbers and phone numbers of rights holders are shown masked on every screen and in
//! every log (see `docs/domain.md`). The typed values ([`crate::IdNumber`],
//! [`crate::PhoneNumber`], [`crate::PersonName`]) mask themselves through `masked()` and in their
//! `Debug` output; the helpers here mask raw strings, for example legacy data that does not parse.
//!
//! All helpers count Unicode scalar values (characters), not bytes, so `张三` is two characters.

/// The character used to hide a character.
pub const MASK_CHAR: char = '*';

/// Keeps the first `keep_start` and the last `keep_end` characters of `s` and replaces every
/// character between them with `*`, one star per hidden character.
///
/// A value too short to hide anything (`len <= keep_start + keep_end`) is masked completely, so
/// a short value is never shown in clear by mistake.
///
/// ```
/// use ow_domain::mask::mask_middle;
/// assert_eq!(mask_middle("370781199001011234", 6, 4), "370781********1234");
/// assert_eq!(mask_middle("13812345678", 3, 4), "138****5678");
/// assert_eq!(mask_middle("1234", 3, 4), "****");
/// ```
pub fn mask_middle(s: &str, keep_start: usize, keep_end: usize) -> String {
    let n = s.chars().count();
    if n <= keep_start.saturating_add(keep_end) {
        return mask_all(s);
    }
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if i < keep_start || i >= n - keep_end {
                c
            } else {
                MASK_CHAR
            }
        })
        .collect()
}

/// Replaces every character of `s` with `*`.
pub fn mask_all(s: &str) -> String {
    s.chars().map(|_| MASK_CHAR).collect()
}

/// Masks a person's name: one character → `*`; two → first + `*` (`张*`); three or more → first
/// and last kept, every character between starred (`张*三`, `欧**明`).
///
/// ```
/// use ow_domain::mask::mask_name;
/// assert_eq!(mask_name("张三丰"), "张*丰");
/// assert_eq!(mask_name("张三"), "张*");
/// assert_eq!(mask_name("欧阳明明"), "欧**明");
/// assert_eq!(mask_name("张"), "*");
/// ```
pub fn mask_name(s: &str) -> String {
    match s.chars().count() {
        0 => String::new(),
        1 => MASK_CHAR.to_string(),
        2 => s
            .chars()
            .take(1)
            .chain(std::iter::once(MASK_CHAR))
            .collect(),
        _ => mask_middle(s, 1, 1),
    }
}

/// Masks an 18-character ID number the way [`crate::IdNumber::masked`] does (first 6, eight
/// stars, last 4); any other length is masked completely, as it cannot be known which part is
/// safe to show.
pub fn mask_id_number(s: &str) -> String {
    if s.chars().count() == 18 {
        mask_middle(s, 6, 4)
    } else {
        mask_all(s)
    }
}

/// Masks an 11-digit mobile number the way [`crate::PhoneNumber::masked`] does (`138****5678`);
/// any other length keeps only its last 4 characters, or nothing if it has 4 or fewer.
pub fn mask_phone(s: &str) -> String {
    if s.chars().count() == 11 {
        mask_middle(s, 3, 4)
    } else {
        mask_middle(s, 0, 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn middle() {
        assert_eq!(
            mask_middle("370781199001011234", 6, 4),
            "370781********1234"
        );
        assert_eq!(mask_middle("abc", 1, 1), "a*c");
        assert_eq!(mask_middle("ab", 1, 1), "**");
        assert_eq!(mask_middle("", 1, 1), "");
        assert_eq!(mask_middle("abcdef", 0, 0), "******");
        assert_eq!(mask_middle("abcdef", usize::MAX, 1), "******");
    }

    #[test]
    fn names() {
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("张小三"), "张*三");
        assert_eq!(mask_name("欧阳明明"), "欧**明");
        assert_eq!(mask_name("买买提·艾力"), "买****力");
        assert_eq!(mask_name("张"), "*");
        assert_eq!(mask_name(""), "");
    }

    #[test]
    fn ids_and_phones() {
        assert_eq!(mask_id_number("370781199001011234"), "370781********1234");
        assert_eq!(mask_id_number("370781900101123"), "***************");
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("+8613812345678"), "**********5678");
        assert_eq!(mask_phone("123"), "***");
    }
}
