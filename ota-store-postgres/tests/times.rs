//! Times in `timestamptz` columns: a time of whole microseconds (every time the system clock
//! gives) round-trips exactly through the store, anywhere in PostgreSQL's range that
//! `Timestamp` also covers; a finer time (from a test clock) reads back truncated to its
//! microsecond.

use chrono::{DateTime, Duration, TimeZone, Utc};
use ota_core::ids::ApiKeyId;
use ota_core::store::{ApiKeyDigest, ApiKeyRecord, ApiKeyStore, DeviceStore, UpdateStore};
use ota_core::{
    DeviceId, DeviceProfile, PackageId, PackageKind, ProfileId, TenantId, Timestamp, TitleVersion,
    Update,
};
use ota_store_postgres::testing::fresh_store;
use ota_store_postgres::PgStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// PostgreSQL's least `timestamptz` (4714-11-24 00:00:00 UTC BC) in Unix microseconds.
const PG_LEAST_MICROS: i64 = -210_866_803_200_000_000;

fn micros(us: i64) -> Timestamp {
    DateTime::from_timestamp_micros(us).expect("in range")
}

/// Whole-microsecond times: anywhere in the common range, and more often around the
/// epochs (1970, 2000) and in the years a fleet lives in.
fn whole_micros() -> impl Strategy<Value = Timestamp> {
    prop_oneof![
        PG_LEAST_MICROS..=DateTime::<Utc>::MAX_UTC.timestamp_micros(),
        -100_000_000..100_000_000i64,
        946_684_700_000_000..946_684_900_000_000i64,
        -2_208_988_800_000_000..4_102_444_800_000_000i64, // 1900 to 2100
    ]
    .prop_map(micros)
}

/// Writes `t` as a profile's creation time and as every time of an update and an API key,
/// and reads them back.
async fn write_and_read(store: &PgStore, t: Timestamp) -> Vec<Timestamp> {
    let tenant = TenantId::new();
    let profile = DeviceProfile {
        id: ProfileId::new(),
        tenant_id: tenant,
        name: "p".into(),
        created_at: t,
    };
    store.create_profile(&profile, None).await.unwrap();
    let mut update = Update::new(
        tenant,
        DeviceId::new(),
        PackageKind::Firmware,
        PackageId::new(),
        TitleVersion::new("fw", "2.0"),
        None,
        t,
    );
    update.retry_at = Some(t);
    update.wake_at = Some(t);
    store
        .create_updates(std::slice::from_ref(&update))
        .await
        .unwrap();
    let key = ApiKeyRecord {
        id: ApiKeyId::new(),
        tenant_id: tenant,
        name: "k".into(),
        role: "operator".into(),
        digest: unique_digest(),
        created_at: t,
        revoked_at: Some(t),
    };
    store.create_api_key(&key, None).await.unwrap();
    let p = store.get_profile(tenant, profile.id).await.unwrap();
    let u = store.get_update(tenant, update.id).await.unwrap();
    let k = store.get_api_key(tenant, key.id).await.unwrap();
    vec![
        p.created_at,
        u.created_at,
        u.state_changed_at,
        u.updated_at,
        u.retry_at.unwrap(),
        u.wake_at.unwrap(),
        k.created_at,
        k.revoked_at.unwrap(),
    ]
}

/// A digest no other key has (a fresh UUID's 16 bytes, then zeros).
fn unique_digest() -> ApiKeyDigest {
    let mut d = [0u8; 32];
    d[..16].copy_from_slice(uuid::Uuid::now_v7().as_bytes());
    ApiKeyDigest(d)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_microsecond_times_round_trip_exactly() {
    let store = fresh_store().await;
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 128,
        ..Config::default()
    });
    let result = runner.run(&whole_micros(), |t| {
        let back = tokio::task::block_in_place(|| handle.block_on(write_and_read(&store, t)));
        for b in back {
            if b != t {
                return Err(TestCaseError::fail(format!("wrote {t:?}, read {b:?}")));
            }
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ends_of_the_ranges() {
    let store = fresh_store().await;
    // Both ends of the common range round-trip.
    for t in [
        micros(PG_LEAST_MICROS),
        micros(DateTime::<Utc>::MAX_UTC.timestamp_micros()),
    ] {
        assert!(
            write_and_read(&store, t).await.iter().all(|b| *b == t),
            "{t:?}"
        );
    }
    // Before PostgreSQL's least time: written as that time.
    let early = Utc.with_ymd_and_hms(-5000, 1, 1, 0, 0, 0).unwrap();
    assert!(write_and_read(&store, early)
        .await
        .iter()
        .all(|b| *b == micros(PG_LEAST_MICROS)));
    store.close().await;
}

/// A test clock may give nanoseconds: the store keeps the microsecond they fall in
/// (towards the past, also before 1970). The memory store keeps them as they are; engine
/// tests that compare times read back from PostgreSQL use whole microseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finer_times_read_back_truncated_to_their_microsecond() {
    let store = fresh_store().await;
    for (secs, nanos, truncated) in [
        (1_704_067_200, 123_456_789, 123_456_000),
        (-1, 999_999_999, 999_999_000),
        (-1_000_000_000, 1, 0),
    ] {
        let t = Utc.timestamp_opt(secs, nanos).unwrap();
        let expected = Utc.timestamp_opt(secs, truncated).unwrap();
        for b in write_and_read(&store, t).await {
            assert_eq!(b, expected, "{t:?}");
            assert!(t - b < Duration::microseconds(1));
        }
    }
    store.close().await;
}
