//! How one catalogue name lines up with a descriptor, word by word, and the score of that
//! alignment (see the scoring rules in [`super`]).

use super::*;

/// How a name lines up with the descriptor from one start word.
#[derive(Debug, Default, Clone)]
pub(super) struct Alignment {
    pub(super) start: usize,
    /// Descriptor words consumed (exclusive end).
    pub(super) end: usize,
    /// Name letters matched (partial for typos and truncations).
    pub(super) name_letters: f32,
    /// Descriptor letters explained by the name.
    pub(super) descriptor_letters: f32,
    /// Every name word was matched.
    pub(super) complete: bool,
    /// The descriptor ended inside the name (cut short).
    pub(super) truncated: bool,
    pub(super) typo: bool,
    pub(super) glued: bool,
    /// Name letters credited, not matched, after the point where the descriptor was cut.
    pub(super) credited: f32,
    /// Where in the glued word the name ended (`STARBUCKSSEATTLE` → 9).
    pub(super) glued_at: usize,
    /// The descriptor stopped right after the name's first word, spelled whole in one word
    /// (`DUNHAMS` for `Dunham's Sports`).
    pub(super) cut_at_word: bool,
}

pub(super) fn align(
    query: &Query<'_>,
    name_index: u32,
    name: &IndexedName,
    start: usize,
) -> Alignment {
    let d = &query.words;
    let n = &name.words;
    let mut a = Alignment {
        start,
        end: start,
        ..Alignment::default()
    };
    let (mut i, mut j) = (0, start);
    let mut stopped = false;
    while i < n.len() && j < d.len() {
        let (dw, nw) = (d[j].as_str(), n[i].as_str());
        if dw == nw {
            a.name_letters += nw.len() as f32;
            a.descriptor_letters += dw.len() as f32;
            i += 1;
            j += 1;
            continue;
        }
        if dw.len() > nw.len() && dw.starts_with(nw) {
            // Several name words glued into one descriptor word: `TACOBELL`.
            if let Some(k) = glued_run(dw, &n[i..]) {
                a.name_letters += dw.len() as f32;
                a.descriptor_letters += dw.len() as f32;
                i += k;
                j += 1;
                continue;
            }
            // Name words glued together and cut short where the name field ends: a network
            // prints the name without spaces and cuts it at its field length (`BURGERKIN`,
            // `OFFICEDEP`, `CHIPOTLEMEXICANGR`).
            let last_merchant_word = j + 1 >= query.name_end() || j + 1 == d.len();
            if let Some((k, cut)) = glued_run_cut_short(dw, &n[i..]).filter(|_| last_merchant_word)
            {
                let rest: usize = n[i + k..].iter().map(String::len).sum::<usize>() - cut;
                let credit = CUT_NAME_CREDIT * rest as f32;
                a.name_letters += dw.len() as f32 + credit;
                a.credited += credit;
                a.descriptor_letters += dw.len() as f32;
                a.truncated = true;
                i = n.len();
                j += 1;
                stopped = true;
                break;
            }
            // The last name word glued to noise or a city: `STARBUCKSSEATTLE` (not a plural).
            if i + 1 == n.len() && nw.len() >= 4 && dw.len() >= nw.len() + 3 {
                a.name_letters += nw.len() as f32;
                a.descriptor_letters += nw.len() as f32;
                a.glued = true;
                a.glued_at = nw.len();
                i += 1;
                j += 1;
                continue;
            }
        }
        if nw.len() > dw.len() && nw.starts_with(dw) {
            // One name word split in the descriptor: `WAL MART`.
            if let Some(k) = glued_run(nw, &d[j..]) {
                a.name_letters += nw.len() as f32;
                a.descriptor_letters += nw.len() as f32;
                i += 1;
                j += k;
                continue;
            }
            // The words ran out inside the split: words after them could complete it.
            let joined: usize = d[j..].iter().map(String::len).sum();
            if joined < nw.len() && nw.starts_with(d[j..].concat().as_str()) {
                query.ran_out_inside(name_index, i, joined);
            }
            // The descriptor was cut inside this word: `CHIPOTLE MEXICAN GRI`. A cut can leave
            // one or two letters (`CRACKER BA`); they are trusted only after a long word or two.
            let last_merchant_word = j + 1 >= query.name_end() || j + 1 == d.len();
            let long_start = i >= 2
                || (i == 1 && a.name_letters >= SHORT_CUT_AFTER_LETTERS && !is_place_word(dw));
            if (dw.len() >= 3 || long_start) && last_merchant_word {
                let credit = CUT_NAME_CREDIT * (nw.len() - dw.len()) as f32;
                a.name_letters += dw.len() as f32 + credit;
                a.credited += credit;
                a.descriptor_letters += dw.len() as f32;
                a.truncated = true;
                i += 1;
                j += 1;
                stopped = true;
                break;
            }
        }
        if dw.len() >= 6 && nw.len() - dw.len().min(nw.len()) <= 2 && nw.starts_with(dw) {
            // A long word cut short by a letter or two inside the name (`TICKETMASTE TIC`).
            a.name_letters += dw.len() as f32;
            a.descriptor_letters += dw.len() as f32;
            i += 1;
            j += 1;
            continue;
        }
        if could_be_typo(dw, nw) && strsim::jaro_winkler(dw, nw) >= TYPO_SIMILARITY {
            a.name_letters += 0.85 * nw.len() as f32;
            a.descriptor_letters += dw.len() as f32;
            a.typo = true;
            i += 1;
            j += 1;
            continue;
        }
        stopped = true;
        break;
    }
    if !stopped && i < n.len() && j == d.len() {
        query.ran_out_inside(name_index, i, 0);
    }
    a.end = j;
    if i < n.len() && (a.truncated || j == d.len() || j >= query.name_end()) {
        // The descriptor stopped inside the name (`DELTA AIR` for `Delta Air Lines`).
        a.cut_at_word = !a.truncated && i == 1 && j == start + 1 && d[start] == n[0];
        a.truncated = true;
        let rest: usize = n[i..].iter().map(|w| w.len()).sum();
        a.name_letters += CUT_NAME_CREDIT * rest as f32;
        a.credited += CUT_NAME_CREDIT * rest as f32;
    }
    a.complete = i == n.len() && !a.truncated;
    a
}

