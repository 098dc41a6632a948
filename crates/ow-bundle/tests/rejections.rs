//! One test per rejection class: each builds a bundle (or a forged one, assembled from the
//! documented layout and properly signed where the check under test comes after the signature)
//! and asserts the exact `VerifyError` variant and code. A final test checks that every code in
//! `VerifyError::ALL_CODES` is produced by some case here.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};

use chrono::Duration;
use common::*;
use ow_bundle::*;

fn header_len(b: &[u8]) -> usize {
    u32::from_be_bytes([b[12], b[13], b[14], b[15]]) as usize
}

fn sig_offset(b: &[u8]) -> usize {
    16 + header_len(b) + 2
}

fn payload_offset(b: &[u8]) -> usize {
    sig_offset(b) + 64 + 8
}

fn age_encrypt(to: &EncryptionPublic, data: &[u8]) -> Vec<u8> {
    let r: age::x25519::Recipient = to.to_string().parse().unwrap();
    let enc = age::Encryptor::with_recipients(std::iter::once(&r as &dyn age::Recipient)).unwrap();
    let mut out = Vec::new();
    let mut w = enc.wrap_output(&mut out).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap();
    out
}

// ---- cases: each returns the rejection -------------------------------------------------------

fn bad_magic() -> VerifyError {
    let fx = Fx::new();
    let mut b = fx.small();
    b[0] ^= 0xff;
    check(&b, &fx.opts()).unwrap_err()
}

fn bad_magic_crlf_mangled() -> VerifyError {
    // A text-mode transfer that turned "\r\n" into "\n".
    let fx = Fx::new();
    let b = fx.small();
    let mut m = b[..6].to_vec();
    m.extend_from_slice(&b[7..]);
    check(&m, &fx.opts()).unwrap_err()
}

fn unsupported_version() -> VerifyError {
    let fx = Fx::new();
    let mut b = fx.small();
    b[9] = 3;
    check(&b, &fx.opts()).unwrap_err()
}

fn unknown_suite() -> VerifyError {
    let fx = Fx::new();
    let mut b = fx.small();
    b[11] = 2;
    check(&b, &fx.opts()).unwrap_err()
}

fn header_too_large() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    let mut opts = fx.opts();
    opts.limits.max_header_bytes = 64;
    check(&b, &opts).unwrap_err()
}

fn payload_too_large() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    let mut opts = fx.opts();
    opts.limits.max_payload_bytes = 16;
    check(&b, &opts).unwrap_err()
}

fn plain_too_large() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    let mut opts = fx.opts();
    opts.limits.max_plain_bytes = 100;
    check(&b, &opts).unwrap_err()
}

fn too_many_items() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    let mut opts = fx.opts();
    opts.limits.max_items = 1;
    check(&b, &opts).unwrap_err()
}

