//! One day's file: every card of the panel lives through the day (recurring bills, visits
//! by category, refunds, travel), each sale becomes a row with a noisy descriptor, and a
//! few rows are late, duplicated or broken on purpose. The day's truth is aggregated on
//! the way.

mod card;
mod row;

use crate::calendar::{category_factor, is_dst};
use crate::descriptor::{DescriptorInput, DescriptorWriter, MerchantName, Style};
use crate::error::GenerateError;
use crate::geo::{travel_weight, NO_REGION, STATES};
use crate::util::{
    cumulative, hash3, pick_cumulative, push_base36, push_cents, push_padded, push_u64, unit_of,
    AliasTable, Draw, HashStream,
};
use crate::world::{World, CATEGORY_COUNT};
use altdata_common::Shutdown;
use altdata_domain::{date_to_epoch_days, Category};
use card::*;
use chrono::{Datelike, Duration, NaiveDate};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Late rows carry a `posted_at` up to this many days before the file's date.
pub(crate) const MAX_LATE_DAYS: i64 = 3;

/// Raw bytes handed to the sink at a time (before compression).
const CHUNK_BYTES: usize = 4 << 20;

/// What the run needs to know, the same for every day.
#[derive(Clone)]
pub(crate) struct RunParams {
    pub seed: u64,
    pub cards: u32,
    pub start: NaiveDate,
    pub provider: String,
    pub truth_detail: bool,
    /// The day whose file repeats a few rows of the previous day's file.
    pub overlap_day: Option<u32>,
    /// Cards transacting before `growth_day` (all of them from it on): planted panel growth.
    pub cards_before_growth: u32,
    pub growth_day: u32,
}

impl RunParams {
    /// The panel of a day: the cards with index below this transact. Cards keep their habits
    /// whenever they join, since a card's traits come from its index.
    pub fn active_cards(&self, day_index: u32) -> u32 {
        if day_index < self.growth_day {
            self.cards_before_growth
        } else {
            self.cards
        }
    }
}

/// Why a row was broken on purpose; ingest must reject each of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BrokenReason {
    ColumnCount,
    BadAmount,
    BadDate,
    Currency,
    EmptyTxnId,
    UnknownState,
    DescriptorTooLong,
}

impl BrokenReason {
    pub const ALL: [BrokenReason; 7] = [
        BrokenReason::ColumnCount,
        BrokenReason::BadAmount,
        BrokenReason::BadDate,
        BrokenReason::Currency,
        BrokenReason::EmptyTxnId,
        BrokenReason::UnknownState,
        BrokenReason::DescriptorTooLong,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BrokenReason::ColumnCount => "column_count",
            BrokenReason::BadAmount => "bad_amount",
            BrokenReason::BadDate => "bad_date",
            BrokenReason::Currency => "currency",
            BrokenReason::EmptyTxnId => "empty_txn_id",
            BrokenReason::UnknownState => "unknown_state",
            BrokenReason::DescriptorTooLong => "descriptor_too_long",
        }
    }
}

/// Row counts of one file.
#[derive(Debug, Clone, Default)]
pub(crate) struct DayStats {
    pub rows: u64,
    pub valid_rows: u64,
    pub broken: [u64; BrokenReason::ALL.len()],
    pub duplicate_rows: u64,
    pub local_rows: u64,
    pub local_net_cents: i64,
    pub valid_net_cents: i64,
    pub refund_rows: u64,
    pub late_rows: u64,
}

impl DayStats {
    pub fn broken_rows(&self) -> u64 {
        self.broken.iter().sum()
    }
}

/// One valid row of a catalogue brand for the truth: `brand << 40 | region << 32 | card`
/// and the signed cents. Sorting these groups a (brand, region) and its distinct cards.
pub(crate) type TruthRecord = (u64, i64);

/// Packs the truth sort key of a row.
#[inline]
pub(crate) fn truth_key(brand: u32, region: u8, card: u32) -> u64 {
    (u64::from(brand) << 40) | (u64::from(region) << 32) | u64::from(card)
}

pub(crate) struct DayResult {
    pub stats: DayStats,
    /// Sorted truth records per sale date (days since 1970).
    pub truth: Vec<(i32, Vec<TruthRecord>)>,
    /// `provider,txn_id,brand_id,category` lines, when the run asked for them.
    pub detail: Vec<u8>,
}

