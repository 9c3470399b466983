//! Server-Sent Events read from a byte stream in linear time and bounded memory.
//!
//! `eventsource-stream`, used before, re-parsed its whole unconsumed buffer
//! with every chunk and copied the rest of it after every line: a long line
//! delivered in small pieces (a big snapshot on a connection-close answer)
//! cost time quadratic in its length, and a line without end grew without
//! limit. Here each byte is searched once (`memchr`), a consumed prefix is
//! dropped only when it is at least half the buffer, and a line or an event
//! over its cap is an error that ends the connection.
//!
//! What the spec says, kept: lines end with LF, CR or CRLF (a CRLF split
//! across chunks included); a leading BOM is skipped; `:` starts a comment;
//! one space after the colon is dropped; `data` lines join with LF; an empty
//! line dispatches; no data, no event. One deviation: an event's `id` is its
//! own (`None` when it has none), not the last one seen, so a consumer can
//! check each change's sequence number.

use std::fmt;

/// The longest line and the largest event accepted by default: a snapshot of
/// a namespace bigger than this cannot come as one event.
pub const MAX_LINE: usize = 64 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event` field, `message` when it had none.
    pub event: String,
    pub data: String,
    /// Its own `id` field, if it had one.
    pub id: Option<String>,
    /// Why it cannot be used as sent (a line not UTF-8): the caller skips it.
    pub malformed: Option<String>,
}

/// A stream that cannot be read on: the connection should end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseError {
    LineTooLong { max: usize },
    EventTooLarge { max: usize },
}

impl fmt::Display for SseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SseError::LineTooLong { max } => {
                write!(f, "a line longer than {} without an end", size(*max))
            }
            SseError::EventTooLarge { max } => write!(f, "an event larger than {}", size(*max)),
        }
    }
}

impl std::error::Error for SseError {}

fn size(bytes: usize) -> String {
    if bytes >= 1 << 20 {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{bytes} bytes")
    }
}

/// Splits bytes into lines and lines into events.
#[derive(Debug)]
pub struct SseDecoder {
    buf: Vec<u8>,
    /// Bytes of `buf` before this are consumed.
    start: usize,
    /// Bytes of `buf` before this were searched for a line end already.
    scanned: usize,
    /// The last line ended with a CR at the end of a chunk: an LF next is its.
    after_cr: bool,
    /// The stream's first bytes (a BOM there is skipped) are still to come.
    at_stream_start: bool,
    max_line: usize,
    max_event: usize,
    current: Pending,
    /// Lines completed so far (comments and blank ones too).
    lines: u64,
}

#[derive(Debug, Default)]
struct Pending {
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    malformed: Option<String>,
}

impl Default for SseDecoder {
    fn default() -> Self {
        SseDecoder::new(MAX_LINE, MAX_LINE)
    }
}

impl SseDecoder {
    /// A decoder refusing lines over `max_line` bytes and events whose data
    /// exceeds `max_event` bytes.
    pub fn new(max_line: usize, max_event: usize) -> SseDecoder {
        SseDecoder {
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            after_cr: false,
            at_stream_start: true,
            max_line,
            max_event,
            current: Pending::default(),
            lines: 0,
        }
    }

    /// Lines completed so far, keep-alive comments included: a stream whose
    /// bytes trickle in without ever ending a line is alive in no sense.
    pub fn lines(&self) -> u64 {
        self.lines
    }

    /// Bytes held for a line not ended yet.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Takes `chunk`, appending every event it completes to `out`.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<SseEvent>) -> Result<(), SseError> {
        self.buf.extend_from_slice(chunk);
        if self.at_stream_start {
            if self.buf.len() < 3 && b"\xEF\xBB\xBF".starts_with(&self.buf) {
                return Ok(());
            }
            self.at_stream_start = false;
            if self.buf.starts_with(b"\xEF\xBB\xBF") {
                self.start = 3;
                self.scanned = 3;
            }
        }
        loop {
            if self.after_cr && self.start < self.buf.len() {
                if self.buf[self.start] == b'\n' {
                    self.start += 1;
                }
                self.after_cr = false;
                self.scanned = self.scanned.max(self.start);
            }
            let Some(found) = memchr::memchr2(b'\n', b'\r', &self.buf[self.scanned..]) else {
                self.scanned = self.buf.len();
                if self.buffered() > self.max_line {
                    return Err(SseError::LineTooLong { max: self.max_line });
                }
                break;
            };
            let end = self.scanned + found;
            if end - self.start > self.max_line {
                return Err(SseError::LineTooLong { max: self.max_line });
            }
            let next = match self.buf[end] {
                b'\r' if end + 1 == self.buf.len() => {
                    self.after_cr = true;
                    end + 1
                }
                b'\r' if self.buf[end + 1] == b'\n' => end + 2,
                _ => end + 1,
            };
            let event = line(
                &mut self.current,
                &self.buf[self.start..end],
                self.max_event,
            )?;
            out.extend(event);
            self.lines += 1;
            self.start = next;
            self.scanned = next;
        }
        // Drop what was consumed once it is half the buffer: each byte moves
        // at most once more on average, so the whole stays linear.
        if self.start > 0 && self.start * 2 >= self.buf.len() {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
            if self.buf.capacity() > 2 * self.buf.len().max(64 << 10) {
                self.buf.shrink_to(self.buf.len().max(64 << 10));
            }
        }
        Ok(())
    }
}

/// One line into `pending`; the event it dispatches, if any.
fn line(pending: &mut Pending, raw: &[u8], max_event: usize) -> Result<Option<SseEvent>, SseError> {
    if raw.is_empty() {
        let done = std::mem::take(pending);
        if !done.has_data && done.malformed.is_none() {
            return Ok(None);
        }
        return Ok(Some(SseEvent {
            event: done.event.unwrap_or_else(|| "message".into()),
            data: done.data,
            id: done.id,
            malformed: done.malformed,
        }));
    }
    if raw[0] == b':' {
        return Ok(None);
    }
    let Ok(text) = std::str::from_utf8(raw) else {
        pending
            .malformed
            .get_or_insert_with(|| "a line that is not UTF-8".into());
        return Ok(None);
    };
    let (name, value) = match text.split_once(':') {
        Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
        None => (text, ""),
    };
    match name {
        "event" => pending.event = Some(value.to_string()),
        "data" => {
            let grown = pending.data.len() + value.len() + usize::from(pending.has_data);
            if grown > max_event {
                return Err(SseError::EventTooLarge { max: max_event });
            }
            if pending.has_data {
                pending.data.push('\n');
            }
            pending.data.push_str(value);
            pending.has_data = true;
        }
        "id" if !value.contains('\0') => pending.id = Some(value.to_string()),
        // `retry` and unknown fields: ignored, as the spec says.
        _ => {}
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> Result<Vec<SseEvent>, SseError> {
        let mut decoder = SseDecoder::default();
        let mut out = Vec::new();
        for chunk in chunks {
            decoder.push(chunk, &mut out)?;
        }
        Ok(out)
    }

    fn ev(event: &str, data: &str, id: Option<&str>) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.map(str::to_string),
            malformed: None,
        }
    }

    #[test]
    fn events_fields_comments_and_line_ends() {
        let text = b"\xEF\xBB\xBF: keep-alive\nevent: kv\nid: 7\ndata: {\"a\":1}\n\n\
                     data:x\r\ndata: y\r\r\nevent: other\ndata\n\n";
        let want = vec![
            ev("kv", "{\"a\":1}", Some("7")),
            ev("message", "x\ny", None),
            ev("other", "", None),
        ];
        assert_eq!(decode(&[text]).unwrap(), want);
        // The same, one byte at a time (a CRLF split across chunks included).
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        assert_eq!(decode(&bytes).unwrap(), want);
    }

    #[test]
    fn no_data_no_event_and_bad_utf8_is_marked_not_fatal() {
        assert_eq!(decode(&[b"event: kv\n\n"]).unwrap(), vec![]);
        let out = decode(&[b"event: kv\ndata: \xff\xfe\n\ndata: ok\n\n"]).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out[0].malformed.is_some());
        assert_eq!(out[1], ev("message", "ok", None));
    }

    #[test]
    fn lines_and_events_over_their_caps_end_the_stream() {
        let mut d = SseDecoder::new(16, 32);
        let mut out = Vec::new();
        d.push(b"data: 0123456789", &mut out).unwrap();
        assert_eq!(
            d.push(b"abcdef", &mut out),
            Err(SseError::LineTooLong { max: 16 })
        );
        let mut d = SseDecoder::new(16, 20);
        let err = d.push(b"data: 0123456789\ndata: 0123456789\n", &mut out);
        assert_eq!(err, Err(SseError::EventTooLarge { max: 20 }));
        assert_eq!(
            SseError::LineTooLong { max: MAX_LINE }.to_string(),
            "a line longer than 64 MiB without an end"
        );
    }

    #[test]
    fn memory_is_the_unfinished_line_only() {
        let mut d = SseDecoder::default();
        let mut out = Vec::new();
        for _ in 0..1000 {
            d.push(b"data: 0123456789\n\n", &mut out).unwrap();
        }
        assert_eq!(out.len(), 1000);
        assert!(d.buffered() < 64, "{}", d.buffered());
    }
}
