//! One sale or refund written as a CSV row (with the descriptor noise of its card's bank and
//! the rows broken on purpose), and its record in the day's truth.

use super::*;

impl DayGenerator<'_> {
    /// Writes one row (maybe broken on purpose, maybe duplicated later) and records it.
    pub(super) fn emit(&mut self, card: &Card, sale: &Sale) {
        // Reasons take turns, and each reason alternates between its two variants, so even
        // a small run has every kind.
        let (broken, variant) = if self.rng.chance(0.001) {
            let count = BrokenReason::ALL.len();
            let reason = BrokenReason::ALL[self.broken_counter % count];
            let variant = (self.broken_counter / count) % 2 == 1;
            self.broken_counter += 1;
            (Some(reason), variant)
        } else {
            (None, false)
        };
        let row_start = self.out.len();
        self.seq += 1;
        let seq = self.seq;
        let out = &mut self.out;
        if broken != Some(BrokenReason::EmptyTxnId) {
            out.push(b'T');
            push_base36(out, self.epoch_day.max(0) as u64, 4);
            push_base36(out, seq, 6);
        }
        out.push(b',');
        let (date_text, month, day, year, dst) = self.dates[usize::from(sale.days_back)];
        if broken == Some(BrokenReason::BadDate) {
            if variant {
                out.extend_from_slice(&date_text[..5]);
                out.extend_from_slice(b"13-");
                out.extend_from_slice(&date_text[8..10]);
            } else {
                out.extend_from_slice(b"yesterday");
            }
        } else {
            out.extend_from_slice(&date_text);
        }
        let plain_time = self.rng.chance(0.12);
        out.push(if plain_time { b' ' } else { b'T' });
        push_padded(out, u64::from(sale.hour), 2);
        out.push(b':');
        push_padded(out, u64::from(sale.minute), 2);
        out.push(b':');
        push_padded(out, u64::from(sale.second), 2);
        if !plain_time {
            let tz_state = if sale.region == NO_REGION {
                card.home_state
            } else {
                sale.region
            };
            let info = &STATES[usize::from(tz_state)];
            let offset = i32::from(info.utc_offset) + i32::from(info.dst && dst);
            out.push(if offset < 0 { b'-' } else { b'+' });
            push_padded(out, u64::from(offset.unsigned_abs()), 2);
            out.extend_from_slice(b":00");
        }
        out.push(b',');
        out.extend_from_slice(&card.pan);
        out.push(b',');

        let (state_text, city_text) = if sale.region == NO_REGION {
            ("", "")
        } else {
            let info = &STATES[usize::from(sale.region)];
            (
                info.code,
                sale.city.map_or("", |c| info.cities[usize::from(c)].0),
            )
        };
        let (name, mcc) = match sale.merchant {
            Merchant::Brand(b) => {
                let model = &self.world.brands[b as usize];
                (MerchantName::Brand(model), model.mcc.as_str())
            }
            Merchant::Local { category, index } => (
                MerchantName::Local(&self.world.locals[category as usize][index as usize]),
                local_mcc(category),
            ),
        };
        // A few rows lose their city (but keep the state); the descriptor follows the columns.
        let city_text = if self.rng.chance(0.02) { "" } else { city_text };
        let input = DescriptorInput {
            merchant: name,
            category: sale.category,
            store_number: sale.store_number,
            city: city_text,
            state: state_text,
            style: card.style,
            last4: &card.pan[12..16],
            month,
            day,
            hour: sale.hour,
            minute: sale.minute,
            year,
            refund: sale.cents < 0,
            recurring: sale.recurring,
            mcc,
            noise: hash3(card.hash, u64::from(self.day_index), seq),
        };
        let descriptor = self.descriptor.write(&input, &mut self.rng);
        if broken == Some(BrokenReason::DescriptorTooLong) {
            let mut long = String::with_capacity(300);
            long.push_str(descriptor);
            while long.len() <= 256 {
                long.push_str(" REF 0000000000 MEMO PAYMENT DETAIL");
            }
            push_csv_field(out, &long);
        } else {
            push_csv_field(out, descriptor);
        }
        out.push(b',');
        match broken {
            Some(BrokenReason::BadAmount) if !variant => {
                out.push(b'"');
                push_u64(out, sale.cents.unsigned_abs() / 100);
                out.push(b',');
                push_padded(out, sale.cents.unsigned_abs() % 100, 2);
                out.push(b'"');
            }
            Some(BrokenReason::BadAmount) => out.extend_from_slice(b"abc"),
            _ => push_cents(out, sale.cents),
        }
        out.extend_from_slice(if broken == Some(BrokenReason::Currency) {
            b",EUR,"
        } else {
            b",USD,"
        });
        if !mcc.is_empty() && !self.rng.chance(0.06) {
            out.extend_from_slice(mcc.as_bytes());
        }
        out.push(b',');
        out.extend_from_slice(city_text.as_bytes());
        out.push(b',');
        if broken == Some(BrokenReason::UnknownState) {
            out.extend_from_slice(b"ZZ");
        } else {
            out.extend_from_slice(state_text.as_bytes());
        }
        let column_count = broken == Some(BrokenReason::ColumnCount);
        if !column_count || variant {
            out.push(b',');
            if let (Some(offset), false) = (sale.postal, state_text.is_empty()) {
                if !self.rng.chance(0.03) {
                    let info = &STATES[usize::from(sale.region)];
                    let base = sale
                        .city
                        .map_or(info.cities[0].1, |c| info.cities[usize::from(c)].1);
                    push_padded(out, u64::from(base + offset), 5);
                }
            }
        }
        if column_count && variant {
            out.extend_from_slice(b",EXTRA");
        }
        out.push(b'\n');
        let row_end = out.len();

        self.stats.rows += 1;
        if let Some(reason) = broken {
            self.stats.broken[reason as usize] += 1;
            return;
        }
        self.record_valid(card, sale, seq);
        if let Some(capture) = &mut self.capture {
            capture.push((row_start, row_end));
        }
        if self.rng.chance(0.005) {
            self.duplicates
                .extend_from_slice(&self.out[row_start..row_end]);
            self.stats.rows += 1;
            self.stats.duplicate_rows += 1;
        }
    }

    pub(super) fn record_valid(&mut self, card: &Card, sale: &Sale, seq: u64) {
        let stats = &mut self.stats;
        stats.valid_rows += 1;
        stats.valid_net_cents += sale.cents;
        if sale.days_back > 0 {
            stats.late_rows += 1;
        }
        if sale.cents < 0 {
            stats.refund_rows += 1;
        }
        let brand = match sale.merchant {
            Merchant::Local { .. } => {
                stats.local_rows += 1;
                stats.local_net_cents += sale.cents;
                None
            }
            Merchant::Brand(b) => Some(b),
        };
        if self.params.truth_detail {
            let detail = &mut self.detail;
            detail.extend_from_slice(self.params.provider.as_bytes());
            detail.extend_from_slice(b",T");
            push_base36(detail, self.epoch_day.max(0) as u64, 4);
            push_base36(detail, seq, 6);
            detail.push(b',');
            if let Some(b) = brand {
                detail.extend_from_slice(self.world.brands[b as usize].brand_id.as_bytes());
            }
            detail.push(b',');
            detail.extend_from_slice(sale.category.as_str().as_bytes());
            detail.push(b'\n');
        }
        let Some(brand) = brand else { return };
        self.truth[usize::from(sale.days_back)]
            .push((truth_key(brand, sale.region, card.index), sale.cents));
    }
}

/// Appends a CSV field, quoted only when it has to be.
fn push_csv_field(out: &mut Vec<u8>, text: &str) {
    if text
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        for byte in text.bytes() {
            if byte == b'"' {
                out.push(b'"');
            }
            out.push(byte);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(text.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        let mut out = Vec::new();
        push_csv_field(&mut out, "PLAIN");
        out.push(b'|');
        push_csv_field(&mut out, "A, \"B\"");
        assert_eq!(String::from_utf8_lossy(&out), "PLAIN|\"A, \"\"B\"\"\"");
    }
}
