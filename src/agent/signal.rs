//! Signal orders from the controller (`event: signal` on the agent's stream,
//! `controller/signals.rs`): done to this node's instances, answered with what
//! was done — the pid signalled, or why nothing was.
//!
//! `worker` scope reaches the worker program itself: the supervised process
//! when it is the worker (the bundled kv-demo), else the process of that name
//! in the instance's tree (`sh → bash → kv-demo | tee` under a `start.sh`),
//! found by its `PLUM_INSTANCE_ID` and re-checked before the signal, as attach
//! does. `tree` scope is the instance's whole process group, through the
//! supervisor's owner task. Either way the supervisor sees the death and
//! restarts by its policy.
//!
//! Node orders (`event: node`) act on the whole node, as `K` and `F` do to
//! `up --nodes`' local agents: `kill` answers, then SIGKILLs every worker's
//! process group and the agent itself (a machine dying: its stream closes,
//! the controller moves its work); `freeze` SIGSTOPs the workers' groups and
//! stops the beats and syncs, keeping the connections open as a hung machine
//! does (the TTL finds it); `thaw` undoes that.

use super::Api;
use crate::cluster::model::{
    AgentNodeOrder, AgentSignal, NodeOrderKind, SignalResult, SignalScope,
};
use crate::supervisor::{
    parse_signal, InstanceAction, InstanceSnapshot, ProcessFinder, Supervisor, WORKER_EXECUTABLE,
};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Orders remembered, so one seen twice (two streams open at once) is done once.
const REMEMBERED: usize = 64;

/// An order from the agent's stream.
#[derive(Debug, Clone)]
pub(super) enum Order {
    Signal(AgentSignal),
    Node(AgentNodeOrder),
}

impl Order {
    fn request_id(&self) -> &str {
        match self {
            Order::Signal(o) => &o.request_id,
            Order::Node(o) => &o.request_id,
        }
    }
}

/// Does each order and posts the answer, until the stream task ends.
pub(super) async fn serve(
    api: Api,
    supervisor: Supervisor,
    frozen: Arc<AtomicBool>,
    mut orders: mpsc::UnboundedReceiver<Order>,
) {
    let mut seen: VecDeque<String> = VecDeque::new();
    while let Some(order) = orders.recv().await {
        let id = order.request_id().to_string();
        if seen.contains(&id) {
            continue;
        }
        if seen.len() == REMEMBERED {
            seen.pop_front();
        }
        seen.push_back(id.clone());
        let result = match &order {
            // A hung machine answers nothing but the thaw.
            Order::Signal(_) if frozen.load(Ordering::SeqCst) => {
                refused("the node is frozen (F again thaws it)".into())
            }
            Order::Signal(signal) => perform(&supervisor, signal).await,
            Order::Node(node) => node_order(&supervisor, &frozen, node.action),
        };
        tracing::info!("order {id}: {}", result.message);
        if let Err(e) = api.signal_result(&id, &result).await {
            tracing::warn!("cannot answer order {id}: {e:#}");
        }
        if matches!(&order, Order::Node(n) if n.action == NodeOrderKind::Kill) && result.ok {
            die(&supervisor);
        }
    }
}

/// Signals each worker's process group (each is the leader of its own).
fn signal_groups(supervisor: &Supervisor, signal: Signal) -> usize {
    supervisor
        .owned_pids()
        .into_iter()
        .filter_map(|pid| i32::try_from(pid).ok())
        .filter(|pid| kill(Pid::from_raw(-pid), signal).is_ok())
        .count()
}

