//! Sealed files: round trips, the attacks the format must stop (truncation, reordering, a dropped
//! chunk, a file swapped between records), rotation and files left in clear by earlier versions.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use ow_pii::{
    FILE_CHUNK_SIZE, FILE_HEADER_LEN, FileSealing, PiiError, PiiKeyring, SealedFileHeader,
    is_sealed_file,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const CONTEXT: &[u8] = b"internet/material/0190f3c2-7a1b-7c3d-8e9f-001122334455";
const CHUNK: usize = FILE_CHUNK_SIZE as usize;
/// A stored chunk: plaintext and tag.
const STORED: usize = CHUNK + 16;

fn keyring(dir: &tempfile::TempDir) -> Result<(PathBuf, PiiKeyring), PiiError> {
    let path = dir.path().join("pii.keys");
    PiiKeyring::generate_key_file(&path)?;
    let keys = PiiKeyring::load(&path)?;
    Ok((path, keys))
}

/// Bytes that look like a scanned ID card: a JPEG start, then a recognisable pattern.
fn material(len: usize) -> Vec<u8> {
    let mut out = b"\xFF\xD8\xFF\xE0 370781199001011234 ".to_vec();
    out.extend_from_slice("张三丰 ".as_bytes());
    let mut n: u32 = 7;
    while out.len() < len {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        out.push((n >> 16) as u8);
    }
    out.truncate(len);
    out
}

fn seal(keys: &PiiKeyring, context: &[u8], plain: &[u8]) -> Result<Vec<u8>, std::io::Error> {
    let mut writer = keys.seal_writer(context, Vec::new())?;
    // Written in uneven pieces, as a network upload arrives.
    for piece in plain.chunks(7_919) {
        writer.write_all(piece)?;
    }
    let (sealed, len) = writer.finish()?;
    assert_eq!(len, plain.len() as u64);
    Ok(sealed)
}

fn open(keys: &PiiKeyring, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, PiiError> {
    let mut reader = keys.open_reader(context, sealed)?;
    let mut out = Vec::new();
    reader
        .read_to_end(&mut out)
        .map_err(|e| PiiError::from_io("memory".as_ref(), e))?;
    Ok(out)
}

fn assert_auth_failure(result: Result<Vec<u8>, PiiError>, what: &str) {
    match result {
        Err(PiiError::FileAuthentication { .. }) => {}
        other => panic!("{what}: expected an authentication failure, got {other:?}"),
    }
}

#[test]
fn round_trip_at_every_chunk_boundary() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_, keys) = keyring(&dir)?;
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 3 * CHUNK + 17] {
        let plain = material(len);
        let sealed = seal(&keys, CONTEXT, &plain)?;
        let header = SealedFileHeader::from_bytes(&sealed)?;
        assert_eq!(header.key_id(), keys.active_key_id());
        assert_eq!(
            header.plaintext_len(sealed.len() as u64)?,
            len as u64,
            "length from the layout, {len} bytes"
        );
        assert!(is_sealed_file(&sealed));
        assert_eq!(open(&keys, CONTEXT, &sealed)?, plain, "{len} bytes");
        // Nothing of the plaintext is visible.
        if len > 40 {
            assert!(!sealed.windows(18).any(|w| w == b"370781199001011234"));
            assert!(!sealed.windows(4).any(|w| w == b"\xFF\xD8\xFF\xE0"));
        }
    }
    Ok(())
}

#[test]
fn same_file_seals_differently_each_time() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_, keys) = keyring(&dir)?;
    let plain = material(1000);
    assert_ne!(seal(&keys, CONTEXT, &plain)?, seal(&keys, CONTEXT, &plain)?);
    Ok(())
}