fn malformed_header() -> VerifyError {
    let fx = Fx::new();
    let b = forge_raw(br#"{"format_version":1}"#, b"", &fx.signer);
    check(&b, &fx.opts()).unwrap_err()
}

fn malformed_header_rule() -> VerifyError {
    // Valid JSON, but sequence 2 without prev_digest.
    let fx = Fx::new();
    let mut h = header_for(&fx.signer, &[]);
    h.sequence = 2;
    let b = forge(h, &zstd1(b""), &fx.signer);
    check(&b, &fx.opts()).unwrap_err()
}

/// The signed header JSON of a valid bundle, as a map to edit.
fn header_json(h: &Header) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(h).unwrap() {
        serde_json::Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn a_header_missing_an_optional_field_is_refused_while_null_is_accepted() {
    let fx = Fx::new();
    let h = header_for(&fx.signer, &[]);
    assert_eq!(h.sequence, 1);
    let payload = zstd1(b"");
    let mut h_fixed = h.clone();
    h_fixed.payload.size = payload.len() as u64;
    h_fixed.payload.blake3 = Digest::blake3(&payload);
    // Both fields present as null: accepted.
    let full = header_json(&h_fixed);
    assert!(full["case_id"].is_null() && full["prev_digest"].is_null());
    let ok = forge_raw(&serde_json::to_vec(&full).unwrap(), &payload, &fx.signer);
    check(&ok, &fx.opts()).unwrap();
    for field in ["case_id", "prev_digest"] {
        let mut map = full.clone();
        map.remove(field);
        let b = forge_raw(&serde_json::to_vec(&map).unwrap(), &payload, &fx.signer);
        let err = check(&b, &fx.opts()).unwrap_err();
        assert_eq!(err.code(), "malformed-header", "{field}: {err}");
        assert!(err.to_string().contains(field), "{err}");
    }
}

fn bad_signature() -> VerifyError {
    let fx = Fx::new();
    let mut b = fx.small();
    let at = sig_offset(&b) + 10;
    b[at] ^= 0x01;
    check(&b, &fx.opts()).unwrap_err()
}

fn bad_signature_other_key() -> VerifyError {
    // Header claims the pinned key id, but another key signed.
    let fx = Fx::new();
    let h = header_for(&fx.signer, &[]);
    let other = SigningKey::from_bytes(&[0x22; 32]);
    let b = forge(h, &zstd1(b""), &other);
    check(&b, &fx.opts()).unwrap_err()
}

fn unknown_key() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    let mut trust = TrustStore::new();
    trust
        .add_sender_key(ie(), SigningKey::from_bytes(&[0x33; 32]).verifying_key())
        .unwrap();
    let mut opts = fx.opts();
    opts.trust = &trust;
    check(&b, &opts).unwrap_err()
}

fn wrong_channel_not_trusted() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    let mut trust = TrustStore::new();
    trust
        .add_sender_key(ie().reverse(), fx.signer.verifying_key())
        .unwrap();
    let mut opts = fx.opts();
    opts.trust = &trust;
    check(&b, &opts).unwrap_err()
}

fn wrong_channel_inconsistent() -> VerifyError {
    let fx = Fx::new();
    let mut h = header_for(&fx.signer, &[]);
    h.sender = Zone::Intranet;
    let b = forge(h, &zstd1(b""), &fx.signer);
    check(&b, &fx.opts()).unwrap_err()
}

fn wrong_receiver() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    let mut opts = fx.opts();
    opts.receiver = Zone::Intranet;
    check(&b, &opts).unwrap_err()
}

fn expired() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    let mut opts = fx.opts();
    opts.now = t_exp() + Duration::seconds(1);
    check(&b, &opts).unwrap_err()
}

fn not_yet_valid() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    let mut opts = fx.opts();
    opts.now = t0() - Duration::minutes(6);
    check(&b, &opts).unwrap_err()
}

fn bad_item_name() -> VerifyError {
    let fx = Fx::new();
    let h = header_for(&fx.signer, &[("../../etc/passwd", b"root")]);
    let b = forge(h, &zstd1(b"root"), &fx.signer);
    check(&b, &fx.opts()).unwrap_err()
}

fn bad_item_name_duplicate() -> VerifyError {
    let fx = Fx::new();
    let h = header_for(&fx.signer, &[("a.txt", b"1"), ("A.TXT", b"2")]);
    let b = forge(h, &zstd1(b"12"), &fx.signer);
    check(&b, &fx.opts()).unwrap_err()
}

fn truncated() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    check(&b[..b.len() - 1], &fx.opts()).unwrap_err()
}

fn truncated_in_header() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    check(&b[..40], &fx.opts()).unwrap_err()
}

fn trailing_garbage() -> VerifyError {
    let fx = Fx::new();
    let mut b = fx.small();
    b.extend_from_slice(b"\n");
    check(&b, &fx.opts()).unwrap_err()
}

fn payload_hash_mismatch() -> VerifyError {
    let fx = Fx::new();
    let mut b = fx.small();
    let last = b.len() - 1;
    b[last] ^= 0x01;
    check(&b, &fx.opts()).unwrap_err()
}

fn item_hash_mismatch() -> VerifyError {
    let fx = Fx::new();
    let mut h = header_for(&fx.signer, &[("a.txt", b"hello")]);
    h.items[0].blake3 = Digest::blake3(b"jello");
    let b = forge(h, &zstd1(b"hello"), &fx.signer);
    check(&b, &fx.opts()).unwrap_err()
}

