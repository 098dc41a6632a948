//! Password policy and argon2id password hashing.
//!
//! [`PasswordPolicy::check`] runs when a password is set (registration, change, reset), never at
//! login: a password that was acceptable when set keeps working after the policy changes. Beyond
//! length and character classes it refuses guessable passwords: those on a deny-list of common
//! passwords (also with digits or symbols added, or letters swapped for look-alikes), and those
//! containing a date or a mobile number; [`PasswordPolicy::check_for`] also refuses the
//! person's own birth date, ID-number and phone digits, and account names. The rule is in
//! the `common_passwords` module and `docs/internet-zone.md`.
//!
//! [`PasswordHasher`] stores passwords as argon2id PHC strings
//! (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`). Hashing and verifying take tens of
//! milliseconds of CPU and 19 MiB of memory with the default parameters: in async code call
//! [`PasswordHasher::hash_async`], [`PasswordHasher::verify_async`] and
//! [`PasswordHasher::verify_dummy_async`], which run them on a blocking thread and at most
//! [`PasswordHasher::with_concurrency`] of them at once (by default one per core): a flood of
//! logins queues for a permit instead of allocating 19 MiB each, and a request that waits longer
//! than the configured time gets [`PasswordHashError::Busy`] (answer 503 with `Retry-After`).
//!
//! For a login name that matches no account, call [`PasswordHasher::verify_dummy`] so the answer
//! takes as long as for a real account with a wrong password: the time taken must not reveal
//! which accounts exist.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use chrono::NaiveDate;

use argon2::password_hash::phc::PasswordHash;

use crate::common_passwords;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};

/// Why a new password does not meet the [`PasswordPolicy`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordPolicyError {
    /// Fewer characters than the minimum.
    #[error("the password has {len} characters but needs at least {min}; choose a longer one")]
    TooShort {
        /// Characters entered.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// More characters than the maximum.
    #[error("the password has {len} characters but may have at most {max}; choose a shorter one")]
    TooLong {
        /// Characters entered.
        len: usize,
        /// The maximum.
        max: usize,
    },
    /// Too few of the four character classes.
    #[error(
        "the password uses {found} of the character classes lower-case letters, upper-case \
         letters, digits and symbols, but needs at least {min}; add characters of the others"
    )]
    TooFewClasses {
        /// Classes present.
        found: u8,
        /// Classes required.
        min: u8,
    },
    /// A control character (such as a line break or tab).
    #[error("the password contains a control character (such as a tab or line break); remove it")]
    ControlCharacter,
    /// The password contains the account name, phone number or another identifier.
    #[error("the password contains the account name or other account details; choose another")]
    ContainsAccountInfo,
    /// The password is a common one, or a common one with digits or symbols added or letters
    /// swapped for look-alikes.
    #[error(
        "the password is too common (it is, or is built on, a password on the list of common \
         passwords, such as Password123! or woaini1314); choose one others would not guess, \
         for example a few unrelated words"
    )]
    Common,
    /// The password contains a date (8 digits such as 19900307).
    #[error(
        "the password contains a date such as a birthday (8 digits like 19900307), which is \
         easy to guess; leave the date out"
    )]
    ContainsDate,
    /// The password contains a mobile number (11 digits starting 13-19).
    #[error("the password contains a mobile phone number, which is easy to guess; leave it out")]
    ContainsMobileNumber,
    /// The password contains the person's own birth date.
    #[error(
        "the password contains your birth date (as in your ID number, e.g. 19900307, 900307 or \
         03071990); leave it out"
    )]
    ContainsBirthDate,
    /// The password contains 6 or more consecutive digits of the person's ID number.
    #[error(
        "the password contains 6 or more consecutive digits of your ID number (such as its last \
         six); leave them out"
    )]
    ContainsIdNumberDigits,
    /// The password contains 6 or more consecutive digits of the person's phone number.
    #[error(
        "the password contains 6 or more consecutive digits of your phone number; leave them out"
    )]
    ContainsPhoneDigits,
}

