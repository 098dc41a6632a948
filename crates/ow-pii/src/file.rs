//! Sealed files: uploaded materials (ID cards, contracts) encrypted at rest as a stream.
//!
//! The construction is STREAM (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
//! Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance") over XChaCha20-Poly1305, as
//! RustCrypto's `aead::stream::StreamBE32` implements it: the 24-byte nonce of chunk `i` is a
//! random 19-byte prefix, `i` as 4 bytes big-endian, and one byte that is 1 for the last chunk and
//! 0 otherwise. Dropping, repeating or reordering chunks, cutting the file (even at a chunk
//! boundary) or appending to it makes a chunk fail authentication. The associated data of every
//! chunk holds the whole header (key id, chunk size, nonce prefix) and the caller's context (the
//! zone and the record the file belongs to), so a file moved to another record does not open.
//!
//! Memory is bounded by one chunk (64 KiB by default) on both sides. The byte layout is specified
//! in `docs/personal-data.md` ("Sealed files").

use std::fs::{self, File};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use chacha20poly1305::XChaCha20Poly1305;
use chacha20poly1305::aead::stream::{NewStream, StreamBE32, StreamPrimitive};
use zeroize::{Zeroize, Zeroizing};

use crate::sealed::{KEY_ID_LEN, TAG_LEN};
use crate::{PiiError, PiiKeyId, PiiKeyring};

/// The first 8 bytes of every sealed file.
pub const FILE_MAGIC: &[u8; 8] = b"OWSEALED";
/// The version byte that follows the magic.
pub const FILE_VERSION: u8 = 1;
/// Length of the random nonce prefix (24-byte XChaCha20 nonce minus 4 counter bytes and 1 flag).
pub const FILE_NONCE_PREFIX_LEN: usize = 19;
/// Length of the header: magic, version, key id, chunk size, nonce prefix.
pub const FILE_HEADER_LEN: usize = FILE_MAGIC.len() + 1 + KEY_ID_LEN + 4 + FILE_NONCE_PREFIX_LEN;
/// Plaintext bytes per chunk written by this version.
pub const FILE_CHUNK_SIZE: u32 = 64 * 1024;
/// Smallest chunk size a reader accepts.
pub const MIN_FILE_CHUNK_SIZE: u32 = 512;
/// Largest chunk size a reader accepts (bounds the memory one open file takes).
pub const MAX_FILE_CHUNK_SIZE: u32 = 1024 * 1024;

/// Domain-separation prefix of every chunk's associated data.
const FILE_AD_DOMAIN: &[u8] = b"OneWindow ow-pii file v1\0";

/// The cipher of one key for files: a subkey of its own, so field sealing and file sealing never
/// share a cipher key.
pub(crate) const FILE_SUBKEY_CONTEXT: &str = "OneWindow ow-pii file STREAM XChaCha20-Poly1305 v1";

type Stream = StreamBE32<XChaCha20Poly1305>;

/// The header of a sealed file, readable without keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealedFileHeader {
    key_id: PiiKeyId,
    chunk_size: u32,
    nonce_prefix: [u8; FILE_NONCE_PREFIX_LEN],
}

impl SealedFileHeader {
    /// The id of the key that sealed the file.
    pub fn key_id(&self) -> PiiKeyId {
        self.key_id
    }

    /// Plaintext bytes per chunk.
    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// The header's bytes.
    pub fn to_bytes(&self) -> [u8; FILE_HEADER_LEN] {
        let mut out = [0u8; FILE_HEADER_LEN];
        let (magic, rest) = out.split_at_mut(FILE_MAGIC.len());
        magic.copy_from_slice(FILE_MAGIC);
        rest[0] = FILE_VERSION;
        rest[1..1 + KEY_ID_LEN].copy_from_slice(self.key_id.as_bytes());
        rest[1 + KEY_ID_LEN..5 + KEY_ID_LEN].copy_from_slice(&self.chunk_size.to_be_bytes());
        rest[5 + KEY_ID_LEN..].copy_from_slice(&self.nonce_prefix);
        out
    }

