//! Ingest errors, one variant per stage; `retryable` says whether waiting helps.

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Connect(#[from] altdata_common::connect::ConnectError),
    #[error("database error: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("landing zone {location}: {reason}")]
    Landing { location: String, reason: String },
    #[error("{path}: {reason}")]
    Read { path: String, reason: String },
    #[error("{path}: the header is missing or lacks column(s) {missing:?}")]
    Header { path: String, missing: Vec<String> },
    #[error("provider profile {path}: {reason}")]
    Profile { path: String, reason: String },
    #[error("merchant resolver: {0}")]
    Resolver(String),
    #[error("publishing to JetStream failed: {0}")]
    Publish(String),
    #[error("a task of the file's pipeline failed: {0}")]
    Task(String),
    #[error("stopped by shutdown before the file was finished")]
    Interrupted,
}

impl IngestError {
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            IngestError::Database(_) | IngestError::Pool(_) | IngestError::Publish(_)
        )
    }
}