/// Generates one day's file, handing raw CSV chunks (header first) to `sink`.
pub(crate) fn generate_day(
    world: &World,
    params: &RunParams,
    day_index: u32,
    sink: &mut dyn FnMut(Vec<u8>) -> Result<(), GenerateError>,
    shutdown: &Shutdown,
) -> Result<DayResult, GenerateError> {
    let mut day = DayGenerator::new(world, params, day_index);
    day.out.extend_from_slice(HEADER.as_bytes());
    if params.overlap_day == Some(day_index) && day_index > 0 {
        let repeated = previous_day_rows(world, params, day_index - 1, 3);
        for row in &repeated {
            day.out.extend_from_slice(row);
        }
        day.stats.rows += repeated.len() as u64;
        day.stats.duplicate_rows += repeated.len() as u64;
    }
    for card in 0..params.active_cards(day_index) {
        day.card_day(card);
        if card % 256 == 255 {
            day.release_duplicates();
        }
        if day.out.len() >= CHUNK_BYTES {
            sink(std::mem::replace(
                &mut day.out,
                Vec::with_capacity(CHUNK_BYTES + 4096),
            ))?;
        }
        if card % 4096 == 4095 && shutdown.is_triggered() {
            return Err(GenerateError::Cancelled);
        }
    }
    day.release_duplicates();
    sink(std::mem::take(&mut day.out))?;
    Ok(DayResult {
        stats: day.stats,
        truth: day
            .truth
            .into_iter()
            .enumerate()
            .filter(|(_, records)| !records.is_empty())
            .map(|(back, mut records)| {
                records.sort_unstable();
                (day.epoch_day - back as i32, records)
            })
            .collect(),
        detail: day.detail,
    })
}

pub(crate) const HEADER: &str =
    "txn_id,posted_at,card_id,descriptor,amount,currency,mcc,city,state,postal_code\n";

/// The first valid rows of a day's file, byte for byte: the day is replayed from its
/// start, which is cheap because only the first few cards are needed.
fn previous_day_rows(
    world: &World,
    params: &RunParams,
    day_index: u32,
    count: usize,
) -> Vec<Vec<u8>> {
    let mut day = DayGenerator::new(world, params, day_index);
    day.capture = Some(Vec::new());
    let mut card = 0;
    while card < params.cards.min(512) && day.capture.as_ref().is_some_and(|c| c.len() < count) {
        day.card_day(card);
        card += 1;
    }
    let ranges = day.capture.take().unwrap_or_default();
    ranges
        .into_iter()
        .take(count)
        .map(|(start, end)| day.out[start..end].to_vec())
        .collect()
}

/// A brand's facts for one day, packed small so the hot loop stays in cache.
struct BrandDay {
    trend: f64,
    /// Ticket multiplier: the brand's price level times the square root of its trend.
    ticket: f64,
    card_not_present: bool,
    hq_state: u8,
}

/// Who a row is with.
#[derive(Clone, Copy)]
enum Merchant {
    Brand(u32),
    Local { category: Category, index: u32 },
}

/// One sale or refund before it is written.
struct Sale {
    merchant: Merchant,
    category: Category,
    cents: i64,
    days_back: u8,
    hour: u32,
    minute: u32,
    second: u32,
    region: u8,
    city: Option<u8>,
    postal: Option<u32>,
    store_number: u32,
    recurring: bool,
}

struct DayGenerator<'w> {
    world: &'w World,
    params: &'w RunParams,
    day_index: u32,
    epoch_day: i32,
    rng: ChaCha8Rng,
    category_factor: [f64; CATEGORY_COUNT],
    brands: Vec<BrandDay>,
    category_picks: Vec<AliasTable>,
    home: AliasTable,
    travel: AliasTable,
    hour_cumulative: Vec<Vec<f64>>,
    /// `YYYY-MM-DD`, month, day, year and DST of the file date and the days before it.
    dates: Vec<([u8; 10], u32, u32, i32, bool)>,
    day_of_month: u32,
    month_index: u64,
    out: Vec<u8>,
    duplicates: Vec<u8>,
    descriptor: DescriptorWriter,
    seq: u64,
    broken_counter: usize,
    stats: DayStats,
    /// Truth records by how many days before the file date the sale was.
    truth: Vec<Vec<TruthRecord>>,
    detail: Vec<u8>,
    capture: Option<Vec<(usize, usize)>>,
}

