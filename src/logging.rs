//! Where plumdash's own diagnostics go (the embedded controller's health
//! changes, accept failures, internal errors): library code logs with
//! `tracing`, and the binary picks the sink. Under the dashboard the terminal
//! belongs to the screen, so they go to a file in the state folder and the
//! dashboard says at exit how many lines it left there; otherwise to stderr.

use anyhow::{Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Diagnostics to stderr, one line each, text from outside escaped.
pub fn to_stderr() {
    let _ = tracing_subscriber::fmt()
        .with_writer(|| EscapingWriter(io::stderr()))
        .with_target(false)
        .without_time()
        .try_init();
}

/// What the dashboard needs to tell at exit.
#[derive(Clone)]
pub struct FileLog {
    pub path: PathBuf,
    lines: Arc<AtomicUsize>,
}

impl FileLog {
    /// Lines written since the sink was installed.
    pub fn lines(&self) -> usize {
        self.lines.load(Ordering::Relaxed)
    }
}

/// Diagnostics appended to `path` (created 0600 with its folder as needed).
pub fn to_file(path: &Path) -> Result<FileLog> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the log folder {}", dir.display()))?;
    }
    let file = {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("opening the log file {}", path.display()))?
    };
    let log = FileLog {
        path: path.to_path_buf(),
        lines: Arc::new(AtomicUsize::new(0)),
    };
    let sink = Arc::new(Mutex::new(file));
    let lines = log.lines.clone();
    let _ = tracing_subscriber::fmt()
        .with_writer(move || {
            EscapingWriter(CountingFile {
                file: sink.clone(),
                lines: lines.clone(),
            })
        })
        .with_target(false)
        .try_init();
    Ok(log)
}

/// Appends whole events to the shared file and counts them.
struct CountingFile {
    file: Arc<Mutex<File>>,
    lines: Arc<AtomicUsize>,
}

impl Write for CountingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(buf)?;
        let newlines = buf.iter().filter(|&&b| b == b'\n').count();
        self.lines.fetch_add(newlines, Ordering::Relaxed);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

/// Log events can quote stored text or peer input: control characters are
/// escaped on the way out, the event's own closing newline kept.
struct EscapingWriter<W: Write>(W);

impl<W: Write> Write for EscapingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let (body, newline) = match text.strip_suffix('\n') {
            Some(body) => (body, "\n"),
            None => (text.as_ref(), ""),
        };
        let safe = crate::text_safety::escape_controls(body);
        self.0.write_all(safe.as_bytes())?;
        self.0.write_all(newline.as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_keeps_the_closing_newline_and_nothing_raw() {
        let mut out = EscapingWriter(Vec::new());
        out.write_all(b"WARN bad key k\x1b]0;pwned\x07\n").unwrap();
        let text = String::from_utf8(out.0).unwrap();
        assert!(text.ends_with('\n'));
        assert!(!text.contains('\x1b') && !text.contains('\x07'), "{text:?}");
        assert_eq!(text.matches('\n').count(), 1);
    }
}
