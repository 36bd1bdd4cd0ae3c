//! The category of a shop whose brand is not known: from the merchant category code the card
//! network prints (ISO 18245), refined by category words in the descriptor (`CAFE`, `COFFEE`,
//! `TAQUERIA`, `PHARMACY`, …), since one code can cover several of our categories (5814 is
//! both coffee shops and fast food). Without a code, words alone decide, with less confidence.
//!
//! A guess at or above [`CATEGORY_THRESHOLD`] counts the row's spend in its category under
//! that category's "unattributed" merchant; below it the row is only held for review.

use crate::vocabulary::{kind_of_word, KIND_WORDS};
use altdata_domain::Category;

/// The confidence from which a guessed category is trusted to count spend.
pub const CATEGORY_THRESHOLD: f32 = 0.8;

/// A category guessed for a descriptor whose brand is not known.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CategoryGuess {
    pub category: Category,
    /// 0 to 1.
    pub confidence: f32,
    /// What decided: `mcc`, `mcc+words` or `words`.
    pub why: &'static str,
}

/// Guesses the category of a normalised descriptor with its MCC (possibly empty).
pub fn guess_category(normalized: &str, mcc: &str) -> Option<CategoryGuess> {
    let from_words = category_of_words(normalized);
    match (category_of_mcc(mcc.trim()), from_words) {
        (Some(McCategory::Ambiguous(options)), Some(word)) if options.contains(&word) => {
            Some(CategoryGuess {
                category: word,
                confidence: 0.95,
                why: "mcc+words",
            })
        }
        (Some(McCategory::Ambiguous(options)), _) => Some(CategoryGuess {
            category: options[0],
            confidence: 0.85,
            why: "mcc",
        }),
        (Some(McCategory::Sure(category)), Some(word)) if word == category => Some(CategoryGuess {
            category,
            confidence: 0.97,
            why: "mcc+words",
        }),
        (Some(McCategory::Sure(category)), _) => Some(CategoryGuess {
            category,
            confidence: 0.9,
            why: "mcc",
        }),
        (None, Some(word)) => Some(CategoryGuess {
            category: word,
            confidence: 0.8,
            why: "words",
        }),
        (None, None) => None,
    }
}

