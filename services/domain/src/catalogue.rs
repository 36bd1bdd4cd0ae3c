//! The merchant catalogue, `data/merchants.csv`: `id,name,category,brand_id,ticker_symbol,
//! match_names,mcc`. The resolver matches against it, the generator draws brands from it and
//! `altdata migrate` loads it into `dim_merchants`.

use crate::Category;

/// The catalogue shipped with the binary, so every role works without a data directory.
pub const EMBEDDED_CATALOGUE: &str = include_str!("../../../data/merchants.csv");

/// One brand of the catalogue.
#[derive(Debug, Clone)]
pub struct CatalogueMerchant {
    pub id: i64,
    pub name: String,
    pub category: Category,
    pub brand_id: String,
    pub ticker_symbol: Option<String>,
    /// Other names the brand goes by (`|`-separated in the file).
    pub match_names: Vec<String>,
    pub mcc: String,
}

#[derive(Debug, Clone, Default)]
pub struct Catalogue {
    pub merchants: Vec<CatalogueMerchant>,
}

#[derive(Debug, serde::Deserialize)]
struct CatalogueRow {
    id: i64,
    name: String,
    category: String,
    #[serde(default)]
    brand_id: String,
    #[serde(default)]
    ticker_symbol: String,
    #[serde(default)]
    match_names: String,
    #[serde(default)]
    mcc: String,
}

impl Catalogue {
    /// Parses the CSV text; any bad row fails the whole catalogue with its line.
    pub fn parse(text: &str) -> Result<Catalogue, String> {
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let mut merchants = Vec::new();
        for (index, row) in reader.deserialize::<CatalogueRow>().enumerate() {
            let line = index + 2;
            let row = row.map_err(|e| format!("line {line}: {e}"))?;
            let category = Category::parse(&row.category)
                .ok_or_else(|| format!("line {line}: unknown category {:?}", row.category))?;
            if row.name.trim().is_empty() || row.id <= 0 {
                return Err(format!("line {line}: empty name or non-positive id"));
            }
            let brand_id = if row.brand_id.is_empty() {
                row.id.to_string()
            } else {
                row.brand_id
            };
            merchants.push(CatalogueMerchant {
                id: row.id,
                name: row.name,
                category,
                brand_id,
                ticker_symbol: Some(row.ticker_symbol).filter(|t| !t.is_empty()),
                match_names: row
                    .match_names
                    .split('|')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_owned)
                    .collect(),
                mcc: row.mcc,
            });
        }
        if merchants.is_empty() {
            return Err("no merchants".to_owned());
        }
        Ok(Catalogue { merchants })
    }

    /// The catalogue compiled into the binary.
    pub fn embedded() -> Result<Catalogue, String> {
        Catalogue::parse(EMBEDDED_CATALOGUE)
    }
}
