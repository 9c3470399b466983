//! `plumdash verify --nodes N --kill-node | --freeze-node`: the node scenario.
//! Real agents (`up --nodes`), one instance deployed on nodeA; at each planned
//! progress point the node running it is SIGKILLed (a machine dying) or frozen
//! (a hung machine, thawed once its work has moved). Judged from the same
//! tracker the dashboard reads:
//!
//! - N1 the work moves: a migration off the lost node to another one;
//! - N2 the new instance resumes from the checkpoint (no step redone or
//!   skipped) and found the crash flag still set;
//! - N3 the task reaches 100% once;
//! - N4 no checkpoint goes backwards (after a thaw: the old writer is
//!   refused or stopped) and the replaced instance's end is no crash.

use super::config::DEFAULT_STEP;
pub use super::config::{NodeFault, NodeScenario};
use crate::agent::local::LocalNodesConfig;
use crate::driver::{Driver, Step};
use crate::hosts::LinkFault;
use crate::recovery::{Failover, NodeAction, TimelineKind, Tracker};
use crate::session::{NodeOp, Session, SessionConfig, WorkerExit};
use crate::text::{timeline, Lang};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// Watched after a thaw for a checkpoint going back.
const AFTER_THAW: Duration = Duration::from_secs(2);

/// How long `--netem` degrades the node's link (or until its work moved).
const DEGRADED_FOR: Duration = Duration::from_secs(8);

