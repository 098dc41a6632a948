//! Citizen accounts: registration, login with lockout, sessions.
//!
//! Name, ID number and phone are stored only sealed (ow-pii), each bound to the account row;
//! the ID number and the phone also have blind indexes for login and uniqueness. Sessions are
//! stored as the BLAKE3 digest of the token, never the token.
//!
//! **Registration does not tell who has an account.** Whether or not the ID number (or the
//! phone) already belongs to an account, a valid form gets the same answer, after the same
//! work (one argon2 hash): [`REGISTERED_NOTICE_ZH`]. A new ID number gets its account; a known
//! one changes nothing (its owner signs in with the password they have). A phone number is a
//! login name only for the first account that gave it: a new ID number with a phone already in
//! use (a family sharing one phone) still gets its account, and signs in with the ID number.
//!
//! **Lockout counters are updated atomically** (see `ow_web::lockout`): a failure is one
//! `UPDATE … SET failed_logins = failed_logins + 1 … RETURNING failed_logins`, a success a
//! compare-and-set that fails while the account is locked.

use chrono::{DateTime, NaiveDate, Utc};
use ow_domain::{IdNumber, PersonName, PhoneNumber};
use ow_pii::{Field, Sealed, normalize_id_number, normalize_phone};
use ow_store::Store;
use ow_web::lockout::{Locked, LockoutPolicy};
use ow_web::password::{AccountDetails, PasswordHashError};
use ow_web::token::{new_token, token_digest};
use sqlx::Row;

use crate::app::App;
use crate::error::{AppError, FieldError};
use crate::util::BEIJING;

/// What the registration form (or API) sends.
#[derive(Clone, Default, serde::Deserialize, utoipa::ToSchema)]
pub struct RegisterInput {
    /// 姓名.
    #[serde(default)]
    #[schema(max_length = 64)]
    pub name: String,
    /// 身份证号码 (18 characters, GB 11643 check digit).
    #[serde(default)]
    #[schema(max_length = 32, example = "11010519491231002X")]
    pub id_number: String,
    /// 手机号码.
    #[serde(default)]
    #[schema(max_length = 32, example = "13800138000")]
    pub phone: String,
    /// 密码 (the portal's password policy: by default 10 to 128 characters of at least three
    /// kinds among lower-case and upper-case letters, digits and symbols).
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub password: String,
    /// 确认密码 (the same again).
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub password_confirm: String,
}

impl std::fmt::Debug for RegisterInput {
    /// Personal data and secrets are shown masked or redacted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegisterInput")
            .field("name", &ow_domain::mask::mask_name(&self.name))
            .field(
                "id_number",
                &ow_domain::mask::mask_id_number(&self.id_number),
            )
            .field("phone", &ow_domain::mask::mask_phone(&self.phone))
            .finish_non_exhaustive()
    }
}

/// What a valid registration form is told, whether or not its ID number already had an
/// account (the login page shows it after registering).
pub const REGISTERED_NOTICE_ZH: &str = "注册信息已提交。如果这是该身份证号码第一次注册，账号已经开通，\
请用身份证号码和刚才设置的密码登录；如果该身份证号码以前注册过，原账号保持不变，请用原来的密码登录\
（忘记密码的，请携带身份证件到不动产登记大厅重置）。";

/// Why registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The input has problems, one per field.
    #[error("the registration form has {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
    /// Every password-hashing slot stayed busy for the allowed wait: try again later.
    #[error("the server is busy; try again in a minute")]
    Busy,
    /// Something broke.
    #[error(transparent)]
    Internal(#[from] AppError),
}

/// Why a login failed.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    /// Unknown account or wrong password (the same answer for both).
    #[error("wrong account or password")]
    BadCredentials,
    /// Too many failures: locked until the given time.
    #[error(transparent)]
    Locked(Locked),
    /// Every password-hashing slot stayed busy for the allowed wait: try again later.
    #[error("the server is busy; try again in a minute")]
    Busy,
    /// Something broke.
    #[error(transparent)]
    Internal(#[from] AppError),
}

impl LoginError {
    /// The Chinese message for the citizen.
    pub fn message_zh(&self) -> String {
        match self {
            LoginError::BadCredentials => "账号或密码不正确，请重新输入".into(),
            LoginError::Locked(l) => l.message_zh(),
            LoginError::Busy => PasswordHashError::Busy.message_zh(),
            LoginError::Internal(_) => "服务器内部错误，请稍后重试".into(),
        }
    }
}

