//! Fuzz target: arbitrary bytes through `read_header` and `verify` with a fixed trust store.
//!
//! Run from the repository root: `cargo +nightly fuzz run bundle_parse`.
//!
//! Random bytes rarely get past the signature check, so when the input's framing and header
//! parse, the target also *re-signs* it: it fixes up `payload.size`/`payload.blake3` to the
//! input's payload, signs the header with the trusted test key and verifies that bundle too —
//! which drives fuzzed item names, sizes, encryption fields and payload bytes through the
//! post-signature checks, age and zstd.

#![no_main]

use std::io::Cursor;
use std::sync::OnceLock;

use ed25519_dalek::Signer;
use libfuzzer_sys::fuzz_target;
use ow_bundle::{
    Channel, Digest, DiscardSink, EncryptionSecret, KeyId, Limits, MAGIC, SIGNATURE_CONTEXT,
    SigningKey, TrustStore, VerifyOptions, Zone, read_header, verify, verify_to_sink,
};

struct Fixed {
    signer: SigningKey,
    trust: TrustStore,
    secret: EncryptionSecret,
}

fn fixed() -> &'static Fixed {
    static FIXED: OnceLock<Fixed> = OnceLock::new();
    FIXED.get_or_init(|| {
        let signer = SigningKey::from_bytes(&[0x11; 32]);
        let mut trust = TrustStore::new();
        for (from, to) in [
            (Zone::Internet, Zone::Extranet),
            (Zone::Extranet, Zone::Internet),
            (Zone::Extranet, Zone::Intranet),
        ] {
            let _ = trust.add_sender_key(Channel { from, to }, signer.verifying_key());
        }
        Fixed {
            signer,
            trust,
            secret: EncryptionSecret::generate(),
        }
    })
}

fn limits() -> Limits {
    Limits {
        max_header_bytes: 64 << 10,
        max_payload_bytes: 16 << 20,
        max_plain_bytes: 64 << 20,
        max_items: 256,
        max_item_name_len: 255,
    }
}

fn check(data: &[u8], fx: &Fixed) {
    let now = chrono::DateTime::from_timestamp(1_772_352_000, 0).unwrap_or_default();
    for receiver in [Zone::Extranet, Zone::Internet] {
        let mut opts = VerifyOptions::new(&fx.trust, receiver, Some(&fx.secret), now);
        opts.limits = limits();
        match verify(Cursor::new(data), &opts) {
            Ok(v) => {
                // Accepted: the items must match the header exactly.
                let items = v.items().unwrap_or_default();
                assert_eq!(items.len(), v.header().items.len());
                for item in items {
                    assert_eq!(item.data().len() as u64, item.info().size);
                    assert_eq!(Digest::blake3(item.data()), item.info().blake3);
                }
            }
            Err(e) => {
                assert!(!e.code().is_empty());
                assert!(!e.to_string().is_empty());
            }
        }
        let _ = verify_to_sink(Cursor::new(data), &opts, &mut DiscardSink);
    }
}

fuzz_target!(|data: &[u8]| {
    let fx = fixed();
    check(data, fx);

    let Ok(unverified) = read_header(data, &limits()) else {
        return;
    };
    let offset = usize::try_from(unverified.payload_offset()).unwrap_or(usize::MAX);
    let payload = data.get(offset..).unwrap_or_default();
    let mut header = unverified.header().clone();
    header.payload.size = payload.len() as u64;
    header.payload.blake3 = Digest::blake3(payload);
    header.key_id = KeyId::of(&fx.signer.verifying_key());
    let Ok(json) = serde_json::to_vec(&header) else {
        return;
    };
    let Ok(json_len) = u32::try_from(json.len()) else {
        return;
    };
    let mut prefix = MAGIC.to_vec();
    prefix.extend_from_slice(&header.format_version.to_be_bytes());
    prefix.extend_from_slice(&header.suite.to_be_bytes());
    prefix.extend_from_slice(&json_len.to_be_bytes());
    let mut message = SIGNATURE_CONTEXT.to_vec();
    message.extend_from_slice(&prefix);
    message.extend_from_slice(&json);
    let signature = fx.signer.sign(&message).to_bytes();
    let mut resigned = prefix;
    resigned.extend_from_slice(&json);
    resigned.extend_from_slice(&64u16.to_be_bytes());
    resigned.extend_from_slice(&signature);
    resigned.extend_from_slice(&(payload.len() as u64).to_be_bytes());
    resigned.extend_from_slice(payload);
    check(&resigned, fx);
});
