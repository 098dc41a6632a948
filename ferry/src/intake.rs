//! Taking a file out of a gateway folder so that what lands is exactly what was verified.
//!
//! A gateway folder is written by a device, or by whoever can reach the device: a file there may be
//! replaced (renamed over), rewritten through a descriptor opened earlier, or reached through a
//! hard link kept elsewhere, at any moment — also after it was verified. So the receiver never
//! verifies a path and then moves whatever is at that path. Instead it:
//!
//! 1. opens each candidate **once**, with `O_NOFOLLOW | O_NONBLOCK` (a symlink is refused, a FIFO
//!    never blocks the agent), and `fstat`s the descriptor: a regular file, one link, exactly the
//!    size it was judged complete at ([`open_candidate`]);
//! 2. copies the bytes from that descriptor into a new private file that only the agent writes
//!    ([`private_copy`]), and verifies the private copy;
//! 3. lands the private copy. Whatever happens to the gateway file afterwards cannot change it.
//!
//! Symlinks, FIFOs, devices, sockets, directories named like bundles and files with more than one
//! link are refused with their own codes ([`Unfit`]). Small control files (batch manifests) are
//! read the same way, with a size cap ([`read_bounded`]).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::{Mode, OFlags};

/// Identity of an opened file (device and inode), to tell whether a path still names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    dev: u64,
    ino: u64,
}

