//! The example server's metered store wrapper must be invisible: every store behaviour holds
//! through it, and the optional capabilities of the store it wraps (steps a store may answer
//! `None` for) reach the engine instead of falling back to the slower default.

use ota_core::clock::{Clock, ManualClock};
use ota_core::memory::MemoryStore;
use ota_core::store::{ClaimRequest, NoticeOutbox, QueueScope};
use ota_examples::server::metered::MeteredStore;
use ota_examples::server::metrics::Metrics;
use std::sync::Arc;

fn metered_memory() -> Arc<dyn ota_core::store::Store> {
    Arc::new(MeteredStore::new(
        Arc::new(MemoryStore::new()),
        Metrics::new(),
    ))
}

/// The conformance behaviours of the steps the wrapper adds work to (history and release
/// counters) or that a store may answer `None` for. (The whole suite needs an API-key store,
/// which the metered store is not: the server keeps keys apart.)
macro_rules! through_the_wrapper {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                ota_core::conformance::$name(metered_memory()).await;
            }
        )*
    };
}

through_the_wrapper!(
    transition_refuses_stale_writers,
    transition_with_current_writes_both_or_no_transition,
    bulk_transitions_each_get_their_own_answer,
    concurrent_claimers_never_overlap,
    releases_write_their_notices_with_them,
    claims_released_together_never_overlap,
    operator_transitions_are_written_with_their_audit_entry,
    refused_operator_transitions_write_no_entry,
    campaign_stats_equal_a_recount,
);

#[tokio::test]
async fn claims_released_together_pass_through_the_wrapper() {
    let inner = Arc::new(MemoryStore::new());
    let metered = MeteredStore::new(inner.clone(), Metrics::new());
    let request = ClaimRequest {
        now: ManualClock::at_epoch_2024().now(),
        limit: 10,
        owner: "metered-test".into(),
        lease: ota_core::chrono::Duration::seconds(30),
    };
    let plan = |_: &ota_core::Update, _: Option<&ota_core::Package>| None;
    let direct = inner
        .claim_and_release(&request, QueueScope::Direct, &plan)
        .await;
    let wrapped = metered
        .claim_and_release(&request, QueueScope::Direct, &plan)
        .await;
    assert!(
        direct.is_some(),
        "the memory store claims and releases in one step"
    );
    assert!(
        wrapped.is_some(),
        "the metered store forwards claim_and_release instead of answering None"
    );
}
