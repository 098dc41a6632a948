//! Packing bundles into a zone's outbox with the channel's next sequence number.
//!
//! The packer is what a zone calls to send something: it signs the bundle with the zone's key,
//! encrypts it to the receiving zone (from the trust file), chains it to the previous bundle on the
//! channel, and places it in the sending agent's outbox. The sequence is advanced with a
//! compare-and-swap in the state database, so two packers never sign the same sequence number, and
//! the bundle is renamed into the outbox only after the sequence is committed. A crash between the
//! two leaves a hidden `.pack-…` file that [`recover_outbox`] finishes on the next start.

use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use ow_bundle::{BundleBuilder, Channel, Header, Limits, SigningKey, TrustStore};
use tracing::info;

use crate::state::FerryState;
use crate::{AgentError, bundle_file_name, dropfolder};

const PACK_PREFIX: &str = ".pack-";

/// Opens an item whose file does not hold its bytes in clear (a sealed file of personal data):
/// given the file's path, a reader of the item's bytes and their exact number. Called once per
/// packing attempt.
pub type OpenItem =
    Arc<dyn Fn(&Path) -> std::io::Result<(Box<dyn Read + Send>, u64)> + Send + Sync>;

/// One file to put in a bundle.
#[derive(Clone)]
pub struct PackItem {
    /// Item name inside the bundle (a plain file name).
    pub name: String,
    /// Media type, e.g. `application/pdf`.
    pub media_type: String,
    /// Where its bytes are.
    pub path: PathBuf,
    /// How to read them when the file is sealed; `None` reads the file as it is.
    pub open: Option<OpenItem>,
}

impl std::fmt::Debug for PackItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackItem")
            .field("name", &self.name)
            .field("media_type", &self.media_type)
            .field("path", &self.path)
            .field("sealed", &self.open.is_some())
            .finish()
    }
}

/// What to pack.
#[derive(Debug, Clone)]
pub struct PackRequest {
    /// The channel to send on.
    pub channel: Channel,
    /// Bundle kind, e.g. `application.submitted`.
    pub kind: String,
    /// The case the bundle belongs to, traced across zones.
    pub case_id: Option<String>,
    /// How long the bundle stays valid.
    pub valid_for: Duration,
    /// Encrypt to the receiving zone (the default); false only for public content.
    pub encrypt: bool,
    /// The files.
    pub items: Vec<PackItem>,
}

/// A bundle placed in an outbox.
#[derive(Debug, Clone)]
pub struct Packed {
    /// Its header.
    pub header: Header,
    /// Its digest (hex).
    pub digest: String,
    /// Where it is.
    pub path: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
}

/// Packs `request` into `outbox` with the channel's next sequence number.
pub async fn pack_into_outbox(
    state: &FerryState,
    signing_key: &SigningKey,
    trust: &TrustStore,
    outbox: &Path,
    request: &PackRequest,
    now: DateTime<Utc>,
) -> Result<Packed, AgentError> {
    pack_many_into_outbox(
        state,
        signing_key,
        trust,
        outbox,
        std::slice::from_ref(request),
        now,
    )
    .await?
    .pop()
    .ok_or_else(|| AgentError::Bundle("nothing was packed".into()))
}

