//! Format version 2's payload encryption (`docs/bundle-format.md` §5.2): the compressed stream
//! cut into chunks of `chunk_size` bytes, each sealed with XChaCha20-Poly1305 under one random
//! 32-byte payload key, with the chunk's index and a final-chunk flag in the nonce; the payload
//! key is wrapped to the receiver's X25519 key as a small age file carried in the signed header.
//!
//! Chunks are independent, so a batch of them is sealed or opened on several threads at once
//! (age's STREAM is the same idea, but its reader and writer work one chunk at a time on one
//! thread). The AEAD is the RustCrypto `chacha20poly1305` crate; the key wrap is the `age` crate,
//! so no key agreement, KDF or stanza format is written here.

use std::io::{self, Read, Write};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::keys::{EncryptionPublic, EncryptionSecret};

/// Bytes of the Poly1305 tag that follows each chunk's ciphertext.
pub const TAG_LEN: usize = 16;

/// The chunk size the writer uses: 256 KiB of compressed bytes per chunk.
pub const DEFAULT_CHUNK_SIZE: u32 = 1 << 18;

/// Smallest and largest chunk sizes a reader accepts (powers of two only).
pub const MIN_CHUNK_SIZE: u32 = 1 << 12;
/// See [`MIN_CHUNK_SIZE`]. A reader holds a batch of chunks twice (stored and opened), so this
/// bounds its memory whatever a header says.
pub const MAX_CHUNK_SIZE: u32 = 1 << 22;

/// Largest wrapped key (an age file holding 32 bytes is about 200 bytes).
pub const MAX_WRAPPED_KEY_LEN: usize = 1024;

/// Bytes of plaintext sealed or opened per batch (split across the threads): 16 chunks of the
/// default size; at least two chunks of any size.
const BATCH_BYTES: usize = 4 << 20;

/// Chunks per batch for `chunk_size`.
fn batch_chunks(chunk_size: usize) -> usize {
    (BATCH_BYTES / chunk_size.max(1)).max(2)
}

/// Batches smaller than this are sealed or opened on the calling thread alone.
const PARALLEL_MIN: usize = 1 << 20;

/// The payload key: 32 random bytes per bundle, never reused.
#[derive(Clone)]
pub(crate) struct PayloadKey(Zeroizing<[u8; 32]>);

impl PayloadKey {
    /// A fresh random key.
    pub(crate) fn generate() -> io::Result<Self> {
        let mut k = Zeroizing::new([0u8; 32]);
        getrandom::fill(k.as_mut()).map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self(k))
    }

    /// A given key (test vectors).
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    fn aead(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.0.as_ref()))
    }

    /// The key wrapped to `to`: a binary age v1 file with one X25519 recipient stanza whose
    /// plaintext is the 32 key bytes.
    pub(crate) fn wrap(&self, to: &EncryptionPublic) -> Result<Vec<u8>, String> {
        let enc =
            age::Encryptor::with_recipients(std::iter::once(to.recipient() as &dyn age::Recipient))
                .map_err(|e| e.to_string())?;
        let mut out = Vec::with_capacity(256);
        let mut w = enc.wrap_output(&mut out).map_err(|e| e.to_string())?;
        w.write_all(self.0.as_ref()).map_err(|e| e.to_string())?;
        w.finish().map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Unwraps a key wrapped by [`PayloadKey::wrap`]; the age file must hold exactly 32 bytes.
    pub(crate) fn unwrap(wrapped: &[u8], secret: &EncryptionSecret) -> Result<Self, String> {
        let dec = age::Decryptor::new(wrapped).map_err(|e| format!("wrapped key: {e}"))?;
        let mut r = dec
            .decrypt(std::iter::once(secret.identity() as &dyn age::Identity))
            .map_err(|e| format!("wrapped key: {e}"))?;
        let mut k = Zeroizing::new([0u8; 33]);
        let n = crate::io_util::read_full(&mut r, k.as_mut())
            .map_err(|e| format!("wrapped key: {e}"))?;
        if n != 32 {
            return Err(format!(
                "wrapped key: the age file holds {n} bytes{}, not a 32-byte key",
                if n == 33 { " or more" } else { "" }
            ));
        }
        let mut key = Zeroizing::new([0u8; 32]);
        key.copy_from_slice(&k[..32]);
        Ok(Self(key))
    }
}

/// The 24-byte nonce of chunk `index`: 15 zero bytes, the index as u64 big-endian, then 0x01 for
/// the final chunk or 0x00 for any other.
pub fn chunk_nonce(index: u64, last: bool) -> [u8; 24] {
    let mut n = [0u8; 24];
    n[15..23].copy_from_slice(&index.to_be_bytes());
    n[23] = u8::from(last);
    n
}

