//! Merchant resolution: turns a raw card descriptor (`SQ *STARBUCKS #1234 SEATTLE WA`) into a
//! catalogue merchant, or into a short list of candidates for a person to review.
//!
//! Pure and synchronous: no I/O, no clocks, no shared state. The ingest service builds one
//! [`Resolver`] from the catalogue plus the aliases and rules in PostgreSQL (and builds a new one
//! when they change); `altdata resolve` runs it over a CSV file.
//!
//! # Layout
//! - [`normalize`](mod@normalize): raw descriptor → upper-case merchant words, state, city.
//! - `location`: the city and state at the right-hand end of a descriptor.
//! - [`rules`]: exact aliases and operator prefix/regex rules.
//! - `fuzzy`: the candidate index over catalogue names, scoring and the MCC category prior.
//! - [`category`]: the category of a shop whose brand is not known (MCC and words).
//! - [`cache`]: a bounded cache of resolutions by raw descriptor and MCC.
//! - [`csv_io`]: the `altdata resolve` CSV filter.
//! - [`error`]: the one error type, [`ResolverError`].
//!
//! # Order of resolution
//! 1. an alias equal to the normalised text (confidence 1.0);
//! 2. the first operator rule that matches, by priority (confidence 1.0);
//! 3. fuzzy matching against catalogue names; `auto` only when the score is at least
//!    [`AUTO_THRESHOLD`] and ahead of the next merchant by [`AUTO_MARGIN`] (or the only candidate
//!    whose whole name explains every word), otherwise `review` with the top three candidates.

pub mod cache;
pub mod category;
pub mod csv_io;
pub mod error;
mod fuzzy;
mod location;
pub mod normalize;
pub mod rules;
mod vocabulary;

pub use cache::ResolutionCache;
pub use category::{guess_category, CategoryGuess, CATEGORY_THRESHOLD};
pub use csv_io::{resolve_csv, ResolveCsvReport};
pub use error::ResolverError;
pub use fuzzy::{AUTO_MARGIN, AUTO_THRESHOLD};
pub use normalize::{normalize, Normalized};
pub use rules::{check_rule, Alias, Rule, RuleKind, RuleMatcher, RuleProblem, SkippedRule};

use altdata_domain::catalogue::Catalogue;
use altdata_domain::{Category, Region};
use fuzzy::{CandidateIndex, Continuation, IndexedMerchant, Query, REVIEW_CANDIDATES};
use normalize::Shape;
use rules::{AliasTable, RuleSet};
use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

/// A merchant the resolver can return: from the catalogue, or created by a person in review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerchantRef {
    pub id: i64,
    pub name: String,
    pub category: Category,
}

/// Which stage decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolutionSource {
    Alias,
    Rule,
    Fuzzy,
}

impl ResolutionSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ResolutionSource::Alias => "alias",
            ResolutionSource::Rule => "rule",
            ResolutionSource::Fuzzy => "fuzzy",
        }
    }
}

/// A merchant the descriptor might be, with its score and a sentence saying why.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub merchant_id: i64,
    pub name: String,
    pub category: Category,
    /// 0 to 1; on the same scale as [`Decision::Auto`]'s confidence.
    pub score: f32,
    pub why: String,
    /// The merchant's whole name lines up from the descriptor's first word (glued to more
    /// letters or not, not misspelled): the descriptor starts with the brand, so it is a brand
    /// suspect whatever follows (`CHEVRON 0095006 TAHOE PARADISCA`), where a name met further
    /// in is often a town or a trade word after a local shop's own name.
    pub name_at_start: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Resolved without a person.
    Auto {
        merchant_id: i64,
        confidence: f32,
        source: ResolutionSource,
    },
    /// A person should decide; up to three candidates, best first (possibly none).
    /// Shared by every row with this decision (cloning one clones no candidate). `category` is
    /// the shop's category when it can be told without the brand.
    Review {
        candidates: Arc<[Candidate]>,
        category: Option<CategoryGuess>,
    },
}

/// The outcome for one descriptor.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    /// The normalised descriptor.
    pub normalized: String,
    /// Where [`Resolution::group`] ends in `normalized`.
    group_len: usize,
    pub state: Option<Region>,
    pub city: Option<String>,
    pub decision: Decision,
}

