//! Domain types shared by every role: categories, US states, money, dates, shards and the
//! customer key, and the merchant catalogue. Each type parses from text once, at the edge, and
//! is valid from then on.
//!
//! A leaf crate: no async runtime, no network clients, so that the resolver and the generator
//! compile without them.

pub mod catalogue;
pub mod fiscal;

use chrono::NaiveDate;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// Ids `UNATTRIBUTED_MERCHANT_BASE + 1 ..= + 20` are the unattributed merchants, one per
/// category: above the catalogue's ids and below those of merchants created in review
/// (1,000,000 and up).
pub const UNATTRIBUTED_MERCHANT_BASE: i64 = 999_000;

/// The one category taxonomy used everywhere (catalogue, aggregates, API, dashboard).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Category {
    CoffeeShop,
    FastFood,
    Restaurant,
    Grocery,
    GasStation,
    Rideshare,
    Streaming,
    Ecommerce,
    Pharmacy,
    GeneralMerchandise,
    Airline,
    Hotel,
    Utility,
    Telecom,
    Software,
    Apparel,
    HomeImprovement,
    Entertainment,
    Transit,
    Other,
}

impl Category {
    pub const ALL: [Category; 20] = [
        Category::CoffeeShop,
        Category::FastFood,
        Category::Restaurant,
        Category::Grocery,
        Category::GasStation,
        Category::Rideshare,
        Category::Streaming,
        Category::Ecommerce,
        Category::Pharmacy,
        Category::GeneralMerchandise,
        Category::Airline,
        Category::Hotel,
        Category::Utility,
        Category::Telecom,
        Category::Software,
        Category::Apparel,
        Category::HomeImprovement,
        Category::Entertainment,
        Category::Transit,
        Category::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Category::CoffeeShop => "coffee_shop",
            Category::FastFood => "fast_food",
            Category::Restaurant => "restaurant",
            Category::Grocery => "grocery",
            Category::GasStation => "gas_station",
            Category::Rideshare => "rideshare",
            Category::Streaming => "streaming",
            Category::Ecommerce => "ecommerce",
            Category::Pharmacy => "pharmacy",
            Category::GeneralMerchandise => "general_merchandise",
            Category::Airline => "airline",
            Category::Hotel => "hotel",
            Category::Utility => "utility",
            Category::Telecom => "telecom",
            Category::Software => "software",
            Category::Apparel => "apparel",
            Category::HomeImprovement => "home_improvement",
            Category::Entertainment => "entertainment",
            Category::Transit => "transit",
            Category::Other => "other",
        }
    }

    pub fn parse(text: &str) -> Option<Category> {
        Category::ALL.into_iter().find(|c| c.as_str() == text)
    }

    /// The plural label people read (`Coffee shops`), as in the `categories` table.
    pub fn label(self) -> &'static str {
        match self {
            Category::CoffeeShop => "Coffee shops",
            Category::FastFood => "Fast food",
            Category::Restaurant => "Restaurants",
            Category::Grocery => "Grocery",
            Category::GasStation => "Gas stations",
            Category::Rideshare => "Rideshare",
            Category::Streaming => "Streaming",
            Category::Ecommerce => "E-commerce",
            Category::Pharmacy => "Pharmacy",
            Category::GeneralMerchandise => "General merchandise",
            Category::Airline => "Airlines",
            Category::Hotel => "Hotels",
            Category::Utility => "Utilities",
            Category::Telecom => "Telecom",
            Category::Software => "Software",
            Category::Apparel => "Apparel",
            Category::HomeImprovement => "Home improvement",
            Category::Entertainment => "Entertainment",
            Category::Transit => "Transit",
            Category::Other => "Other",
        }
    }

    /// The merchant that counts this category's spend at shops whose brand is not known
    /// ("unattributed coffee shops"), so that category answers include every shop. Its id is
    /// fixed (created by `schema/0005`): [`UNATTRIBUTED_MERCHANT_BASE`] + 1 + the category's
    /// position in [`Category::ALL`].
    pub fn unattributed_merchant_id(self) -> i64 {
        let position = Category::ALL.iter().position(|c| *c == self).unwrap_or(0);
        UNATTRIBUTED_MERCHANT_BASE + 1 + position as i64
    }

    /// The category whose unattributed merchant `merchant_id` is, if it is one.
    pub fn of_unattributed_merchant(merchant_id: i64) -> Option<Category> {
        let position = usize::try_from(merchant_id - UNATTRIBUTED_MERCHANT_BASE - 1).ok()?;
        Category::ALL.get(position).copied()
    }

    /// A category prior from a 4-digit merchant category code, when the code is specific enough.
    pub fn from_mcc(mcc: &str) -> Option<Category> {
        let code: u16 = mcc.parse().ok()?;
        Some(match code {
            5814 => Category::FastFood,
            5812 | 5813 => Category::Restaurant,
            5411 | 5422 | 5441 | 5451 | 5462 | 5499 => Category::Grocery,
            5541 | 5542 | 5983 => Category::GasStation,
            4121 => Category::Rideshare,
            4899 | 5815 => Category::Streaming,
            5310 | 5311 | 5331 | 5399 => Category::GeneralMerchandise,
            5912 => Category::Pharmacy,
            3000..=3299 | 4511 => Category::Airline,
            3501..=3999 | 7011 => Category::Hotel,
            4900 => Category::Utility,
            4812 | 4814 => Category::Telecom,
            5734 | 5817 | 5818 | 7372 => Category::Software,
            5611 | 5621 | 5631 | 5641 | 5651 | 5661 | 5691 | 5699 => Category::Apparel,
            5200 | 5211 | 5231 | 5251 | 5261 => Category::HomeImprovement,
            7832 | 7922 | 7991 | 7996 | 7999 => Category::Entertainment,
            4111 | 4112 | 4131 => Category::Transit,
            5964 | 5965 | 5969 => Category::Ecommerce,
            _ => return None,
        })
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The 50 states, DC and the inhabited territories, as two-letter codes.
pub const US_STATES: [&str; 56] = [
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "GU", "VI", "AS", "MP",
];

/// A two-letter US state code, upper case. The empty region (`""`) means "unknown" and is
/// represented by [`Region::UNKNOWN`] so aggregates keep rows whose location was not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Region([u8; 2]);

impl Region {
    /// Rows without a location are aggregated under this region code.
    pub const UNKNOWN: Region = Region(*b"XX");

    /// Parses a state code case-insensitively; `None` for anything that is not a US state.
    pub fn parse(text: &str) -> Option<Region> {
        let bytes = text.trim().as_bytes();
        if bytes.len() != 2 {
            return None;
        }
        let upper = [bytes[0].to_ascii_uppercase(), bytes[1].to_ascii_uppercase()];
        US_STATES
            .iter()
            .any(|s| s.as_bytes() == upper)
            .then_some(Region(upper))
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("XX")
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors from parsing a decimal dollar amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount is empty")]
    Empty,
    #[error("amount {0:?} is not a decimal number")]
    NotDecimal(String),
    #[error("amount {0:?} has more than two decimal places")]
    TooPrecise(String),
    #[error("amount {0:?} is out of range")]
    OutOfRange(String),
}

/// The largest absolute amount accepted for one card transaction: $10 million.
pub const MAX_ABS_AMOUNT_CENTS: i64 = 1_000_000_000;

/// Parses decimal dollars (`12.34`, `-5`, `+0.5`, `1,234.50` is rejected) into exact cents,
/// without going through floating point.
pub fn parse_dollars_to_cents(text: &str) -> Result<i64, AmountError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let (negative, digits) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (whole, fraction) = match digits.split_once('.') {
        Some((w, f)) => (w, f),
        None => (digits, ""),
    };
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !all_digits(whole) || !all_digits(fraction) {
        return Err(AmountError::NotDecimal(text.to_owned()));
    }
    if fraction.len() > 2 {
        return Err(AmountError::TooPrecise(text.to_owned()));
    }
    if whole.len() > 12 {
        return Err(AmountError::OutOfRange(text.to_owned()));
    }
    let whole_cents: i64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse::<i64>()
            .map_err(|_| AmountError::NotDecimal(text.to_owned()))?
            * 100
    };
    let fraction_cents: i64 = match fraction.len() {
        0 => 0,
        1 => i64::from(fraction.as_bytes()[0] - b'0') * 10,
        _ => fraction
            .parse::<i64>()
            .map_err(|_| AmountError::NotDecimal(text.to_owned()))?,
    };
    let cents = whole_cents + fraction_cents;
    if cents > MAX_ABS_AMOUNT_CENTS {
        return Err(AmountError::OutOfRange(text.to_owned()));
    }
    Ok(if negative { -cents } else { cents })
}

