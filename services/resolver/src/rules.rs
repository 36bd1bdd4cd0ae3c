//! Exact aliases and operator rules: the mappings people made, tried before any fuzzy matching.
//!
//! Aliases are keyed by the normalised descriptor. Rules are tried by descending priority (then
//! ascending id): a prefix rule matches when the normalised text starts with the normalised
//! pattern (a plain string prefix, so `MAIN ST HARD` also catches a cut-off `MAIN ST HARDWA`; use
//! a regex rule with `\b` for whole words); a regex rule matches anywhere in the normalised text,
//! case-insensitively.

use crate::error::ResolverError;
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

#[derive(Debug)]
struct CompiledRule {
    id: i64,
    merchant_id: i64,
    matcher: Matcher,
}

/// Rules compiled and sorted into the order they are tried.
#[derive(Debug, Default)]
pub(crate) struct RuleSet {
    rules: Vec<CompiledRule>,
}

impl RuleSet {
    pub fn new(mut rules: Vec<Rule>) -> Result<RuleSet, ResolverError> {
        rules.sort_by(|a, b| b.priority.cmp(&a.priority).then(a.id.cmp(&b.id)));
        let mut compiled = Vec::with_capacity(rules.len());
        for rule in rules {
            let matcher = match rule.kind {
                RuleKind::Prefix => {
                    let prefix = normalize(&rule.pattern).text;
                    if prefix.is_empty() {
                        return Err(ResolverError::EmptyRulePattern { rule_id: rule.id });
                    }
                    Matcher::Prefix(prefix)
                }
                RuleKind::Regex => {
                    if rule.pattern.trim().is_empty() {
                        return Err(ResolverError::EmptyRulePattern { rule_id: rule.id });
                    }
                    let regex = RegexBuilder::new(&rule.pattern)
                        .case_insensitive(true)
                        .size_limit(1 << 20)
                        .build()
                        .map_err(|source| ResolverError::InvalidRuleRegex {
                            rule_id: rule.id,
                            source,
                        })?;
                    Matcher::Regex(regex)
                }
            };
            compiled.push(CompiledRule {
                id: rule.id,
                merchant_id: rule.merchant_id,
                matcher,
            });
        }
        Ok(RuleSet { rules: compiled })
    }

    /// The first matching rule: `(rule id, merchant id)`.
    pub fn first_match(&self, normalized: &str) -> Option<(i64, i64)> {
        self.rules
            .iter()
            .find(|rule| match &rule.matcher {
                Matcher::Prefix(prefix) => normalized.starts_with(prefix.as_str()),
                Matcher::Regex(regex) => regex.is_match(normalized),
            })
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
        ])
        .unwrap_or_default();
        assert_eq!(rules.first_match("MAIN ST HARDWA"), Some((1, 5)));
        assert_eq!(rules.first_match("GAP FACTORY"), Some((2, 6)));
        assert_eq!(rules.first_match("GAPSTOW BRIDGE"), None);
    }

    #[test]
    fn higher_priority_rules_win() {
        let rules = RuleSet::new(vec![
            rule(1, RuleKind::Prefix, "ACME", 5, 0),
            rule(2, RuleKind::Regex, "^ACME TACOS", 6, 10),
        ])
        .unwrap_or_default();
        assert_eq!(rules.first_match("ACME TACOS"), Some((2, 6)));
        assert_eq!(rules.first_match("ACME HARDWARE"), Some((1, 5)));
    }

    #[test]
    fn bad_regex_names_the_rule() {
        let error = RuleSet::new(vec![rule(42, RuleKind::Regex, "(unclosed", 1, 0)]).err();
        assert!(matches!(
            error,
            Some(ResolverError::InvalidRuleRegex { rule_id: 42, .. })
        ));
        assert!(error
            .map(|e| e.to_string())
            .unwrap_or_default()
            .contains("rule 42"));
    }
}
