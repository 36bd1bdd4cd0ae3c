//! CSV renderings of the answers (`Accept: text/csv` or `?format=csv`): one header row, one
//! row per point, period, state or merchant; empty cells for nulls; dates `YYYY-MM-DD`.
//!
//! Every data file (timeseries, growth, growth by state, top) stands alone: its last columns
//! are `unit`, `subject`, `period_from`, `period_to` and `as_of_data`, the same on every row,
//! so a file opened a month later still says what it measures, of whom, over which days and
//! how fresh the data was (columns rather than comment lines: every CSV reader keeps them).
//!
//! Every cell goes through [`CsvWriter`], which neutralises formula injection (OWASP's rule):
//! a cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`,
//! so a spreadsheet shows it as text instead of evaluating it, unless the cell is a plain
//! decimal number: `-12.5` (a refund, a negative delta) stays a number. The rule looks at the
//! text, not at the column, so a column added later cannot forget it.

use crate::api::answer::Subject;
use crate::api::changes::ChangesAnswer;
use crate::api::growth::{GrowthAnswer, GrowthByStateAnswer};
use crate::api::reference::{CategoriesAnswer, FreshnessAnswer, MerchantsAnswer};
use crate::api::timeseries::TimeseriesAnswer;
use crate::api::top::TopAnswer;
use crate::error::ApiError;
use crate::query::DateRange;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, SecondsFormat, Utc};

/// An answer that can be written as one CSV table.
pub trait CsvTable {
    fn write_csv(&self, writer: &mut CsvWriter) -> csv::Result<()>;
}

/// A CSV writer whose every cell is safe to open in a spreadsheet.
pub struct CsvWriter {
    inner: csv::Writer<Vec<u8>>,
}

impl CsvWriter {
    fn new() -> CsvWriter {
        CsvWriter {
            inner: csv::Writer::from_writer(Vec::new()),
        }
    }

    /// Writes one row, each cell neutralised ([`neutralise`]).
    pub fn write_record<I, T>(&mut self, record: I) -> csv::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        for cell in record {
            self.inner
                .write_field(neutralise(cell.as_ref()).as_bytes())?;
        }
        // An empty record ends the row the fields above began.
        self.inner.write_record(None::<&[u8]>)
    }

    fn into_bytes(self) -> csv::Result<Vec<u8>> {
        self.inner
            .into_inner()
            .map_err(|error| csv::Error::from(error.into_error()))
    }
}

/// `cell`, with a leading `'` if a spreadsheet would read it as a formula.
pub fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    let starts_a_formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if starts_a_formula && !is_plain_number(cell) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// An optional sign, digits, and optionally a point and more digits: what the answers write
/// for numbers (Rust's `Display` of integers and floats), and never a formula.
fn is_plain_number(cell: &str) -> bool {
    let unsigned = cell.strip_prefix(['-', '+']).unwrap_or(cell);
    let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, "0"));
    let digits = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && digits(fraction)
}

/// Renders an answer as `text/csv`.
pub fn render_csv<T: CsvTable>(answer: &T) -> Response {
    let mut writer = CsvWriter::new();
    let written = answer
        .write_csv(&mut writer)
        .and_then(|()| writer.into_bytes());
    match written {
        Ok(bytes) => {
            let mut response = bytes.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            response
        }
        Err(error) => {
            tracing::error!(error = %error, "cannot render CSV");
            ApiError::Internal.into_response()
        }
    }
}