/// Days since 1970-01-01, the wire form of a calendar date.
pub fn date_to_epoch_days(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

/// The calendar date of a wire day number.
pub fn epoch_days_to_date(days: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()
        + chrono::Duration::days(i64::from(days))
}

/// The shard of a merchant: FNV-1a 32-bit over the decimal merchant id, modulo the shard count.
///
/// This is the same function as the NATS server's `partition(n, token)` subject transform, so a
/// server-side mapping can compute it too.
pub fn shard_of(merchant_id: i64, shard_count: u32) -> u32 {
    let text = decimal_text(merchant_id);
    let mut hash: u32 = 0x811c_9dc5;
    for byte in text.as_str().bytes() {
        hash ^= u32::from(byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash % shard_count.max(1)
}

/// A stack buffer holding the decimal text of an `i64`, so hashing allocates nothing.
struct DecimalText {
    bytes: [u8; 20],
    start: usize,
}

impl DecimalText {
    fn as_str(&self) -> &str {
        std::str::from_utf8(&self.bytes[self.start..]).unwrap_or("0")
    }
}

fn decimal_text(value: i64) -> DecimalText {
    let mut bytes = [0u8; 20];
    let mut start = bytes.len();
    let negative = value < 0;
    let mut rest = value.unsigned_abs();
    loop {
        start -= 1;
        bytes[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if negative {
        start -= 1;
        bytes[start] = b'-';
    }
    DecimalText { bytes, start }
}

/// Turns raw card ids into customer keys: the first 64 bits of HMAC-SHA-256 with a secret, so
/// the raw id never leaves ingest and keys cannot be reversed without the secret.
#[derive(Clone)]
pub struct CustomerKeyer {
    mac: Hmac<Sha256>,
}

impl CustomerKeyer {
    pub fn new(secret: &[u8]) -> CustomerKeyer {
        // HMAC accepts keys of any length, so this cannot fail.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .unwrap_or_else(|_| unreachable!("hmac accepts any key length"));
        CustomerKeyer { mac }
    }

    pub fn customer_key(&self, card_id: &str) -> u64 {
        let mut mac = self.mac.clone();
        mac.update(card_id.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }

    /// A keyed pseudonym of `text` (128 bits, hex), in a domain of its own so that it never
    /// equals a customer key: what ingest keeps instead of a transaction id that holds a card
    /// number. The same id always gives the same pseudonym, so re-sends and corrections still
    /// find their row.
    pub fn pseudonym(&self, text: &str) -> String {
        let mut mac = self.mac.clone();
        mac.update(b"pseudonym\0");
        mac.update(text.as_bytes());
        hex_of(&mac.finalize().into_bytes()[..16])
    }
}

fn hex_of(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(2 * bytes.len()), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

impl fmt::Debug for CustomerKeyer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CustomerKeyer([secret])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_has_its_own_unattributed_merchant() {
        let ids: std::collections::BTreeSet<i64> = Category::ALL
            .iter()
            .map(|c| c.unattributed_merchant_id())
            .collect();
        assert_eq!(ids.len(), Category::ALL.len());
        for category in Category::ALL {
            let id = category.unattributed_merchant_id();
            assert!(id > UNATTRIBUTED_MERCHANT_BASE && id < 1_000_000);
            assert_eq!(Category::of_unattributed_merchant(id), Some(category));
        }
        assert_eq!(Category::of_unattributed_merchant(42), None);
        assert_eq!(Category::of_unattributed_merchant(1_000_000), None);
    }

    #[test]
    fn dollars_parse_to_exact_cents() {
        assert_eq!(parse_dollars_to_cents("12.34"), Ok(1234));
        assert_eq!(parse_dollars_to_cents("-5"), Ok(-500));
        assert_eq!(parse_dollars_to_cents("0.5"), Ok(50));
        assert_eq!(parse_dollars_to_cents(".07"), Ok(7));
        assert_eq!(parse_dollars_to_cents("+3.10"), Ok(310));
        assert!(matches!(
            parse_dollars_to_cents("1.234"),
            Err(AmountError::TooPrecise(_))
        ));
        assert!(matches!(
            parse_dollars_to_cents("1,234.00"),
            Err(AmountError::NotDecimal(_))
        ));
        assert!(matches!(
            parse_dollars_to_cents("abc"),
            Err(AmountError::NotDecimal(_))
        ));
        assert!(matches!(
            parse_dollars_to_cents("."),
            Err(AmountError::NotDecimal(_))
        ));
        assert_eq!(parse_dollars_to_cents(""), Err(AmountError::Empty));
        assert!(matches!(
            parse_dollars_to_cents("99999999999"),
            Err(AmountError::OutOfRange(_))
        ));
    }

    #[test]
    fn every_category_round_trips_through_its_name() {
        for category in Category::ALL {
            assert_eq!(Category::parse(category.as_str()), Some(category));
        }
        assert_eq!(Category::parse("coffee"), None);
    }

    #[test]
    fn regions_are_us_states_only() {
        assert_eq!(
            Region::parse("ca").map(|r| r.to_string()),
            Some("CA".into())
        );
        assert_eq!(Region::parse("ZZ"), None);
        assert_eq!(Region::parse("CAL"), None);
    }

    #[test]
    fn shard_matches_fnv1a_of_the_decimal_id() {
        // FNV-1a("1") = 0x340ca71c; NATS partition(16, "1") uses the same hash.
        assert_eq!(shard_of(1, u32::MAX), 0x340c_a71c);
        for id in [-7_i64, 0, 42, 123_456_789, i64::MAX] {
            assert!(shard_of(id, 16) < 16);
        }
    }

    #[test]
    fn epoch_days_round_trip() {
        let date = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
        assert_eq!(epoch_days_to_date(date_to_epoch_days(date)), date);
    }

    #[test]
    fn customer_keys_depend_on_the_secret() {
        let a = CustomerKeyer::new(b"one");
        let b = CustomerKeyer::new(b"two");
        assert_eq!(a.customer_key("4111"), a.customer_key("4111"));
        assert_ne!(a.customer_key("4111"), b.customer_key("4111"));
    }
}
