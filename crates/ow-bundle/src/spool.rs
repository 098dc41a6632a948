//! The writer's payload spool: the stored payload must be complete (its size and hash go into
//! the signed header) before the header can be written, so it is held in memory up to a limit
//! and, beyond it, either in an anonymous temporary file (copied to the output at the end, when
//! the output is only a `Write`) or directly in the bundle file being built, after a gap
//! reserved for the framing (when the output is a `File`, which saves copying the payload).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;

use crate::io_util::IO_BUF;

/// Where the bytes beyond the memory limit went.
enum Overflow {
    /// An anonymous temporary file.
    Temp(File),
    /// The bundle file itself: the payload's first byte belongs at `base`, so byte `i` of the
    /// overflow (payload byte `limit + i`) is written at `base + limit + i`.
    Direct {
        file: File,
        base: u64,
        writeback: Option<WriteBack>,
    },
}

/// Bytes of payload written into the bundle file between two early write-backs.
const WRITEBACK_STEP: u64 = 32 << 20;

/// Early write-back of a bundle file being written: a thread that syncs the file's data each
/// time it is asked, so the caller's final sync finds only the last part of a large payload
/// still to write instead of all of it. The file's pages would otherwise stay dirty until that
/// final sync (the kernel's own write-back starts only after tens of seconds or at a share of
/// memory), putting the whole write on the critical path. No `unsafe` (`sync_file_range`) is
/// needed: `fdatasync` on another thread overlaps with the packing that goes on meanwhile.
struct WriteBack {
    kick: Option<std::sync::mpsc::SyncSender<()>>,
    thread: Option<std::thread::JoinHandle<io::Result<()>>>,
    since: u64,
    /// Syncs completed (read by tests).
    #[cfg_attr(not(test), expect(dead_code))]
    synced: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl WriteBack {
    fn start(file: &File) -> Option<Self> {
        let file = file.try_clone().ok()?;
        let (kick, asked) = std::sync::mpsc::sync_channel::<()>(1);
        let synced = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let count = std::sync::Arc::clone(&synced);
        let thread = std::thread::Builder::new()
            .name("bundle-writeback".into())
            .spawn(move || {
                for () in asked {
                    file.sync_data()?;
                    count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(())
            })
            .ok()?;
        Some(Self {
            kick: Some(kick),
            thread: Some(thread),
            since: 0,
            synced,
        })
    }

    /// Counts `n` more bytes written; asks for a sync every [`WRITEBACK_STEP`] bytes (skipped
    /// while one is still pending).
    fn wrote(&mut self, n: u64) {
        self.since += n;
        if self.since >= WRITEBACK_STEP {
            self.since = 0;
            if let Some(k) = &self.kick {
                let _ = k.try_send(());
            }
        }
    }

    /// Waits for the thread; reports a failed sync (the caller's own sync would too, but a
    /// write-back error must not depend on which descriptor sees it).
    fn finish(mut self) -> io::Result<()> {
        self.kick = None;
        match self.thread.take().map(std::thread::JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the write-back thread panicked")),
            None => Ok(()),
        }
    }
}

impl Drop for WriteBack {
    fn drop(&mut self) {
        self.kick = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub(crate) struct Spool {
    /// Early write-backs completed, for tests.
    #[cfg(test)]
    synced: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
    mem: Vec<u8>,
    limit: usize,
    overflow: Option<Overflow>,
    /// Set for a spool writing its overflow into the bundle file: the file and the offset its
    /// payload is expected to start at (the framing's length, guessed before the payload's
    /// length is known).
    direct: Option<(File, u64)>,
    file_len: u64,
}

impl Spool {
    /// A spool keeping up to `limit` bytes in memory; `expected` sizes the initial allocation.
    /// With `direct`, bytes beyond the limit are written straight into that file, as if the
    /// payload started at the given offset (see [`Spool::finish_into`]).
    pub(crate) fn new(limit: usize, expected: u64, direct: Option<(File, u64)>) -> Self {
        let initial = usize::try_from(expected).unwrap_or(usize::MAX).min(limit);
        Self {
            #[cfg(test)]
            synced: None,
            mem: Vec::with_capacity(initial),
            limit,
            overflow: None,
            direct,
            file_len: 0,
        }
    }

    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let room = self.limit.saturating_sub(self.mem.len());
        let (in_mem, rest) = data.split_at(room.min(data.len()));
        self.mem.extend_from_slice(in_mem);
        if !rest.is_empty() {
            let overflow = match &mut self.overflow {
                Some(o) => o,
                None => self.overflow.insert(match self.direct.take() {
                    Some((file, base)) => {
                        let writeback = WriteBack::start(&file);
                        #[cfg(test)]
                        {
                            self.synced = writeback.as_ref().map(|w| w.synced.clone());
                        }
                        Overflow::Direct {
                            writeback,
                            file,
                            base,
                        }
                    }
                    None => Overflow::Temp(tempfile::tempfile()?),
                }),
            };
            match overflow {
                Overflow::Temp(file) => file.write_all(rest)?,
                Overflow::Direct {
                    file,
                    base,
                    writeback,
                } => {
                    let at = *base + self.mem.len() as u64 + self.file_len;
                    file.write_all_at(rest, at)?;
                    if let Some(w) = writeback {
                        w.wrote(rest.len() as u64);
                    }
                }
            }
            self.file_len += rest.len() as u64;
        }
        Ok(())
    }

    /// Bytes spooled.
    pub(crate) fn len(&self) -> u64 {
        self.mem.len() as u64 + self.file_len
    }

    /// Writes everything spooled to `out`; returns the number of bytes written. A spool whose
    /// overflow went into a bundle file cannot be written elsewhere.
    pub(crate) fn write_to<W: Write>(self, out: &mut W) -> io::Result<u64> {
        out.write_all(&self.mem)?;
        let mut total = self.mem.len() as u64;
        drop(self.mem);
        match self.overflow {
            None => {}
            Some(Overflow::Direct { .. }) => {
                return Err(io::Error::other(
                    "the payload overflowed into the bundle file and cannot be copied elsewhere",
                ));
            }
            Some(Overflow::Temp(mut file)) => {
                file.flush()?;
                file.seek(SeekFrom::Start(0))?;
                let copied = io::copy(&mut (&mut file).take(self.file_len), out)?;
                if copied != self.file_len {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "payload spool file yielded {copied} of {} bytes",
                            self.file_len
                        ),
                    ));
                }
                total += copied;
            }
        }
        Ok(total)
    }

