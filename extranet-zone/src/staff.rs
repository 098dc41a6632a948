//! Staff accounts, roles, two-factor login (password + TOTP), lockout and sessions.
//!
//! MLPS level 3 (等保三级) requires two factors: a password (argon2id) and a dynamic code from
//! an authenticator app (TOTP, RFC 6238). The TOTP secret is stored sealed; a code is accepted
//! once (its time step must be later than the last one used). Failed passwords and codes count
//! towards the lockout together. Sessions store only the digest of the token; a session is
//! first `password` (waiting for the code) and becomes `full` with a new token after the code.
//!
//! Both counters are updated atomically in the database, so parallel requests cannot lose an
//! update: a failure is one `UPDATE … SET failed_logins = failed_logins + 1 … RETURNING`, and a
//! code is taken by a compare-and-set on `totp_last_step` (`… WHERE totp_last_step < $step`)
//! whose row count decides — one code submitted twice at once signs in once.

use std::fmt;

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
use crate::error::{ExtranetError, Result};

/// What a staff member may do. A member has one or more roles and exactly one district.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 受理: accept, refuse or ask for supplements on new applications.
    Accept,
    /// 审核: review accepted cases (may refuse to register or ask for supplements).
    Review,
    /// 登簿: record reviewed cases in the register (may refuse to register).
    Record,
    /// 缮证: prepare and issue certificates.
    Certificate,
    /// 区县管理员: creates staff accounts in the district.
    DistrictAdmin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 5] = [
        Role::Accept,
        Role::Review,
        Role::Record,
        Role::Certificate,
        Role::DistrictAdmin,
    ];

    /// Stable code: `accept`, `review`, `record`, `certificate`, `district_admin`.
    pub fn code(self) -> &'static str {
        match self {
            Role::Accept => "accept",
            Role::Review => "review",
            Role::Record => "record",
            Role::Certificate => "certificate",
            Role::DistrictAdmin => "district_admin",
        }
    }

    /// Chinese name.
    pub fn name_zh(self) -> &'static str {
        match self {
            Role::Accept => "受理",
            Role::Review => "审核",
            Role::Record => "登簿",
            Role::Certificate => "缮证",
            Role::DistrictAdmin => "区县管理员",
        }
    }

    /// The role for a code.
    pub fn from_code(code: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.code() == code.trim())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_zh())
    }
}

/// A staff member as the pages and the workflow see them.
#[derive(Clone, PartialEq, Eq)]
pub struct StaffMember {
    /// Account id.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Display name (work name shown on pages).
    pub display_name: String,
    /// The one district (tenant) the member works in.
    pub district_code: String,
    /// The district's name.
    pub district_name: String,
    /// Roles.
    pub roles: Vec<Role>,
}

impl std::fmt::Debug for StaffMember {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaffMember")
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

impl StaffMember {
    /// Whether the member has `role`.
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

/// A new account to create.
#[derive(Clone)]
pub struct NewStaff {
    /// Login name: 3–32 of `a-z 0-9 . _ -`.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// District code.
    pub district_code: String,
    /// Roles (at least one).
    pub roles: Vec<Role>,
    /// The initial password; `None` generates one.
    pub password: Option<String>,
}

impl std::fmt::Debug for NewStaff {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewStaff")
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
pub struct CreatedStaff {
    /// The account.
    pub member: StaffMember,
    /// The initial password.
    pub password: String,
    /// The TOTP secret in base32, for the authenticator app.
    pub totp_base32: String,
    /// The `otpauth://` URI of the secret.
    pub otpauth_uri: String,
}

impl std::fmt::Debug for CreatedStaff {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedStaff")
            .field("member", &self.member)
            .finish_non_exhaustive()
    }
}

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    /// The login name is taken.
    #[error("用户名 {0} 已存在，请换一个")]
    Exists(String),
    /// Something in the request is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] ExtranetError),
}

impl From<sqlx::Error> for StaffError {
    fn from(e: sqlx::Error) -> Self {
        StaffError::Other(e.into())
    }
}

/// Generates an initial password: four groups of four letters and digits (no look-alikes),
/// e.g. `Kq7m-X2pd-…`.
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
        let classes = [
            out.chars().any(|c| c.is_ascii_lowercase()),
            out.chars().any(|c| c.is_ascii_uppercase()),
            out.chars().any(|c| c.is_ascii_digit()),
        ];
        if classes.iter().all(|c| *c) {
            return out;
        }
    }
}