/// The layout of a stored payload of `payload_len` bytes in chunks of `chunk_size`: the number of
/// chunks and the stored length of the last one, or why no writer could have produced it (every
/// chunk but the last is full; the last holds at least one byte unless it is the only chunk).
pub fn chunk_layout(payload_len: u64, chunk_size: u32) -> Result<(u64, u64), String> {
    let full = u64::from(chunk_size) + TAG_LEN as u64;
    if payload_len < TAG_LEN as u64 {
        return Err(format!(
            "a chunked payload holds at least one {TAG_LEN}-byte tag, but payload.size is {payload_len}"
        ));
    }
    let count = payload_len.div_ceil(full);
    let last = payload_len - (count - 1) * full;
    if last == TAG_LEN as u64 && count > 1 {
        return Err(format!(
            "payload.size {payload_len} ends in an empty chunk after {} full chunks of {chunk_size} bytes",
            count - 1
        ));
    }
    Ok((count, last))
}

/// Checks a chunk size read from a header.
pub(crate) fn check_chunk_size(chunk_size: u32) -> Result<(), String> {
    if !chunk_size.is_power_of_two() || !(MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE).contains(&chunk_size) {
        return Err(format!(
            "chunk_size {chunk_size} is not a power of two from {MIN_CHUNK_SIZE} to {MAX_CHUNK_SIZE}"
        ));
    }
    Ok(())
}

fn threads_for(bytes: usize) -> usize {
    if bytes < PARALLEL_MIN || !crate::pipeline::multi_core() {
        return 1;
    }
    std::thread::available_parallelism().map_or(1, |n| n.get().min(8))
}

/// Runs `f` over `parts` (one per chunk, in order), on several threads for a batch of `bytes` of
/// at least [`PARALLEL_MIN`] (contiguous runs of parts per thread); returns the first error in
/// chunk order.
fn in_parallel<T: Send, E: Send>(
    parts: Vec<T>,
    bytes: usize,
    f: impl Fn(T) -> Result<(), E> + Sync,
) -> Result<(), E> {
    let threads = threads_for(bytes).min(parts.len().max(1));
    if threads <= 1 {
        return parts.into_iter().try_for_each(f);
    }
    let per = parts.len().div_ceil(threads);
    let mut groups: Vec<Vec<T>> = Vec::with_capacity(threads);
    let mut it = parts.into_iter().peekable();
    while it.peek().is_some() {
        groups.push(it.by_ref().take(per).collect());
    }
    let f = &f;
    std::thread::scope(|s| {
        let mut groups = groups.into_iter();
        let mine = groups.next();
        let handles: Vec<_> = groups
            .map(|g| s.spawn(move || g.into_iter().try_for_each(f)))
            .collect();
        let first = mine.map_or(Ok(()), |g| g.into_iter().try_for_each(f));
        let mut result = first;
        for h in handles {
            let r = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
            if result.is_ok() {
                result = r;
            }
        }
        result
    })
}

/// Seals `plain` (whole chunks of `chunk_size`, the last possibly shorter) as chunks
/// `first, first + 1, …`, the last of them final when `ends` is set; appends to `out`.
pub(crate) fn seal_batch(
    key: &PayloadKey,
    first: u64,
    plain: &[u8],
    chunk_size: usize,
    ends: bool,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let n = plain.len().div_ceil(chunk_size).max(1);
    let start = out.len();
    out.resize(start + plain.len() + n * TAG_LEN, 0);
    let dest = &mut out[start..];
    let aead = key.aead();
    let parts: Vec<(u64, &[u8], &mut [u8])> = plain
        .chunks(chunk_size)
        .chain((plain.is_empty()).then_some(&[][..]))
        .zip(dest.chunks_mut(chunk_size + TAG_LEN))
        .enumerate()
        .map(|(i, (p, d))| (first + i as u64, p, d))
        .collect();
    let last_index = first + n as u64 - 1;
    in_parallel(parts, plain.len(), |(index, p, d)| {
        let (body, tag) = d.split_at_mut(p.len());
        body.copy_from_slice(p);
        let nonce = chunk_nonce(index, ends && index == last_index);
        let t = aead
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), b"", body)
            .map_err(|_| format!("sealing chunk {index} failed"))?;
        tag.copy_from_slice(&t);
        Ok(())
    })
}