/// Packs several bundles on one channel into `outbox` with consecutive sequence numbers, as one
/// group commit: all files are written, made durable with one sync, the sequence is advanced in one
/// transaction, and then every file is renamed into place.
pub async fn pack_many_into_outbox(
    state: &FerryState,
    signing_key: &SigningKey,
    trust: &TrustStore,
    outbox: &Path,
    requests: &[PackRequest],
    now: DateTime<Utc>,
) -> Result<Vec<Packed>, AgentError> {
    let Some(first) = requests.first() else {
        return Ok(Vec::new());
    };
    if let Some(other) = requests.iter().find(|r| r.channel != first.channel) {
        return Err(AgentError::Bundle(format!(
            "one batch packs for one channel, but it mixes {} and {}",
            first.channel, other.channel
        )));
    }
    dropfolder::ensure_dir(outbox).map_err(|e| AgentError::io(outbox, e))?;
    let channel = first.channel.to_string();
    // A lost race with another packer costs one repack; bounded so a stuck database cannot spin.
    for _ in 0..16 {
        let (last, mut prev_digest) = state.last_packed(&channel).await?;
        let Some(top) = u64::try_from(requests.len())
            .ok()
            .and_then(|n| last.checked_add(n))
        else {
            return Err(AgentError::Bundle(format!(
                "channel {channel} has used its sequence numbers up to {last}; {} more do not \
                 fit in 64 bits. The channel needs new keys and a fresh state on both sides",
                requests.len()
            )));
        };
        let temps: Vec<PathBuf> = requests
            .iter()
            .map(|_| {
                outbox.join(format!(
                    "{PACK_PREFIX}{}-{}.tmp",
                    channel,
                    uuid::Uuid::now_v7()
                ))
            })
            .collect();
        let written = write_all_bundles(
            signing_key,
            trust,
            requests,
            last,
            prev_digest.take(),
            now,
            &temps,
        );
        let bundles = match written {
            Ok(bundles) => bundles,
            Err(err) => {
                remove_all(&temps);
                return Err(err);
            }
        };
        prev_digest = bundles.last().map(|b| b.digest.to_string());
        dropfolder::sync_written(outbox, &temps).map_err(|e| AgentError::io(outbox, e))?;
        let top_digest = prev_digest.unwrap_or_default();
        if state
            .advance_packed(&channel, last, top, &top_digest)
            .await?
        {
            let mut packed = Vec::with_capacity(bundles.len());
            for (temp, bundle) in temps.iter().zip(bundles) {
                let path = outbox.join(bundle_file_name(&bundle.header));
                fs::rename(temp, &path).map_err(|e| AgentError::io(temp, e))?;
                packed.push(Packed {
                    digest: bundle.digest.to_string(),
                    bytes: bundle.total_len,
                    header: bundle.header,
                    path,
                });
            }
            dropfolder::fsync_dir(outbox).map_err(|e| AgentError::io(outbox, e))?;
            info!(channel = %channel, first = last + 1, last = top, "packed");
            return Ok(packed);
        }
        remove_all(&temps);
    }
    Err(AgentError::Busy(format!(
        "could not take the next sequence number on {channel}: other packers kept taking it"
    )))
}

