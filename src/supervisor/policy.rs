//! When a worker that ended is started again, and how long we wait first.

use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::ValueEnum;
use serde::Serialize;

use super::exit::ExitKind;
use crate::backoff::Backoff;
use crate::clock;

/// Which exits lead to an automatic restart. The names (`--restart`, the
/// scenario's `restart.policy`) come from clap's `ValueEnum`, so `--help` lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restart after crashes (signal deaths, non-zero exits) only.
    #[default]
    #[value(alias = "on_failure", alias = "onfailure")]
    OnFailure,
    /// Restart after crashes and after the worker completes on its own.
    Always,
    /// Never restart automatically.
    #[value(alias = "no")]
    Never,
}

impl FromStr for RestartPolicy {
    type Err = anyhow::Error;

    /// The same names as on the command line, any case (for scenario files).
    fn from_str(text: &str) -> anyhow::Result<Self> {
        match <Self as ValueEnum>::from_str(text.trim(), true) {
            Ok(policy) => Ok(policy),
            Err(_) => bail!(
                "unknown restart policy {:?}: expected on-failure, always or never",
                text.trim().to_ascii_lowercase()
            ),
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_possible_value() {
            Some(value) => f.write_str(value.get_name()),
            None => Ok(()),
        }
    }
}

impl RestartPolicy {
    /// Whether this exit, not caused by a stop we asked for, is restarted.
    pub fn restarts_after(self, exit: ExitKind) -> bool {
        match exit {
            ExitKind::Stopped => false,
            ExitKind::Completed => self == RestartPolicy::Always,
            ExitKind::KilledBySignal(_) | ExitKind::ExitCode(_) | ExitKind::Disappeared => {
                self != RestartPolicy::Never
            }
        }
    }
}

/// Restart timing and crash-loop limits. Tests shrink these.
///
/// The crash-loop rule (runit's and s6's): a run that ends less than
/// `crash_loop_under` after it started is a crash-loop run. Only those back off and
/// count towards `max_restarts`; any run that lasted longer ends the loop, and a worker
/// killed from outside after that long is restarted after exactly `delay`, however often.
#[derive(Debug, Clone, Serialize)]
pub struct RestartConfig {
    pub policy: RestartPolicy,
    /// Wait before restarting a run that was not a crash-loop run, and the least any
    /// restart waits. Zero restarts at once.
    pub delay: Duration,
    /// A run shorter than this is a crash-loop run; a run at least this long ends the loop.
    pub crash_loop_under: Duration,
    /// Wait before the first crash-loop restart; each further one in a row waits twice
    /// as long as the one before. Zero turns the backoff off.
    pub backoff_initial: Duration,
    /// Upper bound of the growing crash-loop wait.
    pub backoff_max: Duration,
    /// After this many crash-loop restarts in a row the instance is FAILED.
    pub max_restarts: Option<u32>,
}

/// `--restart-delay`'s default.
pub const DEFAULT_RESTART_DELAY: Duration = Duration::from_secs(1);
/// `--crash-loop-under`'s default (runit's and s6's one second).
pub const DEFAULT_CRASH_LOOP_UNDER: Duration = Duration::from_secs(1);
/// `--backoff-initial`'s default.
pub const DEFAULT_BACKOFF_INITIAL: Duration = Duration::from_secs(1);
/// `--backoff-max`'s default.
pub const DEFAULT_BACKOFF_MAX: Duration = Duration::from_secs(10);

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            policy: RestartPolicy::OnFailure,
            delay: DEFAULT_RESTART_DELAY,
            crash_loop_under: DEFAULT_CRASH_LOOP_UNDER,
            backoff_initial: DEFAULT_BACKOFF_INITIAL,
            backoff_max: DEFAULT_BACKOFF_MAX,
            max_restarts: None,
        }
    }
}

/// Why a restart waits longer than `delay`: the crash loop it is part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CrashLoopNote {
    /// Crash-loop runs in a row, the one that just ended included.
    pub runs: u32,
    /// From the start of the loop's first run to the end of its last.
    #[serde(rename = "over_ms", serialize_with = "super::events::serialize_ms")]
    pub over: Duration,
}

impl fmt::Display for CrashLoopNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "crash loop: {} in {}s", self.runs, self.over.as_secs())
    }
}

