//! The update rules under interference, as a property: random interleavings of assignments,
//! reassignments, unassignments, device reports, retries (automatic, operator, campaign),
//! cancels, campaign starts, pauses and stops, profile and group moves, new devices and ticks
//! with a manual clock, on the memory store. After every step: at most one live update per
//! device and kind, the live update is the device's effective package (or its campaign's) and
//! compatible, campaign statistics equal a recount, and every notice matches a live update or
//! is a withdrawal (see `ota_core::conformance::interleaving`).

use ota_core::conformance::interleaving::{Interleaving, Step};
use ota_core::memory::MemoryStore;
use proptest::prelude::*;
use std::sync::Arc;

fn steps() -> impl Strategy<Value = Vec<Step>> {
    proptest::collection::vec(
        (any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(op, a, b)| Step::decode(op, a, b)),
        1..60,
    )
}

fn run(steps: &[Step]) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let world = Interleaving::new(Arc::new(MemoryStore::new()))
            .await
            .map_err(|e| format!("setting up: {e}"))?;
        world.run(steps).await
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn every_step_keeps_the_update_rules(steps in steps()) {
        if let Err(e) = run(&steps) {
            prop_assert!(false, "{}", e);
        }
    }
}
