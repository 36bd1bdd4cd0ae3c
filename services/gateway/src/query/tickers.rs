//! The catalogue's brands of listed companies (`dim_merchants.ticker_symbol`).

use std::collections::BTreeMap;

/// A brand of a listed company.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Brand {
    pub merchant_id: i64,
    pub name: String,
}

/// Every brand with a ticker symbol, by symbol, each list sorted by name.
pub async fn brands_by_symbol(
    client: &deadpool_postgres::Transaction<'_>,
) -> Result<BTreeMap<String, Vec<Brand>>, tokio_postgres::Error> {
    let statement = client
        .prepare_cached(
            "SELECT upper(ticker_symbol), id, name FROM dim_merchants
             WHERE ticker_symbol IS NOT NULL AND ticker_symbol <> ''
             ORDER BY 1, name, id",
        )
        .await?;
    let mut brands: BTreeMap<String, Vec<Brand>> = BTreeMap::new();
    for row in client.query(&statement, &[]).await? {
        brands.entry(row.get(0)).or_default().push(Brand {
            merchant_id: row.get(1),
            name: row.get(2),
        });
    }
    Ok(brands)
}
