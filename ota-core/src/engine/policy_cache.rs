//! The update policies of started campaigns, kept in memory.
//!
//! Every state change of a campaign's update needs the campaign's policy (timeouts and
//! retries). A campaign's definition can change only while it is DRAFT or SCHEDULED, before it
//! has any update, so the policy read once for a started campaign stays right for as long as the
//! campaign exists: the cache never has to be told of a change, not even by another instance.

use crate::campaign::Campaign;
use crate::ids::{CampaignId, TenantId};
use crate::update::UpdatePolicy;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How many campaigns' policies are kept; past it the cache starts over (a fleet rarely runs
/// more than a few campaigns at once, and a miss costs one store read).
const CAPACITY: usize = 1024;

/// Policies of started campaigns by tenant and id.
#[derive(Debug, Default)]
pub(super) struct PolicyCache {
    policies: Mutex<HashMap<(TenantId, CampaignId), Arc<UpdatePolicy>>>,
}

impl PolicyCache {
    /// The kept policy of campaign `id`, if any.
    pub(super) fn get(&self, tenant: TenantId, id: CampaignId) -> Option<Arc<UpdatePolicy>> {
        self.lock().get(&(tenant, id)).cloned()
    }

    /// The policy of `campaign`, kept when the campaign can no longer be edited.
    pub(super) fn remember(&self, campaign: &Campaign) -> Arc<UpdatePolicy> {
        let policy = Arc::new(campaign.spec.policy.clone());
        if !campaign.state.is_editable() {
            let mut policies = self.lock();
            if policies.len() >= CAPACITY {
                policies.clear();
            }
            policies.insert((campaign.tenant_id, campaign.id), Arc::clone(&policy));
        }
        policy
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<(TenantId, CampaignId), Arc<UpdatePolicy>>> {
        // A panic while the map was held leaves it whole (each step is one insert or clear).
        self.policies.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::{CampaignSpec, CampaignState, CampaignTarget};
    use crate::ids::PackageId;
    use crate::package::PackageKind;
    use crate::update::UpdateState;

    fn campaign(state: CampaignState, initiated_secs: i64) -> Campaign {
        let mut spec = CampaignSpec::new("c", PackageId::new(), CampaignTarget::DeviceList);
        spec.policy.timeouts = spec.policy.timeouts.with(
            UpdateState::Initiated,
            chrono::Duration::seconds(initiated_secs),
        );
        let mut c = Campaign::new(
            TenantId::new(),
            PackageKind::Firmware,
            spec,
            "test",
            chrono::Utc::now(),
        );
        c.state = state;
        c
    }

    #[test]
    fn keeps_the_policy_of_campaigns_that_can_no_longer_change() {
        let cache = PolicyCache::default();
        for state in [
            CampaignState::Running,
            CampaignState::Paused,
            CampaignState::Finished,
        ] {
            let c = campaign(state, 7);
            assert_eq!(*cache.remember(&c), c.spec.policy);
            assert_eq!(
                cache.get(c.tenant_id, c.id).as_deref(),
                Some(&c.spec.policy)
            );
            // Another tenant's campaign of the same id is not this one.
            assert!(cache.get(TenantId::new(), c.id).is_none());
        }
    }

    #[test]
    fn does_not_keep_the_policy_of_editable_campaigns() {
        let cache = PolicyCache::default();
        for state in [CampaignState::Draft, CampaignState::Scheduled] {
            let c = campaign(state, 7);
            assert_eq!(*cache.remember(&c), c.spec.policy, "answered all the same");
            assert!(cache.get(c.tenant_id, c.id).is_none(), "{state} kept");
        }
    }

    #[test]
    fn starts_over_past_its_capacity() {
        let cache = PolicyCache::default();
        let first = campaign(CampaignState::Running, 1);
        cache.remember(&first);
        for _ in 1..CAPACITY {
            cache.remember(&campaign(CampaignState::Running, 1));
        }
        assert!(
            cache.get(first.tenant_id, first.id).is_some(),
            "full, not over"
        );
        let last = campaign(CampaignState::Running, 2);
        cache.remember(&last);
        assert!(cache.get(first.tenant_id, first.id).is_none());
        assert!(cache.get(last.tenant_id, last.id).is_some());
        assert_eq!(cache.lock().len(), 1);
    }
}
