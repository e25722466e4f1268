use super::*;
use proptest::prelude::*;
use serde_json::json;

fn session() -> DeviceSession {
    let limits = ProtocolLimits {
        max_payload_size: 1024,
        max_chunk_size: 4096,
        messages_per_second: Some(1000),
        ..ProtocolLimits::default()
    };
    DeviceSession::new(limits, 0)
}

fn reply(routed: Routed) -> Outgoing {
    match routed {
        Routed::Reply(out) => out,
        other => panic!("expected a reply, got {other:?}"),
    }
}

fn call(routed: Routed) -> EngineCall {
    match routed {
        Routed::Call(call) => call,
        other => panic!("expected an engine call, got {other:?}"),
    }
}

#[test]
fn telemetry_and_client_attributes_are_reports() {
    let mut s = session();
    assert_eq!(
        call(s.route(
            "v1/devices/me/telemetry",
            br#"{"fw_state":"DOWNLOADING"}"#,
            0
        )),
        EngineCall::Report {
            topic: topic::TELEMETRY,
            payload: Bytes::from_static(br#"{"fw_state":"DOWNLOADING"}"#)
        }
    );
    assert!(matches!(
        call(s.route("v1/devices/me/attributes", b"{}", 0)),
        EngineCall::Report {
            topic: topic::ATTRIBUTES,
            ..
        }
    ));
}

#[test]
fn attribute_requests() {
    let mut s = session();
    assert_eq!(
        call(s.route(
            "v1/devices/me/attributes/request/1",
            br#"{"sharedKeys":"fw_title, fw_version,"}"#,
            0
        )),
        EngineCall::SharedAttributes {
            request_id: "1".into(),
            keys: Some(vec!["fw_title".into(), "fw_version".into()]),
            with_client: false
        }
    );
    assert_eq!(
        call(s.route(
            "v1/devices/me/attributes/request/2",
            br#"{"clientKeys":"a","sharedKeys":["sw_title"]}"#,
            0
        )),
        EngineCall::SharedAttributes {
            request_id: "2".into(),
            keys: Some(vec!["sw_title".into()]),
            with_client: true
        }
    );
    assert_eq!(
        call(s.route("v1/devices/me/attributes/request/3", b"", 0)),
        EngineCall::SharedAttributes {
            request_id: "3".into(),
            keys: None,
            with_client: false
        }
    );
    for bad in [
        &b"nope"[..],
        b"[1]",
        br#"{"sharedKeys":5}"#,
        br#"{"sharedKeys":[1]}"#,
    ] {
        let out = reply(s.route("v1/devices/me/attributes/request/9", bad, 0));
        assert_eq!(out.topic, "v1/devices/me/attributes/response/9");
        assert!(out.payload_json().unwrap()["error"].is_string(), "{bad:?}");
    }
}

#[test]
fn session_limits_rpc_and_unknown_methods() {
    let mut s = session();
    let out = reply(s.route(
        "v1/devices/me/rpc/request/5",
        br#"{"method":"getSessionLimits","params":{}}"#,
        0,
    ));
    assert_eq!(out.topic, "v1/devices/me/rpc/response/5");
    let body = out.payload_json().unwrap();
    assert_eq!(body["maxPayloadSize"], 1024);
    assert_eq!(body["maxInflightMessages"], 100);
    assert_eq!(body["rateLimits"]["messages"], "1000:1");
    let out = reply(s.route("v1/devices/me/rpc/request/6", br#"{"method":"reboot"}"#, 0));
    assert_eq!(out.topic, "v1/devices/me/rpc/response/6");
    assert!(out.payload_json().unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("reboot"));
    for bad in [&b""[..], b"{}", br#"{"method":1}"#, b"\xff"] {
        let out = reply(s.route("v1/devices/me/rpc/request/7", bad, 0));
        assert!(out.payload_json().unwrap()["error"].is_string());
    }
}

#[test]
fn chunk_requests_follow_the_payload_rules() {
    let mut s = session();
    let fw = PackageKind::Firmware;
    let chunk =
        |s: &mut DeviceSession, topic: &str, payload: &[u8]| match call(s.route(topic, payload, 0))
        {
            EngineCall::Chunk(c) => c,
            other => panic!("{other:?}"),
        };
    let c = chunk(&mut s, "v2/fw/request/r1/chunk/0", b"1024");
    assert_eq!(
        (c.kind, c.request_id.as_str(), c.chunk, c.size),
        (fw, "r1", 0, 1024)
    );
    // Empty payload: the size used before for this request id.
    assert_eq!(chunk(&mut s, "v2/fw/request/r1/chunk/1", b"").size, 1024);
    // A fresh request id with an empty payload: the whole file.
    assert_eq!(chunk(&mut s, "v2/fw/request/r2/chunk/0", b"").size, 0);
    // A later chunk of an unknown request id without a size: an error, not the whole file
    // (which would end the download early).
    let out = reply(s.route("v2/fw/request/r9/chunk/4", b"", 0));
    assert_eq!(out.topic, "v2/fw/error");
    assert!(String::from_utf8_lossy(&out.payload).contains("send the size"));
    assert_eq!(chunk(&mut s, "v2/sw/request/r1/chunk/0", b"0").size, 0);
    // Too large, malformed size or index: an error on v2/fw/error.
    for (topic, payload) in [
        ("v2/fw/request/r1/chunk/2", &b"4097"[..]),
        ("v2/fw/request/r1/chunk/2", b"-5"),
        ("v2/fw/request/r1/chunk/x", b"10"),
        ("v2/fw/request/r1/chunk", b"10"),
    ] {
        let out = reply(s.route(topic, payload, 0));
        assert_eq!(out.topic, "v2/fw/error", "{topic} {payload:?}");
    }
    let out = reply(s.route("v2/sw/request/r1/chunk/2", b"99999", 0));
    assert_eq!(out.topic, "v2/sw/error");
    assert!(String::from_utf8_lossy(&out.payload).contains("exceeds the limit of 4096"));
}

#[test]
fn binding_refuses_a_request_id_switching_packages() {
    let mut s = session();
    let (p1, p2) = (PackageId::new(), PackageId::new());
    let fw = PackageKind::Firmware;
    assert!(s.bind_download(fw, "r", p1).is_ok());
    assert!(s.bind_download(fw, "r", p1).is_ok());
    assert!(s
        .bind_download(fw, "r", p2)
        .unwrap_err()
        .contains("new request id"));
    assert!(s.bind_download(fw, "r2", p2).is_ok());
}

#[test]
fn unknown_topics_and_oversized_payloads_get_errors() {
    let mut s = session();
    let out = reply(s.route("v1/devices/other/telemetry", b"{}", 0));
    assert_eq!(out.topic, topic::ERRORS);
    assert_eq!(
        out.payload_json().unwrap()["topic"],
        json!("v1/devices/other/telemetry")
    );
    let big = vec![b' '; 1025];
    let out = reply(s.route("v1/devices/me/telemetry", &big, 0));
    assert_eq!(out.topic, topic::ERRORS);
    assert!(out.payload_json().unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("exceeds the limit"));
    let out = reply(s.route("v1/devices/me/rpc/request/1", &big, 0));
    assert_eq!(out.topic, "v1/devices/me/rpc/response/1");
}

#[test]
fn over_the_rate_requests_get_errors_and_telemetry_disconnects() {
    let limits = ProtocolLimits {
        messages_per_second: Some(2),
        ..ProtocolLimits::default()
    };
    let mut s = DeviceSession::new(limits, 0);
    assert!(matches!(
        s.route("v2/fw/request/a/chunk/0", b"10", 0),
        Routed::Call(_)
    ));
    assert!(matches!(
        s.route("v2/fw/request/a/chunk/1", b"10", 0),
        Routed::Call(_)
    ));
    let out = reply(s.route("v2/fw/request/a/chunk/2", b"10", 0));
    assert_eq!(out.topic, "v2/fw/error");
    assert!(String::from_utf8_lossy(&out.payload).contains("rate limit"));
    let out = reply(s.route("v1/devices/me/attributes/request/1", b"{}", 10));
    assert!(out.payload_json().unwrap()["error"]
        .as_str()
        .unwrap()
        .contains("rate limit"));
    assert!(matches!(
        s.route("v1/devices/me/telemetry", b"{}", 20),
        Routed::Disconnect { .. }
    ));
    // A second later the bucket has refilled.
    assert!(matches!(
        s.route("v1/devices/me/telemetry", b"{}", 1100),
        Routed::Call(_)
    ));
}

fn topic_strategy() -> impl Strategy<Value = String> {
    let parts = proptest::sample::select(vec![
        "v1",
        "v2",
        "devices",
        "me",
        "telemetry",
        "attributes",
        "request",
        "response",
        "rpc",
        "fw",
        "sw",
        "chunk",
        "0",
        "1",
        "",
        "+",
        "#",
        "x/y",
        "18446744073709551616",
    ]);
    prop_oneof![
        proptest::collection::vec(parts, 0..8).prop_map(|p| p.join("/")),
        any::<String>(),
    ]
}

proptest! {
    /// No topic or payload makes the router panic; every answer goes to a topic the device
    /// can be sent (no wildcards), and chunk calls stay within the limits.
    #[test]
    fn never_panics(
        messages in proptest::collection::vec(
            (topic_strategy(), proptest::collection::vec(any::<u8>(), 0..64), 0u64..50), 1..40),
    ) {
        let mut s = session();
        let mut now = 0;
        for (topic, payload, step) in messages {
            now += step;
            match s.route(&topic, &payload, now) {
                Routed::Reply(out) => {
                    prop_assert!(!out.topic.contains(['+', '#']) || out.topic == topic::ERRORS);
                }
                Routed::Call(EngineCall::Chunk(c)) => {
                    prop_assert!(c.size <= u64::from(s.limits().max_chunk_size));
                }
                Routed::Call(_) | Routed::Disconnect { .. } => {}
            }
        }
    }

    /// Chunk payloads of every shape: sizes within the limit are taken, others answered on
    /// the error topic.
    #[test]
    fn chunk_payloads(payload in proptest::collection::vec(any::<u8>(), 0..24), n in 0u32..10) {
        let mut s = session();
        match s.route(&format!("v2/fw/request/r/chunk/{n}"), &payload, 0) {
            Routed::Call(EngineCall::Chunk(c)) => prop_assert!(c.size <= 4096),
            Routed::Reply(out) => prop_assert_eq!(out.topic, "v2/fw/error"),
            other => prop_assert!(false, "{:?}", other),
        }
    }
}
