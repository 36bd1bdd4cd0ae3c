//! Errors of the `altdata resolve` CSV filter. Building a resolver cannot fail (a bad rule is
//! skipped and reported) and resolving a descriptor cannot either.

/// Everything that can fail in this crate.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    #[error("input has no `descriptor` column (columns found: {found})")]
    MissingDescriptorColumn { found: String },
    #[error("reading or writing csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing csv: {0}")]
    Io(#[from] std::io::Error),
}
