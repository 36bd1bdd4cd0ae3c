//! Aggregator metrics. Handles are made once per shard, outside the consume loop.

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};

/// The metric handles of one shard worker.
pub struct ShardMetrics {
    pub events: Counter,
    pub skipped_redeliveries: Counter,
    pub dead_lettered: Counter,
    pub fence_rejections: Counter,
    pub flush_events: Histogram,
    pub flush_seconds: Histogram,
    pub lag: Gauge,
}

impl ShardMetrics {
    pub fn new(shard: u32) -> ShardMetrics {
        let shard = shard.to_string();
        ShardMetrics {
            events: counter!("altdata_aggregator_events_total", "shard" => shard.clone()),
            skipped_redeliveries: counter!("altdata_aggregator_skipped_redeliveries_total", "shard" => shard.clone()),
            dead_lettered: counter!("altdata_aggregator_dlq_total", "shard" => shard.clone()),
            fence_rejections: counter!("altdata_aggregator_fence_rejections_total", "shard" => shard.clone()),
            flush_events: histogram!("altdata_aggregator_flush_events", "shard" => shard.clone()),
            flush_seconds: histogram!("altdata_aggregator_flush_seconds", "shard" => shard.clone()),
            lag: gauge!("altdata_aggregator_lag_messages", "shard" => shard),
        }
    }
}
