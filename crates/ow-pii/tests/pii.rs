//! Behaviour of the personal-data keyring through its key file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use ow_pii::{
    Field, PiiError, PiiKeyId, PiiKeyring, SEALED_OVERHEAD, Sealed, normalize_id_number,
    normalize_phone,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

const ID_NUMBER: &str = "370781199001011234";
const NAME: &str = "张三丰";

fn key_file(dir: &tempfile::TempDir) -> Result<(PathBuf, PiiKeyId), PiiError> {
    let path = dir.path().join("pii.keys");
    let id = PiiKeyring::generate_key_file(&path)?;
    Ok((path, id))
}

fn mode(path: &Path) -> Result<u32, std::io::Error> {
    Ok(fs::metadata(path)?.permissions().mode() & 0o777)
}

/// The base64 key material of every key line in the file.
fn key_material(path: &Path) -> Result<Vec<String>, std::io::Error> {
    Ok(fs::read_to_string(path)?
        .lines()
        .filter(|l| l.starts_with("ow-pii"))
        .filter_map(|l| l.split(':').nth(2).map(str::to_owned))
        .collect())
}

#[test]
fn round_trip_in_both_encodings() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, id) = key_file(&dir)?;
    let keys = PiiKeyring::load(&path)?;
    assert_eq!(keys.active_key_id(), id);

    let sealed = keys.seal(Field::PersonName, b"holder:1", NAME.as_bytes());
    assert_eq!(sealed.key_id(), id);
    assert_eq!(
        keys.open(Field::PersonName, b"holder:1", &sealed)?
            .as_slice(),
        NAME.as_bytes()
    );

    let bytes = sealed.to_bytes();
    assert_eq!(bytes.len(), NAME.len() + SEALED_OVERHEAD);
    assert_eq!(Sealed::from_bytes(&bytes)?, sealed);

    let text = sealed.to_text();
    assert!(text.starts_with(&format!("v1.{id}.")), "{text}");
    assert_eq!(Sealed::from_text(&text)?, sealed);
    assert_eq!(text.parse::<Sealed>()?, sealed);
    assert_eq!(sealed.to_string(), text);
    assert_eq!(
        keys.open_string(Field::PersonName, b"holder:1", &text.parse()?)?
            .as_str(),
        NAME
    );

    // Empty values seal too.
    let empty = keys.seal(Field::Address, b"", b"");
    assert!(keys.open(Field::Address, b"", &empty)?.is_empty());
    Ok(())
}

#[test]
fn same_value_seals_differently_each_time() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, _) = key_file(&dir)?;
    let keys = PiiKeyring::load(&path)?;
    let a = keys.seal(Field::IdNumber, b"r", ID_NUMBER.as_bytes());
    let b = keys.seal(Field::IdNumber, b"r", ID_NUMBER.as_bytes());
    assert_ne!(a.to_bytes(), b.to_bytes());
    Ok(())
}

#[test]
fn wrong_field_or_context_fails() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, _) = key_file(&dir)?;
    let keys = PiiKeyring::load(&path)?;
    let sealed = keys.seal(Field::IdNumber, b"holder:1", ID_NUMBER.as_bytes());

    for (field, context) in [
        (Field::PersonName, &b"holder:1"[..]),
        (Field::Phone, b"holder:1"),
        (Field::Other("id-number"), b"holder:1"),
        (Field::IdNumber, b"holder:2"),
        (Field::IdNumber, b""),
        (Field::IdNumber, b"holder:1 "),
    ] {
        let err = keys
            .open(field, context, &sealed)
            .err()
            .ok_or("opened with the wrong field or context")?;
        assert!(
            matches!(err, PiiError::Authentication { field: f } if f == field),
            "{err:?}"
        );
        assert!(err.to_string().contains("authentication failed"), "{err}");
    }
    Ok(())
}

#[test]
fn tampered_values_fail() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, _) = key_file(&dir)?;
    let keys = PiiKeyring::load(&path)?;
    let sealed = keys.seal(Field::IdNumber, b"holder:1", ID_NUMBER.as_bytes());
    let bytes = sealed.to_bytes();

    // Flip one bit in every byte after the version and key id: nonce, ciphertext and tag.
    for i in 5..bytes.len() {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        let err = keys
            .open(Field::IdNumber, b"holder:1", &Sealed::from_bytes(&bad)?)
            .err()
            .ok_or_else(|| format!("tampered byte {i} went unnoticed"))?;
        assert!(matches!(err, PiiError::Authentication { .. }), "{err:?}");
    }
    // Truncating the tag or appending a byte fails too.
    let mut short = bytes.clone();
    short.pop();
    assert!(
        keys.open(Field::IdNumber, b"holder:1", &Sealed::from_bytes(&short)?)
            .is_err()
    );
    let mut long = bytes.clone();
    long.push(0);
    assert!(
        keys.open(Field::IdNumber, b"holder:1", &Sealed::from_bytes(&long)?)
            .is_err()
    );
    Ok(())
}

