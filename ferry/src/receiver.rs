//! The receiving agent: gateway folder → verify → inbox, exactly once.
//!
//! A batch goes through these steps, and a crash between any two of them loses nothing and lands
//! nothing twice:
//! 1. a file whose marker exists, or whose size and time have settled, is verified in place;
//!    a bad file goes to quarantine with a `.reason` file beside it;
//! 2. checks against the state database: a bundle id or sequence already landed is a replay;
//! 3. the file is moved into the inbox under a hidden staging name (`.landing-…`) and synced;
//! 4. the log entries are synced, then the landed rows are committed in one transaction;
//! 5. each staged file is renamed to its final name and the inbox folder is synced.
//!
//! On start, staged files left by a crash are finished (their row exists) or handed back to the
//! gateway folder to be verified again (it does not). Nothing the zone can see appears in the inbox
//! before its row is committed, so a restart never lands a bundle twice.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use ow_bundle::{
    DiscardSink, EncryptionSecret, Header, Limits, TrustStore, VerifyError, VerifyOptions, Zone,
};
use ow_ferrylog::Event;
use tracing::{info, warn};

use crate::audit::AgentLog;
use crate::config::ReceiveConfig;
use crate::dropfolder::{self, MARKER_SUFFIX, Readiness, Seen, SettleTracker};
use crate::state::{FerryState, Landed};
use crate::{AgentError, bundle_file_name};

const STAGING_PREFIX: &str = ".landing-";

/// What one pass over the gateway folder did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReceivePass {
    /// Bundles landed in the inbox.
    pub landed: usize,
    /// Files moved to quarantine.
    pub rejected: usize,
    /// Files left waiting (still settling or possibly still growing).
    pub waiting: usize,
}

