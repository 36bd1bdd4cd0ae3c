//! The OpenAPI 3 document, generated from the handlers' `#[utoipa::path]` annotations and
//! served at `/openapi.json`.

use crate::{api, error, query, review};
use axum::Json;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Altdata Explorer API",
        description = "Consumer spending from anonymised card transactions: time series, growth \
                       (overall and per state), top merchants, search, freshness; and the review \
                       queue. Money is in US dollars (cents precision), dates are YYYY-MM-DD, net \
                       spend is sales minus refunds. Send `Authorization: Bearer <key>`. JSON \
                       by default; CSV with `Accept: text/csv` or `format=csv`. Every data \
                       answer carries `X-Cache`, `X-Data-As-Of` and `Age`."
    ),
    paths(
        api::timeseries::timeseries, api::growth::growth, api::growth::growth_by_state,
        api::top::top, api::changes::changes, api::reference::merchants, api::reference::categories,
        api::reference::freshness, api::admin::flush_cache,
        review::queue::list_queue, review::assign::assign, review::ignore::ignore,
        review::undo::undo, review::rules::add_rule, review::rules::list_rules,
        review::audit::audit_log, review::audit::mapped_share, review::files::list_files,
    ),
    components(schemas(
        error::ErrorBody, error::ErrorDetail, query::Metric, query::Granularity,
        query::GrowthPeriod, query::RankBy, query::DateRange,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "data", description = "Aggregated spending"),
        (name = "reference", description = "Merchants, categories, freshness"),
        (name = "admin", description = "Review queue, mappings, cache (admin keys only)"),
    )
)]
pub struct ApiDoc;

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

/// `GET /openapi.json`.
pub async fn serve() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
