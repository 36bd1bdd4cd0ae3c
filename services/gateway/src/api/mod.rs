//! The data routes.
//!
//! - [`answer`]: what every answer shares: format, cache-aside path, subject, suppression note.
//! - [`timeseries`], [`growth`] (overall and per state), [`top`]: the cached questions.
//! - [`changes`]: why a number changed (corrections, retractions, review decisions).
//! - [`reference`]: merchants, categories, freshness.
//! - [`admin`]: the cache flush.
//! - [`keys`]: API keys: list, create, revoke, rotate (admin).

pub mod admin;
pub mod answer;
pub mod changes;
pub mod growth;
pub mod keys;
pub mod reference;
pub mod timeseries;
pub mod top;
