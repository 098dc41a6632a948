//! Surveyor accounts, roles, two-factor login (password + TOTP), lockout and sessions.
//!
//! The same rules as the back office's staff (`extranet-zone/src/staff.rs`; MLPS level 3 asks
//! for two factors): argon2id passwords, a sealed TOTP secret whose code is accepted once
//! (compare-and-set on `totp_last_step`), failures counted atomically
//! (`failed_logins = failed_logins + 1 … RETURNING`), sessions stored as token digests, first
//! at stage `password`, then `full` under a new token. This module repeats that small block
//! over the intranet's own tables: the zones share no database, and the pieces that can be
//! shared (hashing, TOTP, lockout, tokens) come from `ow-web`.

use chrono::{DateTime, TimeDelta, Utc};
use ow_pii::PiiKeyring;
use ow_store::Store;
use ow_web::lockout::{Locked, LockoutPolicy};
use ow_web::password::{PasswordHasher, PasswordPolicy};
use ow_web::token::{new_token, token_digest};
use ow_web::totp::TotpSecret;
use serde::Serialize;
use sqlx::Row;

use crate::db;
use crate::error::{IntranetError, Result};

/// What a surveyor may do. Every surveyor has exactly one district.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 调查审查员: reviews packages of the district, approves clean ones, rejects.
    Surveyor,
    /// 审查负责人: may also approve a package with error findings, with an override reason.
    Chief,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 2] = [Role::Surveyor, Role::Chief];

    /// Stable code: `surveyor`, `chief`.
    pub fn code(self) -> &'static str {
        match self {
            Role::Surveyor => "surveyor",
            Role::Chief => "chief",
        }
    }

    /// Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Role::Surveyor => "调查审查员",
            Role::Chief => "审查负责人",
        }
    }

    /// The role for a code.
    pub fn from_code(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == code.trim())
    }
}

/// A surveyor as pages see them.
#[derive(Clone, PartialEq, Eq)]
pub struct Surveyor {
    /// Account id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Display (work) name.
    pub display_name: String,
    /// The district the surveyor works in.
    pub district_code: String,
    /// The district's name.
    pub district_name: String,
    /// Roles.
    pub roles: Vec<Role>,
}

impl std::fmt::Debug for Surveyor {
    /// The display name is shown masked.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Surveyor")
            .field("id", &self.id)
            .field("username", &self.username)
            .field(
                "display_name",
                &ow_domain::mask::mask_name(&self.display_name),
            )
            .field("district_code", &self.district_code)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

impl Surveyor {
    /// Whether the surveyor has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Roles in Chinese, joined.
    pub fn roles_zh(&self) -> String {
        self.roles
            .iter()
            .map(|r| r.name_zh())
            .collect::<Vec<_>>()
            .join("、")
    }
}

/// A new account.
#[derive(Clone)]
pub struct NewSurveyor {
    /// Login name: 3–32 of `a-z 0-9 . _ -`.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// District code (must exist in `int_districts`).
    pub district_code: String,
    /// Roles (at least one).
    pub roles: Vec<Role>,
    /// The initial password; `None` generates one.
    pub password: Option<String>,
}

impl std::fmt::Debug for NewSurveyor {
    /// The name is masked and the password never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewSurveyor")
            .field("username", &self.username)
            .field(
                "display_name",
                &ow_domain::mask::mask_name(&self.display_name),
            )
            .field("district_code", &self.district_code)
            .field("roles", &self.roles)
            .finish_non_exhaustive()
    }
}

/// A created account with its credentials, shown once.
#[derive(Clone)]
pub struct CreatedSurveyor {
    /// The account.
    pub surveyor: Surveyor,
    /// The initial password.
    pub password: String,
    /// The TOTP secret in base32.
    pub totp_base32: String,
    /// The `otpauth://` URI of the secret.
    pub otpauth_uri: String,
}

impl std::fmt::Debug for CreatedSurveyor {
    /// Credentials are never shown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedSurveyor")
            .field("surveyor", &self.surveyor)
            .finish_non_exhaustive()
    }
}

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum SurveyorError {
    /// The login name is taken.
    #[error("用户名 {0} 已存在，请换一个")]
    Exists(String),
    /// Something in the request is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] IntranetError),
}

impl From<sqlx::Error> for SurveyorError {
    fn from(e: sqlx::Error) -> Self {
        SurveyorError::Other(e.into())
    }
}

