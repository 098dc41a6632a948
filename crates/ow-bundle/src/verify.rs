//! Verifying bundles: [`verify`] and [`verify_to_sink`], the [`ItemSink`] trait with
//! [`DiscardSink`] and [`MemorySink`], and [`VerifiedBundle`] — the only proof that a bundle
//! passed every check.
//!
//! Order of checks (each failure is one [`VerifyError`] variant):
//!
//! 1. prefix: magic, version, suite, header length cap; signature length; payload length cap;
//! 2. header JSON and structure (agreement with prefix and payload length, item count and
//!    plain-size caps, field syntax, item sizes adding up to `plain_size`);
//! 3. channel and direction: header sender/receiver agree with the channel, this zone is the
//!    receiver, the channel is in the trust store;
//! 4. the signing key id is pinned for that channel;
//! 5. the Ed25519 signature (strict verification);
//! 6. expiry, and creation time not beyond now plus the allowed clock skew;
//! 7. item names;
//! 8. the payload length against the file: truncated or trailing garbage;
//! 9. BLAKE3 of the stored payload (first pass) — so nothing unauthenticated reaches a decoder;
//! 10. seek back; decryption key present and matching; decrypt; decompress with an output cap
//!     of exactly `plain_size`; split into items by declared sizes, BLAKE3 and SHA-256 each;
//!     the stored payload is hashed again on this pass, so a file changed between the passes
//!     is caught.

use std::io::{self, Read, Seek, SeekFrom, Write};

use chrono::{DateTime, Utc};
use ed25519_dalek::Signature;

use crate::digest::Digest;
use crate::error::VerifyError;
use crate::format::signed_message;
use crate::header::{Header, ItemInfo};
use crate::keys::EncryptionSecret;
use crate::read::{Limits, read_header_inner};
use crate::trust::TrustStore;
use crate::unpack::check_payload;
use crate::zone::Zone;

/// Everything verification needs besides the bundle.
#[derive(Clone, Debug)]
pub struct VerifyOptions<'a> {
    /// Pinned sender keys per channel.
    pub trust: &'a TrustStore,
    /// The zone doing the verification (must be the bundle's receiver).
    pub receiver: Zone,
    /// This zone's age secret, needed for encrypted payloads.
    pub decryption: Option<&'a EncryptionSecret>,
    /// The current time (the library never reads the clock during verification).
    pub now: DateTime<Utc>,
    /// Size caps.
    pub limits: Limits,
    /// How far in the future `created_at` may be (clock skew between zones).
    pub max_clock_skew: chrono::Duration,
}

impl<'a> VerifyOptions<'a> {
    /// Default allowed clock skew: 5 minutes.
    pub const DEFAULT_MAX_CLOCK_SKEW_SECONDS: i64 = 300;

    /// Options with default limits and a 5-minute clock skew.
    pub fn new(
        trust: &'a TrustStore,
        receiver: Zone,
        decryption: Option<&'a EncryptionSecret>,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            trust,
            receiver,
            decryption,
            now,
            limits: Limits::default(),
            max_clock_skew: chrono::Duration::seconds(Self::DEFAULT_MAX_CLOCK_SKEW_SECONDS),
        }
    }
}

/// Where verified item bytes go during [`verify_to_sink`].
///
/// For each item in header order: [`begin_item`](ItemSink::begin_item) returns a writer that
/// receives the item's bytes; after the writer is dropped and the item's BLAKE3 and SHA-256
/// matched, [`finish_item`](ItemSink::finish_item) is called. If verification fails after the
/// first `begin_item`, [`abort`](ItemSink::abort) is called once.
///
/// **Everything a sink receives is provisional until `verify_to_sink` returns `Ok`**: a later
/// item, the decompression-bomb check or the final payload hash may still fail. A sink that
/// writes files should write them to a staging area and move them into place only after `Ok`,
/// and delete them on `abort`.
pub trait ItemSink {
    /// The writer for one item's bytes.
    type Writer<'s>: Write
    where
        Self: 's;

