//! `plumdash`: argument parsing and dispatch. What each command does lives in
//! the library (`plumdash::commands`, `controller`, `supervisor`, `tui`, …).

use anyhow::{Context, Result};
use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use plumdash::commands::kv::KvCommand;
use plumdash::control;
use plumdash::controller::{self, ControllerConfig};
use plumdash::kv::{ClientOptions, DistributedMemory, NamespaceBy, DEFAULT_CONTROLLER_BASE};
use plumdash::scenario::Scenario;
use plumdash::session::{Session, SessionConfig};
use plumdash::supervisor::{RestartConfig, RestartPolicy};
use plumdash::tui::autokill::AutoKill;
use plumdash::tui::i18n::Lang;
use plumdash::tui::keymap::{default_keys_path, load_keys_file, Keymap};
use plumdash::tui::runtime::TuiOptions;
use plumdash::tui::theme::{Theme, ThemeName};
use plumdash::tui::view::ScreenLayout;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "plumdash",
    version,
    about = "A terminal dashboard for watching a program survive crashes",
    long_about = "plumdash runs (or attaches to) kv-demo workers that checkpoint their progress \
                  into a Plum-compatible KV store, shows the crash → restart → resume cycle \
                  live, and lets you cause it with one key.\n\n\
                  With no subcommand it runs `up`: an embedded controller, one supervised \
                  kv-demo worker, and the dashboard.",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    up: UpArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller, supervised workers and the dashboard (the default).
    Up(UpArgs),
    /// `up` with a guided tour: captions walk through the demo's six steps
    /// (run, watch, crash with k, recovery, graceful exit with i, restart with s).
    Tour(UpArgs),
    /// Run the crash-recovering kv-demo worker (same as the `kv-demo` binary).
    #[command(name = "kv-demo")]
    KvDemo(plumdash::demo::DemoArgs),
    /// Run the Plum-compatible KV controller (HTTP + SQLite) in the foreground.
    Controller(ControllerArgs),
    /// Run a node agent: heartbeat to a controller, run its assignments for this node
    /// under the supervisor, report their status (the workers die with the agent).
    Agent(AgentArgs),
    /// Watch a running controller's namespace and the local workers of an app (no spawning).
    Attach(AttachArgs),
    /// Read and write a namespace of a KV controller.
    Kv(KvArgs),
    /// Crash-recovery QA: kill a worker N times and check the recovery invariants
    /// (exit 0: all held, 1: one failed, 2: usage or setup error).
    Verify(plumdash::verify::VerifyArgs),
    /// Control a running `plumdash up` from scripts (over its control socket).
    Ctl(plumdash::control::CtlArgs),
    /// Print a shell completion script, e.g. `plumdash completions bash > ~/.local/share/bash-completion/completions/plumdash`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page plumdash(1), or with --dir write it and one page per subcommand there.
    Man {
        /// Write plumdash.1 and plumdash-SUBCOMMAND.1 into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Scenario files for --scenario: print a commented example, or check a file.
    #[command(subcommand)]
    Scenario(ScenarioSub),
}

#[derive(Subcommand)]
enum ScenarioSub {
    /// Print a commented scenario that runs as is (`plumdash scenario example > qa.toml`).
    Example,
    /// Check a scenario file without running anything (exit 2 with the line if it is bad).
    Check { file: PathBuf },
}

