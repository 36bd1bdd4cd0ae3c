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
    /// Whether waiting helps: a server away or busy, not the file's content.
    pub fn retryable(&self) -> bool {
        match self {
            IngestError::Database(error) => !is_data_error(error),
            IngestError::Pool(_) | IngestError::Publish(_) => true,
            _ => false,
        }
    }

    /// Whether the failure is the file's own (its bytes, its header, its provider's profile,
    /// a value PostgreSQL refuses): the file is marked failed on the ledger and the others go
    /// on. Anything else (a server away, shutdown) leaves it to be resumed.
    pub fn is_the_files(&self) -> bool {
        match self {
            IngestError::Database(error) => is_data_error(error),
            IngestError::Read { .. }
            | IngestError::Header { .. }
            | IngestError::Profile { .. }
            | IngestError::Task(_) => true,
            _ => false,
        }
    }
}

/// PostgreSQL refused a value (class 22, data exception: `invalid byte sequence for encoding
/// "UTF8": 0x00`, a string too long) or a constraint (class 23): trying again refuses it again.
fn is_data_error(error: &tokio_postgres::Error) -> bool {
    error
        .code()
        .is_some_and(|code| code.code().starts_with("22") || code.code().starts_with("23"))
}
