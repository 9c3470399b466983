//! Kill → restart beside the supervisors people trust: the same tiny C worker
//! under plumdash, daemontools, runit, s6, supervisord and pm2, SIGKILLed from
//! outside (as `kill -9` from a shell or a chaos tool does), kills interleaved
//! round-robin in one run. Latency = the new worker's own start timestamp
//! (CLOCK_REALTIME, written by the worker first thing) − the kill's timestamp.
//!
//! Two patterns: spaced (each victim has been up ≥ 1.2 s, kills ≥ 200 ms apart)
//! and fast (bursts of kills, each 50–100 ms after the victim's restart). Then
//! each supervisor's idle CPU and RSS (its own processes, not the worker), and
//! the plumdash dashboard's beside `pm2 monit`, both in a pseudo-terminal.
//!
//! Peers are installed when missing (`apt-get install -y daemontools runit s6`,
//! `pip install supervisor`, `npm install -g pm2`); one that cannot be is
//! reported as skipped. Needs `cc`.
//!
//! `cargo build --release && cargo bench --bench peers`
//! Settable: PEERS_SPACED_KILLS (per peer, default 100), PEERS_FAST_KILLS (per
//! peer, default 20), PEERS_BURST (fast kills in a row, default 5),
//! PEERS_IDLE_SECS (default 10), PEERS_ONLY (comma-separated peer names).

mod common;
#[path = "common/pty.rs"]
mod pty;

use common::{fmt_d, Samples, Table};
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WORKER_C: &str = r#"
#include <stdio.h>
#include <time.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (argc < 2) return 2;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.%d", argv[1], (int)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return 1;
    fprintf(f, "%lld %d\n", (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec, (int)getpid());
    fclose(f);
    rename(tmp, argv[1]);
    for (;;) pause();
}
"#;

/// Longest wait for one restart (plumdash's crash-loop cap is 10 s).
const RESTART_TIMEOUT: Duration = Duration::from_secs(40);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// What the worker wrote: its start time (ns) and pid.
fn read_start(file: &Path) -> Option<(u128, u32)> {
    let text = std::fs::read_to_string(file).ok()?;
    let mut parts = text.split_whitespace();
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_quiet(program: &str, args: &[&str]) -> bool {
    println!("installing: {program} {}", args.join(" "));
    Command::new(program)
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn deb_version(package: &str) -> String {
    output("dpkg-query", &["-W", "-f", "${Version}", package])
}

/// Installs what is missing; returns why a peer is unavailable, if it is.
fn ensure_installed(name: &str) -> Result<(), String> {
    let (probe, install): (&str, &dyn Fn() -> bool) = match name {
        "daemontools" => ("svscan", &|| {
            run_quiet("apt-get", &["install", "-y", "daemontools"])
        }),
        "runit" => ("runsvdir", &|| {
            run_quiet("apt-get", &["install", "-y", "runit"])
        }),
        "s6" => ("s6-svscan", &|| {
            run_quiet("apt-get", &["install", "-y", "s6"])
        }),
        "supervisord" => ("supervisord", &|| {
            run_quiet("pip", &["install", "supervisor"])
                || run_quiet("pip3", &["install", "supervisor"])
        }),
        "pm2" => ("pm2", &|| run_quiet("npm", &["install", "-g", "pm2"])),
        _ => return Ok(()),
    };
    if has(probe) {
        return Ok(());
    }
    if install() && has(probe) {
        Ok(())
    } else {
        Err(format!("`{probe}` not found and could not be installed"))
    }
}

/// One supervisor with the worker under it.
struct Peer {
    name: &'static str,
    version: String,
    /// The worker's start file.
    start_file: PathBuf,
    /// Processes we spawned (their whole groups are killed at the end).
    children: Vec<Child>,
    /// The supervisor's own long-lived processes are found under these roots.
    roots: Vec<u32>,
    /// Extra cleanup (`pm2 kill`).
    stop: Option<Box<dyn Fn()>>,
    /// The pty of a dashboard peer, drained so it never blocks.
    pty: Option<pty::PtyChild>,
}

impl Peer {
    fn current(&self) -> Option<(u128, u32)> {
        read_start(&self.start_file)
    }

    /// The supervisor's processes: every descendant of its roots but the worker.
    fn own_processes(&self) -> Vec<u32> {
        let worker = self.current().map(|(_, pid)| pid);
        let mut found: Vec<u32> = self
            .roots
            .iter()
            .flat_map(|root| descendants(*root))
            .filter(|pid| Some(*pid) != worker)
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }

    fn shutdown(&mut self) {
        if let Some(stop) = &self.stop {
            stop();
        }
        let worker = self.current().map(|(_, pid)| pid);
        let mut all: Vec<u32> = self.roots.iter().flat_map(|r| descendants(*r)).collect();
        all.extend(worker);
        for child in &mut self.children {
            let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
        }
        for pid in all {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        for child in &mut self.children {
            let _ = child.wait();
        }
        if let Some(pty) = self.pty.take() {
            drop(pty);
        }
    }
}

/// `pid` and all its descendants, from /proc.
fn descendants(pid: u32) -> Vec<u32> {
    let mut parent_of = HashMap::new();
    if let Ok(entries) = std::fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(p) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) else {
                continue;
            };
            if let Some(ppid) = rest
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u32>().ok())
            {
                parent_of.insert(p, ppid);
            }
        }
    }
    if !parent_of.contains_key(&pid) {
        return Vec::new();
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            parent_of
                .iter()
                .filter(|(_, pp)| **pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}

fn write_run_script(service: &Path, worker: &Path, start_file: &Path) {
    std::fs::create_dir_all(service).expect("service dir");
    let run = service.join("run");
    std::fs::write(
        &run,
        format!(
            "#!/bin/sh\nexec {} {}\n",
            worker.display(),
            start_file.display()
        ),
    )
    .expect("run script");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o755)).expect("chmod");
}

