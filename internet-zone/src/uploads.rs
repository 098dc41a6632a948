//! Upload bodies read as they arrive. Text fields are kept in memory (each at most
//! [`MAX_TEXT_FIELD_BYTES`]); each file part is sealed, chunk by chunk, into a private staging
//! file under its future material id, so a request holds a few chunks of each file in memory,
//! never the files themselves. What the checks need — the first [`SNIFF_BYTES`], the size and
//! the BLAKE3 digest — is gathered on the way.
//!
//! The form's CSRF token must come before the first file (browsers send fields in the order of
//! the form, and every upload form puts its token first): nothing is written to disk for a
//! request whose token is missing or wrong. Callers check the session, the origin and the
//! ownership of the draft or application before reading the body at all (the API checks its
//! `X-CSRF-Token` header then too).
//!
//! A staged file that is not stored (refused, or its request failed) is removed when its
//! [`StagedFile`] is dropped; files left by a crash are purged when the portal starts
//! ([`crate::files::FileStore::purge_staging`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use axum::body::Bytes;
use axum::extract::multipart::{Multipart, MultipartError as AxumMultipartError};
use axum::http::StatusCode;
use ow_web::csrf::CsrfError;
use ow_web::upload::{SNIFF_BYTES, UploadError, UploadLimits};
use tokio::sync::mpsc;

use crate::error::AppError;
use crate::files::{FileStore, ReceivedFile, material_context};

/// The longest text field accepted in an upload form.
pub const MAX_TEXT_FIELD_BYTES: usize = 64 * 1024;

/// Chunks of one file waiting between the request and its sealing thread.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Why an upload body could not be read.
#[derive(Debug)]
pub enum UploadBodyError {
    /// The form's token was missing, wrong, or came after a file.
    Csrf(CsrfError),
    /// More file parts than one request may carry (`UploadError::TooManyFiles`).
    Upload(UploadError),
    /// The whole body is over the request limit (413).
    TooLarge,
    /// The body is malformed (message in Chinese).
    Malformed(String),
    /// A staged file could not be written.
    Internal(AppError),
}

impl UploadBodyError {
    /// The Chinese message shown beside the upload field.
    pub fn message_zh(&self) -> String {
        match self {
            UploadBodyError::Csrf(_) => "页面已过期，请刷新页面后重新上传".to_owned(),
            UploadBodyError::Upload(e) => e.message_zh(),
            UploadBodyError::TooLarge => {
                "上传的文件总大小超过限制，请压缩文件或分批上传".to_owned()
            }
            UploadBodyError::Malformed(m) => m.clone(),
            UploadBodyError::Internal(_) => "暂时无法保存上传的文件，请稍后重试".to_owned(),
        }
    }
}

fn malformed(e: AxumMultipartError) -> UploadBodyError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        UploadBodyError::TooLarge
    } else {
        UploadBodyError::Malformed("上传内容不完整或格式不正确，请重新选择文件上传".to_owned())
    }
}

/// Where the form's CSRF token is checked.
pub enum TokenCheck<'a> {
    /// Already checked from a header (the API's `X-CSRF-Token`).
    Checked,
    /// A form field `csrf`, which must arrive before the first file; `check` judges it (a
    /// missing field is `None`).
    FormField(&'a (dyn Fn(Option<&str>) -> Result<(), CsrfError> + Sync)),
}

/// A file part sealed into the staging folder under its material id. Dropped without
/// [`StagedFile::keep`], its file is removed. `Debug` shows no name and no content.
pub struct StagedFile {
    material_id: String,
    path: PathBuf,
    head: Vec<u8>,
    size: u64,
    blake3: blake3::Hash,
    kept: bool,
}