#[test]
fn relabelled_key_id_fails() -> TestResult {
    // A value whose key id is rewritten to another key of the file does not open.
    let dir = tempfile::tempdir()?;
    let (path, old) = key_file(&dir)?;
    let new = PiiKeyring::rotate(&path)?;
    let keys = PiiKeyring::load(&path)?;
    let sealed = keys.seal(Field::Phone, b"r", b"13800138000");
    let text = sealed
        .to_text()
        .replacen(&new.to_string(), &old.to_string(), 1);
    let err = keys
        .open(Field::Phone, b"r", &text.parse()?)
        .err()
        .ok_or("opened under another key id")?;
    assert!(matches!(err, PiiError::Authentication { .. }), "{err:?}");
    Ok(())
}

#[test]
fn unknown_key_id_is_named() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path_a, _) = key_file(&dir)?;
    let path_b = dir.path().join("other.keys");
    PiiKeyring::generate_key_file(&path_b)?;
    let a = PiiKeyring::load(&path_a)?;
    let b = PiiKeyring::load(&path_b)?;
    let sealed = a.seal(Field::PersonName, b"r", NAME.as_bytes());
    let err = b
        .open(Field::PersonName, b"r", &sealed)
        .err()
        .ok_or("opened with a foreign keyring")?;
    assert!(
        matches!(err, PiiError::UnknownKey { key_id } if key_id == sealed.key_id()),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(message.contains(&sealed.key_id().to_string()), "{message}");
    assert!(message.contains("missing an old key"), "{message}");
    Ok(())
}

#[test]
fn rotation_keeps_old_values_and_blind_indexes() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, first) = key_file(&dir)?;
    let before = PiiKeyring::load(&path)?;
    let old_sealed = before.seal(Field::IdNumber, b"holder:7", ID_NUMBER.as_bytes());
    let old_index = before.blind_index(Field::IdNumber, ID_NUMBER);
    let index_line = |p: &Path| -> Result<String, std::io::Error> {
        Ok(fs::read_to_string(p)?
            .lines()
            .find(|l| l.starts_with("ow-pii-index-key:"))
            .unwrap_or_default()
            .to_owned())
    };
    let index_before = index_line(&path)?;

    let second = PiiKeyring::rotate(&path)?;
    let third = PiiKeyring::rotate(&path)?;
    assert_ne!(first, second);
    assert_ne!(second, third);
    assert_eq!(mode(&path)?, 0o600);
    assert_eq!(index_line(&path)?, index_before);
    // Exactly one active mark, on the newest key; no temporary file left behind.
    let text = fs::read_to_string(&path)?;
    assert_eq!(text.matches(":active").count(), 1);
    assert!(text.contains(&format!("ow-pii-key:{third}:")));
    assert_eq!(fs::read_dir(dir.path())?.count(), 1);

    let after = PiiKeyring::load(&path)?;
    assert_eq!(after.active_key_id(), third);
    assert_eq!(after.key_ids(), vec![first, second, third]);
    assert_eq!(after.index_key_id(), before.index_key_id());
    assert_eq!(
        after
            .open(Field::IdNumber, b"holder:7", &old_sealed)?
            .as_slice(),
        ID_NUMBER.as_bytes()
    );
    let new_sealed = after.seal(Field::IdNumber, b"holder:8", ID_NUMBER.as_bytes());
    assert_eq!(new_sealed.key_id(), third);
    assert_eq!(after.blind_index(Field::IdNumber, ID_NUMBER), old_index);

    // Re-encrypting old values moves them to the active key.
    assert!(after.needs_reseal(&old_sealed));
    assert!(!after.needs_reseal(&new_sealed));
    let resealed = after.reseal(Field::IdNumber, b"holder:7", &old_sealed)?;
    assert_eq!(resealed.key_id(), third);
    assert_eq!(
        after
            .open(Field::IdNumber, b"holder:7", &resealed)?
            .as_slice(),
        ID_NUMBER.as_bytes()
    );

    // A process still holding the old keyring cannot open values sealed with the new key,
    // and says why.
    assert!(matches!(
        before.open(Field::IdNumber, b"holder:8", &new_sealed),
        Err(PiiError::UnknownKey { .. })
    ));
    Ok(())
}

