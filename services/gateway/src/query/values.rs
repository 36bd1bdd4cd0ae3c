//! The values of query parameters. Each is parsed from its text by serde while the query is
//! read, with a message that quotes the text and says what was expected, and each describes
//! itself in the OpenAPI document from the same constants its parser checks: the document and
//! the parser cannot disagree.

use crate::config::QueryLimits;
use crate::error::ApiError;
use altdata_domain::{Category, Region, US_STATES};
use chrono::{Datelike, NaiveDate};
use serde::{de, Deserialize, Deserializer};
use std::collections::BTreeMap;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// Longest merchant search text, in characters.
pub const MAX_SEARCH_CHARS: usize = 100;
/// Longest brand id, in characters.
pub const MAX_BRAND_CHARS: usize = 64;
/// Largest `offset` of any list.
pub const MAX_OFFSET: i64 = 100_000;
/// Largest `limit` of `/v1/top`.
pub const MAX_TOP: i64 = 100;
/// Text without control characters (what `char::is_control` refuses: C0, DEL and C1).
pub const PRINTABLE_PATTERN: &str = r"^[^\x00-\x1f\x7f-\x9f]*$";
/// The extension that names the setting a schema's `maximum` comes from; the served document
/// carries the running gateway's value (see `openapi::with_limits`).
pub const MAXIMUM_SETTING: &str = "x-maximum-setting";
/// The extension that carries the longest `from`..`to` range, in days, of a range parameter.
pub const MAX_RANGE_DAYS: &str = "x-max-range-days";

/// A value parsed from the text of one parameter.
pub trait FromText: Sized {
    /// The value, or the message that refuses the text (see [`not_valid`]).
    fn from_text(text: &str) -> Result<Self, String>;
}

/// `"<text>" is not valid: <expected>`, the text shortened when long. The query extractor
/// puts the parameter's name in front: `metric="profit" is not valid: expected ...`.
pub fn not_valid(text: &str, expected: &str) -> String {
    const SHOWN: usize = 40;
    let shown: String = text.chars().take(SHOWN).collect();
    let more = if text.chars().count() > SHOWN {
        "…"
    } else {
        ""
    };
    format!("{shown:?}{more} is not valid: {expected}")
}

/// Deserialises a [`FromText`] value from a string: query text or a JSON string.
pub fn deserialize_text<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromText,
{
    let text = String::deserialize(deserializer)?;
    T::from_text(&text).map_err(de::Error::custom)
}

/// `impl Deserialize` through [`FromText`] for each type named.
macro_rules! deserialize_from_text {
    ($($type:ty),+ $(,)?) => {$(
        impl<'de> serde::Deserialize<'de> for $type {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::query::values::deserialize_text(deserializer)
            }
        }
    )+};
}
pub(crate) use deserialize_from_text;

/// A closed set of words (metrics, periods, formats): parsed by name, listed in messages in
/// the order of [`Word::ALL`].
pub trait Word: Copy + 'static {
    const ALL: &'static [Self];
    fn as_str(self) -> &'static str;
}

impl<T: Word> FromText for T {
    fn from_text(text: &str) -> Result<T, String> {
        T::ALL
            .iter()
            .copied()
            .find(|word| word.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = T::ALL.iter().map(|word| word.as_str()).collect();
                not_valid(text, &format!("expected {}", one_of(&names)))
            })
    }
}

