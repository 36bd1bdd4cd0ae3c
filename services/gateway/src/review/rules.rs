//! `POST /v1/admin/rules` and `GET /v1/admin/rules`: prefix and regex rules over the
//! normalised descriptor. A rule is checked by the resolver's own validator
//! ([`altdata_resolver::check_rule`]) before it is stored, so the API never accepts a rule
//! ingest could not load; rules stored before (or by hand) that it refuses are listed with the
//! reason, the same one ingest logs when it skips them. `POST /v1/admin/rules/preview` shows
//! what a rule would catch before it is saved.

use super::{dollars, publish_mapping_changed, text_schema};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{integer, optional_integer, ApiJson};
use crate::query::{deserialize_from_text, FromText, Word};
use crate::AppState;
use altdata_resolver::rules::MAX_PATTERN_BYTES;
use altdata_resolver::{check_rule, normalize, RuleMatcher};
use axum::extract::State;
use axum::{Extension, Json};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::Schema;
use utoipa::ToSchema;

/// The highest rule priority.
pub const MAX_PRIORITY: i32 = 10_000;

/// How a rule matches the normalised descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    Prefix,
    Regex,
}

impl Word for RuleKind {
    const ALL: &'static [RuleKind] = &[RuleKind::Prefix, RuleKind::Regex];

    fn as_str(self) -> &'static str {
        match self {
            RuleKind::Prefix => "prefix",
            RuleKind::Regex => "regex",
        }
    }
}

deserialize_from_text!(RuleKind);

impl RuleKind {
    fn resolver_kind(self) -> altdata_resolver::RuleKind {
        match self {
            RuleKind::Prefix => altdata_resolver::RuleKind::Prefix,
            RuleKind::Regex => altdata_resolver::RuleKind::Regex,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    pub kind: RuleKind,
    /// Over the normalised descriptor, at most 200 bytes. A prefix is normalised like
    /// descriptors and must keep at least 2 characters; a regex must compile (Rust `regex`
    /// syntax, case-insensitive) and must not match an empty descriptor. A pattern the
    /// resolver could not use is refused with a 422 that says why.
    #[schema(schema_with = pattern_schema)]
    pub pattern: String,
    #[serde(deserialize_with = "integer")]
    pub merchant_id: i64,
    /// Higher runs first; default 100.
    #[schema(schema_with = priority_schema)]
    #[serde(default, deserialize_with = "optional_integer")]
    pub priority: Option<i32>,
}

impl RuleRequest {
    /// The priority asked for, or 100; checked for a preview too, which takes the same body.
    fn priority(&self) -> Result<i32, ApiError> {
        let priority = self.priority.unwrap_or(100);
        if !(0..=MAX_PRIORITY).contains(&priority) {
            return Err(ApiError::invalid(format!(
                "priority must be from 0 to {MAX_PRIORITY}"
            )));
        }
        Ok(priority)
    }
}

fn pattern_schema() -> Schema {
    text_schema(MAX_PATTERN_BYTES).into()
}

fn priority_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int32)))
        .minimum(Some(0))
        .maximum(Some(MAX_PRIORITY))
        .into()
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleAnswer {
    pub rule_id: i64,
    /// The decision: what `/v1/admin/review/undo` takes to remove the rule.
    pub audit_id: i64,
    /// What the rule matches against: the normalised prefix, or the regex as given.
    pub matches: String,
    pub mapping_change_published: bool,
}

