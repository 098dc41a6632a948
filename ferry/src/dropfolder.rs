//! Careful file moves for drop folders that a gateway device mirrors.
//!
//! A gateway device may copy a file while it is still being written, and may write on the far
//! side non-atomically. So a writer here always writes under a temporary name the device and the
//! receiving agent ignore (a leading `.`), makes the bytes durable, then renames the file into place
//! and makes the rename durable. A reader treats a file as complete only when a marker vouches for
//! it — a `<name>.done` file beside it, or a batch manifest (`batch-<id>.done`, see
//! [`encode_manifest`]) that lists its name with its exact size — or when its size and modification
//! time have stopped changing (see [`SettleTracker`]).
//!
//! Files are placed in a gateway folder as copies, never as hard links ([`place_file`]): a file in
//! a gateway folder has exactly one link, so no other name can change it after the receiver judged
//! it, and a receiver refuses any file with more. The ferry writes one manifest per batch instead
//! of a marker per file, which saves creating and deleting a file per bundle.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::intake::{EntryKind, Unfit};

/// Suffix of the marker file a sender may write beside a complete bundle.
pub const MARKER_SUFFIX: &str = ".done";
/// Suffix of the reason file written beside a quarantined file.
pub const REASON_SUFFIX: &str = ".reason";
/// Suffix of bundle files.
pub const BUNDLE_SUFFIX: &str = ".owb";

/// True for names that are never a complete bundle: hidden or temporary files, markers, reasons.
pub fn is_ignored_name(name: &str) -> bool {
    is_hidden_name(name) || name.ends_with(MARKER_SUFFIX) || name.ends_with(REASON_SUFFIX)
}

/// The temporary name a file is written under before it is renamed to `name`.
pub fn temp_name(name: &str) -> String {
    format!(".{name}.tmp")
}

/// Prefix of batch manifest names (`batch-<uuid>.done`).
pub const MANIFEST_PREFIX: &str = "batch-";

/// First line of a batch manifest.
const MANIFEST_HEADER: &str = "owb-batch-manifest v1";

/// True for the name of a batch manifest.
pub fn is_manifest_name(name: &str) -> bool {
    name.starts_with(MANIFEST_PREFIX) && name.ends_with(MARKER_SUFFIX)
}

/// The text of a batch manifest listing `entries` (file name, exact size in bytes).
///
/// ```text
/// owb-batch-manifest v1
/// <size> <name>            one line per file, sizes in decimal
/// end <count> <blake3>     BLAKE3 (hex) of every byte before this line
/// ```
///
/// A gateway device may copy the manifest non-atomically, so a reader accepts it only once the
/// `end` line is there and its count and hash match: a partial manifest is never taken for one.
pub fn encode_manifest(entries: &[(String, u64)]) -> Vec<u8> {
    let mut text = format!("{MANIFEST_HEADER}\n");
    for (name, size) in entries {
        text.push_str(&format!("{size} {name}\n"));
    }
    let hash = blake3::hash(text.as_bytes());
    text.push_str(&format!("end {} {}\n", entries.len(), hash.to_hex()));
    text.into_bytes()
}

/// Parses a batch manifest; `None` when it is incomplete (still being copied) or malformed.
pub fn parse_manifest(bytes: &[u8]) -> Option<Vec<(String, u64)>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let body = text.strip_suffix('\n')?;
    let (before, end_line) = match body.rfind('\n') {
        Some(i) => (&text[..=i], &body[i + 1..]),
        None => return None,
    };
    let mut end = end_line.split(' ');
    if end.next()? != "end" {
        return None;
    }
    let count: usize = end.next()?.parse().ok()?;
    let hash = end.next()?;
    if end.next().is_some() || blake3::hash(before.as_bytes()).to_hex().as_str() != hash {
        return None;
    }
    let mut lines = before.lines();
    if lines.next()? != MANIFEST_HEADER {
        return None;
    }
    let mut entries = Vec::new();
    for line in lines {
        let (size, name) = line.split_once(' ')?;
        // Plain names only: a manifest never vouches for anything outside its folder.
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\\']) {
            return None;
        }
        entries.push((name.to_owned(), size.parse().ok()?));
    }
    (entries.len() == count).then_some(entries)
}

