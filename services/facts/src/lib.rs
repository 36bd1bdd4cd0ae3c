//! The one writer of the fact tables.
//!
//! Every change to `agg_daily_merchant_spend` and its rollups (weekly and monthly merchant
//! rows, daily, weekly and monthly category × region rows) goes through [`apply`]: the
//! aggregator's flush, review replays and undos, and the tests' seeding. It writes the outbox
//! rows that describe the change (cache invalidation and aggregate updates) in the same
//! transaction, so a change is never committed without its announcement.
//!
//! - [`cells`]: the signed contributions of a batch, keyed by (merchant, region, day).
//! - [`write`]: the one statement that adds them to every table, and the outbox rows.
//! - [`rebuild`]: one shard's aggregates computed again from the identity record (recovery
//!   from events that expired before they were applied).
//!
//! Invariant: the tables only ever change by adding [`Cells`]; a subtraction is the same
//! statement with negative sums and counts and no customers (HyperLogLog sketches cannot
//! subtract, so after a subtraction `customers` may over-count).

pub mod cells;
pub mod rebuild;
pub mod write;

pub use cells::{CellDelta, CellKey, Cells};
pub use rebuild::{rebuild_shard, Rebuilt};
pub use write::{apply, invalidation_for, Applied, CategoryShard};
