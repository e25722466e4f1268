//! Failure injection: which attempt of which device goes wrong, and how.
//!
//! Each attempt of each device draws one number from a hash of (seed, device index, attempt):
//! the same seed gives the same failures on every run, whatever the order devices run in.
//! The percentages are per attempt, so a device retried by the server may fail again.

use serde::Serialize;

/// What goes wrong in one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Injected {
    /// Nothing: the attempt runs through UPDATED.
    None,
    /// The downloaded content is corrupted before it is verified: the checksum check fails
    /// for real and the device reports FAILED.
    Checksum,
    /// The device stops answering halfway through the download and abandons the attempt
    /// without a word: the server's DOWNLOADING timeout has to fail it.
    Stall,
    /// The connection drops halfway through the download; the device reconnects and resumes
    /// where it stopped (the attempt still succeeds).
    Drop,
}

/// Percentages (0-100) of attempts that get each failure, and the seed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct FailurePlan {
    /// Attempts whose checksum check fails.
    pub checksum_percent: f64,
    /// Attempts that stall.
    pub stall_percent: f64,
    /// Attempts whose connection drops mid-download.
    pub drop_percent: f64,
    /// Seed of the draw.
    pub seed: u64,
}

impl FailurePlan {
    /// Checks that each percentage is in 0..=100 and that they add up to at most 100.
    pub fn validate(&self) -> Result<(), String> {
        let all = [
            ("checksum failures", self.checksum_percent),
            ("stalls", self.stall_percent),
            ("drops", self.drop_percent),
        ];
        for (name, p) in all {
            if !(0.0..=100.0).contains(&p) {
                return Err(format!("{name}: {p} is not a percentage between 0 and 100"));
            }
        }
        let sum: f64 = all.iter().map(|(_, p)| p).sum();
        if sum > 100.0 {
            return Err(format!("the failure percentages add up to {sum}, over 100"));
        }
        Ok(())
    }

    /// What goes wrong in `attempt` (from 1) of the device at `device` (its index in the
    /// fleet).
    pub fn draw(&self, device: u64, attempt: u32) -> Injected {
        let x = unit(self.seed, device, attempt) * 100.0;
        let mut bound = self.checksum_percent;
        if x < bound {
            return Injected::Checksum;
        }
        bound += self.stall_percent;
        if x < bound {
            return Injected::Stall;
        }
        bound += self.drop_percent;
        if x < bound {
            return Injected::Drop;
        }
        Injected::None
    }
}

/// SplitMix64's finaliser: a well-mixed 64-bit value of the input.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A number in [0, 1) drawn from (seed, device, attempt).
fn unit(seed: u64, device: u64, attempt: u32) -> f64 {
    let h = mix(mix(mix(seed) ^ device) ^ u64::from(attempt));
    // The top 53 bits as a fraction: exactly representable, uniform.
    (h >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(c: f64, s: f64, d: f64) -> FailurePlan {
        FailurePlan {
            checksum_percent: c,
            stall_percent: s,
            drop_percent: d,
            seed: 7,
        }
    }

    #[test]
    fn no_percentages_inject_nothing() {
        let p = plan(0.0, 0.0, 0.0);
        assert!((0..10_000).all(|d| p.draw(d, 1) == Injected::None));
    }

    #[test]
    fn hundred_percent_always_injects() {
        let p = plan(100.0, 0.0, 0.0);
        assert!((0..1_000).all(|d| p.draw(d, 1) == Injected::Checksum));
        let p = plan(0.0, 0.0, 100.0);
        assert!((0..1_000).all(|d| p.draw(d, 3) == Injected::Drop));
    }

    #[test]
    fn shares_are_close_to_the_percentages() {
        let p = plan(2.0, 1.5, 1.5);
        let n = 200_000u64;
        let count = |k| (0..n).filter(|&d| p.draw(d, 1) == k).count() as f64 / n as f64;
        // Binomial standard deviation at n=200,000 and p=0.02 is 0.03 %; allow 0.3 %.
        assert!((count(Injected::Checksum) - 0.02).abs() < 0.003);
        assert!((count(Injected::Stall) - 0.015).abs() < 0.003);
        assert!((count(Injected::Drop) - 0.015).abs() < 0.003);
    }

    #[test]
    fn the_draw_depends_on_seed_device_and_attempt_only() {
        let p = plan(30.0, 30.0, 30.0);
        let first: Vec<_> = (0..500).map(|d| p.draw(d, 2)).collect();
        let again: Vec<_> = (0..500).map(|d| p.draw(d, 2)).collect();
        assert_eq!(first, again);
        let other_attempt: Vec<_> = (0..500).map(|d| p.draw(d, 3)).collect();
        assert_ne!(first, other_attempt);
        let other_seed = FailurePlan { seed: 8, ..p };
        let other: Vec<_> = (0..500).map(|d| other_seed.draw(d, 2)).collect();
        assert_ne!(first, other);
    }

    #[test]
    fn bad_percentages_are_refused() {
        assert!(plan(-1.0, 0.0, 0.0).validate().is_err());
        assert!(plan(0.0, 101.0, 0.0).validate().is_err());
        assert!(plan(60.0, 30.0, 20.0).validate().is_err());
        assert!(plan(f64::NAN, 0.0, 0.0).validate().is_err());
        assert!(plan(2.0, 1.5, 1.5).validate().is_ok());
    }
}