/// Places a copy of `src` in `dir` under the temporary name of `name` and returns that path; the
/// caller makes the bytes durable before renaming it into place.
///
/// Always a copy into a new file (created with `O_CREAT | O_EXCL`, so never through a symlink or
/// into a file someone else holds open), never a hard link: a file in a gateway folder must have
/// exactly one link, or the receiver refuses it — another name for the same inode (the outbox's
/// or `sent/`'s) could change it after it was verified.
pub fn place_file(src: &Path, dir: &Path, name: &str) -> io::Result<PathBuf> {
    let temp = dir.join(temp_name(name));
    // Our own leftover from an interrupted batch (the bundle is still in the outbox), or
    // something placed under our temporary name: removed, never followed.
    crate::intake::remove_leftover(&temp)?;
    let mut source = File::open(src)?;
    let mode = std::os::unix::fs::MetadataExt::mode(&source.metadata()?) & 0o777;
    let mut out = crate::intake::create_new_file(&temp, mode)?;
    if let Err(err) = io::copy(&mut source, &mut out) {
        drop(out);
        let _ = fs::remove_file(&temp);
        return Err(err);
    }
    Ok(temp)
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
///
/// The JSON is written under the hidden temporary name first and renamed into place, so an
/// operator or a tool reading `<file>.reason` sees the whole reason or none, never a prefix.
pub fn write_reason(file: &Path, reason: &serde_json::Value) -> io::Result<PathBuf> {
    let path = PathBuf::from(format!("{}{REASON_SUFFIX}", file.display()));
    let dir = file.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad file name"))?;
    let temp = dir.join(temp_name(name));
    crate::intake::write_new(&temp, format!("{reason:#}\n").as_bytes())?;
    fs::rename(&temp, &path)?;
    fsync_dir(dir)?;
    Ok(path)
}

/// A path in `dir` for `name` that does not exist yet (adds `.1`, `.2`, … before clobbering).
pub fn unused_path(dir: &Path, name: &str) -> PathBuf {
    // `symlink_metadata`: a dangling symlink is an existing name too.
    let taken = |p: &Path| fs::symlink_metadata(p).is_ok();
    let first = dir.join(name);
    if !taken(&first) {
        return first;
    }
    (1u32..)
        .map(|n| dir.join(format!("{name}.{n}")))
        .find(|p| !taken(p))
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
    Ok(scan(dir)?.files)
}

/// One look at a gateway folder: the candidate files, the per-file markers and the batch manifests.
#[derive(Debug, Default)]
pub struct Listing {
    /// Regular files that could be bundles, by name.
    pub files: Vec<Seen>,
    /// Names that have a `<name>.done` marker (a regular file) beside them.
    pub markers: HashSet<String>,
    /// Batch manifests (`batch-<id>.done`, regular files).
    pub manifests: Vec<Seen>,
    /// Entries the ferry refuses whatever they hold, with the reason: symlinks, FIFOs, devices
    /// and sockets under any visible name, directories named like bundles (`*.owb`), and names
    /// that are not UTF-8. Their `len` is 0.
    pub unfit: Vec<(Seen, Unfit)>,
}

/// Largest batch manifest a receiver reads: a full batch of 4096 bundles with names of 255 bytes
/// takes about 1.1 MiB, so 4 MiB leaves room; anything larger is refused unread.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// Lists `dir` once: candidates (see [`is_ignored_name`]), markers, manifests and unfit entries.
/// One directory read instead of a lookup per file for its marker; entries are `lstat`ed, never
/// followed.
pub fn scan(dir: &Path) -> io::Result<Listing> {
    let mut listing = Listing::default();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let meta = match entry.metadata() {
            Ok(meta) => meta,
            // Renamed or removed between listing and stat: simply not there now.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let Ok(name) = entry.file_name().into_string() else {
            // Not UTF-8: no sender writes such a name, and it cannot be named in a log.
            listing.unfit.push((
                Seen {
                    name: entry.file_name().to_string_lossy().into_owned(),
                    path: entry.path(),
                    len: 0,
                    modified,
                },
                Unfit {
                    code: "bad-name",
                    message: "the file name is not valid UTF-8; no sender writes such a name"
                        .into(),
                },
            ));
            continue;
        };
        if is_hidden_name(&name) {
            continue;
        }
        let kind = EntryKind::of(&meta);
        let seen = Seen {
            name,
            path: entry.path(),
            len: if kind == EntryKind::Regular {
                meta.len()
            } else {
                0
            },
            modified,
        };
        if let Some(unfit) = kind.unfit() {
            // Sub-folders are not the ferry's business, except one named like a bundle.
            if kind != EntryKind::Directory || seen.name.ends_with(BUNDLE_SUFFIX) {
                listing.unfit.push((seen, unfit));
            }
            continue;
        }
        if is_manifest_name(&seen.name) {
            listing.manifests.push(seen);
            continue;
        }
        if let Some(marked) = seen.name.strip_suffix(MARKER_SUFFIX) {
            listing.markers.insert(marked.to_owned());
            continue;
        }
        if is_ignored_name(&seen.name) {
            continue;
        }
        listing.files.push(seen);
    }
    listing.files.sort_by(|a, b| a.name.cmp(&b.name));
    listing.manifests.sort_by(|a, b| a.name.cmp(&b.name));
    listing.unfit.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(listing)
}

