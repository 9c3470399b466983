//! The real binary in a real terminal (tmux, 120×40): start with a short
//! step, wait for RUNNING and ≥ 30%, press `k`, see CRASHED, then RESUMED
//! from the kill point and progress continuing, then COMPLETED; press `q`
//! and the shell is back with the terminal restored.

use crate::support::tmux::{gauge_percent, type_plumdash, Tmux};
use crate::support::{free_port, need, PLUMDASH};
use std::process::Command;
use std::time::Duration;

#[test]
fn kill_key_crashes_and_the_worker_resumes_then_q_restores_the_shell() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::shell(120, 40);
    let args = "--step 250ms --restart-delay 1s --no-mouse";
    type_plumdash(&tmux, "", args, &dir.path().join("kv.db"));

    let at_kill = tmux.wait_for("RUNNING at ≥ 30%", Duration::from_secs(20), |s| {
        gauge_percent(s).filter(|p| s.contains("RUNNING") && (30..=70).contains(p))
    });
    tmux.send(&["k"]);
    let crashed = tmux.wait_for("CRASHED", Duration::from_secs(5), |s| {
        (s.contains("CRASHED") && s.contains("app.crashed SET")).then(|| s.to_string())
    });
    assert!(
        crashed.contains("SIGKILL → pid"),
        "the kill is flashed:\n{crashed}"
    );
    // The checkpoint at death is at least where we pressed the key.
    let kill_point = gauge_percent(&crashed).unwrap();
    assert!(kill_point >= at_kill, "{kill_point} < {at_kill}");

    let resumed = format!("RESUMED from {kill_point}%");
    tmux.wait_for(&resumed, Duration::from_secs(10), |s| {
        s.contains(&resumed).then_some(())
    });
    tmux.wait_for(
        "progress past the kill point",
        Duration::from_secs(10),
        |s| gauge_percent(s).filter(|p| *p > kill_point),
    );
    let done = tmux.wait_for("COMPLETED", Duration::from_secs(20), |s| {
        s.contains("COMPLETED").then(|| s.to_string())
    });
    assert!(done.contains("app.crashed CLEARED"), "{done}");
    assert!(done.contains("lost 0"), "the cycle lost no step:\n{done}");

    tmux.send(&["q"]);
    tmux.wait_for_prompt();
    tmux.send(&["echo restored-$?", "Enter"]);
    tmux.wait_for("exit status 0", Duration::from_secs(5), |s| {
        s.contains("restored-0").then_some(())
    });
}

/// Starts the dashboard in a fresh shell and waits until it shows a worker.
fn dashboard(dir: &tempfile::TempDir) -> (Tmux, String) {
    let db = dir.path().join("kv.db");
    let tmux = Tmux::shell(100, 30);
    // `--step 1s --db DB` first: pgrep and pkill find it by that.
    type_plumdash(&tmux, "", "--step 1s", &db);
    let db = db.display().to_string();
    tmux.wait_for("RUNNING", Duration::from_secs(20), |s| {
        s.contains("RUNNING").then_some(())
    });
    (tmux, db)
}

fn shell_is_back(tmux: &Tmux) {
    tmux.wait_for_prompt();
    // Raw mode is off again: typed text echoes and runs.
    tmux.send(&["echo restored-$?", "Enter"]);
    tmux.wait_for("a working shell", Duration::from_secs(5), |s| {
        s.lines().any(|l| l.starts_with("restored-")).then_some(())
    });
}

#[test]
fn ctrl_c_quits_and_restores_the_terminal() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tmux, _) = dashboard(&dir);
    tmux.send(&["C-c"]);
    shell_is_back(&tmux);
    assert!(tmux.screen().contains("restored-0"));
}

