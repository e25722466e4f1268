//! The ota-core store conformance suite against PostgreSQL, one schema per test.

use ota_store_postgres::testing::fresh_store;

ota_core::store_conformance_tests!(fresh_store);
