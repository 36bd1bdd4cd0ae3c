//! The OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]` annotations and
//! from the types that parse requests (`query::params`, `query::values`, the bodies), and
//! served at `/openapi.json` with the running gateway's limits.
//!
//! What every operation shares is added here, once, from the operation's shape, because the
//! same shared code answers it:
//! - a key (`security`): `require_key` answers 401 and 429;
//! - a path under `/v1/admin/`: `require_admin` answers 403;
//! - parameters or a body: the extractors answer 400; a body: the body limit answers 413;
//! - every operation: the database, the request timeout and the cache answer 503;
//! - a `format` parameter: the answer goes through `Answer::respond`, which serves JSON or
//!   CSV with `X-Cache`, `X-Data-As-Of` and `Age`.
//!
//! A handler's annotation lists its answer, its links and its own refusals (404, 409, 422).
//! `make contract` (Schemathesis and a generated client) checks the document against the
//! running gateway.

use crate::config::QueryLimits;
use crate::query::{MAXIMUM_SETTING, MAX_RANGE_DAYS};
use crate::{api, error, query, review, AppState};
use axum::extract::State;
use axum::Json;
use serde_json::Value;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Altdata Explorer API",
        description = "Consumer spending from anonymised card transactions: time series, growth \
                       (overall and per state), top merchants, search, freshness, changes; and \
                       the review queue. Money is in US dollars (cents precision), dates are \
                       YYYY-MM-DD, net spend is sales minus refunds. Send `Authorization: \
                       Bearer <key>` (the scheme name in any case; never a key in the URL); \
                       repeated failed authentications from one address are answered 429 for \
                       a while. JSON by default; CSV with `Accept: text/csv` or `format=csv`. \
                       Every data answer carries `X-Cache`, `X-Data-As-Of` and `Age`. Errors \
                       are `{\"error\": {\"code\", \"message\"}}`; a 400 whose code is \
                       `conflicting_parameters` or `range_too_long` refuses a combination of \
                       parameters each valid alone."
    ),
    paths(
        api::timeseries::timeseries, api::growth::growth, api::growth::growth_by_state,
        api::top::top, api::changes::changes, api::reference::merchants, api::reference::categories,
        api::reference::freshness, api::admin::flush_cache,
        api::keys::list, api::keys::create, api::keys::revoke, api::keys::rotate,
        review::queue::list_queue, review::assign::assign, review::ignore::ignore,
        review::undo::undo, review::rules::add_rule, review::rules::list_rules,
        review::rules::preview_rule, review::files::list_files,
        review::audit::audit_log, review::audit::mapped_share,
        api::overlap::overlap, api::tickers::list_tickers, api::tickers::ticker_sales,
    ),
    components(schemas(
        error::ErrorBody, error::ErrorDetail, query::DateRange, query::Metric, query::Granularity,
        query::GrowthPeriod, query::RankBy, query::OutputFormat, query::CategoryName,
        query::Direction, query::Missing, query::PanelCoverage, query::Normalize,
        query::FiscalPeriodKind, query::QueuePart,
    )),
    modifiers(&BearerAuth, &SharedResponses, &DataAnswers),
    tags(
        (name = "data", description = "Aggregated spending"),
        (name = "reference", description = "Merchants, categories, freshness"),
        (name = "admin", description = "Review queue, mappings, cache, API keys (admin keys only)"),
    )
)]
pub struct ApiDoc;

/// The document as this gateway serves it: the generated one with the limits it runs with
/// (page size and longest range are settings).
pub fn document(limits: &QueryLimits) -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    with_limits(&mut document, limits);
    links_in_camel_case(&mut document);
    document
}

/// `GET /openapi.json`.
pub async fn serve(State(state): State<AppState>) -> Json<Value> {
    Json(document(&state.inner.settings.limits))
}

/// Sets every limit the document marks as a setting (`x-maximum-setting`, `x-max-range-days`)
/// to the value this gateway enforces.
fn with_limits(value: &mut Value, limits: &QueryLimits) {
    match value {
        Value::Object(object) => {
            if object.get(MAXIMUM_SETTING).and_then(Value::as_str) == Some("ALTDATA_MAX_PAGE_SIZE")
            {
                object.insert("maximum".to_owned(), limits.max_page_size.into());
            }
            if object.contains_key(MAX_RANGE_DAYS) {
                object.insert(MAX_RANGE_DAYS.to_owned(), limits.max_range_days.into());
            }
            object
                .values_mut()
                .for_each(|value| with_limits(value, limits));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|value| with_limits(value, limits)),
        _ => {}
    }
}