impl<'w> DayGenerator<'w> {
    fn new(world: &'w World, params: &'w RunParams, day_index: u32) -> DayGenerator<'w> {
        let date = params.start + Duration::days(i64::from(day_index));
        let rng = ChaCha8Rng::seed_from_u64(hash3(params.seed, 0xda7, u64::from(day_index)));
        let mut category_factor = [1.0; CATEGORY_COUNT];
        for category in Category::ALL {
            category_factor[category as usize] = category_factor_of(category, date);
        }
        let brands: Vec<BrandDay> = world
            .brands
            .iter()
            .enumerate()
            .map(|(b, model)| {
                let trend = world.trend(b, day_index);
                BrandDay {
                    trend,
                    ticket: model.ticket_scale * trend.sqrt(),
                    card_not_present: model.card_not_present,
                    hq_state: model.hq_state,
                }
            })
            .collect();
        let category_picks = world
            .by_category
            .iter()
            .map(|members| {
                let weights: Vec<f64> = members
                    .iter()
                    .map(|&b| world.brands[b as usize].popularity * brands[b as usize].trend)
                    .collect();
                AliasTable::new(&weights)
            })
            .collect();
        let home = AliasTable::new(&STATES.iter().map(|s| s.population).collect::<Vec<_>>());
        let travel = AliasTable::new(&(0..STATES.len()).map(travel_weight).collect::<Vec<_>>());
        let hour_cumulative = Category::ALL
            .iter()
            .map(|&c| cumulative(hour_weights(c)))
            .collect();
        let dates = (0..=MAX_LATE_DAYS)
            .map(|back| {
                let d = date - Duration::days(back);
                let mut text = [0u8; 10];
                let formatted = d.format("%Y-%m-%d").to_string();
                text.copy_from_slice(&formatted.as_bytes()[..10]);
                (text, d.month(), d.day(), d.year(), is_dst(d))
            })
            .collect();
        DayGenerator {
            world,
            params,
            day_index,
            epoch_day: date_to_epoch_days(date),
            rng,
            category_factor,
            brands,
            category_picks,
            home,
            travel,
            hour_cumulative,
            dates,
            day_of_month: date.day(),
            month_index: (date.year() as u64) * 12 + u64::from(date.month()),
            out: Vec::with_capacity(CHUNK_BYTES + 4096),
            duplicates: Vec::new(),
            descriptor: DescriptorWriter::default(),
            seq: 0,
            broken_counter: day_index as usize * 3,
            stats: DayStats::default(),
            truth: vec![Vec::new(); MAX_LATE_DAYS as usize + 1],
            detail: Vec::new(),
            capture: None,
        }
    }

    fn release_duplicates(&mut self) {
        self.out.extend_from_slice(&self.duplicates);
        self.duplicates.clear();
    }

    fn card_day(&mut self, index: u32) {
        let card = Card::new(self.params.seed, index, &self.home);
        // A few card-weeks are trips: in-person spending moves to another state.
        let week_day = i64::from(self.epoch_day) + 3;
        let week = week_day.div_euclid(7) as u64;
        let trip = hash3(card.hash, 900, week);
        let weekday = week_day.rem_euclid(7) as u64;
        let trip_start = (trip >> 8) % 4;
        let trip_len = 2 + (trip >> 16) % 4;
        let mut state = card.home_state;
        let mut city = card.home_city;
        let mut travelling = false;
        if unit_of(trip) < 0.04 && weekday >= trip_start && weekday < trip_start + trip_len {
            let destination = self.travel.sample(unit_of(hash3(trip, 1, 0))) as u8;
            if destination != card.home_state {
                state = destination;
                let cities = STATES[usize::from(destination)].cities.len() as u64;
                city = (hash3(trip, 2, 0) % cities) as u8;
                travelling = true;
            }
        }

        self.recurring(&card);

        let mut weights = [0.0; CATEGORY_COUNT];
        let mut total = 0.0;
        for (slot, weight) in weights.iter_mut().enumerate() {
            let mut rate = card.rates[slot] * self.category_factor[slot];
            if travelling {
                rate *= match slot {
                    s if s == Category::Hotel as usize => 0.0,
                    s if s == Category::Restaurant as usize => 1.6,
                    s if s == Category::Rideshare as usize => 3.0,
                    s if s == Category::Grocery as usize => 0.4,
                    _ => 1.0,
                };
                if slot == Category::Hotel as usize {
                    rate = 0.3;
                }
            }
            *weight = rate;
            total += rate;
        }
        let visits = self.rng.poisson(total);
        for _ in 0..visits {
            let mut target = self.rng.unit() * total;
            let mut slot = CATEGORY_COUNT - 1;
            for (i, &w) in weights.iter().enumerate() {
                if target < w {
                    slot = i;
                    break;
                }
                target -= w;
            }
            self.purchase(&card, Category::ALL[slot], state, city, travelling);
        }
    }

    /// Monthly bills on the card's fixed billing day: streaming, telecom, utility, software.
    fn recurring(&mut self, card: &Card) {
        // Bill days of the six subscription slots come from one hash, so the 27 days of the
        // month without a bill cost almost nothing.
        let bill_days = hash3(card.hash, 402, 0);
        for slot in 0..6u64 {
            let bill_day = 1 + ((bill_days >> (10 * slot)) & 0x3ff) as u32 % 28;
            if bill_day != self.day_of_month {
                continue;
            }
            let streaming_count = match unit_of(hash3(card.hash, 400, 0)) {
                u if u < 0.2 => 0,
                u if u < 0.5 => 1,
                u if u < 0.8 => 2,
                _ => 3,
            };
            let (category, subscribed) = match slot {
                0..=2 => (Category::Streaming, slot < streaming_count),
                3 => (
                    Category::Telecom,
                    unit_of(hash3(card.hash, 401, slot)) < 0.85,
                ),
                4 => (
                    Category::Utility,
                    unit_of(hash3(card.hash, 401, slot)) < 0.45,
                ),
                _ => (
                    Category::Software,
                    unit_of(hash3(card.hash, 401, slot)) < 0.25,
                ),
            };
            let popularity = &self.world.popularity[category as usize];
            if !subscribed || popularity.is_empty() {
                continue;
            }
            // Utilities are regional: each state has a couple, whoever the card is.
            let pick = if category == Category::Utility {
                hash3(
                    self.params.seed,
                    u64::from(card.home_state),
                    hash3(card.hash, 403, slot) % 2,
                )
            } else {
                hash3(card.hash, 403, slot)
            };
            let member = popularity.sample(unit_of(pick));
            let brand = self.world.by_category[category as usize][member];
            // The subscriber base follows the brand's trend: as it grows, more cards stay.
            let keep = 0.8 * self.brands[brand as usize].trend.min(1.25);
            if unit_of(hash3(card.hash, 404, slot)) >= keep {
                continue;
            }
            let price = |prices: &[i64], k: u64| {
                prices[(hash3(card.hash, 405, k) % prices.len() as u64) as usize]
            };
            let cents = match category {
                Category::Streaming => {
                    price(&[699, 799, 999, 1099, 1199, 1399, 1549, 1799, 2299], slot)
                }
                Category::Software => price(&[299, 999, 1199, 1499, 1999, 5499], slot),
                Category::Telecom => {
                    let z =
                        crate::world::normal_of(hash3(card.hash, 406, 0), hash3(card.hash, 407, 0));
                    (8500.0 * (0.4 * z).exp()).round() as i64
                }
                _ => {
                    let z = crate::world::normal_of(
                        hash3(card.hash, 408, self.month_index),
                        hash3(card.hash, 409, self.month_index),
                    );
                    (11000.0 * (0.35 * z).exp()).round() as i64
                }
            };
            let region = if self.rng.chance(0.7) {
                self.brands[brand as usize].hq_state
            } else {
                NO_REGION
            };
            let sale = Sale {
                merchant: Merchant::Brand(brand),
                category,
                cents: cents.max(100),
                days_back: self.late_days(),
                hour: 1 + self.rng.below(6),
                minute: self.rng.below(60),
                second: self.rng.below(60),
                region,
                city: (region != NO_REGION).then_some(0),
                postal: (region != NO_REGION).then_some(0),
                store_number: 0,
                recurring: true,
            };
            self.emit(card, &sale);
        }
    }

    fn late_days(&mut self) -> u8 {
        if self.rng.chance(0.01) {
            1 + self.rng.below(MAX_LATE_DAYS as u32) as u8
        } else {
            0
        }
    }

    fn purchase(
        &mut self,
        card: &Card,
        category: Category,
        state: u8,
        home_city: u8,
        travelling: bool,
    ) {
        let slot = category as usize;
        let locals = self.world.locals[slot].len() as u32;
        let brands = &self.world.by_category[slot];
        if brands.is_empty() && locals == 0 {
            return;
        }
        let local = brands.is_empty() || (locals > 0 && self.rng.chance(local_share(category)));
        let (merchant, ticket_scale, card_not_present, hq_state) = if local {
            let index = if !travelling && self.rng.chance(0.7) {
                (hash3(card.hash, 200 + slot as u64, u64::from(self.rng.below(3)))
                    % u64::from(locals)) as u32
            } else {
                self.rng.below(locals)
            };
            (Merchant::Local { category, index }, 1.0, false, 0)
        } else {
            let favourite_member =
                self.world.popularity[slot].sample(unit_of(hash3(card.hash, 300, slot as u64)));
            let favourite = brands[favourite_member];
            let loyal = (0.45 * self.brands[favourite as usize].trend).min(0.8);
            let brand = if category == Category::Transit {
                // Transit agencies are regional: each state has its own few.
                let local_agency = hash3(
                    self.params.seed,
                    u64::from(state),
                    u64::from(self.rng.below(2)),
                );
                brands[self.category_picks[slot].sample(unit_of(local_agency))]
            } else if !travelling && self.rng.chance(loyal) {
                favourite
            } else {
                brands[self.category_picks[slot].sample(self.rng.unit())]
            };
            let day = &self.brands[brand as usize];
            (
                Merchant::Brand(brand),
                day.ticket,
                day.card_not_present,
                day.hq_state,
            )
        };
        let (median, sigma) = ticket(category);
        let dollars = median * ticket_scale * (sigma * self.rng.normal()).exp();
        let mut cents = (dollars * 100.0).round().clamp(50.0, 2_000_000.0) as i64;
        if category == Category::GasStation && self.rng.chance(0.25) {
            cents = (cents / 500).max(1) * 500;
        }
        let hour = pick_cumulative(&self.hour_cumulative[slot], self.rng.unit()) as u32;
        let (region, city) = if card_not_present {
            if self.rng.chance(0.7) {
                (hq_state, Some(0))
            } else {
                (NO_REGION, None)
            }
        } else if self.rng.chance(0.035) {
            (NO_REGION, None)
        } else {
            let cities = STATES[usize::from(state)].cities.len() as u32;
            let city = if travelling || self.rng.chance(0.85) {
                home_city
            } else {
                self.rng.below(cities) as u8
            };
            (state, Some(city))
        };
        let merchant_key = match merchant {
            Merchant::Brand(b) => u64::from(b),
            Merchant::Local { index, .. } => 1_000_000 + (slot as u64) * 1000 + u64::from(index),
        };
        let variant = hash3(card.hash, merchant_key, 7) % 3;
        let location = u64::from(region) * 16 + u64::from(city.unwrap_or(0));
        let store_hash = hash3(merchant_key, location, variant);
        let store_number = (store_hash % 9_900 + 100) as u32;
        let postal = city.map(|_| (store_hash >> 20) as u32 % 40);
        let sale = Sale {
            merchant,
            category,
            cents,
            days_back: self.late_days(),
            hour,
            minute: self.rng.below(60),
            second: self.rng.below(60),
            region,
            city,
            postal,
            store_number,
            recurring: false,
        };
        self.emit(card, &sale);
        if self.rng.chance(0.021) {
            // A refund at the same merchant, later the same day.
            let full = self.rng.chance(0.7);
            let refund_cents = if full {
                cents
            } else {
                (cents as f64 * (0.2 + 0.6 * self.rng.unit()))
                    .round()
                    .max(1.0) as i64
            };
            let refund = Sale {
                cents: -refund_cents,
                hour: (sale.hour + 1 + self.rng.below(3)).min(23),
                minute: self.rng.below(60),
                ..sale
            };
            self.emit(card, &refund);
        }
    }
}

fn category_factor_of(category: Category, date: NaiveDate) -> f64 {
    category_factor(category, date)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn card_numbers_pass_the_luhn_check() {
        let home = AliasTable::new(&STATES.iter().map(|s| s.population).collect::<Vec<_>>());
        for index in 0..100 {
            let card = Card::new(42, index, &home);
            let digits: Vec<u32> = card.pan.iter().map(|d| u32::from(d - b'0')).collect();
            let sum: u32 = digits
                .iter()
                .rev()
                .enumerate()
                .map(|(i, &d)| {
                    if i % 2 == 1 {
                        if d * 2 > 9 {
                            d * 2 - 9
                        } else {
                            d * 2
                        }
                    } else {
                        d
                    }
                })
                .sum();
            assert_eq!(sum % 10, 0);
        }
    }
}
