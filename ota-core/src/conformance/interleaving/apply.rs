//! Applying one [`Step`](super::Step) of an interleaving to the engine.

use super::*;

impl Interleaving {
    /// Applies one step; refusals an operator may get (illegal transitions, nothing to
    /// retry, ...) are fine, any other error is not.
    pub(super) async fn apply(&mut self, step: &Step) -> Result<(), OtaError> {
        let tenant = self.tenant;
        let kind = PackageKind::Firmware;
        let result = match step {
            Step::AssignDevice { device, pkg } => {
                let d = self.device(*device).id;
                self.ota
                    .assign(
                        ACTOR,
                        tenant,
                        AssignmentTarget::Device(d),
                        self.packages[*pkg].id,
                    )
                    .await
                    .map(drop)
            }
            Step::AssignGroup { group, pkg } => self
                .ota
                .assign(
                    ACTOR,
                    tenant,
                    AssignmentTarget::Group(self.groups[*group]),
                    self.packages[*pkg].id,
                )
                .await
                .map(drop),
            Step::AssignProfile { profile, pkg } => self
                .ota
                .assign(
                    ACTOR,
                    tenant,
                    AssignmentTarget::Profile(self.profiles[*profile]),
                    self.packages[*pkg].id,
                )
                .await
                .map(drop),
            Step::Unassign { target } => {
                let target = match target / 10 {
                    0 => AssignmentTarget::Device(self.device(target % 10).id),
                    1 => AssignmentTarget::Group(self.groups[target % 2]),
                    _ => AssignmentTarget::Profile(self.profiles[target % 2]),
                };
                self.ota
                    .unassign(ACTOR, tenant, kind, target)
                    .await
                    .map(drop)
            }
            Step::Report { device, state } => {
                let mut r = report(*state);
                if *state == UpdateState::Failed {
                    r.error = Some("flash error".into());
                }
                let d = self.device(*device).id;
                self.ota.handle_report(tenant, d, &r).await.map(drop)
            }
            Step::Running {
                device,
                version,
                updated,
            } => {
                let mut r = report(UpdateState::Updated);
                if !updated {
                    r.state = None;
                }
                r.current_title = Some(TITLE.into());
                r.current_version = Some(VERSIONS[*version].into());
                let d = self.device(*device).id;
                self.ota.handle_report(tenant, d, &r).await.map(drop)
            }
            Step::Retry { device } => {
                let d = self.device(*device).id;
                self.ota
                    .retry_update(ACTOR, tenant, d, kind)
                    .await
                    .map(drop)
            }
            Step::Cancel { device } => {
                let d = self.device(*device).id;
                self.ota
                    .cancel_update(ACTOR, tenant, d, kind, "operator")
                    .await
                    .map(drop)
            }
            Step::StartCampaign {
                pkg,
                by_group,
                dynamic,
            } => {
                let target = CampaignTarget::Selection {
                    profile: (!by_group).then_some(self.profiles[0]),
                    groups: if *by_group {
                        BTreeSet::from([self.groups[0]])
                    } else {
                        BTreeSet::new()
                    },
                    source_versions: BTreeSet::new(),
                };
                let mut spec = CampaignSpec::new("c", self.packages[*pkg].id, target);
                spec.dynamic = *dynamic;
                spec.policy = policy();
                match self.ota.create_campaign(ACTOR, tenant, spec).await {
                    Ok(c) => {
                        self.campaigns.push(c.id);
                        self.ota.start_campaign(ACTOR, tenant, c.id).await.map(drop)
                    }
                    Err(e) => Err(e),
                }
            }
            Step::StopCampaign { campaign } => match self.campaign(*campaign) {
                Some(id) => self.ota.stop_campaign(ACTOR, tenant, id).await.map(drop),
                None => Ok(()),
            },
            Step::RetryCampaign { campaign } => match self.campaign(*campaign) {
                Some(id) => self
                    .ota
                    .retry_failed_in_campaign(ACTOR, tenant, id)
                    .await
                    .map(drop),
                None => Ok(()),
            },
            Step::PauseResume { campaign } => match self.campaign(*campaign) {
                Some(id) => {
                    let c = self.ota.campaign(tenant, id).await?;
                    if c.state == CampaignState::Paused {
                        self.ota.resume_campaign(ACTOR, tenant, id).await.map(drop)
                    } else {
                        self.ota.pause_campaign(ACTOR, tenant, id).await.map(drop)
                    }
                }
                None => Ok(()),
            },
            Step::SetProfile { device, profile } => {
                let d = self.device(*device).id;
                self.ota
                    .set_device_profile(ACTOR, tenant, d, self.profiles[*profile])
                    .await
                    .map(drop)
            }
            Step::SetGroups { device, mask } => {
                let d = self.device(*device).id;
                let groups = (0..2)
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| self.groups[i])
                    .collect();
                self.ota
                    .set_device_groups(ACTOR, tenant, d, groups)
                    .await
                    .map(drop)
            }
            Step::Tick { millis } => {
                self.clock.advance(Duration::milliseconds(*millis));
                self.ota.tick().await.map(drop)
            }
            Step::Restart => {
                let mut config = self.config.clone();
                config.instance_id = format!("{}-restarted", self.config.instance_id);
                self.config = config.clone();
                self.ota = Ota::new(
                    self.store.clone(),
                    self.notifier.clone(),
                    self.clock.clone(),
                    config,
                );
                Ok(())
            }
            Step::NewDevice => {
                if self.devices.len() < MAX_DEVICES {
                    self.new_device().await
                } else {
                    Ok(())
                }
            }
        };
        match result {
            Ok(())
            | Err(OtaError::NotAllowed { .. })
            | Err(OtaError::IllegalTransition(_))
            | Err(OtaError::NoUpdate { .. })
            | Err(OtaError::Incompatible { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn campaign(&self, i: usize) -> Option<CampaignId> {
        (!self.campaigns.is_empty()).then(|| self.campaigns[i % self.campaigns.len()])
    }
}

fn report(state: UpdateState) -> DeviceReport {
    DeviceReport {
        kind: PackageKind::Firmware,
        ts: None,
        state: Some(state),
        current_title: None,
        current_version: None,
        error: None,
        progress: None,
    }
}
