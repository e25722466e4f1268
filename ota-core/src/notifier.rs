//! Delivering update notices to devices. Transports implement [`Notifier`]; the engine calls it
//! when it releases an update (INITIATED) and when an assignment is withdrawn.

use crate::ids::{DeviceId, TenantId};
use crate::package::PackageKind;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::sync::Mutex;

/// What a device is told.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Notice {
    /// New shared attributes for an update (`fw_title`, `fw_version`, `fw_size`, ...).
    Update {
        /// The device's tenant.
        tenant_id: TenantId,
        /// The device.
        device_id: DeviceId,
        /// Firmware or software.
        kind: PackageKind,
        /// The attributes, as built by [`crate::wire::update_notice`].
        attributes: serde_json::Map<String, serde_json::Value>,
    },
    /// The update's shared attributes were deleted (ThingsBoard's `{"deleted":[...]}`).
    Withdrawal {
        /// The device's tenant.
        tenant_id: TenantId,
        /// The device.
        device_id: DeviceId,
        /// Firmware or software.
        kind: PackageKind,
        /// The deleted attribute keys.
        keys: Vec<String>,
    },
}

impl Notice {
    /// The device the notice is for.
    pub fn device_id(&self) -> DeviceId {
        match self {
            Self::Update { device_id, .. } | Self::Withdrawal { device_id, .. } => *device_id,
        }
    }

    /// The kind the notice is about.
    pub fn kind(&self) -> PackageKind {
        match self {
            Self::Update { kind, .. } | Self::Withdrawal { kind, .. } => *kind,
        }
    }
}

/// A notice could not be handed to the transport. A device that is offline is not an error:
/// it reads its shared attributes when it comes back.
#[derive(Debug, thiserror::Error)]
#[error("notification failed: {message}")]
pub struct NotifyError {
    /// What went wrong.
    pub message: String,
}

/// Delivers notices to devices: the one trait every transport (and every platform with its
/// own device channel) implements.
///
/// The engine calls [`Notifier::notify`] when it releases an update (the device should fetch
/// the new shared attributes) and when it withdraws one. A notifier hands the notice to its
/// transport and returns; it should not wait for the device. A device that is offline is not
/// an error: it reads its attributes when it comes back. Return [`NotifyError`] only when the
/// notice could not be handed over at all; the engine counts it
/// ([`TickReport::notify_failures`](crate::engine::TickReport::notify_failures)) and the update
/// stays INITIATED.
///
/// # Implementing it
///
/// The trait is async through the [`async_trait`](crate::async_trait) attribute, re-exported by
/// this crate: put `#[ota_core::async_trait]` (or `#[async_trait]` with the
/// [prelude](crate::prelude)) on the `impl` block and write a plain `async fn`.
///
/// ```
/// use ota_core::prelude::*;
/// use std::sync::Mutex;
///
/// /// Publishes notices to a platform's device channel (here: a list).
/// #[derive(Default)]
/// struct MyChannel {
///     sent: Mutex<Vec<String>>,
/// }
///
/// #[ota_core::async_trait]
/// impl Notifier for MyChannel {
///     async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
///         let line = match notice {
///             Notice::Update { device_id, attributes, .. } => {
///                 format!("{device_id}: {}", serde_json::Value::Object(attributes.clone()))
///             }
///             Notice::Withdrawal { device_id, keys, .. } => {
///                 format!("{device_id}: deleted {keys:?}")
///             }
///         };
///         self.sent.lock().map_err(|_| NotifyError { message: "poisoned".into() })?.push(line);
///         Ok(())
///     }
/// }
///
/// // The engine takes it as `Arc<dyn Notifier>`.
/// let notifier: std::sync::Arc<dyn Notifier> = std::sync::Arc::new(MyChannel::default());
/// # let _ = notifier;
/// ```
#[async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers `notice`, or queues it for delivery.
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError>;
}

/// A notifier that only records what it was given. For tests.
#[derive(Debug, Default)]
pub struct RecordingNotifier {
    notices: Mutex<Vec<Notice>>,
}

impl RecordingNotifier {
    /// An empty recorder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every notice so far, in order.
    pub fn notices(&self) -> Vec<Notice> {
        self.notices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Takes every notice so far, leaving the recorder empty.
    pub fn take(&self) -> Vec<Notice> {
        std::mem::take(&mut *self.notices.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[async_trait]
impl Notifier for RecordingNotifier {
    async fn notify(&self, notice: &Notice) -> Result<(), NotifyError> {
        self.notices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(notice.clone());
        Ok(())
    }
}
