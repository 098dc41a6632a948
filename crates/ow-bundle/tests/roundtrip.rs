//! Round trips: empty item, zero items, 1 000 items, a 200 MiB streamed item, encrypted and not,
//! through `verify` (memory) and `verify_to_sink` (streaming).
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{self, Cursor, Read, Seek, SeekFrom, Write};
use std::time::Instant;

use common::*;
use ow_bundle::*;

fn round_trip(encrypted: bool) {
    round_trip_version(encrypted, FORMAT_VERSION);
}

fn round_trip_version(encrypted: bool, version: u16) {
    let fx = Fx::new();
    let mut b = fx.builder().case_id("QZ-1").format_version(version);
    if !encrypted {
        b = b.without_encryption();
    }
    let data = b"hello, registrar".to_vec();
    let mut out = Vec::new();
    let packed = b
        .item_bytes("empty.txt", "text/plain", Vec::new())
        .item_bytes("hello.txt", "text/plain; charset=utf-8", data.clone())
        .item(
            "stream.bin",
            "application/octet-stream",
            xof("s", 70_000),
            70_000,
        )
        .write(&fx.signer, &mut out)
        .unwrap();
    assert_eq!(packed.total_len, out.len() as u64);
    let v = check(&out, &fx.opts()).unwrap();
    assert_eq!(v.digest(), packed.digest);
    assert_eq!(v.header(), &packed.header);
    let items = v.items().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].info().name, "empty.txt");
    assert!(items[0].data().is_empty());
    assert_eq!(items[1].data(), data.as_slice());
    let mut expect = Vec::new();
    xof("s", 70_000).read_to_end(&mut expect).unwrap();
    assert_eq!(items[2].data(), expect.as_slice());
    let h = v.header();
    assert_eq!(h.sender, Zone::Internet);
    assert_eq!(h.receiver, Zone::Extranet);
    assert_eq!(h.key_id, KeyId::of(&fx.signer.verifying_key()));
    assert_eq!(h.payload.plain_size, 70_000 + data.len() as u64);
    assert_eq!(h.format_version, version);
    assert_eq!(&out[8..10], &version.to_be_bytes());
    match (&h.encryption, encrypted, version) {
        (Encryption::None, false, _) => {}
        (Encryption::AgeX25519 { recipient_key_id }, true, 1) => {
            assert_eq!(*recipient_key_id, fx.extranet.public().key_id());
        }
        (
            Encryption::ChunkedXChaCha20Poly1305 {
                recipient_key_id,
                chunk_size,
                wrapped_key,
            },
            true,
            2,
        ) => {
            assert_eq!(*recipient_key_id, fx.extranet.public().key_id());
            assert_eq!(*chunk_size, DEFAULT_CHUNK_SIZE);
            // The wrapped key is a binary age file.
            assert!(wrapped_key.0.starts_with(b"age-encryption.org/v1\n"));
        }
        other => panic!("unexpected encryption {other:?}"),
    }
    // Header reading needs no keys and agrees.
    let ub = read_header(&out[..], &Limits::default()).unwrap();
    assert_eq!(ub.digest(), packed.digest);
    assert_eq!(ub.declared_len(), out.len() as u64);
}

#[test]
fn round_trip_encrypted() {
    round_trip(true);
}

#[test]
fn round_trip_unencrypted() {
    round_trip(false);
}

#[test]
fn version_1_is_still_written_on_request_and_read() {
    round_trip_version(true, 1);
    round_trip_version(false, 1);
}

#[test]
fn version_2_is_the_default() {
    assert_eq!(FORMAT_VERSION, 2);
    round_trip_version(true, 2);
}

#[test]
fn unknown_format_version_is_refused_by_the_writer() {
    let fx = Fx::new();
    for v in [0u16, 3] {
        let err = fx
            .builder()
            .format_version(v)
            .item_bytes("a.txt", "text/plain", &b"a"[..])
            .write(&fx.signer, Vec::new())
            .unwrap_err();
        assert_eq!(err.code(), "invalid-metadata", "{err}");
    }
    let err = fx
        .builder()
        .chunk_size(1000)
        .item_bytes("a.txt", "text/plain", &b"a"[..])
        .write(&fx.signer, Vec::new())
        .unwrap_err();
    assert_eq!(err.code(), "invalid-metadata", "{err}");
}

