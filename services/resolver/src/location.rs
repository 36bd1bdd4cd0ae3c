//! The location at the right-hand end of a descriptor: `… <CITY> <ST>`, `… <CITY><ST>`, a
//! trailing `USA`, a truncated city (`SAN LUIS OBIS`, `FT COLLI`).
//!
//! The state is the reliable part; a city is only taken out of the text when a state follows it
//! and it is a known US city (or a truncation of one), or a US place of 5,000 people or more in
//! that state (GeoNames), so that merchant words are not lost. A place glued to the end of the
//! name field (`KFCLOUISVILLE KY`) is split off the same way. When a
//! state follows an unknown word, that word is probably a small town: it stays in the text and
//! [`Location::place_tokens`] tells the matcher not to hold it against a candidate.

use crate::normalize::is_marker;
use altdata_domain::Region;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::LazyLock;

/// What [`take_location`] removed from the end of the token list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Location {
    pub state: Option<Region>,
    pub city: Option<String>,
    /// How many trailing tokens of what is left are probably a place name (an unknown town
    /// before a state, or a known city with no state after it). They stay in the text.
    pub place_tokens: usize,
}

/// Two-letter codes that are also common words or name fragments (`CO` for company, `IN` for
/// Intuit, `LA` starting a name, `MA` from `MARKET`, `RI *` a processor). They count as a state
/// only with context: right after a known city, right after a phone number or id, or after two
/// or more words of which the last is not one that such a code often completes (`TAXI CO`,
/// `DRIVE IN`).
const AMBIGUOUS_STATES: [&str; 15] = [
    "CO", "IN", "LA", "MA", "RI", "ME", "OR", "HI", "AL", "MT", "AS", "GU", "VI", "MP", "ID",
];

/// Words after which an ambiguous code is part of the name, not a state.
const NAME_WORDS_BEFORE_CODE: [&str; 28] = [
    "TAXI",
    "LUMBER",
    "LMBR",
    "EDISON",
    "OIL",
    "GAS",
    "TRADING",
    "BREWING",
    "COFFEE",
    "ROASTING",
    "TEA",
    "SUPPLY",
    "FEED",
    "CANDY",
    "CHOCOLATE",
    "MERCANTILE",
    "BAKING",
    "CLOTHING",
    "DRIVE",
    "WALK",
    "PLUG",
    "CHECK",
    "LOG",
    "DINE",
    "CARRY",
    "TAKE",
    "OOH",
    "CAFE",
];

/// Country codes printed after the state or instead of it.
const COUNTRY_TOKENS: [&str; 12] = [
    "USA", "GBR", "IRL", "NLD", "ITA", "CAN", "DEU", "FRA", "ESP", "MEX", "AUS", "CHE",
];

/// Words that start multi-word place names; an unknown town after one of them is two tokens.
pub(crate) const PLACE_PREFIX_WORDS: [&str; 24] = [
    "SAN", "SANTA", "LOS", "LAS", "NEW", "FORT", "FT", "ST", "SAINT", "EL", "PORT", "NORTH",
    "SOUTH", "EAST", "WEST", "LAKE", "PALM", "MOUNT", "MT", "GRAND", "CEDAR", "CAPE", "LITTLE",
    "LONG",
];

/// Words that end multi-word place names (`REDWOOD CITY`, `ALLEN PARK`).
pub(crate) const PLACE_SUFFIX_WORDS: [&str; 10] = [
    "CITY", "BEACH", "SPRINGS", "PARK", "HEIGHTS", "FALLS", "VALLEY", "HILLS", "GROVE", "HARBOR",
];

/// Known cities, upper case, sorted, with `FT`/`ST`/`MT` short forms added; and the same as a
/// set for exact look-ups.
static CITY_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| CITIES.iter().map(String::as_str).collect());

/// Every word of every known city, sorted, to rule a word out before building look-up keys.
static CITY_WORDS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let mut words: Vec<&'static str> = CITIES.iter().flat_map(|c| c.split(' ')).collect();
    words.sort_unstable();
    words.dedup();
    words
});

static CITY_WORD_SET: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| CITY_WORDS.iter().copied().collect());

/// Whether `word` is a word of a known city.
pub(crate) fn is_city_word(word: &str) -> bool {
    CITY_WORD_SET.contains(word)
}

