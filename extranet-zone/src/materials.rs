//! The back office's materials on disk: one sealed file per material row under
//! `data_dir/materials/<last two digits of the id>/<material id>`, sealed with the zone's
//! personal-data keys (an `ow_pii` sealed file bound to `extranet/material/<id>`), 0600 in
//! folders 0700, durable before the row naming it commits. Staff download them as a stream.
//!
//! Earlier versions stored materials in clear, content-addressed by BLAKE3
//! (`data_dir/materials/<hash[0..2]>/<hash>`), and file names in clear. [`seal_stored`] runs at
//! every start: it seals each such material into its own file, then removes the clear files,
//! and seals clear file names and reasons in the database (see `docs/personal-data.md`).

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use ow_pii::{FileSealing, OpenReader, PiiKeyring};
use sqlx::Row;

use crate::error::{ExtranetError, Result};
use crate::{AppState, cases};

/// The sealing context of a material's file: zone and material id.
pub fn material_context(material_id: &str) -> String {
    format!("extranet/material/{material_id}")
}

/// The folder of materials.
pub fn materials_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("materials")
}

/// Where the sealed file of the material with row id `material_id` lives; `None` for anything
/// that is not an id as `ow_store::new_id` makes them (hex digits and hyphens).
pub fn material_file(data_dir: &Path, material_id: &str) -> Option<PathBuf> {
    let ok = (32..=64).contains(&material_id.len())
        && material_id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-');
    ok.then(|| {
        materials_dir(data_dir)
            .join(&material_id[material_id.len() - 2..])
            .join(material_id)
    })
}

/// The content-addressed path an earlier version stored a material at, in clear.
pub fn legacy_material_path(data_dir: &Path, blake3_hex: &str) -> PathBuf {
    let hex: String = blake3_hex
        .chars()
        .filter(char::is_ascii_hexdigit)
        .collect::<String>()
        .to_ascii_lowercase();
    let prefix = hex.get(..2).unwrap_or("00").to_owned();
    materials_dir(data_dir).join(prefix).join(hex)
}

/// Creates `dir` and missing parents readable by the owner only (0700).
pub fn create_private_dir(dir: &Path) -> Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ExtranetError::io("create the folder", dir, e))
}

/// Makes the materials folder exist with mode 0700 (an existing one is tightened).
pub fn prepare_dir(data_dir: &Path) -> Result<()> {
    let dir = materials_dir(data_dir);
    create_private_dir(&dir)?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| ExtranetError::io("restrict", &dir, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| ExtranetError::io("sync", dir, e))
}

/// Seals `source` into the file of material `material_id`, durably (data synced, renamed,
/// folder synced), before the caller commits the row that names it. Blocking.
pub fn store_blocking(
    pii: &PiiKeyring,
    data_dir: &Path,
    material_id: &str,
    source: &mut impl std::io::Read,
) -> Result<u64> {
    let path = material_file(data_dir, material_id)
        .ok_or_else(|| ExtranetError::Corrupt(format!("material id {material_id:?}")))?;
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| materials_dir(data_dir));
    let new_dir = !dir.is_dir();
    create_private_dir(&dir)?;
    let len = pii.seal_to_path(material_context(material_id).as_bytes(), source, &path)?;
    sync_dir(&dir)?;
    if new_dir {
        sync_dir(&materials_dir(data_dir))?;
    }
    Ok(len)
}

/// Opens the sealed file of a material (blocking): a reader of its bytes, authenticated chunk by
/// chunk, and their number.
pub fn open_blocking(
    pii: &PiiKeyring,
    data_dir: &Path,
    material_id: &str,
) -> Result<(OpenReader<std::fs::File>, u64)> {
    let path = material_file(data_dir, material_id)
        .ok_or_else(|| ExtranetError::Corrupt(format!("material id {material_id:?}")))?;
    Ok(pii.open_file(material_context(material_id).as_bytes(), &path)?)
}

/// The file of a material as a response body streamed from a blocking thread, and its size. The
/// first chunk is opened before this returns: a file that does not open is an error here.
pub async fn body(state: &AppState, material_id: &str) -> Result<(axum::body::Body, u64)> {
    let pii = state.pii.clone();
    let data_dir = state.data_dir().to_path_buf();
    let id = material_id.to_owned();
    let (reader, len) = tokio::task::spawn_blocking(move || open_blocking(&pii, &data_dir, &id))
        .await
        .map_err(|e| ExtranetError::Corrupt(format!("the file task failed: {e}")))??;
    let id = material_id.to_owned();
    let body = ow_web::download::blocking_reader_body(reader, move |e| {
        tracing::error!(material = %id, error = %e, "a stored material failed while it was sent");
    })
    .await
    .map_err(|e| ExtranetError::Corrupt(format!("material {material_id}: {e}")))?;
    Ok((body, len))
}

/// What [`seal_stored`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SealReport {
    /// Materials stored in clear (content-addressed) sealed into their own file.
    pub files_sealed: usize,
    /// Clear content-addressed files removed once every material using them was sealed.
    pub clear_files_removed: usize,
    /// File names sealed in the database.
    pub names_sealed: usize,
    /// Reasons and notes sealed in the database.
    pub reasons_sealed: usize,
}

