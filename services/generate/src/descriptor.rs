//! Descriptor noise: how one sale at a merchant turns into the string a bank statement shows.
//!
//! The frequencies follow `research/descriptor-patterns.md`: processor prefixes (`SQ *`,
//! `TST*`, `PAYPAL *`), store and site numbers, bank channel text at either end, card
//! fragments, dates and times, phones and URLs, platform short forms (`AMZN MKTP US*…`),
//! truncation at 22 or 25 characters, city and state suffixes (sometimes glued), upper,
//! mixed and lower case, doubled spaces. The export format belongs to the card's issuer, so
//! one card's rows share a [`Style`]. The brand's own name is never cut below 14 characters.

use crate::util::{push_code, push_digits, Draw};
use crate::world::{BrandModel, FormSuffix};
use altdata_domain::Category;
use rand_chacha::ChaCha8Rng;

/// The statement format of a card's issuer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Upper case, cut at 22 characters (Capital One exports).
    Cut22,
    /// Upper case, merchant field of at most 25 characters, sometimes `CHECKCARD MMDD`.
    Chase,
    /// Upper case, sometimes with an acquirer reference number, MCC or card fragment.
    PlainUpper,
    /// Upper case, a 20-character name field padded with spaces or glued to the city.
    Padded20,
    /// `Mobile Purchase Sign Based MM/DD hh:mma #1234 D5678 …`, before or after the merchant.
    Mobile,
    /// Mixed case merchant, city and state.
    PlainMixed,
    /// `DEBIT CARD PURCHASE - …`.
    DebitCard,
    /// `Purchase authorized on MM/DD … S<15 digits> Card 1234`.
    Authorized,
    /// Lower-case credit-union format `xx1234 dda purchase … <trace> <trace>`.
    Dda,
}

impl Style {
    const WEIGHTED: [(Style, u32); 9] = [
        (Style::Cut22, 17),
        (Style::Chase, 20),
        (Style::PlainUpper, 8),
        (Style::Padded20, 4),
        (Style::Mobile, 11),
        (Style::PlainMixed, 24),
        (Style::DebitCard, 5),
        (Style::Authorized, 3),
        (Style::Dda, 8),
    ];