/// A signed-in citizen, resolved from the session cookie. `Debug` does not show the token.
#[derive(Clone)]
pub struct Session {
    /// The account.
    pub account_id: String,
    /// The clear session token (from the cookie; for the CSRF token only).
    pub token: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account_id", &self.account_id)
            .finish_non_exhaustive()
    }
}

/// The citizen's own details, masked for display.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AccountView {
    /// Account id.
    pub id: String,
    /// 张*三.
    pub name_masked: String,
    /// 370781********1234.
    pub id_number_masked: String,
    /// 138****5678.
    pub phone_masked: String,
}

fn ctx(account_id: &str) -> Vec<u8> {
    format!("inet_accounts:{account_id}").into_bytes()
}

/// Today's date in Beijing at `now_ms` (ID numbers with a later birth date are refused).
pub fn today_beijing(now_ms: i64) -> NaiveDate {
    DateTime::<Utc>::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .with_timezone(&BEIJING)
        .date_naive()
}

/// What registering did. Both outcomes must look the same to the caller's caller: handlers
/// answer every `Ok` with [`REGISTERED_NOTICE_ZH`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// A new account with this id.
    Created(String),
    /// The ID number already had an account; nothing changed.
    AlreadyRegistered,
}

fn hash_error(e: PasswordHashError) -> RegisterError {
    match e {
        PasswordHashError::Busy => RegisterError::Busy,
        other => RegisterError::Internal(AppError::Corrupt(other.to_string())),
    }
}

/// Registers an account (see the module documentation for what is told and what is not).
pub async fn register(
    app: &App,
    input: &RegisterInput,
    now_ms: i64,
) -> Result<Registered, RegisterError> {
    let mut errors = Vec::new();
    let name = PersonName::parse(&input.name)
        .map_err(|e| errors.push(FieldError::new("name", e.message_zh())))
        .ok();
    let id_number = IdNumber::parse_on(&input.id_number, today_beijing(now_ms))
        .map_err(|e| errors.push(FieldError::new("id_number", e.message_zh())))
        .ok();
    let phone = PhoneNumber::parse(&input.phone)
        .map_err(|e| errors.push(FieldError::new("phone", e.message_zh())))
        .ok();
    let details = AccountDetails {
        names: &[],
        id_number: Some(
            id_number
                .as_ref()
                .map_or(input.id_number.as_str(), IdNumber::as_str),
        ),
        phone: Some(
            phone
                .as_ref()
                .map_or(input.phone.as_str(), PhoneNumber::as_str),
        ),
        birth_date: id_number.as_ref().map(IdNumber::birth_date),
    };
    if let Err(e) = app.password_policy.check_for(&input.password, &details) {
        errors.push(FieldError::new("password", e.message_zh()));
    } else if input.password_confirm.is_empty() {
        errors.push(FieldError::new("password_confirm", "请再次输入密码"));
    } else if input.password != input.password_confirm {
        errors.push(FieldError::new(
            "password_confirm",
            "两次输入的密码不一致，请重新输入",
        ));
    }
    let (Some(name), Some(id_number), Some(phone)) = (name, id_number, phone) else {
        return Err(RegisterError::Invalid(errors));
    };
    if !errors.is_empty() {
        return Err(RegisterError::Invalid(errors));
    }
    let id_index = app
        .pii
        .blind_index(Field::IdNumber, &normalize_id_number(id_number.as_str()));
    let phone_index = app
        .pii
        .blind_index(Field::Phone, &normalize_phone(phone.as_str()));
    // The same work whatever the outcome: the hash is computed before looking anything up.
    let hash = app
        .hasher
        .hash_async(&input.password)
        .await
        .map_err(hash_error)?;
    let phone_taken: bool =
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM inet_accounts WHERE phone_index = $1")
            .bind(&phone_index)
            .fetch_one(app.store.reader())
            .await
            .map_err(AppError::from)?
            > 0;
    if id_number_registered(&app.store, &id_index).await? {
        tracing::info!("registration for an ID number that already has an account");
        return Ok(Registered::AlreadyRegistered);
    }
    let id = ow_store::new_id();
    // A phone already used by another account is not a login name of this one: its index
    // column gets a value no blind index can equal.
    let login_phone_index = if phone_taken {
        format!("unlinked:{id}")
    } else {
        phone_index
    };
    let c = ctx(&id);
    let result = sqlx::query(
        "INSERT INTO inet_accounts (id, id_number_index, phone_index, name_sealed, id_number_sealed, \
         phone_sealed, password_hash, failed_logins, locked_until_ms, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, NULL, $8)",
    )
    .bind(&id)
    .bind(&id_index)
    .bind(&login_phone_index)
    .bind(app.pii.seal(Field::PersonName, &c, name.as_str().as_bytes()).to_text())
    .bind(app.pii.seal(Field::IdNumber, &c, id_number.as_str().as_bytes()).to_text())
    .bind(app.pii.seal(Field::Phone, &c, phone.as_str().as_bytes()).to_text())
    .bind(&hash)
    .bind(now_ms)
    .execute(app.store.writer())
    .await;
    match result {
        Ok(_) => {
            tracing::info!(account = %id, phone_login = !phone_taken, "account registered");
            Ok(Registered::Created(id))
        }
        // Registered in parallel with the same ID number (or phone): the same answer as a
        // known ID number; the citizen signs in with the ID number.
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            Ok(Registered::AlreadyRegistered)
        }
        Err(e) => Err(RegisterError::Internal(e.into())),
    }
}

