//! Row validation: one CSV record in, a typed row or a reason out. Every reason says what was
//! wrong in words a data-ops person can act on.

use crate::profile::{AmountUnit, ColumnMap, ProviderProfile, RefundSign};
use crate::sanitize;
use altdata_domain::{
    parse_dollars_to_cents, AmountError, CustomerKeyer, Region, MAX_ABS_AMOUNT_CENTS,
};
use chrono::{DateTime, NaiveDate, NaiveDateTime};
use std::borrow::Cow;
use std::fmt;

/// The longest value accepted in any field.
pub const MAX_FIELD_LEN: usize = 256;
/// The longest transaction id accepted.
pub const MAX_TXN_ID_LEN: usize = 64;

/// A row that passed validation, borrowing from its record. Its text is clean of control
/// characters and its card numbers masked ([`sanitize`]), except where noted.
#[derive(Debug)]
pub struct ValidRow<'r> {
    /// As sent; or, when it holds a card number, a keyed pseudonym of it (`pan-<hex>`), so
    /// that the row keeps an identity of its own and no card number is stored or published.
    pub txn_id: Cow<'r, str>,
    pub metric_date: NaiveDate,
    /// As sent (only its keyed hash leaves ingest).
    pub card_id: Cow<'r, str>,
    /// What the resolver reads: it may hold a card number, so it is never stored (the
    /// resolver then resolves `STARBUCKS 4111 1111 1111 1111` as it always did).
    pub descriptor: Cow<'r, str>,
    /// What is stored and hashed: the descriptor with its card numbers masked.
    pub masked_descriptor: Cow<'r, str>,
    /// Canonical sign: negative for a refund.
    pub amount_cents: i64,
    pub mcc: Cow<'r, str>,
    /// The state column, if given (validated).
    pub state: Option<Region>,
    /// Some field was not valid UTF-8 and was decoded lossily.
    pub lossy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectReason {
    ColumnCount {
        expected: usize,
        found: usize,
    },
    Empty(&'static str),
    OverLong {
        field: &'static str,
        length: usize,
        max: usize,
    },
    Amount(AmountError),
    Date(String),
    FutureDate {
        date: NaiveDate,
        latest: NaiveDate,
    },
    AncientDate {
        date: NaiveDate,
        earliest: NaiveDate,
    },
    Currency(String),
    Mcc(String),
    UnknownState(String),
    /// A control character where cleaning would change the row's identity.
    ControlCharacter(&'static str),
    RecordTooLong {
        max: usize,
    },
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RejectReason::ColumnCount { expected, found } => {
                write!(f, "wrong column count: expected {expected}, found {found}")
            }
            RejectReason::Empty(field) => write!(f, "{field} is empty"),
            RejectReason::OverLong { field, length, max } => {
                write!(f, "{field} is too long: {length} bytes, at most {max}")
            }
            RejectReason::Amount(error) => write!(f, "bad amount: {error}"),
            RejectReason::Date(text) => write!(
                f,
                "bad posted_at {text:?}: expected RFC 3339 or YYYY-MM-DD HH:MM:SS"
            ),
            RejectReason::FutureDate { date, latest } => {
                write!(
                    f,
                    "posted_at {date} is in the future (latest accepted {latest})"
                )
            }
            RejectReason::AncientDate { date, earliest } => {
                write!(
                    f,
                    "posted_at {date} is older than the restatement horizon (earliest accepted {earliest})"
                )
            }
            RejectReason::Currency(code) => {
                write!(
                    f,
                    "currency {code:?} is not supported: only USD is accepted"
                )
            }
            RejectReason::Mcc(text) => write!(f, "mcc {text:?} is not a 4-digit code"),
            RejectReason::UnknownState(text) => write!(f, "unknown state code {text:?}"),
            RejectReason::ControlCharacter(field) => write!(
                f,
                "{field} holds a control character (such as NUL): cleaning it would change the row's identity"
            ),
            RejectReason::RecordTooLong { max } => write!(
                f,
                "the record is too long: more than {max} bytes or {} fields (ALTDATA_MAX_RECORD_BYTES)",
                crate::records::MAX_FIELDS
            ),
        }
    }
}

/// Validates records of one file against its column map and profile.
pub struct RowValidator<'p> {
    pub columns: ColumnMap,
    pub profile: &'p ProviderProfile,
    /// Keys the pseudonym of a transaction id that holds a card number.
    pub keyer: &'p CustomerKeyer,
    pub latest_date: NaiveDate,
    pub earliest_date: NaiveDate,
}