#[test]
fn truncated_files_fail_to_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_, keys) = keyring(&dir)?;
    let sealed = seal(&keys, CONTEXT, &material(3 * CHUNK + 100))?;
    // Cut at a chunk boundary (the last chunk dropped): the new last chunk was not sealed as
    // last.
    assert_auth_failure(
        open(&keys, CONTEXT, &sealed[..FILE_HEADER_LEN + 3 * STORED]),
        "cut at a chunk boundary",
    );
    // Cut inside a chunk, and by one byte.
    assert_auth_failure(
        open(&keys, CONTEXT, &sealed[..FILE_HEADER_LEN + STORED + 500]),
        "cut inside a chunk",
    );
    assert_auth_failure(
        open(&keys, CONTEXT, &sealed[..sealed.len() - 1]),
        "cut by one byte",
    );
    // A file of exactly full chunks cut after its first.
    let full = seal(&keys, CONTEXT, &material(2 * CHUNK))?;
    assert_auth_failure(
        open(&keys, CONTEXT, &full[..FILE_HEADER_LEN + STORED]),
        "full chunks, second dropped",
    );
    // Cut inside the header, or after it.
    assert!(matches!(
        open(&keys, CONTEXT, &sealed[..FILE_HEADER_LEN - 1]),
        Err(PiiError::Malformed { .. })
    ));
    assert_auth_failure(
        open(&keys, CONTEXT, &sealed[..FILE_HEADER_LEN]),
        "header only",
    );
    // Appended bytes.
    let mut longer = sealed.clone();
    longer.extend_from_slice(&[0u8; 16]);
    assert_auth_failure(open(&keys, CONTEXT, &longer), "bytes appended");
    Ok(())
}

#[test]
fn reordered_chunks_fail_to_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_, keys) = keyring(&dir)?;
    let sealed = seal(&keys, CONTEXT, &material(3 * CHUNK + 100))?;
    let chunk = |i: usize| {
        let start = FILE_HEADER_LEN + i * STORED;
        &sealed[start..(start + STORED).min(sealed.len())]
    };
    let mut swapped = sealed[..FILE_HEADER_LEN].to_vec();
    for i in [1, 0, 2, 3] {
        swapped.extend_from_slice(chunk(i));
    }
    assert_eq!(swapped.len(), sealed.len());
    assert_auth_failure(open(&keys, CONTEXT, &swapped), "chunks 0 and 1 swapped");
    // The first chunk repeated in place of the second.
    let mut repeated = sealed[..FILE_HEADER_LEN].to_vec();
    for i in [0, 0, 2, 3] {
        repeated.extend_from_slice(chunk(i));
    }
    assert_auth_failure(open(&keys, CONTEXT, &repeated), "chunk 0 repeated");
    Ok(())
}

#[test]
fn a_dropped_chunk_fails_to_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_, keys) = keyring(&dir)?;
    let sealed = seal(&keys, CONTEXT, &material(3 * CHUNK + 100))?;
    let mut dropped = sealed[..FILE_HEADER_LEN + STORED].to_vec();
    dropped.extend_from_slice(&sealed[FILE_HEADER_LEN + 2 * STORED..]);
    let mut reader = keys.open_reader(CONTEXT, dropped.as_slice())?;
    let mut out = Vec::new();
    let err = reader
        .read_to_end(&mut out)
        .expect_err("a dropped chunk must not open");
    assert!(matches!(
        PiiError::in_io(&err),
        Some(PiiError::FileAuthentication { chunk: 1 })
    ));
    // What was returned before the failure is exactly the first authenticated chunk.
    assert_eq!(out.len(), CHUNK);
    Ok(())
}

#[test]
fn a_file_swapped_between_records_fails_to_open() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_, keys) = keyring(&dir)?;
    let sealed = seal(&keys, CONTEXT, &material(5000))?;
    assert_auth_failure(
        open(
            &keys,
            b"internet/material/0190f3c2-7a1b-7c3d-8e9f-001122334456",
            &sealed,
        ),
        "another material id",
    );
    assert_auth_failure(
        open(
            &keys,
            b"extranet/material/0190f3c2-7a1b-7c3d-8e9f-001122334455",
            &sealed,
        ),
        "another zone",
    );
    // A header field changed (here the chunk size, which is in the associated data).
    let mut relabelled = sealed.clone();
    relabelled[16] ^= 1;
    assert!(open(&keys, CONTEXT, &relabelled).is_err());
    // One flipped ciphertext bit.
    let mut flipped = sealed;
    flipped[FILE_HEADER_LEN + 100] ^= 0x20;
    assert_auth_failure(open(&keys, CONTEXT, &flipped), "flipped bit");
    Ok(())
}

#[test]
fn another_zones_key_does_not_open_and_is_named() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_, keys) = keyring(&dir)?;
    let other_dir = tempfile::tempdir()?;
    let (_, other) = keyring(&other_dir)?;
    let sealed = seal(&keys, CONTEXT, &material(100))?;
    let err = open(&other, CONTEXT, &sealed).expect_err("another key file");
    assert!(
        matches!(err, PiiError::UnknownKey { key_id } if key_id == keys.active_key_id()),
        "{err}"
    );
    Ok(())
}

