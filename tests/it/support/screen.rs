//! The real dashboard runtime on a `TestBackend`: a real session (embedded
//! controller on a free port, SQLite in a temporary folder, real `kv-demo`
//! workers), key events sent in as the terminal would, the screen read back.

use crossterm::event::{Event, KeyCode, KeyEvent, KeyModifiers, MouseEvent};
use plumdash::session::{Session, SessionConfig};
use plumdash::supervisor::RestartConfig;
use plumdash::tui::keymap::Keymap;
use plumdash::tui::runtime::{run_main_loop, TuiOptions};
use plumdash::tui::theme::{Theme, ThemeName};
use ratatui::backend::{Backend, ClearType, TestBackend, WindowSize};
use ratatui::buffer::Cell;
use ratatui::layout::{Position, Size};
use ratatui::Terminal;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::mpsc;

/// A `TestBackend` the test can read while the runtime draws on it.
#[derive(Clone)]
pub struct SharedBackend(Arc<Mutex<TestBackend>>);

impl SharedBackend {
    fn lock(&self) -> MutexGuard<'_, TestBackend> {
        self.0.lock().unwrap()
    }
}

impl Backend for SharedBackend {
    type Error = std::convert::Infallible;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), Self::Error>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        self.lock().draw(content)
    }
    fn hide_cursor(&mut self) -> Result<(), Self::Error> {
        self.lock().hide_cursor()
    }
    fn show_cursor(&mut self) -> Result<(), Self::Error> {
        self.lock().show_cursor()
    }
    fn get_cursor_position(&mut self) -> Result<Position, Self::Error> {
        self.lock().get_cursor_position()
    }
    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), Self::Error> {
        self.lock().set_cursor_position(position)
    }
    fn clear(&mut self) -> Result<(), Self::Error> {
        self.lock().clear()
    }
    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), Self::Error> {
        self.lock().clear_region(clear_type)
    }
    fn size(&self) -> Result<Size, Self::Error> {
        self.lock().size()
    }
    fn window_size(&mut self) -> Result<WindowSize, Self::Error> {
        self.lock().window_size()
    }
    fn flush(&mut self) -> Result<(), Self::Error> {
        self.lock().flush()
    }
}

/// One dashboard run: send it events, read its screen.
pub struct Screen {
    backend: SharedBackend,
    events: mpsc::UnboundedSender<std::io::Result<Event>>,
}

impl Screen {
    pub fn text(&self) -> String {
        self.backend.lock().to_string()
    }

    pub fn key(&self, code: KeyCode) {
        self.key_with(code, KeyModifiers::NONE);
    }

    pub fn key_with(&self, code: KeyCode, modifiers: KeyModifiers) {
        let _ = self
            .events
            .send(Ok(Event::Key(KeyEvent::new(code, modifiers))));
    }

    pub fn type_text(&self, text: &str) {
        text.chars().for_each(|c| self.key(KeyCode::Char(c)));
    }

    pub fn mouse(&self, event: MouseEvent) {
        let _ = self.events.send(Ok(Event::Mouse(event)));
    }

    /// Waits until `pick` finds something on the screen; the screen in the panic otherwise.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut pick: impl FnMut(&str) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let screen = self.text();
            if let Some(found) = pick(&screen) {
                return found;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; the screen:\n{screen}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for `text` on the screen and returns the screen.
    pub async fn wait_text(&self, text: &str, timeout: Duration) -> String {
        self.wait_for(text, timeout, |s| s.contains(text).then(|| s.to_string()))
            .await
    }
}

/// The session's settings for a dashboard test: `instances` kv-demo workers
/// stepping every `step`, restarted 200 ms after a crash.
pub fn config(dir: &std::path::Path, instances: usize, step: Duration) -> SessionConfig {
    SessionConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        db: dir.join("kv.db"),
        instances,
        step: Some(step),
        restart: RestartConfig {
            delay: Duration::from_millis(200),
            ..RestartConfig::default()
        },
        stop_grace: Duration::from_secs(2),
        ..SessionConfig::default()
    }
}

pub fn options(keymap: Keymap) -> TuiOptions {
    TuiOptions {
        keymap,
        theme: Theme::new(ThemeName::Dark, false),
        detect_background: false,
        glyphs: plumdash::tui::terminal::Glyphs::Unicode,
        mouse: true,
        read_only: false,
        recording: true,
        status: None,
        tour: false,
        kill_at: None,
        lang: plumdash::text::Lang::En,
        layout: plumdash::tui::view::ScreenLayout::Full,
    }
}

/// Runs the real runtime on a `width`×`height` `TestBackend` while `drive`
/// looks at the screen and sends events; `drive` ends the run (with a quit key).
/// Returns the last screen.
pub async fn run<F, Fut>(
    config: SessionConfig,
    options: TuiOptions,
    (width, height): (u16, u16),
    drive: F,
) -> String
where
    F: FnOnce(Screen) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let session = Session::start(config).await.expect("the session starts");
    let backend = SharedBackend(Arc::new(Mutex::new(TestBackend::new(width, height))));
    let mut terminal = Terminal::new(backend.clone()).unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let input = tokio_stream::wrappers::UnboundedReceiverStream::new(rx);
    let screen = Screen {
        backend: backend.clone(),
        events: tx,
    };
    let (result, ()) = tokio::join!(
        run_main_loop(
            &mut terminal,
            session,
            &options,
            input,
            std::future::pending()
        ),
        async {
            tokio::time::timeout(Duration::from_secs(60), drive(screen))
                .await
                .expect("the test's steps finish within a minute")
        },
    );
    result.expect("the runtime ends cleanly");
    let last = backend.lock().to_string();
    last
}