/// Payloads of 4 MiB and more run on threads: both versions, into a file and into a `Write`.
#[test]
fn threaded_round_trip_both_versions() {
    const SIZE: u64 = 9 << 20;
    let fx = Fx::new();
    for version in [1u16, 2] {
        let file = tempfile::tempfile().unwrap();
        let packed = fx
            .builder()
            .format_version(version)
            .item("big.bin", "application/octet-stream", xof("t", SIZE), SIZE)
            .write_to_file(&fx.signer, &file)
            .unwrap();
        let mut spooled = Vec::new();
        fx.builder()
            .format_version(version)
            .item("big.bin", "application/octet-stream", xof("t", SIZE), SIZE)
            .write(&fx.signer, &mut spooled)
            .unwrap();
        assert_eq!(packed.header.format_version, version);
        let mut file = file;
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut sink = CompareSink {
            expect: Box::new(xof("t", SIZE)),
            seen: 0,
            finished: 0,
        };
        verify_to_sink(&mut file, &fx.opts(), &mut sink).unwrap();
        assert_eq!((sink.seen, sink.finished), (SIZE, 1));
        let v = check(&spooled, &fx.opts()).unwrap();
        assert_eq!(v.header().format_version, version);
    }
}

#[test]
fn zero_items() {
    let fx = Fx::new();
    for enc in [true, false] {
        let mut b = fx.builder();
        if !enc {
            b = b.without_encryption();
        }
        let mut out = Vec::new();
        b.write(&fx.signer, &mut out).unwrap();
        let v = check(&out, &fx.opts()).unwrap();
        assert!(v.header().items.is_empty());
        assert_eq!(v.items().unwrap().len(), 0);
        assert_eq!(v.header().payload.plain_size, 0);
    }
}

#[test]
fn thousand_items() {
    let fx = Fx::new();
    let bodies: Vec<Vec<u8>> = (0..1000)
        .map(|i| format!("item number {i}\n").repeat(i % 7))
        .map(String::into_bytes)
        .collect();
    let mut b = fx.builder();
    for (i, body) in bodies.iter().enumerate() {
        b = b.item_bytes(format!("item-{i:04}.txt"), "text/plain", body.as_slice());
    }
    let mut out = Vec::new();
    b.write(&fx.signer, &mut out).unwrap();
    let v = check(&out, &fx.opts()).unwrap();
    let items = v.into_items().unwrap();
    assert_eq!(items.len(), 1000);
    for (i, (item, body)) in items.iter().zip(&bodies).enumerate() {
        assert_eq!(item.info().name, format!("item-{i:04}.txt"));
        assert_eq!(item.data(), body.as_slice());
    }
}

/// A sink that compares every item with the XOF stream it was made from, holding nothing.
struct CompareSink {
    expect: Box<dyn Read>,
    seen: u64,
    finished: usize,
}

struct CompareWriter<'a>(&'a mut CompareSink);

impl Write for CompareWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut want = vec![0u8; buf.len()];
        self.0.expect.read_exact(&mut want)?;
        if want != buf {
            return Err(io::Error::other("content differs"));
        }
        self.0.seen += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl ItemSink for CompareSink {
    type Writer<'s> = CompareWriter<'s>;
    fn begin_item(&mut self, _item: &ItemInfo) -> io::Result<CompareWriter<'_>> {
        Ok(CompareWriter(self))
    }
    fn finish_item(&mut self, _item: &ItemInfo) -> io::Result<()> {
        self.finished += 1;
        Ok(())
    }
    fn abort(&mut self) {}
}