impl RowValidator<'_> {
    pub fn validate<'r>(&self, record: &'r csv::ByteRecord) -> Result<ValidRow<'r>, RejectReason> {
        if record.len() != self.columns.width {
            return Err(RejectReason::ColumnCount {
                expected: self.columns.width,
                found: record.len(),
            });
        }
        let mut lossy = false;
        let mut field = |slot: usize| -> Cow<'r, str> {
            let Some(bytes) = self.columns.index[slot].and_then(|i| record.get(i)) else {
                return Cow::Borrowed("");
            };
            let bytes = trim_ascii(bytes);
            match std::str::from_utf8(bytes) {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => {
                    lossy = true;
                    String::from_utf8_lossy(bytes)
                }
            }
        };
        let raw_txn_id = field(0);
        let card_id = field(2);
        if sanitize::has_control(&raw_txn_id) {
            return Err(RejectReason::ControlCharacter("txn_id"));
        }
        // Control characters become spaces everywhere else, before any check reads the field.
        let mut field = |slot: usize| clean(field(slot));
        let posted_at = field(1);
        let descriptor = field(3);
        let amount = field(4);
        let currency = field(5);
        let mcc = field(6);
        let city = field(7);
        let state = field(8);
        let postal_code = field(9);

        required("txn_id", &raw_txn_id, MAX_TXN_ID_LEN)?;
        required("posted_at", &posted_at, MAX_FIELD_LEN)?;
        required("card_id", &card_id, MAX_FIELD_LEN)?;
        required("descriptor", &descriptor, MAX_FIELD_LEN)?;
        required("amount", &amount, MAX_FIELD_LEN)?;
        bounded("city", &city, MAX_FIELD_LEN)?;
        bounded("postal_code", &postal_code, 16)?;

        let currency = if currency.is_empty() {
            self.profile
                .format
                .default_currency
                .as_deref()
                .unwrap_or("")
        } else {
            &currency
        };
        if !currency.eq_ignore_ascii_case("USD") {
            return Err(RejectReason::Currency(truncate(currency, 16).to_owned()));
        }
        let metric_date = self.parse_date(&posted_at)?;
        let amount_cents = self.parse_amount(&amount, record)?;
        let mcc_is_valid =
            mcc.is_empty() || (mcc.len() == 4 && mcc.bytes().all(|b| b.is_ascii_digit()));
        if !mcc_is_valid {
            return Err(RejectReason::Mcc(truncate(&mcc, 16).to_owned()));
        }
        let state = if state.is_empty() {
            None
        } else {
            Some(
                Region::parse(&state)
                    .ok_or_else(|| RejectReason::UnknownState(truncate(&state, 16).to_owned()))?,
            )
        };
        let txn_id = if sanitize::has_pan(&raw_txn_id) {
            Cow::Owned(format!("pan-{}", self.keyer.pseudonym(&raw_txn_id)))
        } else {
            raw_txn_id
        };
        let masked_descriptor = match sanitize::mask_pans(&descriptor) {
            Cow::Borrowed(_) => descriptor.clone(),
            Cow::Owned(masked) => Cow::Owned(masked),
        };
        Ok(ValidRow {
            txn_id,
            metric_date,
            card_id,
            descriptor,
            masked_descriptor,
            amount_cents,
            mcc,
            state,
            lossy,
        })
    }

    fn parse_date(&self, text: &str) -> Result<NaiveDate, RejectReason> {
        let date = parse_posted_at(text, &self.profile.format.date_formats)
            .ok_or_else(|| RejectReason::Date(truncate(text, 40).to_owned()))?;
        if date > self.latest_date {
            return Err(RejectReason::FutureDate {
                date,
                latest: self.latest_date,
            });
        }
        if date < self.earliest_date {
            return Err(RejectReason::AncientDate {
                date,
                earliest: self.earliest_date,
            });
        }
        Ok(date)
    }

    fn parse_amount(&self, text: &str, record: &csv::ByteRecord) -> Result<i64, RejectReason> {
        let magnitude = match self.profile.format.amount_unit {
            AmountUnit::Dollars => parse_dollars_to_cents(text).map_err(RejectReason::Amount)?,
            AmountUnit::Cents => {
                let cents: i64 = text.parse().map_err(|_| {
                    RejectReason::Amount(AmountError::NotDecimal(truncate(text, 40).to_owned()))
                })?;
                if cents.abs() > MAX_ABS_AMOUNT_CENTS {
                    return Err(RejectReason::Amount(AmountError::OutOfRange(
                        truncate(text, 40).to_owned(),
                    )));
                }
                cents
            }
        };
        Ok(match self.profile.format.refund_sign {
            RefundSign::Negative => magnitude,
            RefundSign::Inverted => -magnitude,
            RefundSign::Positive => {
                let is_refund = self
                    .columns
                    .refund_flag
                    .and_then(|i| record.get(i))
                    .zip(self.profile.format.refund_value.as_deref())
                    .is_some_and(|(value, refund)| {
                        trim_ascii(value).eq_ignore_ascii_case(refund.as_bytes())
                    });
                if is_refund {
                    -magnitude.abs()
                } else {
                    magnitude.abs()
                }
            }
        })
    }
}

