//! The real `App` driven through the real runtime (`run_main_loop`) on a
//! `TestBackend`: real kv-demo workers under a real supervisor and embedded
//! controller, key events in, the screen a person would see read back.
//! Snapshots keep only what does not vary from run to run (pids masked).

use crate::support::screen;

use crossterm::event::{KeyCode, KeyModifiers, MouseButton, MouseEvent, MouseEventKind};
use plumdash::tui::keymap::{parse_key, Keymap};
use std::time::Duration;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// The lines from the one containing `from` to the next one containing `to`.
fn region(screen: &str, from: &str, to: &str) -> String {
    let lines: Vec<&str> = screen.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains(from))
        .unwrap_or_else(|| panic!("{from:?} on the screen:\n{screen}"));
    let end = start
        + lines[start..]
            .iter()
            .position(|l| l.contains(to))
            .unwrap_or_else(|| panic!("{to:?} below {from:?}:\n{screen}"));
    lines[start..=end].join("\n")
}

/// The popup that starts on the line containing `title`: its box only, not
/// the panes around it (they vary by run).
fn popup(screen: &str, title: &str, last: &str) -> String {
    let lines = region(screen, title, last);
    let mut rows = lines.lines();
    let top: Vec<char> = rows.next().unwrap_or("").chars().collect();
    let left = top.iter().position(|c| *c == '╭').expect("a box");
    let right = top.iter().position(|c| *c == '╮').expect("a box");
    std::iter::once(top[left..=right].iter().collect::<String>())
        .chain(rows.map(|l| l.chars().skip(left).take(right - left + 1).collect()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Pids vary by run, and with their length the border after them.
fn mask_pids(text: &str) -> String {
    let text = regex::Regex::new(r"pid \d+")
        .unwrap()
        .replace_all(text, "pid N");
    regex::Regex::new(r"─+╮")
        .unwrap()
        .replace_all(&text, "─╮")
        .into_owned()
}

fn last_line(screen: &str) -> String {
    screen.lines().last().unwrap_or("").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_key_crashes_and_the_worker_resumes_on_the_test_backend() {
    let dir = tempfile::tempdir().unwrap();
    let config = screen::config(dir.path(), 1, Duration::from_millis(150));
    screen::run(
        config,
        screen::options(Keymap::default()),
        (120, 40),
        |s| async move {
            s.wait_for("RUNNING past 20%", SECS(15), |t| {
                (t.contains("RUNNING") && ["20%", "30%", "40%"].iter().any(|p| t.contains(p)))
                    .then_some(())
            })
            .await;
            s.key(KeyCode::Char('k'));
            let crashed = s.wait_text("CRASHED", SECS(5)).await;
            assert!(crashed.contains("app.crashed SET"), "{crashed}");
            assert!(
                crashed.contains("SIGKILL → pid"),
                "the kill is flashed:\n{crashed}"
            );
            s.wait_text("RESUMED from", SECS(10)).await;
            s.key(KeyCode::Char('q'));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signal_menu_sends_the_chosen_signal_and_esc_closes_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = screen::config(dir.path(), 1, Duration::from_millis(400));
    screen::run(
        config,
        screen::options(Keymap::default()),
        (120, 40),
        |s| async move {
            s.wait_text("RUNNING", SECS(15)).await;
            s.key(KeyCode::Char('x'));
            let open = s.wait_text("SIGCONT", SECS(5)).await;
            insta::assert_snapshot!(
                "runtime_signal_menu",
                mask_pids(&popup(&open, "Send a signal", "SIGCONT"))
            );
            s.key(KeyCode::Esc);
            s.wait_for("the menu closed", SECS(5), |t| {
                (!t.contains("SIGCONT")).then_some(())
            })
            .await;
            // Down twice is SIGINT: a graceful stop that clears the flag.
            s.key(KeyCode::Char('x'));
            s.wait_text("SIGCONT", SECS(5)).await;
            s.key(KeyCode::Down);
            s.key(KeyCode::Down);
            s.key(KeyCode::Enter);
            let sent = s.wait_text("SIGINT → pid", SECS(5)).await;
            assert!(
                !sent.contains("SIGCONT"),
                "the menu closes on Enter:\n{sent}"
            );
            s.wait_text("app.crashed CLEARED", SECS(10)).await;
            s.wait_text("STOPPED", SECS(10)).await;
            s.key(KeyCode::Char('q'));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_asks_first_and_only_y_clears_the_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let config = screen::config(dir.path(), 1, Duration::from_millis(400));
    screen::run(
        config,
        screen::options(Keymap::default()),
        (120, 40),
        |s| async move {
            s.wait_text("task.progress", SECS(15)).await;
            s.key(KeyCode::Char('c'));
            let asked = s.wait_text("reset namespace kv-demo?", SECS(5)).await;
            insta::assert_snapshot!("runtime_confirm_reset_footer", last_line(&asked));
            s.key(KeyCode::Char('n'));
            s.wait_text("reset cancelled", SECS(5)).await;
            s.key(KeyCode::Char('c'));
            s.wait_text("reset namespace kv-demo?", SECS(5)).await;
            s.key(KeyCode::Char('y'));
            // The typed outcome of the background reset comes back as a flash.
            let done = s
                .wait_for("the reset's outcome", SECS(5), |t| {
                    regex::Regex::new(r"namespace reset: [1-9]\d* keys removed")
                        .unwrap()
                        .find(t)
                        .map(|m| m.as_str().to_string())
                })
                .await;
            assert!(done.starts_with("namespace reset"), "{done}");
            s.key(KeyCode::Char('q'));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_pauses_on_the_match_and_focus_and_scroll_move_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let config = screen::config(dir.path(), 1, Duration::from_millis(150));
    screen::run(
        config,
        screen::options(Keymap::default()),
        (120, 40),
        |s| async move {
            // The worker's log has reached step 5, so step_2 is above the newest line.
            s.wait_text("step_5", SECS(15)).await;
            s.key(KeyCode::Char('/'));
            s.type_text("step_2");
            let typing = s.wait_text("/step_2▏", SECS(5)).await;
            insta::assert_snapshot!("runtime_search_footer", last_line(&typing));
            s.key(KeyCode::Enter);
            let found = s.wait_text("paused: f follows", SECS(5)).await;
            assert!(
                found.contains(") /step_2"),
                "the term stays in the title:\n{found}"
            );
            s.key(KeyCode::Char('f'));
            s.wait_text("(follow) /step_2", SECS(5)).await;
            // Focus moves to the log (Tab ×3); PageUp there scrolls back and pauses.
            for _ in 0..3 {
                s.key(KeyCode::Tab);
            }
            s.key(KeyCode::PageUp);
            s.wait_text("paused: f follows", SECS(5)).await;
            s.key(KeyCode::PageDown);
            s.wait_text("(follow) /step_2", SECS(5)).await;
            // Scrolling the wheel over the log does the same.
            s.mouse(MouseEvent {
                kind: MouseEventKind::ScrollUp,
                column: 100,
                row: 30,
                modifiers: KeyModifiers::NONE,
            });
            s.wait_text("paused: f follows", SECS(5)).await;
            s.key(KeyCode::Char('q'));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_click_selects_the_instance_drawn_there_in_the_compact_layout() {
    let dir = tempfile::tempdir().unwrap();
    let config = screen::config(dir.path(), 3, Duration::from_millis(400));
    screen::run(
        config,
        screen::options(Keymap::default()),
        (50, 15),
        |s| async move {
            let shown = s.wait_text("kv-demo-003", SECS(15)).await;
            let row = shown
                .lines()
                .position(|l| l.starts_with("\"kv-demo-003"))
                .expect("a row per instance");
            s.mouse(MouseEvent {
                kind: MouseEventKind::Down(MouseButton::Left),
                column: 3,
                row: row as u16,
                modifiers: KeyModifiers::NONE,
            });
            // The signal menu names the selected instance.
            s.key(KeyCode::Char('x'));
            s.wait_text("to kv-demo-003", SECS(5)).await;
            s.key(KeyCode::Esc);
            s.key(KeyCode::Char('q'));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_kill_key_kills() {
    let dir = tempfile::tempdir().unwrap();
    let config = screen::config(dir.path(), 1, Duration::from_millis(200));
    let mut keys = Keymap::default();
    let (code, mods) = parse_key("ctrl-k").unwrap();
    keys.rebind(plumdash::tui::action::Action::Kill, code, mods);
    screen::run(config, screen::options(keys), (120, 40), |s| async move {
        s.wait_text("RUNNING", SECS(15)).await;
        s.key(KeyCode::Char('k'));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!s.text().contains("SIGKILL → pid"), "k no longer kills");
        s.key_with(KeyCode::Char('k'), KeyModifiers::CONTROL);
        s.wait_text("SIGKILL → pid", SECS(5)).await;
        s.key(KeyCode::Char('q'));
    })
    .await;
}

/// Wrapped, a line takes the rows its display width needs: a worker printing
/// long CJK lines (two columns a character) still shows its newest line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrapped_cjk_lines_leave_the_newest_in_view() {
    let dir = tempfile::tempdir().unwrap();
    let long = "崩溃恢复演示".repeat(17);
    let script = format!(
        "i=0; while [ $i -lt 20 ]; do echo {long}第$i行; i=$((i+1)); done; \
         echo {long}最后一行END; exec sleep 30"
    );
    let mut config = screen::config(dir.path(), 1, Duration::from_millis(400));
    config.app = "cjk-worker".into();
    config.cmd = Some(format!("sh -c '{script}'"));
    screen::run(
        config,
        screen::options(Keymap::default()),
        (120, 40),
        |s| async move {
            s.wait_text("RUNNING", SECS(15)).await;
            s.key(KeyCode::Char('w'));
            s.wait_text("(follow, wrap)", SECS(5)).await;
            // Cut at the pane's edge the newest line hides its end; wrapped it shows.
            let wrapped = s.wait_text("END", SECS(10)).await;
            assert!(wrapped.contains("最后一行"), "{wrapped}");
            s.key(KeyCode::Char('q'));
        },
    )
    .await;
}

/// The instances table's row of `id`.
fn row_of<'a>(screen: &'a str, id: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(&format!("│{id} ")))
}

/// Waits until `id`'s row says `word`; the screen then.
async fn wait_row(s: &screen::Screen, id: &str, word: &str, limit: Duration) -> String {
    s.wait_for(&format!("{id} {word}"), limit, |t| {
        row_of(t, id)
            .is_some_and(|r| r.contains(word))
            .then(|| t.to_string())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_in_its_own_namespace_crashes_and_resumes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let config = plumdash::session::SessionConfig {
        namespace_by: plumdash::kv::NamespaceBy::Instance,
        ..screen::config(dir.path(), 2, Duration::from_millis(400))
    };
    screen::run(
        config,
        screen::options(Keymap::default()),
        (120, 40),
        |s| async move {
            // Each row has its own task; the panes follow the selection.
            let both = s
                .wait_for("both tasks under way", SECS(15), |t| {
                    let pct = |id| row_of(t, id).is_some_and(|r| r.contains("0%⚑"));
                    (pct("kv-demo-001") && pct("kv-demo-002")).then(|| t.to_string())
                })
                .await;
            assert!(both.contains("TASK"), "{both}");
            assert!(both.contains("ns kv-demo-001 (one per instance)"), "{both}");
            assert!(both.contains("Namespace kv-demo-001"), "{both}");
            s.key(KeyCode::Down);
            s.wait_text("Namespace kv-demo-002", SECS(5)).await;
            s.wait_for("kv-demo-002 past 10%", SECS(15), |t| {
                row_of(t, "kv-demo-002")
                    .is_some_and(|r| ["20%⚑", "30%⚑", "40%⚑"].iter().any(|p| r.contains(p)))
                    .then_some(())
            })
            .await;
            s.key(KeyCode::Char('k'));
            let crashed = wait_row(&s, "kv-demo-002", "CRASHED", SECS(5)).await;
            let other = row_of(&crashed, "kv-demo-001").unwrap_or_default();
            assert!(!other.contains("CRASHED"), "{crashed}");
            assert!(
                crashed.contains("app.crashed SET"),
                "the selected one's flag:\n{crashed}"
            );
            let resumed = wait_row(&s, "kv-demo-002", "RESUMED from", SECS(10)).await;
            let other = row_of(&resumed, "kv-demo-001").unwrap_or_default();
            assert!(
                !other.contains("RESUMED") && !other.contains("RECOVERING"),
                "the other namespace saw no crash:\n{resumed}"
            );
            // The crash is in one namespace: one cycle, on the timeline by id.
            assert!(resumed.contains("kv-demo-002 crash flag set"), "{resumed}");
            // A new instance gets its own namespace, watched before it starts.
            s.key(KeyCode::Char('n'));
            let third = s
                .wait_for("kv-demo-003's own task", SECS(10), |t| {
                    row_of(t, "kv-demo-003")
                        .is_some_and(|r| r.contains("%⚑") && r.contains("RUNNING"))
                        .then(|| t.to_string())
                })
                .await;
            assert!(third.contains("kv-demo-003 crash flag set"), "{third}");
            s.key(KeyCode::Char('q'));
        },
    )
    .await;
}

/// `--instances 2` on one namespace: the second stands by; `k` on the active
/// one is taken over by it, which resumes the task, and the killed one stands by.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_when_the_kill_key_crashes_the_active_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = plumdash::session::SessionConfig {
        standby: true,
        ..screen::config(dir.path(), 2, Duration::from_millis(300))
    };
    screen::run(
        config,
        screen::options(Keymap::default()),
        (120, 40),
        |s| async move {
            let standing = wait_row(&s, "kv-demo-002", "STANDBY", SECS(10)).await;
            assert!(
                row_of(&standing, "kv-demo-001").is_some_and(|r| r.contains("RUNNING")),
                "{standing}"
            );
            s.wait_for("past 20%", SECS(15), |t| {
                ["20%", "30%", "40%"]
                    .iter()
                    .any(|p| t.contains(&format!("{p} · step_")))
                    .then_some(())
            })
            .await;
            s.key(KeyCode::Char('k'));
            let resumed = wait_row(&s, "kv-demo-002", "RESUMED from", SECS(10)).await;
            assert!(
                row_of(&resumed, "kv-demo-001").is_some_and(|r| r.contains("STANDBY")),
                "the killed one stands by:\n{resumed}"
            );
            assert!(
                resumed.contains("kv-demo-002 takes over from kv-demo-001"),
                "{resumed}"
            );
            s.key(KeyCode::Char('q'));
        },
    )
    .await;
}