fn item_hash_mismatch_sha256() -> VerifyError {
    let fx = Fx::new();
    let mut h = header_for(&fx.signer, &[("a.txt", b"hello")]);
    h.items[0].sha256 = Digest::blake3(b"not a sha");
    let b = forge(h, &zstd1(b"hello"), &fx.signer);
    check(&b, &fx.opts()).unwrap_err()
}

fn decompression_bomb() -> VerifyError {
    // 64 MiB of zeros compress to a few KiB; the header declares only the first 10 bytes.
    let fx = Fx::new();
    let zeros = vec![0u8; 64 << 20];
    let h = header_for(&fx.signer, &[("z.bin", &zeros[..10])]);
    let b = forge(h, &zstd1(&zeros), &fx.signer);
    assert!(b.len() < 64 << 10);
    check(&b, &fx.opts()).unwrap_err()
}

fn plain_size_mismatch() -> VerifyError {
    let fx = Fx::new();
    let h = header_for(&fx.signer, &[("a.txt", b"abcde")]);
    let b = forge(h, &zstd1(b"abc"), &fx.signer);
    check(&b, &fx.opts()).unwrap_err()
}

fn decompression_failed() -> VerifyError {
    let fx = Fx::new();
    let h = header_for(&fx.signer, &[("a.txt", b"abc")]);
    let b = forge(h, b"this is not a zstd frame", &fx.signer);
    check(&b, &fx.opts()).unwrap_err()
}

fn decryption_failed_other_zone_key() -> VerifyError {
    // The sender encrypted to the intranet's key but sent the bundle to the extranet.
    let fx = Fx::new();
    let mut b = Vec::new();
    BundleBuilder::new(ie(), "application.submitted", 1, None, t0(), t_exp())
        .encrypt_to(&fx.intranet.public())
        .item_bytes("a.txt", "text/plain", &b"secret"[..])
        .write(&fx.signer, &mut b)
        .unwrap();
    check(&b, &fx.opts()).unwrap_err()
}

fn decryption_failed_lying_key_id() -> VerifyError {
    // The header names the extranet's key id, but the age file is for the intranet's key.
    let fx = Fx::new();
    let mut h = header_for(&fx.signer, &[("a.txt", b"abc")]);
    h.encryption = Encryption::AgeX25519 {
        recipient_key_id: fx.extranet.public().key_id(),
    };
    let payload = age_encrypt(&fx.intranet.public(), &zstd1(b"abc"));
    let b = forge(h, &payload, &fx.signer);
    check(&b, &fx.opts()).unwrap_err()
}

fn decryption_failed_garbage() -> VerifyError {
    let fx = Fx::new();
    let mut h = header_for(&fx.signer, &[("a.txt", b"abc")]);
    h.encryption = Encryption::AgeX25519 {
        recipient_key_id: fx.extranet.public().key_id(),
    };
    let b = forge(h, b"age-encryption.org/v1\n-> nonsense\n", &fx.signer);
    check(&b, &fx.opts()).unwrap_err()
}

fn missing_decryption_key() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    let mut opts = fx.opts();
    opts.decryption = None;
    check(&b, &opts).unwrap_err()
}

/// A reader that fails once its position passes `fail_at`.
struct FailingReader {
    inner: Cursor<Vec<u8>>,
    fail_at: u64,
}

impl Read for FailingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.inner.position() >= self.fail_at {
            return Err(io::Error::other("simulated disk error"));
        }
        let room = (self.fail_at - self.inner.position()) as usize;
        let n = buf.len().min(room);
        self.inner.read(&mut buf[..n])
    }
}

