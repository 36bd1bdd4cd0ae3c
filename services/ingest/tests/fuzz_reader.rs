//! Property tests (a time-boxed fuzz): arbitrary bytes through the CSV reader and row
//! validation never panic, and every record gets a typed row or a reason.

use altdata_ingest::profile::{ColumnMap, ProviderProfile, CANONICAL_COLUMNS};
use altdata_ingest::validate::RowValidator;
use chrono::NaiveDate;
use proptest::prelude::*;

fn validator(profile: &ProviderProfile) -> RowValidator<'_> {
    let header: Vec<String> = CANONICAL_COLUMNS.iter().map(|s| s.to_string()).collect();
    RowValidator {
        columns: ColumnMap::from_header(&header, profile).unwrap_or_else(|m| panic!("{m:?}")),
        profile,
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
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input.as_slice());
        let mut record = csv::ByteRecord::new();
        while let Ok(true) = reader.read_byte_record(&mut record) {
            let _ = v.validate(&record).map(|row| row.amount_cents);
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
