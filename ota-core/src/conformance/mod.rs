//! The store conformance suite: behaviours every store must have, as `pub async fn`s over an
//! `Arc<dyn Store>`, and [`store_conformance_tests!`](crate::store_conformance_tests), which
//! stamps one test per behaviour for a store factory.
//!
//! The suite needs no runtime of its own: concurrency (many claimers at once) is made with
//! joined futures, which a database-backed store runs as truly concurrent queries.
//!
//! ```ignore
//! // In a store crate's tests (the test crate needs tokio as a dev-dependency):
//! ota_core::store_conformance_tests!(my_store_factory);
//! // where `async fn my_store_factory() -> MyStore` returns a fresh, empty store.
//! ```
//!
//! Each behaviour creates its own tenant, so a store shared between behaviours is fine, but
//! a fresh store per test is what the macro does.

mod api_keys;
mod audited;
mod audited_transitions;
mod campaigns;
mod claim_release;
mod content;
mod device_edits;
mod devices;
mod fixtures;
pub mod interleaving;
mod misc;
mod outbox;
mod packages;
mod report_writes;
mod retention;
mod updates;

pub use api_keys::*;
pub use audited::*;
pub use audited_transitions::*;
pub use campaigns::*;
pub use claim_release::*;
pub use content::*;
pub use device_edits::*;
pub use devices::*;
pub use fixtures::Fixture;
pub use misc::*;
pub use outbox::*;
pub use packages::*;
pub use report_writes::*;
pub use retention::*;
pub use updates::*;

/// The names of every behaviour, in the order the macro stamps them.
pub const BEHAVIOURS: &[&str] = &[
    "packages_crud_and_uniqueness",
    "package_listing_pages",
    "package_delete_and_assign_are_atomic",
    "content_round_trip_and_ranges",
    "content_mismatch_keeps_nothing",
    "devices_crud_and_uniqueness",
    "device_listing_pages_by_selector",
    "device_memberships_change",
    "assignments_replace_and_resolve_targets",
    "updates_create_and_refuse_second_unfinished",
    "transition_refuses_stale_writers",
    "transition_with_current_writes_both_or_no_transition",
    "concurrent_claimers_never_overlap",
    "claims_lease_expire_and_release",
    "due_claims_follow_wake_times",
    "updates_list_and_count_by_state",
    "history_per_update_and_device",
    "audit_log_pages",
    "pace_compare_and_set",
    "tenant_isolation",
    "campaigns_crud_and_compare_and_set",
    "campaign_materialization_targets_and_skips",
    "campaign_stats_equal_a_recount",
    "schedules_crud_and_due",
    "releases_write_their_notices_with_them",
    "claims_released_together_never_overlap",
    "notice_claims_lease_and_lapse",
    "concurrent_notice_claimers_never_overlap",
    "newer_notice_replaces_older_of_device_and_kind",
    "an_instance_gives_back_its_claims",
    "api_keys_create_find_and_revoke",
    "api_key_listing_pages",
    "profiles_and_groups_rename_and_delete_unless_used",
    "devices_rename_delete_and_change_token",
    "retention_trims_logs_in_batches",
    "retention_stops_at_a_younger_entry",
    "retention_lists_tenants_with_entries",
    "actions_and_their_audit_entries_are_written_together",
    "failed_actions_write_no_audit_entry",
    "a_refused_audit_entry_refuses_its_action",
    "operator_transitions_are_written_with_their_audit_entry",
    "refused_operator_transitions_write_no_entry",
];

/// Stamps one `#[tokio::test]` per conformance behaviour. `$factory` is a path to an async
/// function (or closure) with no arguments returning a fresh store that implements
/// [`crate::store::Store`] and [`crate::store::ApiKeyStore`]. The calling crate needs `tokio`
/// (with the `macros` and `rt-multi-thread` features) among its dev-dependencies.
#[macro_export]
macro_rules! store_conformance_tests {
    ($factory:path) => {
        $crate::store_conformance_tests!(@stamp $factory;
            packages_crud_and_uniqueness,
            package_listing_pages,
            package_delete_and_assign_are_atomic,
            content_round_trip_and_ranges,
            content_mismatch_keeps_nothing,
            devices_crud_and_uniqueness,
            device_listing_pages_by_selector,
            device_memberships_change,
            assignments_replace_and_resolve_targets,
            updates_create_and_refuse_second_unfinished,
            transition_refuses_stale_writers,
            transition_with_current_writes_both_or_no_transition,
            concurrent_transitions_each_get_their_own_answer,
            bulk_transitions_each_get_their_own_answer,
            concurrent_claimers_never_overlap,
            claims_lease_expire_and_release,
            due_claims_follow_wake_times,
            updates_list_and_count_by_state,
            history_per_update_and_device,
            audit_log_pages,
            pace_compare_and_set,
            tenant_isolation,
            campaigns_crud_and_compare_and_set,
            campaign_materialization_targets_and_skips,
            campaign_stats_equal_a_recount,
            schedules_crud_and_due,
            releases_write_their_notices_with_them,
            claims_released_together_never_overlap,
            notice_claims_lease_and_lapse,
            concurrent_notice_claimers_never_overlap,
            newer_notice_replaces_older_of_device_and_kind,
            an_instance_gives_back_its_claims,
            api_keys_create_find_and_revoke,
            api_key_listing_pages,
            profiles_and_groups_rename_and_delete_unless_used,
            devices_rename_delete_and_change_token,
            retention_trims_logs_in_batches,
            retention_stops_at_a_younger_entry,
            retention_lists_tenants_with_entries,
            actions_and_their_audit_entries_are_written_together,
            failed_actions_write_no_audit_entry,
            a_refused_audit_entry_refuses_its_action,
            operator_transitions_are_written_with_their_audit_entry,
            refused_operator_transitions_write_no_entry,
        );
    };
    (@stamp $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let store = $factory().await;
                $crate::conformance::$name(::std::sync::Arc::new(store)).await;
            }
        )*
    };
}
