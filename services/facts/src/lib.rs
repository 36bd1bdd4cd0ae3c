//! The one writer of the fact tables.
//!
//! Every change to `agg_daily_merchant_spend` and its rollups (weekly and monthly merchant
//! rows, daily, weekly and monthly category × region rows) goes through [`apply`]: the
//! aggregator's flush, review replays and undos, and the tests' seeding. It writes the outbox
//! rows that describe the change (cache invalidation and aggregate updates) in the same
//! transaction, so a change is never committed without its announcement.
//!
//! - [`cells`]: the signed contributions of a batch, keyed by (merchant, region, day), and the
//!   active cards of the panel, keyed by (provider, region, day).
//! - [`write`]: the one statement that adds them to every table, and the outbox rows; the
//!   panel's cards to `agg_daily_panel` (schema/0011) in the same transaction.
//! - [`compact`]: the writers' category rows folded into one row per period, so that reads
//!   sum a row per day instead of one per writer shard.
//! - [`rebuild`]: one shard's aggregates computed again from the identity record (recovery
//!   from events that expired before they were applied), and the disclosure rule's k changed
//!   (every rollup recomputed at it).
//!
//! Invariants: the daily table only ever changes by adding [`Cells`]; a subtraction is the
//! same statement with negative sums and counts and no customers (HyperLogLog sketches cannot
//! subtract, so after a subtraction `customers` may over-count). Every rollup holds the sums of
//! the *released* daily cells (at least k customers, schema/0008) and counts the others, so
//! every answer read from them is a sum of released cells (docs/PRIVACY.md).

pub mod cells;
pub mod compact;
pub mod rebuild;
pub mod write;

pub use cells::{CellDelta, CellKey, Cells, PanelDay};
pub use compact::{compact, Compacted};
pub use rebuild::{
    disclosure, rebuild_shard, rebuild_shard_panel, set_disclosure_k, Disclosure, Rebuilt,
    DISCLOSURE_CHANGED,
};
pub use write::{apply, invalidation_for, Applied, CategoryShard};
