//! The updates this store last wrote, kept as hints of each device's latest update
//! ([`UpdateStore::latest_update_hint`]): a device that reports its progress has its next
//! report judged against the row its previous report wrote, without reading it back. A hint
//! is only ever used for a compare-and-set transition (the revision check fails when another
//! writer changed the row since, and the engine then reads the row afresh), and only an
//! unfinished update is kept: a newer update of the device and kind cannot exist while it is
//! unfinished (one unfinished update per device and kind), and finishing it changes its
//! revision.
//!
//! [`UpdateStore::latest_update_hint`]: ota_core::store::UpdateStore::latest_update_hint

use ota_core::update::Update;
use ota_core::{DeviceId, PackageKind, TenantId};
use std::collections::HashMap;
use std::sync::Mutex;

/// Hints kept at most; past it the table starts over (hints are only a shortcut).
const MAX_HINTS: usize = 65_536;

/// The hints, by device and kind.
#[derive(Debug, Default)]
pub(crate) struct Hints {
    table: Mutex<HashMap<(DeviceId, PackageKind), Update>>,
}

impl Hints {
    /// Records what a transition wrote (committed), or forgets the device's hint when the
    /// update is finished.
    pub(crate) fn written(&self, update: &Update) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let key = (update.device_id, update.kind);
        if update.state.is_terminal() {
            table.remove(&key);
            return;
        }
        if table.len() >= MAX_HINTS {
            table.clear();
        }
        table.insert(key, update.clone());
    }

    /// Forgets the hint of `update`'s device and kind (a write whose outcome is not known
    /// to be what the hint says).
    pub(crate) fn forget(&self, update: &Update) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.remove(&(update.device_id, update.kind));
    }

    /// Takes the hint of a device and kind (used once: the transition computed from it
    /// records the next one).
    pub(crate) fn take(
        &self,
        tenant: TenantId,
        device: DeviceId,
        kind: PackageKind,
    ) -> Option<Update> {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table
            .remove(&(device, kind))
            .filter(|u| u.tenant_id == tenant)
    }
}
