//! Producing the stored payload: every item is read once and each chunk is hashed (BLAKE3 +
//! SHA-256) and compressed (zstd); the compressed stream is encrypted (format version 2: chunks
//! of XChaCha20-Poly1305 sealed in parallel; version 1: age) and the stored bytes are hashed
//! (BLAKE3) and spooled.
//!
//! Large payloads run as a pipeline of scoped threads connected by bounded channels:
//!
//! ```text
//! calling thread: read items ──┬─> item hashing (BLAKE3 + SHA-256)
//!                              └─> zstd ─> seal ─> payload BLAKE3 + spool
//! ```
//!
//! so on two cores the expensive stages (SHA-256, zstd, sealing) overlap; version 2's seal stage
//! splits each batch of chunks across the cores itself. Small payloads run the
//! same stages inline on the calling thread, with buffers no larger than the data and a cached
//! zstd context, so a small bundle costs little more than its cryptography.

use std::cell::{Cell, RefCell};
use std::fs::File;
use std::io::{self, Read, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use zstd::stream::raw::{CParameter, InBuffer, Operation, OutBuffer};
use zstd::zstd_safe::CCtx;

use crate::chunked::{PayloadKey, Sealer};
use crate::digest::Digest;
use crate::error::BundleError;
use crate::header::WrappedKey;
use crate::io_util::read_full;
use crate::keys::EncryptionPublic;
use crate::pipeline::{
    BufSink, CHUNK, ChanSink, Chunk, DEPTH, Digests, ItemHasher, Msg, Pool, SinkWriter,
    is_stage_gone, join, small_buf_len, spawn, stage_gone, use_threads,
};
use crate::spool::Spool;

/// Where an item's bytes come from.
pub(crate) enum ItemSource<'s, 'a> {
    Reader(&'s mut Box<dyn Read + 'a>),
    Bytes(&'s [u8]),
}

/// One item to pack.
pub(crate) struct PackItem<'s, 'a> {
    pub(crate) name: &'s str,
    pub(crate) size: u64,
    pub(crate) source: ItemSource<'s, 'a>,
}

/// How the compressed stream is encrypted.
pub(crate) enum SealWith<'r> {
    /// Format version 1: one age file for the recipient.
    Age(&'r EncryptionPublic),
    /// Format version 2: chunks under `key`, which is `wrapped` for the recipient `to`.
    Chunked {
        to: &'r EncryptionPublic,
        key: PayloadKey,
        chunk_size: u32,
        wrapped: WrappedKey,
    },
}

/// Settings of one pack.
pub(crate) struct PackParams<'r> {
    pub(crate) seal: Option<&'r SealWith<'r>>,
    pub(crate) zstd_level: i32,
    pub(crate) spool_memory: usize,
    pub(crate) plain_size: u64,
    /// The bundle file being built and the offset its payload is expected to start at: what
    /// does not fit in `spool_memory` is written straight there (see [`Spool`]).
    pub(crate) direct: Option<(&'r File, u64)>,
}

/// The packed payload.
pub(crate) struct Packed {
    /// BLAKE3 and SHA-256 of every item, in order.
    pub(crate) digests: Vec<Digests>,
    /// The stored payload.
    pub(crate) spool: Spool,
    /// BLAKE3 of the stored payload.
    pub(crate) hash: Digest,
    /// Length of the stored payload.
    pub(crate) len: u64,
}

/// Packs the items' bytes into the stored payload.
pub(crate) fn pack(
    items: Vec<PackItem<'_, '_>>,
    p: &PackParams<'_>,
) -> Result<Packed, BundleError> {
    if use_threads(p.plain_size) {
        pack_threaded(items, p)
    } else {
        pack_inline(items, p)
    }
}

fn size_mismatch(name: &str, declared: u64, actual: String) -> BundleError {
    BundleError::ItemSizeMismatch {
        name: name.to_owned(),
        declared,
        actual,
    }
}

/// Reads exactly `size` bytes of an item in chunks of at most `buf.len()`, handing each to `f`,
/// and checks that the reader then ends.
fn read_item(
    reader: &mut dyn Read,
    name: &str,
    size: u64,
    mut buf: impl FnMut() -> Vec<u8>,
    mut f: impl FnMut(Vec<u8>, usize) -> Result<(), BundleError>,
) -> Result<(), BundleError> {
    let mut remaining = size;
    while remaining > 0 {
        let mut b = buf();
        let want = usize::try_from(remaining)
            .unwrap_or(usize::MAX)
            .min(b.len());
        let n = read_full(reader, &mut b[..want])?;
        remaining -= n as u64;
        f(b, n)?;
        if n < want {
            return Err(size_mismatch(
                name,
                size,
                format!("{} bytes", size - remaining),
            ));
        }
    }
    let mut probe = [0u8; 1];
    if read_full(reader, &mut probe)? != 0 {
        return Err(size_mismatch(name, size, "more bytes".into()));
    }
    Ok(())
}

/// Upper bound of the compressed size of `n` bytes at zstd's fast levels, for sizing buffers.
fn compressed_bound(n: u64) -> u64 {
    n.saturating_add(n >> 7).saturating_add(512)
}

/// A zstd encoder for one frame: content size pledged, no checksum.
fn start_frame<'c>(
    mut enc: zstd::stream::raw::Encoder<'c>,
    level: i32,
    plain_size: u64,
) -> io::Result<zstd::stream::raw::Encoder<'c>> {
    enc.set_parameter(CParameter::CompressionLevel(level))?;
    enc.set_parameter(CParameter::ChecksumFlag(false))?;
    enc.set_pledged_src_size(Some(plain_size))?;
    Ok(enc)
}

