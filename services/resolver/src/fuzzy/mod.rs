//! Fuzzy candidates from the catalogue: which merchant names the normalised descriptor starts
//! with, and how much of each is explained by the other.
//!
//! Every name (catalogue `name`, each of its `match_names`, and merchants created in review) is
//! normalised like a descriptor and indexed by its first word. A descriptor looks up names whose
//! first word is one of its first three words, a prefix of one (`STARBUCKSSEATTLE`), or starts
//! with one when the descriptor was cut short (`CHIPOTLE MEXICAN GRI`), and, when nothing fits
//! well, names whose first word shares trigrams with it (typos). Each name is then aligned word
//! by word from that position: exact words, words glued together or split apart, a truncated
//! last word, and (for long words) a Jaro-Winkler typo.
//!
//! The score is `name coverage × (0.55 + 0.45 × descriptor coverage) − 0.1 × skipped words ±
//! category prior`:
//! - *name coverage*: the share of the name's letters matched; a name whose words stop matching
//!   while the descriptor goes on scores half, so `SILVER SPOON DINER` is not `Silver Diner`;
//! - *descriptor coverage*: the share of the descriptor's letters the name explains, with filler
//!   words (`STORE`, `ONLINE`) and a probable town before a state counting little. This is what
//!   keeps `JOES DINER` or `SHELL BEACH CAFE` from being forced onto a brand that shares one
//!   common word: whole-word matching alone cannot;
//! - *category prior*: the descriptor's MCC agrees with the merchant's category (or its own MCC)
//!   +0.03; a related category 0; an unrelated one −0.12, enough to send an otherwise perfect
//!   match to review.
//!
//! A score of [`AUTO_THRESHOLD`] or more, ahead of the next merchant by [`AUTO_MARGIN`], is
//! resolved automatically; `tests/eval.rs` measures how often that is right.

mod align;

use crate::location::{could_end_a_city, is_city_word, PLACE_PREFIX_WORDS, PLACE_SUFFIX_WORDS};
use crate::normalize::normalize_name;
use crate::vocabulary::{is_common_word, kind_of_word, FILLER_WORDS, FUEL_BRANDS, STREET_WORDS};
use align::*;
use altdata_domain::Category;
use std::borrow::Cow;
use std::fmt::Write as _;

/// The lowest score resolved without a person.
pub const AUTO_THRESHOLD: f32 = 0.90;
/// How far the best merchant must be ahead of the second.
pub const AUTO_MARGIN: f32 = 0.05;

/// How many candidates a review item carries.
pub(crate) const REVIEW_CANDIDATES: usize = 3;
/// How many descriptor words a name may start after.
const MAX_START: usize = 3;
/// The most names one truncated word may pull in.
const MAX_PREFIX_NAMES: usize = 64;
/// Weight of a probable town in the descriptor-coverage sum, whatever its length (a normal word
/// weighs its letter count). The word before a town weighs half its letters, since towns often
/// have two words.
const PLACE_WORD_WEIGHT: f32 = 1.0;
/// Weight of a filler word (`STORE`, `ONLINE`, `PAY`).
const FILLER_WORD_WEIGHT: f32 = 0.5;
/// Cost of each unexplained word of full weight, on top of its share of letters, so that a name
/// explaining every word beats one that leaves a short word over (`YOUTUBE TV`).
const UNEXPLAINED_WORD_COST: f32 = 0.04;
/// Weight of each word after a name that lined up whole, when those words are probably a
/// place ([`align::tail_is_a_place`]), and of all of them together.
const TAIL_WORD_WEIGHT: f32 = 0.5;
const TAIL_WEIGHT_CAP: f32 = 1.5;
/// The same when every one of those words looks like a place.
const PLACE_TAIL_WORD_WEIGHT: f32 = 0.25;
const PLACE_TAIL_WEIGHT_CAP: f32 = 0.5;
/// A name cut short after this many letters, and at least half its letters, is as good as
/// whole (name coverage [`LONG_CUT_COVERAGE`]).
const LONG_CUT_LETTERS: f32 = 8.0;
const LONG_CUT_COVERAGE: f32 = 0.97;
/// The same after this many letters when the cut falls between two words and the first word is
/// distinctive ([`align::distinctive_start`]).
const WORD_CUT_LETTERS: f32 = 6.0;
/// Names shorter than this many letters take only place-like words after them.
const SHORT_NAME_LETTERS: usize = 5;
/// A last word cut to one or two letters counts only after this many name letters matched
/// whole (`CRACKER BA`, `CONSOLIDATED ED`): a short remnant after a short word is too often
/// an initial or a code.
const SHORT_CUT_AFTER_LETTERS: f32 = 6.0;
/// Credit for each name letter after the point where a descriptor was cut short.
const CUT_NAME_CREDIT: f32 = 0.5;
/// Best score under which the first word is also looked up by trigrams, as a possible typo.
const TYPO_SEARCH_BELOW: f32 = 0.6;
/// Jaro-Winkler similarity above which two long words count as a typo of each other.
const TYPO_SIMILARITY: f64 = 0.92;