/// Opens stored chunks `first, first + 1, …` in `sealed` (whole stored chunks, the last possibly
/// shorter), the last of them final when `ends` is set; appends the plaintext to `out`. Fails
/// with the index of the first chunk (in order) that does not authenticate.
pub(crate) fn open_batch(
    key: &PayloadKey,
    first: u64,
    sealed: &mut [u8],
    chunk_size: usize,
    ends: bool,
    out: &mut Vec<u8>,
) -> Result<(), u64> {
    let full = chunk_size + TAG_LEN;
    let n = sealed.len().div_ceil(full) as u64;
    let last_index = first + n - 1;
    let aead = key.aead();
    let parts: Vec<(u64, &mut [u8])> = sealed
        .chunks_mut(full)
        .enumerate()
        .map(|(i, c)| (first + i as u64, c))
        .collect();
    let bytes = sealed_len(&parts);
    in_parallel(parts, bytes, |(index, c)| {
        if c.len() < TAG_LEN {
            return Err(index);
        }
        let (body, tag) = c.split_at_mut(c.len() - TAG_LEN);
        let nonce = chunk_nonce(index, ends && index == last_index);
        aead.decrypt_in_place_detached(XNonce::from_slice(&nonce), b"", body, Tag::from_slice(tag))
            .map_err(|_| index)
    })?;
    for c in sealed.chunks(full) {
        out.extend_from_slice(&c[..c.len() - TAG_LEN]);
    }
    Ok(())
}

fn sealed_len(parts: &[(u64, &mut [u8])]) -> usize {
    parts.iter().map(|(_, c)| c.len()).sum()
}

/// A writer sealing everything written to it into `inner`, in chunks; [`Sealer::finish`] seals
/// the final chunk.
pub(crate) struct Sealer<W: Write> {
    inner: W,
    key: PayloadKey,
    chunk_size: usize,
    next: u64,
    buf: Vec<u8>,
    out: Vec<u8>,
}

impl<W: Write> Sealer<W> {
    pub(crate) fn new(inner: W, key: PayloadKey, chunk_size: u32) -> Self {
        let chunk_size = chunk_size as usize;
        Self {
            inner,
            key,
            chunk_size,
            next: 0,
            buf: Vec::new(),
            out: Vec::new(),
        }
    }

    fn batch_len(&self) -> usize {
        self.chunk_size * batch_chunks(self.chunk_size)
    }

    fn seal(&mut self, len: usize, ends: bool) -> io::Result<()> {
        self.out.clear();
        seal_batch(
            &self.key,
            self.next,
            &self.buf[..len],
            self.chunk_size,
            ends,
            &mut self.out,
        )
        .map_err(io::Error::other)?;
        self.next += len.div_ceil(self.chunk_size).max(1) as u64;
        self.buf.drain(..len);
        self.inner.write_all(&self.out)
    }

    /// Seals what is left as the final chunk(s) and returns the inner writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        let len = self.buf.len();
        self.seal(len, true)?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.write_all(data)?;
        Ok(data.len())
    }

    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let batch = self.batch_len();
        if self.buf.capacity() == 0 {
            self.buf.reserve(batch.min(data.len().max(4096)) + 1);
        }
        self.buf.extend_from_slice(data);
        // A batch is sealed only once more data follows it: its last chunk is not the final one.
        while self.buf.len() > batch {
            self.seal(batch, false)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Why an [`Opener`] stopped: carried inside an `io::Error` so the decoders above pass it on.
#[derive(Debug)]
pub(crate) struct ChunkRejected {
    pub(crate) index: u64,
    pub(crate) count: u64,
}

impl std::fmt::Display for ChunkRejected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "chunk {} of {} does not authenticate (a chunk altered, reordered, duplicated or \
             dropped, or the final-chunk flag wrong)",
            self.index, self.count
        )
    }
}

impl std::error::Error for ChunkRejected {}

/// Whether an I/O error is an [`Opener`]'s verdict on a chunk.
pub(crate) fn chunk_rejection(e: &io::Error) -> Option<&ChunkRejected> {
    e.get_ref().and_then(|i| i.downcast_ref::<ChunkRejected>())
}

/// A reader opening the chunks of a stored payload of known length read from `inner`.
pub(crate) struct Opener<R: Read> {
    inner: R,
    key: PayloadKey,
    chunk_size: usize,
    count: u64,
    remaining: u64,
    next: u64,
    sealed: Vec<u8>,
    plain: Vec<u8>,
    pos: usize,
}

impl<R: Read> Opener<R> {
    /// `payload_len` and `chunk_size` must have passed [`chunk_layout`].
    pub(crate) fn new(inner: R, key: PayloadKey, chunk_size: u32, payload_len: u64) -> Self {
        let count = chunk_layout(payload_len, chunk_size).map_or(0, |(c, _)| c);
        Self {
            inner,
            key,
            chunk_size: chunk_size as usize,
            count,
            remaining: payload_len,
            next: 0,
            sealed: Vec::new(),
            plain: Vec::new(),
            pos: 0,
        }
    }

