//! Device HTTP API (ThingsBoard-compatible, with resumable `Range` downloads) and the
//! management REST API of the OTA library.
//!
//! The device API is [`device_router`]: build the engine with an [`HttpNotifier`], give the
//! same notifier to [`DeviceApiOptions`], and serve the router (see [`device`] for the routes):
//!
//! ```no_run
//! use std::sync::Arc;
//! use ota_core::engine::{Ota, OtaConfig};
//! use ota_transport_http::{device_router, DeviceApiOptions, HttpNotifier};
//!
//! # async fn run() -> std::io::Result<()> {
//! let notifier = HttpNotifier::new();
//! let ota = Ota::new(
//!     Arc::new(ota_core::memory::MemoryStore::new()),
//!     Arc::new(notifier.clone()),
//!     Arc::new(ota_core::SystemClock),
//!     OtaConfig::default(),
//! );
//! let options = DeviceApiOptions::new(notifier).rate_limit(Some("20:1,600:60".parse().unwrap()));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! axum::serve(listener, device_router(ota, options)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! The management API is in [`management`]: [`management_router`] builds it.
//!
//! [`server::serve`] serves either router (or both, merged) with a bound on connections and
//! timeouts for slow clients ([`ServerLimits`]); the example above works with it too.
#![warn(missing_docs)]

pub mod device;
mod error;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzzing;
pub mod management;
mod range;
pub mod server;

pub use device::{device_router, ContentCache, DeviceApiOptions, HttpNotifier, RateLimit};
pub use error::ApiError;
pub use management::{management_router, ManagementOptions};
pub use server::{serve, ServerLimits};