#[test]
fn sigterm_quits_and_restores_the_terminal() {
    if !need(&["tmux", "pkill"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tmux, db) = dashboard(&dir);
    let status = Command::new("pkill")
        .args(["-TERM", "-f", &format!("plumdash --step 1s --db {db}")])
        .status()
        .unwrap();
    assert!(status.success(), "plumdash was running");
    shell_is_back(&tmux);
    assert!(tmux.screen().contains("restored-0"));
}

/// A closed terminal or ssh session (SIGHUP) ends the dashboard as SIGTERM
/// does: normal screen, cursor shown, mouse released, the worker stopped.
#[test]
fn sighup_quits_restores_the_terminal_and_stops_the_worker() {
    if !need(&["tmux", "pkill", "pgrep"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tmux, db) = dashboard(&dir);
    assert_eq!(tmux.modes(), (true, false, true), "the dashboard's modes");
    let pattern = format!("plumdash --step 1s --db {db}");
    let pgrep = |args: &[&str]| -> Vec<u32> {
        let out = Command::new("pgrep").args(args).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let plumdash = pgrep(&["-f", &pattern]);
    assert_eq!(plumdash.len(), 1, "one dashboard: {plumdash:?}");
    let worker = pgrep(&["-P", &plumdash[0].to_string(), "-x", "kv-demo"]);
    assert_eq!(worker.len(), 1, "its worker: {worker:?}");
    let status = Command::new("pkill")
        .args(["-HUP", "-f", &pattern])
        .status()
        .unwrap();
    assert!(status.success(), "plumdash was running");
    shell_is_back(&tmux);
    assert_eq!(tmux.modes(), (false, true, false), "left as it was found");
    assert!(tmux.screen().contains("restored-0"), "{}", tmux.screen());
    crate::support::wait_until("the worker stopped", Duration::from_secs(10), || {
        worker
            .iter()
            .all(|pid| !std::path::Path::new(&format!("/proc/{pid}")).exists())
    });
}

#[test]
fn shift_q_leaves_the_worker_running_and_says_which() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (tmux, _) = dashboard(&dir);
    tmux.send(&["Q"]);
    shell_is_back(&tmux);
    let screen = tmux.screen();
    let pid: i32 = screen
        .lines()
        .find_map(|l| l.split("left running: kv-demo-001 (pid ").nth(1))
        .and_then(|rest| rest.split(')').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no 'left running' line:\n{screen}"));
    let alive = std::path::Path::new(&format!("/proc/{pid}")).exists();
    // Clean up before asserting, so a failure leaves nothing behind.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
    assert!(alive, "the worker kept running after Q");
    assert!(screen.contains("plumdash controller --listen"), "{screen}");
}

/// The pid of the worker `kv-demo` started by the plumdash using `db`.
fn worker_pid_of(db: &str) -> i32 {
    let out = Command::new("pgrep")
        .args(["-f", &format!("plumdash --step 1s --db {db}")])
        .output()
        .unwrap();
    let parent = String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok())
        .expect("plumdash is running");
    let out = Command::new("pgrep")
        .args(["-P", &parent.to_string(), "kv-demo"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("its kv-demo worker")
}

#[test]
fn a_worker_frozen_from_outside_shows_stopped_then_running_again() {
    if !need(&["tmux", "pgrep"]) {
        return;
    }
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let dir = tempfile::tempdir().unwrap();
    let (tmux, db) = dashboard(&dir);
    let pid = Pid::from_raw(worker_pid_of(&db));
    kill(pid, Signal::SIGSTOP).unwrap();
    let screen = tmux.wait_for("STOPPED (SIGSTOP)", Duration::from_secs(10), |s| {
        s.contains("STOPPED (SIGSTOP)").then(|| s.to_string())
    });
    assert!(screen.contains("kv-demo-001 frozen by SIGSTOP"), "{screen}");
    kill(pid, Signal::SIGCONT).unwrap();
    tmux.wait_for("continued", Duration::from_secs(10), |s| {
        (s.contains("kv-demo-001 continued") && !s.contains("STOPPED (SIGSTOP)")).then_some(())
    });
    tmux.send(&["q"]);
    shell_is_back(&tmux);
}

/// The embedded controller's diagnostics never write over the dashboard: with
/// the database deleted under it, the screen keeps its frame, the warning goes to
/// the log file in the state folder, and the shell is told where after `q`.
#[test]
fn controller_diagnostics_go_to_the_log_file_not_over_the_screen() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let db = dir.path().join("kv.db");
    let tmux = Tmux::shell(120, 40);
    let env = format!("XDG_STATE_HOME={} ", state.display());
    type_plumdash(&tmux, &env, "--step 250ms --no-mouse", &db);
    tmux.wait_for("RUNNING", Duration::from_secs(20), |s| {
        s.contains("RUNNING").then_some(())
    });
    std::fs::remove_file(&db).unwrap();
    let log = state.join("plumdash").join("plumdash.log");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log).is_ok_and(|t| t.contains("unhealthy")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no health warning in {}",
            log.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let screen = tmux.screen();
    assert!(
        !screen.contains("unhealthy") && !screen.contains("was deleted"),
        "the warning was written over the dashboard:\n{screen}"
    );
    tmux.send(&["q"]);
    tmux.wait_for(
        "the log file named after exit",
        Duration::from_secs(10),
        |s| s.contains("diagnostic line(s) in").then_some(()),
    );
}

/// At 80×24 the instances table shows eight rows; with twelve workers, moving
/// down reaches the twelfth, which scrolls into view and is the one whose log
/// shows.
#[test]
fn twelve_instances_at_80x24_scroll_to_the_twelfth() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::shell(80, 24);
    let args = "--instances 12 --cmd 'sleep 600' --no-mouse";
    type_plumdash(&tmux, "", args, &dir.path().join("kv.db"));
    let first = tmux.wait_for("twelve instances", Duration::from_secs(30), |s| {
        // More than fit: the title says which show.
        s.contains("Instances (1-8 of 12)").then(|| s.to_string())
    });
    assert!(
        !first.contains("│kv-demo-012"),
        "only eight rows fit:\n{first}"
    );
    for _ in 0..11 {
        tmux.send(&["Down"]);
    }
    let screen = tmux.wait_for("the twelfth selected", Duration::from_secs(10), |s| {
        (s.contains("│kv-demo-012") && s.contains("Log kv-demo-012")).then(|| s.to_string())
    });
    assert!(
        !screen.contains("│kv-demo-001"),
        "scrolled past the first:\n{screen}"
    );
    assert!(screen.contains("Instances (5-12 of 12)"), "{screen}");
    tmux.send(&["q"]);
    shell_is_back(&tmux);
}

/// `plumdash tour --lang zh`: the captions and help are Chinese while the state
/// words a script matches (RUNNING, CRASHED, RESUMED from N%, app.crashed ARMED)
/// stay as they are, through a real kill and recovery.
#[test]
fn tour_in_chinese_keeps_the_state_words_matchable() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::shell(120, 40);
    let args = "tour --lang zh --step 200ms --restart-delay 500ms --no-mouse";
    type_plumdash(&tmux, "", args, &dir.path().join("kv.db"));
    // The tour asks for the kill in Chinese once the worker is past 40%.
    tmux.wait_for("the Chinese kill caption", Duration::from_secs(20), |s| {
        (s.contains("导览 3/6 · 模拟崩溃") && s.contains("RUNNING") && s.contains("实例"))
            .then_some(())
    });
    tmux.send(&["k"]);
    tmux.wait_for(
        "the kill seen (CRASHED or already recovering)",
        Duration::from_secs(5),
        |s| {
            (s.contains("CRASHED") || s.contains("RECOVERING") || s.contains("RESUMED from"))
                .then_some(())
        },
    );
    let resumed = tmux.wait_for(
        "RESUMED and the next caption",
        Duration::from_secs(10),
        |s| {
            (s.contains("RESUMED from") && s.contains("导览 5/6 · 优雅退出")).then(|| s.to_string())
        },
    );
    assert!(resumed.contains("app.crashed ARMED（运行中）"), "{resumed}");
    assert!(
        resumed.contains("从") && resumed.contains("恢复"),
        "{resumed}"
    );
    tmux.send(&["?"]);
    tmux.wait_for("the Chinese help", Duration::from_secs(5), |s| {
        (s.contains("按键（? 关闭）") && s.contains("发送 SIGKILL")).then_some(())
    });
    // Any key closes help; a pause so Esc and q are not read as Alt-q.
    tmux.send(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["q"]);
    shell_is_back(&tmux);
}

/// `LANG=zh_CN.UTF-8 plumdash` is Chinese by itself, `--lang en` overrides it
/// (at 60×20 in the presenter layout the small screen chose), and the
/// presenter layout at 60×20 shows the state word, the gauge and the
/// flag; `p` switches to the full layout.
#[test]
fn the_locale_picks_chinese_and_the_presenter_layout_fits_60x20() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::shell(60, 20);
    let db = dir.path().join("kv.db");
    let zh = "LANG=zh_CN.UTF-8 ";
    type_plumdash(&tmux, zh, "--layout presenter --step 1s --no-mouse", &db);
    let screen = tmux.wait_for("the presenter layout", Duration::from_secs(20), |s| {
        (s.contains("RUNNING 运行中") && s.contains("app.crashed ARMED")).then(|| s.to_string())
    });
    assert!(
        screen.contains("状态") && screen.contains("进度"),
        "{screen}"
    );
    assert!(screen.contains("p 布局"), "{screen}");
    tmux.send(&["p"]);
    tmux.wait_for("the full layout", Duration::from_secs(5), |s| {
        (s.contains("命名空间") && s.contains("RUNNING")).then_some(())
    });
    tmux.send(&["q"]);
    shell_is_back(&tmux);

    tmux.send(&["clear", "Enter"]);
    type_plumdash(&tmux, zh, "--lang en --step 1s --no-mouse", &db);
    // 60×20 is too small for the full layout: the presenter one, said in English.
    tmux.wait_for("English despite the locale", Duration::from_secs(20), |s| {
        (s.contains("small screen: presenter layout")
            && s.contains("RUNNING")
            && !s.contains("状态"))
        .then_some(())
    });
    tmux.send(&["q"]);
    shell_is_back(&tmux);
}