/// One node fault and what followed.
#[derive(Debug, Clone, Serialize, Default)]
pub struct NodeCycle {
    pub cycle: u32,
    pub planned_pct: i64,
    pub node: String,
    pub instance: String,
    pub at_pct: Option<i64>,
    pub counter_at_fault: Option<i64>,
    pub to_node: Option<String>,
    pub new_instance: Option<String>,
    pub resumed_from: Option<i64>,
    pub steps_lost: Option<i64>,
    pub flag_after_fault: Option<bool>,
    pub to_detected_ms: Option<u64>,
    pub to_running_ms: Option<u64>,
    pub to_checkpoint_ms: Option<u64>,
    /// Freeze: writes the controller refused from the thawed instance.
    pub fenced_writes: Option<u64>,
    /// Freeze: the thawed instance ended (stopped by its agent or fenced).
    pub old_writer_ended: Option<bool>,
    /// A fault on a link: what was done to it (`partitioned`, `loss 30%` …).
    pub link: Option<String>,
    /// A fault on a link: from the heal to the old instance's end, as seen here.
    pub heal_to_stopped_ms: Option<u64>,
    /// Checkpoints seen go back during this cycle: two writers on the namespace.
    pub went_back: usize,
    /// The crash flag deleted after the new instance's first checkpoint and
    /// before the task completed: the new instance never does that, so a
    /// second writer did (the original's stop handler deletes it).
    pub flag_deleted_midtask: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeInvariant {
    pub id: &'static str,
    pub name: &'static str,
    /// `held`, `violated` or `not_checked`.
    pub status: &'static str,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub ok: bool,
    pub exit_code: u8,
    pub scenario: &'static str,
    pub fault: NodeFault,
    pub nodes: u8,
    pub app: String,
    pub step_ms: Option<u64>,
    pub ended_early: Option<String>,
    pub cycles: Vec<NodeCycle>,
    pub completions: u32,
    pub invariants: Vec<NodeInvariant>,
}

impl NodeReport {
    pub fn render(&self) -> String {
        let mut out = format!(
            "verify (nodes): {} × {:?} on {} nodes, app {}\n",
            self.cycles.len(),
            self.fault,
            self.nodes,
            self.app
        );
        let secs = |ms: Option<u64>| ms.map_or("?".into(), |ms| format!("{:.2}s", ms as f64 / 1e3));
        for c in &self.cycles {
            if self.fault == NodeFault::Netem && c.to_node.is_none() {
                out.push_str(&format!(
                    "  #{} {} at {}% on {}: the node was never found lost, nothing moved\n",
                    c.cycle,
                    self.fault.word(),
                    c.at_pct.map_or("?".into(), |p| p.to_string()),
                    c.node,
                ));
                continue;
            }
            out.push_str(&format!(
                "  #{} {} at {}% on {} → {} as {}: resumed from {}%, {} steps lost; detected {}, running {}, checkpoint {}\n",
                c.cycle,
                self.fault.word(),
                c.at_pct.map_or("?".into(), |p| p.to_string()),
                c.node,
                c.to_node.as_deref().unwrap_or("?"),
                c.new_instance.as_deref().unwrap_or("?"),
                c.resumed_from.map_or("?".into(), |p| p.to_string()),
                c.steps_lost.map_or("?".into(), |p| p.to_string()),
                secs(c.to_detected_ms),
                secs(c.to_running_ms),
                secs(c.to_checkpoint_ms),
            ));
            if let Some(link) = &c.link {
                out.push_str(&format!(
                    "     link {link}; healed → old instance stopped {}; {} write(s) fenced; \
                     {} checkpoint(s) went back, crash flag deleted mid-task {} time(s)\n",
                    match (c.heal_to_stopped_ms, c.old_writer_ended) {
                        (None, Some(true)) => "before the heal".to_string(),
                        (ms, _) => secs(ms),
                    },
                    c.fenced_writes.map_or("?".into(), |n| n.to_string()),
                    c.went_back,
                    c.flag_deleted_midtask,
                ));
            }
        }
        for i in &self.invariants {
            out.push_str(&format!(
                "  {} {:<11} {}: {}\n",
                i.id, i.status, i.name, i.detail
            ));
        }
        if let Some(why) = &self.ended_early {
            out.push_str(&format!("  ended early: {why}\n"));
        }
        // The same verdict line as a single worker's run, for scripts.
        let violated: Vec<&str> = self
            .invariants
            .iter()
            .filter(|i| i.status == "violated")
            .map(|i| i.id)
            .collect();
        out.push_str(&if self.ok {
            "verify: PASS — every node invariant held\n".to_string()
        } else if violated.is_empty() {
            "verify: FAIL — the run did not complete its plan\n".to_string()
        } else {
            format!(
                "verify: FAIL — node invariant {} violated\n",
                violated.join(", ")
            )
        });
        out
    }
}

/// Progress points for `cycles` faults within one task (each fault needs the
/// task still ahead of it): one at `at` or 40%, else spread over 20–80%.
pub fn node_points(cycles: u32, at: Option<u8>) -> Vec<i64> {
    match (cycles, at) {
        (1, Some(at)) => vec![i64::from(at)],
        (1, None) => vec![40],
        (n, _) => (0..n)
            .map(|i| 20 + (60 * i64::from(i) / i64::from(n - 1)) / 10 * 10)
            .collect(),
    }
}

struct NodeRunner {
    /// The session of real agents, and the board its facts are judged into.
    driver: Driver,
    patience: Duration,
    json: bool,
    /// The worker's step.
    step: Duration,
    /// When the crash flag was seen deleted, and when a task first completed.
    flag_cleared: Vec<u64>,
    completed_at: Option<u64>,
    /// Every checkpoint counter seen go down, as (from, to).
    went_back: Vec<(i64, i64)>,
    /// Replaced instances whose end was judged a crash.
    crashed_replaced: Vec<String>,
}

impl super::reading::FactReader for NodeRunner {
    fn driver(&mut self) -> &mut Driver {
        &mut self.driver
    }

    fn on_step(&mut self, step: Step) {
        NodeRunner::on_step(self, step);
    }
}

impl NodeRunner {
    fn live(&self, text: &str) {
        super::reading::live(self.json, text);
    }

    /// The tracker of the one namespace every instance works in.
    fn tracker(&self) -> &Tracker {
        self.driver.board().first()
    }

