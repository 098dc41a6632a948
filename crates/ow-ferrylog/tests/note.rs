//! Signed-note and checkpoint tests, including the published C2SP / Go `sumdb/note` examples.

#![allow(clippy::unwrap_used)] // tests may unwrap

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{SigningKey, VerifyingKey};
use ow_ferrylog::note::{
    Checkpoint, NoteError, key_hash, open_checkpoint, parse_checkpoint_note, sign_checkpoint,
    sign_note, verifier_key_string, verify_note,
};
use sha2::{Digest, Sha256};

/// Parses a verifier key `<name>+<hex hash>+<base64(0x01 || key)>`.
fn parse_vkey(vkey: &str) -> (String, VerifyingKey) {
    let mut parts = vkey.split('+');
    let name = parts.next().unwrap().to_owned();
    let _hash = parts.next().unwrap();
    let raw = B64.decode(parts.next().unwrap()).unwrap();
    assert_eq!(raw[0], 0x01);
    let key = VerifyingKey::from_bytes(&raw[1..].try_into().unwrap()).unwrap();
    (name, key)
}

// Source: the package documentation of Go's golang.org/x/mod/sumdb/note (note.go), the
// reference implementation of C2SP signed-note. Ed25519 is deterministic, so signing the same
// text with the same private key must reproduce the published note byte for byte.
const GO_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const GO_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const GO_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                       then you don't know what your problem is.\n";
const GO_NOTE: &str = "If you think cryptography is the answer to your problem,\n\
    then you don't know what your problem is.\n\
    \n\
    \u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

// Source: the example in the C2SP signed-note specification (github.com/C2SP/C2SP,
// signed-note.md).
const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

#[test]
fn go_reference_note_known_answer() {
    let (name, vkey) = parse_vkey(GO_VKEY);
    assert_eq!(hex::encode(key_hash(&name, &vkey)), "c74f20a3");
    assert_eq!(verifier_key_string(&name, &vkey), GO_VKEY);
    assert_eq!(verify_note(GO_NOTE, &vkey, &name).unwrap(), GO_TEXT);

    // The base64 itself may contain '+': take everything after the fourth '+'.
    let seed_b64 = GO_SKEY.splitn(5, '+').nth(4).unwrap();
    let seed = B64.decode(seed_b64).unwrap();
    assert_eq!(seed[0], 0x01);
    let skey = SigningKey::from_bytes(&seed[1..].try_into().unwrap());
    assert_eq!(skey.verifying_key(), vkey);
    assert_eq!(sign_note(GO_TEXT, &name, &skey).unwrap(), GO_NOTE);
}

#[test]
fn c2sp_spec_example_verifies() {
    let (name, vkey) = parse_vkey(SPEC_VKEY);
    assert_eq!(hex::encode(key_hash(&name, &vkey)), "530d903a");
    assert_eq!(
        verify_note(SPEC_NOTE, &vkey, &name).unwrap(),
        "This is an example message.\n"
    );
}

#[test]
fn key_hash_is_sha256_of_name_newline_type_and_key() {
    let key = SigningKey::from_bytes(&[9u8; 32]).verifying_key();
    let mut input = b"onewindow.example/ferry/extranet-rx\n\x01".to_vec();
    input.extend_from_slice(key.as_bytes());
    let want = Sha256::digest(&input);
    assert_eq!(
        key_hash("onewindow.example/ferry/extranet-rx", &key),
        want[..4]
    );
}

fn sample() -> (SigningKey, Checkpoint, String) {
    let key = SigningKey::from_bytes(&[1u8; 32]);
    let cp = Checkpoint {
        origin: "onewindow.example/ferry/extranet-rx".into(),
        size: 50,
        root: [0xab; 32],
    };
    let note = sign_checkpoint(&cp, "onewindow.example/ferry/extranet-rx", &key).unwrap();
    (key, cp, note)
}

