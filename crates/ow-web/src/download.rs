//! Response bodies streamed from a blocking reader (a sealed file being opened), so a download
//! holds one chunk in memory and never blocks an async worker on file I/O or decryption.

use std::io::Read;

use axum::body::{Body, Bytes};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

/// Bytes read from the reader per body chunk.
pub const DOWNLOAD_CHUNK: usize = 64 * 1024;

/// Chunks queued between the reading thread and the connection.
const QUEUE: usize = 4;

/// What [`blocking_reader_body`] reads first, before a response is committed.
#[derive(Debug)]
pub struct FirstChunk {
    bytes: Vec<u8>,
    done: bool,
}

/// Reads the first chunk of `reader` on a blocking thread, then streams the rest from there.
///
/// The first read happens before this returns, so a reader that fails at once (a sealed file
/// that does not open) is an `Err` the caller turns into an error page instead of a cut
/// download. A later failure ends the body with an error: the client sees an incomplete
/// transfer, never wrong bytes, and `on_error` is called with it (for the server's log).
pub async fn blocking_reader_body<R>(
    mut reader: R,
    on_error: impl Fn(std::io::Error) + Send + 'static,
) -> Result<Body, std::io::Error>
where
    R: Read + Send + 'static,
{
    let (reader, first) = tokio::task::spawn_blocking(move || {
        let first = read_chunk(&mut reader)?;
        Ok::<_, std::io::Error>((reader, first))
    })
    .await
    .map_err(|e| std::io::Error::other(format!("the reading task failed: {e}")))??;
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(QUEUE);
    let done = first.done;
    // The first chunk fits: the queue is empty.
    let _ = tx.try_send(Ok(Bytes::from(first.bytes)));
    if !done {
        let mut reader = reader;
        tokio::task::spawn_blocking(move || {
            loop {
                match read_chunk(&mut reader) {
                    Ok(chunk) => {
                        let last = chunk.done;
                        if !chunk.bytes.is_empty()
                            && tx.blocking_send(Ok(Bytes::from(chunk.bytes))).is_err()
                        {
                            // The client went away.
                            return;
                        }
                        if last {
                            return;
                        }
                    }
                    Err(e) => {
                        let shown = std::io::Error::new(e.kind(), e.to_string());
                        on_error(e);
                        let _ = tx.blocking_send(Err(shown));
                        return;
                    }
                }
            }
        });
    }
    Ok(Body::from_stream(ReceiverStream::new(rx)))
}

/// Reads up to [`DOWNLOAD_CHUNK`] bytes; `done` when the reader ended.
fn read_chunk(reader: &mut impl Read) -> Result<FirstChunk, std::io::Error> {
    let mut bytes = vec![0u8; DOWNLOAD_CHUNK];
    let mut filled = 0;
    while filled < bytes.len() {
        match reader.read(&mut bytes[filled..]) {
            Ok(0) => {
                bytes.truncate(filled);
                return Ok(FirstChunk { bytes, done: true });
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(FirstChunk { bytes, done: false })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct FailAfter {
        left: usize,
    }

    impl Read for FailAfter {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.left == 0 {
                return Err(std::io::Error::other("chunk 3 failed authentication"));
            }
            let n = buf.len().min(self.left);
            buf[..n].fill(b'a');
            self.left -= n;
            Ok(n)
        }
    }

    #[tokio::test]
    async fn streams_everything_in_order() -> Result<(), Box<dyn std::error::Error>> {
        let data: Vec<u8> = (0..3 * DOWNLOAD_CHUNK + 5)
            .map(|i| (i % 251) as u8)
            .collect();
        let body = blocking_reader_body(std::io::Cursor::new(data.clone()), |_| {}).await?;
        let got = axum::body::to_bytes(body, usize::MAX).await?;
        assert_eq!(got.as_ref(), data.as_slice());
        let empty = blocking_reader_body(std::io::empty(), |_| {}).await?;
        assert!(axum::body::to_bytes(empty, usize::MAX).await?.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn a_failure_at_once_is_an_error_and_later_ends_the_body() {
        assert!(
            blocking_reader_body(FailAfter { left: 0 }, |_| {})
                .await
                .is_err()
        );
        let seen = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = seen.clone();
        let body = blocking_reader_body(
            FailAfter {
                left: 2 * DOWNLOAD_CHUNK,
            },
            move |_| flag.store(true, std::sync::atomic::Ordering::SeqCst),
        )
        .await
        .expect("the first chunk reads");
        assert!(axum::body::to_bytes(body, usize::MAX).await.is_err());
        assert!(seen.load(std::sync::atomic::Ordering::SeqCst));
    }
}