/// `a, b or c`.
fn one_of(names: &[&str]) -> String {
    match names.split_last() {
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// A calendar date `YYYY-MM-DD`, years 0001 to 9999: exactly what `format: date` allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Day(pub NaiveDate);

impl FromText for Day {
    fn from_text(text: &str) -> Result<Day, String> {
        let shaped = text.len() == 10
            && text.bytes().enumerate().all(|(index, byte)| match index {
                4 | 7 => byte == b'-',
                _ => byte.is_ascii_digit(),
            });
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .ok()
            .filter(|date| shaped && date.year() >= 1)
            .map(Day)
            .ok_or_else(|| not_valid(text, "expected a date YYYY-MM-DD"))
    }
}

impl PartialSchema for Day {
    fn schema() -> RefOr<Schema> {
        date_schema().into()
    }
}

impl ToSchema for Day {}

fn date_schema() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
}

/// The `from` or `to` of a range whose length is checked: a [`Day`] whose schema carries the
/// longest range (`x-max-range-days`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeDay(pub NaiveDate);

impl FromText for RangeDay {
    fn from_text(text: &str) -> Result<RangeDay, String> {
        Day::from_text(text).map(|Day(day)| RangeDay(day))
    }
}

impl PartialSchema for RangeDay {
    fn schema() -> RefOr<Schema> {
        let days = QueryLimits::default().max_range_days;
        date_schema()
            .extensions(Some(
                ExtensionsBuilder::new().add(MAX_RANGE_DAYS, days).build(),
            ))
            .into()
    }
}

impl ToSchema for RangeDay {}

/// Comma-separated US state codes, in either case; upper-cased, sorted and without
/// duplicates once parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct States(pub Vec<String>);

impl FromText for States {
    fn from_text(text: &str) -> Result<States, String> {
        let mut states = Vec::new();
        for part in text.split(',') {
            let region = Region::parse(part)
                .filter(|_| part.len() == 2)
                .ok_or_else(|| {
                    not_valid(
                        part,
                        "expected two-letter US state codes such as CA or CA,NY",
                    )
                })?;
            states.push(region.as_str().to_owned());
        }
        states.sort();
        states.dedup();
        Ok(States(states))
    }
}

impl PartialSchema for States {
    fn schema() -> RefOr<Schema> {
        let code = state_code_pattern();
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^(?:{code})(?:,(?:{code}))*$")))
            .examples(["CA", "CA,NY"])
            .into()
    }
}

impl ToSchema for States {}

/// One state code of [`US_STATES`] in either case, grouped by first letter: `[Cc][AaOoTt]|...`.
fn state_code_pattern() -> String {
    let mut by_first: BTreeMap<char, String> = BTreeMap::new();
    for code in US_STATES {
        let mut letters = code.chars();
        if let (Some(first), Some(second)) = (letters.next(), letters.next()) {
            let seconds = by_first.entry(first).or_default();
            seconds.push(second);
            seconds.push(second.to_ascii_lowercase());
        }
    }
    let groups: Vec<String> = by_first
        .iter()
        .map(|(first, seconds)| format!("[{first}{}][{seconds}]", first.to_ascii_lowercase()))
        .collect();
    groups.join("|")
}

/// A category of the catalogue, such as `coffee_shop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CategoryName(pub Category);

impl FromText for CategoryName {
    fn from_text(text: &str) -> Result<CategoryName, String> {
        Category::parse(text).map(CategoryName).ok_or_else(|| {
            let known: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
            not_valid(text, &format!("expected one of {}", known.join(", ")))
        })
    }
}

impl PartialSchema for CategoryName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(Category::ALL.iter().map(|c| c.as_str())))
            .into()
    }
}

impl ToSchema for CategoryName {
    fn name() -> std::borrow::Cow<'static, str> {
        "Category".into()
    }
}

/// A merchant id: a positive integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MerchantId(pub i64);

impl FromText for MerchantId {
    fn from_text(text: &str) -> Result<MerchantId, String> {
        match text.parse::<i64>() {
            Ok(id) if id > 0 => Ok(MerchantId(id)),
            _ => Err(not_valid(text, "expected a positive merchant id")),
        }
    }
}

impl PartialSchema for MerchantId {
    fn schema() -> RefOr<Schema> {
        integer_schema(1, None).into()
    }
}

impl ToSchema for MerchantId {}

/// A brand id of the catalogue: 1 to [`MAX_BRAND_CHARS`] letters, digits, `_`, `-` or `.`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrandId(pub String);

impl FromText for BrandId {
    fn from_text(text: &str) -> Result<BrandId, String> {
        let valid = (1..=MAX_BRAND_CHARS).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if valid {
            Ok(BrandId(text.to_owned()))
        } else {
            Err(not_valid(
                text,
                &format!("expected a brand id of 1-{MAX_BRAND_CHARS} letters, digits, _, - or ."),
            ))
        }
    }
}

impl PartialSchema for BrandId {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!("^[A-Za-z0-9_.-]{{1,{MAX_BRAND_CHARS}}}$")))
            .into()
    }
}

impl ToSchema for BrandId {}

/// One side of an overlap: a category name, a merchant id (a positive number) or a brand id,
/// read in that order. No brand id of the catalogue is a category name; a brand whose id is a
/// number (`76`) is asked by its merchant id; any other text of the brand id's form is a brand
/// (unknown: a 404).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shop(pub super::terms::ScopeParam);