/// Creates a surveyor account (argon2id password hash, sealed TOTP secret).
pub async fn create_surveyor(
    store: &Store,
    pii: &PiiKeyring,
    hasher: &PasswordHasher,
    min_password_length: usize,
    new: NewSurveyor,
    now_ms: i64,
) -> Result<CreatedSurveyor, SurveyorError> {
    let username = new.username.trim().to_ascii_lowercase();
    let valid = (3..=32).contains(&username.len())
        && username.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if !valid {
        return Err(SurveyorError::Invalid(
            "用户名须为3至32位小写字母、数字或 . _ -".into(),
        ));
    }
    let display_name = new.display_name.trim().to_owned();
    if display_name.is_empty() || display_name.chars().count() > 32 {
        return Err(SurveyorError::Invalid(
            "请填写1至32个字的姓名（工作名）".into(),
        ));
    }
    if new.roles.is_empty() {
        return Err(SurveyorError::Invalid("请至少选择一个岗位角色".into()));
    }
    let district_name: Option<String> =
        sqlx::query_scalar("SELECT name FROM int_districts WHERE code = $1")
            .bind(&new.district_code)
            .fetch_optional(store.writer())
            .await?;
    let Some(district_name) = district_name else {
        return Err(SurveyorError::Invalid(format!(
            "区县代码 {} 不存在；请先运行 seed-demo 或核对代码",
            new.district_code
        )));
    };
    let password = match new.password {
        Some(p) => {
            PasswordPolicy {
                min_length: min_password_length,
                ..PasswordPolicy::default()
            }
            .check_for_account(&p, &[&username])
            .map_err(|e| SurveyorError::Invalid(e.message_zh()))?;
            p
        }
        None => generate_password(),
    };
    let hash = hasher
        .hash_async(&password)
        .await
        .map_err(|e| SurveyorError::Invalid(e.message_zh()))?;
    let totp = TotpSecret::generate();
    let id = ow_store::new_id();
    let mut roles = new.roles.clone();
    roles.sort();
    roles.dedup();
    let roles_text = roles.iter().map(|r| r.code()).collect::<Vec<_>>().join(",");
    let totp_sealed = db::seal(
        pii,
        db::TOTP_FIELD,
        &format!("int_surveyors:{id}"),
        &totp.to_base32(),
    );
    let inserted = sqlx::query(
        "INSERT INTO int_surveyors (id, username, display_name, district_code, roles, \
         password_hash, totp_sealed, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&id)
    .bind(&username)
    .bind(&display_name)
    .bind(&new.district_code)
    .bind(&roles_text)
    .bind(&hash)
    .bind(&totp_sealed)
    .bind(now_ms)
    .execute(store.writer())
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if db::unique_violation(&e) => return Err(SurveyorError::Exists(username)),
        Err(e) => return Err(e.into()),
    }
    let otpauth_uri = totp
        .otpauth_uri("OneWindow权籍调查", &username)
        .unwrap_or_default();
    tracing::info!(surveyor_id = %id, district = %new.district_code, "surveyor account created");
    Ok(CreatedSurveyor {
        surveyor: Surveyor {
            id,
            username,
            display_name,
            district_code: new.district_code,
            district_name,
            roles,
        },
        password,
        totp_base32: totp.to_base32(),
        otpauth_uri,
    })
}

/// An initial password: four groups of four letters and digits without look-alikes.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZabcdefghjkmnpqrstuvwxyz23456789";
    loop {
        let token = new_token();
        let mut out = String::with_capacity(19);
        for (i, b) in token.bytes().take(16).enumerate() {
            if i > 0 && i % 4 == 0 {
                out.push('-');
            }
            out.push(char::from(ALPHABET[usize::from(b) % ALPHABET.len()]));
        }
        if out.chars().any(|c| c.is_ascii_lowercase())
            && out.chars().any(|c| c.is_ascii_uppercase())
            && out.chars().any(|c| c.is_ascii_digit())
        {
            return out;
        }
    }
}

const COLUMNS: &str = "s.id, s.username, s.display_name, s.district_code, \
    d.name AS district_name, s.roles";

fn surveyor_of(row: &sqlx::any::AnyRow) -> Result<Surveyor> {
    let roles: String = row.try_get("roles")?;
    Ok(Surveyor {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        district_code: row.try_get("district_code")?,
        district_name: row.try_get("district_name")?,
        roles: roles.split(',').filter_map(Role::from_code).collect(),
    })
}

