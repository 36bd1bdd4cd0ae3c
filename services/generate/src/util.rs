//! Small, allocation-free helpers for the hot path: stateless hashing for per-card facts,
//! random draws, and number formatting straight into a byte buffer.

use rand::RngCore;
use rand_chacha::ChaCha8Rng;

/// The SplitMix64 finaliser: a fast, well-mixed 64-bit hash of one word.
#[inline]
pub(crate) fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// A hash of three words; the same inputs always give the same facts (a card's home state,
/// a brand's trend), whichever day asks.
#[inline]
pub(crate) fn hash3(a: u64, b: u64, c: u64) -> u64 {
    mix(a ^ mix(b ^ mix(c)))
}

/// A uniform number in [0, 1) from a hash.
#[inline]
pub(crate) fn unit_of(hash: u64) -> f64 {
    (hash >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// Stable hash of a string (FNV-1a), for per-brand facts keyed by `brand_id`.
pub(crate) fn hash_str(text: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(hash)
}

/// Random draws used by the generator, on top of the per-day ChaCha stream.
pub(crate) trait Draw {
    fn unit(&mut self) -> f64;
    fn below(&mut self, n: u32) -> u32;
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// A standard normal deviate (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit();
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
    /// A Poisson count by inversion; fine for the small means of one card-day.
    fn poisson(&mut self, mean: f64) -> u32 {
        if mean <= 0.0 {
            return 0;
        }
        let limit = (-mean).exp();
        let mut product = self.unit();
        let mut count = 0;
        while product > limit && count < 64 {
            product *= self.unit();
            count += 1;
        }
        count
    }
}

impl Draw for ChaCha8Rng {
    #[inline]
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    #[inline]
    fn below(&mut self, n: u32) -> u32 {
        ((u64::from(self.next_u32()) * u64::from(n)) >> 32) as u32
    }
}

/// Picks an index from cumulative weights (ascending, last = total) with a uniform `u`.
#[inline]
pub(crate) fn pick_cumulative(cumulative: &[f64], u: f64) -> usize {
    let Some(&total) = cumulative.last() else {
        return 0;
    };
    let target = u * total;
    let index = cumulative.partition_point(|&c| c <= target);
    index.min(cumulative.len() - 1)
}

/// Walker's alias method: a weighted pick in constant time, whatever the number of choices.
#[derive(Debug, Clone, Default)]
pub(crate) struct AliasTable {
    probability: Vec<f64>,
    alias: Vec<u32>,
}

impl AliasTable {
    /// Builds the table (Vose's construction, deterministic). All-zero weights pick uniformly.
    pub fn new(weights: &[f64]) -> AliasTable {
        let n = weights.len();
        let total: f64 = weights.iter().map(|w| w.max(0.0)).sum();
        if n == 0 {
            return AliasTable::default();
        }
        let mut scaled: Vec<f64> = if total > 0.0 {
            weights
                .iter()
                .map(|w| w.max(0.0) * n as f64 / total)
                .collect()
        } else {
            vec![1.0; n]
        };
        let mut probability = vec![1.0; n];
        let mut alias: Vec<u32> = (0..n as u32).collect();
        let mut small: Vec<usize> = (0..n).filter(|&i| scaled[i] < 1.0).collect();
        let mut large: Vec<usize> = (0..n).filter(|&i| scaled[i] >= 1.0).collect();
        while let (Some(&s), Some(&l)) = (small.last(), large.last()) {
            small.pop();
            probability[s] = scaled[s];
            alias[s] = l as u32;
            scaled[l] -= 1.0 - scaled[s];
            if scaled[l] < 1.0 {
                large.pop();
                small.push(l);
            }
        }
        AliasTable { probability, alias }
    }

    pub fn is_empty(&self) -> bool {
        self.probability.is_empty()
    }

    /// Picks an index with a uniform `u` in [0, 1).
    #[inline]
    pub fn sample(&self, u: f64) -> usize {
        let n = self.probability.len();
        let scaled = u * n as f64;
        let index = (scaled as usize).min(n.saturating_sub(1));
        if scaled - (index as f64) < self.probability[index] {
            index
        } else {
            self.alias[index] as usize
        }
    }
}

/// A SplitMix64 stream from one hash: cheap independent draws for a card's lasting traits.
pub(crate) struct HashStream(u64);

impl HashStream {
    pub fn new(seed: u64) -> HashStream {
        HashStream(seed)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0)
    }

    #[inline]
    pub fn unit(&mut self) -> f64 {
        unit_of(self.next_u64())
    }
}

/// Builds cumulative weights from weights.
pub(crate) fn cumulative(weights: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut total = 0.0;
    weights
        .into_iter()
        .map(|w| {
            total += w.max(0.0);
            total
        })
        .collect()
}

/// Appends the decimal digits of `value`.
#[inline]
pub(crate) fn push_u64(out: &mut Vec<u8>, mut value: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

/// Appends `value` zero-padded to `width` digits (more digits if it needs them).
#[inline]
pub(crate) fn push_padded(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let start = start.min(digits.len() - width.min(digits.len()));
    out.extend_from_slice(&digits[start..]);
}

/// Appends cents as decimal dollars with two decimals: `-1234` becomes `-12.34`.
#[inline]
pub(crate) fn push_cents(out: &mut Vec<u8>, cents: i64) {
    if cents < 0 {
        out.push(b'-');
    }
    let abs = cents.unsigned_abs();
    push_u64(out, abs / 100);
    out.push(b'.');
    push_padded(out, abs % 100, 2);
}

/// Appends `value` in upper-case base 36, zero-padded to `width`.
#[inline]
pub(crate) fn push_base36(out: &mut Vec<u8>, mut value: u64, width: usize) {
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut text = [b'0'; 16];
    let mut start = text.len();
    loop {
        start -= 1;
        text[start] = DIGITS[(value % 36) as usize];
        value /= 36;
        if value == 0 {
            break;
        }
    }
    let start = start.min(text.len() - width.min(text.len()));
    out.extend_from_slice(&text[start..]);
}

/// Appends `value` zero-padded to `width` digits to a text buffer.
#[inline]
pub(crate) fn push_digits(out: &mut String, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    let mut rest = value;
    loop {
        start -= 1;
        digits[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    let start = start.min(digits.len() - width.min(digits.len()));
    out.push_str(std::str::from_utf8(&digits[start..]).unwrap_or("0"));
}

/// Appends `len` random upper-case letters and digits (order codes, references).
#[inline]
pub(crate) fn push_code(out: &mut String, mut hash: u64, len: usize) {
    const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    for _ in 0..len {
        out.push(char::from(ALPHABET[(hash % 36) as usize]));
        hash = (hash / 36) ^ mix(hash);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_format_as_dollars() {
        let mut out = Vec::new();
        for (cents, text) in [
            (1234, "12.34"),
            (-5, "-0.05"),
            (0, "0.00"),
            (100_000, "1000.00"),
        ] {
            out.clear();
            push_cents(&mut out, cents);
            assert_eq!(std::str::from_utf8(&out).ok(), Some(text));
        }
    }

    #[test]
    fn padding_and_base36() {
        let mut out = Vec::new();
        push_padded(&mut out, 42, 5);
        out.push(b' ');
        push_base36(&mut out, 35, 3);
        out.push(b' ');
        push_padded(&mut out, 123_456, 3);
        assert_eq!(std::str::from_utf8(&out).ok(), Some("00042 00Z 123456"));
    }

    #[test]
    fn alias_picks_follow_weights() {
        let table = AliasTable::new(&[1.0, 0.0, 3.0]);
        let mut counts = [0u32; 3];
        for i in 0..4000 {
            counts[table.sample((f64::from(i) + 0.5) / 4000.0)] += 1;
        }
        assert_eq!(counts[1], 0);
        assert!((900..1100).contains(&counts[0]), "{counts:?}");
        assert_eq!(AliasTable::new(&[0.0, 0.0]).sample(0.75), 1);
    }

    #[test]
    fn cumulative_picks_follow_weights() {
        let table = cumulative([1.0, 0.0, 3.0]);
        assert_eq!(pick_cumulative(&table, 0.0), 0);
        assert_eq!(pick_cumulative(&table, 0.24), 0);
        assert_eq!(pick_cumulative(&table, 0.26), 2);
        assert_eq!(pick_cumulative(&table, 0.999), 2);
    }
}