/// zstd streaming compression straight into [`BufSink`] buffers.
struct Compressor<'c, S: BufSink> {
    enc: zstd::stream::raw::Encoder<'c>,
    sink: S,
    buf: Vec<u8>,
    pos: usize,
}

impl<'c, S: BufSink> Compressor<'c, S> {
    fn new(enc: zstd::stream::raw::Encoder<'c>, mut sink: S) -> Self {
        let buf = sink.take();
        Self {
            enc,
            sink,
            buf,
            pos: 0,
        }
    }

    fn hand_on(&mut self) -> io::Result<()> {
        let full = std::mem::take(&mut self.buf);
        self.sink.put(full, self.pos)?;
        self.buf = self.sink.take();
        self.pos = 0;
        Ok(())
    }

    fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if self.pos == self.buf.len() {
                self.hand_on()?;
            }
            let mut input = InBuffer::around(data);
            let mut output = OutBuffer::around_pos(&mut self.buf[..], self.pos);
            self.enc.run(&mut input, &mut output)?;
            self.pos = output.pos();
            data = &data[input.pos()..];
        }
        Ok(())
    }

    /// Ends the frame, hands on the last buffer and returns the sink.
    fn finish(mut self) -> io::Result<S> {
        loop {
            if self.pos == self.buf.len() {
                self.hand_on()?;
            }
            let mut output = OutBuffer::around_pos(&mut self.buf[..], self.pos);
            let remaining = self.enc.finish(&mut output, true)?;
            self.pos = output.pos();
            if remaining == 0 {
                break;
            }
        }
        let last = std::mem::take(&mut self.buf);
        self.sink.put(last, self.pos)?;
        Ok(self.sink)
    }
}

/// The bottom of the payload stack: BLAKE3 of the stored bytes, and the spool.
struct PayloadSpool {
    spool: Spool,
    b3: blake3::Hasher,
    len: u64,
}

impl PayloadSpool {
    fn new(p: &PackParams<'_>) -> io::Result<Self> {
        // The stored payload is about the plaintext size for incompressible data, and smaller
        // otherwise: size the memory part's first allocation from it.
        let expected = p
            .plain_size
            .saturating_add(p.plain_size / 512)
            .saturating_add(4096);
        // A handle of its own: the spool may run on another thread.
        let direct = match p.direct {
            Some((file, base)) => Some((file.try_clone()?, base)),
            None => None,
        };
        Ok(Self {
            spool: Spool::new(p.spool_memory, expected, direct),
            b3: blake3::Hasher::new(),
            len: 0,
        })
    }

