//! The receiving agent: gateway folder → verify → inbox, exactly once, landing exactly the bytes
//! it verified.
//!
//! A batch goes through these steps, and a crash between any two of them loses nothing and lands
//! nothing twice:
//! 1. a file whose marker exists, or whose size and time have settled, is opened once and copied
//!    from that descriptor into a private file in the inbox (`.verifying-…`, see [`crate::intake`]);
//!    the private copy is verified — off the async thread — and a bad file goes to quarantine with
//!    a `.reason` file beside it;
//! 2. checks against the state database: a bundle id or sequence already landed is a replay, and
//!    the chain is checked against both neighbours (the bundle before and the bundle after);
//! 3. the private copy is renamed to a hidden staging name (`.landing-…`) and synced, and only then
//!    is the original removed from the gateway folder;
//! 4. the log entries are synced, then the landed rows are committed in one transaction;
//! 5. each staged file is renamed to its final name and the inbox folder is synced.
//!
//! Whatever happens to the gateway file after step 1 — renamed over, rewritten through a
//! descriptor opened earlier, changed through another link — cannot reach the inbox: only the
//! private copy is landed. Staged files left by a crash, or by a failed pass, are finished (their
//! row exists) or handed back to the gateway folder to be verified again (it does not), on start
//! and before the next pass. One file that cannot be read, moved or removed is held back with
//! backoff ([`crate::holds`]) and never stops the pass for the others.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use ow_bundle::{EncryptionSecret, Header, TrustStore, VerifyError, Zone};
use ow_ferrylog::Event;
use tracing::{info, warn};

use crate::audit::AgentLog;
use crate::chain::{self, Known, Pending};
use crate::config::ReceiveConfig;
use crate::dropfolder::{self, MARKER_SUFFIX, Readiness, Seen, SettleTracker};
use crate::holds::Holds;
use crate::intake::{self, FileId, IntakeError};
use crate::manifests::{Handled, ManifestBook};
use crate::policy::{ChannelPolicy, Refusal};
use crate::state::{FerryState, Landed};
use crate::{AgentError, bundle_file_name};

const STAGING_PREFIX: &str = ".landing-";
const VERIFY_PREFIX: &str = ".verifying-";

/// What one pass over the gateway folder did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ReceivePass {
    /// Bundles landed in the inbox.
    pub landed: usize,
    /// Files moved to quarantine.
    pub rejected: usize,
    /// Files left waiting (still settling or possibly still growing).
    pub waiting: usize,
    /// Files held back after a failure (see [`crate::holds`]).
    pub held: usize,
}

/// A hook called with the gateway path of a file that passed verification.
#[doc(hidden)]
pub type AfterVerifyHook = Box<dyn FnMut(&Path) + Send>;

/// A hook called before the log entries and rows of a batch are written.
#[doc(hidden)]
pub type BeforeCommitHook = Box<dyn FnMut() -> std::io::Result<()> + Send>;

/// Hooks into a receiving pass, for tests of the window between verifying and landing.
#[doc(hidden)]
#[derive(Default)]
pub struct ReceiverHooks {
    /// Called after a batch was verified, with the gateway path of each file that passed, before
    /// anything of the batch is landed.
    pub after_verify: Option<AfterVerifyHook>,
    /// Called once the staged files are durable and the originals removed, before the log entries
    /// and rows are written; an error fails the pass at that point.
    pub before_commit: Option<BeforeCommitHook>,
}