/// A short word that says where a shop is rather than cutting a name short: `MARKET ST` is a
/// street, not `Market Street` cut short.
fn is_place_word(word: &str) -> bool {
    STREET_WORDS.contains(&word)
        || PLACE_PREFIX_WORDS.contains(&word)
        || matches!(word, "N" | "S" | "E" | "W" | "NE" | "NW" | "SE" | "SW")
}

/// Whether a name whose first word is `first` could line up from descriptor word `word`.
pub(super) fn could_start_at(word: &str, first: &str) -> bool {
    word.starts_with(first) || first.starts_with(word) || could_be_typo(word, first)
}

/// Whether descriptor word `word` could take any step of [`align`] against what is left of a
/// name word, `rest`: equal, glued, split, cut short, or a typo.
pub(super) fn could_line_up(word: &str, rest: &str) -> bool {
    word.starts_with(rest)
        || rest.starts_with(word)
        || (could_be_typo(word, rest) && strsim::jaro_winkler(word, rest) >= TYPO_SIMILARITY)
}

/// Cheap tests before Jaro-Winkler: long words of similar length with the same first letter
/// (typos in the first letter are rare, and Jaro-Winkler rewards a shared start anyway).
pub(super) fn could_be_typo(a: &str, b: &str) -> bool {
    a.len() >= 6
        && b.len() >= 6
        && a.len().abs_diff(b.len()) <= 2
        && a.as_bytes()[0] == b.as_bytes()[0]
}

/// The number of words at the start of `words` whose concatenation is exactly `glued` (2+).
pub(super) fn glued_run(glued: &str, words: &[String]) -> Option<usize> {
    let mut rest = glued;
    for (k, word) in words.iter().enumerate() {
        rest = rest.strip_prefix(word.as_str())?;
        if rest.is_empty() {
            return (k >= 1).then_some(k + 1);
        }
    }
    None
}

/// When `glued` is one or more whole words at the start of `words` followed by the start of the
/// next one (`BURGERKIN` for `BURGER KING`): how many words are whole, and how many letters of
/// the next one it holds.
pub(super) fn glued_run_cut_short(glued: &str, words: &[String]) -> Option<(usize, usize)> {
    let mut rest = glued;
    for (k, word) in words.iter().enumerate() {
        if k >= 1 && !rest.is_empty() && word.len() > rest.len() && word.starts_with(rest) {
            return Some((k, rest.len()));
        }
        rest = rest.strip_prefix(word.as_str())?;
    }
    None
}