/// A surveyor by login name.
pub async fn find_by_username(store: &Store, username: &str) -> Result<Option<Surveyor>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM int_surveyors s JOIN int_districts d ON d.code = s.district_code \
         WHERE s.username = $1"
    )))
    .bind(username.trim().to_ascii_lowercase())
    .fetch_optional(store.reader())
    .await?;
    row.as_ref().map(surveyor_of).transpose()
}

/// Why a login step failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown account or wrong password (the same answer for both).
    #[error("用户名或密码错误")]
    BadCredentials,
    /// Wrong, reused or expired dynamic code.
    #[error("动态口令不正确或已使用，请输入验证器上当前显示的6位口令")]
    BadCode,
    /// The account is locked.
    #[error("{}", .0.message_zh())]
    Locked(Locked),
    /// The account is disabled.
    #[error("账号已停用，请联系系统管理员")]
    Inactive,
    /// Every password-hashing slot stayed busy.
    #[error("当前登录人数较多，系统繁忙，请一分钟后再试")]
    Busy,
    /// A store or key failure.
    #[error("系统错误，请稍后再试")]
    Internal(#[from] IntranetError),
}

impl From<sqlx::Error> for LoginError {
    fn from(e: sqlx::Error) -> Self {
        LoginError::Internal(e.into())
    }
}

fn ms_to_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
}

