//! Hashing offloaded to a second thread, so that on a multi-core machine hashing overlaps with
//! compression and encryption (when writing) or reading, decryption and decompression (when
//! verifying).
//!
//! Two hash streams share one worker: the *item* stream (BLAKE3 + SHA-256 per item) and the
//! *payload* stream (BLAKE3 of the stored payload). The calling thread keeps all I/O and all
//! caller-supplied types (readers, sinks); the worker only sees byte chunks, shared through
//! `Arc`s or borrowed for the scope, and recycled — no data is copied for the worker. Small
//! bundles hash inline on the calling thread.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{Receiver, Sender, SyncSender, channel, sync_channel};
use std::sync::{Arc, OnceLock};
use std::thread::Scope;

use sha2::{Digest as _, Sha256};

use crate::digest::Digest;
use crate::io_util::{IO_BUF, read_some};

/// Total plaintext from which hashing moves to a second thread.
pub(crate) const PARALLEL_MIN_BYTES: u64 = 4 << 20;

/// Chunks in flight to the worker.
const DEPTH: usize = 6;

/// BLAKE3 and SHA-256 of one item (the SHA-256 is meaningless for the payload stream).
pub(crate) type Digests = (Digest, Digest);

#[derive(Clone, Copy)]
enum Stream {
    Items = 0,
    Payload = 1,
}

enum Job<'env> {
    Shared(Stream, Arc<Vec<u8>>, usize),
    Slice(Stream, &'env [u8]),
    End(Stream),
}

struct Hashers {
    b3: blake3::Hasher,
    sha: Option<Sha256>,
}

impl Hashers {
    fn new(with_sha: bool) -> Self {
        Self {
            b3: blake3::Hasher::new(),
            sha: with_sha.then(Sha256::new),
        }
    }

    fn update(&mut self, data: &[u8]) {
        self.b3.update(data);
        if let Some(sha) = &mut self.sha {
            sha.update(data);
        }
    }

    fn finish(&mut self) -> Digests {
        let b3 = Digest::from(self.b3.finalize());
        self.b3.reset();
        let sha = match &mut self.sha {
            Some(sha) => Digest::from_bytes(sha.finalize_reset().into()),
            None => Digest::from_bytes([0; 32]),
        };
        (b3, sha)
    }
}

/// One hash stream: chunks go in, per-segment digests come out.
pub(crate) struct StreamHasher<'env>(Mode<'env>);

enum Mode<'env> {
    Inline {
        hashers: Box<Hashers>,
        spare: Option<Vec<u8>>,
    },
    Worker {
        stream: Stream,
        jobs: SyncSender<Job<'env>>,
        results: Receiver<Digests>,
        pool: Receiver<Arc<Vec<u8>>>,
        allocated: usize,
    },
}

/// Whether more than one core is available (asked once per process: on Linux the answer reads
/// cgroup files).
fn multi_core() -> bool {
    static MULTI: OnceLock<bool> = OnceLock::new();
    *MULTI.get_or_init(|| std::thread::available_parallelism().is_ok_and(|n| n.get() > 1))
}

fn worker_gone() -> io::Error {
    io::Error::other("the hashing thread stopped unexpectedly")
}

/// The item stream (BLAKE3 + SHA-256) and the payload stream (BLAKE3), hashed inline, or on a
/// worker spawned in `scope` when `parallel` and the machine has more than one core.
pub(crate) fn hash_streams<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    parallel: bool,
) -> (StreamHasher<'env>, StreamHasher<'env>) {
    if !parallel || !multi_core() {
        let inline = |with_sha| {
            StreamHasher(Mode::Inline {
                hashers: Box::new(Hashers::new(with_sha)),
                spare: None,
            })
        };
        return (inline(true), inline(false));
    }
    let (jobs, jobs_rx) = sync_channel::<Job<'env>>(DEPTH);
    let (items_res_tx, items_res) = channel();
    let (payload_res_tx, payload_res) = channel();
    let (items_pool_tx, items_pool) = channel();
    let (payload_pool_tx, payload_pool) = channel();
    scope.spawn(move || {
        worker(
            jobs_rx,
            [items_res_tx, payload_res_tx],
            [items_pool_tx, payload_pool_tx],
        );
    });
    let make = |stream, results, pool| {
        StreamHasher(Mode::Worker {
            stream,
            jobs: jobs.clone(),
            results,
            pool,
            allocated: 0,
        })
    };
    (
        make(Stream::Items, items_res, items_pool),
        make(Stream::Payload, payload_res, payload_pool),
    )
}