    /// Completes the bundle in `file` (the file given to [`Spool::new`] as `direct`, or any
    /// file when nothing overflowed): `framing` at offset 0, the payload right after it.
    /// Returns the bundle's length. The file is not truncated; the caller does that.
    ///
    /// The overflow was written assuming the framing would be as long as guessed; when the
    /// real framing differs (the payload's length has a different number of decimal digits
    /// in the header), the overflow is moved within the file — the copy the direct path exists
    /// to avoid, paid only in that case.
    pub(crate) fn finish_into(self, file: &File, framing: &[u8]) -> io::Result<u64> {
        let start = framing.len() as u64;
        match self.overflow {
            Some(Overflow::Direct {
                base, writeback, ..
            }) => {
                if let Some(w) = writeback {
                    w.finish()?;
                }
                if base != start {
                    let skip = self.mem.len() as u64;
                    move_within(file, base + skip, start + skip, self.file_len)?;
                }
            }
            None => {}
            Some(Overflow::Temp(_)) => {
                return Err(io::Error::other(
                    "the payload overflowed into a temporary file, not the bundle file",
                ));
            }
        }
        // Small bundles: one write for everything (the framing and payload are a few KiB).
        if self.mem.len() <= IO_BUF {
            let mut all = Vec::with_capacity(framing.len() + self.mem.len());
            all.extend_from_slice(framing);
            all.extend_from_slice(&self.mem);
            file.write_all_at(&all, 0)?;
        } else {
            file.write_all_at(framing, 0)?;
            file.write_all_at(&self.mem, start)?;
        }
        Ok(start + self.mem.len() as u64 + self.file_len)
    }
}