#[test]
fn loose_key_file_is_refused() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, _) = key_file(&dir)?;
    assert_eq!(mode(&path)?, 0o600);
    for loose in [0o640, 0o604, 0o644, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(loose))?;
        for err in [
            PiiKeyring::load(&path).err(),
            PiiKeyring::rotate(&path).err(),
        ] {
            let err = err.ok_or("a loose key file was accepted")?;
            assert!(
                matches!(err, PiiError::Key(ow_keys::KeyError::LooseSecret { .. })),
                "{err:?}"
            );
            assert!(err.to_string().contains("chmod 600"), "{err}");
        }
    }
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400))?;
    PiiKeyring::load(&path)?;
    Ok(())
}

#[test]
fn missing_key_file_is_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    let err = PiiKeyring::load(&dir.path().join("absent.keys"))
        .err()
        .ok_or("loaded a missing file")?;
    assert!(matches!(err, PiiError::Key(_)), "{err:?}");
    Ok(())
}

#[test]
fn generate_never_overwrites() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, _) = key_file(&dir)?;
    let original = fs::read(&path)?;
    let err = PiiKeyring::generate_key_file(&path)
        .err()
        .ok_or("overwrote a key file")?;
    assert!(matches!(err, PiiError::Exists { .. }), "{err:?}");
    assert!(err.to_string().contains("never overwrites"), "{err}");
    assert_eq!(fs::read(&path)?, original);

    // Nor any other file.
    let other = dir.path().join("notes.txt");
    fs::write(&other, "keep me")?;
    assert!(matches!(
        PiiKeyring::generate_key_file(&other),
        Err(PiiError::Exists { .. })
    ));
    assert_eq!(fs::read_to_string(&other)?, "keep me");
    Ok(())
}

#[test]
fn generated_files_hold_distinct_keys() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (a, _) = key_file(&dir)?;
    let b = dir.path().join("b.keys");
    PiiKeyring::generate_key_file(&b)?;
    let (ka, kb) = (PiiKeyring::load(&a)?, PiiKeyring::load(&b)?);
    assert_ne!(ka.active_key_id(), kb.active_key_id());
    assert_ne!(
        ka.blind_index(Field::IdNumber, ID_NUMBER),
        kb.blind_index(Field::IdNumber, ID_NUMBER)
    );
    Ok(())
}

#[test]
fn blind_index_is_per_field_and_exact() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, _) = key_file(&dir)?;
    let keys = PiiKeyring::load(&path)?;
    let index = keys.blind_index(Field::IdNumber, ID_NUMBER);
    assert_eq!(index.len(), 64);
    assert!(
        index
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(keys.blind_index(Field::IdNumber, ID_NUMBER), index);
    assert_ne!(keys.blind_index(Field::Phone, ID_NUMBER), index);
    assert_ne!(
        keys.blind_index(Field::Other("id-number"), ID_NUMBER),
        index
    );
    assert_ne!(
        keys.blind_index(Field::IdNumber, "370781199001011235"),
        index
    );
    // Normalisation makes user spellings meet.
    assert_eq!(
        keys.blind_index(
            Field::IdNumber,
            &normalize_id_number(" 11010519491231002x ")
        ),
        keys.blind_index(Field::IdNumber, "11010519491231002X")
    );
    assert_eq!(
        keys.blind_index(Field::Phone, &normalize_phone("+86 138-0013-8000")),
        keys.blind_index(Field::Phone, "13800138000")
    );
    // The index key is not the encryption key: no key line's material appears in the index,
    // and the index is not a plain BLAKE3 hash of the value.
    assert_ne!(blake3::hash(ID_NUMBER.as_bytes()).to_hex().as_str(), index);
    Ok(())
}