impl Resolution {
    /// The review queue's key and the text aliases are made under: `normalized` without a
    /// store's branch or a town cut short by the card network's name field.
    pub fn group(&self) -> &str {
        &self.normalized[..self.group_len]
    }

    /// The merchant id when resolved automatically.
    pub fn merchant_id(&self) -> Option<i64> {
        match self.decision {
            Decision::Auto { merchant_id, .. } => Some(merchant_id),
            Decision::Review { .. } => None,
        }
    }

    /// For a row going to review, the category its spend counts in meanwhile: a guess at or
    /// above [`CATEGORY_THRESHOLD`].
    pub fn unattributed_category(&self) -> Option<CategoryGuess> {
        match &self.decision {
            Decision::Review {
                category: Some(guess),
                ..
            } if guess.confidence >= CATEGORY_THRESHOLD => Some(*guess),
            _ => None,
        }
    }
}

/// Resolves descriptors against the catalogue, aliases and rules it was built with.
#[derive(Debug)]
pub struct Resolver {
    merchants: HashMap<i64, MerchantRef>,
    aliases: AliasTable,
    rules: RuleSet,
    index: CandidateIndex,
}

impl Resolver {
    /// Builds the resolver. A rule that [`check_rule`] refuses is skipped, never fatal: it is
    /// listed by [`Resolver::skipped_rules`] for the caller to report.
    ///
    /// `extra_merchants` are merchants outside the catalogue (created in review); they are
    /// matched by name too. Aliases and rules may point at any merchant id, including ones
    /// neither list contains; [`Resolver::merchant`] then returns `None` for it.
    pub fn new(
        catalogue: &Catalogue,
        extra_merchants: Vec<MerchantRef>,
        aliases: Vec<Alias>,
        rules: Vec<Rule>,
    ) -> Resolver {
        let mut merchants = HashMap::with_capacity_and_hasher(
            catalogue.merchants.len() + extra_merchants.len(),
            Default::default(),
        );
        let mut entries = Vec::with_capacity(catalogue.merchants.len() + extra_merchants.len());
        for m in &catalogue.merchants {
            merchants.insert(
                m.id,
                MerchantRef {
                    id: m.id,
                    name: m.name.clone(),
                    category: m.category,
                },
            );
            let mut names = Vec::with_capacity(1 + m.match_names.len());
            names.push(m.name.clone());
            names.extend(m.match_names.iter().cloned());
            let mcc = Some(m.mcc.trim().to_owned()).filter(|mcc| !mcc.is_empty());
            entries.push((
                IndexedMerchant {
                    id: m.id,
                    category: m.category,
                    mcc,
                },
                names,
            ));
        }
        for m in extra_merchants {
            entries.push((
                IndexedMerchant {
                    id: m.id,
                    category: m.category,
                    mcc: None,
                },
                vec![m.name.clone()],
            ));
            merchants.insert(m.id, m);
        }
        Resolver {
            merchants,
            aliases: AliasTable::new(aliases),
            rules: RuleSet::new(rules),
            index: CandidateIndex::new(entries),
        }
    }

    /// Stored rules that could not be used, and why.
    pub fn skipped_rules(&self) -> &[SkippedRule] {
        self.rules.skipped()
    }

    /// Resolves one raw descriptor; `mcc` may be empty.
    pub fn resolve(&self, raw_descriptor: &str, mcc: &str) -> Resolution {
        self.resolve_deciding(raw_descriptor, mcc, |text, city, shape, mcc| {
            self.decide(text, city, shape, mcc)
        })
    }

    /// [`Resolver::resolve`], with the decision looked up in `decisions` first. Raw
    /// descriptors rarely repeat (store numbers, card fragments, dates), but what is left
    /// after normalisation does, and the decision depends on nothing else: so many distinct
    /// raw strings share one decision and the costly fuzzy match runs once for all of them.
    pub(crate) fn resolve_with_decisions(
        &self,
        raw_descriptor: &str,
        mcc: &str,
        decisions: &mut cache::DecisionCache,
    ) -> Resolution {
        self.resolve_deciding(raw_descriptor, mcc, |text, city, shape, mcc| {
            decisions.get_or_decide(self, text, city, shape, mcc)
        })
    }

