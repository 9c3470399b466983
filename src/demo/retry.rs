//! Waiting out an unreachable controller: exponential backoff, one line when
//! an outage starts and one when it ends, and an optional give-up time.

use super::text::{reconnected, say, unreachable};
use crate::backoff::Backoff;
use crate::kv::KvError;
use anyhow::{bail, Context, Result};
use std::future::Future;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone)]
pub struct Retry {
    url: String,
    backoff: Backoff,
    give_up: Option<Duration>,
}

impl Retry {
    pub fn new(url: &str, give_up: Option<Duration>) -> Retry {
        Retry {
            url: url.to_string(),
            backoff: Backoff::new(Duration::from_millis(100), Duration::from_secs(2)),
            give_up,
        }
    }

    /// Runs `op` until it succeeds. Transient failures (no answer, or a 5xx)
    /// are retried; anything else (bad token, refused value) is returned at
    /// once, since retrying cannot fix it. `what` names the operation.
    pub async fn run<T, Fut>(&self, what: &str, mut op: impl FnMut() -> Fut) -> Result<T>
    where
        Fut: Future<Output = Result<T, KvError>>,
    {
        let mut outage_start: Option<Instant> = None;
        let mut backoff = self.backoff;
        loop {
            let err = match op().await {
                Ok(value) => {
                    if let Some(start) = outage_start {
                        say(reconnected(&self.url, start.elapsed()));
                    }
                    return Ok(value);
                }
                Err(e) if is_transient(&e) => e,
                Err(e) => return Err(e).with_context(|| what.to_string()),
            };
            let start = *outage_start.get_or_insert_with(|| {
                say(unreachable(&self.url, &reason(&err), what, backoff.max()));
                Instant::now()
            });
            let mut pause = backoff.next_delay();
            if let Some(limit) = self.give_up {
                let waited = start.elapsed();
                if waited >= limit {
                    bail!(
                        "controller {} unreachable for {} while {what} ({}); \
                         giving up (--give-up {})",
                        self.url,
                        crate::clock::human(waited),
                        reason(&err),
                        humantime::format_duration(limit)
                    );
                }
                // Wake up on time to give up, not a whole backoff later.
                pause = pause.min(limit - waited);
            }
            tokio::time::sleep(pause).await;
        }
    }
}

fn is_transient(e: &KvError) -> bool {
    match e {
        KvError::Unreachable { .. } => true,
        KvError::Rejected { status, .. } => *status >= 500,
        e if e.is_not_http() => true,
        _ => false,
    }
}

fn reason(e: &KvError) -> String {
    match e {
        KvError::Unreachable { reason, .. } => reason.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// An outage, a 5xx and an answer that is not HTTP are waited out; a 4xx
    /// or a value that does not read is not.
    #[test]
    fn what_is_worth_waiting_out() {
        let unreachable = KvError::Unreachable {
            url: "http://x".into(),
            reason: "connection refused or failed".into(),
        };
        let busy = KvError::Rejected {
            status: 503,
            reason: "busy".into(),
        };
        let garbled =
            KvError::Protocol("an answer that is not HTTP (invalid HTTP version parsed)".into());
        let refused = KvError::Rejected {
            status: 400,
            reason: "bad".into(),
        };
        let json = KvError::Protocol("bad JSON: EOF".into());
        assert!(is_transient(&unreachable) && is_transient(&busy) && is_transient(&garbled));
        assert!(!is_transient(&refused) && !is_transient(&json));
    }

    /// Real time, scaled down: 1 ms first pause, 5 ms cap.
    fn fast(give_up: Option<Duration>) -> Retry {
        Retry {
            backoff: Backoff::new(Duration::from_millis(1), Duration::from_millis(5)),
            ..Retry::new("http://x", give_up)
        }
    }

    fn down() -> KvError {
        KvError::Unreachable {
            url: "http://x".into(),
            reason: "refused".into(),
        }
    }

    #[tokio::test]
    async fn retries_until_success_then_returns_the_value() {
        let calls = Cell::new(0);
        let retry = fast(None);
        let got = retry
            .run("testing", || {
                calls.set(calls.get() + 1);
                let n = calls.get();
                async move {
                    if n < 4 {
                        Err(down())
                    } else {
                        Ok(n)
                    }
                }
            })
            .await
            .unwrap();
        assert_eq!(got, 4);
    }

    #[tokio::test]
    async fn gives_up_after_the_limit_and_not_before() {
        let retry = fast(Some(Duration::from_millis(60)));
        let t0 = Instant::now();
        let err = retry
            .run("testing", || async { Err::<(), _>(down()) })
            .await
            .unwrap_err();
        let waited = t0.elapsed();
        assert!(waited >= Duration::from_millis(60), "{waited:?}");
        assert!(format!("{err:#}").contains("giving up"), "{err:#}");
    }

    #[tokio::test]
    async fn client_errors_are_not_retried() {
        let calls = Cell::new(0);
        let retry = fast(None);
        let err = retry
            .run("testing", || {
                calls.set(calls.get() + 1);
                async {
                    Err::<(), _>(KvError::Rejected {
                        status: 401,
                        reason: "no token".into(),
                    })
                }
            })
            .await
            .unwrap_err();
        assert_eq!(calls.get(), 1);
        assert!(format!("{err:#}").contains("testing"));
    }
}
