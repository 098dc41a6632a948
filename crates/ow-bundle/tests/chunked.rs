//! Format version 2's chunked encryption: the test vector of `docs/bundle-format.md` §11.2
//! (checked here against an independent decryption written from the spec with the
//! `chacha20poly1305` and `age` crates directly), and one rejection per way a chunk stream can be
//! wrong. Chunk manipulations are re-signed with the sender's key (and the header's payload hash
//! fixed up), so they reach the chunk layer; without re-signing the payload hash rejects them
//! first, which is tested too. Run with `OW_BUNDLE_PRINT_GOLDEN=1` to print the vector.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{Cursor, Read};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use common::*;
use ow_bundle::*;

// ---- the vector ---------------------------------------------------------------------------------

const SEED: [u8; 32] = [
    0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f,
];

/// The receiver's age secret: the 32 bytes 0x60, 0x61, … 0x7f.
const RECEIVER_SECRET: &str =
    "AGE-SECRET-KEY-1VPSKYCMYV4NXW6RFDF4KCMTWDAC8ZUNNW36HVAMC09A8KLRA0ELS5V382A";

/// The payload key: the 32 bytes 0x40, 0x41, … 0x5f.
fn vector_key() -> [u8; 32] {
    std::array::from_fn(|i| 0x40 + i as u8)
}

const VECTOR_CHUNK: u32 = 4096;
const VECTOR_ITEM_LEN: u64 = 9000;

fn vector_item() -> Vec<u8> {
    let mut v = Vec::new();
    xof("OneWindow v2 vector", VECTOR_ITEM_LEN)
        .read_to_end(&mut v)
        .unwrap();
    v
}

fn vector_bundle() -> (Vec<u8>, PackedBundle) {
    let signer = SigningKey::from_bytes(&SEED);
    let receiver: EncryptionSecret = RECEIVER_SECRET.parse().unwrap();
    let created: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().unwrap();
    let expires: DateTime<Utc> = "2026-01-08T00:00:00Z".parse().unwrap();
    let mut out = Vec::new();
    let packed = BundleBuilder::new(
        "internet-to-extranet".parse().unwrap(),
        "application.submitted",
        1,
        None,
        created,
        expires,
    )
    .bundle_id("019b7a00-0000-7000-8000-000000000002")
    .encrypt_to(&receiver.public())
    .chunk_size(VECTOR_CHUNK)
    .payload_key_for_test_vectors(vector_key())
    .item_bytes("scan.bin", "application/octet-stream", vector_item())
    .write(&signer, &mut out)
    .unwrap();
    (out, packed)
}

fn vector_trust() -> TrustStore {
    let signer = SigningKey::from_bytes(&SEED);
    let mut trust = TrustStore::new();
    trust.add_sender_key(ie(), signer.verifying_key()).unwrap();
    trust
}

const VECTOR_HEX: &str = include_str!("golden/v2-chunked.hex");
const VECTOR_HEADER: &str = include_str!("golden/v2-chunked.header.json");
/// BLAKE3 of the stored payload (the sealed chunks): independent of the wrapped key's randomness.
const VECTOR_PAYLOAD_BLAKE3: &str =
    "138888fe1b95c530b360ef5e3527ee54d59e375eff2cedb3806bdbbb86ceb935";
/// The three chunks' tags, in order.
const VECTOR_TAGS: [&str; 3] = [
    "32fed293562cf1fde3b9a363d1f2827c",
    "905cfa1b1925bc80d7ee350ee1e621fd",
    "9d4eff704397379e14336e2860578299",
];

/// The stored payload of a bundle.
fn payload_of(bundle: &[u8]) -> (UnverifiedBundle, Vec<u8>) {
    let ub = read_header(bundle, &Limits::default()).unwrap();
    let off = ub.payload_offset() as usize;
    let payload = bundle[off..].to_vec();
    (ub, payload)
}

