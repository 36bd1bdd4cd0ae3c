//! The days the panel covers, and why a value is missing.
//!
//! **No invented zeros**: a day before the first delivered day or after the last one has no
//! data, which is not the same as a day on which nobody spent anything. The panel's coverage
//! is the span of days with any aggregate row (released or withheld, any merchant, any state);
//! a value over days outside it is null with a [`Missing`] reason, and a period only partly
//! inside it is flagged `partial`. Inside the coverage, no activity is a real zero.

use super::terms::DateRange;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The first and last day with any data; both null before the first delivery.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PanelCoverage {
    /// The first day with data: the panel starts here.
    #[schema(value_type = Option<String>, format = Date)]
    pub first_day: Option<NaiveDate>,
    /// The last day delivered (the newest transaction day with data).
    #[schema(value_type = Option<String>, format = Date)]
    pub last_day: Option<NaiveDate>,
}

/// Why a value is null (or, for growth, why it cannot be computed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Nothing has been delivered yet.
    NothingDelivered,
    /// Every day of the period is before the panel's first day.
    BeforePanelStart,
    /// Every day of the period is after the last delivered day.
    AfterLastDelivery,
    /// All activity is in cells with fewer than k customers (docs/PRIVACY.md); with
    /// normalize=panel, also every panel cell (fewer than k cards) of the divisor.
    Withheld,
    /// An average ticket without sales.
    NoSales,
    /// A per-customer metric without customers.
    NoCustomers,
    /// normalize=panel: no released active cards in the panel over the days and states, so
    /// nothing to divide by (panel cells under k say `withheld`).
    NoActiveCards,
    /// Growth only: a period is only partly covered by the panel, so the two are not alike.
    PartialPeriod,
    /// Growth only: the previous value is zero or negative.
    ZeroBase,
}

impl Missing {
    /// The reason in plain words, for text answers (`altdata ask`).
    pub fn words(self) -> &'static str {
        match self {
            Missing::NothingDelivered => "no data delivered yet",
            Missing::BeforePanelStart => "no data: before the panel starts",
            Missing::AfterLastDelivery => "no data yet: after the last delivered day",
            Missing::Withheld => "withheld: too few customers",
            Missing::NoSales => "no sales",
            Missing::NoCustomers => "no customers",
            Missing::NoActiveCards => "no active cards in the panel",
            Missing::PartialPeriod => "a period is only partly covered by the data",
            Missing::ZeroBase => "nothing in the previous period",
        }
    }
}

impl PanelCoverage {
    /// The days of `range` with data; `None` when none has (with the reason).
    pub fn covered(&self, range: DateRange) -> Result<DateRange, Missing> {
        let (Some(first), Some(last)) = (self.first_day, self.last_day) else {
            return Err(Missing::NothingDelivered);
        };
        if range.to < first {
            return Err(Missing::BeforePanelStart);
        }
        if range.from > last {
            return Err(Missing::AfterLastDelivery);
        }
        range
            .intersect(DateRange {
                from: first,
                to: last,
            })
            .ok_or(Missing::NothingDelivered)
    }

    /// Whether every day of `range` has data.
    pub fn covers_all(&self, range: DateRange) -> bool {
        self.covered(range).is_ok_and(|covered| covered == range)
    }

    /// Whether some days of `range` have data and some do not: a value over it is partial.
    /// A range without any data is not partial; its value is missing, with a reason.
    pub fn covers_part(&self, range: DateRange) -> bool {
        self.covered(range).is_ok_and(|covered| covered != range)
    }
}

/// One period of an answer: the whole calendar period, the days of it that were asked for
/// (clipped to from/to), and whether the panel covers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeriodSpan {
    pub whole: DateRange,
    pub counted: DateRange,
}

impl PeriodSpan {
    /// Days outside the question's from/to are left out.
    pub fn clipped(&self) -> bool {
        self.whole != self.counted
    }

    /// The value covers fewer days than the whole period: clipped, or partly outside the panel.
    pub fn partial(&self, coverage: &PanelCoverage) -> bool {
        self.clipped() || coverage.covers_part(self.counted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or_default()
    }

    fn range(from: &str, to: &str) -> DateRange {
        DateRange {
            from: date(from),
            to: date(to),
        }
    }

    #[test]
    fn days_outside_the_panel_have_a_reason_and_days_inside_are_counted() {
        let coverage = PanelCoverage {
            first_day: Some(date("2026-03-03")),
            last_day: Some(date("2026-03-14")),
        };
        let before = coverage.covered(range("2026-02-23", "2026-03-01"));
        assert_eq!(before, Err(Missing::BeforePanelStart));
        let after = coverage.covered(range("2026-03-16", "2026-03-22"));
        assert_eq!(after, Err(Missing::AfterLastDelivery));
        let straddling = range("2026-03-09", "2026-03-15");
        assert_eq!(
            coverage.covered(straddling),
            Ok(range("2026-03-09", "2026-03-14"))
        );
        assert!(!coverage.covers_all(straddling));
        assert!(coverage.covers_part(straddling));
        assert!(coverage.covers_all(range("2026-03-03", "2026-03-09")));
        assert!(
            !coverage.covers_part(range("2026-02-23", "2026-03-01")),
            "no data at all"
        );
        assert_eq!(
            PanelCoverage::default().covered(straddling),
            Err(Missing::NothingDelivered)
        );
    }

    #[test]
    fn a_clipped_period_is_partial() {
        let coverage = PanelCoverage {
            first_day: Some(date("2026-01-01")),
            last_day: Some(date("2026-12-31")),
        };
        let whole = range("2026-10-26", "2026-11-01");
        let clipped = PeriodSpan {
            whole,
            counted: range("2026-11-01", "2026-11-01"),
        };
        assert!(clipped.clipped() && clipped.partial(&coverage));
        let full = PeriodSpan {
            whole,
            counted: whole,
        };
        assert!(!full.clipped() && !full.partial(&coverage));
    }
}
