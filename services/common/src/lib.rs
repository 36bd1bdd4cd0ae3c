//! Shared foundation of every Altdata Explorer role: settings, telemetry, shutdown,
//! connections and migrations. The domain types live in `altdata-domain`.
//!
//! # Layout
//! - [`settings`]: typed settings from environment variables, every problem reported at once.
//! - [`telemetry`]: logging, set up in one place.
//! - [`shutdown`]: the one shutdown mechanism (signals, cancellation, named tasks, drain).
//! - [`connect`]: PostgreSQL pool, NATS (version check, streams, subject names), Redis.
//! - [`migrate`]: versioned migrations from `schema/` and the catalogue loader.
//! - [`ops`]: health, readiness and metrics routes.
//! - [`prefixes`]: the streams and Redis keys each pipeline prefix holds, and their removal.

pub mod connect;
pub mod migrate;
pub mod ops;
pub mod prefixes;
pub mod settings;
pub mod shutdown;
pub mod telemetry;

pub use settings::{ConnectionSettings, EnvReader, Prefix, SettingsError};
pub use shutdown::{Shutdown, TaskGroup};