impl<'env> StreamHasher<'env> {
    /// A buffer of [`IO_BUF`] bytes to fill with the next chunk.
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        match &mut self.0 {
            Mode::Inline { spare, .. } => spare.take().unwrap_or_else(|| vec![0u8; IO_BUF]),
            Mode::Worker {
                pool, allocated, ..
            } => {
                // Reuse a buffer the worker has finished with; wait for one once enough exist.
                let recycled = if *allocated >= DEPTH + 2 {
                    pool.recv().ok()
                } else {
                    pool.try_recv().ok()
                };
                if let Some(arc) = recycled
                    && let Ok(v) = Arc::try_unwrap(arc)
                {
                    return v;
                }
                *allocated += 1;
                vec![0u8; IO_BUF]
            }
        }
    }

    /// Hashes `buf[..len]` and hands the same bytes to `use_chunk` (on this thread).
    pub(crate) fn feed_buffer(
        &mut self,
        buf: Vec<u8>,
        len: usize,
        use_chunk: impl FnOnce(&[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        match &mut self.0 {
            Mode::Inline { hashers, spare } => {
                hashers.update(&buf[..len]);
                let r = use_chunk(&buf[..len]);
                *spare = Some(buf);
                r
            }
            Mode::Worker { stream, jobs, .. } => {
                let arc = Arc::new(buf);
                jobs.send(Job::Shared(*stream, Arc::clone(&arc), len))
                    .map_err(|_| worker_gone())?;
                use_chunk(&arc[..len])
            }
        }
    }

    /// Hashes `buf[..len]`, which the caller has already used.
    pub(crate) fn feed_owned(&mut self, buf: Vec<u8>, len: usize) -> io::Result<()> {
        self.feed_buffer(buf, len, |_| Ok(()))
    }

    /// Hashes a borrowed slice (the caller uses the same slice itself).
    pub(crate) fn feed_slice(&mut self, data: &'env [u8]) -> io::Result<()> {
        match &mut self.0 {
            Mode::Inline { hashers, .. } => {
                hashers.update(data);
                Ok(())
            }
            Mode::Worker { stream, jobs, .. } => jobs
                .send(Job::Slice(*stream, data))
                .map_err(|_| worker_gone()),
        }
    }

    /// Ends the current segment (item, or the payload) and returns its digests.
    pub(crate) fn end(&mut self) -> io::Result<Digests> {
        match &mut self.0 {
            Mode::Inline { hashers, .. } => Ok(hashers.finish()),
            Mode::Worker {
                stream,
                jobs,
                results,
                ..
            } => {
                jobs.send(Job::End(*stream)).map_err(|_| worker_gone())?;
                results.recv().map_err(|_| worker_gone())
            }
        }
    }
}

fn worker(
    jobs: Receiver<Job<'_>>,
    results: [Sender<Digests>; 2],
    pools: [Sender<Arc<Vec<u8>>>; 2],
) {
    let mut hashers = [Hashers::new(true), Hashers::new(false)];
    for job in jobs {
        match job {
            Job::Shared(s, buf, len) => {
                hashers[s as usize].update(&buf[..len]);
                // The receiver may be gone at shutdown; the buffer is then simply freed.
                let _ = pools[s as usize].send(buf);
            }
            Job::Slice(s, data) => hashers[s as usize].update(data),
            Job::End(s) => {
                if results[s as usize]
                    .send(hashers[s as usize].finish())
                    .is_err()
                {
                    return;
                }
            }
        }
    }
}

/// A buffered reader whose every byte read from `inner` is also fed, in order, to a hash
/// stream; the last partial buffer is fed when the reader is dropped. Reports an early end of
/// input (before `expect` bytes) as an `UnexpectedEof` error and sets `failed` on any error of
/// `inner`, so errors surfacing from outer decoders can be attributed to the file.
pub(crate) struct HashingBufReader<'h, 'env, R> {
    inner: R,
    hasher: &'h mut StreamHasher<'env>,
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    count: &'h std::cell::Cell<u64>,
    failed: &'h std::cell::Cell<bool>,
    expect: u64,
}

impl<'h, 'env, R: Read> HashingBufReader<'h, 'env, R> {
    pub(crate) fn new(
        inner: R,
        hasher: &'h mut StreamHasher<'env>,
        count: &'h std::cell::Cell<u64>,
        failed: &'h std::cell::Cell<bool>,
        expect: u64,
    ) -> Self {
        Self {
            inner,
            hasher,
            buf: Vec::new(),
            pos: 0,
            filled: 0,
            count,
            failed,
            expect,
        }
    }
}

impl<R: Read> BufRead for HashingBufReader<'_, '_, R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.pos >= self.filled {
            if self.filled > 0 {
                let full = std::mem::take(&mut self.buf);
                let len = self.filled;
                self.filled = 0;
                self.pos = 0;
                self.hasher.feed_owned(full, len)?;
            }
            if self.buf.is_empty() {
                self.buf = self.hasher.buffer();
            }
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
            self.pos = 0;
        }
        Ok(&self.buf[self.pos..self.filled])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.filled);
    }
}