#[derive(Args, Clone)]
struct UpArgs {
    /// Read the worker, restart and kill settings from this scenario file (TOML,
    /// see `plumdash scenario example`); flags given here override it.
    #[arg(long, value_name = "FILE")]
    scenario: Option<PathBuf>,
    /// Worker instances to start.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(0..=1000))]
    instances: u16,
    /// Run N node agents (nodeA, nodeB, …) as separate processes, each its own
    /// process group, and deploy the instances on nodeA; a node that stops
    /// beating has its instances moved to another (1: workers run in this process).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=26))]
    nodes: u8,
    #[command(flatten)]
    cluster: ClusterArgs,
    /// Worker step interval, e.g. 200ms or 2s (kv-demo's default is 2s).
    #[arg(long, value_parser = humantime::parse_duration)]
    step: Option<Duration>,
    /// Wait before restarting a crashed worker (0s restarts at once), however often it
    /// is killed, as long as each run lasted --crash-loop-under.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    restart_delay: Duration,
    /// When to restart.
    #[arg(long, value_enum, default_value_t = RestartPolicy::OnFailure)]
    restart: RestartPolicy,
    /// Crash-loop rule: a run that ends sooner than this after its start is a crash-loop
    /// run (backs off, counts for --max-restarts); one run at least this long ends the loop.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    crash_loop_under: Duration,
    /// Wait before the first crash-loop restart; it doubles with each one in a row.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    backoff_initial: Duration,
    /// Longest crash-loop wait.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    backoff_max: Duration,
    /// Give up (FAILED) after this many crash-loop restarts in a row.
    #[arg(long)]
    max_restarts: Option<u32>,
    /// Supervise this command instead of the bundled kv-demo, e.g. "./kv-demo-cpp".
    #[arg(long)]
    cmd: Option<String>,
    /// App name: PLUM_APP_NAME for workers and the KV namespace.
    #[arg(long, default_value = "kv-demo")]
    app: String,
    /// Where each worker keeps its task: `app`, one namespace shared by every
    /// instance (the original's: the task goes on after a failover to another
    /// node), or `instance`, each its own namespace named by its
    /// PLUM_INSTANCE_ID (independent tasks, a gauge and crash flag per
    /// instance; the panes follow the selected one).
    #[arg(long, value_enum, default_value_t = NamespaceBy::App)]
    namespace_by: NamespaceBy,
    /// SQLite file of the embedded controller [default: $XDG_STATE_HOME/plumdash/plum-kv.db]
    #[arg(long)]
    db: Option<PathBuf>,
    /// Where the embedded controller listens (a free port is used if it is taken).
    #[arg(long, default_value = controller::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Use an existing controller (e.g. a real Plum controller) instead of the embedded one.
    #[arg(long)]
    controller: Option<String>,
    /// Bearer token for the controller (required with a non-loopback --listen).
    #[arg(long, env = "PLUM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the bearer token from this file's first line (keeps it out of `ps`;
    /// overrides --token and PLUM_TOKEN).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// Shorthand for --nodes 2: real agents, and a node that dies has its
    /// instances moved to the other (the seed's 主备切换).
    #[arg(long)]
    failover: bool,
    /// Without the dashboard: print one line per event (Ctrl-C stops the workers).
    #[arg(long)]
    headless: bool,
    /// Also write every event as a JSON line to this file.
    #[arg(long)]
    events: Option<PathBuf>,
    /// Append each instance's output to DIR/<instance>.log.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// The dashboard sends SIGKILL itself when the task's progress crosses PCT (once).
    #[arg(long, value_name = "PCT", value_parser = clap::value_parser!(u8).range(1..=100))]
    kill_at: Option<u8>,
    /// With --kill-at: kill again in every new task, not just once.
    #[arg(long, requires = "kill_at")]
    kill_every_cycle: bool,
    /// With --kill-at and --nodes: SIGKILL the instance's node (its agent and
    /// workers, as `K` does) instead of the worker.
    #[arg(long, requires = "kill_at")]
    kill_node: bool,
    /// Control socket for `plumdash ctl` [default: $XDG_RUNTIME_DIR/plumdash/<app>.sock]
    #[arg(long)]
    control_socket: Option<PathBuf>,
    #[command(flatten)]
    ui: UiArgs,
}

