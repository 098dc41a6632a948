//! The receiver's checks of a verified bundle against the batch being landed and what the channel
//! already landed: a bundle id or a sequence lands once, and the chain of `prev_digest`s holds in
//! both directions — a bundle's `prev_digest` must be the digest of the bundle landed before it,
//! and a bundle that arrives after its successor must be the one its successor chains to.

use std::collections::HashMap;

use ow_bundle::Header;

use crate::policy::Refusal;
use crate::state::Landed;

/// What the state database already holds for a batch, fetched in two queries.
pub(crate) struct Known {
    /// Landed rows by bundle id.
    pub by_id: HashMap<String, Landed>,
    /// Landed rows by sequence (the batch's sequences and their neighbours).
    pub by_sequence: HashMap<u64, Landed>,
}

/// A bundle accepted earlier in the same batch.
pub(crate) struct Pending<'a> {
    pub header: &'a Header,
    pub digest: &'a str,
}

/// The refusal for `header` (digest `digest`) given the batch so far and what was landed.
pub(crate) fn state_refusal(
    header: &Header,
    digest: &str,
    staged: &[Pending<'_>],
    known: &Known,
    channel: &str,
) -> Option<Refusal> {
    if staged
        .iter()
        .any(|s| s.header.bundle_id == header.bundle_id)
    {
        return Some(Refusal::new(
            "duplicate",
            format!(
                "bundle {} arrived twice in one batch; the first copy is being landed",
                header.bundle_id
            ),
        ));
    }
    if staged.iter().any(|s| s.header.sequence == header.sequence) {
        return Some(Refusal::new(
            "sequence-reused",
            format!(
                "two different bundles carry sequence {} on {}; the first is being landed, \
                 this one is a replay or a sender fault",
                header.sequence, channel
            ),
        ));
    }
    if let Some(prior) = known.by_id.get(&header.bundle_id) {
        return Some(Refusal::new(
            "duplicate",
            format!(
                "bundle {} was already landed at {} as sequence {}; this copy is a replay or \
                 a resend and was not landed again",
                header.bundle_id,
                prior.landed_at.to_rfc3339(),
                prior.sequence
            ),
        ));
    }
    if let Some(prior) = known.by_sequence.get(&header.sequence) {
        return Some(Refusal::new(
            "sequence-reused",
            format!(
                "sequence {} on {} was already landed as bundle {}; a second bundle with the \
                 same sequence is a replay or a sender whose state was reset",
                header.sequence, channel, prior.bundle_id
            ),
        ));
    }
    // Backwards: this bundle's prev_digest against the bundle before it.
    if let Some(before) = header.sequence.checked_sub(1).filter(|s| *s > 0) {
        let previous = match staged.iter().find(|s| s.header.sequence == before) {
            Some(s) => Some(s.digest),
            None => known.by_sequence.get(&before).map(|l| l.digest.as_str()),
        };
        if let Some(previous) = previous
            && header.prev_digest.map(|d| d.to_hex()).as_deref() != Some(previous)
        {
            return Some(Refusal::new(
                "chain-mismatch",
                format!(
                    "bundle sequence {} does not chain to the bundle landed as sequence \
                     {before} (previous digest differs); the sender's chain forked — stop \
                     and ask the sending zone's operator",
                    header.sequence
                ),
            ));
        }
    }
    // Forwards: a bundle arriving after its successor must be the one the successor chains to.
    if let Some(after) = header.sequence.checked_add(1) {
        let expected = match staged.iter().find(|s| s.header.sequence == after) {
            Some(s) => s.header.prev_digest.map(|d| d.to_hex()),
            None => known
                .by_sequence
                .get(&after)
                .and_then(|l| l.prev_digest.clone()),
        };
        if let Some(expected) = expected
            && expected != digest
        {
            return Some(Refusal::new(
                "chain-mismatch",
                format!(
                    "bundle sequence {} is not the bundle that the already landed sequence \
                     {after} chains to (its digest differs from that bundle's prev_digest); \
                     the sender's chain forked or this is a forgery — stop and ask the \
                     sending zone's operator",
                    header.sequence
                ),
            ));
        }
    }
    None
}
