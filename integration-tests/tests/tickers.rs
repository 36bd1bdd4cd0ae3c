//! Tickers (issue #22): the catalogue's brands under their listed parent, and a company's net
//! spend on its own fiscal periods. Target (NYSE:TGT) has two brands in the catalogue (Target,
//! Shipt) and a 52/53-week year ending on the Saturday nearest 31 January, named by the year it
//! begins; its sales must equal the released cells of both brands summed over those periods,
//! read directly in SQL.

use integration_tests::gateway::{gateway_over, GatewayApp};
use integration_tests::{spawn_app, SeedCell};

const TARGET: i64 = 2746;
const SHIPT: i64 = 2499;
const STARBUCKS: i64 = 2628;

fn cell(
    merchant_id: i64,
    region: &'static str,
    day: &'static str,
    dollars: i64,
) -> SeedCell<'static> {
    SeedCell {
        merchant_id,
        region,
        day,
        gross_cents: dollars * 100,
        sales: 12,
        refund_cents: 0,
        refunds: 0,
        customers: 1..13,
    }
}

async fn seeded() -> GatewayApp {
    let app = gateway_over(spawn_app().await, &[]).await;
    app.db()
        .await
        .batch_execute("SELECT ensure_daily_partitions('2023-01-01', '2025-12-31')")
        .await
        .unwrap_or_else(|e| panic!("partitions: {e}"));
    let withheld = SeedCell {
        customers: 1..4,
        ..cell(TARGET, "TX", "2025-05-11", 7)
    };
    app.test_app
        .seed(
            &[
                // FY2025 Q2 to date (4 to 20 May 2025) and the same days of FY2024 Q2.
                cell(TARGET, "CA", "2025-05-10", 100),
                cell(SHIPT, "NY", "2025-05-12", 50),
                cell(TARGET, "CA", "2025-05-25", 1_000),
                cell(TARGET, "CA", "2024-05-10", 120),
                cell(TARGET, "CA", "2024-05-25", 3_000),
                // FY2025 Q1 and FY2024 Q1.
                cell(TARGET, "CA", "2025-03-01", 400),
                cell(SHIPT, "CA", "2024-03-01", 200),
                // Not Target's, or withheld.
                cell(STARBUCKS, "CA", "2025-05-10", 9_999),
                withheld,
            ],
            1,
        )
        .await;
    app
}