/// utoipa 5.5 writes a link's fields in snake case (`operation_id`, `request_body`); OpenAPI
/// spells them `operationId`, `operationRef` and `requestBody`, and tools that follow links
/// (Schemathesis' stateful phase) read only those.
fn links_in_camel_case(document: &mut Value) {
    let responses = document["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses")?.as_object_mut())
        .flat_map(|responses| responses.values_mut());
    for response in responses {
        let links = response.get_mut("links").and_then(Value::as_object_mut);
        for link in links.into_iter().flat_map(|links| links.values_mut()) {
            let Some(link) = link.as_object_mut() else {
                continue;
            };
            for (snake, camel) in [
                ("operation_id", "operationId"),
                ("operation_ref", "operationRef"),
                ("request_body", "requestBody"),
            ] {
                if let Some(value) = link.remove(snake) {
                    link.insert(camel.to_owned(), value);
                }
            }
        }
    }
}

/// Declares the `bearer` security scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("adx_<32 base62 characters>")
                    .build(),
            ),
        );
    }
}

/// The error answers every operation shares, by status: a reusable response each, referred to
/// by every operation whose shape says it can answer it (see the module documentation).
struct SharedResponses;

/// (status, component name, description, `Retry-After` sent).
const SHARED: [(&str, &str, &str, bool); 6] = [
    (
        "400",
        "BadRequest",
        "A parameter or the body is not valid (code `invalid_parameter`), \
      or a combination of parameters is refused (`conflicting_parameters`, `range_too_long`)",
        false,
    ),
    (
        "401",
        "Unauthorized",
        "Missing, malformed, unknown or revoked API key",
        false,
    ),
    ("403", "Forbidden", "Not an admin key", false),
    (
        "413",
        "PayloadTooLarge",
        "The body is larger than the gateway's limit",
        false,
    ),
    (
        "429",
        "RateLimited",
        "Over the key's rate limit; retry after `Retry-After` seconds",
        true,
    ),
    (
        "503",
        "Unavailable",
        "The database or the cache is unreachable, or the request took too \
      long; retry after `Retry-After` seconds",
        true,
    ),
];

impl Modify for SharedResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (status, name, description, retry_after) in SHARED {
            components.responses.insert(
                name.to_owned(),
                error_response(status, description, retry_after).into(),
            );
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            for operation in operations(item) {
                for status in shared_statuses(path, operation) {
                    if let Some((_, name, ..)) = SHARED.iter().find(|shared| shared.0 == status) {
                        operation
                            .responses
                            .responses
                            .entry(status.to_owned())
                            .or_insert_with(|| {
                                RefOr::Ref(Ref::new(format!("#/components/responses/{name}")))
                            });
                    }
                }
            }
        }
    }
}

/// The shared statuses an operation can answer, from its shape.
fn shared_statuses(path: &str, operation: &Operation) -> Vec<&'static str> {
    let keyed = operation.security.as_ref().is_some_and(|s| !s.is_empty());
    let has_parameters = operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    let has_body = operation.request_body.is_some();
    [
        ("400", has_parameters || has_body),
        ("401", keyed),
        ("403", keyed && path.starts_with("/v1/admin/")),
        ("413", has_body),
        ("429", keyed),
        ("503", true),
    ]
    .into_iter()
    .filter_map(|(status, applies)| applies.then_some(status))
    .collect()
}

/// An error answer: the one JSON error shape, with `Retry-After` when it is sent, and the
/// `WWW-Authenticate` challenge on a 401.
fn error_response(status: &str, description: &str, retry_after: bool) -> Response {
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    if retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(integer(1))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    if status == "401" {
        response = response.header(
            "WWW-Authenticate",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some("`Bearer`"))
                .build(),
        );
    }
    response.build()
}

/// Every operation with a `format` parameter answers through `Answer::respond`: JSON or CSV,
/// with what the cache did and how fresh the data is.
struct DataAnswers;

impl Modify for DataAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in operations(item) {
                let takes_format = operation
                    .parameters
                    .iter()
                    .flatten()
                    .any(|parameter| parameter.name == "format");
                let answer = operation.responses.responses.get_mut("200");
                if let (true, Some(RefOr::T(answer))) = (takes_format, answer) {
                    add_data_headers(answer);
                }
            }
        }
    }
}