/// RFC 3339 (the local date in its own offset), `YYYY-MM-DD HH:MM:SS`, `YYYY-MM-DD`, then the
/// profile's formats.
pub fn parse_posted_at(text: &str, extra_formats: &[String]) -> Option<NaiveDate> {
    if let Ok(instant) = DateTime::parse_from_rfc3339(text) {
        return Some(instant.date_naive());
    }
    if let Ok(local) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S") {
        return Some(local.date());
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(date);
    }
    extra_formats.iter().find_map(|format| {
        NaiveDateTime::parse_from_str(text, format)
            .map(|d| d.date())
            .or_else(|_| NaiveDate::parse_from_str(text, format))
            .ok()
    })
}

fn required(field: &'static str, value: &str, max: usize) -> Result<(), RejectReason> {
    if value.is_empty() {
        return Err(RejectReason::Empty(field));
    }
    bounded(field, value, max)
}

fn bounded(field: &'static str, value: &str, max: usize) -> Result<(), RejectReason> {
    if value.len() > max {
        return Err(RejectReason::OverLong {
            field,
            length: value.len(),
            max,
        });
    }
    Ok(())
}

fn trim_ascii(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

/// A field with its control characters made spaces ([`sanitize::clean_controls`]), trimmed
/// again; unchanged (and not copied) when it has none.
fn clean(text: Cow<'_, str>) -> Cow<'_, str> {
    if !sanitize::has_control(&text) {
        return text;
    }
    Cow::Owned(sanitize::clean_controls(&text).trim().to_owned())
}

/// At most `max` bytes of `text`, cut on a character boundary.
pub fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::CANONICAL_COLUMNS;

    static KEYER: std::sync::LazyLock<CustomerKeyer> =
        std::sync::LazyLock::new(|| CustomerKeyer::new(b"a test secret of sixteen bytes"));

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

    fn record(fields: &[&str]) -> csv::ByteRecord {
        csv::ByteRecord::from(fields.to_vec())
    }

    const GOOD: [&str; 10] = [
        "t1",
        "2026-11-20T08:15:00-08:00",
        "4111222233334444",
        "SQ *BLUE BOTTLE",
        "4.50",
        "USD",
        "5814",
        "Oakland",
        "CA",
        "94607",
    ];

    #[test]
    fn a_good_row_is_typed() {
        let profile = ProviderProfile::canonical("p");
        let v = validator(&profile);
        let r = record(&GOOD);
        let row = v.validate(&r).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(row.amount_cents, 450);
        assert_eq!(
            row.metric_date,
            NaiveDate::from_ymd_opt(2026, 11, 20).unwrap_or_default()
        );
        assert_eq!(row.state.map(|s| s.to_string()), Some("CA".into()));
    }

    #[test]
    fn each_bad_field_has_its_reason() {
        let profile = ProviderProfile::canonical("p");
        let v = validator(&profile);
        let cases: [(usize, &str, &str); 7] = [
            (0, "", "txn_id is empty"),
            (4, "12,34", "bad amount"),
            (1, "yesterday", "bad posted_at"),
            (1, "2027-06-01 10:00:00", "in the future"),
            (5, "EUR", "only USD"),
            (8, "ZZ", "unknown state code"),
            (6, "58x4", "not a 4-digit code"),
        ];
        for (index, value, expected) in cases {
            let mut fields = GOOD;
            fields[index] = value;
            let reason = v
                .validate(&record(&fields))
                .err()
                .map(|r| r.to_string())
                .unwrap_or_default();
            assert!(reason.contains(expected), "{value:?}: {reason}");
        }
        let short = record(&GOOD[..9]);
        assert!(matches!(
            v.validate(&short),
            Err(RejectReason::ColumnCount {
                expected: 10,
                found: 9
            })
        ));
    }

    #[test]
    fn rfc3339_keeps_the_local_date_of_the_sale() {
        let date = parse_posted_at("2026-11-20T23:30:00-08:00", &[]);
        assert_eq!(date, NaiveDate::from_ymd_opt(2026, 11, 20));
    }
}
