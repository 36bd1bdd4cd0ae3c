//! The generator's model of the world, built once per run from the catalogue and the seed:
//! each brand's popularity, trend, ticket size, head-office state and descriptor name
//! forms, and the pool of made-up local merchants that are not in the catalogue.

use crate::geo::STATES;
use crate::util::{cumulative, hash3, hash_str, unit_of, AliasTable};
use altdata_domain::catalogue::Catalogue;
use altdata_domain::Category;
use std::collections::HashSet;

pub(crate) const CATEGORY_COUNT: usize = Category::ALL.len();

/// Everything about the brands and local merchants that does not change from day to day.
pub(crate) struct World {
    pub brands: Vec<BrandModel>,
    /// Brand indexes of each category, and their cumulative popularity.
    pub by_category: Vec<Vec<u32>>,
    pub popularity: Vec<AliasTable>,
    /// Made-up local merchant names of each category (empty where locals make no sense).
    pub locals: Vec<Vec<String>>,
}

/// One catalogue brand, with what the generator needs precomputed.
pub(crate) struct BrandModel {
    pub merchant_id: i64,
    pub brand_id: String,
    pub category: Category,
    pub mcc: String,
    pub forms: Vec<NameForm>,
    pub form_cumulative: Vec<f64>,
    pub popularity: f64,
    pub growth_per_day: f64,
    pub wave_amplitude: f64,
    pub wave_period_days: f64,
    pub wave_phase: f64,
    /// Multiplies the category's typical ticket (premium brands charge more).
    pub ticket_scale: f64,
    pub hq_state: u8,
    pub phone: String,
    /// `NAME.COM`, for card-not-present descriptors.
    pub url: Option<String>,
    /// Sold online or billed remotely: the row's location is the head office, or empty.
    pub card_not_present: bool,
}

/// One way a brand's name appears in descriptors, upper-case ASCII.
pub(crate) struct NameForm {
    pub text: String,
    pub suffix: FormSuffix,
}

/// What follows a platform form such as `AMZN MKTP US*`.
#[derive(Clone, Copy)]
pub(crate) enum FormSuffix {
    None,
    /// An order code of this many letters and digits.
    Code(usize),
    /// One of these product names (`GOOGLE *YOUTUBE`).
    Product(&'static [&'static str]),
    /// A store code of this many letters, then the store number (`WHOLEFDS BRY 10237`).
    StoreCode(usize),
}

/// Categories whose sales happen online or by bill, so the location is not the customer's.
pub(crate) fn is_card_not_present(category: Category) -> bool {
    matches!(
        category,
        Category::Streaming
            | Category::Ecommerce
            | Category::Software
            | Category::Utility
            | Category::Telecom
    )
}

const HOUSEHOLD_NAMES: &[&str] = &[
    "starbucks",
    "dunkin",
    "mcdonalds",
    "chick_fil_a",
    "taco_bell",
    "wendys",
    "burger_king",
    "subway",
    "chipotle",
    "walmart",
    "target",
    "costco",
    "amazon",
    "kroger",
    "publix",
    "safeway",
    "trader_joes",
    "whole_foods_market",
    "cvs_pharmacy",
    "walgreens",
    "shell",
    "exxon",
    "chevron",
    "uber",
    "lyft",
    "netflix",
    "spotify",
    "hulu",
    "disney_plus",
    "verizon",
    "at_t",
    "t_mobile",
    "xfinity",
    "home_depot",
    "the_home_depot",
    "lowes",
    "delta_air_lines",
    "southwest_airlines",
    "american_airlines",
    "united_airlines",
    "marriott",
    "hilton",
    "doordash",
    "apple",
    "google",
    "microsoft",
    "duke_energy",
    "pg_e",
    "con_edison",
    "mta",
    "best_buy",
    "dollar_general",
    "tj_maxx",
    "ebay",
    "etsy",
    "instacart",
    "dutch_bros_coffee",
    "peets_coffee",
    "nike",
    "old_navy",
    "amc_theatres",
    "bp",
    "sunoco",
    "speedway",
    "marathon",
    "wawa",
    "sheetz",
];