fn big(encrypted: bool) {
    const SIZE: u64 = 200 << 20;
    let fx = Fx::new();
    let mut file = tempfile::tempfile().unwrap();
    let t = Instant::now();
    let mut b = fx.builder();
    if !encrypted {
        b = b.without_encryption();
    }
    let packed = b
        .item_bytes("before.txt", "text/plain", &b"small"[..])
        .item(
            "big.bin",
            "application/octet-stream",
            xof("big", SIZE),
            SIZE,
        )
        .write(&fx.signer, &mut file)
        .unwrap();
    let pack = t.elapsed();
    assert!(packed.total_len > SIZE);
    file.seek(SeekFrom::Start(0)).unwrap();
    let t = Instant::now();
    let mut sink = CompareSink {
        expect: Box::new(b"small".chain(xof("big", SIZE))),
        seen: 0,
        finished: 0,
    };
    let v = verify_to_sink(&mut file, &fx.opts(), &mut sink).unwrap();
    let check_time = t.elapsed();
    assert_eq!(sink.seen, SIZE + 5);
    assert_eq!(sink.finished, 2);
    assert!(v.items().is_none());
    assert_eq!(v.digest(), packed.digest);
    let mb = SIZE as f64 / 1e6;
    eprintln!(
        "200 MiB item, encrypted={encrypted}: pack {:.2}s ({:.0} MB/s), verify {:.2}s ({:.0} MB/s), pack+verify {:.0} MB/s (includes generating and comparing the test data)",
        pack.as_secs_f64(),
        mb / pack.as_secs_f64(),
        check_time.as_secs_f64(),
        mb / check_time.as_secs_f64(),
        mb / (pack + check_time).as_secs_f64()
    );
}

#[test]
fn two_hundred_mib_item_encrypted() {
    big(true);
}

#[test]
fn two_hundred_mib_item_unencrypted() {
    big(false);
}

#[test]
fn discard_sink_and_reader_offset() {
    let fx = Fx::new();
    let bundle = fx.small();
    // A bundle embedded after other bytes verifies from the reader's current position.
    let mut framed = b"junk before".to_vec();
    framed.extend_from_slice(&bundle);
    let mut cur = Cursor::new(framed);
    cur.seek(SeekFrom::Start(11)).unwrap();
    let v = verify_to_sink(&mut cur, &fx.opts(), &mut DiscardSink).unwrap();
    assert_eq!(v.header().items.len(), 2);
}

#[test]
fn memory_sink_collects_items() {
    let fx = Fx::new();
    let bundle = fx.small_plain();
    let mut sink = MemorySink::new();
    verify_to_sink(Cursor::new(&bundle), &fx.opts(), &mut sink).unwrap();
    let items = sink.into_items();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].1, vec![7u8; 3000]);
}

#[test]
fn sequence_chain_and_rotation() {
    let fx = Fx::new();
    let mut out1 = Vec::new();
    let p1 = fx
        .builder()
        .item_bytes("a.txt", "text/plain", &b"1"[..])
        .write(&fx.signer, &mut out1)
        .unwrap();
    // Second bundle chained to the first, signed with a rotated key pinned alongside the old.
    let new_key = generate_signing_key().unwrap();
    let mut trust = fx.trust.clone();
    trust.add_sender_key(ie(), new_key.verifying_key()).unwrap();
    let mut out2 = Vec::new();
    let p2 = BundleBuilder::new(
        ie(),
        "application.submitted",
        2,
        Some(p1.digest),
        t0(),
        t_exp(),
    )
    .encrypt_to(&fx.extranet.public())
    .item_bytes("b.txt", "text/plain", &b"2"[..])
    .write(&new_key, &mut out2)
    .unwrap();
    assert_eq!(p2.header.prev_digest, Some(p1.digest));
    let mut opts = fx.opts();
    opts.trust = &trust;
    check(&out1, &opts).unwrap();
    let v2 = check(&out2, &opts).unwrap();
    assert_eq!(v2.header().sequence, 2);
    assert_ne!(v2.header().bundle_id, p1.header.bundle_id);
}

