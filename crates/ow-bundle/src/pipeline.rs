//! Building blocks for running the payload stages (hashing, zstd, age, spooling) on several
//! threads: recycled chunk buffers, bounded channels of chunks, a `BufRead` fed by a channel and
//! a chunked sink that hands full buffers on.
//!
//! Large bundles run each stage on its own scoped thread, connected by bounded channels of
//! [`CHUNK`]-sized buffers that are recycled through bounded pools, so memory stays a few tens of
//! MiB whatever the payload size and no item or payload is ever held whole. Small bundles run the
//! same stages inline, with buffers no larger than the data (see [`small_buf_len`]).
//!
//! The calling thread keeps all caller-supplied types (item readers, the bundle reader, the item
//! sink), which need not be `Send`; worker threads only see byte chunks.

use std::cell::Cell;
use std::io::{self, BufRead, Read};
use std::ops::Deref;
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel};
use std::sync::{Arc, OnceLock};
use std::thread::{Scope, ScopedJoinHandle};

use blake3::hazmat::{
    ChainingValue, HasherExt as _, Mode, merge_subtrees_non_root, merge_subtrees_root,
};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

/// Size of the buffers that move between stages (a power of two: first-pass BLAKE3 blocks are
/// subtrees of this size).
pub(crate) const CHUNK: usize = 1 << 20;

/// Total plaintext (or stored payload) from which the stages run on separate threads.
pub(crate) const PARALLEL_MIN_BYTES: u64 = 4 << 20;

/// Depth of the bounded channels between stages.
pub(crate) const DEPTH: usize = 4;

/// BLAKE3 and SHA-256 of one item.
pub(crate) type Digests = (Digest, Digest);

/// Whether more than one core is available (asked once per process: on Linux the answer reads
/// cgroup files).
pub(crate) fn multi_core() -> bool {
    static MULTI: OnceLock<bool> = OnceLock::new();
    *MULTI.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

#[cfg(test)]
thread_local! {
    /// Tests force the threaded or the inline path regardless of size.
    pub(crate) static FORCE_THREADS: Cell<Option<bool>> = const { Cell::new(None) };
}

/// Whether a payload of `bytes` is worth running on several threads.
pub(crate) fn use_threads(bytes: u64) -> bool {
    #[cfg(test)]
    if let Some(forced) = FORCE_THREADS.with(Cell::get) {
        return forced;
    }
    bytes >= PARALLEL_MIN_BYTES && multi_core()
}

/// Spawns a pipeline stage named `owb-{name}` (visible in `top -H` and profilers).
pub(crate) fn spawn<'scope, T: Send + 'scope>(
    scope: &'scope Scope<'scope, '_>,
    name: &str,
    f: impl FnOnce() -> T + Send + 'scope,
) -> io::Result<ScopedJoinHandle<'scope, T>> {
    std::thread::Builder::new()
        .name(format!("owb-{name}"))
        .spawn_scoped(scope, f)
}

/// Waits for a stage; a panic in it continues on this thread.
pub(crate) fn join<T>(h: ScopedJoinHandle<'_, T>) -> T {
    h.join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Length of a buffer for data of `total` bytes: at most [`CHUNK`], at least 1, so that small
/// bundles never allocate (and zero) large buffers.
pub(crate) fn small_buf_len(total: u64) -> usize {
    usize::try_from(total).unwrap_or(CHUNK).clamp(1, CHUNK)
}

/// The error a stage reports when a neighbouring stage has gone: the real cause is reported by
/// that stage.
pub(crate) fn stage_gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, StageGone)
}

/// Marker for [`stage_gone`] errors.
#[derive(Debug)]
pub(crate) struct StageGone;

impl std::fmt::Display for StageGone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a pipeline stage stopped")
    }
}

impl std::error::Error for StageGone {}

/// Whether `e` only says that a neighbouring stage has gone.
pub(crate) fn is_stage_gone(e: &io::Error) -> bool {
    e.get_ref().is_some_and(|inner| inner.is::<StageGone>())
}

/// Where a buffer goes when its chunk is dropped.
pub(crate) type Home = Arc<dyn Fn(Vec<u8>) + Send + Sync>;

/// A buffer holding `len` valid bytes, returned to its pool when dropped.
pub(crate) struct Pooled {
    buf: Vec<u8>,
    len: usize,
    home: Home,
}