    fn refill(&mut self) -> io::Result<()> {
        let full = self.chunk_size + TAG_LEN;
        let want = u64::try_from(full * batch_chunks(self.chunk_size))
            .unwrap_or(u64::MAX)
            .min(self.remaining);
        let want = usize::try_from(want).unwrap_or(usize::MAX);
        self.sealed.resize(want, 0);
        let n = crate::io_util::read_full(&mut self.inner, &mut self.sealed)?;
        if n < want {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "the payload ended {} bytes early",
                    self.remaining - n as u64
                ),
            ));
        }
        self.remaining -= want as u64;
        let ends = self.remaining == 0;
        self.plain.clear();
        self.pos = 0;
        let first = self.next;
        self.next += want.div_ceil(full) as u64;
        open_batch(
            &self.key,
            first,
            &mut self.sealed,
            self.chunk_size,
            ends,
            &mut self.plain,
        )
        .map_err(|index| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                ChunkRejected {
                    index,
                    count: self.count,
                },
            )
        })
    }
}

impl<R: Read> Read for Opener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos >= self.plain.len() {
            if self.remaining == 0 {
                return Ok(0);
            }
            self.refill()?;
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PayloadKey {
        PayloadKey::from_bytes([7u8; 32])
    }

    fn seal_all(plain: &[u8], chunk: u32) -> Vec<u8> {
        let mut s = Sealer::new(Vec::new(), key(), chunk);
        // Odd write sizes cross chunk and batch boundaries.
        for part in plain.chunks(1000) {
            s.write_all(part).unwrap();
        }
        s.finish().unwrap()
    }

    fn open_all(sealed: &[u8], chunk: u32) -> io::Result<Vec<u8>> {
        let mut o = Opener::new(sealed, key(), chunk, sealed.len() as u64);
        let mut out = Vec::new();
        o.read_to_end(&mut out)?;
        Ok(out)
    }

    #[test]
    fn round_trip_at_every_boundary() {
        let c = MIN_CHUNK_SIZE as usize;
        for len in [
            0,
            1,
            c - 1,
            c,
            c + 1,
            c * batch_chunks(c),
            c * batch_chunks(c) + 1,
            c * 40 + 3,
        ] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let sealed = seal_all(&plain, MIN_CHUNK_SIZE);
            let (count, _) = chunk_layout(sealed.len() as u64, MIN_CHUNK_SIZE).unwrap();
            assert_eq!(count, len.div_ceil(c).max(1) as u64, "len {len}");
            assert_eq!(
                open_all(&sealed, MIN_CHUNK_SIZE).unwrap(),
                plain,
                "len {len}"
            );
        }
    }

    #[test]
    fn layout_rejects_impossible_lengths() {
        let full = u64::from(MIN_CHUNK_SIZE) + 16;
        assert!(chunk_layout(15, MIN_CHUNK_SIZE).is_err());
        assert_eq!(chunk_layout(16, MIN_CHUNK_SIZE).unwrap(), (1, 16));
        assert_eq!(chunk_layout(full, MIN_CHUNK_SIZE).unwrap(), (1, full));
        assert!(chunk_layout(full + 16, MIN_CHUNK_SIZE).is_err());
        assert_eq!(chunk_layout(full + 17, MIN_CHUNK_SIZE).unwrap(), (2, 17));
        assert!(check_chunk_size(MIN_CHUNK_SIZE / 2).is_err());
        assert!(check_chunk_size(MAX_CHUNK_SIZE * 2).is_err());
        assert!(check_chunk_size(MIN_CHUNK_SIZE + 1).is_err());
        assert!(check_chunk_size(DEFAULT_CHUNK_SIZE).is_ok());
        assert!(check_chunk_size(MAX_CHUNK_SIZE).is_ok());
        assert_eq!(batch_chunks(DEFAULT_CHUNK_SIZE as usize), 16);
        assert_eq!(batch_chunks(MAX_CHUNK_SIZE as usize), 2);
    }

    #[test]
    fn key_wrap_round_trip_and_wrong_key() {
        let ours = EncryptionSecret::generate();
        let other = EncryptionSecret::generate();
        let k = key();
        let wrapped = k.wrap(&ours.public()).unwrap();
        let back = PayloadKey::unwrap(&wrapped, &ours).unwrap();
        assert_eq!(*back.0, *k.0);
        assert!(PayloadKey::unwrap(&wrapped, &other).is_err());
        assert!(PayloadKey::unwrap(b"not age", &ours).is_err());
    }
}