impl PasswordPolicyError {
    /// A short Chinese message for the user.
    pub fn message_zh(&self) -> String {
        match self {
            Self::TooShort { min, .. } => {
                format!("密码至少需要{min}个字符，请设置更长的密码")
            }
            Self::TooLong { max, .. } => format!("密码不能超过{max}个字符，请设置较短的密码"),
            Self::TooFewClasses { min, .. } => format!(
                "密码需包含小写字母、大写字母、数字、符号中的至少{min}类，请增加其他类型的字符"
            ),
            Self::ControlCharacter => "密码中含有制表符、换行等控制字符，请删除后重新输入".into(),
            Self::ContainsAccountInfo => "密码不能包含用户名、手机号等账号信息，请重新设置".into(),
            Self::Common => "该密码过于常见，容易被猜中：常见密码（如 Password123!、woaini1314）\
                 加上数字、符号或把字母换成形近的数字符号后仍然常见。请换一个不常见的密码，\
                 例如用几个不相关的词语组成"
                .into(),
            Self::ContainsDate => {
                "密码不能包含生日等日期（如 19900307），日期容易被猜中，请去掉后重新设置".into()
            }
            Self::ContainsMobileNumber => {
                "密码不能包含手机号码（以13至19开头的11位数字），请去掉后重新设置".into()
            }
            Self::ContainsBirthDate => "密码不能包含您的出生日期（如 19900307、900307、\
                 03071990），请去掉后重新设置"
                .into(),
            Self::ContainsIdNumberDigits => {
                "密码不能包含身份证号码中连续6位及以上的数字（如后六位），请去掉后重新设置".into()
            }
            Self::ContainsPhoneDigits => {
                "密码不能包含手机号码中连续6位及以上的数字，请去掉后重新设置".into()
            }
        }
    }
}

/// What is known of the person a password is for, so that it cannot be made of it.
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountDetails<'a> {
    /// Login names and similar words (compared whole, case-insensitively; those shorter than 3
    /// characters are ignored).
    pub names: &'a [&'a str],
    /// The ID number, if known (no 6 consecutive digits of it may appear).
    pub id_number: Option<&'a str>,
    /// The phone number, if known (no 6 consecutive digits of it may appear).
    pub phone: Option<&'a str>,
    /// The birth date, if known (not as `YYYYMMDD`, `YYMMDD`, `MMDDYYYY`, `DDMMYYYY`,
    /// `YYYY-MM-DD` …).
    pub birth_date: Option<NaiveDate>,
}

/// Rules for new passwords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length in characters (default 10).
    pub min_length: usize,
    /// Minimum number of character classes among lower-case, upper-case, digit and symbol
    /// (default 3). Letters without case (such as Chinese characters) and spaces count as symbols.
    pub min_classes: u8,
    /// Maximum length in characters (default 128).
    pub max_length: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_length: 10,
            min_classes: 3,
            max_length: 128,
        }
    }
}

impl PasswordPolicy {
    /// Checks a new password against the policy.
    pub fn check(&self, password: &str) -> Result<(), PasswordPolicyError> {
        if password.chars().any(char::is_control) {
            return Err(PasswordPolicyError::ControlCharacter);
        }
        let len = password.chars().count();
        if len < self.min_length {
            return Err(PasswordPolicyError::TooShort {
                len,
                min: self.min_length,
            });
        }
        if len > self.max_length {
            return Err(PasswordPolicyError::TooLong {
                len,
                max: self.max_length,
            });
        }
        let (mut lower, mut upper, mut digit, mut symbol) = (false, false, false, false);
        for c in password.chars() {
            if c.is_lowercase() {
                lower = true;
            } else if c.is_uppercase() {
                upper = true;
            } else if c.is_ascii_digit() {
                digit = true;
            } else {
                symbol = true;
            }
        }
        let found = u8::from(lower) + u8::from(upper) + u8::from(digit) + u8::from(symbol);
        if found < self.min_classes {
            return Err(PasswordPolicyError::TooFewClasses {
                found,
                min: self.min_classes,
            });
        }
        if common_passwords::is_common(password) {
            return Err(PasswordPolicyError::Common);
        }
        if common_passwords::has_date(password) {
            return Err(PasswordPolicyError::ContainsDate);
        }
        if common_passwords::has_mobile_number(password) {
            return Err(PasswordPolicyError::ContainsMobileNumber);
        }
        Ok(())
    }

    /// [`check`](Self::check), and also refuses a password containing any of the account's
    /// identifiers (login name, phone number, e-mail local part), compared case-insensitively.
    /// Identifiers shorter than 3 characters are ignored.
    pub fn check_for_account(
        &self,
        password: &str,
        account_identifiers: &[&str],
    ) -> Result<(), PasswordPolicyError> {
        self.check_for(
            password,
            &AccountDetails {
                names: account_identifiers,
                ..AccountDetails::default()
            },
        )
    }

