//! One notifier for the engine that hands each notice to every transport the server runs.

use ota_core::notifier::{Notice, Notifier, NotifyError};
use std::sync::Arc;

/// Hands every notice to each of its notifiers (the HTTP long-polls, the MQTT endpoint, the
/// bridge). A notice fails when one of them failed: it stays in the outbox and is delivered
/// again later (at least once; devices see the same attributes again).
pub struct FanOut {
    notifiers: Vec<(&'static str, Arc<dyn Notifier>)>,
}

impl FanOut {
    /// Hands notices to each of `notifiers`, named for the logs.
    pub fn new(notifiers: Vec<(&'static str, Arc<dyn Notifier>)>) -> Self {
        Self { notifiers }
    }
}

#[ota_core::async_trait]
impl Notifier for FanOut {
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        let mut failures = Vec::new();
        for (name, notifier) in &self.notifiers {
            if let Err(e) = notifier.notify(notice).await {
                failures.push(format!("{name}: {}", e.message));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(NotifyError {
                message: failures.join("; "),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ota_core::notifier::RecordingNotifier;
    use ota_core::{DeviceId, PackageKind, TenantId};

    struct Refusing;

    #[ota_core::async_trait]
    impl Notifier for Refusing {
        async fn notify(&self, _: &Notice) -> Result<(), NotifyError> {
            Err(NotifyError {
                message: "queue full".into(),
            })
        }
    }

    #[tokio::test]
    async fn every_transport_gets_the_notice_and_a_failure_is_reported() {
        let (a, b) = (
            Arc::new(RecordingNotifier::new()),
            Arc::new(RecordingNotifier::new()),
        );
        let notice = Notice::Withdrawal {
            tenant_id: TenantId::new(),
            device_id: DeviceId::new(),
            kind: PackageKind::Firmware,
            keys: vec!["fw_title".into()],
        };
        let fan = FanOut::new(vec![("a", a.clone()), ("b", b.clone())]);
        fan.notify(&notice).await.unwrap();
        assert_eq!(
            (a.take(), b.take()),
            (vec![notice.clone()], vec![notice.clone()])
        );

        let fan = FanOut::new(vec![("mqtt", Arc::new(Refusing)), ("http", a.clone())]);
        let err = fan.notify(&notice).await.unwrap_err();
        assert_eq!(err.message, "mqtt: queue full");
        assert_eq!(a.take(), vec![notice], "the others still get it");
    }
}
