//! Citizen accounts: registration, login with lockout, sessions.
//!
//! Name, ID number and phone are stored only sealed (ow-pii), each bound to the account row;
//! the ID number and the phone also have blind indexes for login and uniqueness. Sessions are
//! stored as the BLAKE3 digest of the token, never the token.

use chrono::{DateTime, Utc};
use ow_domain::{IdNumber, PersonName, PhoneNumber};
use ow_pii::{Field, Sealed, normalize_id_number, normalize_phone};
use ow_web::lockout::Locked;
use ow_web::token::{new_token, token_digest};
use sqlx::Row;

use crate::app::App;
use crate::error::{AppError, FieldError};

/// What the registration form (or API) sends.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::ToSchema)]
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

/// Why registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    /// The input has problems, one per field.
    #[error("the registration form has {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
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
            LoginError::Internal(_) => "服务器内部错误，请稍后重试".into(),
        }
    }
}

/// A signed-in citizen, resolved from the session cookie.
#[derive(Debug, Clone)]
pub struct Session {
    /// The account.
    pub account_id: String,
    /// The clear session token (from the cookie; for the CSRF token only).
    pub token: String,
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

/// Registers an account; returns its id.
pub async fn register(
    app: &App,
    input: &RegisterInput,
    now_ms: i64,
) -> Result<String, RegisterError> {
    let mut errors = Vec::new();
    let name = PersonName::parse(&input.name)
        .map_err(|e| errors.push(FieldError::new("name", e.message_zh())))
        .ok();
    let id_number = IdNumber::parse(&input.id_number)
        .map_err(|e| errors.push(FieldError::new("id_number", e.message_zh())))
        .ok();
    let phone = PhoneNumber::parse(&input.phone)
        .map_err(|e| errors.push(FieldError::new("phone", e.message_zh())))
        .ok();
    let identifiers: Vec<&str> = [input.phone.as_str(), input.id_number.as_str()]
        .into_iter()
        .filter(|s| !s.trim().is_empty())
        .collect();
    if let Err(e) = app
        .password_policy
        .check_for_account(&input.password, &identifiers)
    {
        errors.push(FieldError::new("password", e.message_zh()));
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
    let existing = sqlx::query(
        "SELECT id_number_index FROM inet_accounts WHERE id_number_index = $1 OR phone_index = $2",
    )
    .bind(&id_index)
    .bind(&phone_index)
    .fetch_all(app.store.reader())
    .await
    .map_err(AppError::from)?;
    if !existing.is_empty() {
        let same_id = existing
            .iter()
            .any(|r| r.try_get::<String, _>(0).ok().as_deref() == Some(id_index.as_str()));
        return Err(RegisterError::Invalid(vec![if same_id {
            FieldError::new("id_number", "该身份证号码已注册，请直接登录")
        } else {
            FieldError::new("phone", "该手机号码已被其他账号使用，请更换手机号码")
        }]));
    }
    let password = input.password.clone();
    let hasher = app.hasher.clone();
    let hash = tokio::task::spawn_blocking(move || hasher.hash(&password))
        .await
        .map_err(|e| AppError::Corrupt(format!("hashing task: {e}")))?
        .map_err(|e| AppError::Corrupt(e.to_string()))?;
    let id = ow_store::new_id();
    let c = ctx(&id);
    let result = sqlx::query(
        "INSERT INTO inet_accounts (id, id_number_index, phone_index, name_sealed, id_number_sealed, \
         phone_sealed, password_hash, failed_logins, locked_until_ms, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, 0, NULL, $8)",
    )
    .bind(&id)
    .bind(&id_index)
    .bind(&phone_index)
    .bind(app.pii.seal(Field::PersonName, &c, name.as_str().as_bytes()).to_text())
    .bind(app.pii.seal(Field::IdNumber, &c, id_number.as_str().as_bytes()).to_text())
    .bind(app.pii.seal(Field::Phone, &c, phone.as_str().as_bytes()).to_text())
    .bind(&hash)
    .bind(now_ms)
    .execute(app.store.writer())
    .await;
    match result {
        Ok(_) => {
            tracing::info!(account = %id, "account registered");
            Ok(id)
        }
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            Err(RegisterError::Invalid(vec![FieldError::new(
                "id_number",
                "该身份证号码或手机号码已注册，请直接登录",
            )]))
        }
        Err(e) => Err(RegisterError::Internal(e.into())),
    }
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
            "SELECT id, password_hash, failed_logins, locked_until_ms FROM inet_accounts WHERE id_number_index = $1",
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
            "SELECT id, password_hash, failed_logins, locked_until_ms FROM inet_accounts WHERE phone_index = $1",
        )
        .bind(index)
        .fetch_optional(app.store.reader())
        .await
        .map_err(AppError::from)?
    };
    let hasher = app.hasher.clone();
    let password = password.to_owned();
    let Some(row) = row else {
        let _ = tokio::task::spawn_blocking(move || hasher.verify_dummy(&password)).await;
        return Err(LoginError::BadCredentials);
    };
    let id: String = row.try_get("id").map_err(AppError::from)?;
    let hash: String = row.try_get("password_hash").map_err(AppError::from)?;
    let failures: i64 = row.try_get("failed_logins").map_err(AppError::from)?;
    let locked_until: Option<i64> = row.try_get("locked_until_ms").map_err(AppError::from)?;
    let locked_until = locked_until.and_then(DateTime::<Utc>::from_timestamp_millis);
    app.lockout
        .check(locked_until, now)
        .map_err(LoginError::Locked)?;
    let ok = tokio::task::spawn_blocking(move || hasher.verify(&password, &hash))
        .await
        .map_err(|e| AppError::Corrupt(format!("hashing task: {e}")))?
        .map_err(|e| AppError::Corrupt(e.to_string()))?;
    if !ok {
        let (count, lock) = app
            .lockout
            .after_failure(u32::try_from(failures).unwrap_or(0), now);
        sqlx::query(
            "UPDATE inet_accounts SET failed_logins = $1, locked_until_ms = $2 WHERE id = $3",
        )
        .bind(i64::from(count))
        .bind(lock.map(|t| t.timestamp_millis()))
        .bind(&id)
        .execute(app.store.writer())
        .await
        .map_err(AppError::from)?;
        if let Some(until) = lock {
            tracing::warn!(account = %id, "account locked after repeated login failures");
            return Err(LoginError::Locked(Locked { until }));
        }
        return Err(LoginError::BadCredentials);
    }
    sqlx::query("UPDATE inet_accounts SET failed_logins = 0, locked_until_ms = NULL WHERE id = $1")
        .bind(&id)
        .execute(app.store.writer())
        .await
        .map_err(AppError::from)?;
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

/// The citizen's details, masked.
pub async fn view(app: &App, account_id: &str) -> Result<AccountView, AppError> {
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
    let name = open(Field::PersonName, "name_sealed")?;
    let id_number = open(Field::IdNumber, "id_number_sealed")?;
    let phone = open(Field::Phone, "phone_sealed")?;
    Ok(AccountView {
        id: account_id.to_owned(),
        name_masked: ow_domain::mask::mask_name(&name),
        id_number_masked: ow_domain::mask::mask_id_number(&id_number),
        phone_masked: ow_domain::mask::mask_phone(&phone),
    })
}
