//! Questions and the SQL that answers them.
//!
//! - [`params`]: each route's parameters, typed, as serde reads them from the query string.
//! - [`coverage`]: the days the panel covers, why a value is missing, clipped periods.
//! - [`terms`]: metrics, scopes, granularities, periods, formats and ranges.
//! - [`values`]: dates, states, ids, search text and bounded integers, each parsed from its
//!   text and described in the OpenAPI document by the same constants.
//! - [`validated`]: each route's typed query and its canonical form (the cache key).
//! - [`read`]: the statements that read the rollups, and the snapshot they run in.

pub mod coverage;
pub mod params;
pub mod read;
pub mod terms;
pub mod validated;
pub mod values;

pub use coverage::*;
pub use params::*;
pub use read::*;
pub use terms::*;
pub use validated::*;
pub use values::*;
