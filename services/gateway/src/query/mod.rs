//! Questions and the SQL that answers them.
//!
//! - [`params`]: each route's raw parameters, as they arrive.
//! - [`terms`]: metrics, scopes, granularities, periods, ranges and states, parsed once.
//! - [`validated`]: each route's typed query and its canonical form (the cache key).
//! - [`read`]: the statements that read the rollups, and the snapshot they run in.

pub mod params;
pub mod read;
pub mod terms;
pub mod validated;

pub use params::*;
pub use read::*;
pub use terms::*;
pub use validated::*;