impl FromText for Shop {
    fn from_text(text: &str) -> Result<Shop, String> {
        use super::terms::ScopeParam;
        if let Some(category) = Category::parse(text) {
            return Ok(Shop(ScopeParam::Category(category)));
        }
        if let Ok(MerchantId(id)) = MerchantId::from_text(text) {
            return Ok(Shop(ScopeParam::Merchant(id)));
        }
        BrandId::from_text(text)
            .map(|BrandId(brand)| Shop(ScopeParam::Brand(brand)))
            .map_err(|_| {
                not_valid(
                    text,
                    &format!(
                        "expected a category, a merchant id or a brand id of 1-{MAX_BRAND_CHARS} \
                         letters, digits, _, - or ."
                    ),
                )
            })
    }
}

impl PartialSchema for Shop {
    fn schema() -> RefOr<Schema> {
        BrandId::schema()
    }
}

impl ToSchema for Shop {}

/// Longest ticker symbol, in characters.
pub const MAX_SYMBOL_CHARS: usize = 12;

/// A ticker symbol (`SBUX`, `AC.TO`): 1 to [`MAX_SYMBOL_CHARS`] letters, digits, `.` or `-`,
/// starting with a letter or digit (a path segment `.` would be no segment), upper-cased once
/// parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TickerSymbol(pub String);

impl FromText for TickerSymbol {
    fn from_text(text: &str) -> Result<TickerSymbol, String> {
        let valid = (1..=MAX_SYMBOL_CHARS).contains(&text.len())
            && text
                .bytes()
                .next()
                .is_some_and(|b| b.is_ascii_alphanumeric())
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
        if valid {
            Ok(TickerSymbol(text.to_ascii_uppercase()))
        } else {
            Err(not_valid(
                text,
                &format!(
                    "expected a ticker symbol of 1-{MAX_SYMBOL_CHARS} letters, digits, . or -"
                ),
            ))
        }
    }
}

impl PartialSchema for TickerSymbol {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(format!(
                "^[A-Za-z0-9][A-Za-z0-9.-]{{0,{}}}$",
                MAX_SYMBOL_CHARS - 1
            )))
            .into()
    }
}

impl ToSchema for TickerSymbol {}

/// Merchant search text: at most [`MAX_SEARCH_CHARS`] characters, none a control character;
/// trimmed once parsed (blank means no search).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(pub String);

impl FromText for SearchText {
    fn from_text(text: &str) -> Result<SearchText, String> {
        if text.chars().count() > MAX_SEARCH_CHARS || text.chars().any(char::is_control) {
            return Err(not_valid(
                text,
                &format!("expected at most {MAX_SEARCH_CHARS} printable characters"),
            ));
        }
        Ok(SearchText(text.trim().to_owned()))
    }
}

impl PartialSchema for SearchText {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .max_length(Some(MAX_SEARCH_CHARS))
            .pattern(Some(PRINTABLE_PATTERN))
            .into()
    }
}

impl ToSchema for SearchText {}

/// An integer from `MIN` to `MAX`, both fixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: i64, const MAX: i64>(pub i64);

/// The `limit` of `/v1/top`.
pub type TopLimit = Bounded<1, MAX_TOP>;
/// The `offset` of every list.
pub type Offset = Bounded<0, MAX_OFFSET>;
/// The size floor of `/v1/top`, in whole dollars.
pub type MinSpend = Bounded<0, 1_000_000_000>;

impl<const MIN: i64, const MAX: i64> FromText for Bounded<MIN, MAX> {
    fn from_text(text: &str) -> Result<Self, String> {
        match text.parse::<i64>() {
            Ok(value) if (MIN..=MAX).contains(&value) => Ok(Bounded(value)),
            _ => Err(not_valid(
                text,
                &format!("expected an integer from {MIN} to {MAX}"),
            )),
        }
    }
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_text(deserializer)
    }
}

impl<const MIN: i64, const MAX: i64> PartialSchema for Bounded<MIN, MAX> {
    fn schema() -> RefOr<Schema> {
        integer_schema(MIN, Some(MAX)).into()
    }
}

impl<const MIN: i64, const MAX: i64> ToSchema for Bounded<MIN, MAX> {}

/// The `limit` of a paged list: from 1 to the gateway's page size (`ALTDATA_MAX_PAGE_SIZE`),
/// which only the running gateway knows, so [`PageLimit::or`] checks the upper bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageLimit(pub i64);

impl FromText for PageLimit {
    fn from_text(text: &str) -> Result<PageLimit, String> {
        match text.parse::<i64>() {
            Ok(value) if value >= 1 => Ok(PageLimit(value)),
            _ => Err(not_valid(text, "expected an integer of at least 1")),
        }
    }
}

