//! Careful file moves for drop folders that a gateway device mirrors.
//!
//! A gateway device may copy a file while it is still being written, and may write on the far
//! side non-atomically. So a writer here always writes under a temporary name the device and the
//! receiving agent ignore (a leading `.`), makes the bytes durable, then renames the file into place
//! and makes the rename durable. A reader treats a file as complete only when a `.done` marker
//! stands beside it or its size and modification time have stopped changing (see [`SettleTracker`]).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

/// Suffix of the marker file a sender may write beside a complete bundle.
pub const MARKER_SUFFIX: &str = ".done";
/// Suffix of the reason file written beside a quarantined file.
pub const REASON_SUFFIX: &str = ".reason";
/// Suffix of bundle files.
pub const BUNDLE_SUFFIX: &str = ".owb";

/// True for names that are never a complete bundle: hidden or temporary files, markers, reasons.
pub fn is_ignored_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.ends_with(".partial")
        || name.ends_with(MARKER_SUFFIX)
        || name.ends_with(REASON_SUFFIX)
}

/// The temporary name a file is written under before it is renamed to `name`.
pub fn temp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Makes the directory entry changes in `dir` (creations, renames, removals) durable.
pub fn fsync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates `dir` and its parents if needed.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)
}

/// Copies `src` into `dest_dir/name`: temporary name → data synced → rename. The caller syncs the
/// directory once for a whole batch with [`fsync_dir`]. Returns the number of bytes copied.
pub fn copy_in(src: &Path, dest_dir: &Path, name: &str) -> io::Result<u64> {
    let temp = dest_dir.join(temp_name(name));
    let bytes = fs::copy(src, &temp)?;
    File::open(&temp)?.sync_data()?;
    fs::rename(&temp, dest_dir.join(name))?;
    Ok(bytes)
}

/// Makes every written byte on the file system holding `dir` durable with one call (`syncfs`).
///
/// This is the group commit of a batch: write all its files under temporary names, sync once,
/// then rename them all. One flush for a batch costs about what one `fsync` costs, where a sync
/// per file would cost one flush each.
pub fn sync_filesystem(dir: &Path) -> io::Result<()> {
    let handle = File::open(dir)?;
    rustix::fs::syncfs(&handle).map_err(io::Error::from)
}

/// Batches up to this many files are synced file by file; larger ones with one `syncfs`.
///
/// `syncfs` flushes everything dirty on the file system, including other programs' writes: on a
/// machine that is also writing gigabytes (a build, a backup) one call was seen to take tens of
/// seconds. A few `fsync`s cost only the batch's own data, so small batches, the usual case for
/// a zone's messages, keep a bounded latency; large batches keep the group commit.
pub const PER_FILE_SYNC_MAX: usize = 16;

/// Makes the data of the files written in `dir` durable: an `fsync` per file for small batches,
/// one `syncfs` for large ones.
pub fn sync_written(dir: &Path, files: &[PathBuf]) -> io::Result<()> {
    if files.len() <= PER_FILE_SYNC_MAX {
        for file in files {
            File::open(file)?.sync_data()?;
        }
        return Ok(());
    }
    sync_filesystem(dir)
}

/// Moves `src` to `dest`, durably: a rename when both are on one file system, otherwise a copy
/// under a temporary name, data sync, rename, then removal of the source. The caller syncs both
/// directories.
pub fn move_file(src: &Path, dest: &Path) -> io::Result<()> {
    match fs::rename(src, dest) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::CrossesDevices => {
            let dir = dest.parent().unwrap_or(Path::new("."));
            let name = dest
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad file name"))?;
            copy_in(src, dir, name)?;
            fs::remove_file(src)
        }
        Err(err) => Err(err),
    }
}

/// Writes `reason` as pretty JSON beside a set-aside or quarantined file (`<file>.reason`), durably,
/// and syncs the folder. Returns the reason file's path.
pub fn write_reason(file: &Path, reason: &serde_json::Value) -> io::Result<PathBuf> {
    let path = PathBuf::from(format!("{}{REASON_SUFFIX}", file.display()));
    let mut out = File::create(&path)?;
    out.write_all(format!("{reason:#}\n").as_bytes())?;
    out.sync_all()?;
    fsync_dir(file.parent().unwrap_or(Path::new(".")))?;
    Ok(path)
}

