//! `ow-ferry resend`: puts a bundle that was sent but never landed back into the gateway folder
//! **as itself** — the very file kept in `sent/`, same id, same sequence, same signature — so the
//! receiver lands it if it never landed it, and refuses it as a `duplicate` if it had.
//!
//! On a one-way channel the sender never learns on its own what was lost: the sequences come from
//! the receiving side's `gap` alarms, its receipts, or `ow-ferry reconcile`. A bundle is resent
//! only from its kept copy, and only when that copy's digest is the one recorded when it was first
//! sent; a copy that was pruned (or changed) cannot be resent as itself, and the operator is told
//! to pack its content again as a new bundle.
//!
//! Resends are logged as `sent` entries (reason `resend`) in a log of their own,
//! `<agent>-resend`, so a resend never waits for the running sending agent, which holds its log.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use ow_bundle::{Channel, Limits};
use ow_ferrylog::Event;
use serde::Serialize;

use crate::audit::AgentLog;
use crate::config::{FerryConfig, MarkerStyle, SendConfig};
use crate::dropfolder::{self, MARKER_SUFFIX};
use crate::state::FerryState;
use crate::{AgentError, bundle_file_name};

/// What happened to one requested sequence.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Resent {
    /// The sequence asked for.
    pub sequence: u64,
    /// The bundle id sent again (when one was found).
    pub bundle_id: Option<String>,
    /// `resent`, `never-sent`, `pruned`, `changed`, or `waiting` (a copy of it is still in the
    /// gateway folder, not yet taken by the device or the receiver).
    pub outcome: &'static str,
    /// What to do, for anything but `resent`.
    pub message: Option<String>,
}

/// The name of the log resends are written to: `<agent>-resend`.
pub fn resend_log_name(sender: &str) -> String {
    format!("{sender}-resend")
}

/// Resends the bundles sent at `sequences` on `channel`, from `sent/`, into the channel's gateway
/// folder, with the channel's markers. Each sequence gets its own outcome; nothing is skipped
/// silently.
pub async fn resend(
    config: &FerryConfig,
    channel: Channel,
    sequences: &[u64],
) -> Result<Vec<Resent>, AgentError> {
    let Some(send) = config.sender_for(channel) else {
        return Err(AgentError::Busy(format!(
            "this configuration has no [[send]] agent for channel {channel}; resend runs in the \
             zone that sends on it"
        )));
    };
    let signing_key = ow_keys::load_signing_key(&config.keys.signing_key)?;
    let state = FerryState::open(&config.state_db()).await?;
    let name = resend_log_name(&send.name);
    let mut log = AgentLog::open(
        &config.log_dir(&name),
        &name,
        &channel.to_string(),
        config.zone,
        signing_key,
        config.log.checkpoint_every,
    )?;
    let result = resend_with(send, &state, &mut log, sequences).await;
    state.close().await;
    log.close()?;
    result
}

