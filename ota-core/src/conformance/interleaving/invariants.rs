//! The invariants checked after every step (listed in the [module documentation](super)).

use super::*;

impl Interleaving {
    async fn updates_of(&self, filter: &UpdateFilter) -> Result<Vec<Update>, String> {
        let mut all = Vec::new();
        let mut page = PageRequest::first(500);
        loop {
            let got = self
                .store
                .list_updates(self.tenant, filter, page)
                .await
                .map_err(|e| e.to_string())?;
            all.extend(got.items);
            match got.next {
                Some(next) => page = next,
                None => return Ok(all),
            }
        }
    }

    /// Checks every invariant of the module documentation.
    pub(super) async fn check(&mut self) -> Result<(), String> {
        let all = self.updates_of(&UpdateFilter::default()).await?;
        let notices = self.notifier.notices();
        let fresh: Vec<Notice> = notices[self.seen_notices..].to_vec();
        self.seen_notices = notices.len();
        for n in &fresh {
            self.last_notice.insert(n.device_id(), n.clone());
        }
        let mut campaigns: HashMap<CampaignId, Campaign> = HashMap::new();
        for id in &self.campaigns {
            let c = self
                .ota
                .campaign(self.tenant, *id)
                .await
                .map_err(|e| e.to_string())?;
            campaigns.insert(*id, c);
        }
        for d in &self.devices {
            let device = self
                .ota
                .device(self.tenant, d.id)
                .await
                .map_err(|e| e.to_string())?;
            let mine: Vec<&Update> = all.iter().filter(|u| u.device_id == d.id).collect();
            // 1. At most one live update.
            let live: Vec<&&Update> = mine.iter().filter(|u| !u.state.is_terminal()).collect();
            if live.len() > 1 {
                return Err(format!(
                    "device {} has {} live updates: {live:?}",
                    device.name,
                    live.len()
                ));
            }
            let latest = self
                .store
                .latest_update(self.tenant, d.id, PackageKind::Firmware)
                .await
                .map_err(|e| e.to_string())?;
            if let Some(u) = live.first() {
                if latest.as_ref().map(|l| l.id) != Some(u.id) {
                    return Err(format!(
                        "the live update of {} is not its latest",
                        device.name
                    ));
                }
                self.check_live(&device, u, &campaigns).await?;
            }
            // 4. Notices.
            let last = self.last_notice.get(&d.id);
            for n in fresh.iter().filter(|n| n.device_id() == d.id) {
                if let Notice::Update { attributes, .. } = n {
                    let version = attributes.get("fw_version").and_then(|v| v.as_str());
                    let ok = latest.as_ref().is_some_and(|l| {
                        Some(l.target.version.as_str()) == version
                            && l.state != UpdateState::Canceled
                    });
                    if !ok {
                        return Err(format!(
                            "{} was told about fw {version:?} but its latest update is {latest:?}",
                            device.name
                        ));
                    }
                }
            }
            if let Some(l) = &latest {
                if l.state.is_in_progress() {
                    let told = matches!(last, Some(Notice::Update { attributes, .. })
                        if attributes.get("fw_version").and_then(|v| v.as_str()) == Some(l.target.version.as_str()));
                    if !told {
                        return Err(format!(
                            "{} is {} to fw {} but its last notice is {last:?}",
                            device.name, l.state, l.target.version
                        ));
                    }
                }
                if l.state == UpdateState::Canceled
                    && self.was_dispatched(l).await?
                    && !matches!(last, Some(Notice::Withdrawal { .. }))
                {
                    return Err(format!(
                        "{}'s notified update to fw {} was canceled without a withdrawal (last notice {last:?})",
                        device.name, l.target.version
                    ));
                }
            }
        }
        // 3. Statistics equal a recount.
        for (id, c) in &campaigns {
            let stats = self
                .ota
                .campaign_stats(self.tenant, *id)
                .await
                .map_err(|e| e.to_string())?;
            let mut recount: HashMap<(u32, UpdateState), u64> = HashMap::new();
            for u in all.iter().filter(|u| u.campaign_id == Some(*id)) {
                *recount.entry((u.wave, u.state)).or_default() += 1;
            }
            for (wave, counts) in stats.waves.iter().enumerate() {
                for (state, n) in counts.iter() {
                    let expected = recount.remove(&(wave as u32, state)).unwrap_or_default();
                    if n != expected {
                        return Err(format!(
                            "campaign {} ({}) counts {n} {state} in wave {wave}, recount {expected}",
                            id, c.state
                        ));
                    }
                }
            }
            if let Some(((wave, state), n)) = recount.into_iter().find(|(_, n)| *n > 0) {
                return Err(format!(
                    "campaign {id} has {n} {state} updates in wave {wave} that its statistics miss"
                ));
            }
        }
        Ok(())
    }

    /// 2. The live update's package is the right one.
    async fn check_live(
        &self,
        device: &Device,
        u: &Update,
        campaigns: &HashMap<CampaignId, Campaign>,
    ) -> Result<(), String> {
        let package = self
            .packages
            .iter()
            .find(|p| p.id == u.package_id)
            .ok_or("unknown package")?;
        if !package.compatibility.allows(device.profile_id) {
            return Err(format!(
                "{}'s live update to fw {} is not compatible with its profile",
                device.name, package.version
            ));
        }
        let effective = self
            .ota
            .effective_package(device, PackageKind::Firmware)
            .await
            .map_err(|e| e.to_string())?;
        match u.campaign_id {
            None => match &effective {
                Some((p, _)) if p.id == u.package_id => Ok(()),
                other => Err(format!(
                    "{}'s live update to fw {} is not its effective package {:?}",
                    device.name,
                    package.version,
                    other.as_ref().map(|(p, _)| &p.version)
                )),
            },
            Some(id) => {
                let c = campaigns.get(&id).ok_or("unknown campaign")?;
                if !matches!(c.state, CampaignState::Running | CampaignState::Paused) {
                    return Err(format!(
                        "{} holds a live update of a {} campaign",
                        device.name, c.state
                    ));
                }
                if c.spec.package_id != u.package_id {
                    return Err("a campaign update to another package".into());
                }
                if let Some((p, e)) = &effective {
                    if e.assigned_at > u.created_at && p.id != u.package_id {
                        return Err(format!(
                            "{}'s campaign update stands against a newer assignment of fw {}",
                            device.name, p.version
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    async fn was_dispatched(&self, u: &Update) -> Result<bool, String> {
        let history = self
            .store
            .update_history(self.tenant, u.id)
            .await
            .map_err(|e| e.to_string())?;
        Ok(history
            .iter()
            .any(|e| e.event == "dispatch" && e.outcome == HistoryOutcome::Applied))
    }
}
