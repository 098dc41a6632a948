//! Checking the stored payload (steps 10 and 11 of the order of checks): BLAKE3 of the stored
//! bytes in a first pass, then decrypt, decompress with the `plain_size` cap, split into items and
//! hash each, while hashing the stored bytes a second time.
//!
//! Large payloads run on scoped threads. The first pass hashes [`CHUNK`]-sized blocks of the
//! stored payload as independent BLAKE3 subtrees, on the hashing thread and (when that is busy)
//! the calling thread. The second pass is a pipeline:
//!
//! ```text
//! calling thread: read file + payload BLAKE3 ─> age ─> zstd ─> item hashing ─> calling thread:
//!                                                                              item sink
//! ```
//!
//! The calling thread keeps the bundle reader and the item sink (neither need be `Send`) and
//! multiplexes them on one event channel; every buffer comes from a bounded pool, so memory stays
//! a few tens of MiB whatever the payload size. Small payloads run inline, with buffers no larger
//! than the data and a cached zstd context.

use std::cell::{Cell, RefCell};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError, channel, sync_channel};

use blake3::hazmat::ChainingValue;
use zstd::zstd_safe::DCtx;

use crate::chunked::{Opener, PayloadKey, chunk_rejection};
use crate::digest::Digest;
use crate::error::VerifyError;
use crate::header::{Encryption, Header, ItemInfo};
use crate::io_util::{Tap, read_full, read_some};
use crate::keys::EncryptionSecret;
use crate::pipeline::{
    CHUNK, ChanReader, Chunk, DEPTH, Digests, Home, ItemHasher, Msg, PARALLEL_MIN_BYTES, Pool,
    Pooled, blake3_block, blake3_from_blocks, is_stage_gone, join, small_buf_len, spawn,
    stage_gone, use_threads,
};
use crate::verify::{ItemSink, VerifyOptions};

/// Largest window a bundle's zstd stream may need (2^27 bytes).
const WINDOW_LOG_MAX: u32 = 27;

/// Steps 10 and 11 for the payload starting at `payload_start`; sets `began` once the sink has
/// been given an item.
pub(crate) fn check_payload<R: Read + Seek, S: ItemSink>(
    reader: &mut R,
    payload_start: u64,
    h: &Header,
    opts: &VerifyOptions<'_>,
    sink: &mut S,
    began: &mut bool,
) -> Result<(), VerifyError> {
    if use_threads(h.payload.plain_size.max(h.payload.size)) {
        threaded::check_payload(reader, payload_start, h, opts, sink, began)
    } else {
        check_payload_inline(reader, payload_start, h, opts, sink, began)
    }
}

/// How to decrypt the payload.
enum Decrypt<'a> {
    /// Format version 1: an age file for this secret.
    Age(&'a EncryptionSecret),
    /// Format version 2: chunks under the payload key unwrapped from the header.
    Chunked { key: PayloadKey, chunk_size: u32 },
}

/// How to decrypt the payload, if it is encrypted (after checking it is for us; for version 2,
/// the payload key is unwrapped here).
fn decryption_key<'a>(
    h: &Header,
    opts: &VerifyOptions<'a>,
) -> Result<Option<Decrypt<'a>>, VerifyError> {
    let secret = match h.encryption.recipient_key_id() {
        None => return Ok(None),
        Some(recipient_key_id) => {
            let Some(secret) = opts.decryption else {
                return Err(VerifyError::MissingDecryptionKey { recipient_key_id });
            };
            let ours = secret.key_id();
            if ours != recipient_key_id {
                return Err(VerifyError::DecryptionFailed {
                    reason: format!(
                        "the payload is encrypted to key {recipient_key_id} but this zone's secret has key id {ours}; the sender used another zone's public key (check the receiver_encryption_key in the sender's trust file)"
                    ),
                });
            }
            secret
        }
    };
    match &h.encryption {
        Encryption::ChunkedXChaCha20Poly1305 {
            chunk_size,
            wrapped_key,
            ..
        } => {
            let key = PayloadKey::unwrap(&wrapped_key.0, secret)
                .map_err(|reason| VerifyError::DecryptionFailed { reason })?;
            Ok(Some(Decrypt::Chunked {
                key,
                chunk_size: *chunk_size,
            }))
        }
        _ => Ok(Some(Decrypt::Age(secret))),
    }
}

/// The verdict on an error from a chunked payload's reader: a chunk that does not authenticate,
/// or the stored payload ending early.
fn chunk_error(e: &io::Error) -> VerifyError {
    match chunk_rejection(e) {
        Some(r) => VerifyError::DecryptionFailed {
            reason: r.to_string(),
        },
        None if e.kind() == io::ErrorKind::UnexpectedEof => VerifyError::Truncated {
            what: format!("the payload changed or shrank during verification ({e})"),
        },
        None => VerifyError::DecryptionFailed {
            reason: e.to_string(),
        },
    }
}

fn seek_payload<R: Seek>(reader: &mut R, payload_start: u64) -> Result<(), VerifyError> {
    reader
        .seek(SeekFrom::Start(payload_start))
        .map(|_| ())
        .map_err(|e| VerifyError::io("seeking to the payload", e))
}

fn payload_ended(done: u64, len: u64) -> VerifyError {
    VerifyError::Truncated {
        what: format!("the payload ended after {done} of {len} bytes"),
    }
}

fn check_items_digests(item: &ItemInfo, (b3, sha): Digests) -> Result<(), VerifyError> {
    if b3 != item.blake3 {
        return Err(VerifyError::ItemHashMismatch {
            name: item.name.clone(),
            algorithm: "blake3",
            expected: item.blake3,
            actual: b3,
        });
    }
    if sha != item.sha256 {
        return Err(VerifyError::ItemHashMismatch {
            name: item.name.clone(),
            algorithm: "sha256",
            expected: item.sha256,
            actual: sha,
        });
    }
    Ok(())
}

fn second_pass_result(
    h: &Header,
    read: u64,
    extra: u64,
    second: Digest,
) -> Result<(), VerifyError> {
    if read + extra != h.payload.size || second != h.payload.blake3 {
        return Err(VerifyError::PayloadHashMismatch {
            expected: h.payload.blake3,
            actual: second,
        });
    }
    if extra != 0 {
        return Err(VerifyError::DecompressionFailed {
            reason: format!("{extra} bytes of the payload follow the end of the encoded stream"),
        });
    }
    Ok(())
}

fn zstd_error(e: impl std::fmt::Display) -> VerifyError {
    VerifyError::DecompressionFailed {
        reason: e.to_string(),
    }
}

