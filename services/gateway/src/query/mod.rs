//! Questions and the SQL that answers them.
//!
//! - [`params`]: each route's parameters, typed, as serde reads them from the query string.
//! - [`coverage`]: the days the panel covers, why a value is missing, clipped periods.
//! - [`terms`]: metrics, scopes, granularities, periods, formats and ranges.
//! - [`values`]: dates, states, ids, search text and bounded integers, each parsed from its
//!   text and described in the OpenAPI document by the same constants.
//! - [`validated`]: each route's typed query and its canonical form (the cache key).
//! - [`overlap`]: the customer sketches of two groups and of their union.
//! - [`panel`]: the active cards of the panel, over released panel cells.
//! - [`tickers`]: the catalogue's brands of listed companies.
//! - [`read`]: the statements that read the rollups, and the snapshot they run in.

pub mod coverage;
pub mod overlap;
pub mod panel;
pub mod params;
pub mod read;
pub mod terms;
pub mod tickers;
pub mod validated;
pub mod values;

pub use coverage::*;
pub use overlap::*;
pub use panel::*;
pub use params::*;
pub use read::*;
pub use terms::*;
pub use tickers::*;
pub use validated::*;
pub use values::*;
