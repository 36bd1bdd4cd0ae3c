//! Listed companies and their fiscal calendars (`data/companies.csv`, embedded): which fiscal
//! year and quarter a day falls in, for tickers' sales on the company's own periods.
//!
//! Two kinds of calendar: quarters of calendar months ending with the fiscal year-end month,
//! and the retailers' 52/53-week years (4-4-5 and its kin) ending on a weekday nearest to, or
//! last in, the year-end month, with quarters of fixed weeks and the 53rd week in the fourth.

use chrono::{Datelike, Days, Months, NaiveDate, Weekday};

pub const EMBEDDED_COMPANIES: &str = include_str!("../../../data/companies.csv");

/// A listed company: its symbol, exchange and fiscal calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Company {
    pub symbol: String,
    pub exchange: String,
    pub name: String,
    pub calendar: FiscalCalendar,
    /// How far SEC EDGAR documents confirm the calendar (`calendar_source`):
    /// `SEC EDGAR periods: ...`, `SEC EDGAR year-end month: ...` or `unverified` (see the
    /// file's header and data/README.md).
    pub calendar_source: String,
}

/// When a fiscal year ends, and how it is cut into quarters and named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FiscalCalendar {
    /// The month the fiscal year ends in (or nearest to, for a week calendar).
    pub end_month: u32,
    pub year_end: YearEnd,
    /// True when fiscal year N ends in calendar year N; false when it begins in N (January
    /// year-ends of some retailers: their fiscal 2024 ends early in 2025).
    pub named_by_end: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum YearEnd {
    /// The last day of the month; quarters are three calendar months.
    LastDayOfMonth,
    /// A 52/53-week year ending on this weekday, the one nearest the month's last day (or
    /// the month's last one), with quarters of these many weeks.
    Weeks {
        weekday: Weekday,
        nearest: bool,
        quarter_weeks: [u8; 4],
    },
}

/// One fiscal year or quarter: inclusive days and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FiscalPeriod {
    /// The company's name for the year (see [`FiscalCalendar::named_by_end`]).
    pub fiscal_year: i32,
    /// 1 to 4 for a quarter, `None` for a whole year.
    pub quarter: Option<u8>,
    pub start: NaiveDate,
    pub end: NaiveDate,
}

impl FiscalPeriod {
    /// `FY2025` or `FY2025 Q2`.
    pub fn label(&self) -> String {
        match self.quarter {
            Some(q) => format!("FY{} Q{q}", self.fiscal_year),
            None => format!("FY{}", self.fiscal_year),
        }
    }
}

impl FiscalCalendar {
    /// The last day of the fiscal year ending in (or nearest the end of) `end_month` of `year`.
    pub fn year_end(&self, year: i32) -> NaiveDate {
        let month_end = last_day_of_month(year, self.end_month);
        match self.year_end {
            YearEnd::LastDayOfMonth => month_end,
            YearEnd::Weeks {
                weekday, nearest, ..
            } => {
                let back = (7 + month_end.weekday().num_days_from_monday()
                    - weekday.num_days_from_monday())
                    % 7;
                let last = month_end - Days::new(u64::from(back));
                if nearest && back > 3 {
                    last + Days::new(7)
                } else {
                    last
                }
            }
        }
    }

    /// The fiscal year holding `day`.
    pub fn year_of(&self, day: NaiveDate) -> FiscalPeriod {
        // A year ending in early January (a week calendar) may hold days of the year before.
        let mut end_year = day.year() - 2;
        while self.year_end(end_year) < day {
            end_year += 1;
        }
        self.year(end_year)
    }

    /// The fiscal year ending in calendar year `end_year`.
    fn year(&self, end_year: i32) -> FiscalPeriod {
        FiscalPeriod {
            fiscal_year: if self.named_by_end {
                end_year
            } else {
                end_year - 1
            },
            quarter: None,
            start: self.year_end(end_year - 1) + Days::new(1),
            end: self.year_end(end_year),
        }
    }

    /// The four quarters of the fiscal year `year` is part of.
    pub fn quarters(&self, year: &FiscalPeriod) -> [FiscalPeriod; 4] {
        let mut start = year.start;
        std::array::from_fn(|index| {
            let end = match self.year_end {
                _ if index == 3 => year.end,
                YearEnd::LastDayOfMonth => {
                    let months = 3 * (index as u32 + 1);
                    (year.start + Months::new(months)) - Days::new(1)
                }
                YearEnd::Weeks { quarter_weeks, .. } => {
                    start + Days::new(7 * u64::from(quarter_weeks[index]) - 1)
                }
            };
            let quarter = FiscalPeriod {
                fiscal_year: year.fiscal_year,
                quarter: Some(index as u8 + 1),
                start,
                end,
            };
            start = end + Days::new(1);
            quarter
        })
    }