/// The best alignment of one name; the explanation is written only for the few shown.
#[derive(Debug)]
pub(super) struct NameScore {
    pub(super) merchant: u32,
    pub(super) name: u32,
    pub(super) score: f32,
    pub(super) alignment: Alignment,
    pub(super) prior_why: &'static str,
    /// The MCC's category prior alone (already in `score`).
    pub(super) prior: f32,
    pub(super) explains_all: bool,
    /// The name lined up whole from the first word, up to word `alignment.end`.
    pub(super) whole_from_start: bool,
}

/// The score of one name, or `None` when it does not line up at all.
pub(super) fn score_name(
    query: &Query<'_>,
    name_index: u32,
    name: &IndexedName,
    merchant: &IndexedMerchant,
) -> Option<NameScore> {
    let starts = query.text_words.min(MAX_START);
    let mut best: Option<(f32, Alignment)> = None;
    let first = name.words.first()?;
    for start in 0..starts {
        if !could_start_at(&query.words[start], first) {
            continue;
        }
        let a = align(query, name_index, name, start);
        if a.name_letters <= 0.0 {
            continue;
        }
        let tail = tail_after(query, name, &a, merchant.category);
        let dealer = fuel_brand_after_dealer(query, name, &a, merchant.category);
        let score = alignment_score(query, name, &a, tail, dealer);
        if best.as_ref().is_none_or(|(s, _)| score > *s) {
            best = Some((score, a));
        }
    }
    let (raw, a) = best?;
    let (prior, prior_why) = category_prior(query, merchant);
    let whole_from_start = a.start == 0 && (a.complete || a.truncated) && !a.typo;
    // A name the descriptor stops inside (`OFFICE DEPOT` for `OFFICEDEP`) explains every letter
    // it has; a name glued to other letters (`OFFICE` in `OFFICEDEP`) leaves some unexplained.
    let explains_all = whole_from_start && !a.glued && a.end >= query.text_words;
    Some(NameScore {
        merchant: name.merchant,
        name: name_index,
        score: (raw + prior).clamp(0.0, 1.0),
        alignment: a,
        prior_why,
        prior,
        explains_all,
        whole_from_start,
    })
}

pub(super) fn alignment_score(
    query: &Query<'_>,
    name: &IndexedName,
    a: &Alignment,
    tail: Tail,
    dealer: bool,
) -> f32 {
    let letters = name.letters.max(1) as f32;
    let mut name_coverage = (a.name_letters / letters).min(1.0);
    let matched = a.name_letters - a.credited;
    let long_enough = matched >= LONG_CUT_LETTERS
        || (a.cut_at_word && matched >= WORD_CUT_LETTERS && distinctive_start(name));
    if a.truncated && a.start == 0 && !a.typo && long_enough && matched >= 0.5 * letters {
        // Cut short after most of a long name (`WALMART NEIGHBORHOOD M`, a virtual card's
        // `THE CHEESECAKE`), or after a first word that says which brand it is (`DUNHAMS` for
        // `Dunham's Sports`): as good as whole.
        name_coverage = name_coverage.max(LONG_CUT_COVERAGE);
    }
    if !a.complete && !a.truncated {
        name_coverage *= 0.5;
    }
    if a.typo {
        name_coverage = name_coverage.min(0.95);
    }
    let lead_code = a.start == 1 && lead_word_is_a_code(query, name);
    // A dealer's own name before the fuel brand it sells counts like a processor's code.
    let (coverage, unexplained_words) = descriptor_coverage(query, a, tail, lead_code || dealer);
    let skipped = if (lead_code && distinctive(name)) || dealer {
        0.0
    } else {
        a.start as f32
    };
    name_coverage * (0.55 + 0.45 * coverage)
        - 0.1 * skipped
        - UNEXPLAINED_WORD_COST * unexplained_words as f32
}