/// Names nobody but their writer looks at: dot-files and temporary names.
fn is_hidden_name(name: &str) -> bool {
    name.starts_with('.')
        || name.ends_with(".tmp")
        || name.ends_with(".part")
        || name.ends_with(".partial")
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
    fn a_manifest_is_read_only_when_complete() {
        let entries = vec![("a.owb".to_owned(), 10u64), ("b.owb".to_owned(), 0)];
        let text = encode_manifest(&entries);
        assert_eq!(parse_manifest(&text), Some(entries.clone()));
        // Every strict prefix (a copy in progress) is refused, as is any flipped byte.
        for cut in 0..text.len() {
            assert_eq!(parse_manifest(&text[..cut]), None, "prefix {cut}");
        }
        for i in 0..text.len() {
            let mut bad = text.clone();
            bad[i] ^= 0x01;
            assert_eq!(parse_manifest(&bad), None, "flip {i}");
        }
        assert_eq!(parse_manifest(&encode_manifest(&[])), Some(Vec::new()));
        assert!(is_manifest_name("batch-0192.done"));
        assert!(is_ignored_name("batch-0192.done"));
    }

    #[test]
    fn placing_copies_without_following_links_and_the_scan_sees_markers_and_manifests() {
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src.owb");
        fs::write(&src, b"bundle").unwrap();
        let gw = dir.path().join("gw");
        ensure_dir(&gw).unwrap();
        // A symlink planted under the temporary name is replaced, never written through.
        let victim = dir.path().join("victim");
        fs::write(&victim, b"keep").unwrap();
        std::os::unix::fs::symlink(&victim, gw.join(temp_name("x.owb"))).unwrap();
        let temp = place_file(&src, &gw, "x.owb").unwrap();
        fs::rename(&temp, gw.join("x.owb")).unwrap();
        assert_eq!(fs::read(gw.join("x.owb")).unwrap(), b"bundle");
        assert_eq!(fs::read(&victim).unwrap(), b"keep");
        // A copy, never a link: the gateway file has one link whatever happens to the source.
        use std::os::unix::fs::MetadataExt;
        assert_eq!(fs::metadata(gw.join("x.owb")).unwrap().nlink(), 1);
        fs::write(gw.join("x.owb.done"), b"").unwrap();
        fs::write(gw.join("batch-1.done"), encode_manifest(&[])).unwrap();
        let listing = scan(&gw).unwrap();
        assert_eq!(listing.files.len(), 1);
        assert!(listing.markers.contains("x.owb"));
        assert_eq!(listing.manifests.len(), 1);
    }

    #[test]
    fn unused_path_never_clobbers() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("q"), b"1").unwrap();
        fs::write(dir.path().join("q.1"), b"2").unwrap();
        assert_eq!(unused_path(dir.path(), "q"), dir.path().join("q.2"));
    }
}