fn node_order(supervisor: &Supervisor, frozen: &AtomicBool, action: NodeOrderKind) -> SignalResult {
    let me = std::process::id();
    let message = match action {
        NodeOrderKind::Kill => {
            let n = supervisor.owned_pids().len();
            format!("SIGKILL to agent pid {me} and its {n} worker group(s): the node is gone")
        }
        NodeOrderKind::Freeze => {
            if frozen.swap(true, Ordering::SeqCst) {
                return refused("the node is frozen already".into());
            }
            let n = signal_groups(supervisor, Signal::SIGSTOP);
            format!("frozen: {n} worker group(s) SIGSTOPped, no beats or syncs until thawed")
        }
        NodeOrderKind::Thaw => {
            if !frozen.load(Ordering::SeqCst) {
                return refused("the node is not frozen".into());
            }
            let n = signal_groups(supervisor, Signal::SIGCONT);
            frozen.store(false, Ordering::SeqCst);
            format!("thawed: {n} worker group(s) SIGCONTinued, beating again")
        }
    };
    SignalResult {
        ok: true,
        pid: Some(me),
        process: "plumdash agent".into(),
        message,
    }
}

/// A machine dying: every worker group, then the agent, by SIGKILL. An agent
/// that is the first process of its PID namespace (a container's, `up
/// --hosts`') is spared its own SIGKILL by the kernel: it ends at once
/// instead, without cleaning up, and the kernel kills what is left in the
/// namespace with it.
fn die(supervisor: &Supervisor) -> ! {
    signal_groups(supervisor, Signal::SIGKILL);
    let _ = kill(Pid::this(), Signal::SIGKILL);
    // SAFETY: `_exit` ends the process without running anything of it.
    unsafe { libc::_exit(128 + Signal::SIGKILL as i32) }
}

fn refused(message: String) -> SignalResult {
    SignalResult {
        ok: false,
        pid: None,
        process: String::new(),
        message,
    }
}

/// The program a snapshot runs (`sh` for `sh -c ./start.sh`).
fn program_name(snapshot: &InstanceSnapshot) -> String {
    let first = snapshot.command.split_whitespace().next().unwrap_or("");
    Path::new(first)
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
}

async fn perform(supervisor: &Supervisor, order: &AgentSignal) -> SignalResult {
    let id = &order.instance_id;
    let signal = match parse_signal(&order.order.signal) {
        Ok(signal) => signal,
        Err(e) => return refused(e.to_string()),
    };
    let name = signal.as_str();
    let Some(snapshot) = supervisor.instance(id) else {
        return refused(format!("instance {id} does not run on this node"));
    };
    let Some(pid) = snapshot.pid else {
        return refused(format!("{id} is not running ({})", snapshot.phase));
    };
    let worker = if order.order.worker.is_empty() {
        WORKER_EXECUTABLE
    } else {
        order.order.worker.as_str()
    };
    let program = program_name(&snapshot);
    let own = |message: String| match order.order.scope {
        SignalScope::Tree => format!("{message} (its process group)"),
        SignalScope::Worker => message,
    };
    if order.order.scope == SignalScope::Tree || program == worker {
        return match supervisor.send(id, InstanceAction::Signal(signal)).await {
            Ok(_) => SignalResult {
                ok: true,
                pid: Some(pid),
                process: program.clone(),
                message: own(format!("{name} sent to pid {pid} ({program})")),
            },
            Err(e) => refused(e.to_string()),
        };
    }
    // A worker under wrappers: found in the instance's tree by its variables.
    let (app, instance, wanted) = (snapshot.app_name.clone(), id.clone(), worker.to_string());
    let found = tokio::task::spawn_blocking(move || {
        ProcessFinder::new(app, wanted)
            .scan(&[])
            .into_iter()
            .find(|p| p.instance_id.as_deref() == Some(instance.as_str()))
    })
    .await
    .ok()
    .flatten();
    let Some(process) = found else {
        return refused(format!(
            "no {worker} process in {id}'s tree (pid {pid} runs {}); a whole-tree signal reaches \
             what runs there",
            snapshot.command
        ));
    };
    match process.signal(signal) {
        Ok(()) => {
            let under = process
                .wrapper_chain()
                .map_or(String::new(), |chain| format!(" under {chain}"));
            SignalResult {
                ok: true,
                pid: Some(process.pid),
                process: process.name.clone(),
                message: format!(
                    "{name} sent to pid {} ({}{under})",
                    process.pid, process.name
                ),
            }
        }
        Err(e) => refused(format!("{e:#}")),
    }
}
