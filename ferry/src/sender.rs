//! The sending agent: outbox → gateway folder → `sent/`.
//!
//! For each batch: every bundle is copied into the gateway folder under a hidden temporary name the
//! device ignores (a new file, never a hard link and never written through a symlink), the copies'
//! data is synced once, and each is renamed into place; a batch manifest (or per-file markers) is written where
//! configured; the folder is synced; the log entries are synced; the sent rows are committed; and only
//! then is each outbox file moved to `sent/`. A crash anywhere leaves the bundle in the outbox, so
//! it is sent again on restart — the receiver lands it once and refuses the second copy as a
//! duplicate. Nothing is ever lost; at worst a bundle crosses twice and lands once.
//!
//! One outbox file that cannot be read or placed is held back with backoff ([`crate::holds`]) and,
//! after its retry budget, set aside in `rejected/` with its reason; the others go on.

use std::fs::{self, File};
use std::path::PathBuf;

use chrono::Utc;
use ow_bundle::{Header, Limits, Zone};
use ow_ferrylog::Event;
use tracing::{info, warn};

use crate::audit::AgentLog;
use crate::config::{MarkerStyle, SendConfig};
use crate::dropfolder::{self, MARKER_SUFFIX, Seen};
use crate::holds::Holds;
use crate::state::{FerryState, Sent};
use crate::{AgentError, bundle_file_name};

/// What one pass over the outbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendPass {
    /// Bundles placed in the gateway folder.
    pub sent: usize,
    /// Outbox files set aside as not valid for this channel.
    pub rejected: usize,
    /// Outbox files held back after a failure to read or place them.
    pub held: usize,
}

/// A sending agent for one channel.
pub struct Sender {
    config: SendConfig,
    zone: Zone,
    state: FerryState,
    log: AgentLog,
    limits: Limits,
    holds: Holds,
    heartbeat: Option<HeartbeatSource>,
    /// The last time a bundle was sent (or the agent started), for heartbeats.
    last_activity: chrono::DateTime<Utc>,
}

/// What a sending agent needs to send heartbeats ([`crate::heartbeat`]).
pub struct HeartbeatSource {
    /// The zone's signing key.
    pub signing_key: ed25519_dalek::SigningKey,
    /// The trust file (the receiving zone's encryption key).
    pub trust: std::sync::Arc<ow_bundle::TrustStore>,
    /// Send one after this long without sending anything.
    pub interval: std::time::Duration,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("agent", &self.config.name)
            .finish_non_exhaustive()
    }
}

struct Placed {
    header: Header,
    digest: String,
    bytes: u64,
    source: PathBuf,
    name: String,
    /// The temporary copy in the gateway folder (None when it was sent before a crash).
    copy: Option<PathBuf>,
    /// The outbox file as listed.
    seen: Seen,
}