#[test]
fn checkpoint_note_format_and_roundtrip() {
    let (key, cp, note) = sample();
    let body = format!(
        "onewindow.example/ferry/extranet-rx\n50\n{}\n",
        B64.encode([0xab; 32])
    );
    assert!(note.starts_with(&format!(
        "{body}\n\u{2014} onewindow.example/ferry/extranet-rx "
    )));
    assert!(note.ends_with('\n'));
    let sig_line = note.lines().last().unwrap();
    let blob = B64.decode(sig_line.rsplit(' ').next().unwrap()).unwrap();
    assert_eq!(blob.len(), 4 + 64);
    let name = "onewindow.example/ferry/extranet-rx";
    assert_eq!(blob[..4], key_hash(name, &key.verifying_key()));

    assert_eq!(parse_checkpoint_note(&note).unwrap(), cp);
    assert_eq!(parse_checkpoint_note(&body).unwrap(), cp);
    assert_eq!(
        open_checkpoint(&note, &key.verifying_key(), name).unwrap(),
        cp
    );
}

#[test]
fn tampered_or_foreign_notes_fail() {
    let (key, _, note) = sample();
    let name = "onewindow.example/ferry/extranet-rx";
    let vk = key.verifying_key();
    // A changed size in the body breaks the signature.
    let edited = note.replacen("\n50\n", "\n51\n", 1);
    assert!(matches!(
        verify_note(&edited, &vk, name),
        Err(NoteError::BadSignature { .. })
    ));
    // Another key, even under the same name, is not this key.
    let other = SigningKey::from_bytes(&[2u8; 32]);
    assert!(matches!(
        verify_note(&note, &other.verifying_key(), name),
        Err(NoteError::NotSigned { .. })
    ));
    // A wrong key name is not this key.
    assert!(matches!(
        verify_note(&note, &vk, "someone-else"),
        Err(NoteError::NotSigned { .. })
    ));
    // Signature lines of unknown keys are ignored.
    let body = verify_note(&note, &vk, name).unwrap();
    let theirs = sign_note(body, "witness.example", &other).unwrap();
    let both = format!("{note}{}", theirs.lines().last().unwrap()) + "\n";
    assert_eq!(verify_note(&both, &vk, name).unwrap(), body);
    assert_eq!(
        verify_note(&both, &other.verifying_key(), "witness.example").unwrap(),
        body
    );
    // Malformed notes.
    for bad in [
        "",
        "no blank line\n\u{2014} a b\n",
        "text\n\n- ascii dash AAAA\n",
        "text\n\n\u{2014} name not-base64!\n",
        "text\n\n\u{2014} name AAAA\n",
        note.trim_end(),
    ] {
        assert!(
            matches!(
                verify_note(bad, &vk, name),
                Err(NoteError::Malformed { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn checkpoint_bodies_are_parsed_strictly() {
    let root = B64.encode([1u8; 32]);
    for bad in [
        format!("origin\n01\n{root}\n"),
        format!("origin\n-1\n{root}\n"),
        format!("origin\nten\n{root}\n"),
        format!("origin\n18446744073709551616\n{root}\n"),
        "origin\n5\nnot-base64\n".to_owned(),
        format!("origin\n5\n{}\n", B64.encode([1u8; 31])),
        format!("origin\n5\n{root}"),
        format!("\n5\n{root}\n"),
        "origin\n5\n".to_owned(),
    ] {
        assert!(
            matches!(
                parse_checkpoint_note(&bad),
                Err(NoteError::BadCheckpoint { .. })
            ),
            "{bad:?}"
        );
    }
    // Extension lines after the root are allowed.
    let cp = parse_checkpoint_note(&format!("origin\n0\n{root}\nextension\n")).unwrap();
    assert_eq!(cp.size, 0);
}

#[test]
fn bad_names_are_refused() {
    let key = SigningKey::from_bytes(&[1u8; 32]);
    for name in ["", "has space", "has+plus"] {
        assert!(matches!(
            sign_note("x\n", name, &key),
            Err(NoteError::InvalidName { .. })
        ));
    }
    assert!(sign_note("x\n\ny\n", "k", &key).is_err());
    assert!(sign_note("no newline", "k", &key).is_err());
}