/// A receiving agent for one channel.
pub struct Receiver {
    config: ReceiveConfig,
    state: FerryState,
    log: AgentLog,
    trust: Arc<TrustStore>,
    decryption: Arc<EncryptionSecret>,
    policy: ChannelPolicy,
    tracker: SettleTracker,
    manifests: ManifestBook,
    handled: Handled,
    holds: Holds,
    /// A pass failed after staging: finish or hand back staged files before the next one.
    needs_recovery: bool,
    hooks: ReceiverHooks,
    /// The `no-traffic` alarm ([`crate::heartbeat::SilenceWatch`]) and the last landing seen.
    silence: Option<(
        crate::heartbeat::SilenceWatch,
        Option<chrono::DateTime<Utc>>,
    )>,
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

/// What taking one file in gave.
enum Outcome {
    /// The private copy verified.
    Verified {
        copy: PathBuf,
        original: FileId,
        header: Box<Header>,
        digest: String,
    },
    /// Refused (the header, unverified, only helps the operator).
    Refused {
        header: Option<Box<Header>>,
        refusal: Refusal,
    },
    /// Shorter than its header says: it may still be growing.
    Truncated,
    /// Its size changed since it was judged complete.
    Changed,
    /// It disappeared.
    Gone,
    /// Reading it failed.
    Failed(std::io::Error),
}

struct Staged {
    header: Header,
    digest: String,
    bytes: u64,
    staged: PathBuf,
    final_name: String,
    marker: Option<PathBuf>,
}

/// Everything needed to take files in off the async thread.
#[derive(Clone)]
struct Intake {
    policy: ChannelPolicy,
    trust: Arc<TrustStore>,
    decryption: Arc<EncryptionSecret>,
    inbox: PathBuf,
}

impl Intake {
    /// Opens `file` once, copies it privately into the inbox and verifies the copy.
    fn take_in(&self, file: &Seen) -> Outcome {
        if let Err(refusal) = self.policy.check_file_len(file.len) {
            return Outcome::Refused {
                header: None,
                refusal,
            };
        }
        let (source, original) = match intake::open_candidate(&file.path, file.len) {
            Ok(opened) => opened,
            Err(err) => return Self::failed(err),
        };
        let copy = self
            .inbox
            .join(format!("{VERIFY_PREFIX}{}", uuid::Uuid::now_v7()));
        let private = intake::private_copy(&source, &copy, file.len);
        drop(source);
        let mut private = match private {
            Ok(private) => private,
            Err(err) => return Self::failed(err),
        };
        let verified = self.policy.verify(
            &mut private,
            &self.trust,
            Some(&self.decryption),
            Utc::now(),
        );
        match verified {
            Ok(v) => Outcome::Verified {
                copy,
                original,
                digest: v.digest().to_string(),
                header: Box::new(v.header().clone()),
            },
            Err(err) => {
                // The header of a refused file is unverified; it is kept only to help the operator.
                let header = File::open(&copy)
                    .ok()
                    .and_then(|mut f| ow_bundle::read_header(&mut f, &self.policy.limits()).ok())
                    .map(|b| Box::new(b.header().clone()));
                remove_quietly(&copy);
                match err {
                    VerifyError::Truncated { .. } => Outcome::Truncated,
                    err => Outcome::Refused {
                        header,
                        refusal: Refusal::from(&err),
                    },
                }
            }
        }
    }

    fn failed(err: IntakeError) -> Outcome {
        match err {
            IntakeError::Unfit(unfit) => Outcome::Refused {
                header: None,
                refusal: Refusal::new(unfit.code, unfit.message),
            },
            IntakeError::Changed { .. } => Outcome::Changed,
            IntakeError::Gone => Outcome::Gone,
            IntakeError::Io(err) => Outcome::Failed(err),
        }
    }
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
        // Every held file is tried again after a restart.
        state.release_all_held(&config.name).await?;
        let mut receiver = Self {
            policy: ChannelPolicy::from_config(zone, &config),
            holds: Holds::new(&config.name),
            config,
            state,
            log,
            trust,
            decryption,
            tracker: SettleTracker::default(),
            manifests: ManifestBook::default(),
            handled: Handled::default(),
            needs_recovery: false,
            hooks: ReceiverHooks::default(),
            silence: None,
        };
        receiver.recover().await?;
        Ok(receiver)
    }

    /// The agent's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Installs hooks (tests only).
    #[doc(hidden)]
    pub fn set_hooks(&mut self, hooks: ReceiverHooks) {
        self.hooks = hooks;
    }

