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

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

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
    manifests: HashMap<String, ManifestState>,
    handled: Handled,
}

/// What the receiver knows about one batch manifest in the gateway folder.
struct ManifestState {
    len: u64,
    modified: SystemTime,
    /// When it was first seen with this size and time.
    since: Instant,
    /// Its entries, once it is complete.
    entries: Option<Vec<(String, u64)>>,
    /// Listed names not yet landed or quarantined by this process.
    pending: HashSet<String>,
}

/// Names of files this process landed or quarantined recently, so that a manifest read after its
/// files were judged (they settled first) is removed at once. Bounded: old names fall out.
#[derive(Default)]
struct Handled {
    names: HashSet<String>,
    order: VecDeque<String>,
}

impl Handled {
    const MAX: usize = 65_536;

    fn insert(&mut self, name: &str) {
        if self.names.insert(name.to_owned()) {
            self.order.push_back(name.to_owned());
            if self.order.len() > Self::MAX
                && let Some(old) = self.order.pop_front()
            {
                self.names.remove(&old);
            }
        }
    }
}

impl std::fmt::Debug for Receiver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver")
            .field("agent", &self.config.name)
            .finish_non_exhaustive()
    }
}

/// A file ready to be judged.
struct ReadyFile {
    file: Seen,
    /// A marker or a manifest vouched for it.
    marked: bool,
    /// A `<name>.done` marker stands beside it (removed once the file is handled).
    own_marker: bool,
    /// `(channel, sequence)` from its name (for landing in order).
    order: Option<(String, u64)>,
}

/// A file that passed verification, waiting for the batch's state checks.
struct Checked {
    header: Header,
    digest: String,
}