/// A path in `dir` for `name` that does not exist yet (adds `.1`, `.2`, … before clobbering).
pub fn unused_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    (1u32..)
        .map(|n| dir.join(format!("{name}.{n}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

/// One regular file seen in a folder.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Its file name.
    pub name: String,
    /// Its full path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub len: u64,
    /// Its modification time.
    pub modified: SystemTime,
}

/// Lists the regular files in `dir` that could be bundles (see [`is_ignored_name`]), by name.
pub fn list_candidates(dir: &Path) -> io::Result<Vec<Seen>> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let Ok(name) = entry.file_name().into_string() else {
            // Not UTF-8: no sender of ours writes such a name; the receiver reports it.
            found.push(Seen {
                name: entry.file_name().to_string_lossy().into_owned(),
                path: entry.path(),
                len: 0,
                modified: SystemTime::UNIX_EPOCH,
            });
            continue;
        };
        if is_ignored_name(&name) {
            continue;
        }
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            // Renamed or removed between listing and stat: simply not a candidate now.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        if !meta.is_file() {
            continue;
        }
        found.push(Seen {
            name,
            path: entry.path(),
            len: meta.len(),
            modified: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Whether a file in a gateway folder can be read as complete yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// A marker stands beside it, or it has not changed for the settle time.
    Ready {
        /// True when a `.done` marker vouched for it.
        marked: bool,
    },
    /// It may still be growing.
    Waiting,
}

#[derive(Debug, Clone, Copy)]
struct Observation {
    len: u64,
    modified: SystemTime,
    since: Instant,
}

/// Remembers when each file in a gateway folder last changed, so that a file that may still be
/// growing is never read as complete.
#[derive(Debug, Default)]
pub struct SettleTracker {
    seen: HashMap<String, Observation>,
}

impl SettleTracker {
    /// Notes the file's current size and time and says whether it is ready at `now`.
    pub fn observe(
        &mut self,
        file: &Seen,
        has_marker: bool,
        settle: Duration,
        require_marker: bool,
        now: Instant,
    ) -> Readiness {
        let entry = self.seen.entry(file.name.clone()).or_insert(Observation {
            len: file.len,
            modified: file.modified,
            since: now,
        });
        if entry.len != file.len || entry.modified != file.modified {
            *entry = Observation {
                len: file.len,
                modified: file.modified,
                since: now,
            };
        }
        if has_marker {
            return Readiness::Ready { marked: true };
        }
        if require_marker {
            return Readiness::Waiting;
        }
        if now.duration_since(entry.since) >= settle {
            Readiness::Ready { marked: false }
        } else {
            Readiness::Waiting
        }
    }

    /// How long the file has been unchanged, if it has been observed.
    pub fn unchanged_for(&self, name: &str, now: Instant) -> Option<Duration> {
        self.seen.get(name).map(|o| now.duration_since(o.since))
    }

    /// Forgets a file that was landed, quarantined or has disappeared.
    pub fn forget(&mut self, name: &str) {
        self.seen.remove(name);
    }

    /// Forgets every file not in `present`.
    pub fn retain_present(&mut self, present: &[Seen]) {
        let names: std::collections::HashSet<&str> =
            present.iter().map(|s| s.name.as_str()).collect();
        self.seen.retain(|name, _| names.contains(name.as_str()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(name: &str, len: u64, secs: u64) -> Seen {
        Seen {
            name: name.into(),
            path: PathBuf::from(name),
            len,
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_growing_file_is_never_ready_without_a_marker() {
        let mut tracker = SettleTracker::default();
        let settle = Duration::from_millis(500);
        let t0 = Instant::now();
        for step in 0..10u64 {
            let now = t0 + Duration::from_millis(400 * step);
            let r = tracker.observe(&seen("a.owb", 100 * step, step), false, settle, false, now);
            assert_eq!(r, Readiness::Waiting, "step {step}");
        }
        let later = t0 + Duration::from_millis(400 * 9 + 600);
        let r = tracker.observe(&seen("a.owb", 900, 9), false, settle, false, later);
        assert_eq!(r, Readiness::Ready { marked: false });
    }

    #[test]
    fn a_marker_makes_a_file_ready_at_once_and_is_required_when_configured() {
        let mut tracker = SettleTracker::default();
        let now = Instant::now();
        let file = seen("a.owb", 10, 1);
        assert_eq!(
            tracker.observe(&file, true, Duration::from_secs(60), false, now),
            Readiness::Ready { marked: true }
        );
        let later = now + Duration::from_secs(3600);
        assert_eq!(
            tracker.observe(&file, false, Duration::ZERO, true, later),
            Readiness::Waiting
        );
    }

    #[test]
    fn temporary_and_marker_names_are_ignored() {
        for name in [
            ".x.owb.tmp",
            "x.owb.done",
            "x.part",
            "x.owb.reason",
            ".hidden",
        ] {
            assert!(is_ignored_name(name), "{name}");
        }
        assert!(!is_ignored_name(
            "internet-to-extranet.000000000001.abc.owb"
        ));
    }

    #[test]
    fn copy_in_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.bin");
        fs::write(&src, b"hello").unwrap();
        let dest = dir.path().join("dest");
        ensure_dir(&dest).unwrap();
        assert_eq!(copy_in(&src, &dest, "b.owb").unwrap(), 5);
        let names: Vec<_> = fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec!["b.owb".to_string()]);
    }

    #[test]
    fn unused_path_never_clobbers() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("q"), b"1").unwrap();
        fs::write(dir.path().join("q.1"), b"2").unwrap();
        assert_eq!(unused_path(dir.path(), "q"), dir.path().join("q.2"));
    }
}