    /// Parses a header. Checks the form only (magic, version, chunk size within the limits).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, PiiError> {
        if bytes.len() < FILE_HEADER_LEN {
            return Err(PiiError::malformed(format!(
                "a sealed file starts with a {FILE_HEADER_LEN}-byte header; only {} bytes",
                bytes.len()
            )));
        }
        if !bytes.starts_with(FILE_MAGIC) {
            return Err(PiiError::malformed(
                "not a sealed file (it does not start with OWSEALED)",
            ));
        }
        let rest = &bytes[FILE_MAGIC.len()..FILE_HEADER_LEN];
        if rest[0] != FILE_VERSION {
            return Err(PiiError::malformed(format!(
                "unknown sealed-file version {} (this build reads version {FILE_VERSION})",
                rest[0]
            )));
        }
        let mut key_id = [0u8; KEY_ID_LEN];
        key_id.copy_from_slice(&rest[1..1 + KEY_ID_LEN]);
        let mut size = [0u8; 4];
        size.copy_from_slice(&rest[1 + KEY_ID_LEN..5 + KEY_ID_LEN]);
        let chunk_size = u32::from_be_bytes(size);
        if !(MIN_FILE_CHUNK_SIZE..=MAX_FILE_CHUNK_SIZE).contains(&chunk_size) {
            return Err(PiiError::malformed(format!(
                "chunk size {chunk_size} is outside {MIN_FILE_CHUNK_SIZE}..={MAX_FILE_CHUNK_SIZE}"
            )));
        }
        let mut nonce_prefix = [0u8; FILE_NONCE_PREFIX_LEN];
        nonce_prefix.copy_from_slice(&rest[5 + KEY_ID_LEN..]);
        Ok(Self {
            key_id: PiiKeyId(key_id),
            chunk_size,
            nonce_prefix,
        })
    }

    /// The plaintext length of a sealed file of `file_len` bytes with this header, from the
    /// layout alone (authenticity is checked when reading). A length no writer produces (no
    /// chunk, or a last chunk shorter than its tag) is [`PiiError::Malformed`].
    pub fn plaintext_len(&self, file_len: u64) -> Result<u64, PiiError> {
        let body = file_len
            .checked_sub(FILE_HEADER_LEN as u64)
            .ok_or_else(|| PiiError::malformed("shorter than the sealed-file header"))?;
        let stored_chunk = u64::from(self.chunk_size) + TAG_LEN as u64;
        if body == 0 {
            return Err(PiiError::malformed(
                "the sealed file has no chunk (it was cut after its header)",
            ));
        }
        let chunks = body.div_ceil(stored_chunk);
        let last = body - (chunks - 1) * stored_chunk;
        if last < TAG_LEN as u64 {
            return Err(PiiError::malformed(
                "the sealed file's last chunk is shorter than its tag (the file was cut)",
            ));
        }
        Ok(body - chunks * TAG_LEN as u64)
    }
}

/// Whether `prefix` (the first bytes of a file) starts like a sealed file. A PDF, JPEG or PNG
/// never does, so this tells files sealed by this version from clear files of earlier ones.
pub fn is_sealed_file(prefix: &[u8]) -> bool {
    prefix.starts_with(FILE_MAGIC)
}

/// What [`PiiKeyring::ensure_sealed_file`] did to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileSealing {
    /// Already sealed with the active key: left alone.
    Current,
    /// Sealed with an older key: sealed again with the active one.
    Resealed,
    /// Stored in clear (by an earlier version): sealed.
    SealedFromClear,
}

/// The associated data of every chunk of a file: domain, header bytes, then the context preceded
/// by its length.
fn file_associated_data(header: &SealedFileHeader, context: &[u8]) -> Vec<u8> {
    let mut ad = Vec::with_capacity(FILE_AD_DOMAIN.len() + FILE_HEADER_LEN + 8 + context.len());
    ad.extend_from_slice(FILE_AD_DOMAIN);
    ad.extend_from_slice(&header.to_bytes());
    ad.extend_from_slice(&(context.len() as u64).to_be_bytes());
    ad.extend_from_slice(context);
    ad
}

/// The I/O error a reader or writer returns for a personal-data failure; the [`PiiError`] is
/// inside (see [`PiiError::in_io`]).
fn io_error(err: PiiError) -> io::Error {
    io::Error::new(ErrorKind::InvalidData, err)
}

/// Writes a sealed file to `inner`: the header at once, then one chunk each time a full chunk of
/// plaintext is followed by more. [`SealWriter::finish`] seals the last chunk; a writer dropped
/// without it leaves a file that never opens (it has no last chunk).
pub struct SealWriter<W: Write> {
    inner: W,
    stream: Stream,
    aad: Vec<u8>,
    chunk_size: usize,
    position: u32,
    /// Plaintext of the chunk being filled (then its ciphertext while it is written).
    buffer: Zeroizing<Vec<u8>>,
    plaintext_len: u64,
}

impl<W: Write> std::fmt::Debug for SealWriter<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealWriter")
            .field("chunk", &self.position)
            .field("plaintext_len", &self.plaintext_len)
            .finish_non_exhaustive()
    }
}

