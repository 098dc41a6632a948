//! Guessable passwords: a deny-list of common passwords and the digit patterns people take from
//! their own details (birth dates, phone numbers, ID numbers).
//!
//! The list is `data/common-passwords.txt` (Openwall's public-domain `password.lst`, 3,546
//! entries, as Debian's `john-data` ships it) plus `data/common-passwords-zh.txt` (common
//! passwords of Chinese users); both are embedded at build time, nothing is downloaded.
//!
//! # The rule
//!
//! A password is *common* when, compared case-insensitively,
//!
//! 1. it is on the list; or
//! 2. what is left after removing the digits and symbols at its start and end (`Password2024!`
//!    → `password`) has at least 4 characters and is on the list; or
//! 3. either of those, after undoing the usual look-alike swaps (`@`→a, `0`→o, `1`→i, `3`→e,
//!    `$`→s, `5`→s, `7`→t, `!`→i): `P@ssw0rd!` → `password`.
//!
//! Digit patterns, looked for in every run of digits of the password:
//!
//! * a date `19000101`–`20991231` (8 digits that form a real date): a birthday or anniversary;
//! * 11 digits starting `13`–`19`: a mainland mobile number.
//!
//! With the person's own details: their birth date as `YYYYMMDD`, `YYMMDD` or `MMDD`+`YYYY`
//! (or `DDMM…`), and any 6 consecutive digits of their ID number or phone number.

use std::collections::HashSet;
use std::sync::OnceLock;

use chrono::{Datelike, NaiveDate};

const LIST: &str = include_str!("../data/common-passwords.txt");
const LIST_ZH: &str = include_str!("../data/common-passwords-zh.txt");

/// The shortest core (rule 2) compared with the list: shorter ones (`abc`) would refuse any
/// password that merely starts or ends with a common short word.
const MIN_CORE_CHARS: usize = 4;

/// Digits of an ID number or phone number that may not appear together in a password.
pub(crate) const FRAGMENT_DIGITS: usize = 6;

fn list() -> &'static HashSet<String> {
    static SET: OnceLock<HashSet<String>> = OnceLock::new();
    SET.get_or_init(|| {
        LIST.lines()
            .chain(LIST_ZH.lines())
            .filter(|l| !l.starts_with("#!comment"))
            .map(|l| l.trim_end_matches('\r').to_lowercase())
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// Entries on the deny-list (for tests and the operator's documentation).
#[cfg(test)]
pub(crate) fn list_len() -> usize {
    list().len()
}

fn unleet(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '0' => 'o',
            '1' | '!' => 'i',
            '3' => 'e',
            '$' | '5' => 's',
            '7' => 't',
            other => other,
        })
        .collect()
}

fn core(s: &str) -> &str {
    s.trim_matches(|c: char| !c.is_alphabetic())
}

/// Whether the password is common by the rule in the module documentation.
pub(crate) fn is_common(password: &str) -> bool {
    let list = list();
    let lower = password.to_lowercase();
    let on_list = |candidate: &str| list.contains(candidate);
    let core_on_list =
        |candidate: &str| candidate.chars().count() >= MIN_CORE_CHARS && on_list(candidate);
    on_list(&lower)
        || core_on_list(core(&lower))
        || on_list(&unleet(&lower))
        || core_on_list(&unleet(core(&lower)))
        || core_on_list(core(&unleet(&lower)))
}

/// The runs of ASCII digits in `s`.
fn digit_runs(s: &str) -> Vec<&str> {
    s.split(|c: char| !c.is_ascii_digit())
        .filter(|r| !r.is_empty())
        .collect()
}

/// Whether any window of 8 digits of the password is a date from 1900-01-01 to 2099-12-31.
pub(crate) fn has_date(password: &str) -> bool {
    digit_runs(password).iter().any(|run| {
        run.as_bytes().windows(8).any(|w| {
            std::str::from_utf8(w)
                .ok()
                .and_then(|t| NaiveDate::parse_from_str(t, "%Y%m%d").ok())
                .is_some_and(|d| (1900..=2099).contains(&d.year()))
        })
    })
}