/// Aliases naming a country or a non-card channel are not what a US card statement shows.
const FOREIGN_OR_ODD: &[&str] = &[
    "CANADA",
    "UK",
    "AUSTRALIA",
    "MEXICO",
    "PHILIPPINES",
    "JAPAN",
    "INDIA",
    "GERMANY",
    "FRANCE",
    "BRASIL",
    "BRAZIL",
    "CHINA",
    "KOREA",
    "EUROPE",
    "INTERNATIONAL",
    "PENDING",
    "ESPANA",
    "IRELAND",
    "AB",
    "BV",
    "GMBH",
    "PETROL",
    "POSTO",
    "MX",
    "DE",
];

const HEAD_OFFICE_STATES: &[(&str, f64)] = &[
    ("CA", 0.22),
    ("WA", 0.09),
    ("NY", 0.15),
    ("TX", 0.11),
    ("GA", 0.05),
    ("IL", 0.06),
    ("MN", 0.04),
    ("OH", 0.05),
    ("MA", 0.05),
    ("NJ", 0.05),
    ("FL", 0.06),
    ("PA", 0.04),
    ("CO", 0.03),
];

const GOOGLE_PRODUCTS: &[&str] = &[
    "YOUTUBE",
    "YOUTUBEPREMIUM",
    "GOOGLE ONE",
    "GOOGLE STORAGE",
    "PLAY",
];

impl World {
    pub fn new(catalogue: &Catalogue, seed: u64) -> World {
        let ambiguous = ambiguous_names(catalogue);
        let mut brands: Vec<BrandModel> = catalogue
            .merchants
            .iter()
            .map(|merchant| {
                let h = hash_str(&merchant.brand_id) ^ mix_seed(seed);
                let canonical = fold_ascii(&merchant.name);
                let category = merchant.category;
                let card_not_present = is_card_not_present(category);
                let (forms, weights) = name_forms(
                    &merchant.brand_id,
                    &canonical,
                    &merchant.match_names,
                    card_not_present,
                    &ambiguous,
                );
                let household = HOUSEHOLD_NAMES.contains(&merchant.brand_id.as_str());
                let score = unit_of(hash3(h, 1, 0)) * 1.5
                    + if merchant.ticker_symbol.is_some() {
                        2.5
                    } else {
                        0.0
                    }
                    + 0.3 * merchant.match_names.len().min(8) as f64
                    + if household { 5.0 } else { 0.0 };
                let normal = normal_of(hash3(h, 2, 0), hash3(h, 3, 0));
                let hq_cumulative = cumulative(HEAD_OFFICE_STATES.iter().map(|(_, w)| *w));
                let hq_code = HEAD_OFFICE_STATES
                    [crate::util::pick_cumulative(&hq_cumulative, unit_of(hash3(h, 4, 0)))]
                .0;
                let hq_state = STATES.iter().position(|s| s.code == hq_code).unwrap_or(4) as u8;
                let url = url_of(&canonical);
                BrandModel {
                    merchant_id: merchant.id,
                    brand_id: merchant.brand_id.clone(),
                    category,
                    mcc: merchant.mcc.clone(),
                    form_cumulative: cumulative(weights),
                    forms,
                    popularity: score,
                    growth_per_day: normal * 0.004,
                    wave_amplitude: 0.03 + 0.06 * unit_of(hash3(h, 5, 0)),
                    wave_period_days: 12.0 + 50.0 * unit_of(hash3(h, 6, 0)),
                    wave_phase: std::f64::consts::TAU * unit_of(hash3(h, 7, 0)),
                    ticket_scale: (0.18 * normal_of(hash3(h, 8, 0), hash3(h, 9, 0))).exp(),
                    hq_state,
                    phone: phone_of(hash3(h, 10, 0)),
                    url,
                    card_not_present,
                }
            })
            .collect();

        // Popularity is Zipf-like within each category, ranked by how big the brand looks.
        let mut by_category: Vec<Vec<u32>> = vec![Vec::new(); CATEGORY_COUNT];
        for (index, brand) in brands.iter().enumerate() {
            by_category[brand.category as usize].push(index as u32);
        }
        let mut popularity = Vec::with_capacity(CATEGORY_COUNT);
        for members in &mut by_category {
            let mut ranked = members.clone();
            ranked.sort_by(|&a, &b| {
                brands[b as usize]
                    .popularity
                    .total_cmp(&brands[a as usize].popularity)
                    .then(a.cmp(&b))
            });
            for (rank, &index) in ranked.iter().enumerate() {
                brands[index as usize].popularity = 1.0 / (rank as f64 + 1.0).powf(1.05);
            }
            let weights: Vec<f64> = members
                .iter()
                .map(|&i| brands[i as usize].popularity)
                .collect();
            popularity.push(AliasTable::new(&weights));
        }

        let taken = catalogue_name_set(catalogue);
        let locals = Category::ALL
            .iter()
            .map(|&category| local_names(category, seed, &taken))
            .collect();

        World {
            brands,
            by_category,
            popularity,
            locals,
        }
    }

