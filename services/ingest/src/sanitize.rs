//! The edge of ingest: what a provider's text must lose before anything is written or
//! published. Every string that leaves the row path for a table, an event, a Msg-Id or a log
//! has been through here (rejects, held rows, reasons, the file's error).
//!
//! - **Control characters** (C0 with NUL, DEL, C1) become spaces: PostgreSQL refuses NUL in
//!   text, and a stray control byte carries no meaning in a descriptor. A transaction id is
//!   not cleaned (that would change the row's identity): the validator rejects it instead.
//! - **Card numbers** (PANs) are masked wherever they appear: 13 to 19 digits, written plain
//!   or in groups split by single spaces or dashes (`4111 1111 1111 1111`,
//!   `4111-1111-1111-1111`), that pass the Luhn check. The number becomes one word of `X`s
//!   ending in its last four digits, `XXXXXXXXXXXX1111`: `X` because the resolver already
//!   reads `X`-masked digits as a number (a `*` would read as the end of a facilitator's
//!   name), and one word so that the text reads as it did with one number in it. The four
//!   digits that end a mask (after nine or more `X`s) are never read as part of a number, so
//!   masking twice changes nothing.

use std::borrow::Cow;

/// Fewest and most digits of a card number (ISO/IEC 7812).
const PAN_DIGITS: std::ops::RangeInclusive<usize> = 13..=19;

/// `text` with control characters made spaces and card numbers masked.
pub fn for_storage(text: &str) -> Cow<'_, str> {
    match clean_controls(text) {
        Cow::Borrowed(clean) => mask_pans(clean),
        Cow::Owned(clean) => Cow::Owned(mask_pans(&clean).into_owned()),
    }
}

/// Whether `text` holds a control character (C0, DEL or C1: `char::is_control`), read as
/// bytes because every field of every row is asked.
pub fn has_control(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().any(|(at, &byte)| {
        // C1 is U+0080..U+009F: 0xC2 then 0x80..=0x9F in UTF-8.
        byte < 0x20
            || byte == 0x7f
            || (byte == 0xc2 && bytes.get(at + 1).is_some_and(|next| *next <= 0x9f))
    })
}

/// `text` with every control character (C0 with NUL, DEL, C1) replaced by a space.
pub fn clean_controls(text: &str) -> Cow<'_, str> {
    if !has_control(text) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect(),
    )
}

/// Whether `text` holds a card number (see the module's documentation).
pub fn has_pan(text: &str) -> bool {
    matches!(mask_pans(text), Cow::Owned(_))
}

/// `text` with every card number replaced by `X`s and its last four digits.
pub fn mask_pans(text: &str) -> Cow<'_, str> {
    // Most fields hold fewer digits than the shortest card number: nothing to look at.
    if text.bytes().filter(u8::is_ascii_digit).count() < *PAN_DIGITS.start() {
        return Cow::Borrowed(text);
    }
    let groups = digit_groups(text);
    let masked = masked_groups(text, &groups);
    if !masked.iter().any(|&m| m) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut index = 0;
    while index < groups.len() {
        if !masked[index] {
            index += 1;
            continue;
        }
        // A span of masked groups, consecutive in one sequence: one masked word.
        let first = index;
        while index + 1 < groups.len() && masked[index + 1] && groups[index + 1].joined {
            index += 1;
        }
        let (start, end) = (groups[first].start, groups[index].end);
        out.push_str(&text[copied..start]);
        out.push_str(&mask_last4(&text[start..end]));
        copied = end;
        index += 1;
    }
    out.push_str(&text[copied..]);
    Cow::Owned(out)
}

/// `X` for every digit but the last four, which stay; separators go: `4111 1111 1111 1111`
/// → `XXXXXXXXXXXX1111`. Any other text keeps its last four characters the same way.
pub fn mask_last4(text: &str) -> String {
    let kept: Vec<char> = text
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .filter(|c| !c.is_control())
        .collect();
    let hidden = kept.len().saturating_sub(4);
    let mut out = "X".repeat(hidden);
    out.extend(&kept[hidden..]);
    out
}

/// A run of ASCII digits at `start..end`; `joined` when a single space or dash links it to
/// the group before it.
#[derive(Debug, Clone, Copy)]
struct DigitGroup {
    start: usize,
    end: usize,
    joined: bool,
}

/// `X`s before the last four digits of the shortest mask.
const MASK_XS: usize = *PAN_DIGITS.start() - 4;

fn digit_groups(text: &str) -> Vec<DigitGroup> {
    let bytes = text.as_bytes();
    let mut groups: Vec<DigitGroup> = Vec::new();
    let mut index = 0;
    while index < bytes.len() {
        if !bytes[index].is_ascii_digit() {
            index += 1;
            continue;
        }
        let start = index;
        while index < bytes.len() && bytes[index].is_ascii_digit() {
            index += 1;
        }
        let ends_a_mask =
            start >= MASK_XS && bytes[start - MASK_XS..start].iter().all(|&b| b == b'X');
        if ends_a_mask {
            continue;
        }
        let joined = groups.last().is_some_and(|previous| {
            start == previous.end + 1 && matches!(bytes[previous.end], b' ' | b'-')
        });
        groups.push(DigitGroup {
            start,
            end: index,
            joined,
        });
    }
    groups
}

