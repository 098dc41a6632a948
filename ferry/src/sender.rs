//! The sending agent: outbox → gateway folder → `sent/`.
//!
//! For each batch: every bundle is copied into the gateway folder under a hidden temporary name the
//! device ignores, its data synced, and renamed into place; the folder is synced; markers are
//! written where configured; the log entries are synced; the sent rows are committed; and only
//! then is each outbox file moved to `sent/`. A crash anywhere leaves the bundle in the outbox, so
//! it is sent again on restart — the receiver lands it once and refuses the second copy as a
//! duplicate. Nothing is ever lost; at worst a bundle crosses twice and lands once.

use std::fs::{self, File};
use std::path::PathBuf;

use chrono::Utc;
use ow_bundle::{Header, Limits, Zone};
use ow_ferrylog::Event;
use tracing::{info, warn};

use crate::audit::AgentLog;
use crate::config::SendConfig;
use crate::dropfolder::{self, MARKER_SUFFIX, Seen};
use crate::state::{FerryState, Sent};
use crate::{AgentError, bundle_file_name};

/// What one pass over the outbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SendPass {
    /// Bundles placed in the gateway folder.
    pub sent: usize,
    /// Outbox files set aside as not valid for this channel.
    pub rejected: usize,
}

/// A sending agent for one channel.
pub struct Sender {
    config: SendConfig,
    zone: Zone,
    state: FerryState,
    log: AgentLog,
    limits: Limits,
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
            if name.starts_with('.') && name.ends_with(".owb.tmp") {
                let _ = fs::remove_file(entry.path());
            }
        }
        crate::pack::recover_outbox(&config.outbox, &state).await?;
        Ok(Self {
            config,
            zone,
            state,
            log,
            limits: Limits::default(),
        })
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Sends everything waiting in the outbox, in batches.
    pub async fn poll(&mut self) -> Result<SendPass, AgentError> {
        let outbox = self.config.outbox.clone();
        let files = dropfolder::list_candidates(&outbox).map_err(|e| AgentError::io(&outbox, e))?;
        let mut pass = SendPass::default();
        for chunk in files.chunks(self.config.batch) {
            let (sent, rejected) = self.send_batch(chunk).await?;
            pass.sent += sent;
            pass.rejected += rejected;
        }
        Ok(pass)
    }

    async fn send_batch(&mut self, batch: &[Seen]) -> Result<(usize, usize), AgentError> {
        let gateway = self.config.gateway.clone();
        let mut placed = Vec::new();
        let mut rejected = 0;
        for file in batch {
            let header = match self.read_own_bundle(file) {
                Ok(h) => h,
                Err((code, message)) => {
                    self.set_aside(file, &code, &message)?;
                    rejected += 1;
                    continue;
                }
            };
            let (header, digest) = header;
            self.log
                .bundle_event(Event::Queued, Some(&header), file.len, None)?;
            let name = bundle_file_name(&header);
            let copy = if self.state.sent_by_id(&header.bundle_id).await?.is_none() {
                let temp = gateway.join(dropfolder::temp_name(&name));
                fs::copy(&file.path, &temp).map_err(|e| AgentError::io(&file.path, e))?;
                Some(temp)
            } else {
                // Sent before a crash that came before the move to sent/: do not send twice.
                info!(agent = %self.config.name, bundle = %header.bundle_id, "already sent; filing it");
                None
            };
            placed.push(Placed {
                header,
                digest,
                bytes: file.len,
                source: file.path.clone(),
                name,
                copy,
            });
        }
        if placed.is_empty() {
            self.log.sync()?;
            return Ok((0, rejected));
        }
        // Group commit: the copies' bytes are durable before any of them takes its final name,
        // so the device never sees a complete-looking name on incomplete bytes.
        let copies: Vec<PathBuf> = placed.iter().filter_map(|p| p.copy.clone()).collect();
        dropfolder::sync_written(&gateway, &copies).map_err(|e| AgentError::io(&gateway, e))?;
        for p in &placed {
            if let Some(temp) = &p.copy {
                fs::rename(temp, gateway.join(&p.name)).map_err(|e| AgentError::io(temp, e))?;
            }
        }
        dropfolder::fsync_dir(&gateway).map_err(|e| AgentError::io(&gateway, e))?;
        if self.config.marker {
            for p in &placed {
                let marker = gateway.join(format!("{}{MARKER_SUFFIX}", p.name));
                File::create(&marker).map_err(|e| AgentError::io(&marker, e))?;
            }
            dropfolder::fsync_dir(&gateway).map_err(|e| AgentError::io(&gateway, e))?;
        }
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
        Ok((placed.len(), rejected))
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
