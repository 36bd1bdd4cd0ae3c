//! Errors of the resolver: building it from mappings, and the `altdata resolve` CSV filter.

/// Everything that can fail in this crate. Resolving a descriptor itself cannot fail.
#[derive(Debug, thiserror::Error)]
pub enum ResolverError {
    #[error("merchant rule {rule_id} has an invalid regular expression: {source}")]
    InvalidRuleRegex {
        rule_id: i64,
        #[source]
        source: regex::Error,
    },
    #[error("merchant rule {rule_id} has an empty pattern")]
    EmptyRulePattern { rule_id: i64 },
    #[error("input has no `descriptor` column (columns found: {found})")]
    MissingDescriptorColumn { found: String },
    #[error("reading or writing csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("writing csv: {0}")]
    Io(#[from] std::io::Error),
}
