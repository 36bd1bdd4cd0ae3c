//! Property test (a time-boxed fuzz): arbitrary bytes through the consumer's batch decoder
//! never panic; they decode to a version-1 batch of version-1 events or are refused with a
//! reason (and dead-lettered).

use altdata_aggregator::window::Window;
use altdata_proto::v1::TransactionEvent;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 5000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_payloads_never_panic_the_decoder(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut window = Window::default();
        match altdata_aggregator::consumer::decode(payload.as_slice()) {
            Ok(batch) => {
                prop_assert!(batch.events.iter().all(|e| e.schema_version == 1));
                for event in &batch.events {
                    window.fold(event, 1);
                }
            }
            Err(reason) => {
                prop_assert!(!reason.is_empty());
                window.cover(1);
            }
        }
        prop_assert_eq!(window.last_stream_seq, 1);
    }

    #[test]
    fn folding_any_events_conserves_cents(amounts in proptest::collection::vec(-1_000_000i64..1_000_000, 1..200)) {
        let mut window = Window::default();
        for (i, amount) in amounts.iter().enumerate() {
            let event = TransactionEvent { schema_version: 1, merchant_id: (i % 7) as i64, amount_cents: *amount, region: "CA".into(), ..Default::default() };
            window.fold(&event, i as u64 + 1);
        }
        let net: i64 = window.cells.cells.values().map(|c| c.gross_cents - c.refund_cents).sum();
        prop_assert_eq!(net, amounts.iter().sum::<i64>());
    }
}