/// Whether `word` is a word of a known city or (with `allow_truncation`, 3+ letters) the start
/// of one.
pub(crate) fn could_end_a_city(word: &str, allow_truncation: bool) -> bool {
    if CITY_WORD_SET.contains(word) {
        return true;
    }
    if !allow_truncation || word.len() < 3 {
        return false;
    }
    let words = &*CITY_WORDS;
    let at = words.partition_point(|w| *w < word);
    words
        .get(at)
        .is_some_and(|w| *w == word || (allow_truncation && word.len() >= 3 && w.starts_with(word)))
}

/// US places of 5,000 people or more (GeoNames, `data/us_places.tsv`) and the states each name
/// occurs in. Only taken out of the text before a state the place is in, so a name that is also
/// a merchant word elsewhere (`HUDSON`, `APPLE`) is not lost.
static PLACES: LazyLock<HashMap<&'static str, &'static str>> = LazyLock::new(|| {
    include_str!("data/us_places.tsv")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once('\t'))
        .collect()
});

/// Whether `name` is a US place in `state`.
fn place_in_state(name: &str, state: Region) -> bool {
    PLACES
        .get(name)
        .is_some_and(|states| states.split(' ').any(|s| s == state.as_str()))
}

/// A known city (any state) or a place in `state`.
fn is_place(name: &str, state: Region) -> bool {
    CITY_SET.contains(name) || place_in_state(name, state)
}

static CITIES: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut cities: Vec<String> = Vec::new();
    for line in include_str!("data/us_cities.txt").lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        cities.push(line.to_owned());
        for (long, short) in [("FORT ", "FT "), ("SAINT ", "ST "), ("MOUNT ", "MT ")] {
            if let Some(rest) = line.strip_prefix(long) {
                cities.push(format!("{short}{rest}"));
            }
        }
    }
    cities.sort();
    cities.dedup();
    cities
});

/// Parses and removes the location at the end of `tokens` (upper-case words).
///
/// At least one token is always left for the merchant.
pub(crate) fn take_location(tokens: &mut Vec<&str>) -> Location {
    let mut location = Location::default();
    drop_trailing_country(tokens);
    let Some(&last) = tokens.last() else {
        return location;
    };

    if tokens.len() >= 2 {
        if let Some(region) = Region::parse(last).filter(|_| last.len() == 2) {
            let before = &tokens[..tokens.len() - 1];
            let city = known_city_at_end(before, true).or_else(|| place_at_end(before, region));
            if city.is_some() {
                tokens.pop();
                location.state = Some(region);
                location.city = city.and_then(|(count, name)| strip_city(tokens, count, name));
            } else if let Some((at, head, name)) = glued_place_at_end(before, region) {
                // `KFCLOUISVILLE KY`: a name field printed full and the city glued to it.
                tokens.truncate(at);
                tokens.push(head);
                location.state = Some(region);
                location.city = Some(name);
            } else if !AMBIGUOUS_STATES.contains(&last) || ambiguous_code_is_state(before) {
                tokens.pop();
                location.state = Some(region);
            }
        } else if let Some((region, city_part)) = glued_state(last).filter(|(region, city)| {
            // A cut city only before an unambiguous state: `BRIDAL` is no `BRID` in Alabama.
            could_end_a_city(city, !AMBIGUOUS_STATES.contains(&region.as_str()))
        }) {
            // `SEATTLEWA`: a known city with its state glued on.
            let mut candidate: Vec<&str> = tokens[..tokens.len() - 1].to_vec();
            candidate.push(city_part);
            let cut = !AMBIGUOUS_STATES.contains(&region.as_str());
            if let Some((count, name)) = known_city_at_end(&candidate, cut) {
                *tokens = candidate;
                location.state = Some(region);
                location.city = strip_city(tokens, count, name);
            }
        }
    }

    if location.state.is_some() && location.city.is_none() {
        location.place_tokens = unknown_place_tokens(tokens);
    } else if location.state.is_none() {
        location.place_tokens = known_city_at_end(tokens, false)
            .map(|(count, _)| count)
            .filter(|&count| count < tokens.len())
            .unwrap_or(0);
    }
    location
}

