//! When a worker that ended is started again, and how long we wait first.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use anyhow::bail;
use serde::Serialize;

use super::exit::ExitKind;

/// Which exits lead to an automatic restart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restart after crashes (signal deaths, non-zero exits) only.
    #[default]
    OnFailure,
    /// Restart after crashes and after the worker completes on its own.
    Always,
    /// Never restart automatically.
    Never,
}

impl FromStr for RestartPolicy {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "on-failure" | "on_failure" | "onfailure" => Ok(RestartPolicy::OnFailure),
            "always" => Ok(RestartPolicy::Always),
            "never" | "no" => Ok(RestartPolicy::Never),
            other => {
                bail!("unknown restart policy {other:?}: expected on-failure, always or never")
            }
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RestartPolicy::OnFailure => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::Never => "never",
        })
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
#[derive(Debug, Clone, Serialize)]
pub struct RestartConfig {
    pub policy: RestartPolicy,
    /// Wait before the first restart after a crash. Zero restarts at once.
    pub delay: Duration,
    /// In a crash loop the delay grows from at least this much, so a zero `delay`
    /// cannot turn into a spawn storm.
    pub backoff_floor: Duration,
    /// Upper bound of the growing delay.
    pub max_delay: Duration,
    /// A run that lasted this long ends the crash loop: the delay falls back to `delay`.
    pub reset_after: Duration,
    /// After this many consecutive crash restarts the instance is FAILED.
    pub max_restarts: Option<u32>,
}

impl Default for RestartConfig {
    fn default() -> Self {
        RestartConfig {
            policy: RestartPolicy::OnFailure,
            delay: Duration::from_secs(1),
            backoff_floor: Duration::from_millis(100),
            max_delay: Duration::from_secs(30),
            reset_after: Duration::from_secs(10),
            max_restarts: None,
        }
    }
}

/// What to do after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashDecision {
    /// Restart after `delay`; `attempt` counts consecutive crash restarts (1 = first).
    Restart { delay: Duration, attempt: u32 },
    /// Give up: the instance is failed.
    GiveUp { reason: String },
}

/// Tracks consecutive quick crashes of one instance and turns them into delays.
#[derive(Debug, Clone, Default)]
pub struct CrashLoop {
    consecutive: u32,
}

impl CrashLoop {
    /// Records a crash of a run that lasted `uptime` and decides the next step.
    pub fn on_crash(&mut self, config: &RestartConfig, uptime: Duration) -> CrashDecision {
        if uptime >= config.reset_after {
            self.consecutive = 0;
        }
        if let Some(max) = config.max_restarts {
            if self.consecutive >= max {
                return CrashDecision::GiveUp {
                    reason: format!(
                        "crashed {} times in a row (max_restarts = {max}); last run lasted {}",
                        self.consecutive + 1,
                        humantime::format_duration(round_ms(uptime)),
                    ),
                };
            }
        }
        self.consecutive += 1;
        CrashDecision::Restart {
            delay: backoff_delay(config, self.consecutive),
            attempt: self.consecutive,
        }
    }

    /// A deliberate kill (the demo key) restarts after the plain delay and neither
    /// grows nor resets the crash loop.
    pub fn on_deliberate_kill(&self, config: &RestartConfig) -> CrashDecision {
        CrashDecision::Restart {
            delay: config.delay,
            attempt: self.consecutive + 1,
        }
    }
}

/// Delay before consecutive crash restart number `attempt` (1-based).
pub fn backoff_delay(config: &RestartConfig, attempt: u32) -> Duration {
    if attempt <= 1 {
        return config.delay;
    }
    let start = config.delay.max(config.backoff_floor);
    let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(31));
    start.saturating_mul(factor).min(config.max_delay)
}

fn round_ms(duration: Duration) -> Duration {
    Duration::from_millis(duration.as_millis().try_into().unwrap_or(u64::MAX))
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
    fn delay_doubles_and_caps() {
        let config = RestartConfig::default();
        let delays: Vec<u64> = (1..=8)
            .map(|n| backoff_delay(&config, n).as_secs())
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(backoff_delay(&config, 1000), Duration::from_secs(30));
    }

    #[test]
    fn zero_delay_restarts_at_once_then_backs_off() {
        let config = RestartConfig {
            delay: Duration::ZERO,
            ..RestartConfig::default()
        };
        assert_eq!(backoff_delay(&config, 1), Duration::ZERO);
        assert_eq!(backoff_delay(&config, 2), Duration::from_millis(200));
        assert_eq!(backoff_delay(&config, 3), Duration::from_millis(400));
    }

    #[test]
    fn long_run_resets_the_loop_and_max_restarts_fails() {
        let config = RestartConfig {
            max_restarts: Some(2),
            ..RestartConfig::default()
        };
        let mut crash_loop = CrashLoop::default();
        let quick = Duration::from_millis(10);
        assert!(matches!(
            crash_loop.on_crash(&config, quick),
            CrashDecision::Restart { attempt: 1, .. }
        ));
        assert!(matches!(
            crash_loop.on_crash(&config, quick),
            CrashDecision::Restart { attempt: 2, .. }
        ));
        assert!(matches!(
            crash_loop.on_crash(&config, quick),
            CrashDecision::GiveUp { .. }
        ));
        // A run past reset_after starts a fresh loop.
        let long = Duration::from_secs(11);
        assert_eq!(
            crash_loop.on_crash(&config, long),
            CrashDecision::Restart {
                delay: Duration::from_secs(1),
                attempt: 1
            }
        );
    }
}