#[test]
fn rotation_keeps_old_files_readable_and_reseals_them() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (key_path, keys) = keyring(&dir)?;
    let old_id = keys.active_key_id();
    let files = dir.path().join("files");
    fs::create_dir(&files)?;
    let path = files.join("m1");
    let plain = material(2 * CHUNK + 3);
    let stored = keys.seal_to_path(CONTEXT, &mut plain.as_slice(), &path)?;
    assert_eq!(stored, plain.len() as u64);
    assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);

    let new_id = PiiKeyring::rotate(&key_path)?;
    let keys = PiiKeyring::load(&key_path)?;
    // The old file still opens, and is reported as needing a reseal.
    let (mut reader, len) = keys.open_file(CONTEXT, &path)?;
    assert_eq!(reader.header().key_id(), old_id);
    assert_eq!(len, plain.len() as u64);
    let mut out = Vec::new();
    reader.read_to_end(&mut out)?;
    assert_eq!(out, plain);
    // New files use the new key.
    let fresh = files.join("m2");
    keys.seal_to_path(b"other", &mut &b"x"[..], &fresh)?;
    assert_eq!(
        keys.open_file(b"other", &fresh)?.0.header().key_id(),
        new_id
    );

    // Re-sealing for the wrong record fails and leaves the file as it was.
    let before = fs::read(&path)?;
    let err = keys
        .ensure_sealed_file(b"another record", &path)
        .expect_err("not this record's file");
    assert!(
        matches!(err, PiiError::FileAuthentication { chunk: 0 }),
        "{err}"
    );
    assert_eq!(fs::read(&path)?, before);
    assert_eq!(
        keys.ensure_sealed_file(CONTEXT, &path)?,
        FileSealing::Resealed
    );
    assert_eq!(
        keys.ensure_sealed_file(CONTEXT, &path)?,
        FileSealing::Current
    );
    let (mut reader, _) = keys.open_file(CONTEXT, &path)?;
    assert_eq!(reader.header().key_id(), new_id);
    let mut out = Vec::new();
    reader.read_to_end(&mut out)?;
    assert_eq!(out, plain);
    assert_eq!(fs::metadata(&path)?.permissions().mode() & 0o777, 0o600);
    // No temporary file is left behind.
    assert_eq!(fs::read_dir(&files)?.count(), 2);
    Ok(())
}

#[test]
fn clear_files_of_earlier_versions_are_sealed_in_place() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_, keys) = keyring(&dir)?;
    let path = dir.path().join("legacy");
    let plain = material(CHUNK + 10);
    fs::write(&path, &plain)?;
    assert_eq!(
        keys.ensure_sealed_file(CONTEXT, &path)?,
        FileSealing::SealedFromClear
    );
    let on_disk = fs::read(&path)?;
    assert!(is_sealed_file(&on_disk));
    assert!(!on_disk.windows(18).any(|w| w == b"370781199001011234"));
    let (mut reader, _) = keys.open_file(CONTEXT, &path)?;
    let mut out = Vec::new();
    reader.read_to_end(&mut out)?;
    assert_eq!(out, plain);
    // An empty clear file too.
    let empty = dir.path().join("empty");
    fs::write(&empty, b"")?;
    assert_eq!(
        keys.ensure_sealed_file(CONTEXT, &empty)?,
        FileSealing::SealedFromClear
    );
    assert_eq!(keys.open_file(CONTEXT, &empty)?.1, 0);
    Ok(())
}

#[test]
fn a_writer_dropped_before_finish_leaves_a_file_that_never_opens() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_, keys) = keyring(&dir)?;
    let mut buffer = Vec::new();
    {
        let mut writer = keys.seal_writer(CONTEXT, &mut buffer)?;
        writer.write_all(&material(3 * CHUNK))?;
    }
    assert_auth_failure(open(&keys, CONTEXT, &buffer), "unfinished writer");
    Ok(())
}

#[test]
fn debug_shows_no_plaintext() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (_, keys) = keyring(&dir)?;
    let mut writer = keys.seal_writer(CONTEXT, Vec::new())?;
    writer.write_all("张三丰 370781199001011234".as_bytes())?;
    let shown = format!("{writer:?}");
    assert!(
        !shown.contains("张三丰") && !shown.contains("370781"),
        "{shown}"
    );
    let (sealed, _) = writer.finish()?;
    let mut reader = keys.open_reader(CONTEXT, sealed.as_slice())?;
    let mut out = String::new();
    reader.read_to_string(&mut out)?;
    let shown = format!("{reader:?}");
    assert!(
        !shown.contains("张三丰") && !shown.contains("370781"),
        "{shown}"
    );
    Ok(())
}