/// Writes one bundle per request into `temps`, chained from `last`/`prev_digest`.
///
/// Creating a file is the expensive step of packing a small bundle on a busy ext4 file system
/// (the allocator skips recently deleted inodes one by one), so for a batch a helper thread
/// creates and locks the temporary files while this thread does the cryptography.
fn write_all_bundles(
    signing_key: &SigningKey,
    trust: &TrustStore,
    requests: &[PackRequest],
    last: u64,
    mut prev_digest: Option<String>,
    now: DateTime<Utc>,
    temps: &[PathBuf],
) -> Result<Vec<ow_bundle::PackedBundle>, AgentError> {
    let mut bundles = Vec::with_capacity(requests.len());
    let mut write_one = |offset: u64, request: &PackRequest, out: File| {
        let bundle = write_bundle(
            signing_key,
            trust,
            request,
            last + offset,
            prev_digest.take(),
            now,
            out,
        )?;
        prev_digest = Some(bundle.digest.to_string());
        bundles.push(bundle);
        Ok::<(), AgentError>(())
    };
    if requests.len() == 1 {
        for ((offset, request), temp) in (1u64..).zip(requests).zip(temps) {
            write_one(offset, request, create_locked(temp)?)?;
        }
        return Ok(bundles);
    }
    std::thread::scope(|scope| {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<File, AgentError>>(8);
        let creator = std::thread::Builder::new()
            .name("ow-pack-create".into())
            .spawn_scoped(scope, move || {
                for temp in temps {
                    // A closed channel means the writer stopped; the caller removes the files.
                    if tx.send(create_locked(temp)).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| AgentError::Busy(format!("cannot start a packing thread: {e}")))?;
        let mut result = Ok(());
        for (offset, request) in (1u64..).zip(requests) {
            let out = match rx.recv() {
                Ok(out) => out,
                Err(_) => Err(AgentError::Busy("the file-creating thread stopped".into())),
            };
            result = out.and_then(|out| write_one(offset, request, out));
            if result.is_err() {
                break;
            }
        }
        drop(rx);
        if creator.join().is_err() {
            result = result.and(Err(AgentError::Busy(
                "the file-creating thread panicked".into(),
            )));
        }
        result
    })?;
    Ok(bundles)
}

/// Creates a temporary bundle file and locks it.
fn create_locked(temp: &Path) -> Result<File, AgentError> {
    let out = File::create(temp).map_err(|e| AgentError::io(temp, e))?;
    // Held until the file is closed after it is written: tells `recover_outbox` in another
    // process that this packer is alive.
    rustix::fs::flock(&out, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| AgentError::io(temp, e.into()))?;
    Ok(out)
}

fn remove_all(paths: &[PathBuf]) {
    for path in paths {
        let _ = fs::remove_file(path);
    }
}

fn write_bundle(
    signing_key: &SigningKey,
    trust: &TrustStore,
    request: &PackRequest,
    sequence: u64,
    prev_digest: Option<String>,
    now: DateTime<Utc>,
    out: File,
) -> Result<ow_bundle::PackedBundle, AgentError> {
    let prev_digest = prev_digest
        .map(|d| d.parse::<ow_bundle::Digest>())
        .transpose()
        .map_err(|e| AgentError::Bundle(e.to_string()))?;
    let mut builder = BundleBuilder::new(
        request.channel,
        request.kind.as_str(),
        sequence,
        prev_digest,
        now,
        now + request.valid_for,
    )
    // Version 2 unless the trust file holds a channel to version 1 for a receiver not yet
    // upgraded (`docs/bundle-format.md` §8).
    .format_version(trust.bundle_format_version(request.channel));
    if let Some(case_id) = &request.case_id {
        builder = builder.case_id(case_id.as_str());
    }
    if request.encrypt {
        let recipient = trust
            .receiver_encryption_key(request.channel)
            .ok_or_else(|| {
                AgentError::Bundle(format!(
                    "the trust file has no receiver encryption key for channel {}; add \
                     `receiver_encryption_key` to its [[channel]] entry",
                    request.channel
                ))
            })?;
        builder = builder.encrypt_to(recipient);
    } else {
        builder = builder.without_encryption();
    }
    let mut files = Vec::new();
    for item in &request.items {
        let (reader, size): (Box<dyn Read + Send>, u64) = match &item.open {
            Some(open) => open(&item.path).map_err(|e| AgentError::io(&item.path, e))?,
            None => {
                let file = File::open(&item.path).map_err(|e| AgentError::io(&item.path, e))?;
                let size = file
                    .metadata()
                    .map_err(|e| AgentError::io(&item.path, e))?
                    .len();
                (Box::new(file), size)
            }
        };
        files.push((item, reader, size));
    }
    for (item, file, size) in files {
        builder = builder.item(item.name.as_str(), item.media_type.as_str(), file, size);
    }
    // Written in place: a large payload goes straight into the bundle file instead of through
    // a temporary spool file and a second copy.
    let packed = builder
        .write_to_file(signing_key, &out)
        .map_err(|e| AgentError::Bundle(e.to_string()))?;
    // Made durable by the caller, once for the whole batch. Dropping `out` here releases the
    // lock `create_locked` took.
    Ok(packed)
}

/// True when a packer may still be writing `path`: it holds the file's lock, or the file changed
/// in the last minute (the lock is taken just after creation).
fn packer_alive(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return true;
    };
    let recent = file
        .metadata()
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_none_or(|age| age < std::time::Duration::from_secs(60));
    let locked =
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).is_err();
    recent || locked
}