/// Whether any window of 11 digits of the password looks like a mainland mobile number.
pub(crate) fn has_mobile_number(password: &str) -> bool {
    digit_runs(password).iter().any(|run| {
        run.as_bytes()
            .windows(11)
            .any(|w| w[0] == b'1' && (b'3'..=b'9').contains(&w[1]))
    })
}

/// Whether the password contains the birth date in a usual written form.
pub(crate) fn has_birth_date(password: &str, birth: NaiveDate) -> bool {
    let forms = [
        birth.format("%Y%m%d").to_string(),
        birth.format("%y%m%d").to_string(),
        birth.format("%m%d%Y").to_string(),
        birth.format("%d%m%Y").to_string(),
        birth.format("%Y-%m-%d").to_string(),
        birth.format("%Y.%m.%d").to_string(),
        birth.format("%Y/%m/%d").to_string(),
    ];
    forms.iter().any(|f| password.contains(f.as_str()))
}

/// Whether the password contains [`FRAGMENT_DIGITS`] consecutive digits of `number` (an ID
/// number or a phone number; its non-digits are ignored).
pub(crate) fn has_fragment_of(password: &str, number: &str) -> bool {
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if digits.len() < FRAGMENT_DIGITS {
        return false;
    }
    let runs = digit_runs(password);
    digits.as_bytes().windows(FRAGMENT_DIGITS).any(|w| {
        let w = std::str::from_utf8(w).unwrap_or_default();
        runs.iter().any(|run| run.contains(w))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_embedded_without_its_comments() {
        assert!(list_len() > 3_500, "{}", list_len());
        assert!(list().contains("password"));
        assert!(list().contains("woaini1314"));
        assert!(!list().iter().any(|e| e.starts_with("#!comment")));
    }

    #[test]
    fn common_passwords_and_their_decorations() {
        for p in [
            "password",
            "PASSWORD",
            "Password2024!",
            "P@ssw0rd",
            "P@ssw0rd123!",
            "!!Sunshine99",
            "Qwerty123456",
            "Iloveyou1314!",
            "Woaini1314",
            "5201314",
            "1qaz2wsx",
            "1qaz@WSX",
            "Dragon2026#",
        ] {
            assert!(is_common(p), "{p}");
        }
        for p in [
            "Qingzhou#2026pw",
            "tall-Bicycle-42",
            "Correct-Horse-9",
            "青州不动产Ab1",
            "Abc12345!x",
        ] {
            assert!(!is_common(p), "{p}");
        }
    }

    #[test]
    fn short_cores_are_not_compared() {
        // "abc" is on the list, but a password that merely starts with it is not common.
        assert!(list().contains("abc"));
        assert!(!is_common("abc-Wq7#kz"));
        assert!(!is_common("77#Tea!!2q"));
    }

    #[test]
    fn dates_and_mobile_numbers() {
        assert!(has_date("Zz#19900307"));
        assert!(has_date("ab20001231cd"));
        assert!(!has_date("Zz#19901307"), "month 13");
        assert!(!has_date("Zz#18991231"), "before 1900");
        assert!(!has_date("1990 0307"));
        assert!(has_mobile_number("Pw!13812345678"));
        assert!(has_mobile_number("x19912345678y"));
        assert!(!has_mobile_number("12812345678"));
        assert!(!has_mobile_number("1381234567"));
    }

    #[test]
    fn the_persons_own_details() {
        let birth = NaiveDate::from_ymd_opt(1990, 3, 7).unwrap();
        for p in [
            "Zs#19900307",
            "Zs#900307x",
            "a03071990!",
            "Zs-1990-03-07",
            "Zs.1990.03.07",
        ] {
            assert!(has_birth_date(p, birth), "{p}");
        }
        assert!(!has_birth_date("Zs#19900308", birth));
        let id = "110101199003074477";
        assert!(has_fragment_of("Zs!074477", id), "last six");
        assert!(has_fragment_of("Zs!110101x", id), "region");
        assert!(!has_fragment_of("Zs!07447", id), "five digits");
        assert!(!has_fragment_of("Zs!0744 77", id), "split");
        assert!(has_fragment_of("Hello345678!", "13812345678"));
        assert!(!has_fragment_of("Hello12!", "12"));
    }
}