fn valid_username(name: &str) -> bool {
    (3..=32).contains(&name.len())
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// Creates a staff account (argon2id password hash, sealed TOTP secret).
pub async fn create_staff(
    store: &Store,
    pii: &PiiKeyring,
    hasher: &PasswordHasher,
    min_password_length: usize,
    new: NewStaff,
    created_by: Option<&str>,
    now_ms: i64,
) -> Result<CreatedStaff, StaffError> {
    let username = new.username.trim().to_ascii_lowercase();
    if !valid_username(&username) {
        return Err(StaffError::Invalid(
            "用户名须为3至32位小写字母、数字或 . _ -".into(),
        ));
    }
    let display_name = new.display_name.trim().to_owned();
    if display_name.is_empty() || display_name.chars().count() > 32 {
        return Err(StaffError::Invalid(
            "请填写1至32个字的姓名（工作名）".into(),
        ));
    }
    if new.roles.is_empty() {
        return Err(StaffError::Invalid("请至少选择一个岗位角色".into()));
    }
    let district_name: Option<String> =
        sqlx::query_scalar("SELECT name FROM ext_districts WHERE code = $1")
            .bind(&new.district_code)
            .fetch_optional(store.writer())
            .await?;
    let Some(district_name) = district_name else {
        return Err(StaffError::Invalid(format!(
            "区县代码 {} 不存在",
            new.district_code
        )));
    };
    let password = match new.password {
        Some(p) => {
            let policy = PasswordPolicy {
                min_length: min_password_length,
                ..PasswordPolicy::default()
            };
            policy
                .check_for_account(&p, &[&username])
                .map_err(|e| StaffError::Invalid(e.message_zh()))?;
            p
        }
        None => generate_password(),
    };
    let hash = hasher
        .hash_async(&password)
        .await
        .map_err(|e| StaffError::Invalid(e.message_zh()))?;
    let totp = TotpSecret::generate();
    let id = ow_store::new_id();
    let mut roles = new.roles.clone();
    roles.sort();
    roles.dedup();
    let roles_text = roles.iter().map(|r| r.code()).collect::<Vec<_>>().join(",");
    let totp_sealed = db::seal(
        pii,
        db::TOTP_FIELD,
        &format!("ext_staff:{id}"),
        &totp.to_base32(),
    );
    let inserted = sqlx::query(
        "INSERT INTO ext_staff (id, username, display_name, district_code, roles, password_hash, \
         totp_sealed, created_by, created_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&id)
    .bind(&username)
    .bind(&display_name)
    .bind(&new.district_code)
    .bind(&roles_text)
    .bind(&hash)
    .bind(&totp_sealed)
    .bind(created_by)
    .bind(now_ms)
    .execute(store.writer())
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if db::unique_violation(&e) => return Err(StaffError::Exists(username)),
        Err(e) => return Err(e.into()),
    }
    let otpauth_uri = totp
        .otpauth_uri("OneWindow不动产登记", &username)
        .unwrap_or_default();
    tracing::info!(staff_id = %id, district = %new.district_code, "staff account created");
    Ok(CreatedStaff {
        member: StaffMember {
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

fn parse_roles(text: &str) -> Vec<Role> {
    text.split(',').filter_map(Role::from_code).collect()
}

const MEMBER_COLUMNS: &str = "s.id, s.username, s.display_name, s.district_code, \
    d.name AS district_name, s.roles";

fn member_of(row: &sqlx::any::AnyRow) -> Result<StaffMember> {
    let roles: String = row.try_get("roles")?;
    Ok(StaffMember {
        id: row.try_get("id")?,
        username: row.try_get("username")?,
        display_name: row.try_get("display_name")?,
        district_code: row.try_get("district_code")?,
        district_name: row.try_get("district_name")?,
        roles: parse_roles(&roles),
    })
}

/// A staff member by login name.
pub async fn find_by_username(store: &Store, username: &str) -> Result<Option<StaffMember>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM ext_staff s JOIN ext_districts d ON d.code = s.district_code \
         WHERE s.username = $1"
    )))
    .bind(username.trim().to_ascii_lowercase())
    .fetch_optional(store.reader())
    .await?;
    row.as_ref().map(member_of).transpose()
}

/// The staff of a district, by login name.
pub async fn list_district(store: &Store, district: &str) -> Result<Vec<StaffMember>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM ext_staff s JOIN ext_districts d ON d.code = s.district_code \
         WHERE s.district_code = $1 ORDER BY s.username"
    )))
    .bind(district)
    .fetch_all(store.reader())
    .await?;
    rows.iter().map(member_of).collect()
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
    #[error("账号已停用，请联系区县管理员")]
    Inactive,
    /// Every password-hashing slot stayed busy for the allowed wait.
    #[error("当前登录人数较多，系统繁忙，请一分钟后再试")]
    Busy,
    /// A store or key failure.
    #[error("系统错误，请稍后再试")]
    Internal(#[from] ExtranetError),
}

