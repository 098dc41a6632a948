//! Walking a disc without trusting it: every entry is looked at without following links, and a
//! symlink, a device, a name that is not UTF-8 or a path a bag may not hold refuses the disc
//! (`path-trick`).

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use super::{MediaError, bag};

/// Most entries walked on one disc.
const MAX_ENTRIES: usize = 200_000;

/// Every regular file on the disc with its size, by path relative to the disc; refuses anything
/// that is not a folder or a regular file, and any path a bag may not hold.
pub(super) fn walk(disc: &Path) -> Result<BTreeMap<String, u64>, MediaError> {
    let meta = fs::symlink_metadata(disc).map_err(|e| {
        MediaError::refused(
            "incomplete",
            format!("cannot open the disc at {}: {e}", disc.display()),
        )
    })?;
    if !meta.is_dir() {
        return Err(MediaError::refused(
            "path-trick",
            format!(
                "{} is not a folder (or is a symlink); name the disc's mount point",
                disc.display()
            ),
        ));
    }
    let mut files = BTreeMap::new();
    let mut stack = vec![String::new()];
    let mut seen = 0usize;
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() {
            disc.to_path_buf()
        } else {
            disc.join(&rel)
        };
        let entries = fs::read_dir(&dir).map_err(|e| {
            MediaError::refused("unreadable", format!("cannot list {}: {e}", dir.display()))
        })?;
        for entry in entries {
            let entry = entry.map_err(|e| {
                MediaError::refused("unreadable", format!("cannot list {}: {e}", dir.display()))
            })?;
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(MediaError::refused(
                    "altered",
                    format!("the disc holds more than {MAX_ENTRIES} entries"),
                ));
            }
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                return Err(MediaError::refused(
                    "path-trick",
                    "the disc holds a name that is not UTF-8",
                ));
            };
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            // `file_type` does not follow symlinks.
            let kind = entry
                .file_type()
                .map_err(|e| MediaError::refused("unreadable", format!("{path}: {e}")))?;
            if kind.is_symlink() {
                return Err(MediaError::refused(
                    "path-trick",
                    format!(
                        "{path} is a symbolic link; a disc holds only files and folders — hand it to the security officer"
                    ),
                ));
            }
            if rel.is_empty() {
                let allowed = bag::TAG_FILES.contains(&name.as_str())
                    || name == bag::TAGMANIFEST_NAME
                    || name == bag::MEDIA_MANIFEST_NAME;
                if kind.is_dir() && name == "data" {
                    stack.push(path);
                    continue;
                }
                if !(allowed && kind.is_file()) {
                    return Err(MediaError::refused(
                        "altered",
                        format!(
                            "{path:?} is not part of a ferry bag: something was added to the disc"
                        ),
                    ));
                }
                let len = entry
                    .metadata()
                    .map_err(|e| MediaError::refused("unreadable", format!("{path}: {e}")))?
                    .len();
                files.insert(path, len);
                continue;
            }
            if kind.is_dir() {
                if path.split('/').count() > 3 {
                    return Err(MediaError::refused(
                        "path-trick",
                        format!("{path} is nested too deep"),
                    ));
                }
                stack.push(path);
                continue;
            }
            if !kind.is_file() {
                return Err(MediaError::refused(
                    "path-trick",
                    format!("{path} is not a regular file (a device, FIFO or socket)"),
                ));
            }
            bag::check_bag_path(&path).map_err(|m| MediaError::refused("path-trick", m))?;
            let len = entry
                .metadata()
                .map_err(|e| MediaError::refused("unreadable", format!("{path}: {e}")))?
                .len();
            files.insert(path, len);
        }
    }
    Ok(files)
}