    /// Starts an item; the returned writer receives exactly `item.size` bytes.
    fn begin_item(&mut self, item: &ItemInfo) -> io::Result<Self::Writer<'_>>;

    /// The item's bytes are complete and matched its hashes (still provisional).
    fn finish_item(&mut self, item: &ItemInfo) -> io::Result<()>;

    /// Verification failed: discard everything received so far.
    fn abort(&mut self);
}

/// A sink that throws item bytes away (verification only).
#[derive(Clone, Copy, Debug, Default)]
pub struct DiscardSink;

impl ItemSink for DiscardSink {
    type Writer<'s> = io::Sink;

    fn begin_item(&mut self, _item: &ItemInfo) -> io::Result<io::Sink> {
        Ok(io::sink())
    }

    fn finish_item(&mut self, _item: &ItemInfo) -> io::Result<()> {
        Ok(())
    }

    fn abort(&mut self) {}
}

/// A sink that keeps items in memory. Its contents are provisional until verification returns
/// `Ok`; on abort it is emptied.
#[derive(Clone, Debug, Default)]
pub struct MemorySink {
    items: Vec<(ItemInfo, Vec<u8>)>,
}

impl MemorySink {
    /// An empty sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// Items received so far (provisional until verification returned `Ok`).
    pub fn items(&self) -> &[(ItemInfo, Vec<u8>)] {
        &self.items
    }

    /// Takes the items (provisional until verification returned `Ok`).
    pub fn into_items(self) -> Vec<(ItemInfo, Vec<u8>)> {
        self.items
    }
}

impl ItemSink for MemorySink {
    type Writer<'s> = &'s mut Vec<u8>;

    fn begin_item(&mut self, item: &ItemInfo) -> io::Result<&mut Vec<u8>> {
        // The size is signed and capped by max_plain_bytes, but reserve modestly anyway and let
        // the vector grow.
        let reserve = usize::try_from(item.size)
            .unwrap_or(usize::MAX)
            .min(16 << 20);
        self.items.push((item.clone(), Vec::with_capacity(reserve)));
        match self.items.last_mut() {
            Some((_, v)) => Ok(v),
            None => Err(io::Error::other("memory sink lost its item")),
        }
    }

    fn finish_item(&mut self, _item: &ItemInfo) -> io::Result<()> {
        Ok(())
    }

    fn abort(&mut self) {
        self.items.clear();
    }
}

/// One verified item and its content (from [`verify`]).
#[derive(Clone, Debug)]
pub struct VerifiedItem {
    info: ItemInfo,
    data: Vec<u8>,
}

impl VerifiedItem {
    /// Name, media type, size and hashes from the signed header.
    pub fn info(&self) -> &ItemInfo {
        &self.info
    }

    /// The content.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// Takes the content.
    pub fn into_data(self) -> Vec<u8> {
        self.data
    }
}

/// A bundle that passed every check. Only verification constructs one.
#[derive(Clone, Debug)]
pub struct VerifiedBundle {
    header: Header,
    digest: Digest,
    items: Option<Vec<VerifiedItem>>,
}

impl VerifiedBundle {
    /// The verified header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The bundle digest: BLAKE3 over the header bytes.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The items with their content, when verified with [`verify`] (in-memory); `None` when
    /// the items went to a caller's sink.
    pub fn items(&self) -> Option<&[VerifiedItem]> {
        self.items.as_deref()
    }

    /// Takes the items (see [`items`](Self::items)).
    pub fn into_items(self) -> Option<Vec<VerifiedItem>> {
        self.items
    }
}

/// Verifies a bundle and returns it with its items in memory. See [`verify_to_sink`] for the
/// checks; use that with a file-writing sink for large bundles.
pub fn verify<R: Read + Seek>(
    reader: R,
    opts: &VerifyOptions<'_>,
) -> Result<VerifiedBundle, VerifyError> {
    let mut sink = MemorySink::new();
    let mut bundle = verify_to_sink(reader, opts, &mut sink)?;
    bundle.items = Some(
        sink.into_items()
            .into_iter()
            .map(|(info, data)| VerifiedItem { info, data })
            .collect(),
    );
    Ok(bundle)
}

