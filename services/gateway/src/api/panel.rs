//! `normalize=panel`: a value divided by the active cards of the panel in the same states and
//! period (spend per active card), so that cards joining or leaving the panel do not read as
//! consumer behaviour. `/v1/growth`, `/v1/growth/states` and `/v1/timeseries` use it.

use super::answer::dependency_of;
use crate::cache::Dependency;
use crate::query::{Missing, Normalize, PanelTotals, Scope};

/// A pair of values (current and previous period) as an answer reports them: per active card
/// when normalised, with the raw values and the panel counts beside them; the raw values
/// alone otherwise. A value is null with its reason ([`Missing`]); the growth between the two
/// and its rules are the growth answer's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerCard {
    pub current: Result<f64, Missing>,
    pub previous: Result<f64, Missing>,
    pub raw_current: Option<f64>,
    pub raw_previous: Option<f64>,
    pub panel_current: Option<f64>,
    pub panel_previous: Option<f64>,
    /// Panel cells (provider × state × day) with fewer than k cards, left out of the counts.
    pub panel_withheld_cells: Option<i64>,
}

impl PerCard {
    /// `panel` holds the active cards of (current, previous), when normalised.
    pub fn of(
        current: Result<f64, Missing>,
        previous: Result<f64, Missing>,
        panel: Option<&[PanelTotals]>,
    ) -> PerCard {
        let Some(panel) = panel else {
            return PerCard {
                current,
                previous,
                raw_current: None,
                raw_previous: None,
                panel_current: None,
                panel_previous: None,
                panel_withheld_cells: None,
            };
        };
        let (panel_current, panel_previous) = (
            panel.first().copied().unwrap_or_default(),
            panel.get(1).copied().unwrap_or_default(),
        );
        PerCard {
            current: divide(current, &panel_current),
            previous: divide(previous, &panel_previous),
            raw_current: current.ok(),
            raw_previous: previous.ok(),
            panel_current: cards(&panel_current),
            panel_previous: cards(&panel_previous),
            panel_withheld_cells: Some(
                panel_current.withheld_cells + panel_previous.withheld_cells,
            ),
        }
    }
}

/// `value` per active card ([`per_card`]), or why there is none: the value's own reason, or
/// the panel's (its cells withheld, or no active cards over the days).
pub fn divide(value: Result<f64, Missing>, panel: &PanelTotals) -> Result<f64, Missing> {
    let value = value?;
    per_card(Some(value), panel).ok_or(if panel.suppressed() {
        Missing::Withheld
    } else {
        Missing::NoActiveCards
    })
}

/// `value` per active card, to 1/10,000; `None` without released active cards. Divided by the
/// count as published (whole cards), so that an answer's numbers agree with each other.
pub fn per_card(value: Option<f64>, panel: &PanelTotals) -> Option<f64> {
    let (value, cards) = (value?, cards(panel)?);
    Some((value / cards * 1e4).round() / 1e4)
}

/// The active cards as published: `None` when withheld or without any.
pub fn cards(panel: &PanelTotals) -> Option<f64> {
    (panel.cards >= 1.0).then(|| panel.cards.round())
}

/// What a cached answer depends on. A normalised answer divides by the panel of its states,
/// which any merchant's transactions change: it depends on every change.
pub fn dependency(normalize: Normalize, scope: &Scope) -> Dependency {
    match normalize {
        Normalize::Panel => Dependency::All,
        Normalize::None => dependency_of(scope),
    }
}

/// `Some(normalize)` to echo in an answer when it changes the answer.
pub fn echo(normalize: Normalize) -> Option<Normalize> {
    (normalize != Normalize::None).then_some(normalize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panel_that_grows_with_spend_leaves_spend_per_card_flat() {
        let panel = [
            PanelTotals {
                cards: 1250.0,
                withheld_cells: 1,
            },
            PanelTotals {
                cards: 1000.0,
                withheld_cells: 0,
            },
        ];
        let pair = PerCard::of(Ok(12_500.0), Ok(10_000.0), Some(&panel));
        assert_eq!(pair.current, Ok(10.0));
        assert_eq!(pair.previous, Ok(10.0));
        assert_eq!(
            (pair.raw_current, pair.raw_previous),
            (Some(12_500.0), Some(10_000.0))
        );
        assert_eq!(
            (pair.panel_current, pair.panel_previous),
            (Some(1250.0), Some(1000.0))
        );
        assert_eq!(pair.panel_withheld_cells, Some(1));
        let raw = PerCard::of(Ok(12_500.0), Ok(10_000.0), None);
        assert_eq!(raw.current, Ok(12_500.0));
        assert_eq!(raw.raw_current, None);
        let missing = PerCard::of(Err(Missing::BeforePanelStart), Ok(10_000.0), Some(&panel));
        assert_eq!(missing.current, Err(Missing::BeforePanelStart));
        assert_eq!(missing.raw_current, None);
    }

    #[test]
    fn a_withheld_panel_leaves_the_value_unknown() {
        let withheld = PanelTotals {
            cards: 0.0,
            withheld_cells: 3,
        };
        assert!(withheld.suppressed());
        assert_eq!(per_card(Some(100.0), &withheld), None);
        assert_eq!(cards(&withheld), None);
        assert_eq!(divide(Ok(100.0), &withheld), Err(Missing::Withheld));
        assert_eq!(
            divide(Ok(100.0), &PanelTotals::default()),
            Err(Missing::NoActiveCards)
        );
    }
}
