//! `plumdash attach`: the dashboard over a running controller's namespace and
//! the local workers of an app (no spawning).

use super::auth::AuthArgs;
use super::ui::UiArgs;
use crate::kv::{NamespaceBy, DEFAULT_CONTROLLER_BASE};
use crate::session::{Session, SessionConfig};
use crate::signals::Termination;
use crate::tui::connecting::Waited;
use anyhow::Result;
use clap::Args;
use std::time::Duration;

#[derive(Args)]
pub struct AttachArgs {
    /// The controller to watch (plumdash's or an original Plum controller).
    #[arg(long, env = "CONTROLLER_BASE", default_value = DEFAULT_CONTROLLER_BASE, value_parser = super::controller_url)]
    controller: String,
    /// App name: the namespace to watch and the workers' PLUM_APP_NAME (a worker
    /// without the variable belongs to kv-demo, as the worker itself decides).
    #[arg(long, default_value = "kv-demo")]
    app: String,
    /// The worker program's process name; the shells and `tee` around it (as
    /// Plum's agent runs it) are shown as its wrappers, not as instances.
    #[arg(long, value_name = "NAME", default_value = crate::supervisor::WORKER_EXECUTABLE)]
    worker: String,
    /// A crashed worker nobody restarts within this long is reported as not restarted.
    #[arg(long, default_value = "10s", value_parser = super::duration)]
    restart_grace: Duration,
    /// `instance`: each worker keeps its task in the namespace named by its
    /// PLUM_INSTANCE_ID (the seed's 方案B), each watched as it is found.
    #[arg(long, value_enum, default_value_t = NamespaceBy::App)]
    namespace_by: NamespaceBy,
    #[command(flatten)]
    auth: AuthArgs,
    #[command(flatten)]
    reading: super::reading::ReadingArgs,
    #[command(flatten)]
    pub(super) ui: UiArgs,
}

pub async fn run(args: AttachArgs) -> Result<()> {
    if !crate::tui::terminal::on_a_terminal() {
        return Err(super::UsageError(format!(
            "{}: run `plumdash attach` in one (`plumdash kv watch` prints a namespace's changes as lines)",
            crate::tui::terminal::NEEDS_A_TERMINAL
        ))
        .into());
    }
    // First: a signal from here on ends us as `q` does, never by default.
    let signals = Termination::install_with_hangup()?;
    let token = args.auth.token()?;
    let options = args.ui.options()?;
    crate::memory::keep_little();
    let url = args.controller.clone();
    let config = SessionConfig {
        remote_controller: Some(args.controller),
        token,
        app: args.app,
        namespace_by: args.namespace_by,
        instances: 0,
        worker_name: args.worker,
        restart_grace: args.restart_grace,
        // Every instance the cluster API reports, on any node.
        remote_instances: true,
        keys: args.reading.key_map().map_err(super::UsageError)?,
        pattern: args.reading.pattern,
        ..SessionConfig::default()
    };
    // The controller may take long to answer, or never: the screen says so
    // from the first frame and `q` quits meanwhile.
    let attaching = Session::attach(config);
    let session = match crate::tui::connecting::wait(&url, options.lang, attaching).await? {
        Waited::Done(session) => session?,
        Waited::Quit => return Ok(()),
    };
    crate::tui::runtime::run(session, options, signals).await
}
