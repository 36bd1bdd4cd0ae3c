//! Poison messages: published straight to a shard subject, as a buggy or future producer
//! would. The aggregator must dead-letter each exactly once and count none of them.

use crate::plan::Poison;
use altdata_proto::v1::{TransactionBatch, TransactionEvent};
use altdata_proto::{Message as _, SCHEMA_VERSION};
use anyhow::{bail, Context};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Published {
    /// The transaction stream that stored it (shards spread over several).
    pub stream: String,
    pub seq: u64,
    pub kind: Poison,
    pub subject: String,
}

/// The bytes of poison message number `n`.
pub fn payload(kind: Poison, n: usize) -> anyhow::Result<Vec<u8>> {
    let bytes = match kind {
        // 0x0f is field 1 with wire type 7, which does not exist: undecodable.
        Poison::Garbage => {
            let mut bytes = vec![0x0f, 0xff, 0xfe];
            bytes.extend_from_slice(format!("not a protobuf: faults poison #{n}").as_bytes());
            bytes
        }
        Poison::FutureVersion => TransactionBatch {
            schema_version: 99,
            events: vec![TransactionEvent {
                schema_version: 99,
                provider: "faults".into(),
                txn_id: format!("poison-{n}"),
                metric_date: (chrono::Utc::now().date_naive()
                    - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default())
                .num_days() as i32
                    - 1,
                amount_cents: 9_999_999,
                customer_key: 42,
                merchant_id: 1,
                region: "CA".into(),
                ..Default::default()
            }],
        }
        .encode_to_vec(),
    };
    // The suite must publish real poison: nothing this build would fold.
    if let Ok(batch) = TransactionBatch::decode(bytes.as_slice()) {
        if batch.schema_version == SCHEMA_VERSION {
            bail!("poison #{n} would decode as a valid batch");
        }
    }
    Ok(bytes)
}

/// Publishes poison `n` of `kind` to `shard`, retrying (same Msg-Id) while NATS is away.
pub async fn publish(
    jetstream: &async_nats::jetstream::Context,
    prefix: &str,
    kind: Poison,
    shard: u32,
    n: usize,
) -> anyhow::Result<Published> {
    let subject = format!("{prefix}.txn.v1.{shard}");
    let bytes = bytes::Bytes::from(payload(kind, n)?);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", format!("faults-poison-{n}").as_str());
        let attempt = async {
            jetstream
                .publish_with_headers(subject.clone(), headers, bytes.clone())
                .await?
                .await
                .map_err(anyhow::Error::from)
        };
        match tokio::time::timeout(Duration::from_secs(5), attempt).await {
            Ok(Ok(ack)) => {
                return Ok(Published {
                    stream: ack.stream,
                    seq: ack.sequence,
                    kind,
                    subject,
                })
            }
            Ok(Err(error)) if Instant::now() < deadline => {
                crate::say!("poison publish failed ({error}); retrying");
            }
            Err(_) if Instant::now() < deadline => {}
            Ok(Err(error)) => return Err(error).context("publishing poison"),
            Err(_) => bail!("publishing poison: no ack within 30s"),
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
