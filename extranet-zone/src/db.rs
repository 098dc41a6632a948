//! The database: migrations and the sealing helpers every table with personal data uses.

use ow_pii::{Field, PiiKeyring, Sealed};
use ow_store::Store;

use crate::error::{ExtranetError, Result};

/// The migrations of the tables this crate owns (`migrations/`).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The owner name of this crate's migrations table (`_ow_migrations_ow_extranet`).
pub const MIGRATIONS_OWNER: &str = "ow-extranet";

/// Brings the exchange's tables and this crate's tables up to date.
pub async fn migrate(store: &Store) -> Result<()> {
    crate::exchange::migrate(store).await?;
    store.migrate(MIGRATIONS_OWNER, &MIGRATOR).await?;
    Ok(())
}

/// Seals `value` for `field` bound to the record `context` (e.g. `ext_case_parties:<id>`),
/// as text for a TEXT column.
pub fn seal(pii: &PiiKeyring, field: Field, context: &str, value: &str) -> String {
    pii.seal(field, context.as_bytes(), value.as_bytes())
        .to_text()
}

/// Opens a value sealed by [`seal`].
pub fn open(pii: &PiiKeyring, field: Field, context: &str, text: &str) -> Result<String> {
    let sealed = Sealed::from_text(text)?;
    let clear = pii.open_string(field, context.as_bytes(), &sealed)?;
    Ok(clear.as_str().to_owned())
}

/// The sealing field of TOTP secrets.
pub const TOTP_FIELD: Field = Field::Other("totp-secret");
/// The sealing field of signed e-certificates (they hold holders' names and ID numbers).
pub const CERTIFICATE_FIELD: Field = Field::Other("e-certificate");
/// The sealing field of verification codes.
pub const CODE_FIELD: Field = Field::Other("verification-code");

/// Maps a unique-constraint violation to `Ok(false)`, other errors to `Err`.
pub fn unique_violation(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            db.is_unique_violation()
                || db.code().as_deref() == Some("23505")
                || db.code().as_deref() == Some("2067")
                || db.code().as_deref() == Some("1555")
        }
        _ => false,
    }
}

/// An [`ExtranetError::Corrupt`] for a column that does not parse.
pub fn corrupt(what: impl std::fmt::Display) -> ExtranetError {
    ExtranetError::Corrupt(what.to_string())
}