    fn finish(self) -> (Spool, Digest, u64) {
        debug_assert_eq!(self.spool.len(), self.len);
        (self.spool, Digest::from(self.b3.finalize()), self.len)
    }
}

impl Write for PayloadSpool {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        self.spool.write_all(data)?;
        self.b3.update(data);
        self.len += data.len() as u64;
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn encryptor(r: &EncryptionPublic) -> Result<age::Encryptor, BundleError> {
    age::Encryptor::with_recipients(std::iter::once(r.recipient() as &dyn age::Recipient))
        .map_err(|e| BundleError::Encryption(e.to_string()))
}

// ---- inline ------------------------------------------------------------------------------------

/// The layer below zstd when running inline: the spool directly, or age encrypting into it.
enum Layer {
    Plain(PayloadSpool),
    Age(age::stream::StreamWriter<PayloadSpool>),
    Chunked(Sealer<PayloadSpool>),
}

/// Inline [`BufSink`]: writes each buffer to the layer below and reuses it.
struct LayerSink {
    layer: Layer,
    spare: Option<Vec<u8>>,
    buf_len: usize,
}

impl BufSink for LayerSink {
    fn take(&mut self) -> Vec<u8> {
        self.spare.take().unwrap_or_else(|| vec![0u8; self.buf_len])
    }

    fn put(&mut self, buf: Vec<u8>, len: usize) -> io::Result<()> {
        let r = match &mut self.layer {
            Layer::Plain(s) => s.write_all(&buf[..len]),
            Layer::Age(w) => w.write_all(&buf[..len]),
            Layer::Chunked(w) => w.write_all(&buf[..len]),
        };
        self.spare = Some(buf);
        r
    }
}

thread_local! {
    /// A zstd compression context kept for the small bundles packed on this thread.
    static CCTX: RefCell<Option<CCtx<'static>>> = const { RefCell::new(None) };
}

fn pack_inline(items: Vec<PackItem<'_, '_>>, p: &PackParams<'_>) -> Result<Packed, BundleError> {
    // Keep a context only for small payloads: a large one's workspace is not worth holding.
    let cache = p.plain_size < crate::pipeline::PARALLEL_MIN_BYTES;
    let mut ctx = cache
        .then(|| CCTX.with(|c| c.borrow_mut().take()))
        .flatten()
        .unwrap_or_else(CCtx::create);
    let result = pack_inline_with(items, p, &mut ctx);
    if cache && result.is_ok() {
        CCTX.with(|c| *c.borrow_mut() = Some(ctx));
    }
    result
}

fn pack_inline_with(
    items: Vec<PackItem<'_, '_>>,
    p: &PackParams<'_>,
    ctx: &mut CCtx<'static>,
) -> Result<Packed, BundleError> {
    let spool = PayloadSpool::new(p)?;
    let layer = match p.seal {
        None => Layer::Plain(spool),
        Some(SealWith::Age(r)) => Layer::Age(encryptor(r)?.wrap_output(spool)?),
        Some(SealWith::Chunked {
            key, chunk_size, ..
        }) => Layer::Chunked(Sealer::new(spool, key.clone(), *chunk_size)),
    };
    let sink = LayerSink {
        layer,
        spare: None,
        buf_len: small_buf_len(compressed_bound(p.plain_size)),
    };
    let enc = start_frame(
        zstd::stream::raw::Encoder::with_context(ctx),
        p.zstd_level,
        p.plain_size,
    )?;
    let mut zstd = Compressor::new(enc, sink);
    let mut hasher = ItemHasher::new();
    let mut digests = Vec::with_capacity(items.len());
    let mut read_buf: Vec<u8> = Vec::new();
    for item in items {
        match item.source {
            ItemSource::Bytes(bytes) => {
                for chunk in bytes.chunks(CHUNK) {
                    hasher.update(chunk);
                    zstd.write(chunk)?;
                }
            }
            ItemSource::Reader(reader) => {
                let want = small_buf_len(item.size);
                if read_buf.len() < want {
                    read_buf = vec![0u8; want];
                }
                let spare = Cell::new(Some(std::mem::take(&mut read_buf)));
                read_item(
                    reader,
                    item.name,
                    item.size,
                    || spare.take().unwrap_or_default(),
                    |b, n| {
                        hasher.update(&b[..n]);
                        let r = zstd.write(&b[..n]);
                        spare.set(Some(b));
                        Ok(r?)
                    },
                )?;
                read_buf = spare.take().unwrap_or_default();
            }
        }
        digests.push(hasher.finish());
    }
    let spool = match zstd.finish()?.layer {
        Layer::Plain(s) => s,
        Layer::Age(w) => w.finish()?,
        Layer::Chunked(w) => w.finish()?,
    };
    let (spool, hash, len) = spool.finish();
    Ok(Packed {
        digests,
        spool,
        hash,
        len,
    })
}

// ---- threaded ----------------------------------------------------------------------------------

/// Input buffers in flight (shared by the hashing and zstd stages).
const READ_POOL: usize = 3 * DEPTH;
/// Output buffers of the zstd and age stages.
const STAGE_POOL: usize = DEPTH + 2;

/// Messages to the item-hashing stage.
enum HashMsg<'env> {
    Data(Chunk<'env>),
    EndItem,
}

/// Runs a stage's input loop: every chunk to `f` until `End`; a vanished sender is an error.
fn for_each_chunk<'env>(
    rx: Receiver<Msg<'env>>,
    mut f: impl FnMut(&[u8]) -> io::Result<()>,
) -> io::Result<()> {
    loop {
        match rx.recv() {
            Ok(Msg::Data(chunk)) => f(&chunk)?,
            Ok(Msg::End) => return Ok(()),
            Err(_) => return Err(stage_gone()),
        }
    }
}