impl<R: Read> Read for HashingBufReader<'_, '_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(out.len());
        out[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R> Drop for HashingBufReader<'_, '_, R> {
    fn drop(&mut self) {
        if self.filled > 0 {
            let full = std::mem::take(&mut self.buf);
            // A failure here means the worker is gone; `end()` reports it.
            let _ = self.hasher.feed_owned(full, self.filled);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    fn digests(data: &[u8]) -> Digests {
        (
            Digest::blake3(data),
            Digest::from_bytes(Sha256::digest(data).into()),
        )
    }

    #[test]
    fn inline_and_worker_agree() {
        let a = vec![1u8; 3 * IO_BUF + 17];
        let b = b"second item".to_vec();
        for parallel in [false, true] {
            std::thread::scope(|s| {
                let (mut h, mut p) = hash_streams(s, parallel);
                let mut seen = Vec::new();
                for chunk in a.chunks(IO_BUF) {
                    let mut buf = h.buffer();
                    buf[..chunk.len()].copy_from_slice(chunk);
                    h.feed_buffer(buf, chunk.len(), |c| {
                        seen.extend_from_slice(c);
                        Ok(())
                    })
                    .unwrap();
                    p.feed_slice(chunk).unwrap();
                }
                assert_eq!(h.end().unwrap(), digests(&a));
                assert_eq!(seen, a);
                h.feed_slice(&b).unwrap();
                assert_eq!(h.end().unwrap(), digests(&b));
                assert_eq!(h.end().unwrap(), digests(b""));
                assert_eq!(p.end().unwrap().0, Digest::blake3(&a));
            });
        }
    }

    #[test]
    fn hashing_buf_reader_hashes_everything_read() {
        let data: Vec<u8> = (0..(2 * IO_BUF + 5)).map(|i| i as u8).collect();
        for parallel in [false, true] {
            std::thread::scope(|s| {
                let (_h, mut p) = hash_streams(s, parallel);
                let count = Cell::new(0);
                let failed = Cell::new(false);
                let mut got = Vec::new();
                {
                    let mut r = HashingBufReader::new(
                        &data[..],
                        &mut p,
                        &count,
                        &failed,
                        data.len() as u64,
                    );
                    // Read only part: the rest of the last buffer is still hashed on drop.
                    let mut part = vec![0u8; IO_BUF + 3];
                    r.read_exact(&mut part).unwrap();
                    got.extend_from_slice(&part);
                }
                assert_eq!(got, data[..IO_BUF + 3]);
                let read = count.get() as usize;
                assert_eq!(p.end().unwrap().0, Digest::blake3(&data[..read]));
                assert!(!failed.get());
            });
        }
    }

    #[test]
    fn hashing_buf_reader_reports_short_input() {
        std::thread::scope(|s| {
            let (_h, mut p) = hash_streams(s, false);
            let count = Cell::new(0);
            let failed = Cell::new(false);
            let mut r = HashingBufReader::new(&b"abc"[..], &mut p, &count, &failed, 5);
            let mut out = Vec::new();
            let e = r.read_to_end(&mut out).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
            assert!(failed.get());
        });
    }
}