/// Adds a prefix or regex rule mapping descriptors to a merchant.
#[utoipa::path(
    post, path = "/v1/admin/rules", tag = "admin", request_body = RuleRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Rule added", body = RuleAnswer,
         links(("rules" = (operation_id = "list_rules")))),
        (status = 404, description = "Unknown merchant", body = ErrorBody),
        (status = 409, description = "The same rule exists", body = ErrorBody),
        (status = 422, description = "A rule the resolver could not use, with the reason", body = ErrorBody),
    )
)]
pub async fn add_rule(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    ApiJson(request): ApiJson<RuleRequest>,
) -> Result<Json<RuleAnswer>, ApiError> {
    let kind = request.kind.as_str();
    let matches = check_rule(request.kind.resolver_kind(), &request.pattern)
        .map_err(|problem| ApiError::Unprocessable(format!("rule refused: {problem}")))?;
    let priority = request.priority()?;
    let actor = principal.actor();
    let mut client = state.inner.db.get().await?;
    let transaction = client.transaction().await?;
    let exists = transaction
        .query_opt(
            "SELECT 1 FROM dim_merchants WHERE id = $1",
            &[&request.merchant_id],
        )
        .await?;
    if exists.is_none() {
        return Err(ApiError::NotFound(format!(
            "no merchant {}",
            request.merchant_id
        )));
    }
    let row = transaction
        .query_opt(
            "INSERT INTO merchant_rules (kind, pattern, merchant_id, priority, created_by)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (kind, pattern) DO NOTHING RETURNING id",
            &[
                &kind,
                &request.pattern,
                &request.merchant_id,
                &priority,
                &actor,
            ],
        )
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("a {kind} rule with this pattern exists")))?;
    let rule_id: i64 = row.get(0);
    let audit = transaction
        .query_one(
            "INSERT INTO mapping_audit (actor, action, merchant_id, detail) VALUES ($1, 'rule', $2, $3)
             RETURNING id",
            &[
                &actor,
                &request.merchant_id,
                &json!({"rule_id": rule_id, "kind": kind, "pattern": request.pattern,
                        "matches": matches, "priority": priority}),
            ],
        )
        .await?;
    transaction.commit().await?;
    let audit_id: i64 = audit.get(0);
    Ok(Json(RuleAnswer {
        rule_id,
        audit_id,
        matches,
        mapping_change_published: publish_mapping_changed(&state, "rule added").await,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RuleList {
    pub rules: Vec<StoredRule>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StoredRule {
    pub id: i64,
    pub kind: String,
    pub pattern: String,
    pub merchant_id: i64,
    pub merchant_name: Option<String>,
    pub priority: i32,
    pub active: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    /// Why ingest skips this rule; null when it is in use.
    pub problem: Option<String>,
}

/// Every stored rule, in the order ingest tries them, with the reason ingest skips any.
#[utoipa::path(
    get, path = "/v1/admin/rules", tag = "admin",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Stored rules", body = RuleList),
    )
)]
pub async fn list_rules(State(state): State<AppState>) -> Result<Json<RuleList>, ApiError> {
    let client = state.inner.db.get().await?;
    let rows = client
        .query(
            "SELECT r.id, r.kind, r.pattern, r.merchant_id, m.name, r.priority, r.active,
                    r.created_by, r.created_at
             FROM merchant_rules r LEFT JOIN dim_merchants m ON m.id = r.merchant_id
             ORDER BY r.priority DESC, r.id LIMIT 10000",
            &[],
        )
        .await?;
    let rules = rows
        .iter()
        .map(|row| {
            let kind: String = row.get(1);
            let pattern: String = row.get(2);
            let problem = match RuleKind::from_text(&kind) {
                Ok(kind) => check_rule(kind.resolver_kind(), &pattern)
                    .err()
                    .map(|p| p.to_string()),
                Err(error) => Some(format!("kind={error}")),
            };
            StoredRule {
                id: row.get(0),
                kind,
                pattern,
                merchant_id: row.get(3),
                merchant_name: row.get(4),
                priority: row.get(5),
                active: row.get(6),
                created_by: row.get(7),
                created_at: row.get(8),
                problem,
            }
        })
        .collect();
    Ok(Json(RuleList { rules }))
}

/// What a rule would catch, before it is saved.
#[derive(Debug, Serialize, ToSchema)]
pub struct RulePreview {
    /// What the rule matches against: the normalised prefix, or the regex as given.
    pub matches: String,
    /// Pending groups in the review queue it would resolve.
    pub pending_groups: i64,
    pub pending_transactions: i64,
    /// Net spend of those rows, in dollars.
    pub pending_net_spend: f64,
    /// The largest of them, by money at stake (up to 20).
    pub examples: Vec<PreviewGroup>,
    /// Catalogue brands (other than the rule's merchant) whose names the rule matches: their
    /// descriptors resolve automatically today and would go to the rule's merchant instead.
    pub reroutes_brands: Vec<PreviewBrand>,
    /// Descriptors a person mapped (aliases) that the rule matches: aliases win over rules, so
    /// these keep their merchant.
    pub aliases_kept: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewGroup {
    pub normalized_descriptor: String,
    pub transactions: i64,
    pub net_spend: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewBrand {
    pub merchant_id: i64,
    pub name: String,
    pub category: String,
    /// The name (or alternative name) the rule matches.
    pub matched_name: String,
}

/// The most examples and rerouted brands a preview lists.
const PREVIEW_LIMIT: usize = 20;

/// What a prefix or regex rule would catch: pending groups, brands it would re-route, aliases
/// it cannot override. Nothing is saved.
#[utoipa::path(
    post, path = "/v1/admin/rules/preview", tag = "admin", request_body = RuleRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "What the rule would catch", body = RulePreview),
        (status = 422, description = "A rule the resolver could not use, with the reason", body = ErrorBody),
    )
)]
pub async fn preview_rule(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RuleRequest>,
) -> Result<Json<RulePreview>, ApiError> {
    request.priority()?;
    let kind = request.kind.resolver_kind();
    let matches = check_rule(kind, &request.pattern)
        .map_err(|problem| ApiError::Unprocessable(format!("rule refused: {problem}")))?;
    let rule = RuleMatcher::new(kind, &request.pattern)
        .map_err(|problem| ApiError::Unprocessable(format!("rule refused: {problem}")))?;
    let caught = |text: &str| rule.matches(text);
    let client = state.inner.db.get().await?;
    let groups = client
        .query(
            "SELECT normalized_descriptor, count(*), sum(amount_cents)::bigint,
                    sum(abs(amount_cents))::bigint
             FROM unmapped_transactions WHERE status = 'pending'
             GROUP BY normalized_descriptor ORDER BY 4 DESC, 1",
            &[],
        )
        .await?;
    let mut preview = RulePreview {
        matches,
        pending_groups: 0,
        pending_transactions: 0,
        pending_net_spend: 0.0,
        examples: Vec::new(),
        reroutes_brands: Vec::new(),
        aliases_kept: 0,
    };
    let mut net_cents = 0;
    for group in groups.iter().filter(|g| caught(g.get(0))) {
        preview.pending_groups += 1;
        preview.pending_transactions += group.get::<_, i64>(1);
        net_cents += group.get::<_, i64>(2);
        if preview.examples.len() < PREVIEW_LIMIT {
            preview.examples.push(PreviewGroup {
                normalized_descriptor: group.get(0),
                transactions: group.get(1),
                net_spend: dollars(group.get(2)),
            });
        }
    }
    preview.pending_net_spend = dollars(net_cents);
    preview.reroutes_brands = rerouted_brands(&client, request.merchant_id, &caught).await?;
    let aliases = client
        .query("SELECT alias FROM merchant_aliases", &[])
        .await?;
    preview.aliases_kept = aliases.iter().filter(|a| caught(a.get(0))).count() as i64;
    Ok(Json(preview))
}

