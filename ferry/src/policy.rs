//! What a receiving channel accepts, in one place: the receiving agent and `ow-ferry verify
//! --config` both judge a bundle with a [`ChannelPolicy`], so an operator's check gives exactly the
//! agent's answer (except the checks against what was already landed, which need the state).
//!
//! The limits: `max_bundle_bytes` caps the whole bundle file and is checked against the file's
//! size before a byte is read; the format's stored-payload cap (`Limits::max_payload_bytes`) is set
//! to the same value, since a payload is part of its file; the header, item-count, name and
//! decompressed-size caps stay at the format's defaults (`docs/bundle-format.md` §6). The allowed
//! clock skew defaults to the format's five minutes (`max_clock_skew_s`).

use std::fs::File;
use std::io::{Read, Seek};

use chrono::{DateTime, Utc};
use ow_bundle::{
    Channel, DiscardSink, EncryptionSecret, Header, Limits, TrustStore, VerifiedBundle,
    VerifyError, VerifyOptions, Zone,
};

use crate::config::ReceiveConfig;

/// A refusal: the stable code and the operator's message (see `docs/drop-folder.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// Stable code, e.g. `bundle-too-large`, `kind-not-allowed` or a format code.
    pub code: String,
    /// What was wrong and what to do.
    pub message: String,
}

impl Refusal {
    /// A refusal with `code` and `message`.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

impl From<&VerifyError> for Refusal {
    fn from(err: &VerifyError) -> Self {
        Self::new(err.code(), err.to_string())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

/// The checks of one receiving channel that need no state.
#[derive(Debug, Clone)]
pub struct ChannelPolicy {
    /// The channel.
    pub channel: Channel,
    /// The receiving zone.
    pub zone: Zone,
    /// Largest bundle file accepted.
    pub max_bundle_bytes: u64,
    /// Kinds accepted; empty means any.
    pub allowed_kinds: Vec<String>,
    /// How far in the future a bundle's creation time may be.
    pub max_clock_skew: chrono::Duration,
}

impl ChannelPolicy {
    /// The policy of a configured receiving agent.
    pub fn from_config(zone: Zone, config: &ReceiveConfig) -> Self {
        Self {
            channel: config.channel,
            zone,
            max_bundle_bytes: config.max_bundle_bytes,
            allowed_kinds: config.allowed_kinds.clone(),
            max_clock_skew: config.max_clock_skew,
        }
    }

    /// The format limits applied while reading (see the module documentation).
    pub fn limits(&self) -> Limits {
        Limits {
            max_payload_bytes: self.max_bundle_bytes,
            ..Limits::default()
        }
    }

    /// Refuses a file larger than the channel's cap, before it is read.
    pub fn check_file_len(&self, len: u64) -> Result<(), Refusal> {
        if len > self.max_bundle_bytes {
            return Err(Refusal::new(
                "bundle-too-large",
                format!(
                    "the file is {len} bytes, over this channel's limit of {} bytes \
                     (receive.max_bundle_bytes); split the content or raise the limit",
                    self.max_bundle_bytes
                ),
            ));
        }
        Ok(())
    }

    /// Verifies a bundle read from `reader` with the channel's limits and clock skew.
    pub fn verify<R: Read + Seek>(
        &self,
        reader: R,
        trust: &TrustStore,
        decryption: Option<&EncryptionSecret>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedBundle, VerifyError> {
        let options = VerifyOptions {
            trust,
            receiver: self.zone,
            decryption,
            now,
            limits: self.limits(),
            max_clock_skew: self.max_clock_skew,
        };
        ow_bundle::verify_to_sink(reader, &options, &mut DiscardSink)
    }

    /// The channel and kind checks of a verified header.
    pub fn check_header(&self, header: &Header) -> Result<(), Refusal> {
        if header.channel != self.channel {
            return Err(Refusal::new(
                "wrong-channel",
                format!(
                    "the bundle is for channel {} but arrived in the gateway folder of {}; \
                     check the gateway device's folder mapping",
                    header.channel, self.channel
                ),
            ));
        }
        if !self.allowed_kinds.is_empty()
            && !self.allowed_kinds.iter().any(|k| k == &header.kind)
            && !crate::receipts::is_ferry_kind(&header.kind)
        {
            return Err(Refusal::new(
                "kind-not-allowed",
                format!(
                    "bundle kind `{}` is not allowed on channel {} (allowed: {})",
                    header.kind,
                    self.channel,
                    self.allowed_kinds.join(", ")
                ),
            ));
        }
        Ok(())
    }

    /// Everything but the state checks, on an open file: size cap, verification, channel, kind.
    pub fn judge_file(
        &self,
        file: &mut File,
        trust: &TrustStore,
        decryption: Option<&EncryptionSecret>,
        now: DateTime<Utc>,
    ) -> Result<VerifiedBundle, Refusal> {
        let len = file
            .metadata()
            .map_err(|e| Refusal::new("io", format!("cannot read the file: {e}")))?
            .len();
        self.check_file_len(len)?;
        let verified = self
            .verify(&mut *file, trust, decryption, now)
            .map_err(|e| Refusal::from(&e))?;
        self.check_header(verified.header())?;
        Ok(verified)
    }
}
