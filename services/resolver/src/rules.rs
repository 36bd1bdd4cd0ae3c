//! Exact aliases and operator rules: the mappings people made, tried before any fuzzy matching.
//!
//! Aliases are keyed by the normalised descriptor. Rules are tried by descending priority (then
//! ascending id): a prefix rule matches when the normalised text starts with the normalised
//! pattern (a plain string prefix, so `MAIN ST HARD` also catches a cut-off `MAIN ST HARDWA`; use
//! a regex rule with `\b` for whole words); a regex rule matches anywhere in the normalised text,
//! case-insensitively.

use crate::normalize::normalize;
use regex::{Regex, RegexBuilder};
use rustc_hash::FxHashMap as HashMap;

/// A normalised descriptor that a person mapped to a merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The normalised descriptor (normalised again on load, which changes nothing for text that
    /// is already normalised).
    pub alias: String,
    pub merchant_id: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// The normalised text starts with the pattern (itself normalised), as a plain string.
    Prefix,
    /// The regular expression matches the normalised text (case-insensitive).
    Regex,
}

/// An operator rule mapping many descriptors to one merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub id: i64,
    pub kind: RuleKind,
    pub pattern: String,
    pub merchant_id: i64,
    /// Higher runs first.
    pub priority: i32,
}

/// The longest pattern a rule may have, in bytes.
pub const MAX_PATTERN_BYTES: usize = 200;
/// The shortest normalised prefix a prefix rule may have: a shorter one would catch far more
/// than its author meant.
pub const MIN_PREFIX_CHARS: usize = 2;

/// Why a rule cannot be used. The one validator of rules: the review API refuses such a rule
/// with this reason, and a resolver built with one skips it and reports it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    #[error("the pattern is empty")]
    Empty,
    #[error("the pattern is longer than {MAX_PATTERN_BYTES} bytes")]
    TooLong,
    #[error("the pattern contains a control character")]
    ControlCharacter,
    #[error(
        "the prefix normalises to {normalized:?} (descriptors are compared after normalisation, \
         which drops numbers, dates, card fragments and a trailing state); a prefix needs at \
         least {MIN_PREFIX_CHARS} characters left"
    )]
    PrefixTooShort { normalized: String },
    #[error("the regular expression is not valid: {0}")]
    InvalidRegex(String),
    #[error(
        "the regular expression matches an empty descriptor, so it would catch every descriptor"
    )]
    MatchesEverything,
}

/// Checks a rule the way the resolver loads it; returns the text it matches against: the
/// normalised prefix, or the regular expression as given.
pub fn check_rule(kind: RuleKind, pattern: &str) -> Result<String, RuleProblem> {
    compile(kind, pattern).map(|matcher| match matcher {
        Matcher::Prefix(prefix) => prefix,
        Matcher::Regex(regex) => regex.as_str().to_owned(),
    })
}

/// A rule compiled by the same code ingest loads rules with, to see what it would match
/// (`POST /v1/admin/rules/preview`).
#[derive(Debug)]
pub struct RuleMatcher(Matcher);

impl RuleMatcher {
    pub fn new(kind: RuleKind, pattern: &str) -> Result<RuleMatcher, RuleProblem> {
        compile(kind, pattern).map(RuleMatcher)
    }

    /// Whether the rule matches a normalised descriptor.
    pub fn matches(&self, normalized: &str) -> bool {
        self.0.matches(normalized)
    }
}

fn compile(kind: RuleKind, pattern: &str) -> Result<Matcher, RuleProblem> {
    if pattern.trim().is_empty() {
        return Err(RuleProblem::Empty);
    }
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(RuleProblem::TooLong);
    }
    if pattern.chars().any(char::is_control) {
        return Err(RuleProblem::ControlCharacter);
    }
    match kind {
        RuleKind::Prefix => {
            let prefix = normalize(pattern).text;
            if prefix.chars().count() < MIN_PREFIX_CHARS {
                return Err(RuleProblem::PrefixTooShort { normalized: prefix });
            }
            Ok(Matcher::Prefix(prefix))
        }
        RuleKind::Regex => {
            let regex = RegexBuilder::new(pattern)
                .case_insensitive(true)
                .size_limit(1 << 20)
                .build()
                .map_err(|error| RuleProblem::InvalidRegex(error.to_string()))?;
            if regex.is_match("") {
                return Err(RuleProblem::MatchesEverything);
            }
            Ok(Matcher::Regex(regex))
        }
    }
}

/// A stored rule the resolver could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedRule {
    pub id: i64,
    pub problem: RuleProblem,
}

/// Aliases by normalised text.
#[derive(Debug, Default)]
pub(crate) struct AliasTable {
    by_text: HashMap<String, i64>,
}

impl AliasTable {
    /// Later aliases for the same text win, so callers can pass them oldest first.
    pub fn new(aliases: Vec<Alias>) -> AliasTable {
        let mut by_text = HashMap::with_capacity_and_hasher(aliases.len(), Default::default());
        for alias in aliases {
            let key = normalize(&alias.alias).text;
            if !key.is_empty() {
                by_text.insert(key, alias.merchant_id);
            }
        }
        AliasTable { by_text }
    }