    /// Normalises, then decides: by the alias of the row's review group, else by `decide`
    /// (text, city, the words' [`Shape`], MCC).
    fn resolve_deciding(
        &self,
        raw_descriptor: &str,
        mcc: &str,
        decide: impl FnOnce(&str, Option<&str>, Shape, &str) -> Decision,
    ) -> Resolution {
        let detailed = normalize::normalize_detailed(raw_descriptor);
        let mcc = implied_mcc(mcc, &detailed);
        let Normalized { text, state, city } = detailed.normalized;
        let group = &text[..detailed.group_len];
        let decision = self
            .group_alias(&text, group)
            .unwrap_or_else(|| decide(&text, city.as_deref(), detailed.shape, mcc));
        Resolution {
            normalized: text,
            group_len: detailed.group_len,
            state,
            city,
            decision,
        }
    }

    /// The alias of a row's review group, when the group is shorter than the text and the text
    /// has no alias of its own: a group assigned in review stands for every branch and cut
    /// town of its shop. (The decision cache is keyed by the text, so this is looked up
    /// before it.)
    fn group_alias(&self, text: &str, group: &str) -> Option<Decision> {
        if group == text || self.aliases.lookup(text).is_some() {
            return None;
        }
        let merchant_id = self.aliases.lookup(group)?;
        Some(Decision::Auto {
            merchant_id,
            confidence: 1.0,
            source: ResolutionSource::Alias,
        })
    }

    /// A merchant by id, from the catalogue or the extra merchants.
    pub fn merchant(&self, id: i64) -> Option<&MerchantRef> {
        self.merchants.get(&id)
    }

    fn decide(&self, text: &str, city: Option<&str>, shape: Shape, mcc: &str) -> Decision {
        self.decide_noting_city(text, city, shape, mcc).0
    }

    /// The decision, and where its alignments ran out of words ([`Query::continuations`]: what
    /// a city after the words could have continued; only meaningful when `city` is `None`).
    pub(crate) fn decide_noting_city(
        &self,
        text: &str,
        city: Option<&str>,
        shape: Shape,
        mcc: &str,
    ) -> (Decision, Vec<Continuation>) {
        if text.is_empty() {
            let decision = Decision::Review {
                candidates: Vec::new().into(),
                category: guess_category(text, mcc),
            };
            return (decision, Vec::new());
        }
        if let Some(merchant_id) = self.aliases.lookup(text) {
            let decision = Decision::Auto {
                merchant_id,
                confidence: 1.0,
                source: ResolutionSource::Alias,
            };
            return (decision, Vec::new());
        }
        if let Some((_rule_id, merchant_id)) = self.rules.first_match(text) {
            let decision = Decision::Auto {
                merchant_id,
                confidence: 1.0,
                source: ResolutionSource::Rule,
            };
            return (decision, Vec::new());
        }
        let words: Vec<&str> = text.split(' ').collect();
        if normalize::says_no_purchase(&words) {
            // A transfer, payroll, a fee or a card payment: no merchant to suggest, and no
            // category to count it in.
            let decision = Decision::Review {
                candidates: Vec::new().into(),
                category: None,
            };
            return (decision, Vec::new());
        }
        let query = self.index.query(text, city, shape.place_words, mcc);
        let paying_a_bill = words.iter().any(|w| vocabulary::PAYMENT_WORDS.contains(w));
        let decision = self.fuzzy_decision(&query, text, mcc, paying_a_bill);
        let decision = match shape.name_words {
            Some(name_words) if matches!(decision, Decision::Review { .. }) => self
                .name_before_star(&words[..name_words.min(words.len())], mcc, paying_a_bill)
                .filter(|(merchant_id, _)| first_candidate(&decision) == Some(*merchant_id))
                .map_or(decision, |(merchant_id, confidence)| Decision::Auto {
                    merchant_id,
                    confidence,
                    source: ResolutionSource::Fuzzy,
                }),
            _ => decision,
        };
        (decision, query.continuations())
    }

