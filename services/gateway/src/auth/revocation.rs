//! Revocation on every gateway within a second: whoever revokes a key (the admin API, a
//! rotation, `altdata keys revoke`) publishes `ApiKeyRevoked` on core NATS
//! (`<prefix>.keys.v1.revoked`), and every gateway, subscribed from start, drops the key from
//! its cache, so its next request is looked up and refused.
//!
//! Core NATS, not a stream: each gateway needs the message only while it holds the key in
//! memory, and a gateway that misses it (disconnected from NATS at that moment) reads the key
//! again within `ALTDATA_API_KEY_CACHE_TTL` anyway. The database is the truth; the message
//! only shortens the wait.

use crate::error::GatewayError;
use crate::AppState;
use altdata_common::connect::Subjects;
use altdata_common::Shutdown;
use altdata_proto::v1::ApiKeyRevoked;
use altdata_proto::{Message, SCHEMA_VERSION};
use chrono::Utc;
use futures::StreamExt;
use std::time::Duration;

/// How long publishing may take before it is reported as failed.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// Tells every gateway that `key_id` was revoked. Returns whether the server took the message;
/// a failure is logged and leaves the revocation to the cache's time to live.
pub async fn announce(nats: &async_nats::Client, subjects: &Subjects, key_id: i64) -> bool {
    let message = ApiKeyRevoked {
        schema_version: SCHEMA_VERSION,
        key_id,
        revoked_at_ms: Utc::now().timestamp_millis(),
    };
    let published = async {
        nats.publish(subjects.keys_revoked(), message.encode_to_vec().into())
            .await
            .map_err(|e| e.to_string())?;
        tokio::time::timeout(PUBLISH_TIMEOUT, nats.flush())
            .await
            .map_err(|_| "flush timed out".to_owned())?
            .map_err(|e| e.to_string())
    }
    .await;
    match published {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(key_id, error = %error, "cannot announce a key revocation; gateways refuse the key once their cache entry expires (ALTDATA_API_KEY_CACHE_TTL)");
            false
        }
    }
}

/// The subscription, made at start so that nothing announced after [`crate::build`] returns
/// is missed.
pub struct RevocationListener {
    subscriber: async_nats::Subscriber,
}

impl RevocationListener {
    pub async fn subscribe(
        nats: &async_nats::Client,
        subjects: &Subjects,
    ) -> Result<RevocationListener, GatewayError> {
        let subscriber = nats
            .subscribe(subjects.keys_revoked())
            .await
            .map_err(|e| GatewayError::Consumer(format!("key revocations: {e}")))?;
        // The server has the subscription once it answered the flush's ping.
        nats.flush()
            .await
            .map_err(|e| GatewayError::Consumer(format!("key revocations: {e}")))?;
        Ok(RevocationListener { subscriber })
    }

    /// Forgets each announced key until shutdown.
    pub async fn run(mut self, state: AppState, shutdown: Shutdown) -> Result<(), GatewayError> {
        loop {
            let message = tokio::select! {
                message = self.subscriber.next() => message,
                _ = shutdown.cancelled() => return Ok(()),
            };
            let Some(message) = message else {
                tracing::warn!("the key revocation subscription ended; revocations now wait for ALTDATA_API_KEY_CACHE_TTL");
                return Ok(());
            };
            match decode(&message.payload) {
                Ok(revoked) => {
                    state.inner.keys.forget(revoked.key_id);
                    tracing::info!(key_id = revoked.key_id, "revoked key forgotten");
                }
                Err(reason) => {
                    tracing::warn!(subject = %message.subject, reason, "unreadable key revocation ignored")
                }
            }
        }
    }
}

fn decode(payload: &[u8]) -> Result<ApiKeyRevoked, String> {
    let revoked = ApiKeyRevoked::decode(payload).map_err(|e| e.to_string())?;
    if revoked.schema_version != SCHEMA_VERSION {
        return Err(format!(
            "schema_version {} is not {SCHEMA_VERSION}",
            revoked.schema_version
        ));
    }
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_decodes_and_other_versions_are_refused() {
        let bytes = ApiKeyRevoked {
            schema_version: SCHEMA_VERSION,
            key_id: 42,
            revoked_at_ms: 1,
        }
        .encode_to_vec();
        assert_eq!(decode(&bytes).map(|r| r.key_id), Ok(42));
        let other = ApiKeyRevoked {
            schema_version: 99,
            ..Default::default()
        }
        .encode_to_vec();
        assert!(decode(&other).is_err());
    }
}
