//! Golden vector: a fixed-key, fixed-time, unencrypted bundle whose bytes, header JSON and digest
//! are stable, so a second implementation can test against `tests/golden/v1-small.hex` (also in
//! docs/bundle-format.md). Run with `OW_BUNDLE_PRINT_GOLDEN=1` to print the vector.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::Cursor;

use chrono::{DateTime, Utc};
use ow_bundle::*;

const SEED: [u8; 32] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];

fn golden_bundle() -> (Vec<u8>, PackedBundle) {
    let signer = SigningKey::from_bytes(&SEED);
    let created: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let expires: DateTime<Utc> = "2026-01-08T00:00:00Z".parse().unwrap();
    let prev = Digest::blake3(b"OneWindow golden previous bundle");
    let mut out = Vec::new();
    let packed = BundleBuilder::new(
        "internet-to-extranet".parse().unwrap(),
        "application.submitted",
        2,
        Some(prev),
        created,
        expires,
    )
    .bundle_id("019b7a00-0000-7000-8000-000000000001")
    .case_id("QZ-2026-000001")
    .format_version(1)
    .without_encryption()
    .item_bytes(
        "hello.txt",
        "text/plain; charset=utf-8",
        &b"Hello, OneWindow!\n"[..],
    )
    .item_bytes("empty.bin", "application/octet-stream", &b""[..])
    .write(&signer, &mut out)
    .unwrap();
    (out, packed)
}

fn golden_trust() -> TrustStore {
    let signer = SigningKey::from_bytes(&SEED);
    TrustStore::from_toml_str(&format!(
        "[[channel]]\nname = \"internet-to-extranet\"\nsender_keys = [\"{}\"]\n",
        encode_verifying_key(&signer.verifying_key())
    ))
    .unwrap()
}

const GOLDEN_HEX: &str = include_str!("golden/v1-small.hex");
const GOLDEN_HEADER: &str = include_str!("golden/v1-small.header.json");
const GOLDEN_DIGEST: &str = "b766eabd8f477b554c8de3f90bfd2ac52e0d590d6d8f2f0944fd5a1232b3051b";

#[test]
fn golden_vector_is_stable() {
    let (bytes, packed) = golden_bundle();
    let header =
        &bytes[16..16 + u32::from_be_bytes([bytes[12], bytes[13], bytes[14], bytes[15]]) as usize];
    if std::env::var_os("OW_BUNDLE_PRINT_GOLDEN").is_some() {
        println!(
            "verifying key: {}",
            encode_verifying_key(&SigningKey::from_bytes(&SEED).verifying_key())
        );
        println!(
            "key id: {}",
            KeyId::of(&SigningKey::from_bytes(&SEED).verifying_key())
        );
        println!("header: {}", std::str::from_utf8(header).unwrap());
        println!("digest: {}", packed.digest);
        println!("len: {}", bytes.len());
        println!("hex: {}", hex::encode(&bytes));
        return;
    }
    let vk = SigningKey::from_bytes(&SEED).verifying_key();
    assert_eq!(
        encode_verifying_key(&vk),
        "ow-ed25519:A6EHv/POEL4dcN0Y50vAmWfk1jCbpQ1fHdyGZBJVMbg="
    );
    assert_eq!(KeyId::of(&vk).to_string(), "98ba85304ac639f0");
    assert_eq!(
        &*encode_signing_key(&SigningKey::from_bytes(&SEED)),
        "ow-ed25519-secret:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
    );
    assert_eq!(
        std::str::from_utf8(header).unwrap(),
        GOLDEN_HEADER.trim_end()
    );
    assert_eq!(packed.digest.to_string(), GOLDEN_DIGEST);
    assert_eq!(hex::encode(&bytes), GOLDEN_HEX.trim());
}

#[test]
fn golden_vector_verifies_from_its_hex() {
    let bytes = hex::decode(GOLDEN_HEX.trim()).unwrap();
    let trust = golden_trust();
    let now: DateTime<Utc> = "2026-01-02T00:00:00Z".parse().unwrap();
    let opts = VerifyOptions::new(&trust, Zone::Extranet, None, now);
    let v = verify(Cursor::new(&bytes), &opts).unwrap();
    assert_eq!(v.digest().to_string(), GOLDEN_DIGEST);
    let items = v.items().unwrap();
    assert_eq!(items[0].data(), b"Hello, OneWindow!\n");
    assert!(items[1].data().is_empty());
}
