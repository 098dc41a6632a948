//! ISO 9660 images of discs, through `xorriso` (GNU xorriso, the libburnia project's burner and
//! image tool): no maintained Rust crate writes ISO 9660 with Joliet and Rock Ridge, and the
//! operators burn with xorriso already.
//!
//! * [`write_image`]: a disc folder → an ISO 9660 image with Joliet and Rock Ridge names, its
//!   volume id naming the set and the disc (`OW_<last 12 hex of the set id>_<k>OF<n>`).
//! * [`extract_image`]: an image → a private folder, which is then imported like a mounted disc
//!   (the walk refuses any symlink, device or stray file the image may carry).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::MediaError;
use crate::AgentError;

/// What to tell an operator without xorriso.
pub const GET_XORRISO: &str = "xorriso is not installed (or not on PATH); install it with \
     `apt install xorriso` (Debian, Ubuntu) or `dnf install xorriso`, or leave out --iso and \
     burn the disc folder with the burner's own tool";

/// The volume id of disc `index` of `count` of a set: at most 32 upper-case letters, digits and
/// `_` (ISO 9660 d-characters), e.g. `OW_3E1F2B1D0A11_2OF3`.
pub fn volume_id(set_id: &str, index: u32, count: u32) -> String {
    let hex: String = set_id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect::<String>()
        .to_ascii_uppercase();
    let tail = &hex[hex.len().saturating_sub(12)..];
    let mut id = format!("OW_{tail}_{index}OF{count}");
    id.truncate(32);
    id
}

/// The image path of disc `index` of `count` for `--iso FILE`: `FILE` itself for a single disc,
/// otherwise `-<k>-of-<n>` before its extension (`out.iso` → `out-2-of-3.iso`).
pub fn image_path(file: &Path, index: u32, count: u32) -> PathBuf {
    if count == 1 {
        return file.to_path_buf();
    }
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "disc".to_owned());
    let name = match file.extension() {
        Some(ext) => format!("{stem}-{index}-of-{count}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{index}-of-{count}"),
    };
    file.with_file_name(name)
}

fn xorriso(args: &[&std::ffi::OsStr]) -> Result<(), String> {
    let out = Command::new("xorriso").args(args).output().map_err(|err| {
        if err.kind() == std::io::ErrorKind::NotFound {
            GET_XORRISO.to_owned()
        } else {
            format!("cannot run xorriso: {err}")
        }
    })?;
    if out.status.success() {
        return Ok(());
    }
    let said = String::from_utf8_lossy(&out.stderr);
    let last: Vec<&str> = said.lines().rev().take(3).collect();
    Err(format!(
        "xorriso failed ({}): {}",
        out.status,
        last.into_iter().rev().collect::<Vec<_>>().join(" / ")
    ))
}

/// True when `xorriso` runs.
pub fn available() -> bool {
    Command::new("xorriso")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Writes the ISO 9660/Joliet/Rock Ridge image of `disc` to `image` (which must not exist).
pub fn write_image(disc: &Path, image: &Path, volume: &str) -> Result<(), MediaError> {
    if std::fs::symlink_metadata(image).is_ok() {
        return Err(MediaError::Unfit(format!(
            "{} exists; name a new file for the ISO image",
            image.display()
        )));
    }
    if !available() {
        return Err(MediaError::Unfit(GET_XORRISO.to_owned()));
    }
    let args: [&std::ffi::OsStr; 10] = [
        "-as".as_ref(),
        "mkisofs".as_ref(),
        "-J".as_ref(),
        "-R".as_ref(),
        "-V".as_ref(),
        volume.as_ref(),
        "-quiet".as_ref(),
        "-o".as_ref(),
        image.as_os_str(),
        disc.as_os_str(),
    ];
    xorriso(&args).map_err(|m| {
        let _ = std::fs::remove_file(image);
        MediaError::Unfit(format!("cannot write the image {}: {m}", image.display()))
    })
}

/// A folder an image was extracted to; removed when dropped.
pub struct Extracted {
    root: PathBuf,
    /// The disc's files: `<root>/<image file name>`.
    pub disc: PathBuf,
}

impl Drop for Extracted {
    fn drop(&mut self) {
        // Rock Ridge may have made folders read-only; give them back to the owner first.
        let _ = Command::new("chmod")
            .args(["-R", "u+rwX"])
            .arg(&self.root)
            .status();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// Extracts the image `image` into a new private folder under `under`, named after the image, so
/// that a refusal names the image.
pub fn extract_image(image: &Path, under: &Path) -> Result<Extracted, MediaError> {
    if !available() {
        return Err(MediaError::Unfit(GET_XORRISO.to_owned()));
    }
    std::fs::create_dir_all(under).map_err(|e| AgentError::io(under, e))?;
    let root = under.join(format!(".iso-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir(&root).map_err(|e| AgentError::io(&root, e))?;
    let name = image
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "disc.iso".into());
    let extracted = Extracted {
        disc: root.join(name),
        root,
    };
    let args: [&std::ffi::OsStr; 8] = [
        "-osirrox".as_ref(),
        "on".as_ref(),
        "-indev".as_ref(),
        image.as_os_str(),
        "-extract".as_ref(),
        "/".as_ref(),
        extracted.disc.as_os_str(),
        "-end".as_ref(),
    ];
    xorriso(&args).map_err(|m| {
        MediaError::refused(
            "unreadable",
            format!(
                "cannot read the ISO image {}: {m}; check the file is a whole disc image",
                image.display()
            ),
        )
    })?;
    let empty = std::fs::read_dir(&extracted.disc).map_or(true, |mut e| e.next().is_none());
    if empty {
        return Err(MediaError::refused(
            "unreadable",
            format!(
                "the ISO image {} holds no files: it is blank or not a disc image",
                image.display()
            ),
        ));
    }
    Ok(extracted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_ids_name_set_and_disc_within_iso_9660_limits() {
        let id = volume_id("0193f5c2-7d7e-7a40-9c55-3e1f2b1d0a11", 2, 3);
        assert_eq!(id, "OW_3E1F2B1D0A11_2OF3");
        let long = volume_id("0193f5c2-7d7e-7a40-9c55-3e1f2b1d0a11", 10_000, 10_000);
        assert!(long.len() <= 32);
        assert!(
            long.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        );
    }

    #[test]
    fn image_paths_number_the_discs_of_a_set() {
        let file = Path::new("/burn/out.iso");
        assert_eq!(image_path(file, 1, 1), PathBuf::from("/burn/out.iso"));
        assert_eq!(
            image_path(file, 2, 3),
            PathBuf::from("/burn/out-2-of-3.iso")
        );
    }
}