async fn resend_with(
    send: &SendConfig,
    state: &FerryState,
    log: &mut AgentLog,
    sequences: &[u64],
) -> Result<Vec<Resent>, AgentError> {
    let channel = send.channel.to_string();
    let gateway = &send.gateway;
    dropfolder::ensure_dir(gateway).map_err(|e| AgentError::io(gateway, e))?;
    let mut outcomes = Vec::with_capacity(sequences.len());
    let mut placed: Vec<(String, u64, ow_bundle::Header, PathBuf)> = Vec::new();
    for &sequence in sequences {
        let Some(sent) = state.sent_at_sequence(&channel, sequence).await? else {
            outcomes.push(Resent {
                sequence,
                bundle_id: None,
                outcome: "never-sent",
                message: Some(format!(
                    "no bundle was sent at sequence {sequence} on {channel} from this zone; \
                     check the sequence (ow-ferry reconcile), or whether it is still in the outbox"
                )),
            });
            continue;
        };
        let Some((path, header, digest)) =
            find_kept(&send.sent, &channel, sequence, &sent.bundle_id)
        else {
            outcomes.push(Resent {
                sequence,
                bundle_id: Some(sent.bundle_id.clone()),
                outcome: "pruned",
                message: Some(format!(
                    "bundle {} was sent but its file is no longer in {}, so it cannot be resent \
                     as itself; pack its content again as a new bundle (it gets a new id and \
                     sequence, and the old sequence stays a gap that reconcile explains as lost)",
                    sent.bundle_id,
                    send.sent.display()
                )),
            });
            continue;
        };
        if digest != sent.digest {
            outcomes.push(Resent {
                sequence,
                bundle_id: Some(sent.bundle_id.clone()),
                outcome: "changed",
                message: Some(format!(
                    "the file kept for bundle {} in {} does not have the digest recorded when it \
                     was sent; it is not resent. Examine it: someone changed sent/",
                    sent.bundle_id,
                    path.display()
                )),
            });
            continue;
        }
        let name = bundle_file_name(&header);
        if fs::symlink_metadata(gateway.join(&name)).is_ok() {
            outcomes.push(Resent {
                sequence,
                bundle_id: Some(sent.bundle_id.clone()),
                outcome: "waiting",
                message: Some(format!(
                    "{name} is still in the gateway folder: the device or the receiver has not \
                     taken it yet; nothing to resend"
                )),
            });
            continue;
        }
        let temp = dropfolder::place_file(&path, gateway, &name)
            .map_err(|e| AgentError::io(gateway, e))?;
        let bytes = fs::metadata(&temp)
            .map_err(|e| AgentError::io(&temp, e))?
            .len();
        placed.push((name, bytes, header, temp));
        outcomes.push(Resent {
            sequence,
            bundle_id: Some(sent.bundle_id.clone()),
            outcome: "resent",
            message: None,
        });
    }
    if placed.is_empty() {
        return Ok(outcomes);
    }
    // The same order as the sending agent: bytes durable, then the names, then the markers.
    let temps: Vec<PathBuf> = placed.iter().map(|p| p.3.clone()).collect();
    dropfolder::sync_written(gateway, &temps).map_err(|e| AgentError::io(gateway, e))?;
    for (name, _, _, temp) in &placed {
        fs::rename(temp, gateway.join(name)).map_err(|e| AgentError::io(temp, e))?;
    }
    if send.marker {
        match send.marker_style {
            MarkerStyle::Batch => {
                let entries: Vec<(String, u64)> =
                    placed.iter().map(|p| (p.0.clone(), p.1)).collect();
                let name = format!(
                    "{}{}{MARKER_SUFFIX}",
                    dropfolder::MANIFEST_PREFIX,
                    uuid::Uuid::now_v7()
                );
                let temp = gateway.join(dropfolder::temp_name(&name));
                crate::intake::write_new(&temp, &dropfolder::encode_manifest(&entries))
                    .map_err(|e| AgentError::io(&temp, e))?;
                fs::rename(&temp, gateway.join(&name)).map_err(|e| AgentError::io(&temp, e))?;
            }
            MarkerStyle::PerFile => {
                dropfolder::fsync_dir(gateway).map_err(|e| AgentError::io(gateway, e))?;
                for (name, ..) in &placed {
                    let marker = gateway.join(format!("{name}{MARKER_SUFFIX}"));
                    match crate::intake::create_new_file(&marker, 0o644) {
                        Ok(_) => {}
                        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                        Err(err) => return Err(AgentError::io(&marker, err)),
                    }
                }
            }
        }
    }
    dropfolder::fsync_dir(gateway).map_err(|e| AgentError::io(gateway, e))?;
    for (_, bytes, header, _) in &placed {
        log.bundle_event(
            Event::Sent,
            Some(header),
            *bytes,
            Some("resend: the same bundle sent again from sent/".into()),
        )?;
        tracing::info!(
            agent = %send.name,
            bundle = %header.bundle_id,
            sequence = header.sequence,
            "resent"
        );
    }
    log.sync()?;
    Ok(outcomes)
}

/// The kept copy of a sent bundle in `sent/`: the file named for it (or `<name>.N`, when a
/// second copy was filed beside it) whose header has its id and sequence. Returns its path,
/// header and digest.
fn find_kept(
    sent_dir: &Path,
    channel: &str,
    sequence: u64,
    bundle_id: &str,
) -> Option<(PathBuf, ow_bundle::Header, String)> {
    let prefix = format!("{channel}.{sequence:020}.{bundle_id}");
    let entries = fs::read_dir(sent_dir).ok()?;
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect();
    names.sort();
    names.into_iter().find_map(|name| {
        let path = sent_dir.join(&name);
        // A regular file only: nothing in sent/ is followed through a symlink.
        let meta = fs::symlink_metadata(&path).ok()?;
        if !meta.file_type().is_file() {
            return None;
        }
        let mut file = File::open(&path).ok()?;
        let bundle = ow_bundle::read_header(&mut file, &Limits::default()).ok()?;
        let header = bundle.header().clone();
        (header.bundle_id == bundle_id && header.sequence == sequence)
            .then(|| (path, header, bundle.digest().to_string()))
    })
}
