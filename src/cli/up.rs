//! `plumdash up` (and `tour`): the embedded controller (or a given one), the
//! supervised workers (or `--nodes` agents), and the dashboard or `--headless`
//! lines. Every cross-flag rule is checked here, before anything starts.

use super::auth::AuthArgs;
use super::controller::ClusterArgs;
use super::ui::UiArgs;
use super::UsageError;
use crate::controller;
use crate::ctl_socket;
use crate::kv::NamespaceBy;
use crate::session::{Session, SessionConfig};
use crate::signals::Termination;
use crate::supervisor::{RestartConfig, RestartPolicy};
use crate::tui::autokill::AutoKill;
use crate::tui::runtime::TuiOptions;
use anyhow::Result;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args, Clone)]
#[command(mut_arg("token", |a| a.help(
    "Bearer token for the controller (required with a non-loopback --listen)."
)))]
pub struct UpArgs {
    /// Read the worker, restart and kill settings from this scenario file (TOML,
    /// see `plumdash scenario example`); flags given here override it.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Worker instances to start.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=1000))]
    pub instances: u16,
    /// Run N node agents (nodeA, nodeB, …) as separate processes, each its own
    /// process group, and deploy the instances on nodeA; a node that stops
    /// beating has its instances moved to another (1: workers run in this process).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=26))]
    pub nodes: u8,
    /// With --nodes: the controller and each node on a test host of its own
    /// (network and PID namespaces, needs root, ip, nft and unshare), so a
    /// node's link can be cut (`P`, `ctl partition-node`).
    #[arg(long)]
    pub hosts: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
    /// Worker step interval, e.g. 200ms or 2s (kv-demo's default is 2s).
    #[arg(long, value_parser = super::duration)]
    pub step: Option<Duration>,
    /// Wait before restarting a crashed worker (0s restarts at once), however often it
    /// is killed, as long as each run lasted --crash-loop-under.
    #[arg(long, default_value = "1s", value_parser = super::duration)]
    pub restart_delay: Duration,
    /// When to restart.
    #[arg(long, value_enum, default_value_t = RestartPolicy::OnFailure)]
    pub restart: RestartPolicy,
    /// Crash-loop rule: a run that ends sooner than this after its start is a crash-loop
    /// run (backs off, counts for --max-restarts); one run at least this long ends the loop.
    #[arg(long, default_value = "1s", value_parser = super::duration)]
    pub crash_loop_under: Duration,
    /// Wait before the first crash-loop restart; it doubles with each one in a row.
    #[arg(long, default_value = "1s", value_parser = super::duration)]
    pub backoff_initial: Duration,
    /// Longest crash-loop wait.
    #[arg(long, default_value = "10s", value_parser = super::duration)]
    pub backoff_max: Duration,
    /// Give up (FAILED) after this many crash-loop restarts in a row.
    #[arg(long)]
    pub max_restarts: Option<u32>,
    /// Supervise this command instead of the bundled kv-demo, e.g. "./kv-demo-cpp".
    #[arg(long)]
    pub cmd: Option<String>,
    #[command(flatten)]
    pub reading: super::reading::ReadingArgs,
    /// The bundled kv-demo makes its pattern's classic mistake, for teaching:
    /// checkpoint before the work, replay without idempotence, restart the
    /// machine from INIT.
    #[arg(long = "unsafe")]
    pub unsafe_worker: bool,
    /// App name: PLUM_APP_NAME for workers and the KV namespace.
    #[arg(long, default_value = "kv-demo")]
    pub app: String,
    /// Where each worker keeps its task: `app`, one namespace shared by every
    /// instance (the original's: the task goes on after a failover to another
    /// node), or `instance`, each its own namespace named by its
    /// PLUM_INSTANCE_ID (independent tasks, a gauge and crash flag per
    /// instance; the panes follow the selected one).
    #[arg(long, value_enum, default_value_t = NamespaceBy::App)]
    pub namespace_by: NamespaceBy,
    /// SQLite file of the embedded controller [default: $XDG_STATE_HOME/plumdash/plum-kv.db]
    #[arg(long)]
    pub db: Option<PathBuf>,
    /// Where the embedded controller listens: an address named here is that
    /// address or an error [default: 127.0.0.1:8080, or a free port if it is taken]
    #[arg(long, value_parser = super::listen_addr)]
    pub listen: Option<SocketAddr>,
    /// Keep what the last run left in the app's namespaces (its task, its crash
    /// flag) instead of starting a fresh demo [the default with --db].
    #[arg(long, conflicts_with = "fresh")]
    pub keep_state: bool,
    /// Start a fresh demo even with --db: the last run's keys are moved to an
    /// archive namespace (`kv-demo@YYYYMMDD-HHMMSS`, the newest 3 kept) first.
    /// Without --db this is the default.
    #[arg(long)]
    pub fresh: bool,
    /// Use an existing controller (e.g. a real Plum controller) instead of the embedded one.
    #[arg(long, value_parser = super::controller_url)]
    pub controller: Option<String>,
    #[command(flatten)]
    pub auth: AuthArgs,
    /// Shorthand for --nodes 2: real agents, and a node that dies has its
    /// instances moved to the other (the seed's 主备切换).
    #[arg(long)]
    pub failover: bool,
    /// Without the dashboard: print one line per event (Ctrl-C stops the workers).
    #[arg(long)]
    pub headless: bool,
    /// Also write every event as a JSON line to this file.
    #[arg(long)]
    pub events: Option<PathBuf>,
    /// Append each instance's output to DIR/<instance>.log.
    #[arg(long)]
    pub log_dir: Option<PathBuf>,
    /// The dashboard sends SIGKILL itself when the task's progress crosses PCT (once).
    #[arg(long, value_name = "PCT", value_parser = clap::value_parser!(u8).range(1..=100))]
    pub kill_at: Option<u8>,
    /// With --kill-at: kill again in every new task, not just once.
    #[arg(long, requires = "kill_at")]
    pub kill_every_cycle: bool,
    /// With --kill-at and --nodes: SIGKILL the instance's node (its agent and
    /// workers, as `K` does) instead of the worker.
    #[arg(long, requires = "kill_at")]
    pub kill_node: bool,
    /// Control socket for `plumdash ctl` [default: $XDG_RUNTIME_DIR/plumdash/<app>.sock]
    #[arg(long)]
    pub control_socket: Option<PathBuf>,
    #[command(flatten)]
    pub ui: UiArgs,
}