/// `--namespace-by instance` at 80×24: each row's TASK column is its own
/// namespace's progress; `Down` moves the panes to the second instance and
/// `k` crashes it alone: its row resumes, the first one's never crashes.
#[test]
fn instances_with_their_own_namespaces_at_80x24_crash_alone() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::shell(80, 24);
    let args =
        "--instances 2 --namespace-by instance --step 300ms --restart-delay 300ms --no-mouse";
    type_plumdash(&tmux, "", args, &dir.path().join("kv.db"));
    let row = |s: &str, id: &str| {
        s.lines()
            .find(|l| l.contains(&format!("│{id} ")))
            .map(str::to_string)
    };
    let first = tmux.wait_for("both rows with a task", Duration::from_secs(30), |s| {
        let two = row(s, "kv-demo-002")?;
        (s.contains("TASK") && two.contains("%⚑")).then(|| s.to_string())
    });
    assert!(first.contains("ns kv-demo-001"), "{first}");
    tmux.send(&["Down"]);
    tmux.wait_for("kv-demo-002's panes", Duration::from_secs(10), |s| {
        (s.contains("ns kv-demo-002") && s.contains("Log kv-demo-002")).then_some(())
    });
    tmux.wait_for("kv-demo-002 past 10%", Duration::from_secs(20), |s| {
        let two = row(s, "kv-demo-002")?;
        ["20%⚑", "30%⚑", "40%⚑", "50%⚑"]
            .iter()
            .any(|p| two.contains(p))
            .then_some(())
    });
    tmux.send(&["k"]);
    let resumed = tmux.wait_for("kv-demo-002 RESUMED", Duration::from_secs(15), |s| {
        row(s, "kv-demo-002")?
            .contains("RESUMED from")
            .then(|| s.to_string())
    });
    let one = row(&resumed, "kv-demo-001").unwrap_or_default();
    assert!(
        !one.contains("RESUMED") && !one.contains("RECOVERING") && !one.contains("CRASHED"),
        "the first instance saw no crash:\n{resumed}"
    );
    tmux.send(&["q"]);
    shell_is_back(&tmux);
}

