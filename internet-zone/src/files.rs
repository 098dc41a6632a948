//! Uploaded materials on disk, one sealed file per material under
//! `<data_dir>/files/ab/<material id>` (kept only until the back office has them), and the checks
//! every upload passes first (ow-web: magic bytes, size).
//!
//! Every file is sealed with the zone's personal-data keys (`ow_pii` sealed files: a stream of
//! authenticated chunks bound to `internet/material/<material id>`), created 0600 in folders
//! 0700. Files an earlier version stored in clear are sealed in place when the portal starts
//! ([`FileStore::seal_legacy`]); until then nothing reads them.
//!
//! An upload is sealed into `<data_dir>/files/.staging/` as it arrives (`crate::uploads`);
//! a file that passes the checks is renamed from there to its place ([`FileStore::put_accepted`]).
//! Whatever a crash leaves in the staging folder is removed at start
//! ([`FileStore::purge_staging`]).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ow_pii::{FileSealing, OpenReader, PiiKeyring};
use ow_web::upload::{CheckedUpload, UploadError, UploadLimits, check_streamed_upload};

use crate::error::AppError;
use crate::uploads::StagedFile;

/// One file received in a request, sealed in the staging folder, not yet checked. `Debug`
/// shows no file name and no bytes.
pub struct ReceivedFile {
    /// The form field it came in (a checklist code, or `file`).
    pub field: String,
    /// The name the browser sent (personal data: never log it).
    pub file_name: String,
    /// The declared `Content-Type` (not trusted).
    pub declared_type: Option<String>,
    /// The staged file (at most the limit plus one byte of it is written), its first bytes,
    /// full size and digest.
    pub staged: StagedFile,
}

impl std::fmt::Debug for ReceivedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceivedFile")
            .field("field", &self.field)
            .field("file_name", &"<redacted>")
            .field("declared_type", &self.declared_type)
            .field("size", &self.staged.size())
            .finish_non_exhaustive()
    }
}

/// What the checks decided about a file.
#[derive(Clone)]
pub struct Checked {
    /// The media type decided from the content (`application/pdf`, `image/jpeg`, `image/png`,
    /// or for a survey package `text/plain` / `application/geo+json`).
    pub media_type: &'static str,
    /// Size in bytes.
    pub size: u64,
    /// Lower-case hex BLAKE3 of the content.
    pub blake3_hex: String,
    /// A display name safe to show, ending in the media type's extension.
    pub safe_filename: String,
}

impl From<CheckedUpload> for Checked {
    fn from(c: CheckedUpload) -> Self {
        Checked {
            media_type: c.media.mime(),
            size: c.size,
            blake3_hex: c.blake3_hex,
            safe_filename: c.safe_filename,
        }
    }
}

/// A file that passed the checks. `Debug` shows no file name and no bytes.
pub struct AcceptedFile {
    /// The form field it came in.
    pub field: String,
    /// The check result (type, size, hash, safe name).
    pub checked: Checked,
    /// The sealed file in the staging folder; its material id is the material's.
    pub staged: StagedFile,
}

impl AcceptedFile {
    /// The id of the material this file becomes.
    pub fn material_id(&self) -> &str {
        self.staged.material_id()
    }
}

impl std::fmt::Debug for AcceptedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AcceptedFile")
            .field("field", &self.field)
            .field("media", &self.checked.media_type)
            .field("size", &self.checked.size)
            .finish_non_exhaustive()
    }
}

/// Checks every file; the first refusal refuses them all (so nothing is stored).
pub fn check_all(
    files: Vec<ReceivedFile>,
    limits: &UploadLimits,
) -> Result<Vec<AcceptedFile>, UploadError> {
    limits.check_count(files.len())?;
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let checked = check_streamed_upload(
            &f.file_name,
            f.declared_type.as_deref(),
            f.staged.head(),
            f.staged.size(),
            || f.staged.blake3_hex(),
            limits,
        )?;
        out.push(AcceptedFile {
            field: f.field,
            checked: checked.into(),
            staged: f.staged,
        });
    }
    Ok(out)
}

