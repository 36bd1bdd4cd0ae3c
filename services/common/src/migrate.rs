//! Versioned migrations from `schema/`, embedded in the binary and applied by `altdata migrate`.
//!
//! Each file runs once, in its own transaction, under an advisory lock so two instances
//! starting together do not race; its checksum is recorded so an edited, already-applied
//! file is reported instead of silently ignored. Running it again is a no-op.

use sha2::{Digest, Sha256};

/// One migration file.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, in order. Add new files at the end; never edit an applied one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_core.sql",
        sql: include_str!("../../../schema/0001_core.sql"),
    },
    Migration {
        version: 2,
        name: "0002_aggregates.sql",
        sql: include_str!("../../../schema/0002_aggregates.sql"),
    },
    Migration {
        version: 3,
        name: "0003_flush_cost.sql",
        sql: include_str!("../../../schema/0003_flush_cost.sql"),
    },
    Migration {
        version: 4,
        name: "0004_held_rows_without_ledger_fk.sql",
        sql: include_str!("../../../schema/0004_held_rows_without_ledger_fk.sql"),
    },
    Migration {
        version: 5,
        name: "0005_unattributed_spend.sql",
        sql: include_str!("../../../schema/0005_unattributed_spend.sql"),
    },
    Migration {
        version: 6,
        name: "0006_identity_record.sql",
        sql: include_str!("../../../schema/0006_identity_record.sql"),
    },
    Migration {
        version: 7,
        name: "0007_identity_day_index.sql",
        sql: include_str!("../../../schema/0007_identity_day_index.sql"),
    },
    Migration {
        version: 8,
        name: "0008_released_cells.sql",
        sql: include_str!("../../../schema/0008_released_cells.sql"),
    },
    Migration {
        version: 9,
        name: "0009_key_lifecycle.sql",
        sql: include_str!("../../../schema/0009_key_lifecycle.sql"),
    },
    Migration {
        version: 10,
        name: "0010_readonly_role.sql",
        sql: include_str!("../../../schema/0010_readonly_role.sql"),
    },
    Migration {
        version: 11,
        name: "0011_analyst_numbers.sql",
        sql: include_str!("../../../schema/0011_analyst_numbers.sql"),
    },
    Migration {
        version: 12,
        name: "0012_data_edges.sql",
        sql: include_str!("../../../schema/0012_data_edges.sql"),
    },
    Migration {
        version: 13,
        name: "0013_national_series.sql",
        sql: include_str!("../../../schema/0013_national_series.sql"),
    },
    Migration {
        version: 14,
        name: "0014_identity_day_brin.sql",
        sql: include_str!("../../../schema/0014_identity_day_brin.sql"),
    },
    Migration {
        version: 15,
        name: "0015_compact_category_rows.sql",
        sql: include_str!("../../../schema/0015_compact_category_rows.sql"),
    },
    Migration {
        version: 16,
        name: "0016_review_groups.sql",
        sql: include_str!("../../../schema/0016_review_groups.sql"),
    },
];

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("migration database error: {0}")]
    Database(#[from] tokio_postgres::Error),
    #[error("migration {name} failed: {reason}")]
    Failed { name: &'static str, reason: String },
    #[error("migration {name} was edited after it was applied (checksum differs); add a new migration instead")]
    Edited { name: &'static str },
    #[error("the catalogue {path} is invalid: {reason}")]
    Catalogue { path: String, reason: String },
}

/// What a run did.
#[derive(Debug, Default)]
pub struct MigrateReport {
    pub applied: Vec<&'static str>,
    pub already_applied: usize,
}

/// Applies every pending migration.
pub async fn run(client: &mut tokio_postgres::Client) -> Result<MigrateReport, MigrateError> {
    const LOCK_KEY: i64 = 0x0061_6c74_6461_7461; // "altdata"
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    client
        .execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY])
        .await?;
    let result = apply_pending(client).await;
    client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await?;
    result
}

async fn apply_pending(client: &mut tokio_postgres::Client) -> Result<MigrateReport, MigrateError> {
    let mut report = MigrateReport::default();
    for migration in MIGRATIONS {
        let checksum = hex_sha256(migration.sql);
        let row = client
            .query_opt(
                "SELECT checksum FROM schema_migrations WHERE version = $1",
                &[&migration.version],
            )
            .await?;
        if let Some(row) = row {
            let applied: String = row.get(0);
            if applied != checksum {
                return Err(MigrateError::Edited {
                    name: migration.name,
                });
            }
            report.already_applied += 1;
            continue;
        }
        let transaction = client.transaction().await?;
        transaction
            .batch_execute(migration.sql)
            .await
            .map_err(|e| MigrateError::Failed {
                name: migration.name,
                reason: e
                    .as_db_error()
                    .map_or_else(|| e.to_string(), |d| d.to_string()),
            })?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                &[&migration.version, &migration.name, &checksum],
            )
            .await?;
        transaction.commit().await?;
        report.applied.push(migration.name);
    }
    Ok(report)
}

fn hex_sha256(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Loads `data/merchants.csv`-shaped text into `dim_merchants` (upsert by id) and seeds the
/// catalogue's own names as aliases. Returns the number of merchants.
pub async fn load_catalogue(
    client: &mut tokio_postgres::Client,
    path: &str,
    csv_text: &str,
) -> Result<u64, MigrateError> {
    let catalogue = altdata_domain::catalogue::Catalogue::parse(csv_text).map_err(|reason| {
        MigrateError::Catalogue {
            path: path.to_owned(),
            reason,
        }
    })?;
    let mut ids = Vec::with_capacity(catalogue.merchants.len());
    let mut names = Vec::with_capacity(catalogue.merchants.len());
    let mut categories = Vec::with_capacity(catalogue.merchants.len());
    let mut brand_ids = Vec::with_capacity(catalogue.merchants.len());
    let mut tickers = Vec::with_capacity(catalogue.merchants.len());
    for merchant in &catalogue.merchants {
        ids.push(merchant.id);
        names.push(merchant.name.as_str());
        categories.push(merchant.category.as_str());
        brand_ids.push(merchant.brand_id.as_str());
        tickers.push(merchant.ticker_symbol.as_deref());
    }
    let transaction = client.transaction().await?;
    let count = transaction
        .execute(
            "INSERT INTO dim_merchants (id, name, category, brand_id, ticker_symbol)
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[])
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, category = excluded.category,
                 brand_id = excluded.brand_id, ticker_symbol = excluded.ticker_symbol",
            &[&ids, &names, &categories, &brand_ids, &tickers],
        )
        .await?;
    transaction
        .execute(
            "SELECT setval('dim_merchants_id_seq', GREATEST((SELECT max(id) FROM dim_merchants), 1000000))",
            &[],
        )
        .await?;
    transaction.commit().await?;
    Ok(count)
}