/// What to do after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashDecision {
    /// Restart after `delay`; `crash_loop` is set when the run was a crash-loop run.
    Restart {
        delay: Duration,
        crash_loop: Option<CrashLoopNote>,
    },
    /// Give up: the instance is failed.
    GiveUp { reason: String },
}

/// Tracks the crash-loop runs in a row of one instance and turns them into delays.
#[derive(Debug, Clone, Default)]
pub struct CrashLoop {
    runs: u32,
    /// When the loop's first run started.
    since: Option<Instant>,
}

impl CrashLoop {
    /// Records the end of a run that lasted `uptime` (ended at `now`) and decides the
    /// next step.
    pub fn on_crash(
        &mut self,
        config: &RestartConfig,
        uptime: Duration,
        now: Instant,
    ) -> CrashDecision {
        if uptime >= config.crash_loop_under {
            *self = CrashLoop::default();
            return CrashDecision::Restart {
                delay: config.delay,
                crash_loop: None,
            };
        }
        if let Some(max) = config.max_restarts {
            if self.runs >= max {
                return CrashDecision::GiveUp {
                    reason: format!(
                        "crash loop: {} runs in a row under {} (max_restarts = {max}); last run lasted {}",
                        self.runs + 1,
                        humantime::format_duration(config.crash_loop_under),
                        clock::human(uptime),
                    ),
                };
            }
        }
        self.runs += 1;
        let run_started = now.checked_sub(uptime).unwrap_or(now);
        let since = *self.since.get_or_insert(run_started);
        CrashDecision::Restart {
            delay: backoff_delay(config, self.runs),
            crash_loop: Some(CrashLoopNote {
                runs: self.runs,
                over: now.saturating_duration_since(since),
            }),
        }
    }

    /// A deliberate kill (the demo key, `ctl kill`) restarts after the plain delay and
    /// neither grows nor resets the crash loop.
    pub fn on_deliberate_kill(&self, config: &RestartConfig) -> CrashDecision {
        CrashDecision::Restart {
            delay: config.delay,
            crash_loop: None,
        }
    }
}

