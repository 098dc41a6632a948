//! Every single-byte change to a bundle is rejected: each byte of a small bundle (encrypted and
//! not) is flipped, one at a time in a fresh copy, and every copy must fail verification.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use common::*;

fn run(encrypted: bool) {
    let fx = Fx::new();
    let bundle = if encrypted {
        fx.small()
    } else {
        fx.small_plain()
    };
    check(&bundle, &fx.opts()).unwrap();
    let mut codes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for mask in [0x01u8, 0xff] {
        for i in 0..bundle.len() {
            let mut copy = bundle.clone();
            copy[i] ^= mask;
            match check(&copy, &fx.opts()) {
                Ok(_) => panic!("byte {i} ^ {mask:#04x} was accepted"),
                Err(e) => *codes.entry(e.code()).or_default() += 1,
            }
        }
    }
    eprintln!(
        "encrypted={encrypted}: {} bytes x 2 masks, rejections by code: {codes:?}",
        bundle.len()
    );
    // The signature, payload hash and framing checks all took part.
    for code in ["bad-magic", "bad-signature", "payload-hash-mismatch"] {
        assert!(codes.contains_key(code), "{code} never seen: {codes:?}");
    }
}

#[test]
fn every_flipped_byte_is_rejected_encrypted() {
    run(true);
}

#[test]
fn every_flipped_byte_is_rejected_unencrypted() {
    run(false);
}
