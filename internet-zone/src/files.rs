//! Uploaded materials on disk, one file per material under `<data_dir>/files/ab/<material id>`
//! (kept only until the back office has them),
//! and the checks every upload passes first (ow-web: magic bytes, size).

use std::path::{Path, PathBuf};

use ow_web::upload::{CheckedUpload, UploadError, UploadLimits, check_upload};

use crate::error::AppError;

/// One file received in a request, not yet checked.
#[derive(Debug, Clone)]
pub struct ReceivedFile {
    /// The form field it came in (a checklist code, or `file`).
    pub field: String,
    /// The name the browser sent (personal data: never log it).
    pub file_name: String,
    /// The declared `Content-Type` (not trusted).
    pub declared_type: Option<String>,
    /// The bytes (at most the limit plus one byte: more is never kept).
    pub bytes: Vec<u8>,
    /// The full size received, which may be over the limit.
    pub size: u64,
}

/// A file that passed the checks.
#[derive(Debug, Clone)]
pub struct AcceptedFile {
    /// The form field it came in.
    pub field: String,
    /// The check result (type, size, hash, safe name).
    pub checked: CheckedUpload,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Checks every file; the first refusal refuses them all (so nothing is stored).
pub fn check_all(
    files: Vec<ReceivedFile>,
    limits: &UploadLimits,
) -> Result<Vec<AcceptedFile>, UploadError> {
    limits.check_count(files.len())?;
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        if f.size > limits.max_file_bytes {
            return Err(UploadError::TooLarge {
                filename: Some(ow_web::upload::safe_filename(&f.file_name, None)),
                size: f.size,
                limit: limits.max_file_bytes,
            });
        }
        let checked = check_upload(&f.file_name, f.declared_type.as_deref(), &f.bytes, limits)?;
        out.push(AcceptedFile {
            field: f.field,
            checked,
            bytes: f.bytes,
        });
    }
    Ok(out)
}

/// Writes `bytes` to a temporary name beside `path`, syncs the data and renames it into place
/// (the caller syncs the folder).
fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), AppError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::now_v7().simple()));
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_data()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(AppError::io(path, e));
    }
    Ok(())
}

/// Syncs a folder, so that the names created or removed in it are durable.
fn sync_dir(dir: &Path) -> Result<(), AppError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| AppError::io(dir, e))
}

/// Runs `work` on every item, each on its own thread, and waits for all: syncs issued together
/// cost about one sync's wait instead of one per item. The first error is returned.
fn side_by_side<T: Sync>(
    items: &[T],
    work: impl Fn(&T) -> Result<(), AppError> + Sync,
) -> Result<(), AppError> {
    let work = &work;
    std::thread::scope(|scope| {
        let running: Vec<_> = items
            .iter()
            .map(|item| scope.spawn(move || work(item)))
            .collect();
        // The scope joins whatever is still running when an error returns early.
        running.into_iter().try_for_each(|r| {
            r.join()
                .unwrap_or_else(|_| Err(AppError::Corrupt("a file task panicked".into())))
        })
    })
}

/// The folder of uploaded materials.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
}