impl<W: Write> SealWriter<W> {
    fn seal_chunk(&mut self, last: bool) -> io::Result<()> {
        if !last && self.position == u32::MAX {
            return Err(io_error(PiiError::malformed(
                "the file is too large for one sealed stream (2^32 chunks)",
            )));
        }
        self.stream
            .encrypt_in_place(self.position, last, &self.aad, &mut *self.buffer)
            .map_err(|_| io_error(PiiError::malformed("a chunk could not be sealed")))?;
        self.inner.write_all(&self.buffer)?;
        self.buffer.clear();
        self.position = self.position.wrapping_add(1);
        Ok(())
    }

    /// Seals the last chunk and flushes; returns the inner writer and the plaintext length.
    pub fn finish(mut self) -> io::Result<(W, u64)> {
        self.seal_chunk(true)?;
        self.inner.flush()?;
        let len = self.plaintext_len;
        Ok((self.inner, len))
    }
}

impl<W: Write> Write for SealWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if data.is_empty() {
            return Ok(0);
        }
        // A full chunk is sealed only once more plaintext follows it: the last chunk may be full.
        if self.buffer.len() == self.chunk_size {
            self.seal_chunk(false)?;
        }
        let take = (self.chunk_size - self.buffer.len()).min(data.len());
        self.buffer.extend_from_slice(&data[..take]);
        self.plaintext_len += take as u64;
        Ok(take)
    }

    /// Flushes the inner writer. A chunk is written only when it is complete, so the bytes of an
    /// unfinished chunk stay in memory until [`SealWriter::finish`].
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the plaintext of a sealed file from `inner`, one authenticated chunk at a time.
///
/// A chunk that fails authentication (altered, cut, reordered, dropped, from another file or
/// another key) makes `read` return an error of kind `InvalidData` holding
/// [`PiiError::FileAuthentication`]; no byte of that chunk is returned.
pub struct OpenReader<R: Read> {
    inner: R,
    stream: Stream,
    aad: Vec<u8>,
    header: SealedFileHeader,
    position: u32,
    /// The plaintext of the current chunk (ciphertext while it is being read).
    buffer: Zeroizing<Vec<u8>>,
    offset: usize,
    /// A byte read past the current chunk to learn whether it was the last.
    lookahead: Option<u8>,
    done: bool,
    failed: bool,
}

impl<R: Read> std::fmt::Debug for OpenReader<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenReader")
            .field("key_id", &self.header.key_id)
            .field("chunk", &self.position)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl<R: Read> OpenReader<R> {
    /// The file's header.
    pub fn header(&self) -> &SealedFileHeader {
        &self.header
    }

    /// Reads and opens the next chunk into the buffer.
    fn next_chunk(&mut self) -> io::Result<()> {
        let stored = self.header.chunk_size as usize + TAG_LEN;
        self.buffer.clear();
        self.buffer.resize(stored, 0);
        let mut filled = 0;
        if let Some(byte) = self.lookahead.take() {
            self.buffer[0] = byte;
            filled = 1;
        }
        filled += read_full(&mut self.inner, &mut self.buffer[filled..])?;
        let last = if filled < stored {
            true
        } else {
            let mut one = [0u8; 1];
            match read_full(&mut self.inner, &mut one)? {
                0 => true,
                _ => {
                    self.lookahead = Some(one[0]);
                    false
                }
            }
        };
        self.buffer.truncate(filled);
        let failed = PiiError::FileAuthentication {
            chunk: u64::from(self.position),
        };
        if filled < TAG_LEN || (!last && self.position == u32::MAX) {
            self.failed = true;
            return Err(io_error(failed));
        }
        if self
            .stream
            .decrypt_in_place(self.position, last, &self.aad, &mut *self.buffer)
            .is_err()
        {
            self.buffer.zeroize();
            self.buffer.clear();
            self.failed = true;
            return Err(io_error(failed));
        }
        self.offset = 0;
        if last {
            self.done = true;
        } else {
            self.position += 1;
        }
        Ok(())
    }
}

impl<R: Read> Read for OpenReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if self.failed {
                return Err(io_error(PiiError::FileAuthentication {
                    chunk: u64::from(self.position),
                }));
            }
            if self.offset < self.buffer.len() {
                let n = (self.buffer.len() - self.offset).min(out.len());
                out[..n].copy_from_slice(&self.buffer[self.offset..self.offset + n]);
                self.offset += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
    }
}

/// Reads until `buf` is full or the reader ends; returns how many bytes were read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

