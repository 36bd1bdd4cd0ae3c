//! Property tests (a time-boxed fuzz): arbitrary bytes through the CSV reader and row
//! validation never panic, and every record gets a typed row or a reason.

use altdata_domain::CustomerKeyer;
use altdata_ingest::profile::{ColumnMap, ProviderProfile, CANONICAL_COLUMNS};
use altdata_ingest::records::{BoundedRecords, Next};
use altdata_ingest::sanitize;
use altdata_ingest::validate::RowValidator;
use chrono::NaiveDate;
use proptest::prelude::*;

static KEYER: std::sync::LazyLock<CustomerKeyer> =
    std::sync::LazyLock::new(|| CustomerKeyer::new(b"a fuzzing secret of some length"));

fn validator(profile: &ProviderProfile) -> RowValidator<'_> {
    let header: Vec<String> = CANONICAL_COLUMNS.iter().map(|s| s.to_string()).collect();
    RowValidator {
        columns: ColumnMap::from_header(&header, profile).unwrap_or_else(|m| panic!("{m:?}")),
        profile,
        keyer: &KEYER,
        latest_date: NaiveDate::from_ymd_opt(2026, 12, 1).unwrap_or_default(),
        earliest_date: NaiveDate::from_ymd_opt(2016, 1, 1).unwrap_or_default(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_reader(body in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let profile = ProviderProfile::canonical("fuzz");
        let v = validator(&profile);
        let mut input = CANONICAL_COLUMNS.join(",").into_bytes();
        input.push(b'\n');
        input.extend_from_slice(&body);
        let mut records = BoundedRecords::new(input.as_slice(), b',', 256);
        let mut record = csv::ByteRecord::new();
        while let Ok(Next::Record | Next::TooLong { .. }) = records.read(&mut record) {
            let _ = v.validate(&record).map(|row| row.amount_cents);
        }
    }

    #[test]
    fn what_a_valid_row_stores_holds_no_control_character_or_card_number(
        txn_id in "[a-z0-9\\x00\\x01 -]{1,24}",
        descriptor in "[A-Z0-9\\x00\\x7f\\u{85} -]{1,60}",
    ) {
        let profile = ProviderProfile::canonical("fuzz");
        let v = validator(&profile);
        let fields = [
            txn_id.as_str(), "2026-11-20 10:00:00", "card", descriptor.as_str(), "4.50", "USD",
            "5814", "", "CA", "",
        ];
        if let Ok(row) = v.validate(&csv::ByteRecord::from(fields.to_vec())) {
            for stored in [&row.txn_id, &row.masked_descriptor] {
                prop_assert!(!sanitize::has_control(stored), "{:?}", stored);
                prop_assert!(!sanitize::has_pan(stored), "{:?}", stored);
            }
        }
    }

    #[test]
    fn arbitrary_fields_get_a_row_or_a_reason(fields in proptest::collection::vec(".{0,40}", 10)) {
        let profile = ProviderProfile::canonical("fuzz");
        let v = validator(&profile);
        let record = csv::ByteRecord::from(fields.clone());
        match v.validate(&record) {
            Ok(row) => prop_assert!(row.amount_cents.abs() <= altdata_domain::MAX_ABS_AMOUNT_CENTS),
            Err(reason) => prop_assert!(!reason.to_string().is_empty()),
        }
    }

    #[test]
    fn amounts_parse_exactly_or_not_at_all(whole in 0u64..10_000_000, cents in 0u64..100, negative in any::<bool>()) {
        let text = format!("{}{whole}.{cents:02}", if negative { "-" } else { "" });
        let parsed = altdata_domain::parse_dollars_to_cents(&text);
        let expected = (whole * 100 + cents) as i64 * if negative { -1 } else { 1 };
        prop_assert_eq!(parsed, Ok(expected));
    }
}