    /// What a fact did (the driver applied it): live lines, and what N4 judges.
    fn on_step(&mut self, step: Step) {
        for ev in &step.events {
            self.live(&format!(
                "{}  {}",
                crate::clock::Zone::Local.hms_millis(ev.at),
                timeline::event(ev, Lang::En)
            ));
            match &ev.kind {
                TimelineKind::WentBack { from, to, .. } => self.went_back.push((*from, *to)),
                // Both workers clear it at 100% when they complete.
                TimelineKind::FlagCleared if self.progress() < 100 => self.flag_cleared.push(ev.at),
                TimelineKind::Completed => {
                    self.completed_at.get_or_insert(ev.at);
                }
                TimelineKind::Exited { crashed: true, .. } => {
                    if let Some(id) = &ev.instance {
                        if self.tracker().nodes().replaced_by(id).is_some() {
                            self.crashed_replaced.push(id.clone());
                        }
                    }
                }
                _ => {}
            }
        }
    }

    async fn wait_until(
        &mut self,
        patience: Duration,
        pred: impl Fn(&NodeRunner) -> bool,
    ) -> Result<bool, String> {
        super::reading::wait_until(self, patience, pred).await
    }

    /// Waits until `node` beats again (healthy); false if it did not in time.
    async fn wait_healthy(&mut self, node: &str, patience: Duration) -> Result<bool, String> {
        self.wait_until(patience, |r| {
            r.tracker()
                .nodes()
                .node(node)
                .is_some_and(|n| n.health == crate::recovery::NodeHealth::Healthy)
        })
        .await
    }

    /// The instance alive and checkpointing, and its node.
    fn running(&self) -> Option<(String, String)> {
        let inst = self
            .tracker()
            .instances()
            .find(|i| i.pid.is_some() && i.first_checkpoint.is_some())?;
        let node = self.tracker().nodes().node_of(&inst.id)?;
        Some((inst.id.clone(), node.to_string()))
    }

    fn progress(&self) -> i64 {
        self.tracker().task().progress.unwrap_or(0)
    }

    fn act(&mut self, node: &str, op: NodeOp) -> Result<NodeAction, String> {
        let action = self
            .driver
            .session()
            .handle()
            .node_action(node, op)
            .map_err(|e| format!("{e:#}"))?;
        self.live(&format!("verify: {node} {}", action.done()));
        Ok(action)
    }

    /// The failover of `instance`, once its new instance has checkpointed.
    fn recovered(&self, instance: &str) -> Option<Failover> {
        self.tracker()
            .nodes()
            .replaced_by(instance)
            .filter(|f| f.checkpoint_at.is_some())
            .cloned()
    }

    /// The figures of `c.instance`'s failover, once its new instance checkpointed.
    fn fill_failover(&self, c: &mut NodeCycle) {
        let Some(f) = self.recovered(&c.instance) else {
            return;
        };
        let cycle = self
            .tracker()
            .cycles()
            .iter()
            .rev()
            .find(|cy| cy.killed_instance == c.instance)
            .cloned();
        c.to_node = Some(f.to_node.clone());
        c.new_instance = Some(f.new_instance.clone());
        c.steps_lost = f.steps_lost;
        c.to_detected_ms = f.to_detected_ms();
        c.to_running_ms = f.to_running_ms();
        c.to_checkpoint_ms = f.to_checkpoint_ms();
        c.resumed_from = cycle.as_ref().and_then(|cy| cy.resumed_from);
        c.flag_after_fault = cycle.map(|cy| cy.flag_after_kill);
    }