/// The log search in a real terminal: the query shows in the footer as it is
/// typed, Enter says which match of how many (`7/7`), `n` moves to the one
/// above (`6/7`), and `/` starts a new query.
#[test]
fn search_shows_the_query_and_steps_through_its_matches() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::shell(120, 40);
    type_plumdash(
        &tmux,
        "",
        "--step 150ms --no-mouse",
        &dir.path().join("kv.db"),
    );
    // The task done, no new line changes the count under the test.
    tmux.wait_for("the task completed", Duration::from_secs(20), |s| {
        s.contains("COMPLETED").then_some(())
    });
    tmux.send(&["/"]);
    tmux.send(&["-l", "检查点"]);
    let footer = |s: &str| s.lines().last().unwrap_or_default().to_string();
    tmux.wait_for("the query in the footer", Duration::from_secs(5), |s| {
        let f = footer(s);
        (f.contains("search: /检查点▏") && f.contains(" matches")).then_some(())
    });
    tmux.send(&["Enter"]);
    let (at, of) = tmux.wait_for("N/N", Duration::from_secs(5), |s| {
        let f = footer(s);
        let pos = f
            .split("/检查点 ")
            .nth(1)?
            .split_whitespace()
            .next()?
            .to_string();
        let (at, of) = pos.split_once('/')?;
        Some((at.parse::<u32>().ok()?, of.parse::<u32>().ok()?))
    });
    assert_eq!(at, of, "Enter finds the newest");
    tmux.send(&["n"]);
    let above = format!("/检查点 {}/{of}", of - 1);
    tmux.wait_for(&above, Duration::from_secs(5), |s| {
        footer(s).contains(&above).then_some(())
    });
    tmux.send(&["/"]);
    tmux.wait_for("a new, empty query", Duration::from_secs(5), |s| {
        footer(s).contains("search: /▏").then_some(())
    });
    tmux.send(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300));
    tmux.send(&["q"]);
    shell_is_back(&tmux);
}