/// Drops a foreign country code at the end, and `USA` or `US` right after a state (`MURPHY USA`
/// keeps its `USA`).
fn drop_trailing_country(tokens: &mut Vec<&str>) {
    if tokens.len() < 2 {
        return;
    }
    let n = tokens.len();
    let last = tokens[n - 1];
    let after_state = Region::parse(tokens[n - 2]).is_some() && tokens[n - 2].len() == 2;
    let foreign = COUNTRY_TOKENS.contains(&last) && last != "USA";
    if foreign || (matches!(last, "US" | "USA") && after_state) {
        tokens.pop();
    }
}

/// Context that makes an ambiguous code (`CO`, `IN`, `OR`, …) a state: a phone number or id
/// right before it, or at least two name words before it, the last of which is not one the code
/// often completes.
fn ambiguous_code_is_state(before: &[&str]) -> bool {
    let Some(previous) = before.last() else {
        return false;
    };
    if *previous == "~" {
        return before.len() >= 2;
    }
    let words = before.iter().filter(|t| !is_marker(t)).count();
    words >= 2 && *previous != "*" && !NAME_WORDS_BEFORE_CODE.contains(previous)
}

/// `SEATTLEWA` → (`WA`, `SEATTLE`), for words of at least 3 letters plus a state.
fn glued_state(token: &str) -> Option<(Region, &str)> {
    if token.len() < 5 || !token.is_ascii() {
        return None;
    }
    let (head, tail) = token.split_at(token.len() - 2);
    let region = Region::parse(tail)?;
    head.bytes()
        .all(|b| b.is_ascii_alphabetic())
        .then_some((region, head))
}

/// The longest known city (1 to 3 tokens) at the end of `tokens`, leaving at least one token
/// of 2 or more characters before it. With `allow_truncation` the last token may be cut short
/// (`SAN LUIS OBIS`, `FT COLLI`) or the city may stop after a whole word (`ROCKVILLE CEN`).
/// Returns the number of tokens and the city's full name.
pub(crate) fn known_city_at_end(
    tokens: &[&str],
    allow_truncation: bool,
) -> Option<(usize, String)> {
    if !tokens
        .last()
        .is_some_and(|last| could_end_a_city(last, allow_truncation))
    {
        return None;
    }
    for count in (1..=3).rev() {
        if count >= tokens.len() {
            continue;
        }
        let rest = &tokens[..tokens.len() - count];
        if !rest.iter().any(|t| !is_marker(t) && t.chars().count() >= 2) {
            continue;
        }
        let words = &tokens[tokens.len() - count..];
        let candidate = match words {
            [word] => std::borrow::Cow::Borrowed(*word),
            _ => std::borrow::Cow::Owned(words.join(" ")),
        };
        if let Some(name) = lookup_city(&candidate, allow_truncation) {
            return Some((count, name));
        }
    }
    None
}

/// The full city name for `candidate`: exact, or (when allowed) the unique-enough city it is a
/// prefix of. A truncated candidate needs at least 4 characters.
fn lookup_city(candidate: &str, allow_truncation: bool) -> Option<String> {
    if CITY_SET.contains(candidate) {
        return Some(candidate.to_owned());
    }
    if !allow_truncation || candidate.len() < 4 {
        return None;
    }
    let cities = &*CITIES;
    let start = cities.partition_point(|c| c.as_str() < candidate);
    let first = cities.get(start)?;
    if first == candidate {
        return Some(first.clone());
    }
    if allow_truncation && candidate.len() >= 4 && first.starts_with(candidate) {
        return Some(first.clone());
    }
    None
}

/// The longest US place (1 to 3 tokens) in `state` at the end of `tokens`, spelled whole, leaving
/// at least one token before it.
fn place_at_end(tokens: &[&str], state: Region) -> Option<(usize, String)> {
    for count in (1..=3).rev() {
        if count >= tokens.len() {
            continue;
        }
        let words = &tokens[tokens.len() - count..];
        if words.iter().any(|w| is_marker(w)) {
            continue;
        }
        let candidate = words.join(" ");
        if place_in_state(&candidate, state) {
            return Some((count, candidate));
        }
    }
    None
}

/// Fewest letters of a place glued to the word before it (`KFCLOUISVILLE`), so that the end
/// of a longer word is not taken for a short place name.
const GLUED_PLACE_LETTERS: usize = 5;