    async fn cycle(
        &mut self,
        n: u32,
        point: i64,
        scenario: &NodeScenario,
    ) -> Result<NodeCycle, String> {
        let fault = scenario.fault;
        let went_back_before = self.went_back.len();
        let patience = self.patience;
        let reached = self
            .wait_until(patience, |r| {
                r.running().is_some() && (point..100).contains(&r.progress())
            })
            .await?;
        let Some((instance, node)) = self.running().filter(|_| reached) else {
            return Err(format!("the worker never reached {point}% on a node"));
        };
        let mut c = NodeCycle {
            cycle: n,
            planned_pct: point,
            node: node.clone(),
            instance: instance.clone(),
            at_pct: Some(self.progress()),
            counter_at_fault: self.tracker().last_checkpoint(),
            ..NodeCycle::default()
        };
        let link = match (fault, scenario.netem) {
            (NodeFault::Partition, _) => Some(LinkFault::Partition),
            (NodeFault::PartitionOneway, _) if n % 2 == 1 => Some(LinkFault::CutOutgoing),
            (NodeFault::PartitionOneway, _) => Some(LinkFault::CutIncoming),
            (NodeFault::Netem, Some(netem)) => Some(LinkFault::Degraded(netem)),
            _ => None,
        };
        let op = match (fault, link) {
            (NodeFault::Kill, _) => NodeOp::Kill,
            (NodeFault::Freeze, _) => NodeOp::ToggleFreeze,
            (_, Some(link)) => NodeOp::Cut(link),
            (_, None) => return Err("--netem without its spec".into()),
        };
        c.link = link.map(|l| l.describe());
        self.act(&node, op)?;
        // A freeze or a cut link is found by the TTL (3 s) before the move
        // starts; a degraded link may never lose the node: held for as long.
        let wait = match fault {
            NodeFault::Netem => DEGRADED_FOR,
            _ => patience + Duration::from_secs(5),
        };
        let moved = self
            .wait_until(wait, |r| r.recovered(&instance).is_some())
            .await?;
        self.fill_failover(&mut c);
        if fault == NodeFault::Kill && moved {
            // The machine comes back, a standby for the next fault.
            self.act(&node, NodeOp::Revive)?;
            let back = self.wait_healthy(&node, patience).await?;
            if !back {
                return Err(format!(
                    "{node} did not beat again after its agent restarted"
                ));
            }
        }
        if fault == NodeFault::Freeze {
            self.act(&node, NodeOp::ToggleFreeze)?;
            let ended = self
                .wait_until(patience, |r| {
                    r.tracker()
                        .instance(&instance)
                        .is_some_and(|i| i.pid.is_none())
                })
                .await?;
            c.old_writer_ended = Some(ended);
            // Any write it still makes would show now.
            self.wait_until(AFTER_THAW, |_| false).await?;
            c.fenced_writes = Some(self.tracker().nodes().fenced_writes(&instance));
        }
        if link.is_some() {
            if moved {
                // The cut-off worker is left behind a while (its work a few
                // steps further elsewhere): a worker that does not fence
                // then writes an older step over a newer one on heal.
                self.wait_until(self.step * 3, |_| false).await?;
            }
            // Fenced through a lossy link, it may have ended already.
            let ended_before = self
                .tracker()
                .instance(&instance)
                .is_some_and(|i| i.pid.is_none());
            self.act(&node, NodeOp::Heal)?;
            let healed = std::time::Instant::now();
            let moved_off = self.tracker().nodes().replaced_by(&instance).is_some();
            // The cut-off worker runs on until its agent hears the controller
            // again (or the fence stops it); unmoved work just carries on.
            let ended = !moved_off
                || self
                    .wait_until(patience, |r| {
                        r.tracker()
                            .instance(&instance)
                            .is_some_and(|i| i.pid.is_none())
                    })
                    .await?;
            if moved_off {
                c.old_writer_ended = Some(ended);
                c.heal_to_stopped_ms =
                    (ended && !ended_before).then(|| crate::clock::millis(healed.elapsed()));
            }
            // Any late write it still makes would show now.
            self.wait_until(AFTER_THAW, |_| false).await?;
            c.fenced_writes = Some(self.tracker().nodes().fenced_writes(&instance));
            let back = self.wait_healthy(&node, patience).await?;
            if !back {
                return Err(format!("{node} did not beat again after its link healed"));
            }
        }
        // A degraded link's node may be found lost only now.
        self.fill_failover(&mut c);
        c.went_back = self.went_back.len() - went_back_before;
        if let Some(from) = self.recovered(&instance).and_then(|f| f.checkpoint_at) {
            let done = self.completed_at.unwrap_or(u64::MAX);
            c.flag_deleted_midtask = self
                .flag_cleared
                .iter()
                .filter(|at| **at > from && **at < done)
                .count();
        }
        if !moved && fault != NodeFault::Netem {
            return Err(format!("{instance}'s work did not move off {node}"));
        }
        Ok(c)
    }