/// The index's maps: built from the catalogue, so there is no flooding risk (descriptors are
/// only looked up), and a fixed hasher keeps the index's iteration order the same every run.
type FastMap<K, V> = rustc_hash::FxHashMap<K, V>;

/// A merchant the index can return.
#[derive(Debug, Clone)]
pub(crate) struct IndexedMerchant {
    pub id: i64,
    pub category: Category,
    /// The merchant's own MCC from the catalogue, if any.
    pub mcc: Option<String>,
}

#[derive(Debug)]
struct IndexedName {
    merchant: u32,
    /// The normalised name, for explanations.
    text: String,
    /// Words with `&` removed, so `AT&T` compares as `ATT`.
    words: Vec<String>,
    letters: usize,
}

/// One scored merchant, best name only.
#[derive(Debug)]
pub(crate) struct ScoredMerchant {
    pub merchant: u32,
    pub score: f32,
    /// How the best name lined up, for [`CandidateIndex::why`].
    detail: NameScore,
    /// The whole name matched from the first word and consumed every merchant word.
    pub explains_all: bool,
    /// Descriptor words the name explains from the first, when it lined up from there, and
    /// whether it lined up whole (not cut short).
    pub whole_words: Option<(usize, bool)>,
}

/// The descriptor as the matcher sees it.
#[derive(Debug)]
pub(crate) struct Query<'a> {
    /// Merchant words, then the words of a parsed city (a name may run into them).
    pub words: Vec<String>,
    /// How many of `words` are the merchant text (the rest are the city).
    pub text_words: usize,
    /// Trailing merchant words that are probably a place.
    pub place_words: usize,
    /// The category prior from the MCC, and the MCC itself.
    pub mcc_category: Option<Category>,
    pub mcc: &'a str,
    /// Per word: its weight in descriptor coverage, and whether it counts fully.
    weights: Vec<(f32, bool)>,
    /// The merchants whose whole name is the first word (`CVS`): that word is no processor's
    /// code before another merchant ([`align::lead_word_is_a_code`]). Set by
    /// [`CandidateIndex::query`].
    lead_merchants: Vec<u32>,
    /// Where alignments ran out of descriptor words inside a name: a city after the words
    /// could have carried them on ([`Query::continuations`]).
    continuations: std::cell::RefCell<Vec<Continuation>>,
}

/// The rest of a name an alignment was still matching when the descriptor's words ran out:
/// from byte `offset` of word `word` of name `name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Continuation {
    name: u32,
    word: u16,
    offset: u16,
}

impl<'a> Query<'a> {
    pub fn new(text: &str, city: Option<&str>, place_words: usize, mcc: &'a str) -> Query<'a> {
        let mut words: Vec<String> = split_words(text);
        let text_words = words.len();
        if let Some(city) = city {
            words.extend(split_words(city));
        }
        let mut query = Query {
            words,
            text_words,
            place_words,
            mcc_category: Category::from_mcc(mcc.trim()),
            mcc: mcc.trim(),
            weights: Vec::new(),
            lead_merchants: Vec::new(),
            continuations: std::cell::RefCell::new(Vec::new()),
        };
        query.weights = (0..query.words.len())
            .map(|position| word_weight(&query, position, &query.words[position]))
            .collect();
        query
    }
}

impl Query<'_> {
    /// Where the merchant part probably ends: before a probable town.
    fn name_end(&self) -> usize {
        self.text_words.saturating_sub(self.place_words).max(1)
    }

