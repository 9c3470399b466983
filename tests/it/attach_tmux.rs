//! `plumdash attach` in a real terminal (tmux) against stand-ins of a real Plum
//! deployment: the original controller's answers (`support/original.rs`: polling
//! only, `null` lists) and workers launched as Plum's agent launches them
//! (`tests/fixtures/plum-agent-*.sh`: `setsid sh -c ./start.sh` → `bash` →
//! `kv-demo | tee kv-demo.log`, stdout on /dev/null, a pid-file restarter).

use crate::support::original::OriginalController;
use crate::support::plum_agent::PlumInstance;
use crate::support::process::{is_dead, pids_of_instance, proc_info};
use crate::support::tmux::{gauge_percent, Tmux};
use crate::support::{self, need, wait_until, PLUMDASH};
use std::process::Stdio;
use std::time::Duration;

/// `n` appears on screen as a number of its own (not inside a longer one: pid
/// 795 is not shown by "7950").
fn shows_number(screen: &str, n: u32) -> bool {
    let n = n.to_string();
    screen
        .split(|c: char| !c.is_ascii_digit())
        .any(|word| word == n)
}

fn attach(tmux: &Tmux, url: &str, app: &str, extra: &str) {
    let cmd = format!("{PLUMDASH} attach --controller {url} --app {app} --no-mouse {extra}");
    tmux.send(&[&cmd, "Enter"]);
}

/// The instances table's row of `id`.
fn row<'a>(screen: &'a str, id: &str) -> Option<&'a str> {
    // Long ids keep their end in the 11-column cell (`3f…0a1b2c3d`).
    let shown = plumdash::tui::format::fit_id(id, 11);
    screen
        .lines()
        .find(|l| l.trim_start_matches('│').starts_with(&format!("{shown} ")))
}

/// The CRSH column of a row: fifth cell from the end (CRSH RST EXIT CPU RSS).
fn crashes(row: &str) -> Option<u32> {
    let inner = row.trim().trim_matches('│');
    let cells: Vec<&str> = inner.split_whitespace().collect();
    cells.get(cells.len().checked_sub(5)?)?.parse().ok()
}

/// Waits until the worker is part-way (20–70%), so a kill lands mid-task.
fn part_way(tmux: &Tmux) {
    tmux.wait_for("progress part-way", Duration::from_secs(20), |s| {
        gauge_percent(s).filter(|p| (20..=70).contains(p))
    });
}

fn quit(tmux: &Tmux) {
    tmux.send(&["q"]);
    tmux.wait_for_prompt();
}