async fn id_number_registered(store: &Store, id_index: &str) -> Result<bool, AppError> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM inet_accounts WHERE id_number_index = $1")
            .bind(id_index)
            .fetch_one(store.reader())
            .await?;
    Ok(n > 0)
}

/// Counts one failed login of `account_id` atomically; `Some` when this failure locks it.
pub async fn record_failure(
    store: &Store,
    policy: &LockoutPolicy,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<Locked>, AppError> {
    let count: i64 = sqlx::query_scalar(
        "UPDATE inet_accounts SET failed_logins = failed_logins + 1 WHERE id = $1 \
         RETURNING failed_logins",
    )
    .bind(account_id)
    .fetch_one(store.writer())
    .await?;
    if !policy.locks_at(u32::try_from(count).unwrap_or(u32::MAX)) {
        return Ok(None);
    }
    let until = policy.lock_until(now);
    let until_ms = until.timestamp_millis();
    sqlx::query(
        "UPDATE inet_accounts SET locked_until_ms = $1 WHERE id = $2 \
         AND (locked_until_ms IS NULL OR locked_until_ms < $1)",
    )
    .bind(until_ms)
    .bind(account_id)
    .execute(store.writer())
    .await?;
    tracing::warn!(account = %account_id, "account locked after repeated login failures");
    Ok(Some(Locked { until }))
}

/// After a correct password: resets the counters unless the account was locked meanwhile
/// (by failures running in parallel); `Err(Locked)` then.
pub async fn record_success(
    store: &Store,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<Result<(), Locked>, AppError> {
    let now_ms = now.timestamp_millis();
    let updated = sqlx::query(
        "UPDATE inet_accounts SET failed_logins = 0, locked_until_ms = NULL WHERE id = $1 \
         AND (locked_until_ms IS NULL OR locked_until_ms <= $2)",
    )
    .bind(account_id)
    .bind(now_ms)
    .execute(store.writer())
    .await?;
    if updated.rows_affected() == 1 {
        return Ok(Ok(()));
    }
    let until: Option<i64> =
        sqlx::query_scalar("SELECT locked_until_ms FROM inet_accounts WHERE id = $1")
            .bind(account_id)
            .fetch_one(store.writer())
            .await?;
    let until = until
        .and_then(DateTime::<Utc>::from_timestamp_millis)
        .unwrap_or(now);
    Ok(Err(Locked { until }))
}

/// Logs in by ID number or phone and password at time `now`; returns a new session.
pub async fn login(
    app: &App,
    login_name: &str,
    password: &str,
    now: DateTime<Utc>,
) -> Result<Session, LoginError> {
    let login_name = login_name.trim();
    let compact: String = login_name.chars().filter(|c| !c.is_whitespace()).collect();
    let row = if compact.chars().count() == 18 {
        let index = app
            .pii
            .blind_index(Field::IdNumber, &normalize_id_number(&compact));
        sqlx::query(
            "SELECT id, password_hash, locked_until_ms FROM inet_accounts WHERE id_number_index = $1",
        )
        .bind(index)
        .fetch_optional(app.store.reader())
        .await
        .map_err(AppError::from)?
    } else {
        let index = app
            .pii
            .blind_index(Field::Phone, &normalize_phone(&compact));
        sqlx::query(
            "SELECT id, password_hash, locked_until_ms FROM inet_accounts WHERE phone_index = $1",
        )
        .bind(index)
        .fetch_optional(app.store.reader())
        .await
        .map_err(AppError::from)?
    };
    let busy = |e: PasswordHashError| match e {
        PasswordHashError::Busy => LoginError::Busy,
        other => LoginError::Internal(AppError::Corrupt(other.to_string())),
    };
    let Some(row) = row else {
        app.hasher
            .verify_dummy_async(password)
            .await
            .map_err(busy)?;
        return Err(LoginError::BadCredentials);
    };
    let id: String = row.try_get("id").map_err(AppError::from)?;
    let hash: String = row.try_get("password_hash").map_err(AppError::from)?;
    let locked_until: Option<i64> = row.try_get("locked_until_ms").map_err(AppError::from)?;
    let locked_until = locked_until.and_then(DateTime::<Utc>::from_timestamp_millis);
    app.lockout
        .check(locked_until, now)
        .map_err(LoginError::Locked)?;
    let ok = app
        .hasher
        .verify_async(password, &hash)
        .await
        .map_err(busy)?;
    if !ok {
        if let Some(locked) = record_failure(&app.store, &app.lockout, &id, now).await? {
            return Err(LoginError::Locked(locked));
        }
        return Err(LoginError::BadCredentials);
    }
    record_success(&app.store, &id, now)
        .await?
        .map_err(LoginError::Locked)?;
    let token = new_token();
    let now_ms = now.timestamp_millis();
    let lifetime =
        i64::try_from(app.settings.session_lifetime().as_millis()).unwrap_or(i64::MAX / 2);
    sqlx::query(
        "INSERT INTO inet_sessions (token_digest, account_id, created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4)",
    )
    .bind(token_digest(&token))
    .bind(&id)
    .bind(now_ms)
    .bind(now_ms.saturating_add(lifetime))
    .execute(app.store.writer())
    .await
    .map_err(AppError::from)?;
    // Housekeeping: expired sessions of this account.
    sqlx::query("DELETE FROM inet_sessions WHERE account_id = $1 AND expires_at_ms <= $2")
        .bind(&id)
        .bind(now_ms)
        .execute(app.store.writer())
        .await
        .map_err(AppError::from)?;
    tracing::info!(account = %id, "logged in");
    Ok(Session {
        account_id: id,
        token,
    })
}

/// The session for a token presented in a cookie, if it exists and has not expired.
pub async fn session_for(app: &App, token: &str, now_ms: i64) -> Result<Option<Session>, AppError> {
    let row = sqlx::query(
        "SELECT account_id FROM inet_sessions WHERE token_digest = $1 AND expires_at_ms > $2",
    )
    .bind(token_digest(token))
    .bind(now_ms)
    .fetch_optional(app.store.reader())
    .await?;
    Ok(match row {
        Some(r) => Some(Session {
            account_id: r.try_get("account_id")?,
            token: token.to_owned(),
        }),
        None => None,
    })
}

/// Ends a session.
pub async fn logout(app: &App, token: &str) -> Result<(), AppError> {
    sqlx::query("DELETE FROM inet_sessions WHERE token_digest = $1")
        .bind(token_digest(token))
        .execute(app.store.writer())
        .await?;
    Ok(())
}

/// The citizen's own details in clear, for prefilling their own forms (never shown to anyone
/// else, never logged).
#[derive(Debug, Clone)]
pub struct OwnDetails {
    /// 姓名.
    pub name: String,
    /// 身份证号码.
    pub id_number: String,
    /// 手机号码.
    pub phone: String,
}

/// The citizen's details, opened.
pub async fn own_details(app: &App, account_id: &str) -> Result<OwnDetails, AppError> {
    let row = sqlx::query(
        "SELECT name_sealed, id_number_sealed, phone_sealed FROM inet_accounts WHERE id = $1",
    )
    .bind(account_id)
    .fetch_one(app.store.reader())
    .await?;
    let c = ctx(account_id);
    let open = |field: Field, col: &str| -> Result<String, AppError> {
        let text: String = row.try_get(col)?;
        let sealed = Sealed::from_text(&text)?;
        Ok(app.pii.open_string(field, &c, &sealed)?.to_string())
    };
    Ok(OwnDetails {
        name: open(Field::PersonName, "name_sealed")?,
        id_number: open(Field::IdNumber, "id_number_sealed")?,
        phone: open(Field::Phone, "phone_sealed")?,
    })
}

/// The citizen's details, masked.
pub async fn view(app: &App, account_id: &str) -> Result<AccountView, AppError> {
    let own = own_details(app, account_id).await?;
    Ok(AccountView {
        id: account_id.to_owned(),
        name_masked: ow_domain::mask::mask_name(&own.name),
        id_number_masked: ow_domain::mask::mask_id_number(&own.id_number),
        phone_masked: ow_domain::mask::mask_phone(&own.phone),
    })
}