#[test]
fn encodings_reject_malformed_input() {
    let bad_text = [
        "",
        "hello",
        "v2.01020304.AAAA",
        "v1",
        "v1.",
        "v1.0102030",
        "v1.01020304",
        "v1.0102030g.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.010203040.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "v1.01020304.",
        "v1.01020304.AAAA",
        "v1.01020304.not base64!",
        "v1.01020304.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ];
    for text in bad_text {
        match Sealed::from_text(text) {
            Err(PiiError::Malformed { reason }) => assert!(!reason.is_empty()),
            other => panic!("{text:?} gave {other:?}"),
        }
    }
    let bad_bytes: [&[u8]; 4] = [&[], &[2; 60], &[1, 1, 2, 3], &[1; 44]];
    for bytes in bad_bytes {
        assert!(
            matches!(Sealed::from_bytes(bytes), Err(PiiError::Malformed { .. })),
            "{bytes:?}"
        );
    }
    // The shortest well-formed value (empty plaintext) decodes.
    assert!(Sealed::from_bytes(&[1; SEALED_OVERHEAD]).is_ok());
}

#[test]
fn key_file_format_errors_name_the_line_not_the_key() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, _) = key_file(&dir)?;
    let good = fs::read_to_string(&path)?;
    let secrets = key_material(&path)?;
    let index_line = good
        .lines()
        .find(|l| l.starts_with("ow-pii-index-key:"))
        .ok_or("no index line")?
        .to_owned();
    let key_line = good
        .lines()
        .find(|l| l.starts_with("ow-pii-key:"))
        .ok_or("no key line")?
        .to_owned();
    let plain_key_line = key_line.trim_end_matches(":active").to_owned();
    let second_dir = tempfile::tempdir()?;
    let (other, _) = key_file(&second_dir)?;
    let other_key_line = fs::read_to_string(&other)?
        .lines()
        .find(|l| l.starts_with("ow-pii-key:"))
        .ok_or("no key line")?
        .to_owned();

    let mut damaged_id = key_line.clone();
    // Change one hex digit of the id.
    let digit = damaged_id.as_bytes()[11];
    damaged_id.replace_range(11..12, if digit == b'0' { "1" } else { "0" });

    let cases: Vec<(String, &str)> = vec![
        (format!("{key_line}\n"), "no ow-pii-index-key"),
        (format!("{index_line}\n"), "no ow-pii-key"),
        (
            format!("{index_line}\n{index_line}\n{key_line}\n"),
            "line 2",
        ),
        (
            format!("{index_line}\n{key_line}\n{plain_key_line}\n"),
            "appears twice",
        ),
        (
            format!("{index_line}\n{key_line}\n{other_key_line}\n"),
            "marked :active",
        ),
        (format!("{index_line}\n{damaged_id}\n"), "does not match"),
        (
            format!("{index_line}\n{key_line}\npassword=hunter2\n"),
            "line 3",
        ),
        (
            format!("{index_line}\now-pii-key:0011aabb:short\n"),
            "base64",
        ),
        (
            format!("{index_line}\now-pii-key:0011aabb:AAAA\n"),
            "32 bytes",
        ),
        (
            format!("{index_line}\now-pii-key:zz:AAAA\n"),
            "8 hex digits",
        ),
    ];
    for (text, expected) in cases {
        fs::write(&path, &text)?;
        let err = PiiKeyring::load(&path)
            .err()
            .ok_or_else(|| format!("accepted a bad key file expecting {expected:?}"))?;
        let message = err.to_string();
        assert!(matches!(err, PiiError::KeyFile { .. }), "{err:?}");
        assert!(
            message.contains(expected),
            "{message} (wanted {expected:?})"
        );
        for secret in &secrets {
            assert!(
                !message.contains(secret.as_str()),
                "key material in {message}"
            );
        }
        // Rotation refuses a bad file too, and leaves it alone.
        assert!(PiiKeyring::rotate(&path).is_err());
        assert_eq!(fs::read_to_string(&path)?, text);
    }
    Ok(())
}

#[test]
fn active_key_is_the_marked_one_else_the_first() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, first) = key_file(&dir)?;
    let second = PiiKeyring::rotate(&path)?;
    let text = fs::read_to_string(&path)?;
    // As rotation wrote it: the new key is marked.
    assert_eq!(PiiKeyring::load(&path)?.active_key_id(), second);
    // Without any mark the first key line is active.
    fs::write(&path, text.replace(":active", ""))?;
    assert_eq!(PiiKeyring::load(&path)?.active_key_id(), first);
    // Comments, blank lines, surrounding spaces and CRLF are fine.
    let mut decorated = String::from("# a comment\r\n\r\n");
    for line in text.lines() {
        decorated.push_str("  ");
        decorated.push_str(line);
        decorated.push_str("  \r\n");
    }
    fs::write(&path, decorated)?;
    let keys = PiiKeyring::load(&path)?;
    assert_eq!(keys.active_key_id(), second);
    assert_eq!(keys.key_ids(), vec![first, second]);
    Ok(())
}