fn spawn_group(program: &str, args: &[&str], envs: &[(&str, &Path)]) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn()
        .unwrap_or_else(|e| panic!("spawn {program}: {e}"))
}

fn start_peer(name: &'static str, dir: &Path, worker: &Path) -> Result<Peer, String> {
    let home = dir.join(name);
    std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
    let start_file = home.join("worker.start");
    let mut peer = Peer {
        name,
        version: String::new(),
        start_file: start_file.clone(),
        children: Vec::new(),
        roots: Vec::new(),
        stop: None,
        pty: None,
    };
    match name {
        "plumdash" => {
            let bin = common::sibling_binary("plumdash");
            peer.version = output(bin.to_str().unwrap_or("plumdash"), &["--version"]);
            let mut cmd = Command::new(&bin);
            cmd.args([
                "up",
                "--instances",
                "1",
                "--restart-delay",
                "0s",
                "--app",
                "peers",
            ])
            .arg("--cmd")
            .arg(format!("{} {}", worker.display(), start_file.display()))
            .arg("--db")
            .arg(home.join("kv.db"))
            .args(["--listen", "127.0.0.1:0"])
            .arg("--control-socket")
            .arg(home.join("ctl.sock"))
            .env("TERM", "xterm-256color");
            let child = pty::spawn(&mut cmd, 120, 40);
            peer.roots.push(child.child.id());
            peer.pty = Some(child);
        }
        "daemontools" => {
            peer.version = deb_version("daemontools");
            let svc = home.join("service");
            write_run_script(&svc.join("worker"), worker, &start_file);
            let child = spawn_group("svscan", &[svc.to_str().unwrap_or_default()], &[]);
            peer.roots.push(child.id());
            peer.children.push(child);
        }
        "runit" => {
            peer.version = deb_version("runit");
            let svc = home.join("service");
            write_run_script(&svc.join("worker"), worker, &start_file);
            let child = spawn_group("runsvdir", &[svc.to_str().unwrap_or_default()], &[]);
            peer.roots.push(child.id());
            peer.children.push(child);
        }
        "s6" => {
            peer.version = deb_version("s6");
            let svc = home.join("service");
            write_run_script(&svc.join("worker"), worker, &start_file);
            let child = spawn_group("s6-svscan", &[svc.to_str().unwrap_or_default()], &[]);
            peer.roots.push(child.id());
            peer.children.push(child);
        }
        "supervisord" => {
            peer.version = output("supervisord", &["--version"]);
            let conf = home.join("supervisord.conf");
            std::fs::write(
                &conf,
                format!(
                    "[supervisord]\nnodaemon=true\nlogfile={log}\npidfile={pid}\n\n\
                     [program:worker]\ncommand={worker} {start}\nautorestart=true\n\
                     startretries=1000000\nstdout_logfile=NONE\nstderr_logfile=NONE\n",
                    log = home.join("supervisord.log").display(),
                    pid = home.join("supervisord.pid").display(),
                    worker = worker.display(),
                    start = start_file.display(),
                ),
            )
            .map_err(|e| e.to_string())?;
            let child = spawn_group(
                "supervisord",
                &["-c", conf.to_str().unwrap_or_default()],
                &[],
            );
            peer.roots.push(child.id());
            peer.children.push(child);
        }
        "pm2" => {
            // From its package.json: `pm2 --version` may start a daemon in ~/.pm2.
            let root = output("npm", &["root", "-g"]);
            peer.version = std::fs::read_to_string(Path::new(&root).join("pm2/package.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["version"].as_str().map(String::from))
                .unwrap_or_default();
            let pm2_home = home.join("pm2home");
            let started = Command::new("pm2")
                .env("PM2_HOME", &pm2_home)
                .arg("start")
                .arg(worker)
                .args([
                    "--name",
                    "worker",
                    "--interpreter",
                    "none",
                    "--max-restarts",
                    "1000000",
                    "--",
                ])
                .arg(&start_file)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| format!("pm2 start: {e}"))?;
            if !started.success() {
                return Err(format!("pm2 start exited with {started}"));
            }
            let pid: u32 = std::fs::read_to_string(pm2_home.join("pm2.pid"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or("no pm2.pid after pm2 start")?;
            peer.roots.push(pid);
            peer.stop = Some(Box::new(move || {
                let _ = Command::new("pm2")
                    .env("PM2_HOME", &pm2_home)
                    .arg("kill")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }));
        }
        other => return Err(format!("unknown peer {other}")),
    }
    // Up when the worker has written its start file.
    let deadline = Instant::now() + Duration::from_secs(30);
    while peer.current().is_none() {
        if Instant::now() > deadline {
            peer.shutdown();
            return Err("the worker never started".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(peer)
}

/// Kills the current worker; returns the kill → new-start latency.
fn kill_and_wait(peer: &Peer) -> Option<Duration> {
    let (_, pid) = peer.current()?;
    let killed_ns = now_ns();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).ok()?;
    let deadline = Instant::now() + RESTART_TIMEOUT;
    loop {
        if let Some((start_ns, new_pid)) = peer.current() {
            if new_pid != pid {
                let ns = start_ns.saturating_sub(killed_ns);
                return Some(Duration::from_nanos(ns.try_into().unwrap_or(u64::MAX)));
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        if let Some(p) = &peer.pty {
            // Keep the dashboard's pty drained so it never blocks on a full buffer.
            while p.output.try_recv().is_ok() {}
        }
        std::thread::sleep(Duration::from_micros(500));
    }
}

/// How long the current worker has been up, by its own timestamp.
fn uptime(peer: &Peer) -> Duration {
    peer.current().map_or(Duration::ZERO, |(ns, _)| {
        Duration::from_nanos(now_ns().saturating_sub(ns).try_into().unwrap_or(0))
    })
}

fn drain(peers: &[Peer]) {
    for p in peers {
        if let Some(pty) = &p.pty {
            while pty.output.try_recv().is_ok() {}
        }
    }
}

/// A tiny xorshift, so the fast pattern's 50–100 ms are reproducible.
struct Rng(u64);
impl Rng {
    fn between_ms(&mut self, lo: u64, hi: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(lo + self.0 % (hi - lo + 1))
    }
}

/// CPU (% of a core) and RSS (MB, summed) of `pids` over `window`.
fn footprint(pids: &[u32], window: Duration, peers: &[Peer]) -> (f64, f64) {
    let before: u64 = pids.iter().filter_map(|p| common::cpu_ticks(*p)).sum();
    let t = Instant::now();
    while t.elapsed() < window {
        drain(peers);
        std::thread::sleep(Duration::from_millis(50));
    }
    let after: u64 = pids.iter().filter_map(|p| common::cpu_ticks(*p)).sum();
    let secs = t.elapsed().as_secs_f64();
    let cpu = after.saturating_sub(before) as f64 / common::ticks_per_sec() / secs * 100.0;
    let rss: u64 = pids.iter().filter_map(|p| common::rss_kb(*p)).sum();
    (cpu, rss as f64 / 1024.0)
}

fn main() {
    if !common::benchmarking("peers") {
        return;
    }
    let spaced_kills = env_usize("PEERS_SPACED_KILLS", 100);
    let fast_kills = env_usize("PEERS_FAST_KILLS", 20);
    let burst = env_usize("PEERS_BURST", 5).max(1);
    let idle_secs = env_usize("PEERS_IDLE_SECS", 10) as u64;
    let only: Option<Vec<String>> = std::env::var("PEERS_ONLY")
        .ok()
        .map(|s| s.split(',').map(|p| p.trim().to_string()).collect());

    let dir = tempfile::tempdir().expect("tempdir");
    let worker = dir.path().join("worker");
    let source = dir.path().join("worker.c");
    std::fs::write(&source, WORKER_C).expect("write worker.c");
    let cc = Command::new("cc")
        .args(["-O2", "-o"])
        .arg(&worker)
        .arg(&source)
        .status()
        .expect("cc (a C compiler is needed for the worker)");
    assert!(cc.success(), "compiling the worker failed");

    let names = [
        "plumdash",
        "daemontools",
        "runit",
        "s6",
        "supervisord",
        "pm2",
    ];
    let mut peers = Vec::new();
    let mut skipped = Vec::new();
    for name in names {
        if only
            .as_ref()
            .is_some_and(|o| name != "plumdash" && !o.iter().any(|n| n == name))
        {
            continue;
        }
        match ensure_installed(name).and_then(|()| start_peer(name, dir.path(), &worker)) {
            Ok(peer) => peers.push(peer),
            Err(why) => {
                println!("{name}: skipped ({why})");
                skipped.push((name, why));
            }
        }
    }
    let Some(plum_index) = peers.iter().position(|p| p.name == "plumdash") else {
        println!("plumdash did not start; nothing to compare");
        return;
    };
    std::thread::sleep(Duration::from_secs(2));

    // Idle footprint first, before any kill.
    let mut idle = HashMap::new();
    for peer in &peers {
        let pids = peer.own_processes();
        let (cpu, rss) = footprint(&pids, Duration::from_secs(idle_secs), &peers);
        idle.insert(peer.name, (cpu, rss, pids.len()));
    }
    // `pm2 monit`, pm2's dashboard, in a pty like plumdash's.
    let mut monit = None;
    if let Some(pm2) = peers.iter().find(|p| p.name == "pm2") {
        let pm2_home = pm2.start_file.parent().map(|h| h.join("pm2home"));
        if let Some(pm2_home) = pm2_home {
            let mut cmd = Command::new("pm2");
            cmd.arg("monit")
                .env("PM2_HOME", &pm2_home)
                .env("TERM", "xterm-256color");
            let mut child = pty::spawn(&mut cmd, 120, 40);
            let settle = Instant::now();
            while settle.elapsed() < Duration::from_secs(3) {
                while child.output.try_recv().is_ok() {}
                drain(&peers);
                std::thread::sleep(Duration::from_millis(50));
            }
            let pids = descendants(child.child.id());
            let before: u64 = pids.iter().filter_map(|p| common::cpu_ticks(*p)).sum();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(idle_secs) {
                while child.output.try_recv().is_ok() {}
                drain(&peers);
                std::thread::sleep(Duration::from_millis(50));
            }
            let after: u64 = pids.iter().filter_map(|p| common::cpu_ticks(*p)).sum();
            let cpu = after.saturating_sub(before) as f64
                / common::ticks_per_sec()
                / t.elapsed().as_secs_f64()
                * 100.0;
            let rss: u64 = pids.iter().filter_map(|p| common::rss_kb(*p)).sum();
            monit = Some((cpu, rss as f64 / 1024.0));
            let _ = killpg(Pid::from_raw(child.child.id() as i32), Signal::SIGKILL);
            let _ = child.child.wait();
        }
    }

    // Spaced: round-robin, each victim up ≥ 1.2 s, kills ≥ 200 ms apart.
    let mut spaced: Vec<Samples> = vec![Samples::default(); peers.len()];
    let mut lost = vec![0usize; peers.len()];
    for _ in 0..spaced_kills {
        for (i, peer) in peers.iter().enumerate() {
            let since = Instant::now();
            while uptime(peer) < Duration::from_millis(1200)
                || since.elapsed() < Duration::from_millis(200)
            {
                drain(&peers);
                std::thread::sleep(Duration::from_millis(5));
            }
            match kill_and_wait(peer) {
                Some(d) => spaced[i].push(d),
                None => lost[i] += 1,
            }
        }
    }

    // Fast: bursts, each kill 50–100 ms after the victim's restart. The kill that
    // opens a burst (victim up ≥ 1.2 s) is not counted.
    let mut fast: Vec<Samples> = vec![Samples::default(); peers.len()];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let rounds = fast_kills.div_ceil(burst);
    for _ in 0..rounds {
        for (i, peer) in peers.iter().enumerate() {
            while uptime(peer) < Duration::from_millis(1200) {
                drain(&peers);
                std::thread::sleep(Duration::from_millis(5));
            }
            if kill_and_wait(peer).is_none() {
                lost[i] += 1;
                continue;
            }
            for _ in 0..burst {
                let wait = rng.between_ms(50, 100);
                while uptime(peer) < wait {
                    std::thread::sleep(Duration::from_millis(1));
                }
                match kill_and_wait(peer) {
                    Some(d) => fast[i].push(d),
                    None => lost[i] += 1,
                }
            }
        }
    }

    println!(
        "\nkill → restart (worker's own start timestamp − kill), {spaced_kills} spaced and \
         {} fast kills per peer, interleaved round-robin:\n",
        rounds * burst
    );
    let plum_spaced = spaced[plum_index].clone();
    let plum_fast = fast[plum_index].clone();
    let mut table = Table::new(&[
        "supervisor",
        "pattern",
        "kills",
        "p50",
        "p90",
        "p99",
        "max",
        "p50 / plumdash",
        "p99 / plumdash",
    ]);
    let ratio = |a: Duration, b: Duration| {
        if b.is_zero() {
            "-".to_string()
        } else {
            format!("{:.2}", a.as_secs_f64() / b.as_secs_f64())
        }
    };
    for (pattern, all, base) in [
        ("spaced ≥ 1.2 s", &spaced, &plum_spaced),
        ("fast 50–100 ms after restart", &fast, &plum_fast),
    ] {
        for (i, peer) in peers.iter().enumerate() {
            let s = &all[i];
            table.row(vec![
                format!("{} {}", peer.name, peer.version),
                pattern.into(),
                s.len().to_string(),
                fmt_d(s.median()),
                fmt_d(s.pct(0.9)),
                fmt_d(s.p99()),
                fmt_d(s.max()),
                ratio(s.median(), base.median()),
                ratio(s.p99(), base.p99()),
            ]);
        }
    }
    table.print();
    if lost.iter().any(|n| *n > 0) {
        for (i, peer) in peers.iter().enumerate() {
            if lost[i] > 0 {
                println!(
                    "{}: {} kills not restarted within {RESTART_TIMEOUT:?}",
                    peer.name, lost[i]
                );
            }
        }
    }

    println!(
        "idle footprint over {idle_secs} s (the supervisor's own processes, not the worker):\n"
    );
    let mut table = Table::new(&["supervisor", "processes", "CPU % of a core", "RSS"]);
    for peer in &peers {
        if let Some((cpu, rss, n)) = idle.get(peer.name) {
            let what = if peer.name == "plumdash" {
                "plumdash up (dashboard in a pty, embedded controller)".to_string()
            } else {
                format!("{} (daemon)", peer.name)
            };
            table.row(vec![
                what,
                n.to_string(),
                format!("{cpu:.2} %"),
                format!("{rss:.1} MB"),
            ]);
        }
    }
    if let Some((cpu, rss)) = monit {
        table.row(vec![
            "pm2 monit (pm2's dashboard, in a pty)".into(),
            "-".into(),
            format!("{cpu:.2} %"),
            format!("{rss:.1} MB"),
        ]);
    }
    table.print();

    // The goal: plumdash's spaced p99 no worse than the best peer's.
    let best = peers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != plum_index && spaced[*i].len() > 0)
        .min_by_key(|(i, _)| spaced[*i].p99());
    if let Some((i, peer)) = best {
        let (ours, theirs) = (plum_spaced.p99(), spaced[i].p99());
        println!(
            "goal: spaced kill → restart p99 ≤ best peer's ({} {}): plumdash {} — {}",
            peer.name,
            fmt_d(theirs),
            fmt_d(ours),
            if ours <= theirs { "MET" } else { "MISSED" }
        );
    }
    if let (Some((cpu, rss, _)), Some((mcpu, mrss))) = (idle.get("plumdash"), monit) {
        println!(
            "goal: idle dashboard ≤ 1/5 of pm2 monit: CPU {cpu:.2} % vs {mcpu:.2} % ({:.2}×), \
             RSS {rss:.1} vs {mrss:.1} MB ({:.2}×)",
            cpu / mcpu.max(f64::EPSILON),
            rss / mrss.max(f64::EPSILON)
        );
    }
    for (name, why) in &skipped {
        println!("{name}: skipped ({why})");
    }
    // The p99s move with the machine's load: say what it was at the end too.
    println!("at the end: {}", common::machine_line());
    for peer in &mut peers {
        peer.shutdown();
    }
}