    /// Finishes staged files left in the inbox by a crash or a failed pass, and removes private
    /// copies that were never staged (their originals are still in the gateway folder).
    async fn recover(&mut self) -> Result<(), AgentError> {
        let inbox = self.config.inbox.clone();
        let entries = fs::read_dir(&inbox).map_err(|e| AgentError::io(&inbox, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| AgentError::io(&inbox, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(VERIFY_PREFIX) {
                remove_quietly(&entry.path());
                continue;
            }
            let Some(final_name) = name.strip_prefix(STAGING_PREFIX) else {
                continue;
            };
            let staged = entry.path();
            let header = File::open(&staged)
                .ok()
                .and_then(|mut f| ow_bundle::read_header(&mut f, &self.policy.limits()).ok())
                .map(|b| b.header().clone());
            let landed = match &header {
                Some(h) => self.state.landed_by_id(&h.bundle_id).await?,
                None => None,
            };
            if let (Some(header), Some(_)) = (&header, &landed)
                && crate::receipts::is_ferry_kind(&header.kind)
            {
                self.take_ferry_bundle(header, &staged).await?;
            } else if landed.is_some() {
                fs::rename(&staged, inbox.join(final_name))
                    .map_err(|e| AgentError::io(&staged, e))?;
                info!(agent = %self.config.name, file = final_name, "finished landing");
            } else {
                // Not committed: hand it back to be verified and landed like any other arrival —
                // unless the original is still there under that name (the pass stopped before
                // removing it), in which case the copy is simply dropped.
                let back = self.config.gateway.join(final_name);
                let returned = intake::rename_noreplace(&staged, &back)
                    .map_err(|e| AgentError::io(&staged, e))?;
                if returned {
                    info!(agent = %self.config.name, file = final_name, "returned an unfinished landing to the gateway folder");
                } else {
                    remove_quietly(&staged);
                }
            }
        }
        dropfolder::fsync_dir(&inbox).map_err(|e| AgentError::io(&inbox, e))?;
        let gateway = self.config.gateway.clone();
        dropfolder::fsync_dir(&gateway).map_err(|e| AgentError::io(&gateway, e))?;
        Ok(())
    }

    /// Looks at the gateway folder once and lands or quarantines what is ready, in batches.
    pub async fn poll(&mut self) -> Result<ReceivePass, AgentError> {
        if self.needs_recovery {
            self.recover().await?;
            self.needs_recovery = false;
        }
        let result = self.poll_once().await;
        if result.is_err() {
            self.needs_recovery = true;
        } else {
            self.watch_silence(Utc::now()).await?;
        }
        result
    }

    /// Logs the `no-traffic` alarm when nothing landed on the channel for `threshold`
    /// (`[oneway] silence_alarm_s`), once per silence.
    pub async fn set_silence_alarm(
        &mut self,
        threshold: std::time::Duration,
    ) -> Result<(), AgentError> {
        let last = self
            .state
            .last_landed_at(&self.config.channel.to_string())
            .await?;
        self.silence = Some((
            crate::heartbeat::SilenceWatch::new(threshold, Utc::now()),
            last,
        ));
        Ok(())
    }

    /// Checks the channel's silence as of `now`, logging the alarm when it is due.
    pub async fn watch_silence(&mut self, now: chrono::DateTime<Utc>) -> Result<(), AgentError> {
        let channel = self.config.channel.to_string();
        let Some((watch, last)) = &self.silence else {
            return Ok(());
        };
        if !watch.due(*last, now) {
            return Ok(());
        }
        // Bundles may have landed through another process (a disc's import): ask the database
        // before raising the alarm.
        let last = self.state.last_landed_at(&channel).await?;
        let Some((watch, seen)) = &mut self.silence else {
            return Ok(());
        };
        *seen = last;
        if let Some(alarm) = watch.check(&channel, last, now) {
            warn!(agent = %self.config.name, "{}", alarm.message);
            self.log.agent_event(
                Event::Alarm,
                Some(format!("{}: {}", alarm.code, alarm.message)),
            )?;
            self.log.sync()?;
        }
        Ok(())
    }

    async fn poll_once(&mut self) -> Result<ReceivePass, AgentError> {
        let gateway = self.config.gateway.clone();
        let listing = dropfolder::scan(&gateway).map_err(|e| AgentError::io(&gateway, e))?;
        let now = Instant::now();
        let mut pass = ReceivePass::default();

        // Held files that vanished are released.
        let present = listing
            .files
            .iter()
            .chain(listing.manifests.iter())
            .chain(listing.unfit.iter().map(|(s, _)| s))
            .map(|s| s.name.as_str());
        for gone in self.holds.retain_present(present) {
            self.state.release_held(&self.config.name, &gone).await?;
        }

        // Entries refused whatever they hold: symlinks, FIFOs, devices, … — at once.
        for (seen, unfit) in &listing.unfit {
            if self.holds.is_held(seen, now) {
                pass.held += 1;
                continue;
            }
            let refusal = Refusal::new(unfit.code, unfit.message.clone());
            if self.quarantine(seen, None, &refusal).await? {
                pass.rejected += 1;
            } else {
                pass.held += 1;
            }
        }

        for (manifest, refusal) in self.manifests.read(&listing.manifests, &self.handled, now) {
            if self.holds.is_held(&manifest, now) {
                continue;
            }
            self.manifests.forget(&manifest.name);
            if self.quarantine(&manifest, None, &refusal).await? {
                pass.rejected += 1;
            }
        }

        self.tracker.retain_present(&listing.files);
        let mut ready: Vec<ReadyFile> = Vec::new();
        {
            let vouched = self.manifests.vouched();
            for file in &listing.files {
                if self.holds.is_held(file, now) {
                    pass.held += 1;
                    continue;
                }
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
                    Readiness::Ready { marked } => ready.push(ReadyFile {
                        order: sequence_hint(&file.name),
                        file: file.clone(),
                        marked,
                        own_marker,
                    }),
                }
            }
        }
        sort_for_landing(&mut ready);
        for chunk in ready.chunks(self.config.batch) {
            let counts = self.land_batch(chunk).await?;
            pass.landed += counts.landed;
            pass.rejected += counts.rejected;
            pass.waiting += counts.waiting;
            pass.held += counts.held;
        }
        self.tidy(&listing.files, &listing.markers, now).await?;
        Ok(pass)
    }

    /// Removes manifests whose files were all judged and markers whose file stayed absent;
    /// quarantines a manifest that stayed incomplete past the incomplete timeout.
    async fn tidy(
        &mut self,
        files: &[Seen],
        markers: &HashSet<String>,
        now: Instant,
    ) -> Result<(), AgentError> {
        let gateway = self.config.gateway.clone();
        let tidy = self.manifests.tidy(
            &gateway,
            files,
            markers,
            &self.handled,
            now,
            self.config.incomplete_timeout,
        );
        for name in tidy.done {
            self.manifests.forget(&name);
            remove_if_present(&gateway.join(&name));
        }
        for name in tidy.lone_markers {
            info!(agent = %self.config.name, marker = %name, "removed a marker whose file never came");
            remove_if_present(&gateway.join(format!("{name}{MARKER_SUFFIX}")));
        }
        for manifest in tidy.broken {
            self.manifests.forget(&manifest.name);
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
            self.quarantine(&manifest, None, &refusal).await?;
        }
        Ok(())
    }

    async fn land_batch(&mut self, batch: &[ReadyFile]) -> Result<ReceivePass, AgentError> {
        let mut counts = ReceivePass::default();
        let now = Instant::now();

        // Open, copy and verify (file I/O and CPU) on a blocking thread; then one lookup of what
        // is already landed for the whole batch, instead of round trips per bundle.
        let intake = Intake {
            policy: self.policy.clone(),
            trust: Arc::clone(&self.trust),
            decryption: Arc::clone(&self.decryption),
            inbox: self.config.inbox.clone(),
        };
        let files: Vec<Seen> = batch.iter().map(|r| r.file.clone()).collect();
        let outcomes = tokio::task::spawn_blocking(move || {
            files.iter().map(|f| intake.take_in(f)).collect::<Vec<_>>()
        })
        .await
        .map_err(|e| AgentError::Busy(format!("verification task failed: {e}")))?;

        let mut verified: Vec<(&ReadyFile, Outcome)> = Vec::with_capacity(batch.len());
        for (ready, outcome) in batch.iter().zip(outcomes) {
            let file = &ready.file;
            match outcome {
                Outcome::Verified { .. } => {
                    if let Some(hook) = self.hooks.after_verify.as_mut() {
                        hook(&file.path);
                    }
                    verified.push((ready, outcome));
                }
                Outcome::Gone => self.tracker.forget(&file.name),
                Outcome::Changed => counts.waiting += 1,
                Outcome::Truncated => {
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
                        self.count_quarantine(file, None, &refusal, &mut counts)
                            .await?;
                    } else {
                        counts.waiting += 1;
                    }
                }
                Outcome::Refused { header, refusal } => {
                    self.count_quarantine(file, header.as_deref(), &refusal, &mut counts)
                        .await?;
                }
                Outcome::Failed(err) => {
                    self.hold(
                        file,
                        "io-error",
                        &format!(
                            "cannot read the file: {err}; it is retried with backoff. Check the \
                             gateway device and the file's permissions"
                        ),
                    )
                    .await?;
                    counts.held += 1;
                }
            }
        }

        let known = self.known_for(&verified).await?;
        let mut highest = self
            .state
            .highest_landed(&self.config.channel.to_string())
            .await?;
        let mut gaps: Vec<(u64, u64)> = Vec::new();
        let mut staged: Vec<Staged> = Vec::new();
        let mut originals: Vec<(&ReadyFile, FileId)> = Vec::new();
        for (ready, outcome) in verified {
            let Outcome::Verified {
                copy,
                original,
                header,
                digest,
            } = outcome
            else {
                continue;
            };
            let header = *header;
            let file = &ready.file;
            if let Some(refusal) = self.refusal_for(&header, &digest, &staged, &known) {
                remove_quietly(&copy);
                self.count_quarantine(file, Some(&header), &refusal, &mut counts)
                    .await?;
                continue;
            }
            let final_name = bundle_file_name(&header);
            let staged_path = self
                .config
                .inbox
                .join(format!("{STAGING_PREFIX}{final_name}"));
            if let Err(err) = fs::rename(&copy, &staged_path) {
                remove_quietly(&copy);
                self.hold(
                    file,
                    "io-error",
                    &format!("cannot stage the verified copy in the inbox: {err}"),
                )
                .await?;
                counts.held += 1;
                continue;
            }
            self.log
                .bundle_event(Event::Received, Some(&header), file.len, None)?;
            if header.sequence > highest.saturating_add(1) {
                gaps.push((highest + 1, header.sequence - 1));
            }
            highest = highest.max(header.sequence);
            originals.push((ready, original));
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
            return Ok(counts);
        }
        let inbox = self.config.inbox.clone();
        let gateway = self.config.gateway.clone();
        // The private copies are durable before their originals go, so a power loss leaves one or
        // the other; once for the whole batch.
        let staged_paths: Vec<PathBuf> = staged.iter().map(|s| s.staged.clone()).collect();
        {
            let dir = inbox.clone();
            tokio::task::spawn_blocking(move || {
                dropfolder::sync_written(&dir, &staged_paths)?;
                dropfolder::fsync_dir(&dir)
            })
            .await
            .map_err(|e| AgentError::Busy(format!("sync task failed: {e}")))?
            .map_err(|e| AgentError::io(&inbox, e))?;
        }
        for (ready, original) in originals {
            let file = &ready.file;
            self.tracker.forget(&file.name);
            self.handled.insert(&file.name);
            if self.holds.release(&file.name) {
                self.state
                    .release_held(&self.config.name, &file.name)
                    .await?;
            }
            match intake::remove_if_same(&file.path, original) {
                Ok(true) => {}
                // Replaced since it was copied: the newcomer is judged on its own next time.
                Ok(false) => {
                    warn!(agent = %self.config.name, file = %file.name, "the gateway file was replaced after it was copied; the copy lands, the newcomer is judged separately")
                }
                Err(err) => {
                    // The verified copy still lands; the original stays and is refused as a
                    // duplicate when it can be moved.
                    self.hold(
                        file,
                        "cannot-remove",
                        &format!(
                            "the bundle landed from its verified copy, but the original cannot \
                             be removed from the gateway folder: {err}; remove it by hand"
                        ),
                    )
                    .await?;
                }
            }
        }
        dropfolder::fsync_dir(&gateway).map_err(|e| AgentError::io(&gateway, e))?;
        if let Some(hook) = self.hooks.before_commit.as_mut() {
            hook().map_err(|e| AgentError::io(&inbox, e))?;
        }

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
                prev_digest: s.header.prev_digest.map(|d| d.to_hex()),
                file_name: s.final_name.clone(),
                bytes: s.bytes,
                landed_at,
            })
            .collect();
        self.state.record_landed(&rows).await?;
        for s in &staged {
            if crate::receipts::is_ferry_kind(&s.header.kind) {
                // The ferry's own (heartbeat, receipt): consumed here, never handed to the zone.
                self.take_ferry_bundle(&s.header, &s.staged).await?;
                if let Some(marker) = &s.marker {
                    remove_if_present(marker);
                }
                continue;
            }
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
        if let Some((_, last)) = &mut self.silence {
            *last = Some(landed_at);
        }
        counts.landed = staged.len();
        Ok(counts)
    }

    /// What the state database holds for the bundle ids and sequences of a verified batch (and
    /// each sequence's neighbours, for the chain checks in both directions): two queries in all.
    async fn known_for(&self, verified: &[(&ReadyFile, Outcome)]) -> Result<Known, AgentError> {
        let headers: Vec<&Header> = verified
            .iter()
            .filter_map(|(_, o)| match o {
                Outcome::Verified { header, .. } => Some(header.as_ref()),
                _ => None,
            })
            .collect();
        if headers.is_empty() {
            return Ok(Known {
                by_id: HashMap::new(),
                by_sequence: HashMap::new(),
            });
        }
        let channel = self.config.channel.to_string();
        let ids: Vec<&str> = headers.iter().map(|h| h.bundle_id.as_str()).collect();
        let mut sequences: Vec<u64> = headers
            .iter()
            .flat_map(|h| {
                [
                    Some(h.sequence),
                    h.sequence.checked_sub(1),
                    h.sequence.checked_add(1),
                ]
            })
            .flatten()
            .filter(|s| *s > 0)
            .collect();
        sequences.sort_unstable();
        sequences.dedup();
        let by_id = self.state.landed_by_ids(&ids).await?;
        let by_sequence = self.state.landed_at_many(&channel, &sequences).await?;
        Ok(Known {
            by_id: by_id
                .into_iter()
                .map(|l| (l.bundle_id.clone(), l))
                .collect(),
            by_sequence: by_sequence.into_iter().map(|l| (l.sequence, l)).collect(),
        })
    }

    /// Checks a verified bundle against the channel's policy, the batch so far and what was
    /// already landed.
    fn refusal_for(
        &self,
        header: &Header,
        digest: &str,
        staged: &[Staged],
        known: &Known,
    ) -> Option<Refusal> {
        if let Err(refusal) = self.policy.check_header(header) {
            return Some(refusal);
        }
        let pending: Vec<Pending<'_>> = staged
            .iter()
            .map(|s| Pending {
                header: &s.header,
                digest: &s.digest,
            })
            .collect();
        chain::state_refusal(
            header,
            digest,
            &pending,
            known,
            &self.config.channel.to_string(),
        )
    }

    /// Quarantines and counts: a refusal the file could not be moved for counts as held.
    async fn count_quarantine(
        &mut self,
        file: &Seen,
        header: Option<&Header>,
        refusal: &Refusal,
        counts: &mut ReceivePass,
    ) -> Result<(), AgentError> {
        if self.quarantine(file, header, refusal).await? {
            counts.rejected += 1;
        } else {
            counts.held += 1;
        }
        Ok(())
    }

    /// Moves a refused entry (the entry itself: a symlink or a FIFO is moved, never followed or
    /// opened) to quarantine with its reason beside it, and logs it. Returns false when it could
    /// not be moved: the entry is then held back with backoff, and the pass goes on.
    async fn quarantine(
        &mut self,
        file: &Seen,
        header: Option<&Header>,
        refusal: &Refusal,
    ) -> Result<bool, AgentError> {
        let dir = self.config.quarantine.clone();
        let target = dropfolder::unused_path(&dir, &file.name);
        match intake::move_entry(&file.path, &target) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.tracker.forget(&file.name);
                return Ok(true);
            }
            Err(err) => {
                let message = format!(
                    "refused [{}] {}; but it cannot be moved to quarantine ({err}), so it stays in \
                     the gateway folder and is retried with backoff — remove it by hand",
                    refusal.code, refusal.message
                );
                self.log.bundle_event(
                    Event::Rejected,
                    header,
                    file.len,
                    Some(format!(
                        "{} [held in the gateway folder]: {message}",
                        refusal.code
                    )),
                )?;
                self.hold(file, "cannot-quarantine", &message).await?;
                return Ok(false);
            }
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
        if self.holds.release(&file.name) {
            self.state
                .release_held(&self.config.name, &file.name)
                .await?;
        }
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
        Ok(true)
    }

    /// Holds a file back after a failure and records it for `status`.
    async fn hold(&mut self, file: &Seen, code: &str, message: &str) -> Result<(), AgentError> {
        let row = self.holds.fail(file, code, message, Instant::now());
        warn!(
            agent = %self.config.name,
            file = %file.name,
            code,
            attempts = row.attempts,
            gave_up = row.gave_up,
            "file held back: {message}"
        );
        self.state.record_held(&row).await?;
        Ok(())
    }

    /// Consumes a landed heartbeat or receipt ([`crate::receipts::take_landed`]).
    async fn take_ferry_bundle(&mut self, header: &Header, file: &Path) -> Result<(), AgentError> {
        let intake = crate::receipts::FerryIntake {
            state: &self.state,
            trust: &self.trust,
            decryption: &self.decryption,
            quarantine: &self.config.quarantine,
        };
        crate::receipts::take_landed(&intake, &mut self.log, header, file).await
    }

    /// Logs the stop and writes the final checkpoint.
    pub fn shutdown(mut self) -> Result<(), AgentError> {
        self.log.agent_event(Event::Stopped, None)?;
        self.log.close()?;
        Ok(())
    }

    /// Gives the agent's ferry log back without logging a stop (offline media log the import
    /// of a disc after its bundles landed, in the same log; [`crate::media`]).
    pub(crate) fn into_log(self) -> AgentLog {
        self.log
    }

    /// Logs the start.
    pub fn log_start(&mut self) -> Result<(), AgentError> {
        self.log.agent_event(Event::Started, None)?;
        self.log.sync()?;
        Ok(())
    }
}

