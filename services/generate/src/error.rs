//! Errors of a generate run, one variant per stage.

/// Why a run failed or stopped.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    #[error("cannot open output {location:?}: {reason}")]
    OpenOutput { location: String, reason: String },
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: object_store::Error,
    },
    #[error("cannot compress {path}: {source}")]
    Compress {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the writer of {path} stopped before the day was complete")]
    WriterClosed { path: String },
    #[error("a day task failed: {0}")]
    Task(String),
    #[error("cannot serialise the summary: {0}")]
    Summary(#[from] serde_json::Error),
    #[error("generation stopped by shutdown; files written so far are complete, the truth sidecar is not")]
    Cancelled,
}

impl GenerateError {
    /// Whether running the same command again may succeed (object store hiccups).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            GenerateError::Write { .. } | GenerateError::WriterClosed { .. }
        )
    }
}
