//! Splits a TCP byte stream into SIP messages by Content-Length (RFC 3261 §18.3).
//!
//! Invariants: CRLF keep-alives between messages (RFC 5626 §4.4.1) are skipped; the buffer never
//! holds more than `max` bytes of one unfinished message, so a peer cannot grow memory without
//! bound; after an error the stream cannot be resynchronised and the shell must close it.

use thiserror::Error;

use crate::message::MAX_MESSAGE_SIZE;

/// Why a stream cannot be framed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FramingError {
    /// A message (headers plus declared body) is larger than the limit.
    #[error("SIP message exceeds {0} bytes")]
    TooLarge(usize),
    /// Content-Length is missing a number or has several different values.
    #[error("malformed Content-Length in a stream")]
    ContentLength,
}

/// Incremental decoder for one TCP connection.
#[derive(Debug)]
pub struct StreamDecoder {
    buf: Vec<u8>,
    max: usize,
    /// Where the search for the end of the header section resumes.
    scanned: usize,
}

impl Default for StreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamDecoder {
    /// A decoder with the 64 KiB message limit.
    pub fn new() -> StreamDecoder {
        StreamDecoder::with_max(MAX_MESSAGE_SIZE)
    }

    /// A decoder with a custom message size limit.
    pub fn with_max(max: usize) -> StreamDecoder {
        StreamDecoder {
            buf: Vec::new(),
            max,
            scanned: 0,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that do not yet form a message.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `None` until one has fully arrived.
    pub fn next_message(&mut self) -> Result<Option<Vec<u8>>, FramingError> {
        let skip = self
            .buf
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .unwrap_or(self.buf.len());
        if skip > 0 {
            self.buf.drain(..skip);
            self.scanned = 0;
        }
        if self.buf.is_empty() {
            return Ok(None);
        }
        let from = self.scanned.saturating_sub(3);
        let Some(pos) = self.buf[from..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map(|p| p + from)
        else {
            self.scanned = self.buf.len();
            if self.buf.len() > self.max {
                return Err(FramingError::TooLarge(self.max));
            }
            return Ok(None);
        };
        let body_len = content_length(&self.buf[..pos])?;
        let total = pos + 4 + body_len;
        if total > self.max {
            return Err(FramingError::TooLarge(self.max));
        }
        if self.buf.len() < total {
            self.scanned = pos;
            return Ok(None);
        }
        let rest = self.buf.split_off(total);
        let msg = std::mem::replace(&mut self.buf, rest);
        self.scanned = 0;
        Ok(Some(msg))
    }
}

/// The Content-Length of a header section; absent means 0 on a stream.
fn content_length(head: &[u8]) -> Result<usize, FramingError> {
    let mut found: Option<usize> = None;
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let name = line[..colon].trim_ascii_end();
        if !(name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"l")) {
            continue;
        }
        let value = line[colon + 1..].trim_ascii();
        if value.is_empty() || value.len() > 9 || !value.iter().all(u8::is_ascii_digit) {
            return Err(FramingError::ContentLength);
        }
        let n = value
            .iter()
            .fold(0usize, |acc, d| acc * 10 + usize::from(d - b'0'));
        if found.is_some_and(|f| f != n) {
            return Err(FramingError::ContentLength);
        }
        found = Some(n);
    }
    Ok(found.unwrap_or(0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    const A: &[u8] = b"OPTIONS sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc";
    const B: &[u8] = b"BYE sip:a@b SIP/2.0\r\ncontent-LENGTH : 0\r\n\r\n";

    #[test]
    fn splits_messages_and_skips_keepalives() {
        let mut d = StreamDecoder::new();
        let mut stream = b"\r\n\r\n".to_vec();
        stream.extend_from_slice(A);
        stream.extend_from_slice(b"\r\n");
        stream.extend_from_slice(B);
        let mut out = Vec::new();
        for chunk in stream.chunks(7) {
            d.push(chunk);
            while let Some(m) = d.next_message().unwrap() {
                out.push(m);
            }
        }
        assert_eq!(out, vec![A.to_vec(), B.to_vec()]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn limits_size() {
        let mut d = StreamDecoder::with_max(100);
        d.push(&[b'x'; 101]);
        assert_eq!(d.next_message(), Err(FramingError::TooLarge(100)));
        let mut d = StreamDecoder::with_max(100);
        d.push(b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 1000\r\n\r\n");
        assert_eq!(d.next_message(), Err(FramingError::TooLarge(100)));
    }

    #[test]
    fn rejects_bad_content_length() {
        let mut d = StreamDecoder::new();
        d.push(b"OPTIONS sip:a@b SIP/2.0\r\nl: -1\r\n\r\n");
        assert_eq!(d.next_message(), Err(FramingError::ContentLength));
        let mut d = StreamDecoder::new();
        d.push(b"OPTIONS sip:a@b SIP/2.0\r\nl: 1\r\nl: 2\r\n\r\nab");
        assert_eq!(d.next_message(), Err(FramingError::ContentLength));
    }
}