/// Land in sequence order, so that a backlog does not show as gaps. The order comes from the file
/// name senders give bundles; it is only a hint (the header decides everything), so a file named
/// otherwise simply goes last.
fn sort_for_landing(ready: &mut [ReadyFile]) {
    ready.sort_by(|a, b| {
        (a.order.is_none(), &a.order, &a.file.name).cmp(&(
            b.order.is_none(),
            &b.order,
            &b.file.name,
        ))
    });
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
        warn!(path = %path.display(), "cannot remove: {err}");
    }
}

fn remove_quietly(path: &Path) {
    let _ = fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_landing_order_hint_comes_from_canonical_names_only() {
        assert_eq!(
            sequence_hint("internet-to-extranet.00000000000000000042.01a2-ff.owb"),
            Some(("internet-to-extranet".to_owned(), 42))
        );
        assert_eq!(sequence_hint("tampered.owb"), None);
        assert_eq!(sequence_hint("x.y.z"), None);
    }

    #[test]
    fn files_without_a_canonical_name_land_last() {
        let ready = |name: &str| ReadyFile {
            file: Seen {
                name: name.into(),
                path: PathBuf::from(name),
                len: 0,
                modified: std::time::SystemTime::UNIX_EPOCH,
            },
            marked: false,
            own_marker: false,
            order: sequence_hint(name),
        };
        let mut batch = vec![
            ready("zz.owb"),
            ready("internet-to-extranet.00000000000000000002.b.owb"),
            ready("aa.owb"),
            ready("internet-to-extranet.00000000000000000001.a.owb"),
        ];
        sort_for_landing(&mut batch);
        let names: Vec<&str> = batch.iter().map(|r| r.file.name.as_str()).collect();
        assert_eq!(
            names,
            vec![
                "internet-to-extranet.00000000000000000001.a.owb",
                "internet-to-extranet.00000000000000000002.b.owb",
                "aa.owb",
                "zz.owb"
            ]
        );
    }
}