    /// A brand's trend multiplier on a day of the run: a slow drift plus a wave.
    pub fn trend(&self, brand: usize, day_index: u32) -> f64 {
        let model = &self.brands[brand];
        let t = f64::from(day_index);
        let exponent = (model.growth_per_day * t).clamp(-1.2, 1.2)
            + model.wave_amplitude
                * (std::f64::consts::TAU * t / model.wave_period_days + model.wave_phase).sin();
        exponent.exp()
    }
}

fn mix_seed(seed: u64) -> u64 {
    crate::util::mix(seed ^ 0x5eed_b4a0_d5a1_0000)
}

/// A standard normal deviate from two hashes.
pub(crate) fn normal_of(a: u64, b: u64) -> f64 {
    let u1 = 1.0 - unit_of(a);
    let u2 = unit_of(b);
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Folds a name to upper-case ASCII: accents dropped, odd symbols removed, spaces collapsed.
pub(crate) fn fold_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let mapped: &str = match c {
            'a'..='z'
            | 'A'..='Z'
            | '0'..='9'
            | ' '
            | '&'
            | '\''
            | '-'
            | '.'
            | '*'
            | '/'
            | '+'
            | '#'
            | '!' => {
                out.push(c.to_ascii_uppercase());
                continue;
            }
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'À' | 'Á' | 'Â' | 'Ã' | 'Ä' | 'Å' => {
                "A"
            }
            'ç' | 'Ç' => "C",
            'è' | 'é' | 'ê' | 'ë' | 'È' | 'É' | 'Ê' | 'Ë' => "E",
            'ì' | 'í' | 'î' | 'ï' | 'Ì' | 'Í' | 'Î' | 'Ï' => "I",
            'ñ' | 'Ñ' => "N",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'Ò' | 'Ó' | 'Ô' | 'Õ' | 'Ö' | 'Ø' => {
                "O"
            }
            'ù' | 'ú' | 'û' | 'ü' | 'Ù' | 'Ú' | 'Û' | 'Ü' => "U",
            'ý' | 'ÿ' | 'Ý' => "Y",
            'ß' => "SS",
            'æ' | 'Æ' => "AE",
            'œ' | 'Œ' => "OE",
            '’' | '‘' | '`' => "'",
            '–' | '—' => "-",
            ',' | ';' | ':' | '(' | ')' | '"' | '\t' => " ",
            _ => "",
        };
        out.push_str(mapped);
    }
    let mut collapsed = String::with_capacity(out.len());
    for word in out.split_whitespace() {
        if !collapsed.is_empty() {
            collapsed.push(' ');
        }
        collapsed.push_str(word);
    }
    collapsed
}

