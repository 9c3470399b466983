//! Worker output: a bounded ring of recent lines per instance, optionally copied to a
//! log file. The pipes are always drained, so a chatty worker never blocks on us.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use serde::Serialize;
use tokio::fs::OpenOptions;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};

/// Lines kept per instance unless configured otherwise.
pub const DEFAULT_OUTPUT_LINES: usize = 5_000;
/// Longer lines are cut here (bytes), so one runaway line cannot eat memory.
pub const DEFAULT_MAX_LINE_BYTES: usize = 4_096;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputStream {
    Stdout,
    Stderr,
    /// Written by the supervisor (a note such as where an attached worker's output goes).
    Supervisor,
    /// The `── run 2 · pid … ──` line the supervisor puts between runs: a
    /// kind of its own, so nothing has to recognise it by its text.
    Separator,
}

/// One captured line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutputLine {
    /// Position in everything this instance ever printed; grows by one per line.
    pub seq: u64,
    pub run: u32,
    pub stream: OutputStream,
    pub text: String,
}

/// The recent output of one instance. Cheap to clone; all clones share the lines.
#[derive(Debug, Clone)]
pub struct OutputBuffer {
    inner: Arc<Mutex<Ring>>,
}

#[derive(Debug)]
struct Ring {
    lines: VecDeque<OutputLine>,
    capacity: usize,
    next_seq: u64,
}