impl Pooled {
    pub(crate) fn new(buf: Vec<u8>, len: usize, home: Home) -> Self {
        debug_assert!(len <= buf.len());
        Self { buf, len, home }
    }
}

impl Deref for Pooled {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        (self.home)(std::mem::take(&mut self.buf));
    }
}

/// A chunk of bytes moving between stages.
pub(crate) enum Chunk<'env> {
    /// A pooled buffer owned by this chunk.
    Owned(Pooled),
    /// A pooled buffer shared by two consumers (it goes home when both dropped it).
    Shared(Arc<Pooled>),
    /// Caller memory borrowed for the duration of the pipeline.
    Borrowed(&'env [u8]),
}

impl Deref for Chunk<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Chunk::Owned(p) => p,
            Chunk::Shared(p) => p,
            Chunk::Borrowed(s) => s,
        }
    }
}

/// A message on a data channel. A channel that disconnects without `End` means the sending
/// stage failed (it reports why).
pub(crate) enum Msg<'env> {
    Data(Chunk<'env>),
    End,
}

/// A bounded pool of [`CHUNK`]-sized, zero-initialised-once buffers.
pub(crate) struct Pool {
    tx: Sender<Vec<u8>>,
    rx: Receiver<Vec<u8>>,
    home: Home,
    size: usize,
    allocated: Cell<usize>,
    max: usize,
}

impl Pool {
    pub(crate) fn new(size: usize, max: usize) -> Self {
        let (tx, rx) = channel::<Vec<u8>>();
        let back = tx.clone();
        let home: Home = Arc::new(move |buf: Vec<u8>| {
            // The pool may be gone at shutdown; the buffer is then simply freed.
            let _ = back.send(buf);
        });
        Self {
            tx,
            rx,
            home,
            size,
            allocated: Cell::new(0),
            max,
        }
    }

    /// A buffer of the pool's size: a recycled one, a new one while fewer than `max` exist, or
    /// else the next one returned.
    pub(crate) fn get(&self) -> Vec<u8> {
        if let Ok(buf) = self.rx.try_recv() {
            return buf;
        }
        if self.allocated.get() < self.max {
            self.allocated.set(self.allocated.get() + 1);
            return vec![0u8; self.size];
        }
        // Our own sender keeps the channel open, so this only waits for a buffer.
        match self.rx.recv() {
            Ok(buf) => buf,
            Err(_) => vec![0u8; self.size],
        }
    }

    /// Wraps `buf[..len]` as a chunk that returns to this pool.
    pub(crate) fn wrap(&self, buf: Vec<u8>, len: usize) -> Pooled {
        Pooled::new(buf, len, Arc::clone(&self.home))
    }

    /// Gives a buffer back without sending it anywhere.
    pub(crate) fn put(&self, buf: Vec<u8>) {
        let _ = self.tx.send(buf);
    }
}

/// Receives output buffers from a producer (zstd, or a copying writer).
pub(crate) trait BufSink {
    /// An empty buffer to fill (its whole length is writable).
    fn take(&mut self) -> Vec<u8>;
    /// A buffer whose first `len` bytes are output.
    fn put(&mut self, buf: Vec<u8>, len: usize) -> io::Result<()>;
}

/// A [`BufSink`] that sends buffers down a channel as chunks of a pool.
pub(crate) struct ChanSink<'env> {
    pool: Pool,
    tx: SyncSender<Msg<'env>>,
}

impl<'env> ChanSink<'env> {
    /// Buffers of [`CHUNK`] bytes, at most `pool_max` of them.
    pub(crate) fn new(tx: SyncSender<Msg<'env>>, pool_max: usize) -> Self {
        Self {
            pool: Pool::new(CHUNK, pool_max),
            tx,
        }
    }

    /// Tells the receiver that the stream ended cleanly.
    pub(crate) fn end(self) -> io::Result<()> {
        self.tx.send(Msg::End).map_err(|_| stage_gone())
    }
}

impl BufSink for ChanSink<'_> {
    fn take(&mut self) -> Vec<u8> {
        self.pool.get()
    }

    fn put(&mut self, buf: Vec<u8>, len: usize) -> io::Result<()> {
        if len == 0 {
            self.pool.put(buf);
            return Ok(());
        }
        let chunk = Chunk::Owned(self.pool.wrap(buf, len));
        self.tx.send(Msg::Data(chunk)).map_err(|_| stage_gone())
    }
}