/// Upper-case alphanumeric words only, for comparing names.
fn normalise(text: &str) -> String {
    let folded = fold_ascii(text);
    let mut out = String::with_capacity(folded.len());
    for word in folded
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Names and aliases claimed by more than one brand: using them would make the truth ambiguous.
fn ambiguous_names(catalogue: &Catalogue) -> HashSet<String> {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for merchant in &catalogue.merchants {
        let mut own: HashSet<String> = HashSet::new();
        own.insert(normalise(&merchant.name));
        for alias in &merchant.match_names {
            own.insert(normalise(alias));
        }
        for name in own {
            *seen.entry(name).or_default() += 1;
        }
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(name, _)| name)
        .collect()
}

fn catalogue_name_set(catalogue: &Catalogue) -> HashSet<String> {
    let mut set = HashSet::new();
    for merchant in &catalogue.merchants {
        set.insert(normalise(&merchant.name));
        for alias in &merchant.match_names {
            set.insert(normalise(alias));
        }
    }
    set.remove("");
    set
}

/// The name forms of a brand and their weights: the canonical name most of the time, usable
/// aliases, and platform short forms with order codes.
fn name_forms(
    brand_id: &str,
    canonical: &str,
    aliases: &[String],
    card_not_present: bool,
    ambiguous: &HashSet<String>,
) -> (Vec<NameForm>, Vec<f64>) {
    let mut forms = Vec::new();
    let mut weights = Vec::new();
    let mut add = |text: &str, suffix: FormSuffix, weight: f64, forms: &mut Vec<NameForm>| {
        if forms.iter().any(|f: &NameForm| f.text == text) {
            return;
        }
        forms.push(NameForm {
            text: text.to_owned(),
            suffix,
        });
        weights.push(weight);
    };
    let special: &[(&str, FormSuffix, f64)] = match brand_id {
        "amazon" => &[
            ("AMZN MKTP US*", FormSuffix::Code(9), 3.0),
            ("AMAZON.COM*", FormSuffix::Code(9), 2.0),
            ("AMAZON MKTPL*", FormSuffix::Code(9), 1.0),
        ],
        "apple" => &[
            ("APPLE.COM/BILL", FormSuffix::None, 3.0),
            ("APL*ITUNES.COM", FormSuffix::None, 1.5),
        ],
        "google" => &[("GOOGLE *", FormSuffix::Product(GOOGLE_PRODUCTS), 4.0)],
        "uber" => &[
            ("UBER *TRIP", FormSuffix::None, 3.0),
            ("UBER TRIP", FormSuffix::None, 1.0),
            // Fixed-width: the trip reference after the product (`UBER   *TRIP 3BUF7`).
            ("UBER   *TRIP ", FormSuffix::Code(5), 1.5),
        ],
        // Whole Foods prints a store code (`WHOLEFDS BRY 10237`).
        "whole_foods_market" => &[("WHOLEFDS ", FormSuffix::StoreCode(3), 2.0)],
        "lyft" => &[("LYFT *RIDE", FormSuffix::None, 3.0)],
        "doordash" => &[("DD *DOORDASH", FormSuffix::None, 2.0)],
        _ => &[],
    };
    let canonical_weight = if special.is_empty() { 6.5 } else { 1.5 };
    add(canonical, FormSuffix::None, canonical_weight, &mut forms);
    for (text, suffix, weight) in special {
        add(text, *suffix, *weight, &mut forms);
    }
    let canonical_words: HashSet<&str> = canonical.split(' ').collect();
    let usable: Vec<String> = aliases
        .iter()
        .filter_map(|alias| {
            let folded = fold_ascii(alias);
            let normal = normalise(alias);
            let words: Vec<&str> = normal.split(' ').collect();
            let odd = words.iter().any(|w| FOREIGN_OR_ODD.contains(w));
            let shares_word = folded.split(' ').any(|w| canonical_words.contains(w))
                || normal
                    .replace(' ', "")
                    .contains(&normalise(canonical).replace(' ', ""));
            let usable = folded.len() >= 3
                && folded.len() <= 30
                && !odd
                && !ambiguous.contains(&normal)
                && (shares_word || folded.len() <= 8);
            usable.then_some(folded)
        })
        .collect();
    if !usable.is_empty() {
        let share = 3.5 / usable.len() as f64;
        for alias in &usable {
            let web = alias.contains(".COM") || alias.contains(".NET");
            let (suffix, text) = match alias.strip_suffix('*') {
                Some(head) => (FormSuffix::Code(8), format!("{}*", head.trim_end())),
                None => (FormSuffix::None, alias.clone()),
            };
            let weight = if web && !card_not_present {
                share * 0.1
            } else {
                share
            };
            add(&text, suffix, weight, &mut forms);
        }
    }
    (forms, weights)
}

/// `NAME.COM` for names of one or two words.
fn url_of(canonical: &str) -> Option<String> {
    let words = canonical.split(' ').count();
    if words > 2 || canonical.contains('.') {
        return None;
    }
    let mut url: String = canonical
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    if url.len() < 3 {
        return None;
    }
    url.push_str(".COM");
    Some(url)
}

fn phone_of(hash: u64) -> String {
    const TOLL_FREE: [u32; 5] = [800, 866, 877, 888, 855];
    let area = TOLL_FREE[(hash % 5) as usize];
    let exchange = 200 + (hash >> 8) % 800;
    let line = (hash >> 24) % 10_000;
    match (hash >> 40) % 3 {
        0 => format!("{area}-{exchange}-{line:04}"),
        1 => format!("{area}{exchange}{line:04}"),
        _ => format!("{area}-{exchange}{line:04}"),
    }
}

const OWNERS: &[&str] = &[
    "JOE", "MARIA", "TONY", "ROSA", "SAM", "LUCY", "BOB", "ANA", "NICK", "LINDA", "FRANK", "KIM",
    "RAY", "GINA", "MIKE", "DOT", "HANK", "ELLA", "VINNY", "PAM", "GUS", "NORA", "LOU", "TINA",
    "WALT", "IRMA", "STAN", "BEA", "CARLOS", "MEI",
];
const ADJECTIVES: &[&str] = &[
    "SUNRISE",
    "GOLDEN",
    "BLUE MOON",
    "RED BARN",
    "OLD TOWN",
    "SILVER",
    "LUCKY",
    "HAPPY",
    "CORNER",
    "RIVERSIDE",
    "HILLTOP",
    "MAPLE",
    "CEDAR",
    "PINE RIDGE",
    "HARBOR",
    "PRAIRIE",
    "DESERT ROSE",
    "GREEN LEAF",
    "URBAN",
    "VILLAGE",
    "LAKESIDE",
    "COPPER",
    "NORTHSIDE",
    "SOUTHSIDE",
    "TWIN OAKS",
    "WILLOW",
    "BLUEBIRD",
    "IRONWOOD",
    "MEADOW",
    "SUMMIT",
];
const STREETS: &[&str] = &[
    "MAIN ST",
    "ELM ST",
    "OAK AVE",
    "5TH AVE",
    "MARKET ST",
    "BROADWAY",
    "PARK AVE",
    "WATER ST",
    "MILL RD",
    "LAKE ST",
    "CHURCH ST",
    "HIGH ST",
    "RIVER RD",
    "2ND ST",
    "CENTER ST",
];

fn local_kinds(category: Category) -> &'static [&'static str] {
    use Category::*;
    match category {
        CoffeeShop => &[
            "COFFEE",
            "CAFE",
            "ESPRESSO BAR",
            "COFFEE HOUSE",
            "BAKERY",
            "DONUTS",
        ],
        Restaurant => &[
            "DINER",
            "GRILL",
            "TAVERN",
            "BISTRO",
            "KITCHEN",
            "PIZZERIA",
            "TAQUERIA",
            "SUSHI",
            "BBQ",
            "PUB",
            "NOODLE HOUSE",
            "TRATTORIA",
            "CANTINA",
            "SMOKEHOUSE",
        ],
        FastFood => &[
            "BURGERS",
            "TACOS",
            "SUBS",
            "PIZZA",
            "HOT DOGS",
            "FRIED CHICKEN",
        ],
        Grocery => &[
            "MARKET",
            "GROCERY",
            "FOOD MART",
            "DELI",
            "FARM STAND",
            "BUTCHER",
        ],
        HomeImprovement => &["HARDWARE", "LUMBER", "PAINT AND SUPPLY", "GARDEN CENTER"],
        Apparel => &["BOUTIQUE", "CLOTHIERS", "SHOE REPAIR", "TAILORS"],
        Other => &[
            "DRY CLEANERS",
            "BARBER SHOP",
            "NAIL SALON",
            "AUTO REPAIR",
            "FLORIST",
            "PET SUPPLY",
            "LAUNDROMAT",
            "CAR WASH",
            "LOCKSMITH",
            "VET CLINIC",
        ],
        Entertainment => &["BOWLING", "ARCADE", "YOGA STUDIO", "MINI GOLF"],
        _ => &[],
    }
}