/// A place in `state` whose first word is glued to the end of a merchant word, as fixed-width
/// name fields print it (`KFCLOUISVILLE`, `OPTUM RXSAN JOSE`, `GONG CHANEW YORK`): the index of
/// the glued token, the merchant part of it, and the place's name. The merchant part keeps at
/// least two letters, or one when other merchant words come before it (`NATIONAL SEATING &
/// MDES MOINES`).
fn glued_place_at_end<'a>(tokens: &[&'a str], state: Region) -> Option<(usize, &'a str, String)> {
    for rest_count in (0..=2).rev() {
        if tokens.len() < rest_count + 1 {
            continue;
        }
        let at = tokens.len() - rest_count - 1;
        let glued = tokens[at];
        let rest = &tokens[at + 1..];
        if !glued.is_ascii()
            || glued.len() < 3
            || is_marker(glued)
            || rest.iter().any(|w| is_marker(w))
            || CITY_WORD_SET.contains(glued)
        {
            continue;
        }
        let fewest_head = if at > 0 { 1 } else { 2 };
        for cut in fewest_head..glued.len() {
            let (head, start) = glued.split_at(cut);
            if !head.bytes().all(|b| b.is_ascii_alphabetic() || b == b'&') {
                break;
            }
            let mut name = String::with_capacity(start.len() + 16);
            name.push_str(start);
            for word in rest {
                name.push(' ');
                name.push_str(word);
            }
            let letters = name.bytes().filter(u8::is_ascii_alphabetic).count();
            if letters >= GLUED_PLACE_LETTERS && start.len() >= 2 && is_place(&name, state) {
                return Some((at, head, name));
            }
        }
    }
    None
}

/// Removes the city's tokens (and a duplicated copy before them, `<CITY> <CITY> CA`).
fn strip_city(tokens: &mut Vec<&str>, count: usize, name: String) -> Option<String> {
    let cut = tokens.len() - count;
    let doubled = cut > count && tokens[cut - count..cut] == tokens[cut..];
    tokens.truncate(if doubled { cut - count } else { cut });
    Some(name)
}