/// Which groups belong to a card number: every window of consecutive joined groups holding
/// 13 to 19 digits that passes the Luhn check marks its groups. A window starts and ends on a
/// group boundary, so one number printed beside another (`… 1111 1111 0314`) is still found.
fn masked_groups(text: &str, groups: &[DigitGroup]) -> Vec<bool> {
    let mut masked = vec![false; groups.len()];
    for first in 0..groups.len() {
        let mut digits = 0;
        for last in first..groups.len() {
            if last > first && !groups[last].joined {
                break;
            }
            digits += groups[last].end - groups[last].start;
            if digits > *PAN_DIGITS.end() {
                break;
            }
            let window = &text[groups[first].start..groups[last].end];
            if PAN_DIGITS.contains(&digits) && luhn::valid(window) {
                masked[first..=last].iter_mut().for_each(|m| *m = true);
            }
        }
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn masked(text: &str) -> String {
        mask_pans(text).into_owned()
    }

    #[test]
    fn a_plain_card_number_keeps_its_last_four() {
        assert_eq!(
            masked("ZQXV PAYMENT 4111111111111111"),
            "ZQXV PAYMENT XXXXXXXXXXXX1111"
        );
    }

    #[test]
    fn spaced_dashed_and_mixed_card_numbers_are_masked() {
        assert_eq!(
            masked("STARBUCKS 4111 1111 1111 1111 SEATTLE WA"),
            "STARBUCKS XXXXXXXXXXXX1111 SEATTLE WA"
        );
        assert_eq!(masked("4111-1111-1111-1111"), "XXXXXXXXXXXX1111");
        assert_eq!(masked("PAY 4111-1111 1111-1111."), "PAY XXXXXXXXXXXX1111.");
        // Amex groups 4-6-5.
        assert_eq!(masked("AMEX 3782 822463 10005"), "AMEX XXXXXXXXXXX0005");
    }

    #[test]
    fn thirteen_sixteen_and_nineteen_digits_are_card_numbers() {
        assert_eq!(masked("4222222222222"), "XXXXXXXXX2222");
        assert_eq!(masked("card 5555555555554444"), "card XXXXXXXXXXXX4444");
        assert_eq!(masked("6011000990139424"), "XXXXXXXXXXXX9424");
        assert_eq!(masked("x4000000000000000006y"), "xXXXXXXXXXXXXXXX0006y");
    }

    #[test]
    fn numbers_that_are_no_card_numbers_stay() {
        // A store number, a phone number, a 16-digit reference that fails Luhn, 20+ digits.
        for text in [
            "STARBUCKS STORE #12345 SEATTLE WA",
            "SPOTIFY 1-877-778-1161",
            "REF 4111111111111112",
            "ARN 24012345678901234567890",
            "4111 1111  1111 1111",
            "",
        ] {
            assert_eq!(mask_pans(text), Cow::Borrowed(text), "{text}");
        }
    }

    #[test]
    fn a_card_number_beside_other_digits_is_still_found() {
        assert_eq!(
            masked("PAYMENT 4111 1111 1111 1111 0314"),
            "PAYMENT XXXXXXXXXXXX1111 0314"
        );
        assert_eq!(
            masked("1234 4111 1111 1111 1111"),
            "1234 XXXXXXXXXXXX1111",
            "the window that passes is the card number"
        );
    }

    #[test]
    fn control_characters_become_spaces() {
        assert_eq!(
            clean_controls("STAR\0BUCKS\tWA\u{7f}\u{85}"),
            "STAR BUCKS WA  "
        );
        assert_eq!(clean_controls("CAFÉ"), Cow::Borrowed("CAFÉ"));
        assert_eq!(for_storage("4111\u{0}1111 1111 1111"), "XXXXXXXXXXXX1111");
    }

    #[test]
    fn card_ids_are_masked_to_their_last_four() {
        assert_eq!(mask_last4("4111222233334444"), "XXXXXXXXXXXX4444");
        assert_eq!(mask_last4("abc"), "abc");
    }

    proptest! {
        #[test]
        fn control_characters_are_those_of_char_is_control(text in "\\PC{0,8}|[\\x00-\\x{a0}]{0,8}") {
            prop_assert_eq!(has_control(&text), text.chars().any(char::is_control));
        }

        #[test]
        fn masking_twice_changes_nothing(text in "[0-9 \\-A-Z]{0,60}") {
            let once = mask_pans(&text).into_owned();
            prop_assert_eq!(mask_pans(&once), Cow::Borrowed(once.as_str()));
        }

        #[test]
        fn no_card_number_survives(
            prefix in "[A-Z ]{0,10}",
            body in proptest::collection::vec(0u8..10, 12..=18),
            separator in prop_oneof![Just(""), Just(" "), Just("-")],
            suffix in "[A-Z ]{0,10}",
        ) {
            // Complete `body` with its Luhn check digit, then print it in groups of four.
            let mut digits: String = body.iter().map(|d| char::from(b'0' + d)).collect();
            let check = (0..10u8)
                .map(|d| format!("{digits}{d}"))
                .find(|candidate| luhn::valid(candidate))
                .unwrap_or_default();
            digits = check;
            let printed: Vec<&str> = digits
                .as_bytes()
                .chunks(4)
                .map(|chunk| std::str::from_utf8(chunk).unwrap_or_default())
                .collect();
            let text = format!("{prefix} {} {suffix}", printed.join(separator));
            let out = mask_pans(&text);
            prop_assert!(!out.contains(&digits), "{} -> {}", text, out);
            prop_assert!(!has_pan(&out), "{} -> {}", text, out);
        }
    }
}
