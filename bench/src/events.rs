//! Synthetic `TransactionEvent`s for the measurements that publish straight to the stream
//! (the bare JetStream limit and the freshness load), shaped like ingest's.

use altdata_proto::v1::{ResolutionSource, TransactionEvent};
use altdata_proto::{Message, SCHEMA_VERSION};
use bytes::Bytes;
use rand::Rng;

pub const STATES: [&str; 12] = [
    "CA", "NY", "TX", "FL", "IL", "WA", "PA", "OH", "GA", "NC", "MI", "NJ",
];

/// A generator of plausible events over `merchants` and `days`.
pub struct EventMaker {
    pub merchants: Vec<i64>,
    pub first_day: i32,
    pub days: i32,
    pub customers: u64,
    next_txn: u64,
    tag: String,
}

impl EventMaker {
    pub fn new(merchants: Vec<i64>, first_day: i32, days: i32, tag: &str) -> EventMaker {
        EventMaker {
            merchants,
            first_day,
            days: days.max(1),
            customers: 200_000,
            next_txn: 0,
            tag: tag.to_owned(),
        }
    }

    /// The next event and its `Nats-Msg-Id`.
    pub fn next(&mut self, rng: &mut impl Rng) -> (TransactionEvent, String) {
        self.next_txn += 1;
        let txn_id = format!("{}{:09}", self.tag, self.next_txn);
        // Popularity is skewed, as in card data: a few brands take most of the visits.
        let u: f64 = rng.gen();
        let index = ((u * u * u) * self.merchants.len() as f64) as usize;
        let merchant_id = self.merchants[index.min(self.merchants.len() - 1)];
        let amount_cents = if rng.gen_bool(0.02) {
            -rng.gen_range(100..5_000)
        } else {
            rng.gen_range(150..12_000)
        };
        let event = TransactionEvent {
            schema_version: SCHEMA_VERSION,
            provider: "bench".to_owned(),
            txn_id: txn_id.clone(),
            metric_date: self.first_day + rng.gen_range(0..self.days),
            amount_cents,
            customer_key: rng
                .gen_range(0..self.customers)
                .wrapping_mul(0x9E37_79B9_7F4A_7C15),
            merchant_id,
            region: STATES[rng.gen_range(0..STATES.len())].to_owned(),
            mcc: "5814".to_owned(),
            resolution: ResolutionSource::Alias as i32,
            confidence: 0.97,
            retraction: false,
        };
        (event, format!("bench:{txn_id}"))
    }
}

pub fn encode(event: &TransactionEvent) -> Bytes {
    Bytes::from(event.encode_to_vec())
}
