//! Packing bundles into a zone's outbox with the channel's next sequence number.
//!
//! The packer is what a zone calls to send something: it signs the bundle with the zone's key,
//! encrypts it to the receiving zone (from the trust file), chains it to the previous bundle on the
//! channel, and places it in the sending agent's outbox. The sequence is advanced with a
//! compare-and-swap in the state database, so two packers never sign the same sequence number, and
//! the bundle is renamed into the outbox only after the sequence is committed. A crash between the
//! two leaves a hidden `.pack-…` file that [`recover_outbox`] finishes on the next start.

use std::fs::{self, File};
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, Utc};
use ow_bundle::{BundleBuilder, Channel, Header, Limits, SigningKey, TrustStore};
use tracing::info;

use crate::state::FerryState;
use crate::{AgentError, bundle_file_name, dropfolder};

const PACK_PREFIX: &str = ".pack-";

/// One file to put in a bundle.
#[derive(Debug, Clone)]
pub struct PackItem {
    /// Item name inside the bundle (a plain file name).
    pub name: String,
    /// Media type, e.g. `application/pdf`.
    pub media_type: String,
    /// Where its bytes are.
    pub path: PathBuf,
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
    dropfolder::ensure_dir(outbox).map_err(|e| AgentError::io(outbox, e))?;
    let channel = request.channel.to_string();
    // A lost race with another packer costs one repack; bounded so a stuck database cannot spin.
    for _ in 0..16 {
        let (last, prev_digest) = state.last_packed(&channel).await?;
        let sequence = last + 1;
        let temp = outbox.join(format!(
            "{PACK_PREFIX}{}-{}.tmp",
            channel,
            uuid::Uuid::now_v7()
        ));
        let packed = write_bundle(
            signing_key,
            trust,
            request,
            sequence,
            prev_digest,
            now,
            &temp,
        )?;
        let digest = packed.digest.to_string();
        if state
            .advance_packed(&channel, last, sequence, &digest)
            .await?
        {
            let name = bundle_file_name(&packed.header);
            let path = outbox.join(&name);
            fs::rename(&temp, &path).map_err(|e| AgentError::io(&temp, e))?;
            dropfolder::fsync_dir(outbox).map_err(|e| AgentError::io(outbox, e))?;
            info!(channel = %channel, sequence, bundle = %packed.header.bundle_id, "packed");
            return Ok(Packed {
                header: packed.header,
                digest,
                path,
                bytes: packed.total_len,
            });
        }
        let _ = fs::remove_file(&temp);
    }
    Err(AgentError::Busy(format!(
        "could not take the next sequence number on {channel}: other packers kept taking it"
    )))
}

fn write_bundle(
    signing_key: &SigningKey,
    trust: &TrustStore,
    request: &PackRequest,
    sequence: u64,
    prev_digest: Option<String>,
    now: DateTime<Utc>,
    temp: &Path,
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
    );
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
        let file = File::open(&item.path).map_err(|e| AgentError::io(&item.path, e))?;
        let size = file
            .metadata()
            .map_err(|e| AgentError::io(&item.path, e))?
            .len();
        files.push((item, file, size));
    }
    for (item, file, size) in files {
        builder = builder.item(item.name.as_str(), item.media_type.as_str(), file, size);
    }
    let out = File::create(temp).map_err(|e| AgentError::io(temp, e))?;
    // Held until the file is closed after its rename: tells `recover_outbox` in another process
    // that this packer is alive.
    rustix::fs::flock(&out, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| AgentError::io(temp, e.into()))?;
    let mut writer = BufWriter::with_capacity(1 << 20, out);
    let packed = builder
        .write(signing_key, &mut writer)
        .map_err(|e| AgentError::Bundle(e.to_string()))?;
    let out = writer
        .into_inner()
        .map_err(|e| AgentError::io(temp, e.into_error()))?;
    out.sync_all().map_err(|e| AgentError::io(temp, e))?;
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

/// Finishes or removes packer files a crash left in an outbox: a file whose digest is the
/// channel's last committed one is renamed into place; any other was never committed and goes.
pub async fn recover_outbox(outbox: &Path, state: &FerryState) -> Result<(), AgentError> {
    let entries = match fs::read_dir(outbox) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(AgentError::io(outbox, err)),
    };
    let mut changed = false;
    for entry in entries {
        let entry = entry.map_err(|e| AgentError::io(outbox, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with(PACK_PREFIX) {
            continue;
        }
        let path = entry.path();
        if packer_alive(&path) {
            continue;
        }
        let bundle = File::open(&path)
            .ok()
            .and_then(|mut f| ow_bundle::read_header(&mut f, &Limits::default()).ok());
        let committed = match &bundle {
            Some(b) => {
                let (last, digest) = state.last_packed(&b.header().channel.to_string()).await?;
                last == b.header().sequence && digest.as_deref() == Some(&b.digest().to_string())
            }
            None => false,
        };
        match bundle {
            Some(b) if committed => {
                let target = outbox.join(bundle_file_name(b.header()));
                fs::rename(&path, &target).map_err(|e| AgentError::io(&path, e))?;
                info!(file = %target.display(), "finished packing after restart");
            }
            _ => {
                fs::remove_file(&path).map_err(|e| AgentError::io(&path, e))?;
            }
        }
        changed = true;
    }
    if changed {
        dropfolder::fsync_dir(outbox).map_err(|e| AgentError::io(outbox, e))?;
    }
    Ok(())
}
