//! Scale: 100 kv-demo instances at 100 ms steps under one `Session` (what
//! `plumdash up --headless --instances 100 --step 100ms` runs), with a kill
//! every 200 ms. The consumer feeds every fact into a `Tracker`, as the
//! dashboard does, and measures per 2-second window how late facts are:
//! supervisor events (their `ts_ms` → handled) and a probe key written every
//! 50 ms carrying its write time in µs (written → handled). Flat lag over
//! time = it keeps up. CPU of this process (controller + supervisor + feed +
//! tracker; the workers are separate processes) and of the whole machine.
//! It runs twice in one go: all instances in one namespace, then each in its
//! own (`--namespace-by instance`: 100 change streams), and prints the second
//! beside the first.
//!
//! `cargo build --release && cargo bench --bench scale`

mod common;

use common::{cpu_ticks, fmt_d, rss_kb, unix_us, Samples, Table};
use plumdash::clock::now_ms;
use plumdash::kv::{DistributedMemory, NamespaceBy};
use plumdash::recovery::{Board, Fact};
use plumdash::session::{Session, SessionConfig, WorkerExit};
use plumdash::supervisor::{InstanceAction, RestartConfig};
use std::time::{Duration, Instant};

const INSTANCES: usize = 100;
const RUN: Duration = Duration::from_secs(20);
const WINDOW: Duration = Duration::from_secs(2);

fn main() {
    if !common::benchmarking("scale") {
        return;
    }
    let kv_demo = common::sibling_binary("kv-demo");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let kv_demo = kv_demo.display().to_string();
    let shared = rt.block_on(run(&kv_demo, NamespaceBy::App));
    let own = rt.block_on(run(&kv_demo, NamespaceBy::Instance));
    println!(
        "each in its own namespace vs one shared, same run: CPU {:.2}×, probe lag p50 {:.2}× ({} vs {}), p99 {} vs {}",
        own.cpu / shared.cpu.max(f64::EPSILON),
        own.probe_p50.as_secs_f64() / shared.probe_p50.as_secs_f64().max(f64::EPSILON),
        fmt_d(own.probe_p50),
        fmt_d(shared.probe_p50),
        fmt_d(own.probe_p99),
        fmt_d(shared.probe_p99),
    );
}

/// One run's whole-run figures.
struct Figures {
    /// This process, % of a core, over the whole run.
    cpu: f64,
    probe_p50: Duration,
    probe_p99: Duration,
}

fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    (cpu.iter().sum(), idle)
}