    /// After matching a query made without a city: the names it was still matching when the
    /// words ran out. City words only ever count inside an alignment that continues into
    /// them, so the outcome holds for every city whose first word lines up with none of these
    /// and does not glue onto the words into a name ([`CandidateIndex::city_changes_outcome`]).
    pub fn continuations(&self) -> Vec<Continuation> {
        let mut found = self.continuations.take();
        found.sort_unstable();
        found.dedup();
        found
    }

    fn ran_out_inside(&self, name: u32, word: usize, offset: usize) {
        self.continuations.borrow_mut().push(Continuation {
            name,
            word: u16::try_from(word).unwrap_or(u16::MAX),
            offset: u16::try_from(offset).unwrap_or(u16::MAX),
        });
    }
}

fn split_words(text: &str) -> Vec<String> {
    words_of(text).map(Cow::into_owned).collect()
}

/// [`split_words`] without collecting: borrowed unless a word holds a `&`.
fn words_of(text: &str) -> impl Iterator<Item = Cow<'_, str>> {
    text.split(' ')
        .map(|w| {
            if w.contains('&') {
                Cow::Owned(w.replace('&', ""))
            } else {
                Cow::Borrowed(w)
            }
        })
        .filter(|w| !w.is_empty())
}

/// The candidate index over every merchant name.
#[derive(Debug, Default)]
pub(crate) struct CandidateIndex {
    merchants: Vec<IndexedMerchant>,
    names: Vec<IndexedName>,
    /// First word (and the whole name glued into one word) → names.
    by_first_word: FastMap<String, Vec<u32>>,
    /// Distinct first words, sorted, for prefix look-ups.
    first_words: Vec<String>,
    /// Trigram → indexes into `first_words` (words of 5+ ASCII letters).
    trigrams: FastMap<[u8; 3], Vec<u32>>,
}

impl CandidateIndex {
    /// Indexes each merchant under each of its names.
    pub fn new(entries: Vec<(IndexedMerchant, Vec<String>)>) -> CandidateIndex {
        let mut index = CandidateIndex::default();
        for (merchant, names) in entries {
            let merchant_index = index.merchants.len() as u32;
            index.merchants.push(merchant);
            let mut seen: Vec<String> = Vec::new();
            for name in names {
                let text = normalize_name(&name);
                if text.is_empty() || seen.contains(&text) {
                    continue;
                }
                seen.push(text.clone());
                let words = split_words(&text);
                if words.is_empty() {
                    continue;
                }
                let name_index = index.names.len() as u32;
                index
                    .by_first_word
                    .entry(words[0].clone())
                    .or_default()
                    .push(name_index);
                if words.len() > 1 {
                    index
                        .by_first_word
                        .entry(words.concat())
                        .or_default()
                        .push(name_index);
                }
                index.names.push(IndexedName {
                    merchant: merchant_index,
                    letters: words.iter().map(|w| w.len()).sum(),
                    text,
                    words,
                });
            }
        }
        let mut first_words: Vec<String> = index.by_first_word.keys().cloned().collect();
        first_words.sort();
        for (position, word) in first_words.iter().enumerate() {
            if word.len() >= 5 && word.is_ascii() {
                for gram in word.as_bytes().windows(3) {
                    index
                        .trigrams
                        .entry([gram[0], gram[1], gram[2]])
                        .or_default()
                        .push(position as u32);
                }
            }
        }
        index.first_words = first_words;
        index
    }