/// Local merchant names of a category that collide with no catalogue name or alias.
fn local_names(category: Category, seed: u64, taken: &HashSet<String>) -> Vec<String> {
    let kinds = local_kinds(category);
    if kinds.is_empty() {
        return Vec::new();
    }
    let mut names = Vec::new();
    let mut seen = HashSet::new();
    let mut attempt = 0u64;
    while names.len() < 240 && attempt < 5_000 {
        attempt += 1;
        let h = hash3(seed, category as u64, attempt);
        let kind = kinds[(h % kinds.len() as u64) as usize];
        let name = match (h >> 16) % 4 {
            0 | 1 => format!(
                "{}'S {kind}",
                OWNERS[((h >> 24) % OWNERS.len() as u64) as usize]
            ),
            2 => format!(
                "{} {kind}",
                ADJECTIVES[((h >> 24) % ADJECTIVES.len() as u64) as usize]
            ),
            _ => format!(
                "{} {kind}",
                STREETS[((h >> 24) % STREETS.len() as u64) as usize]
            ),
        };
        if seen.contains(&name) || collides(&name, taken) {
            continue;
        }
        seen.insert(name.clone());
        names.push(name);
    }
    names
}

/// Whether any run of words of the name, or the name without its apostrophes, is a
/// catalogue name or alias.
fn collides(name: &str, taken: &HashSet<String>) -> bool {
    let normal = normalise(name);
    let words: Vec<&str> = normal.split(' ').collect();
    for start in 0..words.len() {
        for end in start + 1..=words.len() {
            if taken.contains(&words[start..end].join(" ")) {
                return true;
            }
        }
    }
    taken.contains(&normalise(&name.replace('\'', "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fold_to_upper_ascii() {
        assert_eq!(fold_ascii("85°C Bakery Cafe"), "85C BAKERY CAFE");
        assert_eq!(fold_ascii("A. Lange & Söhne"), "A. LANGE & SOHNE");
        assert_eq!(fold_ascii("McDonald’s,  Inc"), "MCDONALD'S INC");
    }

    #[test]
    fn local_names_never_collide_with_the_catalogue() {
        let catalogue = Catalogue::parse(
            "id,name,category,brand_id,ticker_symbol,match_names,mcc\n1,Corner Bakery,coffee_shop,corner_bakery,,,5814\n2,Joe's Coffee,coffee_shop,joes,,,5814\n",
        )
        .unwrap_or_default();
        let world = World::new(&catalogue, 7);
        let coffee = &world.locals[Category::CoffeeShop as usize];
        assert!(coffee.len() > 50);
        assert!(!coffee
            .iter()
            .any(|n| n == "CORNER BAKERY" || n == "JOE'S COFFEE"));
    }

    #[test]
    fn popularity_is_zipf_within_a_category() {
        let catalogue = Catalogue::parse(
            "id,name,category,brand_id,ticker_symbol,match_names,mcc\n1,Alpha,grocery,alpha,,,5411\n2,Beta,grocery,beta,BET,,5411\n3,Gamma,grocery,gamma,,,5411\n",
        )
        .unwrap_or_default();
        let world = World::new(&catalogue, 1);
        assert!((world.brands[1].popularity - 1.0).abs() < 1e-9);
        assert!(world.brands[0].popularity < 1.0);
    }
}
