//! `POST /v1/admin/review/assign`: descriptor groups to a merchant (existing or new). One
//! transaction: create the merchant if asked, mark the groups' pending rows assigned, add their
//! contribution to the aggregates through the fact writer (with its outbox rows), alias the
//! descriptors, write the audit rows; after commit, tell ingest to reload.

use super::moved::{Direction, Moved, MOVED_COLUMNS};
use super::{
    check_descriptors, descriptors_schema, dollars, is_short_printable_text,
    publish_mapping_changed, text_schema, with_retries, Failure, REVIEW_LOCK,
};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{integer, optional_integer, ApiJson};
use crate::query::{CategoryName, PRINTABLE_PATTERN};
use crate::AppState;
use altdata_domain::Category;
use altdata_facts::CategoryShard;
use axum::extract::State;
use axum::{Extension, Json};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::Schema;
use utoipa::ToSchema;

/// The longest merchant name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// The longest ticker symbol, in characters.
pub const MAX_TICKER_CHARS: usize = 16;

/// Descriptor groups to assign to an existing merchant or to a new one: exactly one of
/// `merchant_id` and `new_merchant`, which the document says with `oneOf`. The body is read
/// into [`AssignFields`] first, so that a body with neither or both gets a message saying so.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged, try_from = "AssignFields")]
pub enum AssignRequest {
    Existing(AssignToMerchant),
    New(AssignToNewMerchant),
}

/// Descriptor groups to an existing merchant.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignToMerchant {
    /// Normalised descriptors, as listed by the queue.
    #[schema(schema_with = descriptors_schema)]
    pub normalized_descriptors: Vec<String>,
    /// A merchant of the catalogue (not one that counts unattributed spend).
    #[schema(minimum = 1)]
    #[serde(deserialize_with = "integer")]
    pub merchant_id: i64,
}

/// Descriptor groups to a merchant created for them.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignToNewMerchant {
    /// Normalised descriptors, as listed by the queue.
    #[schema(schema_with = descriptors_schema)]
    pub normalized_descriptors: Vec<String>,
    pub new_merchant: NewMerchant,
}

/// The fields of an assign as they arrive, before "exactly one of" is checked.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssignFields {
    normalized_descriptors: Vec<String>,
    #[serde(default, deserialize_with = "optional_integer")]
    merchant_id: Option<i64>,
    new_merchant: Option<NewMerchant>,
}

impl TryFrom<AssignFields> for AssignRequest {
    type Error = &'static str;

    fn try_from(fields: AssignFields) -> Result<AssignRequest, Self::Error> {
        let AssignFields {
            normalized_descriptors,
            merchant_id,
            new_merchant,
        } = fields;
        match (merchant_id, new_merchant) {
            (Some(merchant_id), None) => Ok(AssignRequest::Existing(AssignToMerchant {
                normalized_descriptors,
                merchant_id,
            })),
            (None, Some(new_merchant)) => Ok(AssignRequest::New(AssignToNewMerchant {
                normalized_descriptors,
                new_merchant,
            })),
            _ => Err(EXACTLY_ONE),
        }
    }
}

const EXACTLY_ONE: &str = "give exactly one of merchant_id (a positive id) and new_merchant";

