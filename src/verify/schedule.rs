//! Where the kills land: progress points, fixed, spread over the task, or
//! drawn from a seeded generator (the same seed gives the same points).

/// How the kill points are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillSchedule {
    /// Every cycle at this progress (1..=99).
    At(u8),
    /// Points drawn from a generator seeded with this.
    Random { seed: u64 },
    /// Spread evenly over one task (the default).
    Spread,
}

/// Progress moves in steps of 10: a point is rounded up to the next step,
/// and kept within 10..=90 so the worker is always killed part-way.
pub fn trigger_for(pct: u8) -> i64 {
    let up = (i64::from(pct) + 9) / 10 * 10;
    up.clamp(10, 90)
}

/// The progress point of each of `cycles` kills, in the order they happen.
pub fn kill_points(cycles: u32, schedule: KillSchedule) -> Vec<i64> {
    match schedule {
        KillSchedule::At(pct) => vec![trigger_for(pct); cycles as usize],
        KillSchedule::Random { seed } => {
            let mut rng = SplitMix64(seed);
            (0..cycles)
                .map(|_| 10 * (1 + (rng.next() % 9) as i64))
                .collect()
        }
        KillSchedule::Spread => (1..=cycles)
            .map(|i| {
                let pct = f64::from(i) * 100.0 / f64::from(cycles + 1);
                ((pct / 10.0).round() as i64 * 10).clamp(10, 90)
            })
            .collect(),
    }
}

/// splitmix64: tiny, well-mixed, and stable across versions (unlike a
/// library generator whose stream may change), so a seed reproduces a run.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_whole_steps_part_way() {
        assert_eq!(trigger_for(1), 10);
        assert_eq!(trigger_for(50), 50);
        assert_eq!(trigger_for(51), 60);
        assert_eq!(trigger_for(99), 90);
        assert_eq!(kill_points(3, KillSchedule::Spread), vec![30, 50, 80]);
        assert_eq!(kill_points(1, KillSchedule::Spread), vec![50]);
        assert_eq!(kill_points(2, KillSchedule::At(35)), vec![40, 40]);
    }

    #[test]
    fn a_seed_reproduces_its_points() {
        let a = kill_points(20, KillSchedule::Random { seed: 7 });
        assert_eq!(a, kill_points(20, KillSchedule::Random { seed: 7 }));
        assert_ne!(a, kill_points(20, KillSchedule::Random { seed: 8 }));
        assert!(a.iter().all(|p| (10..=90).contains(p) && p % 10 == 0));
    }
}