/// What a merchant category code says.
enum McCategory {
    Sure(Category),
    /// Several categories; the first is the most common.
    Ambiguous(&'static [Category]),
}

fn category_of_mcc(mcc: &str) -> Option<McCategory> {
    use Category::*;
    use McCategory::{Ambiguous, Sure};
    let code: u32 = mcc.parse().ok().filter(|_| mcc.len() == 4)?;
    Some(match code {
        3000..=3299 | 4511 => Sure(Airline),
        3501..=3999 | 7011 => Sure(Hotel),
        4111 | 4112 | 4131 | 4784 => Sure(Transit),
        4121 => Sure(Rideshare),
        4812 | 4814 => Sure(Telecom),
        4899 => Ambiguous(&[Streaming, Telecom]),
        4900 => Sure(Utility),
        5200 | 5211 | 5231 | 5251 | 5261 => Sure(HomeImprovement),
        5300 | 5310 | 5311 | 5331 | 5399 => Sure(GeneralMerchandise),
        5411 | 5422 | 5441 | 5451 | 5462 => Sure(Grocery),
        5499 => Ambiguous(&[Grocery, CoffeeShop]),
        5541 | 5542 | 5983 => Sure(GasStation),
        5611 | 5621 | 5631 | 5641 | 5651 | 5655 | 5661 | 5691 | 5697 | 5698 | 5699 => Sure(Apparel),
        5812 => Ambiguous(&[Restaurant, CoffeeShop]),
        5813 => Sure(Restaurant),
        // A shop outside the catalogue coded 5814 is more often a local restaurant than fast
        // food (the chains are in the catalogue).
        5814 => Ambiguous(&[Restaurant, FastFood, CoffeeShop]),
        5815 | 5816 | 5818 => Ambiguous(&[Streaming, Software]),
        5817 | 5734 | 7372 => Sure(Software),
        5912 => Sure(Pharmacy),
        5964..=5969 => Sure(Ecommerce),
        7832 | 7841 | 7911 | 7922 | 7929 | 7932 | 7933 | 7991 | 7994 | 7996 | 7997 | 7998
        | 7999 => Sure(Entertainment),
        4722 => Ambiguous(&[Hotel, Airline]),
        7033 | 7012 => Sure(Hotel),
        7523 => Sure(Transit),
        5944 | 5948 | 5949 => Sure(Apparel),
        5941 | 5942 | 5943 | 5945 | 5947 | 5970 | 5992 | 5995 | 5999 => Sure(GeneralMerchandise),
        5712 | 5713 | 5714 | 5719 | 5722 => Sure(HomeImprovement),
        5921 | 5993 | 742 | 6300 | 4214 | 7210 | 7211 | 7216 | 7230 | 7297 | 7298 | 7299 | 7538
        | 7542 | 8011 | 8021 | 8041 | 8042 | 8043 | 8049 | 8050 | 8062 | 8099 | 8999 => Sure(Other),
        _ => return None,
    })
}

/// Words whose category for a local shop differs from the chain trade they share in
/// `KIND_WORDS`: a local pizza, taco or burger place, or a cafe, is a restaurant (a sit-down
/// place far more often than a counter), and liquor stores count as `other`. Calibrated on the
/// calibration half of the real descriptors.
const LOCAL_SHOP_WORDS: [(&str, Category); 14] = [
    ("PIZZA", Category::Restaurant),
    ("TACO", Category::Restaurant),
    ("TACOS", Category::Restaurant),
    ("BURGER", Category::Restaurant),
    ("BURGERS", Category::Restaurant),
    ("CAFE", Category::Restaurant),
    ("CAFFE", Category::Restaurant),
    ("BAGELS", Category::FastFood),
    ("LIQUOR", Category::Other),
    ("LIQUORS", Category::Other),
    ("WINE", Category::Other),
    ("WINES", Category::Other),
    ("SPIRITS", Category::Other),
    ("SPIRIT", Category::Other),
];

/// More words that only tell the category of an unknown shop.
const MORE_CATEGORY_WORDS: [(&str, Category); 29] = [
    ("LAUNDROMAT", Category::Other),
    ("LOCKSMITH", Category::Other),
    ("TAILOR", Category::Other),
    ("TAILORS", Category::Other),
    ("ALTERATIONS", Category::Other),
    ("COFFE", Category::CoffeeShop),
    ("ROASTER", Category::CoffeeShop),
    ("JEWELERS", Category::Apparel),
    ("JEWELER", Category::Apparel),
    ("JEWELRY", Category::Apparel),
    ("LINGERIE", Category::Apparel),
    ("VET", Category::Other),
    ("ANIMAL", Category::Other),
    ("CHIRO", Category::Other),
    ("CHIROPRACTIC", Category::Other),
    ("DERMATOLOGY", Category::Other),
    ("MASSAGE", Category::Other),
    ("CIGAR", Category::Other),
    ("SMOKE", Category::Other),
    ("VAPE", Category::Other),
    ("BEAUTY", Category::Other),
    ("MOVING", Category::Other),
    ("ENTERTAINMENT", Category::Entertainment),
    ("EVENTS", Category::Entertainment),
    ("ESCAPE", Category::Entertainment),
    ("CONVENTION", Category::Entertainment),
    ("CAVERNS", Category::Entertainment),
    ("SHOOTING", Category::Entertainment),
    ("CLUB", Category::Entertainment),
];

/// The category the words of a normalised descriptor name: the first word that names one; or
/// else the last word cut short at the network's field width (`PINE RIDGE BOUTIQU`,
/// `MARKET ST LOCKSMI`), when every category word it starts names the same category.
fn category_of_words(normalized: &str) -> Option<Category> {
    let whole = normalized.split(' ').find_map(|word| {
        LOCAL_SHOP_WORDS
            .iter()
            .chain(MORE_CATEGORY_WORDS.iter())
            .find(|(w, _)| *w == word)
            .map(|&(_, category)| category)
            .or_else(|| kind_of_word(word))
    });
    whole.or_else(|| category_of_cut_word(normalized.rsplit(' ').next()?))
}

/// The one category of the category words that `cut` (5 letters or more) starts.
fn category_of_cut_word(cut: &str) -> Option<Category> {
    if cut.len() < 5 {
        return None;
    }
    let mut categories = LOCAL_SHOP_WORDS
        .iter()
        .chain(MORE_CATEGORY_WORDS.iter())
        .chain(KIND_WORDS.iter())
        .filter(|(word, _)| word.len() > cut.len() && word.starts_with(cut))
        .map(|&(_, category)| category);
    let first = categories.next()?;
    categories.all(|c| c == first).then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_decide_between_the_categories_of_one_code() {
        let cafe = guess_category("BLUE BOTTLE COFFEE", "5814");
        assert_eq!(cafe.map(|g| g.category), Some(Category::CoffeeShop));
        let subs = guess_category("JOES SUBS", "5814");
        assert_eq!(subs.map(|g| g.category), Some(Category::FastFood));
        // A local burger place, or a shop coded 5814 with no word, is a restaurant.
        let burger = guess_category("JOES BURGERS", "5814");
        assert_eq!(burger.map(|g| g.category), Some(Category::Restaurant));
        let unknown = guess_category("JOES", "5814");
        assert_eq!(unknown.map(|g| g.category), Some(Category::Restaurant));
    }

    #[test]
    fn a_category_word_cut_at_the_end_of_the_field_still_tells() {
        let category = |text: &str| guess_category(text, "").map(|g| g.category);
        assert_eq!(category("PINE RIDGE BOUTIQU"), Some(Category::Apparel));
        assert_eq!(category("MARKET ST LOCKSMI"), Some(Category::Other));
        assert_eq!(category("NORAS SMOKEHOUS"), Some(Category::Restaurant));
        // A whole word decides; a cut word of under 5 letters is too short to tell.
        assert_eq!(category("ACME REST"), Some(Category::Restaurant));
        assert_eq!(category("ACME BURG"), None);
        assert_eq!(category("ACME"), None);
    }

    #[test]
    fn words_alone_are_less_sure_than_a_code() {
        let words = guess_category("CORNER PHARMACY", "").map(|g| g.confidence);
        let code = guess_category("CORNER", "5912").map(|g| g.confidence);
        assert!(words < code);
        assert_eq!(guess_category("ACME", ""), None);
        assert_eq!(guess_category("ACME", "12"), None);
    }
}