    /// [`check`](Self::check), and also refuses a password made of the person's own details:
    /// their names, birth date, or 6 consecutive digits of their ID or phone number.
    pub fn check_for(
        &self,
        password: &str,
        details: &AccountDetails<'_>,
    ) -> Result<(), PasswordPolicyError> {
        self.check(password)?;
        let lower = password.to_lowercase();
        let contains_name = details
            .names
            .iter()
            .map(|id| id.trim().to_lowercase())
            .filter(|id| id.chars().count() >= 3)
            .any(|id| lower.contains(&id));
        if contains_name {
            return Err(PasswordPolicyError::ContainsAccountInfo);
        }
        if let Some(birth) = details.birth_date
            && common_passwords::has_birth_date(password, birth)
        {
            return Err(PasswordPolicyError::ContainsBirthDate);
        }
        if let Some(id) = details.id_number
            && common_passwords::has_fragment_of(password, id)
        {
            return Err(PasswordPolicyError::ContainsIdNumberDigits);
        }
        if let Some(phone) = details.phone
            && common_passwords::has_fragment_of(password, phone)
        {
            return Err(PasswordPolicyError::ContainsPhoneDigits);
        }
        Ok(())
    }
}

/// A failure of the hashing machinery itself (never a wrong password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordHashError {
    /// The argon2 parameters are out of range.
    #[error("argon2 parameters are invalid ({0}); use m_cost ≥ 8 KiB, t_cost ≥ 1 and p_cost ≥ 1")]
    Params(String),
    /// A stored hash is not an argon2 PHC string.
    #[error(
        "the stored password hash is not a valid argon2 PHC string; \
         reset this account's password"
    )]
    MalformedHash,
    /// Hashing failed (out of memory, no randomness).
    #[error("password hashing failed ({0}); check the server's memory and random number source")]
    Hash(String),
    /// Every hashing permit stayed taken for the whole allowed wait: the server is flooded.
    #[error(
        "the server is busy checking other passwords and could not check this one in time; \
         try again in a minute"
    )]
    Busy,
}

impl PasswordHashError {
    /// A short Chinese message for the user (the details are for the log).
    pub fn message_zh(&self) -> String {
        match self {
            Self::MalformedHash => "账号密码数据异常，请联系管理员重置密码".into(),
            Self::Params(_) | Self::Hash(_) => "服务器内部错误，请稍后重试".into(),
            Self::Busy => "当前登录人数较多，系统繁忙，请一分钟后再试".into(),
        }
    }
}

/// argon2id password hashing with fixed parameters.
///
/// Verification uses the parameters recorded in each stored hash, so raising the parameters
/// keeps old hashes working; [`needs_rehash`](Self::needs_rehash) tells when to re-hash a
/// password after a successful login.
///
/// Clones share one set of permits (see [`with_concurrency`](Self::with_concurrency)).
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    params: Params,
    dummy: Arc<OnceLock<String>>,
    permits: Arc<tokio::sync::Semaphore>,
    max_wait: Duration,
}

/// How long a request waits for a hashing permit by default before it is told the server is
/// busy.
pub const DEFAULT_MAX_WAIT: Duration = Duration::from_secs(10);

fn default_permits() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZero::get)
}

impl PasswordHasher {
    fn from_params(params: Params) -> Self {
        Self {
            params,
            dummy: Arc::new(OnceLock::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(default_permits())),
            max_wait: DEFAULT_MAX_WAIT,
        }
    }
}

impl Default for PasswordHasher {
    /// OWASP's recommendation: m = 19456 KiB (19 MiB), t = 2, p = 1.
    fn default() -> Self {
        Self::from_params(Params::DEFAULT)
    }
}

impl PasswordHasher {
    /// OWASP's recommended parameters (m = 19456 KiB, t = 2, p = 1).
    pub fn new() -> Self {
        Self::default()
    }

    /// Custom parameters: memory in KiB, iterations, parallelism.
    pub fn with_params(
        m_cost_kib: u32,
        t_cost: u32,
        p_cost: u32,
    ) -> Result<Self, PasswordHashError> {
        let params = Params::new(m_cost_kib, t_cost, p_cost, None)
            .map_err(|e| PasswordHashError::Params(e.to_string()))?;
        Ok(Self::from_params(params))
    }

    /// Tiny parameters (m = 8 KiB, t = 1, p = 1) for tests and demos. Never in production.
    pub fn fast_for_tests() -> Self {
        Self::from_params(Params::new(Params::MIN_M_COST, 1, 1, None).unwrap_or(Params::DEFAULT))
    }