/// A `Write` that copies into [`BufSink`] buffers and hands each on when full.
pub(crate) struct SinkWriter<S: BufSink> {
    sink: S,
    buf: Vec<u8>,
    len: usize,
}

impl<S: BufSink> SinkWriter<S> {
    pub(crate) fn new(mut sink: S) -> Self {
        let buf = sink.take();
        Self { sink, buf, len: 0 }
    }

    /// Hands on what is buffered and returns the sink.
    pub(crate) fn finish(mut self) -> io::Result<S> {
        let buf = std::mem::take(&mut self.buf);
        self.sink.put(buf, self.len)?;
        Ok(self.sink)
    }
}

impl<S: BufSink> io::Write for SinkWriter<S> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.len == self.buf.len() {
            let full = std::mem::take(&mut self.buf);
            self.sink.put(full, self.len)?;
            self.buf = self.sink.take();
            self.len = 0;
        }
        let n = data.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&data[..n]);
        self.len += n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A `BufRead` over the chunks arriving on a channel; each chunk is dropped (and so goes home)
/// once consumed.
pub(crate) struct ChanReader<'env> {
    rx: Receiver<Msg<'env>>,
    cur: Option<Chunk<'env>>,
    pos: usize,
    ended: bool,
}

impl<'env> ChanReader<'env> {
    pub(crate) fn new(rx: Receiver<Msg<'env>>) -> Self {
        Self {
            rx,
            cur: None,
            pos: 0,
            ended: false,
        }
    }

    /// Consumes everything left up to the end of the stream; returns how many bytes that was.
    pub(crate) fn drain(&mut self) -> io::Result<u64> {
        let mut left = 0u64;
        loop {
            let n = self.fill_buf()?.len();
            if n == 0 {
                return Ok(left);
            }
            left += n as u64;
            self.consume(n);
        }
    }
}

impl BufRead for ChanReader<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        while !self.ended && self.cur.as_ref().is_none_or(|c| self.pos >= c.len()) {
            self.cur = None;
            self.pos = 0;
            match self.rx.recv() {
                Ok(Msg::Data(chunk)) => self.cur = Some(chunk),
                Ok(Msg::End) => self.ended = true,
                Err(_) => return Err(stage_gone()),
            }
        }
        match &self.cur {
            Some(c) => Ok(&c[self.pos..]),
            None => Ok(&[]),
        }
    }

    fn consume(&mut self, amt: usize) {
        if let Some(c) = &self.cur {
            self.pos = (self.pos + amt).min(c.len());
        }
    }
}

impl Read for ChanReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

/// BLAKE3 chaining value of the `index`th [`CHUNK`]-sized block of an input longer than one
/// block. A block is a complete subtree of BLAKE3's tree (its size is a power of two chunks and
/// it starts at a multiple of its size), so blocks can be hashed in any order and on any thread
/// and combined with [`blake3_from_blocks`].
pub(crate) fn blake3_block(index: usize, block: &[u8]) -> ChainingValue {
    debug_assert!(block.len() <= CHUNK && !block.is_empty());
    blake3::Hasher::new()
        .set_input_offset(index as u64 * CHUNK as u64)
        .update(block)
        .finalize_non_root()
}

/// BLAKE3 of an input of two or more blocks, from the chaining values of its blocks in order
/// (every block full except perhaps the last): BLAKE3's tree is left-balanced, so complete
/// pairs merge as they arrive and the right edge merges last, into the root.
pub(crate) fn blake3_from_blocks(cvs: &[ChainingValue]) -> Option<Digest> {
    let (last, full) = cvs.split_last()?;
    let mut stack: Vec<ChainingValue> = Vec::new();
    for (i, cv) in full.iter().enumerate() {
        let mut cv = *cv;
        let mut count = i + 1;
        while count % 2 == 0 {
            let left = stack.pop()?;
            cv = merge_subtrees_non_root(&left, &cv, Mode::Hash);
            count /= 2;
        }
        stack.push(cv);
    }
    let mut right = *last;
    while stack.len() > 1 {
        let left = stack.pop()?;
        right = merge_subtrees_non_root(&left, &right, Mode::Hash);
    }
    let left = stack.pop()?;
    Some(Digest::from(merge_subtrees_root(&left, &right, Mode::Hash)))
}

