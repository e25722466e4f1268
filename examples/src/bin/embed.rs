//! Embedding `ota-core` end to end: store, notifier, fleet, uploads (bytes and a file), an
//! assignment, ticks, device reports, a two-wave campaign and its statistics. Run it with
//! `cargo run -p ota-examples --bin embed` (memory store) or with `-- POSTGRES_URL SCHEMA`.
use ota_core::prelude::*;
use ota_store_postgres::{PgStore, PgStoreOptions};
use std::{collections::BTreeSet, sync::Arc};
use tokio_util::compat::TokioAsyncReadCompatExt;

const ME: &str = "operator@example.com"; // who acts, for the audit log

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let store: Arc<dyn Store> = match args.as_slice() {
        [] => Arc::new(MemoryStore::new()),
        [url, schema] => {
            let options = PgStoreOptions::new(url).schema(schema);
            Arc::new(PgStore::connect(options).await?)
        }
        _ => return Err("usage: embed [POSTGRES_URL SCHEMA]".into()),
    };
    // Devices are told through the notifier (a transport in production). Time comes from a
    // clock: SystemClock in production, a manual one here so that the run is instant.
    let notifier = Arc::new(RecordingNotifier::new());
    let clock = Arc::new(ManualClock::at_epoch_2024());
    let ota = Ota::new(store, notifier.clone(), clock.clone(), OtaConfig::default());
    let tenant = TenantId::new();

    // A fleet: one profile, ten devices, the first two in a canary group.
    let profile = ota.create_profile(ME, tenant, "sensor-v2").await?;
    let canary = ota.create_group(ME, tenant, "canary").await?;
    let devices: Vec<Device> = (0..10)
        .map(|i| {
            let groups = BTreeSet::from_iter((i < 2).then_some(canary.id));
            let (name, token) = (format!("sensor-{i}"), format!("token-{i}"));
            ota.new_device(tenant, &name, profile.id, groups, &token)
        })
        .collect();
    ota.create_devices(ME, &devices).await?;

    // Packages: 1.1 from bytes in memory, 1.2 streamed from a file.
    let new = |version| NewPackage::new(tenant, PackageKind::Firmware, "sensor-fw", version);
    let fw11 = ota.upload_package(ME, new("1.1"), ByteStream::from_vec(vec![1; 4096]));
    let fw11 = fw11.await?;
    let path = std::env::temp_dir().join(format!("sensor-fw-1.2-{}.bin", std::process::id()));
    tokio::fs::write(&path, vec![2; 256 * 1024]).await?;
    let file = tokio::fs::File::open(&path).await?.compat();
    let fw12 = ota.upload_package(ME, new("1.2"), ByteStream::from_reader(file));
    let fw12 = fw12.await?;
    tokio::fs::remove_file(&path).await?;
    let size = fw12.size.unwrap_or(0);
    println!("uploaded {} {} ({size} bytes)", fw12.title, fw12.version);

    // 1.1 to the canary group: a tick releases both updates and notifies the two devices.
    let canaries = AssignmentTarget::Group(canary.id);
    ota.assign(ME, tenant, canaries, fw11.id).await?;
    let released = ota.tick().await?.released;
    println!("released {released}, notices {}", notifier.take().len());

    // The canaries report as ThingsBoard devices do: progress, then the new version.
    let progress = br#"{"fw_state":"DOWNLOADING","fw_progress":40}"#;
    let done =
        br#"{"fw_state":"UPDATED","current_fw_title":"sensor-fw","current_fw_version":"1.1"}"#;
    for device in &devices[..2] {
        ota.handle_payload(device, progress).await?;
        ota.handle_payload(device, done).await?;
    }
    let latest = ota.latest_update(tenant, devices[0].id, PackageKind::Firmware);
    println!("sensor-0: {:?}", latest.await?.map(|u| u.state));

    // A campaign: 1.2 to the whole profile, 20% first, the rest once all of those updated.
    let mut spec = CampaignSpec::new("fw 1.2", fw12.id, CampaignTarget::profile(profile.id));
    spec.waves = vec![
        Wave::new(WaveSize::Percent(20.0)),
        Wave::after_success(WaveSize::Rest, 100.0),
    ];
    let campaign = ota.create_campaign(ME, tenant, spec).await?.id;
    ota.start_campaign(ME, tenant, campaign).await?;
    // Drive time; every device told about 1.2 installs it and says so.
    let done = br#"{"current_fw_title":"sensor-fw","current_fw_version":"1.2"}"#;
    while ota.campaign(tenant, campaign).await?.state == CampaignState::Running {
        println!("tick: released {}", ota.tick().await?.released);
        for notice in notifier.take() {
            let device = devices.iter().find(|d| d.id == notice.device_id());
            ota.handle_payload(device.ok_or("unknown device")?, done)
                .await?;
        }
        clock.advance(ota_core::chrono::Duration::seconds(1));
    }
    let state = ota.campaign(tenant, campaign).await?.state;
    let counts = ota.campaign_stats(tenant, campaign).await?.counts;
    let (updated, all) = (counts.successful(), counts.total());
    println!("campaign {state}: {updated} of {all} updated");
    let history = ota.recent_device_history(tenant, devices[0].id, 20).await?;
    println!("sensor-0: {} history entries", history.len());
    Ok(())
}