impl AssignRequest {
    fn descriptors(&self) -> &[String] {
        match self {
            AssignRequest::Existing(existing) => &existing.normalized_descriptors,
            AssignRequest::New(new) => &new.normalized_descriptors,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMerchant {
    /// Trimmed before it is stored.
    #[schema(schema_with = name_schema)]
    pub name: String,
    pub category: CategoryName,
    /// Trimmed; blank means none.
    #[schema(schema_with = ticker_schema)]
    pub ticker_symbol: Option<String>,
}

fn name_schema() -> Schema {
    text_schema(MAX_NAME_CHARS).into()
}

fn ticker_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(MAX_TICKER_CHARS))
        .pattern(Some(PRINTABLE_PATTERN))
        .into()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AssignAnswer {
    pub merchant_id: i64,
    pub merchant_created: bool,
    pub category: String,
    pub descriptors: Vec<DescriptorOutcome>,
    /// Rows moved from the queue into the aggregates.
    pub transactions: i64,
    pub net_spend: f64,
    /// Whether ingest was told to reload its aliases (it also reloads periodically).
    pub mapping_change_published: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DescriptorOutcome {
    pub normalized_descriptor: String,
    /// The audit row of this decision (pass it to undo).
    pub audit_id: i64,
    pub transactions: i64,
    pub gross_spend: f64,
    pub refunds: f64,
}

/// The merchant an assign targets.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Existing(i64),
    New {
        name: String,
        category: Category,
        ticker_symbol: Option<String>,
    },
}

impl Target {
    /// The merchant an assign names, each field checked.
    pub fn parse(request: AssignRequest) -> Result<Target, ApiError> {
        match request {
            AssignRequest::Existing(AssignToMerchant { merchant_id, .. }) if merchant_id > 0 => {
                Ok(Target::Existing(merchant_id))
            }
            AssignRequest::Existing(_) => Err(ApiError::invalid(EXACTLY_ONE)),
            AssignRequest::New(AssignToNewMerchant { new_merchant, .. }) => {
                let NewMerchant {
                    name,
                    category: CategoryName(category),
                    ticker_symbol,
                } = new_merchant;
                if !is_short_printable_text(&name, MAX_NAME_CHARS) {
                    return Err(ApiError::invalid(format!(
                        "new_merchant.name must be 1 to {MAX_NAME_CHARS} printable characters"
                    )));
                }
                if ticker_symbol.as_ref().is_some_and(|t| {
                    t.chars().count() > MAX_TICKER_CHARS || t.chars().any(char::is_control)
                }) {
                    return Err(ApiError::invalid(format!(
                        "new_merchant.ticker_symbol is at most {MAX_TICKER_CHARS} printable \
                         characters"
                    )));
                }
                Ok(Target::New {
                    name: name.trim().to_owned(),
                    category,
                    ticker_symbol: ticker_symbol
                        .map(|t| t.trim().to_owned())
                        .filter(|t| !t.is_empty()),
                })
            }
        }
    }
}

/// Moves descriptor groups into the aggregates under a merchant.
#[utoipa::path(
    post, path = "/v1/admin/review/assign", tag = "admin", request_body = AssignRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Assigned", body = AssignAnswer,
         links(("undo" = (operation_id = "undo",
                          request_body = json!({"audit_id": "$response.body#/descriptors/0/audit_id"}))))),
        (status = 404, description = "Unknown merchant", body = ErrorBody),
    )
)]
pub async fn assign(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<AssignRequest>,
) -> Result<Json<AssignAnswer>, ApiError> {
    let descriptors = check_descriptors(request.descriptors())?;
    let target = Target::parse(request)?;
    let actor = principal.actor();
    let mut answer = with_retries(&state, "assign", |client| {
        let (descriptors, target, actor) = (descriptors.clone(), target.clone(), actor.clone());
        Box::pin(async move { assign_groups(client, &descriptors, &target, &actor).await })
    })
    .await?;
    answer.mapping_change_published = publish_mapping_changed(&state, "review assign").await;
    tracing::info!(actor = %actor, merchant_id = answer.merchant_id, descriptors = answer.descriptors.len(), transactions = answer.transactions, "descriptors assigned");
    Ok(Json(answer))
}

/// One assign, in one transaction under the review lock: the groups' pending rows into the
/// aggregates under the target, their aliases, an audit row per group. `descriptors` are
/// checked ([`check_descriptors`]) by the caller.
pub async fn assign_groups(
    client: &mut deadpool_postgres::Client,
    descriptors: &[String],
    target: &Target,
    actor: &str,
) -> Result<AssignAnswer, Failure> {
    let transaction = client.transaction().await?;
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&REVIEW_LOCK])
        .await?;
    let (merchant_id, category, created) = target_merchant(&transaction, target).await?;
    let moved = move_pending_rows(&transaction, descriptors, merchant_id, actor).await?;
    altdata_facts::apply(&transaction, &moved.cells, CategoryShard::Review, "review")
        .await?
        .log_changes(&transaction, "review")
        .await?;
    let previous_aliases = transaction
        .query(
            "SELECT alias, merchant_id FROM merchant_aliases WHERE alias = ANY($1) FOR UPDATE",
            &[&descriptors],
        )
        .await?;
    transaction
        .execute(
            "INSERT INTO merchant_aliases (alias, merchant_id, source, created_by)
             SELECT unnest($1::text[]), $2, 'review', $3
             ON CONFLICT (alias) DO UPDATE SET merchant_id = excluded.merchant_id,
                 source = 'review', created_by = excluded.created_by, created_at = now()",
            &[&descriptors, &merchant_id, &actor],
        )
        .await?;
    let mut outcomes = Vec::with_capacity(descriptors.len());
    for descriptor in descriptors {
        let group = moved.groups.get(descriptor).cloned().unwrap_or_default();
        let previous: Option<i64> = previous_aliases
            .iter()
            .find(|row| row.get::<_, &str>(0) == descriptor)
            .map(|row| row.get(1));
        let detail = json!({
            "transactions": group.transactions,
            "gross_cents": group.gross_cents,
            "refund_cents": group.refund_cents,
            "net_cents": group.net_cents(),
            "first_date": group.first_date,
            "last_date": group.last_date,
            "category": category,
            "merchant_created": created,
            "previous_alias_merchant_id": previous,
        });
        let row = transaction
            .query_one(
                "INSERT INTO mapping_audit (actor, action, normalized_descriptor, merchant_id, detail)
                 VALUES ($1, 'assign', $2, $3, $4) RETURNING id",
                &[&actor, descriptor, &merchant_id, &detail],
            )
            .await?;
        outcomes.push(DescriptorOutcome {
            normalized_descriptor: descriptor.clone(),
            audit_id: row.get(0),
            transactions: group.transactions,
            gross_spend: dollars(group.gross_cents),
            refunds: dollars(group.refund_cents),
        });
    }
    transaction.commit().await?;
    Ok(AssignAnswer {
        merchant_id,
        merchant_created: created,
        category,
        descriptors: outcomes,
        transactions: moved.transactions(),
        net_spend: dollars(moved.net_cents()),
        mapping_change_published: false,
    })
}