/// A receiving agent for one channel.
pub struct Receiver {
    config: ReceiveConfig,
    zone: Zone,
    state: FerryState,
    log: AgentLog,
    trust: Arc<TrustStore>,
    decryption: Arc<EncryptionSecret>,
    tracker: SettleTracker,
    limits: Limits,
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("agent", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// A file ready to be judged: what was seen, whether a marker vouched for it, and its
/// `(channel, sequence)` from its name (for landing in order).
type ReadyFile = (Seen, bool, Option<(String, u64)>);

/// A rejection: the stable code and the operator's message.
struct Refusal {
    code: String,
    message: String,
}

impl Refusal {
    fn new(code: &str, message: impl Into<String>) -> Self {
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

struct Staged {
    header: Header,
    digest: String,
    bytes: u64,
    staged: PathBuf,
    final_name: String,
    marker: PathBuf,
}

impl Receiver {
    /// Creates the agent, its folders, and finishes what a crash left half-done.
    pub async fn start(
        config: ReceiveConfig,
        zone: Zone,
        state: FerryState,
        log: AgentLog,
        trust: Arc<TrustStore>,
        decryption: Arc<EncryptionSecret>,
    ) -> Result<Self, AgentError> {
        for dir in [&config.gateway, &config.inbox, &config.quarantine] {
            dropfolder::ensure_dir(dir).map_err(|e| AgentError::io(dir, e))?;
        }
        let limits = Limits {
            max_payload_bytes: config.max_bundle_bytes,
            ..Limits::default()
        };
        let mut receiver = Self {
            config,
            zone,
            state,
            log,
            trust,
            decryption,
            tracker: SettleTracker::default(),
            limits,
        };
        receiver.recover().await?;
        Ok(receiver)
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Finishes staged files left in the inbox by a crash.
    async fn recover(&mut self) -> Result<(), AgentError> {
        let inbox = self.config.inbox.clone();
        let entries = fs::read_dir(&inbox).map_err(|e| AgentError::io(&inbox, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| AgentError::io(&inbox, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(final_name) = name.strip_prefix(STAGING_PREFIX) else {
                continue;
            };
            let staged = entry.path();
            let header = File::open(&staged)
                .ok()
                .and_then(|mut f| ow_bundle::read_header(&mut f, &self.limits).ok())
                .map(|b| b.header().clone());
            let landed = match &header {
                Some(h) => self.state.landed_by_id(&h.bundle_id).await?,
                None => None,
            };
            if landed.is_some() {
                fs::rename(&staged, inbox.join(final_name))
                    .map_err(|e| AgentError::io(&staged, e))?;
                info!(agent = %self.config.name, file = final_name, "finished landing after restart");
            } else {
                // Not committed: hand it back to be verified and landed like any other arrival.
                let back = self.config.gateway.join(final_name);
                dropfolder::move_file(&staged, &back).map_err(|e| AgentError::io(&staged, e))?;
                info!(agent = %self.config.name, file = final_name, "returned an unfinished landing to the gateway folder");
            }
        }
        dropfolder::fsync_dir(&inbox).map_err(|e| AgentError::io(&inbox, e))?;
        Ok(())
    }

    /// Looks at the gateway folder once and lands or quarantines what is ready, in batches.
    pub async fn poll(&mut self) -> Result<ReceivePass, AgentError> {
        let gateway = self.config.gateway.clone();
        let files =
            dropfolder::list_candidates(&gateway).map_err(|e| AgentError::io(&gateway, e))?;
        self.tracker.retain_present(&files);
        let now = Instant::now();
        let mut pass = ReceivePass::default();
        let mut ready: Vec<ReadyFile> = Vec::new();
        for file in files {
            let marker = marker_path(&file.path);
            let readiness = self.tracker.observe(
                &file,
                marker.exists(),
                self.config.settle,
                self.config.require_marker,
                now,
            );
            match readiness {
                Readiness::Waiting => pass.waiting += 1,
                Readiness::Ready { marked } => {
                    // Land in sequence order, so that a backlog does not show as gaps. The order
                    // comes from the file name senders give bundles; it is only a hint (the
                    // header decides everything), so a file named otherwise simply goes last.
                    let order = sequence_hint(&file.name);
                    ready.push((file, marked, order));
                }
            }
        }
        ready.sort_by(|a, b| a.2.cmp(&b.2).then_with(|| a.0.name.cmp(&b.0.name)));
        for chunk in ready.chunks(self.config.batch) {
            let (landed, rejected, waiting) = self.land_batch(chunk).await?;
            pass.landed += landed;
            pass.rejected += rejected;
            pass.waiting += waiting;
        }
        Ok(pass)
    }

    async fn land_batch(
        &mut self,
        batch: &[ReadyFile],
    ) -> Result<(usize, usize, usize), AgentError> {
        let mut staged: Vec<Staged> = Vec::new();
        let mut rejected = 0;
        let mut waiting = 0;
        let now = Instant::now();
        let mut highest = self
            .state
            .highest_landed(&self.config.channel.to_string())
            .await?;
        let mut gaps: Vec<(u64, u64)> = Vec::new();

        for (file, marked, _) in batch {
            let outcome = self.check(file, &staged).await;
            match outcome {
                Err(CheckFailure::MaybeIncomplete) => {
                    let unchanged = self
                        .tracker
                        .unchanged_for(&file.name, now)
                        .unwrap_or_default();
                    if *marked || unchanged >= self.config.incomplete_timeout {
                        let refusal = Refusal::new(
                            "truncated",
                            format!(
                                "the file is shorter than its header says and has not grown for \
                                 {}s{}; the gateway lost part of it — ask the sender to resend",
                                unchanged.as_secs(),
                                if *marked {
                                    " although its .done marker exists"
                                } else {
                                    ""
                                }
                            ),
                        );
                        self.quarantine(file, None, &refusal)?;
                        rejected += 1;
                    } else {
                        waiting += 1;
                    }
                }
                Err(CheckFailure::Refused(header, refusal)) => {
                    self.quarantine(file, header.as_deref(), &refusal)?;
                    rejected += 1;
                }
                Err(CheckFailure::Agent(err)) => return Err(err),
                Ok((header, digest)) => {
                    self.log
                        .bundle_event(Event::Received, Some(&header), file.len, None)?;
                    let final_name = bundle_file_name(&header);
                    let staged_path = self
                        .config
                        .inbox
                        .join(format!("{STAGING_PREFIX}{final_name}"));
                    dropfolder::move_file(&file.path, &staged_path)
                        .map_err(|e| AgentError::io(&file.path, e))?;
                    self.tracker.forget(&file.name);
                    if header.sequence > highest.saturating_add(1) {
                        gaps.push((highest + 1, header.sequence - 1));
                    }
                    highest = highest.max(header.sequence);
                    staged.push(Staged {
                        digest,
                        bytes: file.len,
                        staged: staged_path,
                        final_name,
                        marker: marker_path(&file.path),
                        header,
                    });
                }
            }
        }
        if staged.is_empty() {
            self.log.sync()?;
            return Ok((0, rejected, waiting));
        }
        let inbox = self.config.inbox.clone();
        // The device may have written without syncing: make the staged bytes durable, once for
        // the whole batch, before anything about them is committed.
        let staged_paths: Vec<PathBuf> = staged.iter().map(|s| s.staged.clone()).collect();
        dropfolder::sync_written(&inbox, &staged_paths).map_err(|e| AgentError::io(&inbox, e))?;
        dropfolder::fsync_dir(&inbox).map_err(|e| AgentError::io(&inbox, e))?;

        let landed_at = Utc::now();
        let channel = self.config.channel.to_string();
        for (from, to) in &gaps {
            warn!(agent = %self.config.name, from, to, "sequence gap: bundles missing on the channel");
            self.log
                .agent_event(Event::Gap, Some(format!("missing sequences {from}..={to}")))?;
        }
        for s in &staged {
            self.log
                .bundle_event(Event::Landed, Some(&s.header), s.bytes, None)?;
        }
        // The log is durable before the rows: a crash in between shows a landing twice in the log,
        // never a landing missing from it.
        self.log.sync()?;
        let rows: Vec<Landed> = staged
            .iter()
            .map(|s| Landed {
                channel: channel.clone(),
                sequence: s.header.sequence,
                bundle_id: s.header.bundle_id.clone(),
                digest: s.digest.clone(),
                file_name: s.final_name.clone(),
                bytes: s.bytes,
                landed_at,
            })
            .collect();
        self.state.record_landed(&rows).await?;
        for s in &staged {
            let target = inbox.join(&s.final_name);
            fs::rename(&s.staged, &target).map_err(|e| AgentError::io(&s.staged, e))?;
            remove_if_present(&s.marker);
            info!(
                agent = %self.config.name,
                bundle = %s.header.bundle_id,
                sequence = s.header.sequence,
                bytes = s.bytes,
                "landed"
            );
        }
        dropfolder::fsync_dir(&inbox).map_err(|e| AgentError::io(&inbox, e))?;
        let gateway = self.config.gateway.clone();
        dropfolder::fsync_dir(&gateway).map_err(|e| AgentError::io(&gateway, e))?;
        Ok((staged.len(), rejected, waiting))
    }

    /// Verifies one ready file and checks it against what was already landed.
    async fn check(
        &self,
        file: &Seen,
        staged: &[Staged],
    ) -> Result<(Header, String), CheckFailure> {
        if file.len > self.config.max_bundle_bytes {
            return Err(CheckFailure::Refused(
                None,
                Refusal::new(
                    "bundle-too-large",
                    format!(
                        "the file is {} bytes, over this channel's limit of {} bytes \
                         (receive.max_bundle_bytes); split the content or raise the limit",
                        file.len, self.config.max_bundle_bytes
                    ),
                ),
            ));
        }
        let verified = {
            let mut reader = File::open(&file.path)
                .map_err(|e| CheckFailure::Agent(AgentError::io(&file.path, e)))?;
            let options = VerifyOptions {
                trust: &self.trust,
                receiver: self.zone,
                decryption: Some(&self.decryption),
                now: Utc::now(),
                limits: self.limits,
                max_clock_skew: chrono::Duration::minutes(10),
            };
            ow_bundle::verify_to_sink(&mut reader, &options, &mut DiscardSink)
        };
        let verified = match verified {
            Ok(v) => v,
            Err(VerifyError::Truncated { .. }) => return Err(CheckFailure::MaybeIncomplete),
            Err(err) => {
                // The header of a refused file is unverified; it is kept only to help the operator.
                let header = File::open(&file.path)
                    .ok()
                    .and_then(|mut f| ow_bundle::read_header(&mut f, &self.limits).ok())
                    .map(|b| Box::new(b.header().clone()));
                return Err(CheckFailure::Refused(header, Refusal::from(&err)));
            }
        };
        let header = verified.header().clone();
        let digest = verified.digest().to_string();
        let refuse = |refusal: Refusal| {
            Err(CheckFailure::Refused(
                Some(Box::new(header.clone())),
                refusal,
            ))
        };

        if header.channel != self.config.channel {
            return refuse(Refusal::new(
                "wrong-channel",
                format!(
                    "the bundle is for channel {} but arrived in the gateway folder of {}; \
                     check the gateway device's folder mapping",
                    header.channel, self.config.channel
                ),
            ));
        }
        if !self.config.allowed_kinds.is_empty()
            && !self.config.allowed_kinds.iter().any(|k| k == &header.kind)
        {
            return refuse(Refusal::new(
                "kind-not-allowed",
                format!(
                    "bundle kind `{}` is not allowed on channel {} (allowed: {})",
                    header.kind,
                    self.config.channel,
                    self.config.allowed_kinds.join(", ")
                ),
            ));
        }
        let channel = self.config.channel.to_string();
        if staged
            .iter()
            .any(|s| s.header.bundle_id == header.bundle_id)
        {
            return refuse(Refusal::new(
                "duplicate",
                format!(
                    "bundle {} arrived twice in one batch; the first copy is being landed",
                    header.bundle_id
                ),
            ));
        }
        if staged.iter().any(|s| s.header.sequence == header.sequence) {
            return refuse(Refusal::new(
                "sequence-reused",
                format!(
                    "two different bundles carry sequence {} on {}; the first is being landed, \
                     this one is a replay or a sender fault",
                    header.sequence, channel
                ),
            ));
        }
        let by_id = self
            .state
            .landed_by_id(&header.bundle_id)
            .await
            .map_err(agent_err)?;
        if let Some(prior) = by_id {
            return refuse(Refusal::new(
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
        let at_seq = self
            .state
            .landed_at(&channel, header.sequence)
            .await
            .map_err(agent_err)?;
        if let Some(prior) = at_seq {
            return refuse(Refusal::new(
                "sequence-reused",
                format!(
                    "sequence {} on {} was already landed as bundle {}; a second bundle with the \
                     same sequence is a replay or a sender whose state was reset",
                    header.sequence, channel, prior.bundle_id
                ),
            ));
        }
        if header.sequence > 1 {
            let previous = match staged
                .iter()
                .find(|s| s.header.sequence + 1 == header.sequence)
            {
                Some(s) => Some(s.digest.clone()),
                None => self
                    .state
                    .landed_at(&channel, header.sequence - 1)
                    .await
                    .map_err(agent_err)?
                    .map(|l| l.digest),
            };
            if let Some(previous) = previous
                && header.prev_digest.map(|d| d.to_hex()).as_deref() != Some(previous.as_str())
            {
                return refuse(Refusal::new(
                    "chain-mismatch",
                    format!(
                        "bundle sequence {} does not chain to the bundle landed as sequence {} \
                         (previous digest differs); the sender's chain forked — stop and ask \
                         the sending zone's operator",
                        header.sequence,
                        header.sequence - 1
                    ),
                ));
            }
        }
        Ok((header, digest))
    }

    /// Moves a refused file to quarantine with its reason beside it, and logs it.
    fn quarantine(
        &mut self,
        file: &Seen,
        header: Option<&Header>,
        refusal: &Refusal,
    ) -> Result<(), AgentError> {
        let dir = self.config.quarantine.clone();
        let target = dropfolder::unused_path(&dir, &file.name);
        match dropfolder::move_file(&file.path, &target) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.tracker.forget(&file.name);
                return Ok(());
            }
            Err(err) => return Err(AgentError::io(&file.path, err)),
        }
        let reason = serde_json::json!({
            "code": refusal.code,
            "message": refusal.message,
            "agent": self.config.name,
            "channel": self.config.channel.to_string(),
            "file": file.name,
            "bytes": file.len,
            "quarantined_at": Utc::now().to_rfc3339(),
            "bundle_id": header.map(|h| h.bundle_id.clone()),
            "sequence": header.map(|h| h.sequence),
        });
        dropfolder::write_reason(&target, &reason).map_err(|e| AgentError::io(&target, e))?;
        remove_if_present(&marker_path(&file.path));
        self.tracker.forget(&file.name);
        warn!(
            agent = %self.config.name,
            file = %file.name,
            code = %refusal.code,
            "quarantined: {}", refusal.message
        );
        self.log.bundle_event(
            Event::Rejected,
            header,
            file.len,
            Some(format!(
                "{} [quarantined as {}]: {}",
                refusal.code,
                target
                    .file_name()
                    .map(|n| n.to_string_lossy())
                    .unwrap_or_default(),
                refusal.message
            )),
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

enum CheckFailure {
    /// The file may still be arriving: judge it again later.
    MaybeIncomplete,
    /// The file is refused.
    Refused(Option<Box<Header>>, Refusal),
    /// The agent itself failed (database, disk).
    Agent(AgentError),
}

fn agent_err(err: crate::state::StateError) -> CheckFailure {
    CheckFailure::Agent(AgentError::State(err))
}

/// `(channel, sequence)` from a name of the form `<channel>.<sequence>.<id>.owb`.
fn sequence_hint(name: &str) -> Option<(String, u64)> {
    let mut parts = name.split('.');
    let channel = parts.next()?;
    let sequence = parts.next()?.parse().ok()?;
    Some((channel.to_owned(), sequence))
}

fn marker_path(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}{MARKER_SUFFIX}", file.display()))
}

fn remove_if_present(path: &Path) {
    if let Err(err) = fs::remove_file(path)
        && err.kind() != std::io::ErrorKind::NotFound
    {
        warn!(path = %path.display(), "cannot remove marker: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_landing_order_hint_comes_from_canonical_names_only() {
        assert_eq!(
            sequence_hint("internet-to-extranet.000000000042.01a2-ff.owb"),
            Some(("internet-to-extranet".to_owned(), 42))
        );
        assert_eq!(sequence_hint("tampered.owb"), None);
        assert_eq!(sequence_hint("x.y.z"), None);
    }
}