    /// The merchant the words before a network's `*` name on their own, when they do clearly
    /// ([`normalize::Shape::name_words`]). The rest is the transaction's detail (an order, a
    /// product, a site), which a merchant prints after its name and the catalogue does not
    /// know; it may still say which of a company's merchants it was (`UBER *EATS`), so this
    /// only confirms the text's best candidate when the whole text could not decide.
    fn name_before_star(
        &self,
        words: &[&str],
        mcc: &str,
        paying_a_bill: bool,
    ) -> Option<(i64, f32)> {
        let name = words.join(" ");
        let query = self.index.query(&name, None, 0, mcc);
        match self.fuzzy_decision(&query, &name, mcc, paying_a_bill) {
            Decision::Auto {
                merchant_id,
                confidence,
                ..
            } => Some((merchant_id, confidence)),
            Decision::Review { .. } => None,
        }
    }

    /// [`CandidateIndex::city_changes_outcome`].
    pub(crate) fn city_changes_outcome(
        &self,
        text: &str,
        city: &str,
        continuations: &[Continuation],
    ) -> bool {
        self.index.city_changes_outcome(text, city, continuations)
    }

    /// The fuzzy match's decision. `paying_a_bill`: the text has a payment word, which to a
    /// shop (not a utility, carrier, insurer or subscription) means paying its store card.
    fn fuzzy_decision(
        &self,
        query: &Query<'_>,
        text: &str,
        mcc: &str,
        paying_a_bill: bool,
    ) -> Decision {
        let scored = self.index.candidates(query, REVIEW_CANDIDATES);
        if let Some(winner) = CandidateIndex::clear_winner(&scored) {
            if let Some(best) = scored.get(winner) {
                let merchant = self
                    .index
                    .merchant(best.merchant)
                    .filter(|m| !(paying_a_bill && sells_in_a_shop(m.category)));
                if let Some(merchant) = merchant {
                    return Decision::Auto {
                        merchant_id: merchant.id,
                        confidence: best.score,
                        source: ResolutionSource::Fuzzy,
                    };
                }
            }
        }
        let candidates = scored
            .into_iter()
            .filter_map(|s| {
                let merchant = self.index.merchant(s.merchant)?;
                let name = self
                    .merchants
                    .get(&merchant.id)
                    .map_or_else(String::new, |m| m.name.clone());
                Some(Candidate {
                    merchant_id: merchant.id,
                    name,
                    category: merchant.category,
                    score: s.score,
                    why: self.index.why(query, &s),
                    name_at_start: s.whole_words.is_some_and(|(_, complete)| complete),
                })
            })
            .collect();
        Decision::Review {
            candidates,
            category: guess_category(text, mcc),
        }
    }
}

/// The best candidate of a review.
fn first_candidate(decision: &Decision) -> Option<i64> {
    match decision {
        Decision::Review { candidates, .. } => candidates.first().map(|c| c.merchant_id),
        Decision::Auto { .. } => None,
    }
}

/// The MCC to match with: the given one, or for a descriptor without one, what its text
/// implies (an airline's ticket number, [`normalize::AIRLINE_MCC`]).
fn implied_mcc<'a>(mcc: &'a str, detailed: &normalize::DetailedNormalized) -> &'a str {
    if mcc.trim().is_empty() && detailed.airline_ticket {
        normalize::AIRLINE_MCC
    } else {
        mcc
    }
}