impl Sender {
    /// Creates the agent and its folders, and removes temporary files a crash left behind.
    pub async fn start(
        config: SendConfig,
        zone: Zone,
        state: FerryState,
        log: AgentLog,
    ) -> Result<Self, AgentError> {
        for dir in [
            &config.outbox,
            &config.gateway,
            &config.sent,
            &config.rejected,
        ] {
            dropfolder::ensure_dir(dir).map_err(|e| AgentError::io(dir, e))?;
        }
        // Our own half-written copies in the gateway folder: the device ignores them, and the
        // bundle is still in the outbox, so they are simply removed.
        let gateway = config.gateway.clone();
        for entry in fs::read_dir(&gateway).map_err(|e| AgentError::io(&gateway, e))? {
            let entry = entry.map_err(|e| AgentError::io(&gateway, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.')
                && (name.ends_with(".owb.tmp") || name.ends_with(&format!("{MARKER_SUFFIX}.tmp")))
            {
                let _ = fs::remove_file(entry.path());
            }
        }
        crate::pack::recover_outbox(&config.outbox, &state).await?;
        state.release_all_held(&config.name).await?;
        Ok(Self {
            holds: Holds::new(&config.name),
            config,
            zone,
            state,
            log,
            limits: Limits::default(),
            heartbeat: None,
            last_activity: Utc::now(),
        })
    }

    /// Sends a `ferry.heartbeat` whenever nothing was sent for the source's interval.
    pub fn set_heartbeat(&mut self, source: HeartbeatSource) {
        self.heartbeat = Some(source);
    }

    /// Packs a heartbeat into the outbox when one is due at `now` and the outbox is empty.
    /// Returns whether one was packed.
    pub async fn heartbeat_if_due(
        &mut self,
        now: chrono::DateTime<Utc>,
    ) -> Result<bool, AgentError> {
        let Some(source) = &self.heartbeat else {
            return Ok(false);
        };
        if !crate::heartbeat::due(self.last_activity, now, source.interval) {
            return Ok(false);
        }
        let outbox = self.config.outbox.clone();
        let waiting =
            dropfolder::list_candidates(&outbox).map_err(|e| AgentError::io(&outbox, e))?;
        if !waiting.is_empty() {
            return Ok(false);
        }
        crate::heartbeat::pack_heartbeat(
            &self.state,
            &source.signing_key,
            &source.trust,
            &outbox,
            self.config.channel,
            now,
        )
        .await?;
        self.last_activity = now;
        Ok(true)
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Sends everything waiting in the outbox, in batches.
    pub async fn poll(&mut self) -> Result<SendPass, AgentError> {
        if let Err(err) = self.heartbeat_if_due(Utc::now()).await {
            // A heartbeat that cannot be packed never holds up the bundles waiting; it is tried
            // again an interval later.
            warn!(agent = %self.config.name, "cannot send a heartbeat: {err}");
            self.last_activity = Utc::now();
        }
        let outbox = self.config.outbox.clone();
        let listed =
            dropfolder::list_candidates(&outbox).map_err(|e| AgentError::io(&outbox, e))?;
        for gone in self
            .holds
            .retain_present(listed.iter().map(|f| f.name.as_str()))
        {
            self.state.release_held(&self.config.name, &gone).await?;
        }
        let now = std::time::Instant::now();
        let mut pass = SendPass::default();
        let mut files = Vec::with_capacity(listed.len());
        for file in listed {
            if self.holds.is_held(&file, now) {
                pass.held += 1;
            } else {
                files.push(file);
            }
        }
        for chunk in files.chunks(self.config.batch) {
            let (sent, rejected) = self.send_batch(chunk).await?;
            pass.sent += sent;
            pass.rejected += rejected;
        }
        Ok(pass)
    }

    async fn send_batch(&mut self, batch: &[Seen]) -> Result<(usize, usize), AgentError> {
        let gateway = self.config.gateway.clone();
        let mut own = Vec::with_capacity(batch.len());
        let mut rejected = 0;
        for file in batch {
            match self.read_own_bundle(file) {
                Ok((header, digest)) => own.push((file, header, digest)),
                Err((code, message)) => {
                    self.set_aside(file, &code, &message)?;
                    rejected += 1;
                }
            }
        }
        // One lookup for the whole batch, not a round trip per bundle.
        let ids: Vec<&str> = own.iter().map(|(_, h, _)| h.bundle_id.as_str()).collect();
        let already_sent = self.state.sent_ids(&ids).await?;
        let mut placed = Vec::with_capacity(own.len());
        let mut copies = Vec::new();
        for (file, header, digest) in own {
            self.log
                .bundle_event(Event::Queued, Some(&header), file.len, None)?;
            let name = bundle_file_name(&header);
            let copy = if already_sent.contains(&header.bundle_id) {
                // Sent before a crash that came before the move to sent/: do not send twice.
                info!(agent = %self.config.name, bundle = %header.bundle_id, "already sent; filing it");
                None
            } else {
                match dropfolder::place_file(&file.path, &gateway, &name) {
                    Ok(temp) => {
                        copies.push(temp.clone());
                        Some(temp)
                    }
                    Err(err) => {
                        // This bundle only: held back (and set aside after its budget); the
                        // rest of the batch goes on.
                        self.place_failed(
                            file,
                            &format!(
                                "cannot copy the bundle into the gateway folder {}: {err}",
                                gateway.display()
                            ),
                        )
                        .await?;
                        continue;
                    }
                }
            };
            placed.push(Placed {
                header,
                digest,
                bytes: file.len,
                source: file.path.clone(),
                name,
                copy,
                seen: file.clone(),
            });
        }
        if placed.is_empty() {
            self.log.sync()?;
            return Ok((0, rejected));
        }
        // Group commit: the copies' bytes are durable before any of them takes its final name,
        // so the device never sees a complete-looking name on incomplete bytes.
        if !copies.is_empty() {
            let dir = gateway.clone();
            tokio::task::spawn_blocking(move || dropfolder::sync_written(&dir, &copies))
                .await
                .map_err(|e| AgentError::Busy(format!("sync task failed: {e}")))?
                .map_err(|e| AgentError::io(&gateway, e))?;
        }
        let mut renamed = Vec::with_capacity(placed.len());
        for p in placed {
            if let Some(temp) = &p.copy
                && let Err(err) = fs::rename(temp, gateway.join(&p.name))
            {
                let _ = fs::remove_file(temp);
                self.place_failed(
                    &p.seen,
                    &format!("cannot rename the copy into place: {err}"),
                )
                .await?;
                continue;
            }
            renamed.push(p);
        }
        let placed = renamed;
        if placed.is_empty() {
            self.log.sync()?;
            return Ok((0, rejected));
        }
        if self.config.marker {
            match self.config.marker_style {
                MarkerStyle::Batch => {
                    // After the bundles' renames, so a device that copies in order delivers the
                    // manifest last; its sizes guard against one that does not.
                    let entries: Vec<(String, u64)> = placed
                        .iter()
                        .filter(|p| p.copy.is_some())
                        .map(|p| (p.name.clone(), p.bytes))
                        .collect();
                    if !entries.is_empty() {
                        self.write_manifest(&entries)?;
                    }
                }
                MarkerStyle::PerFile => {
                    dropfolder::fsync_dir(&gateway).map_err(|e| AgentError::io(&gateway, e))?;
                    for p in &placed {
                        let marker = gateway.join(format!("{}{MARKER_SUFFIX}", p.name));
                        // A new empty file; one already there (a resend) vouches just as well,
                        // and nothing is ever written through a name someone placed.
                        match crate::intake::create_new_file(&marker, 0o644) {
                            Ok(_) => {}
                            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
                            Err(err) => return Err(AgentError::io(&marker, err)),
                        }
                    }
                }
            }
        }
        dropfolder::fsync_dir(&gateway).map_err(|e| AgentError::io(&gateway, e))?;
        let sent_at = Utc::now();
        for p in &placed {
            self.log
                .bundle_event(Event::Sent, Some(&p.header), p.bytes, None)?;
        }
        self.log.sync()?;
        let rows: Vec<Sent> = placed
            .iter()
            .map(|p| Sent {
                bundle_id: p.header.bundle_id.clone(),
                channel: p.header.channel.to_string(),
                sequence: p.header.sequence,
                digest: p.digest.clone(),
                bytes: p.bytes,
                sent_at,
            })
            .collect();
        self.state.record_sent(&rows).await?;
        let sent_dir = self.config.sent.clone();
        for p in &placed {
            let target = dropfolder::unused_path(&sent_dir, &p.name);
            dropfolder::move_file(&p.source, &target).map_err(|e| AgentError::io(&p.source, e))?;
            info!(
                agent = %self.config.name,
                bundle = %p.header.bundle_id,
                sequence = p.header.sequence,
                bytes = p.bytes,
                "sent"
            );
        }
        dropfolder::fsync_dir(&sent_dir).map_err(|e| AgentError::io(&sent_dir, e))?;
        let outbox = self.config.outbox.clone();
        dropfolder::fsync_dir(&outbox).map_err(|e| AgentError::io(&outbox, e))?;
        self.last_activity = sent_at;
        Ok((placed.len(), rejected))
    }

    /// Writes the batch manifest: temporary name, data synced, renamed into place (the caller
    /// syncs the folder). A manifest that appeared with missing bytes after a power loss would
    /// leave a receiver that requires markers waiting for ever, hence the sync.
    fn write_manifest(&self, entries: &[(String, u64)]) -> Result<(), AgentError> {
        let gateway = &self.config.gateway;
        let name = format!(
            "{}{}{MARKER_SUFFIX}",
            dropfolder::MANIFEST_PREFIX,
            uuid::Uuid::now_v7()
        );
        let temp = gateway.join(dropfolder::temp_name(&name));
        crate::intake::write_new(&temp, &dropfolder::encode_manifest(entries))
            .map_err(|e| AgentError::io(&temp, e))?;
        fs::rename(&temp, gateway.join(&name)).map_err(|e| AgentError::io(&temp, e))?;
        Ok(())
    }

    /// Reads an outbox file's header and checks it belongs on this channel.
    fn read_own_bundle(&self, file: &Seen) -> Result<(Header, String), (String, String)> {
        let mut reader = File::open(&file.path)
            .map_err(|e| ("io".to_owned(), format!("cannot open the file: {e}")))?;
        let bundle = ow_bundle::read_header(&mut reader, &self.limits)
            .map_err(|e| (e.code().to_owned(), e.to_string()))?;
        let header = bundle.header().clone();
        if header.channel != self.config.channel || header.sender != self.zone {
            return Err((
                "wrong-channel".to_owned(),
                format!(
                    "the bundle is for channel {} from the {} zone, but this outbox sends on {} \
                     from the {} zone; the packer wrote it to the wrong outbox",
                    header.channel, header.sender, self.config.channel, self.zone
                ),
            ));
        }
        Ok((header, bundle.digest().to_string()))
    }

    /// Holds back an outbox file whose placing failed; after its retry budget, sets it aside in
    /// `rejected/` with the reason, so the channel goes on without it.
    async fn place_failed(&mut self, file: &Seen, message: &str) -> Result<(), AgentError> {
        let row = self
            .holds
            .fail(file, "cannot-place", message, std::time::Instant::now());
        warn!(agent = %self.config.name, file = %file.name, attempts = row.attempts, "{message}");
        if row.gave_up {
            self.holds.release(&file.name);
            self.state
                .release_held(&self.config.name, &file.name)
                .await?;
            let message = format!(
                "{message} (after {} attempts); the bundle was set aside. Fix the gateway \
                 folder, then move the file back into the outbox to send it",
                row.attempts
            );
            if let Err(err) = self.set_aside(file, "cannot-place", &message) {
                // Not even movable: stays held, visible in status.
                warn!(agent = %self.config.name, file = %file.name, "cannot set the file aside: {err}");
                let row =
                    self.holds
                        .fail(file, "cannot-place", &message, std::time::Instant::now());
                self.state.record_held(&row).await?;
            }
            return Ok(());
        }
        self.state.record_held(&row).await?;
        Ok(())
    }

    /// Moves an outbox file that is not a bundle for this channel to `rejected/`, with a reason.
    fn set_aside(&mut self, file: &Seen, code: &str, message: &str) -> Result<(), AgentError> {
        let dir = self.config.rejected.clone();
        let target = dropfolder::unused_path(&dir, &file.name);
        dropfolder::move_file(&file.path, &target).map_err(|e| AgentError::io(&file.path, e))?;
        let reason = serde_json::json!({
            "code": code,
            "message": message,
            "agent": self.config.name,
            "file": file.name,
            "set_aside_at": Utc::now().to_rfc3339(),
        });
        dropfolder::write_reason(&target, &reason).map_err(|e| AgentError::io(&target, e))?;
        warn!(agent = %self.config.name, file = %file.name, code, "outbox file set aside: {message}");
        self.log.bundle_event(
            Event::Rejected,
            None,
            file.len,
            Some(format!("{code}: {message}")),
        )?;
        Ok(())
    }

    /// Logs the stop and writes the final checkpoint.
    pub fn shutdown(mut self) -> Result<(), AgentError> {
        self.log.agent_event(Event::Stopped, None)?;
        self.log.close()?;
        Ok(())
    }

    /// Logs the start.
    pub fn log_start(&mut self) -> Result<(), AgentError> {
        self.log.agent_event(Event::Started, None)?;
        self.log.sync()?;
        Ok(())
    }
}