    async fn finish_task(&mut self, step: Duration) -> Result<(), String> {
        let done = self
            .wait_until(self.patience + step * 12, |r| r.tracker().completions() > 0)
            .await?;
        if !done {
            return Err("the task did not reach 100%".into());
        }
        // A second writer would complete it again within a few steps.
        self.wait_until(step * 3, |_| false).await?;
        Ok(())
    }
}

/// Runs the node scenario. `Err` is a setup error (nothing verified).
pub async fn run(
    scenario: &NodeScenario,
    config: &super::VerifyConfig,
    program: PathBuf,
) -> Result<NodeReport> {
    // Refused before anything starts, not at the first fault.
    if scenario.netem.is_some_and(|n| n.delay.is_some()) {
        crate::hosts::TestHosts::check_delay()?;
    }
    let scratch = super::setup::Scratch::new()?;
    let step = config.step.unwrap_or(DEFAULT_STEP);
    let session_config = SessionConfig {
        listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        db: scratch.dir.join("kv.db"),
        token: config.token.clone(),
        app: config.app.clone(),
        instances: 1,
        cmd: config.cmd.clone(),
        step: config.step,
        orphan_guard: Some(program.clone()),
        ..SessionConfig::default()
    };
    let nodes = LocalNodesConfig {
        count: scenario.nodes.into(),
        program,
        controller: String::new(),
        token: None,
        worker_env: Vec::new(),
        log_dir: scratch.dir.join("logs"),
        data_dir: scratch.dir.join("agents"),
        stop_grace: session_config.stop_grace,
        on_hosts: scenario.fault.needs_hosts(),
    };
    let session = Session::start_nodes(session_config, nodes)
        .await
        .context("starting the controller and the node agents")?;
    let mut runner = NodeRunner {
        driver: Driver::new(session),
        patience: config.patience,
        step,
        flag_cleared: Vec::new(),
        completed_at: None,
        json: config.live_to_stderr,
        went_back: Vec::new(),
        crashed_replaced: Vec::new(),
    };
    let at = match config.schedule {
        super::schedule::KillSchedule::At(pct) => Some(pct),
        _ => None,
    };
    let points = node_points(config.cycles, at);
    runner.live(&format!(
        "verify: {} node fault(s) ({}) at {:?}% on {} nodes (app {})",
        points.len(),
        scenario.fault.word(),
        points,
        scenario.nodes,
        config.app
    ));
    let mut cycles = Vec::new();
    let mut early = None;
    for (i, point) in points.iter().enumerate() {
        match runner.cycle(i as u32 + 1, *point, scenario).await {
            Ok(c) => cycles.push(c),
            Err(why) => {
                early = Some(why);
                break;
            }
        }
    }
    if early.is_none() {
        early = runner.finish_task(step).await.err();
    }
    let completions = runner.tracker().completions();
    let invariants = judge(&runner, &cycles, completions, scenario.fault, &early);
    let (session, _) = runner.driver.into_parts();
    let _ = session.shutdown(WorkerExit::StopGracefully).await;
    drop(scratch);
    let ok = early.is_none() && invariants.iter().all(|i| i.status != "violated");
    Ok(NodeReport {
        ok,
        exit_code: if ok { 0 } else { 1 },
        scenario: "nodes",
        fault: scenario.fault,
        nodes: scenario.nodes,
        app: config.app.clone(),
        step_ms: config.step.map(crate::clock::millis),
        ended_early: early,
        cycles,
        completions,
        invariants,
    })
}

/// N1 and N2: each cycle's move, and the new instance's resume.
fn judge_cycles(cycles: &[NodeCycle], fault: NodeFault) -> Vec<NodeInvariant> {
    let verdict = |held: bool| if held { "held" } else { "violated" };
    let mut out = Vec::new();
    // A degraded link need not lose its node: a cycle that stayed put is
    // then not judged (neither a move nor a resume happened to judge).
    let judged: Vec<&NodeCycle> = cycles
        .iter()
        .filter(|c| !(fault == NodeFault::Netem && c.to_node.is_none()))
        .collect();
    let stayed = cycles.len() - judged.len();
    let not_judged = |what: &str| {
        format!(
            "not checked: the degraded link never lost its node in {stayed} of {} cycle(s), so {what}",
            cycles.len()
        )
    };
    let moved = |c: &&NodeCycle| c.to_node.as_deref().is_some_and(|to| to != c.node);
    let not_moved: Vec<String> = judged
        .iter()
        .filter(|c| !moved(c))
        .map(|c| format!("#{}", c.cycle))
        .collect();
    out.push(NodeInvariant {
        id: "N1",
        name: "the work moves to another node",
        status: if judged.is_empty() {
            "not_checked"
        } else {
            verdict(not_moved.is_empty())
        },
        detail: if judged.is_empty() {
            not_judged("nothing moved")
        } else if not_moved.is_empty() {
            let of = judged.iter().filter(|c| moved(c)).count();
            format!("{of} of {} cycles moved", cycles.len())
        } else {
            format!("not moved: {}", not_moved.join(", "))
        },
    });
    let bad: Vec<String> = judged
        .iter()
        .filter(|c| c.steps_lost != Some(0) || c.flag_after_fault != Some(true))
        .map(|c| {
            format!(
                "#{}: steps lost {:?}, flag after {:?}",
                c.cycle, c.steps_lost, c.flag_after_fault
            )
        })
        .collect();
    out.push(NodeInvariant {
        id: "N2",
        name: "the new instance resumes from the checkpoint (flag still set)",
        status: if judged.is_empty() {
            "not_checked"
        } else {
            verdict(bad.is_empty())
        },
        detail: if judged.is_empty() {
            not_judged("no new instance resumed")
        } else if bad.is_empty() {
            "every new instance continued from the last checkpoint, 0 steps lost".into()
        } else {
            bad.join("; ")
        },
    });
    out
}

fn judge(
    runner: &NodeRunner,
    cycles: &[NodeCycle],
    completions: u32,
    fault: NodeFault,
    early: &Option<String>,
) -> Vec<NodeInvariant> {
    let verdict = |held: bool| if held { "held" } else { "violated" };
    let mut out = judge_cycles(cycles, fault);
    out.push(NodeInvariant {
        id: "N3",
        name: "the task reaches 100% once",
        status: if early.is_some() && completions == 0 {
            "not_checked"
        } else {
            verdict(completions == 1)
        },
        detail: format!("{completions} completion(s)"),
    });
    let mut problems: Vec<String> = runner
        .went_back
        .iter()
        .map(|(a, b)| format!("checkpoint went back {a} → {b} (two writers)"))
        .collect();
    problems.extend(
        runner
            .crashed_replaced
            .iter()
            .map(|id| format!("{id}'s end after its work moved was counted a crash")),
    );
    if fault == NodeFault::Freeze {
        problems.extend(
            cycles
                .iter()
                .filter(|c| c.old_writer_ended != Some(true))
                .map(|c| format!("#{}: {} still runs after the thaw", c.cycle, c.instance)),
        );
    }
    if fault.needs_hosts() {
        problems.extend(
            cycles
                .iter()
                .filter(|c| c.flag_deleted_midtask > 0)
                .map(|c| {
                    format!(
                        "#{}: the crash flag was deleted mid-task after the move (two writers)",
                        c.cycle
                    )
                }),
        );
        problems.extend(
            cycles
                .iter()
                .filter(|c| c.old_writer_ended == Some(false))
                .map(|c| format!("#{}: {} still runs after the heal", c.cycle, c.instance)),
        );
    }
    out.push(NodeInvariant {
        id: "N4",
        name: "no checkpoint goes backwards; the replaced writer stops",
        status: verdict(problems.is_empty()),
        detail: if problems.is_empty() {
            "the counter only climbed".into()
        } else {
            problems.join("; ")
        },
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_rise_within_one_task() {
        assert_eq!(node_points(1, None), [40]);
        assert_eq!(node_points(1, Some(70)), [70]);
        assert_eq!(node_points(2, None), [20, 80]);
        assert_eq!(node_points(3, None), [20, 50, 80]);
    }

    #[test]
    fn a_cut_link_reports_the_heal_and_what_the_old_writer_did() {
        let cycle = |heal: Option<u64>, ended: bool| NodeCycle {
            cycle: 1,
            node: "nodeA".into(),
            to_node: Some("nodeB".into()),
            link: Some("partitioned".into()),
            heal_to_stopped_ms: heal,
            old_writer_ended: Some(ended),
            fenced_writes: Some(1),
            went_back: 0,
            flag_deleted_midtask: 1,
            ..NodeCycle::default()
        };
        let report = |c: NodeCycle| NodeReport {
            ok: false,
            exit_code: 1,
            scenario: "nodes",
            fault: NodeFault::Partition,
            nodes: 2,
            app: "kv-demo".into(),
            step_ms: Some(300),
            ended_early: None,
            cycles: vec![c],
            completions: 1,
            invariants: vec![],
        };
        let text = report(cycle(Some(670), true)).render();
        assert!(
            text.contains("#1 partition at ?% on nodeA → nodeB"),
            "{text}"
        );
        assert!(
            text.contains(
                "link partitioned; healed → old instance stopped 0.67s; 1 write(s) fenced; \
                 0 checkpoint(s) went back, crash flag deleted mid-task 1 time(s)"
            ),
            "{text}"
        );
        // Fenced through a lossy link before the heal: said so, no figure.
        let text = report(cycle(None, true)).render();
        assert!(
            text.contains("old instance stopped before the heal"),
            "{text}"
        );
    }

    /// A lossy link that never lost its node: nothing moved, so neither a
    /// move (N1) nor a resume (N2) is claimed; both are not checked.
    #[test]
    fn a_degraded_link_that_moved_nothing_claims_no_move() {
        let stayed = NodeCycle {
            cycle: 1,
            node: "nodeA".into(),
            at_pct: Some(40),
            ..NodeCycle::default()
        };
        let report = NodeReport {
            ok: true,
            exit_code: 0,
            scenario: "nodes",
            fault: NodeFault::Netem,
            nodes: 2,
            app: "kv-demo".into(),
            step_ms: Some(300),
            ended_early: None,
            cycles: vec![stayed.clone()],
            completions: 1,
            invariants: vec![],
        };
        let text = report.render();
        assert!(
            text.contains(
                "#1 degraded link at 40% on nodeA: the node was never found lost, nothing moved"
            ),
            "{text}"
        );
        let verdicts = judge_cycles(&[stayed], NodeFault::Netem);
        assert_eq!(verdicts[0].status, "not_checked");
        assert!(
            verdicts[0].detail.contains("never lost its node in 1 of 1"),
            "{:?}",
            verdicts[0]
        );
        assert_eq!(verdicts[1].status, "not_checked");
        assert!(
            verdicts[1].detail.contains("no new instance resumed"),
            "{:?}",
            verdicts[1]
        );
    }

    #[test]
    fn the_report_reads_as_a_table_with_a_verdict() {
        let report = NodeReport {
            ok: true,
            exit_code: 0,
            scenario: "nodes",
            fault: NodeFault::Kill,
            nodes: 2,
            app: "kv-demo".into(),
            step_ms: Some(200),
            ended_early: None,
            cycles: vec![NodeCycle {
                cycle: 1,
                node: "nodeA".into(),
                to_node: Some("nodeB".into()),
                at_pct: Some(40),
                resumed_from: Some(40),
                steps_lost: Some(0),
                to_running_ms: Some(310),
                ..NodeCycle::default()
            }],
            completions: 1,
            invariants: vec![],
        };
        let text = report.render();
        assert!(text.contains("#1 kill at 40% on nodeA → nodeB"), "{text}");
        assert!(text.contains("running 0.31s"), "{text}");
        assert!(
            text.ends_with("verify: PASS — every node invariant held\n"),
            "{text}"
        );
    }
}