    pub fn lookup(&self, normalized: &str) -> Option<i64> {
        self.by_text.get(normalized).copied()
    }
}

#[derive(Debug)]
enum Matcher {
    Prefix(String),
    Regex(Regex),
}

impl Matcher {
    fn matches(&self, normalized: &str) -> bool {
        match self {
            Matcher::Prefix(prefix) => normalized.starts_with(prefix.as_str()),
            Matcher::Regex(regex) => regex.is_match(normalized),
        }
    }
}

#[derive(Debug)]
struct CompiledRule {
    id: i64,
    merchant_id: i64,
    matcher: Matcher,
}

/// Rules compiled and sorted into the order they are tried, and those that could not be.
#[derive(Debug, Default)]
pub(crate) struct RuleSet {
    rules: Vec<CompiledRule>,
    skipped: Vec<SkippedRule>,
}

impl RuleSet {
    /// Compiles every rule it can; a rule that [`check_rule`] refuses is skipped and kept in
    /// [`RuleSet::skipped`], so that one bad stored rule never stops resolution.
    pub fn new(mut rules: Vec<Rule>) -> RuleSet {
        rules.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        let mut set = RuleSet {
            rules: Vec::with_capacity(rules.len()),
            skipped: Vec::new(),
        };
        for rule in rules {
            match compile(rule.kind, &rule.pattern) {
                Ok(matcher) => set.rules.push(CompiledRule {
                    id: rule.id,
                    merchant_id: rule.merchant_id,
                    matcher,
                }),
                Err(problem) => set.skipped.push(SkippedRule {
                    id: rule.id,
                    problem,
                }),
            }
        }
        set
    }

    pub fn skipped(&self) -> &[SkippedRule] {
        &self.skipped
    }

    /// The first matching rule: `(rule id, merchant id)`.
    pub fn first_match(&self, normalized: &str) -> Option<(i64, i64)> {
        self.rules
            .iter()
            .find(|rule| rule.matcher.matches(normalized))
            .map(|rule| (rule.id, rule.merchant_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(id: i64, kind: RuleKind, pattern: &str, merchant_id: i64, priority: i32) -> Rule {
        Rule {
            id,
            kind,
            pattern: pattern.into(),
            merchant_id,
            priority,
        }
    }

    #[test]
    fn aliases_are_found_by_normalised_text() {
        let table = AliasTable::new(vec![Alias {
            alias: "joe's diner".into(),
            merchant_id: 9,
        }]);
        assert_eq!(table.lookup("JOES DINER"), Some(9));
        assert_eq!(table.lookup("JOES"), None);
    }

    #[test]
    fn prefix_rules_match_the_start_of_the_normalised_text() {
        let rules = RuleSet::new(vec![
            rule(1, RuleKind::Prefix, "main st hard", 5, 0),
            rule(2, RuleKind::Regex, r"^GAP\b", 6, 0),
        ]);
        assert_eq!(rules.first_match("MAIN ST HARDWA"), Some((1, 5)));
        assert_eq!(rules.first_match("GAP FACTORY"), Some((2, 6)));
        assert_eq!(rules.first_match("GAPSTOW BRIDGE"), None);
    }

    #[test]
    fn higher_priority_rules_win() {
        let rules = RuleSet::new(vec![
            rule(1, RuleKind::Prefix, "ACME", 5, 0),
            rule(2, RuleKind::Regex, "^ACME TACOS", 6, 10),
        ]);
        assert_eq!(rules.first_match("ACME TACOS"), Some((2, 6)));
        assert_eq!(rules.first_match("ACME HARDWARE"), Some((1, 5)));
    }

    #[test]
    fn bad_rules_are_skipped_and_named() {
        let rules = RuleSet::new(vec![
            rule(42, RuleKind::Regex, "(unclosed", 1, 0),
            rule(43, RuleKind::Prefix, "123456789 #12 03/14", 1, 0),
            rule(44, RuleKind::Prefix, "ACME", 5, 0),
        ]);
        let skipped: Vec<i64> = rules.skipped().iter().map(|s| s.id).collect();
        assert_eq!(skipped, vec![42, 43]);
        assert_eq!(rules.first_match("ACME TACOS"), Some((44, 5)));
    }

    #[test]
    fn the_validator_refuses_what_the_resolver_could_not_use() {
        assert!(matches!(
            check_rule(RuleKind::Prefix, "123456789 #12 03/14"),
            Err(RuleProblem::PrefixTooShort { .. })
        ));
        assert_eq!(check_rule(RuleKind::Prefix, " "), Err(RuleProblem::Empty));
        assert_eq!(
            check_rule(RuleKind::Prefix, "a\u{0}b"),
            Err(RuleProblem::ControlCharacter)
        );
        assert_eq!(
            check_rule(RuleKind::Prefix, &"x".repeat(201)),
            Err(RuleProblem::TooLong)
        );
        assert!(matches!(
            check_rule(RuleKind::Regex, "["),
            Err(RuleProblem::InvalidRegex(_))
        ));
        assert_eq!(
            check_rule(RuleKind::Regex, "X*"),
            Err(RuleProblem::MatchesEverything)
        );
        assert_eq!(
            check_rule(RuleKind::Prefix, "joe's diner #12").as_deref(),
            Ok("JOES DINER")
        );
    }
}