impl From<sqlx::Error> for LoginError {
    fn from(e: sqlx::Error) -> Self {
        LoginError::Internal(e.into())
    }
}

fn ms_to_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::<Utc>::from_timestamp_millis)
}

/// Counts one failed password or code of staff member `id` atomically; `Some` when this
/// failure locks the account.
pub async fn record_failure(
    store: &Store,
    policy: &LockoutPolicy,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Locked>, LoginError> {
    let count: i64 = sqlx::query_scalar(
        "UPDATE ext_staff SET failed_logins = failed_logins + 1 WHERE id = $1 \
         RETURNING failed_logins",
    )
    .bind(id)
    .fetch_one(store.writer())
    .await?;
    if !policy.locks_at(u32::try_from(count).unwrap_or(u32::MAX)) {
        return Ok(None);
    }
    let until = policy.lock_until(now);
    let until_ms = until.timestamp_millis();
    sqlx::query(
        "UPDATE ext_staff SET locked_until_ms = $1 WHERE id = $2 \
         AND (locked_until_ms IS NULL OR locked_until_ms < $1)",
    )
    .bind(until_ms)
    .bind(id)
    .execute(store.writer())
    .await?;
    tracing::warn!(staff_id = %id, "staff account locked after repeated login failures");
    Ok(Some(Locked { until }))
}

fn hash_error(e: ow_web::password::PasswordHashError) -> LoginError {
    match e {
        ow_web::password::PasswordHashError::Busy => LoginError::Busy,
        other => LoginError::Internal(ExtranetError::Invalid(format!(
            "password check failed: {other}"
        ))),
    }
}

/// Step 1: checks the password. Returns the account id, ready for the dynamic code.
pub async fn check_password(
    store: &Store,
    hasher: &PasswordHasher,
    policy: &LockoutPolicy,
    username: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<String, LoginError> {
    let row = sqlx::query(
        "SELECT id, password_hash, locked_until_ms, active FROM ext_staff WHERE username = $1",
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

/// Step 2: checks the dynamic code of account `id`; a code is accepted once, even when the
/// same code arrives twice at the same moment.
pub async fn check_totp(
    store: &Store,
    pii: &PiiKeyring,
    policy: &LockoutPolicy,
    id: &str,
    code: &str,
    now: DateTime<Utc>,
) -> Result<(), LoginError> {
    let row = sqlx::query(
        "SELECT totp_sealed, totp_last_step, locked_until_ms FROM ext_staff WHERE id = $1",
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
    let base32 = db::open(pii, db::TOTP_FIELD, &format!("ext_staff:{id}"), &sealed)?;
    let secret = TotpSecret::from_base32(&base32)
        .map_err(|_| ExtranetError::Corrupt(format!("TOTP secret of staff {id}")))?;
    let now_unix = u64::try_from(now.timestamp()).unwrap_or(0);
    let step = secret
        .verify_step(code, now_unix)
        .map(|s| i64::try_from(s).unwrap_or(i64::MAX))
        .filter(|s| *s > last_step);
    if let Some(step) = step {
        // Compare-and-set: only the first request to move the step past it takes the code,
        // and only while the account is not locked.
        let taken = sqlx::query(
            "UPDATE ext_staff SET totp_last_step = $1, failed_logins = 0, locked_until_ms = NULL \
             WHERE id = $2 AND totp_last_step < $1 \
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
        let locked_until: Option<i64> =
            sqlx::query_scalar("SELECT locked_until_ms FROM ext_staff WHERE id = $1")
                .bind(id)
                .fetch_one(store.writer())
                .await?;
        policy
            .check(ms_to_time(locked_until), now)
            .map_err(LoginError::Locked)?;
        tracing::warn!(staff_id = %id, "a dynamic code was submitted again after it was used");
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
    /// Fully logged in.
    Full,
}

impl Stage {
    fn code(self) -> &'static str {
        match self {
            Stage::Password => "password",
            Stage::Full => "full",
        }
    }
}

/// Starts a session; returns the token for the cookie (only its digest is stored).
pub async fn create_session(
    store: &Store,
    staff_id: &str,
    stage: Stage,
    now: DateTime<Utc>,
    lifetime: TimeDelta,
) -> Result<String> {
    let token = new_token();
    sqlx::query(
        "INSERT INTO ext_sessions (token_digest, staff_id, stage, created_at_ms, expires_at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(token_digest(&token))
    .bind(staff_id)
    .bind(stage.code())
    .bind(now.timestamp_millis())
    .bind((now + lifetime).timestamp_millis())
    .execute(store.writer())
    .await?;
    // Housekeeping: this staff member's expired sessions (a password stage abandoned before the
    // TOTP step, a session never logged out of) need not stay in the table.
    sqlx::query("DELETE FROM ext_sessions WHERE staff_id = $1 AND expires_at_ms <= $2")
        .bind(staff_id)
        .bind(now.timestamp_millis())
        .execute(store.writer())
        .await?;
    Ok(token)
}

/// The staff member and stage of a live session.
pub async fn session(
    store: &Store,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Option<(StaffMember, Stage)>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS}, x.stage, s.active FROM ext_sessions x \
         JOIN ext_staff s ON s.id = x.staff_id JOIN ext_districts d ON d.code = s.district_code \
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
    Ok(Some((member_of(&row)?, stage)))
}

/// Ends a session.
pub async fn end_session(store: &Store, token: &str) -> Result<()> {
    sqlx::query("DELETE FROM ext_sessions WHERE token_digest = $1")
        .bind(token_digest(token))
        .execute(store.writer())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Debug` of everything in the back office that holds a name, an ID number, a phone, a
    /// password, a secret, a file name or a reason shows none of them in clear.
    #[test]
    fn debug_of_personal_data_and_secrets_is_redacted() {
        const NAME: &str = "欧阳明月";
        const ID: &str = "370781199001012345";
        const PHONE: &str = "13800138000";
        const SECRET: &str = "Pa55-word-never-shown";
        let member = StaffMember {
            id: "s1".into(),
            username: "qz-accept".into(),
            display_name: NAME.into(),
            district_code: "370781".into(),
            district_name: "青州市".into(),
            roles: vec![Role::Accept],
        };
        let shown = [
            format!("{member:?}"),
            format!(
                "{:?}",
                NewStaff {
                    username: "qz-new".into(),
                    display_name: NAME.into(),
                    district_code: "370781".into(),
                    roles: vec![Role::Accept],
                    password: Some(SECRET.into()),
                }
            ),
            format!(
                "{:?}",
                CreatedStaff {
                    member: member.clone(),
                    password: SECRET.into(),
                    totp_base32: SECRET.into(),
                    otpauth_uri: format!("otpauth://totp/{SECRET}"),
                }
            ),
            format!(
                "{:?}",
                crate::cases::Party {
                    id: "p1".into(),
                    role: "buyer".into(),
                    name: NAME.into(),
                    id_type: "1".into(),
                    id_number: ID.into(),
                    id_index: "ix".into(),
                    phone: Some(PHONE.into()),
                    share: "1/1".into(),
                }
            ),
            format!(
                "{:?}",
                crate::cases::Material {
                    id: "m1".into(),
                    checklist_code: "applicant_identity".into(),
                    file_name: format!("{NAME}身份证.pdf"),
                    media_type: "application/pdf".into(),
                    size: 1,
                    blake3: String::new(),
                    source: "application".into(),
                    received_at_ms: 0,
                }
            ),
            format!(
                "{:?}",
                crate::cases::Event {
                    id: "e1".into(),
                    staff_id: None,
                    staff_name: Some(NAME.into()),
                    action: "case.refuse".into(),
                    from_status: None,
                    to_status: None,
                    reason: Some(format!("{NAME} {ID} {PHONE}")),
                    opinion_sealed: None,
                    at_ms: 0,
                    audit_index: None,
                }
            ),
            format!(
                "{:?}",
                crate::register::PartyInput {
                    name: NAME.into(),
                    id_type: "1".into(),
                    id_number: ID.into(),
                    share: "1/1".into(),
                }
            ),
            format!(
                "{:?}",
                crate::register::Holder {
                    id: "h1".into(),
                    name: NAME.into(),
                    id_type: "1".into(),
                    id_number: ID.into(),
                    id_index: "ix".into(),
                    share: "1/1".into(),
                }
            ),
            format!(
                "{:?}",
                crate::seed::SeedPerson {
                    name: NAME.into(),
                    id_number: ID.into(),
                    share: "1/1".into(),
                }
            ),
            format!(
                "{:?}",
                crate::seed::SeedStaff {
                    username: "qz-accept".into(),
                    display_name: NAME.into(),
                    password: Some(SECRET.into()),
                    totp_secret: Some(SECRET.into()),
                    otpauth_uri: Some(format!("otpauth://totp/{SECRET}")),
                    roles: vec!["accept".into()],
                    district_code: "370781".into(),
                    created: true,
                }
            ),
            format!(
                "{:?}",
                crate::workflow::ActionInput {
                    reason: Some(format!("{NAME} {ID} {PHONE}")),
                    opinion: Some(format!("{NAME} {ID} {PHONE}")),
                    requested_materials: vec!["tax_receipt".into()],
                }
            ),
        ];
        for text in &shown {
            for clear in [NAME, ID, PHONE, SECRET] {
                assert!(!text.contains(clear), "{clear} shown in {text}");
            }
        }
        assert!(
            shown[3].contains("欧*"),
            "names are shown masked: {}",
            shown[3]
        );
    }

    #[tokio::test]
    async fn a_new_session_clears_the_staff_members_expired_ones() {
        for db in ow_store::testing::all_backends().await {
            let store = db.open().await;
            crate::db::migrate(&store).await.unwrap();
            sqlx::query(
                "INSERT INTO ext_districts (code, name, province, issuer) \
                 VALUES ('370781', '青州市', '鲁', '青州市不动产登记中心')",
            )
            .execute(store.writer())
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO ext_staff (id, username, display_name, district_code, roles, \
                 password_hash, totp_sealed, created_by, created_at_ms) \
                 VALUES ('s1', 'u1', 'd', '370781', 'accept', 'h', 't', 'seed', 0)",
            )
            .execute(store.writer())
            .await
            .unwrap();
            let now = Utc::now();
            let old = create_session(
                &store,
                "s1",
                Stage::Password,
                now - TimeDelta::hours(2),
                TimeDelta::minutes(5),
            )
            .await
            .unwrap();
            let live = create_session(&store, "s1", Stage::Full, now, TimeDelta::minutes(30))
                .await
                .unwrap();
            let left: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM ext_sessions WHERE staff_id = 's1'")
                    .fetch_one(store.reader())
                    .await
                    .unwrap();
            assert_eq!(left, 1, "only the live session is kept");
            assert!(session(&store, &old, now).await.unwrap().is_none());
            assert!(session(&store, &live, now).await.unwrap().is_some());
            db.cleanup().await;
        }
    }

    #[test]
    fn roles_round_trip() {
        for r in Role::ALL {
            assert_eq!(Role::from_code(r.code()), Some(r));
        }
        assert_eq!(
            parse_roles("accept,review,bogus"),
            vec![Role::Accept, Role::Review]
        );
    }

    #[test]
    fn generated_passwords_pass_the_policy() {
        for _ in 0..20 {
            let p = generate_password();
            assert_eq!(p.len(), 19);
            PasswordPolicy::default().check(&p).unwrap();
        }
    }

    #[test]
    fn usernames() {
        assert!(valid_username("qz-accept"));
        assert!(!valid_username("QZ"));
        assert!(!valid_username("a b"));
    }
}