/// An unknown town before a state: one word, or two with a word such as `SAN`, `FT` before it
/// or `CITY`, `PARK` after; none right after a `*` or a phone number (`MSFT *XBOX WA`), and
/// always leaving at least one word for the merchant.
fn unknown_place_tokens(tokens: &[&str]) -> usize {
    let n = tokens.len();
    if n < 2 || is_marker(tokens[n - 1]) || is_marker(tokens[n - 2]) {
        return 0;
    }
    let two_words =
        PLACE_PREFIX_WORDS.contains(&tokens[n - 2]) || PLACE_SUFFIX_WORDS.contains(&tokens[n - 1]);
    if n >= 3 && two_words && !is_marker(tokens[n - 3]) {
        2
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<&str> {
        text.split_whitespace().collect()
    }

    fn parse(text: &str) -> (String, Option<String>, Option<String>, usize) {
        let mut tokens = words(text);
        let location = take_location(&mut tokens);
        (
            tokens.join(" "),
            location.state.map(|s| s.to_string()),
            location.city,
            location.place_tokens,
        )
    }

    #[test]
    fn city_and_state_are_taken_from_the_right_end() {
        let (text, state, city, _) = parse("STARBUCKS SEATTLE WA");
        assert_eq!(text, "STARBUCKS");
        assert_eq!(state.as_deref(), Some("WA"));
        assert_eq!(city.as_deref(), Some("SEATTLE"));
    }

    #[test]
    fn state_glued_to_a_city_is_split() {
        let (text, state, city, _) = parse("STARBUCKS SEATTLEWA");
        assert_eq!(text, "STARBUCKS");
        assert_eq!(state.as_deref(), Some("WA"));
        assert_eq!(city.as_deref(), Some("SEATTLE"));
    }

    #[test]
    fn truncated_cities_are_recognised() {
        let (text, _, city, _) = parse("JOES TACOS SAN LUIS OBIS CA");
        assert_eq!(text, "JOES TACOS");
        assert_eq!(city.as_deref(), Some("SAN LUIS OBISPO"));
        let (text, _, city, _) = parse("ODELL BREWING FT COLLI CO");
        assert_eq!(text, "ODELL BREWING");
        assert_eq!(city.as_deref(), Some("FT COLLINS"));
    }

    #[test]
    fn company_co_is_not_colorado() {
        let (text, state, _, _) = parse("EDISON CO");
        assert_eq!(text, "EDISON CO");
        assert_eq!(state, None);
        let (text, state, _, _) = parse("BLUE BIRD TAXI CO");
        assert_eq!((text.as_str(), state), ("BLUE BIRD TAXI CO", None));
    }

    #[test]
    fn ambiguous_state_after_a_known_city_is_a_state() {
        let (text, state, city, _) = parse("ROCKY MOUNTAIN BAGELS DENVER CO");
        assert_eq!(text, "ROCKY MOUNTAIN BAGELS");
        assert_eq!(state.as_deref(), Some("CO"));
        assert_eq!(city.as_deref(), Some("DENVER"));
    }

    #[test]
    fn unknown_town_before_a_state_stays_but_is_flagged() {
        let (text, state, city, place) = parse("JOES DINER SMALLVILLE KS");
        assert_eq!(text, "JOES DINER SMALLVILLE");
        assert_eq!(state.as_deref(), Some("KS"));
        assert_eq!(city, None);
        assert_eq!(place, 1);
    }

    #[test]
    fn ambiguous_state_after_a_phone_number_or_two_words_is_a_state() {
        assert_eq!(parse("NIKE ~ OR").1.as_deref(), Some("OR"));
        let (text, state, _, place) = parse("LES SCHWAB TIRES BEND OR");
        assert_eq!(
            (text.as_str(), state.as_deref()),
            ("LES SCHWAB TIRES", Some("OR"))
        );
        assert_eq!(place, 0, "BEND is a known town");
        assert_eq!(parse("SONIC DRIVE IN").1, None);
        assert_eq!(parse("MSFT * XBOX WA").3, 0);
    }

    #[test]
    fn a_lone_word_is_never_taken_as_a_location() {
        assert_eq!(parse("WA").0, "WA");
        assert_eq!(parse("T MOBILE").0, "T MOBILE");
        assert_eq!(parse("T MOBILE WA").0, "T MOBILE");
    }

    #[test]
    fn a_place_glued_to_the_name_field_is_split_off() {
        // Fixed-width name fields with the city glued on (templates of real shapes).
        let (text, state, city, _) = parse("KFCLOUISVILLE KY");
        assert_eq!((text.as_str(), state.as_deref()), ("KFC", Some("KY")));
        assert_eq!(city.as_deref(), Some("LOUISVILLE"));
        let (text, _, city, _) = parse("JOES DINERSAN JOSE CA");
        assert_eq!(
            (text.as_str(), city.as_deref()),
            ("JOES DINER", Some("SAN JOSE"))
        );
        let (text, _, city, _) = parse("ACME HARDWARE MDES MOINES IA");
        assert_eq!(
            (text.as_str(), city.as_deref()),
            ("ACME HARDWARE M", Some("DES MOINES"))
        );
        // Only a place in the printed state, and never a short tail of a longer word.
        assert_eq!(parse("JOES DINERMESQUITE TX").0, "JOES DINER");
        assert_eq!(parse("JOES DINERMESQUITE WA").0, "JOES DINERMESQUITE");
        assert_eq!(parse("JOES PIZZAROME NY").0, "JOES PIZZAROME");
    }

    #[test]
    fn a_smaller_place_before_its_state_is_taken_out() {
        let (text, state, city, place) = parse("STARBUCKS MESQUITE TX");
        assert_eq!((text.as_str(), state.as_deref()), ("STARBUCKS", Some("TX")));
        assert_eq!((city.as_deref(), place), (Some("MESQUITE"), 0));
        // In another state the word stays, flagged as a probable town.
        assert_eq!(parse("STARBUCKS MESQUITE WA").0, "STARBUCKS MESQUITE");
    }

    #[test]
    fn trailing_country_is_dropped() {
        let (text, state, city, _) = parse("NETFLIX LOS GATOS CA USA");
        assert_eq!(text, "NETFLIX");
        assert_eq!(state.as_deref(), Some("CA"));
        assert_eq!(city.as_deref(), Some("LOS GATOS"));
        assert_eq!(parse("MURPHY USA").0, "MURPHY USA");
    }
}
