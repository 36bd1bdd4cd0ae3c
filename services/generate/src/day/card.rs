//! A card of the panel: its lasting traits (number, home, spending style and rates), and the
//! habits of the categories it spends in (ticket sizes, local share, hours).

use super::*;

/// A card's lasting traits, recomputed from the seed whenever needed so the panel takes
/// no memory.
pub(super) struct Card {
    pub(super) index: u32,
    pub(super) hash: u64,
    pub(super) pan: [u8; 16],
    pub(super) home_state: u8,
    pub(super) home_city: u8,
    pub(super) style: Style,
    pub(super) rates: [f64; CATEGORY_COUNT],
}

const BINS: [u64; 8] = [
    414720, 426684, 542418, 517805, 440066, 481582, 601100, 379001,
];

impl Card {
    pub(super) fn new(seed: u64, index: u32, home: &AliasTable) -> Card {
        let hash = hash3(seed, 0xca4d, u64::from(index));
        let mut traits = HashStream::new(hash);
        let bin = BINS[(traits.next_u64() % BINS.len() as u64) as usize];
        let middle = traits.next_u64() % 1_000_000_000;
        let mut pan = [b'0'; 16];
        let mut body = bin * 1_000_000_000 + middle;
        for slot in (0..15).rev() {
            pan[slot] = b'0' + (body % 10) as u8;
            body /= 10;
        }
        pan[15] = luhn_check_digit(&pan[..15]);
        let home_state = home.sample(traits.unit()) as u8;
        let cities = STATES[usize::from(home_state)].cities.len();
        // The first city of a state is its largest: half of the state's cards live there.
        let city_draw = traits.next_u64();
        let home_city = if city_draw & 1 == 0 {
            0
        } else {
            ((city_draw >> 1) % cities as u64) as u8
        };
        let style = Style::from_unit(traits.unit());
        let mut rates = [0.0; CATEGORY_COUNT];
        for category in Category::ALL {
            let u = traits.unit();
            let spread = 0.3 + 1.4 * u;
            rates[category as usize] = match category {
                Category::CoffeeShop => {
                    if u < 0.35 {
                        0.55 * (0.6 + 0.8 * traits.unit())
                    } else {
                        0.04
                    }
                }
                Category::FastFood => 0.22 * spread,
                Category::Restaurant => 0.16 * spread,
                Category::Grocery => 0.19 * spread,
                Category::GasStation => {
                    if u < 0.65 {
                        0.2
                    } else {
                        0.01
                    }
                }
                Category::Rideshare => {
                    if u < 0.3 {
                        0.1
                    } else {
                        0.004
                    }
                }
                Category::Ecommerce => 0.22 * spread,
                Category::Pharmacy => 0.05 * spread,
                Category::GeneralMerchandise => 0.14 * spread,
                Category::Airline => 0.003 * spread,
                Category::Hotel => 0.002 * spread,
                Category::Software => 0.015 * spread,
                Category::Apparel => 0.04 * spread,
                Category::HomeImprovement => 0.04 * spread,
                Category::Entertainment => 0.05 * spread,
                Category::Transit => {
                    if u < 0.2 {
                        0.6
                    } else {
                        0.01
                    }
                }
                Category::Other => 0.06 * spread,
                Category::Streaming | Category::Utility | Category::Telecom => 0.0,
            };
        }
        Card {
            index,
            hash,
            pan,
            home_state,
            home_city,
            style,
            rates,
        }
    }
}

pub(super) fn luhn_check_digit(digits: &[u8]) -> u8 {
    let mut sum = 0u32;
    for (position, &digit) in digits.iter().rev().enumerate() {
        let mut value = u32::from(digit - b'0');
        if position % 2 == 0 {
            value *= 2;
            if value > 9 {
                value -= 9;
            }
        }
        sum += value;
    }
    b'0' + ((10 - sum % 10) % 10) as u8
}

/// Typical ticket per category: median dollars and log-normal sigma.
pub(super) fn ticket(category: Category) -> (f64, f64) {
    use Category::*;
    match category {
        CoffeeShop => (6.5, 0.45),
        FastFood => (11.0, 0.5),
        Restaurant => (38.0, 0.6),
        Grocery => (62.0, 0.75),
        GasStation => (42.0, 0.4),
        Rideshare => (19.0, 0.55),
        Streaming => (12.0, 0.3),
        Ecommerce => (35.0, 0.95),
        Pharmacy => (24.0, 0.8),
        GeneralMerchandise => (48.0, 0.85),
        Airline => (320.0, 0.6),
        Hotel => (210.0, 0.6),
        Utility => (110.0, 0.35),
        Telecom => (85.0, 0.4),
        Software => (14.0, 0.6),
        Apparel => (55.0, 0.7),
        HomeImprovement => (70.0, 0.95),
        Entertainment => (28.0, 0.6),
        Transit => (3.5, 0.6),
        Other => (40.0, 0.9),
    }
}

/// The share of a category's visits that go to local merchants not in the catalogue.
pub(super) fn local_share(category: Category) -> f64 {
    use Category::*;
    match category {
        CoffeeShop => 0.18,
        Restaurant => 0.35,
        FastFood => 0.05,
        Grocery => 0.06,
        Apparel => 0.1,
        HomeImprovement => 0.15,
        Other => 0.35,
        Entertainment => 0.1,
        _ => 0.0,
    }
}

pub(super) fn local_mcc(category: Category) -> &'static str {
    use Category::*;
    match category {
        CoffeeShop => "5814",
        Restaurant => "5812",
        FastFood => "5814",
        Grocery => "5411",
        Apparel => "5651",
        HomeImprovement => "5251",
        Entertainment => "7999",
        _ => "7299",
    }
}

/// Hour-of-day weights per category (local time).
pub(super) fn hour_weights(category: Category) -> [f64; 24] {
    use Category::*;
    match category {
        CoffeeShop => [
            0., 0., 0., 0., 0.2, 1., 4., 9., 11., 9., 7., 5., 4., 4., 3., 3., 3., 2., 1.5, 1., 0.6,
            0.3, 0.1, 0.,
        ],
        FastFood => [
            0.5, 0.4, 0.2, 0.1, 0.1, 0.3, 1., 2., 2., 2., 3., 8., 10., 7., 4., 3., 4., 7., 8., 6.,
            4., 3., 2., 1.,
        ],
        Restaurant | Entertainment => [
            0.3, 0.2, 0.1, 0., 0., 0., 0.2, 0.5, 1., 1., 1.5, 4., 6., 4., 2., 1.5, 2., 5., 9., 10.,
            8., 5., 3., 1.,
        ],
        Grocery | GeneralMerchandise | Apparel | HomeImprovement | Pharmacy | Other => [
            0.1, 0., 0., 0., 0., 0.2, 0.5, 1.5, 3., 5., 6., 7., 7., 7., 7., 7., 8., 9., 8., 6., 4.,
            2., 1., 0.3,
        ],
        GasStation | Transit | Rideshare => [
            0.5, 0.3, 0.2, 0.2, 0.5, 2., 6., 9., 8., 5., 4., 4., 5., 4., 4., 5., 7., 9., 7., 5.,
            4., 3., 2., 1.,
        ],
        _ => [
            1., 0.8, 0.6, 0.5, 0.5, 0.8, 1.5, 2.5, 3.5, 4., 4.5, 5., 5., 5., 5., 5., 5., 5., 5.5,
            6., 6., 5., 3.5, 2.,
        ],
    }
}