async fn run(kv_demo: &str, by: NamespaceBy) -> Figures {
    println!("-- namespaces: {by:?} --");
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut session = Session::start(SessionConfig {
        listen: "127.0.0.1:0".parse().expect("a socket address"),
        db: dir.path().join("kv.db"),
        app: "scale".into(),
        namespace_by: by,
        instances: INSTANCES,
        // kv-demo completes after 10 steps; the loop runs it again at once so
        // every instance keeps stepping for the whole run.
        cmd: Some(format!("sh -c 'while :; do {kv_demo}; done'")),
        step: Some(Duration::from_millis(100)),
        restart: RestartConfig {
            delay: Duration::ZERO,
            ..RestartConfig::default()
        },
        stop_grace: Duration::from_secs(2),
        ..SessionConfig::default()
    })
    .await
    .expect("session");
    println!(
        "{INSTANCES} instances started in {}",
        fmt_d(started.elapsed())
    );

    // A probe key: its value is the time it was written (in the first
    // instance's namespace when each has its own).
    let probe_ns = by.namespace("scale", "scale-001");
    let probe_dm = DistributedMemory::create(probe_ns, session.controller_url()).expect("client");
    let probe = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tick.tick().await;
            let _ = probe_dm.put("bench.probe", &unix_us().to_string()).await;
        }
    });
    // Kills: one random instance every 200 ms, as the kill key does.
    let supervisor = session.supervisor().clone();
    let killer = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
        loop {
            tick.tick().await;
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let id = format!("scale-{:03}", rng % INSTANCES as u64 + 1);
            let _ = supervisor
                .send(
                    &id,
                    InstanceAction::Signal(nix::sys::signal::Signal::SIGKILL),
                )
                .await;
        }
    });

    let hz = common::ticks_per_sec();
    let me = std::process::id();
    let mut table = Table::new(&[
        "window",
        "facts",
        "event lag p50 / p99 / max",
        "probe lag p50 / p99 / max",
        "this process CPU",
        "machine CPU busy",
        "RSS",
    ]);
    let mut board = Board::new("scale", by);
    let run_cpu0 = cpu_ticks(me).unwrap_or(0);
    let run_t0 = Instant::now();
    let mut all_events = Samples::default();
    let mut all_probes = Samples::default();
    let end = Instant::now() + RUN;
    let mut window = 0;
    while Instant::now() < end {
        window += 1;
        let (mut events, mut probes, mut facts) = (Samples::default(), Samples::default(), 0);
        let cpu0 = cpu_ticks(me).unwrap_or(0);
        let (tot0, idle0) = machine_ticks();
        let t0 = Instant::now();
        let until = tokio::time::Instant::now() + WINDOW;
        while let Ok(Some(o)) = tokio::time::timeout_at(until, session.next_observed()).await {
            let (at, fact) = (o.at, o.fact);
            facts += 1;
            match &fact {
                Fact::Started { .. }
                | Fact::Exited { .. }
                | Fact::RestartScheduled { .. }
                | Fact::Failed { .. } => {
                    events.push(Duration::from_millis(now_ms().saturating_sub(at)));
                }
                Fact::Written(entries) => {
                    if let Some(sent) = entries
                        .iter()
                        .find(|e| e.key == "bench.probe")
                        .and_then(|e| e.value.parse::<u64>().ok())
                    {
                        probes.push(Duration::from_micros(unix_us().saturating_sub(sent)));
                    }
                }
                _ => {}
            }
            board.apply(at, o.namespace.as_deref(), fact);
        }
        let secs = t0.elapsed().as_secs_f64();
        let cpu = (cpu_ticks(me).unwrap_or(0) - cpu0) as f64 / hz / secs * 100.0;
        let (tot1, idle1) = machine_ticks();
        let busy = 100.0 * (1.0 - (idle1 - idle0) as f64 / (tot1 - tot0).max(1) as f64);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        table.row(vec![
            format!("{:>2}-{:>2} s", (window - 1) * 2, window * 2),
            facts.to_string(),
            format!(
                "{} / {} / {}",
                fmt_d(events.median()),
                fmt_d(events.p99()),
                fmt_d(events.max())
            ),
            format!(
                "{} / {} / {}",
                fmt_d(probes.median()),
                fmt_d(probes.p99()),
                fmt_d(probes.max())
            ),
            format!("{cpu:.0}% of a core"),
            format!("{:.0}% of {cores} cores", busy),
            format!("{:.1} MB", rss_kb(me).unwrap_or(0) as f64 / 1024.0),
        ]);
        all_events.extend(events);
        all_probes.extend(probes);
    }
    let run_cpu =
        (cpu_ticks(me).unwrap_or(0) - run_cpu0) as f64 / hz / run_t0.elapsed().as_secs_f64()
            * 100.0;
    probe.abort();
    killer.abort();
    table.print();
    println!(
        "whole run: event lag p50 {} p99 {} ({} events); probe lag p50 {} p99 {} ({} probes); {} cycles recorded",
        fmt_d(all_events.median()),
        fmt_d(all_events.p99()),
        all_events.len(),
        fmt_d(all_probes.median()),
        fmt_d(all_probes.p99()),
        all_probes.len(),
        board.cycles().len()
    );
    session
        .shutdown(WorkerExit::StopGracefully)
        .await
        .expect("shutdown");
    Figures {
        cpu: run_cpu,
        probe_p50: all_probes.median(),
        probe_p99: all_probes.p99(),
    }
}