/// `return Err(UsageError(format!(…)))`.
macro_rules! usage {
    ($($fmt:tt)*) => {
        return Err(UsageError(format!($($fmt)*)))
    };
}

impl UpArgs {
    /// The cross-flag rules, in one place: the first broken one is the error
    /// (exit 2), before anything starts. `--failover` becomes `--nodes 2` here.
    fn checked(mut self, tour: bool) -> Result<UpArgs, UsageError> {
        if self.headless && (!self.ui.is_default() || self.kill_at.is_some() || tour) {
            usage!(
                "--no-mouse, --recording, --keys, --layout, --kill-at and tour are for the \
                 dashboard, not --headless"
            );
        }
        if self.step.is_some_and(|s| s.is_zero()) {
            usage!("--step must be longer than 0 (e.g. 200ms)");
        }
        if self.events.is_some() && !self.headless {
            usage!("--events is written by --headless runs; add --headless");
        }
        if tour && self.namespace_by == NamespaceBy::Instance {
            usage!("the tour walks through one task: drop --namespace-by instance (or use up)");
        }
        if self.failover && self.nodes == 1 {
            self.nodes = 2;
        }
        if self.controller.is_some() && (self.fresh || self.keep_state) {
            usage!(
                "--fresh and --keep-state are for plumdash's own controller: a given \
                 --controller keeps its state"
            );
        }
        if self.nodes > 1 && self.controller.is_some() {
            usage!("--nodes and --failover run their own controller and agents: drop --controller");
        }
        if self.namespace_by == NamespaceBy::Instance && self.nodes > 1 {
            usage!(
                "--namespace-by instance and --nodes: a failover gives the work a new instance \
                 id, so its own namespace would start empty; nodes need the shared namespace \
                 (drop --namespace-by instance)"
            );
        }
        // Own namespaces share one change stream; a session watches at most so many.
        if self.namespace_by == NamespaceBy::Instance
            && usize::from(self.instances) > crate::session::MAX_FEEDS
        {
            usage!(
                "--namespace-by instance watches one namespace per instance: at most \
                 {} instances (asked for {})",
                crate::session::MAX_FEEDS,
                self.instances
            );
        }
        if self.standby() && self.nodes > 1 {
            usage!(
                "--instances {n} with --nodes would run {n} kv-demo workers writing one \
                 namespace ({app}) at once; with nodes the standby is the other node: run one \
                 (--instances 1), or drop --nodes to run {n} with one namespace each \
                 (--namespace-by instance)",
                n = self.instances,
                app = self.app
            );
        }
        if self.hosts && self.nodes == 1 {
            usage!("--hosts puts each of --nodes N on a test host: add --nodes 2 (or more)");
        }
        if self.kill_node && self.nodes == 1 {
            usage!("--kill-node kills one of --nodes N (2 or more); add --nodes 2");
        }
        if self.kill_node && self.kill_every_cycle {
            usage!(
                "a killed node comes back only when asked (K, ctl revive-node): --kill-node \
                 kills once (drop --kill-every-cycle)"
            );
        }
        Ok(self)
    }

    /// The bundled kv-demo keeps its task in the app's namespace: of N sharing
    /// it, one runs and the others stand by (here; with nodes, a node does).
    fn standby(&self) -> bool {
        self.instances > 1 && self.cmd.is_none() && self.namespace_by == NamespaceBy::App
    }

    /// `--listen`, or the default address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen.unwrap_or_else(|| {
            controller::DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8080)))
        })
    }

    /// Does this run draw the dashboard (the terminal is the screen's)?
    pub fn is_dashboard(&self) -> bool {
        !self.headless
    }
}

