//! A device's access token reaches only that device: its own attributes, its own package's
//! content, its own update. Property test over fleets of devices with a package each (some
//! in a second tenant), through real sockets.

mod support;

use ota_core::engine::NewPackage;
use ota_core::{AssignmentTarget, Device, Package, PackageKind, TenantId, UpdateState};
use proptest::prelude::*;
use std::collections::BTreeSet;
use support::{content, stream_of, Backend, Server, ACTOR};

struct Member {
    device: Device,
    package: Package,
    bytes: Vec<u8>,
    tenant: TenantId,
}

/// A device of `tenant` (a fresh profile there when not the server's) with its own package.
async fn member(s: &Server, tenant: TenantId, i: usize, len: usize) -> Member {
    let profile = if tenant == s.tenant {
        s.profile.id
    } else {
        s.ota
            .create_profile(ACTOR, tenant, &format!("p{i}"))
            .await
            .unwrap()
            .id
    };
    let device = s.ota.new_device(
        tenant,
        &format!("d{i}"),
        profile,
        BTreeSet::new(),
        &format!("secret-{i}-{}", uuid::Uuid::new_v4().simple()),
    );
    s.ota
        .create_devices(ACTOR, std::slice::from_ref(&device))
        .await
        .unwrap();
    let bytes = content(len, i as u64 + 1);
    let new = NewPackage::new(tenant, PackageKind::Firmware, format!("fw{i}"), "1.0");
    let package = s
        .ota
        .upload_package(ACTOR, new, stream_of(bytes.clone(), 1000))
        .await
        .unwrap();
    s.ota
        .assign(
            ACTOR,
            tenant,
            AssignmentTarget::Device(device.id),
            package.id,
        )
        .await
        .unwrap();
    Member {
        device,
        package,
        bytes,
        tenant,
    }
}

async fn state(s: &Server, m: &Member) -> Option<UpdateState> {
    s.ota
        .store()
        .latest_update(m.tenant, m.device.id, PackageKind::Firmware)
        .await
        .unwrap()
        .map(|u| u.state)
}

async fn tokens_reach_only_their_device(sizes: Vec<usize>, foreign: Vec<bool>) {
    let s = Server::start(Backend::Memory).await;
    let other_tenant = TenantId::new();
    let mut members = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let tenant = if foreign[i] { other_tenant } else { s.tenant };
        members.push(member(&s, tenant, i, *len).await);
    }
    s.ota.tick().await.unwrap();
    for (i, m) in members.iter().enumerate() {
        let token = &m.device.access_token;
        // Its own attributes: its package.
        let shared: serde_json::Value = s
            .client
            .get(s.url(token, "attributes?sharedKeys=fw_title,fw_version"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(shared["shared"]["fw_title"], m.package.title.as_str());
        // Its own content, whole.
        let r = s.client.get(s.url(token, "firmware")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.bytes().await.unwrap(), m.bytes);
        // Every other device's package, named by title and version: refused.
        for (j, other) in members.iter().enumerate() {
            if i == j {
                continue;
            }
            let url = s.url(
                token,
                &format!(
                    "firmware?title={}&version={}",
                    other.package.title, other.package.version
                ),
            );
            let r = s.client.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            assert!(
                (400..500).contains(&status),
                "{i} got {j}'s package: {status}"
            );
            let body = r.bytes().await.unwrap();
            assert_ne!(body.as_ref(), other.bytes.as_slice());
        }
        // A report moves only its own update.
        let before: Vec<_> = futures::future::join_all(members.iter().map(|m| state(&s, m))).await;
        let r = s
            .client
            .post(s.url(token, "telemetry"))
            .json(&serde_json::json!({"fw_state": "DOWNLOADING"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let after: Vec<_> = futures::future::join_all(members.iter().map(|m| state(&s, m))).await;
        for (j, (b, a)) in before.iter().zip(&after).enumerate() {
            if j == i {
                assert_eq!(*a, Some(UpdateState::Downloading), "device {i}");
            } else {
                assert_eq!(a, b, "device {i}'s report moved device {j}");
            }
        }
        // A token that is almost right reaches nothing.
        for wrong in [format!("{token}x"), token[..token.len() - 1].to_string()] {
            let r = s
                .client
                .get(s.url(&wrong, "attributes?sharedKeys=fw_title"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
            let r = s
                .client
                .get(s.url(&wrong, "firmware"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 401);
        }
    }
    s.stop().await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]
    #[test]
    fn a_device_token_reaches_only_its_device(
        sizes in proptest::collection::vec(1usize..5000, 2..5),
        foreign in proptest::collection::vec(any::<bool>(), 5),
    ) {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(tokens_reach_only_their_device(sizes, foreign));
    }
}