    /// A style drawn from a uniform number in [0, 1).
    pub fn from_unit(u: f64) -> Style {
        let mut target = (u * 100.0) as u32;
        for (style, weight) in Style::WEIGHTED {
            if target < weight {
                return style;
            }
            target -= weight;
        }
        Style::PlainMixed
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Case {
    Upper,
    Title,
    Lower,
}

/// Who the sale was with.
pub(crate) enum MerchantName<'a> {
    Brand(&'a BrandModel),
    Local(&'a str),
}

/// The facts of one sale that a descriptor may show.
pub(crate) struct DescriptorInput<'a> {
    pub merchant: MerchantName<'a>,
    pub category: Category,
    /// Store number of the location (always set; shown only sometimes).
    pub store_number: u32,
    pub city: &'a str,
    pub state: &'a str,
    pub style: Style,
    pub last4: &'a [u8],
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub year: i32,
    pub refund: bool,
    pub recurring: bool,
    pub mcc: &'a str,
    /// A per-row hash for codes and references.
    pub noise: u64,
}

/// Reusable buffers, so writing a descriptor allocates nothing.
#[derive(Default)]
pub(crate) struct DescriptorWriter {
    core: String,
    out: String,
}

impl DescriptorWriter {
    /// Writes the descriptor of one sale and returns it.
    pub fn write(&mut self, input: &DescriptorInput<'_>, rng: &mut ChaCha8Rng) -> &str {
        let case = match input.style {
            Style::Cut22 | Style::Chase | Style::PlainUpper | Style::Padded20 => Case::Upper,
            Style::Dda => Case::Lower,
            _ => Case::Title,
        };
        let privacy = match &input.merchant {
            MerchantName::Brand(brand) if brand.card_not_present => rng.chance(0.05),
            _ => rng.chance(0.02),
        };
        let case = if privacy { Case::Title } else { case };
        let (brand_start, brand_len) = self.write_core(input, case, rng);
        let out = &mut self.out;
        out.clear();
        let core = self.core.as_str();
        if privacy {
            // A virtual card service wraps the descriptor and keeps about 15 characters.
            out.push_str("Pwp ");
            let keep = 15.max(brand_start + brand_len.min(10)).min(core.len());
            out.push_str(core[..keep].trim_end());
            out.push_str(" Privacycom TN: ");
            push_digits(out, input.noise % 1_000_000, 6);
            return &self.out;
        }
        let protect = |offset: usize| offset + brand_start + brand_len.min(14);
        match input.style {
            Style::Cut22 => {
                out.push_str(core);
                push_location(out, input, Case::Upper, true, rng);
                truncate_protected(out, 22, protect(0));
            }
            Style::Chase => {
                let offset = if rng.chance(0.07) {
                    out.push_str("CHECKCARD ");
                    push_digits(out, u64::from(input.month * 100 + input.day), 4);
                    out.push(' ');
                    out.len()
                } else {
                    0
                };
                let field_end = (offset + 25).max(protect(offset)).min(offset + core.len());
                out.push_str(&core[..field_end - offset]);
                trim_end_in_place(out);
                if rng.chance(0.06) && !input.state.is_empty() {
                    out.push(' ');
                    push_digits(out, u64::from(input.month), 2);
                    out.push('/');
                    push_digits(out, u64::from(input.day), 2);
                    out.push_str(" PURCHASE ");
                    out.push_str(input.state);
                } else {
                    push_location(out, input, Case::Upper, true, rng);
                }
            }
            Style::PlainUpper => {
                out.push_str(core);
                push_location(out, input, Case::Upper, false, rng);
                let extra = rng.unit();
                if extra < 0.07 {
                    out.push_str(" DATE ");
                    push_date(out, input, true);
                    out.push(' ');
                    push_digits(out, 24_000_000_000 + input.noise % 1_000_000_000, 11);
                    push_digits(out, (input.noise >> 20) % 1_000_000_000_000, 12);
                } else if extra < 0.13 && !input.mcc.is_empty() {
                    out.push(' ');
                    out.push_str(input.mcc);
                } else if extra < 0.19 {
                    out.push_str(" %% CARD ");
                    push_digits(out, 10 + input.noise % 20, 2);
                    out.push_str(" #");
                    push_last4(out, input.last4);
                } else if extra < 0.23 {
                    // Channel text after the merchant as well as before it.
                    out.push_str(" POS PURCHASE");
                } else if extra < 0.26 {
                    out.insert_str(0, "POS DEBIT ");
                }
            }
            Style::Padded20 => {
                let field_end = 20.max(protect(0)).min(core.len());
                out.push_str(&core[..field_end]);
                while out.len() < 20 {
                    out.push(' ');
                }
                if !input.state.is_empty() {
                    if !input.city.is_empty() {
                        push_city(out, input.city, Case::Upper, 13);
                    }
                    out.push(' ');
                    out.push_str(input.state);
                }
                trim_end_in_place(out);
            }
            Style::Mobile => {
                let channel = match rng.below(20) {
                    0..=11 => "Mobile Purchase Sign Based",
                    12..=14 => "Mobile Purchase PIN Based",
                    15..=16 => "Debit PIN Purchase",
                    _ => "Debit Card Purchase",
                };
                let after = rng.chance(0.3);
                if !after {
                    push_mobile_channel(out, channel, input, input.noise);
                    out.push(' ');
                }
                out.push_str(core);
                push_location(out, input, Case::Title, false, rng);
                if after {
                    out.push(' ');
                    push_mobile_channel(out, channel, input, input.noise);
                } else if rng.chance(0.5) {
                    out.push(' ');
                    push_digits(out, (input.year % 100) as u64, 2);
                }
            }
            Style::PlainMixed => {
                if input.refund && rng.chance(0.4) {
                    out.push_str("Purchase Return - ");
                } else if input.recurring && rng.chance(0.4) {
                    out.push_str("Recurring Payment - ");
                } else if rng.chance(0.04) {
                    out.push_str("Purchase - ");
                }
                out.push_str(core);
                push_location(out, input, Case::Title, false, rng);
            }
            Style::DebitCard => {
                out.push_str(if rng.chance(0.5) {
                    "DEBIT CARD PURCHASE - "
                } else {
                    "Debit Card Purchase "
                });
                out.push_str(core);
                push_location(out, input, Case::Title, false, rng);
            }
            Style::Authorized => {
                out.push_str("Purchase authorized on ");
                push_digits(out, u64::from(input.month), 2);
                out.push('/');
                push_digits(out, u64::from(input.day), 2);
                out.push(' ');
                out.push_str(core);
                push_location(out, input, Case::Title, false, rng);
                out.push_str(" S");
                push_digits(
                    out,
                    300_000_000_000_000 + input.noise % 100_000_000_000_000,
                    15,
                );
                out.push_str(" Card ");
                push_last4(out, input.last4);
            }
            Style::Dda => {
                out.push_str("xx");
                push_last4(out, input.last4);
                out.push_str(if input.refund {
                    " dda return "
                } else if input.recurring {
                    " recur purchase "
                } else if rng.chance(0.3) {
                    " pos purchase "
                } else {
                    " dda purchase "
                });
                out.push_str(core);
                push_location(out, input, Case::Lower, false, rng);
                out.push(' ');
                push_digits(out, input.noise % 1_000_000, 6);
                out.push(' ');
                push_digits(out, (input.noise >> 24) % 1_000_000_000, 9);
            }
        }
        if rng.chance(0.03) {
            double_a_space(out, rng);
        }
        &self.out
    }

    /// Writes `[prefix][name][store]` into `core` in the given case; returns where the
    /// brand's own name starts and how long it is.
    fn write_core(
        &mut self,
        input: &DescriptorInput<'_>,
        case: Case,
        rng: &mut ChaCha8Rng,
    ) -> (usize, usize) {
        let core = &mut self.core;
        core.clear();
        let category = input.category;
        let food = matches!(
            category,
            Category::CoffeeShop | Category::Restaurant | Category::FastFood
        );
        let (name, suffix, platform, url) = match &input.merchant {
            MerchantName::Brand(brand) => {
                let form =
                    &brand.forms[crate::util::pick_cumulative(&brand.form_cumulative, rng.unit())];
                let platform = !matches!(form.suffix, FormSuffix::None) || form.text.contains('*');
                let use_url = brand.card_not_present
                    && !platform
                    && form_is_first(brand, form)
                    && rng.chance(0.2);
                match (&brand.url, use_url) {
                    (Some(url), true) => (url.as_str(), FormSuffix::None, false, true),
                    _ => (form.text.as_str(), form.suffix, platform, false),
                }
            }
            MerchantName::Local(name) => (*name, FormSuffix::None, false, false),
        };
        let local = matches!(input.merchant, MerchantName::Local(_));
        if !platform && !url {
            let u = rng.unit();
            let prefix = if local {
                match category {
                    Category::Restaurant if u < 0.16 => {
                        Some(if rng.chance(0.7) { "TST* " } else { "TST*" })
                    }
                    _ if u < 0.16 => None,
                    _ if u < 0.34 => Some("SQ *"),
                    _ if u < 0.36 => Some("IN *"),
                    _ if u < 0.38 => Some(if category == Category::Apparel {
                        "SP "
                    } else {
                        "PAYPAL *"
                    }),
                    _ => None,
                }
            } else if food {
                match category {
                    Category::Restaurant if u < 0.05 => Some("TST* "),
                    _ if u < 0.065 => Some(if rng.chance(0.8) { "SQ *" } else { "SQU*SQ *" }),
                    _ => None,
                }
            } else if is_web(category) {
                match u {
                    _ if u < 0.03 => Some("PAYPAL *"),
                    _ if u < 0.05 => Some("PP*"),
                    _ if u < 0.055 && category == Category::Ecommerce => Some("SP "),
                    _ => None,
                }
            } else {
                match category {
                    Category::Entertainment if u < 0.03 => {
                        Some(if rng.chance(0.5) { "TCKTWEB*" } else { "FSP*" })
                    }
                    Category::Other | Category::Apparel if u < 0.02 => Some("SQ *"),
                    Category::Other if u < 0.03 => Some("IN *"),
                    _ => None,
                }
            };
            if let Some(prefix) = prefix {
                push_cased(core, prefix, case);
            }
        }
        let brand_start = core.len();
        push_cased(core, name, case);
        match suffix {
            FormSuffix::None => {}
            FormSuffix::Code(len) => {
                // Order codes keep their upper case even in mixed-case exports, like the real ones.
                if case == Case::Lower {
                    let start = core.len();
                    push_code(core, input.noise, len);
                    core[start..].make_ascii_lowercase();
                } else {
                    push_code(core, input.noise, len);
                }
            }
            FormSuffix::Product(products) => {
                let product = products[(input.noise % products.len() as u64) as usize];
                push_cased(core, product, case);
            }
            FormSuffix::StoreCode(len) => {
                let start = core.len();
                for k in 0..len {
                    let letter = b'A' + ((input.noise >> (5 * k)) % 26) as u8;
                    core.push(char::from(letter));
                }
                if case == Case::Lower {
                    core[start..].make_ascii_lowercase();
                }
                core.push(' ');
                push_digits(core, 10_000 + u64::from(input.store_number), 5);
            }
        }
        // Hotel chains often print the word after the brand (`MARRIOTT HOTELS HOUSTON TX`).
        if category == Category::Hotel
            && !platform
            && name.split(' ').count() <= 2
            && rng.chance(0.15)
        {
            push_cased(core, " HOTELS", case);
        }
        let brand_len = core.len() - brand_start;
        let in_person = !input.recurring && !is_web(category) && !platform && !url;
        if in_person && !input.state.is_empty() {
            let u = rng.unit();
            let number = input.store_number;
            if category == Category::GasStation {
                if u < 0.15 {
                    // A 7-digit site id with leading zeros (`CHEVRON 0095006`).
                    core.push(' ');
                    push_digits(core, u64::from(number) * 7 % 1_000_000, 7);
                } else if u < 0.6 {
                    core.push(' ');
                    push_digits(core, 10_000_000 + u64::from(number) * 7919 % 90_000_000, 8);
                } else if u < 0.8 {
                    core.push_str(" #");
                    push_digits(core, u64::from(number), 5);
                }
            } else if local {
                if u < 0.04 {
                    core.push_str(" #");
                    push_digits(core, u64::from(number % 9 + 1), 1);
                }
            } else if category == Category::FastFood && u < 0.15 {
                core.push_str(if case == Case::Lower { " f" } else { " F" });
                push_digits(core, u64::from(number), 4);
            } else if u < 0.45 {
                core.push_str(" #");
                push_digits(
                    core,
                    u64::from(number),
                    if number.is_multiple_of(3) { 5 } else { 4 },
                );
            } else if u < 0.49 {
                push_cased(core, " STORE ", case);
                push_digits(core, u64::from(number % 1000), 1);
            } else if u < 0.55 {
                core.push(' ');
                push_digits(core, u64::from(number), 4);
            } else if u < 0.61 {
                // A long store or terminal id, 8 to 13 digits.
                core.push(' ');
                let digits = 8 + (input.noise % 6) as usize;
                push_digits(core, input.noise % 10u64.pow(digits as u32), digits);
            }
        }
        (brand_start, brand_len)
    }
}

fn is_web(category: Category) -> bool {
    crate::world::is_card_not_present(category)
}

fn form_is_first(brand: &BrandModel, form: &crate::world::NameForm) -> bool {
    brand
        .forms
        .first()
        .is_some_and(|first| std::ptr::eq(first, form))
}

/// Appends the location the style shows: ` CITY ST`, ` CITYST` (glued), ` ST`, or for
/// card-not-present sales a phone or URL and the billing state.
fn push_location(
    out: &mut String,
    input: &DescriptorInput<'_>,
    case: Case,
    short_city: bool,
    rng: &mut ChaCha8Rng,
) {
    if input.state.is_empty() {
        return;
    }
    let state_case = if case == Case::Lower {
        Case::Lower
    } else {
        Case::Upper
    };
    let remote = match &input.merchant {
        MerchantName::Brand(brand) => brand.card_not_present || input.recurring,
        MerchantName::Local(_) => false,
    };
    if remote {
        if let MerchantName::Brand(brand) = &input.merchant {
            let u = rng.unit();
            if u < 0.35 {
                out.push(' ');
                out.push_str(&brand.phone);
            } else if u < 0.5 {
                if let Some(url) = &brand.url {
                    out.push(' ');
                    push_cased(out, url, case);
                }
            } else if u < 0.7 {
                return;
            }
        }
        out.push(' ');
        push_cased(out, input.state, state_case);
        return;
    }
    let u = rng.unit();
    if u < 0.12 || input.city.is_empty() {
        out.push(' ');
    } else {
        // A fixed-width name field runs straight into the city (`STARBUCKSSEATTLE WA`).
        if !(0.155..0.185).contains(&u) {
            out.push(' ');
        }
        push_city(out, input.city, case, if short_city { 13 } else { 20 });
        if u >= 0.155 {
            out.push(' ');
        }
    }
    push_cased(out, input.state, state_case);
}

fn push_city(out: &mut String, city: &str, case: Case, max: usize) {
    let cut = &city[..city.len().min(max)];
    push_cased(out, cut.trim_end(), case);
}

fn push_mobile_channel(out: &mut String, channel: &str, input: &DescriptorInput<'_>, noise: u64) {
    out.push_str(channel);
    out.push(' ');
    push_digits(out, u64::from(input.month), 2);
    out.push('/');
    push_digits(out, u64::from(input.day), 2);
    out.push(' ');
    let hour12 = match input.hour % 12 {
        0 => 12,
        h => h,
    };
    push_digits(out, u64::from(hour12), 2);
    out.push(':');
    push_digits(out, u64::from(input.minute), 2);
    out.push(if input.hour < 12 { 'a' } else { 'p' });
    out.push_str(" #");
    push_last4(out, input.last4);
    out.push_str(" D");
    push_digits(out, (noise >> 30) % 10_000, 4);
}

fn push_date(out: &mut String, input: &DescriptorInput<'_>, with_year: bool) {
    push_digits(out, u64::from(input.month), 2);
    out.push('/');
    push_digits(out, u64::from(input.day), 2);
    if with_year {
        out.push('/');
        push_digits(out, (input.year % 100) as u64, 2);
    }
}

fn push_last4(out: &mut String, last4: &[u8]) {
    for &digit in last4 {
        out.push(char::from(digit));
    }
}

/// Appends ASCII text in a case: `Title` capitalises the first letter of each word.
fn push_cased(out: &mut String, text: &str, case: Case) {
    match case {
        Case::Upper => out.push_str(text),
        Case::Lower => {
            let start = out.len();
            out.push_str(text);
            out[start..].make_ascii_lowercase();
        }
        Case::Title => {
            let starts_word = |c: char| matches!(c, ' ' | '*' | '/' | '-' | '&');
            let mut word_start = out.chars().next_back().is_none_or(starts_word);
            for c in text.chars() {
                if c.is_ascii_alphabetic() {
                    out.push(if word_start {
                        c.to_ascii_uppercase()
                    } else {
                        c.to_ascii_lowercase()
                    });
                    word_start = false;
                } else {
                    out.push(c);
                    word_start = starts_word(c);
                }
            }
        }
    }
}

/// Cuts the text to `limit` characters, but never before `keep` (the end of the brand's
/// protected part), then drops trailing spaces.
fn truncate_protected(out: &mut String, limit: usize, keep: usize) {
    let cut = limit.max(keep);
    if out.len() > cut && out.is_char_boundary(cut) {
        out.truncate(cut);
    }
    trim_end_in_place(out);
}

fn trim_end_in_place(out: &mut String) {
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
}

/// Fixed-width padding shows up as two spaces where one belongs.
fn double_a_space(out: &mut String, rng: &mut ChaCha8Rng) {
    let spaces = out.bytes().filter(|&b| b == b' ').count();
    if spaces == 0 {
        return;
    }
    let target = rng.below(spaces as u32) as usize;
    if let Some((index, _)) = out.match_indices(' ').nth(target) {
        out.insert(index, ' ');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_case_capitalises_each_word() {
        let mut out = String::new();
        push_cased(&mut out, "SQ *JOE'S DINER #12", Case::Title);
        assert_eq!(out, "Sq *Joe's Diner #12");
    }

    #[test]
    fn truncation_keeps_the_protected_part() {
        let mut out = "PAYPAL *SUPERLONGBRANDNAME SEATTLE WA".to_owned();
        truncate_protected(&mut out, 22, 8 + 14);
        assert_eq!(out, "PAYPAL *SUPERLONGBRAND");
        let mut out = "PAYPAL *SUPERLONGBRANDNAME SEATTLE WA".to_owned();
        truncate_protected(&mut out, 10, 8 + 14);
        assert_eq!(out, "PAYPAL *SUPERLONGBRAND");
    }

    #[test]
    fn style_weights_sum_to_one_hundred() {
        assert_eq!(Style::WEIGHTED.iter().map(|(_, w)| w).sum::<u32>(), 100);
        assert_eq!(Style::from_unit(0.0), Style::Cut22);
        assert_eq!(Style::from_unit(0.9999), Style::Dda);
    }
}
