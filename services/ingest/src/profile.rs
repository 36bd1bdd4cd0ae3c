//! Provider profiles: a small TOML file per provider that maps its columns, date formats and
//! amount convention onto the canonical layout
//! `txn_id,posted_at,card_id,descriptor,amount,currency,mcc,city,state,postal_code`.

use crate::error::IngestError;
use serde::Deserialize;
use std::path::Path;

/// The canonical column names, in canonical order.
pub const CANONICAL_COLUMNS: [&str; 10] = [
    "txn_id",
    "posted_at",
    "card_id",
    "descriptor",
    "amount",
    "currency",
    "mcc",
    "city",
    "state",
    "postal_code",
];

/// Columns a file must have (after mapping).
pub const REQUIRED_COLUMNS: [&str; 5] = ["txn_id", "posted_at", "card_id", "descriptor", "amount"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AmountUnit {
    #[default]
    Dollars,
    Cents,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RefundSign {
    /// Refunds are negative amounts (the canonical convention).
    #[default]
    Negative,
    /// Amounts are positive; a column says which rows are refunds.
    Positive,
    /// Purchases are negative (bank-statement style) and refunds positive.
    Inverted,
}

/// One provider's layout.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ProviderProfile {
    #[serde(default)]
    pub provider: String,
    /// Canonical column -> the provider's column name. Unmapped columns keep their name.
    #[serde(default)]
    pub columns: std::collections::HashMap<String, String>,
    #[serde(default)]
    pub format: FormatSpec,
    /// `"day"`: each file restates the whole day most of its rows fall on, so the rows of that
    /// day an earlier file delivered and this one does not are retracted.
    #[serde(default)]
    pub restates: Option<Restates>,
}

/// What a provider's files restate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Restates {
    Day,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FormatSpec {
    /// chrono formats tried after RFC 3339 and `%Y-%m-%d %H:%M:%S`.
    #[serde(default)]
    pub date_formats: Vec<String>,
    #[serde(default)]
    pub amount_unit: AmountUnit,
    #[serde(default)]
    pub refund_sign: RefundSign,
    /// With `refund_sign = "positive"`: the column and value marking a refund.
    #[serde(default)]
    pub refund_column: Option<String>,
    #[serde(default)]
    pub refund_value: Option<String>,
    /// Used when the file has no currency column.
    #[serde(default)]
    pub default_currency: Option<String>,
    /// Field delimiter, one ASCII character (default `,`).
    #[serde(default)]
    pub delimiter: Option<char>,
}

impl ProviderProfile {
    /// The canonical layout, used for providers without a profile file.
    pub fn canonical(provider: &str) -> ProviderProfile {
        ProviderProfile {
            provider: provider.to_owned(),
            ..Default::default()
        }
    }

    /// Loads `<dir>/<provider>.toml`, or the canonical layout when there is none.
    pub fn load(dir: &str, provider: &str) -> Result<ProviderProfile, IngestError> {
        let path = Path::new(dir).join(format!("{provider}.toml"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(ProviderProfile::canonical(provider))
            }
            Err(error) => {
                return Err(IngestError::Profile {
                    path: path.display().to_string(),
                    reason: error.to_string(),
                })
            }
        };
        ProviderProfile::parse(&text, provider).map_err(|reason| IngestError::Profile {
            path: path.display().to_string(),
            reason,
        })
    }

    pub fn parse(text: &str, provider: &str) -> Result<ProviderProfile, String> {
        let mut profile: ProviderProfile = toml::from_str(text).map_err(|e| e.to_string())?;
        for canonical in profile.columns.keys() {
            if !CANONICAL_COLUMNS.contains(&canonical.as_str()) {
                return Err(format!(
                    "columns.{canonical} is not a canonical column (expected one of {CANONICAL_COLUMNS:?})"
                ));
            }
        }
        if profile.format.refund_sign == RefundSign::Positive
            && (profile.format.refund_column.is_none() || profile.format.refund_value.is_none())
        {
            return Err(
                "refund_sign = \"positive\" needs refund_column and refund_value".to_owned(),
            );
        }
        if profile.provider.is_empty() {
            profile.provider = provider.to_owned();
        }
        Ok(profile)
    }

    /// The provider's name for a canonical column.
    pub fn source_column<'a>(&'a self, canonical: &'a str) -> &'a str {
        self.columns
            .get(canonical)
            .map(String::as_str)
            .unwrap_or(canonical)
    }
}

/// Where each canonical column sits in a file's records.
#[derive(Debug, Clone)]
pub struct ColumnMap {
    /// Index per canonical column (in [`CANONICAL_COLUMNS`] order), if present.
    pub index: [Option<usize>; 10],
    pub refund_flag: Option<usize>,
    pub width: usize,
}

impl ColumnMap {
    /// Maps a header (case-insensitively, trimmed) onto the canonical columns.
    pub fn from_header(
        header: &[String],
        profile: &ProviderProfile,
    ) -> Result<ColumnMap, Vec<String>> {
        let position = |name: &str| {
            header
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(name.trim()))
        };
        let mut index = [None; 10];
        for (slot, canonical) in index.iter_mut().zip(CANONICAL_COLUMNS) {
            *slot = position(profile.source_column(canonical));
        }
        let missing: Vec<String> = REQUIRED_COLUMNS
            .iter()
            .zip(0..)
            .filter(|(_, i)| index[*i].is_none())
            .map(|(c, _)| profile.source_column(c).to_owned())
            .collect();
        let refund_flag = profile.format.refund_column.as_deref().and_then(position);
        if profile.format.refund_sign == RefundSign::Positive && refund_flag.is_none() {
            let mut missing = missing;
            missing.extend(profile.format.refund_column.clone());
            return Err(missing);
        }
        if !missing.is_empty() {
            return Err(missing);
        }
        Ok(ColumnMap {
            index,
            refund_flag,
            width: header.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn canonical_header_maps_in_order() {
        let profile = ProviderProfile::canonical("default");
        let map = ColumnMap::from_header(&header(&CANONICAL_COLUMNS), &profile)
            .unwrap_or_else(|m| panic!("missing {m:?}"));
        assert_eq!(map.index[0], Some(0));
        assert_eq!(map.index[9], Some(9));
    }

    #[test]
    fn missing_required_columns_are_named() {
        let profile = ProviderProfile::canonical("default");
        let missing = ColumnMap::from_header(&header(&["txn_id", "amount"]), &profile).err();
        assert_eq!(
            missing,
            Some(vec![
                "posted_at".into(),
                "card_id".into(),
                "descriptor".into()
            ])
        );
    }

    #[test]
    fn shipped_profiles_parse() {
        for name in ["acme", "globex"] {
            let path = format!("{}/../../profiles/{name}.toml", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(ProviderProfile::parse(&text, name).is_ok(), "{path}");
        }
    }

    #[test]
    fn unknown_canonical_columns_are_rejected() {
        assert!(ProviderProfile::parse("[columns]\nprice = \"Amt\"\n", "x").is_err());
    }
}