/// Brands whose name or an alternative name, normalised as descriptors are, the rule matches.
async fn rerouted_brands(
    client: &deadpool_postgres::Client,
    target: i64,
    caught: &impl Fn(&str) -> bool,
) -> Result<Vec<PreviewBrand>, ApiError> {
    let names = altdata_domain::catalogue::Catalogue::embedded()
        .map(|c| {
            c.merchants
                .into_iter()
                .map(|m| (m.brand_id, m.match_names))
                .collect::<std::collections::HashMap<_, _>>()
        })
        .unwrap_or_default();
    let rows = client
        .query(
            "SELECT id, name, category, brand_id FROM dim_merchants
             WHERE NOT unattributed AND id <> $1 ORDER BY name",
            &[&target],
        )
        .await?;
    let mut brands = Vec::new();
    for row in rows {
        let name: String = row.get(1);
        let brand_id: Option<String> = row.get(3);
        let alternatives = brand_id
            .and_then(|b| names.get(&b).cloned())
            .unwrap_or_default();
        let matched = std::iter::once(name.clone())
            .chain(alternatives)
            .find(|candidate| caught(&normalize(candidate).text));
        if let Some(matched_name) = matched {
            brands.push(PreviewBrand {
                merchant_id: row.get(0),
                name,
                category: row.get(2),
                matched_name,
            });
            if brands.len() == PREVIEW_LIMIT {
                break;
            }
        }
    }
    Ok(brands)
}