/// Verifies a bundle read from `reader` (starting at its current position), streaming item
/// bytes to `sink`. Returns `Ok` only if every check in the [module docs](self) passed; sink
/// output is provisional until then.
pub fn verify_to_sink<R: Read + Seek, S: ItemSink>(
    mut reader: R,
    opts: &VerifyOptions<'_>,
    sink: &mut S,
) -> Result<VerifiedBundle, VerifyError> {
    let start = reader
        .stream_position()
        .map_err(|e| VerifyError::io("reading the bundle", e))?;
    let ub = read_header_inner(&mut reader, &opts.limits)?;
    let h = &ub.header;

    // Channel and direction.
    if h.sender != h.channel.from || h.receiver != h.channel.to {
        return Err(VerifyError::WrongChannel {
            reason: format!(
                "header names channel {} but sender {} and receiver {}; the sender wrote an inconsistent header — quarantine it",
                h.channel, h.sender, h.receiver
            ),
        });
    }
    if h.receiver != opts.receiver {
        return Err(VerifyError::WrongReceiver {
            receiver: opts.receiver,
            addressed_to: h.receiver,
        });
    }
    if !opts.trust.contains_channel(h.channel) {
        return Err(VerifyError::WrongChannel {
            reason: format!(
                "channel {} is not in this zone's trust file, so no sender key is pinned for it; quarantine the bundle, or add a [[channel]] entry if the channel is meant to exist",
                h.channel
            ),
        });
    }

    // Key and signature.
    let Some(key) = opts.trust.sender_key(h.channel, &h.key_id) else {
        return Err(VerifyError::UnknownKey {
            key_id: h.key_id,
            channel: h.channel,
        });
    };
    let signature =
        Signature::from_slice(&ub.signature).map_err(|e| VerifyError::BadSignature {
            reason: format!("signature bytes are malformed ({e})"),
        })?;
    key.verify_strict(&signed_message(&ub.prefix(), &ub.header_bytes), &signature)
        .map_err(|_| VerifyError::BadSignature {
            reason: format!(
                "the signature does not verify with pinned key {} of channel {}",
                h.key_id, h.channel
            ),
        })?;

    // Times.
    if opts.now >= h.expires_at {
        return Err(VerifyError::Expired {
            expires_at: h.expires_at,
            now: opts.now,
        });
    }
    let latest_creation = opts
        .now
        .checked_add_signed(opts.max_clock_skew)
        .unwrap_or(DateTime::<Utc>::MAX_UTC);
    if h.created_at > latest_creation {
        return Err(VerifyError::NotYetValid {
            created_at: h.created_at,
            now: opts.now,
            max_skew_seconds: opts.max_clock_skew.num_seconds(),
        });
    }

    // Item names.
    h.check_item_names(opts.limits.max_item_name_len)?;

    // Payload length against the file.
    let payload_start = start
        .checked_add(ub.payload_offset())
        .ok_or_else(|| VerifyError::malformed("bundle offset overflows"))?;
    let end = reader
        .seek(SeekFrom::End(0))
        .map_err(|e| VerifyError::io("finding the end of the bundle", e))?;
    let available = end.saturating_sub(payload_start);
    if available < ub.payload_len {
        return Err(VerifyError::Truncated {
            what: format!(
                "the payload has {available} of its {} bytes",
                ub.payload_len
            ),
        });
    }
    if available > ub.payload_len {
        return Err(VerifyError::TrailingGarbage {
            extra: available - ub.payload_len,
        });
    }

    // The payload passes (on several threads for large bundles, see `unpack`).
    let mut began = false;
    let result = check_payload(&mut reader, payload_start, h, opts, sink, &mut began);
    if let Err(e) = result {
        if began {
            sink.abort();
        }
        return Err(e);
    }
    Ok(VerifiedBundle {
        digest: ub.digest,
        header: ub.header,
        items: None,
    })
}