/// What the state database already holds for a batch, fetched in two queries.
struct Known {
    by_id: HashMap<String, crate::state::Landed>,
    by_sequence: HashMap<u64, crate::state::Landed>,
}

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
    marker: Option<PathBuf>,
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
            manifests: HashMap::new(),
            handled: Handled::default(),
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
        let listing = dropfolder::scan(&gateway).map_err(|e| AgentError::io(&gateway, e))?;
        let now = Instant::now();
        self.read_manifests(&listing.manifests, now);
        // Sizes vouched for by complete manifests: a listed file is ready only at exactly that
        // size, so a copy still in progress on the far side is never taken for complete.
        let mut vouched: HashMap<&str, u64> = HashMap::new();
        for state in self.manifests.values() {
            for (name, size) in state.entries.iter().flatten() {
                vouched.insert(name.as_str(), *size);
            }
        }
        self.tracker.retain_present(&listing.files);
        let mut pass = ReceivePass::default();
        let mut ready: Vec<ReadyFile> = Vec::new();
        for file in &listing.files {
            let own_marker = listing.markers.contains(&file.name);
            let marked = own_marker || vouched.get(file.name.as_str()) == Some(&file.len);
            let readiness = self.tracker.observe(
                file,
                marked,
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
                    ready.push(ReadyFile {
                        order: sequence_hint(&file.name),
                        file: file.clone(),
                        marked,
                        own_marker,
                    });
                }
            }
        }
        drop(vouched);
        ready.sort_by(|a, b| {
            a.order
                .cmp(&b.order)
                .then_with(|| a.file.name.cmp(&b.file.name))
        });
        for chunk in ready.chunks(self.config.batch) {
            let (landed, rejected, waiting) = self.land_batch(chunk).await?;
            pass.landed += landed;
            pass.rejected += rejected;
            pass.waiting += waiting;
        }
        self.tidy_manifests(&listing.files, now)?;
        Ok(pass)
    }

    /// Reads manifests that are new or changed since the last pass; forgets vanished ones.
    fn read_manifests(&mut self, seen: &[Seen], now: Instant) {
        let present: HashSet<&str> = seen.iter().map(|m| m.name.as_str()).collect();
        self.manifests
            .retain(|name, _| present.contains(name.as_str()));
        for m in seen {
            if let Some(state) = self.manifests.get(&m.name)
                && state.len == m.len
                && state.modified == m.modified
                && state.entries.is_some()
            {
                continue;
            }
            let entries = fs::read(&m.path)
                .ok()
                .and_then(|bytes| dropfolder::parse_manifest(&bytes));
            let pending = entries
                .iter()
                .flatten()
                .filter(|(name, _)| !self.handled.names.contains(name))
                .map(|(name, _)| name.clone())
                .collect();
            let since = match self.manifests.get(&m.name) {
                Some(state) if state.len == m.len && state.modified == m.modified => state.since,
                _ => now,
            };
            self.manifests.insert(
                m.name.clone(),
                ManifestState {
                    len: m.len,
                    modified: m.modified,
                    since,
                    entries,
                    pending,
                },
            );
        }
    }

    /// Removes manifests whose files were all judged; quarantines one that stayed incomplete
    /// past the incomplete timeout. A manifest whose files are all absent is removed only after
    /// that timeout too (after a restart this process no longer knows it judged them, and a
    /// device that copies out of order may deliver a manifest before its files).
    fn tidy_manifests(&mut self, files: &[Seen], now: Instant) -> Result<(), AgentError> {
        let present: HashSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
        let mut done = Vec::new();
        let mut broken = Vec::new();
        for (name, state) in &mut self.manifests {
            let old = now.duration_since(state.since) >= self.config.incomplete_timeout;
            if state.entries.is_none() {
                if old {
                    broken.push(name.clone());
                }
                continue;
            }
            state.pending.retain(|n| !self.handled.names.contains(n));
            if state.pending.is_empty()
                || (old && state.pending.iter().all(|n| !present.contains(n.as_str())))
            {
                done.push(name.clone());
            }
        }
        let gateway = self.config.gateway.clone();
        for name in done {
            self.manifests.remove(&name);
            remove_if_present(&gateway.join(&name));
        }
        for name in broken {
            if let Some(state) = self.manifests.remove(&name) {
                let file = Seen {
                    path: gateway.join(&name),
                    name,
                    len: state.len,
                    modified: state.modified,
                };
                let refusal = Refusal::new(
                    "malformed-manifest",
                    format!(
                        "the batch manifest is incomplete or malformed and has not changed for \
                         {}s; the gateway lost part of it. The bundles it lists land by their \
                         settle time or their own markers; if require_marker is set, ask the \
                         sender to resend them",
                        self.config.incomplete_timeout.as_secs()
                    ),
                );
                self.quarantine(&file, None, &refusal)?;
            }
        }
        Ok(())
    }

    async fn land_batch(
        &mut self,
        batch: &[ReadyFile],
    ) -> Result<(usize, usize, usize), AgentError> {
        let mut rejected = 0;
        let mut waiting = 0;
        let now = Instant::now();

        // Verification first (CPU only), then one lookup of what is already landed for the
        // whole batch, instead of three database round trips per bundle.
        let mut verified: Vec<(&ReadyFile, Checked)> = Vec::with_capacity(batch.len());
        for ready in batch {
            let file = &ready.file;
            match self.verify_file(file) {
                Err(CheckFailure::MaybeIncomplete) => {
                    let unchanged = self
                        .tracker
                        .unchanged_for(&file.name, now)
                        .unwrap_or_default();
                    if ready.marked || unchanged >= self.config.incomplete_timeout {
                        let refusal = Refusal::new(
                            "truncated",
                            format!(
                                "the file is shorter than its header says and has not grown for \
                                 {}s{}; the gateway lost part of it — ask the sender to resend",
                                unchanged.as_secs(),
                                if ready.marked {
                                    " although a marker or manifest vouched for it"
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
                Ok(checked) => verified.push((ready, checked)),
            }
        }
        let known = self.known_for(&verified).await?;
        let mut highest = self
            .state
            .highest_landed(&self.config.channel.to_string())
            .await?;
        let mut gaps: Vec<(u64, u64)> = Vec::new();
        let mut staged: Vec<Staged> = Vec::new();
        for (ready, checked) in verified {
            let file = &ready.file;
            let (header, digest) = match self.judge(checked, &staged, &known) {
                Ok(accepted) => accepted,
                Err((header, refusal)) => {
                    self.quarantine(file, Some(&header), &refusal)?;
                    rejected += 1;
                    continue;
                }
            };
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
            self.handled.insert(&file.name);
            if header.sequence > highest.saturating_add(1) {
                gaps.push((highest + 1, header.sequence - 1));
            }
            highest = highest.max(header.sequence);
            staged.push(Staged {
                digest,
                bytes: file.len,
                staged: staged_path,
                final_name,
                marker: ready.own_marker.then(|| marker_path(&file.path)),
                header,
            });
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
            if let Some(marker) = &s.marker {
                remove_if_present(marker);
            }
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

    /// What the state database holds for the bundle ids and sequences of a verified batch
    /// (and each sequence's predecessor, for the chain check): two queries in all.
    async fn known_for(&self, verified: &[(&ReadyFile, Checked)]) -> Result<Known, AgentError> {
        let channel = self.config.channel.to_string();
        let ids: Vec<&str> = verified
            .iter()
            .map(|(_, c)| c.header.bundle_id.as_str())
            .collect();
        let mut sequences: Vec<u64> = verified
            .iter()
            .flat_map(|(_, c)| [c.header.sequence, c.header.sequence.saturating_sub(1)])
            .filter(|s| *s > 0)
            .collect();
        sequences.sort_unstable();
        sequences.dedup();
        let (by_id, by_sequence) = if verified.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            (
                self.state.landed_by_ids(&ids).await?,
                self.state.landed_at_many(&channel, &sequences).await?,
            )
        };
        Ok(Known {
            by_id: by_id
                .into_iter()
                .map(|l| (l.bundle_id.clone(), l))
                .collect(),
            by_sequence: by_sequence.into_iter().map(|l| (l.sequence, l)).collect(),
        })
    }

    /// Verifies one ready file (the format library's checks, no state).
    fn verify_file(&self, file: &Seen) -> Result<Checked, CheckFailure> {
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
        match verified {
            Ok(v) => Ok(Checked {
                digest: v.digest().to_string(),
                header: v.header().clone(),
            }),
            Err(VerifyError::Truncated { .. }) => Err(CheckFailure::MaybeIncomplete),
            Err(err) => {
                // The header of a refused file is unverified; it is kept only to help the operator.
                let header = File::open(&file.path)
                    .ok()
                    .and_then(|mut f| ow_bundle::read_header(&mut f, &self.limits).ok())
                    .map(|b| Box::new(b.header().clone()));
                Err(CheckFailure::Refused(header, Refusal::from(&err)))
            }
        }
    }

    /// Checks a verified bundle against the channel's policy, the batch so far and what was
    /// already landed.
    fn judge(
        &self,
        checked: Checked,
        staged: &[Staged],
        known: &Known,
    ) -> Result<(Header, String), (Box<Header>, Refusal)> {
        let Checked { header, digest } = checked;
        match self.refusal_for(&header, staged, known) {
            None => Ok((header, digest)),
            Some(refusal) => Err((Box::new(header), refusal)),
        }
    }

    fn refusal_for(&self, header: &Header, staged: &[Staged], known: &Known) -> Option<Refusal> {
        if header.channel != self.config.channel {
            return Some(Refusal::new(
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
            return Some(Refusal::new(
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
        if header.sequence > 1 {
            let previous = match staged
                .iter()
                .find(|s| s.header.sequence + 1 == header.sequence)
            {
                Some(s) => Some(s.digest.as_str()),
                None => known
                    .by_sequence
                    .get(&(header.sequence - 1))
                    .map(|l| l.digest.as_str()),
            };
            if let Some(previous) = previous
                && header.prev_digest.map(|d| d.to_hex()).as_deref() != Some(previous)
            {
                return Some(Refusal::new(
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
        None
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
        self.handled.insert(&file.name);
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