/// Moves `len` bytes inside `file` from offset `from` to offset `to` (the ranges may overlap).
fn move_within(file: &File, from: u64, to: u64, len: u64) -> io::Result<()> {
    let mut buf = vec![0u8; IO_BUF];
    let step = IO_BUF as u64;
    let mut copy = |pos: u64| -> io::Result<()> {
        // `pos` < `len`, so the chunk length fits in `IO_BUF`.
        let n = usize::try_from((len - pos).min(step)).unwrap_or(IO_BUF);
        file.read_exact_at(&mut buf[..n], from + pos)?;
        file.write_all_at(&buf[..n], to + pos)
    };
    if to < from {
        // Moving towards the start: front to back never overwrites bytes not yet read.
        let mut pos = 0;
        while pos < len {
            copy(pos)?;
            pos += step;
        }
    } else {
        // Moving towards the end: back to front, for the same reason.
        let mut pos = len.div_ceil(step) * step;
        while pos > 0 {
            pos -= step;
            copy(pos)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: u32) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn memory_then_file() {
        let data = data(10_000);
        for limit in [0, 1, 4096, 10_000, 1 << 20] {
            let mut s = Spool::new(limit, 100, None);
            for chunk in data.chunks(777) {
                s.write_all(chunk).unwrap();
            }
            assert_eq!(s.len(), data.len() as u64);
            let mut out = Vec::new();
            assert_eq!(s.write_to(&mut out).unwrap(), data.len() as u64);
            assert_eq!(out, data);
        }
    }

    #[test]
    fn direct_overflow_lands_after_the_framing_whatever_its_real_length() {
        // Large enough that moving the overflow takes several buffers.
        let data = data(3 * IO_BUF as u32 + 12_345);
        for limit in [0, 1, 4096, IO_BUF + 7, data.len(), 1 << 30] {
            for (guess, real) in [(40, 40), (40, 33), (33, 40), (0, 7), (7, 0)] {
                let file = tempfile::tempfile().unwrap();
                let handle = file.try_clone().unwrap();
                let mut s = Spool::new(limit, 100, Some((handle, guess)));
                for chunk in data.chunks(65_537) {
                    s.write_all(chunk).unwrap();
                }
                assert_eq!(s.len(), data.len() as u64);
                let framing = vec![0xAAu8; real];
                let total = s.finish_into(&file, &framing).unwrap();
                assert_eq!(total, (real + data.len()) as u64);
                file.set_len(total).unwrap();
                let mut out = Vec::new();
                (&file).read_to_end(&mut out).unwrap();
                assert_eq!(&out[..real], &framing[..], "limit {limit} guess {guess}");
                assert!(
                    out[real..] == data[..],
                    "limit {limit} guess {guess} real {real}"
                );
            }
        }
    }

    #[test]
    fn a_large_direct_payload_is_written_back_while_it_is_written() {
        let step = WRITEBACK_STEP as usize;
        let chunk = vec![0x5Au8; 1 << 20];
        let file = tempfile::tempfile().unwrap();
        let mut s = Spool::new(4096, 100, Some((file.try_clone().unwrap(), 64)));
        let total = 2 * step + 12_345;
        let mut written = 0;
        while written < total {
            let n = chunk.len().min(total - written);
            s.write_all(&chunk[..n]).unwrap();
            written += n;
        }
        let synced = s.synced.clone().unwrap();
        let len = s.finish_into(&file, &[0xAA; 64]).unwrap();
        assert_eq!(len, 64 + total as u64);
        // At least the first request (after one step) completed before finishing returned.
        assert!(synced.load(std::sync::atomic::Ordering::Relaxed) >= 1);
        let mut out = Vec::new();
        (&file).read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 64 + total);
        assert!(out[64..].iter().all(|&b| b == 0x5A));
    }
}