    /// The query for `text`, knowing which merchants' whole name its first word is.
    pub fn query<'a>(
        &self,
        text: &str,
        city: Option<&str>,
        place_words: usize,
        mcc: &'a str,
    ) -> Query<'a> {
        let mut query = Query::new(text, city, place_words, mcc);
        if let Some(found) = query.words.first().and_then(|w| self.by_first_word.get(w)) {
            let whole = found
                .iter()
                .filter_map(|&n| self.names.get(n as usize))
                .filter(|name| name.words.concat() == query.words[0]);
            query.lead_merchants = whole.map(|name| name.merchant).collect();
        }
        query
    }

    pub fn merchant(&self, index: u32) -> Option<&IndexedMerchant> {
        self.merchants.get(index as usize)
    }

    /// Whether a city after `text` could change the outcome of matching `text` alone, whose
    /// alignments ran out of words at `continuations`: the city's first word lines up with
    /// the rest of one of those names, or the words and the city glued together spell a name
    /// the index knows ([`CandidateIndex::names_for`]'s split-name look-up). Conservative: it
    /// may say yes when the outcome is the same, never no when it differs.
    pub fn city_changes_outcome(
        &self,
        text: &str,
        city: &str,
        continuations: &[Continuation],
    ) -> bool {
        // Once per row with a city: the words are borrowed, not collected.
        let mut city_words = words_of(city);
        let Some(first) = city_words.next() else {
            return false;
        };
        let continues = continuations.iter().any(|c| {
            self.names
                .get(c.name as usize)
                .and_then(|name| name.words.get(usize::from(c.word)))
                .and_then(|word| word.get(usize::from(c.offset)..))
                .is_none_or(|rest| could_line_up(&first, rest))
        });
        if continues {
            return true;
        }
        let text_words = words_of(text).count();
        if text_words >= 3 {
            return false;
        }
        // The split-name look-up glues the first two and three words together.
        let mut glued = String::with_capacity(text.len() + city.len());
        words_of(text).for_each(|word| glued.push_str(&word));
        std::iter::once(first)
            .chain(city_words)
            .take(3 - text_words)
            .enumerate()
            .any(|(index, word)| {
                glued.push_str(&word);
                text_words + index + 1 >= 2 && self.by_first_word.contains_key(glued.as_str())
            })
    }

    /// The best-scoring merchants for the query, best first, at most `limit`.
    pub fn candidates(&self, query: &Query<'_>, limit: usize) -> Vec<ScoredMerchant> {
        let mut names = self.names_for(query, false);
        let mut scored = self.score_names(query, &names);
        // Typos are looked for only when nothing spelled right came close.
        let plausible = scored.first().is_some_and(|s| s.score >= TYPO_SEARCH_BELOW);
        if !plausible {
            let typo_names = self.names_for(query, true);
            if !typo_names.is_empty() {
                names.extend(typo_names);
                scored = self.score_names(query, &names);
            }
        }
        scored.truncate(limit);
        scored
            .into_iter()
            .map(|s| ScoredMerchant {
                merchant: s.merchant,
                score: s.score,
                explains_all: s.explains_all,
                whole_words: s
                    .whole_from_start
                    .then_some((s.alignment.end, s.alignment.complete)),
                detail: s,
            })
            .collect()
    }

    /// A sentence saying why `scored` was suggested.
    pub fn why(&self, query: &Query<'_>, scored: &ScoredMerchant) -> String {
        self.names
            .get(scored.detail.name as usize)
            .map_or_else(String::new, |name| {
                explain(
                    query,
                    name,
                    &scored.detail.alignment,
                    scored.detail.prior_why,
                )
            })
    }

    /// The one of `scored` (best first) clear enough to resolve without a person, if any: the
    /// best, when it reaches [`AUTO_THRESHOLD`] and is ahead of the second by [`AUTO_MARGIN`]
    /// or alone explains every word. Among names that line up whole from the first word and
    /// score within the margin, the one that explains the most words wins: `STARBUCKS RESERVE`
    /// is Starbucks Reserve, not Starbucks with a branch after it; over the same words, the
    /// one that ends with a whole word (`MINTMOBILE`: Mint Mobile, not Mint).
    pub fn clear_winner(scored: &[ScoredMerchant]) -> Option<usize> {
        let best = scored.first()?;
        if best.score < AUTO_THRESHOLD {
            return None;
        }
        let Some(second) = scored.get(1) else {
            return Some(0);
        };
        // Scores stop at 1.0, so a name that explains every word ties one that leaves words
        // over when both reach it: the first still explains more (`D&W FRESH MARKET` is D&W
        // Fresh Market, not The Fresh Market after a word).
        if best.score - second.score >= AUTO_MARGIN
            || (best.explains_all && !second.explains_all && best.score >= second.score)
        {
            return Some(0);
        }
        if let Some(index) = Self::told_apart_by_mcc(scored) {
            return Some(index);
        }
        // Rivals whose words all lie inside the best's, after its first (`FRESH MARKET` in
        // `D&W FRESH MARKET STORE`), are part of the best's name, not merchants beside it.
        let inside_best = |s: &ScoredMerchant| {
            let (a, b) = (&s.detail.alignment, &best.detail.alignment);
            a.start > b.start && a.end <= b.end
        };
        if best.whole_words.is_some_and(|(_, complete)| complete)
            && !best.detail.alignment.glued
            && scored[1..]
                .iter()
                .filter(|s| best.score - s.score < AUTO_MARGIN)
                .all(inside_best)
        {
            return Some(0);
        }
        // A name that leaves letters of its last word over (`HOME` in `HOMEDEP`) is no clear
        // winner over one within the margin that explains every letter of the same words
        // (`HOME DEPOT` cut short).
        let words = |s: &ScoredMerchant| s.whole_words.map(|(words, _)| words);
        if !best.explains_all && second.explains_all && words(best) == words(second) {
            return None;
        }
        let close = |s: &&ScoredMerchant| close_to(best, s);
        // Over the same words, a name that explains its last word whole is wider than one
        // ending inside it: `MINTMOBILE` is Mint Mobile, not Mint glued to more letters.
        let width = |s: &ScoredMerchant| {
            s.whole_words
                .map(|words| (words, !s.detail.alignment.glued))
        };
        let widest = scored.iter().filter(close).filter_map(width).max()?;
        let mut widest_ones = scored
            .iter()
            .enumerate()
            .filter(|(_, s)| close(s) && width(s) == Some(widest));
        let (index, _) = widest_ones.next()?;
        let others_nested = scored.iter().filter(close).all(|s| s.whole_words.is_some());
        (widest_ones.next().is_none() && others_nested).then_some(index)
    }

    /// Among names within the margin of the best that line up over the same words, the one
    /// the MCC alone favours: names alike cannot tell two merchants apart, the network's code
    /// for what the shop sells can (`TOM THUMB` with 5411 is the grocer, not the convenience
    /// store of the same name). None when the names differ in what they explain, or when the
    /// code favours none of them or more than one.
    fn told_apart_by_mcc(scored: &[ScoredMerchant]) -> Option<usize> {
        let best = scored.first()?;
        let close = || scored.iter().enumerate().filter(|(_, s)| close_to(best, s));
        let same_words = |(_, s): (usize, &ScoredMerchant)| {
            s.whole_words.is_some()
                && s.whole_words == best.whole_words
                && s.explains_all == best.explains_all
        };
        if close().count() < 2 || !close().all(same_words) {
            return None;
        }
        let favoured = close().map(|(_, s)| s.detail.prior).fold(0.0, f32::max);
        let mut with_favour = close().filter(|(_, s)| s.detail.prior >= favoured);
        match (with_favour.next(), with_favour.next()) {
            (Some((index, _)), None) if favoured > 0.0 => Some(index),
            _ => None,
        }
    }

    /// Names worth aligning: by first word, glued prefix and truncation; or (with `typos`) by
    /// trigram similarity of the descriptor's first word.
    fn names_for(&self, query: &Query<'_>, typos: bool) -> Vec<u32> {
        let mut names: Vec<u32> = Vec::new();
        let starts = query.text_words.min(MAX_START);
        if !typos {
            // A name written as one word, split in the descriptor: `WAL MART`, `H M`.
            for count in 2..=3.min(query.words.len()) {
                if let Some(found) = self.by_first_word.get(&query.words[..count].concat()) {
                    names.extend_from_slice(found);
                }
            }
        }
        if typos {
            if let Some(first) = query.words.first() {
                self.typo_names(first, &mut names);
            }
            names.sort_unstable();
            names.dedup();
            return names;
        }
        for (position, word) in query.words[..starts].iter().enumerate() {
            if let Some(found) = self.by_first_word.get(word.as_str()) {
                names.extend_from_slice(found);
            }
            // A name glued to what follows it: `STARBUCKSSEATTLE`, `YOUTUBEPREMIUM`.
            for (cut, _) in word.char_indices().skip(3) {
                if let Some(found) = self.by_first_word.get(&word[..cut]) {
                    names.extend_from_slice(found);
                }
            }
            // A first word cut short (`STARBUC`); only the last merchant word can be cut, and a
            // word that is itself a first word is taken as whole.
            let exact = self.by_first_word.contains_key(word.as_str());
            if word.len() >= 3 && position + 1 == query.text_words && !exact {
                let start = self
                    .first_words
                    .partition_point(|w| w.as_str() < word.as_str());
                for first in self.first_words[start..]
                    .iter()
                    .take(MAX_PREFIX_NAMES)
                    .take_while(|w| w.starts_with(word.as_str()))
                {
                    if let Some(found) = self.by_first_word.get(first) {
                        names.extend_from_slice(found);
                    }
                }
            }
        }
        names.sort_unstable();
        names.dedup();
        names
    }

    fn typo_names(&self, word: &str, names: &mut Vec<u32>) {
        if word.len() < 5 || !word.is_ascii() {
            return;
        }
        let grams: Vec<[u8; 3]> = word
            .as_bytes()
            .windows(3)
            .map(|g| [g[0], g[1], g[2]])
            .collect();
        let mut shared: Vec<(u32, u16)> = Vec::new();
        for gram in &grams {
            if let Some(words) = self.trigrams.get(gram) {
                shared.extend(words.iter().map(|&w| (w, 1)));
            }
        }
        shared.sort_unstable_by_key(|&(w, _)| w);
        shared.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 += 1;
            }
            same
        });
        let needed = (grams.len() / 2).max(2);
        for (position, count) in shared {
            if usize::from(count) < needed {
                continue;
            }
            let Some(first) = self.first_words.get(position as usize) else {
                continue;
            };
            if strsim::jaro_winkler(word, first) >= TYPO_SIMILARITY {
                if let Some(found) = self.by_first_word.get(first) {
                    names.extend_from_slice(found);
                }
            }
        }
    }

    /// Scores each name and keeps the best name per merchant, best merchant first (ties by
    /// merchant id, so the order never depends on hashing).
    fn score_names(&self, query: &Query<'_>, names: &[u32]) -> Vec<NameScore> {
        let mut best: FastMap<u32, NameScore> = FastMap::default();
        for &name_index in names {
            let Some(name) = self.names.get(name_index as usize) else {
                continue;
            };
            let Some(merchant) = self.merchants.get(name.merchant as usize) else {
                continue;
            };
            let Some(scored) = score_name(query, name_index, name, merchant) else {
                continue;
            };
            match best.get(&name.merchant) {
                Some(existing) if existing.score >= scored.score => {}
                _ => {
                    best.insert(name.merchant, scored);
                }
            }
        }
        let id = |s: &NameScore| self.merchants.get(s.merchant as usize).map_or(0, |m| m.id);
        let mut ranked: Vec<NameScore> = best.into_values().collect();
        ranked.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| b.explains_all.cmp(&a.explains_all))
                .then_with(|| id(a).cmp(&id(b)))
        });
        ranked
    }
}

