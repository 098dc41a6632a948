//! What a receiving agent knows about the batch manifests and per-file markers in its gateway
//! folder (`docs/drop-folder.md`): which sizes complete manifests vouch for, which manifests are
//! done or broken, and which markers stand alone.
//!
//! A manifest is read only when it is new or changed (size or time), at most
//! [`MAX_MANIFEST_BYTES`](crate::dropfolder::MAX_MANIFEST_BYTES) of it, never through a symlink;
//! a manifest that does not parse is remembered as such until it changes, so a garbage file is not
//! read again on every pass.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant, SystemTime};

use crate::dropfolder::{self, MAX_MANIFEST_BYTES, Seen};
use crate::intake::{self, BoundedReadError};
use crate::policy::Refusal;

/// Names of files this process landed or quarantined recently, so that a manifest read after its
/// files were judged (they settled first) is removed at once. Bounded: old names fall out.
#[derive(Default)]
pub struct Handled {
    names: HashSet<String>,
    order: VecDeque<String>,
}

impl Handled {
    const MAX: usize = 65_536;

    /// Notes that `name` was landed or quarantined.
    pub fn insert(&mut self, name: &str) {
        if self.names.insert(name.to_owned()) {
            self.order.push_back(name.to_owned());
            if self.order.len() > Self::MAX
                && let Some(old) = self.order.pop_front()
            {
                self.names.remove(&old);
            }
        }
    }

    /// True when `name` was handled recently.
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }
}

/// What the receiver knows about one batch manifest.
struct ManifestState {
    len: u64,
    modified: SystemTime,
    /// When it was first seen with this size and time.
    since: Instant,
    /// Its entries, once it is complete; `None` while it does not parse (cached until it changes).
    entries: Option<Vec<(String, u64)>>,
    /// Listed names not yet landed or quarantined by this process.
    pending: HashSet<String>,
}

/// The manifests and lone markers of one gateway folder.
#[derive(Default)]
pub struct ManifestBook {
    states: HashMap<String, ManifestState>,
    /// Markers whose file is absent, and since when.
    lone_markers: HashMap<String, Instant>,
}

/// What tidying found.
#[derive(Default)]
pub struct Tidy {
    /// Manifests whose files were all judged: remove them.
    pub done: Vec<String>,
    /// Manifests that stayed incomplete or malformed past the timeout: quarantine them.
    pub broken: Vec<Seen>,
    /// Markers whose file has been absent past the timeout: remove them.
    pub lone_markers: Vec<String>,
}

impl ManifestBook {
    /// Reads manifests that are new or changed since the last pass and forgets vanished ones.
    /// Returns manifests refused unread (too large, or not a regular file by the time it was
    /// opened), to be quarantined.
    pub fn read(&mut self, seen: &[Seen], handled: &Handled, now: Instant) -> Vec<(Seen, Refusal)> {
        let present: HashSet<&str> = seen.iter().map(|m| m.name.as_str()).collect();
        self.states
            .retain(|name, _| present.contains(name.as_str()));
        let mut refused = Vec::new();
        for m in seen {
            if let Some(state) = self.states.get(&m.name)
                && state.len == m.len
                && state.modified == m.modified
            {
                // Unchanged: parsed already, or known not to parse (until it changes).
                continue;
            }
            let entries = match intake::read_bounded(&m.path, MAX_MANIFEST_BYTES) {
                Ok(bytes) => dropfolder::parse_manifest(&bytes),
                Err(BoundedReadError::TooLarge { len, cap }) => {
                    refused.push((
                        m.clone(),
                        Refusal::new(
                            "manifest-too-large",
                            format!(
                                "the batch manifest is {len} bytes, over the {cap}-byte limit of \
                                 any real batch; it was not read. Find what wrote it"
                            ),
                        ),
                    ));
                    continue;
                }
                Err(BoundedReadError::Unfit(unfit)) => {
                    refused.push((m.clone(), Refusal::new(unfit.code, unfit.message)));
                    continue;
                }
                // Gone, or unreadable for now: looked at again on the next pass.
                Err(BoundedReadError::Gone | BoundedReadError::Io(_)) => continue,
            };
            let pending = entries
                .iter()
                .flatten()
                .filter(|(name, _)| !handled.contains(name))
                .map(|(name, _)| name.clone())
                .collect();
            self.states.insert(
                m.name.clone(),
                ManifestState {
                    len: m.len,
                    modified: m.modified,
                    since: now,
                    entries,
                    pending,
                },
            );
        }
        refused
    }

    /// Sizes vouched for by complete manifests: a listed file is ready only at exactly that size.
    pub fn vouched(&self) -> HashMap<&str, u64> {
        let mut vouched = HashMap::new();
        for state in self.states.values() {
            for (name, size) in state.entries.iter().flatten() {
                vouched.insert(name.as_str(), *size);
            }
        }
        vouched
    }

    /// Forgets a manifest (removed or quarantined).
    pub fn forget(&mut self, name: &str) -> Option<(u64, SystemTime)> {
        self.states.remove(name).map(|s| (s.len, s.modified))
    }

    /// Finds manifests whose files were all judged, manifests that stayed incomplete past
    /// `timeout`, and per-file markers whose file stayed absent past `timeout`.
    ///
    /// A manifest whose files are all absent is done only after that timeout too (after a restart
    /// this process no longer knows it judged them, and a device that copies out of order may
    /// deliver a manifest before its files); the same holds for a marker.
    pub fn tidy(
        &mut self,
        gateway: &std::path::Path,
        files: &[Seen],
        markers: &HashSet<String>,
        handled: &Handled,
        now: Instant,
        timeout: Duration,
    ) -> Tidy {
        let present: HashSet<&str> = files.iter().map(|f| f.name.as_str()).collect();
        let mut tidy = Tidy::default();
        for (name, state) in &mut self.states {
            let old = now.duration_since(state.since) >= timeout;
            if state.entries.is_none() {
                if old {
                    tidy.broken.push(Seen {
                        name: name.clone(),
                        path: gateway.join(name),
                        len: state.len,
                        modified: state.modified,
                    });
                }
                continue;
            }
            state.pending.retain(|n| !handled.contains(n));
            if state.pending.is_empty()
                || (old && state.pending.iter().all(|n| !present.contains(n.as_str())))
            {
                tidy.done.push(name.clone());
            }
        }
        self.lone_markers
            .retain(|name, _| markers.contains(name) && !present.contains(name.as_str()));
        for name in markers {
            if present.contains(name.as_str()) {
                continue;
            }
            let since = *self.lone_markers.entry(name.clone()).or_insert(now);
            if now.duration_since(since) >= timeout {
                tidy.lone_markers.push(name.clone());
            }
        }
        for name in &tidy.lone_markers {
            self.lone_markers.remove(name);
        }
        tidy
    }
}