impl FileId {
    fn of(meta: &fs::Metadata) -> Self {
        Self {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// What kind of directory entry a gateway name is (from `lstat`: links are not followed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    Regular,
    /// A symbolic link.
    Symlink,
    /// A named pipe.
    Fifo,
    /// A character or block device.
    Device,
    /// A Unix socket.
    Socket,
    /// A directory.
    Directory,
}

impl EntryKind {
    /// The kind of `meta` (which must come from `lstat`/`symlink_metadata`).
    pub fn of(meta: &fs::Metadata) -> Self {
        use std::os::unix::fs::FileTypeExt;
        let t = meta.file_type();
        if t.is_symlink() {
            Self::Symlink
        } else if t.is_dir() {
            Self::Directory
        } else if t.is_fifo() {
            Self::Fifo
        } else if t.is_block_device() || t.is_char_device() {
            Self::Device
        } else if t.is_socket() {
            Self::Socket
        } else {
            Self::Regular
        }
    }

    /// The refusal for an entry of this kind, `None` for a regular file.
    pub fn unfit(self) -> Option<Unfit> {
        let (code, what) = match self {
            Self::Regular => return None,
            Self::Symlink => ("symlink", "a symbolic link"),
            Self::Fifo => ("fifo", "a named pipe (FIFO)"),
            Self::Device => ("device", "a device node"),
            Self::Socket => ("socket", "a socket"),
            Self::Directory => ("directory", "a directory"),
        };
        Some(Unfit {
            code,
            message: format!(
                "the entry is {what}, not a regular file; a gateway folder only carries bundle \
                 files, and the ferry never follows or reads through anything else. Check what \
                 else writes into the gateway folder"
            ),
        })
    }
}

/// A gateway entry refused before any byte of it is trusted: its code and the operator's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unfit {
    /// Stable code (`symlink`, `fifo`, `device`, `socket`, `directory`, `multi-link`).
    pub code: &'static str,
    /// What was wrong and what to do.
    pub message: String,
}

/// Why a candidate could not be taken in.
#[derive(Debug)]
pub enum IntakeError {
    /// It is not a file the ferry accepts (refused at once, with its reason).
    Unfit(Unfit),
    /// Its size is not the size it was judged complete at: it is still changing. Look again later.
    Changed {
        /// The size it was judged at.
        judged: u64,
        /// The size found.
        found: u64,
    },
    /// It is gone (renamed or removed by someone else).
    Gone,
    /// Reading or copying it failed (held back and retried with backoff).
    Io(io::Error),
}

impl From<io::Error> for IntakeError {
    fn from(err: io::Error) -> Self {
        if err.kind() == io::ErrorKind::NotFound {
            Self::Gone
        } else {
            Self::Io(err)
        }
    }
}

/// Opens `path` for reading without following a symlink and without blocking on a FIFO.
fn open_nofollow(path: &Path) -> Result<File, IntakeError> {
    let flags =
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC | OFlags::NOCTTY;
    match rustix::fs::open(path, flags, Mode::empty()) {
        Ok(fd) => Ok(File::from(fd)),
        // O_NOFOLLOW on a symlink.
        Err(rustix::io::Errno::LOOP) => Err(IntakeError::Unfit(
            EntryKind::Symlink.unfit().unwrap_or_else(|| Unfit {
                code: "symlink",
                message: "the entry is a symbolic link".into(),
            }),
        )),
        // Opening a socket.
        Err(rustix::io::Errno::NXIO) => Err(IntakeError::Unfit(Unfit {
            code: "socket",
            message: "the entry is a socket or a device without a driver, not a regular file"
                .into(),
        })),
        Err(err) => Err(IntakeError::from(io::Error::from(err))),
    }
}

/// Opens a candidate once and checks the descriptor: a regular file with exactly one link and
/// exactly `judged_len` bytes. Returns the open file (positioned at 0) and its identity.
///
/// A device is refused from `lstat` before it is opened (opening some devices has effects); the
/// descriptor's own `fstat` then decides, so a swap between the two is caught too.
pub fn open_candidate(path: &Path, judged_len: u64) -> Result<(File, FileId), IntakeError> {
    let before = fs::symlink_metadata(path)?;
    if let Some(unfit) = EntryKind::of(&before).unfit() {
        return Err(IntakeError::Unfit(unfit));
    }
    let file = open_nofollow(path)?;
    let meta = file.metadata()?;
    if let Some(unfit) = EntryKind::of(&meta).unfit() {
        return Err(IntakeError::Unfit(unfit));
    }
    if meta.nlink() != 1 {
        return Err(IntakeError::Unfit(Unfit {
            code: "multi-link",
            message: format!(
                "the file has {} hard links; another name for the same file, outside the \
                 ferry's control, could change it after it is verified. A gateway folder only \
                 accepts files with one link: the sender must copy bundles in, not link them",
                meta.nlink()
            ),
        }));
    }
    if meta.len() != judged_len {
        return Err(IntakeError::Changed {
            judged: judged_len,
            found: meta.len(),
        });
    }
    Ok((file, FileId::of(&meta)))
}

/// Copies exactly `len` bytes from the open `source` into a new file at `dest` that only the
/// agent has written (created, never opened if the name exists; the source's permission bits, as
/// a rename would have kept them), and returns it positioned at 0 for verification. A source that
/// does not hold exactly `len` bytes any more is still changing.
pub fn private_copy(source: &File, dest: &Path, len: u64) -> Result<File, IntakeError> {
    let mode = source.metadata().map_err(IntakeError::Io)?.mode() & 0o777;
    let mut out = create_new_file(dest, mode).map_err(IntakeError::Io)?;
    let mut limited = source.take(len.saturating_add(1));
    let copied = match io::copy(&mut limited, &mut out) {
        Ok(n) => n,
        Err(err) => {
            let _ = fs::remove_file(dest);
            return Err(IntakeError::Io(err));
        }
    };
    if copied != len {
        let _ = fs::remove_file(dest);
        return Err(IntakeError::Changed {
            judged: len,
            found: copied,
        });
    }
    out.seek(SeekFrom::Start(0)).map_err(IntakeError::Io)?;
    Ok(out)
}

/// Creates a new file for the agent's own writing, with permission bits `mode` (less the umask):
/// fails if anything (a file, a symlink) already has the name, so nothing is ever written through
/// a link someone placed.
pub fn create_new_file(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(OFlags::NOFOLLOW.bits() as i32)
        .open(path)
}

/// Writes `bytes` into a new file at `path` (see [`create_new_file`], mode 0644 less the umask)
/// and syncs its data. A leftover of the agent's own under that name is removed first (a symlink
/// is removed, never followed).
pub fn write_new(path: &Path, bytes: &[u8]) -> io::Result<()> {
    remove_leftover(path)?;
    let mut out = create_new_file(path, 0o644)?;
    out.write_all(bytes)?;
    out.sync_data()
}

/// Removes whatever non-directory entry has `path` (never following a symlink); absent is fine.
pub fn remove_leftover(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(err),
    }
}