/// Net spend of Target's brands over released cells, in SQL.
async fn sql_sales(app: &GatewayApp, from: &str, to: &str) -> Option<f64> {
    let from = chrono::NaiveDate::parse_from_str(from, "%Y-%m-%d").ok();
    let to = chrono::NaiveDate::parse_from_str(to, "%Y-%m-%d").ok();
    let row = app
        .db()
        .await
        .query_one(
            "SELECT sum(total_spend_cents - refund_cents)::float8 / 100
             FROM released_daily_merchant_spend
             WHERE merchant_id IN (SELECT id FROM dim_merchants WHERE ticker_symbol = 'TGT')
               AND metric_date BETWEEN $1 AND $2 AND customers IS NOT NULL",
            &[&from, &to],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    row.get(0)
}

#[tokio::test]
async fn a_company_sums_its_brands_over_its_fiscal_quarters_with_yoy_and_quarter_to_date() {
    let app = seeded().await;
    let answer = app
        .get("/v1/tickers/tgt/sales?period=fiscal_quarter&as_of=2025-05-20")
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer = answer.json();
    assert_eq!(answer["company"]["exchange"], "NYSE");
    assert_eq!(answer["company"]["calendar"], "52_53_week");
    let brands: Vec<&str> = answer["company"]["brands"]
        .as_array()
        .map(|b| b.iter().filter_map(|b| b["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(brands, ["Shipt", "Target"]);

    // Quarter to date: 4 to 20 May 2025 against 5 to 21 May 2024.
    let to_date = &answer["to_date"];
    assert_eq!(to_date["label"], "FY2025 Q2");
    assert_eq!(
        (to_date["from"].as_str(), to_date["to"].as_str()),
        (Some("2025-05-04"), Some("2025-05-20"))
    );
    assert_eq!(to_date["previous_label"], "FY2024 Q2");
    assert_eq!(
        (
            to_date["previous_from"].as_str(),
            to_date["previous_to"].as_str()
        ),
        (Some("2024-05-05"), Some("2024-05-21"))
    );
    assert_eq!(to_date["sales"], 150.0);
    assert_eq!(to_date["previous_sales"], 120.0);
    assert_eq!(to_date["yoy_growth"], 0.25);
    assert_eq!(to_date["withheld_cells"], 1);

    // The four complete quarters before, oldest first, each equal to SQL over its days.
    let periods = answer["periods"].as_array().cloned().unwrap_or_default();
    let labels: Vec<&str> = periods.iter().filter_map(|p| p["label"].as_str()).collect();
    assert_eq!(labels, ["FY2024 Q2", "FY2024 Q3", "FY2024 Q4", "FY2025 Q1"]);
    for period in periods.iter().chain([to_date]) {
        for (sales, from, to) in [
            ("sales", "from", "to"),
            ("previous_sales", "previous_from", "previous_to"),
        ] {
            let day = |field: &str| period[field].as_str().unwrap_or_default().to_owned();
            let expected = sql_sales(&app, &day(from), &day(to)).await;
            assert_eq!(period[sales].as_f64(), expected, "{sales} of {period}");
        }
    }
    let q1 = &periods[3];
    assert_eq!(
        (q1["sales"].as_f64(), q1["previous_sales"].as_f64()),
        (Some(400.0), Some(200.0))
    );
    assert_eq!(q1["yoy_growth"], 1.0);
    // No data is null, not zero.
    assert!(periods[0]["previous_sales"].is_null(), "{}", periods[0]);

    // Fiscal years: FY2025 to date against the same days of FY2024.
    let years = app
        .get("/v1/tickers/TGT/sales?period=fiscal_year&as_of=2025-05-20")
        .await
        .json();
    assert_eq!(years["to_date"]["label"], "FY2025");
    assert_eq!(years["to_date"]["from"], "2025-02-02");
    assert_eq!(years["to_date"]["sales"], 550.0);
    assert_eq!(years["to_date"]["previous_sales"], 320.0);

    let csv = app
        .get("/v1/tickers/TGT/sales?as_of=2025-05-20&format=csv")
        .await
        .text();
    assert!(csv.starts_with("symbol,kind,label,from,to,sales"), "{csv}");
    assert!(
        csv.contains("TGT,to_date,FY2025 Q2,2025-05-04,2025-05-20,150,"),
        "{csv}"
    );
}

#[tokio::test]
async fn tickers_list_listed_parents_and_unknown_symbols_are_not_found() {
    let app = gateway_over(spawn_app().await, &[]).await;
    let list = app.get("/v1/tickers").await.json();
    let tickers = list["tickers"].as_array().cloned().unwrap_or_default();
    let sbux = tickers
        .iter()
        .find(|t| t["symbol"] == "SBUX")
        .unwrap_or_else(|| panic!("SBUX missing: {list}"));
    assert_eq!(sbux["exchange"], "NASDAQ");
    assert_eq!(sbux["fiscal_year_end_month"], 9);
    assert_eq!(sbux["brands"][0]["name"], "Starbucks");
    // A private brand (Dunkin') has no listed parent.
    assert!(!list.to_string().contains("Dunkin"));
    assert_eq!(app.get("/v1/tickers/NOPE/sales").await.status, 404);
    assert_eq!(app.get("/v1/tickers/SB*X/sales").await.status, 400);
    let csv = app.get("/v1/tickers?format=csv").await.text();
    assert!(
        csv.contains("SBUX,NASDAQ,Starbucks Corporation,9,52_53_week,13-13-13-13,end,Starbucks"),
        "{csv}"
    );
}