/// Whether `s` reaches the automatic threshold within the margin of `best`: a rival the score
/// alone does not rule out.
fn close_to(best: &ScoredMerchant, s: &ScoredMerchant) -> bool {
    s.score >= AUTO_THRESHOLD && best.score - s.score < AUTO_MARGIN
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(names: &[(i64, Category, &[&str])]) -> CandidateIndex {
        CandidateIndex::new(
            names
                .iter()
                .map(|(id, category, names)| {
                    (
                        IndexedMerchant {
                            id: *id,
                            category: *category,
                            mcc: None,
                        },
                        names.iter().map(|n| n.to_string()).collect(),
                    )
                })
                .collect(),
        )
    }

    fn best(
        index: &CandidateIndex,
        text: &str,
        place_words: usize,
        mcc: &str,
    ) -> Option<(i64, f32)> {
        let query = index.query(text, None, place_words, mcc);
        let top = index.candidates(&query, 3);
        top.first()
            .and_then(|s| index.merchant(s.merchant).map(|m| (m.id, s.score)))
    }

    fn sample() -> CandidateIndex {
        use Category::*;
        index(&[
            (1, CoffeeShop, &["Starbucks", "sbux"]),
            (2, Restaurant, &["Silver Diner"]),
            (3, HomeImprovement, &["Ace Hardware"]),
            (4, GasStation, &["Shell", "shell oil"]),
            (5, FastFood, &["Taco Bell"]),
            (6, FastFood, &["Chipotle Mexican Grill", "Chipotle"]),
            (7, Apparel, &["Gap"]),
            (8, GasStation, &["Delta"]),
            (9, Airline, &["Delta Air Lines"]),
        ])
    }

    /// The merchant [`CandidateIndex::clear_winner`] resolves to without a person.
    fn winner(index: &CandidateIndex, text: &str, mcc: &str) -> Option<i64> {
        let query = index.query(text, None, 0, mcc);
        let scored = index.candidates(&query, REVIEW_CANDIDATES);
        let winner = CandidateIndex::clear_winner(&scored)?;
        index.merchant(scored[winner].merchant).map(|m| m.id)
    }

    #[test]
    fn the_mcc_tells_apart_merchants_of_the_same_name() {
        use Category::*;
        // Real: the grocer `TOM THUMB` (5411) and the convenience store `TOMTHUMB` (5541).
        let index = index(&[(1, Grocery, &["Tom Thumb"]), (2, GasStation, &["TomThumb"])]);
        assert_eq!(winner(&index, "TOM THUMB", "5411"), Some(1));
        assert_eq!(winner(&index, "TOM THUMB", "5541"), Some(2));
        assert_eq!(winner(&index, "TOM THUMB", ""), None);
        // A code of neither's category favours neither.
        assert_eq!(winner(&index, "TOM THUMB", "7011"), None);
    }

    #[test]
    fn a_name_explaining_every_word_beats_one_after_a_word_at_the_top_score() {
        use Category::*;
        let index = index(&[
            (1, Grocery, &["D&W Fresh Market"]),
            (2, Grocery, &["The Fresh Market", "Fresh Market"]),
        ]);
        assert_eq!(winner(&index, "D&W FRESH MARKET", "5411"), Some(1));
        assert_eq!(winner(&index, "D&W FRESH MARKET", ""), Some(1));
        assert_eq!(winner(&index, "FRESH MARKET", "5411"), Some(2));
        // With a word after it, the rival's name still lies inside D&W Fresh Market's.
        assert_eq!(winner(&index, "D&W FRESH MARKET STORE", "5411"), Some(1));
    }

    #[test]
    fn exact_name_scores_top() {
        let found = best(&sample(), "STARBUCKS", 0, "");
        assert_eq!(found.map(|f| f.0), Some(1));
        assert!(found.is_some_and(|f| f.1 >= AUTO_THRESHOLD));
    }

    #[test]
    fn truncated_descriptor_matches_the_name_prefix() {
        let found = best(&sample(), "CHIPOTLE MEXICAN GRI", 0, "");
        assert_eq!(found.map(|f| f.0), Some(6));
        assert!(found.is_some_and(|f| f.1 >= AUTO_THRESHOLD));
        let found = best(&sample(), "STARBUCKS STO", 0, "");
        assert!(found.is_some_and(|f| f.0 == 1 && f.1 >= AUTO_THRESHOLD));
    }

    #[test]
    fn a_name_cut_to_one_or_two_letters_of_its_last_word_matches_after_a_long_start() {
        // A 22-character name field cuts `CRACKER BARREL` to `CRACKER BA` (a real Privacy.com
        // line cuts it so); a street after a name is no cut (`MARKET ST`).
        let index = index(&[
            (1, Category::Restaurant, &["Cracker Barrel"]),
            (2, Category::Grocery, &["Market Street"]),
            (3, Category::Airline, &["British Airways", "ba"]),
        ]);
        for (text, expected) in [
            ("CRACKER BA", Some(1)),
            ("MARKET ST", None),
            ("MARKET", None),
        ] {
            let query = Query::new(text, None, 0, "");
            let scored = index.candidates(&query, 3);
            let winner = CandidateIndex::clear_winner(&scored)
                .and_then(|w| scored.get(w))
                .and_then(|s| index.merchant(s.merchant));
            assert_eq!(winner.map(|m| m.id), expected, "{text}");
        }
    }

    #[test]
    fn a_brand_first_is_no_processor_code_before_another_brand() {
        let index = index(&[
            (1, Category::Pharmacy, &["CVS Pharmacy", "cvs"]),
            (2, Category::Apparel, &["New York & Company", "new york"]),
            (3, Category::Transit, &["CTA", "ventra"]),
            (4, Category::Entertainment, &["Cinemark"]),
        ]);
        // `CVS` is a brand, so `NEW YORK` after it is a place; `CTA VENTRA` names one merchant
        // twice; `CNK` is a code (Cinemark's processor) before a name.
        for (text, expected) in [("CVS NEW YORK", 1), ("CTA VENTRA", 3), ("CNK CINEMARK", 4)] {
            let query = index.query(text, None, 0, "");
            let scored = index.candidates(&query, 3);
            let winner = CandidateIndex::clear_winner(&scored)
                .and_then(|w| scored.get(w))
                .and_then(|s| index.merchant(s.merchant));
            assert_eq!(winner.map(|m| m.id), Some(expected), "{text}");
        }
    }

    #[test]
    fn glued_words_match() {
        assert_eq!(best(&sample(), "TACOBELL", 0, "").map(|f| f.0), Some(5));
        assert_eq!(
            best(&sample(), "STARBUCKSSEATTLE", 0, "").map(|f| f.0),
            Some(1)
        );
    }

    #[test]
    fn local_merchant_sharing_a_common_word_is_not_auto() {
        let index = sample();
        for text in [
            "JOES DINER",
            "MAIN ST HARDWARE",
            "SILVER SPOON DINER",
            "SHELL BEACH CAFE",
            "GAP ROAD BAKERY",
        ] {
            let found = best(&index, text, 0, "");
            assert!(
                found.is_none_or(|f| f.1 < AUTO_THRESHOLD),
                "{text}: {found:?}"
            );
        }
    }

    #[test]
    fn short_brands_match_whole_words_only() {
        let index = sample();
        assert!(best(&index, "GAPSTOW CAFE", 0, "").is_none_or(|f| f.1 < AUTO_THRESHOLD));
        assert!(best(&index, "GAP", 0, "5651").is_some_and(|f| f.0 == 7 && f.1 >= AUTO_THRESHOLD));
    }

    #[test]
    fn mcc_prior_separates_siblings() {
        let index = sample();
        // Delta the fuel brand is an exact name, but an airline MCC says otherwise.
        assert!(best(&index, "DELTA", 0, "4511").is_none_or(|f| f.1 < AUTO_THRESHOLD));
        assert!(best(&index, "DELTA", 0, "5541").is_some_and(|f| f.0 == 8 && f.1 >= AUTO_THRESHOLD));
        assert_eq!(best(&index, "DELTA AIR", 0, "4511").map(|f| f.0), Some(9));
    }

    #[test]
    fn an_airline_sells_food_on_board() {
        // Real: `FRONTIER AIRLINES ONBOARD IRVING TX` with MCC 5814.
        let index = sample();
        let found = best(&index, "DELTA AIR LINES ONBOARD", 0, "5814");
        assert!(found.is_some_and(|f| f.0 == 9 && f.1 >= AUTO_THRESHOLD));
        let found = best(&index, "DELTA AIR LINES", 0, "5814");
        assert!(found.is_none_or(|f| f.1 < AUTO_THRESHOLD));
    }

    #[test]
    fn probable_town_counts_little() {
        let found = best(&sample(), "STARBUCKS SMALLVILLE", 1, "");
        assert!(found.is_some_and(|f| f.0 == 1 && f.1 >= AUTO_THRESHOLD));
    }

    #[test]
    fn name_glued_and_cut_short_matches_the_whole_name() {
        // The seller of the real `GRUBHUBBUFFALOWILDWIN`: spaces dropped, cut at the field's end.
        let index = index(&[
            (1, Category::FastFood, &["Buffalo Wild Wings"]),
            (2, Category::FastFood, &["Burger King"]),
            (3, Category::GeneralMerchandise, &["Office Depot"]),
            (4, Category::Software, &["Microsoft", "office 365"]),
            (5, Category::HomeImprovement, &["The Home Depot"]),
            (6, Category::Hotel, &["@Home"]),
        ]);
        for (text, id) in [("BUFFALOWILDWIN", 1), ("BURGERKIN", 2), ("OFFICEDEP", 3)] {
            let query = Query::new(text, None, 0, "");
            let scored = index.candidates(&query, 3);
            let winner = CandidateIndex::clear_winner(&scored)
                .and_then(|w| scored.get(w))
                .and_then(|s| index.merchant(s.merchant));
            assert_eq!(winner.map(|m| m.id), Some(id), "{text}");
        }
        // `HOME` glued to `DEP` leaves letters over; `HOME DEPOT` cut short explains them all.
        let query = Query::new("HOMEDEP", None, 0, "");
        let scored = index.candidates(&query, 3);
        assert_eq!(CandidateIndex::clear_winner(&scored), None);
    }

    #[test]
    fn long_typo_is_found_but_not_trusted_blindly() {
        let found = best(&sample(), "STARBUKCS", 0, "");
        assert_eq!(found.map(|f| f.0), Some(1));
    }
}
