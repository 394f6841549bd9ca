//! A bounded capture of an app's stdout and stderr.
//!
//! Invariants: writes never fail and never block, so a chatty app cannot trap or stall on
//! its own output; at most `cap` bytes are kept until the host takes them, the rest is
//! dropped and counted. The host drains it after each event (to the log, or into the
//! message of a trap, where a Rust panic message ends up).

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

#[derive(Debug, Default)]
struct Buffer {
    bytes: Vec<u8>,
    dropped: usize,
}

/// Shared, capped buffer behind the guest's stdout and stderr streams.
#[derive(Debug, Clone)]
pub(crate) struct CapturedOutput {
    buffer: Arc<Mutex<Buffer>>,
    cap: usize,
}

impl CapturedOutput {
    pub(crate) fn new(cap: usize) -> Self {
        CapturedOutput {
            buffer: Arc::new(Mutex::new(Buffer::default())),
            cap,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Buffer> {
        // A poisoned lock only means a writer panicked mid-append; the bytes are still usable.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn append(&self, data: &[u8]) {
        let mut buf = self.lock();
        let room = self.cap.saturating_sub(buf.bytes.len());
        let take = room.min(data.len());
        buf.bytes.extend_from_slice(&data[..take]);
        buf.dropped += data.len() - take;
    }

    /// Takes what was captured so far as text (lossy UTF-8), leaving the buffer empty.
    pub(crate) fn take(&self) -> Option<String> {
        let mut buf = self.lock();
        if buf.bytes.is_empty() && buf.dropped == 0 {
            return None;
        }
        let mut text = String::from_utf8_lossy(&buf.bytes).trim_end().to_owned();
        if buf.dropped > 0 {
            text.push_str(&format!(" [... {} bytes dropped]", buf.dropped));
        }
        buf.bytes.clear();
        buf.dropped = 0;
        Some(text)
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for CapturedOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_cap_bytes_and_counts_the_rest() {
        let out = CapturedOutput::new(4);
        out.append(b"abcdef");
        assert_eq!(out.take().as_deref(), Some("abcd [... 2 bytes dropped]"));
        assert_eq!(out.take(), None);
    }
}