#[test]
fn debug_output_holds_no_secret_or_plaintext() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, id) = key_file(&dir)?;
    let keys = PiiKeyring::load(&path)?;
    let sealed = keys.seal(Field::IdNumber, b"r", ID_NUMBER.as_bytes());
    let debug = format!("{keys:?} {keys:#?} {sealed:?}");
    assert!(debug.contains(&id.to_string()), "{debug}");
    for secret in key_material(&path)? {
        assert!(!debug.contains(secret.as_str()), "{debug}");
    }
    assert!(!debug.contains(ID_NUMBER));
    let err = keys
        .open(Field::PersonName, b"r", &sealed)
        .err()
        .ok_or("opened")?;
    assert!(!format!("{err} {err:?}").contains(ID_NUMBER));
    Ok(())
}

#[test]
fn non_utf8_plaintext_is_refused_as_string() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, _) = key_file(&dir)?;
    let keys = PiiKeyring::load(&path)?;
    let sealed = keys.seal(Field::Other("photo"), b"r", &[0xff, 0xfe]);
    assert!(matches!(
        keys.open_string(Field::Other("photo"), b"r", &sealed),
        Err(PiiError::Malformed { .. })
    ));
    Ok(())
}

/// The requirement's check: write many sealed records with their blind indexes into a file, as a
/// database would, then search the file's bytes for the clear values.
#[test]
fn database_page_holds_no_clear_id_number() -> TestResult {
    let dir = tempfile::tempdir()?;
    let (path, _) = key_file(&dir)?;
    let keys = PiiKeyring::load(&path)?;
    let page_path = dir.path().join("holders.page");

    let seeded_id = ID_NUMBER;
    let seeded_phone = "13800138000";
    let mut page = Vec::new();
    // Where each row starts and ends (binary columns may contain any byte, so no separators).
    let mut rows = Vec::new();
    for row in 0..500u32 {
        let start = page.len();
        let (id_number, name, phone) = if row == 250 {
            (
                seeded_id.to_owned(),
                NAME.to_owned(),
                seeded_phone.to_owned(),
            )
        } else {
            (
                format!("3707811990{:08}", u64::from(row) * 7919 % 100_000_000),
                format!("测试{row}"),
                format!("139{:08}", row),
            )
        };
        let context = format!("rights_holder:{row}");
        let context = context.as_bytes();
        // Alternate the binary (BLOB) and text (TEXT) column encodings.
        let sealed_id = keys.seal(Field::IdNumber, context, id_number.as_bytes());
        if row % 2 == 0 {
            page.extend_from_slice(&sealed_id.to_bytes());
        } else {
            page.extend_from_slice(sealed_id.to_text().as_bytes());
        }
        page.extend_from_slice(keys.blind_index(Field::IdNumber, &id_number).as_bytes());
        page.extend_from_slice(
            keys.seal(Field::PersonName, context, name.as_bytes())
                .to_text()
                .as_bytes(),
        );
        page.extend_from_slice(
            keys.seal(Field::Phone, context, phone.as_bytes())
                .to_bytes()
                .as_slice(),
        );
        page.extend_from_slice(keys.blind_index(Field::Phone, &phone).as_bytes());
        rows.push(start..page.len());
    }
    fs::write(&page_path, &page)?;

    let on_disk = fs::read(&page_path)?;
    let contains = |needle: &[u8]| on_disk.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(seeded_id.as_bytes()),
        "clear ID number in the page"
    );
    assert!(
        !contains(&seeded_id.as_bytes()[6..14]),
        "birth date in the page"
    );
    assert!(!contains(NAME.as_bytes()), "clear name in the page");
    assert!(
        !contains(seeded_phone.as_bytes()),
        "clear phone in the page"
    );
    // Its blind index is there, and finds the row.
    let wanted = keys.blind_index(Field::IdNumber, &normalize_id_number(seeded_id));
    let found: Vec<usize> = rows
        .iter()
        .enumerate()
        .filter(|(_, range)| {
            on_disk
                .get((*range).clone())
                .is_some_and(|row| row.windows(64).any(|w| w == wanted.as_bytes()))
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(found, vec![250]);
    Ok(())
}

#[cfg(feature = "test-util")]
#[test]
fn ephemeral_keyring_works_without_a_file() -> TestResult {
    let keys = PiiKeyring::ephemeral()?;
    let sealed = keys.seal(Field::PersonName, b"r", NAME.as_bytes());
    assert_eq!(
        keys.open_string(Field::PersonName, b"r", &sealed)?.as_str(),
        NAME
    );
    assert_ne!(
        PiiKeyring::ephemeral()?.blind_index(Field::PersonName, NAME),
        keys.blind_index(Field::PersonName, NAME)
    );
    Ok(())
}
