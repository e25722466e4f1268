//! [`CampaignStore`] in memory.

use super::tables::{Tables, UpdateSlot};
use super::MemoryStore;
use crate::audit::AuditEntry;
use crate::campaign::rollout::plan_waves;
use crate::campaign::{Campaign, CampaignState, CampaignStats, CampaignTarget};
use crate::clock::Timestamp;
use crate::device::Device;
use crate::ids::{CampaignId, DeviceId, TenantId};
use crate::package::Package;
use crate::store::{skip_reason, CampaignStore, Materialized, Page, PageRequest, StoreError};
use crate::update::{self, Update, UpdateState};
use async_trait::async_trait;
use std::ops::Bound;

/// Why `device` cannot be taken by a campaign to `package`, if it cannot.
fn skip(t: &Tables, package: &Package, device: &Device) -> Option<&'static str> {
    if !package.compatibility.allows(device.profile_id) {
        return Some(skip_reason::INCOMPATIBLE);
    }
    if device
        .current
        .get(package.kind)
        .is_some_and(|c| c.title == package.title && c.version == package.version)
    {
        return Some(skip_reason::UP_TO_DATE);
    }
    let busy = t
        .latest
        .get(&(device.id, package.kind))
        .and_then(|id| t.updates.get(id))
        .is_some_and(|s| !s.update.is_settled());
    busy.then_some(skip_reason::BUSY)
}

fn campaign_update(
    c: &Campaign,
    package: &Package,
    device: DeviceId,
    wave: u32,
    now: Timestamp,
) -> Update {
    let mut u = Update::new(
        c.tenant_id,
        device,
        package.kind,
        package.id,
        package.title_version(),
        Some(c.id),
        now,
    );
    u.wave = wave;
    // A QUEUED timeout applies from creation.
    u.wake_at = update::timeout_due(&u, now, &c.spec.policy.timeouts);
    u
}

fn insert_update(t: &mut Tables, u: Update) {
    t.index_update(&u);
    t.tenant_updates
        .entry(u.tenant_id)
        .or_default()
        .insert(u.id);
    t.latest.insert((u.device_id, u.kind), u.id);
    if let Some(c) = u.campaign_id {
        t.campaign_members.entry(c).or_default().insert(u.device_id);
    }
    t.updates.insert(
        u.id,
        UpdateSlot {
            update: u,
            lease: None,
        },
    );
}

#[async_trait]
impl CampaignStore for MemoryStore {
    async fn create_campaign(
        &self,
        campaign: &Campaign,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.audited(audit, |t| {
            if t.campaigns.contains_key(&campaign.id) {
                return Err(StoreError::conflict(
                    "campaign",
                    format!("id {} exists", campaign.id),
                ));
            }
            t.tenant_campaigns
                .entry(campaign.tenant_id)
                .or_default()
                .insert(campaign.id);
            t.campaigns.insert(campaign.id, campaign.clone());
            Ok(())
        })
    }

    async fn get_campaign(&self, tenant: TenantId, id: CampaignId) -> Result<Campaign, StoreError> {
        self.lock()
            .campaigns
            .get(&id)
            .filter(|c| c.tenant_id == tenant)
            .cloned()
            .ok_or_else(|| StoreError::not_found("campaign", id))
    }

    async fn save_campaign(
        &self,
        campaign: &Campaign,
        expected_revision: u64,
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.audited(audit, |t| {
            let stored = t
                .campaigns
                .get_mut(&campaign.id)
                .filter(|c| c.tenant_id == campaign.tenant_id)
                .ok_or_else(|| StoreError::not_found("campaign", campaign.id))?;
            if stored.revision != expected_revision {
                return Err(StoreError::precondition(format!(
                    "campaign {} is at revision {}, not {expected_revision}",
                    campaign.id, stored.revision
                )));
            }
            *stored = campaign.clone();
            Ok(())
        })
    }

    async fn list_campaigns(
        &self,
        tenant: TenantId,
        states: &[CampaignState],
        page: PageRequest,
    ) -> Result<Page<Campaign>, StoreError> {
        let t = self.lock();
        let Some(ids) = t.tenant_campaigns.get(&tenant) else {
            return Ok(Page {
                items: Vec::new(),
                next: None,
            });
        };
        let from = page.after.map_or(Bound::Unbounded, |a| {
            Bound::Excluded(CampaignId::from_uuid(a))
        });
        let items = ids
            .range((from, Bound::Unbounded))
            .filter_map(|id| t.campaigns.get(id))
            .filter(|c| states.is_empty() || states.contains(&c.state))
            .take(page.effective_limit() + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(items, &page, |c| c.id.0))
    }

    async fn active_campaigns(&self) -> Result<Vec<Campaign>, StoreError> {
        let t = self.lock();
        let mut list: Vec<Campaign> = t
            .campaigns
            .values()
            .filter(|c| c.state.is_active())
            .cloned()
            .collect();
        list.sort_by_key(|c| c.id);
        Ok(list)
    }

    async fn ended_campaigns_with_live_updates(&self) -> Result<Vec<Campaign>, StoreError> {
        let t = self.lock();
        let mut list: Vec<Campaign> = t
            .campaigns
            .values()
            .filter(|c| c.state.is_ended())
            .filter(|c| {
                t.campaign_counts.get(&c.id).is_some_and(|waves| {
                    waves.iter().any(|w| {
                        UpdateState::ALL
                            .into_iter()
                            .any(|s| !s.is_terminal() && w.get(s) > 0)
                    })
                })
            })
            .cloned()
            .collect();
        list.sort_by_key(|c| c.id);
        Ok(list)
    }

