//! Seasonality: weekday and weekend shape, US holidays (Thanksgiving, Black Friday, Cyber
//! Monday, Christmas) and daylight saving time.

use altdata_domain::Category;
use chrono::{Datelike, NaiveDate, Weekday};

/// How much busier (above 1) or quieter (below 1) a category is on a date than on an
/// average day.
pub(crate) fn category_factor(category: Category, date: NaiveDate) -> f64 {
    weekday_factor(category, date.weekday()) * holiday_factor(category, date)
}

fn weekday_factor(category: Category, weekday: Weekday) -> f64 {
    use Category::*;
    let weekend = matches!(weekday, Weekday::Sat | Weekday::Sun);
    let friday = weekday == Weekday::Fri;
    match category {
        CoffeeShop => {
            if weekend {
                0.8
            } else {
                1.08
            }
        }
        Restaurant | Entertainment => {
            if weekend {
                1.35
            } else if friday {
                1.25
            } else {
                0.85
            }
        }
        FastFood => {
            if weekend {
                1.1
            } else {
                0.96
            }
        }
        Grocery | HomeImprovement | Apparel | GeneralMerchandise => {
            if weekend {
                1.3
            } else {
                0.88
            }
        }
        Transit => {
            if weekend {
                0.45
            } else {
                1.22
            }
        }
        Rideshare => {
            if weekend || friday {
                1.3
            } else {
                0.85
            }
        }
        GasStation | Pharmacy => {
            if weekday == Weekday::Sun {
                0.8
            } else {
                1.03
            }
        }
        _ => 1.0,
    }
}

fn nth_weekday(year: i32, month: u32, weekday: Weekday, n: u8) -> Option<NaiveDate> {
    NaiveDate::from_weekday_of_month_opt(year, month, weekday, n)
}

fn last_weekday(year: i32, month: u32, weekday: Weekday) -> Option<NaiveDate> {
    (1..=5)
        .rev()
        .find_map(|n| NaiveDate::from_weekday_of_month_opt(year, month, weekday, n))
}

fn holiday_factor(category: Category, date: NaiveDate) -> f64 {
    use Category::*;
    let year = date.year();
    let retail = matches!(
        category,
        GeneralMerchandise | Apparel | Ecommerce | HomeImprovement | Entertainment
    );
    let dining = matches!(category, Restaurant | FastFood | CoffeeShop);
    if let Some(thanksgiving) = nth_weekday(year, 11, Weekday::Thu, 4) {
        let offset = (date - thanksgiving).num_days();
        match offset {
            -2 | -1 if category == Grocery => return 1.8,
            0 => {
                return match category {
                    Grocery => 0.7,
                    Restaurant => 0.55,
                    Ecommerce => 1.4,
                    Streaming | Utility | Telecom | Software => 1.0,
                    _ if retail => 0.5,
                    _ => 0.6,
                }
            }
            1 => {
                // Black Friday.
                return match category {
                    GeneralMerchandise | Apparel => 2.6,
                    HomeImprovement => 1.8,
                    Ecommerce => 2.0,
                    _ if dining => 1.15,
                    _ => 1.0,
                };
            }
            2 | 3 if retail => return 1.35,
            4 if category == Ecommerce => return 2.7, // Cyber Monday.
            4 if retail => return 1.2,
            _ => {}
        }
    }
    match (date.month(), date.day()) {
        (12, 25) => {
            return match category {
                Streaming | Utility | Telecom | Software => 1.0,
                CoffeeShop | FastFood => 0.35,
                Restaurant => 0.45,
                Entertainment => 1.2,
                _ => 0.2,
            }
        }
        (12, 24) => {
            return match category {
                Grocery => 1.5,
                _ if retail => 1.5,
                _ => 1.0,
            }
        }
        (12, 26) if retail => return 1.4,
        (12, d) if d < 24 && retail => {
            // The run-up to Christmas builds through December.
            return 1.1 + 0.35 * f64::from(d) / 23.0;
        }
        (1, 1) => {
            return match category {
                Grocery | GeneralMerchandise => 0.6,
                Streaming | Utility | Telecom | Software => 1.0,
                _ => 0.75,
            }
        }
        (2, 14) if category == Restaurant => return 1.7,
        (7, 4) => {
            return match category {
                Grocery => 1.25,
                Transit => 0.5,
                _ if retail => 0.8,
                _ => 1.0,
            }
        }
        _ => {}
    }
    let long_weekend = last_weekday(year, 5, Weekday::Mon) == Some(date)
        || nth_weekday(year, 9, Weekday::Mon, 1) == Some(date);
    if long_weekend {
        return match category {
            Transit => 0.5,
            Grocery | HomeImprovement => 1.2,
            _ => 1.0,
        };
    }
    if category == Restaurant && nth_weekday(year, 5, Weekday::Sun, 2) == Some(date) {
        return 1.6; // Mother's Day.
    }
    1.0
}

/// US daylight saving time: from the second Sunday of March to the first Sunday of November.
pub(crate) fn is_dst(date: NaiveDate) -> bool {
    let year = date.year();
    match (
        nth_weekday(year, 3, Weekday::Sun, 2),
        nth_weekday(year, 11, Weekday::Sun, 1),
    ) {
        (Some(start), Some(end)) => date >= start && date < end,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    #[test]
    fn black_friday_is_the_busiest_retail_day_of_november() {
        let black_friday = date(2025, 11, 28);
        let ordinary_friday = date(2025, 11, 14);
        assert!(
            category_factor(Category::GeneralMerchandise, black_friday)
                > 2.0 * category_factor(Category::GeneralMerchandise, ordinary_friday)
        );
        assert!(category_factor(Category::Ecommerce, date(2025, 12, 1)) > 2.0);
    }

    #[test]
    fn christmas_day_is_quiet_for_shops() {
        assert!(category_factor(Category::Grocery, date(2025, 12, 25)) < 0.5);
    }

    #[test]
    fn daylight_saving_follows_us_rules() {
        assert!(is_dst(date(2025, 7, 1)));
        assert!(!is_dst(date(2025, 12, 1)));
        assert!(is_dst(date(2025, 3, 9)));
        assert!(!is_dst(date(2025, 3, 8)));
        assert!(!is_dst(date(2025, 11, 2)));
    }
}
