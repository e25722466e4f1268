//! Per-device request rate limits in ThingsBoard's syntax: `capacity:seconds` pairs separated
//! by commas (`"10:1,300:60"`: at most 10 requests in any second and 300 in any minute).
//!
//! Each pair is a token bucket of `capacity` tokens refilled evenly over `seconds`; a request
//! takes one token from every bucket, or from none when any is empty (then the answer says
//! how long until it would pass). A device's buckets exist only while they are not full again,
//! so idle devices cost nothing.

use ota_core::DeviceId;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One `capacity:seconds` pair.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bandwidth {
    /// Requests allowed in the period (the bucket's size).
    pub capacity: u32,
    /// The period in seconds over which `capacity` tokens are refilled.
    pub seconds: u32,
}

impl Bandwidth {
    fn per_second(&self) -> f64 {
        f64::from(self.capacity) / f64::from(self.seconds)
    }
}

/// A rate limit: one or more [`Bandwidth`]s, all of which a request must pass.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimit {
    bandwidths: Vec<Bandwidth>,
}

/// A rate limit text that is not `capacity:seconds` pairs of positive integers.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid rate limit {text:?}: {reason} (expected capacity:seconds pairs like \"10:1,300:60\")"
)]
pub struct RateLimitError {
    /// The text given.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

impl RateLimit {
    /// The bandwidths, in the order given.
    pub fn bandwidths(&self) -> &[Bandwidth] {
        &self.bandwidths
    }
}

impl FromStr for RateLimit {
    type Err = RateLimitError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| RateLimitError {
            text: text.to_string(),
            reason,
        };
        let mut bandwidths = Vec::new();
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (cap, secs) = pair
                .split_once(':')
                .ok_or_else(|| fail(format!("{pair:?} has no ':'")))?;
            let parse = |s: &str, what: &str| -> Result<u32, RateLimitError> {
                match s.trim().parse::<u32>() {
                    Ok(n) if n > 0 => Ok(n),
                    _ => Err(fail(format!("{what} {s:?} is not a positive integer"))),
                }
            };
            bandwidths.push(Bandwidth {
                capacity: parse(cap, "capacity")?,
                seconds: parse(secs, "seconds")?,
            });
        }
        if bandwidths.is_empty() {
            return Err(fail("no capacity:seconds pair".into()));
        }
        Ok(Self { bandwidths })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs: Vec<String> = self
            .bandwidths
            .iter()
            .map(|b| format!("{}:{}", b.capacity, b.seconds))
            .collect();
        f.write_str(&pairs.join(","))
    }
}

/// Tokens left in each bucket of one device, as of `at`.
#[derive(Debug)]
struct Buckets {
    tokens: Vec<f64>,
    at: Instant,
}

const SHARDS: usize = 16;

/// The buckets of every device that used some of its allowance recently.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    limit: RateLimit,
    shards: Vec<Mutex<HashMap<DeviceId, Buckets>>>,
    /// The longest time an emptied bucket set needs to be full again.
    refill: Duration,
}

impl RateLimiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        let refill = limit
            .bandwidths
            .iter()
            .map(|b| Duration::from_secs(u64::from(b.seconds)))
            .max()
            .unwrap_or_default();
        Self {
            limit,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            refill,
        }
    }

    pub(crate) fn limit(&self) -> &RateLimit {
        &self.limit
    }

    /// Takes one request from `device`'s allowance at `now`: `Ok` when it passes, else
    /// `Err(seconds to wait)` (at least 1).
    pub(crate) fn check(&self, device: DeviceId, now: Instant) -> Result<(), u64> {
        let shard = &self.shards[(device.as_uuid().as_u128() as usize) % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 1024 && map.len().is_power_of_two() {
            // Forget devices whose buckets are full again: the same as having none.
            let refill = self.refill;
            map.retain(|_, b| now.saturating_duration_since(b.at) < refill);
        }
        let bws = &self.limit.bandwidths;
        let buckets = map.entry(device).or_insert_with(|| Buckets {
            tokens: bws.iter().map(|b| f64::from(b.capacity)).collect(),
            at: now,
        });
        let elapsed = now.saturating_duration_since(buckets.at).as_secs_f64();
        buckets.at = now.max(buckets.at);
        let mut wait: f64 = 0.0;
        for (tokens, bw) in buckets.tokens.iter_mut().zip(bws) {
            *tokens = (*tokens + elapsed * bw.per_second()).min(f64::from(bw.capacity));
            if *tokens < 1.0 {
                wait = wait.max((1.0 - *tokens) / bw.per_second());
            }
        }
        if wait > 0.0 {
            return Err((wait.ceil() as u64).max(1));
        }
        for tokens in &mut buckets.tokens {
            *tokens -= 1.0;
        }
        Ok(())
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.shards.iter().map(|s| s.lock().unwrap().len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_thingsboard_pairs() {
        let limit: RateLimit = "10:1, 300:60".parse().unwrap();
        assert_eq!(
            limit.bandwidths(),
            &[
                Bandwidth {
                    capacity: 10,
                    seconds: 1
                },
                Bandwidth {
                    capacity: 300,
                    seconds: 60
                }
            ]
        );
        assert_eq!(limit.to_string(), "10:1,300:60");
        for bad in [
            "",
            "10",
            "10:0",
            "0:1",
            "a:1",
            "10:-1",
            "10:1,x",
            "99999999999:1",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_bandwidth_must_pass_and_refills_evenly() {
        let limiter = RateLimiter::new("2:1,3:60".parse().unwrap());
        let d = DeviceId::new();
        let t0 = Instant::now();
        assert!(limiter.check(d, t0).is_ok());
        assert!(limiter.check(d, t0).is_ok());
        // The per-second bucket is empty: one token comes back in half a second.
        assert_eq!(limiter.check(d, t0), Err(1));
        let t1 = t0 + Duration::from_secs(1);
        assert!(limiter.check(d, t1).is_ok());
        // The per-minute bucket is now empty (0.05 left): 20 s per token.
        assert_eq!(limiter.check(d, t1), Err(19));
        // A refused request takes nothing: the per-second bucket still has a token.
        let t2 = t1 + Duration::from_secs(20);
        assert!(limiter.check(d, t2).is_ok());
        // Other devices have their own allowance.
        assert!(limiter.check(DeviceId::new(), t2).is_ok());
    }

    #[test]
    fn idle_devices_are_forgotten() {
        let limiter = RateLimiter::new("5:1".parse().unwrap());
        let t0 = Instant::now();
        for _ in 0..(SHARDS * 1024 * 2) {
            limiter.check(DeviceId::new(), t0).unwrap();
        }
        let later = t0 + Duration::from_secs(2);
        for _ in 0..(SHARDS * 1024 * 2) {
            limiter.check(DeviceId::new(), later).unwrap();
        }
        assert!(
            limiter.tracked() < SHARDS * 1024 * 3,
            "{}",
            limiter.tracked()
        );
    }
}