impl Seek for FailingReader {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

fn io_error() -> VerifyError {
    let fx = Fx::new();
    let b = fx.small();
    let fail_at = payload_offset(&b) as u64 + 5;
    let r = FailingReader {
        inner: Cursor::new(b),
        fail_at,
    };
    verify(r, &fx.opts()).unwrap_err()
}

// ---- one test per class ------------------------------------------------------------------------

macro_rules! case {
    ($name:ident, $pat:pat, $code:literal) => {
        #[test]
        fn $name() {
            let e = super::$name();
            assert!(matches!(e, $pat), "{e:?}");
            assert_eq!(e.code(), $code);
            assert!(!e.to_string().is_empty());
        }
    };
}

mod each {
    use super::*;

    case!(bad_magic, VerifyError::BadMagic, "bad-magic");
    case!(bad_magic_crlf_mangled, VerifyError::BadMagic, "bad-magic");
    case!(
        unsupported_version,
        VerifyError::UnsupportedVersion { found: 3, .. },
        "unsupported-version"
    );
    case!(
        unknown_suite,
        VerifyError::UnknownSuite { found: 2 },
        "unknown-suite"
    );
    case!(
        header_too_large,
        VerifyError::HeaderTooLarge { limit: 64, .. },
        "header-too-large"
    );
    case!(
        payload_too_large,
        VerifyError::PayloadTooLarge {
            what: "stored payload",
            ..
        },
        "payload-too-large"
    );
    case!(
        plain_too_large,
        VerifyError::PayloadTooLarge {
            what: "decompressed payload",
            ..
        },
        "payload-too-large"
    );
    case!(
        too_many_items,
        VerifyError::TooManyItems {
            declared: 2,
            limit: 1
        },
        "too-many-items"
    );
    case!(
        malformed_header,
        VerifyError::MalformedHeader { .. },
        "malformed-header"
    );
    case!(
        malformed_header_rule,
        VerifyError::MalformedHeader { .. },
        "malformed-header"
    );
    case!(
        bad_signature,
        VerifyError::BadSignature { .. },
        "bad-signature"
    );
    case!(
        bad_signature_other_key,
        VerifyError::BadSignature { .. },
        "bad-signature"
    );
    case!(unknown_key, VerifyError::UnknownKey { .. }, "unknown-key");
    case!(
        wrong_channel_not_trusted,
        VerifyError::WrongChannel { .. },
        "wrong-channel"
    );
    case!(
        wrong_channel_inconsistent,
        VerifyError::WrongChannel { .. },
        "wrong-channel"
    );
    case!(
        wrong_receiver,
        VerifyError::WrongReceiver {
            receiver: Zone::Intranet,
            addressed_to: Zone::Extranet
        },
        "wrong-receiver"
    );
    case!(expired, VerifyError::Expired { .. }, "expired");
    case!(
        not_yet_valid,
        VerifyError::NotYetValid { .. },
        "not-yet-valid"
    );
    case!(
        bad_item_name,
        VerifyError::BadItemName { .. },
        "bad-item-name"
    );
    case!(
        bad_item_name_duplicate,
        VerifyError::BadItemName { .. },
        "bad-item-name"
    );
    case!(truncated, VerifyError::Truncated { .. }, "truncated");
    case!(
        truncated_in_header,
        VerifyError::Truncated { .. },
        "truncated"
    );
    case!(
        trailing_garbage,
        VerifyError::TrailingGarbage { extra: 1 },
        "trailing-garbage"
    );
    case!(
        payload_hash_mismatch,
        VerifyError::PayloadHashMismatch { .. },
        "payload-hash-mismatch"
    );
    case!(
        item_hash_mismatch,
        VerifyError::ItemHashMismatch {
            algorithm: "blake3",
            ..
        },
        "item-hash-mismatch"
    );
    case!(
        item_hash_mismatch_sha256,
        VerifyError::ItemHashMismatch {
            algorithm: "sha256",
            ..
        },
        "item-hash-mismatch"
    );
    case!(
        decompression_bomb,
        VerifyError::DecompressionBomb { declared: 10 },
        "decompression-bomb"
    );
    case!(
        plain_size_mismatch,
        VerifyError::PlainSizeMismatch {
            declared: 5,
            actual: 3
        },
        "plain-size-mismatch"
    );
    case!(
        decompression_failed,
        VerifyError::DecompressionFailed { .. },
        "decompression-failed"
    );
    case!(
        decryption_failed_other_zone_key,
        VerifyError::DecryptionFailed { .. },
        "decryption-failed"
    );
    case!(
        decryption_failed_lying_key_id,
        VerifyError::DecryptionFailed { .. },
        "decryption-failed"
    );
    case!(
        decryption_failed_garbage,
        VerifyError::DecryptionFailed { .. },
        "decryption-failed"
    );
    case!(
        missing_decryption_key,
        VerifyError::MissingDecryptionKey { .. },
        "missing-decryption-key"
    );
    case!(io_error, VerifyError::Io { .. }, "io");
}

#[test]
fn every_code_is_exercised() {
    let cases: &[fn() -> VerifyError] = &[
        bad_magic,
        unsupported_version,
        unknown_suite,
        header_too_large,
        payload_too_large,
        too_many_items,
        malformed_header,
        bad_signature,
        unknown_key,
        wrong_channel_not_trusted,
        wrong_receiver,
        expired,
        not_yet_valid,
        bad_item_name,
        truncated,
        trailing_garbage,
        payload_hash_mismatch,
        item_hash_mismatch,
        decompression_bomb,
        plain_size_mismatch,
        decompression_failed,
        decryption_failed_other_zone_key,
        missing_decryption_key,
        io_error,
    ];
    let seen: BTreeSet<&str> = cases.iter().map(|f| f().code()).collect();
    let all: BTreeSet<&str> = VerifyError::ALL_CODES.iter().copied().collect();
    assert_eq!(seen, all);
}

#[test]
fn messages_say_what_to_do() {
    let e = decryption_failed_other_zone_key();
    assert!(e.to_string().contains("trust file"), "{e}");
    let e = unknown_key();
    assert!(e.to_string().contains("trust file"), "{e}");
    let e = expired();
    assert!(e.to_string().contains("send it again"), "{e}");
}

#[test]
fn untrusted_names_are_escaped_in_messages() {
    let fx = Fx::new();
    let h = header_for(&fx.signer, &[("evil\nFAKE LOG LINE", b"x")]);
    let b = forge(h, &zstd1(b"x"), &fx.signer);
    let e = check(&b, &fx.opts()).unwrap_err();
    assert_eq!(e.code(), "bad-item-name");
    assert!(!e.to_string().contains('\n'), "{e}");
}

/// A sink that records calls, to check the abort contract.
#[derive(Default)]
struct RecordingSink {
    begun: usize,
    finished: usize,
    aborted: usize,
    bytes: Vec<u8>,
}

impl ItemSink for RecordingSink {
    type Writer<'s> = &'s mut Vec<u8>;
    fn begin_item(&mut self, _item: &ItemInfo) -> io::Result<&mut Vec<u8>> {
        self.begun += 1;
        Ok(&mut self.bytes)
    }
    fn finish_item(&mut self, _item: &ItemInfo) -> io::Result<()> {
        self.finished += 1;
        Ok(())
    }
    fn abort(&mut self) {
        self.aborted += 1;
    }
}

#[test]
fn sink_is_aborted_when_a_later_item_fails() {
    let fx = Fx::new();
    let mut h = header_for(&fx.signer, &[("a.txt", b"good"), ("b.txt", b"bad!")]);
    h.items[1].blake3 = Digest::blake3(b"other");
    let b = forge(h, &zstd1(b"goodbad!"), &fx.signer);
    let mut sink = RecordingSink::default();
    let e = verify_to_sink(Cursor::new(&b), &fx.opts(), &mut sink).unwrap_err();
    assert_eq!(e.code(), "item-hash-mismatch");
    assert_eq!((sink.begun, sink.finished, sink.aborted), (2, 1, 1));

    let mut mem = MemorySink::new();
    verify_to_sink(Cursor::new(&b), &fx.opts(), &mut mem).unwrap_err();
    assert!(mem.items().is_empty());

    // Failures before any item began do not call abort.
    let mut sink = RecordingSink::default();
    let mut opts = fx.opts();
    opts.receiver = Zone::Intranet;
    verify_to_sink(Cursor::new(&b), &opts, &mut sink).unwrap_err();
    assert_eq!((sink.begun, sink.aborted), (0, 0));
}

#[test]
fn read_header_rejections_match_verify() {
    let fx = Fx::new();
    let mut b = fx.small();
    b[0] = b'X';
    let e = read_header(&b[..], &Limits::default()).unwrap_err();
    assert_eq!(e.code(), "bad-magic");
    assert!(matches!(e.as_rejection(), Some(VerifyError::BadMagic)));
    let e = read_header(&b""[..], &Limits::default()).unwrap_err();
    assert_eq!(e.code(), "truncated");
    let e = read_header(&b"MZ\x90\x00"[..], &Limits::default()).unwrap_err();
    assert_eq!(e.code(), "bad-magic");
}

#[test]
fn builder_rejects_bad_input() {
    let fx = Fx::new();
    let sink = || Vec::<u8>::new();
    let base = || BundleBuilder::new(ie(), "application.submitted", 1, None, t0(), t_exp());
    let e = base().write(&fx.signer, sink()).unwrap_err();
    assert_eq!(e.code(), "encryption-not-chosen");
    let e = base()
        .without_encryption()
        .item_bytes("a/b.txt", "text/plain", &b"x"[..])
        .write(&fx.signer, sink())
        .unwrap_err();
    assert_eq!(e.code(), "bad-item-name");
    let e = base()
        .without_encryption()
        .item_bytes("a.txt", "text/plain", &b"x"[..])
        .item_bytes("A.txt", "text/plain", &b"y"[..])
        .write(&fx.signer, sink())
        .unwrap_err();
    assert_eq!(e.code(), "bad-item-name");
    let e = base()
        .without_encryption()
        .item_bytes("a.txt", "not a media type", &b"x"[..])
        .write(&fx.signer, sink())
        .unwrap_err();
    assert_eq!(e.code(), "invalid-metadata");
    let e = base()
        .without_encryption()
        .item("short.bin", "application/octet-stream", &b"abc"[..], 4)
        .write(&fx.signer, sink())
        .unwrap_err();
    assert!(matches!(e, BundleError::ItemSizeMismatch { .. }), "{e}");
    let e = base()
        .without_encryption()
        .item("long.bin", "application/octet-stream", &b"abcde"[..], 4)
        .write(&fx.signer, sink())
        .unwrap_err();
    assert!(matches!(e, BundleError::ItemSizeMismatch { .. }), "{e}");
    let e = BundleBuilder::new(ie(), "Bad Kind", 1, None, t0(), t_exp())
        .without_encryption()
        .write(&fx.signer, sink())
        .unwrap_err();
    assert_eq!(e.code(), "invalid-metadata");
    let e = BundleBuilder::new(ie(), "k", 2, None, t0(), t_exp())
        .without_encryption()
        .write(&fx.signer, sink())
        .unwrap_err();
    assert_eq!(e.code(), "invalid-metadata");
    let e = BundleBuilder::new(ie(), "k", 1, None, t_exp(), t0())
        .without_encryption()
        .write(&fx.signer, sink())
        .unwrap_err();
    assert_eq!(e.code(), "invalid-metadata");
    let e = base()
        .without_encryption()
        .case_id("案件/1")
        .write(&fx.signer, sink())
        .unwrap_err();
    assert_eq!(e.code(), "invalid-metadata");
    let limits = Limits {
        max_items: 1,
        ..Limits::default()
    };
    let e = base()
        .without_encryption()
        .limits(limits)
        .item_bytes("a", "text/plain", &b""[..])
        .item_bytes("b", "text/plain", &b""[..])
        .write(&fx.signer, sink())
        .unwrap_err();
    assert_eq!(e.code(), "limit-exceeded");
    // Nothing is written on error.
    let mut out = Vec::new();
    base()
        .without_encryption()
        .item("short.bin", "application/octet-stream", &b"abc"[..], 4)
        .write(&fx.signer, &mut out)
        .unwrap_err();
    assert!(out.is_empty());
}