/// Finishes or removes packer files a crash left in an outbox. A batch is committed when the
/// channel's last sequence and digest in the state database are those of its last bundle; the
/// committed bundles are that one and every leftover file it chains back to through
/// `prev_digest`. They are renamed into place; any other leftover was never committed and goes.
pub async fn recover_outbox(outbox: &Path, state: &FerryState) -> Result<(), AgentError> {
    let entries = match fs::read_dir(outbox) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(AgentError::io(outbox, err)),
    };
    let mut leftovers = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| AgentError::io(outbox, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if !name.starts_with(PACK_PREFIX) || packer_alive(&path) {
            continue;
        }
        let bundle = File::open(&path)
            .ok()
            .and_then(|mut f| ow_bundle::read_header(&mut f, &Limits::default()).ok());
        leftovers.push((path, bundle));
    }
    if leftovers.is_empty() {
        return Ok(());
    }
    let mut committed = std::collections::HashSet::new();
    let channels: std::collections::BTreeSet<String> = leftovers
        .iter()
        .filter_map(|(_, b)| b.as_ref().map(|b| b.header().channel.to_string()))
        .collect();
    for channel in channels {
        let (_, last_digest) = state.last_packed(&channel).await?;
        let mut wanted = last_digest;
        while let Some(digest) = wanted.take() {
            let found = leftovers.iter().find_map(|(path, b)| {
                b.as_ref()
                    .filter(|b| b.digest().to_string() == digest)
                    .map(|b| (path.clone(), b.header().prev_digest.map(|d| d.to_hex())))
            });
            if let Some((path, prev)) = found
                && committed.insert(path)
            {
                wanted = prev;
            }
        }
    }
    for (path, bundle) in &leftovers {
        match bundle {
            Some(b) if committed.contains(path) => {
                let target = outbox.join(bundle_file_name(b.header()));
                fs::rename(path, &target).map_err(|e| AgentError::io(path, e))?;
                info!(file = %target.display(), "finished packing after restart");
            }
            _ => fs::remove_file(path).map_err(|e| AgentError::io(path, e))?,
        }
    }
    dropfolder::fsync_dir(outbox).map_err(|e| AgentError::io(outbox, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ow_bundle::{EncryptionSecret, Zone};
    use std::time::{Duration as StdDuration, SystemTime};

    fn setup() -> (tempfile::TempDir, SigningKey, TrustStore, Channel) {
        let dir = tempfile::tempdir().unwrap();
        let key = ow_bundle::generate_signing_key().unwrap();
        let channel = Channel {
            from: Zone::Internet,
            to: Zone::Extranet,
        };
        let mut trust = TrustStore::new();
        trust.add_sender_key(channel, key.verifying_key()).unwrap();
        trust.set_receiver_encryption_key(channel, EncryptionSecret::generate().public());
        (dir, key, trust, channel)
    }

    fn request(dir: &Path, channel: Channel, n: usize) -> PackRequest {
        let path = dir.join(format!("item{n}.txt"));
        fs::write(&path, format!("item {n}")).unwrap();
        PackRequest {
            channel,
            kind: "demo.item".into(),
            case_id: None,
            valid_for: Duration::hours(1),
            encrypt: true,
            items: vec![PackItem {
                name: "item.txt".into(),
                media_type: "text/plain".into(),
                path,
                open: None,
            }],
        }
    }

    /// Turns a packed file back into a leftover of a packer that died before renaming it.
    fn as_leftover(path: &Path, outbox: &Path, n: usize) -> PathBuf {
        let leftover = outbox.join(format!("{PACK_PREFIX}crashed-{n}.tmp"));
        fs::rename(path, &leftover).unwrap();
        let old = SystemTime::now() - StdDuration::from_secs(3600);
        File::options()
            .write(true)
            .open(&leftover)
            .unwrap()
            .set_modified(old)
            .unwrap();
        leftover
    }

    #[tokio::test]
    async fn a_batch_chains_and_advances_the_sequence_once() {
        let (dir, key, trust, channel) = setup();
        let state = FerryState::open(&dir.path().join("s.db")).await.unwrap();
        let outbox = dir.path().join("outbox");
        let requests: Vec<_> = (0..5).map(|n| request(dir.path(), channel, n)).collect();
        let packed = pack_many_into_outbox(&state, &key, &trust, &outbox, &requests, Utc::now())
            .await
            .unwrap();
        let sequences: Vec<u64> = packed.iter().map(|p| p.header.sequence).collect();
        assert_eq!(sequences, vec![1, 2, 3, 4, 5]);
        for pair in packed.windows(2) {
            assert_eq!(
                pair[1].header.prev_digest.map(|d| d.to_hex()),
                Some(pair[0].digest.clone())
            );
        }
        let (last, digest) = state.last_packed(&channel.to_string()).await.unwrap();
        assert_eq!((last, digest), (5, Some(packed[4].digest.clone())));
        let next = pack_into_outbox(&state, &key, &trust, &outbox, &requests[0], Utc::now())
            .await
            .unwrap();
        assert_eq!(next.header.sequence, 6);
        assert_eq!(
            next.header.prev_digest.map(|d| d.to_hex()),
            Some(packed[4].digest.clone())
        );
    }

    #[tokio::test]
    async fn the_trust_file_can_hold_a_channel_to_format_version_1() {
        let (dir, key, mut trust, channel) = setup();
        let state = FerryState::open(&dir.path().join("s.db")).await.unwrap();
        let outbox = dir.path().join("outbox");
        let v2 = pack_into_outbox(
            &state,
            &key,
            &trust,
            &outbox,
            &request(dir.path(), channel, 1),
            Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(v2.header.format_version, ow_bundle::FORMAT_VERSION_2);
        trust.set_bundle_format_version(channel, ow_bundle::FORMAT_VERSION_1);
        let v1 = pack_into_outbox(
            &state,
            &key,
            &trust,
            &outbox,
            &request(dir.path(), channel, 2),
            Utc::now(),
        )
        .await
        .unwrap();
        assert_eq!(v1.header.format_version, ow_bundle::FORMAT_VERSION_1);
        assert!(matches!(
            v1.header.encryption,
            ow_bundle::Encryption::AgeX25519 { .. }
        ));
        let on_disk =
            ow_bundle::read_header(File::open(&v1.path).unwrap(), &Limits::default()).unwrap();
        assert_eq!(on_disk.header().format_version, 1);
    }

    #[tokio::test]
    async fn recovery_finishes_a_committed_batch_and_drops_the_rest() {
        let (dir, key, trust, channel) = setup();
        let state = FerryState::open(&dir.path().join("s.db")).await.unwrap();
        let outbox = dir.path().join("outbox");
        // An uncommitted bundle: packed with a throwaway state, so the real state never saw it.
        let other_state = FerryState::open(&dir.path().join("other.db"))
            .await
            .unwrap();
        let stray_dir = dir.path().join("stray");
        let stray = pack_into_outbox(
            &other_state,
            &key,
            &trust,
            &stray_dir,
            &request(dir.path(), channel, 9),
            Utc::now(),
        )
        .await
        .unwrap();
        fs::create_dir_all(&outbox).unwrap();
        let stray_leftover = as_leftover(&stray.path, &outbox, 99);
        // A committed batch whose renames never happened.
        let requests: Vec<_> = (0..3).map(|n| request(dir.path(), channel, n)).collect();
        let packed = pack_many_into_outbox(&state, &key, &trust, &outbox, &requests, Utc::now())
            .await
            .unwrap();
        for (n, p) in packed.iter().enumerate() {
            as_leftover(&p.path, &outbox, n);
        }
        // A packer that is still writing: recent, so it is left alone.
        let fresh = outbox.join(format!("{PACK_PREFIX}fresh.tmp"));
        fs::write(&fresh, b"partial").unwrap();

        recover_outbox(&outbox, &state).await.unwrap();
        for p in &packed {
            assert!(
                p.path.exists(),
                "committed bundle {} restored",
                p.header.sequence
            );
        }
        assert!(!stray_leftover.exists(), "uncommitted leftover removed");
        assert!(fresh.exists(), "a live packer's file is not touched");
    }
}
