//! Aggregator errors, one variant per stage; `retryable` says whether waiting helps.

#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    #[error(transparent)]
    Connect(#[from] altdata_common::connect::ConnectError),
    #[error("database error: {}", database_error_text(.0))]
    Database(#[from] tokio_postgres::Error),
    #[error("database pool error: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("cannot set up the consumer of shard {shard}: {reason}")]
    Consumer { shard: u32, reason: String },
    #[error("shard {shard}: reading from JetStream failed: {reason}")]
    Fetch { shard: u32, reason: String },
    #[error("shard {shard}: acknowledging failed: {reason}")]
    Ack { shard: u32, reason: String },
    #[error("shard {shard}: publishing to the DLQ failed: {reason}")]
    DeadLetter { shard: u32, reason: String },
    #[error(
        "shard {shard} refused: stream {stream} ends at sequence {stream_last}, below the stored offset \
         {stored}; the stream was rolled back or recreated. Events may have been lost or may be \
         re-used; inspect, then reset shard_offsets for this shard deliberately"
    )]
    StreamBehindOffset {
        shard: u32,
        stream: String,
        stream_last: u64,
        stored: u64,
    },
    #[cfg(feature = "fault-injection")]
    #[error("shard {shard}: injected crash after commit, before ack (fault injection)")]
    InjectedCrash { shard: u32 },
    #[error("outbox relay: publishing failed: {0}")]
    Relay(String),
    #[error("recovery refused: {0}")]
    Recovery(String),
    #[error("cannot serve health and metrics: {0}")]
    Ops(#[from] std::io::Error),
}

impl AggregatorError {
    /// Whether the same work may succeed if tried again after a pause.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            AggregatorError::Database(_)
                | AggregatorError::Pool(_)
                | AggregatorError::Fetch { .. }
                | AggregatorError::Ack { .. }
                | AggregatorError::DeadLetter { .. }
                | AggregatorError::Relay(_)
        )
    }
}

/// A PostgreSQL error with the server's message (tokio-postgres' `Display` says only "db error").
fn database_error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => error.to_string(),
    }
}
