//! Device-scoped topics of bridge mode: every topic of a device lives under
//! `{root}/{device}/` (`v1/devices/{device}/telemetry`, `v1/devices/{device}/v2/fw/request/..`)
//! so that one broker ACL pattern (`pattern readwrite v1/devices/%u/#` in Mosquitto) keeps
//! each device to its own topics. The protocol layer works in endpoint form; these functions
//! translate both ways.

/// The topic layout of a bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgeTopics {
    root: String,
}

impl Default for BridgeTopics {
    fn default() -> Self {
        Self::new("v1/devices")
    }
}

/// Whether `key` can stand as one topic level for a device.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && !key.contains(['/', '+', '#']) && key != "me"
}

impl BridgeTopics {
    /// Topics under `root` (`v1/devices` by default; trailing slashes are dropped).
    pub fn new(root: &str) -> Self {
        Self {
            root: root.trim_end_matches('/').to_string(),
        }
    }

    /// The root.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The filters the bridge subscribes to, as shared subscriptions of `group` when given.
    pub fn filters(&self, group: Option<&str>) -> Vec<String> {
        let share = group.map(|g| format!("$share/{g}/")).unwrap_or_default();
        let r = &self.root;
        [
            format!("{r}/+/telemetry"),
            format!("{r}/+/attributes"),
            format!("{r}/+/attributes/request/+"),
            format!("{r}/+/rpc/request/+"),
            format!("{r}/+/v2/+/request/+/chunk/+"),
        ]
        .into_iter()
        .map(|f| format!("{share}{f}"))
        .collect()
    }

    /// Splits a topic a device published to into its device key and the topic in endpoint
    /// form; `None` when the topic is not under the root.
    pub fn to_endpoint<'a>(&self, topic: &'a str) -> Option<(&'a str, String)> {
        let rest = topic.strip_prefix(self.root.as_str())?.strip_prefix('/')?;
        let (key, tail) = rest.split_once('/')?;
        if !valid_key(key) || tail.is_empty() {
            return None;
        }
        let endpoint = match tail.strip_prefix("v2/") {
            Some(v2) => format!("v2/{v2}"),
            None => format!("v1/devices/me/{tail}"),
        };
        Some((key, endpoint))
    }

    /// The device-scoped topic for a message in endpoint form.
    pub fn to_bridge(&self, key: &str, endpoint_topic: &str) -> String {
        let r = &self.root;
        if let Some(tail) = endpoint_topic.strip_prefix("v1/devices/me/") {
            format!("{r}/{key}/{tail}")
        } else if let Some(tail) = endpoint_topic.strip_prefix("v2/") {
            format!("{r}/{key}/v2/{tail}")
        } else {
            format!("{r}/{key}/{endpoint_topic}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn translation_both_ways() {
        let t = BridgeTopics::default();
        assert_eq!(
            t.to_endpoint("v1/devices/abc/telemetry"),
            Some(("abc", "v1/devices/me/telemetry".to_string()))
        );
        assert_eq!(
            t.to_endpoint("v1/devices/abc/attributes/request/4"),
            Some(("abc", "v1/devices/me/attributes/request/4".to_string()))
        );
        assert_eq!(
            t.to_endpoint("v1/devices/abc/v2/fw/request/1/chunk/0"),
            Some(("abc", "v2/fw/request/1/chunk/0".to_string()))
        );
        for bad in [
            "v1/devices/abc",
            "v1/devices//telemetry",
            "v1/devices/me/telemetry",
            "v1/devicesX/abc/telemetry",
            "other/abc/telemetry",
            "v1/devices/abc/",
        ] {
            assert_eq!(t.to_endpoint(bad), None, "{bad}");
        }
        assert_eq!(
            t.to_bridge("abc", "v2/fw/response/1/chunk/0"),
            "v1/devices/abc/v2/fw/response/1/chunk/0"
        );
        assert_eq!(
            t.to_bridge("abc", "v1/devices/me/attributes"),
            "v1/devices/abc/attributes"
        );
        assert_eq!(
            BridgeTopics::new("fleet/")
                .filters(Some("ota"))
                .first()
                .map(String::as_str),
            Some("$share/ota/fleet/+/telemetry")
        );
    }

    proptest! {
        #[test]
        fn round_trip(key in "[a-zA-Z0-9_.-]{1,20}", tail in "[a-z0-9/]{0,30}", v2 in any::<bool>()) {
            prop_assume!(key != "me");
            let t = BridgeTopics::default();
            let endpoint = if v2 { format!("v2/{tail}") } else { format!("v1/devices/me/{tail}") };
            let bridged = t.to_bridge(&key, &endpoint);
            if let Some((k, back)) = t.to_endpoint(&bridged) {
                prop_assert_eq!(k, key.as_str());
                prop_assert_eq!(back, endpoint);
            } else {
                prop_assert!(tail.is_empty() && !v2);
            }
        }

        #[test]
        fn never_panics(topic in any::<String>()) {
            let _ = BridgeTopics::default().to_endpoint(&topic);
        }
    }
}