/// The share of the descriptor's merchant letters the alignment explains, and how many words
/// of full weight it leaves unexplained. The words after the name weigh what [`Tail`] says.
pub(super) fn descriptor_coverage(
    query: &Query<'_>,
    a: &Alignment,
    tail: Tail,
    lead_code: bool,
) -> (f32, usize) {
    let (tail_word, tail_cap) = match tail {
        Tail::Place => (PLACE_TAIL_WORD_WEIGHT, PLACE_TAIL_WEIGHT_CAP),
        Tail::Branch => (TAIL_WORD_WEIGHT, TAIL_WEIGHT_CAP),
        Tail::Name => (0.0, 0.0),
    };
    let tail_is_place = tail != Tail::Name;
    let mut total = 0.0;
    let mut unexplained = 0.0;
    let mut unexplained_words = 0;
    let mut tail_weight = 0.0;
    for (position, word) in query.words.iter().enumerate() {
        let inside = position >= a.start && position < a.end;
        if position >= query.text_words && !inside {
            continue; // city words only count when the name ran into them
        }
        let (weight, full) = query
            .weights
            .get(position)
            .copied()
            .unwrap_or((word.len() as f32, true));
        if tail_is_place && position >= a.end {
            tail_weight += weight.min(tail_word);
            continue;
        }
        if lead_code && position < a.start {
            // A processor's or platform's code before the name (`CNK*CINEMARK`).
            total += weight.min(TAIL_WORD_WEIGHT);
            unexplained += weight.min(TAIL_WORD_WEIGHT);
            continue;
        }
        // A word the name explains counts its letters, filler or not (`CITY MARKET`).
        let weight = if inside { word.len() as f32 } else { weight };
        total += weight;
        if !inside {
            unexplained += weight;
            if full {
                unexplained_words += 1;
            }
        }
    }
    let tail_weight = tail_weight.min(tail_cap);
    total += tail_weight;
    unexplained += tail_weight;
    if a.glued && tail_is_place {
        // The rest of the glued word is a place (`STARBUCKSSEATTLE`).
        unexplained += tail_word;
        total += tail_word;
    } else if a.glued {
        // The glued word only partly belongs to the name.
        if let Some(word) = query.words.get(a.end.saturating_sub(1)) {
            let extra = word.len() as f32 - a.descriptor_letters.min(word.len() as f32);
            unexplained += extra.max(0.0) * 0.5;
        }
    }
    if total <= 0.0 {
        return (1.0, unexplained_words);
    }
    (
        (1.0 - unexplained / total).clamp(0.0, 1.0),
        unexplained_words,
    )
}

/// What the words after a name are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tail {
    /// More of a name, or nothing known: they count in full.
    Name,
    /// A branch after a distinctive name (`WENDYS CAMPUS`, `CONOCO SEI`): they count little.
    Branch,
    /// Only place-like words (`CAFE RIO FT COLLI`, `BP SAN DIEGO`): they count less still.
    Place,
}

/// What the words after a name that lined up whole from the first word (or after a lead
/// code, [`lead_word_is_a_code`]) are. A chain prints its name first and then a branch, a
/// mall, a street or a town. Not when a word there names a kind of business another than the
/// merchant's (`SHELL BEACH CAFE`, `DELTA DENTAL`); and after a name that is not
/// [`distinctive`] (`AMC`, `LUCKY`, `SPRINGFIELD`) only place-like words and kinds of business
/// may follow.
pub(super) fn tail_after(
    query: &Query<'_>,
    name: &IndexedName,
    a: &Alignment,
    category: Category,
) -> Tail {
    let lead_code = a.start == 1 && lead_word_is_a_code(query, name) && distinctive(name);
    if (a.start != 0 && !lead_code) || !a.complete || a.typo {
        return Tail::Name;
    }
    let tail = &query.words[a.end.min(query.text_words)..query.text_words];
    let glued_rest = a
        .glued
        .then(|| query.words.get(a.end.wrapping_sub(1)))
        .flatten()
        .and_then(|word| word.get(a.glued_at..));
    if tail.is_empty() && glued_rest.is_none() {
        return Tail::Name;
    }
    let other_trade =
        |word: &str| kind_of_word(word).is_some_and(|kind| !same_trade(kind, category));
    if tail.iter().any(|w| other_trade(w)) {
        return Tail::Name;
    }
    if let Some(rest) = glued_rest {
        if !could_end_a_city(rest, true) {
            return Tail::Name;
        }
    }
    let place_like = tail.iter().enumerate().all(|(offset, word)| {
        looks_like_a_place(word)
            || kind_of_word(word).is_some()
            || a.end + offset >= query.name_end()
    });
    if place_like {
        Tail::Place
    } else if distinctive(name) {
        Tail::Branch
    } else {
        Tail::Name
    }
}