impl UpArgs {
    /// The scenario's settings where the command line left the defaults
    /// (`given(id)`: the user set that argument).
    fn apply_scenario(&mut self, sc: &Scenario, given: &dyn Fn(&str) -> bool) {
        fn set<T: Clone>(given: bool, arg: &mut T, from_file: &Option<T>) {
            if let (false, Some(v)) = (given, from_file) {
                arg.clone_from(v);
            }
        }
        if self.cmd.is_none() {
            self.cmd.clone_from(&sc.worker.cmd);
        }
        if self.step.is_none() {
            self.step = sc.worker.step;
        }
        set(
            given("instances"),
            &mut self.instances,
            &sc.worker.instances,
        );
        set(given("app"), &mut self.app, &sc.worker.app);
        set(given("nodes"), &mut self.nodes, &sc.worker.nodes);
        set(
            given("namespace_by"),
            &mut self.namespace_by,
            &sc.worker.namespace_by,
        );
        set(given("restart"), &mut self.restart, &sc.restart.policy);
        set(
            given("restart_delay"),
            &mut self.restart_delay,
            &sc.restart.delay,
        );
        let r = &sc.restart;
        set(
            given("crash_loop_under"),
            &mut self.crash_loop_under,
            &r.crash_loop_under,
        );
        set(
            given("backoff_initial"),
            &mut self.backoff_initial,
            &r.backoff_initial,
        );
        set(given("backoff_max"), &mut self.backoff_max, &r.backoff_max);
        if self.max_restarts.is_none() {
            self.max_restarts = r.max_restarts;
        }
        self.failover |= r.failover.unwrap_or(false);
        // The kills are the dashboard's (`--kill-at`); headless runs have none.
        if self.headless && sc.kills.at.is_some() {
            eprintln!(
                "plumdash: the scenario's [kills] are for the dashboard and verify; \
                 --headless runs without them"
            );
        }
        if self.kill_at.is_none() && !self.headless {
            self.kill_at = sc.kills.at;
            self.kill_every_cycle |= sc.kills.every_cycle.unwrap_or(false);
            self.kill_node |= sc.kills.node.unwrap_or(false);
        }
    }
}

/// Did the user set argument `id` (on the command line or in the environment)?
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches
        .value_source(id)
        .is_some_and(|s| s != ValueSource::DefaultValue)
}

/// Reads `--scenario` into the arguments, before anything starts; the error is
/// one line naming the file, line and key.
fn load_scenario(path: Option<&std::path::Path>) -> Result<Option<Scenario>, String> {
    match path {
        Some(path) => Scenario::load(path).map(Some),
        None => Ok(None),
    }
}

/// Dashboard options shared by `up` and `attach`.
#[derive(Args, Clone)]
struct UiArgs {
    /// No signals or actions from the dashboard.
    #[arg(long)]
    read_only: bool,
    /// Colour theme (NO_COLOR turns colour off).
    #[arg(long, value_enum, default_value_t = ThemeName::Dark)]
    theme: ThemeName,
    /// Do not capture the mouse.
    #[arg(long)]
    no_mouse: bool,
    /// Stable frames for recordings: relative clock, no wall-clock times.
    #[arg(long)]
    recording: bool,
    /// Key bindings file [default: $XDG_CONFIG_HOME/plumdash/keys.toml if present]
    #[arg(long)]
    keys: Option<PathBuf>,
    /// Language of the dashboard and of `--headless`'s timeline lines [default: from
    /// LC_ALL, LC_MESSAGES or LANG: zh* is Chinese, anything else English]. State words
    /// stay as they are in both; `--events` JSON is the same in both.
    #[arg(long, value_enum)]
    lang: Option<Lang>,
    /// The screen to start with (`p` switches).
    #[arg(long, value_enum, default_value_t = ScreenLayout::Full)]
    layout: ScreenLayout,
}

impl UiArgs {
    /// Nothing dashboard-only was asked for (`--read-only` also applies to
    /// headless runs: it closes the control socket to actions).
    fn is_default(&self) -> bool {
        !self.no_mouse
            && !self.recording
            && self.keys.is_none()
            && self.layout == ScreenLayout::Full
    }

    /// Reads the keys file first, so a typo stops us before anything starts.
    fn options(&self) -> Result<TuiOptions> {
        let keymap = match self
            .keys
            .clone()
            .or_else(|| default_keys_path().filter(|p| p.exists()))
        {
            Some(path) => load_keys_file(&path, Keymap::default()).map_err(anyhow::Error::msg)?,
            None => Keymap::default(),
        };
        Ok(TuiOptions {
            keymap,
            theme: Theme::from_env(self.theme),
            mouse: !self.no_mouse,
            read_only: self.read_only,
            recording: self.recording,
            status: None,
            tour: false,
            kill_at: None,
            lang: self.lang.unwrap_or_else(Lang::from_env),
            layout: self.layout,
        })
    }
}