fn number(value: Option<f64>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

fn time(value: Option<DateTime<Utc>>) -> String {
    value
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The columns every data file ends with (see the module's documentation).
const ABOUT_COLUMNS: [&str; 5] = ["unit", "subject", "period_from", "period_to", "as_of_data"];

/// The values of [`ABOUT_COLUMNS`].
fn about(
    unit: &str,
    subject: &Subject,
    period: DateRange,
    as_of: Option<DateTime<Utc>>,
) -> [String; 5] {
    [
        unit.to_owned(),
        subject.describe(),
        period.from.to_string(),
        period.to.to_string(),
        time(as_of),
    ]
}

fn header(columns: impl IntoIterator<Item = &'static str>) -> Vec<&'static str> {
    columns.into_iter().chain(ABOUT_COLUMNS).collect()
}

fn row(cells: impl IntoIterator<Item = String>, about: &[String; 5]) -> Vec<String> {
    cells.into_iter().chain(about.iter().cloned()).collect()
}

/// The columns `normalize=panel` adds to a growth answer, after its own and before the
/// [`ABOUT_COLUMNS`] (answers without it keep theirs).
const PANEL_COLUMNS: [&str; 5] = [
    "raw_current",
    "raw_previous",
    "panel_current",
    "panel_previous",
    "panel_withheld_cells",
];

fn panel_cells(
    raw: [Option<f64>; 2],
    panel: [Option<f64>; 2],
    withheld: Option<i64>,
) -> [String; 5] {
    [
        number(raw[0]),
        number(raw[1]),
        number(panel[0]),
        number(panel[1]),
        withheld.map(|w| w.to_string()).unwrap_or_default(),
    ]
}

/// The columns `normalize=panel` adds to a series, as for [`PANEL_COLUMNS`].
const POINT_PANEL_COLUMNS: [&str; 2] = ["raw_value", "panel_cards"];

impl CsvTable for TimeseriesAnswer {
    fn write_csv(&self, writer: &mut CsvWriter) -> csv::Result<()> {
        let normalized = self.query.normalize.is_some();
        let mut columns = vec![
            "period_start",
            "metric",
            "value",
            "suppressed",
            "withheld_cells",
            "attributed_share",
            "period_end",
            "counted_from",
            "counted_to",
            "reason",
            "clipped",
            "partial",
        ];
        if normalized {
            columns.extend(POINT_PANEL_COLUMNS);
        }
        writer.write_record(header(columns))?;
        let asked = DateRange {
            from: self.query.from,
            to: self.query.to,
        };
        let about = about(&self.unit, &self.subject, asked, self.as_of);
        for point in &self.points {
            let mut cells = vec![
                point.period_start.to_string(),
                serde_plain(&self.query.metric),
                number(point.value),
                point.suppressed.to_string(),
                point.withheld_cells.to_string(),
                number(point.attributed_share),
                point.period_end.to_string(),
                point.counted.from.to_string(),
                point.counted.to.to_string(),
                point.reason.as_ref().map(serde_plain).unwrap_or_default(),
                point.clipped.to_string(),
                point.partial.to_string(),
            ];
            if normalized {
                cells.extend([number(point.raw_value), number(point.panel_cards)]);
            }
            writer.write_record(row(cells, &about))?;
        }
        Ok(())
    }
}

impl CsvTable for GrowthAnswer {
    fn write_csv(&self, writer: &mut CsvWriter) -> csv::Result<()> {
        let normalized = self.query.normalize.is_some();
        let mut columns = vec![
            "metric",
            "period",
            "current_from",
            "current_to",
            "current",
            "previous_from",
            "previous_to",
            "previous",
            "growth",
            "attributed_share",
            "previous_attributed_share",
            "growth_reason",
            "current_partial",
            "previous_partial",
        ];
        if normalized {
            columns.extend(PANEL_COLUMNS);
        }
        writer.write_record(header(columns))?;
        let about = about(
            &self.unit,
            &self.subject,
            self.current_period,
            self.as_of_data,
        );
        let mut cells = vec![
            serde_plain(&self.query.metric),
            serde_plain(&self.query.period),
            self.current_period.from.to_string(),
            self.current_period.to.to_string(),
            number(self.current),
            self.previous_period.from.to_string(),
            self.previous_period.to.to_string(),
            number(self.previous),
            number(self.growth),
            number(self.attributed_share),
            number(self.previous_attributed_share),
            self.growth_reason
                .as_ref()
                .map(serde_plain)
                .unwrap_or_default(),
            self.current_partial.to_string(),
            self.previous_partial.to_string(),
        ];
        if normalized {
            cells.extend(panel_cells(
                [self.raw_current, self.raw_previous],
                [self.panel_current, self.panel_previous],
                self.panel_withheld_cells,
            ));
        }
        writer.write_record(row(cells, &about))
    }
}

impl CsvTable for crate::api::overlap::OverlapAnswer {
    fn write_csv(&self, writer: &mut CsvWriter) -> csv::Result<()> {
        writer.write_record([
            "from",
            "to",
            "states",
            "a",
            "b",
            "customers_a",
            "customers_b",
            "customers_either",
            "customers_both",
            "share_of_a_in_b",
            "share_of_b_in_a",
            "customers_both_error",
            "share_of_a_in_b_error",
            "share_of_b_in_a_error",
            "k_anonymity",
            "as_of_data",
        ])?;
        let name = |subject: &crate::api::answer::Subject| {
            subject
                .merchant_name
                .clone()
                .or_else(|| subject.category.clone())
                .unwrap_or_default()
        };
        writer.write_record([
            self.query.period.from.to_string(),
            self.query.period.to.to_string(),
            self.query.states.join(" "),
            name(&self.a),
            name(&self.b),
            number(self.customers_a),
            number(self.customers_b),
            number(self.customers_either),
            number(self.customers_both),
            number(self.share_of_a_in_b),
            number(self.share_of_b_in_a),
            number(self.customers_both_error),
            number(self.share_of_a_in_b_error),
            number(self.share_of_b_in_a_error),
            self.k_anonymity.to_string(),
            time(self.as_of_data),
        ])
    }
}

impl CsvTable for crate::api::tickers::TickersAnswer {
    fn write_csv(&self, writer: &mut CsvWriter) -> csv::Result<()> {
        writer.write_record([
            "symbol",
            "exchange",
            "name",
            "fiscal_year_end_month",
            "calendar",
            "quarter_weeks",
            "year_named_by",
            "brands",
            "calendar_source",
        ])?;
        for company in &self.tickers {
            let brands: Vec<&str> = company.brands.iter().map(|b| b.name.as_str()).collect();
            writer.write_record([
                company.symbol.clone(),
                company.exchange.clone(),
                company.name.clone(),
                company.fiscal_year_end_month.to_string(),
                company.calendar.clone(),
                company.quarter_weeks.clone().unwrap_or_default(),
                company.year_named_by.clone(),
                brands.join("|"),
                company.calendar_source.clone(),
            ])?;
        }
        Ok(())
    }
}

impl CsvTable for crate::api::tickers::TickerSalesAnswer {
    fn write_csv(&self, writer: &mut CsvWriter) -> csv::Result<()> {
        writer.write_record([
            "symbol",
            "kind",
            "label",
            "from",
            "to",
            "sales",
            "previous_label",
            "previous_from",
            "previous_to",
            "previous_sales",
            "yoy_growth",
            "withheld_cells",
        ])?;
        let complete = self.periods.iter().map(|p| ("complete", p));
        for (kind, period) in complete.chain([("to_date", &self.to_date)]) {
            writer.write_record([
                self.company.symbol.clone(),
                kind.to_owned(),
                period.label.clone(),
                period.from.to_string(),
                period.to.to_string(),
                number(period.sales),
                period.previous_label.clone(),
                period.previous_from.to_string(),
                period.previous_to.to_string(),
                number(period.previous_sales),
                number(period.yoy_growth),
                period.withheld_cells.to_string(),
            ])?;
        }
        Ok(())
    }
}

impl CsvTable for GrowthByStateAnswer {
    fn write_csv(&self, writer: &mut CsvWriter) -> csv::Result<()> {
        let normalized = self.query.normalize.is_some();
        let mut columns = vec![
            "state",
            "metric",
            "period",
            "current_from",
            "current_to",
            "current",
            "previous_from",
            "previous_to",
            "previous",
            "growth",
            "suppressed",
            "attributed_share",
            "growth_reason",
        ];
        if normalized {
            columns.extend(PANEL_COLUMNS);
        }
        writer.write_record(header(columns))?;
        let about = about(
            &self.unit,
            &self.subject,
            self.current_period,
            self.as_of_data,
        );
        for state in &self.states {
            let mut cells = vec![
                state.state.clone(),
                serde_plain(&self.query.metric),
                serde_plain(&self.query.period),
                self.current_period.from.to_string(),
                self.current_period.to.to_string(),
                number(state.current),
                self.previous_period.from.to_string(),
                self.previous_period.to.to_string(),
                number(state.previous),
                number(state.growth),
                state.suppressed.to_string(),
                number(state.attributed_share),
                state
                    .growth_reason
                    .as_ref()
                    .map(serde_plain)
                    .unwrap_or_default(),
            ];
            if normalized {
                cells.extend(panel_cells(
                    [state.raw_current, state.raw_previous],
                    [state.panel_current, state.panel_previous],
                    state.panel_withheld_cells,
                ));
            }
            writer.write_record(row(cells, &about))?;
        }
        Ok(())
    }
}

impl CsvTable for TopAnswer {
    fn write_csv(&self, writer: &mut CsvWriter) -> csv::Result<()> {
        writer.write_record(header([
            "rank",
            "merchant_id",
            "name",
            "category",
            "current_spend",
            "previous_spend",
            "growth",
            "by",
            "direction",
            "min_spend",
        ]))?;
        let subject = Subject {
            kind: if self.category.is_some() {
                "category"
            } else {
                "all"
            }
            .to_owned(),
            category: self.category.clone(),
            merchant_id: None,
            merchant_name: None,
            brand: None,
        };
        let about = about("usd", &subject, self.current_period, self.as_of_data);
        for merchant in &self.merchants {
            let cells = [
                merchant.rank.to_string(),
                merchant.merchant_id.to_string(),
                merchant.name.clone(),
                merchant.category.clone(),
                merchant.current_spend.to_string(),
                number(merchant.previous_spend),
                number(merchant.growth),
                serde_plain(&self.by),
                serde_plain(&self.direction),
                self.min_spend.to_string(),
            ];
            writer.write_record(row(cells, &about))?;
        }
        Ok(())
    }
}

impl CsvTable for MerchantsAnswer {
    fn write_csv(&self, writer: &mut CsvWriter) -> csv::Result<()> {
        writer.write_record(["id", "name", "category", "brand_id", "ticker_symbol"])?;
        for merchant in &self.merchants {
            writer.write_record([
                merchant.id.to_string(),
                merchant.name.clone(),
                merchant.category.clone(),
                merchant.brand_id.clone().unwrap_or_default(),
                merchant.ticker_symbol.clone().unwrap_or_default(),
            ])?;
        }
        Ok(())
    }
}

impl CsvTable for CategoriesAnswer {
    fn write_csv(&self, writer: &mut CsvWriter) -> csv::Result<()> {
        writer.write_record(["category", "label", "merchants"])?;
        for category in &self.categories {
            writer.write_record([
                category.category.clone(),
                category.label.clone(),
                category.merchants.to_string(),
            ])?;
        }
        Ok(())
    }
}

impl CsvTable for FreshnessAnswer {
    fn write_csv(&self, writer: &mut CsvWriter) -> csv::Result<()> {
        writer.write_record([
            "shard",
            "stream_seq",
            "applied_events",
            "last_commit_at",
            "age_seconds",
        ])?;
        for shard in &self.shards {
            writer.write_record([
                shard.shard.to_string(),
                shard.stream_seq.to_string(),
                shard.applied_events.to_string(),
                time(shard.last_commit_at),
                number(shard.age_seconds),
            ])?;
        }
        Ok(())
    }
}

/// The serde name of a unit enum variant (`avg_ticket`, `wow`).
fn serde_plain<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(text)) => text,
        _ => String::new(),
    }
}

impl CsvTable for ChangesAnswer {
    fn write_csv(&self, writer: &mut CsvWriter) -> csv::Result<()> {
        writer.write_record([
            "recorded_at",
            "cause",
            "provider",
            "file",
            "merchant_id",
            "merchant_name",
            "category",
            "state",
            "day",
            "rows",
            "delta_spend",
            "delta_transactions",
            "withheld",
        ])?;
        for change in &self.changes {
            writer.write_record([
                time(Some(change.recorded_at)),
                change.cause.clone(),
                change.provider.clone().unwrap_or_default(),
                change.file.clone().unwrap_or_default(),
                change.merchant_id.to_string(),
                change.merchant_name.clone(),
                change.category.clone(),
                change.state.clone(),
                change.day.to_string(),
                change.rows.map(|r| r.to_string()).unwrap_or_default(),
                number(change.delta_spend),
                change
                    .delta_transactions
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
                change.withheld.to_string(),
            ])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised() {
        for cell in [
            "=HYPERLINK(\"http://evil.example\",\"click\")",
            "+1+1",
            "-2+3",
            "@SUM(A1:A2)",
            "\t=1",
            "\r=1",
            "-",
            "--5",
            "-1e3",
            "-inf",
            "-NaN",
        ] {
            assert_eq!(neutralise(cell), format!("'{cell}"), "{cell:?}");
        }
    }

    #[test]
    fn numbers_and_plain_text_stay_as_they_are() {
        for cell in [
            "-12.5",
            "-3",
            "+7",
            "0.25",
            "12",
            "Starbucks",
            "",
            "a=b",
            "'quoted",
        ] {
            assert_eq!(neutralise(cell), cell, "{cell:?}");
        }
    }

    #[test]
    fn every_cell_of_a_written_row_is_neutralised() {
        let mut writer = CsvWriter::new();
        let written = writer
            .write_record(["=1+2", "-12.5", "@x"])
            .and_then(|()| writer.into_bytes())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        assert_eq!(written.ok().as_deref(), Some("'=1+2,-12.5,'@x\n"));
    }
}