impl PageLimit {
    /// The limit asked for, or `default`; refused past `max`.
    pub fn or(limit: Option<PageLimit>, default: i64, max: i64) -> Result<i64, ApiError> {
        match limit {
            None => Ok(default),
            Some(PageLimit(value)) if value <= max => Ok(value),
            Some(PageLimit(value)) => Err(ApiError::invalid(format!(
                "limit=\"{value}\" is not valid: expected an integer from 1 to {max}"
            ))),
        }
    }
}

impl PartialSchema for PageLimit {
    fn schema() -> RefOr<Schema> {
        integer_schema(1, Some(QueryLimits::default().max_page_size))
            .extensions(Some(
                ExtensionsBuilder::new()
                    .add(MAXIMUM_SETTING, "ALTDATA_MAX_PAGE_SIZE")
                    .build(),
            ))
            .into()
    }
}

impl ToSchema for PageLimit {}

/// An `int64` from `minimum` to `maximum` (if any).
fn integer_schema(minimum: i64, maximum: Option<i64>) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(minimum))
        .maximum(maximum)
}

deserialize_from_text!(
    Day,
    RangeDay,
    States,
    CategoryName,
    MerchantId,
    BrandId,
    Shop,
    TickerSymbol,
    SearchText,
    PageLimit
);

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    #[test]
    fn dates_are_strict_calendar_dates() {
        for bad in [
            "2026-1-5",
            "2026-02-30",
            "0000-01-01",
            "+026-01-01",
            "2026-01-01T00",
        ] {
            assert!(Day::from_text(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Day::from_text("2026-02-28").ok(),
            Some(Day(date("2026-02-28")))
        );
        assert_eq!(
            Day::from_text("0001-01-01").ok(),
            Some(Day(date("0001-01-01")))
        );
    }

    #[test]
    fn states_are_normalised_and_the_bad_one_is_named() {
        assert_eq!(
            States::from_text("ny,CA,ca").ok(),
            Some(States(vec!["CA".to_owned(), "NY".to_owned()]))
        );
        let error = States::from_text("CA,ZZ").err().unwrap_or_default();
        assert!(error.starts_with("\"ZZ\" is not valid"), "{error}");
        assert!(States::from_text("CA, NY").is_err());
        assert!(States::from_text("").is_err());
    }

    #[test]
    fn the_state_pattern_accepts_exactly_the_states() {
        let RefOr::T(Schema::Object(schema)) = States::schema() else {
            panic!("an object schema");
        };
        let pattern = regex::Regex::new(schema.pattern.as_deref().unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}"));
        for text in ["CA", "ca,Ny", "DC,PR,GU,VI,AS,MP", "wy"] {
            assert!(pattern.is_match(text), "{text}");
            assert!(States::from_text(text).is_ok(), "{text}");
        }
        for text in ["XX", "CA,", "C", "CA NY", "CAL", ""] {
            assert!(!pattern.is_match(text), "{text}");
            assert!(States::from_text(text).is_err(), "{text}");
        }
    }

    #[test]
    fn bounded_integers_name_their_range() {
        assert_eq!(TopLimit::from_text("100").ok(), Some(Bounded(100)));
        let error = TopLimit::from_text("1000").err().unwrap_or_default();
        assert_eq!(
            error,
            "\"1000\" is not valid: expected an integer from 1 to 100"
        );
        assert!(Offset::from_text("-1").is_err());
        assert!(MerchantId::from_text("0").is_err());
    }

    #[test]
    fn page_limits_are_checked_against_the_configured_size() {
        assert_eq!(PageLimit::or(None, 50, 500).ok(), Some(50));
        assert_eq!(PageLimit::or(Some(PageLimit(500)), 50, 500).ok(), Some(500));
        let error = PageLimit::or(Some(PageLimit(501)), 50, 500)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            error,
            "limit=\"501\" is not valid: expected an integer from 1 to 500"
        );
    }

    #[test]
    fn search_text_is_bounded_before_trimming() {
        assert_eq!(
            SearchText::from_text("  grind ").ok(),
            Some(SearchText("grind".to_owned()))
        );
        assert!(SearchText::from_text(&" ".repeat(MAX_SEARCH_CHARS + 1)).is_err());
        assert!(SearchText::from_text("a\u{7}b").is_err());
    }

    #[test]
    fn long_texts_are_shortened_in_messages() {
        let message = not_valid(&"x".repeat(1000), "expected less");
        assert!(message.len() < 80, "{message}");
    }
}
