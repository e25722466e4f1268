//! Per-device limits: payload and chunk sizes, in-flight window and message rate, and the
//! `getSessionLimits` answer that tells devices about them.

use serde_json::json;

/// The limits a device session obeys. `Default` gives ThingsBoard-like values.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProtocolLimits {
    /// Largest payload (and, on MQTT 5, packet) a device may send, in bytes. Reported as
    /// `maxPayloadSize` and as the CONNACK's `Maximum Packet Size`. Default: 64 KiB.
    pub max_payload_size: u32,
    /// Largest chunk a device may ask for (also the largest whole file sent at once, for a
    /// chunk size of 0), in bytes. Default: 64 KiB.
    pub max_chunk_size: u32,
    /// How many QoS 1 messages a device may have in flight towards the server. Reported as
    /// `maxInflightMessages` and as the CONNACK's `Receive Maximum`. Default: 100.
    pub max_inflight: u16,
    /// Messages per second a device may send, also the burst size (`None`: unlimited).
    /// Default: 1,000.
    pub messages_per_second: Option<u32>,
}

impl Default for ProtocolLimits {
    fn default() -> Self {
        Self {
            max_payload_size: 64 * 1024,
            max_chunk_size: 64 * 1024,
            max_inflight: 100,
            messages_per_second: Some(1000),
        }
    }
}

impl ProtocolLimits {
    /// The answer to the `getSessionLimits` RPC:
    /// `{"maxPayloadSize":N,"maxInflightMessages":N,"rateLimits":{...}}` with ThingsBoard's
    /// `capacity:seconds` syntax (an empty string when unlimited).
    pub fn session_limits(&self) -> serde_json::Value {
        let rate = self
            .messages_per_second
            .map(|n| format!("{n}:1"))
            .unwrap_or_default();
        json!({
            "maxPayloadSize": self.max_payload_size,
            "maxInflightMessages": self.max_inflight,
            "rateLimits": {
                "messages": rate,
                "telemetryMessages": rate,
                "telemetryDataPoints": rate,
            }
        })
    }
}

/// A token bucket: `rate` messages per second with a burst of `rate`. Time is given by the
/// caller in milliseconds of a monotonic clock, so that the rule is testable without waiting.
#[derive(Clone, Debug)]
pub struct RateLimiter {
    rate: Option<u32>,
    /// Tokens times 1000 (milli-tokens), to refill by whole milliseconds without rounding.
    milli_tokens: u64,
    last_ms: u64,
}

impl RateLimiter {
    /// A full bucket at `now_ms`.
    pub fn new(rate: Option<u32>, now_ms: u64) -> Self {
        Self {
            rate,
            milli_tokens: u64::from(rate.unwrap_or(0)) * 1000,
            last_ms: now_ms,
        }
    }

    /// Takes one message at `now_ms`; `false` when the device is over its rate.
    pub fn admit(&mut self, now_ms: u64) -> bool {
        let Some(rate) = self.rate else {
            return true;
        };
        let capacity = u64::from(rate) * 1000;
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        self.milli_tokens = self
            .milli_tokens
            .saturating_add(elapsed.saturating_mul(u64::from(rate)))
            .min(capacity);
        if self.milli_tokens >= 1000 {
            self.milli_tokens -= 1000;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn session_limits_answer() {
        let mut limits = ProtocolLimits {
            max_payload_size: 1000,
            max_inflight: 7,
            messages_per_second: Some(20),
            ..ProtocolLimits::default()
        };
        assert_eq!(
            limits.session_limits(),
            json!({"maxPayloadSize":1000,"maxInflightMessages":7,"rateLimits":{
                "messages":"20:1","telemetryMessages":"20:1","telemetryDataPoints":"20:1"}})
        );
        limits.messages_per_second = None;
        assert_eq!(limits.session_limits()["rateLimits"]["messages"], "");
    }

    #[test]
    fn bucket_allows_burst_then_refills() {
        let mut bucket = RateLimiter::new(Some(3), 1000);
        assert!(bucket.admit(1000));
        assert!(bucket.admit(1000));
        assert!(bucket.admit(1000));
        assert!(!bucket.admit(1000));
        assert!(!bucket.admit(1300));
        assert!(bucket.admit(1334));
        assert!(!bucket.admit(1334));
        assert!(bucket.admit(5000));
        let mut unlimited = RateLimiter::new(None, 0);
        assert!((0..10_000).all(|_| unlimited.admit(0)));
    }

    proptest! {
        /// Over any window starting at a full bucket, at most burst + rate * seconds messages
        /// pass, whatever the (possibly non-monotonic) clock readings.
        #[test]
        fn never_more_than_burst_plus_rate(
            rate in 1u32..50,
            steps in proptest::collection::vec(0u64..400, 1..200),
        ) {
            let mut now = 0u64;
            let mut bucket = RateLimiter::new(Some(rate), now);
            let mut admitted = 0u64;
            for step in steps {
                now += step;
                if bucket.admit(now) {
                    admitted += 1;
                }
                let bound = u64::from(rate) + u64::from(rate) * now / 1000 + 1;
                prop_assert!(admitted <= bound, "{admitted} > {bound} at {now}");
            }
        }
    }
}