thread_local! {
    /// A zstd decompression context kept for the small bundles verified on this thread.
    static DCTX: RefCell<Option<DCtx<'static>>> = const { RefCell::new(None) };
}

// ---- inline ------------------------------------------------------------------------------------

fn check_payload_inline<R: Read + Seek, S: ItemSink>(
    reader: &mut R,
    payload_start: u64,
    h: &Header,
    opts: &VerifyOptions<'_>,
    sink: &mut S,
    began: &mut bool,
) -> Result<(), VerifyError> {
    // First pass: hash the stored payload before any decoder sees it.
    seek_payload(reader, payload_start)?;
    let len = h.payload.size;
    let mut buf = vec![0u8; small_buf_len(len)];
    let mut b3 = blake3::Hasher::new();
    let mut done = 0u64;
    while done < len {
        let want = usize::try_from(len - done)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = read_full(reader, &mut buf[..want])
            .map_err(|e| VerifyError::io("reading the payload", e))?;
        if n == 0 {
            return Err(payload_ended(done, len));
        }
        b3.update(&buf[..n]);
        done += n as u64;
    }
    let actual = Digest::from(b3.finalize());
    if actual != h.payload.blake3 {
        return Err(VerifyError::PayloadHashMismatch {
            expected: h.payload.blake3,
            actual,
        });
    }

    let secret = decryption_key(h, opts)?;

    // Second pass: decrypt, decompress, split, hash.
    seek_payload(reader, payload_start)?;
    // Keep a context only for small payloads: a large one's window is not worth holding.
    let cache = h.payload.plain_size < PARALLEL_MIN_BYTES;
    let mut ctx = cache
        .then(|| DCTX.with(|c| c.borrow_mut().take()))
        .flatten()
        .unwrap_or_else(DCtx::create);
    b3.reset();
    let result = decode_inline(reader, h, secret, sink, &mut ctx, &mut b3, buf, began);
    if cache {
        DCTX.with(|c| *c.borrow_mut() = Some(ctx));
    }
    result
}

/// Which layer an error surfaced from.
struct Layers {
    file_failed: Cell<bool>,
    age_failed: Cell<bool>,
    file_count: Cell<u64>,
}

impl Layers {
    fn classify(&self, e: io::Error) -> VerifyError {
        if self.file_failed.get() {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                VerifyError::Truncated {
                    what: format!("the payload changed or shrank during verification ({e})"),
                }
            } else {
                VerifyError::io("reading the payload", e)
            }
        } else if self.age_failed.get() {
            match chunk_rejection(&e) {
                Some(_) => chunk_error(&e),
                None => VerifyError::DecryptionFailed {
                    reason: e.to_string(),
                },
            }
        } else {
            zstd_error(e)
        }
    }
}

/// A buffered reader whose every byte read from `inner` is also hashed, in order; the last
/// buffer is hashed when the reader is dropped. Reports an early end of input (before `expect`
/// bytes) as an `UnexpectedEof` error and sets `failed` on any error of `inner`, so errors
/// surfacing from outer decoders can be attributed to the file.
struct HashingBufReader<'h, R> {
    inner: R,
    hasher: &'h mut blake3::Hasher,
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    count: &'h Cell<u64>,
    failed: &'h Cell<bool>,
    expect: u64,
}

impl<R: Read> BufRead for HashingBufReader<'_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.filled {
            self.hasher.update(&self.buf[..self.filled]);
            self.filled = 0;
            self.pos = 0;
            let n = match read_some(&mut self.inner, &mut self.buf) {
                Ok(n) => n,
                Err(e) => {
                    self.failed.set(true);
                    return Err(e);
                }
            };
            if n == 0 && self.count.get() < self.expect {
                self.failed.set(true);
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "input ended after {} of {} bytes",
                        self.count.get(),
                        self.expect
                    ),
                ));
            }
            self.count.set(self.count.get() + n as u64);
            self.filled = n;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.filled);
    }
}

impl<R: Read> Read for HashingBufReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R> Drop for HashingBufReader<'_, R> {
    fn drop(&mut self) {
        self.hasher.update(&self.buf[..self.filled]);
    }
}

