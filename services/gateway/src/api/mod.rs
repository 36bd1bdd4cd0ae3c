//! The data routes.
//!
//! - [`answer`]: what every answer shares: format, cache-aside path, subject, suppression note.
//! - [`timeseries`], [`growth`] (overall and per state), [`top`]: the cached questions.
//! - [`overlap`]: customers two groups share (inclusion–exclusion over sketches).
//! - [`panel`]: `normalize=panel`, values per active card of the panel.
//! - [`changes`]: why a number changed (corrections, retractions, review decisions).
//! - [`tickers`]: listed companies and their sales on fiscal periods.
//! - [`reference`]: merchants, categories, freshness.
//! - [`admin`]: the cache flush.
//! - [`keys`]: API keys: list, create, revoke, rotate (admin).

pub mod admin;
pub mod answer;
pub mod changes;
pub mod growth;
pub mod keys;
pub mod overlap;
pub mod panel;
pub mod reference;
pub mod tickers;
pub mod timeseries;
pub mod top;