    async fn copy_campaign_devices(
        &self,
        tenant: TenantId,
        from: CampaignId,
        to: CampaignId,
    ) -> Result<u64, StoreError> {
        let mut t = self.lock();
        for id in [from, to] {
            t.campaigns
                .get(&id)
                .filter(|c| c.tenant_id == tenant)
                .ok_or_else(|| StoreError::not_found("campaign", id))?;
        }
        let list = t.campaign_devices.get(&from).cloned().unwrap_or_default();
        let n = list.len() as u64;
        t.campaign_devices.insert(to, list);
        Ok(n)
    }

    async fn set_campaign_devices(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
        devices: &[DeviceId],
        audit: Option<&AuditEntry>,
    ) -> Result<(), StoreError> {
        self.audited(audit, |t| {
            t.campaigns
                .get(&campaign)
                .filter(|c| c.tenant_id == tenant)
                .ok_or_else(|| StoreError::not_found("campaign", campaign))?;
            for d in devices {
                t.device(tenant, *d)?;
            }
            t.campaign_devices
                .insert(campaign, devices.iter().copied().collect());
            Ok(())
        })
    }

    async fn count_campaign_devices(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
    ) -> Result<u64, StoreError> {
        let t = self.lock();
        t.campaigns
            .get(&campaign)
            .filter(|c| c.tenant_id == tenant)
            .ok_or_else(|| StoreError::not_found("campaign", campaign))?;
        Ok(t.campaign_devices
            .get(&campaign)
            .map_or(0, |d| d.len() as u64))
    }

    async fn materialize_campaign(
        &self,
        campaign: &Campaign,
        package: &Package,
        now: Timestamp,
    ) -> Result<Materialized, StoreError> {
        let mut t = self.lock();
        t.campaigns
            .get(&campaign.id)
            .filter(|c| c.tenant_id == campaign.tenant_id)
            .ok_or_else(|| StoreError::not_found("campaign", campaign.id))?;
        if t.campaign_members
            .get(&campaign.id)
            .is_some_and(|m| !m.is_empty())
        {
            return Err(StoreError::conflict(
                "campaign",
                "the campaign already has updates",
            ));
        }
        let tenant = campaign.tenant_id;
        let candidates: Vec<DeviceId> = match &campaign.spec.target {
            CampaignTarget::DeviceList => t
                .campaign_devices
                .get(&campaign.id)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default(),
            target @ CampaignTarget::Selection { profile, .. } => {
                let pool = match profile {
                    Some(p) => t.profile_members.get(p),
                    None => t.tenant_devices.get(&tenant),
                };
                pool.into_iter()
                    .flatten()
                    .filter_map(|id| t.devices.get(id))
                    .filter(|d| d.tenant_id == tenant && target.selects(d, package.kind))
                    .map(|d| d.id)
                    .collect()
            }
        };
        let mut eligible = Vec::with_capacity(candidates.len());
        let mut skipped = [0u64; 3];
        let reasons = [
            skip_reason::INCOMPATIBLE,
            skip_reason::UP_TO_DATE,
            skip_reason::BUSY,
        ];
        for id in candidates {
            let Some(device) = t.devices.get(&id) else {
                continue;
            };
            match skip(&t, package, device) {
                Some(reason) => {
                    if let Some(i) = reasons.iter().position(|r| *r == reason) {
                        skipped[i] += 1;
                    }
                }
                None => eligible.push(id),
            }
        }
        let wave_sizes = plan_waves(&campaign.spec.waves, eligible.len() as u64);
        // Devices come in id order and update ids grow: the ordered tables the inserts go to
        // are appended to, which keeps materialization cache-friendly.
        let mut ids = eligible.into_iter();
        let mut created = 0u64;
        for (wave, size) in wave_sizes.iter().enumerate() {
            let wave = u32::try_from(wave).unwrap_or(u32::MAX);
            for id in ids.by_ref().take(*size as usize) {
                insert_update(&mut t, campaign_update(campaign, package, id, wave, now));
                created += 1;
            }
        }
        // Waves with no device still get their (zero) counters, so statistics list them.
        let waves = t.campaign_counts.entry(campaign.id).or_default();
        if waves.len() < wave_sizes.len() {
            waves.resize(wave_sizes.len(), Default::default());
        }
        Ok(Materialized {
            created,
            wave_sizes,
            skipped: reasons
                .iter()
                .zip(skipped)
                .filter(|(_, n)| *n > 0)
                .map(|(r, n)| (r.to_string(), n))
                .collect(),
        })
    }

    async fn join_campaign(
        &self,
        campaign: &Campaign,
        package: &Package,
        device: &Device,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut t = self.lock();
        let device = t.device(campaign.tenant_id, device.id)?.clone();
        if t.campaign_members
            .get(&campaign.id)
            .is_some_and(|m| m.contains(&device.id))
        {
            return Ok(false);
        }
        if !campaign.spec.target.selects(&device, package.kind)
            || skip(&t, package, &device).is_some()
        {
            return Ok(false);
        }
        insert_update(
            &mut t,
            campaign_update(campaign, package, device.id, campaign.current_wave, now),
        );
        Ok(true)
    }

    async fn campaign_stats(
        &self,
        tenant: TenantId,
        campaign: CampaignId,
    ) -> Result<CampaignStats, StoreError> {
        let t = self.lock();
        t.campaigns
            .get(&campaign)
            .filter(|c| c.tenant_id == tenant)
            .ok_or_else(|| StoreError::not_found("campaign", campaign))?;
        Ok(CampaignStats::from_waves(
            t.campaign_counts
                .get(&campaign)
                .cloned()
                .unwrap_or_default(),
        ))
    }
}