#[test]
fn one_row_per_instance_kill_restart_resume_and_completion_as_the_agent_runs_it() {
    if !need(&["tmux"]) {
        return;
    }
    let server = OriginalController::start();
    let url = server.url();
    let app = format!("agent-{}", std::process::id());
    // An instance id as the original controller makes them: `<deployment>-<8 hex>`.
    let mut inst = PlumInstance::new(
        &app,
        "3f2a9c1b4d5e6f708192a3b4c5d6e7f8-0a1b2c3d",
        &url,
        "300",
        true,
    );
    let first = inst.start();
    inst.start_restarter("0.5");
    // Another app's kv-demo, run the same way on the same controller: never shown.
    let other = PlumInstance::new(&format!("{app}-other"), "d9-9999999", &url, "300", true);
    let foreign = other.start();

    let tmux = Tmux::shell(120, 40);
    attach(&tmux, &url, &app, "--restart-grace 10s");
    let screen = tmux.wait_for("the attached worker", Duration::from_secs(20), |s| {
        (s.contains("Instances (1)") && s.contains("RUNNING · attached at")).then(|| s.to_string())
    });
    // The worker is kv-demo, not its sh, bash or tee; they are named as its wrappers.
    let r = row(&screen, &inst.id).unwrap_or_else(|| panic!("no row:\n{screen}"));
    assert!(shows_number(r, first), "the worker's pid:\n{screen}");
    assert!(
        screen.contains(&format!("pid {first} under sh→bash")),
        "wrappers named:\n{screen}"
    );
    assert!(
        !shows_number(&screen, foreign),
        "another app's worker:\n{screen}"
    );
    // The agent sends stdout to /dev/null; the log is read from tee's file.
    tmux.wait_for(
        "the worker's output via tee",
        Duration::from_secs(10),
        |s| s.contains(": step_").then_some(()),
    );

    part_way(&tmux);
    let wrappers: Vec<u32> = pids_of_instance(&inst.id)
        .into_iter()
        .filter(|p| *p != first)
        .collect();
    assert_eq!(wrappers.len(), 3, "sh, bash and tee: {wrappers:?}");
    tmux.send(&["k"]);
    wait_until("the worker's death", Duration::from_secs(5), || {
        is_dead(first)
    });
    // The wrappers follow it (tee reads EOF, then bash and sh end).
    wait_until("the wrappers' end", Duration::from_secs(5), || {
        wrappers.iter().all(|p| is_dead(*p))
    });
    let second = inst.wait_for_worker(Duration::from_secs(10), Some(first));
    let screen = tmux.wait_for("RESUMED in the same row", Duration::from_secs(10), |s| {
        let r = row(s, &inst.id)?;
        (r.contains("RESUMED from") && shows_number(r, second)).then(|| s.to_string())
    });
    assert!(screen.contains("Instances (1)"), "{screen}");
    assert!(
        screen.contains("Recovery timeline (1 cycle)"),
        "one kill, one cycle:\n{screen}"
    );
    assert!(
        screen.contains("gone at") && screen.contains("(flag still set: crashed)"),
        "the unseen end judged from the flag:\n{screen}"
    );
    assert!(!screen.contains("unknown"), "{screen}");
    let r = row(&screen, &inst.id).unwrap();
    assert_eq!(crashes(r), Some(1), "CRSH 1: {r}\n{screen}");

    let done = tmux.wait_for("COMPLETED", Duration::from_secs(15), |s| {
        row(s, &inst.id)?
            .contains("COMPLETED")
            .then(|| s.to_string())
    });
    assert_eq!(crashes(row(&done, &inst.id).unwrap()), Some(1), "{done}");
    // The agent takes the exit for a failure and starts a new task: a new task, not a recovery.
    let third = inst.wait_for_worker(Duration::from_secs(10), Some(second));
    let screen = tmux.wait_for("the new task running", Duration::from_secs(10), |s| {
        let r = row(s, &inst.id)?;
        (shows_number(r, third) && r.contains("RUNNING")).then(|| s.to_string())
    });
    assert!(!screen.contains("RESUMED from 0%"), "{screen}");
    assert!(screen.contains("Recovery timeline (1 cycle)"), "{screen}");
    assert!(screen.contains("Instances (1)"), "{screen}");
    assert_eq!(
        crashes(row(&screen, &inst.id).unwrap()),
        Some(1),
        "{screen}"
    );
    quit(&tmux);
}

#[test]
fn a_crash_the_original_agent_never_restarts_is_shown_as_not_restarted() {
    if !need(&["tmux"]) {
        return;
    }
    let server = OriginalController::start();
    let url = server.url();
    let app = format!("zombie-{}", std::process::id());
    // The agent stand-in never reaps, so its restarter's `kill -0` passes on the zombie.
    let mut inst = PlumInstance::new(&app, "d2-000beef", &url, "300", false);
    let worker = inst.start();
    let sh = inst.sh_pid().unwrap();
    inst.start_restarter("0.3");

    let tmux = Tmux::shell(120, 40);
    attach(&tmux, &url, &app, "--restart-grace 2s");
    tmux.wait_for("the attached worker", Duration::from_secs(20), |s| {
        let part_way = gauge_percent(s).is_some_and(|p| (10..=70).contains(&p));
        (shows_number(row(s, &inst.id)?, worker) && part_way).then_some(())
    });
    tmux.send(&["k"]);
    tmux.wait_for("the kill flashed", Duration::from_secs(5), |s| {
        s.contains(&format!("SIGKILL → pid {worker}")).then_some(())
    });
    wait_until("the worker's death", Duration::from_secs(5), || {
        is_dead(worker)
    });
    let screen = tmux.wait_for("CRASHED, gone", Duration::from_secs(5), |s| {
        row(s, &inst.id)?
            .contains("CRASHED · gone, flag still set")
            .then(|| s.to_string())
    });
    assert!(!screen.contains("killed by unknown"), "{screen}");
    let screen = tmux.wait_for("not restarted", Duration::from_secs(10), |s| {
        row(s, &inst.id)?
            .contains("CRASHED · not restarted for")
            .then(|| s.to_string())
    });
    assert!(
        screen.contains("not restarted within 2s"),
        "the timeline says so:\n{screen}"
    );
    // As the original: the dead sh is a zombie and nothing restarted it.
    assert_eq!(proc_info(sh).map(|p| p.state), Some('Z'));
    assert_eq!(inst.restarts(), 0);
    quit(&tmux);
}