    /// The fiscal quarter holding `day`.
    pub fn quarter_of(&self, day: NaiveDate) -> FiscalPeriod {
        let year = self.year_of(day);
        let quarters = self.quarters(&year);
        quarters
            .iter()
            .find(|q| q.start <= day && day <= q.end)
            .cloned()
            .unwrap_or_else(|| quarters[3].clone())
    }

    /// The same period one fiscal year earlier (the same quarter, or the year before).
    pub fn year_before(&self, period: &FiscalPeriod) -> FiscalPeriod {
        let this_year = self.year_of(period.start);
        let year = self.year_of(this_year.start - Days::new(1));
        match period.quarter {
            None => year,
            Some(q) => self.quarters(&year)[usize::from(q.clamp(1, 4)) - 1].clone(),
        }
    }
}

fn last_day_of_month(year: i32, month: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|first| first.checked_add_months(Months::new(1)))
        .and_then(|next| next.pred_opt())
        .unwrap_or(NaiveDate::MIN)
}

/// Why a companies file cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("companies line {line}: {reason}")]
pub struct CompaniesError {
    pub line: u64,
    pub reason: String,
}

/// Reads a companies file (`#` lines are comments). Columns by position: symbol, exchange,
/// company, the calendar's six, then cik, listing_source, cik_source, calendar_source.
pub fn parse_companies(text: &str) -> Result<Vec<Company>, CompaniesError> {
    let mut reader = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut companies = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| CompaniesError {
            line: e.position().map_or(0, |p| p.line()),
            reason: e.to_string(),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let fail = |reason: &str| CompaniesError {
            line,
            reason: reason.to_owned(),
        };
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let end_month: u32 = field(3)
            .parse()
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or_else(|| fail("fiscal_year_end_month is not 1 to 12"))?;
        let year_end = match field(4) {
            "month" => YearEnd::LastDayOfMonth,
            "weeks" => YearEnd::Weeks {
                weekday: field(5).parse().map_err(|_| fail("bad year_end_weekday"))?,
                nearest: match field(6) {
                    "nearest" => true,
                    "last" => false,
                    _ => return Err(fail("year_end_rule is nearest or last")),
                },
                quarter_weeks: quarter_weeks(field(7))
                    .ok_or_else(|| fail("quarter_weeks must be four numbers adding to 52"))?,
            },
            _ => return Err(fail("calendar is month or weeks")),
        };
        let named_by_end = match field(8) {
            "end" => true,
            "start" => false,
            _ => return Err(fail("year_named_by is end or start")),
        };
        companies.push(Company {
            symbol: field(0).to_owned(),
            exchange: field(1).to_owned(),
            name: field(2).to_owned(),
            calendar: FiscalCalendar {
                end_month,
                year_end,
                named_by_end,
            },
            calendar_source: field(12).to_owned(),
        });
    }
    Ok(companies)
}

/// `13-13-13-13` into weeks per quarter, which must add up to 52.
fn quarter_weeks(text: &str) -> Option<[u8; 4]> {
    let weeks: Vec<u8> = text
        .split('-')
        .map(|w| w.parse().ok())
        .collect::<Option<_>>()?;
    let weeks: [u8; 4] = weeks.try_into().ok()?;
    (weeks.iter().map(|&w| u32::from(w)).sum::<u32>() == 52).then_some(weeks)
}