/// Why a small control file could not be read.
#[derive(Debug)]
pub enum BoundedReadError {
    /// It is larger than the cap.
    TooLarge {
        /// Its size.
        len: u64,
        /// The cap.
        cap: u64,
    },
    /// It is not a regular file with one link.
    Unfit(Unfit),
    /// It is gone.
    Gone,
    /// Reading failed.
    Io(io::Error),
}

/// Reads a small control file (a batch manifest) whole: opened once without following a symlink
/// or blocking, a regular file of at most `cap` bytes. Never reads more than `cap` bytes, however
/// the file grows meanwhile.
pub fn read_bounded(path: &Path, cap: u64) -> Result<Vec<u8>, BoundedReadError> {
    let file = match open_nofollow(path) {
        Ok(file) => file,
        Err(IntakeError::Unfit(unfit)) => return Err(BoundedReadError::Unfit(unfit)),
        Err(IntakeError::Gone) => return Err(BoundedReadError::Gone),
        Err(IntakeError::Io(err)) => return Err(BoundedReadError::Io(err)),
        Err(IntakeError::Changed { .. }) => return Err(BoundedReadError::Gone),
    };
    let meta = file.metadata().map_err(BoundedReadError::Io)?;
    if let Some(unfit) = EntryKind::of(&meta).unfit() {
        return Err(BoundedReadError::Unfit(unfit));
    }
    if meta.len() > cap {
        return Err(BoundedReadError::TooLarge {
            len: meta.len(),
            cap,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(BoundedReadError::Io)?;
    let len = bytes.len() as u64;
    if len > cap {
        return Err(BoundedReadError::TooLarge { len, cap });
    }
    Ok(bytes)
}

/// Removes `path` only if it still names the file `id` (the original of a private copy); leaves a
/// file someone put there since. Returns whether it removed it.
pub fn remove_if_same(path: &Path, id: FileId) -> io::Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(meta) if FileId::of(&meta) == id => {
            fs::remove_file(path)?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(err) => Err(err),
    }
}

/// Moves a gateway entry of any kind to `dest` by renaming the entry itself (a symlink, a FIFO
/// or a directory is moved, never followed or opened). Across file systems only a regular file
/// with one link can be moved (copied through a descriptor opened as in [`open_candidate`], then
/// removed); anything else fails with `CrossesDevices` and is held where it is.
pub fn move_entry(src: &Path, dest: &Path) -> io::Result<()> {
    match fs::rename(src, dest) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == io::ErrorKind::CrossesDevices => {
            let meta = fs::symlink_metadata(src)?;
            if EntryKind::of(&meta) != EntryKind::Regular {
                return Err(err);
            }
            let (file, id) = open_candidate(src, meta.len()).map_err(|e| match e {
                IntakeError::Io(err) => err,
                IntakeError::Gone => io::Error::from(io::ErrorKind::NotFound),
                _ => io::Error::other("the file changed while it was being moved"),
            })?;
            let dir = dest.parent().unwrap_or(Path::new("."));
            let name = dest
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad file name"))?;
            let temp = dir.join(crate::dropfolder::temp_name(name));
            let _ = fs::remove_file(&temp);
            let copied = private_copy(&file, &temp, meta.len()).map_err(|e| match e {
                IntakeError::Io(err) => err,
                _ => io::Error::other("the file changed while it was being moved"),
            })?;
            copied.sync_data()?;
            fs::rename(&temp, dest)?;
            remove_if_same(src, id)?;
            Ok(())
        }
        Err(err) => Err(err),
    }
}

/// Renames `src` to `dest` unless `dest` exists (no replacing). Returns false when it exists.
pub fn rename_noreplace(src: &Path, dest: &Path) -> io::Result<bool> {
    match rustix::fs::renameat_with(
        rustix::fs::CWD,
        src,
        rustix::fs::CWD,
        dest,
        rustix::fs::RenameFlags::NOREPLACE,
    ) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::EXIST) => Ok(false),
        // File systems without RENAME_NOREPLACE: check, then rename (the window is the agent's
        // own folder's).
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            if fs::symlink_metadata(dest).is_ok() {
                return Ok(false);
            }
            fs::rename(src, dest)?;
            Ok(true)
        }
        Err(err) => Err(err.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_regular_single_link_file_of_the_judged_size_is_opened() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.owb");
        fs::write(&file, b"0123456789").unwrap();
        let (_, id) = open_candidate(&file, 10).unwrap();
        assert!(matches!(
            open_candidate(&file, 9),
            Err(IntakeError::Changed {
                judged: 9,
                found: 10
            })
        ));
        let link = dir.path().join("b.owb");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(
            matches!(open_candidate(&link, 10), Err(IntakeError::Unfit(u)) if u.code == "symlink")
        );
        fs::hard_link(&file, dir.path().join("elsewhere")).unwrap();
        assert!(
            matches!(open_candidate(&file, 10), Err(IntakeError::Unfit(u)) if u.code == "multi-link")
        );
        fs::remove_file(dir.path().join("elsewhere")).unwrap();
        let sub = dir.path().join("c.owb");
        fs::create_dir(&sub).unwrap();
        assert!(
            matches!(open_candidate(&sub, 0), Err(IntakeError::Unfit(u)) if u.code == "directory")
        );
        let fifo = dir.path().join("d.owb");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(matches!(open_candidate(&fifo, 0), Err(IntakeError::Unfit(u)) if u.code == "fifo"));
        assert!(matches!(
            open_candidate(&dir.path().join("none"), 0),
            Err(IntakeError::Gone)
        ));
        assert!(remove_if_same(&file, id).unwrap());
    }

    #[test]
    fn the_private_copy_holds_the_bytes_read_whatever_happens_to_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.owb");
        fs::write(&file, b"verified bytes").unwrap();
        let mut writer = OpenOptions::new().write(true).open(&file).unwrap();
        let (source, id) = open_candidate(&file, 14).unwrap();
        let copy_path = dir.path().join(".copy");
        let mut copy = private_copy(&source, &copy_path, 14).unwrap();
        // Rewritten through a descriptor opened earlier, then replaced by a rename over it.
        writer.write_all(b"FORGED").unwrap();
        fs::write(dir.path().join("other"), b"other bytes!!!").unwrap();
        fs::rename(dir.path().join("other"), &file).unwrap();
        let mut text = String::new();
        copy.read_to_string(&mut text).unwrap();
        assert_eq!(text, "verified bytes");
        // The replacement is not the file that was copied: it is left alone.
        assert!(!remove_if_same(&file, id).unwrap());
        // A copy never writes through a name that exists, a symlink included.
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        std::os::unix::fs::symlink(&target, dir.path().join(".link")).unwrap();
        assert!(private_copy(&source, &dir.path().join(".link"), 14).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }

    #[test]
    fn a_copy_of_a_file_that_grew_or_shrank_is_not_taken() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.owb");
        fs::write(&file, b"12345").unwrap();
        let (source, _) = open_candidate(&file, 5).unwrap();
        fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap()
            .write_all(b"678")
            .unwrap();
        let dest = dir.path().join(".c");
        assert!(matches!(
            private_copy(&source, &dest, 5),
            Err(IntakeError::Changed {
                judged: 5,
                found: 6
            })
        ));
        assert!(!dest.exists(), "a rejected copy is removed");
    }

    #[test]
    fn control_files_are_read_with_a_cap_and_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("m");
        fs::write(&small, b"abc").unwrap();
        assert_eq!(read_bounded(&small, 3).unwrap(), b"abc");
        assert!(matches!(
            read_bounded(&small, 2),
            Err(BoundedReadError::TooLarge { len: 3, cap: 2 })
        ));
        let link = dir.path().join("l");
        std::os::unix::fs::symlink(&small, &link).unwrap();
        assert!(
            matches!(read_bounded(&link, 10), Err(BoundedReadError::Unfit(u)) if u.code == "symlink")
        );
    }

    #[test]
    fn rename_noreplace_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let b = dir.path().join("b");
        fs::write(&a, b"a").unwrap();
        fs::write(&b, b"b").unwrap();
        assert!(!rename_noreplace(&a, &b).unwrap());
        assert_eq!(fs::read(&b).unwrap(), b"b");
        fs::remove_file(&b).unwrap();
        assert!(rename_noreplace(&a, &b).unwrap());
    }
}