#[test]
fn a_graceful_stop_restarted_at_once_is_a_stop_and_the_tree_can_be_signalled() {
    if !need(&["tmux"]) {
        return;
    }
    let server = OriginalController::start();
    let url = server.url();
    let app = format!("graceful-{}", std::process::id());
    let mut inst = PlumInstance::new(&app, "d3-0c0ffee", &url, "300", true);
    let first = inst.start();
    // Restarted within one rescan of ours.
    inst.start_restarter("0.1");

    let tmux = Tmux::shell(120, 40);
    attach(&tmux, &url, &app, "");
    part_way(&tmux);
    tmux.send(&["i"]);
    let second = inst.wait_for_worker(Duration::from_secs(15), Some(first));
    let screen = tmux.wait_for("the restarted run", Duration::from_secs(10), |s| {
        let r = row(s, &inst.id)?;
        (shows_number(r, second) && r.contains("RUNNING")).then(|| s.to_string())
    });
    assert!(screen.contains("(flag cleared)"), "{screen}");
    assert!(screen.contains("stopped gracefully"), "{screen}");
    assert!(!screen.contains("CRASHED"), "{screen}");
    assert_eq!(
        crashes(row(&screen, &inst.id).unwrap()),
        Some(0),
        "{screen}"
    );

    // The signal menu offers the whole tree: SIGKILL to kv-demo, tee, bash and sh at once.
    let tree: Vec<u32> = pids_of_instance(&inst.id);
    assert_eq!(tree.len(), 4, "{tree:?}");
    tmux.send(&["x"]);
    tmux.wait_for("the signal menu", Duration::from_secs(5), |s| {
        s.contains("to the whole tree").then_some(())
    });
    tmux.send(&["8"]);
    wait_until("the whole tree's end", Duration::from_secs(5), || {
        tree.iter().all(|p| is_dead(*p))
    });
    let third = inst.wait_for_worker(Duration::from_secs(10), Some(second));
    tmux.wait_for(
        "RESUMED after the tree kill",
        Duration::from_secs(10),
        |s| {
            let r = row(s, &inst.id)?;
            (shows_number(r, third) && r.contains("RESUMED from")).then_some(())
        },
    );
    quit(&tmux);
}

#[test]
fn attach_waits_for_the_namespace_and_says_where_the_output_goes() {
    if !need(&["tmux"]) {
        return;
    }
    let server = OriginalController::start();
    let url = server.url();
    let app = format!("later-{}", std::process::id());
    let dm_other = format!("{app}-other");
    {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let dm = plumdash::kv::DistributedMemory::create(&dm_other, &url).unwrap();
            dm.put("k", "v").await.unwrap();
        });
    }
    let tmux = Tmux::shell(120, 40);
    attach(&tmux, &url, &app, "");
    // Both in one capture: a capture can catch the screen half drawn.
    let has = format!("it has: {dm_other}");
    tmux.wait_for("the waiting note", Duration::from_secs(20), |s| {
        (s.contains("does not exist on") && s.contains(&has)).then_some(())
    });

    // Started by hand, its stdout thrown away.
    let mut worker = support::kv_demo(&url, &app, "300")
        .env("PLUM_INSTANCE_ID", "by-hand-1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let screen = tmux.wait_for(
        "the worker and its namespace",
        Duration::from_secs(15),
        |s| (s.contains("by-hand-1") && gauge_percent(s).is_some()).then(|| s.to_string()),
    );
    assert!(!screen.contains("does not exist on"), "{screen}");
    assert!(screen.contains("stdout is /dev/null"), "{screen}");
    let _ = worker.kill();
    let _ = worker.wait();
    quit(&tmux);
}