#[allow(clippy::too_many_arguments)]
fn decode_inline<R: Read, S: ItemSink>(
    reader: &mut R,
    h: &Header,
    secret: Option<Decrypt<'_>>,
    sink: &mut S,
    ctx: &mut DCtx<'static>,
    payload_hasher: &mut blake3::Hasher,
    file_buf: Vec<u8>,
    began: &mut bool,
) -> Result<(), VerifyError> {
    let layers = Layers {
        file_failed: Cell::new(false),
        age_failed: Cell::new(false),
        file_count: Cell::new(0),
    };
    let payload_len = h.payload.size;
    {
        let file = HashingBufReader {
            inner: Read::take(&mut *reader, payload_len),
            hasher: &mut *payload_hasher,
            buf: file_buf,
            pos: 0,
            filled: 0,
            count: &layers.file_count,
            failed: &layers.file_failed,
            expect: payload_len,
        };
        let compressed: Box<dyn BufRead + '_> = match secret {
            None => Box::new(file),
            Some(Decrypt::Chunked { key, chunk_size }) => {
                let plain = Opener::new(file, key, chunk_size, payload_len);
                let tapped = Tap::new(plain, &layers.age_failed);
                Box::new(BufReader::with_capacity(small_buf_len(payload_len), tapped))
            }
            Some(Decrypt::Age(secret)) => {
                // Errors here come from the file layer or from age's header parsing.
                let age_error = |e: age::DecryptError| match e {
                    age::DecryptError::Io(io) if layers.file_failed.get() => layers.classify(io),
                    other => VerifyError::DecryptionFailed {
                        reason: other.to_string(),
                    },
                };
                let decryptor = age::Decryptor::new_buffered(file).map_err(age_error)?;
                let plain = decryptor
                    .decrypt(std::iter::once(secret.identity() as &dyn age::Identity))
                    .map_err(age_error)?;
                let tapped = Tap::new(plain, &layers.age_failed);
                Box::new(BufReader::with_capacity(small_buf_len(payload_len), tapped))
            }
        };
        let mut decoder = zstd::stream::read::Decoder::with_context(compressed, ctx);
        decoder.window_log_max(WINDOW_LOG_MAX).map_err(zstd_error)?;

        // Items: decompressed and written to the sink, each hashed.
        let mut hasher = ItemHasher::new();
        let largest = h.items.iter().map(|i| i.size).max().unwrap_or(0);
        let mut buf = vec![0u8; small_buf_len(largest)];
        let mut produced: u64 = 0;
        for item in &h.items {
            *began = true;
            let mut writer = sink
                .begin_item(item)
                .map_err(|e| VerifyError::io("opening the item sink", e))?;
            let mut remaining = item.size;
            while remaining > 0 {
                let want = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let n =
                    read_some(&mut decoder, &mut buf[..want]).map_err(|e| layers.classify(e))?;
                if n == 0 {
                    return Err(VerifyError::PlainSizeMismatch {
                        declared: h.payload.plain_size,
                        actual: produced,
                    });
                }
                hasher.update(&buf[..n]);
                writer
                    .write_all(&buf[..n])
                    .map_err(|e| VerifyError::io("writing to the item sink", e))?;
                remaining -= n as u64;
                produced += n as u64;
            }
            writer
                .flush()
                .map_err(|e| VerifyError::io("writing to the item sink", e))?;
            drop(writer);
            check_items_digests(item, hasher.finish())?;
            sink.finish_item(item)
                .map_err(|e| VerifyError::io("finishing an item in the sink", e))?;
        }

        // Output cap: not one byte beyond plain_size.
        let mut one = [0u8; 1];
        let n = read_some(&mut decoder, &mut one).map_err(|e| layers.classify(e))?;
        if n != 0 {
            return Err(VerifyError::DecompressionBomb {
                declared: h.payload.plain_size,
            });
        }
        // The compressed stream must end where the (decrypted) payload ends.
        let mut rest = decoder.finish();
        let leftover = rest.fill_buf().map_err(|e| layers.classify(e))?.len();
        if leftover != 0 {
            return Err(VerifyError::DecompressionFailed {
                reason: "data follows the end of the compressed stream".into(),
            });
        }
    }

    // Hash whatever of the stored payload the decoders did not pull, and compare: the file must
    // not have changed since the first pass.
    let consumed = layers.file_count.get();
    let rest = payload_len.saturating_sub(consumed);
    let mut take = Read::take(&mut *reader, rest);
    let mut extra = 0u64;
    let mut buf = vec![0u8; small_buf_len(rest)];
    loop {
        let n = read_some(&mut take, &mut buf)
            .map_err(|e| VerifyError::io("reading the payload", e))?;
        if n == 0 {
            break;
        }
        payload_hasher.update(&buf[..n]);
        extra += n as u64;
    }
    let second = Digest::from(payload_hasher.finalize());
    second_pass_result(h, consumed, extra, second)
}

// ---- threaded ----------------------------------------------------------------------------------

mod threaded {
    use super::*;

    /// File buffers in flight (the calling thread never blocks sending one).
    const FILE_POOL: usize = 2 * DEPTH;
    /// Output buffers of the age and zstd stages.
    const STAGE_POOL: usize = DEPTH + 2;

    /// Messages to the hashing stage.
    enum HashMsg<'env> {
        /// First pass: one block of the stored payload, to hash as a BLAKE3 subtree.
        Block(usize, Chunk<'env>),
        /// Item bytes, passed on to the sink once hashed.
        Item(Chunk<'env>),
        /// The current item is complete.
        EndItem,
    }

    /// Messages to the calling thread.
    enum Event<'env> {
        /// A file buffer is free again.
        Free(Vec<u8>),
        /// Item bytes for the sink (already hashed).
        Item(Chunk<'env>),
        /// The current item ended with these digests.
        ItemEnd(Digests),
        /// First pass: the chaining value of a block.
        Cv(usize, ChainingValue),
        /// The hashing stage has stopped: no more events follow.
        HashExit,
    }

    /// Sends `HashExit` however the hashing stage ends.
    struct ExitGuard<'env>(Sender<Event<'env>>);