/// Whether the name is a fuel brand printed after the name of the dealer who sells it
/// (`GREEN MEADOWS CITGO`, `TINEE GIANT #249 CITGO`): an independent station's descriptor is
/// its own trading name, then the brand on its pumps. Only for the brands of
/// [`FUEL_BRANDS`], lined up whole at the end of the merchant words, and, for a brand whose
/// name is also a common word (`SHELL`, `GULF`), only with a fuel MCC.
pub(super) fn fuel_brand_after_dealer(
    query: &Query<'_>,
    name: &IndexedName,
    a: &Alignment,
    category: Category,
) -> bool {
    if category != Category::GasStation
        || a.start == 0
        || !a.complete
        || a.typo
        || a.glued
        || a.end != query.text_words
        || !FUEL_BRANDS.contains(&name.text.as_str())
        // `EXXON MOBIL` is one company's name, not a dealer called Exxon.
        || query.words[..a.start]
            .iter()
            .any(|w| FUEL_BRANDS.contains(&w.as_str()))
    {
        return false;
    }
    let fuel_mcc = query.mcc_category == Some(Category::GasStation);
    fuel_mcc || (query.mcc.is_empty() && !name.words.iter().any(|w| is_common_word(w)))
}

/// Whether a name's first word says which shop it is on its own: no common English word, kind
/// of business, filler or city word (`DUNHAMS`, `MURPHY`, but not `FAMILY` or `CIRCLE`).
fn distinctive_start(name: &IndexedName) -> bool {
    name.words.first().is_some_and(|word| {
        word.bytes().all(|b| b.is_ascii_alphabetic())
            && !is_common_word(word)
            && kind_of_word(word).is_none()
            && !FILLER_WORDS.contains(&word.as_str())
            && !is_city_word(word)
    })
}

/// A name that says which shop it is even with other words after it: two or more words, or
/// one word of [`SHORT_NAME_LETTERS`] letters or more that is no common English word, kind of
/// business, filler or city word (`WENDYS`, `CONOCO`, but not `LUCKY`, `PIZZA`, `SPRINGFIELD`).
fn distinctive(name: &IndexedName) -> bool {
    if name.letters < SHORT_NAME_LETTERS {
        return false;
    }
    match name.words.as_slice() {
        [word] => {
            !is_common_word(word)
                && kind_of_word(word).is_none()
                && !FILLER_WORDS.contains(&word.as_str())
                && !is_city_word(word)
        }
        _ => true,
    }
}

/// Whether the first word is a short code a processor or platform prints before the merchant
/// (`CNK*CINEMARK`, `CKO*PATREON`, `PYL*…`): at most four letters and no word, kind of
/// business, filler or city, and no other merchant's whole name (`CVS NEW YORK` is CVS in
/// New York, not New York & Company after a code; `CTA VENTRA` is the CTA's card either
/// way). Only a distinctive name may follow one.
pub(super) fn lead_word_is_a_code(query: &Query<'_>, name: &IndexedName) -> bool {
    query.text_words >= 2
        && query
            .lead_merchants
            .iter()
            .all(|&merchant| merchant == name.merchant)
        && query.words.first().is_some_and(|word| {
            word.len() <= 4
                && word.bytes().all(|b| b.is_ascii_alphabetic())
                && !is_common_word(word)
                && kind_of_word(word).is_none()
                && !FILLER_WORDS.contains(&word.as_str())
                && !is_city_word(word)
        })
}

/// A word that may be part of where a shop is: a word of a known city (or its start), a word
/// such as `FT` or `BEACH`, a street word, a direction, or a one- or two-letter remnant.
fn looks_like_a_place(word: &str) -> bool {
    word.len() <= 2
        || could_end_a_city(word, true)
        || PLACE_PREFIX_WORDS.contains(&word)
        || PLACE_SUFFIX_WORDS.contains(&word)
        || STREET_WORDS.contains(&word)
        || FILLER_WORDS.contains(&word)
}