/// Delay before crash-loop restart number `run` in a row (1-based): `backoff_initial`
/// doubled each time, at most `backoff_max`, never less than `delay`.
pub fn backoff_delay(config: &RestartConfig, run: u32) -> Duration {
    Backoff::new(config.backoff_initial, config.backoff_max)
        .nth(run)
        .max(config.delay)
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    #[test]
    fn parses_policies() {
        assert_eq!(
            "on-failure".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::OnFailure
        );
        assert_eq!(
            "Always".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::Always
        );
        assert_eq!(
            "never".parse::<RestartPolicy>().unwrap(),
            RestartPolicy::Never
        );
        assert_eq!("no".parse::<RestartPolicy>().unwrap(), RestartPolicy::Never);
        assert_eq!(RestartPolicy::OnFailure.to_string(), "on-failure");
        assert!("sometimes".parse::<RestartPolicy>().is_err());
    }

    #[test]
    fn policy_decides_by_exit() {
        let crash = ExitKind::KilledBySignal(Signal::SIGKILL);
        assert!(RestartPolicy::OnFailure.restarts_after(crash));
        assert!(RestartPolicy::OnFailure.restarts_after(ExitKind::ExitCode(1)));
        assert!(!RestartPolicy::OnFailure.restarts_after(ExitKind::Completed));
        assert!(!RestartPolicy::OnFailure.restarts_after(ExitKind::Stopped));
        assert!(RestartPolicy::Always.restarts_after(ExitKind::Completed));
        assert!(!RestartPolicy::Always.restarts_after(ExitKind::Stopped));
        assert!(!RestartPolicy::Never.restarts_after(crash));
    }

    #[test]
    fn crash_loop_delay_doubles_from_initial_and_caps() {
        let config = RestartConfig {
            delay: Duration::ZERO,
            ..RestartConfig::default()
        };
        let delays: Vec<u64> = (1..=7)
            .map(|n| backoff_delay(&config, n).as_secs())
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10, 10]);
        assert_eq!(backoff_delay(&config, 1000), DEFAULT_BACKOFF_MAX);
        // Never less than the plain delay.
        let slow = RestartConfig {
            delay: Duration::from_secs(20),
            ..RestartConfig::default()
        };
        assert_eq!(backoff_delay(&slow, 1), Duration::from_secs(20));
    }

    /// A worker killed from outside every 1.2 s made progress each time: every
    /// restart waits exactly `delay`, and none counts towards `max_restarts`.
    #[test]
    fn runs_past_the_threshold_restart_after_the_plain_delay_however_often() {
        let config = RestartConfig {
            delay: Duration::ZERO,
            max_restarts: Some(2),
            ..RestartConfig::default()
        };
        let mut crash_loop = CrashLoop::default();
        let t0 = Instant::now();
        for n in 1..=20u32 {
            let now = t0 + Duration::from_millis(1200) * n;
            assert_eq!(
                crash_loop.on_crash(&config, Duration::from_millis(1200), now),
                CrashDecision::Restart {
                    delay: Duration::ZERO,
                    crash_loop: None
                },
                "kill {n}"
            );
        }
    }

    #[test]
    fn runs_under_the_threshold_back_off_count_and_fail() {
        let config = RestartConfig {
            delay: Duration::ZERO,
            max_restarts: Some(3),
            ..RestartConfig::default()
        };
        let mut crash_loop = CrashLoop::default();
        let quick = Duration::from_millis(10);
        let t0 = Instant::now();
        let mut now = t0 + quick;
        let mut seen = Vec::new();
        for _ in 0..3 {
            match crash_loop.on_crash(&config, quick, now) {
                CrashDecision::Restart {
                    delay,
                    crash_loop: Some(note),
                } => {
                    seen.push((delay.as_secs(), note.runs));
                    now += delay + quick;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(seen, vec![(1, 1), (2, 2), (4, 3)]);
        let CrashDecision::GiveUp { reason } = crash_loop.on_crash(&config, quick, now) else {
            panic!("a fourth crash-loop run must fail the instance");
        };
        assert!(reason.contains("4 runs in a row under 1s"), "{reason}");
        assert!(reason.contains("max_restarts = 3"), "{reason}");
    }

    #[test]
    fn a_long_run_ends_the_loop_and_the_note_spans_it() {
        let config = RestartConfig::default();
        let mut crash_loop = CrashLoop::default();
        let t0 = Instant::now();
        let quick = Duration::from_millis(100);
        let first = crash_loop.on_crash(&config, quick, t0 + quick);
        assert!(matches!(
            first,
            CrashDecision::Restart {
                crash_loop: Some(CrashLoopNote { runs: 1, .. }),
                ..
            }
        ));
        let CrashDecision::Restart {
            crash_loop: Some(note),
            ..
        } = crash_loop.on_crash(&config, quick, t0 + Duration::from_secs(40))
        else {
            panic!("second quick run");
        };
        assert_eq!(note.runs, 2);
        assert_eq!(note.over, Duration::from_secs(40));
        assert_eq!(note.to_string(), "crash loop: 2 in 40s");
        // One run that lasted the threshold resets the loop: the next quick run is
        // the first of a new loop again.
        assert_eq!(
            crash_loop.on_crash(
                &config,
                Duration::from_secs(1),
                t0 + Duration::from_secs(50)
            ),
            CrashDecision::Restart {
                delay: config.delay,
                crash_loop: None
            }
        );
        let CrashDecision::Restart {
            delay,
            crash_loop: Some(note),
        } = crash_loop.on_crash(&config, quick, t0 + Duration::from_secs(60))
        else {
            panic!("quick run after the reset");
        };
        assert_eq!((delay, note.runs), (Duration::from_secs(1), 1));
    }

    #[test]
    fn deliberate_kills_neither_grow_nor_reset_the_loop() {
        let config = RestartConfig {
            delay: Duration::ZERO,
            max_restarts: Some(1),
            ..RestartConfig::default()
        };
        let mut crash_loop = CrashLoop::default();
        let quick = Duration::from_millis(5);
        let now = Instant::now() + quick;
        assert!(matches!(
            crash_loop.on_crash(&config, quick, now),
            CrashDecision::Restart { .. }
        ));
        for _ in 0..6 {
            assert_eq!(
                crash_loop.on_deliberate_kill(&config),
                CrashDecision::Restart {
                    delay: Duration::ZERO,
                    crash_loop: None
                }
            );
        }
        assert!(matches!(
            crash_loop.on_crash(&config, quick, now),
            CrashDecision::GiveUp { .. }
        ));
    }
}