/// Why the files of a request were refused (nothing is stored).
#[derive(Debug, thiserror::Error)]
pub enum UploadRefusal {
    /// A file failed the common checks (type, size, name).
    #[error(transparent)]
    Upload(#[from] UploadError),
    /// A survey package failed the pre-check.
    #[error(transparent)]
    Survey(#[from] crate::survey::SurveyRefusal),
    /// Reading a staged file failed.
    #[error(transparent)]
    Internal(#[from] AppError),
}

impl UploadRefusal {
    /// What the citizen sees: every problem, what is wrong and what to do.
    pub fn messages_zh(&self) -> Vec<String> {
        match self {
            Self::Upload(e) => vec![e.message_zh()],
            Self::Survey(e) => e.messages_zh(),
            Self::Internal(_) => vec!["读取上传的文件时出错，请稍后重新上传".to_owned()],
        }
    }
}

/// Checks every file for an application of `business`, like [`check_all`], except that a file
/// for the survey checklist item that looks like a survey package (界址点坐标 TXT or GeoJSON)
/// is read whole and pre-checked ([`crate::survey::precheck`]) instead of being held to the
/// PDF/JPEG/PNG rule. Returns the accepted files and the reports of the survey packages among
/// them. The first refusal refuses them all.
pub async fn check_all_for(
    business: ow_domain::BusinessType,
    files: Vec<ReceivedFile>,
    limits: &UploadLimits,
    store: &FileStore,
) -> Result<(Vec<AcceptedFile>, Vec<crate::survey::SurveyReport>), UploadRefusal> {
    use crate::survey::{self, SurveyRefusal};
    limits.check_count(files.len())?;
    let mut plain = Vec::new();
    let mut out = Vec::new();
    let mut reports = Vec::new();
    for f in files {
        let format = if crate::business::takes_survey(business, &f.field) {
            survey::looks_like_survey(&f.file_name, f.staged.head())
        } else {
            None
        };
        let Some(format) = format else {
            plain.push(f);
            continue;
        };
        // The staged file holds at most the portal's file limit (plus one byte): a larger
        // package is refused here, never parsed from a truncated copy.
        let limit = survey::MAX_SURVEY_BYTES.min(limits.max_file_bytes);
        if f.staged.size() > limit {
            return Err(SurveyRefusal::TooBig {
                size: f.staged.size(),
                limit,
            }
            .into());
        }
        let store2 = store.clone();
        let (f, bytes) = tokio::task::spawn_blocking(move || {
            let bytes = survey::read_staged(&store2, &f.staged);
            (f, bytes)
        })
        .await
        .map_err(|_| AppError::Corrupt("the survey reading task failed".into()))?;
        let report = survey::precheck(&bytes?, format)?;
        let ext = survey::extension_of(report.media_type()).unwrap_or("txt");
        let safe = ow_web::upload::safe_filename(&f.file_name, None);
        let safe_filename = if safe.to_lowercase().ends_with(&format!(".{ext}")) {
            safe
        } else {
            format!("{safe}.{ext}")
        };
        out.push(AcceptedFile {
            field: f.field,
            checked: Checked {
                media_type: report.media_type(),
                size: f.staged.size(),
                blake3_hex: f.staged.blake3_hex(),
                safe_filename,
            },
            staged: f.staged,
        });
        reports.push(report);
    }
    out.extend(check_all(plain, limits)?);
    Ok((out, reports))
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

/// The sealing context of a material's file: the zone and the material id, so a file moved to
/// another material (or to the back office's folder) does not open.
pub fn material_context(material_id: &str) -> String {
    format!("internet/material/{material_id}")
}

/// Creates `dir` (and missing parents) readable by the owner only (0700).
fn create_private_dir(dir: &Path) -> Result<(), AppError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| AppError::io(dir, e))
}

/// The folder of uploaded materials, sealed with the zone's personal-data keys.
#[derive(Debug, Clone)]
pub struct FileStore {
    root: PathBuf,
    pii: Arc<PiiKeyring>,
}

impl FileStore {
    /// Files under `root` (created 0700 when missing; an existing folder is made 0700), sealed
    /// and opened with `pii`.
    pub fn new(root: impl Into<PathBuf>, pii: Arc<PiiKeyring>) -> Result<Self, AppError> {
        let root = root.into();
        create_private_dir(&root)?;
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| AppError::io(&root, e))?;
        create_private_dir(&root.join(".staging"))?;
        Ok(FileStore { root, pii })
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

    /// The file of a material as the exchange packs it: opened with the zone's keys while the
    /// bundle is written.
    pub fn outbound(
        &self,
        material_id: &str,
        item: String,
        media_type: String,
    ) -> Result<ow_exchange::OutboundFile, AppError> {
        let path = self
            .path_for(material_id)
            .ok_or_else(|| AppError::Corrupt("stored material id is malformed".into()))?;
        Ok(ow_exchange::OutboundFile {
            item,
            media_type,
            path,
            sealed_context: Some(material_context(material_id)),
        })
    }

    /// Moves each accepted file from the staging folder to its place under its material id,
    /// durably (the data was synced when it was staged; the folders are synced here), before
    /// the caller commits rows that point at them. Runs on a blocking thread and hands the
    /// files back with their material ids.
    pub async fn put_accepted(
        &self,
        files: Vec<AcceptedFile>,
    ) -> Result<Vec<(String, AcceptedFile)>, AppError> {
        let root = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut files = files;
            root.place_blocking(&mut files)?;
            Ok(files
                .into_iter()
                .map(|f| (f.material_id().to_owned(), f))
                .collect())
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

    /// Syncs each staged file's data, renames it to its material's path and syncs the folders
    /// whose names changed (the staging folder, the destinations, and the root when a fan-out
    /// folder was created). Files, then folders, are synced side by side: a request waits for
    /// about two syncs, not one per file and folder.
    fn place_blocking(&self, files: &mut [AcceptedFile]) -> Result<(), AppError> {
        if files.is_empty() {
            return Ok(());
        }
        side_by_side(files, |f| {
            let path = f.staged.path();
            std::fs::File::open(path)
                .and_then(|file| file.sync_data())
                .map_err(|e| AppError::io(path, e))
        })?;
        let mut dirs: Vec<PathBuf> = vec![self.staging_dir()];
        for f in files.iter_mut() {
            let id = f.material_id().to_owned();
            let path = self
                .path_for(&id)
                .ok_or_else(|| AppError::Corrupt(format!("material id {id:?}")))?;
            let dir = path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| self.root.clone());
            if !dir.is_dir() {
                create_private_dir(&dir)?;
                // A new fan-out folder's own entry lives in the root.
                if !dirs.contains(&self.root) {
                    dirs.push(self.root.clone());
                }
            }
            std::fs::rename(f.staged.path(), &path).map_err(|e| AppError::io(&path, e))?;
            f.staged.keep();
            if !dirs.contains(&dir) {
                dirs.push(dir);
            }
        }
        side_by_side(&dirs, |dir| sync_dir(dir))
    }

    /// The folder uploads are sealed into while they arrive.
    pub fn staging_dir(&self) -> PathBuf {
        self.root.join(".staging")
    }

    /// Where an upload for this material id is sealed while it arrives (hidden name).
    pub fn staging_path(&self, material_id: &str) -> PathBuf {
        self.staging_dir().join(format!(".{material_id}.upload"))
    }

    /// The keyring files are sealed with.
    pub fn pii(&self) -> &PiiKeyring {
        &self.pii
    }

    /// Removes whatever is in the staging folder: uploads a crash or a kill interrupted. Run at
    /// start, before the server answers. Returns how many were removed.
    pub fn purge_staging(&self) -> Result<usize, AppError> {
        let dir = self.staging_dir();
        let mut removed = 0;
        let entries = std::fs::read_dir(&dir).map_err(|e| AppError::io(&dir, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| AppError::io(&dir, e))?;
            let path = entry.path();
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(AppError::io(&path, e)),
            }
        }
        if removed > 0 {
            sync_dir(&dir)?;
        }
        Ok(removed)
    }

    /// Seals `bytes` into the staging folder as an upload would be (tools and tests).
    pub fn stage_bytes(&self, bytes: &[u8]) -> Result<StagedFile, AppError> {
        crate::uploads::stage_blocking(self, bytes)
    }

    /// Opens the sealed file of the material with this id (blocking: call it off the async
    /// workers): a reader of its bytes, which are authenticated chunk by chunk, and their
    /// number.
    pub fn open_blocking(
        &self,
        material_id: &str,
    ) -> Result<(OpenReader<std::fs::File>, u64), AppError> {
        let path = self
            .path_for(material_id)
            .ok_or_else(|| AppError::Corrupt("stored material id is malformed".into()))?;
        self.pii
            .open_file(material_context(material_id).as_bytes(), &path)
            .map_err(|e| match e {
                ow_pii::PiiError::Io { cause, .. } => AppError::io(&path, cause),
                other => AppError::Corrupt(format!("material {material_id}: {other}")),
            })
    }

    /// The file of the material with this id as a response body streamed from a blocking
    /// thread (one chunk in memory), and its size. The first chunk is opened before this
    /// returns, so a file that does not open is an error here, not a cut download.
    pub async fn body(&self, material_id: &str) -> Result<(axum::body::Body, u64), AppError> {
        let store = self.clone();
        let id = material_id.to_owned();
        let (reader, len) = tokio::task::spawn_blocking(move || store.open_blocking(&id))
            .await
            .map_err(|e| AppError::Corrupt(format!("file task failed: {e}")))??;
        let id = material_id.to_owned();
        let body = ow_web::download::blocking_reader_body(reader, move |e| {
            tracing::error!(material = %id, error = %e, "a stored material failed while it was sent");
        })
        .await
        .map_err(|e| AppError::Corrupt(format!("material {material_id}: {e}")))?;
        Ok((body, len))
    }

    /// Reads and opens the whole file of the material with this id (tests and small files).
    pub async fn read(&self, material_id: &str) -> Result<Vec<u8>, AppError> {
        let store = self.clone();
        let id = material_id.to_owned();
        tokio::task::spawn_blocking(move || {
            use std::io::Read;
            let (mut reader, len) = store.open_blocking(&id)?;
            let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
            reader
                .read_to_end(&mut out)
                .map_err(|e| AppError::Corrupt(format!("material {id}: {e}")))?;
            Ok(out)
        })
        .await
        .map_err(|e| AppError::Corrupt(format!("file task failed: {e}")))?
    }

    /// Seals, in place, the files of these materials that an earlier version stored in clear,
    /// and re-seals those sealed with an older key (after a rotation). Files already gone are
    /// skipped. Returns how many were sealed from clear and how many re-sealed. Run at start,
    /// before the server answers.
    pub async fn seal_legacy(&self, material_ids: Vec<String>) -> Result<(usize, usize), AppError> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            let (mut from_clear, mut resealed) = (0, 0);
            for id in &material_ids {
                let Some(path) = store.path_for(id) else {
                    continue;
                };
                if !path.exists() {
                    continue;
                }
                let context = material_context(id);
                match store.pii.ensure_sealed_file(context.as_bytes(), &path) {
                    Ok(FileSealing::Current) => {}
                    Ok(FileSealing::Resealed) => resealed += 1,
                    Ok(FileSealing::SealedFromClear) => from_clear += 1,
                    Err(e) => {
                        return Err(AppError::Corrupt(format!(
                            "material {id} cannot be sealed: {e}"
                        )));
                    }
                }
            }
            Ok((from_clear, resealed))
        })
        .await
        .map_err(|e| AppError::Corrupt(format!("file task failed: {e}")))?
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

    fn store() -> (tempfile::TempDir, FileStore) {
        let dir = tempfile::tempdir().unwrap();
        let pii = Arc::new(PiiKeyring::ephemeral().unwrap());
        let fs = FileStore::new(dir.path().join("files"), pii).unwrap();
        (dir, fs)
    }

    fn rf(fs: &FileStore, name: &str, bytes: &[u8]) -> ReceivedFile {
        ReceivedFile {
            field: "sale_contract".into(),
            file_name: name.into(),
            declared_type: Some("application/pdf".into()),
            staged: fs.stage_bytes(bytes).unwrap(),
        }
    }

    #[tokio::test]
    async fn stored_by_material_id_read_back_and_removed() {
        let (_dir, fs) = store();
        let limits = UploadLimits {
            max_file_bytes: 1000,
            max_files: 5,
        };
        let same = check_all(
            vec![
                rf(&fs, "a.pdf", b"%PDF-1.7 one"),
                rf(&fs, "b.pdf", b"%PDF-1.7 one"),
            ],
            &limits,
        )
        .unwrap();
        // Staged: sealed in the hidden staging folder, not yet counted as stored.
        assert_eq!(fs.count(), 0);
        let stored = fs.put_accepted(same).await.unwrap();
        assert_eq!(stored.len(), 2);
        let (a, b) = (stored[0].0.clone(), stored[1].0.clone());
        assert_ne!(a, b);
        drop(stored);
        assert_eq!(
            std::fs::read_dir(fs.staging_dir()).unwrap().count(),
            0,
            "nothing left in staging"
        );
        // Equal bytes, two materials: two files, so removing one never takes the other's.
        assert_eq!(fs.count(), 2);
        // Sealed on disk: no clear byte of the upload, owner-only file and folders.
        let on_disk = std::fs::read(fs.path_for(&a).unwrap()).unwrap();
        assert!(ow_pii::is_sealed_file(&on_disk));
        assert!(!on_disk.windows(4).any(|w| w == b"%PDF"));
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&fs.path_for(&a).unwrap()), 0o600);
        assert_eq!(mode(fs.path_for(&a).unwrap().parent().unwrap()), 0o700);
        assert_eq!(mode(fs.root()), 0o700);
        assert_eq!(fs.read(&a).await.unwrap(), b"%PDF-1.7 one");
        let (body, len) = fs.body(&a).await.unwrap();
        assert_eq!(len, 12);
        assert_eq!(
            axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap()
                .as_ref(),
            b"%PDF-1.7 one"
        );
        // One material's file put in place of another's does not open.
        std::fs::copy(fs.path_for(&a).unwrap(), fs.path_for(&b).unwrap()).unwrap();
        assert!(fs.read(&b).await.is_err());
        assert!(fs.body(&b).await.is_err());
        std::fs::copy(fs.path_for(&a).unwrap(), fs.path_for(&b).unwrap()).unwrap();
        assert_eq!(fs.remove(vec![a.clone()]).await.unwrap(), 1);
        assert_eq!(fs.remove(vec![a.clone()]).await.unwrap(), 0, "already gone");
        assert_eq!(fs.count(), 1);
        assert!(fs.read(&a).await.is_err());
        assert!(
            fs.read(&b).await.is_err(),
            "still the other material's file"
        );
        assert!(fs.path_for("../../etc/passwd").is_none());
        assert!(fs.path_for(&b.to_uppercase()).is_none());
        assert!(fs.path_for("0123").is_none());
    }

    #[tokio::test]
    async fn clear_files_of_an_earlier_version_are_sealed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let pii = Arc::new(PiiKeyring::ephemeral().unwrap());
        let fs = FileStore::new(dir.path().join("files"), pii).unwrap();
        let id = ow_store::new_id();
        let path = fs.path_for(&id).unwrap();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"%PDF-1.7 370781199001011234").unwrap();
        let gone = ow_store::new_id();
        assert_eq!(
            fs.seal_legacy(vec![id.clone(), gone, "not-an-id".into()])
                .await
                .unwrap(),
            (1, 0)
        );
        let on_disk = std::fs::read(&path).unwrap();
        assert!(!on_disk.windows(18).any(|w| w == b"370781199001011234"));
        assert_eq!(fs.read(&id).await.unwrap(), b"%PDF-1.7 370781199001011234");
        assert_eq!(fs.seal_legacy(vec![id]).await.unwrap(), (0, 0), "once only");
    }

    #[test]
    fn uploads_a_stop_interrupted_are_purged_from_staging() {
        let (_dir, fs) = store();
        // A kill leaves the staged file behind: no destructor runs.
        let staged = fs.stage_bytes(b"%PDF-1.7 370781199001011234").unwrap();
        let path = staged.path().to_path_buf();
        std::mem::forget(staged);
        assert!(path.exists());
        let on_disk = std::fs::read(&path).unwrap();
        assert!(!on_disk.windows(18).any(|w| w == b"370781199001011234"));
        assert_eq!(fs.count(), 0, "staged files are not stored materials");
        assert_eq!(fs.purge_staging().unwrap(), 1);
        assert!(!path.exists());
        assert_eq!(fs.purge_staging().unwrap(), 0);
    }

    #[test]
    fn debug_shows_no_file_name() {
        let (_dir, fs) = store();
        let f = rf(&fs, "张三丰身份证.pdf", b"%PDF-1.7 fine");
        assert!(!format!("{f:?}").contains("张三丰"));
        let limits = UploadLimits {
            max_file_bytes: 1000,
            max_files: 5,
        };
        let accepted = check_all(vec![f], &limits).unwrap();
        assert!(!format!("{accepted:?}").contains("张三丰"));
    }

    #[test]
    fn one_bad_file_refuses_all() {
        let limits = UploadLimits {
            max_file_bytes: 1000,
            max_files: 5,
        };
        let (_dir, fs) = store();
        let ok = || rf(&fs, "a.pdf", b"%PDF-1.7 fine");
        let exe = rf(
            &fs,
            "b.pdf",
            b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff",
        );
        let err = check_all(vec![ok(), exe], &limits).unwrap_err();
        assert!(
            err.message_zh().contains("不是 PDF"),
            "{}",
            err.message_zh()
        );
        let mut big = b"%PDF-".to_vec();
        big.resize(5000, b' ');
        let err = check_all(vec![ok(), rf(&fs, "c.pdf", &big)], &limits).unwrap_err();
        assert!(err.message_zh().contains("过大"), "{}", err.message_zh());
        // Refused files are removed from staging as they are dropped.
        assert_eq!(std::fs::read_dir(fs.staging_dir()).unwrap().count(), 0);
        assert_eq!(check_all(vec![ok()], &limits).unwrap().len(), 1);
    }
}
