//! Several notices of one device told as one attributes update, as ThingsBoard sends them:
//! `{"fw_title": .., "deleted": [..]}`.

use ota_core::notifier::Notice;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// Merges `notices`, oldest first, into one attributes update: the attributes set and the
/// keys deleted since (`"deleted"`), each key as its latest notice left it.
pub(super) fn merge<'a>(notices: impl IntoIterator<Item = &'a Notice>) -> Map<String, Value> {
    let mut set = Map::new();
    let mut deleted = BTreeSet::new();
    for notice in notices {
        match notice {
            Notice::Update { attributes, .. } => {
                for (k, v) in attributes {
                    deleted.remove(k);
                    set.insert(k.clone(), v.clone());
                }
            }
            Notice::Withdrawal { keys, .. } => {
                for k in keys {
                    set.remove(k);
                    deleted.insert(k.clone());
                }
            }
        }
    }
    if !deleted.is_empty() {
        let keys = deleted.into_iter().map(Value::String).collect();
        set.insert("deleted".to_string(), Value::Array(keys));
    }
    set
}