pub async fn run(args: UpArgs, tour: bool) -> Result<()> {
    let args = args.checked(tour)?;
    // A dashboard runs for hours: give back what the allocator keeps.
    crate::memory::keep_little();
    // Before anything starts: a Ctrl-C, SIGTERM or SIGHUP during start-up is
    // then told to the front end, which stops the workers, instead of
    // ending us by default with workers left to the orphan guard.
    let signals = Termination::install_with_hangup()?;
    let token = args.auth.token()?;
    // The embedded controller's address and token, refused before anything starts.
    if args.controller.is_none() {
        if let Some(why) = crate::controller::exposure_refused(args.listen_addr(), token.as_deref())
        {
            return Err(UsageError(why).into());
        }
    }
    // Read the keys file before starting anything, so a typo changes nothing.
    let options = args.ui.options()?;
    // Last of the checks (a wrong flag or keys file is told first).
    if !args.headless && !crate::tui::terminal::on_a_terminal() {
        return Err(UsageError(format!(
            "{}: run it in one, or add --headless for lines",
            crate::tui::terminal::NEEDS_A_TERMINAL
        ))
        .into());
    }
    let config = SessionConfig {
        remote_controller: args.controller.clone(),
        listen: args.listen_addr(),
        db: args
            .db
            .clone()
            .unwrap_or_else(crate::paths::default_db_path),
        token,
        app: args.app.clone(),
        namespace_by: args.namespace_by,
        instances: args.instances as usize,
        standby: args.standby(),
        cmd: args.cmd.clone(),
        step: args.step,
        restart: RestartConfig {
            policy: args.restart,
            delay: args.restart_delay,
            crash_loop_under: args.crash_loop_under,
            backoff_initial: args.backoff_initial,
            backoff_max: args.backoff_max,
            max_restarts: args.max_restarts,
        },
        log_dir: args.log_dir.clone(),
        orphan_guard: Some(super::this_binary()?),
        cluster: args.cluster.timing(),
        // A port named on the command line is that port or an error; the
        // default one gives way to a free port (said below).
        // Named by the user (even the default): that address or an error.
        listen_exact: args.listen.is_some(),
        // Rehearsal, then the live run: each starts at 0 % unless asked.
        fresh: args.fresh || (args.db.is_none() && !args.keep_state),
        // A given controller's cluster may run the app on other machines too.
        remote_instances: args.controller.is_some(),
        keys: args.reading.key_map().map_err(UsageError)?,
        pattern: args.reading.pattern,
        unsafe_worker: args.unsafe_worker,
        ..SessionConfig::default()
    };
    let session = if args.nodes > 1 {
        let nodes = crate::agent::local::LocalNodesConfig {
            count: args.nodes.into(),
            program: super::this_binary()?,
            controller: String::new(),
            token: None,
            worker_env: Vec::new(),
            log_dir: args.log_dir.clone().unwrap_or_else(crate::paths::state_dir),
            data_dir: crate::paths::agent_data_dir(),
            stop_grace: config.stop_grace,
            on_hosts: args.hosts,
        };
        Session::start_nodes(config, nodes).await?
    } else {
        Session::start(config).await?
    };
    if let Some(archived) = session.archived() {
        println!(
            "plumdash: a fresh demo: the last run's {} key(s) moved to {} \
             (`plumdash kv ls -n NAME` shows them; --keep-state keeps them in place)",
            archived.keys,
            archived.archives.join(", ")
        );
    }
    if let Some(running) = session.embedded_controller() {
        // Port 0 asks for any free port: not taken, given.
        if running.addr != args.listen_addr() && args.listen_addr().port() != 0 {
            println!(
                "plumdash: {} is taken: the embedded controller listens on {} \
                 (--listen names the address)",
                args.listen_addr(),
                running.addr
            );
        }
    }
    let (status, status_rx) = ctl_socket::status_channel();
    // An explicit socket must work; the default one is skipped (with a note)
    // when another plumdash already serves it.
    let (handle, read_only) = (session.handle(), args.ui.read_only);
    let control_server = match &args.control_socket {
        Some(path) => Some(ctl_socket::serve(handle, status_rx, path, read_only).await?),
        None => {
            let path = ctl_socket::default_socket_path(&args.app);
            match ctl_socket::serve(handle, status_rx, &path, read_only).await {
                Ok(server) => Some(server),
                Err(e) => {
                    eprintln!("plumdash: no control socket: {e:#}");
                    None
                }
            }
        }
    };
    if let Some(server) = &control_server {
        println!("plumdash: control socket {}", server.path().display());
    }
    if args.headless {
        return crate::headless::run_headless(
            session,
            args.events.as_deref(),
            Some(status),
            args.ui.lang(),
            signals,
        )
        .await;
    }
    let options = TuiOptions {
        status: Some(status),
        tour,
        kill_at: args
            .kill_at
            .map(|pct| AutoKill::new(pct.into(), args.kill_every_cycle).node(args.kill_node)),
        ..options
    };
    crate::tui::runtime::run(session, options, signals).await
}