impl PiiKeyring {
    fn file_stream(&self, header: &SealedFileHeader) -> Result<Stream, PiiError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == header.key_id)
            .ok_or(PiiError::UnknownKey {
                key_id: header.key_id,
            })?;
        Ok(Stream::from_aead(
            key.file_cipher.clone(),
            header.nonce_prefix.as_slice().into(),
        ))
    }

    /// Starts sealing a file into `inner` with the active key and a fresh random nonce prefix,
    /// bound to `context`: a stable identity of the record the file belongs to, naming the zone,
    /// e.g. `b"internet/material/0190f3c2-…"`. Writes the header at once.
    ///
    /// # Panics
    ///
    /// Only if the operating system's random generator fails (see [`PiiKeyring::seal`]).
    pub fn seal_writer<W: Write>(&self, context: &[u8], mut inner: W) -> io::Result<SealWriter<W>> {
        let mut nonce_prefix = [0u8; FILE_NONCE_PREFIX_LEN];
        getrandom::fill(&mut nonce_prefix).expect(
            "the operating system's random generator failed; refusing to seal without a fresh nonce",
        );
        let header = SealedFileHeader {
            key_id: self.active_key_id(),
            chunk_size: FILE_CHUNK_SIZE,
            nonce_prefix,
        };
        let stream = self.file_stream(&header).map_err(io_error)?;
        inner.write_all(&header.to_bytes())?;
        Ok(SealWriter {
            inner,
            stream,
            aad: file_associated_data(&header, context),
            chunk_size: FILE_CHUNK_SIZE as usize,
            position: 0,
            buffer: Zeroizing::new(Vec::with_capacity(FILE_CHUNK_SIZE as usize + TAG_LEN)),
            plaintext_len: 0,
        })
    }

    /// Starts opening the sealed file read from `inner`, which was sealed for `context`. Reads
    /// the header; chunks are authenticated as they are read.
    ///
    /// Errors: [`PiiError::Malformed`] (not a sealed file, unknown version, chunk size outside
    /// the limits), [`PiiError::UnknownKey`], [`PiiError::Io`].
    pub fn open_reader<R: Read>(
        &self,
        context: &[u8],
        mut inner: R,
    ) -> Result<OpenReader<R>, PiiError> {
        let mut bytes = [0u8; FILE_HEADER_LEN];
        let got = read_full(&mut inner, &mut bytes).map_err(|cause| PiiError::Io {
            what: "reading a sealed file's header".into(),
            cause,
        })?;
        let header = SealedFileHeader::from_bytes(&bytes[..got])?;
        let stream = self.file_stream(&header)?;
        Ok(OpenReader {
            inner,
            stream,
            aad: file_associated_data(&header, context),
            header,
            position: 0,
            buffer: Zeroizing::new(Vec::new()),
            offset: 0,
            lookahead: None,
            done: false,
            failed: false,
        })
    }

    /// Opens the sealed file at `path` for `context`: a reader of its plaintext and the
    /// plaintext length (from the file's size; a reader that yields fewer or more bytes fails).
    pub fn open_file(
        &self,
        context: &[u8],
        path: &Path,
    ) -> Result<(OpenReader<File>, u64), PiiError> {
        let file = File::open(path).map_err(|cause| PiiError::io(path, cause))?;
        let len = file
            .metadata()
            .map_err(|cause| PiiError::io(path, cause))?
            .len();
        let reader = self.open_reader(context, file)?;
        let plaintext = reader.header().plaintext_len(len)?;
        Ok((reader, plaintext))
    }

    /// Seals everything `source` yields into a new file at `path`, durably: it is written under
    /// a temporary name in the same folder (created 0600, never following or replacing another
    /// file), its data synced, then renamed to `path`. The caller syncs the folder once for a
    /// batch of files. Returns the plaintext length.
    pub fn seal_to_path(
        &self,
        context: &[u8],
        source: &mut impl Read,
        path: &Path,
    ) -> Result<u64, PiiError> {
        let tmp = temporary_beside(path);
        let result = (|| {
            let file = create_private(&tmp)?;
            let mut writer = self.seal_writer(context, file)?;
            io::copy(source, &mut writer)?;
            let (file, len) = writer.finish()?;
            file.sync_data()?;
            fs::rename(&tmp, path)?;
            Ok::<u64, io::Error>(len)
        })();
        result.map_err(|cause| {
            let _ = fs::remove_file(&tmp);
            PiiError::from_io(path, cause)
        })
    }

    /// Brings the file at `path` to the active key: a file sealed with an older key is opened
    /// and sealed again, and a file stored in clear by an earlier version is sealed. Each
    /// replacement is atomic and durable (temporary 0600 file, data synced, renamed, folder
    /// synced); a crash leaves the old file or the new one. A sealed file that does not open
    /// for `context` is left alone and reported.
    pub fn ensure_sealed_file(&self, context: &[u8], path: &Path) -> Result<FileSealing, PiiError> {
        let mut file = File::open(path).map_err(|cause| PiiError::io(path, cause))?;
        let mut prefix = [0u8; FILE_MAGIC.len()];
        let got = read_full(&mut file, &mut prefix).map_err(|cause| PiiError::io(path, cause))?;
        let outcome = if is_sealed_file(&prefix[..got]) {
            drop(file);
            let (mut reader, _) = self.open_file(context, path)?;
            if reader.header().key_id == self.active_key_id() {
                return Ok(FileSealing::Current);
            }
            self.seal_to_path(context, &mut reader, path)?;
            FileSealing::Resealed
        } else {
            let mut clear = (&prefix[..got]).chain(file);
            self.seal_to_path(context, &mut clear, path)?;
            FileSealing::SealedFromClear
        };
        if let Some(dir) = path.parent() {
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|cause| PiiError::io(dir, cause))?;
        }
        Ok(outcome)
    }
}