#[derive(Args)]
struct AttachArgs {
    /// The controller to watch (plumdash's or an original Plum controller).
    #[arg(long, env = "CONTROLLER_BASE", default_value = DEFAULT_CONTROLLER_BASE)]
    controller: String,
    /// App name: the namespace to watch and the workers' PLUM_APP_NAME (a worker
    /// without the variable belongs to kv-demo, as the worker itself decides).
    #[arg(long, default_value = "kv-demo")]
    app: String,
    /// The worker program's process name; the shells and `tee` around it (as
    /// Plum's agent runs it) are shown as its wrappers, not as instances.
    #[arg(long, value_name = "NAME", default_value = plumdash::supervisor::WORKER_EXECUTABLE)]
    worker: String,
    /// A crashed worker nobody restarts within this long is reported as not restarted.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    restart_grace: Duration,
    /// `instance`: each worker keeps its task in the namespace named by its
    /// PLUM_INSTANCE_ID (the seed's 方案B), each watched as it is found.
    #[arg(long, value_enum, default_value_t = NamespaceBy::App)]
    namespace_by: NamespaceBy,
    /// Bearer token for the controller.
    #[arg(long, env = "PLUM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the bearer token from this file's first line (keeps it out of `ps`;
    /// overrides --token and PLUM_TOKEN).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    #[command(flatten)]
    ui: UiArgs,
}

/// The embedded controller's cluster clocks.
#[derive(Args, Clone)]
struct ClusterArgs {
    /// A node whose last heartbeat is older than this is Unhealthy and its
    /// instances move (a plumdash agent that dies is seen at once).
    #[arg(long, default_value = "3s", value_parser = positive_duration)]
    node_ttl: Duration,
    /// The failover pass runs at least this often (and whenever a node's TTL
    /// runs out).
    #[arg(long, default_value = "1s", value_parser = positive_duration)]
    failover_interval: Duration,
}

impl ClusterArgs {
    fn timing(&self) -> controller::ClusterTiming {
        controller::ClusterTiming {
            node_ttl: self.node_ttl,
            failover_interval: self.failover_interval,
            ..Default::default()
        }
    }
}

fn positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("must be longer than 0 (e.g. 500ms)".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(e.to_string()),
    }
}

#[derive(Args)]
struct ControllerArgs {
    /// Address to listen on. Anything but loopback needs a token.
    #[arg(long, default_value = controller::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// SQLite database file [default: $XDG_STATE_HOME/plumdash/plum-kv.db]
    #[arg(long)]
    db: Option<PathBuf>,
    /// Require `Authorization: Bearer TOKEN` on every request.
    #[arg(long, env = "PLUM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the bearer token from this file's first line (keeps it out of `ps`;
    /// overrides --token and PLUM_TOKEN).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    #[command(flatten)]
    cluster: ClusterArgs,
}

#[derive(Args)]
struct AgentArgs {
    /// This node's id (nodeId in the cluster API, WORKER_NODE_ID for its workers).
    #[arg(long, env = "AGENT_NODE_ID", default_value = "nodeA")]
    node: String,
    /// The controller that assigns instances to this node.
    #[arg(long, env = "CONTROLLER_BASE", default_value = DEFAULT_CONTROLLER_BASE)]
    controller: String,
    /// The ip sent in heartbeats.
    #[arg(long, env = "AGENT_IP", default_value = "127.0.0.1")]
    ip: String,
    /// Work folders go to DIR/<node>/<instanceId>/ [default: plumdash-agent in the temp folder]
    #[arg(long, env = "AGENT_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Time between SIGTERM and SIGKILL when an instance is stopped.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    stop_grace: Duration,
    /// Bearer token for the controller (also given to the workers as PLUM_TOKEN).
    #[arg(long, env = "PLUM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the bearer token from this file's first line (keeps it out of `ps`;
    /// overrides --token and PLUM_TOKEN).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
}