#[test]
fn trust_file_drives_both_sides() {
    let fx = Fx::new();
    let text = format!(
        "[[channel]]\nname = \"internet-to-extranet\"\nsender_keys = [\"{}\"]\nreceiver_encryption_key = \"{}\"\n",
        encode_verifying_key(&fx.signer.verifying_key()),
        fx.extranet.public()
    );
    let trust = TrustStore::from_toml_str(&text).unwrap();
    let key = trust.receiver_encryption_key(ie()).unwrap();
    let mut out = Vec::new();
    BundleBuilder::new(ie(), "payment.confirmed", 1, None, t0(), t_exp())
        .encrypt_to(key)
        .item_bytes("receipt.json", "application/json", &b"{}"[..])
        .write(&fx.signer, &mut out)
        .unwrap();
    let opts = VerifyOptions::new(&trust, Zone::Extranet, Some(&fx.extranet), t0());
    check(&out, &opts).unwrap();
}

/// `write_to_file` writes the large part of the payload straight into the file, after a gap
/// guessed for the framing; whether the guess holds (incompressible data) or not (data that
/// compresses well enough to lose digits in `payload.size`), the file must hold exactly the
/// bytes `write` produces, and nothing after them — also over an older, longer file.
#[test]
fn write_to_file_matches_write_whatever_the_framing_guess() {
    let fx = Fx::new();
    let mut random = Vec::new();
    xof("direct", 3 << 20).read_to_end(&mut random).unwrap();
    let zeros = vec![0u8; 3 << 20];
    // 10 MiB that store as about 2 MiB: the framing guessed from the worst case (an
    // eight-digit `payload.size`) is one byte longer than the real one (seven digits), so the
    // part already written must move.
    let mixed: Vec<u8> = random[..2 << 20]
        .iter()
        .copied()
        .chain(std::iter::repeat_n(0u8, 8 << 20))
        .collect();
    for (what, data) in [("random", &random), ("zeros", &zeros), ("mixed", &mixed)] {
        for spool_memory in [0, 4096, 1 << 20, 64 << 20] {
            let build = || {
                fx.builder()
                    .without_encryption()
                    .bundle_id("019b7a00-0000-7000-8000-0000000000aa")
                    .spool_memory(spool_memory)
                    .item_bytes("a.bin", "application/octet-stream", data.as_slice())
                    .item_bytes("b.txt", "text/plain", b"tail".as_slice())
            };
            let mut expected = Vec::new();
            let by_write = build().write(&fx.signer, &mut expected).unwrap();

            let mut file = tempfile::tempfile().unwrap();
            // An older, longer file: its tail must not survive.
            file.write_all(&vec![0x5A; expected.len() + 4096]).unwrap();
            let by_file = build().write_to_file(&fx.signer, &file).unwrap();
            let mut got = Vec::new();
            file.seek(SeekFrom::Start(0)).unwrap();
            file.read_to_end(&mut got).unwrap();
            assert_eq!(by_file.total_len, got.len() as u64, "{what} {spool_memory}");
            assert_eq!(by_file.digest, by_write.digest, "{what} {spool_memory}");
            assert!(got == expected, "{what}, spool memory {spool_memory}");
            check(&got, &fx.opts()).unwrap();
        }
    }
}

#[test]
fn write_to_file_encrypted_round_trips() {
    let fx = Fx::new();
    for len in [0u64, 1000, 5 << 20] {
        let file = tempfile::tempfile().unwrap();
        let packed = fx
            .builder()
            .spool_memory(1 << 20)
            .item("x.bin", "application/octet-stream", xof("enc", len), len)
            .write_to_file(&fx.signer, &file)
            .unwrap();
        let mut got = Vec::new();
        (&file).read_to_end(&mut got).unwrap();
        assert_eq!(packed.total_len, got.len() as u64);
        let v = check(&got, &fx.opts()).unwrap();
        let mut expect = Vec::new();
        xof("enc", len).read_to_end(&mut expect).unwrap();
        assert!(v.items().unwrap()[0].data() == expect.as_slice());
    }
}