fn add_data_headers(answer: &mut Response) {
    answer.content.insert(
        "text/csv".to_owned(),
        ContentBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build(),
    );
    let cache = ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(["hit", "miss", "bypass", "unavailable"]));
    let data_as_of = ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)));
    for (name, schema, description) in [
        ("X-Cache", cache, "What the answer cache did"),
        (
            "X-Data-As-Of",
            data_as_of,
            "The newest aggregator commit included; absent before the first",
        ),
        ("Age", integer(0), "Seconds since the answer was computed"),
    ] {
        answer.headers.insert(
            name.to_owned(),
            HeaderBuilder::new()
                .schema(schema)
                .description(Some(description))
                .build(),
        );
    }
}

fn integer(minimum: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(minimum))
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_served_limits_are_the_configured_ones() {
        let limits = QueryLimits {
            max_page_size: 42,
            max_range_days: 7,
        };
        let document = document(&limits);
        let parameter = |path: &str, name: &str| {
            document["paths"][path]["get"]["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == name))
                .map(|p| p["schema"].clone())
                .unwrap_or_default()
        };
        assert_eq!(parameter("/v1/merchants", "limit")["maximum"], 42);
        assert_eq!(parameter("/v1/top", "limit")["maximum"], 100);
        assert_eq!(parameter("/v1/timeseries", "from")[MAX_RANGE_DAYS], 7);
        assert_eq!(parameter("/v1/timeseries", "from")["format"], "date");
    }

    #[test]
    fn every_operation_documents_the_shared_statuses() {
        let document = document(&QueryLimits::default());
        let paths = document["paths"].as_object().cloned().unwrap_or_default();
        assert!(paths.len() >= 15);
        for (path, item) in &paths {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let responses = &operation["responses"];
                let answered = ["200", "201", "204"]
                    .iter()
                    .any(|status| responses.get(*status).is_some());
                assert!(answered, "{method} {path}: no success status");
                for status in ["401", "429", "503"] {
                    assert!(responses.get(status).is_some(), "{method} {path}: {status}");
                }
                if path.starts_with("/v1/admin/") {
                    assert!(responses.get("403").is_some(), "{method} {path}: 403");
                }
                if operation.get("requestBody").is_some() {
                    assert!(responses.get("413").is_some(), "{method} {path}: 413");
                }
            }
        }
        let assign = &document["paths"]["/v1/admin/review/assign"]["post"];
        let undo = &assign["responses"]["200"]["links"]["undo"];
        assert_eq!(undo["operationId"], "undo", "{undo}");
        assert!(undo["requestBody"]["audit_id"].is_string(), "{undo}");
        let csv = &document["paths"]["/v1/changes"]["get"]["responses"]["200"];
        assert!(csv["content"].get("text/csv").is_some(), "{csv}");
        assert!(csv["headers"].get("X-Data-As-Of").is_some(), "{csv}");
    }

    /// Both designs of the data answers are documented together: the panel's normalisation
    /// beside calendar periods, top movers' direction and size floor, and every reason a value
    /// can be missing for.
    #[test]
    fn the_data_parameters_of_both_designs_are_documented() {
        let document = document(&QueryLimits::default());
        let parameter = |path: &str, name: &str| {
            document["paths"][path]["get"]["parameters"]
                .as_array()
                .and_then(|ps| ps.iter().find(|p| p["name"] == name))
                .cloned()
                .unwrap_or_else(|| panic!("{path}: no parameter {name}"))
        };
        let text = |value: &Value| value.to_string();
        for path in ["/v1/timeseries", "/v1/growth", "/v1/growth/states"] {
            assert!(
                text(&parameter(path, "normalize")).contains("panel"),
                "{path}"
            );
        }
        assert!(text(&parameter("/v1/timeseries", "granularity")).contains("Granularity"));
        parameter("/v1/top", "direction");
        parameter("/v1/top", "min_spend");
        parameter("/v1/tickers/{symbol}/sales", "period");
        parameter("/v1/overlap", "a");
        let schemas = &document["components"]["schemas"];
        assert!(text(&schemas["Granularity"]).contains("quarter"));
        assert!(text(&schemas["GrowthPeriod"]).contains("quarter"));
        for reason in ["before_panel_start", "partial_period", "no_active_cards"] {
            assert!(text(&schemas["Missing"]).contains(reason), "{reason}");
        }
        let point = text(&schemas["Point"]);
        for field in ["counted", "partial", "raw_value", "panel_cards"] {
            assert!(point.contains(field), "Point: {field}");
        }
    }
}
