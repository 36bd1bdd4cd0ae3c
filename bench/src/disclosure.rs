//! The price of the disclosure rule (docs/PRIVACY.md) on the main run's data: the share of net
//! spend that cells under k customers (one merchant, state and day) hold, which every answer
//! leaves out, for the canonical question (coffee shops in California, last week), for a
//! small state (the one with the least coffee-shop spend that week), and nationally (all
//! spend, last week).

use crate::sandbox::Sandbox;
use chrono::{Days, NaiveDate};
use serde::Serialize;

/// What the rule withholds from one question.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Withheld {
    pub question: String,
    pub net_cents: i64,
    pub released_cents: i64,
    pub withheld_share: f64,
    pub cells: i64,
    pub withheld_cells: i64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Disclosure {
    pub k: i64,
    pub questions: Vec<Withheld>,
}

pub async fn measure(sandbox: &Sandbox, as_of: NaiveDate) -> anyhow::Result<Disclosure> {
    let client = sandbox.client().await?;
    let k: i32 = client
        .query_one("SELECT k FROM disclosure", &[])
        .await?
        .get(0);
    let from = as_of - Days::new(6);
    let small: Option<String> = client
        .query_opt(
            "SELECT d.region FROM agg_daily_merchant_spend d JOIN dim_merchants m ON m.id = d.merchant_id
             WHERE m.category = 'coffee_shop' AND d.metric_date BETWEEN $1 AND $2 AND d.region <> 'XX'
             GROUP BY d.region ORDER BY sum(d.total_spend_cents - d.refund_cents) LIMIT 1",
            &[&from, &as_of],
        )
        .await?
        .map(|row| row.get(0));
    let mut questions = vec![(
        format!("coffee shops in CA, {from} to {as_of} (the canonical question)"),
        Some("coffee_shop"),
        Some("CA".to_owned()),
    )];
    if let Some(state) = small {
        questions.push((
            format!("coffee shops in {state}, the smallest state that week"),
            Some("coffee_shop"),
            Some(state),
        ));
    }
    questions.push((
        format!("all spend, every state, {from} to {as_of}"),
        None,
        None,
    ));
    let mut measured = Vec::new();
    for (question, category, state) in questions {
        let row = client
            .query_one(
                "SELECT coalesce(sum(d.total_spend_cents - d.refund_cents), 0)::bigint,
                        coalesce(sum(d.total_spend_cents - d.refund_cents)
                                 FILTER (WHERE d.released), 0)::bigint,
                        count(*),
                        count(*) FILTER (WHERE NOT d.released)
                 FROM agg_daily_merchant_spend d JOIN dim_merchants m ON m.id = d.merchant_id
                 WHERE d.metric_date BETWEEN $1 AND $2
                   AND ($3::text IS NULL OR m.category = $3)
                   AND ($4::text IS NULL OR d.region = $4)",
                &[&from, &as_of, &category, &state],
            )
            .await?;
        let (net, released): (i64, i64) = (row.get(0), row.get(1));
        measured.push(Withheld {
            question,
            net_cents: net,
            released_cents: released,
            withheld_share: if net > 0 {
                1.0 - released as f64 / net as f64
            } else {
                0.0
            },
            cells: row.get(2),
            withheld_cells: row.get(3),
        });
    }
    Ok(Disclosure {
        k: i64::from(k),
        questions: measured,
    })
}
