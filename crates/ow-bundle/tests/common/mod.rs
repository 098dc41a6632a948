//! Shared fixtures for the integration tests: fixed keys and times, trust stores, a bundle
//! forger that assembles arbitrary (signed) bundles straight from the documented layout, and a
//! streamed pseudo-random data source.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{Cursor, Read};

use chrono::{DateTime, Duration, Utc};
use ow_bundle::*;

pub fn t0() -> DateTime<Utc> {
    "2026-03-01T08:00:00Z".parse().unwrap()
}

pub fn t_exp() -> DateTime<Utc> {
    t0() + Duration::days(7)
}

pub fn ie() -> Channel {
    "internet-to-extranet".parse().unwrap()
}

/// Keys and trust stores for the internet -> extranet channel.
pub struct Fx {
    pub signer: SigningKey,
    pub extranet: EncryptionSecret,
    pub intranet: EncryptionSecret,
    pub trust: TrustStore,
}

impl Fx {
    pub fn new() -> Self {
        let signer = SigningKey::from_bytes(&[0x11; 32]);
        let extranet = EncryptionSecret::generate();
        let intranet = EncryptionSecret::generate();
        let mut trust = TrustStore::new();
        trust.add_sender_key(ie(), signer.verifying_key()).unwrap();
        trust.set_receiver_encryption_key(ie(), extranet.public());
        Self {
            signer,
            extranet,
            intranet,
            trust,
        }
    }

    /// Options for the extranet receiver at `t0 + 1 h`.
    pub fn opts(&self) -> VerifyOptions<'_> {
        VerifyOptions::new(
            &self.trust,
            Zone::Extranet,
            Some(&self.extranet),
            t0() + Duration::hours(1),
        )
    }

    pub fn builder(&self) -> BundleBuilder<'static> {
        BundleBuilder::new(ie(), "application.submitted", 1, None, t0(), t_exp())
            .encrypt_to(&self.extranet.public())
    }

    /// A small encrypted bundle with two items.
    pub fn small(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.builder()
            .case_id("QZ-2026-000001")
            .item_bytes(
                "form.json",
                "application/json",
                &br#"{"applicant":"x"}"#[..],
            )
            .item_bytes("scan.pdf", "application/pdf", vec![7u8; 3000])
            .write(&self.signer, &mut out)
            .unwrap();
        out
    }

    /// A small unencrypted bundle with two items.
    pub fn small_plain(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.builder()
            .without_encryption()
            .item_bytes(
                "form.json",
                "application/json",
                &br#"{"applicant":"x"}"#[..],
            )
            .item_bytes("scan.pdf", "application/pdf", vec![7u8; 3000])
            .write(&self.signer, &mut out)
            .unwrap();
        out
    }
}

/// A header for forging, describing `items` with correct hashes; payload fields are filled in
/// by [`forge`].
pub fn header_for(signer: &SigningKey, items: &[(&str, &[u8])]) -> Header {
    use sha2::Digest as _;
    Header {
        format_version: 1,
        suite: 1,
        bundle_id: "forged-1".into(),
        channel: ie(),
        sender: Zone::Internet,
        receiver: Zone::Extranet,
        key_id: KeyId::of(&signer.verifying_key()),
        sequence: 1,
        prev_digest: None,
        created_at: t0(),
        expires_at: t_exp(),
        kind: "application.submitted".into(),
        case_id: None,
        compression: Compression::Zstd,
        encryption: Encryption::None,
        payload: PayloadInfo {
            size: 0,
            blake3: Digest::from_bytes([0; 32]),
            plain_size: items.iter().map(|(_, d)| d.len() as u64).sum(),
        },
        items: items
            .iter()
            .map(|(name, data)| ItemInfo {
                name: (*name).into(),
                media_type: "application/octet-stream".into(),
                size: data.len() as u64,
                blake3: Digest::blake3(data),
                sha256: Digest::from_bytes(sha2::Sha256::digest(data).into()),
            })
            .collect(),
    }
}

/// Assembles a bundle from the documented layout: sets `payload.size` and `payload.blake3`
/// from `payload`, serializes the header as compact JSON and signs it.
pub fn forge(mut header: Header, payload: &[u8], signer: &SigningKey) -> Vec<u8> {
    header.payload.size = payload.len() as u64;
    header.payload.blake3 = Digest::blake3(payload);
    let json = serde_json::to_vec(&header).unwrap();
    forge_raw_version(header.format_version, &json, payload, signer)
}

/// Assembles a version 1 bundle around exact header bytes.
pub fn forge_raw(json: &[u8], payload: &[u8], signer: &SigningKey) -> Vec<u8> {
    forge_raw_version(1, json, payload, signer)
}

/// Assembles a bundle of format `version` around exact header bytes.
pub fn forge_raw_version(
    version: u16,
    json: &[u8],
    payload: &[u8],
    signer: &SigningKey,
) -> Vec<u8> {
    use ed25519_dalek::Signer;
    let mut prefix = Vec::new();
    prefix.extend_from_slice(b"OWBNDL\r\n");
    prefix.extend_from_slice(&version.to_be_bytes());
    prefix.extend_from_slice(&1u16.to_be_bytes());
    prefix.extend_from_slice(&(json.len() as u32).to_be_bytes());
    let mut msg = b"OneWindow bundle signature v1\0".to_vec();
    msg.extend_from_slice(&prefix);
    msg.extend_from_slice(json);
    let sig = signer.sign(&msg).to_bytes();
    let mut out = prefix;
    out.extend_from_slice(json);
    out.extend_from_slice(&64u16.to_be_bytes());
    out.extend_from_slice(&sig);
    out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

pub fn zstd1(data: &[u8]) -> Vec<u8> {
    zstd::encode_all(data, 1).unwrap()
}

pub fn check(bundle: &[u8], opts: &VerifyOptions<'_>) -> Result<VerifiedBundle, VerifyError> {
    verify(Cursor::new(bundle), opts)
}

/// A seeded pseudo-random stream (BLAKE3 XOF) of `len` bytes.
pub fn xof(seed: &str, len: u64) -> impl Read {
    let mut h = blake3::Hasher::new();
    h.update(seed.as_bytes());
    h.finalize_xof().take(len)
}
