//! Caps are enforced from the declared sizes, before anything of that size is allocated, read
//! or decompressed: a reader that counts what is pulled from it shows that nothing past the
//! offending field is consumed.
#![allow(clippy::unwrap_used)]

mod common;

use std::cell::Cell;
use std::io::{self, Cursor, Read};
use std::rc::Rc;

use common::*;
use ow_bundle::*;

/// Counts bytes pulled from the inner reader.
struct Counting<R> {
    inner: R,
    pulled: Rc<Cell<u64>>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pulled.set(self.pulled.get() + n as u64);
        Ok(n)
    }
}

fn prefix(header_len: u32) -> Vec<u8> {
    let mut p = b"OWBNDL\r\n".to_vec();
    p.extend_from_slice(&1u16.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    p.extend_from_slice(&header_len.to_be_bytes());
    p
}

#[test]
fn four_gib_header_len_is_refused_before_reading_or_allocating() {
    // Only the prefix exists; a reader that tried to allocate and fill 4 GiB would report
    // truncation instead (or run out of memory).
    let mut data = prefix(u32::MAX);
    data.extend_from_slice(&[b'{'; 1024]);
    let pulled = Rc::new(Cell::new(0));
    let r = Counting {
        inner: Cursor::new(data),
        pulled: pulled.clone(),
    };
    let e = read_header(r, &Limits::default()).unwrap_err();
    match e.as_rejection() {
        Some(VerifyError::HeaderTooLarge { declared, limit }) => {
            assert_eq!(*declared, u64::from(u32::MAX));
            assert_eq!(*limit, 1 << 20);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(pulled.get(), 16, "nothing past the prefix may be read");
}

#[test]
fn huge_payload_len_is_refused_before_the_payload_is_read() {
    let fx = Fx::new();
    let mut b = fx.small();
    let hl = u32::from_be_bytes([b[12], b[13], b[14], b[15]]) as usize;
    let at = 16 + hl + 2 + 64;
    b[at..at + 8].copy_from_slice(&u64::MAX.to_be_bytes());
    b.truncate(at + 8); // no payload bytes at all
    let e = check(&b, &fx.opts()).unwrap_err();
    assert!(
        matches!(
            e,
            VerifyError::PayloadTooLarge {
                what: "stored payload",
                declared: u64::MAX,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn huge_plain_size_is_refused_before_decompressing() {
    // A signed header declaring 1 TiB of content in a tiny payload: refused from the header
    // alone, even though no payload bytes are present.
    let fx = Fx::new();
    let mut h = header_for(&fx.signer, &[("a.bin", b"x")]);
    h.items[0].size = 1 << 40;
    h.payload.plain_size = 1 << 40;
    let b = forge(h, &zstd1(b"x"), &fx.signer);
    let hl = u32::from_be_bytes([b[12], b[13], b[14], b[15]]) as usize;
    let no_payload = &b[..16 + hl + 2 + 64 + 8];
    let e = check(no_payload, &fx.opts()).unwrap_err();
    assert!(
        matches!(
            e,
            VerifyError::PayloadTooLarge {
                what: "decompressed payload",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn signature_length_is_checked_before_allocating() {
    let fx = Fx::new();
    let mut b = fx.small();
    let hl = u32::from_be_bytes([b[12], b[13], b[14], b[15]]) as usize;
    b[16 + hl..16 + hl + 2].copy_from_slice(&u16::MAX.to_be_bytes());
    let e = check(&b, &fx.opts()).unwrap_err();
    assert_eq!(e.code(), "bad-signature");
}

#[test]
fn item_count_and_name_length_limits() {
    let fx = Fx::new();
    let mut b = BundleBuilder::new(ie(), "k", 1, None, t0(), t_exp()).without_encryption();
    for i in 0..11 {
        b = b.item_bytes(format!("f{i}"), "text/plain", &b""[..]);
    }
    let mut out = Vec::new();
    b.write(&fx.signer, &mut out).unwrap();
    let mut opts = fx.opts();
    opts.limits.max_items = 10;
    assert_eq!(check(&out, &opts).unwrap_err().code(), "too-many-items");
    opts.limits.max_items = 11;
    opts.limits.max_item_name_len = 2;
    assert_eq!(check(&out, &opts).unwrap_err().code(), "bad-item-name");
    opts.limits.max_item_name_len = 3;
    check(&out, &opts).unwrap();
}

#[test]
fn defaults() {
    let l = Limits::default();
    assert_eq!(l.max_header_bytes, 1 << 20);
    assert_eq!(l.max_item_name_len, 255);
    assert!(l.max_items >= 1000);
}
