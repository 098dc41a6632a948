//! Errors of the exchange.

use std::path::PathBuf;

/// What went wrong while queueing, packing or importing messages.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// A database operation failed.
    #[error("database error in the exchange: {0}")]
    Database(#[from] sqlx::Error),
    /// Opening or migrating the store failed.
    #[error(transparent)]
    Store(#[from] ow_store::StoreError),
    /// A key or trust file could not be loaded.
    #[error(transparent)]
    Keys(#[from] ow_keys::KeyError),
    /// Sealing or opening a queued message failed.
    #[error(
        "cannot open a queued message: {0}; check that the personal-data key file is the one the messages were sealed with"
    )]
    Pii(#[from] ow_pii::PiiError),
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What the file system said.
        cause: std::io::Error,
    },
    /// Packing a bundle failed.
    #[error("cannot pack a bundle: {0}")]
    Pack(String),
    /// The exchange log could not be written.
    #[error("cannot write the exchange log: {0}")]
    Log(#[from] ow_ferrylog::Error),
    /// No outbox folder is configured for a channel a message was queued on.
    #[error(
        "no outbox folder is configured for channel {channel}; add it to the exchange settings"
    )]
    NoOutbox {
        /// The channel.
        channel: String,
    },
    /// A received message is not a valid envelope.
    #[error("{reason}")]
    BadMessage {
        /// What is wrong with it.
        reason: String,
    },
    /// The zone's import handler failed (the import is rolled back and retried, within the
    /// retry budget).
    #[error("import failed: {0}")]
    Handler(String),
    /// A message breaks the message contract (`Message::check`); it is refused where it is
    /// made and set aside where it arrives.
    #[error("the message breaks the exchange contract: {0}")]
    Contract(#[from] crate::ContractViolation),
    /// A failure that will happen again however often the same message is tried: the message
    /// is set aside at once as a dead letter, with this reason.
    #[error("{reason}")]
    Permanent {
        /// A short machine code (`handler-refused`, `file-missing`, …).
        code: &'static str,
        /// What is wrong and what to do, for the operator (no personal data).
        reason: String,
    },
    /// The receiving ferry agent's state database cannot be read (the landed check waits).
    #[error(
        "cannot read what the ferry agent landed from {path}: {cause}; check the exchange's landed_state setting and that the ferry agent has run"
    )]
    Landed {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        cause: String,
    },
    /// There is no dead letter with this id (or it is not dead any more).
    #[error(
        "no dead letter {id} waiting to be retried; list them with the zone's `status` command"
    )]
    NoDeadLetter {
        /// The id asked for.
        id: String,
    },
}

/// How a failure of one message is treated ([`ExchangeError::class`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureClass {
    /// The zone itself is unwell (its database unreachable): nothing else could get through
    /// either, so the channel waits and no message is blamed.
    Outage,
    /// May pass on another try: retried with backoff until the message's budget is spent, then
    /// set aside.
    Transient,
    /// Will fail again: set aside at once.
    Permanent,
}

impl ExchangeError {
    /// How a failure of one message is treated: database outages wait, refusals by the
    /// database of this message's data (constraint and data errors), contract violations and
    /// declared permanent failures set the message aside at once, everything else is retried
    /// within the budget.
    pub fn class(&self) -> FailureClass {
        match self {
            ExchangeError::Database(e) => database_class(e),
            ExchangeError::Store(_) | ExchangeError::Landed { .. } => FailureClass::Outage,
            ExchangeError::Contract(_)
            | ExchangeError::Permanent { .. }
            | ExchangeError::BadMessage { .. } => FailureClass::Permanent,
            ExchangeError::Io { cause, .. } if cause.kind() == std::io::ErrorKind::NotFound => {
                FailureClass::Permanent
            }
            _ => FailureClass::Transient,
        }
    }

    /// A short machine code for dead-letter records and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ExchangeError::Database(_) | ExchangeError::Store(_) => "database-refused",
            ExchangeError::Contract(v) => v.code(),
            ExchangeError::Permanent { code, .. } => code,
            ExchangeError::BadMessage { .. } => "bad-message",
            ExchangeError::Io { cause, .. } if cause.kind() == std::io::ErrorKind::NotFound => {
                "file-missing"
            }
            ExchangeError::Io { .. } => "io-error",
            ExchangeError::Pack(_) => "pack-failed",
            ExchangeError::Handler(_) => "import-failed",
            ExchangeError::Pii(_) => "cannot-open",
            _ => "failed",
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        ExchangeError::Io {
            path: path.into(),
            cause,
        }
    }
}

/// Database errors: lost connections and timeouts are outages; the database refusing this
/// message's data (a data exception such as U+0000 in text, a constraint) is permanent;
/// serialisation failures, deadlocks and busy locks are transient.
fn database_class(e: &sqlx::Error) -> FailureClass {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => FailureClass::Outage,
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            let permanent_kind = matches!(
                db.kind(),
                sqlx::error::ErrorKind::UniqueViolation
                    | sqlx::error::ErrorKind::ForeignKeyViolation
                    | sqlx::error::ErrorKind::NotNullViolation
                    | sqlx::error::ErrorKind::CheckViolation
            );
            // PostgreSQL SQLSTATE classes 22 (data exception) and 23 (integrity constraint);
            // SQLite primary result codes 19 (constraint), 20 (mismatch), 25 (range).
            let postgres = db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some();
            let permanent_code = if postgres {
                code.starts_with("22") || code.starts_with("23")
            } else {
                code.parse::<u32>()
                    .is_ok_and(|c| matches!(c & 0xff, 19 | 20 | 25))
            };
            if permanent_kind || permanent_code {
                FailureClass::Permanent
            } else {
                FailureClass::Transient
            }
        }
        _ => FailureClass::Transient,
    }
}