/// Whether an error is only the echo of another stage's failure.
fn is_echo(e: &BundleError) -> bool {
    matches!(e, BundleError::Io(io) if is_stage_gone(io))
}

fn pack_threaded(items: Vec<PackItem<'_, '_>>, p: &PackParams<'_>) -> Result<Packed, BundleError> {
    std::thread::scope(|s| {
        // Spool stage: BLAKE3 of the stored payload, and the spool.
        let (spool_tx, spool_rx) = sync_channel::<Msg<'_>>(DEPTH);
        let spool = PayloadSpool::new(p)?;
        let spool_stage = spawn(s, "spool", move || -> Result<PayloadSpool, BundleError> {
            let mut spool = spool;
            for_each_chunk(spool_rx, |c| spool.write_all(c))?;
            Ok(spool)
        })?;

        // Encryption stage, when encrypting.
        let (zstd_out, age_stage) = match p.seal {
            None => (spool_tx, None),
            Some(SealWith::Chunked {
                key, chunk_size, ..
            }) => {
                let (seal_tx, seal_rx) = sync_channel::<Msg<'_>>(DEPTH);
                let (key, chunk_size) = (key.clone(), *chunk_size);
                let handle = spawn(s, "seal", move || -> Result<(), BundleError> {
                    let out = SinkWriter::new(ChanSink::new(spool_tx, STAGE_POOL));
                    let mut w = Sealer::new(out, key, chunk_size);
                    for_each_chunk(seal_rx, |c| w.write_all(c))?;
                    w.finish()?.finish()?.end()?;
                    Ok(())
                })?;
                (seal_tx, Some(handle))
            }
            Some(SealWith::Age(r)) => {
                let (age_tx, age_rx) = sync_channel::<Msg<'_>>(DEPTH);
                let handle = spawn(s, "age", move || -> Result<(), BundleError> {
                    let out = SinkWriter::new(ChanSink::new(spool_tx, STAGE_POOL));
                    let mut w = encryptor(r)?.wrap_output(out)?;
                    for_each_chunk(age_rx, |c| w.write_all(c))?;
                    w.finish()?.finish()?.end()?;
                    Ok(())
                })?;
                (age_tx, Some(handle))
            }
        };

        // zstd stage.
        let (zstd_tx, zstd_rx) = sync_channel::<Msg<'_>>(DEPTH);
        let (level, plain_size) = (p.zstd_level, p.plain_size);
        let zstd_stage = spawn(s, "zstd", move || -> Result<(), BundleError> {
            let enc = start_frame(zstd::stream::raw::Encoder::new(level)?, level, plain_size)?;
            let mut zstd = Compressor::new(enc, ChanSink::new(zstd_out, STAGE_POOL));
            for_each_chunk(zstd_rx, |c| zstd.write(c))?;
            zstd.finish()?.end()?;
            Ok(())
        })?;

        // Item hashing stage.
        let (hash_tx, hash_rx) = sync_channel::<HashMsg<'_>>(2 * DEPTH);
        let n_items = items.len();
        let hash_stage = spawn(s, "hash", move || -> Vec<Digests> {
            let mut hasher = ItemHasher::new();
            let mut digests = Vec::with_capacity(n_items);
            for msg in hash_rx {
                match msg {
                    HashMsg::Data(c) => hasher.update(&c),
                    HashMsg::EndItem => digests.push(hasher.finish()),
                }
            }
            digests
        })?;

        // This thread reads the items and feeds both stages.
        let fed = feed(items, &hash_tx, &zstd_tx);
        drop(hash_tx);
        drop(zstd_tx);

        let digests = join(hash_stage);
        let mut errors: Vec<BundleError> = Vec::new();
        errors.extend(fed.err());
        errors.extend(join(zstd_stage).err());
        if let Some(h) = age_stage {
            errors.extend(join(h).err());
        }
        let spool = join(spool_stage).map_err(|e| errors.push(e)).ok();
        // The root cause is the first error that is not the echo of another stage's failure.
        if let Some(i) = errors.iter().position(|e| !is_echo(e)) {
            return Err(errors.swap_remove(i));
        }
        if let Some(e) = errors.pop() {
            return Err(e);
        }
        let Some(spool) = spool else {
            return Err(BundleError::Io(stage_gone()));
        };
        if digests.len() != n_items {
            return Err(BundleError::Io(io::Error::other(
                "the hashing stage lost items",
            )));
        }
        let (spool, hash, len) = spool.finish();
        Ok(Packed {
            digests,
            spool,
            hash,
            len,
        })
    })
}