    impl Drop for ExitGuard<'_> {
        fn drop(&mut self) {
            let _ = self.0.send(Event::HashExit);
        }
    }

    fn hash_stage<'env>(rx: Receiver<HashMsg<'env>>, ev: Sender<Event<'env>>) {
        let guard = ExitGuard(ev);
        let ev = &guard.0;
        let mut items = ItemHasher::new();
        for msg in rx {
            let sent = match msg {
                HashMsg::Block(i, c) => ev.send(Event::Cv(i, blake3_block(i, &c))),
                HashMsg::Item(c) => {
                    items.update(&c);
                    ev.send(Event::Item(c))
                }
                HashMsg::EndItem => ev.send(Event::ItemEnd(items.finish())),
            };
            if sent.is_err() {
                return;
            }
        }
    }

    /// Whether a stage error is only the echo of another stage's failure.
    fn is_echo(e: &VerifyError) -> bool {
        matches!(e, VerifyError::Io { source, .. } if is_stage_gone(source))
    }

    fn spawn_failed(e: io::Error) -> VerifyError {
        VerifyError::io("starting a verification thread", e)
    }

    fn echo() -> VerifyError {
        VerifyError::io("running the verification pipeline", stage_gone())
    }

    /// Reads the stored payload into pooled buffers and sends them on without ever blocking:
    /// there are never more buffers than the channel holds, and they come back as
    /// [`Event::Free`] once hashed.
    struct Feeder<'r, 'env, R> {
        reader: &'r mut R,
        free: Vec<Vec<u8>>,
        allocated: usize,
        home: Home,
        len: u64,
        done: u64,
        dest: Option<SyncSender<Msg<'env>>>,
        /// Second pass: BLAKE3 of the stored payload as read.
        b3: blake3::Hasher,
    }

    impl<'env, R: Read> Feeder<'_, 'env, R> {
        /// Sends as much of the payload as there are free buffers for.
        fn pump(&mut self) -> Result<(), VerifyError> {
            while self.done < self.len {
                let Some(dest) = &self.dest else {
                    return Ok(());
                };
                let mut buf = match self.free.pop() {
                    Some(b) => b,
                    None if self.allocated < FILE_POOL => {
                        self.allocated += 1;
                        vec![0u8; CHUNK]
                    }
                    None => return Ok(()),
                };
                let want = usize::try_from(self.len - self.done)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let n = read_full(self.reader, &mut buf[..want])
                    .map_err(|e| VerifyError::io("reading the payload", e))?;
                if n == 0 {
                    return Err(VerifyError::Truncated {
                        what: format!(
                            "the payload changed or shrank during verification (it ended after {} of {} bytes)",
                            self.done, self.len
                        ),
                    });
                }
                self.done += n as u64;
                self.b3.update(&buf[..n]);
                let chunk = Chunk::Owned(Pooled::new(buf, n, Arc::clone(&self.home)));
                if dest.send(Msg::Data(chunk)).is_err() {
                    // The stage failed; it reports why.
                    self.dest = None;
                    return Ok(());
                }
            }
            // Sent everything: end the stream (a failed send means the stage reports why).
            if let Some(tx) = self.dest.take() {
                let _ = tx.send(Msg::End);
            }
            Ok(())
        }

        /// A free buffer, waiting for one if all are in flight; chaining values arriving
        /// meanwhile go to `cvs`.
        fn free_buffer(
            &mut self,
            ev: &Receiver<Event<'env>>,
            cvs: &mut [Option<ChainingValue>],
        ) -> Result<Vec<u8>, VerifyError> {
            loop {
                if let Some(b) = self.free.pop() {
                    return Ok(b);
                }
                if self.allocated < FILE_POOL {
                    self.allocated += 1;
                    return Ok(vec![0u8; CHUNK]);
                }
                self.wait_for(ev, cvs)?;
            }
        }

        /// Handles one event of the first pass.
        fn wait_for(
            &mut self,
            ev: &Receiver<Event<'env>>,
            cvs: &mut [Option<ChainingValue>],
        ) -> Result<(), VerifyError> {
            if let Event::Cv(i, cv) = self.next_first_pass_event(ev)?
                && let Some(slot) = cvs.get_mut(i)
            {
                *slot = Some(cv);
            }
            Ok(())
        }

        /// The next event of the first pass that is not a returned buffer (kept for reuse).
        fn next_first_pass_event(
            &mut self,
            ev: &Receiver<Event<'env>>,
        ) -> Result<Event<'env>, VerifyError> {
            loop {
                match ev.recv() {
                    Ok(Event::Free(b)) => self.free.push(b),
                    Ok(Event::HashExit) | Err(_) => return Err(echo()),
                    Ok(other) => return Ok(other),
                }
            }
        }

        /// First pass: BLAKE3 of the stored payload, hashed as independent blocks by the
        /// hashing stage and, whenever that is busy, by this thread.
        fn first_pass(
            &mut self,
            ev: &Receiver<Event<'env>>,
            hash: &SyncSender<HashMsg<'env>>,
        ) -> Result<Digest, VerifyError> {
            let blocks = usize::try_from(self.len.div_ceil(CHUNK as u64)).unwrap_or(usize::MAX);
            let mut cvs: Vec<Option<ChainingValue>> = vec![None; blocks];
            let mut single = None;
            for i in 0..blocks {
                let mut buf = self.free_buffer(ev, &mut cvs)?;
                let want = usize::try_from(self.len - self.done)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let n = read_full(self.reader, &mut buf[..want])
                    .map_err(|e| VerifyError::io("reading the payload", e))?;
                if n < want {
                    return Err(payload_ended(self.done + n as u64, self.len));
                }
                self.done += n as u64;
                if blocks == 1 {
                    single = Some(Digest::blake3(&buf[..n]));
                    self.free.push(buf);
                    break;
                }
                let chunk = Chunk::Owned(Pooled::new(buf, n, Arc::clone(&self.home)));
                match hash.try_send(HashMsg::Block(i, chunk)) {
                    Ok(()) => {}
                    Err(TrySendError::Full(HashMsg::Block(i, chunk))) => {
                        cvs[i] = Some(blake3_block(i, &chunk));
                    }
                    Err(_) => return Err(echo()),
                }
            }
            if blocks == 0 {
                return Ok(Digest::blake3(b""));
            }
            if let Some(d) = single {
                return Ok(d);
            }
            let mut missing = cvs.iter().filter(|c| c.is_none()).count();
            while missing > 0 {
                if let Event::Cv(i, cv) = self.next_first_pass_event(ev)?
                    && let Some(slot @ None) = cvs.get_mut(i)
                {
                    *slot = Some(cv);
                    missing -= 1;
                }
            }
            let cvs: Vec<ChainingValue> = cvs.into_iter().flatten().collect();
            blake3_from_blocks(&cvs).ok_or_else(echo)
        }

        /// The next event that is not a returned buffer (returned buffers are refilled).
        fn next_event(&mut self, ev: &Receiver<Event<'env>>) -> Result<Event<'env>, VerifyError> {
            loop {
                match ev.recv() {
                    Ok(Event::Free(buf)) => {
                        self.free.push(buf);
                        self.pump()?;
                    }
                    Ok(other) => return Ok(other),
                    // Unreachable while a feeder exists (its buffers' home holds a sender).
                    Err(_) => return Ok(Event::HashExit),
                }
            }
        }
    }

    /// Decryption stage: age over the file chunks. Returns the number of payload bytes after
    /// the end of the age stream.
    fn age_stage<'env>(
        rx: Receiver<Msg<'env>>,
        secret: &EncryptionSecret,
        out: SyncSender<Msg<'env>>,
    ) -> Result<u64, VerifyError> {
        let mut file = ChanReader::new(rx);
        let age_error = |e: age::DecryptError| match e {
            age::DecryptError::Io(io) if is_stage_gone(&io) => echo(),
            other => VerifyError::DecryptionFailed {
                reason: other.to_string(),
            },
        };
        let decryptor = age::Decryptor::new_buffered(&mut file).map_err(age_error)?;
        let mut plain = decryptor
            .decrypt(std::iter::once(secret.identity() as &dyn age::Identity))
            .map_err(age_error)?;
        let pool = Pool::new(CHUNK, STAGE_POOL);
        loop {
            let mut buf = pool.get();
            let n = read_full(&mut plain, &mut buf).map_err(|e| {
                if is_stage_gone(&e) {
                    echo()
                } else {
                    VerifyError::DecryptionFailed {
                        reason: e.to_string(),
                    }
                }
            })?;
            let full = n == buf.len();
            if n > 0 {
                out.send(Msg::Data(Chunk::Owned(pool.wrap(buf, n))))
                    .map_err(|_| echo())?;
            }
            if !full {
                break;
            }
        }
        out.send(Msg::End).map_err(|_| echo())?;
        drop(plain);
        file.drain().map_err(|_| echo())
    }

    /// Decryption stage of format version 2: chunks opened in parallel batches. Returns the
    /// number of payload bytes after the last chunk (none: the reader reads the exact length).
    fn chunked_stage<'env>(
        rx: Receiver<Msg<'env>>,
        key: PayloadKey,
        chunk_size: u32,
        payload_len: u64,
        out: SyncSender<Msg<'env>>,
    ) -> Result<u64, VerifyError> {
        let mut file = ChanReader::new(rx);
        let pool = Pool::new(CHUNK, STAGE_POOL);
        {
            let mut plain = Opener::new(&mut file, key, chunk_size, payload_len);
            loop {
                let mut buf = pool.get();
                let n = read_full(&mut plain, &mut buf).map_err(|e| {
                    if is_stage_gone(&e) {
                        echo()
                    } else {
                        chunk_error(&e)
                    }
                })?;
                let full = n == buf.len();
                if n > 0 {
                    out.send(Msg::Data(Chunk::Owned(pool.wrap(buf, n))))
                        .map_err(|_| echo())?;
                }
                if !full {
                    break;
                }
            }
        }
        out.send(Msg::End).map_err(|_| echo())?;
        file.drain().map_err(|_| echo())
    }

    /// Decompression stage: zstd with the output cap, split into items.
    fn zstd_stage<'env>(
        input: ChanReader<'env>,
        hash: SyncSender<HashMsg<'env>>,
        items: &[ItemInfo],
        plain_size: u64,
    ) -> Result<(), VerifyError> {
        let classify = |e: io::Error| {
            if is_stage_gone(&e) {
                echo()
            } else {
                zstd_error(e)
            }
        };
        let mut decoder = zstd::stream::read::Decoder::with_buffer(input).map_err(zstd_error)?;
        decoder.window_log_max(WINDOW_LOG_MAX).map_err(zstd_error)?;
        let pool = Pool::new(CHUNK, STAGE_POOL);
        let mut produced = 0u64;
        for item in items {
            let mut remaining = item.size;
            while remaining > 0 {
                let mut buf = pool.get();
                let want = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(buf.len());
                let n = read_full(&mut decoder, &mut buf[..want]).map_err(classify)?;
                remaining -= n as u64;
                produced += n as u64;
                if n > 0 {
                    hash.send(HashMsg::Item(Chunk::Owned(pool.wrap(buf, n))))
                        .map_err(|_| echo())?;
                }
                if n < want {
                    return Err(VerifyError::PlainSizeMismatch {
                        declared: plain_size,
                        actual: produced,
                    });
                }
            }
            hash.send(HashMsg::EndItem).map_err(|_| echo())?;
        }
        // Output cap: not one byte beyond plain_size.
        let mut one = [0u8; 1];
        if read_some(&mut decoder, &mut one).map_err(classify)? != 0 {
            return Err(VerifyError::DecompressionBomb {
                declared: plain_size,
            });
        }
        // The compressed stream must end where the (decrypted) payload ends.
        let mut rest = decoder.finish();
        if !rest.fill_buf().map_err(classify)?.is_empty() {
            return Err(VerifyError::DecompressionFailed {
                reason: "data follows the end of the compressed stream".into(),
            });
        }
        Ok(())
    }

    pub(super) fn check_payload<R: Read + Seek, S: ItemSink>(
        reader: &mut R,
        payload_start: u64,
        h: &Header,
        opts: &VerifyOptions<'_>,
        sink: &mut S,
        began: &mut bool,
    ) -> Result<(), VerifyError> {
        std::thread::scope(|s| {
            let (ev_tx, ev_rx) = channel::<Event<'_>>();
            let (hash_tx, hash_rx) = sync_channel::<HashMsg<'_>>(FILE_POOL);
            let ev_hash = ev_tx.clone();
            spawn(s, "hash", move || hash_stage(hash_rx, ev_hash)).map_err(spawn_failed)?;
            let home: Home = Arc::new(move |buf| {
                let _ = ev_tx.send(Event::Free(buf));
            });
            let mut feeder = Feeder {
                reader,
                free: Vec::new(),
                allocated: 0,
                home,
                len: h.payload.size,
                done: 0,
                dest: None,
                b3: blake3::Hasher::new(),
            };

            // First pass: hash the stored payload before any decoder sees it.
            seek_payload(feeder.reader, payload_start)?;
            let actual = feeder.first_pass(&ev_rx, &hash_tx)?;
            if actual != h.payload.blake3 {
                return Err(VerifyError::PayloadHashMismatch {
                    expected: h.payload.blake3,
                    actual,
                });
            }

            let secret = decryption_key(h, opts)?;

            // Second pass: decrypt, decompress, split, hash.
            seek_payload(feeder.reader, payload_start)?;
            let (file_tx, file_rx) = sync_channel::<Msg<'_>>(FILE_POOL);
            let (zstd_input, age_stage) = match secret {
                Some(Decrypt::Chunked { key, chunk_size }) => {
                    let (plain_tx, plain_rx) = sync_channel::<Msg<'_>>(DEPTH);
                    let len = h.payload.size;
                    let handle = spawn(s, "open", move || {
                        chunked_stage(file_rx, key, chunk_size, len, plain_tx)
                    })
                    .map_err(spawn_failed)?;
                    (ChanReader::new(plain_rx), Some(handle))
                }
                Some(Decrypt::Age(secret)) => {
                    let (plain_tx, plain_rx) = sync_channel::<Msg<'_>>(DEPTH);
                    let handle = spawn(s, "age", move || age_stage(file_rx, secret, plain_tx))
                        .map_err(spawn_failed)?;
                    (ChanReader::new(plain_rx), Some(handle))
                }
                None => (ChanReader::new(file_rx), None),
            };
            let items = &h.items;
            let plain_size = h.payload.plain_size;
            let zstd_stage = spawn(s, "zstd", move || {
                zstd_stage(zstd_input, hash_tx, items, plain_size)
            })
            .map_err(spawn_failed)?;
            feeder.dest = Some(file_tx);
            feeder.done = 0;
            feeder.pump()?;

            // Items to the sink, in order; errors found on this thread (file, sink, item
            // hashes) come first, as they would inline.
            let mut complete = true;
            for item in items {
                *began = true;
                let mut writer = sink
                    .begin_item(item)
                    .map_err(|e| VerifyError::io("opening the item sink", e))?;
                let digests = loop {
                    match feeder.next_event(&ev_rx)? {
                        Event::Item(c) => writer
                            .write_all(&c)
                            .map_err(|e| VerifyError::io("writing to the item sink", e))?,
                        Event::ItemEnd(d) => break Some(d),
                        Event::HashExit => break None,
                        Event::Free(_) | Event::Cv(..) => {}
                    }
                };
                let Some(digests) = digests else {
                    complete = false;
                    break;
                };
                writer
                    .flush()
                    .map_err(|e| VerifyError::io("writing to the item sink", e))?;
                drop(writer);
                check_items_digests(item, digests)?;
                sink.finish_item(item)
                    .map_err(|e| VerifyError::io("finishing an item in the sink", e))?;
            }
            // Wait for the decoders to finish, and let them see the whole payload (data after
            // the end of the age stream is counted by the age stage).
            let mut hashing = complete;
            while hashing || feeder.dest.is_some() {
                match ev_rx.recv() {
                    Ok(Event::Free(buf)) => {
                        feeder.free.push(buf);
                        feeder.pump()?;
                    }
                    Ok(Event::HashExit) => hashing = false,
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
            let read = feeder.done;
            let second = Digest::from(feeder.b3.finalize());
            drop(feeder);

            // The stages' verdicts: the root cause is the first error that is not the echo of
            // another stage's failure.
            let mut errors: Vec<VerifyError> = Vec::new();
            let mut extra = 0;
            if let Some(handle) = age_stage {
                match join(handle) {
                    Ok(n) => extra = n,
                    Err(e) => errors.push(e),
                }
            }
            errors.extend(join(zstd_stage).err());
            if let Some(i) = errors.iter().position(|e| !is_echo(e)) {
                return Err(errors.swap_remove(i));
            }
            if let Some(e) = errors.pop() {
                return Err(e);
            }
            if !complete {
                return Err(echo());
            }
            // `extra` of the bytes read were never consumed by a decoder.
            second_pass_result(h, read.saturating_sub(extra), extra, second)
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    //! The threaded paths against the inline ones: same bundles, same verdicts.

    use std::io::Cursor;

    use chrono::{DateTime, Duration, Utc};
    use ed25519_dalek::{Signer, SigningKey};
    use sha2::{Digest as _, Sha256};

    use super::*;
    use crate::format::{encode_prefix, signed_message};
    use crate::header::{Compression, PayloadInfo};
    use crate::keys::KeyId;
    use crate::pipeline::FORCE_THREADS;
    use crate::zone::{Channel, Zone};
    use crate::{BundleBuilder, MemorySink, TrustStore, VerifyError, verify_to_sink};

    struct Fx {
        signer: SigningKey,
        ours: EncryptionSecret,
        other: EncryptionSecret,
        trust: TrustStore,
    }

    fn t0() -> DateTime<Utc> {
        "2026-03-01T08:00:00Z".parse().unwrap()
    }

    fn ie() -> Channel {
        "internet-to-extranet".parse().unwrap()
    }

    impl Fx {
        fn new() -> Self {
            let signer = SigningKey::from_bytes(&[0x11; 32]);
            let mut trust = TrustStore::new();
            trust.add_sender_key(ie(), signer.verifying_key()).unwrap();
            Self {
                signer,
                ours: EncryptionSecret::generate(),
                other: EncryptionSecret::generate(),
                trust,
            }
        }

        fn opts(&self) -> VerifyOptions<'_> {
            VerifyOptions::new(
                &self.trust,
                Zone::Extranet,
                Some(&self.ours),
                t0() + Duration::hours(1),
            )
        }

        fn header(&self, items: &[(&str, &[u8])], encrypted: bool) -> Header {
            Header {
                format_version: 1,
                suite: 1,
                bundle_id: "forged-1".into(),
                channel: ie(),
                sender: Zone::Internet,
                receiver: Zone::Extranet,
                key_id: KeyId::of(&self.signer.verifying_key()),
                sequence: 1,
                prev_digest: None,
                created_at: t0(),
                expires_at: t0() + Duration::days(7),
                kind: "application.submitted".into(),
                case_id: None,
                compression: Compression::Zstd,
                encryption: if encrypted {
                    Encryption::AgeX25519 {
                        recipient_key_id: self.ours.key_id(),
                    }
                } else {
                    Encryption::None
                },
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
                        sha256: Digest::from_bytes(Sha256::digest(data).into()),
                    })
                    .collect(),
            }
        }

        /// A signed bundle around `payload`, whatever it holds.
        fn forge(&self, mut header: Header, payload: &[u8]) -> Vec<u8> {
            header.payload.size = payload.len() as u64;
            header.payload.blake3 = Digest::blake3(payload);
            let json = header.to_bytes().unwrap();
            let prefix = encode_prefix(1, 1, json.len() as u32);
            let sig = self.signer.sign(&signed_message(&prefix, &json)).to_bytes();
            let mut out = prefix.to_vec();
            out.extend_from_slice(&json);
            out.extend_from_slice(&64u16.to_be_bytes());
            out.extend_from_slice(&sig);
            out.extend_from_slice(&(payload.len() as u64).to_be_bytes());
            out.extend_from_slice(payload);
            out
        }

        fn age(&self, to: &EncryptionSecret, data: &[u8]) -> Vec<u8> {
            let r = to.public();
            let enc = age::Encryptor::with_recipients(std::iter::once(
                r.recipient() as &dyn age::Recipient
            ))
            .unwrap();
            let mut out = Vec::new();
            let mut w = enc.wrap_output(&mut out).unwrap();
            w.write_all(data).unwrap();
            w.finish().unwrap();
            out
        }
    }

    type Outcome = Result<Vec<(String, Vec<u8>)>, (&'static str, String)>;

    fn run(bundle: &[u8], opts: &VerifyOptions<'_>, threads: bool) -> Outcome {
        FORCE_THREADS.with(|f| f.set(Some(threads)));
        let mut sink = MemorySink::new();
        let r = verify_to_sink(Cursor::new(bundle), opts, &mut sink);
        FORCE_THREADS.with(|f| f.set(None));
        match r {
            Ok(_) => Ok(sink
                .into_items()
                .into_iter()
                .map(|(i, d)| (i.name, d))
                .collect()),
            Err(e) => {
                assert!(sink.items().is_empty(), "sink not aborted after {e}");
                Err((e.code(), e.to_string()))
            }
        }
    }

    /// Verifies inline and threaded; both must agree (on the error code when rejected).
    fn both(bundle: &[u8], opts: &VerifyOptions<'_>) -> Result<usize, &'static str> {
        let inline = run(bundle, opts, false);
        let threaded = run(bundle, opts, true);
        match (&inline, &threaded) {
            (Ok(a), Ok(b)) => {
                assert_eq!(a, b);
                Ok(a.len())
            }
            (Err((a, ma)), Err((b, mb))) => {
                assert_eq!(a, b, "inline: {ma}\nthreaded: {mb}");
                Err(a)
            }
            _ => panic!("inline {inline:?} but threaded {threaded:?}"),
        }
    }

    fn data(len: usize, seed: u8) -> Vec<u8> {
        let mut h = blake3::Hasher::new();
        h.update(&[seed]);
        let mut v = vec![0u8; len];
        h.finalize_xof().fill(&mut v);
        v
    }

    fn pack(fx: &Fx, encrypted: bool, threads: bool, items: &[(&str, &[u8])]) -> Vec<u8> {
        FORCE_THREADS.with(|f| f.set(Some(threads)));
        let mut b = BundleBuilder::new(
            ie(),
            "application.submitted",
            1,
            None,
            t0(),
            t0() + Duration::days(7),
        )
        .bundle_id("b-1");
        b = if encrypted {
            b.encrypt_to(&fx.ours.public())
        } else {
            b.without_encryption()
        };
        for (i, (name, d)) in items.iter().enumerate() {
            b = if i % 2 == 0 {
                b.item_bytes(*name, "application/octet-stream", *d)
            } else {
                b.item(*name, "application/octet-stream", *d, d.len() as u64)
            };
        }
        let mut out = Vec::new();
        let r = b.write(&fx.signer, &mut out);
        FORCE_THREADS.with(|f| f.set(None));
        r.unwrap();
        out
    }

    #[test]
    fn threaded_and_inline_agree_on_valid_bundles() {
        let fx = Fx::new();
        let big = data(3 * CHUNK + 1234, 1);
        let text = b"hello hello hello hello hello hello".repeat(20_000);
        let items: [(&str, &[u8]); 5] = [
            ("a.bin", &big),
            ("empty", b""),
            ("b.txt", &text),
            ("c.bin", &big[..CHUNK]),
            ("d", b"x"),
        ];
        for encrypted in [false, true] {
            let inline = pack(&fx, encrypted, false, &items);
            let threaded = pack(&fx, encrypted, true, &items);
            if !encrypted {
                // zstd is deterministic: the same bytes whichever path packed them.
                assert_eq!(inline, threaded);
            }
            for bundle in [&inline, &threaded] {
                assert_eq!(both(bundle, &fx.opts()), Ok(items.len()));
            }
        }
        // Zero items.
        for encrypted in [false, true] {
            let b = pack(&fx, encrypted, true, &[]);
            assert_eq!(both(&b, &fx.opts()), Ok(0));
        }
    }

    #[test]
    fn threaded_and_inline_agree_on_rejections() {
        let fx = Fx::new();
        let opts = fx.opts();
        let one = data(CHUNK + 99, 2);
        let two = b"second item".to_vec();
        let items: [(&str, &[u8]); 2] = [("one", &one), ("two", &two)];
        let plain: Vec<u8> = [one.as_slice(), two.as_slice()].concat();
        let z = zstd::encode_all(&plain[..], 1).unwrap();
        let case =
            |payload: &[u8], encrypted: bool| fx.forge(fx.header(&items, encrypted), payload);

        // Unencrypted payloads.
        assert_eq!(both(&case(&z, false), &opts), Ok(2));
        let two_frames = [
            zstd::encode_all(&plain[..100], 1).unwrap(),
            zstd::encode_all(&plain[100..], 3).unwrap(),
        ]
        .concat();
        assert_eq!(both(&case(&two_frames, false), &opts), Ok(2));
        assert_eq!(
            both(&case(b"not a zstd frame at all", false), &opts),
            Err("decompression-failed")
        );
        let mut trailing = z.clone();
        trailing.extend_from_slice(b"junk");
        assert_eq!(
            both(&case(&trailing, false), &opts),
            Err("decompression-failed")
        );
        let short = zstd::encode_all(&plain[..plain.len() - 3], 1).unwrap();
        assert_eq!(
            both(&case(&short, false), &opts),
            Err("plain-size-mismatch")
        );
        let long = zstd::encode_all(&[&plain[..], &[0u8; 5000][..]].concat()[..], 1).unwrap();
        assert_eq!(both(&case(&long, false), &opts), Err("decompression-bomb"));
        assert_eq!(
            both(&case(&z[..z.len() - 10], false), &opts),
            Err("decompression-failed")
        );
        let mut h = fx.header(&items, false);
        h.items[1].sha256 = Digest::blake3(b"wrong");
        assert_eq!(both(&fx.forge(h, &z), &opts), Err("item-hash-mismatch"));
        let mut h = fx.header(&items, false);
        h.items[0].blake3 = Digest::blake3(b"wrong");
        assert_eq!(both(&fx.forge(h, &z), &opts), Err("item-hash-mismatch"));

        // Encrypted payloads.
        let a = fx.age(&fx.ours, &z);
        assert_eq!(both(&case(&a, true), &opts), Ok(2));
        assert_eq!(
            both(&case(&fx.age(&fx.other, &z), true), &opts),
            Err("decryption-failed")
        );
        assert_eq!(
            both(&case(b"age-encryption.org/v1\n-> nonsense\n", true), &opts),
            Err("decryption-failed")
        );
        assert_eq!(
            both(&case(&a[..a.len() - 20], true), &opts),
            Err("decryption-failed")
        );
        let mut junk = a.clone();
        junk.extend_from_slice(b"junk");
        assert_eq!(both(&case(&junk, true), &opts), Err("decryption-failed"));
        assert_eq!(
            both(&case(&fx.age(&fx.ours, &trailing), true), &opts),
            Err("decompression-failed")
        );
        assert_eq!(
            both(&case(&fx.age(&fx.ours, &long), true), &opts),
            Err("decompression-bomb")
        );
        assert_eq!(
            both(&case(&fx.age(&fx.ours, b"garbage"), true), &opts),
            Err("decompression-failed")
        );
        let mut no_key = fx.opts();
        no_key.decryption = None;
        assert_eq!(
            both(&case(&a, true), &no_key),
            Err("missing-decryption-key")
        );
        // A full last age chunk followed by junk.
        let exact = data(64 << 10, 3);
        let ex_items: [(&str, &[u8]); 1] = [("x", &exact)];
        let raw = {
            // A zstd frame of exactly 64 KiB: raw blocks around incompressible data, padded by
            // trying sizes.
            let mut n = exact.len();
            loop {
                let f = zstd::encode_all(&exact[..n], 1).unwrap();
                if f.len() <= 64 << 10 {
                    break (n, f);
                }
                n -= 1;
            }
        };
        let (n, frame) = raw;
        let ex_items2: [(&str, &[u8]); 1] = [("x", &exact[..n])];
        let _ = ex_items;
        let mut sealed = fx.age(&fx.ours, &frame);
        sealed.extend_from_slice(b"after the end");
        let b = fx.forge(fx.header(&ex_items2, true), &sealed);
        assert_eq!(frame.len(), 64 << 10);
        assert_eq!(both(&b, &opts), Err("decryption-failed"));
    }

    #[test]
    fn threaded_and_inline_agree_on_every_flipped_byte() {
        let fx = Fx::new();
        let opts = fx.opts();
        let one = data(5000, 4);
        let items: [(&str, &[u8]); 2] = [("one", &one), ("two", b"2")];
        for encrypted in [false, true] {
            let b = pack(&fx, encrypted, false, &items);
            for i in (0..b.len()).step_by(3) {
                let mut copy = b.clone();
                copy[i] ^= 0x20;
                assert!(both(&copy, &opts).is_err(), "byte {i}");
            }
            assert!(both(&b[..b.len() - 1], &opts).is_err());
        }
    }

    #[test]
    fn threaded_pack_reports_item_size_mismatch() {
        let fx = Fx::new();
        FORCE_THREADS.with(|f| f.set(Some(true)));
        for (declared, actual) in [(10u64, 5usize), (5, 10), (CHUNK as u64 + 1, CHUNK)] {
            let d = vec![1u8; actual];
            let e = BundleBuilder::new(ie(), "k", 1, None, t0(), t0() + Duration::days(1))
                .encrypt_to(&fx.ours.public())
                .item("a", "application/octet-stream", &d[..], declared)
                .write(&fx.signer, Vec::new())
                .unwrap_err();
            assert_eq!(e.code(), "item-size-mismatch", "{e}");
        }
        FORCE_THREADS.with(|f| f.set(None));
    }

    #[test]
    fn sink_errors_and_aborts_in_the_threaded_path() {
        struct Failing(usize);
        impl ItemSink for Failing {
            type Writer<'s> = &'s mut Failing;
            fn begin_item(&mut self, _item: &ItemInfo) -> io::Result<&mut Failing> {
                Ok(self)
            }
            fn finish_item(&mut self, _item: &ItemInfo) -> io::Result<()> {
                Ok(())
            }
            fn abort(&mut self) {
                self.0 = usize::MAX;
            }
        }
        impl Write for &mut Failing {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 > 100_000 {
                    return Err(io::Error::other("sink full"));
                }
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let fx = Fx::new();
        let big = data(4 * CHUNK, 5);
        let b = pack(&fx, true, true, &[("a", &big)]);
        FORCE_THREADS.with(|f| f.set(Some(true)));
        let mut sink = Failing(0);
        let e = verify_to_sink(Cursor::new(&b), &fx.opts(), &mut sink).unwrap_err();
        FORCE_THREADS.with(|f| f.set(None));
        assert_eq!(e.code(), "io");
        assert_eq!(sink.0, usize::MAX);
        let _: Option<VerifyError> = None;
    }

    /// A bundle reader that fails at an offset, or serves other bytes once the payload is read
    /// the second time (verification seeks to the current position, the end, and twice to the
    /// payload).
    struct Fickle {
        inner: Cursor<Vec<u8>>,
        fail_at: Option<u64>,
        swap: Option<(u64, Vec<u8>)>,
        seeks: u32,
    }

    impl Read for Fickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let pos = self.inner.position();
            if let Some(at) = self.fail_at {
                if pos >= at {
                    return Err(io::Error::other("simulated disk error"));
                }
                let room = usize::try_from(at - pos).unwrap().min(buf.len());
                return self.inner.read(&mut buf[..room]);
            }
            if let Some((from, other)) = &self.swap
                && self.seeks >= 4
                && pos >= *from
            {
                let mut c = Cursor::new(&other[..]);
                c.set_position(pos);
                let n = c.read(buf)?;
                self.inner.set_position(pos + n as u64);
                return Ok(n);
            }
            self.inner.read(buf)
        }
    }

    impl Seek for Fickle {
        fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
            self.seeks += 1;
            self.inner.seek(pos)
        }
    }

    fn run_reader(r: Fickle, opts: &VerifyOptions<'_>, threads: bool) -> Result<(), &'static str> {
        FORCE_THREADS.with(|f| f.set(Some(threads)));
        let mut sink = MemorySink::new();
        let res = verify_to_sink(r, opts, &mut sink);
        FORCE_THREADS.with(|f| f.set(None));
        res.map(|_| ()).map_err(|e| e.code())
    }

    #[test]
    fn failing_and_changing_readers_are_rejected_on_both_paths() {
        let fx = Fx::new();
        let big = data(3 * CHUNK + 5, 6);
        for encrypted in [false, true] {
            let b = pack(&fx, encrypted, false, &[("a", &big), ("b", b"bee")]);
            for at in [
                b.len() as u64 - 100,
                b.len() as u64 - 2 * CHUNK as u64,
                b.len() as u64 - 1,
            ] {
                for threads in [false, true] {
                    let r = Fickle {
                        inner: Cursor::new(b.clone()),
                        fail_at: Some(at),
                        swap: None,
                        seeks: 0,
                    };
                    assert_eq!(run_reader(r, &fx.opts(), threads), Err("io"), "at {at}");
                }
            }
            // The payload changes between the passes: a flipped byte, or a shorter file.
            let mut flipped = b.clone();
            let i = b.len() - CHUNK - 7;
            flipped[i] ^= 1;
            let shorter = b[..b.len() - 10].to_vec();
            for other in [flipped, shorter] {
                for threads in [false, true] {
                    let r = Fickle {
                        inner: Cursor::new(b.clone()),
                        fail_at: None,
                        swap: Some((0, other.clone())),
                        seeks: 0,
                    };
                    let code = run_reader(r, &fx.opts(), threads).unwrap_err();
                    assert!(
                        [
                            "payload-hash-mismatch",
                            "truncated",
                            "decryption-failed",
                            "decompression-failed",
                            "item-hash-mismatch"
                        ]
                        .contains(&code),
                        "{code}"
                    );
                }
            }
            // Unchanged, the fickle reader passes.
            for threads in [false, true] {
                let r = Fickle {
                    inner: Cursor::new(b.clone()),
                    fail_at: None,
                    swap: Some((0, b.clone())),
                    seeks: 0,
                };
                assert_eq!(run_reader(r, &fx.opts(), threads), Ok(()));
            }
        }
    }
}