    /// The same hasher allowing at most `permits` hashes or verifications at once (at least 1),
    /// each request waiting at most `max_wait` for its turn. Memory for argon2 is then at most
    /// `permits × m_cost`, whatever arrives.
    pub fn with_concurrency(mut self, permits: usize, max_wait: Duration) -> Self {
        self.permits = Arc::new(tokio::sync::Semaphore::new(permits.max(1)));
        self.max_wait = max_wait;
        self
    }

    /// Runs `work` on a blocking thread once a permit is free.
    async fn run_limited<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHasher) -> T + Send + 'static,
    ) -> Result<T, PasswordHashError> {
        let permit = tokio::time::timeout(self.max_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| PasswordHashError::Busy)?
            .map_err(|_| PasswordHashError::Busy)?;
        let hasher = self.clone();
        tokio::task::spawn_blocking(move || {
            let result = work(&hasher);
            drop(permit);
            result
        })
        .await
        .map_err(|e| PasswordHashError::Hash(format!("hashing task failed: {e}")))
    }

    /// [`hash`](Self::hash) on a blocking thread, within the concurrency limit.
    pub async fn hash_async(&self, password: &str) -> Result<String, PasswordHashError> {
        let password = password.to_owned();
        self.run_limited(move |h| h.hash(&password)).await?
    }

    /// [`verify`](Self::verify) on a blocking thread, within the concurrency limit.
    pub async fn verify_async(&self, password: &str, phc: &str) -> Result<bool, PasswordHashError> {
        let (password, phc) = (password.to_owned(), phc.to_owned());
        self.run_limited(move |h| h.verify(&password, &phc)).await?
    }

    /// [`verify_dummy`](Self::verify_dummy) on a blocking thread, within the concurrency limit.
    pub async fn verify_dummy_async(&self, password: &str) -> Result<bool, PasswordHashError> {
        let password = password.to_owned();
        self.run_limited(move |h| h.verify_dummy(&password)).await
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// Hashes a password with a fresh random salt into a PHC string.
    pub fn hash(&self, password: &str) -> Result<String, PasswordHashError> {
        self.argon2()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| PasswordHashError::Hash(e.to_string()))
    }

    /// Whether `password` matches the stored PHC string. `Ok(false)` is a wrong password;
    /// `Err` means the stored hash is unusable.
    pub fn verify(&self, password: &str, phc: &str) -> Result<bool, PasswordHashError> {
        let parsed = PasswordHash::new(phc).map_err(|_| PasswordHashError::MalformedHash)?;
        match self.argon2().verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(
                argon2::password_hash::Error::Algorithm
                | argon2::password_hash::Error::EncodingInvalid
                | argon2::password_hash::Error::ParamInvalid { .. }
                | argon2::password_hash::Error::ParamsInvalid
                | argon2::password_hash::Error::SaltInvalid
                | argon2::password_hash::Error::OutputSize
                | argon2::password_hash::Error::Version,
            ) => Err(PasswordHashError::MalformedHash),
            Err(e) => Err(PasswordHashError::Hash(e.to_string())),
        }
    }

    /// Spends the time of a real verification and returns `false`: call it when the login name
    /// matches no account, so the response time does not reveal which accounts exist.
    pub fn verify_dummy(&self, password: &str) -> bool {
        let dummy = self.dummy.get_or_init(|| {
            // A hash of a random value nobody knows, with this hasher's parameters.
            let secret = crate::token::new_token();
            self.hash(&secret).unwrap_or_default()
        });
        // Run the same computation even if building the dummy failed.
        let parsed = PasswordHash::new(dummy);
        match parsed {
            Ok(parsed) => {
                let _ = self.argon2().verify_password(password.as_bytes(), &parsed);
            }
            Err(_) => {
                let _ = self.hash(password);
            }
        }
        false
    }

    /// Whether a stored hash was made with other parameters (or another algorithm) than this
    /// hasher's; re-hash the password after a successful login when it was.
    pub fn needs_rehash(&self, phc: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(phc) else {
            return true;
        };
        if parsed.algorithm.as_str() != argon2::ARGON2ID_IDENT.as_str() {
            return true;
        }
        match Params::try_from(&parsed) {
            Ok(p) => {
                p.m_cost() != self.params.m_cost()
                    || p.t_cost() != self.params.t_cost()
                    || p.p_cost() != self.params.p_cost()
            }
            Err(_) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_defaults() {
        let p = PasswordPolicy::default();
        assert_eq!((p.min_length, p.min_classes, p.max_length), (10, 3, 128));
    }

    #[test]
    fn policy_length_edges() {
        let p = PasswordPolicy::default();
        assert_eq!(
            p.check("Abc12345!"),
            Err(PasswordPolicyError::TooShort { len: 9, min: 10 })
        );
        assert_eq!(p.check("Abc12345!x"), Ok(()));
        let max = format!("Aa1{}", "x".repeat(125));
        assert_eq!(p.check(&max), Ok(()));
        let over = format!("{max}y");
        assert_eq!(
            p.check(&over),
            Err(PasswordPolicyError::TooLong { len: 129, max: 128 })
        );
        // Characters, not bytes: ten Chinese characters plus classes.
        assert_eq!(p.check("不动产登记Ab12中"), Ok(()));
        assert!(matches!(
            p.check("不动产Ab1"),
            Err(PasswordPolicyError::TooShort { len: 6, .. })
        ));
    }

    #[test]
    fn policy_classes() {
        let p = PasswordPolicy::default();
        assert_eq!(
            p.check("abcdefghij"),
            Err(PasswordPolicyError::TooFewClasses { found: 1, min: 3 })
        );
        assert_eq!(
            p.check("abcdefgh12"),
            Err(PasswordPolicyError::TooFewClasses { found: 2, min: 3 })
        );
        assert_eq!(p.check("abcdefgH12"), Ok(()));
        assert_eq!(p.check("abcdefgh1!"), Ok(()));
        assert_eq!(p.check("ABCDEFGH1 "), Ok(()), "a space is a symbol");
        let relaxed = PasswordPolicy {
            min_classes: 1,
            ..PasswordPolicy::default()
        };
        assert_eq!(relaxed.check("abcdefghij"), Ok(()));
    }

    #[test]
    fn policy_control_characters_and_account_info() {
        let p = PasswordPolicy::default();
        assert_eq!(
            p.check("Abcdefg12\t!"),
            Err(PasswordPolicyError::ControlCharacter)
        );
        assert_eq!(
            p.check_for_account("Zhangsan2024!", &["zhangsan", "13800138000"]),
            Err(PasswordPolicyError::ContainsAccountInfo)
        );
        assert_eq!(
            p.check_for_account("Tr0ub4dor&3x", &["zhangsan", "ab"]),
            Ok(())
        );
    }

    #[test]
    fn guessable_passwords_are_refused_with_the_rule() {
        let p = PasswordPolicy::default();
        assert_eq!(p.check("Password2024!"), Err(PasswordPolicyError::Common));
        assert_eq!(p.check("P@ssw0rd123!"), Err(PasswordPolicyError::Common));
        assert_eq!(p.check("Woaini1314!"), Err(PasswordPolicyError::Common));
        assert_eq!(
            p.check("Zhang#19900307"),
            Err(PasswordPolicyError::ContainsDate)
        );
        assert_eq!(
            p.check("Pw#13812345678"),
            Err(PasswordPolicyError::ContainsMobileNumber)
        );
        assert_eq!(p.check("Qingzhou#2026pw"), Ok(()));
        let details = AccountDetails {
            names: &[],
            id_number: Some("110101199003074477"),
            phone: Some("13812345678"),
            birth_date: NaiveDate::from_ymd_opt(1990, 3, 7),
        };
        assert_eq!(
            p.check_for("Qz#900307abc", &details),
            Err(PasswordPolicyError::ContainsBirthDate)
        );
        assert_eq!(
            p.check_for("Qz#074477abc", &details),
            Err(PasswordPolicyError::ContainsIdNumberDigits)
        );
        assert_eq!(
            p.check_for("Qz#345678abc", &details),
            Err(PasswordPolicyError::ContainsPhoneDigits)
        );
        assert_eq!(p.check_for("Qingzhou#2026pw", &details), Ok(()));
        for e in [
            PasswordPolicyError::Common,
            PasswordPolicyError::ContainsDate,
            PasswordPolicyError::ContainsMobileNumber,
            PasswordPolicyError::ContainsBirthDate,
            PasswordPolicyError::ContainsIdNumberDigits,
            PasswordPolicyError::ContainsPhoneDigits,
        ] {
            assert!(e.message_zh().contains("密码"), "{e:?}");
            assert!(e.to_string().contains("password"), "{e:?}");
        }
        assert!(PasswordPolicyError::Common.message_zh().contains("常见"));
    }

    #[test]
    fn policy_messages_say_the_rule() {
        let e = PasswordPolicyError::TooShort { len: 3, min: 10 };
        assert!(e.message_zh().contains("至少需要10个字符"));
        assert!(e.to_string().contains("at least 10"));
        let e = PasswordPolicyError::TooFewClasses { found: 1, min: 3 };
        assert!(e.message_zh().contains("至少3类"), "{}", e.message_zh());
    }

    #[test]
    fn hash_round_trip_and_wrong_password() {
        let h = PasswordHasher::fast_for_tests();
        let phc = h.hash("Correct-Horse-9").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=8,t=1,p=1$"), "{phc}");
        assert!(h.verify("Correct-Horse-9", &phc).unwrap());
        assert!(!h.verify("correct-horse-9", &phc).unwrap());
        assert!(!h.verify("", &phc).unwrap());
        // A fresh salt each time.
        assert_ne!(phc, h.hash("Correct-Horse-9").unwrap());
    }

    #[test]
    fn verify_uses_the_stored_parameters() {
        let fast = PasswordHasher::fast_for_tests();
        let other = PasswordHasher::with_params(16, 2, 1).unwrap();
        let phc = other.hash("Pass-word-1").unwrap();
        assert!(fast.verify("Pass-word-1", &phc).unwrap());
        assert!(fast.needs_rehash(&phc));
        assert!(!other.needs_rehash(&phc));
        assert!(fast.needs_rehash("not a hash"));
    }

    #[test]
    fn malformed_hash_is_an_error() {
        let h = PasswordHasher::fast_for_tests();
        assert_eq!(
            h.verify("x", "plaintext"),
            Err(PasswordHashError::MalformedHash)
        );
        assert_eq!(
            h.verify("x", "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$!!!"),
            Err(PasswordHashError::MalformedHash)
        );
        assert!(
            PasswordHashError::MalformedHash
                .message_zh()
                .contains("重置密码")
        );
    }

    #[test]
    fn dummy_verify_is_false_and_costs_a_hash() {
        let h = PasswordHasher::with_params(1024, 2, 1).unwrap();
        assert!(!h.verify_dummy("anything"));
        let phc = h.hash("Real-pass-1").unwrap();
        // Both paths do one argon2 computation with the same parameters; compare loosely
        // (shared CI machines are noisy): the dummy must not be an order of magnitude faster.
        let runs = 5;
        let start = std::time::Instant::now();
        for _ in 0..runs {
            let _ = h.verify("wrong", &phc).unwrap();
        }
        let real = start.elapsed();
        let start = std::time::Instant::now();
        for _ in 0..runs {
            assert!(!h.verify_dummy("wrong"));
        }
        let dummy = start.elapsed();
        assert!(dummy * 10 > real, "dummy {dummy:?} vs real {real:?}");
    }

    #[tokio::test]
    async fn a_flood_waits_for_permits_and_is_told_the_server_is_busy() {
        let h = PasswordHasher::fast_for_tests().with_concurrency(2, Duration::from_millis(50));
        let phc = h.hash_async("Real-pass-1").await.unwrap();
        assert!(h.verify_async("Real-pass-1", &phc).await.unwrap());
        assert!(!h.verify_dummy_async("x").await.unwrap());
        // Every permit taken (as by two long verifications): the next request waits its
        // allowed time and is refused, without running argon2.
        let held = h.permits.clone().acquire_many_owned(2).await.unwrap();
        assert_eq!(
            h.verify_async("Real-pass-1", &phc).await,
            Err(PasswordHashError::Busy)
        );
        assert_eq!(
            h.clone().hash_async("x").await,
            Err(PasswordHashError::Busy),
            "clones share the permits"
        );
        assert!(
            PasswordHashError::Busy.message_zh().contains("稍后")
                || PasswordHashError::Busy.message_zh().contains("再试")
        );
        drop(held);
        // Many at once all finish, never more than the permits at a time.
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (h, phc) = (h.clone(), phc.clone());
                tokio::spawn(async move { h.verify_async("Real-pass-1", &phc).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(true));
        }
        assert_eq!(h.permits.available_permits(), 2);
    }

    #[test]
    fn bad_params_are_refused() {
        assert!(matches!(
            PasswordHasher::with_params(1, 1, 1),
            Err(PasswordHashError::Params(_))
        ));
        assert!(matches!(
            PasswordHasher::with_params(64, 0, 1),
            Err(PasswordHashError::Params(_))
        ));
        let d = PasswordHasher::default();
        assert!(d.needs_rehash(&PasswordHasher::fast_for_tests().hash("x").unwrap()));
    }
}