/// The target's id and category, creating the merchant when asked; whether it was created.
async fn target_merchant(
    transaction: &deadpool_postgres::Transaction<'_>,
    target: &Target,
) -> Result<(i64, String, bool), Failure> {
    Ok(match target {
        Target::Existing(id) => {
            let row = transaction
                .query_opt(
                    "SELECT category, unattributed FROM dim_merchants WHERE id = $1",
                    &[id],
                )
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no merchant {id}")))?;
            if row.get::<_, bool>(1) {
                return Err(ApiError::invalid(format!(
                    "merchant {id} counts spend whose brand is not known; assign to a brand"
                ))
                .into());
            }
            (*id, row.get::<_, String>(0), false)
        }
        Target::New {
            name,
            category,
            ticker_symbol,
        } => {
            let row = transaction
                .query_one(
                    "INSERT INTO dim_merchants (name, category, ticker_symbol) VALUES ($1, $2, $3) RETURNING id",
                    &[name, &category.as_str(), ticker_symbol],
                )
                .await?;
            (row.get::<_, i64>(0), category.as_str().to_owned(), true)
        }
    })
}

/// Marks the groups' pending rows assigned and returns them folded; makes the daily partitions
/// of their days first. Rows that arrive for these descriptors later stay pending and show up
/// in the queue again.
async fn move_pending_rows(
    transaction: &deadpool_postgres::Transaction<'_>,
    descriptors: &[String],
    merchant_id: i64,
    actor: &str,
) -> Result<Moved, tokio_postgres::Error> {
    let range = transaction
        .query_one(
            "SELECT min(metric_date), max(metric_date) FROM unmapped_transactions
             WHERE status = 'pending' AND normalized_descriptor = ANY($1)",
            &[&descriptors],
        )
        .await?;
    let (Some(first), Some(last)) = (
        range.get::<_, Option<NaiveDate>>(0),
        range.get::<_, Option<NaiveDate>>(1),
    ) else {
        return Ok(Moved::default());
    };
    transaction
        .execute("SELECT ensure_daily_partitions($1, $2)", &[&first, &last])
        .await?;
    let rows = transaction
        .query(
            &format!(
                "UPDATE unmapped_transactions
                    SET status = 'assigned', merchant_id = $1, resolved_by = $2, resolved_at = now()
                  WHERE status = 'pending' AND normalized_descriptor = ANY($3)
                    AND metric_date BETWEEN $4 AND $5
                 RETURNING {MOVED_COLUMNS}"
            ),
            &[&merchant_id, &actor, &descriptors, &first, &last],
        )
        .await?;
    Ok(Moved::fold(&rows, merchant_id, Direction::Add))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(body: serde_json::Value) -> Result<Target, String> {
        let request: AssignRequest = serde_json::from_value(body).map_err(|e| e.to_string())?;
        Target::parse(request).map_err(|e| e.to_string())
    }

    #[test]
    fn exactly_one_target_is_required() {
        let new = json!({"name": "Blue Cafe", "category": "coffee_shop"});
        let neither = target(json!({"normalized_descriptors": ["A"]}));
        assert!(neither.err().unwrap_or_default().contains("exactly one"));
        assert!(target(json!({"normalized_descriptors": ["A"], "merchant_id": 0})).is_err());
        assert!(target(
            json!({"normalized_descriptors": ["A"], "merchant_id": 3, "new_merchant": new})
        )
        .is_err());
        assert_eq!(
            target(json!({"normalized_descriptors": ["A"], "merchant_id": 3})).ok(),
            Some(Target::Existing(3))
        );
        assert!(matches!(
            target(json!({"normalized_descriptors": ["A"], "new_merchant": new})),
            Ok(Target::New { .. })
        ));
        assert!(
            target(json!({"normalized_descriptors": ["A"], "merchant_id": 3, "x": 1})).is_err()
        );
    }

    #[test]
    fn new_merchants_are_checked() {
        let with = |name: &str, category: &str, ticker: Option<&str>| {
            target(json!({"normalized_descriptors": ["A"], "new_merchant":
                {"name": name, "category": category, "ticker_symbol": ticker}}))
        };
        assert!(with(" ", "coffee_shop", None).is_err());
        assert!(with("Cafe", "no_such_category", None).is_err());
        assert!(with("Cafe", "coffee_shop", Some("TOOLONGTICKERSYMBOL")).is_err());
        assert!(matches!(
            with("  Cafe  ", "coffee_shop", Some(" ")),
            Ok(Target::New { ref name, ticker_symbol: None, .. }) if name == "Cafe"
        ));
    }

    #[test]
    fn the_document_says_exactly_one_of_the_two() {
        let schema = serde_json::to_value(<AssignRequest as utoipa::PartialSchema>::schema())
            .unwrap_or_default();
        assert_eq!(
            schema["oneOf"].as_array().map(Vec::len),
            Some(2),
            "{schema}"
        );
    }
}