/// The tour left alone: the task completes before anyone presses `k`, and the
/// caption asks for what can be done now, `s` and a new task (not `k`, which
/// would only say "not running"); `s` starts one and the tour asks for the
/// kill again.
#[test]
fn a_tour_that_finds_the_task_completed_asks_for_a_new_one() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::shell(120, 40);
    type_plumdash(
        &tmux,
        "",
        "tour --step 100ms --no-mouse",
        &dir.path().join("kv.db"),
    );
    let done = tmux.wait_for(
        "the completed task's caption",
        Duration::from_secs(20),
        |s| {
            (s.contains("COMPLETED") && s.contains("press s to start a new task"))
                .then(|| s.to_string())
        },
    );
    assert!(!done.contains("press k at about 50%"), "{done}");
    tmux.send(&["s"]);
    tmux.wait_for(
        "a new task and the kill asked for",
        Duration::from_secs(20),
        |s| (s.contains("RUNNING") && s.contains("press k")).then_some(()),
    );
    tmux.send(&["q"]);
    shell_is_back(&tmux);
}

/// `up --nodes 2` in a real terminal: the log pane shows the worker's own
/// lines (followed in the agent's log of the instance, not "stdout is a
/// pipe"), instances carry a short alias beside their 41-character id (`A1`
/// on nodeA), `K` makes the timeline say the node was lost by its dropped
/// connection (not missed heartbeats, well within the TTL), and the work's new
/// instance on nodeB is `B1`.
#[test]
fn under_nodes_the_log_follows_the_agent_ids_get_aliases_and_a_killed_node_says_why() {
    if !need(&["tmux"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tmux = Tmux::shell(130, 40);
    let args = "--nodes 2 --step 300ms --no-mouse";
    type_plumdash(&tmux, "", args, &dir.path().join("kv.db"));
    let running = tmux.wait_for("A1 running past 30%", Duration::from_secs(30), |s| {
        let row = s.lines().find(|l| l.contains("│A1 "))?;
        (row.contains("RUNNING") && gauge_percent(s).is_some_and(|p| p >= 30))
            .then(|| s.to_string())
    });
    assert!(running.contains("Log A1 "), "{running}");
    assert!(
        running.contains("📊 进度:"),
        "the worker's own lines:\n{running}"
    );
    assert!(!running.contains("stdout is a pipe"), "{running}");
    tmux.send(&["K"]);
    let down = tmux.wait_for("nodeA DOWN", Duration::from_secs(10), |s| {
        s.contains("node nodeA DOWN").then(|| s.to_string())
    });
    assert!(
        down.contains("node nodeA DOWN (its connection dropped)"),
        "{down}"
    );
    tmux.wait_for("B1 resumed on nodeB", Duration::from_secs(30), |s| {
        let row = s.lines().find(|l| l.contains("│B1 "))?;
        (row.contains("nodeB") && row.contains("RESUMED from")).then_some(())
    });
    tmux.send(&["q"]);
    shell_is_back(&tmux);
}

/// Rehearsal, then the live run, on the default state folder (no `--db`):
/// the second tour starts over at 0 %, not where the rehearsal stopped, and
/// its header says where the rehearsal's keys went.
#[test]
fn the_tour_twice_in_a_row_starts_at_zero_both_times() {
    if !need(&["tmux"]) {
        return;
    }
    // One shell: both runs share its XDG state folder, as a trainer's do.
    let tmux = Tmux::shell(120, 40);
    for run in ["rehearsal", "live"] {
        let port = free_port();
        let cmd = format!("{PLUMDASH} tour --step 300ms --no-mouse --listen 127.0.0.1:{port}");
        tmux.send(&[&cmd, "Enter"]);
        let first = tmux.wait_for(
            "the first screen with a worker",
            Duration::from_secs(20),
            |s| {
                let pct = gauge_percent(s)?;
                s.contains("RUNNING").then(|| (pct, s.to_string()))
            },
        );
        assert!(
            first.0 <= 20,
            "the {run} starts at {}%:\n{}",
            first.0,
            first.1
        );
        if run == "live" {
            assert!(first.1.contains("last run in kv-demo@"), "{}", first.1);
        }
        tmux.wait_for("progress past 40%", Duration::from_secs(20), |s| {
            gauge_percent(s).filter(|p| *p >= 40)
        });
        tmux.send(&["q"]);
        tmux.wait_for_prompt();
    }
}

/// A terminal that goes away (its window closed) ends the dashboard quietly:
/// it cannot be restored, and stderr gets no lines saying so.
#[test]
fn a_closed_window_ends_the_dashboard_with_nothing_on_stderr() {
    if !need(&["tmux", "pgrep"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("kv.db");
    let err = dir.path().join("stderr");
    let tmux = Tmux::shell(100, 30);
    type_plumdash(&tmux, "", &format!("--step 1s 2>{}", err.display()), &db);
    tmux.wait_for("RUNNING", Duration::from_secs(20), |s| {
        s.contains("RUNNING").then_some(())
    });
    let out = Command::new("pgrep")
        .args(["-f", &format!("plumdash --step 1s --db {}", db.display())])
        .output()
        .unwrap();
    let pids: Vec<u32> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(pids.len(), 1, "one dashboard: {pids:?}");
    drop(tmux);
    crate::support::wait_until("the dashboard ended", Duration::from_secs(10), || {
        !std::path::Path::new(&format!("/proc/{}", pids[0])).exists()
    });
    let said = std::fs::read_to_string(&err).unwrap_or_default();
    assert!(!said.contains("Failed to"), "{said}");
}
