//! # ow-ferry — the OneWindow ferry
//!
//! Gateway agents that carry bundles across the gaps between zones through drop folders, the
//! packer zones use to send, and the operators' tools (`inspect`, `verify`, `status`, ferry-log
//! audit). The binary `ow-ferry` is a thin command-line front for this library.
//!
//! * [`config`]: the zone's TOML configuration.
//! * [`sender`] / [`receiver`]: the agents; [`agent`] runs them until shutdown.
//! * [`pack`]: signing bundles into an outbox with the channel's next sequence number.
//! * [`state`]: the durable state (sqlx, SQLite) behind exactly-once landing.
//! * [`dropfolder`]: careful writes and settle detection for folders a gateway device mirrors.
//! * [`intake`]: opening a gateway file once and landing a private copy of exactly the bytes
//!   verified.
//! * [`holds`]: files an agent could not handle, held back with backoff.
//! * [`manifests`]: the receiver's view of batch manifests and markers.
//! * [`policy`]: what a receiving channel accepts (limits, clock skew, kinds), shared by the agent
//!   and `ow-ferry verify --config`.
//! * [`audit`]: one tamper-evident ferry log per agent.
//! * [`media`]: offline media — a channel's bundles on a disc as a signed BagIt bag, and back.
//! * [`ops`]: `inspect`, `verify` and `status` for operators and tests.
//! * [`heartbeat`], [`receipts`], [`reconcile`], [`resend`]: the one-way discipline — heartbeats
//!   and alarms, receipts carried back on media, what crossed and what was lost, and sending a
//!   lost bundle again as itself.

pub mod agent;
pub mod audit;
mod chain;
pub mod config;
pub mod dropfolder;
pub mod heartbeat;
pub mod holds;
pub mod intake;
pub mod manifests;
pub mod media;
pub mod ops;
pub mod pack;
pub mod policy;
pub mod receipts;
pub mod receiver;
pub mod reconcile;
pub mod resend;
pub mod sender;
pub mod state;

use std::path::{Path, PathBuf};

use ow_bundle::Header;

/// Why an agent or a ferry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file or folder operation failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        cause: std::io::Error,
    },
    /// The state database failed.
    #[error(transparent)]
    State(#[from] state::StateError),
    /// The ferry log failed (or is broken and must be examined before more is appended).
    #[error("ferry log: {0}")]
    Log(#[from] ow_ferrylog::Error),
    /// A key or trust file could not be used.
    #[error(transparent)]
    Keys(#[from] ow_keys::KeyError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// A bundle could not be packed.
    #[error("cannot pack the bundle: {0}")]
    Bundle(String),
    /// A resource stayed busy.
    #[error("{0}")]
    Busy(String),
}

impl AgentError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, cause: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            cause,
        }
    }
}

/// The file name a bundle travels and lands under: `<channel>.<sequence, 20 digits>.<id>.owb`.
/// Twenty digits hold every u64, so a folder listing sorts in sending order for every sequence
/// the format allows (`docs/drop-folder.md`).
pub fn bundle_file_name(header: &Header) -> String {
    format!(
        "{}.{:020}.{}{}",
        header.channel,
        header.sequence,
        header.bundle_id,
        dropfolder::BUNDLE_SUFFIX
    )
}