impl OutputBuffer {
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        OutputBuffer {
            inner: Arc::new(Mutex::new(Ring {
                lines: VecDeque::with_capacity(capacity.min(1024)),
                capacity,
                next_seq: 0,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Ring> {
        // A panic while holding the lock cannot leave the ring inconsistent.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn push(&self, run: u32, stream: OutputStream, text: String) {
        let mut ring = self.lock();
        let seq = ring.next_seq;
        ring.next_seq += 1;
        if ring.lines.len() == ring.capacity {
            ring.lines.pop_front();
        }
        ring.lines.push_back(OutputLine {
            seq,
            run,
            stream,
            text,
        });
    }

    /// Adds the `── run 2 · pid 1234 · started … ──` line and returns its text.
    pub fn push_run_separator(&self, run: u32, pid: u32, started_at: SystemTime) -> String {
        let text = run_separator(run, pid, started_at);
        self.push(run, OutputStream::Separator, text.clone());
        text
    }

    /// The last `count` lines, oldest first.
    pub fn recent(&self, count: usize) -> Vec<OutputLine> {
        let ring = self.lock();
        let skip = ring.lines.len().saturating_sub(count);
        ring.lines.iter().skip(skip).cloned().collect()
    }

    /// Lines with `seq >= from`, oldest first (what a follower has not seen yet).
    pub fn since(&self, from: u64) -> Vec<OutputLine> {
        let ring = self.lock();
        let first = ring.lines.front().map_or(0, |line| line.seq);
        let skip = usize::try_from(from.saturating_sub(first)).unwrap_or(usize::MAX);
        ring.lines.iter().skip(skip).cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().lines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.lock().capacity
    }

    /// Lines ever pushed, including those dropped from the ring.
    pub fn total_lines(&self) -> u64 {
        self.lock().next_seq
    }
}

pub fn run_separator(run: u32, pid: u32, started_at: SystemTime) -> String {
    let started = humantime::format_rfc3339_seconds(started_at);
    format!("── run {run} · pid {pid}{STARTED}{started} ──")
}

/// Where a run separator's wall-clock start begins.
const STARTED: &str = " · started ";

/// A run separator without its wall-clock start (`── run 2 · pid 1234 ──`),
/// for screens whose clock is relative; any other line as it is.
pub fn separator_without_start(separator: &str) -> std::borrow::Cow<'_, str> {
    match separator.split_once(STARTED) {
        Some((head, rest)) => {
            let tail = rest.find(" ──").map_or("", |i| &rest[i..]);
            std::borrow::Cow::Owned(format!("{head}{tail}"))
        }
        None => std::borrow::Cow::Borrowed(separator),
    }
}

/// Cuts a byte stream into lines of at most `max_bytes`, lossily decoded.
#[derive(Debug)]
pub(crate) struct LineSplitter {
    partial: Vec<u8>,
    truncated: bool,
    max_bytes: usize,
}

impl LineSplitter {
    pub(crate) fn new(max_bytes: usize) -> Self {
        LineSplitter {
            partial: Vec::new(),
            truncated: false,
            max_bytes: max_bytes.max(1),
        }
    }

    pub(crate) fn feed(&mut self, mut bytes: &[u8], mut emit: impl FnMut(String)) {
        while !bytes.is_empty() {
            let (piece, rest, line_ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(end) => (&bytes[..end], &bytes[end + 1..], true),
                None => (bytes, &[][..], false),
            };
            let room = self.max_bytes.saturating_sub(self.partial.len());
            if piece.len() > room {
                self.truncated = true;
            }
            self.partial
                .extend_from_slice(&piece[..piece.len().min(room)]);
            if line_ended {
                emit(self.take_line());
            }
            bytes = rest;
        }
    }

    /// Emits what is left after the stream ended without a final newline.
    pub(crate) fn finish(&mut self, emit: impl FnOnce(String)) {
        if !self.partial.is_empty() || self.truncated {
            emit(self.take_line());
        }
    }

    fn take_line(&mut self) -> String {
        if self.partial.last() == Some(&b'\r') {
            self.partial.pop();
        }
        let mut text = String::from_utf8_lossy(&self.partial).into_owned();
        if self.truncated {
            // The cut may have split a character; drop the replacement it left.
            if text.ends_with('\u{FFFD}') {
                text.pop();
            }
            text.push_str(" …[truncated]");
        }
        self.partial.clear();
        self.truncated = false;
        text
    }
}

/// Where one run's output goes.
#[derive(Debug, Clone)]
pub(crate) struct OutputSink {
    pub buffer: OutputBuffer,
    pub run: u32,
    pub max_line_bytes: usize,
    pub log_path: Option<PathBuf>,
}

/// Drains a run's stdout and stderr until both close. The separator line is written to
/// the log file first so the file reads like the ring.
pub(crate) async fn pump_output<O, E>(
    sink: OutputSink,
    stdout: Option<O>,
    stderr: Option<E>,
    separator: String,
) where
    O: AsyncRead + Unpin,
    E: AsyncRead + Unpin,
{
    let mut log = open_log(&sink).await;
    if let Some(writer) = log.as_mut() {
        write_log_line(writer, &separator, &sink).await;
    }
    let mut stdout = stdout;
    let mut stderr = stderr;
    let mut out_lines = LineSplitter::new(sink.max_line_bytes);
    let mut err_lines = LineSplitter::new(sink.max_line_bytes);
    let mut out_chunk = Chunk::default();
    let mut err_chunk = Chunk::default();
    loop {
        let mut lines = Vec::new();
        tokio::select! {
            read = read_some(&mut stdout, &mut out_chunk), if stdout.is_some() => match read {
                Some(n) => out_lines.feed(&out_chunk.0[..n], |line| lines.push((OutputStream::Stdout, line))),
                None => {
                    stdout = None;
                    out_lines.finish(|line| lines.push((OutputStream::Stdout, line)));
                }
            },
            read = read_some(&mut stderr, &mut err_chunk), if stderr.is_some() => match read {
                Some(n) => err_lines.feed(&err_chunk.0[..n], |line| lines.push((OutputStream::Stderr, line))),
                None => {
                    stderr = None;
                    err_lines.finish(|line| lines.push((OutputStream::Stderr, line)));
                }
            },
            else => break,
        }
        for (stream, text) in lines {
            if let Some(writer) = log.as_mut() {
                write_log_line(writer, &text, &sink).await;
            }
            sink.buffer.push(sink.run, stream, text);
        }
        if let Some(writer) = log.as_mut() {
            if let Err(error) = writer.flush().await {
                report_log_error(&sink, &error);
                log = None;
            }
        }
    }
}

/// A read buffer that starts small and doubles, up to [`Chunk::MOST`],
/// each time a read fills it: a thousand quiet workers each holding two
/// 8 KiB buffers for their whole run were 16 MB of the dashboard.
struct Chunk(Vec<u8>);

impl Chunk {
    const FIRST: usize = 256;
    const MOST: usize = 8192;
}

impl Default for Chunk {
    fn default() -> Chunk {
        Chunk(vec![0; Chunk::FIRST])
    }
}

/// Reads one chunk; `None` at end of stream or on a read error (the pipe is gone either way).
async fn read_some<R: AsyncRead + Unpin>(
    reader: &mut Option<R>,
    chunk: &mut Chunk,
) -> Option<usize> {
    let reader = reader.as_mut()?;
    match reader.read(&mut chunk.0).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            if n == chunk.0.len() && n < Chunk::MOST {
                // Filled: a chatty worker; read more at a time from now on.
                chunk.0.resize((n * 2).min(Chunk::MOST), 0);
            }
            Some(n)
        }
    }
}

async fn open_log(sink: &OutputSink) -> Option<BufWriter<tokio::fs::File>> {
    let path = sink.log_path.as_ref()?;
    if let Some(dir) = path.parent() {
        if let Err(error) = tokio::fs::create_dir_all(dir).await {
            report_log_error(sink, &error);
            return None;
        }
    }
    match OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .await
    {
        Ok(file) => Some(BufWriter::new(file)),
        Err(error) => {
            report_log_error(sink, &error);
            None
        }
    }
}

async fn write_log_line<W: AsyncWrite + Unpin>(writer: &mut W, text: &str, sink: &OutputSink) {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    if let Err(error) = writer.write_all(line.as_bytes()).await {
        report_log_error(sink, &error);
    }
}

/// A log file problem must not stop capture: say so once in the ring and carry on.
fn report_log_error(sink: &OutputSink, error: &std::io::Error) {
    let path = sink
        .log_path
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    sink.buffer.push(
        sink.run,
        OutputStream::Supervisor,
        format!("(cannot write log file {path}: {error})"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut splitter = LineSplitter::new(max);
        let mut lines = Vec::new();
        for chunk in chunks {
            splitter.feed(chunk, |line| lines.push(line));
        }
        splitter.finish(|line| lines.push(line));
        lines
    }

    #[test]
    fn splits_across_chunks_and_keeps_tail() {
        assert_eq!(
            split_all(100, &[b"ab", b"c\nde\r\n", b"f"]),
            vec!["abc", "de", "f"]
        );
    }

    #[test]
    fn truncates_long_lines_and_decodes_lossily() {
        let lines = split_all(4, &[b"abcdefgh\n", b"\xff\xfeok\n"]);
        assert_eq!(lines, vec!["abcd …[truncated]", "\u{FFFD}\u{FFFD}ok"]);
    }

    #[test]
    fn ring_keeps_latest_lines() {
        let buffer = OutputBuffer::new(3);
        for n in 0..10 {
            buffer.push(1, OutputStream::Stdout, n.to_string());
        }
        let texts: Vec<_> = buffer.recent(10).into_iter().map(|l| l.text).collect();
        assert_eq!(texts, vec!["7", "8", "9"]);
        assert_eq!(buffer.total_lines(), 10);
        assert_eq!(buffer.since(8).len(), 2);
        assert_eq!(buffer.since(0).len(), 3);
        assert_eq!(buffer.recent(1)[0].seq, 9);
    }

    #[tokio::test]
    async fn pump_writes_ring_and_log() {
        let dir = tempfile::tempdir().unwrap();
        let log_path = dir.path().join("logs/w.log");
        let buffer = OutputBuffer::new(10);
        let sink = OutputSink {
            buffer: buffer.clone(),
            run: 1,
            max_line_bytes: 100,
            log_path: Some(log_path.clone()),
        };
        let stdout: &[u8] = b"one\ntwo\n";
        let stderr: &[u8] = b"oops";
        pump_output(sink, Some(stdout), Some(stderr), "── sep ──".into()).await;
        let mut texts: Vec<_> = buffer.recent(10).into_iter().map(|l| l.text).collect();
        texts.sort();
        assert_eq!(texts, vec!["one", "oops", "two"]);
        let log = std::fs::read_to_string(log_path).unwrap();
        assert!(log.starts_with("── sep ──\n"));
        assert_eq!(log.lines().count(), 4);
    }

    #[tokio::test]
    async fn a_chatty_worker_is_read_whole_and_its_buffer_stays_bounded() {
        let text: String = (0..2000).map(|n| format!("line {n:05}\n")).collect();
        let mut reader = Some(text.as_bytes());
        let mut chunk = Chunk::default();
        assert_eq!(
            chunk.0.len(),
            Chunk::FIRST,
            "a quiet worker's buffer is small"
        );
        let mut splitter = LineSplitter::new(100);
        let mut lines = Vec::new();
        while let Some(n) = read_some(&mut reader, &mut chunk).await {
            splitter.feed(&chunk.0[..n], |line| lines.push(line));
            assert!(chunk.0.len() <= Chunk::MOST);
        }
        splitter.finish(|line| lines.push(line));
        assert_eq!(lines.len(), 2000);
        assert_eq!(lines[1999], "line 01999");
        assert_eq!(chunk.0.len(), Chunk::MOST, "it grew as reads filled it");
    }

    /// The original C++ kv-demo prints Chinese and emoji: a character cut by
    /// a small read's end is joined again, since a line is decoded whole.
    #[tokio::test]
    async fn a_character_cut_between_two_small_reads_is_whole_in_its_line() {
        let line = "📊 进度: 10% | 计数: 1 | 检查点: step_1";
        // Starts where the first read's end cuts the emoji in two.
        let text = format!("{}{line}\n", "x".repeat(Chunk::FIRST - 2));
        let mut reader = Some(text.as_bytes());
        let mut chunk = Chunk::default();
        let mut splitter = LineSplitter::new(1024);
        let mut lines = Vec::new();
        while let Some(n) = read_some(&mut reader, &mut chunk).await {
            splitter.feed(&chunk.0[..n], |l| lines.push(l));
        }
        splitter.finish(|l| lines.push(l));
        assert_eq!(lines.len(), 1);
        assert!(lines[0].ends_with(line), "{:?}", lines[0]);
        assert!(!lines[0].contains('\u{FFFD}'));
    }
}