/// Categories of shops, whose "payments" are store-card payments rather than bills.
fn sells_in_a_shop(category: Category) -> bool {
    use Category::*;
    matches!(
        category,
        CoffeeShop
            | FastFood
            | Restaurant
            | Grocery
            | GasStation
            | Ecommerce
            | Pharmacy
            | GeneralMerchandise
            | Apparel
            | HomeImprovement
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalogue() -> Catalogue {
        Catalogue::parse(
            "id,name,category,brand_id,ticker_symbol,match_names,mcc\n\
             1,Starbucks,coffee_shop,starbucks,SBUX,sbux|starbucks.com,5814\n\
             2,Ace Hardware,home_improvement,ace_hardware,,acehardware.com,5200\n\
             3,Netflix,streaming,netflix,NFLX,netflix.com,4899\n",
        )
        .unwrap_or_default()
    }

    fn resolver(aliases: Vec<Alias>, rules: Vec<Rule>) -> Resolver {
        let extra = vec![MerchantRef {
            id: 100,
            name: "Pine Cone Bakery".into(),
            category: Category::Restaurant,
        }];
        Resolver::new(&catalogue(), extra, aliases, rules)
    }

    #[test]
    fn a_name_explaining_the_whole_glued_word_wins_over_one_ending_inside_it() {
        // Intuit's `mint.com` lines up with `MINT`, glued to `MOBILE` in one word.
        let catalogue = Catalogue::parse(
            "id,name,category,brand_id,ticker_symbol,match_names,mcc\n\
             1380,Intuit,software,intuit,INTU,mint.com|turbotax,5817\n\
             1837,Mint Mobile,telecom,mint_mobile,TMUS,mintmobile,4814\n",
        )
        .unwrap_or_default();
        let resolver = Resolver::new(&catalogue, vec![], vec![], vec![]);
        let r = resolver.resolve(
            "Mobile Purchase Sign Based 12/03 05:54a #1229 D4071 Mintmobile 26",
            "4814",
        );
        assert_eq!(r.merchant_id(), Some(1837), "{r:?}");
    }

    #[test]
    fn catalogue_brand_resolves_automatically() {
        let r = resolver(vec![], vec![]).resolve("SQ *STARBUCKS #1234 SEATTLE WA", "5814");
        assert_eq!(r.normalized, "STARBUCKS");
        assert_eq!(r.state.map(|s| s.to_string()).as_deref(), Some("WA"));
        assert!(matches!(
            r.decision,
            Decision::Auto {
                merchant_id: 1,
                source: ResolutionSource::Fuzzy,
                ..
            }
        ));
    }

    #[test]
    fn alias_wins_over_fuzzy() {
        let aliases = vec![Alias {
            alias: "STARBUCKS".into(),
            merchant_id: 100,
        }];
        let r = resolver(aliases, vec![]).resolve("STARBUCKS 1234", "");
        assert!(matches!(
            r.decision,
            Decision::Auto {
                merchant_id: 100,
                source: ResolutionSource::Alias,
                ..
            }
        ));
    }

    #[test]
    fn an_alias_of_a_review_group_covers_its_branches_and_cut_towns() {
        let aliases = vec![Alias {
            alias: "TOMTHUMB".into(),
            merchant_id: 100,
        }];
        let resolver = resolver(aliases, vec![]);
        for raw in ["TOMTHUMB #2533 PLANO", "TOMTHUMB      FORT WOR"] {
            let r = resolver.resolve(raw, "5411");
            assert_eq!(r.group(), "TOMTHUMB", "{raw}");
            assert!(
                matches!(
                    r.decision,
                    Decision::Auto {
                        merchant_id: 100,
                        source: ResolutionSource::Alias,
                        ..
                    }
                ),
                "{raw}: {:?}",
                r.decision
            );
        }
        // Another shop whose name only starts the same stays apart.
        let other = resolver.resolve("TOMTHUMBS BBQ", "5812");
        assert_eq!(other.group(), "TOMTHUMBS BBQ");
        assert!(!matches!(
            other.decision,
            Decision::Auto {
                merchant_id: 100,
                ..
            }
        ));
    }

    #[test]
    fn rule_applies_to_normalised_text() {
        let rules = vec![Rule {
            id: 7,
            kind: RuleKind::Prefix,
            pattern: "MAIN ST HARD".into(),
            merchant_id: 2,
            priority: 0,
        }];
        let r = resolver(vec![], rules).resolve("MAIN ST HARDWA #3 DENVER CO", "");
        assert!(matches!(
            r.decision,
            Decision::Auto {
                merchant_id: 2,
                source: ResolutionSource::Rule,
                ..
            }
        ));
    }

    #[test]
    fn local_merchant_goes_to_review_with_candidates() {
        let r = resolver(vec![], vec![]).resolve("MAIN ST HARDWARE DENVER CO", "5251");
        assert!(matches!(r.decision, Decision::Review { .. }));
    }

    #[test]
    fn merchants_created_in_review_are_matched_by_name() {
        let r = resolver(vec![], vec![]).resolve("TST* PINE CONE BAKERY", "5812");
        assert!(matches!(
            r.decision,
            Decision::Auto {
                merchant_id: 100,
                ..
            }
        ));
        assert_eq!(
            resolver(vec![], vec![])
                .merchant(100)
                .map(|m| m.name.as_str()),
            Some("Pine Cone Bakery")
        );
    }

    #[test]
    fn an_invalid_rule_is_skipped_and_named() {
        let rules = vec![Rule {
            id: 9,
            kind: RuleKind::Regex,
            pattern: "[".into(),
            merchant_id: 1,
            priority: 0,
        }];
        let resolver = Resolver::new(&catalogue(), vec![], vec![], rules);
        assert_eq!(resolver.skipped_rules().len(), 1);
        assert_eq!(resolver.skipped_rules()[0].id, 9);
        assert!(resolver
            .resolve("STARBUCKS 1234", "")
            .merchant_id()
            .is_some());
    }

    #[test]
    fn an_airline_ticket_number_picks_the_airline() {
        let catalogue = Catalogue::parse(
            "id,name,category,brand_id,ticker_symbol,match_names,mcc\n\
             1,Delta,gas_station,delta,,,5541\n\
             2,Delta Air Lines,airline,delta_air_lines,DAL,delta,4511\n",
        )
        .unwrap_or_default();
        let resolver = Resolver::new(&catalogue, vec![], vec![], vec![]);
        assert_eq!(resolver.resolve("DELTA", "").merchant_id(), None);
        assert_eq!(
            resolver.resolve("DELTA 0062123456789", "").merchant_id(),
            Some(2)
        );
        // A given MCC wins over the ticket.
        assert_eq!(
            resolver
                .resolve("DELTA 0062123456789", "5541")
                .merchant_id(),
            Some(1)
        );
    }

    #[test]
    fn a_fuel_brand_after_a_dealers_name_is_the_merchant() {
        let catalogue = Catalogue::parse(
            "id,name,category,brand_id,ticker_symbol,match_names,mcc\n\
             1,Citgo,gas_station,citgo,,citgo.com,5541\n\
             2,Shell,gas_station,shell,SHEL,,5541\n\
             3,Exxon,gas_station,exxon,XOM,exxon mobil,5541\n\
             4,Mobil,gas_station,mobil,XOM,,5541\n",
        )
        .unwrap_or_default();
        let resolver = Resolver::new(&catalogue, vec![], vec![], vec![]);
        let id = |raw: &str, mcc: &str| resolver.resolve(raw, mcc).merchant_id();
        assert_eq!(id("GREEN MEADOWS CITGO", ""), Some(1));
        assert_eq!(id("TINEE GIANT #249 CITGO", ""), Some(1));
        // A common word needs a fuel MCC; one company's two names are no dealer.
        assert_eq!(id("SEA SHELL", ""), None);
        assert_eq!(id("JOES SHELL", "5541"), Some(2));
        assert_eq!(id("EXXON MOBIL #04507", ""), Some(3));
    }

    #[test]
    fn words_after_a_store_number_count_as_the_branch() {
        let catalogue = Catalogue::parse(
            "id,name,category,brand_id,ticker_symbol,match_names,mcc\n\
             1,AMC Theatres,entertainment,amc_theatres,AMC,amc,7832\n\
             2,CAVA,restaurant,cava,CAVA,,5812\n",
        )
        .unwrap_or_default();
        let resolver = Resolver::new(&catalogue, vec![], vec![], vec![]);
        let id = |raw: &str, mcc: &str| resolver.resolve(raw, mcc).merchant_id();
        assert_eq!(id("AMC 0246 MISSION VALLE", "7832"), Some(1));
        assert_eq!(id("AMC MISSION VALLE", "7832"), None);
        assert_eq!(id("10103 CAVA PEMBROKE", ""), Some(2));
    }

    #[test]
    fn empty_descriptor_goes_to_review_without_candidates() {
        let r = resolver(vec![], vec![]).resolve("#1234 03/14", "");
        assert_eq!(
            r.decision,
            Decision::Review {
                candidates: Vec::new().into(),
                category: None,
            }
        );
    }
}
