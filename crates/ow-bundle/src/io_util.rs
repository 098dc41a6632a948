//! Small I/O helpers: a reader tap that records whether an error came from its layer, and read
//! helpers that retry on `Interrupted`.

use std::cell::Cell;
use std::io::{self, Read};

/// Size of the buffers used to move data (items, payload chunks, copies).
pub(crate) const IO_BUF: usize = 256 << 10;

/// A reader layer that records, in a shared flag, whether an error originated in (or below) it,
/// so that an error surfacing from an outer decoder can be attributed to the right layer.
pub(crate) struct Tap<'s, R> {
    inner: R,
    failed: &'s Cell<bool>,
}

impl<'s, R: Read> Tap<'s, R> {
    pub(crate) fn new(inner: R, failed: &'s Cell<bool>) -> Self {
        Self { inner, failed }
    }
}

impl<R: Read> Read for Tap<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() != io::ErrorKind::Interrupted {
                self.failed.set(true);
            }
        })
    }
}

/// Reads into `buf` until it is full or the reader reports end of input; returns the number of
/// bytes read. Retries on `Interrupted`.
pub(crate) fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// One `read` call that retries on `Interrupted`.
pub(crate) fn read_some<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match r.read(buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _buf: &mut [u8]) -> io::Result<usize> {
            Err(io::Error::other("disk on fire"))
        }
    }

    #[test]
    fn tap_records_failures_of_its_layer() {
        let failed = Cell::new(false);
        let mut ok = Tap::new(&b"abc"[..], &failed);
        let mut buf = [0u8; 8];
        assert_eq!(read_full(&mut ok, &mut buf).unwrap(), 3);
        assert!(!failed.get());
        let mut bad = Tap::new(Failing, &failed);
        assert!(bad.read(&mut buf).is_err());
        assert!(failed.get());
    }
}