/// Brings what an earlier version stored in clear under the personal-data keys: each material
/// without a sealed file of its own is sealed from its clear content-addressed file (checked
/// against the row's BLAKE3), the clear files are then removed; clear file names, case status
/// reasons and event reasons are sealed in place. Idempotent; run at every start before
/// serving. A material whose clear file is missing or does not match is reported and left.
pub async fn seal_stored(state: &AppState) -> Result<SealReport> {
    let mut report = SealReport::default();
    let rows = sqlx::query("SELECT id, blake3, file_name FROM ext_case_materials")
        .fetch_all(state.store.reader())
        .await?;
    let mut legacy: Vec<PathBuf> = Vec::new();
    for row in &rows {
        let id: String = row.try_get("id")?;
        let hash: String = row.try_get("blake3")?;
        let name: String = row.try_get("file_name")?;
        if !cases::is_sealed_text(&name) {
            sqlx::query("UPDATE ext_case_materials SET file_name = $1 WHERE id = $2")
                .bind(cases::seal_file_name(&state.pii, &id, &name))
                .bind(&id)
                .execute(state.store.writer())
                .await?;
            report.names_sealed += 1;
        }
        let Some(sealed_path) = material_file(state.data_dir(), &id) else {
            continue;
        };
        if sealed_path.exists() {
            continue;
        }
        let clear = legacy_material_path(state.data_dir(), &hash);
        if !clear.is_file() {
            tracing::warn!(material = %id, "material has neither a sealed nor a clear file");
            continue;
        }
        let (pii, data_dir, id2, clear2) = (
            state.pii.clone(),
            state.data_dir().to_path_buf(),
            id.clone(),
            clear.clone(),
        );
        let stored = tokio::task::spawn_blocking(move || -> Result<bool> {
            let bytes =
                std::fs::read(&clear2).map_err(|e| ExtranetError::io("read", &clear2, e))?;
            if !blake3::hash(&bytes).to_hex().eq_ignore_ascii_case(&hash) {
                return Ok(false);
            }
            store_blocking(&pii, &data_dir, &id2, &mut bytes.as_slice())?;
            Ok(true)
        })
        .await
        .map_err(|e| ExtranetError::Corrupt(format!("the file task failed: {e}")))??;
        if stored {
            report.files_sealed += 1;
            if !legacy.contains(&clear) {
                legacy.push(clear);
            }
        } else {
            tracing::warn!(material = %id, "a clear material file does not match its hash; left as it is");
        }
    }
    for path in &legacy {
        match std::fs::remove_file(path) {
            Ok(()) => report.clear_files_removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(ExtranetError::io("remove", path, e)),
        }
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
    }
    report.reasons_sealed = cases::seal_stored_reasons(state).await?;
    Ok(report)
}

/// Brings every material file to the active personal-data key (after a rotation): files sealed
/// with an older key are sealed again. Returns how many were re-sealed. For the operator's
/// `reseal-materials` command; blocking work runs off the async workers.
pub async fn reseal_all(state: &AppState) -> Result<usize> {
    let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM ext_case_materials")
        .fetch_all(state.store.reader())
        .await?;
    let pii = state.pii.clone();
    let data_dir = state.data_dir().to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<usize> {
        let mut resealed = 0;
        for id in &ids {
            let Some(path) = material_file(&data_dir, id) else {
                continue;
            };
            if !path.exists() {
                continue;
            }
            if pii.ensure_sealed_file(material_context(id).as_bytes(), &path)?
                != FileSealing::Current
            {
                resealed += 1;
            }
        }
        Ok(resealed)
    })
    .await
    .map_err(|e| ExtranetError::Corrupt(format!("the file task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_per_material_and_refuse_anything_else() {
        let id = "0190f3c2-7a1b-7c3d-8e9f-001122334455";
        assert_eq!(
            material_file(Path::new("/d"), id),
            Some(PathBuf::from(format!("/d/materials/55/{id}")))
        );
        assert!(material_file(Path::new("/d"), "../../etc/passwd").is_none());
        assert!(material_file(Path::new("/d"), &id.to_uppercase()).is_none());
        let p = legacy_material_path(Path::new("/d"), "AB12cd");
        assert_eq!(p, Path::new("/d/materials/ab/ab12cd"));
        let p = legacy_material_path(Path::new("/d"), "../../etc");
        assert!(p.starts_with("/d/materials"));
    }

    #[test]
    fn stored_sealed_and_bound_to_the_material() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| ExtranetError::io("tmp", Path::new("."), e))?;
        let pii = PiiKeyring::ephemeral()?;
        let a = ow_store::new_id();
        let b = ow_store::new_id();
        store_blocking(
            &pii,
            dir.path(),
            &a,
            &mut &b"%PDF-1.7 370781199001011234"[..],
        )?;
        let path =
            material_file(dir.path(), &a).ok_or_else(|| ExtranetError::Corrupt("id".into()))?;
        let on_disk = std::fs::read(&path).map_err(|e| ExtranetError::io("read", &path, e))?;
        assert!(!on_disk.windows(18).any(|w| w == b"370781199001011234"));
        let mode = |p: &Path| {
            std::fs::metadata(p)
                .map(|m| m.permissions().mode() & 0o777)
                .ok()
        };
        assert_eq!(mode(&path), Some(0o600));
        assert_eq!(path.parent().and_then(mode), Some(0o700));
        let (mut reader, len) = open_blocking(&pii, dir.path(), &a)?;
        assert_eq!(len, 27);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut out)
            .map_err(|e| ExtranetError::io("read", &path, e))?;
        assert_eq!(out, b"%PDF-1.7 370781199001011234");
        // The file copied in place of another material's does not open.
        let other =
            material_file(dir.path(), &b).ok_or_else(|| ExtranetError::Corrupt("id".into()))?;
        create_private_dir(other.parent().unwrap_or(dir.path()))?;
        std::fs::copy(&path, &other).map_err(|e| ExtranetError::io("copy", &other, e))?;
        let (mut reader, _) = open_blocking(&pii, dir.path(), &b)?;
        assert!(std::io::Read::read_to_end(&mut reader, &mut Vec::new()).is_err());
        Ok(())
    }
}
