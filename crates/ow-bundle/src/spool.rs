//! The writer's payload spool: the stored payload must be complete (its size and hash go into
//! the signed header) before the header can be written, so it is held in memory up to a limit
//! and in an anonymous temporary file beyond it (like `tempfile::SpooledTempFile`, but without
//! re-copying the memory part on growth or on roll-over, and letting the kernel copy the file
//! part to the output when both are files).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};

pub(crate) struct Spool {
    mem: Vec<u8>,
    limit: usize,
    file: Option<File>,
    file_len: u64,
}

impl Spool {
    /// A spool keeping up to `limit` bytes in memory; `expected` sizes the initial allocation.
    pub(crate) fn new(limit: usize, expected: u64) -> Self {
        let initial = usize::try_from(expected).unwrap_or(usize::MAX).min(limit);
        Self {
            mem: Vec::with_capacity(initial),
            limit,
            file: None,
            file_len: 0,
        }
    }

    pub(crate) fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let room = self.limit.saturating_sub(self.mem.len());
        let (in_mem, rest) = data.split_at(room.min(data.len()));
        self.mem.extend_from_slice(in_mem);
        if !rest.is_empty() {
            let file = match &mut self.file {
                Some(f) => f,
                None => self.file.insert(tempfile::tempfile()?),
            };
            file.write_all(rest)?;
            self.file_len += rest.len() as u64;
        }
        Ok(())
    }

    /// Bytes spooled.
    pub(crate) fn len(&self) -> u64 {
        self.mem.len() as u64 + self.file_len
    }

    /// Writes everything spooled to `out`; returns the number of bytes written.
    pub(crate) fn write_to<W: Write>(self, out: &mut W) -> io::Result<u64> {
        out.write_all(&self.mem)?;
        let mut total = self.mem.len() as u64;
        drop(self.mem);
        if let Some(mut file) = self.file {
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
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_then_file() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        for limit in [0, 1, 4096, 10_000, 1 << 20] {
            let mut s = Spool::new(limit, 100);
            for chunk in data.chunks(777) {
                s.write_all(chunk).unwrap();
            }
            assert_eq!(s.len(), data.len() as u64);
            let mut out = Vec::new();
            assert_eq!(s.write_to(&mut out).unwrap(), data.len() as u64);
            assert_eq!(out, data);
        }
    }
}