impl std::fmt::Debug for StagedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedFile")
            .field("material_id", &self.material_id)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl StagedFile {
    /// The material id the file is sealed for.
    pub fn material_id(&self) -> &str {
        &self.material_id
    }

    /// Where the sealed file waits.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The first bytes of the content (at most [`SNIFF_BYTES`]).
    pub fn head(&self) -> &[u8] {
        &self.head
    }

    /// The full size received (the staged file holds at most the limit plus one byte).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// BLAKE3 of the content, lower-case hex (meaningful only for a file within the limit).
    pub fn blake3_hex(&self) -> String {
        self.blake3.to_hex().to_string()
    }

    /// The file has been moved into the store: dropping this no longer removes anything.
    pub fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.kept {
            // Already gone is fine; anything else is purged at the next start.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A file being sealed into the staging folder: its writer, and the head and digest of what
/// was written so far.
struct Sealing {
    path: PathBuf,
    writer: ow_pii::SealWriter<std::fs::File>,
    head: Vec<u8>,
    hasher: blake3::Hasher,
}

impl Sealing {
    /// Creates the staged file (0600, never over an existing one) for `material_id`.
    fn start(store: &FileStore, material_id: &str, path: PathBuf) -> Result<Self, AppError> {
        let file = ow_pii::create_private(&path).map_err(|e| AppError::io(&path, e))?;
        let writer = store
            .pii()
            .seal_writer(material_context(material_id).as_bytes(), file)
            .map_err(|e| AppError::io(&path, e))?;
        Ok(Sealing {
            path,
            writer,
            head: Vec::new(),
            hasher: blake3::Hasher::new(),
        })
    }

    fn write(&mut self, chunk: &[u8]) -> Result<(), AppError> {
        if self.head.len() < SNIFF_BYTES {
            let take = (SNIFF_BYTES - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..take]);
        }
        self.hasher.update(chunk);
        self.writer
            .write_all(chunk)
            .map_err(|e| AppError::io(&self.path, e))
    }

    /// Seals the last chunk; returns the head and the digest. The data is synced only if the
    /// file is accepted ([`crate::files::FileStore::put_accepted`], all files side by side).
    fn finish(self) -> Result<(Vec<u8>, blake3::Hash), AppError> {
        self.writer
            .finish()
            .map_err(|e| AppError::io(&self.path, e))?;
        Ok((self.head, self.hasher.finalize()))
    }
}

/// Seals what arrives on `chunks` into the staged file at `path` (see [`Sealing`]). Runs on a
/// blocking thread.
fn seal_chunks(
    store: &FileStore,
    material_id: &str,
    path: PathBuf,
    mut chunks: mpsc::Receiver<Bytes>,
) -> Result<(Vec<u8>, blake3::Hash), AppError> {
    let mut sealing = Sealing::start(store, material_id, path)?;
    while let Some(chunk) = chunks.blocking_recv() {
        sealing.write(&chunk)?;
    }
    sealing.finish()
}

/// Stages `bytes` as one upload (blocking): tools and tests.
pub(crate) fn stage_blocking(store: &FileStore, bytes: &[u8]) -> Result<StagedFile, AppError> {
    let material_id = ow_store::new_id();
    let path = store.staging_path(&material_id);
    let mut staged = StagedFile {
        material_id,
        path: path.clone(),
        head: Vec::new(),
        size: bytes.len() as u64,
        blake3: blake3::hash(b""),
        kept: false,
    };
    let mut sealing = Sealing::start(store, &staged.material_id, path)?;
    sealing.write(bytes)?;
    (staged.head, staged.blake3) = sealing.finish()?;
    Ok(staged)
}

/// Reads an upload body: its text fields and its files, each file sealed into the staging
/// folder of `store` as it arrives (at most `limits.max_file_bytes + 1` bytes of a file are
/// written; its full size is counted). A part with a file name is a file; a file input left
/// empty (no name, no content) is skipped. More than `limits.max_files` files (those past the
/// limit are counted, never written), a text field over [`MAX_TEXT_FIELD_BYTES`], or a file
/// before the token (with [`TokenCheck::FormField`]) is an error, and every file staged so far
/// is removed.
pub async fn read_upload(
    mut mp: Multipart,
    store: &FileStore,
    limits: &UploadLimits,
    token: TokenCheck<'_>,
) -> Result<(HashMap<String, String>, Vec<ReceivedFile>), UploadBodyError> {
    let mut fields: HashMap<String, String> = HashMap::new();
    let mut files = Vec::new();
    let mut token_ok = matches!(token, TokenCheck::Checked);
    let mut extra_files = 0usize;
    let keep = limits.max_file_bytes.saturating_add(1);
    while let Some(mut field) = mp.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        let Some(file_name) = field.file_name().map(str::to_owned) else {
            let text = read_text(&mut field).await?;
            if let (TokenCheck::FormField(check), "csrf", false) = (&token, name.as_str(), token_ok)
            {
                check(Some(&text)).map_err(UploadBodyError::Csrf)?;
                token_ok = true;
            }
            fields.insert(name, text);
            continue;
        };
        if !token_ok {
            if let TokenCheck::FormField(check) = &token {
                // No token before this file: the check says why (missing).
                check(None).map_err(UploadBodyError::Csrf)?;
            }
            return Err(UploadBodyError::Csrf(CsrfError::Missing));
        }
        let declared_type = field.content_type().map(str::to_owned);
        if files.len() >= limits.max_files {
            // Counted for the message, never written.
            let mut size: u64 = 0;
            while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                size += chunk.len() as u64;
            }
            if size > 0 || !file_name.is_empty() {
                extra_files += 1;
            }
            continue;
        }
        let material_id = ow_store::new_id();
        let path = store.staging_path(&material_id);
        let (tx, rx) = mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
        let sealing = {
            let store = store.clone();
            let id = material_id.clone();
            let path = path.clone();
            tokio::task::spawn_blocking(move || seal_chunks(&store, &id, path, rx))
        };
        // From here the file exists (or will): the guard removes it on every way out.
        let mut staged = StagedFile {
            material_id,
            path,
            head: Vec::new(),
            size: 0,
            blake3: blake3::hash(b""),
            kept: false,
        };
        let mut written: u64 = 0;
        let mut sealing_failed = false;
        let read: Result<(), UploadBodyError> = async {
            while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                staged.size = staged.size.saturating_add(chunk.len() as u64);
                if written >= keep || sealing_failed {
                    continue;
                }
                let room = usize::try_from(keep - written).unwrap_or(usize::MAX);
                let chunk = if chunk.len() > room {
                    chunk.slice(..room)
                } else {
                    chunk
                };
                written += chunk.len() as u64;
                // A closed channel means the sealing thread failed: its error is reported below.
                sealing_failed = tx.send(chunk).await.is_err();
            }
            Ok(())
        }
        .await;
        drop(tx);
        let sealed = sealing
            .await
            .map_err(|e| UploadBodyError::Internal(AppError::Corrupt(format!("file task: {e}"))))
            .and_then(|r| r.map_err(UploadBodyError::Internal));
        read?;
        let sealed = sealed?;
        if staged.size == 0 && file_name.is_empty() {
            continue;
        }
        (staged.head, staged.blake3) = sealed;
        files.push(ReceivedFile {
            field: name,
            file_name,
            declared_type,
            staged,
        });
    }
    if !token_ok && let TokenCheck::FormField(check) = &token {
        check(None).map_err(UploadBodyError::Csrf)?;
    }
    if extra_files > 0 {
        return Err(UploadBodyError::Upload(UploadError::TooManyFiles {
            count: files.len() + extra_files,
            max: limits.max_files,
        }));
    }
    Ok((fields, files))
}

/// A text field, refused past [`MAX_TEXT_FIELD_BYTES`] without reading more of it.
async fn read_text(
    field: &mut axum::extract::multipart::Field<'_>,
) -> Result<String, UploadBodyError> {
    let too_long = || UploadBodyError::Malformed("表单内容过长，请精简后重新提交".to_owned());
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(malformed)? {
        if bytes.len() + chunk.len() > MAX_TEXT_FIELD_BYTES {
            return Err(too_long());
        }
        bytes.extend_from_slice(&chunk);
    }
    String::from_utf8(bytes)
        .map_err(|_| UploadBodyError::Malformed("表单内容不是有效的文字，请重新填写".to_owned()))
}