impl FileStore {
    /// Files under `root` (created when missing).
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, AppError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|e| AppError::io(&root, e))?;
        Ok(FileStore { root })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the file of the material with this id lives; `None` for anything that is not a
    /// material id (hex digits and hyphens, as `ow_store::new_id` makes them).
    pub fn path_for(&self, material_id: &str) -> Option<PathBuf> {
        let ok = (32..=64).contains(&material_id.len())
            && material_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-');
        // One level of 256 folders named by the id's last two (random) digits: they all exist
        // after the first few hundred files, so storing a file syncs one existing folder.
        ok.then(|| {
            self.root
                .join(&material_id[material_id.len() - 2..])
                .join(material_id)
        })
    }

    /// Stores each accepted file under its material id, durably, before the caller commits
    /// rows that point at them. Runs on a blocking thread and hands the files back.
    pub async fn put_accepted(
        &self,
        files: Vec<(String, AcceptedFile)>,
    ) -> Result<Vec<(String, AcceptedFile)>, AppError> {
        let root = self.clone();
        tokio::task::spawn_blocking(move || {
            let items: Vec<(&str, &[u8])> = files
                .iter()
                .map(|(id, f)| (id.as_str(), f.bytes.as_slice()))
                .collect();
            root.store_blocking(&items)?;
            Ok(files)
        })
        .await
        .map_err(|e| AppError::Corrupt(format!("file task failed: {e}")))?
    }

    /// Removes the files of these materials (those already gone are fine) and syncs their
    /// folders. Used once the back office has a material, and when a draft drops one.
    pub async fn remove(&self, material_ids: Vec<String>) -> Result<usize, AppError> {
        let root = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            let mut dirs: Vec<PathBuf> = Vec::new();
            for id in &material_ids {
                let Some(path) = root.path_for(id) else {
                    continue;
                };
                match std::fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(AppError::io(&path, e)),
                }
                if let Some(dir) = path.parent().filter(|d| !dirs.iter().any(|x| x == d)) {
                    dirs.push(dir.to_path_buf());
                }
            }
            side_by_side(&dirs, |dir| sync_dir(dir))?;
            Ok(removed)
        })
        .await
        .map_err(|e| AppError::Corrupt(format!("file task failed: {e}")))?
    }

    /// Writes each file to a temporary name, syncs its data, renames it to its material id and
    /// syncs the folders, so that a row committed afterwards never points at a file a crash
    /// could lose. The files are written and synced side by side: a request waits for about one
    /// sync, not one per file.
    fn store_blocking(&self, items: &[(&str, &[u8])]) -> Result<Vec<PathBuf>, AppError> {
        let mut paths = Vec::with_capacity(items.len());
        let mut new = Vec::new();
        for (id, bytes) in items {
            let path = self
                .path_for(id)
                .ok_or_else(|| AppError::Corrupt(format!("material id {id:?}")))?;
            paths.push(path.clone());
            if !new.iter().any(|(p, _)| p == &path) {
                new.push((path, *bytes));
            }
        }
        if new.is_empty() {
            return Ok(paths);
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        for (path, _) in &new {
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.root.clone());
            if !dir.is_dir() {
                std::fs::create_dir_all(&dir).map_err(|e| AppError::io(&dir, e))?;
                // A new fan-out folder's own entry lives in the root.
                if !dirs.contains(&self.root) {
                    dirs.push(self.root.clone());
                }
            }
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        side_by_side(&new, |(path, bytes)| write_synced(path, bytes))?;
        side_by_side(&dirs, |dir| sync_dir(dir))?;
        Ok(paths)
    }

    /// Reads the file of the material with this id.
    pub async fn read(&self, material_id: &str) -> Result<Vec<u8>, AppError> {
        let path = self
            .path_for(material_id)
            .ok_or_else(|| AppError::Corrupt("stored material id is malformed".into()))?;
        tokio::fs::read(&path)
            .await
            .map_err(|e| AppError::io(&path, e))
    }

    /// How many files are stored (for tests and the operator).
    pub fn count(&self) -> usize {
        fn walk(p: &Path) -> usize {
            let Ok(entries) = std::fs::read_dir(p) else {
                return 0;
            };
            entries
                .flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path)
                    } else {
                        usize::from(!e.file_name().to_string_lossy().starts_with('.'))
                    }
                })
                .sum()
        }
        walk(&self.root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rf(name: &str, bytes: &[u8]) -> ReceivedFile {
        ReceivedFile {
            field: "sale_contract".into(),
            file_name: name.into(),
            declared_type: Some("application/pdf".into()),
            bytes: bytes.to_vec(),
            size: bytes.len() as u64,
        }
    }

    #[tokio::test]
    async fn stored_by_material_id_read_back_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let fs = FileStore::new(dir.path().join("files")).unwrap();
        let limits = UploadLimits {
            max_file_bytes: 1000,
            max_files: 5,
        };
        let same = check_all(
            vec![rf("a.pdf", b"%PDF-1.7 one"), rf("b.pdf", b"%PDF-1.7 one")],
            &limits,
        )
        .unwrap();
        let (a, b) = (ow_store::new_id(), ow_store::new_id());
        let ids = [a.clone(), b.clone()];
        let stored = fs
            .put_accepted(ids.iter().cloned().zip(same).collect())
            .await
            .unwrap();
        assert_eq!(stored.len(), 2);
        // Equal bytes, two materials: two files, so removing one never takes the other's.
        assert_eq!(fs.count(), 2);
        assert_eq!(fs.read(&a).await.unwrap(), b"%PDF-1.7 one");
        assert_eq!(fs.remove(vec![a.clone()]).await.unwrap(), 1);
        assert_eq!(fs.remove(vec![a.clone()]).await.unwrap(), 0, "already gone");
        assert_eq!(fs.count(), 1);
        assert!(fs.read(&a).await.is_err());
        assert_eq!(fs.read(&b).await.unwrap(), b"%PDF-1.7 one");
        assert!(fs.path_for("../../etc/passwd").is_none());
        assert!(fs.path_for(&b.to_uppercase()).is_none());
        assert!(fs.path_for("0123").is_none());
    }

    #[test]
    fn one_bad_file_refuses_all() {
        let limits = UploadLimits {
            max_file_bytes: 1000,
            max_files: 5,
        };
        let ok = rf("a.pdf", b"%PDF-1.7 fine");
        let exe = rf(
            "b.pdf",
            b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff",
        );
        let err = check_all(vec![ok.clone(), exe], &limits).unwrap_err();
        assert!(
            err.message_zh().contains("不是 PDF"),
            "{}",
            err.message_zh()
        );
        let mut big = rf("c.pdf", b"%PDF-");
        big.size = 5000;
        let err = check_all(vec![ok.clone(), big], &limits).unwrap_err();
        assert!(err.message_zh().contains("过大"), "{}", err.message_zh());
        assert_eq!(check_all(vec![ok], &limits).unwrap().len(), 1);
    }
}
