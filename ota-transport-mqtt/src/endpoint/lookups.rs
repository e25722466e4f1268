//! The bound on CONNECT look-ups in flight: every CONNECT looks its device up by token in
//! the store, and a reconnect storm (a fleet coming back after a server restart) would
//! otherwise queue thousands of look-ups on the store's connection pool, starving the
//! engine and the management API and outlasting the devices' own CONNACK timeouts (after
//! which they connect again, feeding the queue). At most
//! [`EndpointConfig::max_connect_lookups`](super::EndpointConfig::max_connect_lookups) run at
//! once; a CONNECT that finds no free slot within
//! [`EndpointConfig::connect_lookup_wait`](super::EndpointConfig::connect_lookup_wait) is
//! refused as "server busy" (MQTT 3.1.1: "server unavailable") at once, and the device
//! connects again after its back-off.

use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// Slots for CONNECT look-ups.
#[derive(Debug)]
pub(crate) struct LookupGate {
    slots: Semaphore,
    wait: Duration,
}

impl LookupGate {
    /// `max` look-ups at once (at least one); a look-up waits up to `wait` for a slot.
    pub(crate) fn new(max: usize, wait: Duration) -> Self {
        Self {
            slots: Semaphore::new(max.max(1)),
            wait,
        }
    }

    /// A slot for one look-up, held until dropped; `None` when none came free in time.
    pub(crate) async fn enter(&self) -> Option<SemaphorePermit<'_>> {
        match tokio::time::timeout(self.wait, self.slots.acquire()).await {
            Ok(Ok(slot)) => Some(slot),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LookupGate;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn a_look_up_finding_every_slot_taken_is_turned_away_and_the_next_one_gets_in() {
        let gate = LookupGate::new(2, Duration::from_millis(20));
        let first = gate.enter().await.expect("a free slot");
        let second = gate.enter().await.expect("a free slot");
        assert!(gate.enter().await.is_none(), "no third look-up at once");
        drop(first);
        let third = gate.enter().await;
        assert!(third.is_some(), "a slot given back is taken again");
        drop((second, third));
    }

    #[tokio::test]
    async fn a_gate_of_no_slots_still_lets_one_look_up_through() {
        let gate = LookupGate::new(0, Duration::from_millis(20));
        let only = gate.enter().await;
        assert!(only.is_some());
        assert!(gate.enter().await.is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// However many CONNECTs arrive at once, no more than `max` look-ups run together,
        /// and each CONNECT either looks its device up or is turned away.
        #[test]
        fn look_ups_in_flight_never_exceed_the_bound(max in 1usize..8, connects in 1usize..64) {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let (peak, looked_up, turned_away) = runtime.block_on(async move {
                let gate = Arc::new(LookupGate::new(max, Duration::from_secs(30)));
                let running = Arc::new(AtomicUsize::new(0));
                let peak = Arc::new(AtomicUsize::new(0));
                let mut tasks = Vec::new();
                for _ in 0..connects {
                    let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
                    tasks.push(tokio::spawn(async move {
                        let Some(_slot) = gate.enter().await else {
                            return false;
                        };
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(now, Ordering::SeqCst);
                        tokio::task::yield_now().await;
                        running.fetch_sub(1, Ordering::SeqCst);
                        true
                    }));
                }
                let mut looked_up = 0;
                for t in tasks {
                    if t.await.unwrap() {
                        looked_up += 1;
                    }
                }
                (peak.load(Ordering::SeqCst), looked_up, connects - looked_up)
            });
            prop_assert!(peak <= max, "{peak} look-ups at once, bound {max}");
            prop_assert_eq!(looked_up + turned_away, connects);
            // Nobody holds a slot for long here: everyone got in.
            prop_assert_eq!(turned_away, 0);
        }
    }
}
