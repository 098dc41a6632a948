//! Survey files and reports on disk: one `ow-pii` sealed file each under
//! `data_dir/surveys/<file id>`, bound to `intranet/survey/<file id>`, 0600 in a 0700 folder,
//! durable before the row naming it commits. No survey byte is kept in clear.

use std::io::Read as _;
use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ow_pii::PiiKeyring;

use crate::error::{IntranetError, Result};

/// The folder of sealed survey files.
pub fn surveys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("surveys")
}

/// Makes the folder exist with mode 0700 (an existing one is tightened).
pub fn prepare_dir(data_dir: &Path) -> Result<()> {
    let dir = surveys_dir(data_dir);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| IntranetError::io("create the folder", &dir, e))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| IntranetError::io("restrict", &dir, e))
}

/// The file id of the survey file (`kind` = `survey`) or report (`report`) of message
/// `message_id`; `None` when the message id is not a UUID as the exchange makes them.
pub fn file_id(message_id: &str, kind: &str) -> Option<String> {
    uuid::Uuid::parse_str(message_id)
        .ok()
        .map(|u| format!("{}-{kind}", u.as_hyphenated()))
}

fn path_of(data_dir: &Path, file_id: &str) -> Result<PathBuf> {
    let ok = (8..=80).contains(&file_id.len())
        && file_id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !ok {
        return Err(IntranetError::Corrupt(format!(
            "survey file id {file_id:?}"
        )));
    }
    Ok(surveys_dir(data_dir).join(file_id))
}

fn context(file_id: &str) -> String {
    format!("intranet/survey/{file_id}")
}

/// Seals `bytes` as file `file_id`, durably (temporary file, data synced, renamed, folder
/// synced). Storing the same id again replaces it (an import retried). Blocking.
pub fn store_blocking(
    pii: &PiiKeyring,
    data_dir: &Path,
    file_id: &str,
    bytes: &[u8],
) -> Result<()> {
    let path = path_of(data_dir, file_id)?;
    pii.seal_to_path(context(file_id).as_bytes(), &mut &bytes[..], &path)?;
    let dir = surveys_dir(data_dir);
    std::fs::File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| IntranetError::io("sync", &dir, e))
}

/// The clear bytes of file `file_id` (at most `max` bytes). Blocking.
pub fn read_blocking(
    pii: &PiiKeyring,
    data_dir: &Path,
    file_id: &str,
    max: u64,
) -> Result<Vec<u8>> {
    let path = path_of(data_dir, file_id)?;
    let (reader, len) = pii.open_file(context(file_id).as_bytes(), &path)?;
    if len > max {
        return Err(IntranetError::Invalid(format!(
            "the survey file is {len} bytes, more than survey.max_file_bytes ({max})"
        )));
    }
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    reader
        .take(max)
        .read_to_end(&mut out)
        .map_err(|e| IntranetError::io("read", &path, e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_file_is_sealed_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        prepare_dir(dir.path()).unwrap();
        let pii = PiiKeyring::ephemeral().unwrap();
        let id = file_id("0190f3c2-0000-7000-8000-000000000001", "survey").unwrap();
        let clear = "[属性描述]\n坐标系=2000国家大地坐标系\n张三宅基地".as_bytes();
        store_blocking(&pii, dir.path(), &id, clear).unwrap();
        let on_disk = std::fs::read(surveys_dir(dir.path()).join(&id)).unwrap();
        assert!(!on_disk.windows(6).any(|w| w == "张三".as_bytes()));
        assert_eq!(
            read_blocking(&pii, dir.path(), &id, 1 << 20).unwrap(),
            clear
        );
        assert!(read_blocking(&pii, dir.path(), &id, 3).is_err());
        assert!(file_id("../etc", "survey").is_none());
        assert!(read_blocking(&pii, dir.path(), "../x/../y", 10).is_err());
    }
}