/// Two categories of the same trade: equal, or both food, or both shops that sell the same
/// goods (a pharmacy or a fuel station sells groceries, a department store clothes).
fn same_trade(a: Category, b: Category) -> bool {
    use Category::*;
    const TRADES: [&[Category]; 5] = [
        &[CoffeeShop, FastFood, Restaurant],
        &[Grocery, GeneralMerchandise, Pharmacy, GasStation],
        &[Apparel, GeneralMerchandise],
        &[HomeImprovement, GeneralMerchandise],
        &[Rideshare, Transit],
    ];
    a == b || TRADES.iter().any(|t| t.contains(&a) && t.contains(&b))
}

/// Letters a descriptor word counts for, and whether it counts fully: filler words and probable
/// towns count little.
pub(super) fn word_weight(query: &Query<'_>, position: usize, word: &str) -> (f32, bool) {
    let letters = word.len() as f32;
    let is_place = position < query.text_words && position >= query.name_end();
    let before_place = query.place_words > 0 && position + 1 == query.name_end() && position > 0;
    let is_last = position + 1 == query.text_words;
    let is_filler = FILLER_WORDS.contains(&word)
        || word.bytes().all(|b| b.is_ascii_digit())
        || (is_last && word.len() >= 3 && FILLER_WORDS.iter().any(|f| f.starts_with(word)));
    if is_filler {
        (FILLER_WORD_WEIGHT.min(letters), false)
    } else if is_place {
        (PLACE_WORD_WEIGHT.min(letters), false)
    } else if before_place {
        (0.5 * letters, false)
    } else {
        (letters, true)
    }
}

/// The MCC as a category prior.
pub(super) fn category_prior(query: &Query<'_>, merchant: &IndexedMerchant) -> (f32, &'static str) {
    if !query.mcc.is_empty() && merchant.mcc.as_deref() == Some(query.mcc) {
        return (0.03, "mcc matches the merchant's");
    }
    let Some(category) = query.mcc_category else {
        return (0.0, "");
    };
    if category == merchant.category {
        (0.03, "mcc agrees with the category")
    } else if related(category, merchant.category) {
        (0.0, "mcc in a related category")
    } else if sold_on_board(query, merchant.category, category) {
        (0.0, "sold on board")
    } else {
        (-0.12, "mcc disagrees with the category")
    }
}

/// An airline's sale on board (`FRONTIER AIRLINES ONBOARD`, `DELTA AIR INFLIGHT`) is coded as
/// food or drink, not as a fare.
fn sold_on_board(query: &Query<'_>, merchant: Category, mcc: Category) -> bool {
    use Category::*;
    merchant == Airline
        && matches!(mcc, CoffeeShop | FastFood | Restaurant)
        && query
            .words
            .iter()
            .any(|w| matches!(w.as_str(), "ONBOARD" | "INFLIGHT"))
}

/// Categories that merchants often straddle (a coffee chain coded as fast food, a warehouse club
/// selling fuel, a streaming service coded as software).
pub(super) fn related(a: Category, b: Category) -> bool {
    use Category::*;
    const GROUPS: [&[Category]; 6] = [
        &[CoffeeShop, FastFood, Restaurant, Grocery],
        &[Grocery, GeneralMerchandise, Pharmacy, GasStation, Ecommerce],
        &[Streaming, Software, Entertainment, Ecommerce, Telecom],
        &[Apparel, GeneralMerchandise, Ecommerce],
        &[HomeImprovement, GeneralMerchandise],
        &[Rideshare, Transit, Airline, Hotel],
    ];
    a == Other || b == Other || GROUPS.iter().any(|g| g.contains(&a) && g.contains(&b))
}

pub(super) fn explain(query: &Query<'_>, name: &IndexedName, a: &Alignment, prior: &str) -> String {
    let mut why = format!("name {:?} from word {}", name.text, a.start + 1);
    let how = if a.typo {
        "with a typo"
    } else if a.truncated {
        "cut short"
    } else if a.glued {
        "glued to the next word"
    } else if a.complete {
        "whole"
    } else {
        "partly"
    };
    let _ = write!(why, ", matched {how}");
    let extra = query.text_words.saturating_sub(a.end.min(query.text_words)) + a.start;
    if extra > 0 {
        let _ = write!(
            why,
            ", {extra} other word{}",
            if extra == 1 { "" } else { "s" }
        );
    }
    if !prior.is_empty() {
        let _ = write!(why, ", {prior}");
    }
    why
}
