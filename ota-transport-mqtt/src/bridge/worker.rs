//! The tasks that handle device messages taken from the broker. They publish their answers
//! themselves: never from the task polling the event loop.

use super::notifier::{origin_properties, ORIGIN_PROPERTY};
use super::{BridgeConfig, DeviceKey};
use crate::handler::DeviceHandler;
use crate::protocol::DeviceSession;
use ota_core::store::Store;
use ota_core::Device;
use rumqttc::v5::mqttbytes::v5::Publish;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::AsyncClient;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

pub(crate) struct Context {
    pub(crate) handler: DeviceHandler,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) client: AsyncClient,
    pub(crate) config: BridgeConfig,
    pub(crate) tokens: super::KnownTokens,
}

/// Whether a message was published by a bridge (a notice seen through the subscription).
pub(crate) fn is_own(publish: &Publish) -> bool {
    publish.properties.as_ref().is_some_and(|p| {
        p.user_properties
            .iter()
            .any(|(k, v)| k == ORIGIN_PROPERTY.0 && v == ORIGIN_PROPERTY.1)
    })
}

/// The worker a device's messages go to.
pub(crate) fn shard(key: &str, workers: usize) -> usize {
    let mut hasher = std::hash::DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % workers.max(1) as u64) as usize
}

/// A device as last read, and its protocol session.
struct Known {
    device: Device,
    read_at: Instant,
    session: DeviceSession,
}

/// How long a device record is used before it is read again.
const DEVICE_TTL: Duration = Duration::from_secs(30);
/// Most devices a worker keeps sessions for; beyond, the oldest half is forgotten.
const MAX_KNOWN: usize = 50_000;

pub(crate) async fn run(mut rx: mpsc::Receiver<Publish>, ctx: Context) {
    let handler = &ctx.handler;
    let started = Instant::now();
    let mut known: HashMap<String, Known> = HashMap::new();
    while let Some(publish) = rx.recv().await {
        let Ok(topic) = std::str::from_utf8(&publish.topic) else {
            continue;
        };
        let Some((key, endpoint_topic)) = ctx.config.topics.to_endpoint(topic) else {
            continue;
        };
        let now_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let stale = known
            .get(key)
            .is_none_or(|k| k.read_at.elapsed() > DEVICE_TTL);
        if stale {
            match lookup(&ctx, key).await {
                Some(device) => {
                    if known.len() >= MAX_KNOWN {
                        forget_oldest_half(&mut known);
                    }
                    let entry = known.entry(key.to_string()).or_insert_with(|| Known {
                        device: device.clone(),
                        read_at: Instant::now(),
                        session: DeviceSession::new(ctx.config.limits.clone(), now_ms),
                    });
                    entry.device = device;
                    entry.read_at = Instant::now();
                }
                None => {
                    known.remove(key);
                    tracing::debug!(key, "message for an unknown device dropped");
                    continue;
                }
            }
        }
        let Some(entry) = known.get_mut(key) else {
            continue;
        };
        let handled = handler
            .handle(
                &entry.device,
                &mut entry.session,
                &endpoint_topic,
                &publish.payload,
                now_ms,
            )
            .await;
        if let Some(reason) = handled.disconnect {
            tracing::info!(key, reason, "device message dropped");
        }
        for reply in handled.replies {
            let topic = ctx.config.topics.to_bridge(key, &reply.topic);
            publish_reply(&ctx.client, topic, reply.payload);
        }
    }
}

/// Publishes without waiting on the request queue when it has room, else from a task of its
/// own (so that a full queue never blocks a worker, and through it the event loop).
fn publish_reply(client: &AsyncClient, topic: String, payload: bytes::Bytes) {
    match client.try_publish_with_properties(
        topic.clone(),
        QoS::AtLeastOnce,
        false,
        payload.clone(),
        origin_properties(),
    ) {
        Ok(()) => {}
        Err(_) => {
            let client = client.clone();
            tokio::spawn(async move {
                if let Err(e) = client
                    .publish_with_properties(
                        topic,
                        QoS::AtLeastOnce,
                        false,
                        payload,
                        origin_properties(),
                    )
                    .await
                {
                    tracing::warn!(error = %e, "bridge could not publish a reply");
                }
            });
        }
    }
}

async fn lookup(ctx: &Context, key: &str) -> Option<Device> {
    let found = match &ctx.config.device_key {
        DeviceKey::Token => ctx.store.device_by_token(key).await.map(Some),
        DeviceKey::Name { tenant } => ctx
            .store
            .find_devices_by_name(*tenant, &[key.to_string()])
            .await
            .map(|mut d| d.pop()),
    };
    match found {
        Ok(Some(device)) => {
            if ctx.config.device_key == DeviceKey::Token && ctx.tokens.learn(device.id, key) {
                // Reachable from here now: take what waits for it in the outbox.
                let (ota, id) = (ctx.handler.ota().clone(), device.id);
                tokio::spawn(async move {
                    if let Err(e) = ota.deliver_notices_for(&[id]).await {
                        tracing::warn!(device = %id, error = %e, "waiting notices not taken");
                    }
                });
            }
            Some(device)
        }
        Ok(None) => None,
        Err(e) if e.is_not_found() => None,
        Err(e) => {
            tracing::warn!(key, error = %e, "device lookup failed");
            None
        }
    }
}

fn forget_oldest_half(known: &mut HashMap<String, Known>) {
    let mut ages: Vec<Instant> = known.values().map(|k| k.read_at).collect();
    ages.sort();
    if let Some(cut) = ages.get(ages.len() / 2).copied() {
        known.retain(|_, k| k.read_at > cut);
    }
}
