//! How a `--scenario` file fills `up`'s, `tour`'s and `verify`'s arguments:
//! a setting in the file is used where the command line (or the environment)
//! did not give that argument. Which argument is named by the field itself
//! (`overlay!(args.app, …)`): clap's id is the field's name, so a typo does not
//! compile instead of silently never matching.

use super::up::UpArgs;
use super::verify::VerifyArgs;
use crate::scenario::Scenario;
use clap::parser::ValueSource;
use clap::ArgMatches;

/// Did the user set argument `id` (on the command line or in the environment)?
fn given(matches: &ArgMatches, id: &str) -> bool {
    matches
        .value_source(id)
        .is_some_and(|s| s != ValueSource::DefaultValue)
}

/// `overlay!(matches, args.field, from_file)`: the file's value unless the
/// user gave `--field`.
macro_rules! overlay {
    ($matches:expr, $args:ident . $field:ident, $from_file:expr) => {
        if !given($matches, stringify!($field)) {
            if let Some(v) = &$from_file {
                $args.$field = v.clone();
            }
        }
    };
}

/// Options without a default: the file's value fills them when left unset.
fn fill<T: Clone>(arg: &mut Option<T>, from_file: &Option<T>) {
    if arg.is_none() {
        arg.clone_from(from_file);
    }
}

/// Puts the file's settings into `up`'s (or `tour`'s) arguments.
pub fn apply_to_up(sc: &Scenario, args: &mut UpArgs, matches: &ArgMatches) {
    let (w, r) = (&sc.worker, &sc.restart);
    fill(&mut args.cmd, &w.cmd);
    fill(&mut args.step, &w.step);
    overlay!(matches, args.instances, w.instances);
    overlay!(matches, args.app, w.app);
    overlay!(matches, args.nodes, w.nodes);
    overlay!(matches, args.namespace_by, w.namespace_by);
    overlay!(matches, args.restart, r.policy);
    overlay!(matches, args.restart_delay, r.delay);
    overlay!(matches, args.crash_loop_under, r.crash_loop_under);
    overlay!(matches, args.backoff_initial, r.backoff_initial);
    overlay!(matches, args.backoff_max, r.backoff_max);
    fill(&mut args.max_restarts, &r.max_restarts);
    fill(&mut args.reading.pattern, &w.pattern);
    args.unsafe_worker |= w.unsafe_worker.unwrap_or(false);
    // The file's key names first: a `--key` for the same role wins.
    args.reading.key = sc
        .key_mappings()
        .into_iter()
        .chain(args.reading.key.drain(..))
        .collect();
    // The command line's --fresh wins over the file's keep_state.
    args.keep_state |= w.keep_state.unwrap_or(false) && !args.fresh;
    args.failover |= r.failover.unwrap_or(false);
    // The kills are the dashboard's (`--kill-at`); headless runs have none.
    if args.headless && sc.kills.at.is_some() {
        eprintln!(
            "plumdash: the scenario's [kills] are for the dashboard and verify; \
             --headless runs without them"
        );
    }
    if args.kill_at.is_none() && !args.headless {
        args.kill_at = sc.kills.at;
        args.kill_every_cycle |= sc.kills.every_cycle.unwrap_or(false);
        args.kill_node |= sc.kills.node.unwrap_or(false);
    }
}

/// Puts the file's settings into `verify`'s arguments.
pub fn apply_to_verify(sc: &Scenario, args: &mut VerifyArgs, matches: &ArgMatches) {
    fill(&mut args.cmd, &sc.worker.cmd);
    fill(&mut args.step, &sc.worker.step);
    overlay!(matches, args.app, sc.worker.app);
    overlay!(matches, args.restart_delay, sc.restart.delay);
    fill(&mut args.cycles, &sc.kills.cycles);
    // The schedule is one choice: a flag for it replaces the file's.
    if args.kill_at.is_none() && !args.kill_random {
        args.kill_at = sc.kills.at;
        args.kill_random = sc.kills.random.unwrap_or(false) && sc.kills.at.is_none();
        if args.kill_random {
            fill(&mut args.seed, &sc.kills.seed);
        }
    }
    fill(&mut args.outage, &sc.outage.duration);
    fill(&mut args.reading.pattern, &sc.worker.pattern);
    args.unsafe_worker |= sc.worker.unsafe_worker.unwrap_or(false);
    args.reading.key = sc
        .key_mappings()
        .into_iter()
        .chain(args.reading.key.drain(..))
        .collect();
}