/// BLAKE3 and SHA-256 of one item at a time.
pub(crate) struct ItemHasher {
    b3: blake3::Hasher,
    sha: Sha256,
}

impl ItemHasher {
    pub(crate) fn new() -> Self {
        Self {
            b3: blake3::Hasher::new(),
            sha: Sha256::new(),
        }
    }

    pub(crate) fn update(&mut self, data: &[u8]) {
        self.b3.update(data);
        self.sha.update(data);
    }

    /// The digests of everything since the last call, and a reset.
    pub(crate) fn finish(&mut self) -> Digests {
        let b3 = Digest::from(self.b3.finalize());
        self.b3.reset();
        let sha = Digest::from_bytes(self.sha.finalize_reset().into());
        (b3, sha)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc::sync_channel;

    use super::*;

    #[test]
    fn item_hasher_matches_one_shot_hashes() {
        let mut h = ItemHasher::new();
        h.update(b"ab");
        h.update(b"c");
        let (b3, sha) = h.finish();
        assert_eq!(b3, Digest::blake3(b"abc"));
        assert_eq!(sha, Digest::from_bytes(Sha256::digest(b"abc").into()));
        assert_eq!(h.finish().0, Digest::blake3(b""));
    }

    #[test]
    fn blake3_from_blocks_matches_blake3() {
        let mut data = vec![0u8; 9 * CHUNK + 3];
        let mut h = blake3::Hasher::new();
        h.update(b"tree");
        h.finalize_xof().fill(&mut data);
        for len in [
            CHUNK + 1,
            2 * CHUNK,
            2 * CHUNK + 1023,
            3 * CHUNK,
            3 * CHUNK + 1024,
            4 * CHUNK,
            4 * CHUNK + 1,
            5 * CHUNK + 7,
            6 * CHUNK,
            7 * CHUNK + 4095,
            8 * CHUNK,
            9 * CHUNK + 3,
        ] {
            let cvs: Vec<ChainingValue> = data[..len]
                .chunks(CHUNK)
                .enumerate()
                .map(|(i, b)| blake3_block(i, b))
                .collect();
            assert_eq!(
                blake3_from_blocks(&cvs),
                Some(Digest::blake3(&data[..len])),
                "length {len}"
            );
        }
        assert_eq!(blake3_from_blocks(&[]), None);
    }

    #[test]
    fn pool_recycles_and_bounds() {
        let pool = Pool::new(8, 2);
        let a = pool.get();
        let b = pool.get();
        assert_eq!((a.len(), b.len()), (8, 8));
        drop(pool.wrap(a, 3));
        let c = pool.get();
        assert_eq!(c.len(), 8);
        assert_eq!(pool.allocated.get(), 2);
        drop((b, c));
    }

    #[test]
    fn chan_reader_and_sink_writer_round_trip() {
        use std::io::Write;
        let data: Vec<u8> = (0..(3 * CHUNK + 17)).map(|i| (i % 251) as u8).collect();
        let (tx, rx) = sync_channel(DEPTH);
        std::thread::scope(|s| {
            let d = &data;
            s.spawn(move || {
                let mut w = SinkWriter::new(ChanSink::new(tx, 3));
                for part in d.chunks(1000) {
                    w.write_all(part).unwrap();
                }
                w.finish().unwrap().end().unwrap();
            });
            let mut r = ChanReader::new(rx);
            let mut got = vec![0u8; 10];
            r.read_exact(&mut got).unwrap();
            let rest = r.drain().unwrap();
            assert_eq!(got, data[..10]);
            assert_eq!(rest, data.len() as u64 - 10);
            assert_eq!(r.fill_buf().unwrap().len(), 0);
        });
    }

    #[test]
    fn chan_reader_reports_a_vanished_sender() {
        let (tx, rx) = sync_channel::<Msg<'_>>(1);
        tx.send(Msg::Data(Chunk::Borrowed(b"abc"))).unwrap();
        drop(tx);
        let mut r = ChanReader::new(rx);
        let mut out = Vec::new();
        let e = r.read_to_end(&mut out).unwrap_err();
        assert!(is_stage_gone(&e));
        assert_eq!(out, b"abc");
    }
}
