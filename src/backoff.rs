//! Exponential backoff: the one rule for every wait that grows with failures in a
//! row (the supervisor's crash loop, a worker waiting for its controller, the
//! change feed's reconnects).

use std::time::Duration;

/// A wait that starts at `first`, doubles with each failure in a row and stops
/// growing at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    /// Waits handed out since the last success.
    in_a_row: u32,
}

impl Backoff {
    pub const fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            in_a_row: 0,
        }
    }

    /// The longest wait.
    pub fn max(&self) -> Duration {
        self.max
    }

    /// The wait after failure `n` in a row (1-based): `first · 2^(n-1)`, at most `max`.
    pub fn nth(&self, n: u32) -> Duration {
        let factor = 2u32.saturating_pow(n.saturating_sub(1).min(31));
        self.first.saturating_mul(factor).min(self.max)
    }

    /// The wait after one more failure in a row.
    pub fn next_delay(&mut self) -> Duration {
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.nth(self.in_a_row)
    }

    /// A success: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.in_a_row = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_its_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(200), Duration::from_millis(500));
        let seen: Vec<u128> = (0..4).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(seen, vec![200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 200);
    }

    #[test]
    fn never_overflows() {
        let b = Backoff::new(Duration::from_secs(1), Duration::from_secs(10));
        assert_eq!(b.nth(0), Duration::from_secs(1));
        assert_eq!(b.nth(u32::MAX), Duration::from_secs(10));
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.nth(40), Duration::MAX);
    }
}