#[derive(Args)]
struct KvArgs {
    /// Controller base URL.
    #[arg(long, env = "CONTROLLER_BASE", default_value = DEFAULT_CONTROLLER_BASE, global = true)]
    controller: String,
    /// Namespace (the worker uses its app name).
    #[arg(
        short,
        long,
        env = "PLUM_APP_NAME",
        default_value = "kv-demo",
        global = true
    )]
    namespace: String,
    /// Print JSON instead of a human table.
    #[arg(long, global = true)]
    json: bool,
    /// Bearer token for the controller.
    #[arg(long, env = "PLUM_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,
    /// Read the bearer token from this file's first line (keeps it out of `ps`;
    /// overrides --token and PLUM_TOKEN).
    #[arg(long, value_name = "PATH", global = true)]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    command: KvCommand,
}

async fn up(args: UpArgs, tour: bool) -> Result<()> {
    if args.headless && (!args.ui.is_default() || args.kill_at.is_some() || tour) {
        anyhow::bail!(
            "--no-mouse, --recording, --keys, --layout, --kill-at and tour are for the \
             dashboard, not --headless"
        );
    }
    if args.step.is_some_and(|s| s.is_zero()) {
        anyhow::bail!("--step must be longer than 0 (e.g. 200ms)");
    }
    if args.events.is_some() && !args.headless {
        anyhow::bail!("--events is written by --headless runs; add --headless");
    }
    if tour && args.namespace_by == NamespaceBy::Instance {
        anyhow::bail!("the tour walks through one task: drop --namespace-by instance (or use up)");
    }
    let mut args = args;
    if args.failover && args.nodes == 1 {
        args.nodes = 2;
    }
    if args.nodes > 1 && args.controller.is_some() {
        anyhow::bail!(
            "--nodes and --failover run their own controller and agents: drop --controller"
        );
    }
    if args.namespace_by == NamespaceBy::Instance && args.nodes > 1 {
        anyhow::bail!(
            "--namespace-by instance and --nodes: a failover gives the work a new instance id, \
             so its own namespace would start empty; nodes need the shared namespace \
             (drop --namespace-by instance)"
        );
    }
    // Each own namespace is one more change stream held open (two descriptors
    // here, with the embedded controller): past this the fd limit is near.
    if args.namespace_by == NamespaceBy::Instance
        && usize::from(args.instances) > plumdash::session::MAX_FEEDS
    {
        anyhow::bail!(
            "--namespace-by instance watches one stream per instance: at most \
             {} instances (asked for {})",
            plumdash::session::MAX_FEEDS,
            args.instances
        );
    }
    // The bundled kv-demo keeps its task in the app's namespace: of N sharing
    // it, one runs and the others stand by (here; with nodes, a node does).
    let standby = args.instances > 1 && args.cmd.is_none() && args.namespace_by == NamespaceBy::App;
    if standby && args.nodes > 1 {
        anyhow::bail!(
            "--instances {n} with --nodes would run {n} kv-demo workers writing one namespace \
             ({app}) at once; with nodes the standby is the other node: run one \
             (or give each its own namespace: --namespace-by instance)",
            n = args.instances,
            app = args.app
        );
    }
    if args.kill_node && args.nodes == 1 {
        anyhow::bail!("--kill-node kills one of --nodes N (2 or more); add --nodes 2");
    }
    if args.kill_node && args.kill_every_cycle {
        anyhow::bail!(
            "a killed node comes back only when asked (K, ctl revive-node): --kill-node kills once \
             (drop --kill-every-cycle)"
        );
    }
    let token = controller::resolve_token(args.token.clone(), args.token_file.as_deref())?;
    // Read the keys file before starting anything, so a typo changes nothing.
    let options = args.ui.options()?;
    let config = SessionConfig {
        remote_controller: args.controller.clone(),
        listen: args.listen,
        db: args.db.clone().unwrap_or_else(controller::default_db_path),
        token,
        app: args.app.clone(),
        namespace_by: args.namespace_by,
        instances: args.instances as usize,
        standby,
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
        orphan_guard: Some(this_binary()?),
        cluster: args.cluster.timing(),
        ..SessionConfig::default()
    };
    let session = if args.nodes > 1 {
        let log_dir = match &args.log_dir {
            Some(dir) => dir.clone(),
            None => plumdash::logging::default_log_path()
                .parent()
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir),
        };
        let nodes = plumdash::agent::local::LocalNodesConfig {
            count: args.nodes.into(),
            program: this_binary()?,
            controller: String::new(),
            token: None,
            step: None,
            log_dir,
            data_dir: plumdash::agent::default_data_dir(),
            stop_grace: config.stop_grace,
        };
        Session::start_nodes(config, nodes).await?
    } else {
        Session::start(config).await?
    };
    let (status, status_rx) = control::status_channel();
    // An explicit socket must work; the default one is skipped (with a note)
    // when another plumdash already serves it.
    let (handle, read_only) = (session.handle(), args.ui.read_only);
    let control_server = match &args.control_socket {
        Some(path) => Some(control::serve(handle, status_rx, path, read_only).await?),
        None => {
            let path = control::default_socket_path(&args.app);
            match control::serve(handle, status_rx, &path, read_only).await {
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
        let lang = args.ui.lang.unwrap_or_else(Lang::from_env);
        return plumdash::commands::up::run_headless(
            session,
            args.events.as_deref(),
            Some(status),
            lang,
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
    plumdash::tui::runtime::run(session, options).await
}

async fn attach(args: AttachArgs) -> Result<()> {
    let token = controller::resolve_token(args.token, args.token_file.as_deref())?;
    let options = args.ui.options()?;
    let config = SessionConfig {
        remote_controller: Some(args.controller),
        token,
        app: args.app,
        namespace_by: args.namespace_by,
        instances: 0,
        worker_name: args.worker,
        restart_grace: args.restart_grace,
        ..SessionConfig::default()
    };
    let session = Session::attach(config).await?;
    plumdash::tui::runtime::run(session, options).await
}

/// The running plumdash, which also serves as the orphan guard.
fn this_binary() -> Result<PathBuf> {
    std::env::current_exe().context("finding the plumdash binary (for the orphan guard)")
}

fn main() -> ExitCode {
    // The orphan guard is plumdash itself, run bare: no runtime, no clap.
    if std::env::args_os().nth(1).as_deref()
        == Some(std::ffi::OsStr::new(
            plumdash::supervisor::orphan_guard::GUARD_SUBCOMMAND,
        ))
    {
        return ExitCode::from(plumdash::supervisor::orphan_guard::run_guard());
    }
    let matches = match Cli::command().try_get_matches() {
        Ok(matches) => matches,
        // `verify` is driven by scripts: a usage error is one line and exit 2.
        Err(err) if err.use_stderr() && std::env::args().nth(1).as_deref() == Some("verify") => {
            let text = err.to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            eprintln!("plumdash verify: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
        Err(err) => err.exit(),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(err) => err.exit(),
    };
    // `up`, `tour` and `verify` read their arguments from the subcommand's matches.
    let sub = matches.subcommand().map_or(&matches, |(_, m)| m);
    let cli = match with_scenario(cli, sub) {
        Ok(cli) => cli,
        Err((prefix, e)) => {
            eprintln!("{prefix}: {}", plumdash::text_safety::escape_controls(&e));
            return ExitCode::from(2);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            // Errors may quote text from outside: never raw on the terminal.
            let err = format!("{err:#}");
            eprintln!("plumdash: {}", plumdash::text_safety::escape_controls(&err));
            ExitCode::FAILURE
        }
    }
}

/// `plumdash completions` and `plumdash man`: generated from the clap
/// definitions, so they never drift from the real options.
fn generated(command: &Command) -> Result<Option<ExitCode>> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match command {
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut Cli::command(), "plumdash", &mut out);
        }
        Command::Man { dir: None } => {
            clap_mangen::Man::new(Cli::command())
                .render(&mut out)
                .context("writing the man page")?;
        }
        Command::Scenario(ScenarioSub::Example) => {
            out.write_all(plumdash::scenario::EXAMPLE.as_bytes())
                .context("writing to stdout")?;
        }
        Command::Scenario(ScenarioSub::Check { file }) => match Scenario::load(file) {
            Ok(_) => writeln!(out, "{}: ok", file.display()).context("writing to stdout")?,
            Err(e) => {
                eprintln!("plumdash: {}", plumdash::text_safety::escape_controls(&e));
                return Ok(Some(ExitCode::from(2)));
            }
        },
        Command::Man { dir: Some(dir) } => {
            clap_mangen::generate_to(Cli::command(), dir)
                .with_context(|| format!("writing man pages into {}", dir.display()))?;
            writeln!(out, "plumdash: man pages written to {}", dir.display())
                .context("writing to stdout")?;
        }
        _ => return Ok(None),
    }
    out.flush().context("writing to stdout")?;
    Ok(Some(ExitCode::SUCCESS))
}

/// Applies `--scenario` to `up`, `tour` or `verify`; a bad file is exit 2
/// before anything starts.
fn with_scenario(mut cli: Cli, matches: &ArgMatches) -> Result<Cli, (&'static str, String)> {
    let given = |id: &str| given(matches, id);
    match &mut cli.command {
        None => {
            if let Some(sc) =
                load_scenario(cli.up.scenario.as_deref()).map_err(|e| ("plumdash", e))?
            {
                cli.up.apply_scenario(&sc, &given);
            }
        }
        Some(Command::Up(args) | Command::Tour(args)) => {
            if let Some(sc) =
                load_scenario(args.scenario.as_deref()).map_err(|e| ("plumdash", e))?
            {
                args.apply_scenario(&sc, &given);
            }
        }
        Some(Command::Verify(args)) => {
            if let Some(sc) =
                load_scenario(args.scenario.as_deref()).map_err(|e| ("plumdash verify", e))?
            {
                sc.apply_to_verify(args, &given);
            }
        }
        _ => {}
    }
    Ok(cli)
}

fn run(cli: Cli) -> Result<ExitCode> {
    if let Some(command) = &cli.command {
        if let Some(code) = generated(command)? {
            return Ok(code);
        }
    }
    // Under the dashboard the terminal is the screen's: diagnostics go to a file.
    let dashboard = match &cli.command {
        None => !cli.up.headless,
        Some(Command::Up(args) | Command::Tour(args)) => !args.headless,
        Some(Command::Attach(_)) => true,
        Some(_) => false,
    };
    let file_log = if dashboard {
        let path = plumdash::logging::default_log_path();
        match plumdash::logging::to_file(&path) {
            Ok(log) => Some(log),
            Err(e) => {
                eprintln!("plumdash: {e:#}; diagnostics will not be kept");
                None
            }
        }
    } else {
        plumdash::logging::to_stderr();
        None
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let outcome = run_command(cli, &runtime);
    if let Some(log) = file_log.filter(|log| log.lines() > 0) {
        eprintln!(
            "plumdash: {} diagnostic line(s) in {}",
            log.lines(),
            log.path.display()
        );
    }
    outcome
}

fn run_command(cli: Cli, runtime: &tokio::runtime::Runtime) -> Result<ExitCode> {
    runtime.block_on(async move {
        match cli.command.unwrap_or(Command::Up(cli.up)) {
            Command::Up(args) => up(args, false).await?,
            Command::Tour(args) => up(args, true).await?,
            Command::Attach(args) => attach(args).await?,
            Command::Agent(args) => {
                let config = plumdash::agent::AgentConfig {
                    token: controller::resolve_token(args.token, args.token_file.as_deref())?,
                    ip: args.ip,
                    data_dir: args
                        .data_dir
                        .unwrap_or_else(plumdash::agent::default_data_dir),
                    stop_grace: args.stop_grace,
                    orphan_guard: Some(this_binary()?),
                    ..plumdash::agent::AgentConfig::new(args.node, args.controller)
                };
                plumdash::agent::run(config).await?;
            }
            Command::KvDemo(args) => {
                // Show as `kv-demo` in ps/top and to attach's name match, as the
                // separate binary does. (Renames only this thread: the main one.)
                let _ = nix::sys::prctl::set_name(c"kv-demo");
                return plumdash::demo::run(args).await;
            }
            Command::Verify(args) => return Ok(plumdash::verify::main(args).await),
            Command::Ctl(args) => return control::ctl_main(args).await,
            // Handled before the runtime starts.
            Command::Completions { .. } | Command::Man { .. } | Command::Scenario(_) => {}
            Command::Controller(args) => {
                let config = ControllerConfig {
                    listen: args.listen,
                    db: args.db.unwrap_or_else(controller::default_db_path),
                    token: controller::resolve_token(args.token, args.token_file.as_deref())?,
                    fallback_to_free_port: false,
                    cluster: args.cluster.timing(),
                };
                controller::run_foreground(config).await?;
            }
            Command::Kv(args) => {
                let token = controller::resolve_token(args.token, args.token_file.as_deref())?;
                let dm = DistributedMemory::with_options(
                    &args.namespace,
                    &args.controller,
                    ClientOptions {
                        token,
                        ..ClientOptions::default()
                    },
                )?;
                plumdash::commands::kv::run(&dm, args.command, args.json).await?;
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses like `main` does, scenario applied.
    fn parse_with_scenario(args: &[&str]) -> Result<Cli, String> {
        let matches = Cli::command().try_get_matches_from(args).unwrap();
        let cli = Cli::from_arg_matches(&matches).unwrap();
        let sub = matches.subcommand().map_or(&matches, |(_, m)| m);
        with_scenario(cli, sub).map_err(|(_, e)| e)
    }

    #[test]
    fn tour_and_bare_up_take_the_scenario_and_flags_win() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(
            &path,
            "[worker]\nstep = \"300ms\"\ninstances = 2\nnamespace_by = \"instance\"\n[restart]\npolicy = \"always\"\n\
             delay = \"0s\"\nmax_restarts = 4\nfailover = true\n[kills]\nat = 30\nevery_cycle = true\n",
        )
        .unwrap();
        let file = path.to_str().unwrap();
        let cli = parse_with_scenario(&["plumdash", "tour", "--scenario", file]).unwrap();
        let Some(Command::Tour(t)) = cli.command else {
            panic!("not tour")
        };
        assert_eq!(t.step, Some(Duration::from_millis(300)));
        assert_eq!(t.instances, 2);
        assert_eq!(t.namespace_by, NamespaceBy::Instance);
        assert_eq!(t.restart, RestartPolicy::Always);
        assert_eq!(t.restart_delay, Duration::ZERO);
        assert_eq!(t.max_restarts, Some(4));
        assert!(t.failover && t.kill_every_cycle);
        assert_eq!(t.kill_at, Some(30));
        // Untouched by the file: the defaults stay.
        assert_eq!(t.backoff_max, RestartConfig::default().backoff_max);
        let cli = parse_with_scenario(&[
            "plumdash",
            "--scenario",
            file,
            "--instances",
            "1",
            "--restart-delay",
            "2s",
            "--kill-at",
            "70",
        ])
        .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.up.instances, 1);
        assert_eq!(cli.up.restart_delay, Duration::from_secs(2));
        assert_eq!(cli.up.kill_at, Some(70));
        assert_eq!(cli.up.step, Some(Duration::from_millis(300)));
        let err = parse_with_scenario(&["plumdash", "up", "--scenario", "/no/such.toml"]);
        assert!(err.is_err_and(|e| e.contains("/no/such.toml")));
    }

    /// `--help` shows the defaults as text; they must be the policy's own.
    #[test]
    fn restart_option_defaults_are_the_policy_defaults() {
        let cli = Cli::try_parse_from(["plumdash"]).unwrap();
        let defaults = RestartConfig::default();
        assert_eq!(cli.up.restart_delay, defaults.delay);
        assert_eq!(cli.up.crash_loop_under, defaults.crash_loop_under);
        assert_eq!(cli.up.backoff_initial, defaults.backoff_initial);
        assert_eq!(cli.up.backoff_max, defaults.backoff_max);
        assert_eq!(cli.up.max_restarts, defaults.max_restarts);
    }
}