/// Decrypts a version 2 payload as `docs/bundle-format.md` §5.2 says, without the crate.
fn spec_open(key: &[u8; 32], chunk_size: usize, payload: &[u8]) -> Result<Vec<u8>, usize> {
    let aead = XChaCha20Poly1305::new(Key::from_slice(key));
    let full = chunk_size + 16;
    let n = payload.len().div_ceil(full);
    let mut out = Vec::new();
    for (i, c) in payload.chunks(full).enumerate() {
        let mut nonce = [0u8; 24];
        nonce[15..23].copy_from_slice(&(i as u64).to_be_bytes());
        nonce[23] = u8::from(i + 1 == n);
        let (body, tag) = c.split_at(c.len() - 16);
        let mut body = body.to_vec();
        aead.decrypt_in_place_detached(
            XNonce::from_slice(&nonce),
            b"",
            &mut body,
            Tag::from_slice(tag),
        )
        .map_err(|_| i)?;
        out.extend_from_slice(&body);
    }
    Ok(out)
}

#[test]
fn vector_v2_is_stable_and_follows_the_spec() {
    let (bytes, packed) = vector_bundle();
    let (ub, payload) = payload_of(&bytes);
    let h = ub.header();
    let Encryption::ChunkedXChaCha20Poly1305 {
        chunk_size,
        wrapped_key,
        recipient_key_id,
    } = &h.encryption
    else {
        panic!("not version 2 encryption: {:?}", h.encryption);
    };
    let tags: Vec<String> = payload
        .chunks(VECTOR_CHUNK as usize + 16)
        .map(|c| hex::encode(&c[c.len() - 16..]))
        .collect();
    if std::env::var_os("OW_BUNDLE_PRINT_GOLDEN").is_some() {
        println!(
            "header: {}",
            std::str::from_utf8(ub.header_bytes()).unwrap()
        );
        println!("payload blake3: {}", Digest::blake3(&payload));
        println!("payload len: {}", payload.len());
        println!("tags: {tags:?}");
        println!("recipient key id: {recipient_key_id}");
        println!(
            "receiver public: {}",
            RECEIVER_SECRET
                .parse::<EncryptionSecret>()
                .unwrap()
                .public()
        );
        println!("item blake3: {}", Digest::blake3(&vector_item()));
        println!("len: {}", bytes.len());
        println!("hex: {}", hex::encode(&bytes));
        return;
    }
    assert_eq!(h.format_version, 2);
    assert_eq!(&bytes[8..10], &[0, 2]);
    assert_eq!(*chunk_size, VECTOR_CHUNK);
    // Everything but the wrapped key (age's randomness) is reproducible.
    assert_eq!(Digest::blake3(&payload).to_string(), VECTOR_PAYLOAD_BLAKE3);
    assert_eq!(h.payload.blake3.to_string(), VECTOR_PAYLOAD_BLAKE3);
    assert_eq!(tags, VECTOR_TAGS);
    assert_eq!(
        chunk_layout(payload.len() as u64, VECTOR_CHUNK).unwrap().0,
        3
    );

    // An implementation following the spec alone: unwrap the key with age, open the chunks with
    // XChaCha20-Poly1305 and the documented nonces, decompress, compare.
    let receiver: EncryptionSecret = RECEIVER_SECRET.parse().unwrap();
    let identity: age::x25519::Identity = RECEIVER_SECRET.parse().unwrap();
    let mut key = Vec::new();
    age::Decryptor::new(&wrapped_key.0[..])
        .unwrap()
        .decrypt(std::iter::once(&identity as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut key)
        .unwrap();
    assert_eq!(key, vector_key());
    let compressed = spec_open(&vector_key(), VECTOR_CHUNK as usize, &payload).unwrap();
    assert_eq!(zstd::decode_all(&compressed[..]).unwrap(), vector_item());
    assert_eq!(packed.total_len, bytes.len() as u64);

    // The stored vector (with its own wrapped key) verifies, and carries the same payload.
    let stored = hex::decode(VECTOR_HEX.trim()).unwrap();
    let (stored_ub, stored_payload) = payload_of(&stored);
    assert_eq!(stored_payload, payload);
    assert_eq!(
        std::str::from_utf8(stored_ub.header_bytes()).unwrap(),
        VECTOR_HEADER.trim_end()
    );
    let trust = vector_trust();
    let now: DateTime<Utc> = "2026-01-02T00:00:00Z".parse().unwrap();
    let opts = VerifyOptions::new(&trust, Zone::Extranet, Some(&receiver), now);
    let v = verify(Cursor::new(&stored), &opts).unwrap();
    assert_eq!(v.items().unwrap()[0].data(), vector_item().as_slice());
}

#[test]
fn nonce_layout() {
    assert_eq!(
        hex::encode(chunk_nonce(0, false)),
        "000000000000000000000000000000000000000000000000"
    );
    assert_eq!(
        hex::encode(chunk_nonce(0x0102, true)),
        "000000000000000000000000000000000000000000010201"
    );
}

// ---- rejections ---------------------------------------------------------------------------------

const CHUNK: usize = 4096;
const FULL: usize = CHUNK + 16;

/// A version 2 bundle whose payload is six chunks (five full), its payload split into chunks.
struct Chunks {
    fx: Fx,
    header: Header,
    chunks: Vec<Vec<u8>>,
}

fn key() -> [u8; 32] {
    [0x33; 32]
}

fn six_chunks(item_len: u64) -> Chunks {
    let fx = Fx::new();
    let mut out = Vec::new();
    fx.builder()
        .chunk_size(CHUNK as u32)
        .payload_key_for_test_vectors(key())
        .item(
            "scan.bin",
            "application/octet-stream",
            xof("six", item_len),
            item_len,
        )
        .write(&fx.signer, &mut out)
        .unwrap();
    check(&out, &fx.opts()).unwrap();
    let (ub, payload) = payload_of(&out);
    Chunks {
        header: ub.header().clone(),
        chunks: payload.chunks(FULL).map(<[u8]>::to_vec).collect(),
        fx,
    }
}

impl Chunks {
    fn small() -> Self {
        let c = six_chunks(5 * CHUNK as u64 + 100);
        assert_eq!(c.chunks.len(), 6);
        c
    }

    /// Re-signed with the sender's key around the given chunks.
    fn resigned(&self, chunks: &[Vec<u8>]) -> Vec<u8> {
        forge(self.header.clone(), &chunks.concat(), &self.fx.signer)
    }

    fn verdict(&self, chunks: &[Vec<u8>]) -> VerifyError {
        check(&self.resigned(chunks), &self.fx.opts()).unwrap_err()
    }

    /// Chunk `index` re-sealed from its plaintext with the final flag `last`.
    fn resealed(&self, index: usize, last: bool) -> Vec<u8> {
        let aead = XChaCha20Poly1305::new(Key::from_slice(&key()));
        let c = &self.chunks[index];
        let was_last = index + 1 == self.chunks.len();
        let mut body = c[..c.len() - 16].to_vec();
        aead.decrypt_in_place_detached(
            XNonce::from_slice(&chunk_nonce(index as u64, was_last)),
            b"",
            &mut body,
            Tag::from_slice(&c[c.len() - 16..]),
        )
        .unwrap();
        let tag = aead
            .encrypt_in_place_detached(
                XNonce::from_slice(&chunk_nonce(index as u64, last)),
                b"",
                &mut body,
            )
            .unwrap();
        body.extend_from_slice(&tag);
        body
    }
}

fn assert_chunk_rejected(e: &VerifyError, index: u64) {
    assert_eq!(e.code(), "decryption-failed", "{e}");
    assert!(e.to_string().contains(&format!("chunk {index} of")), "{e}");
}

#[test]
fn intact_resigned_chunks_verify() {
    // The harness itself: re-signing the untouched chunks gives a valid bundle.
    let c = Chunks::small();
    let v = check(&c.resigned(&c.chunks), &c.fx.opts()).unwrap();
    assert_eq!(v.items().unwrap()[0].info().size, 5 * CHUNK as u64 + 100);
}

#[test]
fn reordered_chunks_are_rejected() {
    let c = Chunks::small();
    let mut chunks = c.chunks.clone();
    chunks.swap(1, 2);
    assert_chunk_rejected(&c.verdict(&chunks), 1);
}

#[test]
fn dropped_chunk_is_rejected() {
    let c = Chunks::small();
    let mut chunks = c.chunks.clone();
    chunks.remove(2);
    assert_chunk_rejected(&c.verdict(&chunks), 2);
}

#[test]
fn duplicated_chunk_is_rejected() {
    let c = Chunks::small();
    let mut chunks = c.chunks.clone();
    chunks.insert(2, chunks[1].clone());
    assert_chunk_rejected(&c.verdict(&chunks), 2);
}

#[test]
fn truncated_at_a_chunk_boundary_is_rejected() {
    // The last chunk dropped and the header re-signed for the shorter payload: the new last chunk
    // was sealed as not final.
    let c = Chunks::small();
    let chunks = &c.chunks[..5];
    assert_chunk_rejected(&c.verdict(chunks), 4);
}

#[test]
fn truncated_inside_a_chunk_is_rejected() {
    let c = Chunks::small();
    let mut chunks = c.chunks.clone();
    let last = chunks.last_mut().unwrap();
    last.truncate(last.len() - 40);
    assert_chunk_rejected(&c.verdict(&chunks), 5);
}

#[test]
fn extended_by_a_chunk_is_rejected() {
    let c = Chunks::small();
    let mut chunks = c.chunks.clone();
    chunks.push(chunks[5].clone());
    assert_chunk_rejected(&c.verdict(&chunks), 5);
}

#[test]
fn last_chunk_without_final_flag_is_rejected() {
    let c = Chunks::small();
    let mut chunks = c.chunks.clone();
    chunks[5] = c.resealed(5, false);
    assert_chunk_rejected(&c.verdict(&chunks), 5);
}

#[test]
fn final_flag_on_an_inner_chunk_is_rejected() {
    let c = Chunks::small();
    let mut chunks = c.chunks.clone();
    chunks[2] = c.resealed(2, true);
    assert_chunk_rejected(&c.verdict(&chunks), 2);
    // Re-sealing with the right flag gives back a valid bundle (the harness is sound).
    chunks[2] = c.resealed(2, false);
    check(&c.resigned(&chunks), &c.fx.opts()).unwrap();
}

#[test]
fn altered_chunk_is_rejected() {
    let c = Chunks::small();
    let mut chunks = c.chunks.clone();
    chunks[3][100] ^= 1;
    assert_chunk_rejected(&c.verdict(&chunks), 3);
}

#[test]
fn a_length_ending_in_an_empty_chunk_is_a_malformed_header() {
    // Five full chunks then a bare tag: no writer produces it, so the header is refused before
    // any key is used.
    let c = Chunks::small();
    let mut chunks = c.chunks[..5].to_vec();
    chunks.push(vec![0u8; 16]);
    let e = c.verdict(&chunks);
    assert_eq!(e.code(), "malformed-header", "{e}");
    let e = read_header(&c.resigned(&chunks)[..], &Limits::default()).unwrap_err();
    assert_eq!(e.code(), "malformed-header", "{e}");
}

#[test]
fn chunk_changes_without_a_new_signature_fail_the_payload_hash_first() {
    let c = Chunks::small();
    let original = c.resigned(&c.chunks);
    let off = original.len() - c.chunks.concat().len();
    // Swapped chunks, same length.
    let mut swapped = original.clone();
    swapped[off + FULL..off + 2 * FULL].copy_from_slice(&c.chunks[2]);
    swapped[off + 2 * FULL..off + 3 * FULL].copy_from_slice(&c.chunks[1]);
    let e = check(&swapped, &c.fx.opts()).unwrap_err();
    assert_eq!(e.code(), "payload-hash-mismatch", "{e}");
    // Cut short: the declared length is missing.
    let e = check(&original[..original.len() - FULL], &c.fx.opts()).unwrap_err();
    assert_eq!(e.code(), "truncated", "{e}");
    // A chunk appended: bytes beyond the declared end.
    let mut longer = original.clone();
    longer.extend_from_slice(&c.chunks[5]);
    let e = check(&longer, &c.fx.opts()).unwrap_err();
    assert_eq!(e.code(), "trailing-garbage", "{e}");
}

#[test]
fn chunks_are_checked_on_the_threaded_path_too() {
    // 5 MiB: above the size where verification runs on threads.
    let c = six_chunks(5 << 20);
    let n = c.chunks.len();
    assert!(n > 1000);
    let mut chunks = c.chunks.clone();
    chunks.swap(700, 701);
    assert_chunk_rejected(&c.verdict(&chunks), 700);
    let chunks = &c.chunks[..n - 1];
    assert_chunk_rejected(&c.verdict(chunks), n as u64 - 2);
    check(&c.resigned(&c.chunks), &c.fx.opts()).unwrap();
}

#[test]
fn wrapped_key_for_another_receiver_is_rejected() {
    let c = Chunks::small();
    let fx2 = Fx::new();
    let mut other = Vec::new();
    // A bundle for another receiver key, with the wrapped key swapped into ours.
    fx2.builder()
        .item_bytes("a.txt", "text/plain", &b"a"[..])
        .write(&fx2.signer, &mut other)
        .unwrap();
    let (ub, _) = payload_of(&other);
    let Encryption::ChunkedXChaCha20Poly1305 { wrapped_key, .. } = ub.header().encryption.clone()
    else {
        panic!("version 2 expected");
    };
    let mut h = c.header.clone();
    if let Encryption::ChunkedXChaCha20Poly1305 { wrapped_key: w, .. } = &mut h.encryption {
        *w = wrapped_key;
    }
    let forged = forge(h, &c.chunks.concat(), &c.fx.signer);
    let e = check(&forged, &c.fx.opts()).unwrap_err();
    assert_eq!(e.code(), "decryption-failed", "{e}");
    // No decryption key at all.
    let opts = VerifyOptions::new(
        &c.fx.trust,
        Zone::Extranet,
        None,
        t0() + chrono::Duration::hours(1),
    );
    let e = check(&c.resigned(&c.chunks), &opts).unwrap_err();
    assert_eq!(e.code(), "missing-decryption-key", "{e}");
}

#[test]
fn schemes_belong_to_their_format_version() {
    let c = Chunks::small();
    // A version 1 header naming the chunked scheme.
    let mut h = c.header.clone();
    h.format_version = 1;
    let e = check(&forge(h, &c.chunks.concat(), &c.fx.signer), &c.fx.opts()).unwrap_err();
    assert_eq!(e.code(), "malformed-header", "{e}");
    // A version 2 header naming age.
    let mut h = c.header.clone();
    h.encryption = Encryption::AgeX25519 {
        recipient_key_id: c.fx.extranet.public().key_id(),
    };
    let e = check(&forge(h, &c.chunks.concat(), &c.fx.signer), &c.fx.opts()).unwrap_err();
    assert_eq!(e.code(), "malformed-header", "{e}");
}

#[test]
fn bad_chunk_fields_are_malformed_headers() {
    let c = Chunks::small();
    let json = serde_json::to_string(&c.header).unwrap();
    let payload = c.chunks.concat();
    for (from, to) in [
        ("\"chunk_size\":4096", "\"chunk_size\":4097"),
        ("\"chunk_size\":4096", "\"chunk_size\":2048"),
        ("\"chunk_size\":4096", "\"chunk_size\":8388608"),
        ("\"chunk_size\":4096,", ""),
        ("\"wrapped_key\":\"", "\"wrapped_key\":\"!"),
        ("\"chunk_size\":4096", "\"chunk_size\":4096,\"extra\":1"),
    ] {
        assert!(json.contains(from), "{from}");
        let mut v: serde_json::Value =
            serde_json::from_str(&json.replacen(from, to, 1)).unwrap_or(serde_json::Value::Null);
        if v.is_null() {
            continue;
        }
        v["payload"]["size"] = payload.len().into();
        v["payload"]["blake3"] = Digest::blake3(&payload).to_string().into();
        let bytes = forge_raw_version(2, &serde_json::to_vec(&v).unwrap(), &payload, &c.fx.signer);
        let e = check(&bytes, &c.fx.opts()).unwrap_err();
        assert_eq!(e.code(), "malformed-header", "{from} -> {to}: {e}");
    }
}