/// Reads every item once and sends each chunk to the hashing and the zstd stages.
fn feed<'env>(
    items: Vec<PackItem<'env, '_>>,
    hash_tx: &SyncSender<HashMsg<'env>>,
    zstd_tx: &SyncSender<Msg<'env>>,
) -> Result<(), BundleError> {
    let gone = || BundleError::Io(stage_gone());
    let pool = Pool::new(CHUNK, READ_POOL);
    let send = |chunk: Chunk<'env>, twin: Chunk<'env>| -> Result<(), BundleError> {
        hash_tx.send(HashMsg::Data(chunk)).map_err(|_| gone())?;
        zstd_tx.send(Msg::Data(twin)).map_err(|_| gone())
    };
    for item in items {
        match item.source {
            ItemSource::Bytes(bytes) => {
                for chunk in bytes.chunks(CHUNK) {
                    send(Chunk::Borrowed(chunk), Chunk::Borrowed(chunk))?;
                }
            }
            ItemSource::Reader(reader) => {
                read_item(
                    reader,
                    item.name,
                    item.size,
                    || pool.get(),
                    |b, n| {
                        if n == 0 {
                            pool.put(b);
                            return Ok(());
                        }
                        let shared = Arc::new(pool.wrap(b, n));
                        send(Chunk::Shared(Arc::clone(&shared)), Chunk::Shared(shared))
                    },
                )?;
            }
        }
        hash_tx.send(HashMsg::EndItem).map_err(|_| gone())?;
    }
    zstd_tx.send(Msg::End).map_err(|_| gone())
}