/// A temporary name beside `path`, hidden and unique.
fn temporary_beside(path: &Path) -> PathBuf {
    let mut nonce = [0u8; 8];
    // A failed random source only makes the name less unique; `create_new` still refuses to
    // reuse an existing file.
    let _ = getrandom::fill(&mut nonce);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    path.with_file_name(format!(".{name}.{}.sealing", hex::encode(nonce)))
}

/// Creates a new file readable and writable by its owner only (0600); never opens an existing
/// file or follows a symbolic link at that name.
pub fn create_private(path: &Path) -> io::Result<File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_rejects_bad_forms() {
        let header = SealedFileHeader {
            key_id: PiiKeyId([1, 2, 3, 4]),
            chunk_size: FILE_CHUNK_SIZE,
            nonce_prefix: [7; FILE_NONCE_PREFIX_LEN],
        };
        let bytes = header.to_bytes();
        assert_eq!(bytes.len(), FILE_HEADER_LEN);
        assert_eq!(FILE_HEADER_LEN, 36);
        assert_eq!(SealedFileHeader::from_bytes(&bytes).ok(), Some(header));
        assert!(SealedFileHeader::from_bytes(&bytes[..35]).is_err());
        let mut v2 = bytes;
        v2[8] = 2;
        assert!(SealedFileHeader::from_bytes(&v2).is_err());
        let mut huge = bytes;
        huge[13..17].copy_from_slice(&(MAX_FILE_CHUNK_SIZE + 1).to_be_bytes());
        assert!(SealedFileHeader::from_bytes(&huge).is_err());
        assert!(SealedFileHeader::from_bytes(b"%PDF-1.7 and more than thirty-six bytes").is_err());
    }

    #[test]
    fn plaintext_len_follows_the_layout() {
        let header = SealedFileHeader {
            key_id: PiiKeyId([0; 4]),
            chunk_size: 1000,
            nonce_prefix: [0; FILE_NONCE_PREFIX_LEN],
        };
        let h = FILE_HEADER_LEN as u64;
        let len = |n| header.plaintext_len(h + n).ok();
        assert_eq!(len(16), Some(0), "an empty file is one empty last chunk");
        assert_eq!(len(16 + 10), Some(10));
        assert_eq!(len(1016), Some(1000), "one full last chunk");
        assert_eq!(len(1016 + 16 + 1), Some(1001));
        assert_eq!(len(2 * 1016), Some(2000));
        assert_eq!(len(0), None, "no chunk at all");
        assert_eq!(len(1016 + 5), None, "a last chunk shorter than its tag");
        assert_eq!(header.plaintext_len(10).ok(), None);
    }

    #[test]
    fn associated_data_binds_header_and_context() {
        let a = SealedFileHeader {
            key_id: PiiKeyId([0; 4]),
            chunk_size: 1000,
            nonce_prefix: [0; FILE_NONCE_PREFIX_LEN],
        };
        let b = SealedFileHeader {
            chunk_size: 1024,
            ..a
        };
        assert_ne!(
            file_associated_data(&a, b"x"),
            file_associated_data(&b, b"x")
        );
        assert_ne!(
            file_associated_data(&a, b"x"),
            file_associated_data(&a, b"y")
        );
    }
}
