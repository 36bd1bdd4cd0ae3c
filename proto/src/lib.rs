//! Protobuf wire contracts of Altdata Explorer, generated from `proto/altdata/v1/*.proto`.
//!
//! Every message carries `schema_version`; [`SCHEMA_VERSION`] is the one this build writes
//! and the only one it accepts.

/// Version 1 of the wire contracts.
pub mod v1 {
    include!(concat!(env!("OUT_DIR"), "/altdata.v1.rs"));
}

/// The `schema_version` this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

pub use prost::Message;

/// Building a `TransactionBatch` from events already encoded, without decoding them again:
/// a batch's bytes are its `schema_version` field followed by each event as a length-delimited
/// field 2, which is what prost writes for `TransactionBatch { schema_version, events }`.
pub mod batch {
    use prost::encoding::{encode_key, encode_varint, WireType};

    /// Field numbers of `TransactionBatch` (proto/altdata/v1/events.proto).
    const SCHEMA_VERSION_FIELD: u32 = 1;
    const EVENTS_FIELD: u32 = 2;

    /// Starts a batch in `out`.
    pub fn start(out: &mut Vec<u8>) {
        encode_key(SCHEMA_VERSION_FIELD, WireType::Varint, out);
        encode_varint(u64::from(crate::SCHEMA_VERSION), out);
    }

    /// Appends one encoded `TransactionEvent`.
    pub fn push_event(out: &mut Vec<u8>, event: &[u8]) {
        encode_key(EVENTS_FIELD, WireType::LengthDelimited, out);
        encode_varint(event.len() as u64, out);
        out.extend_from_slice(event);
    }
}

#[cfg(test)]
mod tests {
    use super::v1::{TransactionBatch, TransactionEvent};
    use super::Message as _;

    #[test]
    fn a_batch_built_from_encoded_events_is_what_prost_encodes() {
        let events: Vec<TransactionEvent> = (0..3)
            .map(|i| TransactionEvent {
                schema_version: super::SCHEMA_VERSION,
                provider: "p".into(),
                txn_id: format!("t{i}"),
                amount_cents: 100 * i - 150,
                merchant_id: i,
                ..Default::default()
            })
            .collect();
        let mut built = Vec::new();
        super::batch::start(&mut built);
        for event in &events {
            super::batch::push_event(&mut built, &event.encode_to_vec());
        }
        let expected = TransactionBatch {
            schema_version: super::SCHEMA_VERSION,
            events,
        };
        assert_eq!(built, expected.encode_to_vec());
    }
}