async fn record_failure(
    store: &Store,
    policy: &LockoutPolicy,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Locked>, LoginError> {
    let count: i64 = sqlx::query_scalar(
        "UPDATE int_surveyors SET failed_logins = failed_logins + 1 WHERE id = $1 \
         RETURNING failed_logins",
    )
    .bind(id)
    .fetch_one(store.writer())
    .await?;
    if !policy.locks_at(u32::try_from(count).unwrap_or(u32::MAX)) {
        return Ok(None);
    }
    let until = policy.lock_until(now);
    sqlx::query(
        "UPDATE int_surveyors SET locked_until_ms = $1 WHERE id = $2 \
         AND (locked_until_ms IS NULL OR locked_until_ms < $1)",
    )
    .bind(until.timestamp_millis())
    .bind(id)
    .execute(store.writer())
    .await?;
    tracing::warn!(surveyor_id = %id, "surveyor account locked after repeated login failures");
    Ok(Some(Locked { until }))
}

fn hash_error(e: ow_web::password::PasswordHashError) -> LoginError {
    match e {
        ow_web::password::PasswordHashError::Busy => LoginError::Busy,
        other => LoginError::Internal(IntranetError::Invalid(format!(
            "password check failed: {other}"
        ))),
    }
}

/// Step 1: checks the password; returns the account id, ready for the dynamic code.
pub async fn check_password(
    store: &Store,
    hasher: &PasswordHasher,
    policy: &LockoutPolicy,
    username: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<String, LoginError> {
    let row = sqlx::query(
        "SELECT id, password_hash, locked_until_ms, active FROM int_surveyors WHERE username = $1",
    )
    .bind(username.trim().to_ascii_lowercase())
    .fetch_optional(store.writer())
    .await?;
    let Some(row) = row else {
        hasher
            .verify_dummy_async(password)
            .await
            .map_err(hash_error)?;
        return Err(LoginError::BadCredentials);
    };
    let id: String = row.try_get("id")?;
    let hash: String = row.try_get("password_hash")?;
    let locked_until: Option<i64> = row.try_get("locked_until_ms")?;
    let active: i64 = row.try_get("active")?;
    policy
        .check(ms_to_time(locked_until), now)
        .map_err(LoginError::Locked)?;
    let ok = match hasher.verify_async(password, &hash).await {
        Ok(ok) => ok,
        Err(ow_web::password::PasswordHashError::MalformedHash) => false,
        Err(e) => return Err(hash_error(e)),
    };
    if !ok {
        if let Some(locked) = record_failure(store, policy, &id, now).await? {
            return Err(LoginError::Locked(locked));
        }
        return Err(LoginError::BadCredentials);
    }
    if active == 0 {
        return Err(LoginError::Inactive);
    }
    Ok(id)
}

/// Step 2: checks the dynamic code of account `id`; a code is accepted once.
pub async fn check_totp(
    store: &Store,
    pii: &PiiKeyring,
    policy: &LockoutPolicy,
    id: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<(), LoginError> {
    let row = sqlx::query(
        "SELECT totp_sealed, totp_last_step, locked_until_ms FROM int_surveyors WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.writer())
    .await?;
    let Some(row) = row else {
        return Err(LoginError::BadCredentials);
    };
    let sealed: String = row.try_get("totp_sealed")?;
    let last_step: i64 = row.try_get("totp_last_step")?;
    let locked_until: Option<i64> = row.try_get("locked_until_ms")?;
    policy
        .check(ms_to_time(locked_until), now)
        .map_err(LoginError::Locked)?;
    let base32 = db::open(pii, db::TOTP_FIELD, &format!("int_surveyors:{id}"), &sealed)?;
    let secret = TotpSecret::from_base32(&base32)
        .map_err(|_| IntranetError::Corrupt(format!("TOTP secret of surveyor {id}")))?;
    let now_unix = u64::try_from(now.timestamp()).unwrap_or(0);
    let step = secret
        .verify_step(code, now_unix)
        .map(|s| i64::try_from(s).unwrap_or(i64::MAX))
        .filter(|s| *s > last_step);
    if let Some(step) = step {
        let taken = sqlx::query(
            "UPDATE int_surveyors SET totp_last_step = $1, failed_logins = 0, \
             locked_until_ms = NULL WHERE id = $2 AND totp_last_step < $1 \
             AND (locked_until_ms IS NULL OR locked_until_ms <= $3)",
        )
        .bind(step)
        .bind(id)
        .bind(now.timestamp_millis())
        .execute(store.writer())
        .await?;
        if taken.rows_affected() == 1 {
            return Ok(());
        }
    }
    if let Some(locked) = record_failure(store, policy, id, now).await? {
        return Err(LoginError::Locked(locked));
    }
    Err(LoginError::BadCode)
}

/// The stage of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Password checked; waiting for the dynamic code.
    Password,
    /// Fully signed in.
    Full,
}

/// Starts a session; returns the token for the cookie (only its digest is stored).
pub async fn create_session(
    store: &Store,
    surveyor_id: &str,
    stage: Stage,
    now: DateTime<Utc>,
    lifetime: TimeDelta,
) -> Result<String> {
    let token = new_token();
    sqlx::query(
        "INSERT INTO int_sessions (token_digest, surveyor_id, stage, created_at_ms, \
         expires_at_ms) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_digest(&token))
    .bind(surveyor_id)
    .bind(match stage {
        Stage::Password => "password",
        Stage::Full => "full",
    })
    .bind(now.timestamp_millis())
    .bind((now + lifetime).timestamp_millis())
    .execute(store.writer())
    .await?;
    sqlx::query("DELETE FROM int_sessions WHERE surveyor_id = $1 AND expires_at_ms <= $2")
        .bind(surveyor_id)
        .bind(now.timestamp_millis())
        .execute(store.writer())
        .await?;
    Ok(token)
}

/// The surveyor and stage of a live session.
pub async fn session(
    store: &Store,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<(Surveyor, Stage)>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS}, x.stage, s.active FROM int_sessions x \
         JOIN int_surveyors s ON s.id = x.surveyor_id \
         JOIN int_districts d ON d.code = s.district_code \
         WHERE x.token_digest = $1 AND x.expires_at_ms > $2"
    )))
    .bind(token_digest(token))
    .bind(now.timestamp_millis())
    .fetch_optional(store.reader())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let active: i64 = row.try_get("active")?;
    if active == 0 {
        return Ok(None);
    }
    let stage: String = row.try_get("stage")?;
    let stage = if stage == "full" {
        Stage::Full
    } else {
        Stage::Password
    };
    Ok(Some((surveyor_of(&row)?, stage)))
}

/// Ends a session.
pub async fn end_session(store: &Store, token: &str) -> Result<()> {
    sqlx::query("DELETE FROM int_sessions WHERE token_digest = $1")
        .bind(token_digest(token))
        .execute(store.writer())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_debug_masks_the_name() {
        for r in Role::ALL {
            assert_eq!(Role::from_code(r.code()), Some(r));
        }
        let s = Surveyor {
            id: "1".into(),
            username: "qz-survey".into(),
            display_name: "欧阳明月".into(),
            district_code: "370781".into(),
            district_name: "青州市".into(),
            roles: vec![Role::Surveyor],
        };
        assert!(!format!("{s:?}").contains("欧阳明月"));
        for _ in 0..10 {
            PasswordPolicy::default()
                .check(&generate_password())
                .expect("generated passwords pass the policy");
        }
    }
}