/// The embedded companies.
pub fn companies() -> Result<Vec<Company>, CompaniesError> {
    parse_companies(EMBEDDED_COMPANIES)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap_or(NaiveDate::MIN)
    }

    fn company(symbol: &str) -> Company {
        companies()
            .ok()
            .and_then(|all| all.into_iter().find(|c| c.symbol == symbol))
            .unwrap_or_else(|| panic!("{symbol} is not listed"))
    }

    #[test]
    fn the_embedded_companies_parse() {
        let all = companies().unwrap_or_default();
        assert!(all.len() >= 30);
        assert_eq!(company("SBUX").exchange, "NASDAQ");
        // Etsy moved from Nasdaq to the NYSE; the listing files say so.
        assert_eq!(company("ETSY").exchange, "NYSE");
        // Every row says how far SEC EDGAR documents confirm its calendar, or that none does.
        assert!(all.iter().all(|c| c.calendar_source == "unverified"
            || c.calendar_source.starts_with("SEC EDGAR periods: ")
            || c.calendar_source.starts_with("SEC EDGAR year-end month: ")));
        for symbol in [
            "SBUX", "LOW", "KR", "MCD", "AMZN", "HD", "NKE", "MSFT", "AAL", "HLT", "GOOGL", "COST",
            "TGT",
        ] {
            assert!(
                company(symbol)
                    .calendar_source
                    .starts_with("SEC EDGAR periods: "),
                "{symbol}"
            );
        }
        assert!(company("NFLX")
            .calendar_source
            .starts_with("SEC EDGAR year-end month: "));
        assert_eq!(company("TJX").calendar_source, "unverified");
    }

    #[test]
    fn starbucks_years_end_on_the_sunday_nearest_september_30() {
        let sbux = company("SBUX").calendar;
        // Fiscal 2024 ended 29 September 2024; fiscal 2025 on 28 September 2025.
        assert_eq!(sbux.year_end(2024), date("2024-09-29"));
        assert_eq!(sbux.year_end(2025), date("2025-09-28"));
        let q1 = sbux.quarter_of(date("2024-11-15"));
        assert_eq!(q1.label(), "FY2025 Q1");
        assert_eq!((q1.start, q1.end), (date("2024-09-30"), date("2024-12-29")));
        let last_year = sbux.year_before(&q1);
        assert_eq!(last_year.label(), "FY2024 Q1");
        assert_eq!(last_year.start, date("2023-10-02"));
        let q3 = sbux.quarter_of(date("2025-05-01"));
        assert_eq!(sbux.year_before(&q3).label(), "FY2024 Q3");
    }

    #[test]
    fn a_53_week_year_puts_the_extra_week_in_the_fourth_quarter() {
        let hd = company("HD").calendar;
        // The Home Depot's fiscal 2024 ran from 29 January 2024 to 2 February 2025: 53 weeks.
        let year = hd.year_of(date("2024-06-01"));
        assert_eq!(year.label(), "FY2024");
        assert_eq!(
            (year.start, year.end),
            (date("2024-01-29"), date("2025-02-02"))
        );
        let quarters = hd.quarters(&year);
        assert_eq!((quarters[3].end - quarters[3].start).num_days() + 1, 14 * 7);
        assert_eq!((quarters[0].end - quarters[0].start).num_days() + 1, 13 * 7);
    }

    #[test]
    fn costco_and_target_quarters_end_where_their_filings_say() {
        // The 10-Q and 10-K report dates in EDGAR's submissions data (data/fiscal_calendar_evidence.csv).
        let cost = company("COST").calendar;
        let year = cost.year_of(date("2025-12-01"));
        assert_eq!(year.label(), "FY2026");
        let ends = cost.quarters(&year).map(|q| q.end);
        assert_eq!(
            ends[..3],
            [date("2025-11-23"), date("2026-02-15"), date("2026-05-10")]
        );
        // Fiscal 2025: 12, 12, 12 and 16 weeks, ending Sunday 31 August 2025.
        let q4 = cost.quarter_of(date("2025-08-01"));
        assert_eq!(
            (q4.label(), q4.start, q4.end),
            (
                "FY2025 Q4".to_owned(),
                date("2025-05-12"),
                date("2025-08-31")
            )
        );
        // Fiscal 2023 ended on 3 September 2023, the Sunday nearest 31 August (not the last in it).
        assert_eq!(cost.year_of(date("2023-06-01")).end, date("2023-09-03"));

        let tgt = company("TGT").calendar;
        let year = tgt.year_of(date("2025-06-01"));
        assert_eq!(year.label(), "FY2025");
        let ends = tgt.quarters(&year).map(|q| q.end);
        assert_eq!(
            ends,
            [
                date("2025-05-03"),
                date("2025-08-02"),
                date("2025-11-01"),
                date("2026-01-31")
            ]
        );
        // Fiscal 2023 ended on Saturday 3 February 2024, the Saturday nearest 31 January.
        assert_eq!(tgt.year_of(date("2023-06-01")).end, date("2024-02-03"));
    }

    #[test]
    fn month_calendars_cut_quarters_at_month_ends() {
        let msft = company("MSFT").calendar;
        let q = msft.quarter_of(date("2025-08-10"));
        assert_eq!(q.label(), "FY2026 Q1");
        assert_eq!((q.start, q.end), (date("2025-07-01"), date("2025-09-30")));
        let mcd = company("MCD").calendar;
        let q4 = mcd.quarter_of(date("2025-12-31"));
        assert_eq!(
            (q4.label(), q4.start),
            ("FY2025 Q4".to_owned(), date("2025-10-01"))
        );
    }

    #[test]
    fn every_day_is_in_exactly_one_quarter_of_every_calendar() {
        for company in companies().unwrap_or_default() {
            let calendar = company.calendar;
            let mut day = date("2023-01-01");
            let mut previous: Option<FiscalPeriod> = None;
            while day <= date("2026-12-31") {
                let q = calendar.quarter_of(day);
                assert!(q.start <= day && day <= q.end, "{} {day}", company.symbol);
                if let Some(p) = previous.filter(|p| *p != q) {
                    assert_eq!(p.end + Days::new(1), q.start, "{} {day}", company.symbol);
                }
                previous = Some(q);
                day = day.succ_opt().unwrap_or(NaiveDate::MAX);
            }
        }
    }
}
